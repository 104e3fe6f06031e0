"""The one small interface every replica store implements: put, head, list, get, abort own uploads.

Two implementations exist because two kinds of storage are real: an S3-compatible bucket
(:mod:`preserve.stores.s3`) and a directory on another disk (:mod:`preserve.stores.filesystem`).
Replication, remote audits, restores and repairs are written against this interface only, so
they behave the same on both.

Keys are always ``/``-separated and relative to the store's root (the URL's prefix); the store
joins them with its prefix.

Damage is reported, never followed: where a store finds something at a key that is not an object
it wrote (a symbolic link, or a link in a folder above the key, a pipe or device in a directory
store), :meth:`Store.head` and :meth:`Store.list` return it with :attr:`ObjectInfo.damage` set (so
no check ever verifies it) and :meth:`Store.get` raises :class:`~preserve.errors.UnsafePath` (exit 1)
naming it. Restores, repairs and audits rely on this.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from preserve.errors import UsageError
from preserve.fixity import RateLimiter

#: Called with the number of bytes just sent or received; must be thread-safe.
ByteProgress = Callable[[int], None]

#: Storage classes whose objects must be restored before a GET succeeds.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

#: What verified an object, best first, as the ledger and the PREMIS event name it:
#: the store's own SHA-256 checksum (computed by the server as it received the bytes); the ETag
#: as the MD5 of a single-part object; the ETag as the MD5 of the part MD5s of a multipart object
#: (with the part size recorded); a streamed re-read, where neither can vouch (a store keeping no
#: checksum whose ETag is no MD5, such as SSE-KMS, or a directory store).
VERIFIED_BY = ("stored-sha256", "etag-md5", "etag-multipart", "re-read")

#: Server-side encryption whose ETag is not the MD5 of the object's bytes.
_ETAG_NOT_MD5 = ("aws:kms", "aws:kms:dsse", "sse-c")


def check_endpoint_url(url: str, where: str) -> None:
    """Refuse an endpoint that is not ``http(s)://host[:port]`` as a usage error (exit 2), naming
    where it was given; botocore would otherwise fail deep inside with a traceback."""
    parts = urllib.parse.urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UsageError(f"{where} {url!r} is not an endpoint URL; give it with its scheme, such as "
                         f"http://{url.split('://')[-1] or '127.0.0.1:7480'} or https://s3.example.org")


def b64_of_hex(hexdigest: str) -> str:
    """The base64 form S3 uses for checksums, from a manifest's hex digest."""
    return base64.b64encode(bytes.fromhex(hexdigest)).decode("ascii")


def composite_sha256(part_digests: list[str]) -> str:
    """S3's composite checksum of a multipart object: sha256 over the parts' raw digests, base64."""
    joined = b"".join(bytes.fromhex(d) for d in part_digests)
    return base64.b64encode(hashlib.sha256(joined).digest()).decode("ascii")


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: the MD5 of the parts' raw MD5s, ``-<parts>``."""
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


def same_composite(stored: str, expected: str) -> bool:
    """Compare composite checksums with or without the ``-N`` part-count suffix.

    AWS appends ``-<number of parts>``; some S3-compatible servers (moto among them) omit it.
    """
    return stored.split("-", 1)[0] == expected.split("-", 1)[0]


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD (or a listing) says about one object, without reading its bytes."""

    key: str
    size: int
    sha256_meta: str | None = None  # the manifest digest we stored in object metadata (hex)
    checksum_sha256: str | None = None  # the store's own checksum (base64, maybe "composite-N")
    storage_class: str | None = None
    restored: bool = False  # an archive-class object whose restored copy is readable now
    restore_ongoing: bool = False
    version_id: str | None = None
    etag: str | None = None
    lock_mode: str | None = None  # object lock retention of this version: "COMPLIANCE" | "GOVERNANCE"
    lock_until: dt.datetime | None = None
    #: why this is not an object at all (a link, a special file), naming it; None for an object
    damage: str | None = None
    #: server-side encryption ("AES256", "aws:kms", "sse-c"...), which decides what the ETag is
    encryption: str | None = None
    #: the ETag preserve expected when it sent the object (x-amz-meta-md5), hex
    md5_meta: str | None = None

    @property
    def etag_md5(self) -> str | None:
        """The ETag, unquoted, where it is an MD5 (of the bytes, or of the part MD5s with ``-N``):
        not under SSE-KMS or SSE-C, and of that form; None otherwise."""
        if not self.etag or (self.encryption or "").lower() in _ETAG_NOT_MD5:
            return None
        etag = self.etag.strip('"').lower()
        digest, _, parts = etag.partition("-")
        if len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest) or (parts and not parts.isdigit()):
            return None
        return etag

    @property
    def archived(self) -> bool:
        """True when a GET fails until a restore request completes."""
        return (self.storage_class or "").upper() in ARCHIVE_CLASSES and not self.restored


@dataclass(frozen=True)
class PartPlan:
    """How a large object was sent: part size and each part's sha256 (hex), in order."""

    part_size: int
    digests: list[str]
    #: the multipart ETag the parts make (MD5 of the part MD5s, "-N"), when known
    etag: str | None = None

    @property
    def composite(self) -> str:
        return f"{composite_sha256(self.digests)}-{len(self.digests)}"


@dataclass
class PutResult:
    """What one upload did: bytes actually sent (0 when skipped) and the multipart plan, if any."""

    key: str
    size: int
    sent: int
    parts: PartPlan | None = None
    resumed_parts: int = 0
    #: the ETag the bytes sent make on a store whose ETag is an MD5 (single part: the MD5;
    #: multipart: MD5 of the part MD5s, "-N"); None where the store has no ETags
    etag: str | None = None
    #: the object as the store's answer to the upload describes it (its ETag and checksum, as
    #: the server computed them); None where the answer says nothing and a HEAD must
    stored: ObjectInfo | None = None


@dataclass
class PutOptions:
    """Per-run upload settings: storage class, object lock, multipart sizes, bandwidth."""

    storage_class: str | None = None
    lock_mode: str | None = None  # "COMPLIANCE" | "GOVERNANCE"
    retain_until: str | None = None  # ISO 8601 date/time
    multipart_threshold: int = 64 * 1024 * 1024
    part_size: int = 16 * 1024 * 1024
    part_workers: int = 4  # parts of one large file sent in parallel
    limiter: RateLimiter | None = None
    progress: ByteProgress | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: an interrupted multipart upload older than this is aborted rather than resumed
    upload_max_age: dt.timedelta = dt.timedelta(days=7)


class Store(ABC):
    """A place holding replicas. ``url`` names it in messages and in the ledger (no secrets)."""

    url: str
    kind: str

    @abstractmethod
    def put_file(self, key: str, source: Path, sha256_hex: str, size: int, options: PutOptions,
                 *, archive: bool = True) -> PutResult:
        """Upload ``source`` as ``key``, verifying on the way that its bytes have ``sha256_hex``.

        The object comes into existence only when the bytes read matched the digest. ``archive``
        False keeps the object in the default storage class (tag files stay readable).
        """

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, options: PutOptions) -> PutResult:
        """Store a small object (tag files, the replica's JSON record)."""

    @abstractmethod
    def put_stream(self, key: str, chunks: Iterator[bytes], options: PutOptions,
                   *, expected_size: int | None = None) -> tuple[PutResult, str]:
        """Upload a stream (a tar written on the fly); returns its sha256 hex.

        ``expected_size``, when known, lets a store that sends in parts choose parts large enough
        to stay within its part-count limit.
        """

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of one object, with the store's checksum when it keeps one; None if absent."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (sizes; checksums only where cheap)."""

    @abstractmethod
    def get(self, key: str) -> AbstractContextManager[Iterator[bytes]]:
        """The object's bytes as a stream of chunks; nothing is written to local disk."""

    @abstractmethod
    def abort_own_uploads(self, prefix: str) -> int:
        """Remove what our own interrupted uploads left under ``prefix`` (never a stored object).

        Returns how many were removed. Complete objects (and locked versions) are never deleted,
        and nothing is deleted because its name looks like a temporary one.
        """

    def finish_uploads(self) -> None:
        """The run's uploads are over (none in flight): release what the store keeps for them
        (a directory store's staging folder). A later upload starts afresh."""
        return None  # an S3 store keeps nothing between uploads

    def name_refused(self, name: str) -> str | None:
        """Why a bag may not be stored under ``name`` here (a name the store keeps for itself),
        or None."""
        return None

    def storage_mismatch(self, info: ObjectInfo, options: PutOptions, *, archive: bool) -> str | None:
        """Why an object already in place is not in the storage class asked for (None when it is,
        or where the store has no storage classes)."""
        return None

    def ensure_retention(self, info: ObjectInfo, options: PutOptions) -> bool:
        """Give an object the object-lock retention asked for when it lacks it or holds a shorter
        one (an existing retention is never shortened or weakened). True when it was set here."""
        return False

    def request_restore(self, key: str, days: int) -> bool:
        """Ask an archive storage class to make ``key`` readable; False where not applicable."""
        return False

    def join(self, *parts: str) -> str:
        """A key made of ``/``-joined parts, without empty segments."""
        return "/".join(p.strip("/") for p in parts if p.strip("/"))

"""Where a bag's objects sit in a store, the replica record beside them, and the object checks
shared by replication, remote audits, restores and repairs.

Layout ``files`` (the default): ``<prefix>/<bag-name>/<bag-relative path>`` for every file of
the bag, so single files can be verified and restored. Layout ``tar``: one object
``<prefix>/<bag-name>.tar``. Beside either sits ``<prefix>/<bag-name>.preserve-replica.json``,
the replica record: layout, the manifest's digest (the bag's identity), and for every multipart
object its part size, per-part SHA-256 digests and the ETag the parts make (MD5 of the part
MD5s, ``-N``), which is what lets an audit compare the store's composite checksum, or on a store
that keeps none its ETag, without downloading anything.

The record accounts for every object sent, so that a remote audit notices an object that is
gone even when the files that would list it (the tag manifests) went with it:

* ``tag_files`` lists every tag file sent (bagit.txt, manifests, bag-info.txt, metadata/...,
  tag manifests) with its size and SHA-256;
* the payload objects are the lines of ``manifest-sha256.txt``, whose SHA-256 the record pins
  (``manifest_sha256``, itself listed in ``tag_files``), with their count and bytes in
  ``payload_files`` / ``payload_bytes``. Listing each payload object again would make the record
  of a bag of a million files larger than the manifest it guards, and too large to read whole.

Records written before ``tag_files`` existed read as ``tag_files = None`` (format unchanged,
so older versions still read new records).
"""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.errors import RemoteError
from preserve.stores.base import ObjectInfo, PartPlan, Store, b64_of_hex, same_composite

RECORD_SUFFIX = ".preserve-replica.json"
RECORD_FORMAT = "preserve-replica/1"


def object_key(name: str, rel: str) -> str:
    """The key of one bag file, relative to the store's prefix."""
    return f"{name}/{rel}"


def tar_key(name: str) -> str:
    return f"{name}.tar"


def record_key(name: str) -> str:
    return f"{name}{RECORD_SUFFIX}"


def replica_location(store: Store, name: str, layout: str) -> str:
    """The URL/path of one bag's copy in a store (what the ledger's replica location holds)."""
    return f"{store.url.rstrip('/')}/{tar_key(name) if layout == 'tar' else name}"


def record_fields(data: builtins.bytes, fmt: str) -> dict[str, Any] | None:
    """A replica record's JSON object when it is one of format ``fmt``, else None (an object
    that is not a record, or damaged: the caller treats the replica as having none)."""
    try:
        d = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) and d.get("format") == fmt else None


@dataclass
class RemoteRecord:
    """The JSON object kept beside a bag's objects."""

    bag: str
    layout: str
    manifest_sha256: str
    complete: bool = False
    objects: int = 0
    bytes: int = 0
    updated: str = ""
    tar_sha256: str | None = None
    multipart: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every tag file sent: bag-relative path -> {"size": int, "sha256": hex}; None in old records
    tag_files: dict[str, dict[str, Any]] | None = None
    payload_files: int | None = None
    payload_bytes: int | None = None

    def plan_for(self, rel: str, sha256_hex: str) -> PartPlan | None:
        """The recorded part plan of one object, if it was sent in parts with this digest."""
        entry = self.multipart.get(rel)
        if entry and entry.get("sha256") == sha256_hex:
            etag = entry.get("etag")
            return PartPlan(int(entry["part_size"]), list(entry["parts"]), str(etag) if etag else None)
        return None

    def to_json(self) -> builtins.bytes:
        return json.dumps({
            "format": RECORD_FORMAT, "bag": self.bag, "layout": self.layout,
            "manifest_sha256": self.manifest_sha256, "complete": self.complete, "objects": self.objects,
            "bytes": self.bytes, "updated": self.updated, "tar_sha256": self.tar_sha256,
            "multipart": self.multipart, "tag_files": self.tag_files, "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
        }, indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: builtins.bytes) -> RemoteRecord | None:
        d = record_fields(data, RECORD_FORMAT)
        if d is None:
            return None
        return cls(bag=str(d.get("bag", "")), layout=str(d.get("layout", "files")),
                   manifest_sha256=str(d.get("manifest_sha256", "")), complete=bool(d.get("complete")),
                   objects=int(d.get("objects", 0)), bytes=int(d.get("bytes", 0)), updated=str(d.get("updated", "")),
                   tar_sha256=d.get("tar_sha256"), multipart=dict(d.get("multipart") or {}),
                   tag_files=_tag_files(d.get("tag_files")), payload_files=_int_or_none(d.get("payload_files")),
                   payload_bytes=_int_or_none(d.get("payload_bytes")))


def _tag_files(value: Any) -> dict[str, dict[str, Any]] | None:
    """The record's tag-file list; entries that are not {size, sha256} are kept with what they
    hold, so an audit reports them rather than a reader failing on them."""
    if not isinstance(value, dict):
        return None
    out: dict[str, dict[str, Any]] = {}
    for rel, entry in value.items():
        entry = entry if isinstance(entry, dict) else {}
        out[str(rel)] = {"size": _int_or_none(entry.get("size")), "sha256": str(entry.get("sha256") or "")}
    return out


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


#: The most :func:`read_bytes` holds in memory; larger objects are compared by streamed digest.
SMALL_OBJECT_LIMIT = 64 * 1024 * 1024


def read_bytes(store: Store, key: str, limit: int | None = None) -> bytes:
    """A small object's whole content (tag files, the replica record)."""
    limit = SMALL_OBJECT_LIMIT if limit is None else limit
    out = bytearray()
    with store.get(key) as chunks:
        for chunk in chunks:
            out += chunk
            if len(out) > limit:
                raise RemoteError(f"{key}: larger than {limit} bytes; not a tag file")
    return bytes(out)


def download_to(store: Store, key: str, path: Path) -> None:
    """Stream an object into a new local file, whatever its size (a bag's manifests can be
    larger than anything :func:`read_bytes` should hold in memory)."""
    with store.get(key) as chunks, open(path, "xb") as out:
        for chunk in chunks:
            out.write(chunk)


def read_record(store: Store, name: str) -> RemoteRecord | None:
    """The replica record beside a bag's objects, or None when absent or unreadable."""
    if store.head(record_key(name)) is None:
        return None
    return RemoteRecord.from_json(read_bytes(store, record_key(name)))


def check_info(info: ObjectInfo | None, sha256_hex: str, size: int, plan: PartPlan | None) -> str | None:
    """Why an object's HEAD does not match what the manifest says (None when it matches).

    Returns ``"no-checksum"`` when the store keeps no checksum for it (then only a download can
    verify it). A composite checksum is compared with or without its ``-N`` suffix.
    """
    if info is None:
        return "missing"
    if info.damage is not None:
        return f"not a stored object: {info.damage}"
    if info.size != size:
        return f"size {info.size}, expected {size}"
    if info.sha256_meta is not None and info.sha256_meta != sha256_hex:
        return f"sha256 in object metadata is {info.sha256_meta}, expected {sha256_hex}"
    stored = info.checksum_sha256
    if not stored:
        return "no-checksum"
    if stored == b64_of_hex(sha256_hex):
        return None
    if plan is not None and same_composite(stored, plan.composite):
        return None
    if plan is None and "-" in stored:
        return "composite-unknown"
    expected = plan.composite if plan is not None else b64_of_hex(sha256_hex)
    return f"stored checksum {stored}, expected {expected}"


def hash_object(store: Store, key: str) -> tuple[str, int]:
    """(sha256 hex, size) of an object, streamed: nothing is written to disk."""
    h = hashlib.sha256()
    size = 0
    with store.get(key) as chunks:
        for chunk in chunks:
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def plan_parts(path: str, part_size: int) -> PartPlan:
    """The per-part SHA-256 digests a multipart upload of ``path`` with ``part_size`` would have."""
    digests = []
    with open(path, "rb") as f:
        while data := f.read(part_size):
            digests.append(hashlib.sha256(data).hexdigest())
    return PartPlan(part_size, digests)

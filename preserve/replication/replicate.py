"""``replicate``: copy a bag to a store, every object verified, resumable, recorded.

Order of work, chosen so that an interrupted run is always safe to rerun:

1. the local bag is checked for completeness (no hashing: every byte is hashed as it is sent),
   and for links: a symbolic link (or pipe, device) anywhere below the bag's root is refused,
   naming it, before anything is sent; every local file is then opened without following a link;
2. the name is claimed, or found to be ours: the payload manifests are compared with what is
   already under ``<bag-name>/`` (a different bag there is refused, nothing is sent);
3. manifests first, then the payload, then the other tag files, tag manifests last;
   each object already present and verified is skipped (sent again when it is in another storage
   class than asked; given the object-lock retention asked when it lacks it, never shortened), an
   interrupted multipart upload of our own is resumed (parts that match are kept), stale ones are aborted;
4. every object is checked after upload, by the first of these that can vouch for it (see
   :data:`~preserve.stores.base.VERIFIED_BY`): the store's own SHA-256 checksum (HEAD with
   checksum mode); on a store that keeps none (Ceph RGW 16.2, for one), the ETag where it is an
   MD5 (single part) or the MD5 of the part MD5s (multipart, with the part size recorded), the
   MD5s being computed in the same read as the SHA-256; only where neither can (SSE-KMS ETags, a
   directory store) is the object read back and re-hashed. Objects already there are checked
   the same way, so a rerun reads nothing back. What verified each object goes into the ledger
   (and so into the PREMIS replication event). The replica record is written beside: every tag
   file with its size and SHA-256, the payload manifest's digest with the payload's count and
   bytes, multipart plans with their ETags;
5. the replica counts as complete only when every object verified; it is recorded either way.

A run that fails leaves its interrupted multipart uploads in place, so that the next run resumes
them; they are aborted when the replica completes, when ``abort_incomplete`` is asked, or when
they are older than ``PutOptions.upload_max_age`` (7 days unless set). An object-lock retention
the store refuses to strengthen on an object that is there and verified does not make the copy
incomplete when the object holds a retention already: it is reported with the store's reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from preserve.bag.reader import Bag, open_bag
from preserve.bag.validate import validate_bag
from preserve.errors import (
    BagInvalid,
    InputError,
    PreserveError,
    RemoteError,
    ReplicaConflict,
    UnsafePath,
    UsageError,
)
from preserve.fixity import hash_file, ordered_map
from preserve.replication.config import Location
from preserve.replication.layout import (
    RemoteRecord,
    check_info,
    hash_object,
    object_key,
    plan_parts,
    read_record,
    record_key,
    replica_location,
    tar_key,
)
from preserve.replication.tarstream import tar_chunks, tar_size
from preserve.replication.verified import ManifestDigests, VerifiedBy
from preserve.safefs import LINK_REASON, LinkRefused, lstat_beneath, refusal
from preserve.stores.base import ObjectInfo, PartPlan, PutOptions, Store, multipart_etag

LAYOUTS = ("files", "tar")


class ReplicaLedger(Protocol):
    """What replication needs from the audit ledger (:class:`preserve.audit.ledger.Ledger`)."""

    def record_replica(self, bag: str, target: str, *, location: str, started: str, ended: str,
                       objects: int, bytes: int, outcome: str, identifier: str | None = None,
                       site: str | None = None, detail: dict[str, Any] | None = None) -> int: ...


@dataclass
class ReplicaResult:
    """What one replication did, for the CLI and the ledger."""

    bag: Path
    name: str
    target: str
    location: str
    layout: str
    started: str
    target_name: str | None = None
    place: Location = field(default_factory=Location)
    origin: Location = field(default_factory=Location)
    ended: str = ""
    objects: int = 0
    bytes: int = 0
    sent: int = 0
    skipped: int = 0
    uploaded: int = 0
    resumed_parts: int = 0
    aborted_uploads: int = 0
    verified: int = 0
    failures: list[str] = field(default_factory=list)
    errors: list[PreserveError] = field(default_factory=list, repr=False)
    parts: dict[str, PartPlan] = field(default_factory=dict)
    part_sha256: dict[str, str] = field(default_factory=dict)  # whole-object digest of each multipart object
    tag_files: dict[str, dict[str, Any]] = field(default_factory=dict)  # every tag file sent: size, sha256
    payload_files: int = 0
    payload_bytes: int = 0
    tar_sha256: str | None = None
    storage_class: str | None = None  # asked for (payload objects)
    lock_mode: str | None = None  # object lock asked for, and the date every object is retained until at least
    retain_until: str | None = None
    retention_set: int = 0  # objects already there whose retention was set or extended by this run
    retention_refused: list[str] = field(default_factory=list)  # the store's refusals, objects intact
    #: object (bag-relative) -> VERIFIED_BY entry; held on disk past a few thousand objects
    verified_by: VerifiedBy = field(default_factory=VerifiedBy, repr=False)
    complete: bool = False
    ledger_id: int | None = None

    @property
    def outcome(self) -> str:
        return "pass" if self.complete else "fail"

    def detail(self) -> dict[str, Any]:
        """The ledger's JSON detail: verification, layout, location, multipart plans."""
        return {
            "complete": self.complete, "verification": "every object verified" if self.complete else "incomplete",
            "layout": self.layout, "target_name": self.target_name, "place": self.place.to_dict(),
            "origin": self.origin.to_dict(),
            "sent_bytes": self.sent, "skipped": self.skipped, "uploaded": self.uploaded,
            "resumed_parts": self.resumed_parts, "failures": self.failures[:20],
            "storage_class": self.storage_class,
            "object_lock": ({"mode": self.lock_mode, "retain_until": self.retain_until,
                             "retention_set": self.retention_set,
                             **({"refused": self.retention_refused[:20]} if self.retention_refused else {})}
                            if self.lock_mode else None),
            "multipart": {k: {"part_size": p.part_size, "parts": p.digests, "composite": p.composite, "etag": p.etag}
                          for k, p in sorted(self.parts.items())},
            "verified_by": self.verified_by_summary(),
        }

    def verified_by_summary(self) -> dict[str, Any]:
        """What verified each object, compactly: the count per way, the most common way as
        ``default``, and every object verified another way by name (a bag of a million files
        verified the same way costs one line, not a million)."""
        counts = self.verified_by.counts()
        default = counts.most_common(1)[0][0] if counts else None
        return {"counts": dict(sorted(counts.items())), "default": default,
                "objects": dict(self.verified_by.items(ordered=True, except_way=default))}

    def to_dict(self) -> dict[str, Any]:
        skip = ("parts", "place", "origin", "part_sha256", "errors", "tag_files")
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        d.update(bag=str(self.bag), outcome=self.outcome, place=self.place.to_dict(),
                 multipart=self.detail()["multipart"], verified_by=dict(self.verified_by.items()))
        return d


@dataclass
class ReplicateOptions:
    """Run settings: layout, upload options, parallel objects."""

    layout: str = "files"
    put: PutOptions = field(default_factory=PutOptions)
    workers: int = 4
    target_name: str | None = None
    place: Location = field(default_factory=Location)
    origin: Location = field(default_factory=Location)  # where the bag itself is kept (preserve.toml [origin])
    abort_incomplete: bool = False  # abort every unfinished upload under the bag's name before sending


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def replicate_bag(bag_path: str | Path, store: Store, options: ReplicateOptions | None = None, *,
                  ledger: ReplicaLedger | None = None,
                  on_total: Callable[[int, int], None] | None = None) -> ReplicaResult:
    """Replicate one bag to ``store``; see the module docstring.

    Raises :class:`BagInvalid` (the local bag is incomplete or a file does not match its
    manifest), :class:`ReplicaConflict`, :class:`RemoteError` / :class:`StorageError` naming the
    object that failed. The replica is recorded in ``ledger`` whatever the outcome, once the
    transfer started.
    """
    opts = options or ReplicateOptions()
    if opts.layout not in LAYOUTS:
        raise InputError(f"unknown layout {opts.layout!r}; choose from {', '.join(LAYOUTS)}")
    bag = open_bag(bag_path)
    refuse_links(bag.path)
    if "sha256" not in bag.payload_manifests:
        raise InputError(f"{bag.path}: replication sends each manifest's SHA-256 as the S3 checksum, but the bag "
                         f"has no manifest-sha256.txt (only {', '.join(sorted(bag.payload_manifests)) or 'none'})")
    report = validate_bag(bag.path, fast=True)
    if not report.ok:
        first = "; ".join(str(f) for f in report.errors[:3])
        raise BagInvalid(f"{bag.path}: the bag is not complete ({len(report.errors)} problem(s): {first}); "
                         "nothing was replicated", report=report)
    if on_total is not None:
        on_total(report.bytes, report.files)
    name = bag.name
    refused = store.name_refused(name)
    if refused is not None:
        raise UsageError(f"{bag.path}: a bag named {name!r} cannot be replicated to {store.url} ({refused}); "
                         "rename the bag (nothing was sent)")
    _refuse_self(bag.path, store, name, opts.layout)
    manifest_digest = _local_sha256(bag.path, "manifest-sha256.txt")
    result = ReplicaResult(bag=bag.path, name=name, target=store.url,
                           location=replica_location(store, name, opts.layout), layout=opts.layout,
                           started=_now(), target_name=opts.target_name, place=opts.place, origin=opts.origin,
                           storage_class=opts.put.storage_class, lock_mode=opts.put.lock_mode,
                           retain_until=opts.put.retain_until if opts.put.lock_mode else None)
    remote = read_record(store, name)
    _check_conflict(bag, store, remote, manifest_digest, opts.layout, result)
    error: PreserveError | None = None
    own = tar_key(name) if opts.layout == "tar" else f"{name}/"
    try:
        if opts.abort_incomplete:
            result.aborted_uploads += store.abort_own_uploads(own)
        if opts.layout == "tar":
            _send_tar(bag, store, opts, remote, result)
        else:
            _send_files(bag, store, opts, remote, result)
        if not result.failures:
            # every object is complete: what unfinished uploads remain under the name are stale.
            # After a failure they are kept, so that the next run resumes them
            result.aborted_uploads += store.abort_own_uploads(own)
    except PreserveError as exc:
        error = exc
        result.failures.insert(0, str(exc))
    finally:
        store.finish_uploads()
    if error is None and result.errors:
        error = result.errors[0]
    result.complete = error is None and not result.failures
    result.ended = _now()
    if result.objects:
        record = RemoteRecord(bag=name, layout=opts.layout, manifest_sha256=manifest_digest, complete=result.complete,
                              objects=result.objects, bytes=result.bytes, updated=result.ended,
                              tar_sha256=result.tar_sha256,
                              # a tar replica is one object, accounted for by tar_sha256
                              tag_files=dict(sorted(result.tag_files.items())) if opts.layout == "files" else None,
                              payload_files=result.payload_files if opts.layout == "files" else None,
                              payload_bytes=result.payload_bytes if opts.layout == "files" else None,
                              multipart={k: {"sha256": result.part_sha256.get(k, ""), "part_size": p.part_size,
                                             "parts": p.digests, "composite": p.composite, "etag": p.etag}
                                         for k, p in result.parts.items()})
        try:
            store.put_bytes(record_key(name), record.to_json(), dataclasses.replace(opts.put, progress=None,
                                                                                      lock_mode=None, retain_until=None))
        except PreserveError as exc:
            result.complete = False
            result.failures.append(str(exc))
            error = error or exc
        finally:
            store.finish_uploads()
    if ledger is not None:
        result.ledger_id = ledger.record_replica(
            str(bag.path), store.url, location=result.location, started=result.started, ended=result.ended,
            objects=result.objects, bytes=result.bytes, outcome=result.outcome,
            identifier=bag.info_value("External-Identifier") or name, site=opts.place.site, detail=result.detail())
    if error is not None:
        raise error
    if result.retention_refused and not result.failures:
        more = len(result.retention_refused) - 1
        raise RemoteError(f"{result.location}: every object is there and verified (recorded as a complete copy), but "
                          f"the store refused the object-lock retention asked for: {result.retention_refused[0]}"
                          + (f" (and {more} more)" if more else ""))
    if result.failures:
        raise RemoteError(f"{result.location}: the replica is not complete: {result.failures[0]}"
                          + (f" (and {len(result.failures) - 1} more)" if len(result.failures) > 1 else ""))
    return result


def refuse_links(root: Path) -> None:
    """Refuse a bag with a symbolic link (or a pipe, device, socket) anywhere below its root, naming
    the first one (:class:`UnsafePath`, exit 1): a replica holds the bag's files, never what a link
    points to. Linked folders are not entered. The root itself may be a link."""
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            # not damage to the bag but a permission (or the disk) of this machine: an input
            # problem (exit 3), as an unreadable tag file is
            raise InputError(f"{here}: this folder cannot be opened ({exc.strerror or exc}); make it readable by the "
                             "user running preserve and run replicate again (nothing was replicated)",
                             path=str(here)) from None
        for entry in entries:
            if entry.is_symlink():
                raise UnsafePath(f"{entry.path}: {LINK_REASON}; replace it with the file itself "
                                 "(nothing was replicated)", path=entry.path)
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif not entry.is_file(follow_symlinks=False):
                raise UnsafePath(f"{entry.path}: is not a regular file (a pipe, device or socket); a bag holds "
                                 "files only (nothing was replicated)", path=entry.path)


def _local_sha256(root: Path, rel: str) -> str:
    """SHA-256 of a file of the local bag, opened with no link followed below the bag's root."""
    try:
        return hash_file(rel, ("sha256",), root=root)["sha256"]
    except LinkRefused as exc:
        raise refusal(exc) from None
    except PermissionError as exc:
        # not damage to the bag but a permission of this machine: an input problem, as validate says
        raise InputError(f"{root / rel}: cannot be read ({exc.strerror or exc}); make it readable by this user "
                         "and rerun") from None
    except OSError as exc:
        raise BagInvalid(f"{root / rel}: {exc.strerror or exc}; validate the bag before replicating") from None


def _local_size(root: Path, rel: str) -> int:
    try:
        return lstat_beneath(root, rel).st_size
    except LinkRefused as exc:
        raise refusal(exc) from None
    except OSError as exc:
        raise BagInvalid(f"{root / rel}: {exc.strerror or exc}; validate the bag before replicating") from None


def _refuse_self(bag: Path, store: Store, name: str, layout: str) -> None:
    """A file-system target whose copy would be the bag itself (or lie inside it) is no replica."""
    root = getattr(store, "root", None)
    if root is None:
        return
    copy = (Path(root) / (tar_key(name) if layout == "tar" else name)).resolve()
    here = bag.resolve()
    if copy == here or here in copy.parents:
        raise UsageError(f"{store.url}: the copy would be {copy}, which is the bag itself or inside it; "
                         "choose a directory on another disk")


def _check_conflict(bag: Bag, store: Store, remote: RemoteRecord | None, digest: str, layout: str,
                    result: ReplicaResult) -> None:
    """Refuse when a different bag (other manifests) already sits under this name."""
    name = bag.name
    if remote is not None and remote.manifest_sha256 != digest:
        raise ReplicaConflict(target=result.location, name=name,
                              reason=f"its replica record names manifest-sha256.txt with sha256 {remote.manifest_sha256}, ours is {digest}")
    if remote is not None and remote.layout != layout:
        raise ReplicaConflict(target=result.location, name=name,
                              reason=f"it was replicated with layout {remote.layout!r}, not {layout!r}")
    if layout == "tar":
        if remote is None and store.head(tar_key(name)) is not None:
            raise ReplicaConflict(target=result.location, name=name, reason="an object is there without a replica record")
        return
    local = {f"manifest-{alg}.txt": p for alg, p in bag.payload_manifests.items()}
    there = {o.key[len(name) + 1:] for o in store.list(f"{name}/manifest-") if "/" not in o.key[len(name) + 1:]}
    if there:
        if there != set(local):
            raise ReplicaConflict(target=result.location, name=name,
                                  reason=f"its manifests are {', '.join(sorted(there))}, ours {', '.join(sorted(local))}")
        for rel in sorted(there):
            # compared by digest, streamed: a manifest of a large bag can be bigger than any buffer
            found, _ = hash_object(store, object_key(name, rel))
            if found != _local_sha256(bag.path, rel):
                raise ReplicaConflict(target=result.location, name=name, reason=f"its {rel} differs from ours")
        return
    for _ in store.list(f"{name}/"):
        raise ReplicaConflict(target=result.location, name=name,
                              reason="objects are there but no manifest-sha256.txt, so it is not this bag")


@dataclass(frozen=True)
class _Job:
    rel: str
    path: Path
    sha256: str
    size: int
    archive: bool


def _tag_jobs(bag: Bag, rels: list[str]) -> Iterator[_Job]:
    tag_sha: dict[str, str] = {}
    if "sha256" in bag.tag_manifests:
        tag_sha = {line.path: line.digest for line in bag.iter_manifest("sha256", tag=True) if not line.error}
    for rel in rels:
        path = bag.path / rel
        digest = _local_sha256(bag.path, rel)
        if rel in tag_sha and tag_sha[rel] != digest:
            raise BagInvalid(f"{path}: does not match tagmanifest-sha256.txt (expected {tag_sha[rel]}, found {digest}); "
                             "validate the bag before replicating")
        yield _Job(rel, path, digest, _local_size(bag.path, rel), archive=False)


def _send_files(bag: Bag, store: Store, opts: ReplicateOptions, remote: RemoteRecord | None,
                result: ReplicaResult) -> None:
    tags = [rel for rel, _ in bag.iter_tag_files()]
    manifests = sorted(f"manifest-{a}.txt" for a in bag.payload_manifests)
    tagmanifests = sorted(f"tagmanifest-{a}.txt" for a in bag.tag_manifests)
    others = [t for t in tags if t not in manifests and t not in tagmanifests]
    stop = threading.Event()
    lock = threading.Lock()
    present = _listed(store, f"{bag.name}/")

    def run(job: _Job) -> None:
        if stop.is_set():
            return
        try:
            _send_one(store, result.name, job, opts, remote, result, lock, present)
        except PreserveError as exc:
            stop.set()
            with lock:
                result.failures.append(str(exc))
                result.errors.append(exc)

    def payload() -> Iterator[_Job]:
        for line in bag.iter_manifest("sha256"):
            if line.error:
                continue
            # one lstat (the file itself not followed) rather than a walk per file: refuse_links
            # refused every link in its folders, and the bytes sent are checked against the
            # manifest's digest, so a link swapped in later cannot pass for the file
            path = bag.path / line.path
            try:
                size = os.lstat(path).st_size
            except OSError as exc:
                raise BagInvalid(f"{path}: {exc.strerror or exc}; validate the bag before replicating") from None
            yield _Job(line.path, path, line.digest, size, archive=True)

    for group in (_tag_jobs(bag, manifests), payload(), _tag_jobs(bag, others), _tag_jobs(bag, tagmanifests)):
        for _ in ordered_map(run, group, workers=opts.workers):
            pass
        if stop.is_set():
            return


#: Past this many objects under a bag's name, their keys are not held in memory: each object gets a HEAD.
LISTED_KEYS_LIMIT = 200_000


def _listed(store: Store, prefix: str) -> set[str] | None:
    """The keys already under ``prefix`` in an S3 store (a listing returns a thousand per request,
    where a HEAD per object costs one request each); None where every object is to be HEADed
    (a directory store, where a HEAD is a stat, or more keys than LISTED_KEYS_LIMIT)."""
    if store.kind != "s3":
        return None
    keys: set[str] = set()
    for info in store.list(prefix):
        keys.add(info.key)
        if len(keys) > LISTED_KEYS_LIMIT:
            return None
    return keys


def _send_one(store: Store, name: str, job: _Job, opts: ReplicateOptions, remote: RemoteRecord | None,
              result: ReplicaResult, lock: threading.Lock, present: set[str] | None) -> None:
    key = object_key(name, job.rel)
    plan = remote.plan_for(job.rel, job.sha256) if remote else None
    # a key the listing did not show is absent: no HEAD for it (a first run sends one request per object)
    info = store.head(key) if present is None or key in present else None
    reason, plan, method = _verify(store, key, job, info, plan, opts)
    sent = 0
    resumed = 0
    if reason is None and info is not None:
        # the right bytes, but perhaps not kept as asked: another storage class is sent again
        reason = store.storage_mismatch(info, opts.put, archive=job.archive)
    set_retention = False
    refused: str | None = None
    if reason is not None:  # absent, different, unverifiable or in another storage class: (re)send it
        put = store.put_file(key, job.path, job.sha256, job.size, opts.put, archive=job.archive)
        sent, resumed = put.sent, put.resumed_parts
        # the upload's answer carries the ETag and checksum a HEAD would; a HEAD is still made
        # where the storage class or object lock asked for must be seen on the object itself
        kept_as_asked = not opts.put.lock_mode and not (opts.put.storage_class and job.archive)
        info = put.stored if put.stored is not None and kept_as_asked else store.head(key)
        after, plan, method = _verify(store, key, job, info, put.parts, opts, expected_etag=put.etag)
        if after is not None:
            raise RemoteError(f"{store.url}/{key}: after upload the object does not verify ({after}); "
                              "rerun to send it again")
        _check_kept(store, key, info, opts, job.archive)
    else:
        assert info is not None  # verified objects exist
        try:
            set_retention = store.ensure_retention(info, opts.put)
        except RemoteError as exc:
            if not info.lock_mode:
                raise  # an object left with no lock at all is not kept as asked: the copy is incomplete
            # locked already, verified, and the store refused a stronger or longer lock: the copy
            # is intact and protected; the refusal is reported with the store's reason
            refused = str(exc)
        if opts.put.progress is not None:
            opts.put.progress(job.size)
    with lock:
        result.objects += 1
        result.bytes += job.size
        result.verified += 1
        result.verified_by[job.rel] = method
        result.sent += sent
        result.resumed_parts += resumed
        result.retention_set += int(set_retention)
        if refused is not None:
            result.retention_refused.append(refused)
        if job.archive:
            result.payload_files += 1
            result.payload_bytes += job.size
        else:
            result.tag_files[job.rel] = {"size": job.size, "sha256": job.sha256}
        if reason is None and not sent:
            result.skipped += 1
        else:
            result.uploaded += 1
        if plan is not None:
            result.parts[job.rel] = plan
            result.part_sha256[job.rel] = job.sha256


def send_verified(store: Store, prefix: str, rel: str, path: Path, sha256: str, size: int, *, archive: bool,
                  opts: ReplicateOptions, remote: RemoteRecord | None, result: ReplicaResult,
                  lock: threading.Lock, present: set[str] | None) -> None:
    """Send one local file to ``prefix/rel`` unless it is there and verified, exactly as a bag's
    files are (resumed parts, storage class, object lock, what verified it in ``result``).

    The OCFL store's replication sends its objects' files through this, so that a store object
    and a bag are verified the same way on every kind of server."""
    _send_one(store, prefix, _Job(rel, path, sha256, size, archive), opts, remote, result, lock, present)


def listed_keys(store: Store, prefix: str) -> set[str] | None:
    """The keys already under ``prefix`` (None where each object is to be HEADed instead)."""
    return _listed(store, prefix)


def _check_kept(store: Store, key: str, info: Any, opts: ReplicateOptions, archive: bool) -> None:
    """After an upload: the object is in the storage class asked for, and locked as asked (a
    store that ignored the lock settings of the upload gets the retention set explicitly)."""
    if info is None:
        raise RemoteError(f"{store.url}/{key}: the object is missing right after its upload; rerun to send it again")
    mismatch = store.storage_mismatch(info, opts.put, archive=archive)
    if mismatch is not None:
        raise RemoteError(f"{store.url}/{key}: after upload the object is {mismatch}; the store does not keep "
                          "that storage class, so the replica is not what was asked for")
    store.ensure_retention(info, opts.put)


MIN_PART = 5 * 1024 * 1024


def _part_size(opts: ReplicateOptions, size: int) -> int:
    """The part size a multipart upload of ``size`` bytes uses with these options."""
    return max(opts.put.part_size, MIN_PART, -(-size // 10_000))


def _verify(store: Store, key: str, job: _Job, info: ObjectInfo | None, plan: PartPlan | None,
            opts: ReplicateOptions, *, expected_etag: str | None = None) -> tuple[str | None, PartPlan | None, str]:
    """``(None, plan, how)`` when the object holds the manifest's bytes (``plan``: the multipart
    plan it verified as, if any; ``how``: a :data:`VERIFIED_BY` entry), else ``(reason, None, "")``.

    ``expected_etag`` is the ETag of the bytes just sent (from the upload itself)."""
    reason = check_info(info, job.sha256, job.size, plan)
    if reason is None:
        return None, plan, "stored-sha256"
    if info is None or reason != "no-checksum":
        if plan is None and info is not None and info.checksum_sha256 and info.size == job.size \
                and job.size > MIN_PART:
            # perhaps sent in parts by an earlier run whose record was never written (killed after
            # this object completed): work the parts out locally rather than send it all again
            local = plan_parts(str(job.path), _part_size(opts, job.size))
            again = check_info(info, job.sha256, job.size, local)
            return (None, local, "stored-sha256") if again is None else (again, None, "")
        return reason, None, ""
    # the store keeps no checksum: its ETag, where it is an MD5 the server computed as it received
    # the bytes, vouches for them as a stored checksum would; only where it cannot are they read back
    etag = info.etag_md5
    if etag is not None:
        want, worked = _expected_etag(job, info, plan, opts, expected_etag)
        if want is not None and etag == want:
            return None, worked or plan, "etag-multipart" if "-" in etag else "etag-md5"
    found, size = hash_object(store, key)
    if size != job.size or found != job.sha256:
        return f"re-read gives sha256 {found} ({size} bytes), expected {job.sha256} ({job.size} bytes)", None, ""
    return None, plan, "re-read"


def _expected_etag(job: _Job, info: ObjectInfo, plan: PartPlan | None, opts: ReplicateOptions,
                   given: str | None) -> tuple[str | None, PartPlan | None]:
    """The ETag the manifest's bytes make in the form the store's ETag has (single part or
    ``-N`` parts), with the multipart plan when it had to be worked out; None when unknown.

    Taken, cheapest first, from the upload just made, from what preserve recorded when it sent
    the object (x-amz-meta-md5 of a single-part object, or the record's multipart ETag, both
    computed from bytes whose SHA-256 matched the manifest), else from the local file, read
    once for its SHA-256 and MD5s (and used only when its SHA-256 matches the manifest)."""
    assert info.etag_md5 is not None
    if given is not None:
        return given, plan
    _, _, count = info.etag_md5.partition("-")
    if not count:
        if info.md5_meta:
            return info.md5_meta.lower(), None
        sha, md5s, _ = _local_digests(job.path, None)
        return (md5s[0].hex(), None) if sha == job.sha256 else (None, None)
    if plan is not None and plan.etag:
        return plan.etag, plan
    part_size = plan.part_size if plan is not None else _part_size(opts, job.size)
    if -(-job.size // part_size) != int(count):
        return None, None  # sent with another part size than this run would use: the bytes decide
    sha, md5s, digests = _local_digests(job.path, part_size)
    if sha != job.sha256:
        return None, None
    etag = multipart_etag(md5s)
    return etag, PartPlan(part_size, digests, etag)


def _local_digests(path: Path, part_size: int | None) -> tuple[str, list[bytes], list[str]]:
    """One read of a local file: its SHA-256 (hex), and the MD5 (raw) and SHA-256 (hex) of each
    part of ``part_size`` bytes (of the whole file when None)."""
    whole = hashlib.sha256()
    md5s: list[bytes] = []
    digests: list[str] = []
    chunk = part_size or 8 * 1024 * 1024
    with open(path, "rb") as f:
        md5 = hashlib.md5(usedforsecurity=False)
        part = hashlib.sha256()
        filled = 0
        while data := f.read(chunk if part_size is None else part_size - filled):
            whole.update(data)
            md5.update(data)
            part.update(data)
            filled += len(data)
            if part_size is not None and filled == part_size:
                md5s.append(md5.digest())
                digests.append(part.hexdigest())
                md5, part, filled = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
        if filled or not md5s:
            md5s.append(md5.digest())
            digests.append(part.hexdigest())
    return whole.hexdigest(), md5s, digests


def _send_tar(bag: Bag, store: Store, opts: ReplicateOptions, remote: RemoteRecord | None,
              result: ReplicaResult) -> None:
    key = tar_key(bag.name)
    if remote is not None and remote.complete and remote.tar_sha256:
        plan = remote.plan_for("", remote.tar_sha256)
        info = store.head(key)
        how = _tar_verified(store, key, info, remote.tar_sha256, info.size if info else 0, plan,
                            plan.etag if plan is not None else None)
        if info is not None and how is not None and store.storage_mismatch(info, opts.put, archive=True) is None:
            result.retention_set += int(store.ensure_retention(info, opts.put))
            result.objects, result.bytes, result.skipped, result.verified = 1, info.size, 1, 1
            result.tar_sha256 = remote.tar_sha256
            result.verified_by[key] = how
            if plan:
                result.parts[""] = plan
                result.part_sha256[""] = remote.tar_sha256
            if opts.put.progress is not None:
                opts.put.progress(info.size)
            return
    # every file is checked against its manifest digest as it streams into the tar; a large
    # bag's digests are looked up on disk (verified.py), not held in a dict of every path
    with ManifestDigests() as sha_of:
        for line in bag.iter_manifest("sha256"):
            if not line.error:
                sha_of[line.path] = line.digest
        put, sha = store.put_stream(key, tar_chunks(bag.path, bag.name, sha_of), opts.put,
                                    expected_size=tar_size(bag.path, bag.name))
    info = store.head(key)
    how = _tar_verified(store, key, info, sha, put.size, put.parts, put.etag)
    if how is None:
        raise RemoteError(f"{store.url}/{key}: after upload the object does not verify (its checksum, ETag or "
                          f"re-read bytes are not those of sha256 {sha}); rerun to send it again")
    _check_kept(store, key, info, opts, True)
    result.objects, result.bytes, result.sent, result.uploaded, result.verified = 1, put.size, put.sent, 1, 1
    result.tar_sha256 = sha
    result.verified_by[key] = how
    if put.parts:
        result.parts[""] = put.parts
        result.part_sha256[""] = sha


def _tar_verified(store: Store, key: str, info: ObjectInfo | None, sha: str, size: int, plan: PartPlan | None,
                  etag: str | None) -> str | None:
    """How the tar object verified (a :data:`VERIFIED_BY` entry), or None when it does not:
    the stored checksum, else the ETag preserve recorded for it, else a re-read."""
    reason = check_info(info, sha, size, plan)
    if reason is None:
        return "stored-sha256"
    if info is None or reason != "no-checksum":
        return None
    want = etag or info.md5_meta
    if info.etag_md5 is not None and want is not None and info.etag_md5 == want.lower():
        return "etag-multipart" if "-" in want else "etag-md5"
    found, got = hash_object(store, key)
    return "re-read" if (found, got) == (sha, size) else None

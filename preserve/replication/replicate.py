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
4. every object is checked after upload (HEAD with checksum mode, or a streamed re-hash where the
   store keeps no checksum); the replica record is written beside: every tag file with its size
   and SHA-256, the payload manifest's digest with the payload's count and bytes, multipart plans;
5. the replica counts as complete only when every object verified; it is recorded either way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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
from preserve.safefs import LINK_REASON, LinkRefused, lstat_beneath, refusal
from preserve.stores.base import PartPlan, PutOptions, Store

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
                             "retention_set": self.retention_set} if self.lock_mode else None),
            "multipart": {k: {"part_size": p.part_size, "parts": p.digests, "composite": p.composite}
                          for k, p in sorted(self.parts.items())},
        }

    def to_dict(self) -> dict[str, Any]:
        skip = ("parts", "place", "origin", "part_sha256", "errors", "tag_files")
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        d.update(bag=str(self.bag), outcome=self.outcome, place=self.place.to_dict(),
                 multipart=self.detail()["multipart"])
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
    try:
        if opts.layout == "tar":
            _send_tar(bag, store, opts, remote, result)
        else:
            _send_files(bag, store, opts, remote, result)
        result.aborted_uploads += store.abort_own_uploads(tar_key(name) if opts.layout == "tar" else f"{name}/")
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
                                             "parts": p.digests, "composite": p.composite}
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
            raise BagInvalid(f"{here}: {exc.strerror or exc}; nothing was replicated") from None
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

    def run(job: _Job) -> None:
        if stop.is_set():
            return
        try:
            _send_one(store, result.name, job, opts, remote, result, lock)
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


def _send_one(store: Store, name: str, job: _Job, opts: ReplicateOptions, remote: RemoteRecord | None,
              result: ReplicaResult, lock: threading.Lock) -> None:
    key = object_key(name, job.rel)
    plan = remote.plan_for(job.rel, job.sha256) if remote else None
    info = store.head(key)
    reason = _verify(store, key, job, info, plan, opts)
    sent = 0
    resumed = 0
    if isinstance(reason, PartPlan):
        plan, reason = reason, None
    if reason is None and info is not None:
        # the right bytes, but perhaps not kept as asked: another storage class is sent again
        reason = store.storage_mismatch(info, opts.put, archive=job.archive)
    set_retention = False
    if reason is not None:  # absent, different, unverifiable or in another storage class: (re)send it
        put = store.put_file(key, job.path, job.sha256, job.size, opts.put, archive=job.archive)
        sent, resumed, plan = put.sent, put.resumed_parts, put.parts
        info = store.head(key)
        after = _verify(store, key, job, info, plan, opts, after_upload=True)
        if isinstance(after, str):
            raise RemoteError(f"{store.url}/{key}: after upload the object does not verify ({after}); "
                              "rerun to send it again")
        _check_kept(store, key, info, opts, job.archive)
    else:
        assert info is not None  # verified objects exist
        set_retention = store.ensure_retention(info, opts.put)
        if opts.put.progress is not None:
            opts.put.progress(job.size)
    with lock:
        result.objects += 1
        result.bytes += job.size
        result.verified += 1
        result.sent += sent
        result.resumed_parts += resumed
        result.retention_set += int(set_retention)
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


def _verify(store: Store, key: str, job: _Job, info: Any, plan: PartPlan | None, opts: ReplicateOptions,
            after_upload: bool = False) -> str | PartPlan | None:
    """None when the object verifies; a PartPlan when it verifies as that multipart object; else
    the reason it does not."""
    reason = check_info(info, job.sha256, job.size, plan)
    min_part = 5 * 1024 * 1024
    if reason is not None and plan is None and info is not None and info.checksum_sha256 \
            and info.size == job.size and job.size > min_part and reason != "no-checksum":
        # perhaps sent in parts by an earlier run whose record was never written (killed after
        # this object completed): work the parts out locally rather than send it all again
        local = plan_parts(str(job.path), max(opts.put.part_size, min_part, -(-job.size // 10_000)))
        again = check_info(info, job.sha256, job.size, local)
        return local if again is None else again
    if reason == "no-checksum":
        # the store keeps no checksum (a file system, some S3-compatible servers): re-read it
        found, size = hash_object(store, key)
        if size != job.size or found != job.sha256:
            return f"re-read gives sha256 {found} ({size} bytes), expected {job.sha256} ({job.size} bytes)"
        return plan if (plan is not None and after_upload) else None
    if reason is None and plan is not None:
        return plan
    return reason


def _send_tar(bag: Bag, store: Store, opts: ReplicateOptions, remote: RemoteRecord | None,
              result: ReplicaResult) -> None:
    key = tar_key(bag.name)
    if remote is not None and remote.complete and remote.tar_sha256:
        plan = remote.plan_for("", remote.tar_sha256)
        info = store.head(key)
        if info is not None and check_info(info, remote.tar_sha256, info.size, plan) in (None, "no-checksum"):
            found = remote.tar_sha256
            if check_info(info, remote.tar_sha256, info.size, plan) == "no-checksum":
                found, _ = hash_object(store, key)
            if found == remote.tar_sha256 and store.storage_mismatch(info, opts.put, archive=True) is None:
                result.retention_set += int(store.ensure_retention(info, opts.put))
                result.objects, result.bytes, result.skipped, result.verified = 1, info.size, 1, 1
                result.tar_sha256 = remote.tar_sha256
                if plan:
                    result.parts[""] = plan
                    result.part_sha256[""] = remote.tar_sha256
                if opts.put.progress is not None:
                    opts.put.progress(info.size)
                return
    sha_of = {line.path: line.digest for line in bag.iter_manifest("sha256") if not line.error}
    put, sha = store.put_stream(key, tar_chunks(bag.path, bag.name, sha_of), opts.put,
                                expected_size=tar_size(bag.path, bag.name))
    info = store.head(key)
    reason = check_info(info, sha, put.size, put.parts)
    if reason == "no-checksum":
        found, size = hash_object(store, key)
        reason = None if (found, size) == (sha, put.size) else f"re-read gives sha256 {found}, expected {sha}"
    if reason is not None:
        raise RemoteError(f"{store.url}/{key}: after upload the object does not verify ({reason}); rerun to send it again")
    _check_kept(store, key, info, opts, True)
    result.objects, result.bytes, result.sent, result.uploaded, result.verified = 1, put.size, put.sent, 1, 1
    result.tar_sha256 = sha
    if put.parts:
        result.parts[""] = put.parts
        result.part_sha256[""] = sha

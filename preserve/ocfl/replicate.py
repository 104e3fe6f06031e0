"""Copy a store (or some of its objects) to a replica store: only what the replica lacks, verified.

The replica is itself an OCFL storage root at the target (``s3://bucket/prefix`` or a folder): the
same keys, so that a copy fetched with any tool validates. Version folders never change once
written, so for each object only the versions newer than the replica's own root inventory are
sent, in order, each version's content before its inventory; then the object's replica record
(:mod:`preserve.ocfl.replica`), and last the root inventory and its sidecar, so a replica is never
ahead of its content. A replica whose inventory is not a prefix of the local object's history (a
different object, or one purged on one side) is refused, naming it, and nothing of it is sent.

Every file is read once before it is sent: its sha512 must be the inventory's (a damaged local
file is never replicated; the run fails naming it) and its sha256 is taken in the same read. It
is then sent exactly as a bag's files are (:func:`preserve.replication.replicate.send_verified`):
the store verifies the sha256 as it receives it; after upload (and for a file already there) the
store's own SHA-256 checksum, on a server keeping none its ETag, else a re-read, vouches for
it; parts of an interrupted upload are resumed. A rerun after an interruption sends only what is
missing: files of a half-sent version that arrived are found there and verified, not sent again.

A purge changes written versions and is not carried (the replica's history no longer matches:
purge the replica too).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.errors import (
    PreserveError,
    RemoteError,
    ReplicaConflict,
    UsageError,
    VerificationFailed,
)
from preserve.fixity import hash_file, ordered_map
from preserve.ocfl.inventory import SIDECAR, Inventory, read_inventory, version_number
from preserve.ocfl.layout import (
    LAYOUT_FILE,
    OBJECT_DECLARATION,
    ROOT_DECLARATION,
    SPEC_TEXT_NAME,
    StorageRoot,
    find_objects,
    open_root,
)
from preserve.ocfl.replica import ObjectRecord, read_record, record_key
from preserve.ocfl.replica import read_inventory as read_remote_inventory
from preserve.replication.layout import hash_object
from preserve.replication.replicate import (
    ReplicaLedger,
    ReplicaResult,
    ReplicateOptions,
    listed_keys,
    send_verified,
)
from preserve.safefs import LinkRefused, refusal
from preserve.stores import PutOptions, Store, open_store


@dataclass
class StoreReplication:
    """What one run did: each object's result (as a bag's, for the ledger) and the totals."""

    target: str
    objects: int = 0
    versions_sent: list[str] = field(default_factory=list)  # "<object id> vN"
    files_sent: int = 0
    bytes_sent: int = 0
    up_to_date: int = 0
    results: list[ReplicaResult] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # object path -> object id
    failures: list[str] = field(default_factory=list)
    errors: list[PreserveError] = field(default_factory=list, repr=False)

    @property
    def complete(self) -> bool:
        """Every object is there and verified."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "objects": self.objects, "up_to_date": self.up_to_date,
                "versions_sent": self.versions_sent, "files_sent": self.files_sent, "bytes_sent": self.bytes_sent,
                "failures": self.failures,
                "replicas": [{"object": self.ids.get(r.name, ""), "path": r.name, "location": r.location,
                              "outcome": r.outcome, "files": r.objects, "bytes": r.bytes, "uploaded": r.uploaded,
                              "skipped": r.skipped, "verified_by": r.verified_by_summary()} for r in self.results]}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_store(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a storage root or an object's folder (replicated by this module, not as a bag)."""
    folder = Path(path)
    return (folder / ROOT_DECLARATION).is_file() or (folder / OBJECT_DECLARATION).is_file()


def source_objects(path: str | os.PathLike[str]) -> tuple[StorageRoot, list[Path]] | None:
    """The storage root and the objects to replicate from ``path``: a storage root (every object)
    or one object's folder inside one (that object). None when ``path`` is neither (a bag)."""
    folder = Path(os.path.abspath(path))
    if (folder / ROOT_DECLARATION).is_file():
        root = open_root(folder)
        return root, find_objects(root)
    if not (folder / OBJECT_DECLARATION).is_file():
        return None
    for above in folder.parents:
        if (above / ROOT_DECLARATION).is_file():
            return open_root(above), [folder]
    raise UsageError(f"{folder}: an OCFL object outside any storage root; replicate the storage root it "
                     "belongs to (a replica is a storage root, so that it can be restored and audited)")


def replicate_store(source: str | os.PathLike[str], target: str | Store, options: ReplicateOptions | None = None, *,
                    ledger: ReplicaLedger | None = None,
                    on_object: Callable[[ReplicaResult], None] | None = None) -> StoreReplication:
    """Send what the replica at ``target`` lacks of the storage root or object at ``source``
    (see the module docstring); each object is recorded in ``ledger`` as a replica of its own.

    An object that fails (:class:`ReplicaConflict`, :class:`VerificationFailed`,
    :class:`RemoteError`...) does not stop the others: its error is in ``errors``, and
    ``complete`` is False. The storage root's own files failing stops the run (raised)."""
    found = source_objects(source)
    if found is None:
        raise UsageError(f"{source}: not an OCFL storage root or object")
    root, objects = found
    opts = options or ReplicateOptions()
    if opts.layout != "files":
        raise UsageError(f"{source}: a store is replicated file by file (its versions are sent once each); "
                         "--serialize does not apply to it")
    store = open_store(target) if isinstance(target, str) else target
    result = StoreReplication(target=store.url)
    try:
        _send_root_files(root, store, opts)
        for obj in objects:
            try:
                one = replicate_object(root, obj, store, opts, ledger=ledger, totals=result)
            except PreserveError as exc:
                result.errors.append(exc)
                result.failures.append(str(exc))
                continue
            if on_object is not None:
                on_object(one)
    finally:
        store.finish_uploads()
    return result


def _send_root_files(root: StorageRoot, store: Store, opts: ReplicateOptions) -> None:
    """The storage root's own files, declaration last. A few hundred bytes each: each one there
    is read back and compared, each one missing or different is sent and read back."""
    config = f"extensions/{root.layout}/config.json"
    put = dataclasses.replace(opts.put, progress=None, storage_class=None)
    for rel in (SPEC_TEXT_NAME, LAYOUT_FILE, config, ROOT_DECLARATION):
        path = root.path / rel
        if not path.is_file():
            continue
        sha256 = hash_file(rel, ["sha256"], root=root.path)["sha256"]
        size = path.stat().st_size
        if store.head(rel) is not None and hash_object(store, rel) == (sha256, size):
            continue
        store.put_file(rel, path, sha256, size, put, archive=False)
        if hash_object(store, rel) != (sha256, size):
            raise RemoteError(f"{store.url.rstrip('/')}/{rel}: after upload the object does not read back as sent; "
                              "rerun to send it again")


def _tag_options(opts: ReplicateOptions) -> ReplicateOptions:
    """Small files other tools read first (declarations, inventories) keep no progress count."""
    return dataclasses.replace(opts, put=dataclasses.replace(opts.put, progress=None))


@dataclass(frozen=True)
class _File:
    rel: str  # object-relative path
    path: Path
    sha512: str | None  # what the inventory says (content files), None for the rest
    obj: Path  # the object's root: files are read below it with no link followed


def replicate_object(root: StorageRoot, obj: Path, store: Store, opts: ReplicateOptions, *,
                     ledger: ReplicaLedger | None = None, totals: StoreReplication | None = None) -> ReplicaResult:
    """Replicate one object (see the module docstring); returns its result, recorded in ``ledger``."""
    prefix = obj.relative_to(root.path).as_posix()
    inventory, root_files = _read_root_inventory(obj)
    object_id = str(inventory["id"])
    head = str(inventory["head"])
    result = ReplicaResult(bag=obj, name=prefix, target=store.url, location=f"{store.url.rstrip('/')}/{prefix}",
                           layout="ocfl", started=_now(), target_name=opts.target_name, place=opts.place,
                           origin=opts.origin, storage_class=opts.put.storage_class, lock_mode=opts.put.lock_mode,
                           retain_until=opts.put.retain_until if opts.put.lock_mode else None)
    totals = totals if totals is not None else StoreReplication(target=store.url)
    totals.objects += 1
    error: PreserveError | None = None
    sent_versions: list[str] = []
    try:
        if opts.abort_incomplete:
            result.aborted_uploads += store.abort_own_uploads(f"{prefix}/")
        have, sidecar_ok = _replica_head(store, prefix, obj, inventory)
        record = read_record(store, prefix)
        if record is None or record.object_id != object_id or version_number(record.head) < have:
            # no record (or one behind the inventory): every version is checked again, nothing
            # already there and verified is sent twice, and the record is written whole
            record = ObjectRecord(object_id=object_id)
            have_sent = 0
        else:
            have_sent = have
        if have_sent == version_number(head) and have == have_sent and sidecar_ok:
            totals.up_to_date += 1
            result.objects = len(record.files) + len(root_files)
            result.bytes = sum(int(e.get("size") or 0) for e in record.files.values()) + sum(map(len, root_files.values()))
            result.complete = True
        else:
            sent_versions = _send_versions(store, obj, prefix, inventory, have_sent, record, opts, result)
            record.head, record.updated = head, _now()
            store.put_bytes(record_key(prefix), record.to_json(), _record_options(opts))
            _send_root_inventory(store, obj, prefix, head, root_files, opts, result)
            # the ledger counts the whole replica of the object, not only this run's files
            result.objects = len(record.files) + len(root_files)
            result.bytes = sum(int(e.get("size") or 0) for e in record.files.values()) + sum(map(len, root_files.values()))
            result.complete = not result.failures
            if result.complete:
                # every file is there: unfinished uploads left under the object are stale
                result.aborted_uploads += store.abort_own_uploads(f"{prefix}/")
    except PreserveError as exc:
        error = exc
        if str(exc) not in result.failures:
            result.failures.insert(0, str(exc))
    result.ended = _now()
    with_errors = error is not None or bool(result.failures)
    result.complete = result.complete and not with_errors
    totals.results.append(result)
    totals.ids[prefix] = object_id
    totals.versions_sent += [f"{object_id} {v}" for v in sent_versions]
    totals.files_sent += result.uploaded
    totals.bytes_sent += result.sent
    if ledger is not None:
        detail = result.detail()
        detail.update(object_id=object_id, head=head, versions_sent=sent_versions)
        if not sent_versions and result.complete:
            detail["verification"] = f"the replica's inventory names {head}, as here: its versions were verified when sent"
        result.ledger_id = ledger.record_replica(str(obj), store.url, location=result.location, started=result.started,
                                                 ended=result.ended, objects=result.objects, bytes=result.bytes,
                                                 outcome=result.outcome, identifier=object_id, site=opts.place.site,
                                                 detail=detail)
    if error is not None:
        raise error
    if result.failures:
        raise RemoteError(f"{result.location}: the replica of {object_id} is not complete: {result.failures[0]}"
                          + (f" (and {len(result.failures) - 1} more)" if len(result.failures) > 1 else ""))
    return result


def _record_options(opts: ReplicateOptions) -> PutOptions:
    # the record is rewritten as versions arrive: no retention (it could not be replaced), default class
    return dataclasses.replace(opts.put, progress=None, lock_mode=None, retain_until=None, storage_class=None)


def _replica_head(store: Store, prefix: str, obj: Path, inventory: Inventory) -> tuple[int, bool]:
    """The replica's head version number (0 when it holds no inventory), after checking that its
    inventory is one this object had: the same id, and the same bytes as that version's copy here;
    and whether its sidecar matches it (not after a run killed between the two)."""
    remote = read_remote_inventory(store, prefix)
    if remote is None:
        return 0, True
    where = f"{store.url.rstrip('/')}/{prefix}"
    if not remote.inventory:
        raise ReplicaConflict(f"{where}: the replica's {remote.problem}; audit it with "
                              "`preserve audit --tier remote-full` and repair it before replicating again "
                              "(nothing was sent)")
    if remote.inventory.get("id") != inventory["id"]:
        raise ReplicaConflict(f"{where}: the replica holds object {remote.inventory.get('id')}, not "
                              f"{inventory['id']}; choose another target (nothing was sent)")
    have = version_number(str(remote.inventory.get("head", "")))
    if have > version_number(str(inventory["head"])):
        raise ReplicaConflict(f"{where}: the replica's head is v{have}, newer than {inventory['head']} here; "
                              "was this store restored from an older copy? (nothing was sent)")
    mine = obj / f"v{have}" / "inventory.json"
    try:
        same = hashlib.sha512(mine.read_bytes()).hexdigest() == remote.sha512
    except OSError:
        same = False
    if not same:
        raise ReplicaConflict(f"{where}: the replica's inventory of v{have} differs from this object's (purged on "
                              "one side, or another history); purge the replica the same way or choose another "
                              "target (nothing was sent)")
    # the inventory is ours; a sidecar that does not match it is one a killed run did not replace yet
    return have, remote.problem is None


def _version_files(obj: Path, inventory: Inventory, version: str) -> Iterator[_File]:
    """The files a version folder holds: its content (with the inventory's digest) in path order,
    then its inventory and sidecar."""
    content: dict[str, str] = {}
    for digest, paths in inventory["manifest"].items():
        for p in paths:
            if p.startswith(f"{version}/"):
                content[p] = str(digest).lower()
    for rel in sorted(content):
        yield _File(rel, obj / rel, content[rel], obj)
    for name in ("inventory.json", SIDECAR):
        yield _File(f"{version}/{name}", obj / version / name, None, obj)


def _send_versions(store: Store, obj: Path, prefix: str, inventory: Inventory, have: int, record: ObjectRecord,
                   opts: ReplicateOptions, result: ReplicaResult) -> list[str]:
    """Send the object's declaration, then each version newer than ``have`` (content, then its
    inventory), then the object's own extensions; the files go into ``record``."""
    lock = threading.Lock()
    present = listed_keys(store, f"{prefix}/")
    plans = record.plans()
    stop = threading.Event()

    def send(item: _File) -> None:
        if stop.is_set():
            return
        try:
            sha256 = _checked_sha256(item)
            size = item.path.stat().st_size
            # payload (vN/content/data/...) may go to an archive class; tag files stay readable
            parts = item.rel.split("/", 2)
            content = item.sha512 is not None and len(parts) == 3 and parts[2].startswith("data/")
            send_verified(store, prefix, item.rel, item.path, sha256, size, archive=content,
                          opts=opts if item.sha512 is not None else _tag_options(opts), remote=plans,
                          result=result, lock=lock, present=present)
        except OSError as exc:
            stop.set()
            with lock:
                result.failures.append(f"{item.path}: cannot be read ({exc.strerror or exc})")
            return
        except PreserveError as exc:
            stop.set()
            with lock:
                result.failures.append(str(exc))
                result.errors.append(exc)
            return
        with lock:
            record.files[item.rel] = {"size": size, "sha256": sha256}

    def run(items: Iterator[_File]) -> None:
        for _ in ordered_map(send, items, workers=opts.workers):
            pass
        if stop.is_set():
            raise result.errors[0] if result.errors else RemoteError(result.failures[0])

    run(iter([_File(OBJECT_DECLARATION, obj / OBJECT_DECLARATION, None, obj)]))
    sent: list[str] = []
    for version in sorted(inventory["versions"], key=version_number):
        if version_number(version) <= have:
            continue
        files = list(_version_files(obj, inventory, version))
        # content first, the version's inventory after it: a version folder is whole before it is named
        run(f for f in files if f.sha512 is not None)
        run(f for f in files if f.sha512 is None)
        sent.append(version)
    extensions = obj / "extensions"
    if extensions.is_dir():
        run(_File(p.relative_to(obj).as_posix(), p, None, obj) for p in sorted(extensions.rglob("*")) if p.is_file())
    for rel, plan in result.parts.items():
        record.multipart[rel] = {"sha256": result.part_sha256.get(rel, ""), "part_size": plan.part_size,
                                 "parts": plan.digests, "composite": plan.composite, "etag": plan.etag}
    return sent


def _checked_sha256(item: _File) -> str:
    """The file's sha256, read once; a content file must have the inventory's sha512 too."""
    algorithms = ["sha256", "sha512"] if item.sha512 is not None else ["sha256"]
    try:
        found = hash_file(item.rel, algorithms, root=item.obj)
    except LinkRefused as exc:
        raise refusal(exc) from None
    if item.sha512 is not None and found["sha512"] != item.sha512:
        raise VerificationFailed(f"{item.path}: its sha512 is {found['sha512']}, the inventory says {item.sha512}; "
                                 "the local object is damaged and was not replicated: run `preserve store validate` "
                                 "and restore it from a good replica")
    return found["sha256"]


def _read_root_inventory(obj: Path) -> tuple[Inventory, dict[str, bytes]]:
    """The object's root inventory, checked against its sidecar, and the bytes of both as read
    now: what is sent last is exactly this pair, whatever a writer does meanwhile."""
    try:
        files = {name: (obj / name).read_bytes() for name in ("inventory.json", SIDECAR)}
    except OSError:
        return read_inventory(obj), {}  # read_inventory names the file and the problem
    words = files[SIDECAR].decode("ascii", "replace").split()
    if not words or words[0].lower() != hashlib.sha512(files["inventory.json"]).hexdigest():
        return read_inventory(obj), {}  # changed between the two reads, or damaged: read it the checked way
    try:
        inventory = json.loads(files["inventory.json"])
    except ValueError:
        return read_inventory(obj), {}
    return inventory, files


def _send_root_inventory(store: Store, obj: Path, prefix: str, head: str, expected: dict[str, bytes],
                         opts: ReplicateOptions, result: ReplicaResult) -> None:
    """The root inventory and then its sidecar, last: the pair read when the object's replication
    began, sent from the head version's copy (the same bytes, in a folder that never changes) or
    from the root while it still holds them. A writer that replaced them meanwhile stops the
    object's replication, to be run again: a newer inventory must not arrive before its version."""
    lock = threading.Lock()
    tags = _tag_options(opts)
    for name in ("inventory.json", SIDECAR):
        source = next((p for p in (obj / head / name, obj / name) if _holds(p, expected.get(name))), None)
        if source is None:
            raise RemoteError(f"{obj / name}: changed while the object was replicated (a new version was written); "
                              "run the replication again to send it")
        sha256 = hashlib.sha256(expected[name]).hexdigest()
        send_verified(store, prefix, name, source, sha256, len(expected[name]), archive=False, opts=tags,
                      remote=None, result=result, lock=lock, present=None)


def _holds(path: Path, data: bytes | None) -> bool:
    try:
        return data is not None and path.read_bytes() == data
    except OSError:
        return False

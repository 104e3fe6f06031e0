"""Auditing a replicated store object where it is, as a bag's replica is audited.

The replica's root inventory (checked against its sidecar) says what the object holds: every
version's inventory and sidecar, and every content file of the manifest. Both tiers list the
object's keys once: a file the inventory names and the replica lacks is ``missing``, a file in a
content folder the manifest does not name is ``unlisted``, a link or special file is ``altered``
(never followed); each version's inventory is read (a few kB) and checked against its sidecar.

``remote-metadata``  no content byte is read: each content file's HEAD is compared with the
                     replica record (:mod:`preserve.ocfl.replica`): size, and the store's own
                     SHA-256 checksum against the sha256 preserve took when it sent the file (for
                     a file sent in parts, the composite of the recorded part digests). On a
                     server that keeps no checksum, the sha256 metadata and the ETag (the MD5 the
                     server computed as it received the bytes) against what preserve sent, with a
                     note that the bytes at rest were not re-hashed; a directory replica gets
                     presence and size, and the note says so.
``remote-full``      every content file is streamed and its sha512 compared with the inventory's
                     manifest (nothing is written to disk); files in an archive storage class are
                     pending, and their restore is requested when asked.

The result is a :class:`~preserve.replication.remote_audit.RemoteAuditResult` whose ledger record
names the object: identifier = the object id, location = the replica's object folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from preserve.bag.paths import unsafe_reason
from preserve.errors import (
    ChecksumSettingRejected,
    ObjectArchived,
    RemoteError,
    StorageError,
    UnsafePath,
)
from preserve.fixity import hash_stream, ordered_map
from preserve.ocfl.inventory import SIDECAR, version_number
from preserve.ocfl.layout import OBJECT_DECLARATION
from preserve.ocfl.replica import ObjectRecord, read_inventory, read_record, record_key
from preserve.replication.layout import check_info, read_bytes
from preserve.replication.remote_audit import REMOTE_TIERS, RemoteAuditResult, RemoteFinding
from preserve.stores.base import ObjectInfo, Store


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _damaged(rel: str, damage: str) -> RemoteFinding:
    return RemoteFinding(rel, "altered", f"not a stored object: {damage}; a link or special file in a replica is "
                                         "damage and is never followed (replicate the store again to replace it)",
                         code="not-an-object")


def audit_replica_object(store: Store, prefix: str, tier: str, *, request_restore: bool = False,
                         restore_days: int = 7, workers: int = 4,
                         progress: Callable[[int], None] | None = None) -> RemoteAuditResult:
    """Audit the object replicated at ``prefix`` of ``store`` (the replica's storage root) at ``tier``."""
    if tier not in REMOTE_TIERS:
        raise ValueError(f"tier must be one of {REMOTE_TIERS}")
    result = RemoteAuditResult(location=f"{store.url.rstrip('/')}/{prefix}", name=prefix, tier=tier, started=_now())
    remote = read_inventory(store, prefix)
    if remote is None:
        result.findings.append(RemoteFinding("inventory.json", "missing", "the object's inventory is not in the "
                                             "replica, so nothing of it can be checked; replicate the store again",
                                             code="E034"))
    elif remote.problem is not None:
        result.findings.append(RemoteFinding("inventory.json", "altered", f"{remote.problem}; the replica's "
                                             "inventory cannot be trusted: repair it from another copy",
                                             code="E060" if "E060" in remote.problem else "E058"))
    else:
        inventory = remote.inventory
        result.identifier = str(inventory.get("id") or prefix)
        head = inventory.get("head")
        result.version = head if isinstance(head, str) and version_number(head) else None
        record = read_record(store, prefix)
        _audit(store, prefix, inventory, record, tier, result, request_restore, restore_days, workers, progress)
    result.ended = _now()
    return result


def _audit(store: Store, prefix: str, inventory: dict[str, Any], record: ObjectRecord | None, tier: str,
           result: RemoteAuditResult, request_restore: bool, restore_days: int, workers: int,
           progress: Callable[[int], None] | None) -> None:
    manifest: dict[str, str] = {}
    for digest, paths in (inventory.get("manifest") or {}).items():
        for p in paths if isinstance(paths, list) else []:
            if isinstance(p, str) and not unsafe_reason(p):
                manifest[p] = str(digest).lower()
    versions = sorted((v for v in (inventory.get("versions") or {}) if version_number(v)), key=version_number)
    listed: dict[str, ObjectInfo] = {o.key[len(prefix) + 1:]: o for o in store.list(f"{prefix}/")}
    content_dir = str(inventory.get("contentDirectory") or "content")
    for rel, info in sorted(listed.items()):
        if info.damage is not None:
            result.findings.append(_damaged(rel, info.damage))
        elif rel.count("/") >= 2 and rel.split("/")[1] == content_dir and rel not in manifest:
            result.findings.append(RemoteFinding(rel, "unlisted", "in a content folder of the replica but not in the "
                                                 "inventory's manifest", code="E023"))
    expected = [OBJECT_DECLARATION, *(f"{v}/{name}" for v in versions for name in ("inventory.json", SIDECAR))]
    for rel in expected:
        if rel not in listed:
            result.findings.append(RemoteFinding(rel, "missing", "the inventory's history needs it and the replica "
                                                 "lacks it", code="E010" if rel == OBJECT_DECLARATION else "E034"))
    for v in versions:
        _check_version_inventory(store, prefix, v, listed, result)
    if record is None and tier == "remote-metadata":
        result.findings.append(RemoteFinding(record_key(prefix), "missing", "the replica record is not there, so "
                                             "no stored checksum can be compared; replicate the store again to write "
                                             "it, or audit with --tier remote-full", code="record-missing"))
        return
    if record is None:
        result.notes.append(f"no replica record at {record_key(prefix)}: every file was re-hashed against the "
                            "inventory all the same; replicate the store again to write the record")
    _check_content(store, prefix, manifest, listed, record, tier, result, request_restore, restore_days, workers,
                   progress)


def _check_version_inventory(store: Store, prefix: str, version: str, listed: dict[str, ObjectInfo],
                             result: RemoteAuditResult) -> None:
    """A version's inventory must match its own sidecar (a few kB read)."""
    rel, side = f"{version}/inventory.json", f"{version}/{SIDECAR}"
    if rel not in listed or side not in listed or listed[rel].damage or listed[side].damage:
        return  # reported above
    try:
        data = read_bytes(store, f"{prefix}/{rel}")
        words = read_bytes(store, f"{prefix}/{side}").decode("ascii", "replace").split()
    except (RemoteError, StorageError, UnsafePath) as exc:
        result.findings.append(RemoteFinding(rel, "unreadable", str(exc)))
        return
    found = hashlib.sha512(data).hexdigest()
    if not words or words[0].lower() != found:
        result.findings.append(RemoteFinding(rel, "altered", f"does not match its digest in {SIDECAR}", code="E060",
                                             expected=words[0] if words else None, found=found))


def _check_content(store: Store, prefix: str, manifest: dict[str, str], listed: dict[str, ObjectInfo],
                   record: ObjectRecord | None, tier: str, result: RemoteAuditResult, request_restore: bool,
                   restore_days: int, workers: int, progress: Callable[[int], None] | None) -> None:
    lock = threading.Lock()
    plans = record.plans() if record is not None else None
    no_checksum = [0, 0]  # files with no stored checksum; of them, those whose ETag was compared

    def metadata(rel: str, info: ObjectInfo) -> list[RemoteFinding]:
        entry = record.files.get(rel) if record is not None else None
        if entry is None or not isinstance(entry.get("sha256"), str):
            return [RemoteFinding(rel, "invalid", "not in the replica record, so its stored checksum cannot be "
                                  "compared; audit it with --tier remote-full", code="unverifiable")]
        sha, size = str(entry["sha256"]), int(entry.get("size") or 0)
        plan = plans.plan_for(rel, sha) if plans is not None else None
        reason = check_info(info, sha, size, plan)
        with lock:
            result.files += 1
            result.bytes += info.size
        if reason is None:
            return []
        if reason == "no-checksum" and store.kind == "s3":
            if info.sha256_meta is None:
                return [RemoteFinding(rel, "altered", "the object has no stored SHA-256 checksum and no sha256 "
                                      "metadata; it was not written by preserve (replaced?)", expected=sha)]
            etag = info.etag_md5
            want = (plan.etag if plan is not None else None) if etag and "-" in etag else info.md5_meta
            if etag is not None and want and etag != want.lower():
                return [RemoteFinding(rel, "altered", "the ETag (the MD5 the server computed of the bytes it received) "
                                      "is not the MD5 of the bytes preserve sent; the object was replaced or damaged",
                                      code="etag", expected=want.lower(), found=etag)]
            with lock:
                no_checksum[0] += 1
                no_checksum[1] += int(etag is not None and bool(want))
            return []
        if reason == "no-checksum":
            with lock:
                no_checksum[0] += 1
            return []
        return [RemoteFinding(rel, "altered", f"the stored object does not match the replica record ({reason})",
                              expected=sha, found=info.checksum_sha256)]

    def full(rel: str, info: ObjectInfo) -> list[RemoteFinding]:
        key = f"{prefix}/{rel}"
        if info.archived:
            if request_restore and not info.restore_ongoing:
                requested = store.request_restore(key, restore_days)
                with lock:
                    result.restore_requested += int(requested)
            with lock:
                result.pending.append(rel)
            return []
        with store.get(key) as chunks:
            found, size = hash_stream(_counting(chunks, progress), ["sha512"])
        with lock:
            result.files += 1
            result.bytes += size
        if found["sha512"] != manifest[rel]:
            return [RemoteFinding(rel, "altered", "sha512 of the stored file does not match the inventory's manifest",
                                  code="E092", expected=manifest[rel], found=found["sha512"])]
        return []

    def check(rel: str) -> list[RemoteFinding]:
        info = listed.get(rel)
        if info is None:
            return [RemoteFinding(rel, "missing", "in the inventory's manifest but not in the replica", code="E092")]
        if info.damage is not None:
            return []  # reported with the listing
        try:
            # a listing gives sizes; the checksum, metadata and storage class come with a HEAD
            info = store.head(f"{prefix}/{rel}")
            if info is None:
                return [RemoteFinding(rel, "missing", "in the inventory's manifest but not in the replica",
                                      code="E092")]
            if info.damage is not None:
                return [_damaged(rel, info.damage)]
            return metadata(rel, info) if tier == "remote-metadata" else full(rel, info)
        except ObjectArchived:
            with lock:
                result.pending.append(rel)
            return []
        except UnsafePath as exc:
            return [_damaged(rel, str(exc))]
        except (RemoteError, StorageError) as exc:
            if isinstance(exc, ChecksumSettingRejected) or (isinstance(exc, RemoteError) and "connection" in str(exc)):
                raise  # the whole store is unusable this way: stop and say why
            return [RemoteFinding(rel, "unreadable", str(exc))]

    for findings in ordered_map(check, sorted(manifest), workers=workers):
        result.findings.extend(findings)
    if tier == "remote-metadata" and no_checksum[0]:
        count, compared = no_checksum
        if store.kind == "s3":
            result.verified_as = "sha256 metadata and ETag (MD5); the store keeps no checksum"
            result.notes.append(f"{count} file(s) have no stored SHA-256 checksum (the server keeps none): presence, "
                                "size, the sha256 metadata and the ETag were verified"
                                + (f" ({count - compared} without an ETag to compare)" if compared < count else "")
                                + "; the bytes at rest were not re-hashed; run --tier remote-full to re-hash them")
        else:
            result.verified_as = "presence and size; the store keeps no checksum"
            result.notes.append(f"{count} file(s) have no stored checksum ({store.kind} store): presence and size "
                                "only; run --tier remote-full to re-hash them")
    if result.pending:
        result.notes.append(f"{len(result.pending)} file(s) are in an archive storage class and must be restored "
                            "before they can be read" + ("; restore requested" if result.restore_requested else
                                                         "; rerun with --request-restore"))


def _counting(chunks: Iterator[bytes], progress: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def audit_record(result: RemoteAuditResult) -> Any:
    """The ledger's record of a store object's remote audit (what the full tier compares is sha512)."""
    record = result.to_audit_record()
    if result.tier == "remote-full":
        record.algorithm = "sha512"
    return record

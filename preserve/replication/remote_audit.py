"""Auditing a replica where it is, without copying it anywhere.

``remote-metadata``  downloads only the bag's tag files (its manifests, into a temporary folder)
                     and HEADs every payload object: present, and the store's own checksum
                     matching the manifest's SHA-256 (or, for objects sent in parts, the composite
                     worked out from the replica record's per-part digests). No payload byte is
                     downloaded. On an S3 server that keeps no checksum (Ceph RGW 16.2) the
                     object passes on presence, its sha256 metadata matching the manifest and
                     its ETag matching the MD5 preserve sent (the manifest's MD5, the MD5 kept in
                     x-amz-meta-md5, or the recorded multipart ETag), with a note saying the
                     bytes at rest were not re-hashed; a mismatch is ``altered``. A directory
                     store gets presence and size (Payload-Oxum) only, which the result says.
``remote-full``      streams every object and re-hashes it with every manifest algorithm; nothing
                     is written to disk.

Both tiers first compare what is there with the replica record (:mod:`preserve.replication.layout`):
every tag file the record lists must be there with its size and SHA-256, so a replica that lost
its tag manifests together with ``metadata/*`` is reported with each of them ``missing``. A
replica without its record is reported (the record is part of the copy); a record written before
records listed their tag files gets a note. The payload objects are the lines of the payload
manifest the record pins.

Something that is not an object (a symbolic link, a link in a folder above, a pipe: see the
stores' ``ObjectInfo.damage``) is reported ``altered`` and never read or counted as verified.

Objects in an archive storage class (GLACIER, DEEP_ARCHIVE) cannot be read until restored: the
full tier reports them as pending (not as failures) and requests their restore when asked.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.bag.index import PathIndex
from preserve.bag.paths import unsafe_reason
from preserve.bag.reader import Bag, open_bag
from preserve.errors import (
    ChecksumSettingRejected,
    ObjectArchived,
    PreserveError,
    RemoteError,
    StorageError,
    UnsafePath,
    UsageError,
)
from preserve.fixity import ALGORITHMS, hash_file, hash_stream, ordered_map
from preserve.replication.layout import (
    RemoteRecord,
    check_info,
    download_to,
    object_key,
    read_record,
    record_key,
    replica_location,
    tar_key,
)
from preserve.stores.base import ObjectInfo, PartPlan, Store

REMOTE_TIERS = ("remote-metadata", "remote-full")


@dataclass(frozen=True)
class RemoteFinding:
    """One problem with one object of a replica (``kind`` as the ledger knows it)."""

    path: str
    kind: str  # missing | altered | unlisted | unreadable | oxum | invalid
    message: str
    code: str = ""
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class RemoteAuditResult:
    """What a remote audit found; pending objects are neither passed nor failed."""

    location: str
    name: str
    tier: str
    started: str
    ended: str = ""
    identifier: str = ""
    files: int = 0
    bytes: int = 0
    findings: list[RemoteFinding] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    restore_requested: int = 0
    notes: list[str] = field(default_factory=list)
    payload_oxum: str | None = None
    #: what the remote-metadata tier could compare, where it is less than the stored checksum
    verified_as: str | None = None
    #: a store object's head version as the replica's inventory gives it (None for a bag)
    version: str | None = None

    @property
    def ok(self) -> bool:
        """No problem found (objects still pending may hide one: see :attr:`outcome`)."""
        return not self.findings

    @property
    def outcome(self) -> str:
        """``fail`` with findings; ``pending`` when objects wait for a restore, so that the copy
        is not yet verified (nor counted as a verified copy); ``pass`` when every object verified."""
        if self.findings:
            return "fail"
        return "pending" if self.pending else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "tier": self.tier, "ok": self.ok, "outcome": self.outcome, "files": self.files,
                "bytes": self.bytes, "started": self.started, "ended": self.ended,
                "findings": [f.__dict__ for f in self.findings], "pending": self.pending,
                "restore_requested": self.restore_requested, "notes": self.notes}

    def to_audit_record(self) -> Any:
        """The ledger's :class:`~preserve.audit.ledger.AuditRecord` for this audit."""
        from preserve import __version__
        from preserve.audit.ledger import AuditRecord, FindingRecord

        octets = count = None
        if self.payload_oxum and "." in self.payload_oxum:
            a, _, b = self.payload_oxum.partition(".")
            if a.isdigit() and b.isdigit():
                octets, count = int(a), int(b)
        return AuditRecord(
            location=self.location, identifier=self.identifier or self.name, tier=self.tier,
            started=self.started, ended=self.ended, bytes=self.bytes, files=self.files,
            outcome=self.outcome,
            algorithm=(self.verified_as or "sha256 (stored S3 checksum)") if self.tier == "remote-metadata" else "sha256",
            tool_version=__version__, payload_bytes=octets, payload_files=count, version=self.version,
            findings=[FindingRecord(file=f.path, kind=f.kind, message=f.message, code=f.code or f.kind,
                                    expected=f.expected, found=f.found) for f in self.findings])


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_location(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/<bag-name>`` (or a path) -> (store URL, bag name)."""
    text = url.rstrip("/")
    parent, _, name = text.rpartition("/")
    if not name or not parent or parent.endswith(":/"):
        raise UsageError(f"{url}: name the bag's copy, as STORE/<bag-name> (e.g. s3://bucket/prefix/my-bag)")
    if name.endswith(".tar"):
        name = name[:-4]
    return parent, name


def audit_remote(store: Store, name: str, tier: str, *, request_restore: bool = False, restore_days: int = 7,
                 workers: int = 4, progress: Callable[[int], None] | None = None) -> RemoteAuditResult:
    """Audit the copy of bag ``name`` in ``store`` at ``tier`` (see the module docstring)."""
    if tier not in REMOTE_TIERS:
        raise ValueError(f"tier must be one of {REMOTE_TIERS}")
    record = read_record(store, name)
    layout = record.layout if record else ("tar" if store.head(tar_key(name)) is not None else "files")
    result = RemoteAuditResult(location=replica_location(store, name, layout), name=name, tier=tier, started=_now())
    if layout == "tar":
        _audit_tar(store, name, tier, record, result, request_restore, restore_days)
        result.ended = _now()
        return result
    with tempfile.TemporaryDirectory(prefix="preserve-remote-audit-") as tmp:
        bag = _fetch_tags(store, name, Path(tmp) / name, result, record)
        if bag is not None:
            result.identifier = bag.info_value("External-Identifier") or name
            result.payload_oxum = bag.info_value("Payload-Oxum")
            _audit_payload(store, bag, tier, record, result, request_restore, restore_days, workers, progress)
    result.ended = _now()
    return result


def _damaged(rel: str, damage: str) -> RemoteFinding:
    return RemoteFinding(rel, "altered", f"not a stored object: {damage}; a link or special file in a replica is "
                                         "damage and is never followed (replicate the bag again to replace it)",
                         code="not-an-object")


def _fetch_tags(store: Store, name: str, root: Path, result: RemoteAuditResult,
                record: RemoteRecord | None) -> Bag | None:
    """Download the tag files (never the payload) and check them against the replica record and
    the tag manifests; each problem is reported once per file."""
    reported: set[str] = set()

    def add(finding: RemoteFinding) -> None:
        if finding.path not in reported:
            reported.add(finding.path)
            result.findings.append(finding)

    objects = [o for o in store.list(f"{name}/") if not o.key[len(name) + 1:].startswith("data/")]
    root.mkdir(parents=True)
    for o in objects:
        rel = o.key[len(name) + 1:]
        if unsafe_reason(rel):
            add(RemoteFinding(rel, "invalid", f"unsafe object name ({unsafe_reason(rel)}); not read"))
            continue
        if o.damage is not None:
            add(_damaged(rel, o.damage))
            continue
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            download_to(store, o.key, target)
        except (UnsafePath, StorageError) as exc:  # replaced by a link or removed since it was listed
            add(RemoteFinding(rel, "unreadable", str(exc)))
    _check_record(store, name, root, record, result, add)
    if not (root / "bagit.txt").is_file():
        info = store.head(object_key(name, "bagit.txt"))
        add(_damaged("bagit.txt", info.damage) if info is not None and info.damage is not None else
            RemoteFinding("bagit.txt", "missing", "bagit.txt is not in the replica; it is not a complete bag"))
        return None
    bag = open_bag(root)
    if "sha256" not in bag.payload_manifests:
        add(RemoteFinding("manifest-sha256.txt", "missing", "manifest-sha256.txt is not in the replica"))
        if record is not None and record.payload_files:
            result.findings.append(RemoteFinding("data/", "invalid", f"the replica record counts {record.payload_files} "
                                                 "payload object(s); without manifest-sha256.txt none can be checked",
                                                 code="unverifiable"))
        return None
    for alg in sorted(a for a in bag.tag_manifests if a in ALGORITHMS):
        for line in bag.iter_manifest(alg, tag=True):
            if line.error or unsafe_reason(line.path) or line.path in reported:
                continue
            path = root / line.path
            if not path.is_file():
                add(RemoteFinding(line.path, "missing", f"listed in tagmanifest-{alg}.txt but not in the replica", code="tag-missing"))
                continue
            found = hash_file(path, (alg,))[alg]
            if found != line.digest:
                add(RemoteFinding(line.path, "altered", f"{alg} does not match tagmanifest-{alg}.txt",
                                  code="tag-altered", expected=line.digest, found=found))
    return bag


def _check_record(store: Store, name: str, root: Path, record: RemoteRecord | None, result: RemoteAuditResult,
                  add: Callable[[RemoteFinding], None]) -> None:
    """Every tag file the replica record lists is there, with its size and SHA-256 (the tag files
    were downloaded to ``root``); the payload manifest is the one the record pins."""
    if record is None:
        add(RemoteFinding(record_key(name), "missing", f"the replica record {store.url.rstrip('/')}/{record_key(name)} "
                          "is not there, so the objects sent cannot be counted; replicate the bag again to write it",
                          code="record-missing"))
        return
    listed = record.tag_files
    if listed is None:
        result.notes.append("the replica record was written by an older preserve and does not list the tag files: "
                            "a lost tag file is found only through the tag manifests; replicate the bag again "
                            "to rewrite the record")
        listed = {"manifest-sha256.txt": {"size": None, "sha256": record.manifest_sha256}}
    for rel, entry in sorted(listed.items()):
        if unsafe_reason(rel):
            continue
        path = root / rel
        if not path.is_file():
            if store.head(object_key(name, rel)) is None:
                add(RemoteFinding(rel, "missing", "listed in the replica record but not in the replica",
                                  code="tag-missing"))
            continue  # there but not readable: already reported when it was listed
        found = hash_file(path, ("sha256",))["sha256"]
        size = path.stat().st_size
        if found != entry.get("sha256") or (entry.get("size") is not None and size != entry["size"]):
            add(RemoteFinding(rel, "altered", "does not match the replica record (sha256 and size as sent)",
                              code="tag-altered", expected=f"{entry.get('sha256')} ({entry.get('size')} bytes)",
                              found=f"{found} ({size} bytes)"))


def _audit_payload(store: Store, bag: Bag, tier: str, record: RemoteRecord | None, result: RemoteAuditResult,
                   request_restore: bool, restore_days: int, workers: int,
                   progress: Callable[[int], None] | None) -> None:
    name = result.name
    algs = sorted(a for a in bag.payload_manifests if a in ALGORITHMS)
    # manifests and listings go through a disk-backed index: a million objects never sit in memory
    with PathIndex() as index:
        for alg in algs:
            rows: list[tuple[str, str, str, int, str]] = []
            for line in bag.iter_manifest(alg):
                if not line.error and line.path.startswith("data/") and not unsafe_reason(line.path):
                    rows.append((line.path, alg, line.digest, line.line, line.raw))
                    if len(rows) >= 5000:
                        index.add_entries(rows)
                        rows = []
            index.add_entries(rows)
        batch: list[tuple[str, int]] = []
        damaged: dict[str, str] = {}  # links and special files: few, or the replica is in ruins anyway
        for o in store.list(f"{name}/data/"):
            if o.damage is not None:
                damaged[o.key[len(name) + 1:]] = o.damage
            batch.append((o.key[len(name) + 1:], o.size))
            if len(batch) >= 5000:
                index.add_files(batch)
                batch = []
        index.add_files(batch)
        index.finish_loading()
        expected_count = int(next(index.query("SELECT count(DISTINCT path) FROM m"))[0])  # type: ignore[call-overload]
        jobs = ((str(path), dict(pair.split(" ", 1) for pair in str(pairs).split("\n")))
                for path, pairs in index.query("SELECT path, group_concat(alg || ' ' || digest, '\n') FROM m "
                                               "GROUP BY path ORDER BY path"))
        _check_objects(store, jobs, tier, record, result, request_restore, restore_days, workers, progress)
        for (rel,) in index.query("SELECT d.path FROM d WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.path = d.path) "
                                  "ORDER BY d.path"):
            damage = damaged.get(str(rel))
            result.findings.append(_damaged(str(rel), damage) if damage is not None else
                                   RemoteFinding(str(rel), "unlisted", "in the replica but not listed in any payload manifest"))
    if result.payload_oxum and not result.pending:
        actual = f"{result.bytes}.{result.files}"
        if result.files == expected_count and actual != result.payload_oxum.strip():
            result.findings.append(RemoteFinding(bag.info_file or "bag-info.txt", "oxum", "Payload-Oxum does not match the replica's payload",
                                                 expected=result.payload_oxum.strip(), found=actual))
    if result.pending:
        result.notes.append(f"{len(result.pending)} object(s) are in an archive storage class and must be restored "
                            "before they can be read" + ("; restore requested" if result.restore_requested else
                                                         "; rerun with --request-restore"))


def _check_objects(store: Store, jobs: Iterator[tuple[str, dict[str, str]]], tier: str, record: RemoteRecord | None,
                   result: RemoteAuditResult, request_restore: bool, restore_days: int, workers: int,
                   progress: Callable[[int], None] | None) -> None:
    name = result.name
    lock = threading.Lock()
    no_checksum = [0, 0]  # objects with no stored checksum; of them, those whose ETag was compared

    def check(item: tuple[str, dict[str, str]]) -> list[RemoteFinding]:
        rel, digests = item
        key = object_key(name, rel)
        try:
            info = store.head(key)
            if info is None:
                return [RemoteFinding(rel, "missing", "listed in the manifest but not in the replica")]
            if info.damage is not None:
                return [_damaged(rel, info.damage)]
            sha = digests.get("sha256")
            if tier == "remote-metadata":
                if sha is None:
                    return [RemoteFinding(rel, "invalid", "not in manifest-sha256.txt; its stored checksum cannot be compared")]
                plan = record.plan_for(rel, sha) if record else None
                reason = check_info(info, sha, info.size, plan)
                with lock:
                    result.files += 1
                    result.bytes += info.size
                if reason is None:
                    return []
                if reason == "no-checksum" and store.kind == "s3" and info.sha256_meta is None:
                    # preserve stores a SHA-256 with every object it sends: one without was put there by something else
                    return [RemoteFinding(rel, "altered", "the object has no stored SHA-256 checksum and no sha256 metadata; "
                                          "it was not written by preserve (replaced?)", expected=sha, found=None)]
                if reason == "no-checksum" and store.kind == "s3":
                    # a server keeping no checksums (Ceph RGW 16.2): the sha256 metadata matched the
                    # manifest (check_info compared it); the ETag, the MD5 the server computed as it
                    # received the bytes, must be the MD5 of the bytes preserve sent
                    etag, want = info.etag_md5, _expected_etag(info, digests, plan)
                    if etag is not None and want is not None and etag != want:
                        return [RemoteFinding(rel, "altered", "the ETag (the MD5 the server computed of the bytes it "
                                              "received) is not the MD5 of the bytes preserve sent; the object was "
                                              "replaced or damaged", code="etag", expected=want, found=etag)]
                    with lock:
                        no_checksum[0] += 1
                        no_checksum[1] += int(etag is not None and want is not None)
                    return []
                if reason == "no-checksum":
                    with lock:
                        no_checksum[0] += 1
                    return []
                if reason == "composite-unknown":
                    return [RemoteFinding(rel, "invalid", "sent in parts and the replica record with its part digests is missing; "
                                          "audit it with --tier remote-full", code="unverifiable")]
                return [RemoteFinding(rel, "altered", f"the stored object does not match manifest-sha256.txt ({reason})",
                                      expected=sha, found=info.checksum_sha256)]
            if info.archived:
                if request_restore and not info.restore_ongoing:
                    store.request_restore(key, restore_days)
                    with lock:
                        result.restore_requested += 1
                with lock:
                    result.pending.append(rel)
                return []
            with store.get(key) as chunks:
                found, size = hash_stream(_counting(chunks, progress), sorted(digests))
            with lock:
                result.files += 1
                result.bytes += size
            return [RemoteFinding(rel, "altered", f"{alg} of the stored object does not match manifest-{alg}.txt",
                                  expected=exp, found=found[alg])
                    for alg, exp in sorted(digests.items()) if found[alg] != exp]
        except ObjectArchived:
            with lock:
                result.pending.append(rel)
            return []
        except UnsafePath as exc:  # replaced by a link since its HEAD
            return [_damaged(rel, str(exc))]
        except (RemoteError, StorageError) as exc:
            if isinstance(exc, ChecksumSettingRejected) or (isinstance(exc, RemoteError) and "connection" in str(exc)):
                raise  # the whole store is unusable this way: stop and say why
            return [RemoteFinding(rel, "unreadable", str(exc))]

    for findings in ordered_map(check, jobs, workers=workers):
        result.findings.extend(findings)
    if tier == "remote-metadata" and no_checksum[0] and store.kind == "s3":
        count, compared = no_checksum
        result.verified_as = "sha256 metadata and ETag (MD5); the store keeps no checksum"
        result.notes.append(
            f"{count} object(s) have no stored SHA-256 checksum (the server keeps none): presence, size, the sha256 "
            "metadata and the ETag were verified"
            + (f" ({count - compared} of them had no ETag to compare with, an SSE-KMS ETag or a multipart object "
               "without its recorded ETag: presence, size and metadata only)" if compared < count else "")
            + "; the bytes at rest were not re-hashed; run --tier remote-full to re-hash them")
    elif tier == "remote-metadata" and no_checksum[0]:
        result.verified_as = "presence and size; the store keeps no checksum"
        result.notes.append(f"{no_checksum[0]} object(s) have no stored checksum ({store.kind} store): presence and "
                            "size only; run --tier remote-full to re-hash them")


def _expected_etag(info: ObjectInfo, digests: dict[str, str], plan: PartPlan | None) -> str | None:
    """The ETag the manifest's bytes make, in the form the object's ETag has: the manifest's MD5
    (or the MD5 preserve stored in x-amz-meta-md5) for one part, the recorded multipart ETag for
    several; None when nothing says."""
    etag = info.etag_md5 or ""
    if "-" in etag:
        return plan.etag.lower() if plan is not None and plan.etag else None
    want = digests.get("md5") or info.md5_meta
    return want.lower() if want else None


def _counting(chunks: Any, progress: Callable[[int], None] | None) -> Any:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def _audit_tar(store: Store, name: str, tier: str, record: RemoteRecord | None, result: RemoteAuditResult,
               request_restore: bool, restore_days: int) -> None:
    key = tar_key(name)
    info = store.head(key)
    if info is None:
        result.findings.append(RemoteFinding(key, "missing", "the bag's tar object is not in the replica"))
        return
    if info.damage is not None:
        result.findings.append(_damaged(key, info.damage))
        return
    if record is None or not record.tar_sha256:
        result.findings.append(RemoteFinding(key, "invalid", "no replica record with the tar's digest; it cannot be verified",
                                             code="unverifiable"))
        return
    result.files, result.bytes = 1, info.size
    plan = record.plan_for("", record.tar_sha256)
    if tier == "remote-metadata":
        reason = check_info(info, record.tar_sha256, record.bytes or info.size, plan)
        want = (plan.etag if plan is not None else None) or info.md5_meta
        if reason == "no-checksum" and info.etag_md5 is not None and want and info.etag_md5 != want.lower():
            result.findings.append(RemoteFinding(key, "altered", "the ETag (the MD5 the server computed of the bytes "
                                                 "it received) is not that of the tar preserve sent", code="etag",
                                                 expected=want, found=info.etag_md5))
        elif reason == "no-checksum" and info.etag_md5 is not None and want:
            result.verified_as = "sha256 metadata and ETag (MD5); the store keeps no checksum"
            result.notes.append(f"{store.kind} store keeps no checksum: presence, size, the sha256 metadata and the "
                                "ETag were verified; the bytes at rest were not re-hashed (run --tier remote-full)")
        elif reason == "no-checksum":
            result.notes.append(f"{store.kind} store keeps no checksum: presence and size only")
        elif reason is not None:
            result.findings.append(RemoteFinding(key, "altered", f"the stored object does not match its record ({reason})",
                                                 expected=record.tar_sha256, found=info.checksum_sha256))
        return
    if info.archived:
        if request_restore and not info.restore_ongoing:
            result.restore_requested += int(store.request_restore(key, restore_days))
        result.pending.append(key)
        return
    try:
        with store.get(key) as chunks:
            found, _size = hash_stream(chunks, ["sha256"])
    except ObjectArchived:
        result.pending.append(key)
        return
    except PreserveError as exc:
        result.findings.append(RemoteFinding(key, "unreadable", str(exc)))
        return
    if found["sha256"] != record.tar_sha256:
        result.findings.append(RemoteFinding(key, "altered", "sha256 of the tar object does not match its record",
                                             expected=record.tar_sha256, found=found["sha256"]))

"""Repairing a bag's damaged payload files from a replica, never from an unverified copy.

For each payload file a full validation finds missing or altered:

1. the replica's copy is downloaded to a hidden temporary file beside the damaged one,
   hashed as it is written with every algorithm of the bag's payload manifests;
2. only when every digest matches the manifest is it made durable and renamed over the damaged
   file (an atomic replace) at once, before the next file is fetched; otherwise it is deleted and
   the damaged file left as it is. An interrupted repair (Ctrl-C included) removes its temporary
   file, and a repair removes any an earlier killed run left before it starts;
3. each attempt is recorded in the ledger (``repairs``, exported as a PREMIS event).

Problems a replica cannot fix (unlisted files, broken tag files, Payload-Oxum) are reported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from preserve.bag.reader import Bag, open_bag
from preserve.bag.validate import Finding, validate_bag
from preserve.errors import ObjectArchived, PreserveError
from preserve.fixity import ALGORITHMS, MultiHasher, fsync_path
from preserve.replication.layout import object_key, read_record, replica_location, tar_key
from preserve.replication.tarstream import _ChunkReader
from preserve.stores.base import Store

_CHUNK = 1024 * 1024


class RepairLedger(Protocol):
    """What repair needs from the audit ledger."""

    def record_repair(self, bag: str, file: str, source_target: str, *, outcome: str,
                      time: str | None = None, identifier: str | None = None,
                      detail: dict[str, Any] | None = None) -> int: ...


@dataclass(frozen=True)
class FileRepair:
    """The outcome for one damaged file: ``repaired``, ``refused`` (the copy did not verify) or
    ``unavailable`` (no copy could be read)."""

    path: str
    problem: str
    outcome: str
    reason: str = ""


@dataclass
class RepairResult:
    bag: Path
    source: str
    files: list[FileRepair] = field(default_factory=list)
    unrepairable: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.outcome == "repaired" for f in self.files) and not self.unrepairable

    def to_dict(self) -> dict[str, Any]:
        return {"bag": str(self.bag), "source": self.source, "ok": self.ok,
                "files": [f.__dict__ for f in self.files],
                "unrepairable": [{"path": f.path, "code": f.code, "message": f.message} for f in self.unrepairable]}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def repair_bag(bag_path: str | os.PathLike[str], store: Store, *, name: str | None = None,
               ledger: RepairLedger | None = None, workers: int | None = None) -> RepairResult:
    """Repair ``bag_path`` from its copy in ``store`` (under ``name``, default the bag's name)."""
    bag = open_bag(bag_path)
    remove_stale_temps(bag.path)
    name = name or bag.name
    record = read_record(store, name)
    layout = record.layout if record else ("tar" if store.head(tar_key(name)) is not None else "files")
    result = RepairResult(bag=bag.path, source=replica_location(store, name, layout))
    report = validate_bag(bag.path, workers=workers)
    damaged: dict[str, str] = {}
    for f in report.errors:
        if f.code in ("missing", "altered") and f.path and f.path.startswith("data/"):
            damaged.setdefault(f.path, f.code)
        else:
            result.unrepairable.append(f)
    if not damaged:
        return result
    _repair_files(bag, store, name, layout, damaged, result, ledger)
    # what is left once the files are back (a Payload-Oxum off only because a file was missing is gone now)
    after = validate_bag(bag.path, fast=True, workers=workers)
    result.unrepairable = [f for f in after.errors if not (f.code in ("missing", "altered") and f.path in damaged)]
    return result


def _repair_files(bag: Bag, store: Store, name: str, layout: str, damaged: dict[str, str], result: RepairResult,
                  ledger: RepairLedger | None) -> None:
    algs = sorted(a for a in bag.payload_manifests if a in ALGORITHMS)
    expected: dict[str, dict[str, str]] = {}
    for alg in algs:
        for line in bag.iter_manifest(alg):
            if line.path in damaged and not line.error:
                expected.setdefault(line.path, {})[alg] = line.digest
    identifier = bag.info_value("External-Identifier") or bag.name
    pending: set[Path] = set()  # verified copies not yet renamed into place
    settled: set[str] = set()

    def settle(rel: str, outcome: _Fetched) -> None:
        """Put one verified copy in place at once (so an interruption leaves nothing half done) and record it."""
        temp, reason, found = outcome
        if temp is None:
            status = "unavailable" if not found else "refused"
        else:
            try:
                fsync_path(temp)
                os.replace(temp, bag.path / rel)
                fsync_path((bag.path / rel).parent)
                status, reason = "repaired", ""
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                status, reason = "unavailable", f"could not replace it ({exc.strerror or exc})"
            pending.discard(temp)
        settled.add(rel)
        result.files.append(FileRepair(rel, damaged[rel], status, reason))
        if ledger is not None:
            ledger.record_repair(str(bag.path), rel, result.source, outcome=status, time=_now(), identifier=identifier,
                                 detail={"problem": damaged[rel], "reason": reason, "expected": expected.get(rel, {}),
                                         "found": found})

    try:
        if layout == "tar":
            _fetch_from_tar(store, name, bag.path, expected, result.source, settle, pending)
        else:
            for rel, digests in sorted(expected.items()):
                settle(rel, _fetch_object(store, object_key(name, rel), bag.path / rel, digests, pending))
        for rel in sorted(set(damaged) - settled):
            settle(rel, (None, "the replica holds no copy of it", {}))
    finally:
        # interrupted (Ctrl-C included): no downloaded copy may stay behind inside the bag
        for temp in pending:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    result.files.sort(key=lambda f: f.path)


_Fetched = tuple[Path | None, str, dict[str, str]]
_TEMP_RE = re.compile(r"^\..+\.preserve-repair-[0-9a-f]{8}$")


def remove_stale_temps(root: Path) -> list[Path]:
    """Delete what an earlier, interrupted repair left in the bag's payload folder (only files named
    as :func:`_temp_for` names them); returns what was removed."""
    removed: list[Path] = []
    for dirpath, _dirs, files in os.walk(root / "data"):
        for fname in files:
            if _TEMP_RE.match(fname):
                path = Path(dirpath, fname)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def _temp_for(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent / f".{target.name}.preserve-repair-{secrets.token_hex(4)}"


def _write_verified(chunks: Iterator[bytes], target: Path, digests: dict[str, str], pending: set[Path]) -> _Fetched:
    """Write ``chunks`` beside ``target`` while hashing; keep the file only if every digest matches."""
    temp = _temp_for(target)
    hasher = MultiHasher(sorted(digests))
    try:
        with open(temp, "xb") as out:
            pending.add(temp)
            for chunk in chunks:
                out.write(chunk)
                hasher.update(chunk)
    except BaseException:
        hasher.abandon()
        with contextlib.suppress(OSError):
            os.unlink(temp)
        pending.discard(temp)
        raise
    found = hasher.hexdigests()
    bad = [a for a in sorted(digests) if found[a] != digests[a]]
    if bad:
        os.unlink(temp)
        pending.discard(temp)
        alg = bad[0]
        return None, f"the replica's copy does not match manifest-{alg}.txt (expected {digests[alg]}, found {found[alg]}); not used", found
    return temp, "", found


def _fetch_object(store: Store, key: str, target: Path, digests: dict[str, str], pending: set[Path]) -> _Fetched:
    if store.head(key) is None:
        return None, "the replica holds no copy of it", {}
    try:
        with store.get(key) as chunks:
            return _write_verified(chunks, target, digests, pending)
    except ObjectArchived as exc:
        return None, str(exc), {}
    except PreserveError as exc:
        return None, f"the replica's copy could not be read ({exc})", {}


def _fetch_from_tar(store: Store, name: str, root: Path, expected: dict[str, dict[str, str]], source: str,
                    settle: Callable[[str, _Fetched], None], pending: set[Path]) -> None:
    """One pass over the tar object, keeping only the damaged files' members (each put in place
    as soon as it verified)."""
    done: set[str] = set()
    try:
        with store.get(tar_key(name)) as chunks, tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tf:  # type: ignore[call-overload]
            for member in tf:
                rel = member.name[len(name) + 1:] if member.name.startswith(f"{name}/") else None
                if rel in expected and rel not in done and member.isfile():
                    body = tf.extractfile(member)
                    if body is not None:
                        done.add(rel)
                        settle(rel, _write_verified(_read_all(body), root / rel, expected[rel], pending))
    except (PreserveError, tarfile.TarError) as exc:
        for rel in sorted(set(expected) - done):
            done.add(rel)
            settle(rel, (None, f"the replica's copy could not be read from {source} ({exc})", {}))


def _read_all(body: Any) -> Iterator[bytes]:
    while chunk := body.read(_CHUNK):
        yield bytes(chunk)

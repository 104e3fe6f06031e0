"""Repairing a bag's damaged files from a replica, never from an unverified copy.

A repair holds the bag's lock (:func:`preserve.staging.journaled`, the hidden file
``.<bag>.preserve-lock`` beside the bag) from start to end, so a second repair of the same bag
waits or stops with exit 4 instead of meeting the first one's downloads. Before anything is changed
or recorded, every tag file the tag manifests list is hashed and the bag is validated in full; a
file (tag or payload) that is there but cannot be read, or a folder that cannot be listed, stops
the run there (exit 3, :class:`~preserve.errors.InputError` or
:class:`~preserve.errors.BadTagFile`): a permission or I/O problem, not damage a replica can judge.
Then, in order:

1. tag files listed in the tag manifests that are missing or altered are fetched from the
   replica. A tag manifest that is itself damaged (unreadable lines, or listing digests the
   bag's tag files do not have) is replaced by the replica's copy only when that copy agrees
   with every tag file it lists (the bag's own or the replica's) and with the replica record;
   otherwise it is reported as not repairable. A tag file that is there but cannot be read
   (permission denied, an I/O error) is not damage: repair stops before changing anything
   (:class:`~preserve.errors.BadTagFile`, exit 3), so a permission problem is never hidden by a
   copy nor recorded as a repair;
2. payload files the validation found missing or altered are fetched (validated again first when
   step 1 replaced a payload manifest, ``bagit.txt`` or ``fetch.txt``);
3. folders listed in ``metadata/empty-directories.txt`` that are missing are created again.

Every copy is downloaded into the run's staging folder ``.<bag>.preserve-repair-<token>`` at
the top of the bag (the same file system, so the final rename is atomic; outside ``data/``, so a
validation running meanwhile sees no unlisted payload file), hashed as it is written with every
algorithm of the relevant manifests, and renamed over the damaged file only when every digest
matches. Every folder on the way is opened without following links (:mod:`preserve.safefs`): a
symbolic link in the bag refuses that file, naming the link, and nothing outside the bag is ever
written. The staging folder is listed in the lock's journal before it is created; a repair that
was killed leaves it behind and the next run on the bag removes exactly that (and reports it),
never a file because of its name. Each attempt is recorded in the ledger (``repairs``).
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from preserve.bag.paths import decode_manifest_path, normalize_manifest_path, unsafe_reason
from preserve.bag.reader import Bag, empty_directories, open_bag, unreadable_tag_file
from preserve.bag.tagfiles import EMPTY_DIRECTORIES
from preserve.bag.validate import Finding, ValidationReport, tag_manifest_entries, validate_bag
from preserve.errors import (
    BadTagFile,
    InputError,
    ObjectArchived,
    PreserveError,
    StorageError,
    UnsafePath,
)
from preserve.fixity import ALGORITHMS, MultiHasher, hash_file
from preserve.replication.layout import (
    RemoteRecord,
    object_key,
    read_bytes,
    read_record,
    replica_location,
    tar_key,
)
from preserve.replication.tarstream import _ChunkReader
from preserve.safefs import (
    LINK_REASON,
    LinkRefused,
    links_below,
    lstat_beneath,
    makedirs_beneath,
    open_beneath,
    open_regular_beneath,
    read_beneath,
    refusal,
    replace_beneath,
    unlink_beneath,
)
from preserve.staging import Journal, journaled
from preserve.stores.base import Store

_CHUNK = 1024 * 1024
_TAG_LINE = re.compile(r"^([0-9A-Fa-f]+)[ \t]+\*?(.*)$")
_PAYLOAD_MANIFEST = re.compile(r"^manifest-[A-Za-z0-9-]+\.txt$")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
#: What to do about a file repair cannot read (the removal advice holds for a file a manifest or tag manifest lists).
_READ_ACCESS = ("restore read access for the user running preserve and run repair again (nothing was changed); "
                "if the file is really damaged, remove it and repair restores it from the replica as a missing file")


class RepairLedger(Protocol):
    """What repair needs from the audit ledger."""

    def record_repair(self, bag: str, file: str, source_target: str, *, outcome: str,
                      time: str | None = None, identifier: str | None = None,
                      detail: dict[str, Any] | None = None) -> int: ...


@dataclass(frozen=True)
class FileRepair:
    """The outcome for one damaged file: ``repaired``, ``refused`` (the copy did not verify, or a
    link stood in the way) or ``unavailable`` (no copy could be read)."""

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
    #: empty folders (metadata/empty-directories.txt) that were missing and were created again
    directories: list[str] = field(default_factory=list)
    #: what a killed earlier run on this bag had left (its journal listed it), removed first
    cleaned: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.outcome == "repaired" for f in self.files) and not self.unrepairable

    def to_dict(self) -> dict[str, Any]:
        return {"bag": str(self.bag), "source": self.source, "ok": self.ok,
                "files": [f.__dict__ for f in self.files], "directories": self.directories,
                "cleaned": [str(p) for p in self.cleaned],
                "unrepairable": [{"path": f.path, "code": f.code, "message": f.message} for f in self.unrepairable]}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def repair_bag(bag_path: str | os.PathLike[str], store: Store, *, name: str | None = None,
               ledger: RepairLedger | None = None, workers: int | None = None, wait: float = 0.0) -> RepairResult:
    """Repair ``bag_path`` from its copy in ``store`` (under ``name``, default the bag's name).

    Raises :class:`~preserve.errors.DestinationExists` (exit 4) when another run holds the bag's
    lock for longer than ``wait`` seconds, and :class:`~preserve.errors.StorageError` (exit 5)
    when the bag's file system has no room for a temporary copy (the bag is left as it was).
    """
    root = open_bag(bag_path).path
    busy = (f"{root}: another preserve run is repairing or writing this bag now; let it finish and run "
            "repair again (or pass --wait SECONDS to wait for it)")
    with journaled(root, busy=busy, wait=wait) as journal:
        return _Repair(root, store, name or root.name, ledger, journal).run(workers)


_Fetched = tuple[str | None, str, dict[str, str]]  # (temporary copy below the bag root, reason, digests found)


class _Repair:
    """One repair run: the replica, the staging folder and what was done so far."""

    def __init__(self, root: Path, store: Store, name: str, ledger: RepairLedger | None, journal: Journal) -> None:
        self.root = root
        self.store = store
        self.name = name
        self.ledger = ledger
        self.journal = journal
        self.record: RemoteRecord | None = read_record(store, name)
        if self.record is not None:
            self.layout = self.record.layout
        else:
            self.layout = "tar" if store.head(tar_key(name)) is not None else "files"
        self.result = RepairResult(bag=root, source=replica_location(store, name, self.layout),
                                   cleaned=list(journal.removed))
        self._staging: str | None = None
        self._count = 0
        bag = open_bag(root)
        self.identifier = bag.info_value("External-Identifier") or bag.name

    # -- the run -----------------------------------------------------------------------------

    def run(self, workers: int | None) -> RepairResult:
        # everything the decisions rest on is read before anything is changed or recorded: a tag
        # file (judging the tag files) or a payload file (the validation) that is there but cannot be
        # read stops the run here, with the bag as it was and nothing in the ledger
        bag = open_bag(self.root)
        entries, found = self._tag_damage(bag)
        report = validate_bag(self.root, workers=workers)
        self._refuse_unreadable_payload(report)
        if found:
            replaced = self._repair_tags(bag, entries, found)
            # the files that decide which payload files are expected, and with which digests
            if any(rel in ("bagit.txt", "fetch.txt") or _PAYLOAD_MANIFEST.match(rel) for rel in replaced):
                report = validate_bag(self.root, workers=workers)
                self._refuse_unreadable_payload(report)
        damaged: dict[str, str] = {}
        for f in report.errors:
            if f.code in ("missing", "altered") and f.path and f.path.startswith("data/"):
                damaged.setdefault(f.path, f.code)
        if damaged:
            bag = open_bag(self.root)
            algs = sorted(a for a in bag.payload_manifests if a in ALGORITHMS)
            expected: dict[str, dict[str, str]] = {rel: {} for rel in damaged}
            for alg in algs:
                for line in bag.iter_manifest(alg):
                    if line.path in damaged and not line.error:
                        expected[line.path][alg] = line.digest
            self._fetch_all(expected, damaged, "manifest")
        self._recreate_empty_directories()
        self._drop_staging()
        if not self.result.files and not self.result.directories:
            self.result.unrepairable = report.errors  # nothing changed since that full validation
            return self.result
        # what is left once the files are back (a Payload-Oxum off only because a file was missing is gone now)
        after = validate_bag(self.root, fast=True, workers=workers)
        attempted = {f.path for f in self.result.files}
        left = [f for f in after.errors if not (f.code in ("missing", "altered", "tag-missing") and f.path in attempted)]
        # a fast validation does not hash tag files
        left += [f for f in self._tag_damage(open_bag(self.root))[1] if f.code == "tag-altered" and f.path not in attempted]
        self.result.unrepairable = left
        self.result.files.sort(key=lambda f: f.path)
        return self.result

    # -- tag files ---------------------------------------------------------------------------

    def _tag_damage(self, bag: Bag) -> tuple[dict[str, dict[str, str]], list[Finding]]:
        """Every tag manifest entry, and what is wrong with the tag files and tag manifests now."""
        scratch = ValidationReport(path=str(self.root))
        entries = tag_manifest_entries(bag, scratch)
        found = list(scratch.errors)
        for rel, digests in sorted(entries.items()):
            algs = [a for a in digests if a in ALGORITHMS]
            try:
                got = hash_file(rel, algs, root=self.root)
            except LinkRefused as exc:
                found.append(Finding("error", "not-regular", f"{exc.filename} {LINK_REASON}", path=rel))
                continue
            except FileNotFoundError:
                found.append(Finding("error", "tag-missing", "listed in a tag manifest but not found", path=rel))
                continue
            except OSError as exc:
                if not _no_file_there(exc):
                    raise self._unreadable(rel, exc) from exc
                found.append(Finding("error", "unreadable", f"cannot be read ({exc.strerror})", path=rel))
                continue
            for alg in algs:
                if got[alg] != digests[alg]:
                    found.append(Finding("error", "tag-altered", f"{alg} checksum does not match tagmanifest-{alg}.txt",
                                         path=rel, algorithm=alg, expected=digests[alg], found=got[alg]))
                    break
        return entries, found

    def _unreadable(self, rel: str, exc: OSError) -> BadTagFile:
        """The input error (exit 3) for tag file ``rel``, there but not readable: a permission or I/O
        problem to fix, not damage to repair from the replica. Names the folder on the way when
        that is what could not be opened."""
        where = os.fspath(exc.filename) if exc.filename else ""
        if where and where != os.path.join(self.root, rel):
            return BadTagFile(path=where, reason=(
                f"this folder cannot be opened ({exc.strerror or exc}), so {rel} cannot be read; restore read access "
                "to it for the user running preserve and run repair again (nothing was changed)"))
        return unreadable_tag_file(self.root, rel, exc, advice=_READ_ACCESS)

    def _refuse_unreadable_payload(self, report: ValidationReport) -> None:
        """Stop the run (exit 3) when the validation met a payload file or folder that is there but
        cannot be read: a permission or I/O problem to fix, not damage a replica can judge. A copy
        put in its place would hide the problem and be recorded as a repair."""
        found = [f for f in report.errors if f.code == "unreadable" and f.path
                 and (f.path == "data" or f.path.startswith("data/"))]
        paths = {str(f.path) for f in found}
        # a file below a folder that cannot be listed is named by that folder's finding
        unreadable = [f for f in found if not any(folder in paths for folder in _ancestors(str(f.path)))]
        unreadable += self._unlisted_unreadable(report)
        if not unreadable:
            return
        first = unreadable[0]
        more = f" ({len(unreadable) - 1} more cannot be read; validate the bag to list them)" if len(unreadable) > 1 else ""
        where = self.root / str(first.path)
        what = first.message.split("; ", 1)[0]
        if _is_folder(self.root, str(first.path)):
            raise InputError(f"{where}: {what}, so the files in it cannot be read; restore read access to it for the "
                             f"user running preserve and run repair again (nothing was changed){more}", path=str(where))
        raise InputError(f"{where}: {what}; {_READ_ACCESS}{more}", path=str(where))

    def _unlisted_unreadable(self, report: ValidationReport) -> list[Finding]:
        """The files in data/ no payload manifest lists (so the validation did not read them) that
        cannot be opened: the replica's copy of a damaged manifest may list them, and opening
        them now finds a permission problem before the manifest is replaced."""
        out = []
        for f in report.errors:
            if f.code != "unlisted" or not f.path or not f.path.startswith("data/") or f.algorithm:
                continue  # (with an algorithm: listed by another manifest, so read by the validation)
            try:
                os.close(open_regular_beneath(self.root, f.path)[0])
            except (FileNotFoundError, LinkRefused, UnsafePath):
                continue  # gone, or a link: what validation says of it stands
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    continue  # a pipe or device: reported by the validation as not regular
                out.append(Finding("error", "unreadable", f"cannot be read ({exc.strerror or exc})", path=f.path))
        return out

    def _repair_tags(self, bag: Bag, entries: dict[str, dict[str, str]], found: list[Finding]) -> set[str]:
        """Repair the damaged tag files ``found``; returns those replaced."""
        before = len(self.result.files)
        manifests = sorted(f"tagmanifest-{a}.txt" for a in bag.tag_manifests)
        if self._repair_tag_manifests(bag, manifests, found):
            bag = open_bag(self.root)
            entries, found = self._tag_damage(bag)
        damaged = {f.path: "missing" if f.code == "tag-missing" else "altered"
                   for f in found if f.path in entries and f.code in ("tag-missing", "tag-altered", "unreadable")}
        if damaged:
            self._fetch_all({rel: {a: d for a, d in entries[rel].items() if a in ALGORITHMS} for rel in damaged},
                            damaged, "tag manifest")
        return {f.path for f in self.result.files[before:] if f.outcome == "repaired"}

    def _repair_tag_manifests(self, bag: Bag, manifests: list[str], found: list[Finding]) -> bool:
        """Replace each tag manifest that differs from the replica's copy, when that copy checks out;
        returns whether any was replaced."""
        theirs = self._replica_bytes(manifests)
        broken = {f.path for f in found if f.path in manifests}
        # every copy is judged before any is used or any outcome recorded: judging reads the bag's
        # tag files, and one that cannot be read stops the repair with nothing changed
        verdicts: list[tuple[str, bytes | None, str | None]] = []
        for rel in manifests:
            try:
                ours: bytes | None = read_beneath(self.root, rel)
            except OSError:
                ours = None
            copy = theirs.get(rel)
            if copy is None or copy == ours:
                if rel in broken:
                    why = "the replica holds no copy of it" if copy is None else "the replica's copy is the same"
                    verdicts.append((rel, copy, why))
                continue
            verdicts.append((rel, copy, self._disagreement(rel, copy)))
        replaced = False
        for rel, copy, doubt in verdicts:
            if doubt or copy is None:
                self._settle(rel, "altered", (None, doubt or "", {}), found_copy=copy is not None)
                continue
            digest = hashlib.sha256(copy).hexdigest()
            self._settle(rel, "altered", self._write_verified(iter([copy]), rel, {"sha256": digest}))
            replaced = True
        return replaced

    def _disagreement(self, rel: str, copy: bytes) -> str | None:
        """Why the replica's copy of tag manifest ``rel`` cannot be trusted (None when it can): every
        tag file it lists must have the digest it gives, in the bag or in the replica, and the copy
        and the payload manifest it lists must be the ones the replica record names."""
        alg = rel[len("tagmanifest-"):-len(".txt")]
        if alg not in ALGORITHMS:
            return f"it uses {alg}, which preserve cannot compute"
        sha256 = hashlib.sha256(copy).hexdigest()
        pinned = str(((self.record.tag_files or {}).get(rel) or {}).get("sha256") or "") if self.record else ""
        if pinned and pinned != sha256:
            return f"the replica's copy does not match the replica record (sha256 expected {pinned}, found {sha256})"
        info = self.store.head(object_key(self.name, rel)) if self.layout == "files" else None
        if info is not None and info.sha256_meta and info.sha256_meta != sha256:
            return "the replica's copy is not what was uploaded (its sha256 differs from the object's metadata)"
        listed: dict[str, str] = {}
        for number, line in enumerate(copy.decode("utf-8", "surrogateescape").lstrip("\ufeff").splitlines(), 1):
            if not line.strip():
                continue
            m = _TAG_LINE.match(line.rstrip("\r"))
            if not m:
                return f"the replica's copy has a line that is not 'DIGEST PATH' (line {number})"
            path = decode_manifest_path(normalize_manifest_path(m.group(2)))
            if unsafe_reason(path) or path.startswith("data/"):
                return f"the replica's copy lists {path!r}, which is not a tag file"
            listed[path] = m.group(1).lower()
        if alg == "sha256" and self.record is not None and self.record.manifest_sha256 \
                and listed.get("manifest-sha256.txt", self.record.manifest_sha256) != self.record.manifest_sha256:
            return "the replica's copy names another manifest-sha256.txt than the replica record"
        unmatched = []
        for path, digest in sorted(listed.items()):
            try:
                if hash_file(path, [alg], root=self.root)[alg] == digest:
                    continue
            except OSError as exc:
                if not isinstance(exc, LinkRefused) and not _no_file_there(exc):
                    raise self._unreadable(path, exc) from exc
            unmatched.append(path)
        if unmatched:
            copies = self._replica_bytes(unmatched)
            for path in unmatched:
                data = copies.get(path)
                if data is None or _digest(alg, data) != listed[path]:
                    return (f"the replica's copy lists {path} with {alg} {listed[path]}, which neither the bag's "
                            "nor the replica's copy of that file has")
        return None

    # -- fetching and putting in place -------------------------------------------------------

    def _fetch_all(self, expected: dict[str, dict[str, str]], damaged: dict[str, str], against: str) -> None:
        """Fetch every file of ``expected`` from the replica, verify it and put it in place."""
        wanted: dict[str, dict[str, str]] = {}
        for rel in sorted(expected):
            link = links_below(self.root, rel)
            if link is not None:
                self._settle(rel, damaged[rel], (None, f"{link} {LINK_REASON}; nothing was written", {}), outcome="refused")
            elif not expected[rel]:
                self._settle(rel, damaged[rel], (None, f"no {against} lists a digest preserve can compute for it", {}))
            else:
                wanted[rel] = expected[rel]
        done: set[str] = set()
        if self.layout == "tar":
            def keep(rel: str, body: Iterator[bytes]) -> None:
                done.add(rel)
                self._settle(rel, damaged[rel], self._write_verified(body, rel, wanted[rel]))
            failure = self._tar_pass(set(wanted), keep)
            for rel in sorted(set(wanted) - done):
                self._settle(rel, damaged[rel], (None, failure or "the replica holds no copy of it", {}))
            return
        for rel, digests in sorted(wanted.items()):
            self._settle(rel, damaged[rel], self._fetch_object(rel, digests))

    def _fetch_object(self, rel: str, digests: dict[str, str]) -> _Fetched:
        key = object_key(self.name, rel)
        try:
            if self.store.head(key) is None:
                return None, "the replica holds no copy of it", {}
            with self.store.get(key) as chunks:
                return self._write_verified(chunks, rel, digests)
        except ObjectArchived as exc:
            return None, str(exc), {}
        except (UnsafePath, StorageError) as exc:
            if self._ours(exc):
                raise  # our own disk is full or our staging was swapped for a link: stop writing
            return None, f"the replica's copy could not be read ({exc})", {}
        except PreserveError as exc:
            return None, f"the replica's copy could not be read ({exc})", {}

    def _ours(self, exc: PreserveError) -> bool:
        """Whether a storage error or a refused link concerns the bag (stop) rather than the replica
        (that one file is unavailable)."""
        if not isinstance(exc, (StorageError, UnsafePath)):
            return False
        where = str(exc.fields.get("path", ""))
        return where == str(self.root) or where.startswith(f"{self.root}{os.sep}")

    def _staging_rel(self) -> str:
        if self._staging is None:
            self._staging = self.journal.new_folder(self.root, "repair").name
        return self._staging

    def _drop_staging(self) -> None:
        """Remove the staging folder now (not only when the lock is released), so the last
        validation sees the bag as the curator will."""
        self.journal.discard()
        self._staging = None

    def _write_verified(self, chunks: Iterator[bytes], rel: str, digests: dict[str, str]) -> _Fetched:
        """Write ``chunks`` into the staging folder while hashing; keep the copy only if every digest matches."""
        self._count += 1
        temp = f"{self._staging_rel()}/{self._count}"
        hasher = MultiHasher(sorted(digests))
        try:
            fd = open_beneath(self.root, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except LinkRefused as exc:
            raise refusal(exc) from None
        except OSError as exc:
            raise self._storage_error(exc, rel) from exc
        try:
            with open(fd, "wb") as out:
                for chunk in chunks:
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise self._storage_error(exc, rel) from exc
                    hasher.update(chunk)
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as exc:
                    raise self._storage_error(exc, rel) from exc
        except BaseException:
            hasher.abandon()
            _unlink(self.root, temp)
            raise
        found = hasher.hexdigests()
        bad = [a for a in sorted(digests) if found[a] != digests[a]]
        if bad:
            _unlink(self.root, temp)
            alg = bad[0]
            listing = f"manifest-{alg}.txt" if rel.startswith("data/") else f"tagmanifest-{alg}.txt"
            return None, f"the replica's copy does not match {listing} (expected {digests[alg]}, found {found[alg]}); not used", found
        return temp, "", found

    def _storage_error(self, exc: OSError, rel: str) -> StorageError:
        if exc.errno in _NO_SPACE:
            why = (f"no space left on the file system for the temporary copy of {rel}; free space and run repair "
                   "again (the damaged files not yet repaired were left as they were)")
        else:
            why = f"the temporary copy of {rel} could not be written ({exc.strerror or exc})"
        return StorageError(path=str(self.root), reason=why)

    def _settle(self, rel: str, problem: str, fetched: _Fetched, *, outcome: str | None = None,
                found_copy: bool = False) -> None:
        """Put one verified copy in place at once (so an interruption leaves nothing half done) and record it."""
        temp, reason, found = fetched
        if temp is None:
            status = outcome or ("refused" if found or found_copy else "unavailable")
        else:
            try:
                parent = posixpath.dirname(rel)
                if parent:
                    makedirs_beneath(self.root, parent)
                replace_beneath(self.root, temp, rel)
                status, reason = "repaired", ""
            except LinkRefused as exc:
                status, reason = "refused", f"{exc.filename} {LINK_REASON}; nothing was written"
            except OSError as exc:
                if exc.errno in _NO_SPACE:
                    raise self._storage_error(exc, rel) from exc
                status, reason = "unavailable", f"could not replace it ({exc.strerror or exc})"
            finally:
                _unlink(self.root, temp)
        self.result.files.append(FileRepair(rel, problem, status, reason))
        if self.ledger is not None:
            self.ledger.record_repair(str(self.root), rel, self.result.source, outcome=status, time=_now(),
                                      identifier=self.identifier,
                                      detail={"problem": problem, "reason": reason, "found": found})

    # -- reading the replica -----------------------------------------------------------------

    def _replica_bytes(self, rels: list[str]) -> dict[str, bytes]:
        """The replica's copies of small files (tag files), those it holds."""
        out: dict[str, bytes] = {}
        if self.layout == "tar":
            def keep(rel: str, body: Iterator[bytes]) -> None:
                out[rel] = b"".join(body)
            self._tar_pass(set(rels), keep)
            return out
        for rel in rels:
            key = object_key(self.name, rel)
            try:
                if self.store.head(key) is not None:
                    out[rel] = read_bytes(self.store, key)
            except PreserveError:
                continue
        return out

    def _tar_pass(self, wanted: set[str], keep: Callable[[str, Iterator[bytes]], None]) -> str | None:
        """One pass over the tar object, handing each wanted regular member to ``keep``; returns
        why the tar could not be read to its end (None when it could)."""
        seen: set[str] = set()
        try:
            with self.store.get(tar_key(self.name)) as chunks, \
                    tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tf:  # type: ignore[call-overload]
                for member in tf:
                    rel = member.name[len(self.name) + 1:] if member.name.startswith(f"{self.name}/") else None
                    if rel in wanted and rel not in seen and member.isfile():
                        body = tf.extractfile(member)
                        if body is not None:
                            seen.add(rel)
                            keep(rel, _read_all(body))
        except (PreserveError, tarfile.TarError) as exc:
            if isinstance(exc, PreserveError) and self._ours(exc):
                raise
            return f"the replica's copy could not be read from {self.result.source} ({exc})"
        return None

    # -- empty folders -----------------------------------------------------------------------

    def _recreate_empty_directories(self) -> None:
        try:
            listed = empty_directories(self.root)
        except (LinkRefused, PreserveError):
            return  # validation reports the list itself as a problem
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return  # a folder, pipe or device in its place: reported with the other tag files
            raise unreadable_tag_file(self.root, EMPTY_DIRECTORIES, exc) from exc
        for rel in listed:
            try:
                lstat_beneath(self.root, rel)
                continue
            except FileNotFoundError:
                pass
            except OSError:
                continue  # a link on the way or a file in its place: validation reports it
            try:
                makedirs_beneath(self.root, rel)
            except LinkRefused:
                continue
            except OSError as exc:
                if exc.errno in _NO_SPACE:
                    raise StorageError(path=str(self.root), reason=f"no space left to create the empty folder {rel}") from exc
                continue
            self.result.directories.append(rel)


def _ancestors(rel: str) -> Iterator[str]:
    """The folders ``rel`` lies in, nearest first, down to the bag's own."""
    while (rel := posixpath.dirname(rel)):
        yield rel


def _is_folder(root: Path, rel: str) -> bool:
    try:
        return stat.S_ISDIR(lstat_beneath(root, rel).st_mode)
    except (OSError, UnsafePath):
        return False


def _no_file_there(exc: OSError) -> bool:
    """Whether opening a tag file failed because no file is there to read (a folder, pipe or device
    in its place, or a file where one of its folders should be): damage a replica can mend. Any
    other error (permission denied, an I/O error...) concerns a file that is there: repairing it
    would hide that problem and record it as damage."""
    return isinstance(exc, FileNotFoundError) or exc.errno in (errno.EINVAL, errno.ENOTDIR)


def _digest(alg: str, data: bytes) -> str:
    hasher = MultiHasher([alg])
    hasher.update(data)
    return hasher.hexdigests()[alg]


def _unlink(root: Path, rel: str) -> None:
    try:
        unlink_beneath(root, rel)
    except OSError:
        pass


def _read_all(body: Any) -> Iterator[bytes]:
    while chunk := body.read(_CHUNK):
        yield bytes(chunk)

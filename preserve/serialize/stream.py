"""Validating a serialized bag as a stream: no extraction, the same findings as for a folder.

One pass over the archive hashes every member with the algorithms the bag's manifests use (known
from their member names, which preserve writes first; until a manifest is seen, sha256 and
sha512, the common defaults, are assumed). Digests and names go to a disk-backed index, so memory
stays flat for huge bags. When an archive from another tool puts a manifest for another algorithm
after the payload, a second pass hashes just what is missing. Then the checks of
:func:`preserve.bag.validate.validate_bag` run on the index, producing the same findings.

Only the top-level tag files that the checks parse (bagit.txt, bag-info.txt, fetch.txt, the
manifests) are spooled to a private temporary folder, removed at the end; with ``sidecars``, the
PREMIS/METS sidecars too, so :func:`preserve.sidecars.check.check_sidecars` can check them as it
checks a folder's.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from preserve.bag import validate as bagcheck
from preserve.bag.index import PathIndex
from preserve.bag.reader import Bag, open_bag
from preserve.bag.validate import Finding, ValidationReport
from preserve.errors import BadArchive, BadTagFile
from preserve.fixity import ALGORITHMS, THREADED_FROM, Progress, hash_stream
from preserve.serialize.archive import (
    MANIFEST,
    SPOOLED,
    Member,
    archive_format,
    bag_name,
    content_size,
    iter_members,
)

if TYPE_CHECKING:
    from preserve.profiles import Profile

_SPECULATIVE = ("sha256", "sha512")
#: The sidecars spooled for the sidecar checks (see preserve.sidecars.check).
SIDECAR_FILES = ("metadata/mets.xml", "metadata/premis.xml")


@dataclass
class _Scan:
    src: Path
    fmt: str
    index: PathIndex
    spool: Path
    top: str | None = None
    problems: list[Finding] = field(default_factory=list)
    bag: Bag | None = None

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        return self.index.db.execute(sql, params)

    def first(self, sql: str, params: tuple[object, ...] = ()) -> object:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]


def _seen_in(scan: _Scan, table: str) -> Callable[[str], bool]:
    def seen(rel: str) -> bool:
        try:
            scan.execute(f"INSERT INTO {table} VALUES (?)", (rel,))
        except sqlite3.IntegrityError:
            return True
        return False

    return seen


def _hash_member(scan: _Scan, m: Member, algs: list[str], spool_to: Path | None, progress: Progress | None) -> None:
    def chunks() -> Iterator[bytes]:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(spool_to, "wb")) if spool_to is not None else None
            for chunk in m.chunks():
                if out is not None:
                    out.write(chunk)
                if progress is not None:
                    progress(len(chunk), 0)
                yield chunk

    # a large member gets a thread per algorithm, as hash_file does for large files on disk
    digests, _size = hash_stream(chunks(), algs, threaded=m.size >= THREADED_FROM and len(algs) > 1)
    scan.index.db.executemany("INSERT OR REPLACE INTO h VALUES (?,?,?)", [(m.rel, a, d) for a, d in digests.items()])
    if progress is not None:
        progress(0, 1)


def _first_pass(scan: _Scan, hashing: bool, only: list[str] | None, progress: Progress | None,
                sidecars: bool = False) -> None:
    payload_algs: list[str] = []
    tag_algs: list[str] = []

    def usable(known: list[str]) -> list[str]:
        algs = [a for a in (known or list(_SPECULATIVE)) if a in ALGORITHMS]
        return [a for a in algs if only is None or a in only]

    for m in iter_members(scan.src, seen=_seen_in(scan, "seen")):
        if m.problem is not None:
            scan.problems.append(Finding("error", "serialization", f"archive member {m.problem}; it was not read", path=m.name))
            continue
        scan.top = scan.top or m.top
        if m.kind == "dir":
            if m.rel:
                scan.execute("INSERT OR IGNORE INTO dirs VALUES (?)", (m.rel,))
            continue
        top_level = "/" not in m.rel
        if top_level and (manifest := MANIFEST.match(m.rel)):
            (tag_algs if manifest.group(1) else payload_algs).append(manifest.group(2).lower())
        if m.rel.startswith("data/"):
            scan.index.add_files([(m.rel, m.size)])
            algs = usable(payload_algs) if hashing else []
        else:
            scan.execute("INSERT OR IGNORE INTO t VALUES (?,?)", (m.rel, m.size))
            algs = usable(tag_algs) if hashing else []
        spool_to = scan.spool / m.rel if top_level and SPOOLED.match(m.rel) else None
        if sidecars and m.rel in SIDECAR_FILES:
            spool_to = scan.spool / m.rel
            spool_to.parent.mkdir(exist_ok=True)
        if algs or spool_to is not None:
            _hash_member(scan, m, algs, spool_to, progress)


def _gaps(scan: _Scan, table: str, algs: list[str]) -> bool:
    if not algs:
        return False
    marks = ",".join("?" * len(algs))
    return bool(scan.first(
        f"SELECT 1 FROM {table} WHERE (SELECT count(*) FROM h WHERE h.path = {table}.path AND h.alg IN ({marks})) < ? LIMIT 1",
        (*algs, len(algs))))


def _tag_gaps(scan: _Scan, bag: Bag, algs: list[str]) -> bool:
    """Whether a tag file a tag manifest lists lacks a digest (tag manifests themselves, hashed
    before the next tag manifest's name was seen, are rarely listed and need no second pass)."""
    for alg in algs:
        try:
            listed = {line.path for line in bag.iter_manifest(alg, tag=True) if not line.error}
        except UnicodeDecodeError:
            continue  # reported by the checks
        for rel in listed:
            if scan.first("SELECT 1 FROM t WHERE path = ?", (rel,)) and not scan.first(
                    "SELECT 1 FROM h WHERE path = ? AND alg = ?", (rel, alg)):
                return True
    return False


def _second_pass(scan: _Scan, payload_algs: list[str], tag_algs: list[str], progress: Progress | None) -> None:
    """Hash what the first pass could not know it had to (a manifest came after its files)."""
    for m in iter_members(scan.src, seen=_seen_in(scan, "seen2")):
        if m.problem is not None or m.kind == "dir":
            continue
        algs = payload_algs if m.rel.startswith("data/") else tag_algs
        have = {str(r[0]) for r in scan.execute("SELECT alg FROM h WHERE path = ?", (m.rel,))}
        missing = [a for a in algs if a not in have]
        if missing:
            _hash_member(scan, m, missing, None, progress)


@contextlib.contextmanager
def scan_archive(
    path: str | os.PathLike[str], *, hashing: bool = True, algorithms: list[str] | None = None,
    progress: Progress | None = None, sidecars: bool = False,
) -> Iterator[_Scan]:
    """Read a serialized bag once (twice at most, see the module docstring) into an index.

    ``sidecars`` also spools the PREMIS/METS sidecars (:data:`SIDECAR_FILES`)."""
    src = Path(path)
    if not src.is_file():
        raise BadArchive(path=str(src), reason="no such file")
    fmt = archive_format(src)
    if fmt is None:
        raise BadArchive(path=str(src), reason="not a tar, tar.gz or zip file")
    with tempfile.TemporaryDirectory(prefix="preserve-archive-") as tmp, PathIndex() as index:
        scan = _Scan(src, fmt, index, Path(tmp))
        for ddl in ("CREATE TABLE t (path TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID",
                    "CREATE TABLE h (path TEXT NOT NULL, alg TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (path, alg)) WITHOUT ROWID",
                    "CREATE TABLE dirs (path TEXT PRIMARY KEY) WITHOUT ROWID",
                    "CREATE TABLE seen (path TEXT PRIMARY KEY) WITHOUT ROWID",
                    "CREATE TABLE seen2 (path TEXT PRIMARY KEY) WITHOUT ROWID"):
            scan.execute(ddl)
        _first_pass(scan, hashing, algorithms, progress, sidecars)
        if not (scan.spool / "bagit.txt").is_file():
            misplaced = sum(1 for f in scan.problems if "top-level folder" in f.message or "top level" in f.message)
            extra = (f"; {misplaced} member(s) lie outside it, and a serialized bag holds exactly one top-level folder, "
                     "named like the bag") if misplaced else ""
            if scan.top is None:
                raise BadTagFile(path=str(src), reason="not a bag: the archive has no top-level folder; a serialized bag holds "
                                                       "exactly one, named like the bag, with bagit.txt in it")
            raise BadTagFile(path=str(src), reason=f"not a bag: there is no bagit.txt in the archive's top-level folder {scan.top!r}{extra}")
        scan.bag = open_bag(scan.spool)
        if hashing:
            payload_algs = [a for a in sorted(scan.bag.payload_manifests) if a in ALGORITHMS and (algorithms is None or a in algorithms)]
            tag_algs = [a for a in sorted(scan.bag.tag_manifests) if a in ALGORITHMS]
            if _gaps(scan, "d", payload_algs) or _tag_gaps(scan, scan.bag, tag_algs):
                _second_pass(scan, payload_algs, tag_algs, progress)
        if scan.top is not None and scan.top != bag_name(src):
            scan.problems.append(Finding("warning", "serialization",
                                         f"the top-level folder {scan.top!r} is not named like the archive ({bag_name(src)!r}), as RFC 8493 recommends",
                                         path=scan.top))
        yield scan


class ArchiveFacts:
    """:class:`preserve.profiles.BagFacts` of a scanned archive."""

    def __init__(self, scan: _Scan) -> None:
        assert scan.bag is not None
        self.bag = scan.bag
        self.serialization: str | None = scan.fmt
        self._scan = scan

    def tag_files(self) -> Iterator[str]:
        for (rel,) in self._scan.index.query("SELECT path FROM t ORDER BY path"):
            yield str(rel)

    def payload_files(self) -> Iterator[tuple[str, int]]:
        for rel, size in self._scan.index.query("SELECT path, size FROM d ORDER BY path"):
            yield str(rel), int(size)  # type: ignore[call-overload]

    def has_file(self, rel: str) -> bool:
        return bool(self._scan.first("SELECT 1 FROM t WHERE path = ? UNION SELECT 1 FROM d WHERE path = ?", (rel, rel)))

    def folder_holds_something(self, rel: str) -> bool:
        prefix = rel.rstrip("/") + "/"
        n = len(prefix)
        return bool(self._scan.first(
            "SELECT 1 FROM (SELECT path FROM t UNION ALL SELECT path FROM d UNION ALL SELECT path FROM dirs) "
            "WHERE substr(path, 1, ?) = ? LIMIT 1", (n, prefix)))


def archive_profile_findings(path: str | os.PathLike[str], profile: Profile) -> list[Finding]:
    """Profile findings for a serialized bag, from a listing pass (nothing is hashed)."""
    from preserve.profiles import check_facts

    with scan_archive(path, hashing=False) as scan:
        return check_facts(ArchiveFacts(scan), profile)


def archive_fatal_findings(path: str | os.PathLike[str], profile: Profile) -> list[Finding]:
    """The profile's fatal checks (serialization, BagIt version) from the archive's format and its
    bagit.txt alone, which preserve writes first: nothing is hashed. Empty when they pass, or when
    the archive has no readable bagit.txt (the full validation reports that)."""
    from preserve.profiles import fatal_findings

    src = Path(path)
    fmt = archive_format(src) if src.is_file() else None
    if fmt is None:
        return []
    with tempfile.TemporaryDirectory(prefix="preserve-archive-") as tmp:
        spooled = Path(tmp) / "bagit.txt"
        try:
            for m in iter_members(src):
                if m.problem is None and m.kind == "file" and m.rel == "bagit.txt":
                    with open(spooled, "wb") as out:
                        for chunk in m.chunks():
                            out.write(chunk)
                    break
        except BadArchive:
            return []
        if not spooled.is_file():
            return []
        return fatal_findings(profile, fmt, open_bag(tmp).version)


def _sidecar_findings(scan: _Scan) -> list[Finding]:
    """check_sidecars on the spooled tag files, with the payload's sizes taken from the archive's index."""
    from preserve.sidecars.check import check_sidecars

    assert scan.bag is not None
    try:
        entries, _problems = scan.bag.fetch_entries()
    except (OSError, UnicodeDecodeError):
        entries = []  # reported by the checks
    # an item fetch.txt names and the archive does not hold counts at its declared length, as in a folder
    declared = {e.path: e.length for e in entries if e.length is not None}

    def payload_size(rel: str) -> int | None:
        row = scan.index.db.execute("SELECT size FROM d WHERE path = ?", (rel,)).fetchone()
        return declared.get(rel) if row is None else int(row[0])

    return check_sidecars(scan.spool, payload_size=payload_size)


def validate_archive(
    path: str | os.PathLike[str],
    *,
    fast: bool = False,
    fetch: bool = False,
    profile: Profile | None = None,
    algorithms: list[str] | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int, int], None] | None = None,
    sidecars: bool = False,
) -> ValidationReport:
    """Validate a tar, tar.gz or zip bag without extracting it (see the module docstring).

    The report holds the same findings :func:`~preserve.bag.validate.validate_bag` gives for the
    unpacked folder, preceded by any unsafe or misplaced members (code ``serialization``; they are
    never read) and followed, with ``profile``, by the profile's findings and, with ``sidecars``,
    by those of :func:`preserve.sidecars.check.check_sidecars` when the bag has metadata/mets.xml.

    With ``profile``, its fatal checks run first (:func:`archive_fatal_findings`); when they fail
    the report holds only them, in mode ``profile``, and nothing is hashed.
    """
    src = Path(path)
    if profile is not None:
        fatal = archive_fatal_findings(src, profile)
        if fatal:
            return ValidationReport(path=str(src), findings=fatal, mode="profile")
    if on_total is not None and src.is_file() and (total := content_size(src)):
        on_total(total, 0)
    with scan_archive(src, hashing=not fast, algorithms=algorithms, progress=progress, sidecars=sidecars) as scan:
        bag = scan.bag
        assert bag is not None
        report = ValidationReport(path=str(src), version=bag.version, mode="fast" if fast else "full")
        report.findings.extend(scan.problems)
        _check(scan, bag, report, fast, fetch, algorithms)
        if profile is not None:
            from preserve.profiles import check_facts

            report.findings.extend(check_facts(ArchiveFacts(scan), profile))
        if sidecars and (scan.spool / SIDECAR_FILES[0]).is_file():
            report.findings.extend(_sidecar_findings(scan))
        return report


def _check(scan: _Scan, bag: Bag, report: ValidationReport, fast: bool, fetch: bool, algorithms: list[str] | None) -> None:
    """The steps of validate_bag, on the index instead of the disk (keep the two in step)."""
    for p in bag.problems:
        code = "bagit-txt" if "bagit.txt" in p.message or "BagIt-Version" in p.message or "Encoding" in p.message else "bag-info"
        report.add(p.severity, code, p.message,  # type: ignore[arg-type]
                   path="bagit.txt" if code == "bagit-txt" else bag.info_file)
    if not bag.payload_manifests:
        report.add("error", "no-manifest", "the bag has no payload manifest (manifest-<algorithm>.txt)")
    report.algorithms = sorted(bag.payload_manifests)
    for alg in report.algorithms:
        if alg not in ALGORITHMS:
            report.add("error", "unsupported-algorithm", f"manifest-{alg}.txt uses an algorithm preserve cannot compute", path=f"manifest-{alg}.txt")
    if not scan.first("SELECT 1 FROM dirs WHERE path = 'data' UNION SELECT 1 FROM d LIMIT 1"):
        report.add("error", "missing", "the payload directory data/ is missing", path="data")
    index = scan.index
    bagcheck._load_manifests(bag, index, report)
    index.finish_loading()
    bagcheck.resolve_names(bag, index, report)
    bagcheck._completeness(bag, index, report)
    total = next(index.query("SELECT count(*), coalesce(sum(size),0) FROM d"))
    report.files, report.bytes = int(total[0]), int(total[1])  # type: ignore[call-overload]
    # fetch.txt items are payload (RFC 8493 2.2.3): Payload-Oxum counts them as a folder's check
    # does, at their fetched size with --fetch, at their declared length otherwise
    fetched = bagcheck._fetch_items(bag, index, report, fetch)
    bagcheck._missing(index, report, fetched.pending)
    bagcheck._check_oxum(bag, report, fetched)
    if not fast:
        usable = [a for a in report.algorithms if a in ALGORITHMS and (algorithms is None or a in algorithms)]
        _compare_payload(scan, report, usable)
    # the items --fetch downloaded were checked like the archive's files, so the summary counts them
    report.files += fetched.read_files
    report.bytes += fetched.read_bytes
    _compare_tags(scan, bag, report, fast)


def _compare_payload(scan: _Scan, report: ValidationReport, algs: list[str]) -> None:
    if not algs:
        return
    marks = ",".join("?" * len(algs))
    rows = scan.index.query(
        f"SELECT d.path, m.alg, m.digest, h.digest FROM d JOIN m ON m.path = d.path "
        f"LEFT JOIN h ON h.path = d.path AND h.alg = m.alg WHERE m.alg IN ({marks}) ORDER BY d.path, m.alg", tuple(algs))
    current: str | None = None
    expected: dict[str, set[str]] = {}
    found: dict[str, str | None] = {}

    def flush() -> None:
        for alg, digests in sorted(expected.items()):
            if found[alg] not in digests:
                report.add("error", "altered", f"{alg} checksum does not match manifest-{alg}.txt", path=current,
                           algorithm=alg, expected=sorted(digests)[0], found=found[alg])

    for rel, alg, digest, got in rows:
        if rel != current:
            if current is not None:
                flush()
            current, expected, found = str(rel), {}, {}
        expected.setdefault(str(alg), set()).add(str(digest))
        found[str(alg)] = None if got is None else str(got)
    if current is not None:
        flush()


def _compare_tags(scan: _Scan, bag: Bag, report: ValidationReport, fast: bool) -> None:
    for rel, digests in sorted(bagcheck.tag_manifest_entries(bag, report).items()):
        if not scan.first("SELECT 1 FROM t WHERE path = ?", (rel,)):
            report.add("error", "tag-missing", "listed in a tag manifest but not found", path=rel)
            continue
        if fast:
            continue
        have = {str(a): str(d) for a, d in scan.execute("SELECT alg, digest FROM h WHERE path = ?", (rel,))}
        for alg in [a for a in digests if a in ALGORITHMS]:
            if have.get(alg) != digests[alg]:
                report.add("error", "tag-altered", f"{alg} checksum does not match tagmanifest-{alg}.txt", path=rel,
                           algorithm=alg, expected=digests[alg], found=have.get(alg))

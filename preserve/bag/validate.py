"""Validation of a bag per RFC 8493: completeness and validity, every problem reported.

It reads bags made by any tool (BagIt 0.93 to 1.0) and never writes to them. No file is opened
through a symbolic link at any level below the bag (:mod:`preserve.safefs`): a link is reported,
and a manifest entry reached through a linked folder is reported naming the link, unread.

``fetch=True`` downloads the items of fetch.txt that are not in the bag, over http and https only,
reading at most one byte more than fetch.txt declares, and checks them; they then count towards
Payload-Oxum and the sidecar checks like files on disk.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from preserve.algorithms import ALGORITHMS
from preserve.bag.index import PathIndex, real_path
from preserve.bag.index import printable as index_printable
from preserve.bag.paths import (
    bare_percent,
    code_points,
    decode_manifest_path,
    nfc,
    normalization_form,
    unsafe_reason,
)
from preserve.bag.reader import (
    Bag,
    empty_directories,
    irregular_reason,
    open_bag,
    unreadable_tag_file,
    unreadable_tag_folder,
)
from preserve.bag.tagfiles import EMPTY_DIRECTORIES
from preserve.errors import BadTagFile, UnsafePath
from preserve.safefs import LinkRefused, lstat_beneath

if TYPE_CHECKING:
    # the hashing engine is imported where a digest is computed: a fast validation, which
    # hashes nothing, starts without it (preserve validate --fast of a small bag is mostly start-up)
    from preserve.fixity import FilesBelow, Progress, RateLimiter

Severity = Literal["error", "warning"]

#: Finding codes. The audit ledger's kinds are a subset: missing, altered, unlisted, unreadable, oxum.
CODES = (
    "bagit-txt", "bag-info", "encoding", "no-manifest", "manifest-syntax", "unsafe-path",
    "outside-payload", "duplicate", "missing", "unlisted", "altered", "unreadable", "oxum",
    "percent-literal", "unsupported-algorithm", "fetch", "not-fetched", "tag-missing",
    "tag-altered", "sidecar", "profile", "serialization", "not-regular", "missing-directory",
    "name-normalization",
)

#: Schemes ``validate --fetch`` downloads from; a redirect to any other is refused.
FETCH_SCHEMES = ("http", "https")
#: Seconds a fetch waits for the server to connect or send more bytes.
FETCH_TIMEOUT = 60.0


def behind_link(rel: str, link: str) -> str:
    """The finding's message for ``rel`` when ``link`` (bag-relative) is a symbolic link on its path."""
    if link == rel:
        return "is a symbolic link; bags hold files, so it was not followed"
    return f"is reached through {link}, a symbolic link, which was not followed: the file was not read"


def _link_rel(root: str | os.PathLike[str], exc: LinkRefused) -> str:
    return os.path.relpath(str(exc.filename), os.fspath(root)).replace(os.sep, "/")


@dataclass(frozen=True)
class Finding:
    """One problem (or warning) with a bag, naming the file where there is one."""

    severity: Severity
    code: str
    message: str
    path: str | None = None
    algorithm: str | None = None
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass
class ValidationReport:
    path: str
    version: str | None = None
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    algorithms: list[str] = field(default_factory=list)
    mode: str = "full"

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, severity: Severity, code: str, message: str, **kw: Any) -> None:
        self.findings.append(Finding(severity, code, message, **kw))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "valid": self.ok, "version": self.version, "mode": self.mode,
            "files": self.files, "bytes": self.bytes, "algorithms": self.algorithms,
            "errors": len(self.errors), "warnings": len(self.warnings),
            "findings": [{k: v for k, v in asdict(f).items() if v is not None} for f in self.findings],
        }


def _oxum(bag: Bag) -> tuple[int, int] | str | None:
    value = bag.info_value("Payload-Oxum")
    if value is None:
        return None
    try:
        octets, count = value.strip().split(".")
        return int(octets), int(count)
    except ValueError:
        return value


def validate_bag(
    path: str | os.PathLike[str],
    *,
    fast: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int, int], None] | None = None,
    fetch: bool = False,
    drop_cached: bool = False,
    limiter: RateLimiter | None = None,
    algorithms: list[str] | None = None,
    check_tag_manifests: bool = True,
    processes: int | None = 0,
) -> ValidationReport:
    """Validate a bag directory. Returns a report holding every finding; raises only when ``path``
    is not a bag at all (:class:`~preserve.errors.BadTagFile`, :class:`~preserve.errors.SourceNotFound`).

    ``processes`` > 0 hashes many small files in that many worker processes; ``None`` decides from
    the bag (:func:`preserve.fixity.processes_for`). Worker processes start the caller's main
    module again (as multiprocessing does), so scripts that pass it guard their entry point.

    ``fast`` checks completeness and Payload-Oxum without hashing. ``algorithms`` restricts the
    payload digests verified (the audit's fast tier); by default every manifest is verified.
    """
    bag = open_bag(path)
    report = ValidationReport(path=str(bag.path), version=bag.version, mode="fast" if fast else "full")
    for p in bag.problems:
        code = "bagit-txt" if "bagit.txt" in p.message or "BagIt-Version" in p.message or "Encoding" in p.message else "bag-info"
        report.add(p.severity, code, p.message,  # type: ignore[arg-type]
                   path="bagit.txt" if code == "bagit-txt" else bag.info_file)
    if bag.version_tuple >= (0, 96) and bag.info_file is None:
        pass  # bag-info.txt is optional
    if not bag.payload_manifests:
        report.add("error", "no-manifest", "the bag has no payload manifest (manifest-<algorithm>.txt)")
    report.algorithms = sorted(bag.payload_manifests)
    for alg in report.algorithms:
        if alg not in ALGORITHMS:
            report.add("error", "unsupported-algorithm", f"manifest-{alg}.txt uses an algorithm preserve cannot compute", path=f"manifest-{alg}.txt")
    data_kind = _lstat_kind(bag.path / "data")
    if data_kind == "link":
        report.add("error", "not-regular", "the payload directory is a symbolic link; it was not followed", path="data")
    elif data_kind != "dir":
        report.add("error", "missing", "the payload directory data/ is missing", path="data")
    for name, why in bag.irregular:
        report.add("error", "not-regular", f"{why} (a tag file)", path=name)
    _irregular_tag_entries(bag, report)

    with PathIndex() as index:
        _load_manifests(bag, index, report)
        blind = _load_disk(bag, index, report)
        index.finish_loading()
        resolve_names(bag, index, report)
        _completeness(bag, index, report)
        total = next(index.query("SELECT count(*), coalesce(sum(size),0) FROM d"))
        report.files, report.bytes = int(total[0]), int(total[1])  # type: ignore[call-overload]
        fetched = _fetch_items(bag, index, report, fetch)
        _missing(index, report, fetched.pending, bag.path, blind)
        if not blind:  # what a folder that cannot be listed holds is unknown: the count cannot be judged
            _check_oxum(bag, report, fetched)
        _check_empty_directories(bag, report)
        if not fast:
            usable = [a for a in report.algorithms if a in ALGORITHMS and (algorithms is None or a in algorithms)]
            if on_total is not None:
                on_total(report.bytes, report.files)
            _verify_payload(bag, index, report, usable, workers, progress, drop_cached, limiter, processes)
        # the items --fetch downloaded were checked like the files on disk, so the summary counts them;
        # only now: until here report.files/bytes are what is read from disk (progress, worker choice)
        report.files += fetched.read_files
        report.bytes += fetched.read_bytes
    if check_tag_manifests:
        _verify_tag_manifests(bag, report, fast)
    return report


def _load_manifests(bag: Bag, index: PathIndex, report: ValidationReport) -> None:
    strict = bag.version_tuple >= (1, 0)
    bare: set[str] = set()
    for alg in sorted(bag.payload_manifests):
        name = f"manifest-{alg}.txt"
        rows: list[tuple[str, str, str, int, str]] = []
        try:
            for line in bag.iter_manifest(alg):
                if line.error:
                    report.add("error", "manifest-syntax", line.error, path=name)
                    continue
                reason = unsafe_reason(line.path)
                if reason:
                    report.add("error", "unsafe-path", f"{name} line {line.line} lists an unsafe path ({reason}); it was not opened", path=line.raw)
                    continue
                if not line.path.startswith("data/"):
                    report.add("error", "outside-payload", f"{name} line {line.line} lists a path outside data/", path=line.path)
                    continue
                if strict and bare_percent(line.raw) and line.path not in bare:
                    bare.add(line.path)  # once, not once per manifest
                    report.add("warning", "percent-literal",
                               f"{name} line {line.line}: a '%' not encoded as %25, which BagIt 1.0 requires; read "
                               "literally (a reader that decodes every %XX may name another file)", path=line.path)
                rows.append((line.path, alg, line.digest, line.line, line.raw))
                if len(rows) >= 5000:
                    index.add_entries(rows)
                    rows = []
        except UnicodeDecodeError as exc:
            report.add("error", "encoding", f"{name} is not valid {bag.declared_encoding}: {exc.reason} at byte {exc.start}", path=name)
        except LinkRefused as exc:
            report.add("error", "not-regular", behind_link(name, _link_rel(bag.path, exc)), path=name)
        except OSError as exc:
            raise unreadable_tag_file(bag.path, name, exc) from exc
        index.add_entries(rows)
    # a path listed twice in one manifest
    index.db.execute("CREATE TEMP TABLE dup AS SELECT path, alg, count(*) n, count(DISTINCT digest) k FROM m GROUP BY path, alg HAVING n > 1")
    for path, alg, n, k in list(index.db.execute("SELECT * FROM dup")):
        differ = k > 1
        severity: Severity = "error" if (strict or differ) else "warning"
        detail = "with different digests" if differ else "with the same digest"
        report.add(severity, "duplicate", f"listed {n} times in manifest-{alg}.txt {detail}", path=str(path), algorithm=str(alg))


def _lstat_kind(path: Path) -> str | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "other"


def _load_disk(bag: Bag, index: PathIndex, report: ValidationReport) -> list[str]:
    """Index what data/ holds. Links, pipes and devices are reported and kept out of hashing (a
    pipe would block the reader for ever, a link may lead out of the bag); folders that cannot be
    listed (and entries that cannot be examined) are reported as unreadable and returned: what
    lies in or below them is unknown, not lost."""
    unreadable: list[tuple[str, str]] = []
    batch: list[tuple[str, int, bool]] = []
    for rel, st in bag.iter_payload_files(unreadable):
        why = irregular_reason(st)
        if why:
            report.add("error", "not-regular", why, path=index_printable(rel))
        batch.append((rel, st.st_size, why is not None))
        if len(batch) >= 5000:
            index.add_files(batch)
            batch = []
    index.add_files(batch)
    for rel, why in sorted(unreadable):
        unseen = "what it holds" if why.startswith("the folder") else "it"
        report.add("error", "unreadable", f"{why}; {unseen} was not checked, nor Payload-Oxum",
                   path=index_printable(rel))
    return [rel for rel, _why in unreadable]


def resolve_names(bag: Bag, index: PathIndex, report: ValidationReport) -> None:
    """After loading manifests and files: the '%' fallbacks of the bag's BagIt version, then names
    that differ only by Unicode normalization. Shared with archive validation, which loads its
    index from the archive instead of the disk."""
    _resolve_percent_literals(index, report, bag)
    _resolve_normalization(index, report)


def _resolve_percent_literals(index: PathIndex, report: ValidationReport, bag: Bag | None = None) -> None:
    """A name read under the other BagIt version's '%' rule, where only that name exists: accepted,
    with a warning. In a 1.0 bag (or ``bag`` None), a '%25' some tool wrote for a literal '%25' in
    the name; before 1.0 (where '%25' is not decoded), a '%25' a tool wrote as 1.0 encodes '%'."""
    if bag is None or bag.version_tuple >= (1, 0):
        rows = list(index.query(
            "SELECT DISTINCT m.path, m.raw FROM m WHERE m.raw <> m.path "
            "AND NOT EXISTS (SELECT 1 FROM d WHERE d.path = m.path) "
            "AND EXISTS (SELECT 1 FROM d WHERE d.path = m.raw)"))
        for decoded, raw in rows:
            report.add("warning", "percent-literal",
                       f"the manifest has '%' unencoded (as bagit-python writes it); read literally, not as {decoded!r}",
                       path=str(raw))
            index.db.execute("UPDATE m SET path = raw WHERE path = ? AND raw = ?", (decoded, raw))
        return
    listed = [str(p) for (p,) in index.query(
        "SELECT DISTINCT m.path FROM m WHERE instr(m.path, '%') > 0 "
        "AND NOT EXISTS (SELECT 1 FROM d WHERE d.path = m.path)")]
    for literal in listed:
        decoded = decode_manifest_path(literal)
        if decoded == literal or next(index.query("SELECT count(*) FROM d WHERE path = ?", (decoded,)))[0] == 0:
            continue
        if next(index.query("SELECT count(*) FROM m WHERE path = ?", (decoded,)))[0]:
            continue  # the manifest lists that name too: the literal one is missing
        report.add("warning", "percent-literal",
                   f"the manifest encodes '%' as %25, a BagIt 1.0 rule this BagIt {bag.version} bag does not follow; "
                   f"read as {decoded!r}, the name in data/", path=literal)
        index.db.execute("UPDATE m SET path = ? WHERE path = ?", (decoded, literal))


def _resolve_normalization(index: PathIndex, report: ValidationReport) -> None:
    """A listed name with no file, where data/ holds an unlisted file whose name differs from it
    only by Unicode normalization (NFC against NFD, as a copy through macOS leaves it).

    One error names both, as code points, instead of a 'missing' and an 'unlisted' that print
    alike; the file on disk is then checked against the manifest's digests, so the curator learns
    whether the content is intact. It stays an error: the bytes in data/ are not the name the
    manifest lists, and a reader that compares names as they are (on Linux, most) will not find it.
    """
    unlisted: dict[str, list[str]] = {}
    for (rel,) in index.query("SELECT d.path FROM d WHERE d.real IS NULL "
                              "AND NOT EXISTS (SELECT 1 FROM m WHERE m.path = d.path)"):
        name = str(rel)
        if not name.isascii():  # normalization changes nothing in an ASCII name
            unlisted.setdefault(nfc(name), []).append(name)
    if not unlisted:
        return
    pairs: list[tuple[str, str]] = []
    for (rel,) in index.query("SELECT DISTINCT m.path FROM m WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.path = m.path)"):
        listed = str(rel)
        found = unlisted.get(nfc(listed), []) if not listed.isascii() else []
        if len(found) == 1:  # two look-alikes on disk: which one was meant is not for us to guess
            pairs.append((listed, found[0]))
    for listed, on_disk in pairs:
        report.add("error", "name-normalization",
                   f"listed in the manifest as '{code_points(listed)}' ({normalization_form(listed)}), but data/ "
                   f"holds '{code_points(on_disk)}' ({normalization_form(on_disk)}): the names differ only by "
                   "Unicode normalization, as a copy through macOS leaves them. The file was checked under its name "
                   "in data/; rename it to the manifest's form (or copy the bag again with a tool that keeps names "
                   "as bytes) so that other tools find it", path=listed, expected=code_points(listed),
                   found=code_points(on_disk))
        index.db.execute("UPDATE m SET path = ? WHERE path = ?", (on_disk, listed))


def _completeness(bag: Bag, index: PathIndex, report: ValidationReport) -> None:
    algs = sorted(bag.payload_manifests)
    if not algs:
        return
    for rel, real in index.query("SELECT d.path, d.real FROM d WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.path = d.path)"):
        why = " (its name is not valid UTF-8, so no manifest can list it)" if real is not None else ""
        report.add("error", "unlisted", f"a file in data/ is not listed in any payload manifest{why}", path=str(rel))
    if len(algs) > 1:
        for alg in algs:
            for (rel,) in index.query(
                "SELECT d.path FROM d WHERE EXISTS (SELECT 1 FROM m WHERE m.path = d.path) "
                "AND NOT EXISTS (SELECT 1 FROM m WHERE m.path = d.path AND m.alg = ?)", (alg,)):
                report.add("error", "unlisted", f"not listed in manifest-{alg}.txt (every payload manifest must list every file)", path=str(rel), algorithm=alg)


def _missing(index: PathIndex, report: ValidationReport, fetch_paths: set[str], root: Path | None = None,
             blind: list[str] | None = None) -> None:
    """Manifest entries with no file; with ``root`` (a bag folder), one behind a linked folder is
    reported naming the link. An entry in or below a ``blind`` path (a folder that cannot be
    listed, an entry that cannot be examined, already reported) is unknown, never called missing."""
    links: dict[str, str] = {}  # folder -> the link on its path, so a linked folder is looked at once
    for (rel,) in index.query("SELECT DISTINCT m.path FROM m WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.path = m.path) ORDER BY m.path"):
        path = str(rel)
        if path in fetch_paths:
            continue
        hidden = next((b for b in blind or () if path == b or path.startswith(f"{b}/")), None)
        if hidden == path:
            continue  # reported as it is: cannot be examined
        if hidden is not None:
            report.add("error", "unreadable", f"not checked: it lies in {hidden}, a folder that cannot be listed",
                       path=path)
            continue
        folder = path.rpartition("/")[0]
        if folder not in links:
            links[folder] = _link_on_path(root, folder) if root is not None else ""
        if links[folder]:
            report.add("error", "not-regular", behind_link(path, links[folder]), path=path)
        else:
            report.add("error", "missing", "listed in the manifest but not found in the bag", path=path)


def _link_on_path(root: Path, folder: str) -> str:
    """The bag-relative path of the symbolic link on the way to ``folder``, or ''."""
    try:
        st = lstat_beneath(root, folder)
    except LinkRefused as exc:
        return _link_rel(root, exc)
    except (OSError, UnsafePath):
        return ""
    return folder if stat.S_ISLNK(st.st_mode) else ""


@dataclass
class _Fetched:
    """What fetch.txt adds to the payload: the paths it names that are not on disk, and their size
    (as fetched with --fetch, as declared otherwise; None when some size is unknown)."""

    pending: set[str] = field(default_factory=set)
    bytes: int | None = 0
    #: the items downloaded (--fetch) and their bytes: checked, so counted with the files on disk
    read_files: int = 0
    read_bytes: int = 0

    def add(self, path: str, size: int | None) -> None:
        self.pending.add(path)
        self.bytes = None if self.bytes is None or size is None else self.bytes + size

    def read(self, path: str, size: int | None) -> None:
        """An item downloaded with --fetch: ``size`` bytes read, None when nothing whole was."""
        self.add(path, size)
        if size is not None:
            self.read_files += 1
            self.read_bytes += size


def _check_oxum(bag: Bag, report: ValidationReport, fetched: _Fetched | None = None) -> None:
    """Payload-Oxum against the files found plus, when given, what fetch.txt adds."""
    fetched = fetched or _Fetched()
    oxum = _oxum(bag)
    if isinstance(oxum, str):
        report.add("error", "oxum", f"Payload-Oxum {oxum!r} is not OCTETS.COUNT", path=bag.info_file)
        return
    if oxum is None or fetched.bytes is None:
        return  # no Payload-Oxum, or a fetch item of unknown length (already reported as not fetched)
    # fetch.txt items are part of the payload (RFC 8493 2.2.3): they count as the files on disk do
    found = (report.bytes + fetched.bytes, report.files + len(fetched.pending))
    if oxum != found:
        report.add("error", "oxum", "Payload-Oxum does not match the payload",
                   path=bag.info_file, expected=f"{oxum[0]}.{oxum[1]}", found=f"{found[0]}.{found[1]}")


def _check_empty_directories(bag: Bag, report: ValidationReport) -> None:
    """Every folder metadata/empty-directories.txt lists is a folder in the bag (not a link)."""
    try:
        listed = empty_directories(bag.path)
    except LinkRefused as exc:
        if not any(f.code == "not-regular" and f.path == EMPTY_DIRECTORIES for f in report.findings):
            report.add("error", "not-regular", behind_link(EMPTY_DIRECTORIES, _link_rel(bag.path, exc)), path=EMPTY_DIRECTORIES)
        return
    except BadTagFile as exc:
        report.add("error", "manifest-syntax", exc.fields.get("reason", str(exc)), path=EMPTY_DIRECTORIES)
        return
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return  # a pipe or device in its place: reported with the other tag entries
        raise unreadable_tag_file(bag.path, EMPTY_DIRECTORIES, exc) from exc
    reported = {f.path for f in report.findings if f.code == "not-regular"}
    for rel in listed:
        try:
            st = lstat_beneath(bag.path, rel)
        except LinkRefused as exc:
            report.add("error", "not-regular", f"listed in {EMPTY_DIRECTORIES}, and {_link_rel(bag.path, exc)} on its way "
                       "is a symbolic link, which was not followed", path=rel)
            continue
        except OSError:  # absent, or a file where a folder on its way should be
            report.add("error", "missing-directory", f"listed in {EMPTY_DIRECTORIES} as an empty folder, but there is "
                       "no such folder in the bag", path=rel)
            continue
        if stat.S_ISLNK(st.st_mode):
            if rel not in reported:
                report.add("error", "not-regular", f"listed in {EMPTY_DIRECTORIES} as a folder, but is a symbolic link; "
                           "it was not followed", path=rel)
        elif not stat.S_ISDIR(st.st_mode):
            report.add("error", "missing-directory", f"listed in {EMPTY_DIRECTORIES} as an empty folder, but is a file",
                       path=rel)


def _check_fetch(bag: Bag, index: PathIndex, report: ValidationReport, do_fetch: bool) -> set[str]:
    """The payload paths fetch.txt names that are not in the bag (see :func:`_fetch_items`)."""
    return _fetch_items(bag, index, report, do_fetch).pending


def _fetch_items(bag: Bag, index: PathIndex, report: ValidationReport, do_fetch: bool) -> _Fetched:
    """Check fetch.txt against the manifests and, with ``do_fetch``, download and check each item
    the bag does not hold; ``report.bytes`` must already count the files on disk."""
    fetched = _Fetched()
    try:
        entries, problems = bag.fetch_entries()
    except LinkRefused as exc:
        report.add("error", "not-regular", behind_link("fetch.txt", _link_rel(bag.path, exc)), path="fetch.txt")
        return fetched
    except UnicodeDecodeError as exc:
        report.add("error", "fetch", f"fetch.txt is not valid {bag.declared_encoding}: {exc.reason}", path="fetch.txt")
        return fetched
    except OSError as exc:
        raise unreadable_tag_file(bag.path, "fetch.txt", exc) from exc
    for p in problems:
        report.add("error", "fetch", p.message, path="fetch.txt")
    algs = sorted(bag.payload_manifests)
    oxum = _oxum(bag)
    # an item of unknown length ('-') is read no further than the rest of the payload Payload-Oxum declares
    rest = oxum[0] - report.bytes if isinstance(oxum, tuple) else None
    for e in entries:
        reason = unsafe_reason(e.path)
        if reason:
            report.add("error", "unsafe-path", f"fetch.txt line {e.line} names an unsafe path ({reason})", path=e.path)
            continue
        if not e.path.startswith("data/"):
            report.add("error", "outside-payload", f"fetch.txt line {e.line} names a path outside data/", path=e.path)
            continue
        digests = {str(a): str(d) for a, d in index.query("SELECT alg, digest FROM m WHERE path = ?", (e.path,))}
        for alg in algs:
            if alg not in digests:
                report.add("error", "fetch", f"fetch.txt line {e.line}: not listed in manifest-{alg}.txt", path=e.path)
        on_disk = next(index.query("SELECT count(*) FROM d WHERE path = ?", (e.path,)))[0]
        if on_disk:
            continue
        if not do_fetch:
            fetched.add(e.path, e.length)
            report.add("error", "not-fetched", f"listed in fetch.txt ({e.url}) and not yet fetched; validate with --fetch to download and check it", path=e.path)
            continue
        fetched.read(e.path, _fetch_and_check(e.url, e.length, e.path, digests, report, rest))
    return fetched


def _fetch_and_check(url: str, length: int | None, rel: str, digests: dict[str, str], report: ValidationReport,
                     rest: int | None = None) -> int | None:
    """Download ``url`` into hashing only (the bag is never written) and compare; returns the size
    read, or None when nothing could be read.

    Only http and https are fetched, a redirect to another scheme (or from https to http) is
    refused, every wait is bounded by :data:`FETCH_TIMEOUT`, and no more than ``length`` + 1
    bytes are read: a longer body is a mismatch, whatever follows is never read.
    """
    import urllib.error  # only --fetch needs them; importing them costs every run ~30 ms
    import urllib.parse
    import urllib.request

    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in FETCH_SCHEMES:
        report.add("error", "fetch", f"fetch.txt names {url}: preserve fetches only http and https URLs, so it was "
                   "not opened", path=rel)
        return None

    def refuse(req: urllib.request.Request, newurl: str) -> None:
        old, new = urllib.parse.urlsplit(req.full_url).scheme.lower(), urllib.parse.urlsplit(newurl).scheme.lower()
        if new not in FETCH_SCHEMES or (old == "https" and new == "http"):
            raise urllib.error.URLError(f"the server redirected to {newurl}, which preserve does not follow "
                                        "(only http and https, never from https to http)")

    class Redirects(urllib.request.HTTPRedirectHandler):
        def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any) -> Any:
            # checked here first so every refused redirect gets the same message, whatever the scheme
            location = headers.get("location") or headers.get("uri")
            if location:
                refuse(req, urllib.parse.urljoin(req.full_url, location))
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

        def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                             newurl: str) -> urllib.request.Request | None:
            refuse(req, newurl)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    # no file:, ftp: or data: handler at all, so no URL and no redirect can reach them
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(), Redirects(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    from preserve.fixity import hash_stream

    cap = length if length is not None else rest
    algs = [a for a in digests if a in ALGORITHMS]

    def body(resp: Any) -> Iterator[bytes]:
        left = None if cap is None else max(cap, 0) + 1
        while left is None or left > 0:
            chunk = resp.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk

    try:
        with opener.open(url, timeout=FETCH_TIMEOUT) as resp:
            found, size = hash_stream(body(resp), algs)
    except (OSError, ValueError) as exc:
        report.add("error", "fetch", f"cannot fetch {url}: {getattr(exc, 'reason', None) or exc}", path=rel)
        return None
    if cap is not None and size > cap:
        said = f"fetch.txt says {length}" if length is not None else f"Payload-Oxum leaves {cap} for it"
        report.add("error", "fetch", f"{url} sends more bytes than {said}; it stopped being read there", path=rel,
                   expected=str(cap), found=f"more than {cap}")
        return None  # its real size is unknown
    if length is not None and size != length:
        report.add("error", "fetch", f"fetched {size} bytes from {url}, fetch.txt says {length}", path=rel,
                   expected=str(length), found=str(size))
    for alg in algs:
        if found[alg] != digests[alg]:
            report.add("error", "altered", f"fetched content from {url} does not match manifest-{alg}.txt", path=rel, algorithm=alg, expected=digests[alg], found=found[alg])
    return size


def _verify_payload(
    bag: Bag, index: PathIndex, report: ValidationReport, algs: list[str], workers: int | None,
    progress: Progress | None, drop_cached: bool, limiter: RateLimiter | None, processes: int | None = 0,
) -> None:
    if not algs:
        return
    from preserve.fixity import FilesBelow, default_workers, hash_file, ordered_map, processes_for

    placeholders = ",".join("?" * len(algs))
    jobs: Iterator[tuple[object, ...]] = index.query(
        f"SELECT d.path, group_concat(m.alg || ' ' || m.digest, '\n'), d.real, d.size FROM d JOIN m ON m.path = d.path "
        f"WHERE d.odd = 0 AND m.alg IN ({placeholders}) GROUP BY d.path ORDER BY d.path", tuple(algs))
    root = bag.path
    # one FilesBelow per thread: each keeps its last folder open, so paths in order are not walked again
    local = threading.local()
    opened: list[FilesBelow] = []

    def below() -> FilesBelow:
        files: FilesBelow | None = getattr(local, "files", None)
        if files is None:
            files = local.files = FilesBelow(str(root))
            opened.append(files)
        return files

    def check(job: tuple[object, ...]) -> list[Finding]:
        rel = str(job[0])
        expected: dict[str, set[str]] = {}
        for pair in str(job[1]).split("\n"):
            alg, digest = pair.split(" ", 1)
            expected.setdefault(alg, set()).add(digest)
        try:
            real = job[2] if isinstance(job[2], bytes) else None
            found = hash_file(real_path(rel, real), sorted(expected), progress=progress,
                              drop_cached=drop_cached, limiter=limiter, root=below())
        except LinkRefused as exc:
            return [Finding("error", "not-regular", behind_link(rel, _link_rel(root, exc)), path=rel)]
        except PermissionError as exc:
            return [Finding("error", "unreadable", f"cannot be read ({exc.strerror})", path=rel)]
        except FileNotFoundError:
            return [Finding("error", "missing", "disappeared while being validated", path=rel)]
        except OSError as exc:
            return [Finding("error", "unreadable", f"read error ({exc.strerror or exc})", path=rel)]
        out = []
        for alg, digests in sorted(expected.items()):
            if found[alg] not in digests:
                out.append(Finding("error", "altered", f"{alg} checksum does not match manifest-{alg}.txt", path=rel,
                                   algorithm=alg, expected=sorted(digests)[0], found=found[alg]))
        return out

    if processes is None:
        processes = processes_for(report.files, report.bytes) if limiter is None else 0
    if processes:
        _verify_in_processes(root, jobs, report, processes, progress, drop_cached)
        return
    # small files are I/O-latency bound, so more threads than cores keep the disk and CPUs busy
    n = workers or min(8, default_workers() * 2)
    try:
        for findings in ordered_map(check, jobs, workers=n):
            report.findings.extend(findings)
    finally:
        for files in opened:
            files.close()


def _expected(pairs: str) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {}
    for pair in pairs.split("\n"):
        alg, digest = pair.split(" ", 1)
        expected.setdefault(alg, set()).add(digest)
    return expected


#: What a worker answers for one file: None when every digest matches, ("altered", [(algorithm,
#: an expected digest, the digest found), ...]) when some do not, or (kind, message) when the file
#: cannot be read (kind: "missing" or "unreadable").
Checked = tuple[str, str | list[tuple[str, str, str]]] | None


def check_batch(jobs: list[tuple[str, str, bool, int]], root: str | None = None) -> list[Checked]:
    """For a worker process: hash each (path, expected "alg digest" lines, drop_cached, size) job
    and compare there, so that only the files that fail send anything back. With ``root`` the
    paths are relative to it and nothing is opened through a link below it."""
    from preserve.fixity import hash_batch

    wanted = [_expected(pairs) for _path, pairs, _drop, _size in jobs]
    found = hash_batch([(path, tuple(sorted(want)), drop, size)
                        for (path, _pairs, drop, size), want in zip(jobs, wanted, strict=True)], root=root)
    out: list[Checked] = []
    for (path, _pairs, _drop, _size), want, got in zip(jobs, wanted, found, strict=True):
        if isinstance(got, tuple):
            kind, detail = got
            out.append(("not-regular", behind_link(path, detail)) if kind == "link" else got)
            continue
        bad = [(alg, sorted(digests)[0], got[alg]) for alg, digests in sorted(want.items()) if got[alg] not in digests]
        out.append(("altered", bad) if bad else None)
    return out


def _verify_in_processes(root: Path, jobs: Iterator[tuple[object, ...]], report: ValidationReport, processes: int,
                         progress: Progress | None, drop_cached: bool) -> None:
    """Many small files: hash and compare them in batches on worker processes.

    This thread feeds every worker, so its work per file is kept to joining strings: the
    manifest digests go to the worker as the index stored them, and a file that matches costs
    no answer beyond ``None``.
    """
    from preserve.fixity import WorkerPool

    held: deque[tuple[str, int]] = deque()

    def work() -> Iterator[tuple[str, str, bool, int]]:
        for rel, pairs, real, size in jobs:
            shown, n = str(rel), int(str(size))
            held.append((shown, n))
            yield (os.fsdecode(real) if isinstance(real, bytes) else shown), str(pairs), drop_cached, n

    # paths go relative to the bag, opened below it with no link followed
    check = functools.partial(check_batch, root=str(root))
    with WorkerPool(processes) as pool:
        for got in pool.map_batched(check, work(), size=lambda job: job[3]):
            rel, size = held.popleft()
            if progress is not None:
                progress(size, 1)
            if got is None:
                continue
            kind, detail = got
            if isinstance(detail, str):
                report.add("error", kind, detail, path=rel)
                continue
            for alg, want, digest in detail:
                report.add("error", "altered", f"{alg} checksum does not match manifest-{alg}.txt", path=rel,
                           algorithm=alg, expected=want, found=digest)


def tag_manifest_entries(bag: Bag, report: ValidationReport) -> dict[str, dict[str, str]]:
    """``{tag file: {algorithm: digest}}`` from every tag manifest; defects go into ``report``.

    Shared by directory and archive validation, so both read tag manifests the same way.
    """
    expected: dict[str, dict[str, str]] = {}
    strict = bag.version_tuple >= (1, 0)
    for alg in sorted(bag.tag_manifests):
        name = f"tagmanifest-{alg}.txt"
        try:
            for line in bag.iter_manifest(alg, tag=True):
                if line.error:
                    report.add("error", "manifest-syntax", line.error, path=name)
                    continue
                reason = unsafe_reason(line.path)
                if reason:
                    report.add("error", "unsafe-path", f"{name} line {line.line} lists an unsafe path ({reason}); it was not opened", path=line.raw)
                    continue
                if line.path.startswith("data/"):
                    report.add("error", "outside-payload", f"{name} line {line.line} lists a payload file; tag manifests list tag files only", path=line.path)
                    continue
                listed = expected.setdefault(line.path, {})
                if alg in listed:
                    differ = listed[alg] != line.digest
                    severity: Severity = "error" if (strict or differ) else "warning"
                    detail = "with different digests" if differ else "with the same digest"
                    report.add(severity, "duplicate", f"listed more than once in {name} {detail} (line {line.line})",
                               path=line.path, algorithm=alg)
                    if differ:
                        continue  # the first listing is checked; the conflict is reported
                listed[alg] = line.digest
        except UnicodeDecodeError as exc:
            report.add("error", "encoding", f"{name} is not valid {bag.declared_encoding}: {exc.reason}", path=name)
        except LinkRefused as exc:
            report.add("error", "not-regular", behind_link(name, _link_rel(bag.path, exc)), path=name)
        except OSError as exc:
            raise unreadable_tag_file(bag.path, name, exc) from exc
    return expected


def _irregular_tag_entries(bag: Bag, report: ValidationReport) -> None:
    """A link, pipe or device outside data/, listed in a tag manifest or not: tools that copy
    the bag (replication, serialization) would follow it out of the bag or block on it."""
    reported = {name for name, _ in bag.irregular}
    try:
        entries = list(bag.iter_tag_files())
    except OSError as exc:
        # tag files that cannot be read are an input problem (exit 3), whichever folder holds them
        raise unreadable_tag_folder(exc.filename or bag.path, exc) from exc
    for rel, st in entries:
        why = irregular_reason(st)
        if why and rel not in reported and rel != "data":
            report.add("error", "not-regular", f"{why} (outside data/)", path=rel)


def _verify_tag_manifests(bag: Bag, report: ValidationReport, fast: bool) -> None:
    for rel, digests in sorted(tag_manifest_entries(bag, report).items()):
        try:
            why = irregular_reason(lstat_beneath(bag.path, rel))
        except LinkRefused as exc:
            link = _link_rel(bag.path, exc)
            if not any(f.code == "not-regular" and f.path in (rel, link) for f in report.findings):
                report.add("error", "not-regular", behind_link(rel, link), path=rel)
            continue
        except FileNotFoundError:
            why = "missing"
        except OSError as exc:
            report.add("error", "unreadable", f"cannot be examined ({exc.strerror})", path=rel)
            continue
        if why == "missing":
            report.add("error", "tag-missing", "listed in a tag manifest but not found", path=rel)
            continue
        if why:
            if not any(f.code == "not-regular" and f.path == rel for f in report.findings):
                report.add("error", "not-regular", why, path=rel)
            continue
        if fast:
            continue
        from preserve.fixity import hash_file

        algs = [a for a in digests if a in ALGORITHMS]
        try:
            found = hash_file(rel, algs, root=bag.path)
        except LinkRefused as exc:
            report.add("error", "not-regular", behind_link(rel, _link_rel(bag.path, exc)), path=rel)
            continue
        except OSError as exc:
            report.add("error", "unreadable", f"cannot be read ({exc.strerror})", path=rel)
            continue
        for alg in algs:
            if found[alg] != digests[alg]:
                report.add("error", "tag-altered", f"{alg} checksum does not match tagmanifest-{alg}.txt", path=rel,
                           algorithm=alg, expected=digests[alg], found=found[alg])


def is_bag(path: Path) -> bool:
    return (path / "bagit.txt").is_file()

"""Auditing bags: discovery, the tier policy, the budget, and the two tiers themselves.

``fast``  every payload file against ``metadata/xxh3-128.txt`` (written at packaging), plus
          completeness and Payload-Oxum. Payload files the xxh3 file does not list, and bags
          without it, are checked with the cheapest payload manifest algorithm present.
``full``  RFC 8493 validity: every digest of every payload and tag manifest.

Both tiers also compare the bag with what the ledger remembers from its first audit: a tag file
(bagit.txt, a manifest, metadata/...) or an empty folder (metadata/empty-directories.txt) that
has disappeared is a failure, even when nothing lists it any more. Every file is opened below
the bag's folder with no link followed at any level (:mod:`preserve.safefs`): a link is a
finding naming it, and nothing is read or recorded about what it points to.

OCFL store objects (a storage root or an object given as a PATH) are planned, scheduled,
budgeted and recorded as bags are; each is audited against its inventory (:mod:`preserve.ocfl.audit`).

Audits only read. The ledger is written by the caller's process alone (one record per bag, as
soon as the bag is done), which is what lets a Dask cluster do the reading.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.audit.ledger import (
    AuditRecord,
    BagState,
    FindingRecord,
    Ledger,
    now_iso,
    parse_iso,
    printable,
)
from preserve.bag.index import PathIndex
from preserve.bag.paths import decode_manifest_path, normalize_manifest_path, unsafe_reason
from preserve.bag.reader import Bag, ManifestLine, blocked_folder, empty_directories, open_bag
from preserve.bag.validate import ValidationReport, tag_manifest_entries, validate_bag
from preserve.bag.writer import EMPTY_DIRS_FILE, XXH3_FILE
from preserve.errors import BadTagFile, InputError, PreserveError, SourceNotFound, plain_reason
from preserve.fixity import ALGORITHMS, COST, Progress, RateLimiter, Tally, hash_file, ordered_map
from preserve.ocfl.audit import audit_object, describe_object, store_objects
from preserve.ocfl.layout import OBJECT_DECLARATION
from preserve.safefs import (
    LINK_REASON,
    LinkRefused,
    lstat_beneath,
    open_regular_beneath,
)

TIERS = ("fast", "full")
#: what a planned item is: a bag, or an object of an OCFL store (audited against its inventory)
BAG, OCFL_OBJECT = "bag", "ocfl-object"
#: Tiers for replicas in S3-compatible stores (``s3://`` targets), run by the replication engine.
REMOTE_TIERS = ("remote-metadata", "remote-full")

_KIND = {"missing": "missing", "tag-missing": "missing", "altered": "altered", "tag-altered": "altered",
         "unlisted": "unlisted", "unreadable": "unreadable", "oxum": "oxum", "missing-directory": "missing"}


# a manifest line as bag readers accept it: DIGEST, spaces or tabs, md5sum's optional '*', PATH
_MANIFEST_LINE = re.compile(r"^([0-9A-Fa-f]+)[ \t]+\*?(.*)$")


class BudgetSpent(Exception):
    """Raised inside a bag's audit when a time budget runs out; the bag is not recorded."""


@dataclass(frozen=True)
class Policy:
    """Which tier each bag gets. ``tier=None`` mixes them: full when the last full audit is
    ``full_every`` audits old or older than ``full_after`` seconds (or there is none), else fast."""

    tier: str | None = None
    full_every: int = 12
    full_after: float = 365 * 86400.0

    def choose(self, state: BagState | None, now: float | None = None) -> tuple[str, str]:
        """(tier, reason) for one bag."""
        if self.tier is not None:
            return self.tier, f"--tier {self.tier}"
        if state is None or state.last_full is None:
            return "full", "never audited in full"
        if state.audits_since_full + 1 >= self.full_every:
            return "full", f"{state.audits_since_full} audit(s) since the last full audit (--full-every {self.full_every})"
        age = (now or time.time()) - parse_iso(state.last_full).timestamp()
        if age >= self.full_after:
            return "full", f"last full audit {age / 86400:.0f} days ago (--full-after {self.full_after / 86400:.0f}d)"
        return "fast", "policy: fast between full audits"


@dataclass(frozen=True)
class Budget:
    """How much one run may do: wall-clock seconds and/or bytes read."""

    seconds: float | None = None
    max_bytes: int | None = None


@dataclass(frozen=True)
class PlannedBag:
    path: Path
    identifier: str
    tier: str
    reason: str
    estimated_bytes: int
    last_audit: str | None
    #: ``(path, kind)`` the ledger remembers from the bag's first audit (kind ``file`` or
    #: ``empty-dir``); the audit reports any that are gone
    remembered: tuple[tuple[str, str], ...] = ()
    #: :data:`BAG` or :data:`OCFL_OBJECT`
    kind: str = BAG


@dataclass
class AuditPlan:
    bags: list[PlannedBag]
    deferred: list[PlannedBag] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(b.estimated_bytes for b in self.bags)


@dataclass(frozen=True)
class AuditOptions:
    """How each bag is read; picklable, so Dask workers get the same settings."""

    workers: int | None = None
    max_rate: int | None = None
    drop_cache: bool = False
    #: worker processes for the full tier's many small files: None decides from the bag (as
    #: ``preserve validate`` does), 0 none (a rate limit or a Dask worker keeps to threads)
    processes: int | None = None


@dataclass
class AuditRun:
    """What one ``preserve audit`` run did."""

    started: str
    ended: str = ""
    seconds: float = 0.0
    records: list[AuditRecord] = field(default_factory=list)
    deferred: list[PlannedBag] = field(default_factory=list)
    stop_reason: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[AuditRecord]:
        return [r for r in self.records if r.outcome == "fail"]

    @property
    def pending(self) -> list[AuditRecord]:
        """Replica audits waiting for an archive-class restore: neither passed nor failed."""
        return [r for r in self.records if r.outcome == "pending"]

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.records)

    @property
    def files(self) -> int:
        return sum(r.files for r in self.records)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: totals, every bag audited with its findings, what was deferred."""
        return {
            "started": self.started, "ended": self.ended, "seconds": round(self.seconds, 3),
            "bags_audited": len(self.records),
            "bags_ok": len(self.records) - len(self.failed) - len(self.pending),
            "bags_with_problems": len(self.failed), "bags_pending": len(self.pending), "bytes": self.bytes, "files": self.files,
            "bytes_per_second": int(self.bytes / self.seconds) if self.seconds > 0 else None,
            "stop_reason": self.stop_reason,
            "audits": [dataclasses.asdict(r) for r in self.records],
            "deferred": [{"path": str(b.path), "identifier": b.identifier, "tier": b.tier} for b in self.deferred],
            "warnings": self.warnings,
        }


# -- discovery and planning -----------------------------------------------------------------------

def discover_bags(paths: Iterable[str | os.PathLike[str]], warnings: list[str] | None = None) -> list[Path]:
    """Bags named directly, and bags found under folders by their bagit.txt (not inside bags).

    Folders that cannot be read are skipped with a line in ``warnings``: the bags inside them
    cannot be found, and the user must hear of it.
    """
    found: list[Path] = []
    for given in paths:
        found.extend(_discover_one(given, warnings if warnings is not None else []))
    return list(dict.fromkeys(found))


def _discover_one(given: str | os.PathLike[str], warnings: list[str]) -> list[Path]:
    root = Path(given).resolve()
    try:
        st = root.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise SourceNotFound(path=str(given)) from None
    except OSError as exc:
        raise InputError(f"{given}: cannot be read ({exc.strerror}); no bag there was audited") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{given}: is not a folder; pass a bag or a folder holding bags")
    if os.path.isfile(root / "bagit.txt"):
        return [root]
    found: list[Path] = []
    errors: list[OSError] = []
    for dirpath, dirnames, files in os.walk(root, onerror=errors.append):
        # hidden folders include preserve's own staging (".<name>.preserve-staging-...")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(f.startswith("0=ocfl_object_") for f in files):
            # its version folders hold parts of bags (only what each version changed): never bags to audit
            warnings.append(f"{dirpath}: an OCFL store object, not audited as a bag; audit its storage root "
                            "or the object itself with `preserve audit STORE_ROOT`")
            dirnames[:] = []
            continue
        if os.path.isfile(os.path.join(dirpath, "bagit.txt")):
            found.append(Path(dirpath))
            dirnames[:] = []
    unreadable = [f"{e.filename}: cannot be read ({e.strerror}); bags inside it cannot be found or audited"
                  for e in errors]
    warnings.extend(unreadable)
    if not found:
        if unreadable:
            raise InputError(f"{given}: holds no bag that could be found ({unreadable[0]})")
        raise InputError(f"{given}: holds no bag (no bagit.txt found in it or below it)")
    return found


def _describe(path: Path) -> tuple[str | None, int | None, int | None]:
    """(identifier, payload bytes, payload files) from bag-info.txt, cheaply; None where unreadable."""
    try:
        bag = open_bag(path)
        ident = bag.info_value("External-Identifier") or path.name
        oxum = bag.info_value("Payload-Oxum") or ""
    except (PreserveError, OSError, UnicodeDecodeError):
        return None, None, None
    octets, _, count = oxum.strip().partition(".")
    if octets.isdigit() and count.isdigit():
        return ident, int(octets), int(count)
    return ident, None, None


def _known_under(ledger: Ledger, root: Path) -> list[BagState]:
    """The bags the ledger knows at or below ``root``: a range of the location index ('0' follows '/')."""
    base = str(root)
    prefix = base.rstrip("/") + "/"
    return ledger.bag_states(where=("b.location = ? OR (b.location >= ? AND b.location < ?)",
                                    (base, prefix, prefix[:-1] + "0")))


def _under(location: str, root: Path) -> bool:
    """True when the local ``location`` is ``root`` or lies below it."""
    if "://" in location:
        return False
    base = str(root)
    return location == base or location.startswith(base.rstrip("/") + "/")


def _is_object(folder: Path) -> bool:
    """Whether ``folder`` holds an OCFL object declaration (False when it cannot be looked into)."""
    try:
        return (folder / OBJECT_DECLARATION).is_file()
    except OSError:
        return False


def plan_audit(ledger: Ledger, paths: Sequence[str | os.PathLike[str]], policy: Policy,
               budget: Budget | None = None) -> AuditPlan:
    """Every bag under ``paths``, least recently verified first, with its tier; bags past
    ``budget.max_bytes`` are deferred (the first bag is always taken, so a cycle never stalls).

    Bags the ledger knows at or under a PATH that are no longer found there (removed, or their
    bagit.txt gone) are planned first: auditing them records the loss as a failure.

    A PATH that is an OCFL storage root or object stands for its objects, planned with the bags
    (:data:`OCFL_OBJECT`): the fast tier reads no content (its estimate is 0 bytes), the full tier
    every content file of every version (an object new to the ledger is sized from the file
    system, a known one by its last audit).
    """
    budget = budget or Budget()
    warnings: list[str] = []
    replicas = {r.location for r in ledger.all_replicas()}
    bags: list[Path] = []
    objects: list[Path] = []
    lost: dict[Path, tuple[BagState, str]] = {}
    for given in paths:
        root = Path(given).resolve()
        known_here = [s for s in _known_under(ledger, root) if _under(s.location, root) and s.location not in replicas]
        in_store = store_objects(given)
        if in_store is not None:
            objects.extend(in_store)
        else:
            try:
                bags.extend(_discover_one(given, warnings))
            except InputError:
                if not known_here:
                    raise
        for s in known_here:
            lost[Path(s.location)] = (s, BAG if in_store is None else OCFL_OBJECT)
    objects = list(dict.fromkeys(objects))
    in_stores = set(objects)
    bags = [b for b in dict.fromkeys(bags) if b not in in_stores]
    # a known bag still there, or inside a bag found (bags within bags are not audited apart); an
    # object on disk met under a folder of bags is not lost either (discovery warns that it was left)
    lost = {p: s for p, s in lost.items() if p not in in_stores and not any(_under(str(p), b) for b in bags)
            and not (s[1] == BAG and _is_object(p))}
    described = {p: _describe(p) for p in bags}
    sized = {s.location for s in ledger.states_at(locations=[str(p) for p in objects])
             if s.audits and s.payload_bytes is not None}
    # the identifier and size a known object's last audit recorded stand (None keeps them): no
    # inventory read nor file sizes taken for it at planning
    described.update({p: (None, None, None) if str(p) in sized else describe_object(p) for p in objects})
    kinds = dict.fromkeys(objects, OCFL_OBJECT)
    # one transaction for all: a commit per bag would fsync thousands of times
    ledger.ensure_bags([(str(p), ident, nbytes, nfiles) for p, (ident, nbytes, nfiles) in described.items()])
    # only the bags and objects found and the ones lost are read from the ledger, not every bag it knows
    states = {s.location: s for s in ledger.states_at(locations=[str(p) for p in (*bags, *objects)])}
    structure = ledger.remembered_structure([str(p) for p in (*lost, *bags, *objects)])
    ordered = sorted([*bags, *objects],
                     key=lambda p: (states[str(p)].last_audit is not None, states[str(p)].last_audit or "", str(p)))
    plan = AuditPlan(bags=[], warnings=warnings)
    now = time.time()
    for p, (s, kind) in sorted(lost.items()):
        # nothing to read: they cost no budget, and a loss is reported at once
        tier, reason = policy.choose(s if s.audits else None, now)
        plan.bags.append(PlannedBag(p, s.identifier, tier, reason, 0, s.last_audit, tuple(structure.get(str(p), ())),
                                    kind))
    spent = 0
    first = True
    for p in ordered:
        state = states[str(p)]
        tier, reason = policy.choose(state if state.audits else None, now)
        kind = kinds.get(p, BAG)
        size = described[p][1] or state.payload_bytes or 0
        item = PlannedBag(p, described[p][0] or state.identifier, tier, reason,
                          0 if kind == OCFL_OBJECT and tier == "fast" else size, state.last_audit,
                          tuple(structure.get(str(p), ())), kind)
        if plan.deferred or (budget.max_bytes is not None and not first and spent + item.estimated_bytes > budget.max_bytes):
            plan.deferred.append(item)
            continue
        plan.bags.append(item)
        spent += item.estimated_bytes
        first = False
    return plan


# -- auditing one bag -----------------------------------------------------------------------------

def _findings(report: ValidationReport) -> list[FindingRecord]:
    out = []
    for f in report.errors:
        kind = _KIND.get(f.code, "invalid")
        message = f.message if not f.algorithm or f.algorithm in f.message else f"{f.message} ({f.algorithm})"
        out.append(FindingRecord(file=f.path or "", kind=kind, message=message, code=f.code,
                                 expected=f.expected, found=f.found))
    return out


def _link_finding(root: Path, exc: LinkRefused, rel: str) -> FindingRecord:
    """The finding for a link met on the way to ``rel``: it names the link, never its target."""
    link = os.path.relpath(exc.filename, root) if exc.filename else rel
    what = "" if link == rel else f"; {rel} lies beyond it and was not read"
    return FindingRecord(file=printable(link), kind="invalid", code="link", message=f"{LINK_REASON}{what}")


def _add_once(findings: list[FindingRecord], new: FindingRecord) -> None:
    """Append ``new`` unless a finding already names the same file with the same kind of problem
    (a link under which many listed files lie is one problem, reported once)."""
    if new.code == "link" and any(f.file == new.file and f.code in ("link", "not-regular") for f in findings):
        return
    findings.append(new)


def _is_file_below(root: Path, rel: str) -> bool:
    """Whether ``root/rel`` is a regular file reached with no link followed (a link raises LinkRefused)."""
    try:
        st = lstat_beneath(root, rel)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISLNK(st.st_mode):
        raise LinkRefused(os.path.join(root, rel))
    return stat.S_ISREG(st.st_mode)


def _xxh3_lines(root: Path, encoding: str) -> Iterator[ManifestLine]:
    """The lines of metadata/xxh3-128.txt, read with no link followed below the bag."""
    fd, _size = open_regular_beneath(root, XXH3_FILE)
    with open(fd, encoding=encoding, newline="") as f:
        for number, text in enumerate(f, 1):
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            m = _MANIFEST_LINE.match(text.rstrip("\r\n"))
            if not m:
                continue  # the sound-file check has compared the whole file with its tag manifest
            raw = normalize_manifest_path(m.group(2))
            rel = decode_manifest_path(raw)
            if unsafe_reason(rel) or not rel.startswith("data/"):
                continue
            yield ManifestLine(m.group(1).lower(), rel, raw, number)


def _fast_hash(bag: Bag, report: ValidationReport, findings: list[FindingRecord], opts: AuditOptions,
               limiter: RateLimiter | None, progress: Progress) -> str:
    """Hash the payload against the xxh3 file (manifest fallback); returns the algorithm label."""
    usable = [a for a in bag.payload_manifests if a in ALGORITHMS]
    if not usable:
        return "none"
    by_cost = sorted(usable, key=lambda a: (COST.get(a, 9.0), a))
    cheapest = by_cost[0]
    root = bag.path
    try:
        have_xxh = _is_file_below(root, XXH3_FILE)
    except LinkRefused as exc:
        _add_once(findings, _link_finding(root, exc, XXH3_FILE))
        have_xxh = False
    used: set[str] = set()
    # a file validation found missing is not in the no-link listing of data/: opening it by name
    # could only reach it through a link, so it is not opened at all; one it found unreadable (in a
    # folder that cannot be listed) has been reported once, and is not reported again
    already_missing = {f.file for f in findings if f.kind in ("missing", "unreadable")}
    with PathIndex() as index:
        for candidate in by_cost:
            try:  # streamed into the on-disk index: a million-line manifest is never held in memory
                index.add_entries((line.path, candidate, line.digest, line.line, line.raw)
                                  for line in bag.iter_manifest(candidate)
                                  if not line.error and not unsafe_reason(line.path) and line.path.startswith("data/"))
            except UnicodeDecodeError:
                continue  # validation has reported it ("encoding"); the next manifest may be readable
            cheapest = candidate
            break
        else:
            return cheapest
        if have_xxh and _xxh3_file_sound(bag, findings, opts):
            try:
                index.add_entries((line.path, "xxh3-128", line.digest, line.line, line.raw)
                                  for line in _xxh3_lines(root, bag.encoding))
            except LinkRefused as exc:
                _add_once(findings, _link_finding(root, exc, XXH3_FILE))
            except (OSError, UnicodeDecodeError) as exc:
                findings.append(FindingRecord(file=XXH3_FILE, kind="unreadable", code="unreadable",
                                              message=f"cannot be read ({plain_reason(exc)}); the manifest was used instead"))
        index.finish_loading()
        jobs = index.query(
            "SELECT m.path, m.raw, coalesce(x.alg, m.alg), coalesce(x.digest, m.digest) FROM m AS m "
            "LEFT JOIN m AS x ON x.path = m.path AND x.alg = 'xxh3-128' WHERE m.alg = ? GROUP BY m.path ORDER BY m.path",
            (cheapest,))

        def check(job: tuple[object, ...]) -> tuple[str, FindingRecord | None]:
            rel, raw, alg, expected = (str(v) for v in job)
            if rel in already_missing:
                return alg, None
            target = rel
            try:
                if raw != rel and not _is_file_below(root, rel) and _is_file_below(root, raw):
                    target = raw  # '%' written unencoded by bagit-python
                found = hash_file(target, (alg,), root=root, drop_cached=opts.drop_cache, limiter=limiter,
                                  progress=progress)[alg]
            except LinkRefused as exc:
                return alg, _link_finding(root, exc, rel)
            except (FileNotFoundError, NotADirectoryError):
                return alg, FindingRecord(file=rel, kind="missing", code="missing", message="disappeared while being audited")
            except OSError as exc:
                return alg, FindingRecord(file=rel, kind="unreadable", code="unreadable",
                                          message=f"cannot be read ({exc.strerror or exc})")
            if found != expected:
                source = XXH3_FILE if alg == "xxh3-128" else f"manifest-{alg}.txt"
                return alg, FindingRecord(file=rel, kind="altered", code="altered", expected=expected, found=found,
                                          message=f"{alg} checksum does not match {source}")
            return alg, None

        for alg, finding in ordered_map(check, jobs, workers=opts.workers):
            used.add(alg)
            if finding is not None:
                _add_once(findings, finding)
    if not have_xxh:
        return f"{cheapest} (fallback: no {XXH3_FILE})"
    return "+".join(sorted(used, key=lambda a: a != "xxh3-128")) or "xxh3-128"


def _xxh3_file_sound(bag: Bag, findings: list[FindingRecord], opts: AuditOptions) -> bool:
    """Whether metadata/xxh3-128.txt still matches the cheapest tag manifest listing it.

    A damaged xxh3 file would otherwise blame good payload files; when it does not match, the
    finding names it and the payload manifest is used instead. A bag whose tag manifests do not
    list it (made by another tool) uses it as it is.
    """
    listed = tag_manifest_entries(bag, ValidationReport(path=str(bag.path))).get(XXH3_FILE, {})
    usable = sorted((a for a in listed if a in ALGORITHMS), key=lambda a: (COST.get(a, 9.0), a))
    if not usable:
        return True
    alg = usable[0]
    try:
        found = hash_file(XXH3_FILE, (alg,), root=bag.path, drop_cached=opts.drop_cache)[alg]
    except LinkRefused as exc:
        _add_once(findings, _link_finding(bag.path, exc, XXH3_FILE))
        return False
    except OSError as exc:
        findings.append(FindingRecord(file=XXH3_FILE, kind="unreadable", code="unreadable",
                                      message=f"cannot be read ({exc.strerror or exc}); the manifest was used instead"))
        return False
    if found == listed[alg]:
        return True
    findings.append(FindingRecord(file=XXH3_FILE, kind="altered", code="tag-altered", expected=listed[alg], found=found,
                                  message=f"{alg} checksum does not match tagmanifest-{alg}.txt; "
                                          "the payload was checked against the manifest instead"))
    return False


# -- what the bag holds besides its payload ----------------------------------------------------------

def _tag_files(root: Path, findings: list[FindingRecord]) -> list[str] | None:
    """Every regular file outside data/ (bag-relative, sorted), listed folder by folder from
    descriptors opened with no link followed. Hidden names (a desktop's .DS_Store) are not tag
    files. None when the bag's own folder cannot be listed; a sub-folder that cannot be listed is
    a finding and its files count as present (unknown, not lost)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        top = os.open(root, flags & ~getattr(os, "O_NOFOLLOW", 0))  # the root itself may be a link
    except OSError:
        return None
    found: list[str] = []
    unlistable: list[str] = []

    def walk(fd: int, prefix: str) -> None:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel = f"{prefix}{e.name}"
            if e.name.startswith(".") or rel == "data":
                continue
            st = e.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                found.append(rel)
            elif stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(e.name, flags, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        continue  # swapped for a link since it was listed: validation reports links
                    if not any(f.file == printable(rel) and f.kind == "unreadable" for f in findings):
                        findings.append(FindingRecord(file=printable(rel), kind="unreadable", code="unreadable",
                                                      message=f"the folder cannot be listed ({exc.strerror})"))
                    unlistable.append(rel + "/")
                    continue
                try:
                    walk(child, rel + "/")
                finally:
                    os.close(child)

    try:
        walk(top, "")
    except OSError:
        return None  # the bag's own folder cannot be listed: the audit reports why elsewhere
    finally:
        os.close(top)
    found.extend(f"{u}*" for u in unlistable)  # a marker: remembered files below it are not judged
    return found


def _listed_empty_dirs(root: Path, findings: list[FindingRecord]) -> list[str]:
    """The folders metadata/empty-directories.txt lists (bag-relative, decoded); [] without it."""
    try:
        return empty_directories(root)
    except LinkRefused as exc:
        _add_once(findings, _link_finding(root, exc, EMPTY_DIRS_FILE))
    except NotADirectoryError:
        pass  # metadata is not a folder: there is no such file, and validation says why
    except BadTagFile as exc:
        if any(f.file == EMPTY_DIRS_FILE for f in findings):
            return []  # validation has already said what is wrong with it
        findings.append(FindingRecord(file=EMPTY_DIRS_FILE, kind="invalid", code="empty-dirs",
                                      message=f"{exc.fields.get('reason') or exc}; its empty folders were not checked"))
    except OSError as exc:
        folder = blocked_folder(root, EMPTY_DIRS_FILE, exc)
        if folder is None:
            findings.append(FindingRecord(file=EMPTY_DIRS_FILE, kind="unreadable", code="unreadable",
                                          message=f"cannot be read ({exc.strerror or exc}); its empty folders were not checked"))
        elif not any(f.file == printable(os.path.relpath(folder, root)) for f in findings):
            # the folder that holds it cannot be opened: whether the bag has the file is unknown
            findings.append(FindingRecord(file=printable(os.path.relpath(folder, root)), kind="unreadable",
                                          code="unreadable", message=f"the folder cannot be listed "
                                          f"({exc.strerror or exc}); the tag files in it were not checked"))
    return []


def _check_structure(root: Path, remembered: Sequence[tuple[str, str]],
                     findings: list[FindingRecord]) -> tuple[list[str] | None, list[str]]:
    """Report remembered tag files and empty folders that are gone; returns what the bag holds now
    (tag files, listed empty folders) for the ledger to remember at a first audit."""
    present = _tag_files(root, findings)
    listed = _listed_empty_dirs(root, findings)
    if present is None:
        return None, listed
    have = set(present)
    blind = tuple(p[:-1] for p in present if p.endswith("/*"))
    reported = {(f.file, f.kind) for f in findings} | {(f.file, "link") for f in findings if f.code in ("link", "not-regular")}
    for path, kind in remembered:
        if kind != "file" or path in have or path.startswith(blind):
            continue
        if (path, "missing") in reported or (path, "link") in reported:
            continue
        findings.append(FindingRecord(file=path, kind="missing", code="tag-file-lost", message=(
            "a tag file the bag had at its first audit is gone; restore it from a replica or a backup of the bag")))
    remembered_dirs = [p for p, k in remembered if k == "empty-dir"]
    for rel in dict.fromkeys([*listed, *remembered_dirs]):
        if any(f.file == rel for f in findings):
            continue  # validation has already said what is wrong there
        source = f"listed by {EMPTY_DIRS_FILE}" if rel in listed else "the bag had at its first audit"
        try:
            st = lstat_beneath(root, rel)
        except (FileNotFoundError, NotADirectoryError):
            findings.append(FindingRecord(file=rel, kind="missing", code="empty-dir-missing", message=(
                f"an empty folder {source} is gone; create it again or restore the bag from a replica")))
            continue
        except LinkRefused as exc:
            _add_once(findings, _link_finding(root, exc, rel))
            continue
        except OSError as exc:
            findings.append(FindingRecord(file=rel, kind="unreadable", code="unreadable",
                                          message=f"cannot be examined ({exc.strerror or exc})"))
            continue
        if stat.S_ISLNK(st.st_mode):
            _add_once(findings, FindingRecord(file=rel, kind="invalid", code="link", message=LINK_REASON))
        elif not stat.S_ISDIR(st.st_mode):
            findings.append(FindingRecord(file=rel, kind="invalid", code="empty-dir-missing", message=(
                f"an empty folder {source} is no longer a folder")))
    return sorted(p for p in present if not p.endswith("/*")), listed


def error_record(item: PlannedBag, exc: BaseException) -> AuditRecord:
    """A failed audit for a bag whose audit stopped with an unexpected error, so a run goes on."""
    from preserve import __version__

    stamp = now_iso()
    return AuditRecord(location=str(item.path), identifier=item.identifier, tier=item.tier, started=stamp, ended=stamp,
                       bytes=0, files=0, outcome="fail", algorithm="none", tool_version=__version__,
                       findings=[FindingRecord(file="", kind="unreadable", code="audit-error",
                                               message=f"the audit of this bag stopped with an error "
                                                       f"({type(exc).__name__}: {exc}); audit it again")])


def audit_bag(path: str | os.PathLike[str], tier: str, opts: AuditOptions | None = None,
              progress: Progress | None = None, deadline: float | None = None,
              limiter: RateLimiter | None = None, identifier: str | None = None,
              remembered: Sequence[tuple[str, str]] = ()) -> AuditRecord:
    """Audit one bag with one tier and return the record (nothing is written anywhere).

    ``deadline`` (``time.monotonic()`` value) stops the audit with :class:`BudgetSpent`.
    ``limiter`` is shared by a whole run; without one, ``opts.max_rate`` applies to this bag.
    ``identifier`` (the ledger's) names the bag when it cannot name itself (gone, unreadable).
    ``remembered``: the ``(path, kind)`` the ledger keeps from the bag's first audit
    (:attr:`PlannedBag.remembered`); any that are gone are findings. The record carries the tag
    files and listed empty folders found now, for the ledger to remember at a first audit.
    Problems with the bag are findings, a bag that is gone among them (``missing``).
    """
    from preserve import __version__

    if tier not in TIERS:
        raise InputError(f"{path}: tier {tier!r} is for remote replicas; local bags take fast or full")
    opts = opts or AuditOptions()
    root = Path(path)
    started = now_iso()
    try:
        os.stat(root)
    except OSError as exc:
        gone = isinstance(exc, (FileNotFoundError, NotADirectoryError))
        lost = FindingRecord(file="", kind="missing" if gone else "unreadable", code="bag-missing" if gone else "unreadable",
                             message=f"the bag is gone: {root} no longer exists" if gone
                             else f"the bag cannot be read ({exc.strerror})")
        return AuditRecord(location=str(root), identifier=identifier or root.name, tier=tier, started=started,
                           ended=now_iso(), bytes=0, files=0, outcome="fail", algorithm="none",
                           tool_version=__version__, findings=[lost])
    described, payload_bytes, payload_files = _describe(root)
    ident = described or identifier or root.name
    tally = Tally()

    def counting(nbytes: int, nfiles: int) -> None:
        tally(nbytes, nfiles)
        if progress is not None:
            progress(nbytes, nfiles)
        if deadline is not None and time.monotonic() > deadline:
            raise BudgetSpent(str(root))

    if limiter is None and opts.max_rate:
        limiter = RateLimiter(opts.max_rate)
    findings: list[FindingRecord] = []
    algorithm = "none"
    try:
        if tier == "full":
            report = validate_bag(root, workers=opts.workers, progress=counting, drop_cached=opts.drop_cache,
                                  limiter=limiter, processes=0 if opts.max_rate else opts.processes)
            findings = _findings(report)
            algorithm = "+".join(report.algorithms) or "none"
        else:
            report = validate_bag(root, fast=True)
            findings = _findings(report)
            algorithm = _fast_hash(open_bag(root), report, findings, opts, limiter, counting)
        if payload_bytes is None:  # no usable Payload-Oxum: what the disk holds
            payload_bytes, payload_files = report.bytes, report.files
    except UnicodeEncodeError as exc:
        # a file name that is not UTF-8 (Linux allows any bytes): no manifest can list it
        name = exc.object if isinstance(exc.object, str) else ""
        findings.append(FindingRecord(file=printable(name), kind="invalid", code="encoding", message=(
            "the file name is not valid UTF-8, so no BagIt manifest can list it; the audit of this bag "
            "stopped there: rename the file (or restore it from a replica)")))
    except LinkRefused as exc:
        _add_once(findings, _link_finding(root, exc, os.path.relpath(exc.filename, root) if exc.filename else ""))
    except PermissionError as exc:
        findings.append(FindingRecord(file=os.path.relpath(exc.filename, root) if exc.filename else "", kind="unreadable",
                                      code="unreadable", message=f"cannot be read ({exc.strerror})"))
    except PreserveError as exc:  # a tag file gone or unreadable: the bag itself is damaged
        cause = exc.__cause__
        where = str(exc.fields.get("path") or "")
        if isinstance(cause, LinkRefused):
            _add_once(findings, _link_finding(root, cause, os.path.relpath(where, root) if os.path.isabs(where) else ""))
        elif isinstance(cause, OSError) and os.path.isabs(where):
            # a tag file that cannot be read is reported as an unreadable payload file is
            what = (f"the folder cannot be listed ({cause.strerror or cause}); the tag files in it were not checked"
                    if exc.fields.get("folder") else f"cannot be read ({cause.strerror or cause})")
            findings.append(FindingRecord(file=printable(os.path.relpath(where, root)), kind="unreadable",
                                          code="unreadable", message=what))
        else:
            findings.append(FindingRecord(file="bagit.txt", kind="missing" if "missing" in str(exc) else "invalid",
                                          code="bagit-txt", message=str(exc)))
    except OSError as exc:
        findings.append(FindingRecord(file=os.path.relpath(exc.filename, root) if exc.filename else "", kind="unreadable",
                                      code="unreadable", message=f"read error ({exc.strerror or exc})"))
    tag_files, empty_dirs = _check_structure(root, remembered, findings)
    return AuditRecord(location=str(root), identifier=ident, tier=tier, started=started, ended=now_iso(),
                       bytes=tally.bytes, files=tally.files, outcome="fail" if findings else "pass",
                       algorithm=algorithm, tool_version=__version__, payload_bytes=payload_bytes,
                       payload_files=payload_files, findings=findings, tag_files=tag_files, empty_dirs=empty_dirs)


def audit_item(item: PlannedBag, opts: AuditOptions | None = None, progress: Progress | None = None,
               deadline: float | None = None, limiter: RateLimiter | None = None) -> AuditRecord:
    """Audit one planned bag or store object (:attr:`PlannedBag.kind`); the local run and the Dask
    workers both come here. ``deadline`` and ``limiter`` as for :func:`audit_bag`."""
    opts = opts or AuditOptions()
    if item.kind != OCFL_OBJECT:
        return audit_bag(item.path, item.tier, opts, progress, deadline, limiter, identifier=item.identifier,
                         remembered=item.remembered)
    if item.tier not in TIERS:
        raise InputError(f"{item.path}: tier {item.tier!r} is for remote replicas; store objects take fast or full")
    if limiter is None and opts.max_rate:
        limiter = RateLimiter(opts.max_rate)

    def counting(nbytes: int, nfiles: int) -> None:
        if progress is not None:
            progress(nbytes, nfiles)
        if deadline is not None and time.monotonic() > deadline:
            raise BudgetSpent(str(item.path))

    return audit_object(item.path, item.tier, progress=counting, workers=opts.workers, drop_cache=opts.drop_cache,
                        limiter=limiter, identifier=item.identifier)


# -- a whole run ----------------------------------------------------------------------------------

def run_audit(ledger: Ledger, plan: AuditPlan, *, opts: AuditOptions | None = None, budget: Budget | None = None,
              progress: Progress | None = None, on_record: Callable[[AuditRecord], None] | None = None,
              scheduler: str | None = None, security: Any = None, connect_timeout: float = 10.0,
              run: AuditRun | None = None) -> AuditRun:
    """Audit the planned bags in order, recording each in the ledger as soon as it is done.

    With a time budget, no bag is started once the estimated time left is not enough for it,
    and a bag still running at the deadline is stopped and not recorded; the first bag always
    runs to its end (as with --max-bytes), so a bag longer than the budget never stalls the cycle.
    A bag whose audit stops with an error is recorded as failed and the run goes on.
    ``scheduler`` runs the bags as tasks on a Dask cluster (:mod:`preserve.audit.distributed`).
    ``run`` (optional) is filled as the audit goes, so a caller holds what was done even when
    the run is interrupted.
    """
    opts = opts or AuditOptions()
    budget = budget or Budget()
    run = run if run is not None else AuditRun(started=now_iso())
    run.deferred = list(plan.deferred)
    run.warnings.extend(plan.warnings)
    if plan.deferred:
        run.stop_reason = f"--max-bytes: {len(plan.deferred)} bag(s) left for the next run"
    t0 = time.monotonic()
    deadline = t0 + budget.seconds if budget.seconds is not None else None

    def keep(record: AuditRecord) -> None:
        ledger.record_audit(record)
        run.records.append(record)
        if on_record is not None:
            on_record(record)

    try:
        if scheduler is not None:
            from preserve.audit.distributed import run_on_cluster

            rest = run_on_cluster(scheduler, plan.bags, opts, keep, progress=progress, deadline=deadline,
                                  security=security, connect_timeout=connect_timeout)
        else:
            rest = _run_local(plan.bags, opts, keep, progress, deadline, t0)
        if rest:
            run.deferred = rest + run.deferred
            run.stop_reason = f"--budget spent: {len(run.deferred)} bag(s) left for the next run"
        if deadline is not None and run.records and time.monotonic() > deadline:
            run.warnings.append(f"--budget: the run took {time.monotonic() - t0:.0f} s; the first bag is always audited "
                                "to its end so that a bag longer than the budget does not stall the cycle")
        if not run.records:
            run.warnings.append("no bag was audited this run" + (f" ({run.stop_reason})" if run.stop_reason else ""))
    finally:
        run.ended = now_iso()
        run.seconds = time.monotonic() - t0
    return run


def _run_local(bags: list[PlannedBag], opts: AuditOptions, keep: Callable[[AuditRecord], None],
               progress: Progress | None, deadline: float | None, t0: float) -> list[PlannedBag]:
    """Audit bags one after another; returns the bags left when the time budget ran out."""
    done_bytes = 0
    limiter = RateLimiter(opts.max_rate) if opts.max_rate else None  # one bucket for the whole run
    for i, item in enumerate(bags):
        now = time.monotonic()
        if deadline is not None and i > 0:
            rate = done_bytes / (now - t0) if now > t0 and done_bytes else None
            needed = item.estimated_bytes / rate if rate else 0.0
            if now >= deadline or now + needed > deadline:
                return bags[i:]
        try:
            record = audit_item(item, opts, progress, deadline if i > 0 else None, limiter)
        except BudgetSpent:
            return bags[i:]
        except Exception as exc:  # one bag's error must not end the run for the others
            record = error_record(item, exc)
        done_bytes += record.bytes
        keep(record)
    return []


def iter_problems(records: Iterable[AuditRecord]) -> Iterator[tuple[AuditRecord, FindingRecord]]:
    """Every finding of every failed audit, bag by bag."""
    for r in records:
        for f in r.findings:
            yield r, f

"""Creating a bag by copying: the source is only ever read, the destination appears whole or not at all.

Sequence (each step is durable before the next starts):

1. lock ``.<name>.preserve-lock`` beside DEST, remove what a killed run's journal in it lists,
   and journal this run's staging before creating it (:mod:`preserve.staging`);
2. copy-and-hash every payload file into ``.<name>.preserve-staging-<token>/data/`` (one read);
3. ``syncfs`` the staging file system (per-file ``fsync`` where syncfs is missing);
4. re-read every payload file with its cached pages dropped and compare xxh3-128 (``verify``);
5. write sidecars (``extra_tags``), bag-info.txt, bagit.txt, manifests, tag manifests; sync;
6. rename the staging directory to DEST (or ``finalize`` it, e.g. into an archive); fsync the parent.

An interrupted run leaves only hidden staging, listed in its journal, which the next run on the
same destination removes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import json
import os
import secrets
import shutil
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from preserve.bag.paths import (
    bagit_python_trouble,
    encode_manifest_path,
    nfc,
    unsafe_reason,
    visible,
)
from preserve.bag.tagfiles import format_bag_info, label_problem, write_text
from preserve.errors import (
    DestinationExists,
    InputError,
    Interrupted,
    NameConflict,
    PreserveError,
    SourceChanged,
    SourceNotFound,
    StorageError,
    SymlinkRefused,
    UnsafePath,
    UsageError,
    VerificationFailed,
)
from preserve.fixity import (
    CopyResult,
    Progress,
    WorkerPool,
    check_algorithms,
    copy_and_hash,
    fsync_path,
    hash_file,
    ordered_map,
    read_verify,
    syncfs,
)
from preserve.staging import journaled, lock_path_for

TAG_DIR = "metadata"
XXH3_FILE = f"{TAG_DIR}/xxh3-128.txt"
EMPTY_DIRS_FILE = f"{TAG_DIR}/empty-directories.txt"
OS_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
#: Ends every warning about a name bagit-python cannot find, so the walk's and the copy's agree.
BAGIT_PYTHON_MISSING = "bagit-python 1.9 will report it missing"


def software_agent() -> str:
    from preserve import __version__

    return f"preserve {__version__}"


@dataclass(frozen=True)
class PayloadEntry:
    """A file (or an empty directory) to put in the bag at ``data/<target>``."""

    source: str | Path  # the walker gives plain strings: a Path per file costs more than the copy
    target: str
    empty_dir: bool = False
    size: int = -1  # bytes, when known (the walker knows); -1: stat it when needed


@dataclass
class ScanSummary:
    files: int = 0
    bytes: int = 0
    problems: list[PreserveError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class DirectoryPayload:
    """Every file under a source directory, walked in sorted order, streamed (never listed whole).

    Names are kept exactly as found. Symlinks are refused unless ``follow_links``; two names in
    one directory that differ only by Unicode normalization are refused; names that differ only
    by case are warned about (they collide on macOS, Windows and many S3 tools).
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        prefix: str = "",
        follow_links: bool = False,
        ignore: Callable[[str], bool] | None = None,
    ) -> None:
        self.source = Path(source)
        self.prefix = prefix.strip("/")
        self.follow_links = follow_links
        self.ignore = ignore
        self.warnings: list[str] = []
        if not self.source.exists():
            raise SourceNotFound(path=str(self.source))
        if not self.source.is_dir():
            raise InputError(f"{self.source}: is not a directory; preserve bag copies a folder")

    def scan(self) -> ScanSummary:
        """Walk without copying: totals for progress, and every name problem at once."""
        summary = ScanSummary()
        for item in self._walk(summary):
            if isinstance(item, PayloadEntry) and not item.empty_dir:
                summary.files += 1
                summary.bytes += item.size
        summary.warnings = list(dict.fromkeys(summary.warnings))
        return summary

    def __iter__(self) -> Iterator[PayloadEntry]:
        summary = ScanSummary()
        for item in self._walk(summary):
            if summary.problems:
                raise summary.problems[0]
            yield item
        if summary.problems:
            raise summary.problems[0]
        self.warnings = list(dict.fromkeys(summary.warnings))

    def _target(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _walk(self, summary: ScanSummary) -> Iterator[PayloadEntry]:
        seen_dirs: set[tuple[int, int]] = set()
        root_st = self.source.stat()
        seen_dirs.add((root_st.st_dev, root_st.st_ino))
        stack: list[tuple[Path, str]] = [(self.source, "")]
        while stack:
            directory, rel = stack.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except PermissionError as exc:
                summary.problems.append(InputError(f"{directory}: cannot list the folder ({exc.strerror})"))
                continue
            by_nfc: dict[str, str] = {}
            by_case: dict[str, str] = {}
            subdirs: list[tuple[Path, str]] = []
            kept = 0
            for entry in entries:
                name = entry.name
                child_rel = f"{rel}/{name}" if rel else name
                if self.ignore is not None and self.ignore(child_rel):
                    continue
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    # the bytes that are not UTF-8 shown as \xNN: the name as a person can find it
                    shown = os.fsencode(entry.path).decode("utf-8", "backslashreplace")
                    summary.problems.append(InputError(
                        f"{shown}: the name is not valid UTF-8; BagIt manifests are UTF-8, so rename it before bagging"))
                    continue
                if any(c in name for c in "\x00"):
                    summary.problems.append(UnsafePath(path=entry.path, reason="NUL byte in name"))
                    continue
                key = nfc(name)
                if key in by_nfc and by_nfc[key] != name:
                    summary.problems.append(NameConflict(path=str(directory), names=f"{by_nfc[key]!r} and {name!r}"))
                    continue
                by_nfc[key] = name
                folded = key.casefold()
                if folded in by_case and by_case[folded] != name:
                    summary.warnings.append(
                        f"{directory}: {by_case[folded]!r} and {name!r} differ only by case; they collide on macOS, Windows and in many S3 tools")
                by_case.setdefault(folded, name)
                kept += 1
                reason = unsafe_reason(f"data/{self._target(child_rel)}")
                if reason:
                    summary.problems.append(UnsafePath(path=entry.path, reason=reason))
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    summary.problems.append(InputError(f"{entry.path}: cannot be read ({exc.strerror})"))
                    continue
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(entry.path)
                    if not self.follow_links:
                        summary.problems.append(SymlinkRefused(path=entry.path, target=target))
                        continue
                    try:
                        st = os.stat(entry.path)
                    except OSError:
                        summary.problems.append(InputError(f"{entry.path}: is a broken symbolic link (to {target})"))
                        continue
                if stat.S_ISDIR(st.st_mode):
                    ident = (st.st_dev, st.st_ino)
                    if ident in seen_dirs:
                        summary.problems.append(InputError(f"{entry.path}: a symbolic link loop leads back to a folder already copied"))
                        continue
                    seen_dirs.add(ident)
                    subdirs.append((Path(entry.path), child_rel))
                elif stat.S_ISREG(st.st_mode):
                    if name.startswith("._") or name in OS_LITTER:
                        summary.warnings.append(f"{entry.path}: operating-system litter, bagged as it is")
                    if "%" in name:
                        summary.warnings.append(
                            f"{entry.path}: the name contains '%'; it is written as %25 as RFC 8493 requires, "
                            "but bagit-python 1.9 and DART do not decode %25 and will report it missing")
                    trouble = bagit_python_trouble(child_rel)
                    if trouble:
                        summary.warnings.append(_trouble_warning(entry.path, trouble))
                    yield PayloadEntry(entry.path, self._target(child_rel), size=st.st_size)
                else:
                    summary.problems.append(InputError(f"{entry.path}: is not a regular file (device, socket or pipe); bags hold files only"))
            if kept == 0 and rel:
                yield PayloadEntry(directory, self._target(rel), empty_dir=True)
            stack.extend(reversed(subdirs))


def _trouble_warning(where: str, trouble: str) -> str:
    return (f"{visible(where)}: {trouble}; it is written as it is (RFC 8493 escapes only %, CR and LF) and preserve "
            f"validates it, but {BAGIT_PYTHON_MISSING}")


def payload_from_directory(source: str | os.PathLike[str], **kw: object) -> DirectoryPayload:
    """Shorthand for :class:`DirectoryPayload`."""
    return DirectoryPayload(source, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PayloadRecord:
    """What was copied: bag-relative target (``data/...``), its source, size and digests."""

    target: str
    source: str
    size: int
    digests: dict[str, str]
    mtime_ns: int


@dataclass
class Verification:
    """Whether and how the written copy was checked against the source (a PREMIS fixity event)."""

    performed: bool
    method: str = ""
    algorithm: str = "xxh3-128"
    files: int = 0
    bytes: int = 0
    outcome: str = "not performed"
    started: str | None = None
    ended: str | None = None


@dataclass
class StagedBag:
    """The bag being built, as ``extra_tags`` sees it: payload copied, durable and verified."""

    path: Path
    name: str
    algorithms: tuple[str, ...]
    files: int
    bytes: int
    verification: Verification
    records_file: Path
    started: str
    info: list[tuple[str, str]] = field(default_factory=list)

    def iter_payload(self) -> Iterator[PayloadRecord]:
        with open(self.records_file, encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                yield PayloadRecord(d["t"], d["s"], d["n"], d["d"], d["m"])


@dataclass
class BagResult:
    path: Path
    files: int
    bytes: int
    algorithms: tuple[str, ...]
    oxum: str
    verification: Verification
    warnings: list[str]
    empty_dirs: int
    started: str
    ended: str
    info: list[tuple[str, str]]
    #: staging a killed earlier run on the same destination had left, removed by this run
    removed: list[Path] = field(default_factory=list)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_partial_path(staging: Path) -> Path:
    """Where a ``finalize`` hook that writes an archive puts the partial file: beside the staging,
    under a name :func:`create_bag` has journaled before calling the hook, so that a killed run's
    partial archive is removed by the next run on the same destination."""
    return staging.with_name(staging.name + "-archive")


def _storage_error(exc: OSError, where: Path | str, detail: object = None) -> PreserveError:
    suffix = ""
    if detail:
        text = str(detail)
        marker = ".preserve-staging-"
        if marker in text:  # name the file inside the bag, not the hidden staging path
            text = text.split(marker, 1)[1].split("/", 1)[-1]
        suffix = f" (while writing {text})"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(path=str(where), reason=f"no space left on the destination file system{suffix}; free space and run again (nothing was left at the destination)")
    if exc.errno == errno.EROFS:
        return StorageError(path=str(where), reason="the destination file system is read-only")
    return StorageError(path=str(where), reason=f"{exc.strerror or exc}{suffix}")


def create_bag(
    dest: str | os.PathLike[str],
    payload: Iterable[PayloadEntry],
    *,
    algorithms: Sequence[str] = ("sha256", "sha512"),
    info: Sequence[tuple[str, str]] = (),
    verify: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
    extra_tags: Callable[[StagedBag], None] | None = None,
    on_staged: Callable[[Path], None] | None = None,
    finalize: Callable[[Path, Path], None] | None = None,
    follow_links: bool = False,
    processes: int = 0,
    on_removed: Callable[[Path], None] | None = None,
    verify_progress: Progress | None = None,
) -> BagResult:
    """Build a BagIt 1.0 bag at ``dest`` from ``payload`` (see the module docstring for the steps).

    ``processes`` > 0 copies batches of small files in that many worker processes (their per-file
    Python work holds the GIL); :func:`preserve.fixity.processes_for` suggests a number.

    ``progress`` is told of the bytes copied, ``verify_progress`` of the bytes verification
    re-reads (after ``on_staged``); both are called from several threads.

    ``extra_tags`` writes more tag files (sidecars) into the staged bag before the tag manifests.
    ``on_staged`` is a test hook called with the staging path once the payload is durable, before
    verification. ``finalize(staging, dest)`` replaces the final rename (serialization); a
    partial file it writes goes to :func:`archive_partial_path`.

    The run holds the lock and journal of ``dest`` (:func:`preserve.staging.journaled`): what a
    killed earlier run on ``dest`` had staged is removed first, each path passed to
    ``on_removed`` and listed in :attr:`BagResult.removed`.
    """
    algs = check_algorithms(algorithms)
    check_info(info)
    dest = Path(os.path.abspath(dest))
    if isinstance(payload, DirectoryPayload):
        check_dest_outside_source(dest, payload.source)
    if os.path.lexists(dest) and not os.path.lexists(lock_path_for(dest)):
        raise DestinationExists(path=str(dest))  # and no journal beside it lists anything to remove
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _storage_error(exc, dest.parent) from exc
    started = _now()
    removed: list[Path] = []
    with journaled(dest, busy=f"{dest}: another preserve run is writing this destination now") as journal:
        # what a killed run left is removed before DEST is looked at: a run killed just after
        # its archive landed at DEST still left its staging, and this run exits 4 without it
        removed = list(journal.removed)
        if on_removed is not None:
            for path in removed:
                on_removed(path)
        if os.path.lexists(dest):
            raise DestinationExists(path=str(dest))
        staging = journal.record(dest.parent / f".{dest.name}.preserve-staging-{secrets.token_hex(4)}")
        if finalize is not None:
            journal.record(archive_partial_path(staging))
        try:
            # the pool is closed (its workers stopped) before the journal removes the staging
            with WorkerPool(processes) as pool:
                result = _build(staging, dest, payload, algs, list(info), verify, workers, progress,
                                extra_tags, on_staged, finalize, follow_links, started, pool, verify_progress)
        except KeyboardInterrupt:
            raise Interrupted(path=str(dest)) from None
    result.removed = removed
    return result


def _build(
    staging: Path, dest: Path, payload: Iterable[PayloadEntry], algs: tuple[str, ...],
    info: list[tuple[str, str]], verify: bool, workers: int | None, progress: Progress | None,
    extra_tags: Callable[[StagedBag], None] | None, on_staged: Callable[[Path], None] | None,
    finalize: Callable[[Path, Path], None] | None, follow_links: bool, started: str, pool: WorkerPool,
    verify_progress: Progress | None = None,
) -> BagResult:
    try:
        (staging / "data").mkdir(parents=True)
        (staging / TAG_DIR).mkdir()
        work = staging / ".preserve-work"
        work.mkdir()
    except OSError as exc:
        raise _storage_error(exc, dest.parent) from exc
    have_syncfs = True
    hash_algs = tuple(dict.fromkeys((*algs, "xxh3-128")))
    warnings: list[str] = []
    dir_lock = threading.Lock()
    made_dirs: set[str] = set()

    def ensure_parent(target: str) -> None:
        parent = os.path.dirname(target)
        if parent in made_dirs:
            return
        with dir_lock:
            os.makedirs(parent, exist_ok=True)
            if len(made_dirs) > 10000:
                made_dirs.clear()
            made_dirs.add(parent)

    def copy_one(entry: PayloadEntry) -> tuple[PayloadEntry, CopyResult | None]:
        target = _check_target(staging, entry)
        if entry.empty_dir:
            os.makedirs(target, exist_ok=True)
            return entry, None
        ensure_parent(target)
        return entry, _copy_entry(str(entry.source), target, str(dest), hash_algs, not have_syncfs, follow_links, progress)

    files = total = empty = 0
    empties = []
    try:
        with contextlib.ExitStack() as stack:
            manifests = {a: stack.enter_context(open(work / f"manifest-{a}.txt", "w", encoding="utf-8", newline="\n")) for a in algs}
            xxh = stack.enter_context(open(staging / XXH3_FILE, "w", encoding="utf-8", newline="\n"))
            records = stack.enter_context(open(work / "records.jsonl", "w", encoding="utf-8"))
            for entry, res in _copy_all(copy_one, payload, staging, dest, hash_algs, not have_syncfs,
                                        follow_links, progress, workers, pool):
                rel = f"data/{entry.target}"
                if res is None:
                    empty += 1
                    empties.append(encode_manifest_path(rel))
                    continue
                enc = encode_manifest_path(rel)
                for a in algs:
                    manifests[a].write(f"{res.digests[a]}  {enc}\n")
                xxh.write(f"{res.digests['xxh3-128']}  {enc}\n")
                records.write(json.dumps({"t": rel, "s": str(entry.source), "n": res.size, "d": res.digests, "m": res.mtime_ns}, ensure_ascii=False) + "\n")
                files += 1
                total += res.size
                if "%" in entry.target:
                    warnings.append(f"data/{entry.target}: the name contains '%'; written as %25 as RFC 8493 requires, but bagit-python 1.9 and DART will report it missing")
                trouble = bagit_python_trouble(entry.target)
                if trouble:
                    warnings.append(_trouble_warning(rel, trouble))
    except OSError as exc:
        # closing a buffered manifest on a full disk raises again: report the cause once
        raise _storage_error(exc, dest, exc.filename) from None
    warnings.extend(w for w in getattr(payload, "warnings", []) if "'%'" not in w and BAGIT_PYTHON_MISSING not in w)
    warnings.extend(_replaced_info(info))
    if empties:
        write_text(staging / EMPTY_DIRS_FILE, "".join(f"{p}\n" for p in empties))

    try:
        if not syncfs(staging):
            _fsync_tree(staging)
    except OSError as exc:
        raise _storage_error(exc, staging) from exc
    if on_staged is not None:
        on_staged(staging)

    staged = StagedBag(staging, dest.name, algs, files, total, Verification(performed=False), work / "records.jsonl", started, info)
    if verify:
        staged.verification = _verify(staged, workers, pool, verify_progress)

    if extra_tags is not None:
        extra_tags(staged)

    try:
        for a in algs:
            os.replace(work / f"manifest-{a}.txt", staging / f"manifest-{a}.txt")
        shutil.rmtree(work)
        oxum = f"{total}.{files}"
        full_info = _bag_info(info, oxum, total)
        write_text(staging / "bagit.txt", "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
        write_text(staging / "bag-info.txt", format_bag_info(full_info))
        _write_tag_manifests(staging, algs)
        if not syncfs(staging):
            _fsync_tree(staging, payload=False)
        if finalize is not None:
            finalize(staging, dest)
        else:
            os.rename(staging, dest)
            fsync_path(dest.parent)
    except OSError as exc:
        raise _storage_error(exc, dest) from exc
    return BagResult(dest, files, total, algs, oxum, staged.verification, warnings, empty, started, _now(), full_info)


def _check_target(staging: Path, entry: PayloadEntry) -> str:
    reason = unsafe_reason(f"data/{entry.target}") or (None if entry.target else "empty target")
    if reason:
        raise UnsafePath(path=f"data/{entry.target}", reason=reason)
    return f"{staging}/data/{entry.target}"


def _copy_entry(src: str, target: str, dest: str, algs: tuple[str, ...], fsync: bool, follow_links: bool,
                progress: Progress | None = None) -> CopyResult:
    """Copy-and-hash one payload file, turning OS errors into errors that name the file."""
    try:
        result = copy_and_hash(src, target, algs, progress=progress, fsync=fsync, follow_links=follow_links)
    except FileNotFoundError as exc:
        if exc.filename and str(exc.filename) == src:
            raise SourceNotFound(path=src) from exc
        raise _storage_error(exc, dest, target) from exc
    except FileExistsError as exc:
        raise InputError(f"{src}: two payload entries write the same target {target.split('.preserve-staging-', 1)[-1]}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkRefused(path=src, target=os.readlink(src)) from exc
        if exc.filename and str(exc.filename) == src:
            raise InputError(f"{src}: cannot be read ({exc.strerror})") from exc
        raise _storage_error(exc, dest, target) from exc
    if result.changed:
        raise SourceChanged(path=src, detail=result.changed)
    return result


def _copy_batch(jobs: list[tuple[str, str, int]], dest: str, algs: tuple[str, ...], fsync: bool,
                follow_links: bool) -> list[CopyResult]:
    """For a worker process: copy-and-hash (source, target, size) jobs, making parent folders."""
    made: set[str] = set()
    out = []
    for src, target, _size in jobs:
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        out.append(_copy_entry(src, target, dest, algs, fsync, follow_links))
    return out


def _verify_batch(jobs: list[tuple[str, str]]) -> list[str | None]:
    """For a worker process: re-read each (path, expected xxh3-128); the digest found where it differs."""
    return [read_verify(path, expected) for path, expected in jobs]


def _copy_all(
    copy_one: Callable[[PayloadEntry], tuple[PayloadEntry, CopyResult | None]], payload: Iterable[PayloadEntry],
    staging: Path, dest: Path, algs: tuple[str, ...], fsync: bool, follow_links: bool,
    progress: Progress | None, workers: int | None, pool: WorkerPool,
) -> Iterator[tuple[PayloadEntry, CopyResult | None]]:
    """Copy every entry, in order: on threads, or small files in batches on worker processes."""
    if not pool.processes:
        yield from ordered_map(copy_one, payload, workers=workers)
        return
    held: deque[PayloadEntry] = deque()
    empties: list[PayloadEntry] = []

    def jobs() -> Iterator[tuple[str, str, int]]:
        for entry in payload:
            if entry.empty_dir:
                os.makedirs(_check_target(staging, entry), exist_ok=True)
                empties.append(entry)  # reported after the files: their order does not matter
                continue
            held.append(entry)
            yield str(entry.source), _check_target(staging, entry), _entry_size(entry)

    batch_fn = functools.partial(_copy_batch, dest=str(dest), algs=algs, fsync=fsync, follow_links=follow_links)
    for result in pool.map_batched(batch_fn, jobs(), size=lambda job: job[2]):
        entry = held.popleft()
        if progress is not None:
            progress(result.size, 1)
        yield entry, result
    for entry in empties:
        yield entry, None


def _entry_size(entry: PayloadEntry) -> int:
    if entry.size >= 0:
        return entry.size
    try:
        return 0 if entry.empty_dir else os.stat(entry.source).st_size
    except OSError:
        return 0


def _verify(staged: StagedBag, workers: int | None, pool: WorkerPool, progress: Progress | None = None) -> Verification:
    v = Verification(performed=True, method="re-read from storage after fsync, page cache dropped (posix_fadvise DONTNEED), xxh3-128 compared with the digest taken while copying from the source", started=_now())

    def check(rec: PayloadRecord) -> tuple[PayloadRecord, str | None]:
        return rec, read_verify(staged.path / rec.target, rec.digests["xxh3-128"], progress=progress)

    results: Iterator[tuple[PayloadRecord, str | None]]
    if pool.processes:
        records = staged.iter_payload()
        pairs = ((rec, (str(staged.path / rec.target), rec.digests["xxh3-128"])) for rec in records)
        held: deque[PayloadRecord] = deque()

        def jobs() -> Iterator[tuple[str, str]]:
            for rec, job in pairs:
                held.append(rec)
                yield job

        found_iter = pool.map_batched(_verify_batch, jobs(), size=lambda j: 0)

        def counted() -> Iterator[tuple[PayloadRecord, str | None]]:
            # worker processes cannot call back: each file counts here once it has been re-read
            for found in found_iter:
                rec = held.popleft()
                if progress is not None:
                    progress(rec.size, 1)
                yield rec, found

        results = counted()
    else:
        # re-reads wait on the device: more readers than cores keep it busy
        results = ordered_map(check, staged.iter_payload(), workers=workers or min(8, 2 * (os.cpu_count() or 1)))
    bad: list[tuple[PayloadRecord, str]] = []
    for rec, found in results:
        v.files += 1
        v.bytes += rec.size
        if found is not None:
            bad.append((rec, found))
    v.ended = _now()
    if bad:
        rec, found = bad[0]
        more = f" (and {len(bad) - 1} more: {', '.join(r.target for r, _ in bad[1:6])})" if len(bad) > 1 else ""
        raise VerificationFailed(path=rec.target + more, expected=rec.digests["xxh3-128"], found=found)
    v.outcome = "pass"
    return v


def _replaced_info(info: Sequence[tuple[str, str]]) -> list[str]:
    """Warnings for bag-info values preserve computes itself and so replaces."""
    return [f"bag-info {k}: {v!r} was given but is replaced by the value computed from the payload"
            for k, v in info if k.lower() in ("payload-oxum", "bag-size")]


def check_info(info: Sequence[tuple[str, str]]) -> None:
    """Refuse a bag-info label that cannot be written, before anything is copied."""
    for key, _value in info:
        problem = label_problem(key)
        if problem:
            raise UsageError(f"bag-info label {key!r} is not valid: {problem}")


def check_dest_outside_source(dest: str | os.PathLike[str], source: str | os.PathLike[str]) -> None:
    """Refuse a destination inside the source: the bag would copy itself and change the source."""
    real_dest = os.path.realpath(dest)
    real_source = os.path.realpath(source)
    if real_dest == real_source or real_dest.startswith(real_source.rstrip(os.sep) + os.sep):
        raise UsageError(f"{dest}: the destination is inside the source {source}; the source is never "
                         "written to, so choose a destination outside it (nothing was written)")


def _bag_info(info: list[tuple[str, str]], oxum: str, total: int) -> list[tuple[str, str]]:
    reserved = {"payload-oxum", "bag-size"}
    out = [(k, v) for k, v in info if k.lower() not in reserved]
    present = {k.lower() for k, _ in out}
    if "bagging-date" not in present:
        out.append(("Bagging-Date", dt.date.today().isoformat()))
    out.append(("Payload-Oxum", oxum))
    out.append(("Bag-Size", _human(total)))
    if "bag-software-agent" not in present:
        out.append(("Bag-Software-Agent", software_agent()))
    return out


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"


def _write_tag_manifests(staging: Path, algs: tuple[str, ...]) -> None:
    tag_files = []
    for dirpath, dirnames, filenames in os.walk(staging):
        rel_dir = os.path.relpath(dirpath, staging)
        if rel_dir == "data" or rel_dir.startswith("data" + os.sep):
            dirnames[:] = []
            continue
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != "data"]
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
            if rel.startswith("tagmanifest-"):
                continue
            tag_files.append(rel)
    tag_files.sort()
    digests = {rel: hash_file(staging / rel, algs) for rel in tag_files}
    for a in algs:
        write_text(staging / f"tagmanifest-{a}.txt",
                   "".join(f"{digests[rel][a]}  {encode_manifest_path(rel)}\n" for rel in tag_files))


def _fsync_tree(root: Path, payload: bool = True) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        if not payload and os.path.relpath(dirpath, root).split(os.sep)[0] == "data":
            continue
        for name in filenames:
            fsync_path(os.path.join(dirpath, name))
        fsync_path(dirpath)

"""Helpers shared by the benchmark scripts: timing subprocesses, peak memory, the page cache,
the machine's hashing floor, and ratio tables.

Every timing runs a real command in a child process (under GNU ``time``), so the wall time, CPU
time and peak resident set size (max RSS) all belong to that one command (and, for ``sh -c``, the
children the shell waited for).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"


@dataclass(frozen=True)
class Run:
    """One timed command: wall and CPU seconds, peak RSS of the process tree, exit code."""

    wall: float
    user: float
    sys: float
    max_rss_kib: int
    rc: int

    @property
    def cpu(self) -> float:
        return self.user + self.sys


TIME = shutil.which("time", path="/usr/bin:/bin")


def user_env(pycache: str | Path) -> dict[str, str]:
    """The environment a user's run has: Python's bytecode caching on. ``PYTHONDONTWRITEBYTECODE``
    (set in some CI and container environments) would make every run compile every module from
    source; the cache goes to ``pycache`` (``PYTHONPYCACHEPREFIX``) so the source tree stays clean."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run(cmd: Sequence[str] | str, *, cwd: str | Path | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` (a list, or a shell string run by ``sh -c``) with output discarded; time it.

    CPU time and peak RSS come from GNU ``time`` when it is installed: Linux carries a process's
    peak RSS across ``fork`` and ``execve``, so a child forked straight from this (large) Python
    process would report at least this process's own size. ``time`` is tiny, so the figure it
    reports belongs to the command. Without it, ``os.wait4`` is used (peak RSS then overstated).
    """
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    with tempfile.NamedTemporaryFile("r", prefix="bench-time-", suffix=".txt") as tf:
        full = [TIME, "-q", "-f", "%U %S %M", "-o", tf.name, *argv] if TIME else argv
        start = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = proc.communicate()
        wall = time.perf_counter() - start
        usage = tf.read().split() if TIME else []
    if check and proc.returncode != 0:
        shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
        tail = err.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"command failed with exit code {proc.returncode}: {shown}\n{tail}")
    if len(usage) >= 3:
        return Run(wall, float(usage[-3]), float(usage[-2]), int(usage[-1]), proc.returncode)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # fallback: cumulative, less precise
    return Run(wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, proc.returncode)


#: How a Python program that could not even start fails (a tree being edited while a long
#: benchmark runs): such a run is retried after a pause instead of ending the benchmark.
_STARTUP_FAILURES = ("SyntaxError", "IndentationError", "ImportError", "ModuleNotFoundError")


def run_patiently(cmd: Sequence[str] | str, *, attempts: int = 10, pause: float = 30.0,
                  log: Callable[[str], None] = print, env: dict[str, str] | None = None) -> Run:
    """:func:`run`, but a command that fails to start (see ``_STARTUP_FAILURES``) is retried."""
    for attempt in range(attempts):
        try:
            return run(cmd, env=env)
        except RuntimeError as exc:
            text = str(exc)
            if attempt == attempts - 1 or not any(f in text for f in _STARTUP_FAILURES):
                raise
            log(f"    the program failed to start ({text.strip().splitlines()[-1][:120]}); retrying in {pause:.0f}s")
            time.sleep(pause)
    raise AssertionError("unreachable")


def best(runs: Iterable[Run]) -> Run:
    """The fastest run: other processes on a shared machine only ever add time."""
    return min(runs, key=lambda r: r.wall)


def iter_files(root: str | Path) -> Iterator[str]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            yield os.path.join(dirpath, name)


def tree_bytes(root: str | Path) -> tuple[int, int]:
    """(bytes, files) under ``root``."""
    total = count = 0
    for path in iter_files(root):
        total += os.stat(path).st_size
        count += 1
    return total, count


def drop_page_cache(root: str | Path) -> str:
    """Evict the cached pages of every file under ``root``; returns the method used.

    ``posix_fadvise(DONTNEED)`` per file is used rather than ``/proc/sys/vm/drop_caches``: it
    touches only these files, so other work on the machine keeps its cache. Dirty pages cannot be
    dropped, so the files are made durable first. On tmpfs this is a no-op (memory is the storage).
    """
    for path in iter_files(root):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "posix_fadvise(DONTNEED) on every file"


def cached_fraction(root: str | Path) -> float | None:
    """Share of the bytes under ``root`` resident in the page cache (util-linux ``fincore``)."""
    if shutil.which("fincore") is None:
        return None
    files = list(iter_files(root))
    if not files:
        return 0.0
    resident = total = 0
    for i in range(0, len(files), 500):
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", *files[i:i + 500]],
                             capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                resident += int(parts[0])
                total += int(parts[1])
    return resident / total if total else 0.0


def rmtree(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class Floor:
    """The CPU cost of the manifest digests over a corpus, measured on this machine now."""

    cpu: dict[str, float]  # algorithm -> CPU seconds on one core
    bytes: int
    cores: int

    @property
    def parallel(self) -> float:
        """All digests spread evenly over every core: sum of CPU times / cores."""
        return sum(self.cpu.values()) / self.cores

    @property
    def one_file(self) -> float:
        """One file, each algorithm on a core of its own side by side: the slowest algorithm."""
        return max(self.cpu.values()) if len(self.cpu) <= self.cores else self.parallel


def hash_floor(root: str | Path, algorithms: Sequence[str] = ("sha256", "sha512"), *,
               chunk: int = 1 << 20, repeat: int = 2) -> Floor:
    """CPU seconds hashlib needs for each algorithm over every byte under ``root``.

    Only the ``update`` calls are timed (reading is not), on the per-thread CPU clock, so other processes competing for the cores do not inflate it. Best of
    ``repeat``.
    """
    paths = sorted(iter_files(root))
    total = sum(os.stat(p).st_size for p in paths)
    cpu = {a: float("inf") for a in algorithms}
    for _ in range(repeat):
        spent = dict.fromkeys(algorithms, 0.0)
        buf = bytearray(chunk)
        view = memoryview(buf)
        for p in paths:
            hs = {a: hashlib.new(a) for a in algorithms}
            with open(p, "rb", buffering=0) as f:
                while True:
                    n = f.readinto(buf)
                    if not n:
                        break
                    piece = view[:n]
                    for a in algorithms:
                        t = time.thread_time()
                        hs[a].update(piece)
                        spent[a] += time.thread_time() - t
            for a in algorithms:
                hs[a].hexdigest()
        for a in algorithms:
            cpu[a] = min(cpu[a], spent[a])
    return Floor(cpu, total, cores())


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def fmt_mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, out: Callable[[str], None] = print) -> None:
    """A plain-text table, columns padded to their widest cell."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    out("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    out("  ".join("-" * w for w in widths))
    for r in rows:
        out("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


@contextlib.contextmanager
def stage(label: str, log: Callable[[str], None] = print) -> Iterator[None]:
    """Log a step with its duration (so a long benchmark shows where it is)."""
    t = time.perf_counter()
    log(f"... {label}")
    yield
    log(f"    done in {time.perf_counter() - t:.1f}s")

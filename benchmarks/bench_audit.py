"""Audit tiers compared on the same bags in one run: preserve's fast tier, its full tier, and
``bagit.py --validate`` (bagit-python), with the page cache warm and dropped.

    .venv/bin/python benchmarks/bench_audit.py                       # 1 GiB in /dev/shm and in /var/tmp
    .venv/bin/python benchmarks/bench_audit.py --size 2G --files 8 --dir /srv/scratch

For each folder it builds one bag of large files (sha256 + sha512 manifests, as ``preserve bag``
makes by default, plus metadata/xxh3-128.txt) and times:

- ``fast``: :func:`preserve.audit.runner.audit_bag` with the fast tier (xxh3-128 + completeness + Oxum);
- ``full``: the full tier (every payload and tag manifest digest: sha256 and sha512);
- ``bagit.py``: ``python -m bagit --validate --processes N`` on the same bag.

"warm" runs read after a warm-up pass (data in the page cache: CPU-bound, what the tiers cost);
"cold" runs evict each file's pages first (posix_fadvise DONTNEED), so the disk is read. Cold runs
are skipped on tmpfs (/dev/shm), where there is no disk behind the cache. The target: the fast
tier at least 5x faster than the full tier on large files when warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from preserve.audit.runner import audit_bag
from preserve.bag.writer import PayloadEntry, create_bag
from preserve.fixity import drop_cache


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def _drop_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)  # dirty pages cannot be dropped
                drop_cache(fd)
            finally:
                os.close(fd)


def _make_bag(folder: Path, total: int, files: int) -> Path:
    src = folder / "bench-src"
    src.mkdir()
    chunk = 16 << 20
    per_file = total // files
    for i in range(files):
        with open(src / f"take-{i:02d}.wav", "wb") as f:
            left = per_file
            while left:
                n = min(chunk, left)
                f.write(os.urandom(n))
                left -= n
    entries = [PayloadEntry(p, f"objects/{p.name}") for p in sorted(src.iterdir())]
    bag = folder / "bench-bag"
    create_bag(bag, entries)
    shutil.rmtree(src)
    return bag


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _bagit(bag: Path, processes: int) -> None:
    result = subprocess.run([sys.executable, "-m", "bagit", "--validate", "--processes", str(processes), str(bag)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bagit.py --validate failed on the benchmark bag: {result.stderr[-500:]}")


def _fast(bag: Path) -> None:
    if audit_bag(bag, "fast").outcome != "pass":
        raise SystemExit("the fast tier failed on an intact bag")


def _full(bag: Path) -> None:
    if audit_bag(bag, "full").outcome != "pass":
        raise SystemExit("the full tier failed on an intact bag")


def _fs_type(path: Path) -> str:
    from preserve.audit.ledger import filesystem_type

    return filesystem_type(path) or "?"


def bench(folder: Path, total: int, files: int, repeat: int) -> dict[str, dict[str, float]]:
    work = Path(tempfile.mkdtemp(prefix="preserve-bench-audit-", dir=folder))
    try:
        t0 = time.perf_counter()
        bag = _make_bag(work, total, files)
        print(f"  corpus: {files} file(s), {total / (1 << 30):.2f} GiB in {bag} ({_fs_type(bag)}), built in {time.perf_counter() - t0:.1f} s")
        procs = os.cpu_count() or 1
        runs: dict[str, Callable[[], None]] = {"fast": lambda: _fast(bag), "full": lambda: _full(bag),
                                               "bagit.py": lambda: _bagit(bag, procs)}
        results: dict[str, dict[str, float]] = {"warm": {}, "cold": {}}
        _fast(bag)  # warm-up: everything in the page cache
        for name, fn in runs.items():
            results["warm"][name] = min(_timed(fn) for _ in range(repeat))
        if _fs_type(bag) not in ("tmpfs", "ramfs"):
            for name, fn in runs.items():
                times = []
                for _ in range(repeat):
                    _drop_tree(bag)
                    times.append(_timed(fn))
                results["cold"][name] = min(times)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


#: The target: the fast tier at least this many times faster than the full tier, warm.
TARGET = 5.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="payload size per corpus (default 1G)")
    ap.add_argument("--files", type=int, default=4, help="number of payload files (default 4)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is kept (default 2)")
    ap.add_argument("--dir", action="append", type=Path, help="folder(s) to build the corpus in (default /dev/shm and /var/tmp)")
    args = ap.parse_args()
    total = _size(args.size)
    folders = args.dir or [p for p in (Path("/dev/shm"), Path("/var/tmp")) if p.is_dir()]
    print(f"preserve audit benchmark: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    verdicts: list[tuple[str, float]] = []
    for folder in folders:
        print(f"\n{folder}:")
        results = bench(folder, total, args.files, args.repeat)
        for cache, row in results.items():
            if not row:
                print(f"  {cache}: skipped (no disk behind {folder})")
                continue
            cells = "  ".join(f"{name} {secs:6.2f} s ({total / secs / 1e6:7.0f} MB/s)" for name, secs in row.items())
            print(f"  {cache}: {cells}")
            print(f"  {cache}: full / fast = {row['full'] / row['fast']:.1f}x, bagit.py / fast = {row['bagit.py'] / row['fast']:.1f}x, "
                  f"bagit.py / full = {row['bagit.py'] / row['full']:.1f}x")
            if cache == "warm":
                verdicts.append((str(folder), row["full"] / row["fast"]))
    print(f"\ntarget: the fast tier at least {TARGET:.0f}x faster than the full tier, warm")
    for folder, ratio in verdicts:
        print(f"  {folder}: {ratio:.1f}x  {'met' if ratio >= TARGET else 'NOT MET'}")
    return 0 if all(ratio >= TARGET for _, ratio in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

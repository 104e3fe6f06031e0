#!/usr/bin/env python3
"""Very large bags: time and peak memory of every step on a bag of 100,000 and 1,000,000 files.

For each size N (``--sizes``, default 100000,1000000) it builds a source folder of N small files
(1-4 KiB, 100 to a folder, 100 folders to a volume, as scans or per-track metadata lie) on tmpfs,
then runs, as a user runs them, each as a subprocess under GNU ``time``:

- ``preserve bag SRC BAG -q`` (with its verification; the source is then deleted to save memory);
- ``preserve validate BAG -q``;
- ``preserve audit BAG --tier fast --ledger L -q`` then ``--tier full`` (a temporary ledger);
- ``preserve replicate BAG DIR --ledger L -q`` (a directory target on the same tmpfs);
- only when ``--steps`` names it, ``replicate-tar``: ``preserve replicate BAG DIR2 --serialize tar
  --ledger L -q`` (the bag as one tar object, each file checked against its manifest digest as it
  streams; the tar is deleted once measured).

Each step gets its wall time; its CPU time, over all its processes (GNU ``time`` for the main
process and the children it reaps, ``/proc`` sampled every 100 ms for the worker processes of
multiprocessing's fork server, which it does not); the peak RSS of its main process (GNU
``time``'s figure, exact; the target is about it) and the largest peak RSS among its worker
processes (sampled). The same steps run first on a bag of ``--baseline`` files (1,000): that is
each step's baseline B, what the interpreter, its imports and fixed buffers take whatever the bag.

Targets, per step (N1 the smallest size, N2 the largest, k = N2 / N1):

- **memory**: peak RSS at N2 under 400 MiB;
- **sublinear memory**: the growth over the baseline at N2 is less than k times the growth at N1,
  ``P(N2) - B < k * max(P(N1) - B, 8 MiB)``; linear growth would be exactly k times (8 MiB is
  the noise of the allocator between runs: growth below it counts as flat);
- **linear time**: ``wall(N2) / wall(N1) <= 1.2 * k`` (12x for 100,000 -> 1,000,000).

It exits 1 when a target is missed. Corpora are deleted at the end (``--keep`` keeps them).

    .venv/bin/python benchmarks/bench_bigbag.py                          # 100k and 1M (35-45 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_bigbag.py --sizes 100000 --json /tmp/bigbag.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the benchmarks folder is not a package: common.py is imported from the path
from common import TIME, VENV_BIN, cores, fmt_mib, print_table, rmtree, stage, user_env

MiB = 1 << 20
PEAK_LIMIT_KIB = 400 * 1024
#: Growth over the baseline below this counts as flat: the allocator alone varies this much.
NOISE_KIB = 8 * 1024
#: Time may grow this much faster than the number of files before it counts as not linear.
TIME_SLACK = 1.2
STEPS = ("bag", "validate", "audit fast", "audit full", "replicate")
#: Steps measured only when --steps names them (each adds minutes and its replica's tmpfs).
EXTRA_STEPS = ("replicate-tar",)
ALL_STEPS = STEPS + EXTRA_STEPS
FILES_PER_FOLDER = 100
FOLDERS_PER_VOLUME = 100
#: tmpfs holds a file in whole pages: what one small file takes, with its inode and name
PER_FILE = 4096 + 1024


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the corpus ------------------------------------------------------------------------------


def make_tree(dest: Path, count: int, seed: int = 2026) -> int:
    """``count`` files of 1-4 KiB under ``dest``: vol-VVV/item-IIIII/track-TT.dat. Returns the bytes."""
    rng = random.Random(seed)
    pool = os.urandom(8192)
    total = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(count):
        folder = dest / f"vol-{i // (FILES_PER_FOLDER * FOLDERS_PER_VOLUME):03d}" / f"item-{i // FILES_PER_FOLDER:05d}"
        if i % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        size = rng.randint(1024, 4096)
        off = rng.randint(0, len(pool) - size)
        fd = os.open(folder / f"track-{i % FILES_PER_FOLDER:02d}.dat", flags, 0o644)
        try:
            os.write(fd, pool[off:off + size])
        finally:
            os.close(fd)
        total += size
    return total


# --- timing ----------------------------------------------------------------------------------


@dataclass
class Measured:
    """One step at one size."""

    step: str
    files: int
    wall: float
    cpu: float  # every process of the command: its main process and its worker processes
    main_kib: int  # peak RSS of the main process (GNU time: of a child it reaped, if that was larger)
    others_kib: int  # the largest peak RSS among its other processes (worker processes; sampled)
    command: list[str] = field(default_factory=list)


_TICK = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from the children lists of each of their threads."""
    out, todo = [], [pid]
    while todo:
        here = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{here}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{here}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _cpu_ticks(pid: int) -> int | None:
    """The process's own user + system CPU time, in clock ticks (its children not included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(step: str, files: int, cmd: list[str], env: dict[str, str]) -> Measured:
    """Run ``cmd`` under GNU time, sampling its other processes (CPU time and peak RSS) meanwhile.

    GNU time gives the main process's peak RSS exactly, but the worker processes are children of
    multiprocessing's fork server, which the main process does not always reap: their CPU time
    and memory are read from /proc every 100 ms instead (a process that lives less than that is
    missed; the workers live as long as their pool).
    """
    if TIME is None:
        raise SystemExit("GNU time (/usr/bin/time) is needed: apt-get install time")
    with tempfile.NamedTemporaryFile("r", prefix="bigbag-time-") as tf, \
            tempfile.TemporaryFile(prefix="bigbag-err-") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([TIME, "-q", "-f", "%U %S %M", "-o", tf.name, *cmd], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        ticks: dict[int, int] = {}
        hwm: dict[int, int] = {}
        main: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                below = _descendants(proc.pid)
                if below and not main:
                    main.append(below[0])
                for pid in below:
                    t = _cpu_ticks(pid)
                    if t is not None:
                        ticks[pid] = max(t, ticks.get(pid, 0))
                    hwm[pid] = max(_hwm_kib(pid), hwm.get(pid, 0))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        usage = tf.read().split()
        if rc != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-3000:]
            raise RuntimeError(f"{step}: exit code {rc}: {' '.join(cmd)}\n{tail}")
    timed_cpu, main_kib = float(usage[-3]) + float(usage[-2]), int(usage[-1])
    sampled_cpu = sum(ticks.values()) / _TICK
    others = max((k for pid, k in hwm.items() if pid not in main), default=0)
    # GNU time counts the main process and the children it reaped; the sampled sum counts every
    # process seen, each up to its last sample: the larger is the closer to the truth
    return Measured(step, files, wall, max(timed_cpu, sampled_cpu), main_kib, others, cmd)


def run_steps(root: Path, files: int, preserve: str, env: dict[str, str], keep: bool,
              steps: tuple[str, ...] = STEPS) -> list[Measured]:
    """Build the corpus of ``files`` files under ``root`` and measure every step on it."""
    src, bag, replica, ledger = root / "src", root / "bag", root / "replica", root / "ledger.sqlite"
    tarred = root / "replica-tar"
    rmtree(root)
    root.mkdir(parents=True)
    with stage(f"building {files:,} files of 1-4 KiB in {src}", log):
        nbytes = make_tree(src, files)
    log(f"    {nbytes / MiB:,.0f} MiB in {files:,} files")
    commands = {
        "bag": [preserve, "bag", str(src), str(bag), "-q"],
        "validate": [preserve, "validate", str(bag), "-q"],
        "audit fast": [preserve, "audit", str(bag), "--tier", "fast", "--ledger", str(ledger), "-q"],
        "audit full": [preserve, "audit", str(bag), "--tier", "full", "--ledger", str(ledger), "-q"],
        "replicate": [preserve, "replicate", str(bag), str(replica), "--ledger", str(ledger), "-q"],
        "replicate-tar": [preserve, "replicate", str(bag), str(tarred), "--serialize", "tar", "--ledger", str(ledger), "-q"],
    }
    out = []
    for step in ("bag", *(s for s in steps if s != "bag")):  # every other step reads the bag
        with stage(f"{step}, {files:,} files", log):
            m = measure(step, files, commands[step], env)
        log(f"    wall {m.wall:.1f}s, cpu {m.cpu:.1f}s, peak {fmt_mib(m.main_kib)} (workers {fmt_mib(m.others_kib)}), "
            f"load {os.getloadavg()[0]:.1f}")
        out.append(m)
        if step == "bag" and not keep:
            rmtree(src)  # the bag holds the same bytes: tmpfs is memory
        if step == "replicate-tar" and not keep:
            rmtree(tarred)  # as large as the bag again; no later step reads it
    if not keep:
        rmtree(root)
    return out


# --- verdicts --------------------------------------------------------------------------------


@dataclass
class Verdict:
    step: str
    target: str
    figure: str
    ok: bool


def judge(base: dict[str, Measured], by_size: dict[int, dict[str, Measured]]) -> list[Verdict]:
    sizes = sorted(by_size)
    out: list[Verdict] = []
    big = sizes[-1]
    for step in [s for s in ALL_STEPS if s in by_size[big]]:
        m = by_size[big][step]
        out.append(Verdict(step, f"peak RSS at {big:,} files < 400 MiB", fmt_mib(m.main_kib), m.main_kib < PEAK_LIMIT_KIB))
        if len(sizes) < 2:
            continue
        small = sizes[0]
        k = big / small
        s = by_size[small][step]
        b = base[step].main_kib
        grow_small, grow_big = s.main_kib - b, m.main_kib - b
        allowed = k * max(grow_small, NOISE_KIB)
        out.append(Verdict(step, f"growth over baseline {fmt_mib(b)} sublinear (< {k:.0f}x the growth at {small:,})",
                           f"+{grow_big / 1024:.0f} MiB vs +{grow_small / 1024:.0f} MiB "
                           f"(limit +{allowed / 1024:.0f} MiB)", grow_big < allowed))
        ratio = m.wall / s.wall
        out.append(Verdict(step, f"time {small:,} -> {big:,} linear (<= {TIME_SLACK * k:.0f}x)",
                           f"{s.wall:.1f}s -> {m.wall:.1f}s = {ratio:.1f}x (cpu {m.cpu / s.cpu:.1f}x)",
                           ratio <= TIME_SLACK * k))
    return out


def report(base: dict[str, Measured], by_size: dict[int, dict[str, Measured]], verdicts: list[Verdict]) -> None:
    sizes = sorted(by_size)
    print()
    print(f"== every step ({cores()} cores; peak RSS of the main process, largest of its worker processes; "
          "cpu of all of them)")
    rows = []
    for step in [s for s in ALL_STEPS if all(s in by_size[n] for n in sizes)]:
        for files, m in [(base[step].files, base[step])] + [(n, by_size[n][step]) for n in sizes]:
            rows.append([step, f"{files:,}", f"{m.wall:.1f}s", f"{m.cpu:.1f}s", fmt_mib(m.main_kib), fmt_mib(m.others_kib),
                         f"{m.wall / files * 1e6:.0f} us"])
    print_table(["step", "files", "wall", "cpu", "peak RSS", "workers", "wall per file"], rows)
    print()
    print("== targets")
    print_table(["step", "target", "figure", "met"], [[v.step, v.target, v.figure, "met" if v.ok else "MISSED"] for v in verdicts])


# --- main ------------------------------------------------------------------------------------


def combine(files: list[Path], sizes: set[int]) -> int:
    """Judge the figures of ``sizes`` from several runs as one (each measured in its own conditions)."""
    base: dict[str, Measured] = {}
    by_size: dict[int, dict[str, Measured]] = {}
    for path in files:
        data = json.loads(path.read_text())
        base = {k: Measured(**v) for k, v in data["baseline"].items()} or base
        for n, steps in data["sizes"].items():
            if int(n) in sizes:
                by_size[int(n)] = {k: Measured(**v) for k, v in steps.items()}
        print(f"{path}: load average {data['load']['start'][0]:.1f} at the start, {data['load']['end'][0]:.1f} at the end")
    verdicts = judge(base, by_size)
    report(base, by_size, verdicts)
    return 0 if all(v.ok for v in verdicts) else 1


def _count(text: str) -> int:
    text = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1000, "m": 1000_000}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", default="100000,1000000", help="numbers of files, comma-separated (100k, 1M accepted)")
    ap.add_argument("--baseline", type=int, default=1000, help="files in the baseline bag (default 1000)")
    ap.add_argument("--root", type=Path, default=Path("/dev/shm/preserve-bigbag"), help="working folder (tmpfs)")
    ap.add_argument("--preserve", default=str(VENV_BIN / "preserve"), help="the preserve console script")
    ap.add_argument("--steps", default=",".join(STEPS),
                    help=f"the steps to measure, in this order after bag (default {','.join(STEPS)}; "
                         f"also {', '.join(EXTRA_STEPS)})")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the corpora, bags and replicas (they are large)")
    ap.add_argument("--combine", type=Path, nargs="+", metavar="JSON",
                    help="measure nothing: judge the figures of earlier runs' --json files together (the "
                         "baseline of the last one is used; a size in several is taken from the last)")
    args = ap.parse_args(argv)
    if args.combine:
        return combine(args.combine, {_count(s) for s in args.sizes.split(",") if s.strip()})
    sizes = sorted({_count(s) for s in args.sizes.split(",") if s.strip()})
    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip())
    if unknown := [s for s in steps if s not in ALL_STEPS]:
        ap.error(f"unknown step {unknown[0]!r}; the steps are {', '.join(ALL_STEPS)}")
    # a terminated run still removes its corpora (the finally below): they are gigabytes of memory
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    need = 2 * max(sizes) * PER_FILE  # the source and the bag, then the bag and its replica
    if "replicate-tar" in steps:
        need += max(sizes) * PER_FILE  # and the tar, while it is measured
    free = os.statvfs(args.root.parent if not args.root.exists() else args.root)
    if free.f_bavail * free.f_frsize < need and not args.keep:
        raise SystemExit(f"{args.root}: {need / 2**30:.1f} GiB are needed, {free.f_bavail * free.f_frsize / 2**30:.1f} GiB free")
    env = user_env(args.root / "pycache")
    log(f"sizes {sizes}, baseline {args.baseline}, root {args.root}, load average {os.getloadavg()}")
    base: dict[str, Measured] = {}
    by_size: dict[int, dict[str, Measured]] = {}
    load = {"start": os.getloadavg()}
    try:
        base = {m.step: m for m in run_steps(args.root / "baseline", args.baseline, args.preserve, env, args.keep,
                                                     steps)}
        for n in sizes:
            by_size[n] = {m.step: m for m in run_steps(args.root / f"n{n}", n, args.preserve, env, args.keep, steps)}
    finally:
        load["end"] = os.getloadavg()
        if not args.keep:
            rmtree(args.root)
    verdicts = judge(base, by_size)
    report(base, by_size, verdicts)
    print(f"\nload average at the start {load['start'][0]:.1f}, at the end {load['end'][0]:.1f} ({cores()} cores)")
    if args.json:
        args.json.write_text(json.dumps({
            "cores": cores(), "load": load, "baseline": {k: asdict(v) for k, v in base.items()},
            "sizes": {str(n): {k: asdict(v) for k, v in steps.items()} for n, steps in by_size.items()},
            "targets": [asdict(v) for v in verdicts]}, indent=2))
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

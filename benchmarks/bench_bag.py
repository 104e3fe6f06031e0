#!/usr/bin/env python3
"""Benchmark ``preserve bag`` and ``preserve validate`` against bagit-python, in one run.

For each corpus (a few large WAV-like masters, 2 GiB in all; 20,000 small files; one single
2 GiB file) on tmpfs and on disk it times, interleaved and repeated (best of N):

- ``preserve bag SRC DST --no-verify -q`` against ``cp -r SRC DST && bagit.py --processes 2 DST && sync``
  (neither verifies), and ``preserve bag`` with its verification, whose extra cost is reported apart;
- ``preserve validate BAG -q`` against ``bagit.py --validate --processes 2 BAG``, warm (files in the
  page cache) and cold (every file of the bag evicted first; on disk only: tmpfs *is* memory);
- the floor: CPU seconds of hashlib sha256 + sha512 over the same bytes divided by the cores, and
  for the single file its own floor (the slower of sha256 and sha512, each on a core of its own),
  measured before the first round and again in every bag round (the fastest is kept, and each
  round's own gives a ratio within the round).

Then it measures the peak memory (max RSS) of ``preserve bag`` and ``preserve validate`` on a bag
of 200,000 small files. Corpora are removed at the end (``--keep`` keeps them).

    .venv/bin/python benchmarks/bench_bag.py              # everything (about 20 minutes)
    .venv/bin/python benchmarks/bench_bag.py --quick      # corpora 1/8 the size
    .venv/bin/python benchmarks/bench_bag.py --only large --where shm --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the benchmarks folder is not a package: its helpers are imported from the path
from common import (
    VENV_BIN,
    Floor,
    Run,
    best,
    cached_fraction,
    cores,
    drop_page_cache,
    fmt_mib,
    fmt_ratio,
    fmt_s,
    hash_floor,
    print_table,
    rmtree,
    run_patiently,
    stage,
    tree_bytes,
    user_env,
)

MiB = 1 << 20
GiB = 1 << 30
CORPORA = ("large", "small", "single", "memory")
WHERE = {"shm": "/dev/shm/preserve-bench", "disk": "/tmp/preserve-bench"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


#: Set by main(): the environment every timed command runs in (see common.user_env).
ENV: dict[str, str] = {}


def run(cmd: list[str] | str) -> Run:
    return run_patiently(cmd, log=log, env=ENV or None)


# --- corpora ---------------------------------------------------------------------------------


def _random_writer() -> Callable[[int], bytes]:
    try:
        import numpy as np

        rng = np.random.default_rng(20260)
        return lambda n: rng.bytes(n)
    except ImportError:  # pragma: no cover - numpy is in the dev venv
        return os.urandom


def make_large(dest: Path, total: int) -> None:
    """A few WAV-like masters of unequal sizes (like a session's takes), ``total`` bytes in all."""
    parts = [8, 6, 6, 4, 4, 4]  # sixteenths of the total: 512, 384, 384, 256, 256, 256 MiB at 2 GiB
    rand = _random_writer()
    dest.mkdir(parents=True)
    for i, p in enumerate(parts):
        size = total * p // 32
        with open(dest / f"master-{i + 1:02d}.wav", "wb") as f:
            f.write(b"RIFF" + (size - 8).to_bytes(4, "little") + b"WAVEfmt ")
            left = size - 16
            while left:
                n = min(left, 16 * MiB)
                f.write(rand(n))
                left -= n


def make_single(dest: Path, size: int) -> None:
    dest.mkdir(parents=True)
    rand = _random_writer()
    with open(dest / "reel-transfer.wav", "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(rand(n))
            left -= n


def make_small(dest: Path, count: int, lo: int, hi: int, per_dir: int = 200) -> None:
    """``count`` files of ``lo``..``hi`` bytes, ``per_dir`` to a folder (like per-item scans/metadata)."""
    rng = random.Random(count)
    pool = os.urandom(hi + 4096)
    dest.mkdir(parents=True)
    for i in range(count):
        d = dest / f"item-{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir()
        size = rng.randint(lo, hi)
        off = rng.randint(0, 4096)
        with open(d / f"page-{i % per_dir:03d}.dat", "wb") as f:
            f.write(pool[off:off + size])


@dataclass
class Sizes:
    large: int = 2 * GiB
    single: int = 2 * GiB
    small: int = 20_000
    memory: int = 200_000


def build(corpus: str, src: Path, sizes: Sizes) -> None:
    if corpus == "large":
        make_large(src, sizes.large)
    elif corpus == "single":
        make_single(src, sizes.single)
    elif corpus == "small":
        make_small(src, sizes.small, 1024, 32 * 1024)
    elif corpus == "memory":
        make_small(src, sizes.memory, 1024, 4 * 1024)


# --- the commands ----------------------------------------------------------------------------


@dataclass
class Tools:
    preserve: str
    bagit: str

    def bag(self, src: Path, dst: Path, verify: bool) -> list[str]:
        return [self.preserve, "bag", str(src), str(dst), *([] if verify else ["--no-verify"]), "-q"]

    def reference_bag(self, src: Path, dst: Path) -> str:
        q = shlex.quote
        return f"cp -r {q(str(src))} {q(str(dst))} && {q(self.bagit)} --processes 2 {q(str(dst))} && sync"

    def copy_only(self, src: Path, dst: Path) -> str:
        q = shlex.quote
        return f"cp -r {q(str(src))} {q(str(dst))} && sync"

    def startup(self) -> list[str]:
        return [self.preserve, "--version"]

    def validate(self, bag: Path) -> list[str]:
        return [self.preserve, "validate", str(bag), "-q"]

    def reference_validate(self, bag: Path) -> list[str]:
        return [self.bagit, "--validate", "--processes", "2", str(bag)]


@dataclass
class Case:
    """Every timing of one corpus in one place, by label."""

    corpus: str
    where: str
    bytes: int
    files: int
    runs: dict[str, list[Run]] = field(default_factory=dict)
    floor: Floor | None = None
    #: the floor measured again at the start of every bag round, for ratios within a round
    floors: list[Floor] = field(default_factory=list)
    cache_note: str = ""

    def add_floor(self, f: Floor) -> None:
        """Record a round's floor; ``floor`` keeps the fastest of all (as the commands keep theirs)."""
        self.floors.append(f)
        if self.floor is None:
            self.floor = f
        else:
            self.floor = Floor({a: min(t, f.cpu[a]) for a, t in self.floor.cpu.items()}, f.bytes, f.cores)

    def floor_of(self, f: Floor) -> float:
        return f.one_file if self.corpus == "single" else f.parallel

    def add(self, label: str, r: Run) -> None:
        self.runs.setdefault(label, []).append(r)

    def best(self, label: str) -> Run | None:
        return best(self.runs[label]) if self.runs.get(label) else None


BAG_NV, BAG_V, REF_BAG = "preserve bag --no-verify", "preserve bag (verify)", "cp -r + bagit.py --processes 2 + sync"
CP = "cp -r + sync (copy alone, no hashing)"
VAL_W, REF_VAL_W = "preserve validate (warm)", "bagit.py --validate --processes 2 (warm)"
VAL_C, REF_VAL_C = "preserve validate (cold)", "bagit.py --validate --processes 2 (cold)"
REF_OF = {BAG_NV: REF_BAG, BAG_V: REF_BAG, VAL_W: REF_VAL_W, VAL_C: REF_VAL_C}
#: the bag rounds measure the floor too, so these get a floor ratio within each round
FLOOR_PAIRED = (BAG_NV, REF_BAG, BAG_V, CP)


def bench_case(case: Case, root: Path, tools: Tools, repeat: int) -> None:
    src, bag = root / "src", root / "bag"
    on_disk = case.where == "disk"
    # ext4 slows down creating inodes next to ones deleted in the last 30 seconds (its
    # recently_deleted() check), which turned a many-file copy right after deleting the previous
    # run's copy into a test of that: for many files on disk, every run writes a new folder and
    # all are deleted at the end
    keep = on_disk and case.files > 1000
    outs: list[Path] = []

    def fresh() -> Path:
        if not keep:
            for o in outs:
                rmtree(o)
            if on_disk:
                os.sync()  # the previous run's deletion must not be flushed during the next timing
        outs.append(root / f"out-{len(outs)}")
        return outs[-1]

    # one untimed pass first: the first write to fresh tmpfs/guest memory is much slower than later ones
    with stage(f"{case.corpus}/{case.where}: warm-up bag", log):
        run(tools.bag(src, fresh(), verify=False))
    jobs: list[tuple[str, Callable[[Path], Run]]] = [
        (BAG_NV, lambda out: run(tools.bag(src, out, verify=False))),
        (REF_BAG, lambda out: run(tools.reference_bag(src, out))),
        (BAG_V, lambda out: run(tools.bag(src, out, verify=True))),
        (CP, lambda out: run(tools.copy_only(src, out))),
    ]
    for i in range(repeat):
        with stage(f"{case.corpus}/{case.where}: bag round {i + 1}/{repeat}", log):
            f = hash_floor(src, repeat=1)
            case.add_floor(f)
            log(f"    floor: sha256 {f.cpu['sha256']:.2f}s + sha512 {f.cpu['sha512']:.2f}s CPU -> {case.floor_of(f):.2f}s")
            k = i % len(jobs)
            for label, job in jobs[k:] + jobs[:k]:
                r = job(fresh())
                case.add(label, r)
                log(f"    {label}: {r.wall:.2f}s (cpu {r.cpu:.2f}s, rss {r.max_rss_kib // 1024} MiB)")
    for o in outs:
        rmtree(o)
    if on_disk:
        os.sync()

    rmtree(bag)
    run(tools.bag(src, bag, verify=True))
    run(tools.reference_validate(bag))  # also proves bagit-python accepts the bag; warms the cache
    vjobs: list[tuple[str, Callable[[], Run]]] = [
        (VAL_W, lambda: run(tools.validate(bag))),
        (REF_VAL_W, lambda: run(tools.reference_validate(bag))),
    ]
    if on_disk:
        def cold(cmd: list[str]) -> Run:
            drop_page_cache(bag)
            return run(cmd)

        vjobs += [
            (VAL_C, lambda: cold(tools.validate(bag))),
            (REF_VAL_C, lambda: cold(tools.reference_validate(bag))),
        ]
        drop_page_cache(bag)
        frac = cached_fraction(bag / "data")
        case.cache_note = f"cold: posix_fadvise(DONTNEED) on every file of the bag; {0 if frac is None else frac * 100:.1f}% of the payload still cached after dropping"
    for i in range(repeat):
        with stage(f"{case.corpus}/{case.where}: validate round {i + 1}/{repeat}", log):
            k = i % len(vjobs)
            for vlabel, vjob in vjobs[k:] + vjobs[:k]:
                r = vjob()
                case.add(vlabel, r)
                log(f"    {vlabel}: {r.wall:.2f}s (cpu {r.cpu:.2f}s, rss {r.max_rss_kib // 1024} MiB)")
    rmtree(bag)


def bench_memory(root: Path, tools: Tools, count: int) -> dict[str, object]:
    src, bag = root / "src", root / "bag"
    with stage(f"memory: bag of {count} files", log):
        r_bag = run(tools.bag(src, bag, verify=True))
    with stage("memory: validate", log):
        r_val = run(tools.validate(bag))
    return {"files": count, "bytes": tree_bytes(src)[0],
            "bag": asdict(r_bag), "validate": asdict(r_val)}


# --- report ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    target: str
    figure: str
    ok: bool


def ratio(ref: Run | None, ours: Run | None) -> float | None:
    return ref.wall / ours.wall if ref and ours else None


def paired(case: Case, ref_label: str, ours_label: str) -> float | None:
    """The median over rounds of (the reference's wall / preserve's) within the same round.

    Both commands of a round run back to back, so a slow spell of the machine that spans a round
    slows both and cancels out of the ratio; the best-of-N figures can pair a fast spell of one
    with a slow spell of the other.
    """
    refs, ours = case.runs.get(ref_label, []), case.runs.get(ours_label, [])
    ratios = sorted(r.wall / o.wall for r, o in zip(refs, ours, strict=False) if o.wall)
    return statistics.median(ratios) if ratios else None


def paired_floor(case: Case, label: str) -> float | None:
    """The median over bag rounds of (the command's wall / the floor measured in that round)."""
    runs = case.runs.get(label, [])
    x = sorted(r.wall / case.floor_of(f) for r, f in zip(runs, case.floors, strict=False))
    return statistics.median(x) if x else None


def report(cases: list[Case], memory: dict[str, object] | None, verdicts: list[Verdict]) -> None:
    print()
    print(f"machine: {cores()} cores; each figure is the best (shortest wall) of the repeated, interleaved runs;")
    print("speed-up = the reference's wall time / preserve's (best against best); paired = the median over rounds of")
    print("the same ratio within each round (both ran back to back); CPU ratio = the reference's CPU time / preserve's")
    print("(CPU time is what the work costs whatever else the machine is doing; wall time is what a user waits)")
    for case in cases:
        floor = case.floor
        assert floor is not None
        fl = floor.one_file if case.corpus == "single" else floor.parallel
        fl_label = "one-file floor (slower of sha256, sha512 on a core each)" if case.corpus == "single" else f"floor (sha256+sha512 CPU / {floor.cores} cores)"
        print()
        print(f"== {case.corpus} on {case.where}: {case.files} files, {case.bytes / MiB:.0f} MiB; "
              f"sha256 {floor.cpu['sha256']:.2f}s + sha512 {floor.cpu['sha512']:.2f}s CPU; {fl_label} {fl:.2f}s")
        rows: list[list[str]] = []

        def row(label: str, r: Run | None, against: Run | None, rows: list[list[str]] = rows, fl: float = fl,
                c: Case = case) -> None:
            if r is None:
                return
            cpu_ratio = against.cpu / r.cpu if against and r.cpu else None
            rows.append([label, fmt_s(r.wall), fmt_ratio(ratio(against, r)) if against else "",
                         fmt_ratio(paired(c, REF_OF[label], label)) if against else "",
                         fmt_ratio(r.wall / fl), fmt_ratio(paired_floor(c, label)) if label in FLOOR_PAIRED else "",
                         fmt_s(r.cpu), fmt_ratio(cpu_ratio) if against else "",
                         fmt_mib(r.max_rss_kib)])

        nv, ref, v, cp = case.best(BAG_NV), case.best(REF_BAG), case.best(BAG_V), case.best(CP)
        row(BAG_NV, nv, ref)
        row(REF_BAG, ref, None)
        row(CP, cp, None)
        row(BAG_V, v, ref)
        if v and nv:
            rows.append(["  cost of verification", f"+{v.wall - nv.wall:.2f}s", f"+{(v.wall / nv.wall - 1) * 100:.0f}%", "", "", "",
                         f"+{v.cpu - nv.cpu:.2f}s", "", ""])
        for ours_l, ref_l in ((VAL_W, REF_VAL_W), (VAL_C, REF_VAL_C)):
            theirs = case.best(ref_l)
            row(ours_l, case.best(ours_l), theirs)
            row(ref_l, theirs, None)
        print_table(["command", "best wall", "speed-up", "paired", "x floor", "paired", "its CPU", "CPU ratio", "peak RSS"], rows)
        if cp and nv:
            # copying has a CPU cost of its own (kernel copies in and out of the page cache) that the
            # hashing floor leaves out; this floor adds cp's CPU time for the same bytes
            both = (sum(floor.cpu.values()) + cp.cpu) / floor.cores
            if case.corpus == "single":
                both = max(max(floor.cpu.values()), both)
            print(f"copy+hash floor ((sha256+sha512 CPU + cp CPU) / {floor.cores} cores{', or the slower hash' if case.corpus == 'single' else ''}): "
                  f"{both:.2f}s; preserve bag --no-verify is {nv.wall / both:.2f}x that")
        if case.cache_note:
            print(f"({case.cache_note})")
    if memory:
        print()
        b, val = memory["bag"], memory["validate"]
        assert isinstance(b, dict) and isinstance(val, dict)
        print(f"== peak memory, {memory['files']} files of 1-4 KiB on tmpfs ({int(memory['bytes']) / MiB:.0f} MiB)")  # type: ignore[call-overload]
        print_table(["command", "wall", "peak RSS"], [
            ["preserve bag (verify)", fmt_s(b["wall"]), fmt_mib(b["max_rss_kib"])],
            ["preserve validate", fmt_s(val["wall"]), fmt_mib(val["max_rss_kib"])],
        ])
    if verdicts:
        print()
        print("== targets")
        print_table(["target", "measured", "met"], [[v.target, v.figure, "yes" if v.ok else "NO"] for v in verdicts])


def judge(cases: list[Case]) -> list[Verdict]:
    out: list[Verdict] = []

    def get(corpus: str, where: str) -> Case | None:
        return next((c for c in cases if c.corpus == corpus and c.where == where), None)

    for where in ("shm", "disk"):
        c = get("large", where)
        if c and c.floor:
            r = ratio(c.best(REF_BAG), c.best(BAG_NV))
            if r is not None:
                out.append(Verdict(f"large/{where}: bag at least as fast as the reference", f"{r:.2f}x", r >= 1.0))
            nv = c.best(BAG_NV)
            if where == "shm" and nv:
                x = nv.wall / c.floor.parallel
                out.append(Verdict("large/shm: bag within 15% of the floor", f"{x:.2f}x floor", x <= 1.15))
            for o, t in ((VAL_W, REF_VAL_W), (VAL_C, REF_VAL_C)):
                r = ratio(c.best(t), c.best(o))
                if r is not None:
                    out.append(Verdict(f"large/{where}: {o.split(' ', 1)[1]} no slower", f"{r:.2f}x", r >= 1.0))
        c = get("single", where)
        if c and c.floor and where == "shm":
            nv = c.best(BAG_NV)
            if nv:
                x = nv.wall / c.floor.one_file
                out.append(Verdict("single/shm: bag within 15% of its one-file floor", f"{x:.2f}x floor", x <= 1.15))
            r = ratio(c.best(REF_BAG), nv)
            if r is not None:
                out.append(Verdict("single/shm: faster than the reference (issue expects ~1.4x)", f"{r:.2f}x", r >= 1.3))
        c = get("small", where)
        if c:
            r = ratio(c.best(REF_BAG), c.best(BAG_NV))
            if r is not None and where == "shm":
                out.append(Verdict("small/shm: bag at least 2x faster", f"{r:.2f}x", r >= 2.0))
            for o, t in ((VAL_W, REF_VAL_W), (VAL_C, REF_VAL_C)):
                r = ratio(c.best(t), c.best(o))
                if r is not None:
                    out.append(Verdict(f"small/{where}: {o.split(' ', 1)[1]} at least 2x faster", f"{r:.2f}x", r >= 2.0))
    return out


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="corpora 1/8 the size (a smoke run)")
    ap.add_argument("--only", action="append", choices=CORPORA, help="run only this corpus (repeatable)")
    ap.add_argument("--where", action="append", choices=tuple(WHERE), help="run only on tmpfs (shm) or disk (repeatable)")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds per comparison; the best is kept (default 3)")
    ap.add_argument("--shm-root", default=WHERE["shm"], help=f"tmpfs working folder (default {WHERE['shm']})")
    ap.add_argument("--disk-root", default=WHERE["disk"], help=f"on-disk working folder (default {WHERE['disk']})")
    ap.add_argument("--preserve", default=str(VENV_BIN / "preserve"), help="the preserve console script")
    ap.add_argument("--bagit", default=str(VENV_BIN / "bagit.py"), help="bagit-python's bagit.py")
    ap.add_argument("--json", type=Path, help="also write every run's figures to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the corpora (they are large)")
    args = ap.parse_args(argv)
    # a terminated run still removes its corpora (the finally below): they are gigabytes
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    sizes = Sizes() if not args.quick else Sizes(large=256 * MiB, single=256 * MiB, small=2_500, memory=25_000)
    corpora = args.only or list(CORPORA)
    where = args.where or list(WHERE)
    roots = {"shm": Path(args.shm_root), "disk": Path(args.disk_root)}
    tools = Tools(args.preserve, args.bagit)
    cases: list[Case] = []
    memory: dict[str, object] | None = None
    ENV.clear()
    ENV.update(user_env(roots["shm"] / "pycache"))
    log(f"commands run with bytecode caching on (PYTHONPYCACHEPREFIX={ENV['PYTHONPYCACHEPREFIX']})")
    startup = best(run(tools.startup()) for _ in range(5))
    log(f"preserve start-up (preserve --version, best of 5): {startup.wall:.2f}s")
    log(f"preserve bag benchmark: corpora {corpora}, places {where}, best of {args.repeat}, {cores()} cores")
    try:
        for corpus in corpora:
            if corpus == "memory":
                root = roots["shm"] / "memory"
                rmtree(root)
                with stage(f"building {sizes.memory} small files on tmpfs", log):
                    build("memory", root / "src", sizes)
                memory = bench_memory(root, tools, sizes.memory)
                rmtree(root)
                continue
            floor: Floor | None = None
            for place in where:
                root = roots[place] / corpus
                rmtree(root)
                with stage(f"building corpus {corpus} on {place}", log):
                    build(corpus, root / "src", sizes)
                    if place == "disk":
                        os.sync()
                nbytes, nfiles = tree_bytes(root / "src")
                case = Case(corpus, place, nbytes, nfiles)
                if floor is None:
                    with stage(f"floor: hashlib sha256 and sha512 over {corpus}", log):
                        floor = hash_floor(root / "src")
                    log(f"    sha256 {floor.cpu['sha256']:.2f}s, sha512 {floor.cpu['sha512']:.2f}s CPU")
                case.floor = floor  # every bag round measures it again (Case.add_floor)
                bench_case(case, root, tools, args.repeat)
                cases.append(case)
                rmtree(root)
    finally:
        if not args.keep:
            for r in roots.values():
                rmtree(r)
    verdicts = judge(cases)
    report(cases, memory, verdicts)
    print(f"\npreserve start-up alone (preserve --version, best of 5): {startup.wall:.2f}s wall, {startup.cpu:.2f}s CPU; "
          "it is part of every preserve figure above")
    if args.json:
        data = {
            "cores": cores(), "repeat": args.repeat, "quick": args.quick, "startup": asdict(startup),
            "cases": [{"corpus": c.corpus, "where": c.where, "bytes": c.bytes, "files": c.files,
                       "floor_cpu": c.floor.cpu if c.floor else None,
                       "runs": {k: [asdict(r) for r in v] for k, v in c.runs.items()}} for c in cases],
            "memory": memory, "targets": [asdict(v) for v in verdicts],
        }
        args.json.write_text(json.dumps(data, indent=2))
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Start-up time: ``preserve --help`` and ``preserve validate --fast`` of a tiny bag, beside bagit.py.

Each command runs N times in a child process, interleaved so that a burst of load on a shared
machine hits all of them alike; the minimum wall time is kept (the start-up cost itself, without
the noise other processes add), the median is printed beside it. Targets:
``--help`` under 150 ms and the tiny bag's validation under 200 ms. Exits 1 when one is missed.

    .venv/bin/python benchmarks/bench_startup.py            # 15 rounds
    .venv/bin/python benchmarks/bench_startup.py --rounds 30 --json /tmp/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
TARGETS = {"preserve --help": 0.150, "preserve validate --fast": 0.200}
#: The children may write bytecode, as an installed package has it (pip compiles on install): with
#: PYTHONDONTWRITEBYTECODE set in the caller's environment every run would compile every module
#: again and the figures would measure the compiler, not the start-up a user sees.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _make_bag(where: Path) -> Path:
    """A 7-file bag written by bagit-python (the reference), so neither tool validates its own output."""
    src = where / "bag"
    src.mkdir()
    for i in range(7):
        (src / f"file{i}.txt").write_text(f"content {i}\n", encoding="utf-8")
    subprocess.run([str(BIN / "bagit.py"), "--quiet", str(src)], check=True, env=ENV)
    return src


def _wall(argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--json", type=Path, help="write every run's wall and CPU time to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="preserve-startup-") as tmp:
        bag = _make_bag(Path(tmp))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "preserve --help": [str(BIN / "preserve"), "--help"],
            "preserve validate --fast": [str(BIN / "preserve"), "validate", "--fast", str(bag)],
            "bagit.py --validate --fast": [str(BIN / "bagit.py"), "--validate", "--fast", "--quiet", str(bag)],
            "bagit.py --validate": [str(BIN / "bagit.py"), "--validate", "--quiet", str(bag)],
        }
        for cmd in commands.values():  # warm the page cache and the bytecode cache once
            _wall(cmd)
        runs: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, cmd in commands.items():
                wall, used = _wall(cmd)
                runs[name].append(wall)
                cpu[name].append(used)
    failed = False
    # CPU time is printed beside the wall time: on a loaded machine it shows the work each
    # command does when the wall time mostly shows the queue for a core
    print(f"{'command':<28} {'min ms':>8} {'median ms':>10} {'cpu min ms':>11} {'target ms':>10}")
    for name, walls in runs.items():
        target = TARGETS.get(name)
        best = min(walls)
        mark = ""
        if target is not None:
            mark = f"{target * 1000:>10.0f}" + ("" if best < target else "  MISSED")
            failed |= best >= target
        print(f"{name:<28} {best * 1000:>8.1f} {statistics.median(walls) * 1000:>10.1f} {min(cpu[name]) * 1000:>11.1f} {mark}")
    if args.json:
        args.json.write_text(json.dumps({"wall": runs, "cpu": cpu}, indent=2), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

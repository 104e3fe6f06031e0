#!/usr/bin/env python3
"""Interleaved A/B timing of shell commands: best and median wall and CPU time over N rounds.

Each round runs every command once, back to back, alternating the order from round to round, so
a slow spell of a shared machine falls on all of them; ``--setup`` runs untimed before each
command (to delete the previous output, say). CPU time is the command's and its children's.

    .venv/bin/python benchmarks/ab.py --rounds 8 --setup 'rm -rf /dev/shm/out' \\
        'preserve=.venv/bin/preserve bag /dev/shm/src /dev/shm/out --no-verify -q' \\
        'reference=cp -r /dev/shm/src /dev/shm/out && .venv/bin/bagit.py --processes 2 /dev/shm/out && sync'
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time


def timed(command: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one shell command; CPU counts the children it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("commands", nargs="+", metavar="NAME=COMMAND", help="a label and a shell command")
    ap.add_argument("--rounds", type=int, default=6, help="rounds (default 6)")
    ap.add_argument("--setup", help="a shell command run untimed before each timed one")
    args = ap.parse_args(argv)
    commands: dict[str, str] = {}
    for item in args.commands:
        name, sep, command = item.partition("=")
        if not sep or not command:
            ap.error(f"{item!r}: give NAME=COMMAND")
        commands[name] = command
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for r in range(args.rounds):
        order = list(commands) if r % 2 == 0 else list(commands)[::-1]
        for name in order:
            if args.setup:
                subprocess.run(args.setup, shell=True, check=True)
            runs[name].append(timed(commands[name]))
    width = max(len(n) for n in commands)
    for name, got in runs.items():
        walls, cpus = [w for w, _ in got], [c for _, c in got]
        print(f"{name:{width}}  wall best {min(walls):.2f}s median {statistics.median(walls):.2f}s   "
              f"cpu best {min(cpus):.2f}s median {statistics.median(cpus):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark the OCFL store against ``preserve bag`` / ``preserve validate`` on the same data, in one run.

Corpus: 20 WAV-like masters (random bytes), 2 GiB in all by default. Interleaved and repeated
(best of N), on the same disk:

- ``preserve bag SRC BAG -q`` (copy, hash, verify by re-reading) against
  ``preserve store ingest ROOT BAG`` (copy and hash in one read, checked against the manifests);
  target: ingest within 1.15x of bag;
- ``preserve store validate OBJECT`` against ``preserve validate BAG -q`` (every digest computed);
  target: within 1.1x;
- ``store update --from BAG2`` where BAG2 differs from BAG in 1 of the 20 masters: the seconds
  and the bytes written under the new version folder (target: only that file);
- ``store update --from BAG3`` where only the sheet in data/submission differs (a correction
  that reads the audio to verify it): the seconds and the bytes written;
- ``store update --sheet FILE`` on an object packaged by ``preserve package`` from a collection of
  20 real WAV files (PCM headers, random samples) of the same total size: the metadata-only
  correction. The seconds, the bytes written under the new version folder, and what the process
  read and wrote through system calls (/proc/self/io rchar and wchar, imports included).
  Target: under 2 s and under 1 MiB written.

    .venv/bin/python benchmarks/bench_store.py                # 2 GiB (about 12 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_store.py --quick        # 256 MiB
    .venv/bin/python benchmarks/bench_store.py --correction-only --repeat 5   # only the --sheet correction
    .venv/bin/python benchmarks/bench_store.py --where /mnt/disk --repeat 5
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the benchmarks folder is not a package: its helpers are imported from the path
from common import VENV_BIN, Run, best, fmt_ratio, fmt_s, print_table, run, tree_bytes

PRESERVE = str(VENV_BIN / "preserve")
FILES = 20


def _write_corpus(src: Path, total: int, seed: int) -> None:
    rnd = random.Random(seed)
    each = total // FILES
    (src / "masters").mkdir(parents=True)
    (src / "sheet").mkdir()
    for i in range(FILES):
        with open(src / "masters" / f"track{i:02d}.wav", "wb") as f:
            left = each
            while left:
                n = min(left, 1 << 24)
                f.write(rnd.randbytes(n))
                left -= n
    (src / "sheet" / "metadata.csv").write_text("file,title\n" + "".join(
        f"masters/track{i:02d}.wav,Track {i}\n" for i in range(FILES)))


def _variant(src: Path, dest: Path, change: str) -> None:
    """A copy of ``src`` sharing its files (hard links) with one file made new."""
    shutil.copytree(src, dest, copy_function=os.link)
    target = dest / change
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data[::-1] if change.endswith(".wav") else data.replace(b"Track 3", b"Track 3 (corrected)"))


#: the CLI run in a process that reports what it read and wrote (all of it: start-up included)
_COUNTED = """
import sys
from preserve.cli.main import main
try:
    main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as out:
        out.write(open("/proc/self/io").read())
"""
_RIGHTS = """[collection]
identifier = "bench-0001"
organization = "Bench Archive"

[defaults]
rights_basis = "copyright"
rights_holder = "Bench Records"
copyright_status = "copyrighted"
permitted_acts = ["replicate", "migrate"]
"""


def _write_collection(coll: Path, total: int, seed: int) -> None:
    """20 real WAV files (16-bit stereo 44.1 kHz PCM, random samples), a sheet and collection.toml."""
    rnd = random.Random(seed)
    each = (total // FILES) & ~3
    coll.mkdir(parents=True)
    for i in range(FILES):
        with open(coll / f"track{i:02d}.wav", "wb") as f:
            f.write(b"RIFF" + struct.pack("<I", 36 + each) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100,
                    44100 * 4, 4, 16) + b"data" + struct.pack("<I", each))
            left = each
            while left:
                n = min(left, 1 << 24)
                f.write(rnd.randbytes(n))
                left -= n
    (coll / "collection.toml").write_text(_RIGHTS)
    _sheet(coll / "metadata.csv", "")


def _sheet(path: Path, mark: str) -> None:
    path.write_text("file,title,artist\n" + "".join(f"track{i:02d}.wav,Track {i}{mark},Bench Band\n"
                                                     for i in range(FILES)))


def _correction(base: Path, total: int, repeat: int) -> tuple[float, int, int, int]:
    """Best seconds, and that run's bytes under the new version folder, rchar and wchar."""
    coll, bag, root = base / "coll", base / "bag-packaged", base / "store-packaged"
    _write_collection(coll, total, 2)
    run([PRESERVE, "package", "-q", str(coll), str(bag)])
    run([PRESERVE, "store", "init", str(root)])
    run([PRESERVE, "store", "ingest", str(root), str(bag), "--id", "urn:bench:packaged"])
    shutil.rmtree(bag)
    obj = _object(root)
    found = []
    for n in range(repeat):
        sheet, io = base / f"corrected-{n}.csv", base / "io.txt"
        _sheet(sheet, f" (corrected {n})")
        started = time.perf_counter()
        subprocess.run([str(VENV_BIN / "python"), "-c", _COUNTED, str(io), "store", "update", str(root),
                        "urn:bench:packaged", "--sheet", str(sheet), "--reason", "benchmark", "--operator", "bench"],
                       check=True, capture_output=True)
        wall = time.perf_counter() - started
        counts = dict(line.split(": ") for line in io.read_text().splitlines())
        found.append((wall, tree_bytes(obj / f"v{n + 2}")[0], int(counts["rchar"]), int(counts["wchar"])))
    return min(found)


def _object(root: Path) -> Path:
    return next(p.parent for p in root.rglob("0=ocfl_object_1.1"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="256 MiB instead of 2 GiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--where", type=Path, default=Path(tempfile.gettempdir()), help="folder for the corpora")
    ap.add_argument("--correction-only", action="store_true", help="measure only the --sheet correction")
    args = ap.parse_args()
    total = (256 if args.quick else 2048) << 20
    base = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.where))
    try:
        wall, version_bytes, rchar, wchar = _correction(base, total, args.repeat)
        correction = ["store update --sheet (metadata only)", fmt_s(wall),
                      f"{version_bytes / 1024:.1f} KiB in v2; process read {rchar / (1 << 20):.1f} MiB, "
                      f"wrote {wchar / 1024:.1f} KiB", "< 2 s, < 1 MiB"]
        if args.correction_only:
            print(f"\n{FILES} files, {total / (1 << 20):.0f} MiB of audio, best of {args.repeat}, in {args.where}\n")
            print_table(["what", "seconds", "written", "target"], [correction])
            return
        src = base / "src"
        _write_corpus(src, total, 1)
        _variant(src, base / "src-one-replaced", "masters/track07.wav")
        _variant(src, base / "src-sheet", "sheet/metadata.csv")
        for name in ("src-one-replaced", "src-sheet"):
            run([PRESERVE, "bag", "-q", str(base / name), str(base / f"bag-{name}")])
        bag_runs: list[Run] = []
        ingest_runs: list[Run] = []
        validate_bag: list[Run] = []
        validate_obj: list[Run] = []
        replace_runs: list[tuple[Run, int]] = []
        sheet_runs: list[tuple[Run, int]] = []
        for rnd in range(args.repeat):
            bag, root = base / f"bag{rnd}", base / f"store{rnd}"
            bag_runs.append(run([PRESERVE, "bag", "-q", str(src), str(bag)]))
            run([PRESERVE, "store", "init", str(root)])
            ingest_runs.append(run([PRESERVE, "store", "ingest", str(root), str(bag), "--id", "urn:bench:1"]))
            obj = _object(root)
            validate_bag.append(run([PRESERVE, "validate", "-q", str(bag)]))
            validate_obj.append(run([PRESERVE, "store", "validate", str(obj)]))
            for name, out in (("src-one-replaced", replace_runs), ("src-sheet", sheet_runs)):
                r = run([PRESERVE, "store", "update", str(root), "urn:bench:1", "--from", str(base / f"bag-{name}"),
                         "--reason", "benchmark", "--operator", "bench"])
                head = max((p for p in obj.iterdir() if p.name.startswith("v")), key=lambda p: int(p.name[1:]))
                out.append((r, tree_bytes(head)[0]))
            shutil.rmtree(bag)
            shutil.rmtree(root)
        b, i = best(bag_runs), best(ingest_runs)
        vb, vo = best(validate_bag), best(validate_obj)
        rr = min(replace_runs, key=lambda x: x[0].wall)
        sr = min(sheet_runs, key=lambda x: x[0].wall)
        mib = total / (1 << 20)
        print(f"\n{FILES} files, {mib:.0f} MiB, best of {args.repeat}, in {args.where}\n")
        print_table(["what", "seconds", "ratio", "target"], [
            ["preserve bag (copy, hash, verify)", fmt_s(b.wall), "1.00", ""],
            ["store ingest", fmt_s(i.wall), fmt_ratio(i.wall / b.wall), "<= 1.15"],
            ["preserve validate BAG", fmt_s(vb.wall), "1.00", ""],
            ["store validate OBJECT", fmt_s(vo.wall), fmt_ratio(vo.wall / vb.wall), "<= 1.10"],
            ["store update: 1 of 20 replaced", fmt_s(rr[0].wall), f"{rr[1] / (1 << 20):.1f} MiB written",
             f"{total / FILES / (1 << 20):.1f} MiB (that file)"],
            ["store update --from: only the sheet changed", fmt_s(sr[0].wall), f"{sr[1] / 1024:.1f} KiB written",
             ""],
            correction,
        ])
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

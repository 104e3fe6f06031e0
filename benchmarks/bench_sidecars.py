"""Peak memory and time of packaging with PREMIS/METS sidecars, for synthetic collections.

Each size runs in a fresh subprocess (so ``ru_maxrss`` is that run's peak): it writes N tiny
payload files, builds a Collection of N tracks (10 per release, two licences, full technical
metadata), then packages through the real ``create_bag`` with ``write_sidecars`` as
``extra_tags``. The same run without sidecars is the baseline, so the difference is what the
sidecars cost.

    .venv/bin/python benchmarks/bench_sidecars.py 500 20000
    .venv/bin/python benchmarks/bench_sidecars.py --package 500 20000   # whole `preserve package`

After each packaging with sidecars, ``check_sidecars`` (what ``preserve validate`` adds, against
``$PRESERVE_SCHEMAS`` or ``../shared/schemas``) and ``summarize`` (``preserve show``) each run on
the bag in a fresh subprocess of their own.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _check(bag: str, schemas: str) -> dict[str, object]:
    from preserve.sidecars.check import check_sidecars

    t0 = time.perf_counter()
    findings = check_sidecars(bag, schemas=Path(schemas) if schemas else None)
    return {"seconds": round(time.perf_counter() - t0, 2), "findings": len(findings),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _show(bag: str) -> dict[str, object]:
    from preserve.sidecars.show import summarize

    t0 = time.perf_counter()
    summary = summarize(bag)
    return {"seconds": round(time.perf_counter() - t0, 2), "tracks": sum(len(r.tracks) for r in summary.releases),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _child(n: int, sidecars: bool, keep: bool = False) -> dict[str, object]:
    from preserve.bag.writer import PayloadEntry, StagedBag, create_bag
    from preserve.model import (
        AudioTechnical,
        Collection,
        EssenceCheck,
        FormatIdentification,
        PackagingContext,
        ProducerChecksum,
        Rights,
        Track,
    )
    from preserve.sidecars import write_sidecars

    fmt = FormatIdentification(puid="fmt/279", name="FLAC (Free Lossless Audio Codec)", mime="audio/flac",
                               tool="fido", tool_version="1.6.1", signature_version="PRONOM v109", method="signature")
    rights = [Rights(basis="license", holder=f"Label {k}", license=f"Licence {k}", permitted_acts=("replicate", "migrate"))
              for k in range(2)]
    work = Path(tempfile.mkdtemp(prefix="bench-sidecars-"))
    try:
        src = work / "src"
        tracks, payload = [], []
        for i in range(n):
            rel = f"release {i // 10:05d}/{i % 10 + 1:02d} track {i}.flac"
            p = src / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x" * 64)
            tracks.append(Track(
                source_path=rel, bag_path=f"data/objects/{rel}", row=i + 1, title=f"Track {i}", artists=("Artist",),
                album=f"Album {i // 10}", track_number=i % 10 + 1, disc_number=1, date="2001", isrc=f"GBAAA01{i:05d}",
                genre="Jazz", language="eng", rights=rights[(i // 10) % 2], format=fmt,
                technical=AudioTechnical(codec="FLAC", container="FLAC", sample_rate=96000, bit_depth=24, channels=2,
                                         duration=241.5, frames=23184000),
                essence=EssenceCheck("pass", method="FLAC STREAMINFO MD5"),
                producer_checksums=[ProducerChecksum("md5", "0" * 32, f"metadata.csv row {i + 1}")], size=64))
            payload.append(PayloadEntry(p, f"objects/{rel}"))
        col = Collection(root=str(src), identifier="BENCH", title="Benchmark", organization="Bench Archive", tracks=tracks)
        ctx = PackagingContext(started="2024-01-01T00:00:00Z", operator="bench", organization="Bench Archive")

        def extra(staged: StagedBag) -> None:
            write_sidecars(staged, col, ctx)

        t0 = time.perf_counter()
        create_bag(work / "bag", payload, extra_tags=extra if sidecars else None, workers=2)
        elapsed = time.perf_counter() - t0
        mets = work / "bag" / "metadata" / "mets.xml"
        return {"tracks": n, "sidecars": sidecars, "seconds": round(elapsed, 2),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "mets_mib": round(mets.stat().st_size / 2**20, 1) if sidecars else 0,
                "premis_mib": round((mets.parent / "premis.xml").stat().st_size / 2**20, 1) if sidecars else 0,
                "bag": str(work / "bag") if keep else None}
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


TOML = """[collection]
identifier = "bench-{n}"
title = "Benchmark collection of {n} tracks"
organization = "Bench Archive"

[defaults]
rights_basis = "donor"
rights_holder = "Bench Donor"
copyright_status = "copyrighted"
agreement = "rights/deed.txt"
permitted_acts = ["replicate", "migrate"]
"""


def _package_end_to_end(n: int) -> dict[str, object]:
    """``preserve package`` as a user runs it, on N real (tiny) WAVE files, under /usr/bin/time -v."""
    from preserve.intake.testaudio import Tone, write_wav

    work = Path(tempfile.mkdtemp(prefix="bench-package-"))
    try:
        src = work / "collection"
        (src / "rights").mkdir(parents=True)
        (src / "rights" / "deed.txt").write_text("Deed of gift (benchmark)\n")
        (src / "collection.toml").write_text(TOML.format(n=n))
        one = write_wav(work / "tone.wav", Tone(sample_rate=8000, channels=1, seconds=0.05)).read_bytes()
        rows = ["file,title,artist,album,track_number,disc_number"]
        for i in range(n):
            rel = f"album-{i // 10:05d}/{i % 10 + 1:02d}.wav"
            (src / rel).parent.mkdir(exist_ok=True)
            (src / rel).write_bytes(one)
            rows.append(f"{rel},Track {i},Artist,Album {i // 10},{i % 10 + 1},1")
        (src / "metadata.csv").write_text("\n".join(rows) + "\n")
        exe = str(Path(sys.executable).parent / "preserve")
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", exe, "package", "-q", "--operator", "bench", str(src), str(work / "bag")],
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"preserve package failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        rss = next(int(line.split(":")[1]) for line in proc.stderr.splitlines() if "Maximum resident set size" in line)
        return {"tracks": n, "seconds": round(elapsed, 1), "peak_rss_mib": round(rss / 1024, 1),
                "mets_mib": round((work / "bag" / "metadata" / "mets.xml").stat().st_size / 2**20, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--child":
        print(json.dumps(_child(int(argv[1]), argv[2] == "1", keep=argv[2] == "1")))
        return
    if argv and argv[0] == "--package":
        print(f"{'tracks':>8} {'seconds':>8} {'peak RSS MiB':>13} {'mets.xml MiB':>13}   (preserve package, end to end)")
        for n in [int(a) for a in argv[1:]] or [500, 20000]:
            r = _package_end_to_end(n)
            print(f"{r['tracks']:>8} {r['seconds']:>8} {r['peak_rss_mib']:>13} {r['mets_mib']:>13}")
        return
    if argv and argv[0] == "--show":
        print(json.dumps(_show(argv[1])))
        return
    if argv and argv[0] == "--check":
        print(json.dumps(_check(argv[1], argv[2])))
        return
    schemas = os.environ.get("PRESERVE_SCHEMAS", str(Path(__file__).resolve().parents[2] / "shared" / "schemas"))
    sizes = [int(a) for a in argv] or [500, 20000]
    print(f"{'tracks':>8} {'sidecars':>8} {'seconds':>8} {'peak RSS MiB':>13} {'mets.xml MiB':>13} {'premis.xml MiB':>15}")
    for n in sizes:
        for sidecars in (False, True):
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "1" if sidecars else "0"],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            print(f"{r['tracks']:>8} {'yes' if sidecars else 'no':>8} {r['seconds']:>8} {r['peak_rss_mib']:>13} "
                  f"{r['mets_mib']:>13} {r['premis_mib']:>15}")
            if r["bag"]:
                try:
                    out = subprocess.run([sys.executable, __file__, "--check", r["bag"], schemas],
                                         capture_output=True, text=True, check=True)
                    c = json.loads(out.stdout)
                    print(f"{'':>8} check_sidecars (schemas {schemas}): {c['seconds']} s, peak RSS {c['peak_rss_mib']} MiB, "
                          f"{c['findings']} finding(s)")
                    out = subprocess.run([sys.executable, __file__, "--show", r["bag"]],
                                         capture_output=True, text=True, check=True)
                    c = json.loads(out.stdout)
                    print(f"{'':>8} show (summarize): {c['seconds']} s, peak RSS {c['peak_rss_mib']} MiB, {c['tracks']} tracks")
                finally:
                    shutil.rmtree(Path(r["bag"]).parent, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])

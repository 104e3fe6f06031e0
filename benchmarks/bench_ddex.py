"""Time and peak memory of reading a box set's DDEX message: 5,000 sound recordings, about 50 MB.

The message is generated (ERN 4.3, each recording with 50 credited performers, its file and two
HashSums, as box sets of orchestral recordings carry) and then read in a fresh subprocess each
way, so ``ru_maxrss`` is that reading's peak:

- ``stream``: :func:`preserve.intake.ddex.parse.read_message`, what ``preserve check`` runs
  (lxml ``iterparse``, each resource cleared once read);
- ``deliver``: :func:`~preserve.intake.ddex.mapping.load_delivery`, the same plus the mapping into
  sheet rows and producer checksums;
- ``tree``: the whole document as one lxml tree (:func:`preserve.xmlsafe.parse_untrusted`) and an
  XPath per field, the approach that streaming replaced;
- ``baseline``: the interpreter with the package imported, reading nothing.

    .venv/bin/python benchmarks/bench_ddex.py            # 5,000 recordings
    .venv/bin/python benchmarks/bench_ddex.py 20000      # a larger message
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERFORMERS = 50


def _message(path: Path, recordings: int) -> int:
    from preserve.intake.ddex.sample import SampleRelease, ern43, tracks

    listed = tracks("Movement", recordings, kind="flac")
    hashes = {t.file: {"MD5": "0" * 32, "SHA256": "1" * 64} for t in listed}
    text = ern43(SampleRelease(tracks=listed, hashes=hashes, cover=None))
    credits = "".join(f'<Contributor SequenceNumber="{i + 3}"><ContributorPartyReference>PArtist'
                      "</ContributorPartyReference><Role>AssociatedPerformer</Role><InstrumentType>Violin"
                      "</InstrumentType></Contributor>" for i in range(PERFORMERS))
    text = text.replace("<Duration>", credits + "<Duration>")
    path.write_text(text, encoding="utf-8")
    return path.stat().st_size


def _child(mode: str, path: str) -> dict[str, object]:
    import preserve.intake.ddex.mapping as mapping
    from preserve.intake.ddex.parse import read_message
    from preserve.xmlsafe import parse_untrusted

    t0, c0 = time.perf_counter(), time.process_time()
    count = 0
    if mode == "stream":
        count = len(read_message(path, source="m.xml", version="4.3").recordings)
    elif mode == "deliver":
        count = len(mapping.load_delivery(Path(path).parent, Path(path).name, "4.3").sheet.rows)
    elif mode == "tree":
        with open(path, "rb") as f:
            root = parse_untrusted(f.read(), source="m.xml")
        for rec in root.xpath("/*/ResourceList/SoundRecording"):
            rec.xpath("string(SoundRecordingEdition/ResourceId/ISRC)")
            rec.xpath("string(DisplayTitleText)")
            rec.xpath("SoundRecordingEdition/TechnicalDetails/DeliveryFile/File/HashSum/HashSumValue/text()")
            rec.xpath("Contributor/Role/text()")
            count += 1
    return {"mode": mode, "items": count, "seconds": round(time.perf_counter() - t0, 2),
            "cpu": round(time.process_time() - c0, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3])))
        return
    recordings = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.xml"
        t0 = time.perf_counter()
        size = _message(path, recordings)
        print(f"message: {recordings} sound recordings, {size / 1e6:.1f} MB, generated in {time.perf_counter() - t0:.1f} s")
        print(f"{'mode':10} {'items':>6} {'wall s':>8} {'CPU s':>7} {'peak RSS MiB':>13}")
        for mode in ("baseline", "stream", "deliver", "tree"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out)
            print(f"{r['mode']:10} {r['items']:>6} {r['seconds']:>8} {r['cpu']:>7} {r['peak_rss_mib']:>13}")


if __name__ == "__main__":
    main()

"""`preserve show BAG`: the summary a curator reads, taken from the METS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result


def test_show_lists_releases_tracks_rights_formats_events(tmp_path: Path, kit: Any, cli: Callable[..., Result]) -> None:
    col, payload = kit.make_collection(tmp_path / "src", 6)
    bag = kit.package(tmp_path / "bag", col, payload)
    # --brief: one line per track
    result = cli("show", "--brief", bag)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Harbour Collection  [HARBOUR-2024]"
    assert lines[1].endswith(" by ORGANIZATION: Harbour Sound Archive, SOFTWARE: preserve 0.1.0, INDIVIDUAL: Ada Archivist")
    assert lines[2] == "  2 release(s), 6 track(s), 3 other file(s)"
    i = lines.index("Album 0  (3 track(s), 0:08)")
    # disc-track order, duration, title, PUID, the track's rights statement (in the list below)
    assert lines[i + 1:i + 4] == ["  1- 1     0:02  Song 0  [fmt/279]  R1",
                                  "  1- 2     0:02  Song 1  [fmt/279]  R1",
                                  "  2- 1     0:04  Song 2  [fmt/279]  R1"]
    j = lines.index("Album 1  (3 track(s), 0:16)")
    assert lines[j + 1] == "  1- 1     0:04  Song 3  [fmt/279]  R2, embargo until 2030-01-01"
    r = lines.index("Rights:")
    assert lines[r + 1:r + 3] == [
        "  R1  License; CC BY-NC 4.0; holder Harbour Records Ltd; may replicate, migrate, disseminate",
        "  R2  License; CC BY 4.0; holder Northern Lights Music; may replicate, migrate; embargo until 2030-01-01"]
    assert "       6  FLAC (Free Lossless Audio Codec) (fmt/279)" in lines
    assert "  validation: pass 4, unverifiable 2" in lines
    assert "  fixity check: pass 7" in lines

    # by default each track is followed by its technical metadata, dates with their kind and names with roles
    full = cli("show", bag).output.splitlines()
    k = full.index("  1- 1     0:04  Song 3  [fmt/279]  R2, embargo until 2030-01-01")
    assert full[k + 1:k + 4] == ["              technical: FLAC, 44100 Hz, 16-bit, 2 channel(s)",
                                 "              dates: released 1999-05-01",
                                 "              names: The Harbour Band (performer); A. Writer (composer)"]
    assert [line for line in full if not line.startswith(" " * 14)] == lines

    data = json.loads(cli("show", "--json", bag).output)
    assert [r["title"] for r in data["releases"]] == ["Album 0", "Album 1"]
    assert data["releases"][0]["tracks"][0]["path"] == "data/objects/release 000/z track #0.flac"
    assert data["releases"][0]["duration"] == 7.5  # 1.5 + 2.5 + 3.5 seconds
    song3 = data["releases"][1]["tracks"][0]
    assert (song3["technical"], song3["dates"], song3["embargo"]) == \
        ("FLAC, 44100 Hz, 16-bit, 2 channel(s)", ["released 1999-05-01"], "until 2030-01-01")


def test_show_refuses_a_bag_without_mets(tmp_path: Path, run_preserve: Callable[..., Any]) -> None:
    (tmp_path / "plain").mkdir()
    proc = run_preserve("show", tmp_path / "plain")
    assert proc.returncode == 3
    assert proc.stderr == (f"preserve: error: {tmp_path / 'plain' / 'metadata' / 'mets.xml'}: no METS sidecar; "
                           "`preserve show` reads bags made by `preserve package`\n")

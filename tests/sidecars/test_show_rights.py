"""`preserve show` on a package whose release holds tracks under different rights: each track names
its statement and its embargo, the release says its tracks differ, an ended embargo is told."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from preserve.intake.testaudio import Tone, write_wav

TOML = """\
[collection]
identifier = "rights-0001"
organization = "Test Archive"
description = "Tracks under different rights"

[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate", "migrate", "disseminate"]
"""
RIGHTS = "rights_basis,rights_holder,copyright_status,license,agreement,permitted_acts,restriction_until"
LICENCE = "license,Label Ltd,copyrighted,CC BY 4.0,rights/licence.txt,replicate;migrate;disseminate"
SHEET = f"""\
file,title,artist,album,track_number,{RIGHTS}
a.wav,Open,Ann,Split,1,,,,,,,
b.wav,Held,Ann,Split,2,{LICENCE},2031-06-30
c.wav,Freed,Ann,Split,3,{LICENCE},2001-01-01
d.wav,Whole,Ben,Whole,1,,,,,,,
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real package made by `preserve package`: release "Split" holds a track under the donor's
    terms, one under a licence embargoed until 2031 and one whose embargo ended in 2001; release
    "Whole" holds one track under the donor's terms."""
    import shutil
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("rights")
    coll = root / "coll"
    (coll / "rights").mkdir(parents=True)
    (coll / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
    (coll / "rights" / "licence.txt").write_text("CC BY 4.0 (test)\n", encoding="utf-8")
    (coll / "collection.toml").write_text(TOML, encoding="utf-8")
    for i, name in enumerate(("a.wav", "b.wav", "c.wav", "d.wav")):
        write_wav(coll / name, Tone(22050, 16, 1, 0.25, 220.0 + 110 * i))
    (coll / "metadata.csv").write_text(SHEET, encoding="utf-8")
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe
    dest = root / "pkg"
    made = subprocess.run([exe, "package", str(coll), str(dest), "-q"], capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    return dest


def test_show_marks_each_track_with_its_rights_and_embargo(package: Path, cli: Callable[..., Any]) -> None:
    result = cli("show", package)
    assert result.exit_code == 0, result.output
    # each track's own line (the detail lines under it, indented 14 spaces, are tested in test_show.py)
    lines = [line for line in result.output.splitlines() if not line.startswith(" " * 14)]
    assert lines == cli("show", "--brief", package).output.splitlines()
    r = lines.index("Rights:")
    assert lines[r + 1:r + 4] == [
        "  R1  Other; Donor; copyrighted; holder Dana Donor; may replicate, migrate, disseminate",
        "  R2  License; copyrighted; CC BY 4.0; holder Label Ltd; may replicate, migrate, disseminate; "
        "embargo until 2031-06-30",
        "  R3  License; copyrighted; CC BY 4.0; holder Label Ltd; may replicate, migrate, disseminate; "
        "embargo ended 2001-01-01"]
    i = lines.index("Split  (3 track(s), 0:01)  the tracks' rights differ (each track names its own)")
    assert lines[i + 1:i + 4] == ["  1- 1     0:00  Open  [fmt/141]  R1",
                                  "  1- 2     0:00  Held  [fmt/141]  R2, embargo until 2031-06-30",
                                  "  1- 3     0:00  Freed  [fmt/141]  R3, embargo ended 2001-01-01"]
    # a release whose tracks share one statement says nothing of differing rights
    w = lines.index("Whole  (1 track(s), 0:00)")
    assert lines[w + 1] == "  1- 1     0:00  Whole  [fmt/141]  R1"


def test_show_json_gives_each_tracks_rights_and_embargo(package: Path, cli: Callable[..., Any]) -> None:
    data = json.loads(cli("show", "--json", package).output)
    split, whole = data["releases"]
    assert (split["rights_differ"], whole["rights_differ"]) == (True, False)
    assert [(t["title"], t["rights_ref"], t["embargo"]) for t in split["tracks"]] == [
        ("Open", "R1", ""), ("Held", "R2", "until 2031-06-30"), ("Freed", "R3", "ended 2001-01-01")]
    assert split["tracks"][1]["rights"] == data["rights"][1]

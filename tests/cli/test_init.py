"""``preserve init`` and ``preserve template``: from a folder of audio to a collection check accepts."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import mutagen.flac
import pytest
from click.testing import CliRunner

from preserve.cli.main import cli
from preserve.errors import PreserveError
from preserve.intake.sheet import COLUMNS, RIGHTS
from preserve.intake.testaudio import Tone, write_flac, write_wav

TONE = Tone(22050, 16, 1, 0.25)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run(*args: object) -> Outcome:
    """The CLI as `preserve` runs it: a PreserveError becomes its exit code."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    code, stderr = result.exit_code, result.stderr
    if isinstance(result.exception, PreserveError):
        code = result.exception.exit_code
        stderr += f"preserve: error: {result.exception}\n"   # what main() prints
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(code, result.stdout, stderr)


def make_folder(root: Path) -> Path:
    """Nested audio with embedded tags and a bext chunk, beside documents, litter and a checksum file."""
    (root / "tapes" / "side b").mkdir(parents=True)
    (root / "rights").mkdir()
    write_wav(root / "tapes" / "a.wav", TONE, info={"INAM": "Interview A", "IART": "Sam Example"},
              bext={"Description": "Interview with Sam,\nside A", "Originator": "Archive",
                    "OriginationDate": "1978-07-14"})
    write_wav(root / "tapes" / "side b" / "b.wav", Tone(22050, 16, 2, 0.25, 330.0))
    write_flac(root / "c.flac", Tone(22050, 16, 1, 0.25, 550.0))
    tags = mutagen.flac.FLAC(root / "c.flac")  # type: ignore[no-untyped-call]
    tags["title"] = "Song C"
    tags["artist"] = ["Ann", "Ben"]
    tags["date"] = "summer 1978"        # not a date: left out of the sheet with a note
    tags["isrc"] = "GB-ABC-24-00001"
    tags["tracknumber"] = "3/12"
    tags.save()
    (root / "notes.txt").write_text("transfer notes\n", encoding="utf-8")
    (root / "tapes" / "scan [1].jpg").write_bytes(b"\xff\xd8\xff\xe0 not much of a picture")
    (root / "rights" / "deed.txt").write_text("Deed of gift\n", encoding="utf-8")
    (root / ".DS_Store").write_bytes(b"litter")
    digest = hashlib.md5((root / "c.flac").read_bytes()).hexdigest()
    (root / "checksums.md5").write_text(f"{digest}  c.flac\n", encoding="utf-8")
    return root


def fill(root: Path, *, basis: str = "copyright", agreement: str | None = None) -> None:
    """What the curator does: the organization and the rights, in the places the skeleton shows."""
    text = (root / "collection.toml").read_text(encoding="utf-8")
    text = text.replace('# organization = "Example Sound Archive"', 'organization = "Test Archive"', 1)
    text = re.sub(r'(?m)^# rights_basis = "donor" .*$', f'rights_basis = "{basis}"', text)
    for key in ("rights_holder", "copyright_status", "permitted_acts"):
        text = re.sub(rf"(?m)^# {key} = ", f"{key} = ", text)
    if agreement is not None:
        text = re.sub(r'(?m)^# agreement = "[^"]*"', f'agreement = "{agreement}"', text)
        # the skeleton says: a rights document on the ignore list is taken off it
        text = text.replace(f'    "{agreement}",\n', "")
    (root / "collection.toml").write_text(text, encoding="utf-8")


def read_rows(sheet: Path) -> list[dict[str, str]]:
    with open(sheet, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_init_writes_a_row_per_audio_file_with_tags_and_ignores_other_files(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "coll")
    out = run("init", root)
    assert out.code == 0, out.stderr
    assert out.stdout.startswith(f"wrote {root / 'metadata.csv'} (3 audio file(s)) and {root / 'collection.toml'}")
    rows = read_rows(root / "metadata.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert [r["file"] for r in rows] == ["c.flac", "tapes/a.wav", "tapes/side b/b.wav"]
    c, a, b = rows
    assert (c["title"], c["artist"], c["isrc"], c["track_number"], c["date"]) == \
        ("Song C", "Ann; Ben", "GBABC2400001", "3/12", "")
    # the bext OriginationDate is when the file was made: a recording date, never a release date
    assert (a["title"], a["artist"], a["date"], a["recorded"], a["description"]) == \
        ("Interview A", "Sam Example", "", "1978-07-14", "Interview with Sam, side A")
    assert all(v == "" for k, v in b.items() if k != "file")
    assert all(r[col] == "" for r in rows for col in RIGHTS)
    config = tomllib.loads((root / "collection.toml").read_text(encoding="utf-8"))
    assert config["collection"]["identifier"] == "coll"
    assert "organization" not in config["collection"]
    assert config["collection"]["ignore"] == ["notes.txt", "rights/deed.txt", "tapes/scan [[]1].jpg"]
    assert config["defaults"] == {} and config["bag-info"] == {}
    assert "c.flac: the embedded date 'summer 1978' is not a date" in out.stderr
    assert f"preserve check {root}" in out.stderr
    # only the two files were added
    assert sorted(p.name for p in root.iterdir()) == [
        ".DS_Store", "c.flac", "checksums.md5", "collection.toml", "metadata.csv", "notes.txt", "rights", "tapes"]


def test_init_output_passes_check_once_organization_and_rights_are_filled(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "coll")
    assert run("init", root).code == 0
    before = run("check", "-q", root)
    assert before.code == 1
    assert "Source-Organization" in before.stdout and "not cleared" in before.stdout
    fill(root)
    after = run("check", root)  # -q would leave out the notes looked for below
    assert after.code == 0, after.stdout + after.stderr
    # the ignore list keeps the files named as they are, also one with glob characters
    assert "tapes/scan [1].jpg: matches an ignore pattern" in after.stdout


def test_a_rights_document_taken_off_the_ignore_list_clears_a_donation(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "coll")
    assert run("init", root).code == 0
    fill(root, basis="donor", agreement="rights/deed.txt")
    assert run("check", "-q", root).code == 0
    packaged = run("package", root, tmp_path / "aip")
    assert packaged.code == 0, packaged.stderr
    summary = packaged.stdout.strip().splitlines()[-1]
    # the profile by its name: the identifier URL is in bag-info.txt
    assert summary.endswith("; profile preserve-audio-aip)") and "https://" not in summary
    assert "BagIt-Profile-Identifier: https://" in (tmp_path / "aip" / "bag-info.txt").read_text(encoding="utf-8")
    aip = tmp_path / "aip"
    assert packaged.stderr.splitlines()[-1] == (f"next: preserve validate {aip}; preserve show {aip}; "
                                                f"preserve replicate {aip} TARGET; preserve audit {aip}")
    quiet = run("package", "-q", root, tmp_path / "aip2")
    assert quiet.code == 0 and "next:" not in quiet.stderr


def test_init_json_sheet_and_json_result(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "coll")
    out = run("init", "--sheet-format", "json", "--json", root)
    assert out.code == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["sheet"] == str(root / "metadata.json") and result["audio_files"] == 3
    assert result["ignored"] == ["notes.txt", "rights/deed.txt", "tapes/scan [1].jpg"]
    assert not (root / "metadata.csv").exists()
    rows = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
    assert [r["file"] for r in rows] == ["c.flac", "tapes/a.wav", "tapes/side b/b.wav"]
    assert rows[0]["title"] == "Song C" and set(rows[0]) == set(COLUMNS)
    fill(root)
    assert run("check", "-q", root).code == 0


@pytest.mark.parametrize("existing", ["metadata.csv", "metadata.json", "collection.toml"])
def test_init_never_overwrites_a_sheet_or_config(tmp_path: Path, existing: str) -> None:
    root = make_folder(tmp_path / "coll")
    (root / existing).write_text("mine\n", encoding="utf-8")
    out = run("init", root)
    assert out.code == 4
    assert f"{root / existing}: already exists" in out.stderr
    assert (root / existing).read_text(encoding="utf-8") == "mine\n"
    assert not {"metadata.csv", "metadata.json", "collection.toml"} - {existing} & {p.name for p in root.iterdir()}
    assert not [p for p in root.iterdir() if "preserve-init" in p.name]


def test_init_never_writes_through_a_dangling_link(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "coll")
    os.symlink(tmp_path / "elsewhere.toml", root / "collection.toml")
    assert run("init", root).code == 4
    assert not (tmp_path / "elsewhere.toml").exists() and not (root / "metadata.csv").exists()


def test_init_on_a_missing_folder(tmp_path: Path) -> None:
    out = run("init", tmp_path / "nothing")
    assert out.code == 3
    assert "no such file or directory" in out.stderr


def test_template_prints_the_shipped_sheet_template() -> None:
    out = run("template")
    assert out.code == 0
    shipped = Path(__file__).parents[2] / "preserve" / "templates" / "metadata-template.csv"
    assert out.stdout == shipped.read_text(encoding="utf-8")
    assert out.stdout.splitlines()[0].split(",") == list(COLUMNS)

"""check, package, repair, restore and ledger print names from a collection or a bag inertly:
ESC, C1 CSI and bidi overrides are shown as escapes; --json keeps the exact strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preserve.intake.testaudio import Tone, write_wav
from preserve.textsafe import for_people

from .conftest import preserve_script as preserve
from .test_terminal_escapes import assert_inert

#: A collection file name with an ESC sequence (clear the screen), a C1 CSI and a right-to-left override.
EVIL_NAME = "e\x1b[2Jvil\x9b31m\u202evaw.wav"
SHOWN = for_people(EVIL_NAME)

TOML = """\
[collection]
identifier = "escape-0002"
organization = "Test Archive"
description = "A collection whose file names carry terminal escapes"

[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate", "migrate"]
"""


def _collection(root: Path, *, list_evil: bool = True) -> Path:
    coll = root / "coll"
    (coll / "rights").mkdir(parents=True)
    (coll / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
    (coll / "collection.toml").write_text(TOML, encoding="utf-8")
    write_wav(coll / "one.wav", Tone(22050, 16, 1, 0.25))
    write_wav(coll / EVIL_NAME, Tone(22050, 16, 1, 0.25, 330.0))
    rows = "one.wav,One,Ann\n" + (f"{EVIL_NAME},Two,Ben\n" if list_evil else "")
    (coll / "metadata.csv").write_text(f"file,title,artist\n{rows}", encoding="utf-8")
    return coll


def test_check_shows_a_hostile_name_inertly_and_json_keeps_it(tmp_path: Path) -> None:
    coll = _collection(tmp_path)
    out = preserve("check", coll)  # -q would leave out the table
    assert out.returncode == 0, out.stdout + out.stderr
    assert_inert(out.stdout + out.stderr)
    assert any(line.startswith(SHOWN + " ") for line in out.stdout.splitlines()), out.stdout  # the table row
    as_json = preserve("check", coll, "-q", "--json")
    assert as_json.returncode == 0
    assert_inert(as_json.stdout)  # written as \u001b, \u009b, \u202e escapes
    assert EVIL_NAME in {t["source_path"] for t in json.loads(as_json.stdout)["files"]}


def test_check_problem_naming_a_hostile_file_is_inert(tmp_path: Path) -> None:
    coll = _collection(tmp_path, list_evil=False)  # on disk, not in the sheet: a problem naming it
    out = preserve("check", coll, "-q")
    assert out.returncode == 1
    assert_inert(out.stdout + out.stderr)
    assert SHOWN in out.stdout
    problems = json.loads(preserve("check", coll, "-q", "--json").stdout)["problems"]
    assert any(EVIL_NAME in p["message"] or p.get("path") == EVIL_NAME for p in problems), problems


def test_package_refusal_and_success_are_inert(tmp_path: Path) -> None:
    refused = preserve("package", _collection(tmp_path / "a", list_evil=False), tmp_path / "no-pkg")
    assert refused.returncode == 1
    assert_inert(refused.stdout + refused.stderr)
    assert SHOWN in refused.stderr  # the problem names the file, visibly
    dest = tmp_path / "pkg\x1b]0;pwned\x07"
    made = preserve("package", _collection(tmp_path / "b"), dest)
    assert made.returncode == 0, made.stderr
    assert_inert(made.stdout + made.stderr)
    assert "\\x1b]0;pwned\\x07" in made.stdout
    assert (dest / "data" / "objects" / EVIL_NAME).is_file()


@pytest.fixture
def packaged(tmp_path: Path) -> Path:
    dest = tmp_path / "pkg"
    made = preserve("package", _collection(tmp_path), dest, "-q")
    assert made.returncode == 0, made.stderr
    return dest


def test_repair_names_a_hostile_file_inertly_and_json_keeps_it(packaged: Path, tmp_path: Path,
                                                               ledger_url: Path | str) -> None:
    disk = tmp_path / "disk2"
    ledger = ledger_url
    sent = preserve("replicate", packaged, disk, "--ledger", ledger, "-q")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    target = packaged / "data" / "objects" / EVIL_NAME
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0x01
    target.write_bytes(bytes(raw))
    out = preserve("repair", packaged, "--from", disk, "--ledger", ledger)
    assert out.returncode == 0, out.stdout + out.stderr
    assert_inert(out.stdout + out.stderr)
    assert f"repaired: data/objects/{SHOWN} (altered) from " in out.stdout
    raw[100] ^= 0x01
    raw[200] ^= 0x01
    target.write_bytes(bytes(raw))
    as_json = preserve("repair", packaged, "--from", disk, "--ledger", ledger, "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    assert_inert(as_json.stdout)
    assert f"data/objects/{EVIL_NAME}" in {f["path"] for f in json.loads(as_json.stdout)["files"]}


def test_restore_and_ledger_name_hostile_paths_inertly(packaged: Path, tmp_path: Path) -> None:
    # SQLite only: the hostile name is the ledger file's own path
    disk = tmp_path / "disk2"
    ledger = tmp_path / "ledger\x1b]0;pwned\x07.sqlite"
    assert preserve("replicate", packaged, disk, "--ledger", ledger, "-q").returncode == 0
    dest = tmp_path / "back\u202eward"
    out = preserve("restore", disk / packaged.name, dest, "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    assert_inert(out.stdout + out.stderr)
    assert "back\\u202eward: restored from " in out.stdout
    info = preserve("ledger", "info", "--ledger", ledger)
    assert info.returncode == 0, info.stderr
    assert_inert(info.stdout + info.stderr)
    assert "ledger\\x1b]0;pwned\\x07.sqlite" in info.stdout

"""Nothing a bag holds reaches the terminal as a command: bag-info values, file names and METS
titles are printed with their control characters, C1 CSI and bidi overrides escaped, in every
command's human output; --json keeps the exact strings; the HTML report escapes for HTML too."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preserve.intake.testaudio import Tone, write_wav
from preserve.textsafe import for_people

from .conftest import preserve_script as preserve

#: What a hostile producer puts in bag-info.txt: retitle the window, then clear the screen.
ORGANIZATION = "\x1b]0;pwned\x07\x1b[2J"
#: A payload file name with an ESC, a single-byte CSI and a right-to-left override.
EVIL_NAME = "e\x1b[2Jvil\x9b31m<b>\u202ewav.wav"
#: A title in the producer's sheet: ESC (XML cannot hold it), CSI and an isolate (XML can).
TITLE = "Ti\x1b]0;pwned\x07tle \x9b2J \u2066x\u2069"
DANGEROUS = ("\x1b", "\x9b", "\u202e", "\u2066", "\x07")

TOML = """\
[collection]
identifier = "escape-0001"
organization = "Test Archive"
description = "A collection whose names and titles carry terminal escapes"

[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate", "migrate"]
"""


def assert_inert(text: str) -> None:
    """No code point a terminal would obey, and no raw byte 0x1b at all."""
    for ch in DANGEROUS:
        assert ch not in text, f"{ch!r} reached the terminal in: {text!r}"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real package made by `preserve package` from a sheet with hostile titles and file names,
    and a Source-Organization that would retitle the window and clear the screen."""
    root = tmp_path_factory.mktemp("escapes")
    coll = root / "coll"
    (coll / "rights").mkdir(parents=True)
    (coll / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
    (coll / "collection.toml").write_text(TOML, encoding="utf-8")
    write_wav(coll / "one.wav", Tone(22050, 16, 1, 0.25))
    write_wav(coll / EVIL_NAME, Tone(22050, 16, 1, 0.25, 330.0))
    (coll / "metadata.csv").write_text(f"file,title,artist\none.wav,{TITLE},Ann\n{EVIL_NAME},Two,Ben\n",
                                       encoding="utf-8")
    dest = root / "pkg"
    made = preserve("package", coll, dest, "-q", "-i", f"Source-Organization={ORGANIZATION}")
    assert made.returncode == 0, made.stderr
    assert f"Source-Organization: {ORGANIZATION}\n" in (dest / "bag-info.txt").read_text(encoding="utf-8")
    assert (dest / "data" / "objects" / EVIL_NAME).is_file()
    return dest


@pytest.fixture
def damaged(package: Path, tmp_path: Path) -> Path:
    """A copy of the package whose hostile-named file has changed, so findings name it."""
    bag = tmp_path / "bag"
    shutil.copytree(package, bag)
    with open(bag / "data" / "objects" / EVIL_NAME, "ab") as f:
        f.write(b"!")
    return bag


def test_for_people_escapes_what_a_terminal_obeys() -> None:
    assert for_people(ORGANIZATION) == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert for_people("a\x9b2Jb\u202ec\u2066d\u2069\x7f\x00") == "a\\x9b2Jb\\u202ec\\u2066d\\u2069\\x7f\\x00"
    # one value stays one line; a whole message keeps its own lines and tabs
    assert for_people("two\nlines\tand\r") == "two\\nlines\\tand\\r"
    assert for_people("two\nlines\tand\r", lines=True) == "two\nlines\tand\\r"
    # an undecodable file name (surrogate escapes) is shown, not a crash when printed
    assert for_people(os.fsdecode(b"take-\xff.wav")) == "take-\\udcff.wav"


@given(st.text())
def test_for_people_leaves_nothing_dangerous_and_keeps_ordinary_text(text: str) -> None:
    shown = for_people(text)
    assert not any(0x80 <= ord(c) <= 0x9F or ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF
                   or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in shown)
    if not any(c != for_people(c) for c in text):
        assert shown == text  # accents, scripts, emoji: untouched
    shown.encode("utf-8")  # printable on a UTF-8 terminal, whatever the input


def test_show_escapes_bag_info_and_titles(package: Path) -> None:
    out = preserve("show", package)
    assert out.returncode == 0, out.stderr
    assert_inert(out.stdout + out.stderr)
    assert "\\x9b2J \\u2066x\\u2069" in out.stdout  # the title, visibly
    assert "pwned" in out.stdout  # the organization is shown, inert
    as_json = preserve("show", package, "--json")
    assert "\x9b" not in as_json.stdout and "\u2066" not in as_json.stdout  # written as \u009b, \u2066
    summary = json.loads(as_json.stdout)
    titles = [r["title"] for r in summary["releases"]]
    assert any("\x9b2J \u2066x\u2069" in t for t in titles), titles  # exact after parsing


def test_validate_escapes_file_names_and_json_keeps_them(damaged: Path) -> None:
    out = preserve("validate", damaged, "-q")
    assert out.returncode == 1, out.stdout + out.stderr
    assert_inert(out.stdout + out.stderr)
    escaped = for_people(f"data/objects/{EVIL_NAME}")
    assert f"error: {escaped}: sha256 checksum does not match manifest-sha256.txt" in out.stdout
    assert "\\x1b[2Jvil\\x9b31m<b>\\u202ewav.wav" in escaped
    as_json = preserve("validate", damaged, "-q", "--json")
    assert as_json.returncode == 1
    assert "\x1b" not in as_json.stdout and "\x9b" not in as_json.stdout and "\u202e" not in as_json.stdout
    paths = {f.get("path") for f in json.loads(as_json.stdout)["findings"]}
    assert f"data/objects/{EVIL_NAME}" in paths


def test_audit_and_report_escape_findings_html_escapes_for_html(damaged: Path, tmp_path: Path,
                                                                ledger_url: Path | str) -> None:
    ledger = ledger_url
    out = preserve("audit", damaged, "--ledger", ledger, "--tier", "full")
    assert out.returncode == 1, out.stdout + out.stderr
    assert_inert(out.stdout + out.stderr)
    assert f"altered: {for_people(f'data/objects/{EVIL_NAME}')}: " in out.stdout
    run = json.loads(preserve("audit", damaged, "--ledger", ledger, "--tier", "full", "--json").stdout)
    assert f"data/objects/{EVIL_NAME}" in {f["file"] for r in run["audits"] for f in r["findings"]}

    html_file = tmp_path / "report.html"
    text = preserve("report", "--ledger", ledger, "--html", html_file)
    assert text.returncode == 1
    assert_inert(text.stdout + text.stderr)
    assert f"altered: {for_people(f'data/objects/{EVIL_NAME}')}: " in text.stdout
    history = preserve("report", "--ledger", ledger, "--bag", damaged)
    assert_inert(history.stdout + history.stderr)
    assert for_people(f"data/objects/{EVIL_NAME}") in history.stdout
    page = html_file.read_text(encoding="utf-8")
    assert_inert(page)
    assert "&lt;b&gt;" in page and "<b>\u202e" not in page
    assert "\\x1b[2Jvil\\x9b31m&lt;b&gt;\\u202ewav.wav" in page
    as_json = json.loads(preserve("report", "--ledger", ledger, "--json").stdout)
    files = {d["file"] for row in as_json["sections"]["open_failures"] for d in row["details"]}
    assert f"data/objects/{EVIL_NAME}" in files


def test_an_error_message_naming_a_hostile_path_is_escaped(tmp_path: Path) -> None:
    not_a_bag = tmp_path / "x\x1b]0;pwned\x07"
    not_a_bag.mkdir()
    out = preserve("validate", not_a_bag)
    assert out.returncode == 3, out.stderr
    assert out.stderr.startswith("preserve: error: ")
    assert_inert(out.stderr)
    assert "x\\x1b]0;pwned\\x07" in out.stderr


def test_events_names_a_hostile_bag_path_inertly(package: Path, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = tmp_path / "bag\x1b]0;pwned\x07"
    shutil.copytree(package, bag)
    out_file = tmp_path / "events.xml"
    out = preserve("events", bag, "--ledger", ledger_url, "-o", out_file)  # no ledger there yet
    assert out.returncode == 0, out.stderr
    assert_inert(out.stdout + out.stderr)
    assert "bag\\x1b]0;pwned\\x07 to " in out.stderr  # the "wrote N event(s) for BAG to FILE" line
    assert out_file.read_bytes().startswith(b"<?xml")

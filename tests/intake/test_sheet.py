"""The sheet as spreadsheets export it: encodings, delimiters, quoted newlines, headers, row numbers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from preserve.cli.check_cmd import check
from preserve.intake import check_collection
from preserve.intake.sheet import normalize_header, read_sheet

from .conftest import Collection, invoke


def test_utf16_bom_semicolon_sheet_from_excel(collection: Collection) -> None:
    # Excel's "Unicode text"/UTF-16 export with ';' (a European locale), CRLF, a quoted newline.
    text = ("File ; TITLE;Artist;Rights Holder\r\n"
            "one.wav;Élan; Zoë Ñandú;\r\n"
            "side b/two.wav;\"Two,\r\nwith a second line\";Ben;\r\n"
            "three.flac;Three;\"Cy; Dee\";\r\n")
    (collection.root / "metadata.csv").write_bytes(text.encode("utf-16"))
    assert (collection.root / "metadata.csv").read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    report = check_collection(collection.root)
    assert report.problems == []
    titles = {t.source_path: (t.title, t.artists) for t in report.collection.tracks}
    assert titles == {"one.wav": ("Élan", ("Zoë Ñandú",)), "side b/two.wav": ("Two,\r\nwith a second line", ("Ben",)),
                      "three.flac": ("Three", ("Cy", "Dee"))}
    assert [t.row for t in report.collection.tracks] == [1, 2, 3]
    assert invoke(check, collection.root).code == 0


def test_utf8_with_bom_comma(collection: Collection) -> None:
    (collection.root / "metadata.csv").write_bytes("\ufefffile,title\none.wav,Ünïcode\nside b/two.wav,B\nthree.flac,C\n".encode())
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.collection.tracks[0].title == "Ünïcode"


def test_windows_1252_is_read_with_a_warning(collection: Collection) -> None:
    (collection.root / "metadata.csv").write_bytes("file;title\none.wav;Café\nside b/two.wav;B\nthree.flac;C\n".encode("cp1252"))
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.collection.tracks[0].title == "Café"
    assert report.warnings == ["metadata.csv: not valid UTF-8 (byte offset 22); read as Windows-1252. Export the sheet as "
                               "'CSV UTF-8' so names and titles keep their accents exactly"]


def test_errors_name_the_row(collection: Collection) -> None:
    collection.rows = ["one.wav,One,Ann", "side b/two.wav,Two,Ben,extra", ",Nameless,Nobody", "three.flac,Three,Cy",
                       "one.wav,Again,Ann"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [(p.code, p.row, p.message) for p in report.problems] == [
        ("sheet", 2, "metadata.csv row 2: 4 cells but the header has 3 columns (a ',' inside a cell that is not quoted?)"),
        ("sheet", 3, "metadata.csv row 3: the 'file' cell is empty"),
        ("sheet", 5, "metadata.csv row 5: one.wav is already described in row 1; keep one row per file"),
    ]
    out = invoke(check, collection.root)
    assert out.code == 1
    assert "metadata.csv row 5: one.wav is already described in row 1; keep one row per file" in out.stdout


def test_no_file_column(collection: Collection) -> None:
    (collection.root / "metadata.csv").write_text("name,title\none.wav,One\n", encoding="utf-8")
    report = check_collection(collection.root)
    assert report.problems[0].message == ("metadata.csv: no 'file' column (found: name, title); the first column should "
                                          "be 'file', the path of each audio file")


def test_json_sheet(collection: Collection) -> None:
    (collection.root / "metadata.csv").unlink()
    rows = [{"file": "one.wav", "title": "One", "artist": ["Ann", "Bo"], "track_number": 1},
            {"File": "side b/two.wav", "Title": "Two"}, {"file": "three.flac", "accept_damaged": False}]
    (collection.root / "metadata.json").write_text(json.dumps({"tracks": rows}), encoding="utf-8")
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.sheet == "metadata.json"
    one = report.collection.tracks[0]
    assert (one.title, one.artists, one.track_number) == ("One", ("Ann", "Bo"), 1)


def test_header_normalization() -> None:
    assert normalize_header("  Rights Holder ") == "rights_holder"
    assert normalize_header("\ufeffFILE") == "file"
    assert normalize_header("Copyright-Status") == "copyright_status"
    assert normalize_header("Licence") == "license"


_cell = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), max_size=20) \
    .map(str.strip).filter(lambda s: s == s.strip())
_nl_cell = st.one_of(_cell, st.builds(lambda a, b: f"{a}\n{b}".strip(), _cell, _cell))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_cell, _nl_cell), min_size=1, max_size=5),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]), delimiter=st.sampled_from([",", ";", "\t"]))
def test_sheet_round_trip(tmp_path_factory: object, rows: list[tuple[str, str]], encoding: str, delimiter: str) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["file", "title"])
    data = [(f"f{i}.wav", title) for i, (_unused, title) in enumerate(rows)]
    writer.writerows(data)
    path = Path(str(tmp_path_factory.mktemp("sheet"))) / "metadata.csv"  # type: ignore[attr-defined]
    path.write_bytes(buf.getvalue().encode(encoding))
    sheet = read_sheet(path, "metadata.csv")
    assert sheet.delimiter == delimiter
    assert [(r.get("file"), r.cells["title"]) for r in sheet.rows] == data
    assert [r.number for r in sheet.rows] == list(range(1, len(data) + 1))


@settings(max_examples=80, deadline=None)
@given(raw=st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: b"\xff\xfe" + b),
                     st.binary(max_size=200).map(lambda b: b"\xef\xbb\xbf" + b)))
def test_any_bytes_give_problems_never_a_crash(tmp_path_factory: object, raw: bytes) -> None:
    path = Path(str(tmp_path_factory.mktemp("sheet"))) / "metadata.csv"  # type: ignore[attr-defined]
    path.write_bytes(raw)
    sheet = read_sheet(path, "metadata.csv")
    assert sheet.rows or sheet.problems
    assert all(isinstance(msg, str) and msg.startswith("metadata.csv") for _row, msg in sheet.problems)


def test_broken_json_sheets(tmp_path: Path) -> None:
    cases = {
        "{\"tracks\": [": "metadata.json: not valid JSON (line 1, column 13: Expecting value)",
        "[" * 100000 + "]" * 100000: "metadata.json: nested too deeply to be a sheet",
        "{\"rows\": 3}": "metadata.json: expected a list of rows (objects), or an object with a 'tracks' list",
        "[{\"file\": \"a.wav\"}, 7]": "metadata.json row 2: is not an object with column names",
    }
    for text, message in cases.items():
        (tmp_path / "metadata.json").write_text(text, encoding="utf-8")
        sheet = read_sheet(tmp_path / "metadata.json", "metadata.json")
        assert [m for _r, m in sheet.problems] == [message]

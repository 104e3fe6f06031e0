"""What intake writes is true: a broken sheet, a bad date or identifier, an ended embargo, a release
whose tracks differ in rights, a name bagit-python cannot read and the packaging host's own path
are each refused, warned of or left out, never written as something they are not."""

from __future__ import annotations

import json
from pathlib import Path

import bagit
import pytest
from lxml import etree

from preserve.cli.bag_cmd import bag
from preserve.cli.check_cmd import check
from preserve.cli.package_cmd import package
from preserve.errors import EXIT_OK, EXIT_PROBLEMS
from preserve.intake import check_collection
from preserve.package import package_collection
from preserve.sidecars.check import check_sidecars

from .conftest import Collection, invoke

NS = {"premis": "http://www.loc.gov/premis/v3", "mods": "http://www.loc.gov/mods/v3", "mets": "http://www.loc.gov/METS/"}
RIGHTS_HEADER = "file,title,artist,album,rights_basis,rights_holder,copyright_status,agreement,permitted_acts,restriction_until"


def _packaged(collection: Collection, dest: Path, schemas_dir: Path) -> tuple[etree._Element, etree._Element]:
    """Package with the real pipeline; the sidecars must pass every sidecar check with the official schemas."""
    package_collection(collection.root, dest, profile=None)
    errors = [f for f in check_sidecars(dest, schemas=schemas_dir) if f.severity == "error"]
    assert errors == []
    bagit.Bag(str(dest)).validate()
    return (etree.parse(str(dest / "metadata" / "premis.xml")).getroot(),
            etree.parse(str(dest / "metadata" / "mets.xml")).getroot())


def _problems(collection: Collection) -> list[tuple[str, str]]:
    return [(p.code, p.message) for p in check_collection(collection.root).problems]


# ------------------------------------------------------------------------------ the sheet itself

def test_an_unclosed_quote_is_named_by_the_line_it_began_on(collection: Collection) -> None:
    collection.rows = ['one.wav,"One,Ann', "side b/two.wav,Two,Ben", "three.flac,Three,Cy"]
    collection.write_sheet()
    out = invoke(check, collection.root)
    assert out.code == EXIT_PROBLEMS
    assert ("error: metadata.csv line 2: a quoted cell begins here and is never closed, so the lines after it were "
            "read into that one cell") in out.stdout


def test_a_quote_closed_rows_later_is_named_by_the_line_it_began_on(collection: Collection) -> None:
    collection.rows = ['one.wav,One,"Ann', "side b/two.wav,Two,Ben", 'three.flac,"Three",Cy']
    collection.write_sheet()
    problems = _problems(collection)
    assert ("sheet", "metadata.csv line 2: a quoted cell begins here and its closing quote on line 4 is followed by 'T', "
                     "not by ',' or the end of the row, so the lines after it were read into that one cell. Close the "
                     "quote (a quote inside a quoted cell is written as two: \"\")") in problems


def test_a_quote_closed_rows_later_that_leaves_a_row_short_is_named(collection: Collection) -> None:
    collection.header = "file,title,artist,date"
    collection.rows = ['one.wav,"One,Ann,1978', "side b/two.wav,Two,Ben,1979", 'three.flac,Three,Cy",1980']
    collection.write_sheet()
    problems = _problems(collection)
    assert ("sheet", "metadata.csv row 1: 3 cells but the header has 4 columns, and the quoted cell that begins on "
                     "line 2 spans several lines; is a quote there left open?") in problems


def test_quoted_cells_over_several_lines_are_still_read(collection: Collection) -> None:
    collection.rows = ['one.wav,"One, with ""quotes""\nand a second line",Ann', "side b/two.wav,Two,Ben",
                       "three.flac,Three,Cy"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.collection.tracks[0].title == 'One, with "quotes"\nand a second line'


def _json_sheet(collection: Collection, rows: list[dict[str, object]]) -> None:
    (collection.root / "metadata.csv").unlink()
    (collection.root / "metadata.json").write_text(json.dumps(rows), encoding="utf-8")


def test_a_json_object_where_one_value_is_expected_is_refused(collection: Collection) -> None:
    _json_sheet(collection, [{"file": "one.wav", "title": {"name": "obj"}, "artist": ["Ann", "Bo"]},
                             {"file": "side b/two.wav", "title": ["Two", "Deux"]},
                             {"file": "three.flac", "title": "Three", "composer": [["nested"]]}])
    problems = _problems(collection)
    assert [(c, m) for c, m in problems if c == "sheet"] == [
        ("sheet", "metadata.json row 1: 'title' holds an object; the title column takes one value (text or a number)"),
        ("sheet", "metadata.json row 2: 'title' holds a list; the title column takes one value (text or a number)"),
        ("sheet", "metadata.json row 3: 'composer' holds a list; the composer column takes one value or a list of values"),
    ]
    assert all("{'name'" not in m for _c, m in problems)


# ---------------------------------------------------------------------------- dates, identifiers

def test_an_impossible_date_stops_packaging(collection: Collection, tmp_path: Path) -> None:
    collection.header = "file,title,artist,date"
    collection.rows = ["one.wav,One,Ann,2001-13-45", "side b/two.wav,Two,Ben,summer 1978", "three.flac,Three,Cy,1999-02-29"]
    collection.write_sheet()
    problems = [(c, m) for c, m in _problems(collection) if c == "date"]
    assert [m.split(":", 1)[0] for _c, m in problems] == [
        "metadata.csv row 1 (one.wav)", "metadata.csv row 2 (side b/two.wav)", "metadata.csv row 3 (three.flac)"]
    assert problems[0][1].startswith("metadata.csv row 1 (one.wav): date '2001-13-45' is not a date (YYYY, YYYY-MM, ")
    out = invoke(package, "--no-profile", collection.root, tmp_path / "bag")
    assert out.code == EXIT_PROBLEMS
    assert not (tmp_path / "bag").exists()


def test_dates_are_encoded_as_what_they_are(collection: Collection, tmp_path: Path, schemas_dir: Path) -> None:
    collection.header = "file,title,artist,date"
    collection.rows = ["one.wav,One,Ann,1978-07", "side b/two.wav,Two,Ben,1978/1981",
                       "three.flac,Three,Cy,1999-05-01T10:30:00Z"]
    collection.write_sheet()
    _premis, mets = _packaged(collection, tmp_path / "bag", schemas_dir)
    dates = [(d.text, d.get("encoding"), d.get("keyDate"), d.get("point"))
             for d in mets.iterfind(".//mods:mods/mods:originInfo/mods:dateIssued", NS)]
    # an interval is a start and an end, each encoded as what it is; the start is the key date
    assert sorted(set(dates), key=str) == sorted({("1978-07", "w3cdtf", "yes", None), ("1978", "w3cdtf", "yes", "start"),
                                                  ("1981", "w3cdtf", None, "end"),
                                                  ("1999-05-01T10:30:00Z", "w3cdtf", "yes", None)}, key=str)


def test_an_invalid_isrc_is_a_problem_not_a_normalized_value(collection: Collection) -> None:
    collection.header = "file,title,artist,isrc"
    collection.rows = ["one.wav,One,Ann,gb-abc-24-001", "side b/two.wav,Two,Ben,GB-ABC-24-00002", "three.flac,Three,Cy,"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [(p.code, p.row) for p in report.problems] == [("identifier", 1)]
    assert report.problems[0].message.startswith("metadata.csv row 1 (one.wav): isrc 'gb-abc-24-001' is not an ISRC")
    # a valid ISRC only loses its hyphens
    assert [t.isrc for t in report.collection.tracks] == [None, "GBABC2400002", None]


def test_no_title_falls_back_to_the_file_name_and_says_so(collection: Collection, tmp_path: Path, schemas_dir: Path) -> None:
    collection.rows = ["one.wav,,Ann", "side b/two.wav,Two,Ben", "three.flac,Three,Cy"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert report.collection.tracks[0].title == "one"
    assert ("one.wav (row 1): no title in the sheet or in the file's tags; its file name 'one' is used as the title "
            "(give one in the sheet's title column)") in report.warnings
    _premis, mets = _packaged(collection, tmp_path / "bag", schemas_dir)
    releases = [d.get("LABEL") for d in mets.iterfind(".//mets:structMap[@TYPE='logical']//mets:div[@TYPE='release']", NS)]
    assert sorted(releases) == ["Three", "Two", "one"]
    assert not any("(single)" in (label or "") for label in releases)


# ------------------------------------------------------------------------------------------ rights

def _rights_rows(collection: Collection, one: str, two: str, three: str = "") -> None:
    collection.header = RIGHTS_HEADER
    collection.rows = [f"one.wav,One,Ann,{one}", f"side b/two.wav,Two,Ben,{two}", f"three.flac,Three,Cy,{three}"]
    collection.write_sheet()


DONOR = "donor,Dana Donor,copyrighted,rights/agreement.txt"


def _statements(premis: etree._Element) -> list[etree._Element]:
    return premis.findall("premis:rights/premis:rightsStatement", NS)


def test_an_ended_embargo_is_warned_of_and_not_recorded_inverted(collection: Collection, tmp_path: Path,
                                                                 schemas_dir: Path) -> None:
    _rights_rows(collection, f"Album,{DONOR},replicate;disseminate,1990-01-01",
                 f"Album,{DONOR},replicate,1991-06-30", f"Later,{DONOR},replicate;disseminate,2999-01-01")
    report = check_collection(collection.root)
    assert report.problems == []
    assert ("metadata.csv row 1 (one.wav): restriction_until 1990-01-01 has passed: the embargo has ended, and the "
            "package records no restriction on dissemination (clear the cell, or give the date the embargo really ends)"
            ) in report.warnings
    assert any(w.startswith("metadata.csv row 2 (side b/two.wav): restriction_until 1991-06-30 has passed") for w in report.warnings)
    assert not any("2999-01-01" in w for w in report.warnings)
    premis, _mets = _packaged(collection, tmp_path / "bag", schemas_dir)
    for term in premis.iterfind(".//premis:termOfRestriction", NS):
        start, end = term.findtext("premis:startDate", namespaces=NS), term.findtext("premis:endDate", namespaces=NS)
        assert start is not None and end is not None and start <= end
    ends = [e.text for e in premis.iterfind(".//premis:termOfRestriction/premis:endDate", NS)]
    assert ends == ["2999-01-01"]
    ended = [g for g in premis.iterfind(".//premis:rightsGranted", NS)
             if "1990-01-01" in (g.findtext("premis:rightsGrantedNote", namespaces=NS) or "")]
    assert [(g.findtext("premis:act", namespaces=NS), g.findtext("premis:restriction", namespaces=NS)) for g in ended] == [
        ("disseminate", "none")]
    # dissemination never permitted and the embargo over: no "disallow" grant with an old date
    assert not premis.xpath(".//premis:rightsGranted[premis:restriction='disallow']", namespaces=NS)


def test_a_restriction_date_must_be_a_calendar_day(collection: Collection) -> None:
    _rights_rows(collection, f"Album,{DONOR},replicate,20300101", f"Album,{DONOR},replicate,2030-02-30")
    messages = [m for c, m in _problems(collection) if c == "rights"]
    assert messages == ["metadata.csv row 1 (one.wav): restriction_until '20300101' is not a date (YYYY-MM-DD)",
                        "metadata.csv row 2 (side b/two.wav): restriction_until '2030-02-30' is not a date (YYYY-MM-DD)"]


def _release_links(premis: etree._Element) -> dict[str, list[str]]:
    """Each release entity's local identifier -> the rights statements it links to."""
    out = {}
    for obj in premis.iterfind("premis:object", NS):
        local = obj.findtext("premis:objectIdentifier[premis:objectIdentifierType='local']/premis:objectIdentifierValue",
                             namespaces=NS)
        if obj.find("premis:relationship", NS) is not None and not (local or "").startswith("data/"):
            out[local or ""] = [v.text or "" for v in obj.iterfind(
                "premis:linkingRightsStatementIdentifier/premis:linkingRightsStatementIdentifierValue", NS)]
    return out


def test_a_release_links_only_the_rights_its_tracks_share(collection: Collection, tmp_path: Path, schemas_dir: Path) -> None:
    # one.wav and two.wav make one release with different rights; three.flac's release has one statement
    _rights_rows(collection, f"Album,{DONOR},replicate;disseminate,2999-01-01", "Album", "Other")
    premis, _mets = _packaged(collection, tmp_path / "bag", schemas_dir)
    links = _release_links(premis)
    assert links["Album"] == []
    assert len(links["Other"]) == 1
    statements = {s.findtext("premis:rightsStatementIdentifier/premis:rightsStatementIdentifierValue", namespaces=NS): s
                  for s in _statements(premis)}
    album_uuid = premis.xpath("premis:object[premis:objectIdentifier/premis:objectIdentifierValue='Album']/"
                              "premis:objectIdentifier[premis:objectIdentifierType='UUID']/premis:objectIdentifierValue/text()",
                              namespaces=NS)[0]
    for st in statements.values():
        linked = [v.text for v in st.iterfind("premis:linkingObjectIdentifier/premis:linkingObjectIdentifierValue", NS)]
        assert album_uuid not in linked
    assert len(statements) == 2


def test_a_release_whose_tracks_agree_links_their_statement(collection: Collection, tmp_path: Path, schemas_dir: Path) -> None:
    _rights_rows(collection, "Album", "Album", "Album")
    premis, _mets = _packaged(collection, tmp_path / "bag", schemas_dir)
    (statement,) = _statements(premis)
    uuid = statement.findtext("premis:rightsStatementIdentifier/premis:rightsStatementIdentifierValue", namespaces=NS)
    assert _release_links(premis) == {"Album": [uuid]}


# ----------------------------------------------------------------------------- names and places

def test_package_warns_of_a_percent_in_a_name_as_bag_does(collection: Collection, tmp_path: Path) -> None:
    (collection.root / "one.wav").rename(collection.root / "50% one.wav")
    collection.rows[0] = "50% one.wav,One,Ann"
    collection.write_sheet()
    warning = ("data/objects/50% one.wav: the name contains '%'; it is written as %25 as RFC 8493 requires, but "
               "bagit-python 1.9 and DART do not decode %25 and will report it missing")
    checked = invoke(check, "--no-profile", collection.root)
    assert checked.code == EXIT_OK
    assert f"warning: {warning}" in checked.stdout
    out = invoke(package, "--no-profile", collection.root, tmp_path / "bag")
    assert out.code == EXIT_OK, out.stderr
    assert out.stderr.count("the name contains '%'") == 1, out.stderr
    assert f"warning: {warning}" in out.stderr
    bagged = invoke(bag, collection.root, tmp_path / "plain")
    assert "the name contains '%'; it is written as %25 as RFC 8493 requires" in bagged.stderr


def test_check_names_the_collection_key_for_a_missing_organization(collection: Collection) -> None:
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace('organization = "Test Archive"\n', ""), encoding="utf-8")
    out = invoke(check, collection.root)
    assert out.code == EXIT_PROBLEMS
    assert ("give them in collection.toml (Source-Organization as 'organization' in its [collection] table), "
            "or to `preserve package` with --info LABEL=VALUE") in out.stdout
    assert "pass them with --info" not in out.stdout


@pytest.mark.parametrize("identifier", [True, False])
def test_no_host_path_in_the_sidecars(collection: Collection, tmp_path: Path, schemas_dir: Path, identifier: bool) -> None:
    if not identifier:
        toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
        (collection.root / "collection.toml").write_text(toml.replace('identifier = "test-0001"\n', ""), encoding="utf-8")
    premis, _mets = _packaged(collection, tmp_path / "bag", schemas_dir)
    host = str(collection.root.resolve())
    for name in ("premis.xml", "mets.xml"):
        assert host not in (tmp_path / "bag" / "metadata" / name).read_text(encoding="utf-8")
    ingestion = premis.xpath("premis:event[premis:eventType='ingestion']//premis:eventOutcomeDetailNote/text()", namespaces=NS)
    source = "the collection 'test-0001' (folder 'coll')" if identifier else "the collection 'coll' (folder 'coll')"
    files = [p for p in (tmp_path / "bag" / "data").rglob("*") if p.is_file()]
    assert ingestion[0] == (f"{len(files)} payload file(s), {sum(p.stat().st_size for p in files)} bytes, from {source}; "
                            "every path is recorded relative to that folder")

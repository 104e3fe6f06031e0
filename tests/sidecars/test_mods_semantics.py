"""MODS that says what an archivist means: dates by kind (recorded, released) in W3CDTF or EDTF with
their qualifiers, names with MARC relator roles, the archive as the record's content source, P-line
and C-line notices, and an extent in one unit. Every bag here is packaged by the real pipeline and
its sidecars pass the official schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from preserve.intake import check_collection
from preserve.intake.roles import relator_label, relators
from preserve.intake.testaudio import Tone, write_wav
from preserve.package import package_collection
from preserve.sidecars.check import check_sidecars
from preserve.sidecars.dates import date_encoding, date_parts

NS = {"premis": "http://www.loc.gov/premis/v3", "mods": "http://www.loc.gov/mods/v3", "mets": "http://www.loc.gov/METS/"}
TONE = Tone(22050, 16, 1, 0.25)
TOML = """\
[collection]
identifier = "oral-history-1"
organization = "Example Sound Archive"

[defaults]
rights_basis = "donor"
rights_holder = "Alex Example"
copyright_status = "copyrighted"
agreement = "rights/deed.txt"
permitted_acts = ["replicate", "migrate"]
"""


def _collection(root: Path, header: str, rows: list[str]) -> Path:
    root.mkdir(parents=True)
    (root / "rights").mkdir()
    (root / "rights" / "deed.txt").write_text("Deed of gift\n", encoding="utf-8")
    (root / "collection.toml").write_text(TOML, encoding="utf-8")
    for row in rows:
        write_wav(root / row.split(",", 1)[0], TONE)
    (root / "metadata.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return root


def _mods(mets: etree._Element, label: str) -> etree._Element:
    [div] = mets.xpath(".//mets:div[@TYPE='track'][@LABEL=$l]", namespaces=NS, l=label)
    mods = mets.find(f"mets:dmdSec[@ID='{div.get('DMDID')}']/mets:mdWrap/mets:xmlData/mods:mods", NS)
    assert mods is not None
    return mods


def _dates(mods: etree._Element, event: str) -> list[tuple[str, str | None, str | None, str | None, str | None, str | None]]:
    return [(etree.QName(d).localname, d.text, d.get("encoding"), d.get("qualifier"), d.get("point"), d.get("keyDate"))
            for d in mods.iterfind(f"mods:originInfo[@eventType='{event}']/*", NS) if etree.QName(d).localname.startswith("date")]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory, schemas_dir: Path) -> tuple[etree._Element, etree._Element]:
    base = tmp_path_factory.mktemp("mods")
    root = _collection(base / "coll", "file,title,recorded,released,contributors,donor,p_line,c_line,label,album", [
        "interview.wav,Interview,1978-07-14,,Sam Example (ive); Alex Example (ivr),Alex Example,,,,",
        "guess.wav,A guess,1978~/1981?,,,,,,,",
        "decade.wav,Some time in the seventies,197X,,Radio Example (broadcaster),,,,,",
        "record.wav,Side one,1977-11,1978,The Example Quartet (prf),,(P) 1978 Example Records,"
        "\u00a9 1978 Example Records,Example Records,Tides",
    ])
    bag = base / "bag"
    package_collection(root, bag, profile=None)
    assert [f for f in check_sidecars(bag, schemas=schemas_dir) if f.severity == "error"] == []
    return (etree.parse(str(bag / "metadata" / "mets.xml")).getroot(),
            etree.parse(str(bag / "metadata" / "premis.xml")).getroot())


def test_an_unpublished_recording_has_a_creation_date_not_an_issue_date(packaged: tuple[etree._Element, etree._Element]) -> None:
    mods = _mods(packaged[0], "Interview")
    assert _dates(mods, "production") == [("dateCreated", "1978-07-14", "w3cdtf", None, None, "yes")]
    assert mods.find(".//mods:dateIssued", NS) is None


def test_edtf_intervals_and_qualifiers(packaged: tuple[etree._Element, etree._Element]) -> None:
    assert _dates(_mods(packaged[0], "A guess"), "production") == [
        ("dateCreated", "1978~", "edtf", "approximate", "start", "yes"),
        ("dateCreated", "1981?", "edtf", "questionable", "end", None)]
    assert _dates(_mods(packaged[0], "Some time in the seventies"), "production") == [
        ("dateCreated", "197X", "edtf", None, None, "yes")]


def test_a_release_has_both_its_recording_and_its_issue_date(packaged: tuple[etree._Element, etree._Element]) -> None:
    mods = _mods(packaged[0], "Side one")
    assert _dates(mods, "publication") == [("dateIssued", "1978", "w3cdtf", None, None, "yes")]
    assert mods.findtext("mods:originInfo[@eventType='publication']/mods:publisher", namespaces=NS) == "Example Records"
    # the release date is the key date; the recording date is not
    assert _dates(mods, "production") == [("dateCreated", "1977-11", "w3cdtf", None, None, None)]


def test_names_carry_their_relator_roles_and_the_archive_is_the_content_source(
        packaged: tuple[etree._Element, etree._Element]) -> None:
    mets = packaged[0]

    def names(label: str) -> list[tuple[str | None, str | None, str | None]]:
        return [(n.findtext("mods:namePart", namespaces=NS),
                 n.findtext("mods:role/mods:roleTerm[@type='code'][@authority='marcrelator']", namespaces=NS),
                 n.findtext("mods:role/mods:roleTerm[@type='text'][@authority='marcrelator']", namespaces=NS))
                for n in _mods(mets, label).iterfind("mods:name", NS)]

    assert names("Interview") == [("Sam Example", "ive", "interviewee"), ("Alex Example", "ivr", "interviewer"),
                                  ("Alex Example", "dnr", "donor")]
    assert names("Some time in the seventies") == [("Radio Example", "brd", "broadcaster")]
    # no MODS record calls the archive a depositor; each names it as its content source
    assert not mets.xpath(".//mods:roleTerm[.='dpt' or .='depositor']", namespaces=NS)
    sources = mets.xpath(".//mods:mods/mods:recordInfo/mods:recordContentSource/text()", namespaces=NS)
    dmd_secs = mets.xpath("count(.//mets:dmdSec)", namespaces=NS)
    assert sources == ["Example Sound Archive"] * int(dmd_secs)


def test_notices_reach_mods_access_conditions_and_premis_copyright_notes(
        packaged: tuple[etree._Element, etree._Element]) -> None:
    mets, premis = packaged
    notices = ["\u2117 1978 Example Records", "\u00a9 1978 Example Records"]
    track = _mods(mets, "Side one")
    assert [(a.get("type"), a.text) for a in track.iterfind("mods:accessCondition", NS)] == \
        [("use and reproduction", n) for n in notices]
    [rel] = mets.xpath(".//mets:div[@TYPE='release'][@LABEL='Tides']", namespaces=NS)
    release = mets.find(f"mets:dmdSec[@ID='{rel.get('DMDID')}']/mets:mdWrap/mets:xmlData/mods:mods", NS)
    assert release is not None and [a.text for a in release.iterfind("mods:accessCondition", NS)] == notices
    [obj] = premis.xpath("premis:object[premis:originalName='record.wav']", namespaces=NS)
    statement = obj.findtext("premis:linkingRightsStatementIdentifier/premis:linkingRightsStatementIdentifierValue",
                             namespaces=NS)
    [st] = premis.xpath(".//premis:rightsStatement[premis:rightsStatementIdentifier/premis:rightsStatementIdentifierValue=$s]",
                        namespaces=NS, s=statement)
    assert [n.text for n in st.iterfind("premis:copyrightInformation/premis:copyrightNote", NS)] == notices
    # a track without notices keeps the collection's statement, without them
    [plain] = premis.xpath("premis:object[premis:originalName='interview.wav']", namespaces=NS)
    assert plain.findtext(".//premis:linkingRightsStatementIdentifierValue", namespaces=NS) != statement


def test_extent_is_a_bare_number_of_seconds(packaged: tuple[etree._Element, etree._Element]) -> None:
    [extent] = _mods(packaged[0], "Interview").iterfind("mods:physicalDescription/mods:extent", NS)
    assert (extent.get("unit"), extent.text) == ("seconds", "0.250")


@pytest.mark.parametrize(("value", "encoding"), [
    ("1978", "w3cdtf"), ("1978-07-14T10:30:00Z", "w3cdtf"), ("1978-07-14T10:30:00", "edtf"), ("1978/1981", "edtf"),
    ("1978~", "edtf"), ("1978?", "edtf"), ("1978%", "edtf"), ("197X", "edtf"), ("1978-XX", "edtf"), ("1978/..", "edtf"),
    ("1978-21", "edtf"),
    # refused: impossible days, level 2 EDTF, a reversed interval, free text
    ("1999-02-29", None), ("2001-13-45", None), ("?1978-07", None), ("[1667,1668]", None), ("1981/1978", None),
    ("summer 1978", None),
])
def test_dates_are_w3cdtf_or_edtf_level_0_and_1(value: str, encoding: str | None) -> None:
    assert date_encoding(value) == encoding


def test_both_uncertain_and_approximate_is_questionable() -> None:
    assert [(p.value, p.qualifier) for p in date_parts("1978%")] == [("1978%", "questionable")]


def test_unknown_roles_and_bad_dates_are_problems_naming_the_row(tmp_path: Path) -> None:
    root = _collection(tmp_path / "coll", "file,title,recorded,contributors", [
        "a.wav,A,1978,Sam Example (ive)", "b.wav,B,1978,Sam Example (xyz)", "c.wav,C,1978,Sam Example",
        "d.wav,D,?1978-07,Sam Example (Interviewee)"])
    report = check_collection(root)
    assert [(p.code, p.row) for p in report.problems] == [("role", 2), ("role", 3), ("date", 4)]
    assert report.problems[0].message.startswith(
        "metadata.csv row 2 (b.wav): contributors 'Sam Example (xyz)': 'xyz' is not a MARC relator code or term")
    assert report.problems[1].message.startswith("metadata.csv row 3 (c.wav): contributors 'Sam Example' gives no role")
    assert report.problems[2].message.startswith("metadata.csv row 4 (d.wav): recorded '?1978-07' is not a date")
    # a term is taken for its code
    assert [c.code for c in report.collection.tracks[3].contributors] == ["ive"]


def test_released_and_date_must_agree(tmp_path: Path) -> None:
    root = _collection(tmp_path / "coll", "file,title,date,released", ["a.wav,A,1978,1978", "b.wav,B,1978,1979"])
    report = check_collection(root)
    assert [(p.code, p.row) for p in report.problems] == [("date", 2)]
    assert report.collection.tracks[0].date == "1978"


def test_the_relator_list_ships_codes_and_labels() -> None:
    table = relators()
    assert len(table) > 250
    assert all(len(code) == 3 and code.isalpha() and code.islower() for code in table)
    assert (relator_label("ive"), relator_label("ivr"), relator_label("brd"), relator_label("dnr")) == \
        ("Interviewee", "Interviewer", "Broadcaster", "Donor")


def test_a_phonogram_notice_in_the_copyright_field_is_taken_as_the_p_line() -> None:
    # the label-masters files' RIFF ICOP (a copyright field) holds "(P) 2024 Example Records Ltd"
    examples = Path(__file__).resolve().parents[2] / "examples" / "label-masters"
    report = check_collection(examples)
    assert report.ready
    assert {(t.p_line, t.c_line) for t in report.collection.tracks} == {("\u2117 2024 Example Records Ltd", None)}
    assert not [w for w in report.warnings if "copyright notice" in w]

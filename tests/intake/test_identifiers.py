"""Identifiers are checked before they are written: ISRC (ISO 3901), UPC/EAN (GS1 check digit),
catalogue and matrix numbers. A wrong one stops `check` and `package` (exit 1), naming the row and
the column; a right one is written with its MODS identifier type."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from preserve.cli.check_cmd import check
from preserve.cli.package_cmd import package
from preserve.errors import EXIT_OK, EXIT_PROBLEMS
from preserve.intake import check_collection
from preserve.intake.identifiers import check_free_form, check_gtin, check_isrc, gtin_check_digit_ok

from .conftest import Collection, invoke

NS = {"mods": "http://www.loc.gov/mods/v3", "mets": "http://www.loc.gov/METS/"}


def _with_check_digit(body: str) -> str:
    """The GS1 check digit computed the way the GS1 General Specifications set it out (weights 3, 1 from the right)."""
    odd = sum(int(d) for d in body[::-1][0::2])
    even = sum(int(d) for d in body[::-1][1::2])
    return body + str((10 - (odd * 3 + even) % 10) % 10)


@pytest.mark.parametrize(("value", "digits", "type_"), [
    ("036000291452", "036000291452", "upc"),          # a UPC-A printed in GS1's own examples
    ("4006381333931", "4006381333931", "ean"),        # an EAN-13
    ("9638-5074", "96385074", "ean"),                 # an EAN-8, hyphen as printed
    ("5 012345 678900", "5012345678900", "ean"),      # spaces as printed under a barcode
])
def test_right_upc_and_ean_are_kept_with_their_type(value: str, digits: str, type_: str) -> None:
    checked, kind = check_gtin(value, "upc")
    assert (checked.value, checked.problem, kind) == (digits, None, type_)


@pytest.mark.parametrize(("value", "why"), [
    ("036000291453", "has a wrong check digit"),
    ("03600029145", "is not a UPC or EAN"),           # 11 digits
    ("03600029145X", "is not a UPC or EAN"),
])
def test_wrong_upc_and_ean_are_refused(value: str, why: str) -> None:
    checked, _ = check_gtin(value, "upc")
    assert checked.value is None and checked.problem is not None
    assert checked.problem.startswith(f"upc {value!r} {why}")


@given(st.text("0123456789", min_size=11, max_size=11), st.integers(0, 10), st.integers(1, 9))
def test_the_check_digit_catches_every_single_digit_mistake(body: str, position: int, delta: int) -> None:
    code = _with_check_digit(body)
    assert gtin_check_digit_ok(code)
    mistyped = code[:position] + str((int(code[position]) + delta) % 10) + code[position + 1:]
    assert not gtin_check_digit_ok(mistyped)


def test_isrc_in_the_iso_3901_form() -> None:
    assert check_isrc("gb-abc-24-00001").value == "GBABC2400001"
    for wrong in ("GB-ABC-24-0001", "G1-ABC-24-00001", "GBABC24000012", "GB-ABC-2X-00001"):
        assert check_isrc(wrong).value is None
        assert (check_isrc(wrong).problem or "").startswith(f"isrc {wrong!r} is not an ISRC")


def test_catalogue_and_matrix_numbers_are_one_printed_line() -> None:
    assert check_free_form("XZRL 4471-1A", "matrix_number").value == "XZRL 4471-1A"
    assert check_free_form("ABC\n123", "catalogue_number").problem == (
        "catalogue_number 'ABC\\n123' is not a catalogue number (one line of at most 64 characters, as printed on "
        "the release); correct it or leave the cell empty")
    assert check_free_form("X" * 65, "matrix_number").value is None


def test_a_wrong_identifier_stops_check_and_package_naming_row_and_column(collection: Collection, tmp_path: Path) -> None:
    collection.header = "file,title,artist,isrc,upc,catalogue_number,matrix_number"
    collection.rows = ["one.wav,One,Ann,GB-ABC-24-00001,036000291452,ABC-1,XZRL 4471-1A",
                       "side b/two.wav,Two,Ben,,036000291453,,",
                       'three.flac,Three,Cy,GBABC2400003,,"ABC\n123",']
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [(p.code, p.row, p.message.split(":", 2)[1].strip().split(" ")[0]) for p in report.problems] == [
        ("identifier", 2, "upc"), ("identifier", 3, "catalogue_number")]
    assert report.problems[0].message.startswith("metadata.csv row 2 (side b/two.wav): upc '036000291453' has a wrong check digit")
    assert invoke(check, collection.root).code == EXIT_PROBLEMS
    assert invoke(package, "--no-profile", collection.root, tmp_path / "bag").code == EXIT_PROBLEMS
    assert not (tmp_path / "bag").exists()


def test_right_identifiers_are_written_with_their_mods_types(collection: Collection, tmp_path: Path) -> None:
    collection.header = "file,title,artist,album,isrc,upc,catalogue_number,matrix_number"
    collection.rows = ["one.wav,One,Ann,Tides,GB-ABC-24-00001,4006381333931,ABC-1,XZRL 4471-1A",
                       "side b/two.wav,Two,Ben,,,036000291452,,", "three.flac,Three,Cy,,,,,"]
    collection.write_sheet()
    out = invoke(package, "--no-profile", collection.root, tmp_path / "bag")
    assert out.code == EXIT_OK, out.stdout + out.stderr
    mets = etree.parse(str(tmp_path / "bag" / "metadata" / "mets.xml")).getroot()

    def identifiers(label: str) -> list[tuple[str | None, str | None]]:
        [div] = mets.xpath(".//mets:div[@TYPE='track'][@LABEL=$l]", namespaces=NS, l=label)
        mods = mets.find(f"mets:dmdSec[@ID='{div.get('DMDID')}']/mets:mdWrap/mets:xmlData/mods:mods", NS)
        assert mods is not None
        return [(i.get("type"), i.text) for i in mods.iter("{http://www.loc.gov/mods/v3}identifier")]

    assert identifiers("One") == [("isrc", "GBABC2400001"), ("matrix number", "XZRL 4471-1A"),
                                  ("ean", "4006381333931"), ("issue number", "ABC-1")]
    assert identifiers("Two") == []        # a single's UPC is its release's, in the release's own MODS
    [rel] = mets.xpath(".//mets:div[@TYPE='release'][mets:div/mets:div[@LABEL='Two']]", namespaces=NS)
    release = mets.find(f"mets:dmdSec[@ID='{rel.get('DMDID')}']/mets:mdWrap/mets:xmlData/mods:mods", NS)
    assert release is not None
    assert release.findtext("mods:identifier[@type='upc']", namespaces=NS) == "036000291452"

"""Both shipped examples, packaged by `preserve package` as a user runs it: sidecars valid and true."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from preserve.sidecars.check import check_sidecars

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "schemas"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe
    out = tmp_path_factory.mktemp("examples")
    bags = {}
    for name in ("donated-collection", "label-masters"):
        proc = subprocess.run([exe, "package", "-q", "--operator", "Ada Archivist", str(EXAMPLES / name), str(out / name)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        bags[name] = out / name
    return bags


@pytest.mark.parametrize("name", ["donated-collection", "label-masters"])
def test_example_sidecars_are_valid_and_consistent(packaged: dict[str, Path], name: str, metsrw_read: Any,
                                                   xsd: Callable[[str], etree.XMLSchema]) -> None:
    bag = packaged[name]
    mets_schema, premis_schema = xsd("mets-premis-mods.xsd"), xsd("premis-v3-0.xsd")
    mets = etree.parse(str(bag / "metadata" / "mets.xml"))
    assert mets_schema.validate(mets), str(mets_schema.error_log)
    premis = etree.parse(str(bag / "metadata" / "premis.xml"))
    assert premis_schema.validate(premis), str(premis_schema.error_log)
    assert check_sidecars(bag, schemas=SHARED) == []
    doc: Any = metsrw_read(str(bag / "metadata" / "mets.xml"))
    found = {urllib.parse.unquote(e.path.removeprefix("../")) for e in doc.all_files() if e.type == "Item"}
    listed = {line.split(" ", 1)[1].strip() for line in (bag / "manifest-sha256.txt").read_text().splitlines()}
    assert found == listed


def test_donated_collection_rights_and_operator(packaged: dict[str, Path]) -> None:
    ns = {"premis": "http://www.loc.gov/premis/v3"}
    premis = etree.parse(str(packaged["donated-collection"] / "metadata" / "premis.xml")).getroot()
    [st] = premis.findall("premis:rights/premis:rightsStatement", ns)
    assert st.findtext("premis:rightsBasis", namespaces=ns) == "Other"
    assert st.findtext("premis:otherRightsInformation/premis:otherRightsBasis", namespaces=ns) == "Donor"
    doc = st.findtext("premis:otherRightsInformation/premis:otherRightsDocumentationIdentifier/"
                      "premis:otherRightsDocumentationIdentifierValue", namespaces=ns)
    assert doc == "data/submission/rights/deed-of-gift.txt"
    assert (packaged["donated-collection"] / doc).is_file()
    people = [a.findtext("premis:agentName", namespaces=ns) for a in premis.iterfind("premis:agent[premis:agentType='person']", ns)]
    # the operator, and the donor who holds the rights (LoC agentType "person", linked as rightsholder)
    assert people == ["Ada Archivist", "Alex Example"]
    holder = premis.xpath("premis:agent[premis:agentName='Alex Example']/premis:agentIdentifier/premis:agentIdentifierValue/text()",
                          namespaces=ns)
    assert st.xpath("premis:linkingAgentIdentifier[premis:linkingAgentRole='rightsholder']/premis:linkingAgentIdentifierValue/text()",
                    namespaces=ns) == holder


def test_label_masters_two_releases_two_licences(packaged: dict[str, Path], run_preserve: Callable[..., Any]) -> None:
    proc = run_preserve("show", packaged["label-masters"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "  2 release(s), 3 track(s), 4 other file(s)" in lines
    assert "Rights:" in lines
    rights = lines[lines.index("Rights:") + 1: lines.index("Formats:")]
    # the sheet's copyright status is kept beside the licence (PREMIS copyrightInformation)
    assert rights == [
        "  R1  License; copyrighted; Example Records master deposit licence for Lanterns; holder Example Records Ltd; may replicate, migrate",
        "  R2  License; copyrighted; Example Records master deposit licence for Tides EP; holder Example Records Ltd; may replicate, migrate",
    ]
    assert any(line.startswith("Tides EP  (2 track(s), ") for line in lines)


NS = {"premis": "http://www.loc.gov/premis/v3", "mets": "http://www.loc.gov/METS/", "mods": "http://www.loc.gov/mods/v3"}


def test_label_masters_licence_keeps_the_copyright_status(packaged: dict[str, Path],
                                                          xsd: Callable[[str], etree.XMLSchema]) -> None:
    bag = packaged["label-masters"]
    premis = etree.parse(str(bag / "metadata" / "premis.xml"))
    assert xsd("premis-v3-0.xsd").validate(premis), str(xsd("premis-v3-0.xsd").error_log)
    statements = premis.getroot().findall("premis:rights/premis:rightsStatement", NS)
    assert len(statements) == 2
    for st in statements:
        assert st.findtext("premis:rightsBasis", namespaces=NS) == "License"
        assert st.findtext("premis:copyrightInformation/premis:copyrightStatus", namespaces=NS) == "copyrighted"
        assert st.findtext("premis:licenseInformation/premis:licenseTerms", namespaces=NS).startswith("Example Records")  # type: ignore[union-attr]
        # the holder is a company: LoC agentType "organization", linked with the role rightsholder
        holder = st.findtext("premis:linkingAgentIdentifier[premis:linkingAgentRole='rightsholder']/"
                             "premis:linkingAgentIdentifierValue", namespaces=NS)
        [agent] = premis.xpath("premis:agent[premis:agentIdentifier/premis:agentIdentifierValue=$v]", namespaces=NS, v=holder)
        assert agent.findtext("premis:agentName", namespaces=NS) == "Example Records Ltd"
        assert agent.findtext("premis:agentType", namespaces=NS) == "organization"
    mets = etree.parse(str(bag / "metadata" / "mets.xml"))
    assert xsd("mets-premis-mods.xsd").validate(mets), str(xsd("mets-premis-mods.xsd").error_log)
    assert {s.text for s in mets.iter("{http://www.loc.gov/premis/v3}copyrightStatus")} == {"copyrighted"}


def test_label_masters_mods_carry_the_sheet(packaged: dict[str, Path]) -> None:
    """What metadata.json gives (ISRC, UPC, artist, label, date, track number) reaches the MODS."""
    mets = etree.parse(str(packaged["label-masters"] / "metadata" / "mets.xml")).getroot()

    def mods(dmd_id: str) -> etree._Element:
        found = mets.find(f"mets:dmdSec[@ID='{dmd_id}']/mets:mdWrap/mets:xmlData/mods:mods", NS)
        assert found is not None, dmd_id
        return found

    tracks = {}
    for div in mets.iterfind(".//mets:structMap[@TYPE='logical']//mets:div[@TYPE='track']", NS):
        tracks[div.get("LABEL")] = mods(div.get("DMDID", ""))
    assert set(tracks) == {"Tides", "Undertow", "Lanterns"}
    t = tracks["Undertow"]
    assert t.findtext("mods:titleInfo/mods:title", namespaces=NS) == "Undertow"
    assert t.findtext("mods:identifier[@type='isrc']", namespaces=NS) == "GBEXR2400002"  # intake normalizes the ISRC
    assert [(n.findtext("mods:namePart", namespaces=NS), n.findtext("mods:role/mods:roleTerm[@type='code']", namespaces=NS))
            for n in t.iterfind("mods:name", NS)] == [("The Example Quartet", "prf")]
    assert t.findtext("mods:originInfo/mods:publisher", namespaces=NS) == "Example Records"
    assert t.findtext("mods:originInfo/mods:dateIssued[@encoding='w3cdtf']", namespaces=NS) == "2024"
    assert t.findtext("mods:part/mods:detail[@type='track']/mods:number", namespaces=NS) == "2"
    assert t.findtext("mods:relatedItem[@type='host']/mods:identifier[@type='ean']", namespaces=NS) == "5012345678900"
    releases = {mods(d.get("DMDID", "")).findtext("mods:titleInfo/mods:title", namespaces=NS): mods(d.get("DMDID", ""))
                for d in mets.iterfind(".//mets:structMap[@TYPE='logical']//mets:div[@TYPE='release']", NS)}
    assert set(releases) == {"Tides EP", "Lanterns"}
    assert releases["Tides EP"].findtext("mods:identifier[@type='ean']", namespaces=NS) == "5012345678900"
    assert releases["Lanterns"].findtext("mods:identifier[@type='ean']", namespaces=NS) == "5012345678917"
    assert releases["Lanterns"].findtext("mods:name/mods:role/mods:roleTerm[@type='code']", namespaces=NS) == "prf"

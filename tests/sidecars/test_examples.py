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
    assert people == ["Ada Archivist"]


def test_label_masters_two_releases_two_licences(packaged: dict[str, Path], run_preserve: Callable[..., Any]) -> None:
    proc = run_preserve("show", packaged["label-masters"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "  2 release(s), 3 track(s), 4 other file(s)" in lines
    assert "Rights:" in lines
    rights = lines[lines.index("Rights:") + 1: lines.index("Formats:")]
    assert rights == [
        "  License; Example Records master deposit licence for Lanterns; holder Example Records Ltd; may replicate, migrate",
        "  License; Example Records master deposit licence for Tides EP; holder Example Records Ltd; may replicate, migrate",
    ]
    assert any(line.startswith("Tides EP  (2 track(s), ") for line in lines)

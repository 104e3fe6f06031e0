"""``store update --sheet`` on objects packaged from a label's DDEX batch (examples/label-ddex):
a corrected title changes the title and nothing else; every fact that came only from the ERN
message (contributors and roles, P-line, ISRC, UPC, release and original release dates,
parental warning, the DDEX references and message identifiers) is in the new version as in the
first, the sidecars validate against the official schemas and ocfl-py accepts the object."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from preserve.batch import package_batch
from preserve.ocfl.inventory import read_inventory, state_of
from preserve.ocfl.layout import open_root
from preserve.ocfl.validate import validate_object
from tests.ocfl.test_store_ocflpy import ocfl_validate, ocflpy

__all__ = ["ocfl_validate"]  # the session fixture, used here by name

Run = Callable[..., subprocess.CompletedProcess[str]]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "label-ddex"
M, MODS, P = "{http://www.loc.gov/METS/}", "{http://www.loc.gov/mods/v3}", "{http://www.loc.gov/premis/v3}"
XLINK = "{http://www.w3.org/1999/xlink}"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: the two releases of the example batch: ERN 4.3 and ERN 3.8.2
RELEASES = ("5012345678900", "5012345678917")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def aips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example batch packaged once for the file: one bag per release."""
    dest = tmp_path_factory.mktemp("ddex") / "aips"
    result = package_batch(EXAMPLE, dest)
    assert not result.failed, [o.problems for o in result.failed]
    return dest


def _file(obj: Path, version: str, rel: str) -> Path:
    inventory = read_inventory(obj)
    return obj / str(inventory["manifest"][state_of(inventory, version)[rel]][0])


def _c14n(el: etree._Element) -> str:
    # each packaging run makes its own UUIDs: they are not facts of the description
    return _UUID.sub("UUID", etree.tostring(el, method="c14n").decode())


def _mods(mets: Path, retitle: dict[str, str] | None = None) -> list[str]:
    """Every MODS description of the METS in order; ``retitle`` (audio file name -> title) sets the
    title of those tracks' own descriptions first."""
    root = etree.parse(str(mets)).getroot()
    by_dmd = {f.get("DMDID"): (f.find(f"{M}FLocat").get(f"{XLINK}href") or "").rsplit("/", 1)[-1]  # type: ignore[union-attr]
              for f in root.iter(f"{M}file") if f.get("DMDID")}
    out = []
    for sec in root.iter(f"{M}dmdSec"):
        mods = sec.find(f"{M}mdWrap/{M}xmlData/{MODS}mods")
        assert mods is not None
        name = by_dmd.get(sec.get("ID"))
        if retitle and name in retitle:
            title = mods.find(f"{MODS}titleInfo/{MODS}title")
            assert title is not None
            title.text = retitle[name]
        out.append(_c14n(mods))
    return out


def _premis_facts(premis: Path) -> tuple[list[str], list[str], list[str]]:
    """The PREMIS objects, rights statements and agents (events aside: a correction adds one)."""
    root = etree.parse(str(premis)).getroot()
    return ([_c14n(el) for el in root.iterfind(f"{P}object")], [_c14n(el) for el in root.iterfind(f"{P}rights")],
            [_c14n(el) for el in root.iterfind(f"{P}agent")])


#: facts only the ERN message gives, as the sidecars write them (each checked in v1 and in v2)
DDEX_FACTS = {
    "5012345678900": ["Cora Composer", "Pat Producer", ">producer<", "\u2117 2026 Example Records", "QZES72600001",
                      "QZES72600002", 'type="ean">5012345678900<', ">SR-001<", ">2026-03-01<", ">2025-11-20<",
                      "NotExplicit", ">The Example Quartet<", ">Jazz<", "DDEX ResourceReference",
                      "DDEX TechnicalResourceDetailsReference", "DDEX ReleaseReference", "EXR-20260301-0001",
                      "PADPIDA2026010101S"],
    "5012345678917": ["QZES72700001", "QZES72700002", 'type="ean">5012345678917<', "\u2117 2025 Example Records",
                      "DDEX ResourceReference", "DDEX ReleaseReference", "EXR-20260301-0002"],
}


@pytest.mark.parametrize("icpn", RELEASES)
def test_a_title_correction_keeps_every_fact_of_the_message(icpn: str, aips: Path, tmp_path: Path, run_preserve: Run,
                                                            schemas_dir: Path, ocfl_validate: Path) -> None:
    store = tmp_path / "store"
    assert run_preserve("store", "init", store).returncode == 0
    done = run_preserve("store", "ingest", store, aips / icpn, "--id", f"urn:ean:{icpn}", "--operator", "Ada")
    assert done.returncode == 0, done.stderr
    obj = open_root(store).object_path(f"urn:ean:{icpn}")
    v1_mets = _file(obj, "v1", "metadata/mets.xml")
    old_titles = [t.text for t in etree.parse(str(v1_mets)).getroot().iter(f"{MODS}title")]
    assert old_titles, "the example's tracks have titles"
    # the first track retitled; the second row's title left empty: the stored one stands
    sheet = tmp_path / "corrected.csv"
    sheet.write_text("file,title\nresources/A1.wav,Corrected Title (2026 remaster)\nresources/A2.wav,\n", encoding="utf-8")
    done = run_preserve("store", "update", store, f"urn:ean:{icpn}", "--sheet", sheet, "--reason", "title corrected",
                        "--operator", "Ben Cataloguer", "--address", "mailto:ben@example.org")
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_inventory(obj)["head"] == "v2"
    v2_mets, v2_premis = _file(obj, "v2", "metadata/mets.xml"), _file(obj, "v2", "metadata/premis.xml")
    v1_premis = _file(obj, "v1", "metadata/premis.xml")

    # the corrected field changed, and every description is otherwise the same as v1's
    new = _mods(v2_mets)
    assert new == _mods(v1_mets, {"A1.wav": "Corrected Title (2026 remaster)"})
    assert new != _mods(v1_mets)
    text_v1, text_v2 = v1_mets.read_text(encoding="utf-8"), v2_mets.read_text(encoding="utf-8")
    assert "Corrected Title (2026 remaster)" in text_v2 and "Corrected Title" not in text_v1
    for fact in DDEX_FACTS[icpn]:
        assert fact in text_v1, fact
        assert fact in text_v2, fact
    # PREMIS: the same objects (DDEX identifiers, fixity, technical metadata), rights (the P-line
    # among the notices) and agents; the history gains the correction's event
    (objects1, rights1, agents1), (objects2, rights2, agents2) = _premis_facts(v1_premis), _premis_facts(v2_premis)
    assert (objects2, rights2) == (objects1, rights1)
    assert set(agents1) <= set(agents2)
    premis_text = v2_premis.read_text(encoding="utf-8")
    assert "DDEX MessageId" in premis_text and "DDEX MessageSender PartyId" in premis_text
    assert "\u2117" in premis_text
    events = [e.findtext(f"{P}eventType") for e in etree.parse(str(v2_premis)).getroot().iter(f"{P}event")]
    assert events.count("metadata modification") == 1

    # the object is valid to our validator and to ocfl-py; the exported v2 validates as a bag,
    # METS and PREMIS against the official schemas
    assert validate_object(obj).ok
    assert ocflpy(ocfl_validate, [obj])[obj][0], "ocfl-py rejects the corrected object"
    out = tmp_path / "v2"
    assert run_preserve("store", "export", store, f"urn:ean:{icpn}", out).returncode == 0
    checked = run_preserve("validate", out, env={**os.environ, "PRESERVE_SCHEMAS": str(schemas_dir)})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 warning(s)" in checked.stdout, checked.stdout


def test_later_corrections_start_from_the_one_before(aips: Path, tmp_path: Path, run_preserve: Run) -> None:
    icpn = RELEASES[0]
    store = tmp_path / "store"
    assert run_preserve("store", "init", store).returncode == 0
    assert run_preserve("store", "ingest", store, aips / icpn, "--id", "urn:x:r", "--operator", "Ada").returncode == 0
    obj = open_root(store).object_path("urn:x:r")
    first = tmp_path / "first.csv"
    first.write_text("file,title,genre\nresources/A1.wav,First Fix,Modal Jazz\nresources/A2.wav,,\n", encoding="utf-8")
    second = tmp_path / "second.csv"
    second.write_text("file,title\nresources/A1.wav,\nresources/A2.wav,Second Fix\n", encoding="utf-8")
    for sheet in (first, second):
        done = run_preserve("store", "update", store, "urn:x:r", "--sheet", sheet, "--reason", "fix", "--operator", "Ann")
        assert done.returncode == 0, done.stderr
    mets = _file(obj, "v3", "metadata/mets.xml").read_text(encoding="utf-8")
    # v2's corrections stand where v3's sheet says nothing; the message's facts stand throughout
    assert "First Fix" in mets and "Second Fix" in mets and "Modal Jazz" in mets
    assert "Cora Composer" in mets and "\u2117 2026 Example Records" in mets and ">2025-11-20<" in mets
    assert "Low Tide" not in _mods_titles(mets)
    # --config alone re-reads the stored description: nothing of it is lost either
    config = tmp_path / "collection.toml"
    toml = (EXAMPLE / "collection.toml").read_text(encoding="utf-8").replace(
        'organization = "Example Records"', 'organization = "Example Records Ltd"').replace(
        '"agreements/deposit-agreement.txt"', '"batch/agreements/deposit-agreement.txt"')
    # the release keeps its own name (the batch's identifier would rename the bag)
    config.write_text("".join(line for line in toml.splitlines(keepends=True) if not line.startswith("identifier")),
                      encoding="utf-8")
    done = run_preserve("store", "update", store, "urn:x:r", "--config", config, "--reason", "renamed", "--operator", "Ann")
    assert done.returncode == 0, done.stderr
    mets4 = _file(obj, "v4", "metadata/mets.xml").read_text(encoding="utf-8")
    assert "Example Records Ltd" in mets4
    assert _mods_titles(mets4) == _mods_titles(mets)
    for fact in DDEX_FACTS[icpn]:
        assert fact in mets4, fact


def _mods_titles(mets: str) -> list[str]:
    return re.findall(r"<mods:title>([^<]*)</mods:title>", mets)

"""METS and PREMIS written through the real create_bag: valid against the official schemas, and
saying what the bag holds (checksums, rights, order, locations)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from preserve.bag.reader import open_bag
from preserve.sidecars.check import check_sidecars

NS = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3",
      "mods": "http://www.loc.gov/mods/v3", "xlink": "http://www.w3.org/1999/xlink",
      "xsi": "http://www.w3.org/2001/XMLSchema-instance", "audio": "urn:preserve:audio-technical:1",
      "audiomd": "http://www.loc.gov/audioMD/"}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "schemas"
PREMIS_ALG = {"SHA-256": "sha256", "SHA-512": "sha512", "MD5": "md5"}


def manifests(bag: Path) -> dict[str, dict[str, str]]:
    b = open_bag(bag)
    out: dict[str, dict[str, str]] = {}
    for alg in b.payload_manifests:
        for line in b.iter_manifest(alg):
            out.setdefault(line.path, {})[alg] = line.digest
    return out


def assert_valid(bag: Path, xsd: Callable[[str], etree.XMLSchema]) -> None:
    mets_schema, premis_schema = xsd("mets-premis-mods.xsd"), xsd("premis-v3-0.xsd")
    mets = etree.parse(str(bag / "metadata" / "mets.xml"))
    assert mets_schema.validate(mets), str(mets_schema.error_log)
    premis = etree.parse(str(bag / "metadata" / "premis.xml"))
    assert premis_schema.validate(premis), str(premis_schema.error_log)


def premis_fixity(root: etree._Element) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for obj in root.iter("{http://www.loc.gov/premis/v3}object"):
        if obj.get(f"{{{NS['xsi']}}}type") != "premis:file":
            continue
        path = obj.findtext("premis:objectIdentifier[premis:objectIdentifierType='local']/premis:objectIdentifierValue", namespaces=NS)
        if path is None:  # a path with characters XML 1.0 forbids is percent-encoded
            encoded = obj.findtext("premis:objectIdentifier[premis:objectIdentifierType='local, percent-encoded']/"
                                   "premis:objectIdentifierValue", namespaces=NS)
            assert encoded is not None
            path = urllib.parse.unquote(encoded, errors="surrogateescape")
        out[path] = {PREMIS_ALG[f.findtext("premis:messageDigestAlgorithm", namespaces=NS) or ""]:
                     f.findtext("premis:messageDigest", namespaces=NS) or ""
                     for f in obj.iterfind("premis:objectCharacteristics/premis:fixity", NS)}
    return out


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory: pytest.TempPathFactory, kit: Any) -> Path:
    d = tmp_path_factory.mktemp("small")
    col, payload = kit.make_collection(d / "src", 6, titles={4: "Broken\x07tag\x00 title\x1b"})
    return kit.package(d / "bag", col, payload)


@pytest.fixture(scope="module")
def bag_500(tmp_path_factory: pytest.TempPathFactory, kit: Any) -> Path:
    d = tmp_path_factory.mktemp("big")
    col, payload = kit.make_collection(d / "src", 500, tracks_per_release=10)
    return kit.package(d / "bag", col, payload, algorithms=("sha256", "sha512", "md5"))


def test_small_bag_is_valid_against_official_schemas(small_bag: Path, xsd: Callable[[str], etree.XMLSchema]) -> None:
    assert_valid(small_bag, xsd)


def test_500_track_collection_is_valid(bag_500: Path, xsd: Callable[[str], etree.XMLSchema]) -> None:
    assert_valid(bag_500, xsd)
    mets = etree.parse(str(bag_500 / "metadata" / "mets.xml"))
    assert len(mets.findall("mets:fileSec//mets:file", NS)) == 503
    assert len(mets.findall("mets:amdSec", NS)) == 503 + 50 + 1  # files, releases, package


def test_checksums_in_mets_and_premis_equal_the_manifests(bag_500: Path) -> None:
    expected = manifests(bag_500)
    assert len(expected) == 503
    mets = etree.parse(str(bag_500 / "metadata" / "mets.xml")).getroot()
    in_filesec = {}
    for f in mets.iterfind("mets:fileSec//mets:file", NS):
        href = f.find("mets:FLocat", NS).get(f"{{{NS['xlink']}}}href")  # type: ignore[union-attr]
        assert f.get("CHECKSUMTYPE") == "SHA-256"
        in_filesec[urllib.parse.unquote(href.removeprefix("../"))] = f.get("CHECKSUM")
    assert in_filesec == {p: d["sha256"] for p, d in expected.items()}
    # PREMIS: every manifest algorithm, file by file, in premis.xml and in the METS techMDs
    assert premis_fixity(etree.parse(str(bag_500 / "metadata" / "premis.xml")).getroot()) == expected
    assert premis_fixity(mets) == expected


def test_every_flocat_resolves_to_an_existing_payload_file(small_bag: Path) -> None:
    mets = etree.parse(str(small_bag / "metadata" / "mets.xml")).getroot()
    hrefs = [loc.get(f"{{{NS['xlink']}}}href") or "" for loc in mets.iterfind("mets:fileSec//mets:FLocat", NS)]
    assert len(hrefs) == 9
    assert any("%20" in h and "%23" in h for h in hrefs)  # "release 000/z track #0.flac" is URI-escaped
    for h in hrefs:
        assert h.startswith("../data/")
        target = (small_bag / "metadata" / urllib.parse.unquote(h)).resolve()
        assert target.is_file(), h
        assert target.is_relative_to(small_bag / "data")
    # only payload files: no tag file in the fileSec
    assert not any("manifest" in h or "bag-info" in h or "metadata/" in h for h in hrefs)
    uses = [g.get("USE") for g in mets.iterfind("mets:fileSec/mets:fileGrp", NS)]
    assert uses == ["preservation master", "submission documentation"]


def test_metsrw_reads_every_file(bag_500: Path, metsrw_read: Any) -> None:
    doc: Any = metsrw_read(str(bag_500 / "metadata" / "mets.xml"))
    items = [e for e in doc.all_files() if e.type == "Item"]
    found = {urllib.parse.unquote(e.path.removeprefix("../")) for e in items}
    assert found == set(manifests(bag_500))
    sample = next(e for e in items if e.path.endswith(".flac"))
    assert sample.checksumtype == "SHA-256"
    assert len(sample.file_uuid) == 36
    assert sample.amdsecs and sample.amdsecs[0].subsections[0].subsection == "techMD"


def _rights_for(mets: etree._Element, path: str) -> etree._Element:
    href = "../" + urllib.parse.quote(path, safe="/")
    found = mets.xpath("mets:fileSec//mets:file[mets:FLocat/@xlink:href=$h]", namespaces=NS, h=href)
    assert len(found) == 1, path
    f = found[0]
    amd = mets.find(f"mets:amdSec[@ID='{f.get('ADMID')}']", NS)
    assert amd is not None
    st = amd.find("mets:rightsMD/mets:mdWrap/mets:xmlData/premis:rightsStatement", NS)
    assert st is not None
    return st


def test_track_rights_statement_names_holder_basis_and_acts(small_bag: Path, kit: Any) -> None:
    mets = etree.parse(str(small_bag / "metadata" / "mets.xml")).getroot()
    st = _rights_for(mets, "data/objects/release 000/z track #0.flac")
    assert st.findtext("premis:rightsBasis", namespaces=NS) == "License"
    lic = st.find("premis:licenseInformation", NS)
    assert lic is not None
    assert lic.findtext("premis:licenseTerms", namespaces=NS) == "CC BY-NC 4.0"
    assert "rights holder: Harbour Records Ltd" in [n.text for n in lic.iterfind("premis:licenseNote", NS)]
    assert lic.findtext("premis:licenseDocumentationIdentifier/premis:licenseDocumentationIdentifierValue",
                        namespaces=NS) == "data/submission/rights/harbour-licence.pdf"
    assert [a.text for a in st.iterfind("premis:rightsGranted/premis:act", NS)] == list(kit.LICENCE_A.permitted_acts)
    # the holder is an agent linked with the rightsholder role
    holder_id = st.findtext("premis:linkingAgentIdentifier/premis:linkingAgentIdentifierValue", namespaces=NS)
    agents = mets.xpath(".//premis:agent[premis:agentIdentifier/premis:agentIdentifierValue=$v]", namespaces=NS, v=holder_id)
    assert [a.findtext("premis:agentName", namespaces=NS) for a in agents] == ["Harbour Records Ltd"]


def test_two_licences_give_two_statements_each_linked_to_its_files(small_bag: Path, kit: Any) -> None:
    premis = etree.parse(str(small_bag / "metadata" / "premis.xml")).getroot()
    statements = premis.findall("premis:rights/premis:rightsStatement", NS)
    assert len(statements) == 2
    by_terms = {s.findtext("premis:licenseInformation/premis:licenseTerms", namespaces=NS): s for s in statements}
    assert set(by_terms) == {"CC BY-NC 4.0", "CC BY 4.0"}
    objects = {o.findtext("premis:objectIdentifier[premis:objectIdentifierType='UUID']/premis:objectIdentifierValue", namespaces=NS):
               o.findtext("premis:objectIdentifier[premis:objectIdentifierType='local']/premis:objectIdentifierValue", namespaces=NS)
               for o in premis.iterfind("premis:object", NS)}
    linked = {terms: {objects[v.text] for v in s.iterfind("premis:linkingObjectIdentifier/premis:linkingObjectIdentifierValue", NS)}
              for terms, s in by_terms.items()}
    assert linked["CC BY-NC 4.0"] == {"Album 0", *(f"data/objects/release 000/{c} track #{i}.flac" for c, i in (("z", 0), ("y", 1), ("x", 2)))}
    assert linked["CC BY 4.0"] == {"Album 1", *(f"data/objects/release 001/{c} track #{i}.flac" for c, i in (("z", 3), ("y", 4), ("x", 5)))}
    embargo = by_terms["CC BY 4.0"].find("premis:rightsGranted/premis:termOfRestriction/premis:endDate", NS)
    assert embargo is not None and embargo.text == kit.LICENCE_B.restriction_until


def test_logical_structmap_orders_by_disc_then_track(small_bag: Path) -> None:
    mets = etree.parse(str(small_bag / "metadata" / "mets.xml")).getroot()
    releases = mets.findall("mets:structMap[@TYPE='logical']/mets:div[@TYPE='collection']/mets:div[@TYPE='release']", NS)
    assert [r.get("LABEL") for r in releases] == ["Album 0", "Album 1"]
    order = [(d.get("ORDER"), t.get("ORDER"), t.get("LABEL"))
             for d in releases[0].iterfind("mets:div[@TYPE='disc']", NS) for t in d.iterfind("mets:div[@TYPE='track']", NS)]
    # files are named z, y, x so that path order is the reverse of disc/track order
    assert order == [("1", "1", "Song 0"), ("1", "2", "Song 1"), ("2", "1", "Song 2")]
    for t in mets.iterfind(".//mets:div[@TYPE='track']", NS):
        assert t.find("mets:fptr", NS) is not None


def test_physical_structmap_is_the_folder_tree(small_bag: Path) -> None:
    mets = etree.parse(str(small_bag / "metadata" / "mets.xml")).getroot()
    phys = mets.find("mets:structMap[@TYPE='physical']", NS)
    assert phys is not None
    for div in phys.iter("{http://www.loc.gov/METS/}div"):
        assert div.get("TYPE") in ("Directory", "Item")
    paths = []

    def walk(div: etree._Element, prefix: str) -> None:
        for child in div.iterfind("mets:div", NS):
            if child.get("TYPE") == "Directory":
                walk(child, f"{prefix}{child.get('LABEL')}/")
            else:
                paths.append(prefix + (child.get("LABEL") or ""))
    walk(phys.find("mets:div", NS), "")  # type: ignore[arg-type]
    assert sorted(paths) == sorted(manifests(small_bag))


def test_control_characters_are_escaped_and_recorded(small_bag: Path, xsd: Callable[[str], etree.XMLSchema]) -> None:
    assert_valid(small_bag, xsd)
    mets = etree.parse(str(small_bag / "metadata" / "mets.xml")).getroot()
    titles = [t.text for t in mets.iter("{http://www.loc.gov/mods/v3}title")]
    assert "Broken[U+0007]tag[U+0000] title[U+001B]" in titles
    ingestion = [e for e in mets.iter("{http://www.loc.gov/premis/v3}event")
                 if e.findtext("premis:eventType", namespaces=NS) == "ingestion"]
    notes = [n.text or "" for n in ingestion[0].iter("{http://www.loc.gov/premis/v3}eventOutcomeDetailNote")]
    assert any("1 metadata value(s) held characters XML 1.0 forbids" in n and "title: Broken[U+0007]" in n for n in notes)


def test_header_events_agents_and_technical_metadata(small_bag: Path) -> None:
    mets = etree.parse(str(small_bag / "metadata" / "mets.xml")).getroot()
    hdr = mets.find("mets:metsHdr", NS)
    assert hdr is not None and hdr.get("CREATEDATE", "").endswith("Z")
    assert [a.get("TYPE") for a in hdr.iterfind("mets:agent", NS)] == ["ORGANIZATION", "OTHER", "INDIVIDUAL"]
    premis = etree.parse(str(small_bag / "metadata" / "premis.xml")).getroot()
    types: dict[str, list[str]] = {}
    for ev in premis.iterfind("premis:event", NS):
        types.setdefault(ev.findtext("premis:eventType", namespaces=NS) or "", []).append(
            ev.findtext("premis:eventOutcomeInformation/premis:eventOutcome", namespaces=NS) or "")
        assert ev.find("premis:linkingAgentIdentifier", NS) is not None
        assert ev.find("premis:linkingObjectIdentifier", NS) is not None
    assert types["ingestion"] == ["success"]
    assert types["information package creation"] == ["success"]
    assert sorted(types["validation"]) == ["pass"] * 4 + ["unverifiable"] * 2
    assert types["format identification"] == ["positive"] * 6
    assert len(types["message digest calculation"]) == 9
    # producer checksums (6) and the re-read of the written copy (1)
    assert len(types["fixity check"]) == 7
    details = premis.xpath("premis:event[premis:eventType='format identification']/premis:eventDetailInformation/premis:eventDetail/text()", namespaces=NS)
    assert set(details) == {"program=fido; version=1.6.1; signatures=PRONOM v109"}
    names = {a.findtext("premis:agentName", namespaces=NS): a.findtext("premis:agentType", namespaces=NS)
             for a in premis.iterfind("premis:agent", NS)}
    assert names["preserve"] == "software" and names["Harbour Sound Archive"] == "organization"
    assert names["Ada Archivist"] == "person" and names["fido"] == "software"
    [flac] = premis.xpath("premis:object[premis:objectIdentifier/premis:objectIdentifierValue='data/objects/release 000/z track #0.flac']", namespaces=NS)
    assert flac.findtext(".//premis:formatRegistryKey", namespaces=NS) == "fmt/279"
    assert flac.findtext(".//premis:originalName", namespaces=NS) == "release 000/z track #0.flac"
    assert flac.findtext(".//premis:creatingApplicationName", namespaces=NS) == "reference libFLAC 1.4.3"
    # the technical description is LoC audioMD (kHz), in the object's extension in premis.xml
    assert flac.findtext(".//audiomd:AUDIOMD/audiomd:fileData/audiomd:samplingFrequency", namespaces=NS) == "44.1"
    assert flac.findtext(".//premis:relationship/premis:relationshipSubType", namespaces=NS) == "is part of"


def test_no_written_copy_fixity_event_without_verification(tmp_path: Path, kit: Any) -> None:
    col, payload = kit.make_collection(tmp_path / "src", 2)
    bag = kit.package(tmp_path / "bag", col, payload, verify=False, operator=None)
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    fixity = [e for e in premis.iterfind("premis:event", NS) if e.findtext("premis:eventType", namespaces=NS) == "fixity check"]
    # only the producer-checksum comparisons remain; no claim of a re-read that did not happen
    assert len(fixity) == 2
    assert all("producer" in (e.findtext(".//premis:eventDetail", namespaces=NS) or "") for e in fixity)
    assert premis.find("premis:agent[premis:agentType='person']", NS) is None


BASES = [
    ({"basis": "copyright", "copyright_status": "public domain"}, "Copyright", "premis:copyrightInformation/premis:copyrightStatus", "publicdomain"),
    ({"basis": "copyright", "copyright_status": "copyrighted", "holder": "Someone"}, "Copyright", "premis:copyrightInformation/premis:copyrightStatus", "copyrighted"),
    ({"basis": "statute", "license": "17 U.S.C. 108"}, "Statute", "premis:statuteInformation/premis:statuteCitation", "17 U.S.C. 108"),
    ({"basis": "donor", "agreement": "data/submission/rights/harbour-licence.pdf"}, "Other", "premis:otherRightsInformation/premis:otherRightsBasis", "Donor"),
    ({"basis": "policy"}, "Other", "premis:otherRightsInformation/premis:otherRightsBasis", "Policy"),
]


@pytest.mark.parametrize(("fields", "basis", "xpath", "value"), BASES, ids=[b[0]["basis"] + str(i) for i, b in enumerate(BASES)])
def test_every_rights_basis_maps_to_valid_premis(tmp_path: Path, kit: Any, xsd: Callable[[str], etree.XMLSchema],
                                                 fields: dict[str, str], basis: str, xpath: str, value: str) -> None:
    import dataclasses

    from preserve.model import Rights

    col, payload = kit.make_collection(tmp_path / "src", 2)
    rights = Rights(permitted_acts=("replicate",), **fields)  # type: ignore[arg-type]
    col.tracks = [dataclasses.replace(t, rights=rights) for t in col.tracks]
    col.default_rights = rights  # the documents are covered too
    bag = kit.package(tmp_path / "bag", col, payload)
    assert_valid(bag, xsd)
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    [st] = premis.findall("premis:rights/premis:rightsStatement", NS)
    assert st.findtext("premis:rightsBasis", namespaces=NS) == basis
    assert st.findtext(xpath, namespaces=NS) == value
    # one statement covering the release and all five files (two tracks, three documents)
    assert len(st.findall("premis:linkingObjectIdentifier", NS)) == 1 + 5


def test_sha256_is_computed_for_mets_when_not_a_manifest_algorithm(tmp_path: Path, kit: Any,
                                                                   xsd: Callable[[str], etree.XMLSchema]) -> None:
    import hashlib

    col, payload = kit.make_collection(tmp_path / "src", 2)
    bag = kit.package(tmp_path / "bag", col, payload, algorithms=("md5",))
    assert_valid(bag, xsd)
    mets = etree.parse(str(bag / "metadata" / "mets.xml")).getroot()
    for f in mets.iterfind("mets:fileSec//mets:file", NS):
        href = f.find("mets:FLocat", NS).get(f"{{{NS['xlink']}}}href")  # type: ignore[union-attr]
        data = (bag / "metadata" / urllib.parse.unquote(href)).read_bytes()
        assert f.get("CHECKSUM") == hashlib.sha256(data).hexdigest()
    assert premis_fixity(mets) == manifests(bag)  # PREMIS fixity: exactly the manifest's md5


@settings(max_examples=12, deadline=None)
@given(title=st.text(max_size=40), artist=st.text(max_size=20),
       name=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\%\x00"),
                    min_size=1, max_size=20).filter(lambda s: s.strip(" .") == s and s not in (".", "..")))
def test_any_metadata_and_file_name_give_valid_documents(kit: Any, xsd: Callable[[str], etree.XMLSchema],
                                                         title: str, artist: str, name: str) -> None:
    import dataclasses
    import tempfile

    from preserve.bag.writer import PayloadEntry
    from preserve.sidecars.xmltext import XmlText

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        col, payload = kit.make_collection(root / "src", 1)
        src = root / "src" / f"{name}.flac"
        src.write_bytes(b"audio\n")
        col.tracks = [dataclasses.replace(col.tracks[0], source_path=src.name, bag_path=f"data/objects/{src.name}",
                                          title=title or None, artists=(artist,) if artist else ())]
        payload = [PayloadEntry(src, f"objects/{src.name}"), *payload[1:]]
        bag = kit.package(root / "bag", col, payload)
        assert_valid(bag, xsd)
        mets = etree.parse(str(bag / "metadata" / "mets.xml")).getroot()
        expected = XmlText()(title or src.name)
        track_titles = [d.get("LABEL") for d in mets.iter("{http://www.loc.gov/METS/}div") if d.get("TYPE") == "track"]
        assert track_titles == [expected]
        assert premis_fixity(mets) == manifests(bag)
        assert check_sidecars(bag, schemas=SHARED) == []


def _mods(mets: etree._Element, dmd_id: str) -> etree._Element:
    found = mets.find(f"mets:dmdSec[@ID='{dmd_id}']/mets:mdWrap/mets:xmlData/mods:mods", NS)
    assert found is not None, dmd_id
    return found


def test_track_and_release_mods_carry_identifiers_names_language_and_numbers(small_bag: Path) -> None:
    mets = etree.parse(str(small_bag / "metadata" / "mets.xml")).getroot()
    [div] = mets.xpath(".//mets:div[@TYPE='track'][mets:fptr/@FILEID=//mets:file[mets:FLocat/@xlink:href=$h]/@ID]",
                       namespaces=NS, h="../data/objects/release%20000/x%20track%20%232.flac")
    track = _mods(mets, div.get("DMDID", ""))
    assert track.findtext("mods:titleInfo/mods:title", namespaces=NS) == "Song 2"
    assert track.findtext("mods:identifier[@type='isrc']", namespaces=NS) == "GBAAA9900002"
    names = [(n.findtext("mods:namePart", namespaces=NS), n.findtext("mods:role/mods:roleTerm[@type='code']", namespaces=NS),
              n.findtext("mods:role/mods:roleTerm[@type='text']", namespaces=NS)) for n in track.iterfind("mods:name", NS)]
    assert names == [("The Harbour Band", "prf", "performer"), ("A. Writer", "cmp", "composer")]
    lang = track.find("mods:language/mods:languageTerm", NS)
    assert lang is not None and (lang.text, lang.get("type"), lang.get("authority")) == ("eng", "code", "iso639-2b")
    assert track.findtext("mods:genre", namespaces=NS) == "Folk"
    assert track.findtext("mods:originInfo/mods:publisher", namespaces=NS) == "Harbour Records"
    assert track.findtext("mods:originInfo/mods:dateIssued[@encoding='w3cdtf']", namespaces=NS) == "1999-05-01"
    # track 2 of the release is disc 2, track 1 (two discs per release)
    assert track.findtext("mods:part/mods:detail[@type='disc']/mods:number", namespaces=NS) == "2"
    assert track.findtext("mods:part/mods:detail[@type='track']/mods:number", namespaces=NS) == "1"
    host = track.find("mods:relatedItem[@type='host']", NS)
    assert host is not None
    assert host.findtext("mods:titleInfo/mods:title", namespaces=NS) == "Album 0"
    assert host.findtext("mods:identifier[@type='upc']", namespaces=NS) == "000000000000"
    assert host.findtext("mods:identifier[@type='issue number']", namespaces=NS) == "HR-0"
    release = _mods(mets, "dmdSec_release_1")
    assert release.findtext("mods:titleInfo/mods:title", namespaces=NS) == "Album 0"
    assert release.findtext("mods:identifier[@type='upc']", namespaces=NS) == "000000000000"
    assert release.findtext("mods:identifier[@type='issue number']", namespaces=NS) == "HR-0"
    assert release.findtext("mods:name/mods:role/mods:roleTerm[@type='code']", namespaces=NS) == "prf"
    assert release.find("mods:identifier[@type='isrc']", NS) is None  # ISRCs are the tracks'


def _ingestion_notes(root: etree._Element) -> list[str]:
    [ev] = [e for e in root.iter("{http://www.loc.gov/premis/v3}event") if e.findtext("premis:eventType", namespaces=NS) == "ingestion"]
    return [n.text or "" for n in ev.iter("{http://www.loc.gov/premis/v3}eventOutcomeDetailNote")]


def test_bag_name_with_a_control_character(tmp_path: Path, kit: Any, xsd: Callable[[str], etree.XMLSchema]) -> None:
    col, payload = kit.make_collection(tmp_path / "src", 2)
    bag = kit.package(tmp_path / "bag\x07bell", col, payload)
    assert_valid(bag, xsd)
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    [creation] = premis.xpath("premis:event[premis:eventType='information package creation']", namespaces=NS)
    assert creation.findtext(".//premis:eventOutcomeDetailNote", namespaces=NS) == "bag bag[U+0007]bell"
    assert any("bag name: bag[U+0007]bell" in n for n in _ingestion_notes(premis))
    assert check_sidecars(bag, schemas=SHARED) == []


def test_both_documents_report_the_same_escaped_characters(tmp_path: Path, kit: Any,
                                                          xsd: Callable[[str], etree.XMLSchema]) -> None:
    """Operator, rights holder and licence strings are written after the ingestion event in one
    document and before it in the other; the note is the same in both."""
    import dataclasses

    col, payload = kit.make_collection(tmp_path / "src", 2)
    rights = dataclasses.replace(kit.LICENCE_A, holder="Harbour\x1b Records Ltd", license="CC\x00BY")
    col.tracks = [dataclasses.replace(t, rights=rights) for t in col.tracks]
    bag = kit.package(tmp_path / "bag", col, payload, operator="Ada\x08 Archivist")
    assert_valid(bag, xsd)
    mets_notes = _ingestion_notes(etree.parse(str(bag / "metadata" / "mets.xml")).getroot())
    premis_notes = _ingestion_notes(etree.parse(str(bag / "metadata" / "premis.xml")).getroot())
    assert mets_notes == premis_notes
    [summary] = [n for n in premis_notes if "characters XML 1.0 forbids" in n]
    for expected in ("operator: Ada[U+0008] Archivist", "rights statement 1: holder: Harbour[U+001B] Records Ltd",
                     "rights statement 1: license: CC[U+0000]BY", "agent operator: name: Ada[U+0008] Archivist",
                     "agent holder:Harbour[U+001B] Records Ltd: name: Harbour[U+001B] Records Ltd"):
        assert expected in summary
    assert summary.startswith("5 metadata value(s)")


def test_rights_holders_are_organizations_or_persons(tmp_path: Path, kit: Any) -> None:
    import dataclasses

    col, payload = kit.make_collection(tmp_path / "src", 4, tracks_per_release=2)
    person = dataclasses.replace(kit.LICENCE_B, holder="Jo Example")
    col.tracks = [dataclasses.replace(t, rights=kit.LICENCE_A if i < 2 else person) for i, t in enumerate(col.tracks)]
    bag = kit.package(tmp_path / "bag", col, payload)
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    types = {a.findtext("premis:agentName", namespaces=NS): a.findtext("premis:agentType", namespaces=NS)
             for a in premis.iterfind("premis:agent", NS)}
    assert types["Harbour Records Ltd"] == "organization"
    assert types["Jo Example"] == "person"
    assert "rightsholder" not in types.values()
    roles = premis.xpath("premis:rights/premis:rightsStatement/premis:linkingAgentIdentifier/premis:linkingAgentRole/text()",
                         namespaces=NS)
    assert roles == ["rightsholder", "rightsholder"]


def _granted(st: etree._Element) -> list[tuple[str, str, str | None]]:
    return [(g.findtext("premis:act", namespaces=NS) or "", g.findtext("premis:restriction", namespaces=NS) or "",
             g.findtext("premis:termOfRestriction/premis:endDate", namespaces=NS))
            for g in st.iterfind("premis:rightsGranted", NS)]


def test_an_embargo_restricts_dissemination_only(tmp_path: Path, kit: Any, xsd: Callable[[str], etree.XMLSchema]) -> None:
    import dataclasses

    col, payload = kit.make_collection(tmp_path / "src", 4, tracks_per_release=2)
    open_later = dataclasses.replace(kit.LICENCE_A, restriction_until="2031-06-30")  # replicate, migrate, disseminate
    col.tracks = [dataclasses.replace(t, rights=open_later if i < 2 else kit.LICENCE_B) for i, t in enumerate(col.tracks)]
    bag = kit.package(tmp_path / "bag", col, payload)
    assert_valid(bag, xsd)
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    by_terms = {s.findtext("premis:licenseInformation/premis:licenseTerms", namespaces=NS): s
                for s in premis.iterfind("premis:rights/premis:rightsStatement", NS)}
    # keeping and migrating copies go on during the embargo; only dissemination waits for it
    assert _granted(by_terms["CC BY-NC 4.0"]) == [("replicate", "none", None), ("migrate", "none", None),
                                                  ("disseminate", "embargo", "2031-06-30")]
    # dissemination not granted at all: the embargo date is kept as a disallowed act
    assert _granted(by_terms["CC BY 4.0"]) == [("replicate", "none", None), ("migrate", "none", None),
                                               ("disseminate", "disallow", "2030-01-01")]


@pytest.mark.parametrize("basis", ["license", "statute", "donor", "policy"])
def test_copyright_status_is_kept_whatever_the_basis(tmp_path: Path, kit: Any, xsd: Callable[[str], etree.XMLSchema],
                                                     basis: str) -> None:
    import dataclasses

    from preserve.model import Rights

    col, payload = kit.make_collection(tmp_path / "src", 2)
    rights = Rights(basis=basis, copyright_status="public domain", license="terms", permitted_acts=("replicate",))
    col.tracks = [dataclasses.replace(t, rights=rights) for t in col.tracks]
    bag = kit.package(tmp_path / "bag", col, payload)
    assert_valid(bag, xsd)
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    [st] = premis.findall("premis:rights/premis:rightsStatement", NS)
    assert st.findtext("premis:copyrightInformation/premis:copyrightStatus", namespaces=NS) == "publicdomain"
    assert st.findtext("premis:rightsBasis", namespaces=NS) != "Copyright"

"""Broadcast WAVE kept whole: every bext field (version 2, loudness included), the iXML and axml
documents, their meaning in MODS and PREMIS, and the FADGI guideline warnings.

The fixture is written here byte by byte from the EBU Tech 3285 v2 layout, independently of the
reader under test: what the reader returns is checked against what the layout put where.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import bagit
from click.testing import CliRunner
from lxml import etree

from preserve.cli.main import cli as preserve_cli
from preserve.cli.package_cmd import package
from preserve.errors import EXIT_OK
from preserve.intake import check_collection
from preserve.intake.audio import analyse_audio
from preserve.intake.fadgi import fadgi_warnings
from preserve.intake.identify import FormatIdentifier
from preserve.intake.testaudio import Tone, pcm_bytes
from preserve.package import package_collection
from preserve.sidecars.check import check_sidecars

from .conftest import Collection, invoke

NS = {"premis": "http://www.loc.gov/premis/v3", "mods": "http://www.loc.gov/mods/v3", "mets": "http://www.loc.gov/METS/",
      "audio": "urn:preserve:audio-technical:1"}
TONE = Tone(22050, 16, 1, 0.25)
CODING_HISTORY = ("A=ANALOGUE,M=mono,T=Studer A807; SN1234; 7.5 ips; open reel\r\n"
                  "A=PCM,F=96000,W=24,M=mono,T=Prism AD-2; SN5678\r\n"
                  "A=PCM,F=22050,W=16,M=mono,T=Sample rate converted for access\r\n")
FULL = {
    "Description": "Interview with Grandmother, side A",
    "Originator": "Example Sound Archive",
    "OriginatorReference": "GBEXA000000012345101530ABCDEFGHI",
    "OriginationDate": "2024-05-01",
    "OriginationTime": "10:15:30",
}
UMID = bytes(range(1, 65))                       # an extended UMID: all 64 bytes in use
LOUDNESS = (-2300, 1250, -150, -1800, -2000)     # LUFS, LU, dBTP, LUFS, LUFS, in hundredths
IXML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<BWFXML><IXML_VERSION>2.10</IXML_VERSION>'
        b"<PROJECT>Example family tapes</PROJECT><NOTE>Side A &amp; B</NOTE></BWFXML>\n")
AXML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ebuCoreMain xmlns="urn:ebu:metadata-schema:ebuCore_2014" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><coreMetadata><dc:title>Side A</dc:title></coreMetadata>'
        b"</ebuCoreMain>\n")


def _chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii").ljust(size, b"\x00")


def bext_v2(fields: dict[str, str], *, version: int = 2, loudness: tuple[int, ...] = LOUDNESS,
            time_reference: int = 5_292_000_000, umid: bytes = UMID, coding_history: str = CODING_HISTORY) -> bytes:
    """A bext chunk laid out field by field as EBU Tech 3285 v2 gives it."""
    body = (_ascii(fields.get("Description", ""), 256) + _ascii(fields.get("Originator", ""), 32)
            + _ascii(fields.get("OriginatorReference", ""), 32) + _ascii(fields.get("OriginationDate", ""), 10)
            + _ascii(fields.get("OriginationTime", ""), 8)
            + struct.pack("<II", time_reference & 0xFFFFFFFF, time_reference >> 32)
            + struct.pack("<H", version) + umid.ljust(64, b"\x00")
            + struct.pack("<5h", *loudness) + b"\x00" * 180 + coding_history.encode("ascii"))
    assert len(body) == 602 + len(coding_history)
    return _chunk(b"bext", body)


def write_bwf(path: Path, bext: bytes, ixml: bytes | None = IXML, axml: bytes | None = AXML) -> Path:
    block = TONE.channels * TONE.bit_depth // 8
    fmt = struct.pack("<HHIIHH", 1, TONE.channels, TONE.sample_rate, TONE.sample_rate * block, block, TONE.bit_depth)
    chunks = [_chunk(b"fmt ", fmt), bext]
    if ixml is not None:
        chunks.append(_chunk(b"iXML", ixml))
    if axml is not None:
        chunks.append(_chunk(b"axml", axml))
    body = b"WAVE" + b"".join(chunks) + _chunk(b"data", pcm_bytes(TONE))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _analyse(path: Path) -> dict[str, str]:
    return analyse_audio(str(path), path.name, FormatIdentifier()).technical.bext


# ----------------------------------------------------------------------------------- the reader

def test_every_bext_field_of_a_version_2_chunk_is_kept(tmp_path: Path) -> None:
    path = write_bwf(tmp_path / "full.wav", bext_v2(FULL))
    analysis = analyse_audio(str(path), "full.wav", FormatIdentifier())
    bext = analysis.technical.bext
    assert bext == {
        **FULL, "TimeReference": "5292000000", "Version": "2", "UMID": UMID.hex(),
        "LoudnessValue": "-23.00", "LoudnessRange": "12.50", "MaxTruePeakLevel": "-1.50",
        "MaxMomentaryLoudness": "-18.00", "MaxShortTermLoudness": "-20.00",
        "CodingHistory": CODING_HISTORY.replace("\r\n", "\n").strip(),
    }
    # the documents are kept exactly, byte for byte
    assert {k: base64.b64decode(v) for k, v in analysis.technical.documents.items()} == {"iXML": IXML, "axml": AXML}


def test_loudness_is_left_out_where_the_chunk_has_none(tmp_path: Path) -> None:
    # version 1 has no loudness fields; a version 2 writer marks an unmeasured one 0x7FFF
    v1 = _analyse(write_bwf(tmp_path / "v1.wav", bext_v2(FULL, version=1, loudness=(0, 0, 0, 0, 0))))
    assert v1["Version"] == "1" and not any(k.startswith(("Loudness", "Max")) for k in v1)
    unset = _analyse(write_bwf(tmp_path / "v2.wav", bext_v2(FULL, loudness=(-2300, 0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF))))
    assert [k for k in unset if k.startswith(("Loudness", "Max"))] == ["LoudnessValue"]


# ------------------------------------------------------------------------------ FADGI warnings

def test_fadgi_conforming_fields_give_no_warning() -> None:
    assert fadgi_warnings("a.wav", {**FULL, "CodingHistory": CODING_HISTORY}) == []


def test_each_field_off_the_fadgi_guidelines_is_warned_of_by_file_and_field() -> None:
    bext = {"OriginationDate": "2024:05:01", "OriginationTime": "10-15-30", "OriginatorReference": "tape 12",
            "CodingHistory": "A=PCM,F=48000,W=24\nanalogue transfer on the old deck\nF=48000,A=PCM"}
    warnings = fadgi_warnings("tapes/a.wav", bext)
    assert [w.split(" ", 3)[:3] for w in warnings] == [
        ["tapes/a.wav:", "bext", "OriginationDate"], ["tapes/a.wav:", "bext", "OriginationTime"],
        ["tapes/a.wav:", "bext", "CodingHistory"], ["tapes/a.wav:", "bext", "CodingHistory"],
        ["tapes/a.wav:", "bext", "OriginatorReference"]]
    assert "line 2 'analogue transfer on the old deck'" in warnings[2]
    assert "line 3 'F=48000,A=PCM'" in warnings[3]
    assert fadgi_warnings("b.wav", {"OriginationDate": "2024-02-30"})[0].startswith(
        "b.wav: bext OriginationDate '2024-02-30' is not yyyy-mm-dd")


def _bwf_collection(root: Path, bext: bytes, ixml: bytes | None = IXML) -> Collection:
    collection = Collection(root)
    write_bwf(root / "one.wav", bext, ixml=ixml)
    collection.header = "file,title,artist"
    collection.rows = ["one.wav,Side A,Sam Example", "side b/two.wav,Two,Ben", "three.flac,Three,Cy"]
    collection.write_sheet()
    return collection


def test_a_file_off_the_guidelines_is_packaged_with_warnings(tmp_path: Path) -> None:
    fields = {**FULL, "OriginationDate": "2024/05/01", "OriginatorReference": "tape 12"}
    collection = _bwf_collection(tmp_path / "coll", bext_v2(fields, coding_history="transferred on the old deck"))
    report = check_collection(collection.root)
    assert report.problems == []
    fadgi = [w for w in report.warnings if "FADGI" in w]
    assert [w.split(" ", 3)[2] for w in fadgi] == ["OriginationDate", "CodingHistory", "OriginatorReference"]
    out = invoke(package, "--no-profile", collection.root, tmp_path / "bag")
    assert out.code == EXIT_OK, out.stdout + out.stderr
    # the date that is not yyyy-mm-dd is never used as a capture date
    premis = etree.parse(str(tmp_path / "bag" / "metadata" / "premis.xml")).getroot()
    assert premis.find(".//premis:dateCreatedByApplication", NS) is None
    [event] = premis.xpath("premis:event[premis:eventType='capture']", namespaces=NS)
    assert event.findtext("premis:eventDateTime", namespaces=NS) == "unknown"


# ------------------------------------------------------------------- meaning in MODS and PREMIS

def test_the_full_bwf_fixture_packages_into_valid_sidecars_that_say_what_it_means(tmp_path: Path, schemas_dir: Path) -> None:
    collection = _bwf_collection(tmp_path / "coll", bext_v2(FULL))
    bag = tmp_path / "bag"
    package_collection(collection.root, bag, profile=None)
    assert [f for f in check_sidecars(bag, schemas=schemas_dir) if f.severity == "error"] == []
    bagit.Bag(str(bag)).validate()
    mets = etree.parse(str(bag / "metadata" / "mets.xml")).getroot()
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    [obj] = premis.xpath("premis:object[premis:originalName='one.wav']", namespaces=NS)
    # every bext field is in the audio extension, none dropped
    kept = {el.get("name"): el.text for el in obj.iterfind(".//audio:bext", NS)}
    assert set(kept) == {*FULL, "TimeReference", "Version", "UMID", "LoudnessValue", "LoudnessRange",
                         "MaxTruePeakLevel", "MaxMomentaryLoudness", "MaxShortTermLoudness", "CodingHistory"}
    # OriginationDate/Time -> the object's dateCreatedByApplication
    assert obj.findtext(".//premis:creatingApplication/premis:dateCreatedByApplication", namespaces=NS) == "2024-05-01T10:15:30"
    # the iXML and axml documents, embedded as XML (they parse safely)
    docs = {el.get("chunk"): el for el in obj.iterfind(".//audio:embeddedDocument", NS)}
    assert {k: v.get("encoding") for k, v in docs.items()} == {"iXML": "xml", "axml": "xml"}
    assert docs["iXML"].findtext("BWFXML/PROJECT") == "Example family tapes"
    assert docs["axml"].findtext(".//{http://purl.org/dc/elements/1.1/}title") == "Side A"
    # CodingHistory -> a digitization event (the chain starts from an analogue tape), one line per stage
    [event] = premis.xpath("premis:event[premis:eventType='digitization']", namespaces=NS)
    assert event.findtext("premis:eventDetailInformation/premis:eventDetail", namespaces=NS).splitlines() == \
        CODING_HISTORY.strip().split("\r\n")
    assert event.findtext("premis:eventDateTime", namespaces=NS) == "2024-05-01T10:15:30"
    assert event.findtext("premis:linkingObjectIdentifier/premis:linkingObjectIdentifierValue", namespaces=NS) == \
        obj.findtext("premis:objectIdentifier[premis:objectIdentifierType='UUID']/premis:objectIdentifierValue", namespaces=NS)
    # Originator -> the agent that carried out the transfer
    [agent_link] = event.xpath("premis:linkingAgentIdentifier[premis:linkingAgentRole='implementer']", namespaces=NS)
    agent_uuid = agent_link.findtext("premis:linkingAgentIdentifierValue", namespaces=NS)
    [agent] = premis.xpath("premis:agent[premis:agentIdentifier/premis:agentIdentifierValue=$u]", namespaces=NS, u=agent_uuid)
    assert (agent.findtext("premis:agentName", namespaces=NS), agent.findtext("premis:agentType", namespaces=NS)) == \
        ("Example Sound Archive", "organization")
    # OriginationDate/Time -> MODS dateCaptured of this unpublished recording
    [div] = mets.xpath(".//mets:div[@TYPE='track'][@LABEL='Side A']", namespaces=NS)
    mods = mets.find(f"mets:dmdSec[@ID='{div.get('DMDID')}']/mets:mdWrap/mets:xmlData/mods:mods", NS)
    assert mods is not None
    [captured] = mods.iterfind("mods:originInfo[@eventType='production']/mods:dateCaptured", NS)
    assert (captured.text, captured.get("encoding"), captured.get("keyDate")) == ("2024-05-01T10:15:30", "edtf", "yes")
    assert mods.find("mods:originInfo/mods:dateIssued", NS) is None

    shown = CliRunner().invoke(preserve_cli, ["show", str(bag)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    i = next(n for n, line in enumerate(lines) if "Side A" in line and "[fmt/" in line)
    details = lines[i + 1:i + 30]
    assert "              technical: PCM, 22050 Hz, 16-bit, 1 channel(s)" in details
    assert "              dates: captured 2024-05-01T10:15:30" in details
    assert "              names: Sam Example (performer)" in details
    assert "              bext LoudnessValue: -23.00" in details
    assert "              bext CodingHistory: A=ANALOGUE,M=mono,T=Studer A807; SN1234; 7.5 ips; open reel" in details
    assert "                A=PCM,F=96000,W=24,M=mono,T=Prism AD-2; SN5678" in details
    assert "              embedded XML: iXML, axml" in details


def test_an_ixml_document_that_is_not_safe_xml_is_kept_as_base64(tmp_path: Path, schemas_dir: Path) -> None:
    unsafe = b'<?xml version="1.0"?>\n<!DOCTYPE BWFXML [<!ENTITY e "x">]>\n<BWFXML><NOTE>&e;</NOTE></BWFXML>\n'
    collection = _bwf_collection(tmp_path / "coll", bext_v2(FULL), ixml=unsafe)
    bag = tmp_path / "bag"
    package_collection(collection.root, bag, profile=None)
    assert [f for f in check_sidecars(bag, schemas=schemas_dir) if f.severity == "error"] == []
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    [doc] = premis.iterfind(".//audio:embeddedDocument[@chunk='iXML']", NS)
    assert doc.get("encoding") == "base64"
    assert base64.b64decode(doc.text or "") == unsafe

"""What a stored bag's PREMIS says about each payload file, read back for a metadata-only correction.

Intake learns a file's format, its technical metadata, its embedded-checksum verification and
the producer's checksums by reading the audio. All of that is in the bag's standalone
``metadata/premis.xml`` (the file objects, with audioMD and the project's audio extension, and
the per-file events). Reading it back lets the sidecars be written again from a new sheet
without opening a single audio file.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from lxml import etree

from preserve.model import AudioTechnical, EssenceCheck, FormatIdentification, ProducerChecksum
from preserve.sidecars.audiomd import AUDIOMD_NS, FORMAT_NAMES, duration_seconds
from preserve.sidecars.check import _bag_path as premis_bag_path
from preserve.sidecars.ext import AUDIO_NS
from preserve.sidecars.plan import DIGEST_NAMES
from preserve.sidecars.premis import PREMIS_NS
from preserve.xmlsafe import parse_untrusted_file

_P, _A, _X = f"{{{PREMIS_NS}}}", f"{{{AUDIOMD_NS}}}", f"{{{AUDIO_NS}}}"
_CONTAINERS = {v: k for k, v in FORMAT_NAMES.items()}
_ALGORITHMS = {v: k for k, v in DIGEST_NAMES.items()}
_FORMAT_NOTE = re.compile(r"identified by (\w+)(?: \((\S+) (\S+)\))?")
_SIGNATURES = re.compile(r"signatures=(.+)$")
_PRODUCER = re.compile(r"(\S+) (\S+) from (.+)")


@dataclass
class StoredFile:
    """One payload file as the stored PREMIS describes it."""

    path: str
    original_name: str = ""
    format: FormatIdentification = field(default_factory=FormatIdentification)
    technical: AudioTechnical = field(default_factory=AudioTechnical)
    essence: EssenceCheck = field(default_factory=lambda: EssenceCheck("not applicable"))
    producer_checksums: list[ProducerChecksum] = field(default_factory=list)
    #: (type, value) identifiers a delivery gave the file (DDEX resource references)
    source_identifiers: tuple[tuple[str, str], ...] = ()


def _text(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    value = el.findtext(path)
    return value.strip() if value is not None and value.strip() else None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _technical(chars: etree._Element) -> AudioTechnical:
    amd = chars.find(f"{_P}objectCharacteristicsExtension/{_A}AUDIOMD")
    ext = chars.find(f"{_P}objectCharacteristicsExtension/{_X}audioTechnical")
    docs = chars.find(f"{_P}objectCharacteristicsExtension/{_X}embeddedDocuments")
    app = _text(chars, f"{_P}creatingApplication/{_P}creatingApplicationName")
    fd, info = f"{_A}fileData/{_A}", f"{_A}audioInfo/{_A}"
    codec = _text(amd, f"{fd}compression/{_A}codecName")
    if codec is None and _text(amd, f"{fd}audioDataEncoding") == "PCM":
        codec = "PCM"
    rate = _text(amd, f"{fd}samplingFrequency")
    kbps = _text(amd, f"{fd}dataRate")
    frames = _int(_text(amd, f"{fd}numSampleFrames")) or _int(_text(ext, f"{_X}sampleFrames"))
    order = {"0": "little-endian", "1": "big-endian"}.get(_text(amd, f"{fd}byteOrder") or "")
    bext = {el.get("name") or "": el.text or "" for el in ext.iter(f"{_X}bext")} if ext is not None else {}
    riff = {el.get("id") or "": el.text or "" for el in ext.iter(f"{_X}riffInfo")} if ext is not None else {}
    documents: dict[str, str] = {}
    for doc in docs.iter(f"{_X}embeddedDocument") if docs is not None else []:
        if doc.get("encoding") == "base64":
            documents[doc.get("chunk") or ""] = (doc.text or "").strip()
        elif len(doc):
            # the sidecar kept the document as parsed XML: its serialization stands for the bytes
            documents[doc.get("chunk") or ""] = base64.b64encode(etree.tostring(doc[0], encoding="UTF-8")).decode()
    container = _text(amd, f"{fd}formatName")
    return AudioTechnical(
        codec=codec, container=_CONTAINERS.get(container or "", container),
        sample_rate=int(Decimal(rate) * 1000) if rate else None, bit_depth=_int(_text(amd, f"{fd}bitsPerSample")),
        channels=_int(_text(amd, f"{info}numChannels")), duration=duration_seconds(_text(amd, f"{info}duration")),
        frames=frames, bitrate=int(kbps) * 1000 if kbps and kbps.isdigit() else None,
        lossy=_text(amd, f"{fd}compression/{_A}codecQuality") == "lossy", bext=bext, info=riff,
        creating_application=app, byte_order=order,
        rate_mode=(_text(amd, f"{fd}dataRateMode") or "").lower() or None,
        format_version=_text(amd, f"{fd}formatVersion"), sound_field=_text(amd, f"{info}soundField"),
        documents=documents)


def _format(chars: etree._Element) -> FormatIdentification:
    fmt = chars.find(f"{_P}format")
    puid = _text(fmt, f"{_P}formatRegistry/{_P}formatRegistryKey")
    name = _text(fmt, f"{_P}formatDesignation/{_P}formatName")
    note = _text(fmt, f"{_P}formatNote") or ""
    m = _FORMAT_NOTE.fullmatch(note)
    if puid is None and m is None:
        # named by its media type only: the name is the mime the plan would give again
        return FormatIdentification(note=note or None)
    return FormatIdentification(puid=puid, name=name, version=_text(fmt, f"{_P}formatDesignation/{_P}formatVersion"),
                                tool=(m.group(2) or "") if m else "", tool_version=(m.group(3) or "") if m else "",
                                method=m.group(1) if m else "")


def read_stored(premis: Path) -> dict[str, StoredFile]:
    """Every payload file object of the standalone PREMIS at ``premis``, by bag path (``data/...``)."""
    root = parse_untrusted_file(str(premis))
    files: dict[str, StoredFile] = {}
    by_uuid: dict[str, StoredFile] = {}
    for obj in root.iterfind(f"{_P}object"):
        path = premis_bag_path(obj)
        chars = obj.find(f"{_P}objectCharacteristics")
        if path is None or chars is None:
            continue
        found = StoredFile(path, _text(obj, f"{_P}originalName") or "", _format(chars), _technical(chars))
        files[path] = found
        for ident in obj.iterfind(f"{_P}objectIdentifier"):
            kind, value = _text(ident, f"{_P}objectIdentifierType") or "", _text(ident, f"{_P}objectIdentifierValue") or ""
            if kind == "UUID":
                by_uuid[value] = found
            elif kind.startswith(("DDEX Resource", "DDEX Technical")):
                found.source_identifiers += ((kind, value),)
    for ev in root.iterfind(f"{_P}event"):
        source = _text(ev, f"{_P}linkingObjectIdentifier/{_P}linkingObjectIdentifierValue") or ""
        target = by_uuid.get(source)
        if target is None:
            continue
        kind, detail = _text(ev, f"{_P}eventType") or "", _text(ev, f"{_P}eventDetailInformation/{_P}eventDetail") or ""
        outcome = _text(ev, f"{_P}eventOutcomeInformation/{_P}eventOutcome") or ""
        notes = [n.text or "" for n in ev.iter(f"{_P}eventOutcomeDetailNote")]
        if kind == "format identification" and target.format.tool:
            sig = _SIGNATURES.search(detail)
            target.format = _with_signatures(target.format, sig.group(1) if sig else "")
        elif kind == "validation" and "embedded audio checksum" in detail:
            target.essence = _essence(outcome, notes)
        elif kind == "fixity check" and "producer delivered" in detail and notes:
            m = _PRODUCER.fullmatch(notes[0])
            if m:
                found_value = notes[1].removeprefix("computed ") if len(notes) > 1 else m.group(2)
                target.producer_checksums.append(ProducerChecksum(
                    _ALGORITHMS.get(m.group(1), m.group(1)), m.group(2), m.group(3),
                    "fail" if outcome == "fail" else "pass", found_value))
    return files


def _with_signatures(fmt: FormatIdentification, signatures: str) -> FormatIdentification:
    return FormatIdentification(fmt.puid, fmt.name, fmt.version, fmt.mime, fmt.tool, fmt.tool_version, signatures,
                                fmt.method, fmt.note)


def _essence(outcome: str, notes: list[str]) -> EssenceCheck:
    expected = found = None
    accepted = "packaged anyway as a recorded known defect" in notes
    rest = [n for n in notes if n != "packaged anyway as a recorded known defect"]
    for n in list(rest):
        m = re.fullmatch(r"expected (\S+), found (\S+)", n)
        if m:
            expected, found = (None if g == "-" else g for g in m.groups())
            rest.remove(n)
    known = ("pass", "fail", "unverifiable")
    return EssenceCheck(outcome if outcome in known else "unverifiable",  # type: ignore[arg-type]
                        rest[0] if rest else "", rest[1] if len(rest) > 1 else "", expected, found, accepted)

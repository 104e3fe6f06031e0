"""LoC audioMD 2.0 in the sidecars: placement, values from what each file states, strict validation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from lxml import etree

from preserve.intake.audio import analyse_audio
from preserve.intake.identify import FormatIdentifier
from preserve.intake.testaudio import Tone, pcm_bytes, write_aiff, write_ogg
from preserve.model import AudioTechnical, EssenceCheck
from preserve.sidecars.audiomd import audiomd_element, duration_seconds, iso_duration, kbps, khz
from preserve.sidecars.check import check_sidecars
from preserve.sidecars.ext import audio_element
from preserve.sidecars.xmltext import XmlText

SHARED = Path(__file__).resolve().parents[3] / "shared" / "schemas"
NS = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3", "xlink": "http://www.w3.org/1999/xlink",
      "amd": "http://www.loc.gov/audioMD/", "audio": "urn:preserve:audio-technical:1"}


def _els(root: etree._Element | etree._ElementTree, path: str, **variables: str) -> list[etree._Element]:
    """The elements an XPath selects (typed for mypy; lxml's xpath may return other kinds)."""
    found = root.xpath(path, namespaces=NS, **variables)  # type: ignore[arg-type]
    assert isinstance(found, list)
    return [e for e in found if isinstance(e, etree._Element)]


def _amdsec(mets: etree._Element, name: str) -> etree._Element:
    [f] = _els(mets, "mets:fileSec//mets:file[mets:FLocat/@xlink:href=$h]", h=f"../data/objects/{name}")
    [sec] = _els(mets, "mets:amdSec[@ID=$id]", id=f.get("ADMID", ""))
    return sec


def _values(amd: etree._Element) -> dict[str, str]:
    """Every leaf of an AUDIOMD element by local name (each appears once per file here)."""
    out: dict[str, str] = {}
    for el in amd.iter():
        if not len(el) and el.text:
            name = etree.QName(el).localname
            assert name not in out, f"{name} twice"
            out[name] = el.text
    return out


@pytest.fixture(scope="module")
def mets(all_formats: Any) -> etree._Element:
    return etree.parse(str(all_formats.bag / "metadata" / "mets.xml")).getroot()


def _started(mets: etree._Element) -> str:
    [when] = _els(mets, "//premis:event[premis:eventType='ingestion']/premis:eventDateTime")
    return when.text or ""


def test_every_audio_file_has_audiomd_in_the_amdsec_of_its_premis_object(
        all_formats: Any, mets: etree._Element, xsd: Callable[[str], etree.XMLSchema]) -> None:
    schema = xsd("mets-premis-mods.xsd")
    assert schema.validate(mets.getroottree()), str(schema.error_log)
    for name in all_formats.tones:
        sec = _amdsec(mets, name)
        tech = sec.findall("mets:techMD", NS)
        # the PREMIS object first, its audioMD beside it in the same amdSec
        assert [t.find("mets:mdWrap", NS).attrib for t in tech] == [  # type: ignore[union-attr]
            {"MDTYPE": "PREMIS:OBJECT"}, {"MDTYPE": "OTHER", "OTHERMDTYPE": "AudioMD", "MDTYPEVERSION": "2.0"}]
        [amd] = tech[1].findall("mets:mdWrap/mets:xmlData/amd:AUDIOMD", NS)
        assert amd.get("ANALOGDIGITALFLAG") == "FileDigital"
    # submission documents are not audio and get none
    [sheet] = _els(mets, "mets:fileSec//mets:file[mets:FLocat/@xlink:href='../data/submission/metadata.csv']")
    assert _els(mets, "mets:amdSec[@ID=$id]//amd:AUDIOMD", id=sheet.get("ADMID", "")) == []


def _expected(name: str, tone: Tone, started: str) -> dict[str, str]:
    """What each file states, from the tone it was generated from (not from intake)."""
    common = {"samplingFrequency": khz(tone.sample_rate), "numChannels": str(tone.channels),
              "soundField": {1: "mono", 2: "stereo"}[tone.channels],
              "numSampleFrames": str(tone.frames), "duration": f"PT{tone.frames / tone.sample_rate:.6f}S"}
    pcm = {"audioDataEncoding": "PCM", "bitsPerSample": str(tone.bit_depth), "dataRateMode": "Fixed",
           "dataRate": str(round(tone.sample_rate * tone.bit_depth * tone.channels / 1000))}
    md5 = {"messageDigestDatetime": started, "messageDigestAlgorithm": "MD5",
           "messageDigest": hashlib.md5(pcm_bytes(tone)).hexdigest()}
    table: dict[str, dict[str, str]] = {
        "plain.wav": {**pcm, "byteOrder": "0", "formatName": "WAVE"},
        # bext Version 1; the MD5 chunk BWF MetaEdit writes, over the data chunk
        "bwf.wav": {**pcm, **md5, "byteOrder": "0", "formatName": "Broadcast Wave Format", "formatVersion": "1"},
        "big.rf64": {**pcm, "byteOrder": "0", "formatName": "RF64"},
        "tone.aiff": {**pcm, "byteOrder": "1", "formatName": "AIFF"},
        # STREAMINFO MD5: over signed little-endian samples, which for 16 bits is the WAVE payload
        "tone.flac": {**md5, "bitsPerSample": "16", "codecName": "FLAC", "codecQuality": "lossless",
                      "dataRateMode": "Variable", "formatName": "FLAC"},
        "tone.mp3": {"codecName": "MP3", "codecQuality": "lossy", "dataRateMode": "Variable",
                     "formatName": "MPEG audio", "formatVersion": "MPEG-1 Layer III", "soundField": "joint stereo"},
        "tone.ogg": {"codecName": "Vorbis", "codecQuality": "lossy", "dataRateMode": "Variable", "formatName": "Ogg"},
    }
    return {**common, **table[name]}


@pytest.mark.parametrize("name", ["plain.wav", "bwf.wav", "big.rf64", "tone.flac", "tone.mp3", "tone.aiff", "tone.ogg"])
def test_audiomd_states_what_the_file_states(all_formats: Any, mets: etree._Element, name: str) -> None:
    [amd] = _amdsec(mets, name).findall(".//amd:AUDIOMD", NS)
    found = _values(amd)
    expected = _expected(name, all_formats.tones[name], _started(mets))
    if name in ("tone.flac", "tone.mp3", "tone.ogg"):
        # a compressed stream's rate is an average of the file: checked for form here, against MediaInfo elsewhere
        assert found.pop("dataRate").isdigit()
    assert found == expected


def test_premis_xml_carries_audiomd_in_the_object_and_the_extension_only_the_rest(
        all_formats: Any, xsd: Callable[[str], etree.XMLSchema]) -> None:
    premis = etree.parse(str(all_formats.bag / "metadata" / "premis.xml"))
    assert xsd("premis-v3-0.xsd").validate(premis), str(xsd("premis-v3-0.xsd").error_log)
    audiomd_schema = xsd("audioMD-2-0.xsd")
    mets = etree.parse(str(all_formats.bag / "metadata" / "mets.xml")).getroot()
    for name in all_formats.tones:
        [obj] = _els(premis, "premis:object[premis:objectIdentifier/premis:objectIdentifierValue=$p]",
                             p=f"data/objects/{name}")
        [amd] = obj.findall("premis:objectCharacteristics/premis:objectCharacteristicsExtension/amd:AUDIOMD", NS)
        assert audiomd_schema.validate(etree.ElementTree(amd)), str(audiomd_schema.error_log)
        # the same values as the METS techMD; the METS PREMIS object does not repeat them
        [in_mets] = _amdsec(mets, name).findall("mets:techMD/mets:mdWrap/mets:xmlData/amd:AUDIOMD", NS)
        assert _values(amd) == _values(in_mets)
        assert _amdsec(mets, name).findall("mets:techMD//premis:object//amd:AUDIOMD", NS) == []
        ext = obj.findall(".//audio:audioTechnical", NS)
        if name != "bwf.wav":
            assert ext == [], name   # audioMD holds everything such a file states
    [bwf] = _els(premis, "premis:object[premis:objectIdentifier/premis:objectIdentifierValue='data/objects/bwf.wav']")
    [kept] = bwf.findall(".//audio:audioTechnical", NS)
    # only the bext fields remain in the extension: no codec, rate or duration written twice
    assert {etree.QName(e).localname for e in kept} == {"bext"}
    bext = {e.get("name"): e.text for e in kept}
    assert bext["OriginatorReference"] == "TA-0001" and bext["Version"] == "1"


def test_long_sample_counts_go_to_the_extension_not_audiomd(xsd: Callable[[str], etree.XMLSchema]) -> None:
    # 7 hours at 96 kHz: 2,419,200,000 frames, past audioMD's xs:int
    frames = 96000 * 3600 * 7
    tech = AudioTechnical(codec="PCM", container="WAVE", sample_rate=96000, bit_depth=24, channels=2,
                          duration=frames / 96000, frames=frames, bitrate=96000 * 48, byte_order="little-endian",
                          rate_mode="fixed", sound_field="stereo")
    text = XmlText()
    amd = audiomd_element(tech, EssenceCheck("not applicable"), "2024-05-01T10:00:00Z", text, "long.wav")
    assert amd is not None
    assert xsd("audioMD-2-0.xsd").validate(etree.ElementTree(amd)), str(xsd("audioMD-2-0.xsd").error_log)
    values = _values(amd)
    assert "numSampleFrames" not in values
    assert values["duration"] == "PT25200.000000S" and duration_seconds(values["duration"]) == 25200.0
    ext = audio_element(tech, text, "long.wav")
    assert ext is not None and ext.findtext("audio:sampleFrames", namespaces=NS) == str(frames)
    # one frame less than xs:int allows stays in audioMD and out of the extension
    short = AudioTechnical(codec="PCM", sample_rate=96000, channels=2, frames=2**31 - 1)
    amd = audiomd_element(short, EssenceCheck("not applicable"), "", text, "x")
    assert amd is not None and _values(amd)["numSampleFrames"] == str(2**31 - 1)
    assert audio_element(short, text, "x") is None


def test_units_and_rounding() -> None:
    assert [khz(r) for r in (44100, 22050, 48000, 11025, 8000, 352800)] == ["44.1", "22.05", "48", "11.025", "8", "352.8"]
    # integer kbps, rounded half up: 22050 Hz x 16 bit mono is 352.8 kbps
    assert [kbps(b) for b in (352800, 1411200, 128000, 55500, 55499)] == [353, 1411, 128, 56, 55]
    assert iso_duration(1, 44100, None) == "PT0.000023S" and iso_duration(1, 44100, 0.5) == "PT0.500000S"
    assert iso_duration(None, None, 2.5) == "PT2.500000S" and iso_duration(None, 44100, None) is None
    assert duration_seconds("PT1H2M3.5S") == 3723.5 and duration_seconds("2.0") is None


def test_unverifiable_flac_md5_is_not_written(xsd: Callable[[str], etree.XMLSchema]) -> None:
    tech = AudioTechnical(codec="FLAC", container="FLAC", sample_rate=44100, bit_depth=16, channels=1, frames=10)
    unset = EssenceCheck("unverifiable", "FLAC STREAMINFO MD5", "unset", None, "ab" * 16)
    amd = audiomd_element(tech, unset, "2024-05-01T10:00:00Z", XmlText(), "x.flac")
    assert amd is not None and "messageDigest" not in _values(amd)
    passed = EssenceCheck("pass", "FLAC STREAMINFO MD5", "", "cd" * 16, "cd" * 16)
    amd = audiomd_element(tech, passed, "2024-05-01T10:00:00Z", XmlText(), "x.flac")
    assert amd is not None and _values(amd)["messageDigest"] == "cd" * 16
    assert xsd("audioMD-2-0.xsd").validate(etree.ElementTree(amd))


def test_invalid_audiomd_is_caught_by_validate(all_formats: Any, tmp_path: Path) -> None:
    """The driver schema validates wrapped audioMD strictly: a byteOrder outside 0/1/2 is an error."""
    import shutil

    bag = tmp_path / "bag"
    shutil.copytree(all_formats.bag, bag)
    assert check_sidecars(bag, schemas=SHARED) == []
    path = bag / "metadata" / "mets.xml"
    path.write_text(path.read_text("utf-8").replace("<audiomd:byteOrder>1</audiomd:byteOrder>",
                                                    "<audiomd:byteOrder>7</audiomd:byteOrder>", 1), "utf-8")
    found = check_sidecars(bag, schemas=SHARED)
    assert [(f.severity, f.path) for f in found] == [("error", "metadata/mets.xml")]
    assert "not valid against the official schema" in found[0].message and "byteOrder" in found[0].message


@pytest.fixture(scope="module")
def identifier() -> FormatIdentifier:
    return FormatIdentifier()


@pytest.mark.parametrize("endian, bits, order", [("BIG", 24, "big-endian"), ("LITTLE", 16, "little-endian"),
                                                 ("LITTLE", 24, "little-endian")])
def test_intake_reads_aiff_and_aifc(tmp_path: Path, identifier: FormatIdentifier, endian: str, bits: int, order: str) -> None:
    tone = Tone(22050, bits, 1, 0.5)
    path = tmp_path / "t.aiff"
    if endian == "BIG":
        write_aiff(path, tone)
    else:   # libsndfile writes little-endian AIFF as AIFF-C, compression type 'sowt' (16 bit) or '42n1' (24 bit)
        soundfile.write(str(path), np.zeros((tone.frames, 1)), tone.sample_rate, format="AIFF", subtype=f"PCM_{bits}",
                        endian="LITTLE")
    a = analyse_audio(str(path), "t.aiff", identifier)
    assert a.problems == []
    assert a.format.puid in ("fmt/414", "x-fmt/135", "x-fmt/136")
    t = a.technical
    assert (t.codec, t.sample_rate, t.bit_depth, t.channels, t.frames) == ("PCM", 22050, bits, 1, tone.frames)
    assert (t.byte_order, t.rate_mode, t.lossy) == (order, "fixed", False)
    assert t.container == ("AIFF" if endian == "BIG" else "AIFF-C")


def test_intake_reads_ogg_vorbis(tmp_path: Path, identifier: FormatIdentifier) -> None:
    tone = Tone(44100, 16, 2, 0.5)
    path = write_ogg(tmp_path / "t.ogg", tone)
    a = analyse_audio(str(path), "t.ogg", identifier)
    assert a.problems == []
    assert a.format.puid == "fmt/203"
    t = a.technical
    assert (t.codec, t.container, t.sample_rate, t.channels, t.frames, t.lossy) == ("Vorbis", "Ogg", 44100, 2, tone.frames, True)
    # lossy: no bit depth, no byte order; libsndfile's encoder sets only the nominal rate, so variable
    assert (t.bit_depth, t.byte_order, t.rate_mode, t.sound_field) == (None, None, "variable", "stereo")


def test_bwf_md5_chunk_is_read_as_bwf_metaedit_writes_it(tmp_path: Path, identifier: FormatIdentifier) -> None:
    """BWF MetaEdit stores the digest as one little-endian 128-bit number (read back with Get_L16):
    the chunk's bytes are the hex digest's reversed. Built here by hand, not by our own writer."""
    from preserve.intake.testaudio import write_wav

    tone = Tone(44100, 16, 1, 0.1)
    path = write_wav(tmp_path / "m.wav", tone, bext={"Description": "x"})
    digest = hashlib.md5(pcm_bytes(tone)).hexdigest()
    raw = bytearray(path.read_bytes())
    raw += b"MD5 " + (16).to_bytes(4, "little") + int(digest, 16).to_bytes(16, "little")
    raw[4:8] = (len(raw) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    a = analyse_audio(str(path), "m.wav", identifier)
    assert a.problems == []
    assert (a.essence.outcome, a.essence.expected, a.essence.found) == ("pass", digest, digest)
    amd = audiomd_element(a.technical, a.essence, "2024-05-01T10:00:00Z", XmlText(), "m.wav")
    assert amd is not None and _values(amd)["messageDigest"] == digest

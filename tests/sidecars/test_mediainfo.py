"""Every technical value written to audioMD, checked against MediaInfo (an independent analyser).

Each file of the all-formats bag (WAVE, BWF, RF64, FLAC, MP3, AIFF, Ogg Vorbis) is read by
MediaInfo from the bag's payload, and its report is compared with the audioMD in mets.xml.
Where the two differ by design, the test says why and checks the reason instead.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import soundfile
from lxml import etree

pymediainfo = pytest.importorskip("pymediainfo")

NS = {"mets": "http://www.loc.gov/METS/", "xlink": "http://www.w3.org/1999/xlink", "amd": "http://www.loc.gov/audioMD/"}
NAMES = ["plain.wav", "bwf.wav", "big.rf64", "tone.flac", "tone.mp3", "tone.aiff", "tone.ogg"]
#: MediaInfo's audio Format (and, for MPEG audio, its profile) -> our codec name; None for PCM
CODECS = {("PCM", None): None, ("FLAC", None): "FLAC", ("MPEG Audio", "Layer 3"): "MP3", ("Vorbis", None): "Vorbis"}
#: MediaInfo's General Format (and profile) -> audioMD formatName
CONTAINERS = {("Wave", None): {"WAVE", "Broadcast Wave Format"}, ("Wave", "RF64"): {"RF64"}, ("FLAC", None): {"FLAC"},
              ("MPEG Audio", None): {"MPEG audio"}, ("AIFF", None): {"AIFF"}, ("Ogg", None): {"Ogg"}}


def _els(root: etree._Element | etree._ElementTree, path: str, **variables: str) -> list[etree._Element]:
    """The elements an XPath selects (typed for mypy; lxml's xpath may return other kinds)."""
    found = root.xpath(path, namespaces=NS, **variables)  # type: ignore[arg-type]
    assert isinstance(found, list)
    return [e for e in found if isinstance(e, etree._Element)]


@pytest.fixture(scope="module")
def written(all_formats: Any) -> dict[str, dict[str, str]]:
    """audioMD values by file name, as mets.xml states them."""
    mets = etree.parse(str(all_formats.bag / "metadata" / "mets.xml")).getroot()
    out: dict[str, dict[str, str]] = {}
    for name in NAMES:
        [f] = _els(mets, "mets:fileSec//mets:file[mets:FLocat/@xlink:href=$h]", h=f"../data/objects/{name}")
        [amd] = _els(mets, "mets:amdSec[@ID=$id]/mets:techMD/mets:mdWrap/mets:xmlData/amd:AUDIOMD",
                           id=f.get("ADMID", ""))
        out[name] = {etree.QName(el).localname: el.text or "" for el in amd.iter() if not len(el)}
    return out


def _mediainfo(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    info = pymediainfo.MediaInfo.parse(str(path))
    [general] = [t.to_data() for t in info.tracks if t.track_type == "General"]
    [audio] = [t.to_data() for t in info.tracks if t.track_type == "Audio"]
    return general, audio


@pytest.mark.parametrize("name", NAMES)
def test_mediainfo_agrees_with_audiomd(all_formats: Any, written: dict[str, dict[str, str]], name: str) -> None:
    ours = written[name]
    general, audio = _mediainfo(all_formats.payload(name))

    assert int(audio["sampling_rate"]) == int(Decimal(ours["samplingFrequency"]) * 1000)
    assert int(audio["channel_s"]) == int(ours["numChannels"])
    # lossy streams have no bit depth: neither analyser gives one
    assert audio.get("bit_depth") == (int(ours["bitsPerSample"]) if "bitsPerSample" in ours else None)
    assert ours["formatName"] in CONTAINERS[(general["format"], general.get("format_profile"))]

    codec = CODECS[(audio["format"], audio.get("format_profile"))]
    assert ours.get("codecName") == codec
    if codec is None:
        # PCM: MediaInfo gives no lossless flag and audioMD gets no compression element (there is no codec)
        assert audio.get("compression_mode") is None and "codecQuality" not in ours
        assert ours["audioDataEncoding"] == "PCM"
    else:
        assert audio["compression_mode"].lower() == ours["codecQuality"]
        assert "audioDataEncoding" not in ours

    rate_modes = {"CBR": "Fixed", "VBR": "Variable"}
    assert rate_modes[audio["bit_rate_mode"]] == ours["dataRateMode"]
    assert round(float(audio["bit_rate"]) / 1000) == int(ours["dataRate"])

    endian = audio.get("format_settings__endianness")
    if endian is not None:
        assert {"Little": "0", "Big": "1"}[endian] == ours["byteOrder"]
    else:
        # MediaInfo states byte order only for PCM; audioMD has none for a compressed stream either
        assert codec is not None and "byteOrder" not in ours

    # the essence checksum the file carries: FLAC STREAMINFO MD5, the BWF MD5 chunk
    stated = audio.get("md5_of_the_unencoded_content") or audio.get("md5")
    assert (stated.lower() if stated else None) == ours.get("messageDigest")

    if audio["format"] == "MPEG Audio":
        assert audio["mode"].lower() == ours["soundField"]   # "Joint stereo", from the frame header
    else:
        assert ours["soundField"] == {1: "mono", 2: "stereo"}[int(audio["channel_s"])]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("tone.mp3", "tone.aiff")])
def test_length_agrees_to_the_sample(all_formats: Any, written: dict[str, dict[str, str]], name: str) -> None:
    """These containers count their samples (data chunk size, STREAMINFO, the last Ogg granule position)."""
    ours = written[name]
    _general, audio = _mediainfo(all_formats.payload(name))
    assert int(audio["samples_count"]) == int(ours["numSampleFrames"]) == all_formats.tones[name].frames
    _same_milliseconds(audio, ours)


def _same_milliseconds(audio: dict[str, Any], ours: dict[str, str]) -> None:
    seconds = float(ours["duration"].removeprefix("PT").removesuffix("S"))
    # MediaInfo reports whole milliseconds
    assert abs(float(audio["duration"]) / 1000 - seconds) <= 0.0005


def test_aiff_length_is_the_comm_count_not_mediainfo_chunk_estimate(all_formats: Any,
                                                                     written: dict[str, dict[str, str]]) -> None:
    """AIFF states its length in the COMM chunk's numSampleFrames, which audioMD writes and a decoder
    agrees with. MediaInfo divides the SSND chunk's size by the frame size instead, and that size also
    counts the chunk's 8-byte offset/blockSize header and its pad byte: a few frames too many."""
    ours = written["tone.aiff"]
    path = all_formats.payload("tone.aiff")
    tone = all_formats.tones["tone.aiff"]
    _general, audio = _mediainfo(path)
    raw = path.read_bytes()
    at = raw.index(b"SSND")
    ssnd_size = int.from_bytes(raw[at + 4:at + 8], "big")
    frame_bytes = tone.channels * tone.bit_depth // 8
    assert int(audio["samples_count"]) == ssnd_size // frame_bytes > tone.frames
    assert int(ours["numSampleFrames"]) == tone.frames == soundfile.info(str(path)).frames
    _same_milliseconds(audio, ours)


def test_mp3_length_is_the_decoded_length_not_mediainfo_padded_one(all_formats: Any,
                                                                    written: dict[str, dict[str, str]]) -> None:
    """MediaInfo counts whole MPEG frames, encoder delay and padding included (here 2.038 s for a 2.000 s tone);
    audioMD states the audio the LAME header says the stream holds, which a decoder gives back."""
    ours = written["tone.mp3"]
    path = all_formats.payload("tone.mp3")
    _general, audio = _mediainfo(path)
    tone = all_formats.tones["tone.mp3"]
    padded = int(audio["samples_count"])
    assert padded % 1152 == 0 and padded > tone.frames          # whole Layer III frames of 1152 samples
    assert int(ours["numSampleFrames"]) == tone.frames == soundfile.info(str(path)).frames
    assert ours["duration"] == "PT2.000000S"
    assert float(audio["duration"]) / 1000 == pytest.approx(padded / tone.sample_rate, abs=0.001)

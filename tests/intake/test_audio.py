"""Technical metadata, identification and essence checks against files whose every property is known."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preserve.intake.audio import analyse_audio
from preserve.intake.identify import FormatIdentifier, sniff_family
from preserve.intake.testaudio import (
    Tone,
    axml_document,
    pcm_bytes,
    write_flac,
    write_mp3,
    write_wav,
)


@pytest.fixture(scope="module")
def identifier() -> FormatIdentifier:
    return FormatIdentifier()


def _within_one_frame(duration: float | None, tone: Tone, frame: int = 1) -> None:
    assert duration is not None
    assert abs(duration - tone.seconds) <= frame / tone.sample_rate


@pytest.mark.parametrize("tone", [Tone(44100, 16, 2, 0.3), Tone(48000, 24, 1, 0.2), Tone(96000, 24, 2, 0.1), Tone(8000, 8, 1, 0.5)])
def test_wave_technical_metadata(tmp_path: Path, identifier: FormatIdentifier, tone: Tone) -> None:
    path = write_wav(tmp_path / "t.wav", tone)
    a = analyse_audio(str(path), "t.wav", identifier)
    assert a.problems == []
    t = a.technical
    assert (t.container, t.codec, t.sample_rate, t.bit_depth, t.channels, t.frames) == \
        ("WAVE", "PCM", tone.sample_rate, tone.bit_depth, tone.channels, tone.frames)
    _within_one_frame(t.duration, tone)
    assert t.bitrate == tone.sample_rate * tone.channels * ((tone.bit_depth + 7) // 8) * 8
    assert a.format.puid == "fmt/141" and a.format.tool == "fido" and a.format.signature_version == "PRONOM v109"
    assert a.format.method == "signature" and a.format.tool_version == "1.6.1"
    assert a.essence.outcome == "not applicable"


def test_bwf_bext_info_ixml_and_md5_chunk(tmp_path: Path, identifier: FormatIdentifier) -> None:
    tone = Tone(48000, 24, 2, 0.25)
    bext = {"Description": "Session 4, take 2", "Originator": "Example Studio", "OriginatorReference": "EXS0042",
            "OriginationDate": "2024-05-02", "OriginationTime": "10:11:12", "TimeReference": 172800000,
            "CodingHistory": "A=PCM,F=48000,W=24,M=stereo,T=test\r\n", "UMID": "0a" * 32}
    path = write_wav(tmp_path / "m.wav", tone, bext=bext, md5_chunk=True,
                     info={"INAM": "Tides", "ISRC": "DAT tape 12", "ISFT": "preserve tests"},
                     ixml={"PROJECT": "Tides EP", "ISRC": "GB-EXR-24-00001"})
    a = analyse_audio(str(path), "m.wav", identifier)
    assert a.problems == []
    t = a.technical
    assert (t.container, t.sample_rate, t.bit_depth, t.channels, t.frames) == ("BWF", 48000, 24, 2, tone.frames)
    _within_one_frame(t.duration, tone)
    assert t.bext == {"Description": "Session 4, take 2", "Originator": "Example Studio", "OriginatorReference": "EXS0042",
                      "OriginationDate": "2024-05-02", "OriginationTime": "10:11:12", "TimeReference": "172800000",
                      "Version": "1", "UMID": "0a" * 32, "CodingHistory": "A=PCM,F=48000,W=24,M=stereo,T=test"}
    assert t.info == {"INAM": "Tides", "ISRC": "DAT tape 12", "ISFT": "preserve tests"}
    assert t.creating_application == "preserve tests"
    # INFO/ISRC means "source": only iXML's ISRC is an ISRC.
    assert a.tags["isrc"] == ["GBEXR2400001"]
    assert a.format.puid == "fmt/704"
    digest = hashlib.md5(pcm_bytes(tone)).hexdigest()
    assert (a.essence.outcome, a.essence.expected, a.essence.found) == ("pass", digest, digest)


def test_axml_isrc(tmp_path: Path, identifier: FormatIdentifier) -> None:
    path = write_wav(tmp_path / "a.wav", Tone(44100, 16, 1, 0.1), bext={"Description": "x"},
                     axml=axml_document("GB-EXR-24-00009", "Undertow"))
    a = analyse_audio(str(path), "a.wav", identifier)
    assert a.tags["isrc"] == ["GBEXR2400009"] and a.tags["title"] == ["Undertow"]


def test_axml_with_entities_is_refused_not_parsed(tmp_path: Path, identifier: FormatIdentifier) -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x><ISRC>&e;</ISRC></x>'
    path = write_wav(tmp_path / "a.wav", Tone(44100, 16, 1, 0.1), axml=evil)
    a = analyse_audio(str(path), "a.wav", identifier)
    assert "isrc" not in a.tags
    assert a.warnings == ["a.wav (axml chunk): ignored (a.wav (axml chunk): XML refused (it declares entities "
                          "(a DOCTYPE with <!ENTITY>), which could read local files or expand without bound))"]
    assert a.problems == []


@pytest.mark.parametrize(("bext", "puid"), [(None, "fmt/712"), ({"Description": "rf64 master"}, "fmt/713")])
def test_rf64(tmp_path: Path, identifier: FormatIdentifier, bext: dict[str, str] | None, puid: str) -> None:
    # RF64 is fmt/712; an RF64 with a bext chunk is MBWF, fmt/713.
    tone = Tone(48000, 24, 2, 0.3)
    path = write_wav(tmp_path / "big.wav", tone, rf64=True, bext=bext, md5_chunk=True)
    a = analyse_audio(str(path), "big.wav", identifier)
    assert a.problems == []
    t = a.technical
    assert (t.container, t.sample_rate, t.bit_depth, t.channels, t.frames) == ("RF64", 48000, 24, 2, tone.frames)
    _within_one_frame(t.duration, tone)
    assert a.format.puid == puid
    assert t.bext.get("Description") == (bext or {}).get("Description")
    assert a.essence.outcome == "pass"
    import soundfile  # an independent reader agrees on the layout we wrote

    info = soundfile.info(str(path))
    assert (info.format, info.samplerate, info.channels, info.frames) == ("RF64", 48000, 2, tone.frames)


@pytest.mark.parametrize("tone", [Tone(44100, 16, 2, 0.3), Tone(96000, 24, 1, 0.2)])
def test_flac(tmp_path: Path, identifier: FormatIdentifier, tone: Tone) -> None:
    path = write_flac(tmp_path / "t.flac", tone)
    a = analyse_audio(str(path), "t.flac", identifier)
    assert a.problems == []
    t = a.technical
    assert (t.container, t.codec, t.sample_rate, t.bit_depth, t.channels, t.frames, t.lossy) == \
        ("FLAC", "FLAC", tone.sample_rate, tone.bit_depth, tone.channels, tone.frames, False)
    _within_one_frame(t.duration, tone)
    assert a.format.puid == "fmt/279"
    assert a.essence.outcome == "pass" and a.essence.expected == a.essence.found


def test_flac_with_unset_md5_is_unverifiable_not_damage(tmp_path: Path, identifier: FormatIdentifier) -> None:
    path = write_flac(tmp_path / "t.flac", Tone(44100, 16, 1, 0.2), md5="unset")
    a = analyse_audio(str(path), "t.flac", identifier)
    assert a.problems == []
    assert a.essence.outcome == "unverifiable"
    assert a.essence.detail == "the encoder left the STREAMINFO MD5 unset (all zeros)"
    assert a.warnings == ["t.flac: the FLAC STREAMINFO MD5 is not set, so the audio cannot be checked against it "
                          "(unverifiable, not damage)"]


def test_mp3(tmp_path: Path, identifier: FormatIdentifier) -> None:
    tone = Tone(44100, 16, 2, 1.0)
    path = write_mp3(tmp_path / "t.mp3", tone, tags={"TIT2": "Hello", "TPE1": "Ann", "TSRC": "GB-EXR-24-00004"})
    a = analyse_audio(str(path), "t.mp3", identifier)
    assert a.problems == []
    t = a.technical
    assert (t.container, t.codec, t.sample_rate, t.channels, t.bit_depth, t.lossy) == ("MP3", "MP3", 44100, 2, None, True)
    _within_one_frame(t.duration, tone, frame=1152)      # one MPEG-1 Layer III frame
    assert a.format.puid == "fmt/134"
    assert a.tags["isrc"] == ["GBEXR2400004"] and a.tags["title"] == ["Hello"] and a.tags["artist"] == ["Ann"]


@pytest.mark.parametrize(("head", "family"), [
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wave"), (b"RF64\xff\xff\xff\xffWAVEds64", "wave"), (b"fLaC\x00\x00\x00\x22", "flac"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00", "mp3"), (b"\xff\xfb\x90\x64\x00", "mp3"), (b"OggS\x00\x02", "ogg"),
    (b"FORM\x00\x00\x00\x00AIFF", "aiff"), (b"\x00\x00\x00\x20ftypM4A ", "mp4"), (b"\xff\xf1\x50\x80", "aac"),
    (b"hello world", None), (b"%PDF-1.7", None), (b"", None), (b"\xff", None),
])
def test_sniff(head: bytes, family: str | None) -> None:
    assert sniff_family(head) == family


def test_truncated_wave(tmp_path: Path, identifier: FormatIdentifier) -> None:
    path = write_wav(tmp_path / "t.wav", Tone(44100, 16, 2, 0.5))
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    a = analyse_audio(str(path), "t.wav", identifier)
    assert [(p.code, p.message) for p in a.problems] == [
        ("truncated", f"t.wav: truncated: the 'data' chunk at byte 36 declares 88200 bytes but only {size // 2 - 44} follow"),
        ("truncated", f"t.wav: truncated: the RIFF header declares {size} bytes, the file has {size // 2}"),
    ]


@pytest.mark.parametrize(("fmt", "subtype", "name", "codec", "lossy", "bits"), [
    ("OGG", "VORBIS", "t.ogg", "Vorbis", True, None), ("OGG", "OPUS", "t.opus", "Opus", True, None),
    ("AIFF", "PCM_24", "t.aiff", "PCM", False, 24),
])
def test_other_formats(tmp_path: Path, identifier: FormatIdentifier, fmt: str, subtype: str, name: str,
                       codec: str, lossy: bool, bits: int | None) -> None:
    import numpy as np
    import soundfile

    rate = 48000
    soundfile.write(str(tmp_path / name), np.zeros((rate // 2, 2)), rate, format=fmt, subtype=subtype)
    a = analyse_audio(str(tmp_path / name), name, identifier)
    assert a.problems == []
    t = a.technical
    assert (t.codec, t.lossy, t.sample_rate, t.channels, t.bit_depth) == (codec, lossy, rate, 2, bits)
    assert t.duration is not None and abs(t.duration - 0.5) < 0.03
    assert a.format.puid is not None


def _damaged_inputs() -> dict[str, bytes]:
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as d:
        tone = Tone(8000, 16, 1, 0.05)
        for name, writer in (("a.wav", write_wav), ("a.flac", write_flac), ("a.mp3", write_mp3)):
            out[name] = writer(Path(d) / name, tone).read_bytes()
        out["b.wav"] = write_wav(Path(d) / "b.wav", tone, rf64=True, bext={"Description": "x"}, md5_chunk=True).read_bytes()
    return out


_ORIGINALS = _damaged_inputs()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(_ORIGINALS)), cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4))
def test_damaged_files_never_crash(tmp_path: Path, identifier: FormatIdentifier, name: str, cut: float,
                                   flips: list[tuple[float, int]]) -> None:
    raw = bytearray(_ORIGINALS[name])
    for where, mask in flips:
        raw[int(where * (len(raw) - 1))] ^= mask
    path = tmp_path / name
    path.write_bytes(bytes(raw[: max(0, int(len(raw) * cut))]) if cut < 0.98 else bytes(raw))
    a = analyse_audio(str(path), name, identifier)
    assert all(p.message.startswith(f"{name}: ") for p in a.problems)

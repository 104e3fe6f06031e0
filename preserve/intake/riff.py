"""A small reader for RIFF/WAVE, RF64 and BW64 chunks: ``fmt ``, ``bext``, ``LIST/INFO``, ``iXML``,
``axml``, ``MD5 `` and where ``data`` lies.

mutagen does not read broadcast-WAVE chunks, and the chunks we need are few and simple, so this
reads them directly: it walks the chunk list without loading the audio, stops at anything that
does not add up (a size running past the end of the file is a truncated file) and reports what it
found rather than raising for damaged input.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

# Chunks whose payload we keep in memory; everything else (the audio above all) is only located.
_SMALL_LIMIT = 4 * 1024 * 1024
_KEEP = {b"fmt ", b"bext", b"LIST", b"iXML", b"axml", b"MD5 ", b"ds64"}
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_MPEG = 0x0050
WAVE_FORMAT_MPEGLAYER3 = 0x0055
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


@dataclass
class WaveFormat:
    format_tag: int
    channels: int
    sample_rate: int
    byte_rate: int
    block_align: int
    bits_per_sample: int
    sub_format_tag: int | None = None   # WAVEFORMATEXTENSIBLE: the first two bytes of the GUID

    @property
    def codec_tag(self) -> int:
        return self.sub_format_tag if self.format_tag == WAVE_FORMAT_EXTENSIBLE and self.sub_format_tag else self.format_tag


@dataclass
class RiffFile:
    """What the chunk walk found."""

    form: str                                   # "RIFF", "RF64" or "BW64"
    declared_size: int                          # size the header claims (from ds64 for RF64)
    file_size: int
    chunks: list[tuple[str, int, int]] = field(default_factory=list)   # (id, payload offset, size)
    payloads: dict[str, bytes] = field(default_factory=dict)
    fmt: WaveFormat | None = None
    data_offset: int | None = None
    data_size: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return any("truncated" in p for p in self.problems)


def is_riff_wave(head: bytes) -> bool:
    return len(head) >= 12 and head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE"


def read_riff(f: BinaryIO, file_size: int) -> RiffFile:
    """Walk the chunks of an open WAVE/RF64/BW64 file (the caller checked :func:`is_riff_wave`)."""
    head = f.read(12)
    form = head[:4].decode("ascii")
    declared = struct.unpack("<I", head[4:8])[0]
    riff = RiffFile(form, declared, file_size)
    ds64_data_size: int | None = None
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            break
        cid = header[:4]
        size = struct.unpack("<I", header[4:])[0]
        name = cid.decode("latin-1")
        if form != "RIFF" and size == 0xFFFFFFFF:
            if cid == b"data" and ds64_data_size is not None:
                size = ds64_data_size
            elif cid == b"data":
                riff.problems.append("an RF64 data chunk without a ds64 size")
                size = file_size - pos - 8
        if cid == b"data":
            riff.data_offset, riff.data_size = pos + 8, size
        if pos + 8 + size > file_size:
            riff.problems.append(
                f"truncated: the '{name}' chunk at byte {pos} declares {size} bytes but only {file_size - pos - 8} follow")
            riff.chunks.append((name, pos + 8, size))
            if cid == b"data":
                riff.data_size = file_size - pos - 8
            break
        riff.chunks.append((name, pos + 8, size))
        if cid in _KEEP and size <= _SMALL_LIMIT:
            payload = f.read(size)
            riff.payloads.setdefault(name, payload)
            if cid == b"ds64" and size >= 24:
                riff_size, ds64_data_size, _frames = struct.unpack("<QQQ", payload[:24])
                riff.declared_size = riff_size
            elif cid == b"fmt ":
                riff.fmt = _parse_fmt(payload, riff)
        pos += 8 + size + (size & 1)
    if form == "RIFF" and declared + 8 > file_size:
        riff.problems.append(f"truncated: the RIFF header declares {declared + 8} bytes, the file has {file_size}")
    if riff.fmt is None and not riff.truncated:
        riff.problems.append("no 'fmt ' chunk: not a playable WAVE file")
    if riff.data_offset is None and not riff.truncated:
        riff.problems.append("no 'data' chunk: the file holds no audio")
    return riff


def _parse_fmt(payload: bytes, riff: RiffFile) -> WaveFormat | None:
    if len(payload) < 16:
        riff.problems.append(f"the 'fmt ' chunk is {len(payload)} bytes, too short to describe audio")
        return None
    tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", payload[:16])
    sub = None
    if tag == WAVE_FORMAT_EXTENSIBLE and len(payload) >= 26:
        sub = struct.unpack("<H", payload[24:26])[0]
    return WaveFormat(tag, channels, rate, byte_rate, align, bits, sub)


def _text(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()


#: the loudness fields of a version 2 ``bext`` (EBU Tech 3285 v2): name, offset; each a signed
#: 16-bit value in hundredths (LUFS for the loudness values, LU for the range, dBTP for the peak)
LOUDNESS_FIELDS = (("LoudnessValue", 412), ("LoudnessRange", 414), ("MaxTruePeakLevel", 416),
                   ("MaxMomentaryLoudness", 418), ("MaxShortTermLoudness", 420))
#: what a version 2 writer puts in a loudness field it did not measure
_LOUDNESS_UNSET = 0x7FFF
#: chunks that hold whole XML documents, kept in the sidecars
DOCUMENT_CHUNKS = ("iXML", "axml")


def parse_bext(payload: bytes) -> dict[str, str]:
    """Every ``bext`` field (EBU Tech 3285 v0, v1 and v2 layout); empty and unset ones left out.

    Loudness values (version 2 and later) are decimal numbers: ``-23.00``; UMID is hexadecimal
    (the 32-byte basic UMID, or all 64 bytes of an extended one); CodingHistory keeps its lines.
    """
    if len(payload) < 348:
        return {}
    fields = {
        "Description": _text(payload[0:256]),
        "Originator": _text(payload[256:288]),
        "OriginatorReference": _text(payload[288:320]),
        "OriginationDate": _text(payload[320:330]),
        "OriginationTime": _text(payload[330:338]),
    }
    low, high = struct.unpack("<II", payload[338:346])
    fields["TimeReference"] = str(low + (high << 32))
    version = struct.unpack("<H", payload[346:348])[0]
    fields["Version"] = str(version)
    umid = payload[348:412]
    if umid.strip(b"\x00"):
        fields["UMID"] = umid.rstrip(b"\x00").hex() if len(umid.rstrip(b"\x00")) > 32 else umid[:32].hex()
    if version >= 2 and len(payload) >= 422:
        for name, offset in LOUDNESS_FIELDS:
            value = struct.unpack("<h", payload[offset:offset + 2])[0]
            if value != _LOUDNESS_UNSET:
                fields[name] = f"{value / 100:.2f}"
    if len(payload) > 602:
        fields["CodingHistory"] = _text(payload[602:]).replace("\r\n", "\n").strip()
    return {k: v for k, v in fields.items() if v}


def embedded_documents(riff: RiffFile) -> dict[str, str]:
    """The iXML and axml chunks, each as base64 of its exact payload (NUL padding at the end dropped)."""
    out = {}
    for cid in DOCUMENT_CHUNKS:
        payload = riff.payloads.get(cid, b"").rstrip(b"\x00")
        if payload.strip():
            out[cid] = base64.b64encode(payload).decode("ascii")
    return out


def parse_info(payload: bytes) -> dict[str, str]:
    """The sub-chunks of a ``LIST`` chunk of type ``INFO`` (INAM, IART, ICOP, ISFT, ISRC, ...)."""
    if payload[:4] != b"INFO":
        return {}
    out: dict[str, str] = {}
    pos = 4
    while pos + 8 <= len(payload):
        key = payload[pos:pos + 4].decode("latin-1").strip()
        size = struct.unpack("<I", payload[pos + 4:pos + 8])[0]
        value = payload[pos + 8:pos + 8 + size]
        if key.isprintable() and key:
            out[key] = _text(value)
        pos += 8 + size + (size & 1)
    return {k: v for k, v in out.items() if v}



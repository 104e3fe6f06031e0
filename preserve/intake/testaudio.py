"""Writing small, exactly known audio files: the examples' generator and the tests build on this.

Every writer produces a deterministic test tone (a sine per channel, a few seconds at most) so a
reader can be checked against what was generated. WAVE, BWF (``bext``, ``iXML``, ``axml``, INFO,
the ``MD5 `` chunk BWF MetaEdit writes) and RF64 are written by hand here, chunk by chunk, so the
tests control every byte; FLAC, MP3, AIFF and Ogg Vorbis go through libsndfile (``soundfile``), whose FLAC encoder
stores the STREAMINFO MD5 of the samples.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
import soundfile


@dataclass(frozen=True)
class Tone:
    """What to generate: the measurements a reader must report back."""

    sample_rate: int = 44100
    bit_depth: int = 16
    channels: int = 2
    seconds: float = 1.0
    frequency: float = 440.0
    amplitude: float = 0.25

    @property
    def frames(self) -> int:
        return round(self.sample_rate * self.seconds)


def samples(tone: Tone) -> npt.NDArray[np.int32]:
    """Integer samples (frames x channels) at ``tone.bit_depth``, right-aligned in int32."""
    t = np.arange(tone.frames, dtype=np.float64) / tone.sample_rate
    full = (1 << (tone.bit_depth - 1)) - 1
    cols = [np.round(tone.amplitude * full * np.sin(2 * np.pi * tone.frequency * (c + 1) * t))
            for c in range(tone.channels)]
    return np.stack(cols, axis=1).astype(np.int32)


def pcm_bytes(tone: Tone, data: npt.NDArray[np.int32] | None = None) -> bytes:
    """The WAVE ``data`` payload: little-endian interleaved, unsigned for 8 bit, signed otherwise."""
    arr = samples(tone) if data is None else data
    width = (tone.bit_depth + 7) // 8
    if tone.bit_depth <= 8:
        return (arr.astype(np.int16) + 128).astype(np.uint8).tobytes()
    raw = arr.astype("<i4").reshape(-1).view(np.uint8).reshape(-1, 4)[:, :width]
    return raw.tobytes()


def _chunk(cid: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) % 2 else b""
    return cid + struct.pack("<I", len(payload)) + payload + pad


def _fixed(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size].ljust(size, b"\x00")


def bext_chunk(fields: Mapping[str, str | int]) -> bytes:
    """A version 1 ``bext`` chunk (EBU Tech 3285) from Description, Originator, ... CodingHistory."""
    time_reference = int(fields.get("TimeReference", 0))
    umid = bytes.fromhex(str(fields.get("UMID", ""))).ljust(64, b"\x00")[:64]
    body = (
        _fixed(str(fields.get("Description", "")), 256)
        + _fixed(str(fields.get("Originator", "")), 32)
        + _fixed(str(fields.get("OriginatorReference", "")), 32)
        + _fixed(str(fields.get("OriginationDate", "")), 10)
        + _fixed(str(fields.get("OriginationTime", "")), 8)
        + struct.pack("<QH", time_reference, 1)
        + umid
        + b"\x00" * 10  # loudness values (version 2 fields, left unset)
        + b"\x00" * 180  # reserved
        + str(fields.get("CodingHistory", "")).encode("ascii", "replace")
    )
    return _chunk(b"bext", body)


def info_chunk(fields: Mapping[str, str]) -> bytes:
    """A ``LIST``/``INFO`` chunk from four-character keys (INAM, IART, ICOP, ISFT, ...)."""
    body = b"INFO"
    for key, value in fields.items():
        body += _chunk(key.encode("ascii")[:4].ljust(4), value.encode("utf-8") + b"\x00")
    return _chunk(b"LIST", body)


def ixml_document(fields: Mapping[str, str]) -> bytes:
    """A minimal iXML document; ``ISRC`` goes in as a USER field and under BEXT/ISRC-like tags."""
    parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BWFXML>\n<IXML_VERSION>2.10</IXML_VERSION>\n"]
    for key, value in fields.items():
        parts.append(f"<{key}>{escape(value)}</{key}>\n")
    parts.append("</BWFXML>\n")
    return "".join(parts).encode("utf-8")


def axml_document(isrc: str, title: str | None = None) -> bytes:
    """A small EBU Core / aXML document carrying an ISRC identifier."""
    title_xml = f"<dc:title>{escape(title)}</dc:title>" if title else ""
    return (
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ebuCoreMain xmlns=\"urn:ebu:metadata-schema:ebuCore_2014\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
        f"<coreMetadata>{title_xml}<identifier typeLabel=\"ISRC\"><dc:identifier>{escape(isrc)}</dc:identifier></identifier>"
        "</coreMetadata></ebuCoreMain>\n"
    ).encode()


def write_wav(
    path: str | Path,
    tone: Tone = Tone(),
    *,
    bext: Mapping[str, str | int] | None = None,
    info: Mapping[str, str] | None = None,
    ixml: Mapping[str, str] | None = None,
    axml: bytes | None = None,
    md5_chunk: bool | str = False,
    rf64: bool = False,
    data: npt.NDArray[np.int32] | None = None,
) -> Path:
    """Write a WAVE file (a BWF when ``bext`` is given; RF64 when ``rf64``).

    ``md5_chunk`` True adds the ``MD5 `` chunk over the data payload as BWF MetaEdit does; a hex
    string stores that value instead (to model a file whose audio changed after it was written).
    """
    path = Path(path)
    audio = pcm_bytes(tone, data)
    block = tone.channels * ((tone.bit_depth + 7) // 8)
    fmt = struct.pack("<HHIIHH", 1, tone.channels, tone.sample_rate, tone.sample_rate * block, block, tone.bit_depth)
    chunks = [_chunk(b"fmt ", fmt)]
    if bext is not None:
        chunks.append(bext_chunk(bext))
    if info:
        chunks.append(info_chunk(info))
    if ixml:
        chunks.append(_chunk(b"iXML", ixml_document(ixml)))
    if axml is not None:
        chunks.append(_chunk(b"axml", axml))
    if md5_chunk:
        digest = hashlib.md5(audio).digest() if md5_chunk is True else bytes.fromhex(str(md5_chunk))
        # as BWF MetaEdit writes it: the digest as a little-endian 128-bit number
        chunks.append(_chunk(b"MD5 ", digest[::-1]))
    if not rf64:
        body = b"WAVE" + b"".join(chunks) + _chunk(b"data", audio)
        out = b"RIFF" + struct.pack("<I", len(body)) + body
    else:
        # RF64 (EBU Tech 3306): the 32-bit sizes hold 0xFFFFFFFF and ds64 carries the real ones.
        data_part = b"data\xff\xff\xff\xff" + audio + (b"\x00" if len(audio) % 2 else b"")
        ds64_len = 8 + 28
        riff_size = 4 + ds64_len + sum(len(c) for c in chunks) + len(data_part)
        ds64 = _chunk(b"ds64", struct.pack("<QQQI", riff_size, len(audio), tone.frames, 0))
        out = b"RF64\xff\xff\xff\xffWAVE" + ds64 + b"".join(chunks) + data_part
    path.write_bytes(out)
    return path


def _float(tone: Tone, data: npt.NDArray[np.int32] | None = None) -> npt.NDArray[np.float64]:
    arr = samples(tone) if data is None else data
    return arr.astype(np.float64) / float(1 << (tone.bit_depth - 1))


_SUBTYPE = {8: "PCM_S8", 16: "PCM_16", 24: "PCM_24"}


def write_flac(
    path: str | Path,
    tone: Tone = Tone(),
    *,
    md5: str | None = None,
    data: npt.NDArray[np.int32] | None = None,
) -> Path:
    """Write a FLAC file through libsndfile (which stores the STREAMINFO MD5 of the samples).

    ``md5="unset"`` zeroes the stored MD5 (an encoder that did not compute it); any other hex
    string replaces it, which is what a file looks like when its audio changed after encoding.
    """
    path = Path(path)
    soundfile.write(str(path), _float(tone, data), tone.sample_rate, format="FLAC", subtype=_SUBTYPE[tone.bit_depth])
    if md5 is not None:
        set_flac_md5(path, "0" * 32 if md5 == "unset" else md5)
    return path


def flac_md5_offset(raw: bytes) -> int:
    """Byte offset of the MD5 in STREAMINFO (the first metadata block, right after ``fLaC``)."""
    if raw[:4] != b"fLaC" or raw[4] & 0x7F != 0:
        raise ValueError("not a FLAC stream starting with STREAMINFO")
    return 8 + 18


def set_flac_md5(path: str | Path, hex_digest: str) -> None:
    """Overwrite the STREAMINFO MD5 in place."""
    path = Path(path)
    raw = bytearray(path.read_bytes())
    off = flac_md5_offset(bytes(raw))
    raw[off:off + 16] = bytes.fromhex(hex_digest)
    path.write_bytes(bytes(raw))


def write_mp3(path: str | Path, tone: Tone = Tone(), *, tags: Mapping[str, str] | None = None) -> Path:
    """Write an MP3 through libsndfile's LAME encoder; ``tags`` become ID3v2 frames (TIT2, TPE1, TSRC...)."""
    path = Path(path)
    soundfile.write(str(path), _float(tone), tone.sample_rate, format="MP3")
    if tags:
        from mutagen import id3

        frames = id3.ID3()  # type: ignore[no-untyped-call]
        for key, value in tags.items():
            frames.add(getattr(id3, key)(encoding=3, text=[value]))  # type: ignore[no-untyped-call]
        frames.save(str(path))
    return path


def write_aiff(path: str | Path, tone: Tone = Tone(), *, data: npt.NDArray[np.int32] | None = None) -> Path:
    """Write a big-endian PCM AIFF file through libsndfile."""
    path = Path(path)
    soundfile.write(str(path), _float(tone, data), tone.sample_rate, format="AIFF", subtype=_SUBTYPE[tone.bit_depth])
    return path


def write_ogg(path: str | Path, tone: Tone = Tone()) -> Path:
    """Write an Ogg Vorbis file through libsndfile (lossy: ``tone.bit_depth`` is not kept)."""
    path = Path(path)
    soundfile.write(str(path), _float(tone), tone.sample_rate, format="OGG", subtype="VORBIS")
    return path


def truncate(path: str | Path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its length (an interrupted transfer)."""
    path = Path(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def write_many(folder: str | Path, names: Sequence[str], tone: Tone = Tone()) -> list[Path]:
    """Write a plain WAVE tone per name (handy for building collections in tests)."""
    return [write_wav(Path(folder) / n, tone) for n in names]

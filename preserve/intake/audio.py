"""What one audio file is: format, technical metadata, embedded tags and essence fixity.

:func:`analyse_audio` never raises for damaged input: an empty, truncated, mislabelled or
undecodable file comes back as an :class:`AudioAnalysis` whose ``problems`` name what is wrong,
so ``preserve check`` can report every file at once.

Essence fixity means checksums a file carries of its own decoded audio:

- FLAC's STREAMINFO MD5, over the decoded samples as FLAC defines them (signed, little-endian,
  interleaved, ceil(bits/8) bytes per sample); all zeros means the encoder did not set it, which
  is "unverifiable", not damage;
- the ``MD5 `` chunk BWF MetaEdit writes: MD5 of the ``data`` chunk's payload.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from preserve.intake import riff
from preserve.intake.identify import (
    FAMILIES,
    FAMILY_NAMES,
    LOSSY_FAMILIES,
    FormatIdentifier,
    describe_content,
    family_of_extension,
    normalize_isrc,
    sniff_family,
)
from preserve.model import AudioTechnical, EssenceCheck, FormatIdentification
from preserve.xmlsafe import parse_untrusted

HEAD_BYTES = 64 * 1024
_BLOCK = 1 << 16


@dataclass(frozen=True)
class AudioProblem:
    """Something about a file that stops packaging; ``code`` is stable for machines."""

    code: str            # empty, truncated, not-audio, mislabelled, undecodable, essence-mismatch
    message: str


@dataclass
class AudioAnalysis:
    path: str
    size: int
    family: str | None = None
    format: FormatIdentification = field(default_factory=FormatIdentification)
    technical: AudioTechnical = field(default_factory=AudioTechnical)
    essence: EssenceCheck = field(default_factory=lambda: EssenceCheck("not applicable"))
    tags: dict[str, list[str]] = field(default_factory=dict)   # title, artist, album, isrc, ...
    problems: list[AudioProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def analyse_audio(path: str, shown: str, identifier: FormatIdentifier) -> AudioAnalysis:
    """Identify and measure the file at ``path``; ``shown`` is the name used in messages."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as exc:
        a = AudioAnalysis(path, 0)
        a.problems.append(AudioProblem("unreadable", f"{shown}: cannot be read ({exc.strerror})"))
        return a
    a = AudioAnalysis(path, size)
    claimed = family_of_extension(shown)
    if size == 0:
        a.problems.append(AudioProblem("empty", f"{shown}: is empty (zero bytes); deliver the file again"))
        return a
    a.family = sniff_family(head)
    a.format = identifier.identify(path, size, a.family)
    if a.family is None:
        found = f"{a.format.name} ({a.format.puid})" if a.format.puid else describe_content(head)
        a.problems.append(AudioProblem(
            "not-audio", f"{shown}: named as {FAMILY_NAMES.get(claimed or '', 'audio')} but it is not audio: {found}"))
        return a
    if claimed is not None and claimed != a.family:
        a.problems.append(AudioProblem(
            "mislabelled", f"{shown}: named as {FAMILY_NAMES[claimed]} but its content is {FAMILY_NAMES[a.family]} "
                           f"({a.format.puid or FAMILIES[a.family][2]}); rename it to match its content"))
    try:
        if a.family == "wave":
            _wave(a, shown)
        elif a.family == "flac":
            _flac(a, shown)
        else:
            _other(a, shown)
    except Exception as exc:  # a decoder refusing damaged bytes: report it by name, never crash
        a.problems.append(AudioProblem("undecodable", f"{shown}: cannot be decoded ({type(exc).__name__}: {exc})"))
    return a


def _wave(a: AudioAnalysis, shown: str) -> None:
    with open(a.path, "rb") as f:
        r = riff.read_riff(f, a.size)
        for p in r.problems:
            code = "truncated" if p.startswith("truncated") else "undecodable"
            a.problems.append(AudioProblem(code, f"{shown}: {p}"))
        fmt = r.fmt
        bext = riff.parse_bext(r.payloads["bext"]) if "bext" in r.payloads else {}
        info = riff.parse_info(r.payloads["LIST"]) if "LIST" in r.payloads else {}
        container = "RF64" if r.form in ("RF64", "BW64") else ("BWF" if "bext" in r.payloads else "WAVE")
        codec, lossy = "PCM", False
        if fmt is not None:
            tag = fmt.codec_tag
            if tag == riff.WAVE_FORMAT_IEEE_FLOAT:
                codec = "PCM (IEEE float)"
            elif tag in (riff.WAVE_FORMAT_MPEG, riff.WAVE_FORMAT_MPEGLAYER3):
                codec, lossy = "MPEG", True
            elif tag != riff.WAVE_FORMAT_PCM:
                codec = f"WAVE format 0x{tag:04x}"
        pcm = codec.startswith("PCM")
        frames = duration = None
        if fmt is not None and r.data_size is not None and fmt.block_align and fmt.sample_rate:
            frames = r.data_size // fmt.block_align
            duration = frames / fmt.sample_rate
        a.technical = AudioTechnical(
            codec=codec, container=container,
            sample_rate=fmt.sample_rate if fmt else None, bit_depth=fmt.bits_per_sample if fmt else None,
            channels=fmt.channels if fmt else None, duration=duration, frames=frames,
            bitrate=fmt.byte_rate * 8 if fmt else None, lossy=lossy, bext=bext, info=info,
            creating_application=info.get("ISFT") or None,
            # RIFF stores samples little-endian; a PCM data chunk has one fixed rate
            byte_order="little-endian" if pcm else None, rate_mode="fixed" if pcm else None,
            format_version=bext.get("Version") if container == "BWF" else None,
            sound_field=_sound_field(fmt.channels if fmt else None),
            documents=riff.embedded_documents(r))
        if "INAM" in info:
            a.tags.setdefault("title", [info["INAM"]])
        if "IART" in info:
            a.tags.setdefault("artist", [info["IART"]])
        if "ICRD" in info:
            a.tags.setdefault("date", [info["ICRD"]])
        if "IPRD" in info:
            a.tags.setdefault("album", [info["IPRD"]])
        # RIFF INFO/ISRC is "source" (ISRC = International Standard Recording Code is NOT meant):
        # it is deliberately never read as an ISRC.
        for cid in ("iXML", "axml"):
            if cid in r.payloads:
                _xml_tags(a, r.payloads[cid], f"{shown} ({cid} chunk)")
        if "MD5 " in r.payloads and r.data_offset is not None and not r.truncated:
            # BWF MetaEdit stores the digest as one little-endian 128-bit number, so the bytes are
            # the hex digest's in reverse (MediaInfo reads the chunk the same way)
            expected = r.payloads["MD5 "][:16][::-1].hex()
            h = hashlib.md5()
            f.seek(r.data_offset)
            left = r.data_size or 0
            while left:
                chunk = f.read(min(_BLOCK * 16, left))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            found = h.hexdigest()
            method = "BWF MD5 chunk (MD5 of the data chunk payload)"
            if found == expected:
                a.essence = EssenceCheck("pass", method, "the data chunk matches its MD5 chunk", expected, found)
            else:
                a.essence = EssenceCheck("fail", method, "the data chunk does not match its MD5 chunk", expected, found)
                a.problems.append(AudioProblem(
                    "essence-mismatch",
                    f"{shown}: the audio does not match the file's own MD5 chunk (expected {expected}, found {found}); "
                    "the audio changed after the checksum was written"))


def _xml_tags(a: AudioAnalysis, payload: bytes, source: str) -> None:
    payload = payload.rstrip(b"\x00")
    if not payload.strip():
        return
    try:
        root = parse_untrusted(payload, source=source)
    except Exception as exc:
        a.warnings.append(f"{source}: ignored ({exc})")
        return
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        local = el.tag.rsplit("}", 1)[-1].upper()
        text = (el.text or "").strip()
        if local == "ISRC" and text:
            a.tags.setdefault("isrc", []).append(normalize_isrc(text))
        elif local == "IDENTIFIER" and (el.get("typeLabel") or el.get("typelabel") or "").upper() == "ISRC":
            value = "".join(str(t).strip() for t in el.itertext())
            if value:
                a.tags.setdefault("isrc", []).append(normalize_isrc(value))
        elif local == "TITLE" and text:
            a.tags.setdefault("title", [text])
    if "isrc" in a.tags:
        a.tags["isrc"] = list(dict.fromkeys(a.tags["isrc"]))


def _flac(a: AudioAnalysis, shown: str) -> None:
    import mutagen.flac
    import soundfile

    m = mutagen.flac.FLAC(a.path)  # type: ignore[no-untyped-call]
    info = m.info
    frames = int(info.total_samples)
    a.technical = AudioTechnical(
        codec="FLAC", container="FLAC", sample_rate=int(info.sample_rate), bit_depth=int(info.bits_per_sample),
        channels=int(info.channels), duration=frames / info.sample_rate if info.sample_rate else None,
        frames=frames, bitrate=int(info.bitrate) if info.bitrate else None, lossy=False,
        creating_application=getattr(m.tags, "vendor", None),
        # FLAC frames are coded at whatever size each block compresses to
        rate_mode="variable", sound_field=_sound_field(int(info.channels)))
    _mutagen_tags(a, m)
    expected = bytes.fromhex(f"{int(info.md5_signature):032x}").hex()
    method = "FLAC STREAMINFO MD5 of the decoded samples"
    bits = int(info.bits_per_sample)
    width = (bits + 7) // 8
    h = hashlib.md5()
    decoded = 0
    error = ""
    # A read that fails returns nothing of its block, so after a failure the rest is read again
    # from where decoding stopped in ever smaller blocks: the count is what can really be decoded.
    blocksize = _BLOCK
    while blocksize:
        try:
            with soundfile.SoundFile(a.path) as sf:
                if decoded:
                    sf.seek(decoded)
                for block in sf.blocks(blocksize=blocksize, dtype="int32", always_2d=True):
                    ints = np.asarray(block, dtype=np.int32) >> (32 - bits)
                    h.update(ints.astype("<i4").reshape(-1).view(np.uint8).reshape(-1, 4)[:, :width].tobytes())
                    decoded += len(ints)
            break
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            error = error or f" (the decoder said: {str(exc).removeprefix('Error : ')})"
            if not frames or (os.path.getsize(a.path) > 0 and decoded >= frames):
                raise
            blocksize //= 2
    if frames and decoded < frames:
        a.problems.append(AudioProblem(
            "truncated", f"{shown}: truncated or damaged: STREAMINFO announces {frames} samples per channel, "
                         f"only {decoded} could be decoded{error}"))
        a.essence = EssenceCheck("fail", method, f"decoding stopped after {decoded} of {frames} samples", expected, h.hexdigest())
        return
    found = h.hexdigest()
    if int(info.md5_signature) == 0:
        a.essence = EssenceCheck("unverifiable", method, "the encoder left the STREAMINFO MD5 unset (all zeros)", None, found)
        a.warnings.append(f"{shown}: the FLAC STREAMINFO MD5 is not set, so the audio cannot be checked against it (unverifiable, not damage)")
    elif found == expected:
        a.essence = EssenceCheck("pass", method, "decoded audio matches STREAMINFO MD5", expected, found)
    else:
        a.essence = EssenceCheck("fail", method, "decoded audio does not match STREAMINFO MD5", expected, found)
        a.problems.append(AudioProblem(
            "essence-mismatch",
            f"{shown}: the decoded audio does not match the FLAC STREAMINFO MD5 (expected {expected}, found {found}); "
            "the audio changed after encoding"))


_TAG_KEYS = {
    # our name: (Vorbis / easy keys, ID3 frame, MP4 atom)
    "title": ("title", "TIT2", "\xa9nam"),
    "artist": ("artist", "TPE1", "\xa9ART"),
    "album": ("album", "TALB", "\xa9alb"),
    "date": ("date", "TDRC", "\xa9day"),
    "tracknumber": ("tracknumber", "TRCK", "trkn"),
    "discnumber": ("discnumber", "TPOS", "disk"),
    "composer": ("composer", "TCOM", "\xa9wrt"),
    "genre": ("genre", "TCON", "\xa9gen"),
    "label": ("organization", "TPUB", "----:com.apple.iTunes:LABEL"),
    "isrc": ("isrc", "TSRC", "----:com.apple.iTunes:ISRC"),
    # the notices as the tag gives them, "1978 Example Records"; intake adds the symbol
    "copyright": ("copyright", "TCOP", "cprt"),
    "pline": ("pline", "TPRO", "----:com.apple.iTunes:PLINE"),
}


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if hasattr(raw, "text"):
        raw = raw.text
    if not isinstance(raw, list | tuple):
        raw = [raw]
    out = []
    for v in raw:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, tuple):         # MP4 trkn/disk: (number, total)
            v = v[0]
        out.append(str(v).strip())
    return [v for v in out if v]


def _mutagen_tags(a: AudioAnalysis, m: Any) -> None:
    tags = m.tags
    if tags is None:
        return
    kind = type(tags).__name__
    for ours, (vorbis, id3, mp4) in _TAG_KEYS.items():
        try:
            if kind == "ID3":
                vals = _values(tags.get(id3))
            elif kind == "MP4Tags":
                vals = _values(tags.get(mp4))
            else:
                vals = _values(tags.get(vorbis))
        except (KeyError, ValueError):
            vals = []
        if ours == "isrc":
            vals = [normalize_isrc(v) for v in vals]
        if vals:
            a.tags[ours] = vals


def _other(a: AudioAnalysis, shown: str) -> None:
    import mutagen

    try:
        m = mutagen.File(a.path)
    except mutagen.MutagenError:
        why = _truncation(a)
        if why is None:
            raise
        a.problems.append(AudioProblem("truncated", f"{shown}: truncated or damaged: {why}"))
        return
    if m is None:
        a.problems.append(AudioProblem("undecodable", f"{shown}: its format was recognised but it cannot be read as audio"))
        return
    info = m.info
    name = type(m).__name__
    codec = {"MP3": "MP3", "OggVorbis": "Vorbis", "OggOpus": "Opus", "OggFLAC": "FLAC", "AIFF": "PCM",
             "MP4": getattr(info, "codec", "AAC"), "AAC": "AAC"}.get(name, name)
    if codec == "mp4a.40.2" or (isinstance(codec, str) and codec.startswith("mp4a")):
        codec = "AAC"
    elif codec == "alac":
        codec = "ALAC"
    lossy = a.family in LOSSY_FAMILIES or codec in ("AAC", "Vorbis", "Opus", "MP3")
    rate = getattr(info, "sample_rate", None)
    if rate is None and codec == "Opus":
        rate = 48000        # Opus always decodes at 48 kHz; mutagen reports no rate for it
    length = getattr(info, "length", None)
    frames = round(length * rate) if length and rate else None
    container = {"mp3": "MP3", "aac": "ADTS", "ogg": "Ogg", "aiff": "AIFF", "mp4": "MP4"}.get(a.family or "")
    channels = getattr(info, "channels", None)
    order = rate_mode = version = None
    sound_field = _sound_field(channels)
    if name == "AIFF":
        comm = _aiff_comm(a.path)
        if comm is not None:
            frames, kind = comm
            codec, container, order = _AIFC_KINDS.get(kind, (f"AIFF-C {kind.strip()}", "AIFF-C", None))
            rate_mode = "fixed" if order else None
    elif name == "OggVorbis":
        rate_mode = _vorbis_rate_mode(a.path)
    elif name == "MP3":
        rate_mode = _MP3_RATE_MODES.get(str(getattr(info, "bitrate_mode", "")))
        version = f"MPEG-{info.version:g} Layer {'I' * info.layer}"
        sound_field = _MP3_MODES.get(getattr(info, "mode", -1))
    a.technical = AudioTechnical(
        codec=codec, container=container, sample_rate=int(rate) if rate else None,
        bit_depth=getattr(info, "bits_per_sample", None) or None, channels=channels,
        duration=float(length) if length is not None else None, frames=frames,
        bitrate=int(info.bitrate) if getattr(info, "bitrate", None) else None, lossy=lossy,
        creating_application=(str(getattr(info, "encoder_info", "") or "") or None),
        byte_order=order, rate_mode=rate_mode, format_version=version, sound_field=sound_field)
    _mutagen_tags(a, m)
    why = _truncation(a, getattr(info, "frame_offset", None))
    if why:
        a.problems.append(AudioProblem("truncated", f"{shown}: truncated or damaged: {why}"))


def _sound_field(channels: int | None) -> str | None:
    # WAVE, AIFF, FLAC and Vorbis all define two channels as left then right; more channels
    # need a channel mask or mapping to name the layout, so nothing is said for them.
    return {1: "mono", 2: "stereo"}.get(channels or 0)


_MP3_MODES = {0: "stereo", 1: "joint stereo", 2: "dual channel", 3: "mono"}
_MP3_RATE_MODES = {"BitrateMode.CBR": "fixed", "BitrateMode.VBR": "variable", "BitrateMode.ABR": "variable"}
#: AIFF / AIFF-C compression type -> (codec, container, byte order of the samples)
_AIFC_KINDS: dict[str, tuple[str, str, str | None]] = {
    "": ("PCM", "AIFF", "big-endian"), "NONE": ("PCM", "AIFF-C", "big-endian"),
    "twos": ("PCM", "AIFF-C", "big-endian"), "sowt": ("PCM", "AIFF-C", "little-endian"),
    "in24": ("PCM", "AIFF-C", "big-endian"), "in32": ("PCM", "AIFF-C", "big-endian"),
    # 24 and 32 bit little-endian, as libsndfile writes them
    "42n1": ("PCM", "AIFF-C", "little-endian"), "23ni": ("PCM", "AIFF-C", "little-endian"),
    "fl32": ("PCM (IEEE float)", "AIFF-C", "big-endian"), "FL32": ("PCM (IEEE float)", "AIFF-C", "big-endian"),
    "fl64": ("PCM (IEEE float)", "AIFF-C", "big-endian"), "FL64": ("PCM (IEEE float)", "AIFF-C", "big-endian"),
}


def _vorbis_rate_mode(path: str) -> str | None:
    """Fixed or variable, from the Vorbis identification header's three bitrate fields.

    The Vorbis I specification (section 4.2.2): all three equal means a fixed rate; a nominal,
    maximum or minimum alone means a variable one; none set means the encoder does not say.
    mutagen reads only the nominal rate.
    """
    with open(path, "rb") as f:
        head = f.read(512)
    at = head.find(b"\x01vorbis")
    if at < 0 or len(head) < at + 28:
        return None
    maximum, nominal, minimum = struct.unpack_from("<iii", head, at + 16)
    if maximum == nominal == minimum > 0:
        return "fixed"
    return "variable" if any(v > 0 for v in (maximum, nominal, minimum)) else None


def _aiff_comm(path: str) -> tuple[int, str] | None:
    """The COMM chunk's sample frame count and compression type ("" for plain AIFF), or None.

    mutagen gives the rate, depth and channels but neither of these: the frame count is the
    exact length, and the compression type says whether an AIFF-C holds PCM and in which byte order.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        size = os.fstat(f.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(8)
            length = int.from_bytes(header[4:8], "big")
            if header[:4] == b"COMM":
                body = f.read(min(length, 64))
                if len(body) < 18:
                    return None
                kind = body[18:22].decode("latin-1") if head[8:12] == b"AIFC" and len(body) >= 22 else ""
                return int.from_bytes(body[2:6], "big"), kind
            pos += 8 + length + (length & 1)
    return None


def _truncation(a: AudioAnalysis, first: int | None = None) -> str | None:
    """Why an MP3, AIFF or Ogg file is cut short, from its own structure; None when it is whole.

    Their headers carry no sample count that survives a cut (libsndfile and mutagen measure
    what is there), so the structure is walked: a frame, chunk or page that runs past the end.
    """
    cut = {"mp3": _mp3_truncation, "aiff": _aiff_truncation, "ogg": _ogg_truncation}.get(a.family or "")
    if cut is None:
        return None
    with open(a.path, "rb") as f:
        if first is None:
            first = _id3_end(f.read(10))
        if first > a.size:
            return f"its ID3v2 tag announces {first} bytes, the file holds {a.size}"
        return cut(f, a.size, first)


def _id3_end(head: bytes) -> int:
    if head[:3] == b"ID3" and len(head) >= 10:
        return 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]) + (10 if head[5] & 0x10 else 0)
    return 0


def _mp3_truncation(f: BinaryIO, size: int, first: int) -> str | None:
    """Why an MPEG audio stream is cut short, or None.

    The frame headers say how long each frame is: a last frame that runs past the end of the
    file was cut. A LAME/Xing header also announces the stream's length in bytes, which catches
    a cut that happens to fall on a frame boundary.
    """
    from mutagen.mp3 import HeaderNotFoundError, MPEGFrame
    from mutagen.mp3._util import XingHeader, XingHeaderError

    end = size
    f.seek(max(0, size - 128))
    if size >= 128 and f.read(3) == b"TAG":
        end -= 128                      # ID3v1 tag
    pos, count, declared = first, 0, None
    while pos < end:
        f.seek(pos)
        try:
            frame = MPEGFrame(f)  # type: ignore[no-untyped-call]
        except HeaderNotFoundError:
            break                       # trailing tags or padding: not MPEG frames
        nxt = f.tell()                  # MPEGFrame leaves the file at the end of the frame
        if count == 0 and frame.layer == 3:
            f.seek(pos + XingHeader.get_offset(frame))  # type: ignore[no-untyped-call]
            try:
                xing = XingHeader(f)  # type: ignore[no-untyped-call]
                declared = xing.bytes if xing.bytes > 0 else None
            except XingHeaderError:
                pass
        if nxt > end:
            return (f"the MPEG frame at byte {pos} is {nxt - pos} bytes long but the file ends "
                    f"{end - pos} bytes after it starts")
        pos, count = nxt, count + 1
    if declared is not None and end - first < declared:
        return f"its Xing/LAME header announces {declared} bytes of MPEG audio, the file holds {end - first}"
    return None


def _aiff_truncation(f: BinaryIO, size: int, _first: int) -> str | None:
    """Why an AIFF file is cut short (a chunk, such as the SSND sound data, runs past the end), or None."""
    f.seek(0)
    head = f.read(12)
    form = int.from_bytes(head[4:8], "big")
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        header = f.read(8)
        cid, length = header[:4].decode("latin-1"), int.from_bytes(header[4:8], "big")
        if pos + 8 + length > size:
            return (f"its {cid.strip()} chunk announces {length} bytes, the file holds only {size - pos - 8} of them "
                    f"({size} of the {form + 8} bytes the FORM header announces)")
        pos += 8 + length + (length & 1)
    if form + 8 > size:
        return f"the FORM header announces {form + 8} bytes, the file holds {size}"
    return None


def _ogg_truncation(f: BinaryIO, size: int, _first: int) -> str | None:
    """Why an Ogg stream is cut short (a page runs past the end, or the last page does not end the stream), or None."""
    pos, last_flags, serials_ended, serials = 0, 0, set(), set()
    while pos + 27 <= size:
        f.seek(pos)
        header = f.read(27)
        if header[:4] != b"OggS":
            return f"no Ogg page where one should start, at byte {pos}"
        flags, serial, nsegs = header[5], header[14:18], header[26]
        table = f.read(nsegs)
        body = sum(table)
        if len(table) < nsegs or pos + 27 + nsegs + body > size:
            return f"the Ogg page at byte {pos} runs {pos + 27 + nsegs + body - size} bytes past the end of the file"
        serials.add(serial)
        if flags & 0x04:
            serials_ended.add(serial)
        last_flags = flags
        pos += 27 + nsegs + body
    if pos < size:
        return f"the file ends inside an Ogg page header at byte {pos}"
    if serials - serials_ended:
        return f"the stream has no end-of-stream page after {size} bytes (last page flags 0x{last_flags:02x})"
    return None

"""Format identification: PRONOM signatures through fido, checked against what the bytes say.

fido (Open Preservation Foundation) matches PRONOM byte signatures; it runs in-process here with
its PRONOM signature file and without its extension fallback, so a file is never identified by
its name alone. Alongside it, a small table of our own recognises the audio families by their
magic numbers (``RIFF....WAVE``, ``fLaC``, MPEG frame sync, ``OggS``, ``FORM....AIFF``, ``ftyp``)
so that a file with no PRONOM match (an MP3 without an ID3 tag has no PRONOM signature) is still
recognised, and so a name that lies about the content (an MP3 named ``.wav``) is caught.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from preserve.model import FormatIdentification

# family -> (extensions, MIME type, table PUID, name) for our fallback table (DESIGN.md's PUIDs)
FAMILIES: dict[str, tuple[frozenset[str], str, str, str]] = {
    "wave": (frozenset({".wav", ".wave", ".bwf", ".rf64", ".bw64"}), "audio/x-wav", "fmt/141", "Waveform Audio"),
    "flac": (frozenset({".flac"}), "audio/flac", "fmt/279", "FLAC (Free Lossless Audio Codec)"),
    "mp3": (frozenset({".mp3"}), "audio/mpeg", "fmt/134", "MPEG 1/2 Audio Layer 3"),
    "aac": (frozenset({".aac"}), "audio/aac", "fmt/1812", "AAC in ADTS"),
    "ogg": (frozenset({".ogg", ".oga", ".opus"}), "audio/ogg", "fmt/203", "Ogg Vorbis Codec Compressed Multimedia File"),
    "aiff": (frozenset({".aif", ".aiff", ".aifc"}), "audio/x-aiff", "fmt/414", "Audio Interchange File Format"),
    "mp4": (frozenset({".m4a", ".mp4", ".m4b"}), "audio/mp4", "fmt/199", "MPEG-4 Media File"),
}
AUDIO_EXTENSIONS = frozenset().union(*(exts for exts, *_ in FAMILIES.values()))
LOSSY_FAMILIES = frozenset({"mp3", "aac"})
FAMILY_NAMES = {"wave": "a WAVE file", "flac": "a FLAC file", "mp3": "an MP3 file", "aac": "an AAC (ADTS) file",
                "ogg": "an Ogg file", "aiff": "an AIFF file", "mp4": "an MPEG-4 audio file"}


def family_of_extension(name: str) -> str | None:
    """The audio family a file name claims, from its extension (None when not an audio name)."""
    ext = os.path.splitext(name)[1].lower()
    for family, (exts, *_rest) in FAMILIES.items():
        if ext in exts:
            return family
    return None


def _mpeg_frame(head: bytes, at: int) -> str | None:
    if at + 4 > len(head) or head[at] != 0xFF or head[at + 1] & 0xE0 != 0xE0:
        return None
    layer = (head[at + 1] >> 1) & 0x03
    version = (head[at + 1] >> 3) & 0x03
    if layer == 0 and head[at + 1] & 0xF6 == 0xF0:
        return "aac"                    # ADTS: sync 0xFFF, layer 00
    if layer == 0 or version == 1 or (head[at + 2] >> 4) == 0x0F:
        return None                     # reserved layer/version, bad bitrate index: not MPEG audio
    return "mp3" if layer == 1 else "mpeg"


def _skip_id3(head: bytes) -> int:
    if head[:3] == b"ID3" and len(head) >= 10:
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        return 10 + size + (10 if head[5] & 0x10 else 0)
    return 0


def sniff_family(head: bytes) -> str | None:
    """The audio family the first bytes of a file show, or None when they show no audio."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wave"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "mp4"
    start = _skip_id3(head)
    if start and head[start:start + 4] == b"fLaC":
        return "flac"
    if start or head[:1] == b"\xff":
        kind = _mpeg_frame(head, start) if start < len(head) else None
        if kind in ("mp3", "aac"):
            return kind
        if start and kind is None:
            return "mp3"                # an ID3 tag announces MPEG audio even when the tag runs long
    return None


def describe_content(head: bytes) -> str:
    """A few words on what non-audio bytes look like, for messages."""
    if not head:
        return "it is empty"
    sample = head[:512]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        return "it holds plain text"
    return f"its first bytes ({head[:8].hex(' ')}) are not an audio signature"


@dataclass(frozen=True)
class _FidoFormat:
    puid: str
    name: str
    mime: str | None
    version: str | None


class FormatIdentifier:
    """Identify files by PRONOM signature with fido; one instance per run (fido is not thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fido: Any = None
        self.tool = "fido"
        self.tool_version = ""
        self.signature_version = ""
        self.error: str | None = None
        try:
            import fido
            from fido import CONFIG_DIR
            from fido.fido import Fido

            versions = ElementTree.parse(os.path.join(CONFIG_DIR, "versions.xml")).getroot()
            pronom = versions.findtext("pronomVersion") or ""
            sig_file = versions.findtext("pronomSignature") or f"formats-v{pronom}.xml"
            self._fido = Fido(quiet=True, nocontainer=True, format_files=[sig_file],
                              handle_matches=lambda *a: None)
            self.tool_version = str(fido.__version__)
            self.signature_version = f"PRONOM v{pronom}"
        except Exception as exc:  # fido missing or its signature files unreadable: use our table
            self.error = f"fido could not be loaded ({exc}); formats identified from preserve's own table"

    def _match(self, path: str, size: int) -> list[_FidoFormat]:
        if self._fido is None or size == 0:
            return []
        with self._lock, open(path, "rb") as f:
            bof, eof, _ = self._fido.get_buffers(f, size, seekable=True)
            matches = self._fido.match_formats(bof, eof)
        out = []
        for fmt, _sig in matches:
            out.append(_FidoFormat(self._fido.get_puid(fmt), fmt.findtext("name") or "",
                                   fmt.findtext("mime"), fmt.findtext("version")))
        return out

    def identify(self, path: str, size: int, family: str | None) -> FormatIdentification:
        """PRONOM identification of ``path``; ``family`` is what :func:`sniff_family` saw."""
        matches = self._match(path, size)
        if matches:
            # Prefer an audio format when fido's list holds several (e.g. generic RIFF and WAVE).
            audio = [m for m in matches if (m.mime or "").startswith("audio/")] or matches
            best = audio[0]   # fido has already dropped matches that a better one has priority over
            note = None
            if len(audio) > 1:
                note = "fido also matched " + ", ".join(f"{m.puid} ({m.name})" for m in audio if m is not best)
            return FormatIdentification(best.puid, best.name, best.version, best.mime or (FAMILIES[family][1] if family else None),
                                        self.tool, self.tool_version, self.signature_version, "signature", note)
        if family is not None:
            _exts, mime, puid, name = FAMILIES[family]
            why = "no PRONOM signature matched; identified by preserve's magic-number table"
            return FormatIdentification(puid, name, None, mime, "preserve", _own_version(), "", "table", why)
        return FormatIdentification(None, None, None, None, self.tool, self.tool_version, self.signature_version,
                                    "signature", "no PRONOM signature matched and no audio signature was found")


def _own_version() -> str:
    from preserve import __version__

    return __version__


_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


def normalize_isrc(value: str) -> str:
    """'GB-ABC-24-00001' and 'gbabc2400001' both become 'GBABC2400001'."""
    return re.sub(r"[\s-]", "", value).upper()


def valid_isrc(value: str) -> bool:
    return bool(_ISRC.match(normalize_isrc(value)))

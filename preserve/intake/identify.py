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
            matches = _match_formats(self._fido, bof, eof)
        out: list[_FidoFormat] = []
        for fmt, _sig in matches:
            if any(o.puid == self._fido.get_puid(fmt) for o in out):
                continue                 # several signatures of one format matched
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


def _match_formats(fido: Any, bof: bytes, eof: bytes) -> list[tuple[Any, str]]:
    """fido's ``match_formats``, with gap-chain patterns matched without backtracking.

    Some PRONOM patterns are chains of byte fragments separated by ``.{m,n}`` gaps (MP3's
    fmt/134 end-of-file pattern chains seven frame headers). Python's ``re`` backtracks through
    every way of placing the gaps, which on an ordinary low-bitrate MP3 runs for hours
    (openpreserve/fido#233). The same language is matched here in linear passes; a pattern
    of any other shape goes to ``re`` as fido sends it. Every pattern of a signature must
    match, so the order they are tried in does not change the result.
    """
    result: list[tuple[Any, str]] = []
    for fmt in fido.formats:
        if not fido.as_good_as_any(fmt, result):
            continue
        for sig in fido.get_signatures(fmt):
            success = True
            for pat in fido.get_patterns(sig):
                pos = fido.get_pos(pat)
                buffer = eof if pos == "EOF" else bof
                try:
                    matched = _pattern_matches(fido.get_regex(pat), buffer, anchored=pos == "BOF")
                except re.error:
                    matched = False          # fido, too, skips a signature whose pattern does not compile
                if not matched:
                    success = False
                    break
            if success:
                result.append((fmt, sig.findtext("name")))
    return [m for m in result if fido.as_good_as_any(m[0], result)]


_GAP = re.compile(rb"\.\{(\d+),(\d+)\}|\.\{(\d+)\}")
_PLAIN = re.compile(rb"(?:\\x[0-9a-fA-F]{2}|\\[^xAZbBdDsSwW0-9]|\[(?:\\x[0-9a-fA-F]{2}|\\.|[^\]\\])+\]|[^\\[\](){}*+?|^$])*")
_chains: dict[bytes, list[tuple[int, int, re.Pattern[bytes] | None, int]] | None] = {}


def _chain(regex: bytes) -> list[tuple[int, int, re.Pattern[bytes] | None, int]] | None:
    """``regex`` as (gap min, gap max, fragment, fragment width) steps, or None when it is not a gap chain.

    A leading ``\\A`` becomes an anchor, a trailing ``\\Z`` a final step with no fragment.
    """
    if regex in _chains:
        return _chains[regex]
    body = regex.removeprefix(b"(?s)")
    steps: list[tuple[int, int, re.Pattern[bytes] | None, int]] | None = []
    lead = body.startswith(b"\\A")
    trail = body.endswith(b"\\Z")
    body = body[2 if lead else 0:len(body) - (2 if trail else 0)]
    gaps = list(_GAP.finditer(body))
    if len(gaps) < 2:
        steps = None
    else:
        pieces, low, high, at = [], 0, 0, 0
        for g in gaps:
            pieces.append((low, high, body[at:g.start()]))
            low = int(g.group(1) or g.group(3))
            high = int(g.group(2) or g.group(3))
            at = g.end()
        pieces.append((low, high, body[at:]))
        assert steps is not None
        for lo, hi, frag in pieces:
            if not _PLAIN.fullmatch(frag):
                steps = None
                break
            if frag:
                steps.append((lo, hi, re.compile(b"(?s)(?=" + frag + b")"), _width(frag)))
            elif steps and steps[-1][2] is None:
                steps[-1] = (steps[-1][0] + lo, steps[-1][1] + hi, None, 0)
            else:
                steps.append((lo, hi, None, 0))
        if steps is not None:
            steps.append((0, 0, None, 0) if not trail else (0, 0, None, -1))
            steps.insert(0, (0, 0, None, 1 if lead else 0))
    _chains[regex] = steps
    return steps


def _width(fragment: bytes) -> int:
    return len(re.sub(rb"\\x[0-9a-fA-F]{2}|\\.|\[(?:\\x[0-9a-fA-F]{2}|\\.|[^\]\\])+\]", b"_", fragment))


def _pattern_matches(regex: bytes, buffer: bytes, *, anchored: bool) -> bool:
    """Does ``regex`` match ``buffer`` (at its start when ``anchored``, as ``re.match``; else anywhere)?"""
    steps = _chain(regex)
    if steps is None:
        return (re.match if anchored else re.search)(regex, buffer) is not None
    n = len(buffer)
    # reachable end positions, as sorted disjoint [lo, hi] intervals
    reach = [(0, 0)] if anchored or steps[0][3] == 1 else [(0, n)]
    for lo, hi, frag, width in steps[1:]:
        reach = _merge([(a + lo, min(b + hi, n)) for a, b in reach if a + lo <= n])
        if width == -1:                  # \Z: the chain must end at the end of the buffer
            return any(a <= n <= b for a, b in reach)
        if frag is None:
            continue
        ends = []
        i = 0
        for m in frag.finditer(buffer, reach[0][0] if reach else n + 1):
            s = m.start()
            while i < len(reach) and reach[i][1] < s:
                i += 1
            if i == len(reach):
                break
            if reach[i][0] <= s and s + width <= n:
                ends.append((s + width, s + width))
        reach = _merge(ends)
        if not reach:
            return False
    return bool(reach)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _own_version() -> str:
    from preserve import __version__

    return __version__


_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


def normalize_isrc(value: str) -> str:
    """'GB-ABC-24-00001' and 'gbabc2400001' both become 'GBABC2400001'."""
    return re.sub(r"[\s-]", "", value).upper()


def valid_isrc(value: str) -> bool:
    return bool(_ISRC.match(normalize_isrc(value)))

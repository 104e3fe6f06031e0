"""Paths inside a bag: manifest encoding (RFC 8493 2.1.3) and safety on every operating system."""

from __future__ import annotations

import re
import unicodedata

_DECODE = re.compile(r"%(25|0[dD]|0[aA])")
# Before BagIt 1.0 only CR and LF were escaped (bagit-python writes and reads %0D and %0A in every
# version); a '%' was written as it is, so "a%25b.txt" in a 0.97 manifest names exactly that file.
_DECODE_BEFORE_1_0 = re.compile(r"%(0[dD]|0[aA])")
_DECODE_MAP = {"25": "%", "0d": "\r", "0a": "\n"}
#: A '%' that does not start %25, %0D or %0A: in a BagIt 1.0 manifest it was written unencoded.
_BARE_PERCENT = re.compile(r"%(?!25|0[dDaA])")

# Windows drive ("C:", "C:\x", "C:/x"), UNC ("\\server\share", "//server/share"), environment
# shortcuts ("%HomeDrive%\..."): all absolute somewhere, so never safe inside a bag.
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENV = re.compile(r"^%[A-Za-z_][A-Za-z0-9_()]*%")
_SEPARATORS = re.compile(r"[\\/]")


def encode_manifest_path(path: str) -> str:
    """Percent-encode ``%``, CR and LF with uppercase hex, as RFC 8493 2.1.3 requires."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_manifest_path(text: str, version: tuple[int, int] = (1, 0)) -> str:
    """Undo :func:`encode_manifest_path` as the bag's BagIt ``version`` wrote it; lower-case hex is
    accepted on reading.

    ``%25`` is a BagIt 1.0 rule (RFC 8493 2.1.3): before 1.0 only ``%0D`` and ``%0A`` are decoded,
    so a 0.97 bag may hold both ``a%b.txt`` and ``a%25b.txt``, each listed as it is named.
    """
    if "%" not in text:  # called for every manifest line: most have nothing to decode
        return text
    pattern = _DECODE if version >= (1, 0) else _DECODE_BEFORE_1_0
    return pattern.sub(lambda m: _DECODE_MAP[m.group(1).lower()], text)


def bare_percent(raw: str) -> bool:
    """True when ``raw`` (a path as a BagIt 1.0 manifest writes it) holds a '%' that is not the
    start of %25, %0D or %0A: a '%' its writer did not encode, read literally."""
    return "%" in raw and _BARE_PERCENT.search(raw) is not None


def code_points(name: str) -> str:
    """``name`` with every character outside ASCII shown as its code point (``Cafe\\u0301``), so
    two names that look alike on a terminal are seen to differ."""
    return "".join(c if c.isascii() and c.isprintable() else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF
                   else f"\\U{ord(c):08x}" for c in name)


def normalization_form(name: str) -> str:
    """"NFC", "NFD", or "mixed" (neither) for a name holding characters that normalization changes."""
    if unicodedata.is_normalized("NFC", name):
        return "NFC"
    if unicodedata.is_normalized("NFD", name):
        return "NFD"
    return "neither NFC nor NFD"


def unsafe_reason(path: str) -> str | None:
    """Why ``path`` (bag-relative, as written in a manifest or fetch.txt) is unsafe, or None.

    Unsafe on any operating system: ``..`` segments (with ``/`` or ``\\``), absolute POSIX paths,
    Windows drive and UNC paths, environment shortcuts such as ``%HomeDrive%``, a leading ``~``
    (a home directory to shells), NUL bytes, and empty segments.
    """
    if not path:
        return "empty path"
    if "\x00" in path:
        return "contains a NUL byte"
    if path.startswith("\\\\") or path.startswith("//"):
        return "UNC network path"
    if path.startswith("/"):
        return "absolute path"
    if path.startswith("\\"):
        return "absolute Windows path"
    if _DRIVE.match(path):
        return "Windows drive path"
    if _ENV.match(path):
        return "Windows environment-variable path"
    if path.startswith("~"):
        return "leading '~' (home directory)"
    if ".." in path and ".." in _SEPARATORS.split(path):  # called for every file: the cheap test first
        return "'..' segment escapes the bag"
    if "//" in path:
        return "empty path segment"
    return None


def normalize_manifest_path(raw: str) -> str:
    """A manifest path as tools write it, made canonical: leading ``./`` removed."""
    while raw.startswith("./"):
        raw = raw[2:]
    return raw


#: Characters that Python's ``str.splitlines`` (and so bagit-python, which reads manifests through
#: ``codecs``) treats as line ends, other than CR and LF: RFC 8493 gives them no escape.
SPLITLINES_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile(f"[{SPLITLINES_BREAKS}]")


def bagit_python_trouble(path: str) -> str | None:
    """Why bagit-python 1.9 will not find ``path`` through its manifest line, or None.

    It reads manifest lines with ``codecs`` (splitting at every :data:`SPLITLINES_BREAKS`
    character) and strips whitespace from both ends of each line. The names are valid BagIt;
    only that reader cuts them.
    """
    found = [c for c in SPLITLINES_BREAKS if c in path] if _BREAK.search(path) else []
    if found:
        shown = ", ".join(f"U+{ord(c):04X}" for c in found)
        return f"the name contains {shown}, which bagit-python reads as a line break in manifests"
    if not path or not path[-1].isspace():
        return None
    written = encode_manifest_path(path)  # CR and LF are written %0D, %0A: not whitespace there
    if written[-1].isspace():
        return f"the name ends with whitespace (U+{ord(written[-1]):04X}), which bagit-python strips from manifest lines"
    return None


def visible(path: str) -> str:
    """``path`` for a message: line breaks shown as escapes, so the name stays on one line."""
    return "".join(c.encode("unicode_escape").decode("ascii") if c in SPLITLINES_BREAKS + "\r\n" else c for c in path)


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def needs_percent_warning(path: str) -> bool:
    """True when bagit-python 1.9 and DART will not find this name (they do not decode %25)."""
    return "%" in path

"""Paths inside a bag: manifest encoding (RFC 8493 2.1.3) and safety on every operating system."""

from __future__ import annotations

import re
import unicodedata

_DECODE = re.compile(r"%(25|0[dD]|0[aA])")
_DECODE_MAP = {"25": "%", "0d": "\r", "0a": "\n"}

# Windows drive ("C:", "C:\x", "C:/x"), UNC ("\\server\share", "//server/share"), environment
# shortcuts ("%HomeDrive%\..."): all absolute somewhere, so never safe inside a bag.
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENV = re.compile(r"^%[A-Za-z_][A-Za-z0-9_()]*%")


def encode_manifest_path(path: str) -> str:
    """Percent-encode ``%``, CR and LF with uppercase hex, as RFC 8493 2.1.3 requires."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_manifest_path(text: str) -> str:
    """Undo :func:`encode_manifest_path`; lower-case hex is accepted on reading."""
    return _DECODE.sub(lambda m: _DECODE_MAP[m.group(1).lower()], text)


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
    if path.startswith("/"):
        return "absolute path"
    if path.startswith("\\\\") or path.startswith("//"):
        return "UNC network path"
    if path.startswith("\\"):
        return "absolute Windows path"
    if _DRIVE.match(path):
        return "Windows drive path"
    if _ENV.match(path):
        return "Windows environment-variable path"
    if path.startswith("~"):
        return "leading '~' (home directory)"
    for segment in re.split(r"[\\/]", path):
        if segment == "..":
            return "'..' segment escapes the bag"
    if "//" in path:
        return "empty path segment"
    return None


def normalize_manifest_path(raw: str) -> str:
    """A manifest path as tools write it, made canonical: leading ``./`` removed."""
    while raw.startswith("./"):
        raw = raw[2:]
    return raw


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def needs_percent_warning(path: str) -> bool:
    """True when bagit-python 1.9 and DART will not find this name (they do not decode %25)."""
    return "%" in path

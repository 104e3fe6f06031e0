"""Making every string that reaches XML 1.0 safe, and remembering what had to change.

XML 1.0 forbids most C0 control characters, lone surrogates and U+FFFE/U+FFFF. Broken tags in
audio files carry them routinely (a stray ``\\x00`` at the end of a RIFF INFO value, ``\\x1b`` from
an old tagger). lxml refuses such strings outright, so each one is escaped visibly as ``[U+0007]``
rather than dropped silently, and the change is recorded so the ingestion event can say so.

That visible form cannot be mapped back, so a *path* that must be found again (a payload file's
bag path, its original name) is percent-encoded instead: :func:`encode_path` / :func:`decode_path`.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

# Allowed: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: At most this many changes are listed by name; the rest are only counted (bounded memory).
MAX_LISTED = 200


def _escape(match: re.Match[str]) -> str:
    return f"[U+{ord(match.group(0)):04X}]"


@dataclass
class XmlText:
    """Cleans strings for XML 1.0 and records each field where something was escaped."""

    changes: list[str] = field(default_factory=list)
    count: int = 0
    _seen: set[str] = field(default_factory=set)
    #: Once frozen, strings are still cleaned but no longer recorded, so the summary is final.
    frozen: bool = False

    def __call__(self, value: object, where: str = "") -> str:
        """Return ``value`` as a string XML 1.0 accepts; record ``where`` if it had to change."""
        text = value if isinstance(value, str) else str(value)
        if _FORBIDDEN.search(text) is None:
            return text
        cleaned = _FORBIDDEN.sub(_escape, text)
        if where and not self.frozen and where not in self._seen:
            self._seen.add(where)
            self.count += 1
            if len(self.changes) < MAX_LISTED:
                self.changes.append(f"{where}: {cleaned}")
        return cleaned

    def freeze(self) -> None:
        """Stop recording: every value that needs it has been seen, the summary is final."""
        self.frozen = True

    def summary(self) -> str | None:
        """One sentence for an event's outcome detail, or None when nothing changed."""
        if not self.count:
            return None
        more = f" (and {self.count - len(self.changes)} more)" if self.count > len(self.changes) else ""
        return (f"{self.count} metadata value(s) held characters XML 1.0 forbids; each was written as "
                f"[U+XXXX]: " + "; ".join(self.changes) + more)


def is_xml_safe(text: str) -> bool:
    """True when ``text`` can be written into an XML 1.0 document unchanged."""
    return _FORBIDDEN.search(text) is None


def encode_path(path: str) -> str:
    """``path`` with ``%`` and every character XML 1.0 forbids percent-encoded (UTF-8), else unchanged.

    Reversible with :func:`decode_path`; bytes that were not UTF-8 in the file name (surrogate
    escapes) come back as they were.
    """
    def enc(match: re.Match[str]) -> str:
        return "".join(f"%{b:02X}" for b in match.group(0).encode("utf-8", "surrogateescape"))

    return re.sub(f"%|{_FORBIDDEN.pattern}", enc, path)


def decode_path(value: str) -> str:
    """The path :func:`encode_path` encoded."""
    return urllib.parse.unquote(value, errors="surrogateescape")

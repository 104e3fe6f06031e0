"""Text for people: strings that came from a bag, made safe to print on a terminal.

A bag carries text its maker chose: bag-info.txt values, file names, titles in a METS document.
Printed raw, an ESC (or the single-byte CSI, U+009B) in one of them is a command to the terminal:
retitle the window, clear the screen, move the cursor to rewrite lines already shown, on some
terminals even answer back as if typed. A bidirectional override (U+202E) makes a name read
differently from the characters it holds. :func:`for_people` shows each such code point as a
visible escape (``\\x1b``, ``\\u202e``, ``\\n``); every other character, accents and scripts included,
is left as it is.

Everything rendered for a person goes through it; machine output (JSON, XML, the ledger) keeps
the exact strings. A backslash is not doubled: the output is for reading, not for parsing back.
"""

from __future__ import annotations

import re

# C0 controls other than tab and newline, DEL, C1 controls (U+0080-U+009F, CSI among them), the
# Arabic letter mark, left-to-right and right-to-left marks, the line and paragraph separators
# (terminals and editors break lines at them), the bidi embeddings, overrides and isolates, and
# lone surrogates (an undecodable file name; printing one would raise instead of showing it).
_ALWAYS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_IN_VALUE = re.compile(f"[\t\n{_ALWAYS}]")
_IN_MESSAGE = re.compile(f"[{_ALWAYS}]")


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_people(text: str, *, lines: bool = False) -> str:
    """``text`` with every terminal-dangerous code point shown as an escape (``\\x1b``, ``\\u202e``).

    By default tab and newline are escaped too, as fits one value (a file name with a newline in
    it must not pass for two lines of output). ``lines=True`` keeps them, for a whole message
    whose lines are the program's own.
    """
    return (_IN_MESSAGE if lines else _IN_VALUE).sub(_visible, text)

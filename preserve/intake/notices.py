"""Copyright notices as printed on a release: the P-line and the C-line.

The P-line (``℗ 1978 Example Records``) claims the sound recording, the C-line (``© 1978 Example
Records``) the work and its packaging. A sheet cell or an embedded tag may spell the symbol
``(P)``/``(C)``, ``P``/``C``, or leave it out (ID3 TCOP and TPRO hold only "YEAR HOLDER"); each is
written with its symbol, year and holder, as the notice would be printed.
"""

from __future__ import annotations

import re

_SYMBOLS = {"p": "\u2117", "c": "\u00a9"}
_NOTICE = re.compile(r"^\s*(?:(?:\u2117|\u00a9|\((?:p|c)\)|(?:p|c)(?=\s+\d))\s*)?(?P<year>\d{4})(?:\s*[,:]\s*|\s+)(?P<holder>\S.*?)\s*$",
                     re.IGNORECASE)


def parse_notice(value: str, kind: str) -> str | None:
    """``value`` as a ``kind`` notice (``"p"`` or ``"c"``): ``"℗ 1978 Example Records"``; None when it is not one.

    A notice is a four-digit year and a holder, after an optional symbol; a notice with the other
    line's symbol (a ``©`` in the P-line cell) is not one.
    """
    m = _NOTICE.match(value)
    if not m:
        return None
    head = value.strip()[:3].lower()
    other = "c" if kind == "p" else "p"
    if head.startswith((_SYMBOLS[other], f"({other})")) or re.match(rf"{other}\s+\d", head):
        return None
    return f"{_SYMBOLS[kind]} {m.group('year')} {m.group('holder')}"


def notice_problem(column: str, value: str) -> str:
    symbol = _SYMBOLS["p" if column == "p_line" else "c"]
    return (f"{column} {value!r} is not a copyright notice; write the symbol, the year and the holder as printed on "
            f"the release, e.g. '{symbol} 1978 Example Records'")

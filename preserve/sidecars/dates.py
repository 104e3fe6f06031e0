"""Dates as archives have them: W3CDTF, or EDTF levels 0 and 1, and what each one means in MODS.

A date is checked once, when the sheet is read, and written the same way by every MODS element:
W3CDTF where the value is W3CDTF (more tools read it), EDTF otherwise. EDTF is parsed by the
``edtf`` library (the Library of Congress specification as ISO 8601-2 adopted it); only what that
library reports as level 0 or level 1 is accepted, since level 2 (``?1978-07``, ``[1667,1668]``,
exponential years) has no MODS reading beyond the text.

An EDTF interval becomes two MODS dates, ``point="start"`` and ``point="end"`` (an open or unknown
end is left out); a date marked uncertain (``?``) is ``qualifier="questionable"``, approximate
(``~``) is ``qualifier="approximate"``, both (``%``) is ``questionable`` (MODS takes one qualifier,
and a date both uncertain and approximate is above all not to be relied on). The value keeps its
EDTF marks, with ``encoding="edtf"``, so nothing of the producer's statement is lost.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from edtf.parser.parser_classes import EDTFObject

DateEncoding = Literal["w3cdtf", "edtf"]
Qualifier = Literal["approximate", "questionable", "inferred"]
Point = Literal["start", "end"]

_DAY = r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?"
_TIME = r"T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
_ZONE = r"(Z|[+-](\d{2}):(\d{2}))"
_W3CDTF = re.compile(rf"{_DAY}(?:{_TIME}{_ZONE})?")
_MARKS: dict[str, Qualifier] = {"~": "approximate", "?": "questionable", "%": "questionable"}

DATE_FORMS = ("YYYY, YYYY-MM, YYYY-MM-DD, a date and time (1978-07-14T10:30:00), an interval (1978/1981, 1978/..), "
              "or EDTF for what is approximate or uncertain (1978~, 1978?, 197X, 1978-XX)")


@dataclass(frozen=True)
class DatePart:
    """One MODS date element: its text and attributes."""

    value: str
    encoding: DateEncoding
    qualifier: Qualifier | None = None
    point: Point | None = None


def _real_day(year: str, month: str | None, day: str | None) -> bool:
    try:
        dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return False
    return True


def _real_time(hour: str, minute: str, second: str | None, zh: str | None, zm: str | None) -> bool:
    return (int(hour) < 24 and int(minute) < 60 and int(second or 0) < 60
            and int(zh or 0) < 24 and int(zm or 0) < 60)


def is_w3cdtf(value: str) -> bool:
    """True for a W3CDTF date: a year, year-month, day, or day with time and zone."""
    m = _W3CDTF.fullmatch(value)
    if not m:
        return False
    year, month, day, hour, minute, second, _frac, _zone, zh, zm = m.groups()
    return (hour is None or day is not None) and _real_day(year, month, day) and \
        (hour is None or _real_time(hour, minute, second, zh, zm))


_FULL_DAY = re.compile(r"(?<![\dX])(\d{4})-(\d{2})-(\d{2})(?![\dX])")


@functools.cache
def _edtf_library() -> tuple[Any, type[Exception], frozenset[type], type, type]:
    """The ``edtf`` parser, loaded on the first date that is not W3CDTF.

    Its grammar takes half a second to build; most sheets hold only W3CDTF dates, so a check or
    an ``init`` that never meets an EDTF date does not pay for it.
    """
    from edtf import parse_edtf
    from edtf.parser import parser_classes as c
    from edtf.parser.edtf_exceptions import EDTFParseException

    # the classes edtf gives level 0 and level 1 expressions (their level 2 subclasses are refused)
    levels = frozenset({c.Date, c.DateAndTime, c.Interval, c.Level1Interval, c.UncertainOrApproximate,
                        c.Unspecified, c.LongYear, c.Season})
    return parse_edtf, EDTFParseException, levels, c.Interval, c.UnspecifiedIntervalSection


@functools.lru_cache(maxsize=4096)
def _edtf(value: str) -> EDTFObject | None:
    # parsing costs milliseconds; a sheet repeats its dates, so each distinct one is parsed once
    if not all(_real_day(*m.groups()) for m in _FULL_DAY.finditer(value)):
        return None     # the library takes 1999-02-29; no calendar has that day
    parse_edtf, parse_error, levels, _interval, _section = _edtf_library()
    try:
        parsed = parse_edtf(value)
    except (parse_error, ValueError, OverflowError):
        return None
    return parsed if type(parsed) in levels else None


def _ordered(parsed: EDTFObject) -> bool:
    """An interval whose start is not after its end (``1981/1978`` is refused)."""
    _parse, _error, _levels, interval, section = _edtf_library()
    if not isinstance(parsed, interval):
        return True
    lower, upper = parsed.lower, parsed.upper  # type: ignore[attr-defined]
    if isinstance(lower, section) or isinstance(upper, section):
        return True
    if lower is None or upper is None:
        return True
    try:
        return bool(lower.lower_strict() <= upper.upper_strict())
    except (AttributeError, TypeError, ValueError, OverflowError):
        return False


def date_encoding(value: str) -> DateEncoding | None:
    """``w3cdtf``, ``edtf`` (level 0 or 1), or None when the value is neither (``2001-13-45``, ``summer 1978``)."""
    if is_w3cdtf(value):
        return "w3cdtf"
    parsed = _edtf(value)
    return "edtf" if parsed is not None and _ordered(parsed) else None


def _part(text: str, point: Point | None) -> DatePart:
    qualifier = _MARKS.get(text[-1:]) if text else None
    encoding: DateEncoding = "w3cdtf" if is_w3cdtf(text) else "edtf"
    return DatePart(text, encoding, qualifier, point)


def date_parts(value: str) -> tuple[DatePart, ...]:
    """The MODS date elements for a valid date (see :func:`date_encoding`); () for an invalid one."""
    encoding = date_encoding(value)
    if encoding is None:
        return ()
    if encoding == "w3cdtf" or "/" not in value:
        return (_part(value, None),)
    start, _, end = value.partition("/")
    parts = []
    if start and start != "..":
        parts.append(_part(start, "start"))
    if end and end != "..":
        parts.append(_part(end, "end"))
    return tuple(parts)


def date_kind_label(tag: str) -> str:
    """What a MODS date element says of its date, for people: ``dateCaptured`` -> ``captured``."""
    return {"dateIssued": "released", "dateCreated": "recorded", "dateCaptured": "captured"}.get(tag, tag)

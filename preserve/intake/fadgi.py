"""The FADGI guidelines for Broadcast WAVE ``bext`` fields, as warnings (never a reason to refuse).

FADGI ("Embedding Metadata in Broadcast WAVE Files", Federal Agencies Digital Guidelines
Initiative) narrows what EBU Tech 3285 allows, so that the fields can be read by machines:

- OriginationDate ``yyyy-mm-dd`` (EBU also allows other separators) and a real date;
- OriginationTime ``hh:mm:ss`` and a real time;
- CodingHistory one line per stage of the transfer chain, each ``A=...`` followed by the
  optional ``F=`` (sampling frequency), ``B=`` (bit rate), ``W=`` (word length), ``M=`` (mode)
  and ``T=`` (free text, last) fields, comma separated;
- OriginatorReference a unique identifier, the EBU R 99 unique source identifier (USID) form:
  country (2), organisation (3), serial number (12), origination time ``hhmmss`` (6), random (9).

A producer's file that does not follow them is packaged as it is (its bytes are never changed);
each warning names the file and the field so the producer can correct their tools.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from preserve.sidecars.bwf import coding_history_lines, valid_date, valid_time

_CODING_LINE = re.compile(r"A=[^,]+(?:,[FBWM]=[^,]*)*(?:,T=.*)?")
_USID = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[A-Z0-9]{12}\d{6}[A-Z0-9]{9}", re.IGNORECASE)


def fadgi_warnings(source_path: str, bext: Mapping[str, str]) -> list[str]:
    """One warning per ``bext`` field that does not follow the FADGI guidelines."""
    if not bext:
        return []
    out: list[str] = []
    where = f"{source_path}: bext"
    date = bext.get("OriginationDate")
    if date and not valid_date(date):
        out.append(f"{where} OriginationDate {date!r} is not yyyy-mm-dd as the FADGI BWF guidelines ask; it is kept as "
                   "it is, and not used as the capture date")
    time = bext.get("OriginationTime")
    if time and not valid_time(time):
        out.append(f"{where} OriginationTime {time!r} is not hh:mm:ss as the FADGI BWF guidelines ask; it is kept as "
                   "it is, and not used as the capture time")
    for n, line in enumerate(coding_history_lines(bext.get("CodingHistory", "")), 1):
        if not _CODING_LINE.fullmatch(line):
            out.append(f"{where} CodingHistory line {n} {line!r} is not 'A=...,F=...,W=...,M=...,T=...' as the FADGI "
                       "BWF guidelines ask (A= first, T= last, fields separated by commas); it is kept as it is")
    ref = bext.get("OriginatorReference")
    if ref and not _USID.fullmatch(ref):
        out.append(f"{where} OriginatorReference {ref!r} is not a unique source identifier in the EBU R 99 form the "
                   "FADGI BWF guidelines recommend (country, organisation, serial number, hhmmss, random: 32 "
                   "characters); it is kept as it is")
    return out

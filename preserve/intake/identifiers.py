"""The identifiers of a sheet row, checked: ISRC, UPC/EAN, catalogue and matrix numbers.

Each is written to MODS with the identifier type the MODS guidelines and the Library of Congress
standard identifier source list give (``isrc``, ``upc``, ``ean``, ``issue number`` for a label's
catalogue number, ``matrix number``). A value that is not what its column says is a problem
naming the row and the column: an identifier that is wrong is worse than none, because it links
the recording to someone else's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from preserve.intake.identify import normalize_isrc, valid_isrc

#: sheet column -> MODS identifier type (the release's identifiers, then the recording's)
MODS_TYPES = {"isrc": "isrc", "upc": "upc", "ean": "ean", "catalogue_number": "issue number",
              "matrix_number": "matrix number"}
_DIGITS = re.compile(r"\d+")
# A catalogue or matrix number is the label's own text (letters, digits, spaces and punctuation
# such as "ABC-123", "XZRL 4471-1A"); a line break or a control character is a paste gone wrong.
_FREE_FORM = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


@dataclass(frozen=True)
class Checked:
    """A checked identifier: the value to write (None when refused) and the problem, if any."""

    value: str | None
    problem: str | None = None


def gtin_check_digit_ok(digits: str) -> bool:
    """The GS1 check digit (UPC-A, EAN-13, EAN-8): weights 3 and 1 from the right, mod 10."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def check_isrc(value: str) -> Checked:
    """An ISRC in the ISO 3901 form: country (2 letters), registrant (3), year (2 digits), number (5)."""
    if valid_isrc(value):
        return Checked(normalize_isrc(value))       # only the spelling changes: GB-ABC-24-00001
    return Checked(None, f"isrc {value!r} is not an ISRC (CC-XXX-YY-NNNNN: country, registrant, year, number, "
                         "12 characters without the hyphens); correct it or leave the cell empty")


def check_gtin(value: str, column: str) -> tuple[Checked, str]:
    """A UPC (12 digits) or EAN (13 or 8 digits) with a right check digit; returns it and its MODS type."""
    digits = re.sub(r"[\s-]", "", value)
    if not _DIGITS.fullmatch(digits) or len(digits) not in (8, 12, 13):
        return Checked(None, f"{column} {value!r} is not a UPC or EAN (12 digits for a UPC, 13 or 8 for an EAN); "
                             "correct it or leave the cell empty"), column
    if not gtin_check_digit_ok(digits):
        return Checked(None, f"{column} {value!r} has a wrong check digit (the last digit does not match the "
                             "others); a digit was probably mistyped"), column
    return Checked(digits), "upc" if len(digits) == 12 else "ean"


def check_free_form(value: str, column: str) -> Checked:
    """A catalogue or matrix number: the label's own text, one line of at most 64 characters."""
    if _FREE_FORM.fullmatch(value):
        return Checked(value)
    return Checked(None, f"{column} {value!r} is not a {column.replace('_', ' ')} (one line of at most 64 "
                         "characters, as printed on the release); correct it or leave the cell empty")

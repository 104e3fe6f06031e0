"""Contributors with their roles: ``Sam Example (ive); Alex Example (ivr); Radio Example (brd)``.

A role is a MARC relator code (or its label, ``(interviewee)``), checked against the relator list
the package ships (``preserve/data/marc-relators.tsv``: code and label of every term of the Library
of Congress list, id.loc.gov/vocabulary/relators). MODS writes both, ``roleTerm type="code"`` and
``type="text"``, with ``authority="marcrelator"``.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from preserve.model import Contributor

_ENTRY = re.compile(r"^(?P<name>.*?)\s*\((?P<role>[^()]*)\)\s*$")


@functools.cache
def relators() -> dict[str, str]:
    """Every MARC relator code with its label: ``{"ive": "Interviewee", ...}``."""
    text = resources.files("preserve").joinpath("data/marc-relators.tsv").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, label = line.split("\t", 1)
            out[code] = label
    return out


@functools.cache
def _by_label() -> dict[str, str]:
    return {label.casefold(): code for code, label in relators().items()}


def relator_label(code: str) -> str | None:
    """The label of a relator code, or None when the list has no such code."""
    return relators().get(code)


def parse_contributors(entries: tuple[str, ...], column: str = "contributors") -> tuple[tuple[Contributor, ...], list[str]]:
    """Contributors from the cell's entries (already split at ``;``); returns them and the problems.

    A problem names the entry and says what to write; the row is added by the caller.
    """
    out: list[Contributor] = []
    problems: list[str] = []
    for entry in entries:
        m = _ENTRY.match(entry)
        if not m or not m.group("name").strip():
            problems.append(f"{column} {entry!r} gives no role; write each contributor as 'Name (code)' with a MARC "
                            "relator code, e.g. 'Sam Example (ive)' for an interviewee")
            continue
        name, role = m.group("name").strip(), m.group("role").strip()
        code = role.lower() if role.lower() in relators() else _by_label().get(role.casefold())
        if code is None:
            problems.append(f"{column} {entry!r}: {role!r} is not a MARC relator code or term (e.g. ive interviewee, "
                            "ivr interviewer, prf performer, brd broadcaster, dnr donor; the full list is at "
                            "id.loc.gov/vocabulary/relators)")
            continue
        out.append(Contributor(name, code, relators()[code]))
    return tuple(out), problems

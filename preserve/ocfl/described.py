"""The description a stored version was made from, read again for a metadata-only correction.

A version's descriptive facts come in layers, each a sheet's rows by audio file, lowest first:

- what was delivered: the DDEX ERN message the object holds in ``data/submission/``, read by
  intake's own code (its rows, and for each file what the message says beyond a sheet's columns:
  contributors, subtitle and version, P-line and C-line, original release date, parental
  warning, DDEX references), else the delivered sheet;
- the sheet of every earlier correction (``metadata/correction-vN-NAME``), oldest first.

A correction lays its sheet over them cell by cell (:meth:`Description.cells`): a cell that
gives a value wins, and an empty cell or a column the sheet does not have keeps the stored
value. So correcting a title keeps every fact the sheet does not restate, a DDEX message's
among them, and each correction starts from the one before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from preserve.intake.ddex import Delivery, TrackFacts, apply_facts, is_batch_control
from preserve.intake.ddex.detect import refusal, root_element
from preserve.intake.ddex.mapping import load_delivery
from preserve.intake.sheet import SHEET_NAMES, Sheet, read_sheet
from preserve.model import Track

OBJECTS, SUBMISSION = "data/objects/", "data/submission/"
_CORRECTION = re.compile(r"metadata/correction-v(\d+)-.+")
#: what a sheet may give that a DDEX message also gives: a value in the sheet wins over the message's
_OVER_MESSAGE = (("contributors", "contributors"), ("p_line", "p_line"), ("c_line", "c_line"))


@dataclass
class Description:
    """The stored layers of a version's description (see the module docstring)."""

    layers: list[Sheet] = field(default_factory=list)
    #: the DDEX message the object holds (its bag path), and what it says of each audio file
    message: str | None = None
    facts: dict[str, TrackFacts] = field(default_factory=dict)

    def cells(self, on_disk: Callable[[str], str]) -> dict[str, dict[str, str]]:
        """Each audio file's cells (by bag path) with every layer laid over the ones below it."""
        out: dict[str, dict[str, str]] = {}
        for sheet in self.layers:
            for row in sheet.rows:
                if row.get("file"):
                    out.setdefault(on_disk(OBJECTS + row.get("file").replace("\\", "/").removeprefix("./")), {}).update(
                        {k: v for k, v in row.cells.items() if v.strip()})
        return out

    def apply(self, track: Track, bag_path: str, cells: dict[str, str]) -> None:
        """Set on ``track`` what the message says of ``bag_path`` beyond the sheet's columns, as
        intake did; where ``cells`` give contributors or a notice, the sheet's value stays."""
        facts = self.facts.get(bag_path)
        if facts is None:
            return
        given = {attr: getattr(track, attr) for attr, column in _OVER_MESSAGE if cells.get(column, "").strip()}
        apply_facts(track, facts)
        for attr, value in given.items():
            setattr(track, attr, value)


def read_description(state: dict[str, str], locate: Callable[[str], Path], sheet_name: str | None,
                     on_disk: Callable[[str], str]) -> Description:
    """The stored layers of the version whose logical ``state`` is given; ``locate`` gives where a
    logical path's content is stored, ``sheet_name`` the delivered sheet collection.toml names."""
    out = Description()
    delivered = _message(state, locate)
    if delivered is not None:
        out.message, delivery = delivered
        out.layers.append(delivery.sheet)
        rows = {r.number: r for r in delivery.sheet.rows}
        for number, facts in delivery.facts.items():
            out.facts[on_disk(OBJECTS + rows[number].get("file"))] = facts
    else:
        for name in ([sheet_name] if sheet_name else list(SHEET_NAMES)):
            if SUBMISSION + name in state:
                out.layers.append(read_sheet(locate(SUBMISSION + name), name))
                break
    corrections = sorted((int(m.group(1)), rel) for rel in state
                         if (m := _CORRECTION.fullmatch(rel)) and rel.lower().endswith((".csv", ".json")))
    out.layers.extend(read_sheet(locate(rel), rel) for _n, rel in corrections)
    return out


def _message(state: dict[str, str], locate: Callable[[str], Path]) -> tuple[str, Delivery] | None:
    """The DDEX message at the top of ``data/submission/`` (a delivery holds one), read as intake read it."""
    found = []
    for rel in sorted(state):
        name = rel.removeprefix(SUBMISSION)
        if rel == name or "/" in name or not name.lower().endswith(".xml") or is_batch_control(name):
            continue
        root = root_element(locate(rel))
        if root is not None and root.is_ern and root.version is not None and refusal(name, root) is None:
            found.append((rel, root.version))
    if len(found) != 1:
        return None
    rel, version = found[0]
    path = locate(rel)
    delivery = load_delivery(path.parent, path.name, version)
    delivery.sheet.name = rel.removeprefix(SUBMISSION)  # named as delivered, not as stored
    return rel, delivery

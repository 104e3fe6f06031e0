"""Intake of DDEX ERN deliveries (3.8.2 and 4.1-4.3): a label's NewReleaseMessage instead of a sheet.

:func:`open_delivery` finds the delivery folder's message (or reads the one named), refuses
what preserve does not read (another message type, another version, two candidates, a dangerous
document) as problems, and returns the message read as sheet rows and producer checksums
(:class:`~preserve.intake.ddex.mapping.Delivery`) for :func:`~preserve.intake.check_collection`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from preserve.errors import UnsafeXML
from preserve.intake.ddex.detect import candidates, is_batch_control, refusal, root_element
from preserve.intake.ddex.mapping import (
    Delivery,
    TrackFacts,
    apply_facts,
    duration_warning,
    load_delivery,
    marc_role,
    technical_problems,
)

__all__ = ["Delivery", "DeliveryLookup", "TrackFacts", "apply_facts", "duration_warning", "is_batch_control",
           "marc_role", "open_delivery", "technical_problems"]


@dataclass
class DeliveryLookup:
    """The outcome of looking for a DDEX message in a collection folder."""

    delivery: Delivery | None = None
    #: every ERN file considered (each is the delivery's, not an unknown file)
    messages: list[str] = field(default_factory=list)
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)   # (code, message, file)


def open_delivery(root: Path, files: list[str], named: str | None) -> DeliveryLookup:
    """The DDEX message of ``root``: the XML file ``named`` (from ``--sheet`` or collection.toml), else
    the one top-level ERN file among ``files``. Nothing found (and nothing named) is an empty lookup.

    Raises :class:`~preserve.errors.InputError` for a message that lists no resources at all.
    """
    out = DeliveryLookup()
    if named is not None:
        found = root_element(root / named) if named in files else None
        if found is None or not found.is_ern:
            if named in files:
                out.problems.append(("sheet", f"{named}: not a DDEX ERN message (its root element is not in an "
                                              "http://ddex.net/xml/ern/ namespace)", named))
            return out
        listed = [(named, found)]
    else:
        listed = candidates(root, files)
    out.messages = [rel for rel, _ in listed]
    if not listed:
        return out
    if len(listed) > 1:
        names = " and ".join(rel for rel, _ in listed)
        out.problems.append(("sheet", f"two DDEX messages, {names}: a delivery holds one; remove one, or name the one "
                                      "to read with --sheet FILE (or 'sheet' in collection.toml [collection])", None))
        return out
    rel, found = listed[0]
    why = refusal(rel, found)
    if why is not None or found.version is None:
        out.problems.append(("ddex", why or rel, rel))
        return out
    try:
        out.delivery = load_delivery(root, rel, found.version)
    except UnsafeXML as exc:
        out.problems.append(("unsafe-xml", f"{exc}; ask the label for the message as plain ERN XML", rel))
    return out

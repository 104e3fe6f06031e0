"""The rights gate: which files the archive may keep, and on what basis.

A file is cleared when

- its rights basis is recorded (``rights_basis``), with its holder unless it is public domain;
- its copyright status is known (not ``unknown``);
- its permitted acts include ``replicate`` (a preservation copy is itself a copy);
- a ``donor`` basis names its agreement document, a ``license`` basis its licence or agreement;
- any agreement it names is a file inside the collection.

A row's rights cells form one statement. When every rights cell of a row is empty, the
``[defaults]`` statement of ``collection.toml`` covers it; when a row fills any rights cell, its own
statement stands alone (never half one and half the other: two licences are never merged).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping

from preserve.intake.sheet import RIGHTS, split_multi
from preserve.model import PERMITTED_ACTS, Rights

BASES = ("copyright", "license", "statute", "donor", "policy", "other")
STATUSES = ("copyrighted", "public domain", "unknown")


def rights_cells(row: Mapping[str, str], defaults: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The rights cells that apply to a row, and where they come from ("row" or "defaults")."""
    own = {c: row.get(c, "").strip() for c in RIGHTS}
    if any(own.values()):
        return own, "row"
    return {c: defaults.get(c, "").strip() for c in RIGHTS}, "defaults"


def _status(value: str) -> str:
    v = " ".join(value.lower().replace("-", " ").replace("_", " ").split())
    return {"publicdomain": "public domain", "pd": "public domain"}.get(v.replace(" ", ""), v)


def build_rights(cells: Mapping[str, str]) -> Rights:
    """A :class:`Rights` from the rights cells (normalised to lower case where they are vocabularies)."""
    acts = tuple(a.lower() for a in split_multi(cells.get("permitted_acts", "").replace(",", ";")))
    agreement = cells.get("agreement") or None
    return Rights(
        basis=(cells.get("rights_basis") or "").strip().lower() or None,
        holder=cells.get("rights_holder") or None,
        copyright_status=_status(cells.get("copyright_status") or "") or None,
        license=cells.get("license") or None,
        agreement=agreement,
        agreement_source=agreement,
        permitted_acts=acts,
        restriction_until=cells.get("restriction_until") or None,
        note=cells.get("rights_note") or None,
    )


def gate(rights: Rights, where: str, agreement_ok: Callable[[str], str | None]) -> list[str]:
    """Every reason the file is not cleared (empty when it is). ``where`` starts each message.

    ``agreement_ok(path)`` returns None for a document that exists inside the collection, else
    the reason it cannot be used.
    """
    out: list[str] = []
    basis, status = rights.basis, rights.copyright_status
    if not basis:
        out.append(f"{where}: not cleared: no rights_basis (one of {', '.join(BASES)})")
    elif basis not in BASES:
        out.append(f"{where}: not cleared: rights_basis {basis!r} is not one of {', '.join(BASES)}")
    if not status:
        out.append(f"{where}: not cleared: no copyright_status (copyrighted, public domain or unknown)")
    elif status not in STATUSES:
        out.append(f"{where}: not cleared: copyright_status {status!r} is not one of {', '.join(STATUSES)}")
    elif status == "unknown":
        out.append(f"{where}: not cleared: copyright_status is 'unknown'; establish the status before the archive keeps copies")
    if status == "public domain" and basis and basis != "copyright":
        out.append(f"{where}: not cleared: public domain material has rights_basis 'copyright' (found {basis!r})")
    if not rights.holder and status != "public domain":
        out.append(f"{where}: not cleared: no rights_holder")
    unknown_acts = [a for a in rights.permitted_acts if a not in PERMITTED_ACTS]
    if unknown_acts:
        out.append(f"{where}: not cleared: permitted_acts {', '.join(repr(a) for a in unknown_acts)} not among {', '.join(PERMITTED_ACTS)}")
    if "replicate" not in rights.permitted_acts:
        out.append(f"{where}: not cleared: permitted_acts does not include 'replicate'; keeping preservation copies is itself copying")
    if basis == "donor" and not rights.agreement:
        out.append(f"{where}: not cleared: rights_basis 'donor' needs the donor agreement document in 'agreement'")
    if basis == "license" and not (rights.license or rights.agreement):
        out.append(f"{where}: not cleared: rights_basis 'license' needs the licence ('license') or its agreement document ('agreement')")
    if rights.agreement:
        reason = agreement_ok(rights.agreement)
        if reason:
            out.append(f"{where}: not cleared: agreement {rights.agreement!r} {reason}")
    if rights.restriction_until and embargo_end(rights.restriction_until) is None:
        out.append(f"{where}: restriction_until {rights.restriction_until!r} is not a date (YYYY-MM-DD)")
    return out


def embargo_end(value: str) -> dt.date | None:
    """``restriction_until`` as a date; None unless it is a real calendar day written YYYY-MM-DD."""
    # date.fromisoformat alone also takes 20300101 and 2030-W01-1, which the sheet does not promise
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def embargo_warning(rights: Rights, where: str, today: dt.date) -> str | None:
    """A warning when the embargo ``rights`` carries has already ended on ``today`` (packaging records none)."""
    end = embargo_end(rights.restriction_until or "")
    if end is None or end >= today:
        return None
    return (f"{where}: restriction_until {rights.restriction_until} has passed: the embargo has ended, and the package "
            "records no restriction on dissemination (clear the cell, or give the date the embargo really ends)")

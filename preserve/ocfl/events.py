"""The PREMIS events a version's metadata records, read from its ``metadata/premis.xml``."""

from __future__ import annotations

from pathlib import Path

from preserve.ocfl.inventory import Inventory, state_of

PREMIS_NS = "http://www.loc.gov/premis/v3"


def events_of(obj: Path, inventory: Inventory, version: str) -> list[dict[str, str]]:
    """``[{type, date, detail}]`` of the events in the version's ``metadata/premis.xml`` (none when
    the bag has no PREMIS sidecar or its content was purged)."""
    state = state_of(inventory, version)
    digest = state.get("metadata/premis.xml")
    paths = inventory["manifest"].get(digest or "", [])
    if not paths:
        return []
    from preserve.xmlsafe import parse_untrusted_file

    tree = parse_untrusted_file(str(obj / paths[0]))
    out = []
    for ev in tree.iter(f"{{{PREMIS_NS}}}event"):
        out.append({
            "type": (ev.findtext(f"{{{PREMIS_NS}}}eventType") or "").strip(),
            "date": (ev.findtext(f"{{{PREMIS_NS}}}eventDateTime") or "").strip(),
            "detail": (ev.findtext(f"{{{PREMIS_NS}}}eventDetailInformation/{{{PREMIS_NS}}}eventDetail") or "").strip(),
        })
    return out

"""What a new version's metadata says about how it came to be: PREMIS events appended to its
``metadata/premis.xml`` and ``metadata/mets.xml``, and tag manifests rewritten to match.

The events are built by :mod:`preserve.sidecars.premis` (the one PREMIS writer); this module only
places them in documents that already exist. Events of earlier versions are carried forward, so
each version's PREMIS tells the object's whole history.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from lxml import etree

from preserve.bag.writer import _write_tag_manifests
from preserve.ocfl.inventory import now
from preserve.sidecars import METS_FILE, PREMIS_FILE
from preserve.sidecars.mets import PACKAGE_AMD
from preserve.sidecars.premis import PREMIS_NS, Event, event_element
from preserve.xmlsafe import parse_untrusted_file

METS_NS = "http://www.loc.gov/METS/"
_P = f"{{{PREMIS_NS}}}"
_M = f"{{{METS_NS}}}"


def store_event(kind: str, detail: str, notes: Iterable[str], outcome: str = "success") -> Event:
    """A PREMIS event of the store (``kind`` from the LoC eventType vocabulary)."""
    return Event(str(uuid.uuid4()), kind, now(), detail, outcome, list(notes))


def events_in(premis: Path) -> list[etree._Element]:
    """The ``premis:event`` elements of a standalone PREMIS document (none if it is absent)."""
    if not premis.is_file():
        return []
    return list(parse_untrusted_file(str(premis)).iter(f"{_P}event"))


def _identifier(ev: etree._Element) -> str:
    return (ev.findtext(f"{_P}eventIdentifier/{_P}eventIdentifierValue") or "").strip()


def append_events(bag: Path, earlier: list[etree._Element], events: list[Event]) -> None:
    """Add ``earlier`` events (those the bag's PREMIS lacks) and ``events`` to the bag's
    ``metadata/premis.xml`` and to the package amdSec of ``metadata/mets.xml``, where they exist."""
    premis_path, mets_path = bag / PREMIS_FILE, bag / METS_FILE
    new = [event_element(ev) for ev in events]
    if premis_path.is_file():
        root = parse_untrusted_file(str(premis_path))
        have = {_identifier(ev) for ev in root.iter(f"{_P}event")}
        adding = [copy.deepcopy(ev) for ev in earlier if _identifier(ev) not in have] + [copy.deepcopy(e) for e in new]
        _insert_events(root, adding)
        _write(premis_path, root)
    if mets_path.is_file():
        root = parse_untrusted_file(str(mets_path))
        amd = next((a for a in root.iter(f"{_M}amdSec") if a.get("ID") == PACKAGE_AMD), None)
        if amd is not None:
            have = {_identifier(ev) for ev in root.iter(f"{_P}event")}
            adding = [ev for ev in earlier if _identifier(ev) not in have] + new
            for ev in adding:
                md = etree.SubElement(amd, f"{_M}digiprovMD", ID=f"digiprovMD_store_{_identifier(ev) or uuid.uuid4()}")
                wrap = etree.SubElement(md, f"{_M}mdWrap", MDTYPE="PREMIS:EVENT")
                etree.SubElement(wrap, f"{_M}xmlData").append(copy.deepcopy(ev))
            _write(mets_path, root)


def _insert_events(root: etree._Element, events: list[etree._Element]) -> None:
    """PREMIS orders object, event, agent, rights: new events go after the last event (or object)."""
    children = list(root)
    anchor = None
    for child in children:
        if child.tag in (f"{_P}object", f"{_P}event"):
            anchor = child
    index = children.index(anchor) + 1 if anchor is not None else 0
    for offset, ev in enumerate(events):
        root.insert(index + offset, ev)


def _write(path: Path, root: etree._Element) -> None:
    tmp = path.with_name(path.name + ".new")
    etree.ElementTree(root).write(str(tmp), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    os.replace(tmp, path)


def rewrite_tag_manifests(bag: Path) -> None:
    """Rewrite every tag manifest of ``bag`` (the algorithms it already uses) after tag files changed."""
    algs = tuple(sorted(p.name[len("tagmanifest-"):-len(".txt")] for p in bag.glob("tagmanifest-*.txt")))
    for p in bag.glob("tagmanifest-*.txt"):
        p.unlink()
    _write_tag_manifests(bag, algs or ("sha256", "sha512"))

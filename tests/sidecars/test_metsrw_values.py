"""The METS as Archivematica's reader sees it: every PREMIS value read through metsrw's PREMIS plugin,
and every link an event makes resolving within the document it appears in (METS, premis.xml, the
`preserve events` export)."""

from __future__ import annotations

import hashlib
import shutil
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

NS = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3", "xlink": "http://www.w3.org/1999/xlink"}
P = "{http://www.loc.gov/premis/v3}"
PUIDS = {"data/objects/plain.wav": "fmt/141", "data/objects/bwf.wav": "fmt/704", "data/objects/big.rf64": "fmt/712",
         "data/objects/tone.flac": "fmt/279", "data/objects/tone.mp3": "fmt/134", "data/objects/tone.aiff": "fmt/414",
         "data/objects/tone.ogg": "fmt/203"}


def _els(root: etree._Element | etree._ElementTree, path: str, **variables: str) -> list[etree._Element]:
    """The elements an XPath selects (typed for mypy; lxml's xpath may return other kinds)."""
    found = root.xpath(path, namespaces=NS, **variables)  # type: ignore[arg-type]
    assert isinstance(found, list)
    return [e for e in found if isinstance(e, etree._Element)]


def _pairs(data: Any, tag: str) -> list[tuple[str, str]]:
    """(type, value) of each ``tag`` identifier in a metsrw find_text_or_all result."""
    out = []
    for entry in data:
        if hasattr(entry, f"{tag}_value"):      # metsrw gives element objects for repeated elements
            out.append((getattr(entry, f"{tag}_type"), getattr(entry, f"{tag}_value")))
        else:                                   # and nested tuples for others
            d = dict(entry[1:])
            out.append((d[f"{tag}_type"], d[f"{tag}_value"]))
    return out


def _manifest(bag: Path, alg: str) -> dict[str, str]:
    lines = (bag / f"manifest-{alg}.txt").read_text("utf-8").splitlines()
    return {path: digest for digest, path in (line.split(None, 1) for line in lines)}


@pytest.fixture(scope="module")
def read(all_formats: Any, metsrw_read: Any) -> Any:
    return metsrw_read(str(all_formats.bag / "metadata" / "mets.xml"))


def test_metsrw_reads_every_file_object(all_formats: Any, read: Any) -> None:
    bag = all_formats.bag
    sha256, sha512 = _manifest(bag, "sha256"), _manifest(bag, "sha512")
    items = [e for e in read.all_files() if e.type == "Item"]
    assert {urllib.parse.unquote(e.path.removeprefix("../")) for e in items} == set(sha256)
    for entry in items:
        path = urllib.parse.unquote(entry.path.removeprefix("../"))
        [obj] = entry.get_premis_objects()
        assert _pairs(obj.find_text_or_all("object_identifier"), "object_identifier") == [
            ("UUID", entry.file_uuid), ("local", path)]
        chars = "object_characteristics"
        assert obj.findtext(f"{chars}/size") == str((bag / path).stat().st_size)
        fixity = [(f.message_digest_algorithm, f.message_digest) for f in obj.findall(f"{chars}/fixity")]
        assert fixity == [
            ("SHA-256", sha256[path]), ("SHA-512", sha512[path])]
        assert sha256[path] == hashlib.sha256((bag / path).read_bytes()).hexdigest()
        name = obj.findtext(f"{chars}/format/format_designation/format_name")
        key = obj.findtext(f"{chars}/format/format_registry/format_registry_key")
        # PRONOM's identification of each generated format (DESIGN.md's list); a document: its media type
        assert key == PUIDS.get(path), path
        assert name
        assert obj.findtext("original_name") == path.split("/", 2)[2]


def test_metsrw_reads_every_event_and_its_agents(all_formats: Any, read: Any) -> None:
    mets = etree.parse(str(all_formats.bag / "metadata" / "mets.xml")).getroot()
    [package] = [e for e in read.all_files() if e.type == "Directory" and e.amdsecs]
    agents = {a.findtext("agent_identifier/agent_identifier_value"): (a.agent_name, a.agent_type)
              for a in package.get_premis_agents()}
    assert agents and ("preserve", "software") in agents.values() and ("fido", "software") in agents.values()
    seen: set[str] = set()
    for entry in [package, *(e for e in read.all_files() if e.type == "Item")]:
        written = _els(mets, "mets:amdSec[@ID=$id]/mets:digiprovMD//premis:event",
                             id=entry.amdsecs[0].id_string)
        events = entry.get_premis_events()
        assert len(events) == len(written) > 0
        for ev, el in zip(events, written, strict=True):
            assert ev.event_type == el.findtext("premis:eventType", namespaces=NS)
            assert ev.event_date_time == el.findtext("premis:eventDateTime", namespaces=NS) != ""
            assert ev.event_outcome == el.findtext("premis:eventOutcomeInformation/premis:eventOutcome", namespaces=NS) != ""
            linked = _pairs(ev.find_text_or_all("linking_agent_identifier"), "linking_agent_identifier")
            assert linked == [(a.findtext("premis:linkingAgentIdentifierType", namespaces=NS),
                               a.findtext("premis:linkingAgentIdentifierValue", namespaces=NS))
                              for a in el.iterfind("premis:linkingAgentIdentifier", NS)]
            assert linked and all(value in agents for _type, value in linked)
            seen.add(ev.event_type)
    # digitization: the BWF fixture's CodingHistory starts with an analogue stage
    assert seen == {"ingestion", "fixity check", "information package creation", "message digest calculation",
                    "format identification", "validation", "digitization"}


def test_without_the_version_attribute_metsrw_reads_nothing(all_formats: Any, metsrw_read: Any, tmp_path: Path) -> None:
    """Why version="3.0" is written: metsrw reads an element without it as PREMIS 2 and finds no values."""
    text = (all_formats.bag / "metadata" / "mets.xml").read_text("utf-8")
    stripped = tmp_path / "mets.xml"
    stripped.write_text(text.replace(' version="3.0"', ""), "utf-8")
    doc: Any = metsrw_read(str(stripped))
    entry = next(e for e in doc.all_files() if e.type == "Item")
    [obj] = entry.get_premis_objects()
    assert obj.find_text_or_all("object_identifier") == ()
    events = entry.get_premis_events()
    assert events and all(ev.event_type == () and ev.event_outcome == () for ev in events)


def _identifiers(root: etree._Element, kind: str) -> set[tuple[str, str]]:
    return {(i.findtext(f"{P}{kind}IdentifierType") or "", i.findtext(f"{P}{kind}IdentifierValue") or "")
            for i in root.iter(f"{P}{kind}Identifier")}


def _links(root: etree._Element, kind: str) -> set[tuple[str, str]]:
    return {(i.findtext(f"{P}linking{kind}IdentifierType") or "", i.findtext(f"{P}linking{kind}IdentifierValue") or "")
            for i in root.iter(f"{P}linking{kind}Identifier")}


def _assert_links_resolve(root: etree._Element) -> None:
    objects, agents = _identifiers(root, "object"), _identifiers(root, "agent")
    statements = _identifiers(root, "rightsStatement")
    assert _links(root, "Object") and _links(root, "Object") <= objects
    assert _links(root, "Agent") and _links(root, "Agent") <= agents
    assert _links(root, "RightsStatement") <= statements
    related = {(r.findtext(f"{P}relatedObjectIdentifierType") or "", r.findtext(f"{P}relatedObjectIdentifierValue") or "")
               for r in root.iter(f"{P}relatedObjectIdentifier")}
    assert related <= objects


def test_every_link_resolves_in_mets_and_premis(all_formats: Any) -> None:
    for name in ("mets.xml", "premis.xml"):
        _assert_links_resolve(etree.parse(str(all_formats.bag / "metadata" / name)).getroot())


def test_every_link_resolves_in_the_events_export(all_formats: Any, cli: Callable[..., Any], tmp_path: Path,
                                                  xsd: Callable[[str], etree.XMLSchema],
                                                  ledger_url: Path | str) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(all_formats.bag, bag)
    ledger = ledger_url
    assert cli("audit", bag, "--tier", "fast", "--ledger", ledger).exit_code == 0
    out = tmp_path / "events.xml"
    result = cli("events", bag, "--ledger", ledger, "-o", out)
    assert result.exit_code == 0, result.output
    doc = etree.parse(str(out))
    assert xsd("premis-v3-0.xsd").validate(doc), str(xsd("premis-v3-0.xsd").error_log)
    root = doc.getroot()
    _assert_links_resolve(root)
    # the file events of packaging point at file objects, which the export therefore carries
    files = {o.findtext(f"{P}objectIdentifier/{P}objectIdentifierValue")
             for o in root.iterfind(f"{P}object") if (o.get("{http://www.w3.org/2001/XMLSchema-instance}type") or "").endswith("file")}
    assert len(files) == len(_manifest(bag, "sha256"))
    audit = [e for e in root.iterfind(f"{P}event") if e.findtext(f"{P}eventType") == "fixity check"][-1]
    assert _links(audit, "Object") <= _identifiers(root, "object")

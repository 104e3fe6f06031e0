"""A bag's whole history as one PREMIS 3 document: packaging, audits, replicas, repairs.

- an object for the bag (``representation``), always;
- the objects, events, agents and rights of the bag's own ``metadata/premis.xml`` when it
  has one (all of them, so that every link an event makes resolves within the export) (parsed as untrusted XML; a bag made by any tool works without it);
- every audit in the ledger as a ``fixity check`` event (outcome pass/fail, one
  ``eventOutcomeDetailNote`` per finding), every replica as ``replication`` and every repair as
  ``recovery``, linked to the bag object and to the preserve version that ran it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from preserve.audit.ledger import AuditRecord, Ledger, RepairRecord, ReplicaRecord
from preserve.audit.report import finding_line
from preserve.bag.reader import open_bag
from preserve.errors import PreserveError, SourceNotFound, UnsafeXML
from preserve.safefs import LINK_REASON, LinkRefused, read_beneath
from preserve.xmlsafe import parse_untrusted

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
EVENT_TYPES = "http://id.loc.gov/vocabulary/preservation/eventType"
_P = f"{{{PREMIS_NS}}}"
_XSI_TYPE = f"{{{XSI_NS}}}type"
# characters XML 1.0 cannot hold (file names may contain them): written as \xNN instead
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass
class EventsDocument:
    xml: bytes
    events: int
    warnings: list[str] = field(default_factory=list)


def _text(value: object) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(value))


def _sub(parent: etree._Element, tag: str, text: object = None) -> etree._Element:
    el = etree.SubElement(parent, _P + tag)
    if text is not None:
        el.text = _text(text)
    return el


def _ident(parent: etree._Element, tag: str, type_: str, value: str, role: str | None = None) -> None:
    el = _sub(parent, tag)
    _sub(el, f"{tag}Type", type_)
    _sub(el, f"{tag}Value", value)
    if role is not None:
        _sub(el, "linkingAgentRole" if tag == "linkingAgentIdentifier" else "linkingObjectRole", role)


def _agent_uuid(version: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://preserve.invalid/agent/preserve/{version}"))


def _event(root: etree._Element, ident: str, type_: str, when: str, detail: str, outcome: str,
           notes: list[str], version: str, bag_id: str) -> None:
    ev = _sub(root, "event")
    _ident(ev, "eventIdentifier", "UUID", ident)
    t = _sub(ev, "eventType", type_)
    t.set("authority", "eventType")
    t.set("authorityURI", EVENT_TYPES)
    _sub(ev, "eventDateTime", when)
    _sub(_sub(ev, "eventDetailInformation"), "eventDetail", detail)
    info = _sub(ev, "eventOutcomeInformation")
    _sub(info, "eventOutcome", outcome)
    for note in notes:
        _sub(_sub(info, "eventOutcomeDetail"), "eventOutcomeDetailNote", note)
    _ident(ev, "linkingAgentIdentifier", "UUID", _agent_uuid(version), "executing program")
    _ident(ev, "linkingObjectIdentifier", "local", bag_id, "source")


def _audit_event(root: etree._Element, a: AuditRecord, bag_id: str) -> None:
    # an object in a store is audited as one of its versions: the event says which
    read = f"{a.location} (object version {a.version})" if a.version else a.location
    detail = (f"program=preserve; version={a.tool_version}; {a.tier} tier audit ({a.algorithm}) of {read} "
              f"on {a.host}, started {a.started}")
    notes = [f"{a.files} file(s), {a.bytes} bytes read"]
    notes += [finding_line(f.kind, f.file, f.message, f.expected, f.found) for f in a.findings]
    _event(root, a.uuid, "fixity check", a.ended, detail, a.outcome, notes, a.tool_version, bag_id)


def _replica_event(root: etree._Element, r: ReplicaRecord, version: str, bag_id: str) -> None:
    where = f"{r.location}" + (f" at {r.site}" if r.site else "")
    notes = [f"{r.objects} object(s), {r.bytes} bytes, started {r.started}"]
    if r.detail:
        notes.append(json.dumps(r.detail, sort_keys=True, ensure_ascii=False))
    _event(root, r.uuid, "replication", r.ended, f"program=preserve; copied to {r.target} ({where})",
           r.outcome, notes, version, bag_id)


def _repair_event(root: etree._Element, r: RepairRecord, version: str, bag_id: str) -> None:
    notes = [f"{r.file} restored from {r.source_target}"]
    if r.detail:
        notes.append(json.dumps(r.detail, sort_keys=True, ensure_ascii=False))
    _event(root, r.uuid, "recovery", r.time, f"program=preserve; file restored from a replica ({r.source_target})",
           r.outcome, notes, version, bag_id)


def _bag_premis(bag_path: Path, warnings: list[str]) -> etree._Element | None:
    """The bag's own metadata/premis.xml, read with no link followed below the bag: a link (or a
    pipe) is left out with a warning naming it, never read."""
    source = bag_path / "metadata" / "premis.xml"
    try:
        data = read_beneath(bag_path, "metadata/premis.xml")
    except FileNotFoundError:
        return None
    except LinkRefused as exc:
        warnings.append(f"{exc.filename}: {LINK_REASON}; the bag's packaging events are left out")
        return None
    except OSError as exc:
        warnings.append(f"{source}: cannot be read ({exc.strerror or exc}); its packaging events are left out")
        return None
    try:
        root = parse_untrusted(data, source=str(source))
    except UnsafeXML as exc:
        warnings.append(f"{exc}; its packaging events are left out")
        return None
    except OSError as exc:
        warnings.append(f"{source}: cannot be read ({exc.strerror}); its packaging events are left out")
        return None
    if root.tag != f"{_P}premis":
        warnings.append(f"{source}: not a PREMIS 3 document (root {root.tag}); its packaging events are left out")
        return None
    return root


def bag_events(bag: str | os.PathLike[str], ledger: Ledger | None) -> EventsDocument:
    """The PREMIS 3 history of ``bag`` (a bag folder, or an identifier or location in the ledger).

    Without a ledger, only the bag's own history (its metadata/premis.xml) is exported.
    """
    from preserve import __version__

    warnings: list[str] = []
    path = Path(bag)
    states = ledger.find_bags(os.fspath(bag)) if ledger is not None else []
    on_disk = path.is_dir()
    if not on_disk and not states:
        raise SourceNotFound(path=str(bag))
    identifier = location = ""
    if on_disk:
        try:
            opened = open_bag(path)
            identifier = opened.info_value("External-Identifier") or path.resolve().name
            location = str(path.resolve())
        except (PreserveError, OSError, UnicodeDecodeError) as exc:
            if not states:
                raise
            # a damaged bag (bagit.txt gone) is exactly when its history is wanted: the ledger knows it
            warnings.append(f"{bag}: {getattr(exc, 'strerror', None) or exc}; the bag is identified from the ledger")
    if not location:
        identifier, location = states[0].identifier, states[0].location
    audits = [a for s in states for a in ledger.audits_for(s.id)] if ledger is not None else []
    replicas = ledger.replicas_for(location) if ledger is not None and states else []
    repairs = ledger.repairs_for(location) if ledger is not None and states else []

    root = etree.Element(_P + "premis", nsmap={"premis": PREMIS_NS, "xsi": XSI_NS})
    root.set("version", "3.0")
    obj = _sub(root, "object")
    obj.set(_XSI_TYPE, "premis:representation")
    _ident(obj, "objectIdentifier", "local", identifier)
    _ident(obj, "objectIdentifier", "URI", Path(location).as_uri() if "://" not in location else location)
    _sub(obj, "originalName", Path(location).name)

    packaged = _bag_premis(path, warnings) if on_disk else None
    copied_events = copied_agents = copied_rights = []
    if packaged is not None:
        # Every object the bag's PREMIS holds comes along (files too): its events link to them,
        # and a link must resolve within the document it appears in. So do the rights statements
        # the objects link to.
        for entity in packaged.findall(f"{_P}object"):
            root.append(copy.deepcopy(entity))
        copied_events = packaged.findall(f"{_P}event")
        copied_agents = packaged.findall(f"{_P}agent")
        copied_rights = packaged.findall(f"{_P}rights")
    for ev in copied_events:
        root.append(copy.deepcopy(ev))

    # a compacted ledger says so, in the document and to the user: the gaps are deliberate
    for note in ledger.compactions_for([s.id for s in states]) if ledger is not None else []:
        said = (f"the ledger was compacted on {note.time} (kept {note.kept}): {note.removed} "
                f"audit(s) ended {note.first_removed} to {note.last_removed} are not in this history")
        root.append(etree.Comment(f" {said} "))
        warnings.append(f"{identifier}: {said}")
    history: list[tuple[str, int, object]] = [(a.ended, 0, a) for a in audits]
    history += [(r.ended, 1, r) for r in replicas] + [(r.time, 2, r) for r in repairs]
    versions = {a.tool_version for a in audits} | ({__version__} if replicas or repairs else set())
    for _when, _order, item in sorted(history, key=lambda h: (h[0], h[1])):
        if isinstance(item, AuditRecord):
            _audit_event(root, item, identifier)
        elif isinstance(item, ReplicaRecord):
            _replica_event(root, item, __version__, identifier)
        elif isinstance(item, RepairRecord):
            _repair_event(root, item, __version__, identifier)

    have_agents: set[str] = set()
    for agent in copied_agents:
        value = agent.findtext(f"{_P}agentIdentifier/{_P}agentIdentifierValue") or ""
        have_agents.add(value)
        root.append(copy.deepcopy(agent))
    for version in sorted(versions):
        if _agent_uuid(version) in have_agents:
            continue
        agent = _sub(root, "agent")
        _ident(agent, "agentIdentifier", "UUID", _agent_uuid(version))
        _sub(agent, "agentName", "preserve")
        _sub(agent, "agentType", "software")
        _sub(agent, "agentVersion", version)
    for rights in copied_rights:
        root.append(copy.deepcopy(rights))
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return EventsDocument(xml=xml, events=len(copied_events) + len(history), warnings=warnings)

"""PREMIS 3.0 elements for the package, built one small element at a time from the :class:`Plan`.

Both writers use these builders: :mod:`preserve.sidecars.mets` wraps each element in an mdWrap,
:func:`write_premis` streams them into one standalone ``premis.xml``. Event types come from the
Library of Congress preservation vocabulary (id.loc.gov/vocabulary/preservation/eventType).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from preserve.model import Rights
from preserve.sidecars.audiomd import audiomd_element
from preserve.sidecars.bwf import (
    capture_datetime,
    capture_event_type,
    coding_history_lines,
    documents_element,
)
from preserve.sidecars.ext import audio_element
from preserve.sidecars.plan import (
    DIGEST_NAMES,
    FileItem,
    Plan,
    Release,
    Statement,
    collection_folder,
)
from preserve.sidecars.xmltext import encode_path, is_xml_safe

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PREMIS_XSD = "http://www.loc.gov/standards/premis/v3/premis.xsd"
NSMAP = {"premis": PREMIS_NS, "xsi": XSI_NS}
EVENT_TYPES = "http://id.loc.gov/vocabulary/preservation/eventType"
_P = f"{{{PREMIS_NS}}}"
_XSI_TYPE = f"{{{XSI_NS}}}type"

#: The sheet's basis -> PREMIS rightsBasis (and otherRightsBasis where the basis is Other).
BASES: dict[str, tuple[str, str | None]] = {
    "copyright": ("Copyright", None), "license": ("License", None), "licence": ("License", None),
    "statute": ("Statute", None), "donor": ("Other", "Donor"), "policy": ("Other", "Policy"),
}
#: The bag path of a file object; the second type when the path had to be percent-encoded.
LOCAL_ID = "local"
LOCAL_ID_ENCODED = "local, percent-encoded"
#: Acts an embargo holds back: giving access. Keeping and migrating copies go on meanwhile.
ACCESS_ACTS = frozenset({"disseminate"})
COPYRIGHT_STATUS = {"copyrighted": "copyrighted", "public domain": "publicdomain",
                    "publicdomain": "publicdomain", "unknown": "unknown"}


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, _P + tag)
    if text is not None:
        el.text = text
    return el


def _ident(parent: etree._Element, tag: str, type_: str, value: str, role: str | None = None) -> None:
    el = _sub(parent, tag)
    _sub(el, f"{tag}Type", type_)
    _sub(el, f"{tag}Value", value)
    if role is not None:
        _sub(el, "linkingAgentRole" if tag == "linkingAgentIdentifier" else "linkingObjectRole", role)


def _root(tag: str, xsi_type: str | None = None) -> etree._Element:
    # PREMIS 3 gives object, event and agent (not rightsStatement) a version attribute; metsrw
    # reads an embedded element as PREMIS 3 only when it is there, and returns empty values otherwise.
    el = etree.Element(_P + tag, nsmap=NSMAP, version="3.0")
    if xsi_type:
        el.set(_XSI_TYPE, f"premis:{xsi_type}")
    return el


def _relationship(parent: etree._Element, subtype: str, related_uuid: str) -> None:
    rel = _sub(parent, "relationship")
    _sub(rel, "relationshipType", "structural")
    _sub(rel, "relationshipSubType", subtype)
    _ident(rel, "relatedObjectIdentifier", "UUID", related_uuid)


# ---------------------------------------------------------------------------------------- objects

def collection_object(plan: Plan) -> etree._Element:
    """The intellectual entity of the whole collection."""
    x, col = plan.text, plan.collection
    obj = _root("object", "intellectualEntity")
    _ident(obj, "objectIdentifier", "UUID", plan.collection_uuid)
    if col.identifier:
        _ident(obj, "objectIdentifier", "local", x(col.identifier, "collection identifier"))
    if col.group_identifier:
        _ident(obj, "objectIdentifier", "Bag-Group-Identifier", x(col.group_identifier, "group identifier"))
    _ident(obj, "objectIdentifier", "bag name", x(plan.staged.name, "bag name"))
    for type_, value in col.source_identifiers:
        _ident(obj, "objectIdentifier", x(type_, "identifier type"), x(value, f"collection {type_}"))
    return obj


def release_object(plan: Plan, rel: Release) -> etree._Element:
    """The intellectual entity of one release (album), part of the collection."""
    obj = _root("object", "intellectualEntity")
    _ident(obj, "objectIdentifier", "UUID", rel.uuid)
    _ident(obj, "objectIdentifier", "local", plan.text(rel.key, f"release {rel.key}"))
    _relationship(obj, "is part of", plan.collection_uuid)
    if rel.statement is not None:
        _ident(obj, "linkingRightsStatementIdentifier", "UUID", plan.statements[rel.statement].uuid)
    return obj


def file_object(plan: Plan, item: FileItem, *, audiomd: bool = False) -> etree._Element:
    """A file object: identifiers, fixity per manifest algorithm, size, format, technical metadata.

    ``audiomd`` puts the file's audioMD in the object (standalone premis.xml); the METS carries
    it in a techMD of its own instead.
    """
    x = plan.text
    obj = _root("object", "file")
    _ident(obj, "objectIdentifier", "UUID", item.uuid)
    if is_xml_safe(item.path):
        _ident(obj, "objectIdentifier", LOCAL_ID, item.path)
    else:
        _ident(obj, "objectIdentifier", LOCAL_ID_ENCODED, encode_path(item.path))
    if item.track is not None:
        for type_, value in item.track.source_identifiers:
            if type_.startswith("DDEX Resource") or type_.startswith("DDEX Technical"):
                _ident(obj, "objectIdentifier", type_, x(value, f"{item.path}: {type_}"))
    chars = _sub(obj, "objectCharacteristics")
    _sub(chars, "compositionLevel", "0")
    for alg in plan.algorithms:
        fx = _sub(chars, "fixity")
        _sub(fx, "messageDigestAlgorithm", DIGEST_NAMES.get(alg, alg))
        _sub(fx, "messageDigest", item.record.digests[alg])
        _sub(fx, "messageDigestOriginator", plan.software.name)
    _sub(chars, "size", str(item.record.size))
    fmt_el = _sub(chars, "format")
    track = item.track
    fmt = track.format if track is not None else None
    if fmt is not None and (fmt.name or fmt.puid):
        if fmt.name:
            des = _sub(fmt_el, "formatDesignation")
            _sub(des, "formatName", x(fmt.name, f"{item.path}: format name"))
            if fmt.version:
                _sub(des, "formatVersion", x(fmt.version, f"{item.path}: format version"))
        if fmt.puid:
            reg = _sub(fmt_el, "formatRegistry")
            _sub(reg, "formatRegistryName", "PRONOM")
            _sub(reg, "formatRegistryKey", x(fmt.puid, f"{item.path}: PUID"))
            _sub(reg, "formatRegistryRole", "specification")
        if fmt.method:
            _sub(fmt_el, "formatNote", f"identified by {fmt.method}" + (f" ({fmt.tool} {fmt.tool_version})" if fmt.tool else ""))
    else:
        des = _sub(fmt_el, "formatDesignation")
        _sub(des, "formatName", x(item.mime, f"{item.path}: media type"))
        note = fmt.note if fmt is not None and fmt.note else "not identified against PRONOM; format named by its media type"
        _sub(fmt_el, "formatNote", x(note, f"{item.path}: format note"))
    if track is not None:
        _creating_application(chars, plan, item)
        amd = audiomd_element(track.technical, track.essence, plan.context.started, x, item.path) if audiomd else None
        if amd is not None:
            _sub(chars, "objectCharacteristicsExtension").append(amd)
        ext = audio_element(track.technical, x, item.path)
        if ext is not None:
            _sub(chars, "objectCharacteristicsExtension").append(ext)
        documents = documents_element(track.technical.documents)
        if documents is not None:
            _sub(chars, "objectCharacteristicsExtension").append(documents)
    original = _sub(obj, "originalName", x(item.original_name, f"{item.path}: original name"))
    if not is_xml_safe(item.original_name):
        # The text shows [U+XXXX]; the link keeps the exact name, percent-encoded as a relative URI.
        original.set("simpleLink", urllib.parse.quote(item.original_name.encode("utf-8", "surrogateescape"), safe="/"))
    if item.release is not None:
        _relationship(obj, "is part of", plan.releases[item.release].uuid)
    else:
        _relationship(obj, "is part of", plan.collection_uuid)
    if item.statement is not None:
        _ident(obj, "linkingRightsStatementIdentifier", "UUID", plan.statements[item.statement].uuid)
    return obj


def _creating_application(chars: etree._Element, plan: Plan, item: FileItem) -> None:
    """The application that made the file (tags, RIFF INFO ISFT) and when (BWF OriginationDate/Time)."""
    assert item.track is not None
    tech = item.track.technical
    app, created = tech.creating_application, capture_datetime(tech.bext)
    if not app and not created:
        return
    ca = _sub(chars, "creatingApplication")
    if app:
        _sub(ca, "creatingApplicationName", plan.text(app, f"{item.path}: creating application"))
    if created:
        _sub(ca, "dateCreatedByApplication", created)


# ----------------------------------------------------------------------------------------- events

@dataclass
class Event:
    """What one PREMIS event says; the identifier is derived from the plan so both writers agree."""

    uuid: str
    type: str
    date: str
    detail: str
    outcome: str
    notes: list[str] = field(default_factory=list)
    agents: list[tuple[str, str]] = field(default_factory=list)   # (agent uuid, role)
    objects: list[tuple[str, str]] = field(default_factory=list)  # (object uuid, role)


def _program(plan: Plan) -> str:
    sw = plan.software
    return plan.text(f"program={sw.name}; version={sw.version}")


def _run_agents(plan: Plan) -> list[tuple[str, str]]:
    out = [(plan.software.uuid, "executing program")]
    if "organization" in plan.agents:
        out.append((plan.agents["organization"].uuid, "implementer"))
    if "operator" in plan.agents:
        out.append((plan.agents["operator"].uuid, "implementer"))
    return out


def file_events(plan: Plan, item: FileItem) -> Iterator[Event]:
    """The events that concern one file, each with its own outcome."""
    ctx, x = plan.context, plan.text
    when = ctx.started
    source = [(item.uuid, "source")]
    checksums = (item.track.producer_checksums if item.track is not None
                 else item.submission.producer_checksums if item.submission is not None else [])
    for n, pc in enumerate(checksums):
        notes = [f"{pc.algorithm} {pc.value} from {pc.source}"]
        if pc.outcome == "fail":
            notes.append(f"computed {pc.found}")
        yield Event(plan.ident("event", "producer-fixity", item.path, str(n)), "fixity check", when,
                    f"{_program(plan)}; compared with the checksum the producer delivered",
                    pc.outcome, [x(s, f"{item.path}: producer checksum") for s in notes],
                    _run_agents(plan), source)
    yield Event(plan.ident("event", "digest", item.path), "message digest calculation", when,
                f"{_program(plan)}; computed while copying from the source (one read)",
                "success", [", ".join(f"{DIGEST_NAMES.get(a, a)} {item.record.digests[a]}" for a in plan.algorithms)],
                _run_agents(plan), source)
    track = item.track
    if track is None:
        return
    fmt = track.format
    if fmt.tool:
        agents = _run_agents(plan)
        tool = plan.tool_agent(fmt.tool, fmt.tool_version)
        if tool is not None:
            agents = [*agents, (tool.uuid, "executing program")]
        detail = f"program={fmt.tool}; version={fmt.tool_version}" + (f"; signatures={fmt.signature_version}" if fmt.signature_version else "")
        outcome = "positive" if fmt.puid else "negative"
        note = f"{fmt.puid} {fmt.name or ''}".strip() if fmt.puid else (fmt.note or "not identified")
        if fmt.method:
            note += f" (by {fmt.method})"
        yield Event(plan.ident("event", "format", item.path), "format identification", when,
                    x(detail, f"{item.path}: format tool"), outcome, [x(note, f"{item.path}: format note")], agents, source)
    ess = track.essence
    if ess.outcome != "not applicable":
        notes = [n for n in (ess.method, ess.detail) if n]
        if ess.expected or ess.found:
            notes.append(f"expected {ess.expected or '-'}, found {ess.found or '-'}")
        if ess.accepted_damage:
            notes.append("packaged anyway as a recorded known defect")
        yield Event(plan.ident("event", "essence", item.path), "validation", when,
                    f"{_program(plan)}; embedded audio checksum verification",
                    ess.outcome, [x(n, f"{item.path}: essence check") for n in notes], _run_agents(plan), source)
    yield from capture_events(plan, item)


def capture_events(plan: Plan, item: FileItem) -> Iterator[Event]:
    """The transfer that made the file, as its BWF CodingHistory records it: one ``digitization``
    (from an analogue source) or ``capture`` event whose detail is the chain, one line per stage."""
    track = item.track
    if track is None:
        return
    bext = track.technical.bext
    lines = coding_history_lines(bext.get("CodingHistory", ""))
    if not lines:
        return
    x = plan.text
    agents = []
    originator = plan.originator_agent(bext.get("Originator", ""))
    if originator is not None:
        agents.append((originator.uuid, "implementer"))
    notes = ["as recorded by the file's own BWF bext CodingHistory; the date is its OriginationDate and "
             "OriginationTime" if capture_datetime(bext) else
             "as recorded by the file's own BWF bext CodingHistory; the file gives no readable origination date"]
    if bext.get("OriginatorReference"):
        notes.append(f"OriginatorReference {bext['OriginatorReference']}")
    yield Event(plan.ident("event", "capture", item.path), capture_event_type(lines),
                capture_datetime(bext) or "unknown", x("\n".join(lines), f"{item.path}: CodingHistory"), "success",
                [x(n, f"{item.path}: bext") for n in notes], agents, [(item.uuid, "outcome")])


def package_events(plan: Plan) -> list[Event]:
    """Events about the whole package: ingestion, fixity of the written copy, package creation."""
    ctx, staged = plan.context, plan.staged
    col_obj = [(plan.collection_uuid, "source")]
    col = plan.collection
    source = f"the collection {col.identifier!r} (folder {collection_folder(col)!r})" if col.identifier else \
        f"the collection folder {collection_folder(col)!r}"
    notes = [f"{staged.files} payload file(s), {staged.bytes} bytes, from {source}; "
             "every path is recorded relative to that folder"]
    cleaned = plan.text.summary()
    if cleaned:
        notes.append(cleaned)
    out = [Event(plan.ident("event", "ingestion"), "ingestion", ctx.started,
                 f"{_program(plan)}; collection read, rights gate passed, files copied without modification",
                 "success", [plan.text(n) for n in notes], _run_agents(plan), col_obj)]
    v = staged.verification
    if v.performed:
        out.append(Event(plan.ident("event", "written-copy-fixity"), "fixity check", v.ended or v.started or ctx.started,
                         plan.text(f"{_program(plan)}; {v.method}"), v.outcome,
                         [f"{v.files} file(s), {v.bytes} bytes re-read and compared ({v.algorithm})"],
                         _run_agents(plan), [(plan.collection_uuid, "outcome")]))
    out.append(Event(plan.ident("event", "package"), "information package creation", plan.created,
                     f"{_program(plan)}; BagIt 1.0 bag with manifests ({', '.join(plan.algorithms)}), METS and PREMIS sidecars",
                     "success", [plan.text(f"bag {plan.staged.name}")], _run_agents(plan), [(plan.collection_uuid, "outcome")]))
    return out


def event_element(ev: Event) -> etree._Element:
    """The ``premis:event`` for ``ev``."""
    el = _root("event")
    _ident(el, "eventIdentifier", "UUID", ev.uuid)
    t = _sub(el, "eventType", ev.type)
    t.set("authority", "eventType")
    t.set("authorityURI", EVENT_TYPES)
    _sub(el, "eventDateTime", ev.date)
    _sub(_sub(el, "eventDetailInformation"), "eventDetail", ev.detail)
    info = _sub(el, "eventOutcomeInformation")
    _sub(info, "eventOutcome", ev.outcome)
    for note in ev.notes:
        _sub(_sub(info, "eventOutcomeDetail"), "eventOutcomeDetailNote", note)
    for uuid_, role in ev.agents:
        _ident(el, "linkingAgentIdentifier", "UUID", uuid_, role)
    for uuid_, role in ev.objects:
        _ident(el, "linkingObjectIdentifier", "UUID", uuid_, role)
    return el


# ----------------------------------------------------------------------------------------- agents

def agent_elements(plan: Plan) -> Iterator[etree._Element]:
    """One ``premis:agent`` per agent of the plan."""
    for agent in plan.agents.values():
        el = _root("agent")
        _ident(el, "agentIdentifier", "UUID", agent.uuid)
        _sub(el, "agentName", plan.text(agent.name, f"agent {agent.key}"))
        _sub(el, "agentType", agent.type)
        if agent.version:
            _sub(el, "agentVersion", plan.text(agent.version, f"agent {agent.key} version"))
        if agent.note:
            _sub(el, "agentNote", plan.text(agent.note, f"agent {agent.key} note"))
        yield el


# ----------------------------------------------------------------------------------------- rights

def _doc_ident(parent: etree._Element, prefix: str, rights: Rights, plan: Plan) -> None:
    if rights.agreement:
        d = _sub(parent, f"{prefix}DocumentationIdentifier")
        _sub(d, f"{prefix}DocumentationIdentifierType", "bag path" if rights.agreement.startswith("data/") else "local")
        _sub(d, f"{prefix}DocumentationIdentifierValue", plan.text(rights.agreement, "rights document"))
        _sub(d, f"{prefix}DocumentationRole", "rights document")


def embargo_ended(until: str, packaged: str) -> bool:
    """Whether an embargo ending on ``until`` (YYYY-MM-DD) was over when packaging began (``packaged``, ISO 8601)."""
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", until)) and until < packaged[:10]


def _embargo_term(granted: etree._Element, plan: Plan, until: str) -> None:
    term = _sub(granted, "termOfRestriction")
    # PREMIS requires a start; the embargo runs from packaging at the latest.
    _sub(term, "startDate", plan.context.started[:10])
    _sub(term, "endDate", plan.text(until, "embargo date"))


def _notice_status(r: Rights) -> str:
    """A release's printed notice claims copyright: with no status in the sheet, that claim is the status."""
    return "copyrighted" if r.notices else "unknown"


def statement_element(plan: Plan, st: Statement, objects: list[str]) -> etree._Element:
    """A ``premis:rightsStatement`` for ``st`` linked to ``objects`` (UUIDs) and its holder."""
    r, x = st.rights, plan.text
    el = etree.Element(_P + "rightsStatement", nsmap=NSMAP)
    _ident(el, "rightsStatementIdentifier", "UUID", st.uuid)
    basis, other = BASES.get((r.basis or "").strip().lower(), ("Other", (r.basis or "unspecified").strip() or "unspecified"))
    _sub(el, "rightsBasis", basis)
    holder = f"rights holder: {r.holder}" if r.holder else None
    if basis == "Copyright" or r.copyright_status or r.notices:
        # Whatever the basis, a status the sheet gives is kept; the schema puts it first.
        ci = _sub(el, "copyrightInformation")
        _sub(ci, "copyrightStatus", COPYRIGHT_STATUS.get((r.copyright_status or _notice_status(r)).strip().lower(), "unknown"))
        # The sheet does not carry a jurisdiction; PREMIS requires the element.
        _sub(ci, "copyrightJurisdiction", "unknown")
        notes = (holder, r.license and f"licence: {r.license}", r.note) if basis == "Copyright" else ()
        for note in (*notes, *r.notices):
            if note:
                _sub(ci, "copyrightNote", x(note, "rights note"))
        if basis == "Copyright":
            _doc_ident(ci, "copyright", r, plan)
    if basis == "License":
        li = _sub(el, "licenseInformation")
        _doc_ident(li, "license", r, plan)
        if r.license:
            _sub(li, "licenseTerms", x(r.license, "licence"))
        for note in (holder, r.note):
            if note:
                _sub(li, "licenseNote", x(note, "rights note"))
    elif basis == "Statute":
        si = _sub(el, "statuteInformation")
        _sub(si, "statuteJurisdiction", "unknown")
        _sub(si, "statuteCitation", x(r.license or r.note or "unspecified", "statute"))
        for note in (holder, r.note if r.license else None):
            if note:
                _sub(si, "statuteNote", x(note, "rights note"))
        _doc_ident(si, "statute", r, plan)
    elif basis == "Other":
        oi = _sub(el, "otherRightsInformation")
        _doc_ident(oi, "otherRights", r, plan)
        _sub(oi, "otherRightsBasis", x(other or "unspecified", "rights basis"))
        for note in (holder, r.license and f"licence: {r.license}", r.note):
            if note:
                _sub(oi, "otherRightsNote", x(note, "rights note"))
    embargo = r.restriction_until
    ended = None
    if embargo and embargo_ended(embargo, plan.context.started):
        # a term from packaging to a day already past would be inverted: the embargo is over
        embargo, ended = None, r.restriction_until
    for act in r.permitted_acts:
        g = _sub(el, "rightsGranted")
        _sub(g, "act", x(act, "permitted act"))
        if embargo and act.strip().lower() in ACCESS_ACTS:
            _sub(g, "restriction", "embargo")
            _embargo_term(g, plan, embargo)
        else:
            _sub(g, "restriction", "none")
            if ended and act.strip().lower() in ACCESS_ACTS:
                _sub(g, "rightsGrantedNote", x(f"the submission's embargo ended on {ended}, before packaging", "embargo date"))
    if embargo and not any(a.strip().lower() in ACCESS_ACTS for a in r.permitted_acts):
        # Dissemination is not granted at all; the embargo date is still the producer's word.
        g = _sub(el, "rightsGranted")
        _sub(g, "act", "disseminate")
        _sub(g, "restriction", "disallow")
        _embargo_term(g, plan, embargo)
        _sub(g, "rightsGrantedNote", "embargo from the submission; dissemination is not among the permitted acts")
    for uuid_ in objects:
        _ident(el, "linkingObjectIdentifier", "UUID", uuid_)
    if r.holder:
        agent = plan.holder_agent(r.holder)
        if agent is not None:
            _ident(el, "linkingAgentIdentifier", "UUID", agent.uuid, "rightsholder")
    return el


def statement_objects(plan: Plan, st: Statement) -> list[str]:
    """Every object a statement covers: its files and the releases they make up."""
    return [*(plan.releases[i].uuid for i in st.releases), *(plan.files[i].uuid for i in st.files)]


# ------------------------------------------------------------------------------------- standalone

def write_premis(path: Path, plan: Plan) -> None:
    """Stream the standalone ``premis.xml``: objects, events, agents, rights."""
    with etree.xmlfile(str(path), encoding="UTF-8") as xf:
        xf.write_declaration()
        attrs = {f"{{{XSI_NS}}}schemaLocation": f"{PREMIS_NS} {PREMIS_XSD}", "version": "3.0"}
        with xf.element(_P + "premis", attrs, nsmap=NSMAP):
            xf.write(collection_object(plan), pretty_print=True)
            for rel in plan.releases:
                xf.write(release_object(plan, rel), pretty_print=True)
            for item in plan.files:
                xf.write(file_object(plan, item, audiomd=True), pretty_print=True)
            for ev in package_events(plan):
                xf.write(event_element(ev), pretty_print=True)
            for item in plan.files:
                for ev in file_events(plan, item):
                    xf.write(event_element(ev), pretty_print=True)
            for agent in agent_elements(plan):
                xf.write(agent, pretty_print=True)
            for st in plan.statements:
                rights = etree.Element(_P + "rights", nsmap=NSMAP)
                rights.append(statement_element(plan, st, statement_objects(plan, st)))
                xf.write(rights, pretty_print=True)

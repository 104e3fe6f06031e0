"""One model of the package that both METS and PREMIS are written from, so they never disagree.

The plan joins what intake learned (:class:`~preserve.model.Collection`) with what the bag engine
measured (:class:`~preserve.bag.writer.StagedBag`): for each payload file its size and digests,
its track or submission file, its release and its rights statement. Identifiers that both
documents print (objects, events, agents, rights statements) come from here: UUIDs derived
(``uuid5``) from one random package UUID and a stable name, so a second pass over the plan
regenerates exactly the identifiers of the first without storing them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import mimetypes
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from preserve.bag.writer import PayloadRecord, StagedBag, software_agent
from preserve.fixity import hash_file
from preserve.model import Collection, PackagingContext, Rights, SubmissionFile, Track
from preserve.sidecars.xmltext import XmlText

USE_MASTER = "preservation master"
USE_SUBMISSION = "submission documentation"

#: BagIt algorithm names -> PREMIS messageDigestAlgorithm (LoC cryptographicHashFunctions).
DIGEST_NAMES = {
    "md5": "MD5", "sha1": "SHA-1", "sha224": "SHA-224", "sha256": "SHA-256",
    "sha384": "SHA-384", "sha512": "SHA-512", "blake2b": "BLAKE2b-512", "xxh3-128": "XXH3-128",
}


@dataclass
class Release:
    """One album (or a single track without one): an intellectual entity and a logical div."""

    key: str
    index: int
    uuid: str
    tracks: list[FileItem] = field(default_factory=list)
    #: the rights statement every track of the release shares; None when they differ (each track has its own)
    statement: int | None = None

    @property
    def title(self) -> str:
        """The album title; for a single without an album, the track's own title."""
        t = self.first
        return t.album or t.title or self.key

    @property
    def first(self) -> Track:
        t = self.tracks[0].track
        assert t is not None
        return t

    def discs(self) -> list[tuple[int, list[FileItem]]]:
        """Tracks grouped by disc number, each disc ordered by track number, then path."""
        by_disc: dict[int, list[FileItem]] = {}
        for item in self.tracks:
            assert item.track is not None
            by_disc.setdefault(item.track.disc_number or 1, []).append(item)
        return [(d, sorted(items, key=_track_order)) for d, items in sorted(by_disc.items())]


def _track_order(item: FileItem) -> tuple[int, int, str]:
    t = item.track
    assert t is not None
    return (t.track_number is None, t.track_number or 0, item.path)


@dataclass
class Statement:
    """One PREMIS rightsStatement: a distinct :meth:`Rights.key`, and the files it covers."""

    rights: Rights
    uuid: str
    index: int
    files: list[int] = field(default_factory=list)
    releases: list[int] = field(default_factory=list)


@dataclass
class FileItem:
    """One payload file and everything the sidecars say about it."""

    index: int
    record: PayloadRecord
    uuid: str
    use: str
    sha256: str
    mime: str
    track: Track | None = None
    submission: SubmissionFile | None = None
    release: int | None = None
    statement: int | None = None

    @property
    def path(self) -> str:
        """The bag-relative path, ``data/...``."""
        return self.record.target

    @property
    def file_id(self) -> str:
        return f"file-{self.uuid}"

    @property
    def amd_id(self) -> str:
        return f"amdSec_{self.index + 1}"

    @property
    def dmd_id(self) -> str:
        return f"dmdSec_track_{self.index + 1}"

    @property
    def original_name(self) -> str:
        if self.track is not None:
            return self.track.source_path
        if self.submission is not None:
            return self.submission.source_path
        return self.path.removeprefix("data/")


@dataclass
class Agent:
    """A PREMIS agent: the software, the organization, the operator, a tool, a rights holder."""

    key: str
    uuid: str
    name: str
    type: str
    version: str | None = None
    note: str | None = None


@dataclass
class Plan:
    """Everything both writers need, built once by :func:`build_plan`."""

    staged: StagedBag
    collection: Collection
    context: PackagingContext
    package_uuid: str
    collection_uuid: str
    created: str
    files: list[FileItem]
    releases: list[Release]
    statements: list[Statement]
    agents: dict[str, Agent]
    text: XmlText

    def ident(self, *parts: str) -> str:
        """A UUID that is the same every time it is asked for with the same parts."""
        return str(uuid.uuid5(uuid.UUID(self.package_uuid), "\x1f".join(parts)))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return self.staged.algorithms

    @property
    def software(self) -> Agent:
        return self.agents["software"]

    def tool_agent(self, tool: str, version: str) -> Agent | None:
        return self.agents.get(f"tool:{tool}:{version}")

    def holder_agent(self, holder: str) -> Agent | None:
        return self.agents.get(f"holder:{holder}")

    def originator_agent(self, originator: str) -> Agent | None:
        """The agent a BWF file names as its Originator (the organization or person that made it)."""
        return self.agents.get(f"originator:{originator}") if originator else None


def collection_folder(collection: Collection) -> str:
    """The collection folder's own name: the sidecars never record where it sat on the packaging host."""
    return Path(collection.root).name or collection.root.strip("/\\")


def now_utc() -> str:
    """The current time in UTC, ISO 8601 with a Z."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mime(path: str, track: Track | None) -> str:
    if track is not None and track.format.mime:
        return track.format.mime
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


def release_key(track: Track) -> str:
    """Tracks with the same album form one release; a track without an album is a release of its own.

    A single is keyed by its path, not its title: two singles that share a title (or that are both
    titled by a file name such as ``01``) are still two releases.
    """
    return track.album or f"(single) {track.source_path}"


def effective_rights(collection: Collection, rights: Rights | None) -> Rights | None:
    """The rights that govern an object: its own, else the collection's defaults, else none."""
    if rights is not None and rights != Rights():
        return rights
    return collection.default_rights


def with_notices(rights: Rights | None, track: Track | None) -> Rights | None:
    """The statement that covers a track, carrying its release's P-line and C-line (PREMIS copyright notes)."""
    if rights is None or track is None:
        return rights
    notices = tuple(n for n in (track.p_line, track.c_line) if n)
    return dataclasses.replace(rights, notices=notices) if notices else rights


def build_plan(staged: StagedBag, collection: Collection, context: PackagingContext) -> Plan:
    """Join the collection model and the staged bag into one :class:`Plan`."""
    package_uuid = str(uuid.uuid4())
    tracks = {t.bag_path: t for t in collection.tracks}
    subs = {s.bag_path: s for s in collection.submission_files}
    plan = Plan(staged, collection, context, package_uuid, "", context.ended or now_utc(),
                [], [], [], {}, XmlText())
    plan.collection_uuid = plan.ident("collection")
    release_by_key: dict[str, Release] = {}
    statement_by_key: dict[tuple[object, ...], Statement] = {}

    def statement_for(rights: Rights | None) -> Statement | None:
        if rights is None:
            return None
        key = rights.key()
        st = statement_by_key.get(key)
        if st is None:
            st = Statement(rights, plan.ident("rights", repr(key)), len(plan.statements))
            statement_by_key[key] = st
            plan.statements.append(st)
        return st

    for n, rec in enumerate(staged.iter_payload()):
        track = tracks.get(rec.target)
        sub = subs.get(rec.target) if track is None else None
        sha256 = rec.digests.get("sha256") or hash_file(Path(staged.path) / rec.target, ("sha256",))["sha256"]
        use = USE_MASTER if track is not None or rec.target.startswith("data/objects/") else USE_SUBMISSION
        item = FileItem(n, rec, plan.ident("file", rec.target), use, sha256, _mime(rec.target, track),
                        track, sub)
        if track is not None:
            key = release_key(track)
            rel = release_by_key.get(key)
            if rel is None:
                rel = Release(key, len(plan.releases), plan.ident("release", key))
                release_by_key[key] = rel
                plan.releases.append(rel)
            rel.tracks.append(item)
            item.release = rel.index
        st = statement_for(with_notices(effective_rights(collection, track.rights if track is not None else None), track))
        if st is not None:
            item.statement = st.index
            st.files.append(n)
        plan.files.append(item)
    # Releases in the order of their files' paths, whatever order the payload was copied in.
    plan.releases.sort(key=lambda r: min(i.path for i in r.tracks))
    for index, rel in enumerate(plan.releases):
        rel.index = index
        for item in rel.tracks:
            item.release = index
    for rel in plan.releases:
        # A release carries a statement only when every track is under it: linking the release to
        # each of its tracks' differing statements would say contradictory things of one entity.
        shared = {i.statement for i in rel.tracks}
        if len(shared) == 1 and None not in shared:
            rel.statement = shared.pop()
            assert rel.statement is not None
            plan.statements[rel.statement].releases.append(rel.index)
    _agents(plan)
    _scan_strings(plan)
    return plan


def _agents(plan: Plan) -> None:
    ctx, col = plan.context, plan.collection

    def add(key: str, name: str, type_: str, version: str | None = None, note: str | None = None) -> None:
        if key not in plan.agents:
            plan.agents[key] = Agent(key, plan.ident("agent", key), name, type_, version, note)

    version = ctx.software_version or software_agent().removeprefix("preserve ").strip()
    add("software", ctx.software or "preserve", "software", version)
    org = ctx.organization or col.organization
    if org:
        add("organization", org, "organization")
    if ctx.operator:
        add("operator", ctx.operator, "person")
    for item in plan.files:
        fmt = item.track.format if item.track is not None else None
        if fmt is not None and fmt.tool:
            add(f"tool:{fmt.tool}:{fmt.tool_version}", fmt.tool, "software", fmt.tool_version or None,
                f"signatures: {fmt.signature_version}" if fmt.signature_version else None)
    labels = {t.label for t in col.tracks if t.label}
    for item in plan.files:
        bext = item.track.technical.bext if item.track is not None else {}
        # only a file whose transfer is recorded (CodingHistory) has an event to link its Originator to
        if bext.get("Originator") and bext.get("CodingHistory"):
            name = bext["Originator"]
            add(f"originator:{name}", name, holder_type(name, {org or "", *labels}),
                note="originator of the file (BWF bext Originator); agent type inferred from the name")
    for st in plan.statements:
        holder = st.rights.holder
        if holder:
            add(f"holder:{holder}", holder, holder_type(holder, {org or "", *labels}),
                note="rights holder; agent type inferred from the name (the sheet does not give it)")


#: Words that mark a name as an organization's (a company, a label, an institution).
_ORG_WORDS = frozenset((
    "ltd", "ltd.", "limited", "inc", "inc.", "incorporated", "llc", "llp", "plc", "gmbh", "ag", "s.a.", "bv",
    "b.v.", "nv", "oy", "co", "co.", "company", "corp", "corp.", "corporation", "group", "holdings", "records",
    "recordings", "music", "publishing", "publishers", "label", "labels", "entertainment", "media", "studios",
    "studio", "productions", "broadcasting", "radio", "television", "tv", "archive", "archives", "library",
    "libraries", "museum", "university", "college", "institute", "foundation", "trust", "society",
    "association", "council", "ministry", "department", "government", "estate", "orchestra", "ensemble",
    "choir", "band", "quartet", "trio", "church", "school",
))


def holder_type(name: str, organizations: set[str]) -> str:
    """``organization`` or ``person`` (LoC agentType vocabulary) for a rights holder's name.

    The sheet names a holder but not its kind: a name that is the collection's organization or a
    release's label, or that holds a word such as "Ltd", "Records" or "Trust", is an organization;
    any other name is taken for a person.
    """
    if name in organizations:
        return "organization"
    words = {w.strip(",()").lower() for w in name.split()}
    return "organization" if words & _ORG_WORDS else "person"


def _scan_strings(plan: Plan) -> None:
    """Record up front every model string that reaches either document, then freeze the record.

    The ingestion event reports what had to be escaped; it is written part-way through each
    document, and in a different place in each. Recording everything here, once, and nothing
    afterwards makes both documents carry the same note whatever their order.
    """
    x = plan.text
    col, ctx = plan.collection, plan.context

    def scan(label: str, value: object) -> None:
        if value is not None and value != "":
            x(value, label)

    def scan_all(prefix: str, obj: object, names: tuple[str, ...]) -> None:
        for name in names:
            scan(f"{prefix}{name.replace('_', ' ')}", getattr(obj, name))

    scan("collection folder", collection_folder(col))
    scan_all("collection ", col, ("title", "description", "identifier"))
    scan("group identifier", col.group_identifier)
    scan("organization", col.organization)
    scan("organization (Source-Organization)", ctx.organization)
    scan("operator", ctx.operator)
    scan("bag name", plan.staged.name)
    for agent in plan.agents.values():
        scan_all(f"agent {agent.key}: ", agent, ("name", "version", "note"))
    for st in plan.statements:
        where = f"rights statement {st.index + 1}: "
        scan_all(where, st.rights, ("holder", "basis", "copyright_status", "license", "agreement", "note",
                                    "restriction_until"))
        for notice in st.rights.notices:
            scan(f"{where}notice", notice)
        for act in st.rights.permitted_acts:
            scan(f"{where}permitted act {act}", act)
    for rel in plan.releases:
        scan(f"release {rel.key}", rel.key)
    for item in plan.files:
        where = f"{item.path}: "
        scan(f"{where}path (exact, percent-encoded, in the PREMIS identifier and the FLocat)", item.path)
        scan(f"{where}original name (exact, percent-encoded, in its simpleLink)", item.original_name)
        scan(f"{where}media type", item.mime)
        checksums = (item.track.producer_checksums if item.track is not None
                     else item.submission.producer_checksums if item.submission is not None else [])
        for n, pc in enumerate(checksums, 1):
            scan_all(f"{where}producer checksum {n} ", pc, ("algorithm", "value", "source", "found"))
        t = item.track
        if t is None:
            continue
        scan_all(where, t, ("title", "album", "date", "recorded", "isrc", "upc", "label", "genre", "language",
                            "description", "catalogue_number", "matrix_number", "p_line", "c_line", "carrier",
                            "accession", "donor"))
        for n, c in enumerate(t.contributors, 1):
            scan(f"{where}contributors {n}", c.name)
        for name in ("artists", "composers"):
            for n, value in enumerate(getattr(t, name), 1):
                scan(f"{where}{name} {n}", value)
        scan_all(f"{where}format ", t.format, ("name", "version", "puid", "note", "tool", "tool_version",
                                                "signature_version", "method"))
        scan_all(f"{where}essence check ", t.essence, ("method", "detail", "expected", "found"))
        tech = t.technical
        scan_all(where, tech, ("creating_application", "codec", "container"))
        for k, v in (*tech.bext.items(), *tech.info.items()):
            scan(f"{where}{k} (name)", k)
            scan(f"{where}{k}", v)
    x.freeze()

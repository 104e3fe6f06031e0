"""One model of the package that both METS and PREMIS are written from, so they never disagree.

The plan joins what intake learned (:class:`~preserve.model.Collection`) with what the bag engine
measured (:class:`~preserve.bag.writer.StagedBag`): for each payload file its size and digests,
its track or submission file, its release and its rights statement. Identifiers that both
documents print (objects, events, agents, rights statements) come from here: UUIDs derived
(``uuid5``) from one random package UUID and a stable name, so a second pass over the plan
regenerates exactly the identifiers of the first without storing them.
"""

from __future__ import annotations

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


def now_utc() -> str:
    """The current time in UTC, ISO 8601 with a Z."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mime(path: str, track: Track | None) -> str:
    if track is not None and track.format.mime:
        return track.format.mime
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


def effective_rights(collection: Collection, rights: Rights | None) -> Rights | None:
    """The rights that govern an object: its own, else the collection's defaults, else none."""
    if rights is not None and rights != Rights():
        return rights
    return collection.default_rights


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
            rel = release_by_key.get(track.release_key)
            if rel is None:
                rel = Release(track.release_key, len(plan.releases), plan.ident("release", track.release_key))
                release_by_key[track.release_key] = rel
                plan.releases.append(rel)
            rel.tracks.append(item)
            item.release = rel.index
        st = statement_for(effective_rights(collection, track.rights if track is not None else None))
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
        for st_index in dict.fromkeys(i.statement for i in rel.tracks if i.statement is not None):
            plan.statements[st_index].releases.append(rel.index)
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
    for st in plan.statements:
        if st.rights.holder:
            add(f"holder:{st.rights.holder}", st.rights.holder, "rightsholder")


def _scan_strings(plan: Plan) -> None:
    """Record up front every model string that needs escaping, so both documents report the same."""
    x = plan.text
    col = plan.collection
    for label, value in (("collection title", col.title), ("collection description", col.description),
                         ("collection identifier", col.identifier), ("organization", col.organization)):
        if value:
            x(value, label)
    for item in plan.files:
        x(item.path, f"{item.path}: path")
        t = item.track
        if t is None:
            continue
        for name in ("title", "album", "date", "isrc", "upc", "label", "genre", "language",
                     "description", "catalogue_number", "carrier", "accession", "donor"):
            value = getattr(t, name)
            if value:
                x(value, f"{item.path}: {name}")
        for name in ("artists", "composers"):
            for value in getattr(t, name):
                x(value, f"{item.path}: {name}")
        for k, v in (*t.technical.bext.items(), *t.technical.info.items()):
            x(v, f"{item.path}: {k}")
        if t.technical.creating_application:
            x(t.technical.creating_application, f"{item.path}: creating application")

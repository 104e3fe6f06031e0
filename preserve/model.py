"""The package model: what intake learns about a collection, and what the sidecars are written from.

Intake (``preserve.intake``) builds a :class:`Collection`; packaging adds what the bag engine
measured (:class:`~preserve.bag.writer.StagedBag`: digests, sizes, verification); the sidecar
writers (``preserve.sidecars``) turn both into PREMIS and METS. Plain dataclasses, no behaviour
beyond small derived properties, so every writer reads the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RightsBasis = Literal["copyright", "license", "statute", "donor", "policy", "other"]
CopyrightStatus = Literal["copyrighted", "public domain", "unknown"]
PERMITTED_ACTS = ("replicate", "migrate", "disseminate", "modify", "delete")


@dataclass(frozen=True)
class Rights:
    """One rights statement as the producer's sheet (or collection defaults) gives it."""

    basis: str | None = None
    holder: str | None = None
    copyright_status: str | None = None
    license: str | None = None
    #: bag-relative path of the rights document once packaged (``data/submission/...``), or the
    #: collection-relative path before packaging; see :attr:`agreement_source`.
    agreement: str | None = None
    agreement_source: str | None = None
    permitted_acts: tuple[str, ...] = ()
    restriction_until: str | None = None  # ISO date: embargo end
    note: str | None = None
    #: the release's copyright notices as printed: "℗ 1978 Example Records", "© 1978 Example Records"
    notices: tuple[str, ...] = ()

    def key(self) -> tuple[object, ...]:
        """Statements with equal keys are one PREMIS rightsStatement (never two licences merged)."""
        return (self.basis, self.holder, self.copyright_status, self.license, self.agreement,
                self.permitted_acts, self.restriction_until, self.note, self.notices)


@dataclass(frozen=True)
class FormatIdentification:
    puid: str | None = None            # e.g. "fmt/279"
    name: str | None = None            # e.g. "FLAC (Free Lossless Audio Codec)"
    version: str | None = None
    mime: str | None = None
    tool: str = ""                     # e.g. "fido"
    tool_version: str = ""             # e.g. "1.6.1"
    signature_version: str = ""        # e.g. "PRONOM v109"
    method: str = ""                   # "signature" | "extension" | "container" | "table"
    note: str | None = None            # why unidentified, when puid is None


@dataclass(frozen=True)
class AudioTechnical:
    codec: str | None = None           # "PCM", "FLAC", "MP3", "AAC", "Vorbis", "Opus", "ALAC"
    container: str | None = None       # "WAVE", "BWF", "RF64", "FLAC", "AIFF", "MP3", "Ogg", "MP4"
    sample_rate: int | None = None
    bit_depth: int | None = None
    channels: int | None = None
    duration: float | None = None      # seconds
    frames: int | None = None
    bitrate: int | None = None         # bits per second
    lossy: bool = False
    bext: dict[str, str] = field(default_factory=dict)      # Description, Originator, ...
    info: dict[str, str] = field(default_factory=dict)      # RIFF INFO chunks (INAM, IART, ...)
    creating_application: str | None = None                 # from tags (encoder) or bext/INFO ISFT
    # What the file's own header states, for audioMD; None where it says nothing.
    byte_order: str | None = None      # "little-endian" | "big-endian" (uncompressed samples)
    rate_mode: str | None = None       # "fixed" | "variable"
    format_version: str | None = None  # BWF bext Version, MPEG audio version
    sound_field: str | None = None     # "mono", "stereo", "joint stereo", "dual channel"
    #: whole XML documents embedded in the file, by chunk ("iXML", "axml"): the payload in base64,
    #: exactly as found (the sidecars embed it as XML where it parses safely)
    documents: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Contributor:
    """A name with its MARC relator code (``ive``, ``ivr``, ``brd``...) and the code's label."""

    name: str
    code: str
    label: str


@dataclass(frozen=True)
class EssenceCheck:
    """Embedded audio checksum verification (FLAC STREAMINFO MD5, BWF ``MD5 `` chunk)."""

    outcome: Literal["pass", "fail", "unverifiable", "not applicable"]
    method: str = ""                   # e.g. "FLAC STREAMINFO MD5 of decoded samples"
    detail: str = ""
    expected: str | None = None
    found: str | None = None
    accepted_damage: bool = False      # packaged anyway as a recorded known defect


@dataclass(frozen=True)
class ProducerChecksum:
    """A checksum the producer delivered, and whether our reading of the file matched it."""

    algorithm: str
    value: str
    source: str                        # "metadata.csv row 4", "checksums.md5", "manifest-sha256.txt"
    outcome: Literal["pass", "fail"] = "pass"
    found: str | None = None


@dataclass
class Track:
    """One audio file of the collection, with everything known about it."""

    source_path: str                   # relative to the collection folder, POSIX separators
    bag_path: str                      # "data/objects/<source_path>"
    row: int | None = None             # sheet row number (1 = first data row)
    # descriptive (sheet first, embedded tags as fallback)
    title: str | None = None
    artists: tuple[str, ...] = ()
    album: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    date: str | None = None            # release date (the sheet's "released" or "date" column)
    recorded: str | None = None        # when the recording was made (the sheet's "recorded" column)
    isrc: str | None = None
    upc: str | None = None             # the release's UPC (12 digits) or EAN (13 or 8)
    label: str | None = None
    composers: tuple[str, ...] = ()
    genre: str | None = None
    language: str | None = None
    description: str | None = None
    catalogue_number: str | None = None
    matrix_number: str | None = None
    contributors: tuple[Contributor, ...] = ()
    p_line: str | None = None          # "℗ 1978 Example Records": the phonogram (sound recording) notice
    c_line: str | None = None          # "© 1978 Example Records": the notice on the work and its packaging
    # provenance
    carrier: str | None = None         # the sheet's "source" column: "DAT tape", "CD-R"
    accession: str | None = None
    donor: str | None = None
    rights: Rights = field(default_factory=Rights)
    format: FormatIdentification = field(default_factory=FormatIdentification)
    technical: AudioTechnical = field(default_factory=AudioTechnical)
    essence: EssenceCheck = field(default_factory=lambda: EssenceCheck("not applicable"))
    producer_checksums: list[ProducerChecksum] = field(default_factory=list)
    size: int = 0
    # what a DDEX ERN message gives beyond the sheet's columns (preserve.intake.ddex); empty otherwise
    subtitle: str | None = None
    original_date: str | None = None                      # original release date
    parental_warning: str | None = None
    source_identifiers: tuple[tuple[str, str], ...] = ()  # (type, value): DDEX references and ids

    @property
    def release_key(self) -> str:
        """Tracks with the same key form one release (album); tracks without an album, one each."""
        return self.album or f"(single) {self.title or self.source_path}"


@dataclass
class SubmissionFile:
    """A non-audio file delivered with the collection, kept under ``data/submission/``."""

    source_path: str
    bag_path: str
    role: Literal["sheet", "collection-config", "rights-document", "checksum-file", "bag-tag-file", "other"]
    size: int = 0
    producer_checksums: list[ProducerChecksum] = field(default_factory=list)


@dataclass
class Collection:
    """What ``preserve check`` learned: the whole submission, ready for the sidecars."""

    root: str
    identifier: str | None = None
    title: str | None = None
    organization: str | None = None
    description: str | None = None
    group_identifier: str | None = None
    default_rights: Rights | None = None
    tracks: list[Track] = field(default_factory=list)
    submission_files: list[SubmissionFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: (type, value) identifiers of the delivery, e.g. a DDEX message id and its sender's party id
    source_identifiers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PackagingContext:
    """Facts about the packaging run itself, for PREMIS events and agents."""

    started: str                       # UTC ISO 8601 with Z
    ended: str | None = None
    operator: str | None = None        # --operator: the person running it
    organization: str | None = None    # Source-Organization
    software: str = "preserve"
    software_version: str = ""

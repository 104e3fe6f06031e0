"""What the ledger stores and gives back, as plain records (the same on every backend)."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FindingRecord:
    """One problem an audit found with one file (or with the bag, ``file`` empty)."""

    file: str
    kind: str
    message: str
    code: str = ""
    expected: str | None = None
    found: str | None = None


@dataclass
class AuditRecord:
    """The outcome of auditing one bag, as the runner returns it and the ledger stores it."""

    location: str
    identifier: str
    tier: str
    started: str
    ended: str
    bytes: int
    files: int
    outcome: str
    algorithm: str
    tool_version: str
    payload_bytes: int | None = None
    payload_files: int | None = None
    host: str = field(default_factory=socket.gethostname)
    findings: list[FindingRecord] = field(default_factory=list)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    id: int | None = None
    #: the bag's tag files (bag-relative) as this audit found them, None when it could not look
    #: (the bag gone); the ledger remembers them at the bag's first audit
    tag_files: list[str] | None = None
    #: the empty folders metadata/empty-directories.txt listed at this audit (None: not looked)
    empty_dirs: list[str] | None = None
    #: the version of the object this audit read (an OCFL object's "v3"); None for a bag
    version: str | None = None


@dataclass(frozen=True)
class BagState:
    """A bag as the ledger knows it, with its audit summary (for planning and reports).

    ``last_*`` describe the latest audit (by id); ``last_full`` is the latest end of a full audit
    and ``audits_since_full`` counts the audits recorded after the latest full one (all of them
    when there is none)."""

    id: int
    identifier: str
    location: str
    payload_bytes: int | None
    payload_files: int | None
    first_seen: str
    audits: int
    last_audit: str | None
    last_outcome: str | None
    last_tier: str | None
    last_audit_id: int | None
    last_full: str | None
    audits_since_full: int


@dataclass(frozen=True)
class ReplicaRecord:
    """One replication of a bag to a target (S3 bucket/prefix or a file system path)."""

    id: int
    uuid: str
    bag_id: int
    target: str
    location: str
    site: str | None
    started: str
    ended: str
    objects: int
    bytes: int
    outcome: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class RepairRecord:
    """One file of a bag restored from a replica."""

    id: int
    uuid: str
    bag_id: int
    file: str
    source_target: str
    time: str
    outcome: str
    detail: dict[str, Any]

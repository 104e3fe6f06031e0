"""A replicated store as it sits in a replica store: where an object is, and its replica record.

A replica of a storage root is itself a storage root (the same keys below the target's prefix),
so that a copy downloaded with any tool validates as OCFL. What preserve keeps about each
replicated object, the sha256 and size of every file it sent and the part plans of the files it
sent in parts, cannot go into the object (an unregistered extension folder there makes every
object carry an OCFL warning) nor between objects (a file in the storage hierarchy is an
error), so it goes where the storage root keeps preserve's own folder:

    <replica root>/extensions/preserve-store/replicas/<object path>.json

Those records are what lets a remote audit compare the store's own checksums (sha256) without
reading a byte, and verify on a server that keeps no checksum through the ETags it recorded.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from preserve.errors import UsageError
from preserve.ocfl.inventory import SIDECAR
from preserve.ocfl.layout import OBJECT_DECLARATION, OWN_EXTENSION, ROOT_DECLARATION
from preserve.replication.layout import RemoteRecord, read_bytes, record_fields
from preserve.stores.base import Store

RECORD_FORMAT = "preserve-store-replica/1"
RECORDS = f"extensions/{OWN_EXTENSION}/replicas"
#: How far above an object's location its storage root is looked for (the hashed layout puts
#: objects four folders down; a flat one, one).
_MAX_DEPTH = 8


def record_key(prefix: str) -> str:
    """The key of an object's replica record, relative to the replica's storage root."""
    return f"{RECORDS}/{prefix}.json"


@dataclass
class ObjectRecord:
    """What preserve sent of one object: every file with its size and sha256, and part plans."""

    object_id: str
    head: str = "v0"  # the newest version whose files the record accounts for
    updated: str = ""
    #: object-relative path -> {"size": int, "sha256": hex}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: object-relative path -> {"sha256", "part_size", "parts", "composite", "etag"} (as a bag's record)
    multipart: dict[str, dict[str, Any]] = field(default_factory=dict)

    def plans(self) -> RemoteRecord:
        """The part plans in the form the bag replication's checks read them."""
        return RemoteRecord(bag=self.object_id, layout="ocfl", manifest_sha256="", multipart=self.multipart)

    def to_json(self) -> builtins.bytes:
        return json.dumps({"format": RECORD_FORMAT, "id": self.object_id, "head": self.head, "updated": self.updated,
                           "files": self.files, "multipart": self.multipart},
                          indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: builtins.bytes) -> ObjectRecord | None:
        d = record_fields(data, RECORD_FORMAT)
        if d is None:
            return None
        files = d.get("files")
        multipart = d.get("multipart")
        files = files if isinstance(files, dict) else {}
        multipart = multipart if isinstance(multipart, dict) else {}
        return cls(object_id=str(d.get("id", "")), head=str(d.get("head", "v0")), updated=str(d.get("updated", "")),
                   files={str(k): v for k, v in files.items() if isinstance(v, dict)},
                   multipart={str(k): v for k, v in multipart.items() if isinstance(v, dict)})


def read_record(store: Store, prefix: str) -> ObjectRecord | None:
    """The replica record of the object at ``prefix``, or None when absent or unreadable."""
    key = record_key(prefix)
    info = store.head(key)
    if info is None or info.damage is not None:
        return None
    return ObjectRecord.from_json(read_bytes(store, key))


@dataclass(frozen=True)
class RemoteInventory:
    """An object's root inventory as the replica holds it."""

    data: bytes
    inventory: dict[str, Any]
    #: why it cannot be trusted (its sidecar is missing or does not match), None when it can
    problem: str | None = None

    @property
    def sha512(self) -> str:
        return hashlib.sha512(self.data).hexdigest()


def read_inventory(store: Store, prefix: str) -> RemoteInventory | None:
    """The replica's root inventory of the object at ``prefix`` (None when it has none), checked
    against its sidecar."""
    key = f"{prefix}/inventory.json"
    info = store.head(key)
    if info is None or info.damage is not None:
        return None
    data = read_bytes(store, key)
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        return RemoteInventory(data, {}, "inventory.json is not a JSON object (E033)")
    problem = None
    sidecar = store.head(f"{prefix}/{SIDECAR}")
    if sidecar is None or sidecar.damage is not None:
        problem = f"{SIDECAR} is missing (E058)"
    else:
        words = read_bytes(store, f"{prefix}/{SIDECAR}").decode("ascii", "replace").split()
        if not words or words[0].lower() != hashlib.sha512(data).hexdigest():
            problem = f"inventory.json does not match its digest in {SIDECAR} (E060)"
    return RemoteInventory(data, parsed, problem)


def locate(location: str, open_at: Callable[[str], Store]) -> tuple[Store, str] | None:
    """Where the store object replicated at ``location`` is: the store opened at the replica's
    storage root and the object's path below it. None when ``location`` holds no OCFL object
    (a bag's copy); :class:`UsageError` when it holds one but no storage root is above it."""
    text = location.rstrip("/")
    parent, _, name = text.rpartition("/")
    if not parent or not name or parent.endswith(":/"):
        return None
    if open_at(parent).head(f"{name}/{OBJECT_DECLARATION}") is None:
        return None
    parts = text.split("/")
    # the default hashed layout's depth first, then the flat one's, then the rest: each guess opens a store
    for up in sorted(range(1, min(_MAX_DEPTH, len(parts) - 1) + 1), key=lambda n: (n != 4, n != 1, n)):
        candidate = "/".join(parts[:-up])
        scheme_lost = "://" in text and ("://" not in candidate or candidate.endswith("://"))
        if not candidate or scheme_lost:
            continue  # above the bucket (s3://) is no place
        store = open_at(candidate)
        if store.head(ROOT_DECLARATION) is not None:
            return store, "/".join(parts[-up:])
    raise UsageError(f"{location}: an OCFL object, but no storage root ({ROOT_DECLARATION}) is above it; "
                     "replicate the store with `preserve replicate ROOT TARGET` so that its replica is a storage root")

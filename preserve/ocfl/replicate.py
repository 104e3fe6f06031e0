"""Copy a store to a replica target (an S3-compatible bucket or a folder): only what it lacks.

Version folders never change once written, so for each object only the versions newer than the
replica's own inventory are sent, each file verified on the way (sha256, as every replica upload
in preserve is); the object's root inventory and then its sidecar go last, so a replica is never
ahead of its content. A purge changes written versions: it is not carried by this command (purge
the replica too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from preserve.fixity import hash_file
from preserve.ocfl.inventory import SIDECAR, read_inventory, version_number
from preserve.ocfl.layout import (
    LAYOUT_FILE,
    ROOT_DECLARATION,
    SPEC_TEXT_NAME,
    find_objects,
    open_root,
)
from preserve.stores import PutOptions, Store, open_store


@dataclass
class StoreReplication:
    target: str
    objects: int = 0
    versions_sent: list[str] = field(default_factory=list)  # "<object id> vN"
    files_sent: int = 0
    bytes_sent: int = 0


def _files(folder: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(folder):
        for name in sorted(files):
            yield Path(dirpath) / name


def _send(store: Store, key: str, path: Path, result: StoreReplication) -> None:
    size = path.stat().st_size
    sha256 = hash_file(path, ["sha256"])["sha256"]
    store.put_file(key, path, sha256, size, PutOptions(), archive=False)
    result.files_sent += 1
    result.bytes_sent += size


def _remote_head(store: Store, key: str) -> int:
    """The version number of the replica's root inventory of an object (0 when it has none)."""
    if store.head(key) is None:
        return 0
    with store.get(key) as chunks:
        data = b"".join(chunks)
    try:
        return version_number(str(json.loads(data).get("head", "")))
    except (ValueError, AttributeError):
        return 0


def replicate_store(root_path: str | os.PathLike[str], target: str) -> StoreReplication:
    """Send what the replica at ``target`` lacks of the storage root (see the module docstring)."""
    root = open_root(root_path)
    store = open_store(target)
    result = StoreReplication(target=store.url)
    config = Path("extensions") / root.layout / "config.json"
    for rel in (SPEC_TEXT_NAME, LAYOUT_FILE, str(config), ROOT_DECLARATION):
        if (root.path / rel).is_file() and store.head(rel) is None:
            _send(store, rel, root.path / rel, result)
    for obj in find_objects(root):
        prefix = obj.relative_to(root.path).as_posix()
        inventory = read_inventory(obj)
        have = _remote_head(store, f"{prefix}/inventory.json")
        result.objects += 1
        newer = [v for v in sorted(inventory["versions"], key=version_number) if version_number(v) > have]
        if not newer:
            continue
        for v in newer:
            folder = obj / v
            # content first, the version's inventory after it: a version folder is whole before it is named
            for path in sorted(_files(folder), key=lambda p: p.name.startswith("inventory.json")):
                _send(store, f"{prefix}/{path.relative_to(obj).as_posix()}", path, result)
            result.versions_sent.append(f"{inventory['id']} {v}")
        for path in _files(obj):
            rel = path.relative_to(obj).as_posix()
            if rel.startswith("extensions/") or rel.startswith("0="):
                _send(store, f"{prefix}/{rel}", path, result)
        _send(store, f"{prefix}/inventory.json", obj / "inventory.json", result)
        _send(store, f"{prefix}/{SIDECAR}", obj / SIDECAR, result)
    store.finish_uploads()
    return result

"""Reading a store: find an object, materialize a version as a bag, its log and differences."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.errors import DestinationExists, InputError, ProblemsFound, StorageError, UsageError
from preserve.fixity import copy_and_hash, fsync_path
from preserve.ocfl.inventory import DIGEST, Inventory, read_inventory, state_of, version_number
from preserve.ocfl.layout import StorageRoot, open_root
from preserve.ocfl.txn import fsync_tree
from preserve.staging import journaled


def object_folder(root: StorageRoot, object_id: str) -> Path:
    """The object root of ``object_id``; :class:`InputError` (exit 3) when the store has no such object."""
    path = root.object_path(object_id)
    if not (path / "inventory.json").is_file():
        raise InputError(f"{root.path}: the store holds no object {object_id} (looked in {path})")
    return path


def load(root_path: str | os.PathLike[str], object_id: str) -> tuple[StorageRoot, Path, Inventory]:
    root = open_root(root_path)
    path = object_folder(root, object_id)
    return root, path, read_inventory(path)


def pick_version(inventory: Inventory, version: str | None) -> str:
    if version is None:
        return str(inventory["head"])
    if version.isdigit():
        version = f"v{version}"
    if version not in inventory["versions"]:
        raise UsageError(f"object {inventory['id']} has no version {version} "
                         f"(it has v1 to {inventory['head']})")
    return version


def export(root_path: str | os.PathLike[str], object_id: str, dest: str | os.PathLike[str], *,
           version: str | None = None, serialize: str | None = None) -> Path:
    """Write ``version`` (the head by default) of the object as a bag at ``dest`` (or, with
    ``serialize``, as a tar/tar.gz/zip named after ``dest``). Each file is checked against its
    sha512 in the inventory as it is copied. Returns what was written."""
    _root, obj, inventory = load(root_path, object_id)
    name = pick_version(inventory, version)
    state = state_of(inventory, name)
    out = Path(os.path.abspath(dest))
    if serialize:
        from preserve.serialize import archive_path

        out = archive_path(out, serialize)
    if os.path.lexists(out):
        raise DestinationExists(path=str(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path=str(out.parent), reason=exc.strerror or str(exc)) from exc
    with journaled(out) as journal:
        if os.path.lexists(out):
            raise DestinationExists(path=str(out))
        staging = journal.new_folder(out.parent, "export")
        bag = staging / out.name.split(".")[0] if serialize else staging
        for logical, digest in sorted(state.items()):
            _materialize(obj, inventory, logical, digest, bag / logical)
        _folders(bag)
        if serialize:
            from preserve.serialize.archive import write_archive

            write_archive(bag, out, serialize)
        else:
            fsync_tree(staging)
            try:
                os.rename(staging, out)
                fsync_path(out.parent)
            except OSError as exc:
                raise StorageError(path=str(out), reason=exc.strerror or str(exc)) from exc
    return out


def _folders(bag: Path) -> None:
    """Folders OCFL cannot hold: data/ (a bag without payload, after deaccession, still has one)
    and the empty folders the bag lists in metadata/empty-directories.txt."""
    from preserve.bag.reader import empty_directories

    try:
        (bag / "data").mkdir(exist_ok=True)
        for rel in empty_directories(bag):
            (bag / rel).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path=str(bag), reason=exc.strerror or str(exc)) from exc


def _materialize(obj: Path, inventory: Inventory, logical: str, digest: str, target: Path) -> None:
    paths = inventory["manifest"].get(digest) or []
    if not paths:
        raise ProblemsFound(f"{logical}: its content was purged from object {inventory['id']}; "
                            "this version cannot be exported whole (see the purge record under extensions/)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        copied = copy_and_hash(obj / paths[0], target, [DIGEST])
    except OSError as exc:
        raise StorageError(path=str(obj / paths[0]), reason=exc.strerror or str(exc)) from exc
    if copied.digests[DIGEST] != digest:
        raise ProblemsFound(f"{obj / paths[0]}: sha512 does not match the inventory (expected {digest[:16]}..., "
                            f"found {copied.digests[DIGEST][:16]}...); the stored copy is damaged: run "
                            "`preserve store validate` and restore the object from a replica")


@dataclass
class VersionEntry:
    version: str
    created: str
    message: str
    user: str
    address: str | None
    files: int
    events: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "created": self.created, "message": self.message, "user": self.user,
                "address": self.address, "files": self.files, "events": self.events}


def log(root_path: str | os.PathLike[str], object_id: str) -> list[VersionEntry]:
    """Every version of the object, oldest first, with the PREMIS events its metadata records."""
    from preserve.ocfl.events import events_of

    _root, obj, inventory = load(root_path, object_id)
    entries = []
    for name in sorted(inventory["versions"], key=version_number):
        block = inventory["versions"][name]
        user = block.get("user") or {}
        entries.append(VersionEntry(name, block.get("created", ""), block.get("message", ""), user.get("name", ""),
                                    user.get("address"), sum(len(p) for p in block["state"].values()),
                                    events_of(obj, inventory, name)))
    return entries


@dataclass
class Diff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def diff(root_path: str | os.PathLike[str], object_id: str, old: str, new: str) -> Diff:
    """Files added, removed and changed (by content digest) between two versions."""
    _root, _obj, inventory = load(root_path, object_id)
    a = state_of(inventory, pick_version(inventory, old))
    b = state_of(inventory, pick_version(inventory, new))
    return Diff(added=sorted(set(b) - set(a)), removed=sorted(set(a) - set(b)),
                changed=sorted(p for p in set(a) & set(b) if a[p] != b[p]))


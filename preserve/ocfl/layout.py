"""OCFL 1.1 storage roots: the declaration, the layout, and where an object's root lies.

A storage root holds ``0=ocfl_1.1``, the specification's text (``ocfl_1.1.md``, optional but
kept so that a reader in decades holds the rules with the data), ``ocfl_layout.json`` naming the
storage layout extension, and that extension's ``config.json`` under ``extensions/``. Everything
else directly under the root is an object tree: anything preserve needs for itself (locks,
staging) lives under ``extensions/preserve-store/``, because any other file there makes the
storage root invalid (E072).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preserve.errors import DestinationExists, InputError, StorageError, UsageError

SPEC_VERSION = "1.1"
ROOT_DECLARATION = "0=ocfl_1.1"
OBJECT_DECLARATION = "0=ocfl_object_1.1"
SPEC_TEXT_NAME = "ocfl_1.1.md"
LAYOUT_FILE = "ocfl_layout.json"
INVENTORY_TYPE = "https://ocfl.io/1.1/spec/#inventory"
HASHED = "0004-hashed-n-tuple-storage-layout"
FLAT = "0002-flat-direct-storage-layout"
LAYOUTS = (HASHED, FLAT)
#: preserve's own folder below ``extensions/`` of the storage root (locks, staging) and of an
#: object (purge records). OCFL validators warn that the name is not a registered extension
#: (W013 in an object); an error would be any other place.
OWN_EXTENSION = "preserve-store"

_DESCRIPTIONS = {
    HASHED: "OCFL object roots at sha256(id) split into 3 tuples of 3 characters, then the full digest "
            "(https://ocfl.io/extensions/0004-hashed-n-tuple-storage-layout.html)",
    FLAT: "OCFL object roots directly under the storage root, named by the object id "
          "(https://ocfl.io/extensions/0002-flat-direct-storage-layout.html)",
}

_SPEC_TEXT = """\
# Oxford Common File Layout (OCFL) 1.1

This folder is an OCFL 1.1 storage root. The specification it follows is published at
https://ocfl.io/1.1/spec/ (the normative text). In short:

- `0=ocfl_1.1` declares the storage root; `ocfl_layout.json` names the storage layout extension
  whose parameters are in `extensions/<extension name>/config.json`.
- Each object is a folder holding `0=ocfl_object_1.1`, `inventory.json` with its digest in
  `inventory.json.sha512`, and version folders `v1`, `v2`, ... Each version folder holds a copy of
  the inventory as it was when that version was made, and the files first added in that version
  under `content/`.
- The inventory maps each content digest (sha512) to the files holding it (`manifest`) and, for
  each version, each digest to the logical paths that make up that version (`state`): a file
  unchanged between versions is stored once.
- A version, once written, is never changed.

To read version N of an object without any software: open `inventory.json`, take
`versions.vN.state`, and for each digest copy the file named by `manifest[digest][0]` to each of
the logical paths listed.
"""


@dataclass(frozen=True)
class StorageRoot:
    """An OCFL storage root on disk and the layout that places its objects."""

    path: Path
    layout: str
    digest_algorithm: str = "sha256"
    tuple_size: int = 3
    number_of_tuples: int = 3
    short_object_root: bool = False

    def object_path(self, object_id: str) -> Path:
        """The object root of ``object_id`` under this storage root (it may not exist)."""
        return self.path / self.object_relpath(object_id)

    def object_relpath(self, object_id: str) -> str:
        if self.layout == FLAT:
            if not object_id or object_id in (".", "..") or "/" in object_id or "\0" in object_id:
                raise UsageError(f"{object_id}: the flat layout (0002) needs an object id usable as a folder name "
                                 "(no '/'); use a storage root with the default hashed layout for URI ids")
            return object_id
        digest = hashlib.new(self.digest_algorithm, object_id.encode("utf-8")).hexdigest()
        parts = [digest[i * self.tuple_size:(i + 1) * self.tuple_size] for i in range(self.number_of_tuples)]
        last = digest[self.number_of_tuples * self.tuple_size:] if self.short_object_root else digest
        return "/".join([*parts, last])

    @property
    def own(self) -> Path:
        """preserve's folder for locks and staging, below the root's ``extensions/``."""
        return self.path / "extensions" / OWN_EXTENSION


def init_root(path: str | os.PathLike[str], *, layout: str = HASHED) -> StorageRoot:
    """Create an OCFL 1.1 storage root at ``path`` (a new or empty folder).

    A folder that already holds anything is refused: it is either a storage root already
    (:class:`DestinationExists`) or something else that must not be mixed with one (:class:`UsageError`).
    """
    if layout not in LAYOUTS:
        raise UsageError(f"unknown storage layout {layout}; choose {' or '.join(LAYOUTS)}")
    root = Path(os.path.abspath(path))
    if os.path.lexists(root):
        if root.is_symlink() or not root.is_dir():
            raise UsageError(f"{root}: exists and is not a folder; choose a new or empty folder for the storage root")
        entries = os.listdir(root)
        if ROOT_DECLARATION in entries:
            raise DestinationExists(f"{root}: is already an OCFL storage root (nothing was written)")
        if entries:
            raise UsageError(f"{root}: the folder is not empty and is not an OCFL storage root; "
                             "choose a new or empty folder (nothing was written)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        ext = root / "extensions" / layout
        ext.mkdir(parents=True)
        config: dict[str, Any] = {"extensionName": layout}
        if layout == HASHED:
            config.update(digestAlgorithm="sha256", tupleSize=3, numberOfTuples=3, shortObjectRoot=False)
        _write_text(ext / "config.json", json.dumps(config, indent=2) + "\n")
        _write_text(root / LAYOUT_FILE, json.dumps({"extension": layout, "description": _DESCRIPTIONS[layout]},
                                                   indent=2) + "\n")
        _write_text(root / SPEC_TEXT_NAME, _SPEC_TEXT)
        # the declaration last: a folder without it is not yet a storage root
        _write_text(root / ROOT_DECLARATION, "ocfl_1.1\n")
    except OSError as exc:
        raise StorageError(path=str(root), reason=exc.strerror or str(exc)) from exc
    return open_root(root)


def _write_text(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def open_root(path: str | os.PathLike[str]) -> StorageRoot:
    """The storage root at ``path``, with its layout read from ``ocfl_layout.json``."""
    root = Path(os.path.abspath(path))
    decl = root / ROOT_DECLARATION
    if not decl.is_file():
        raise InputError(f"{root}: not an OCFL storage root ({ROOT_DECLARATION} is missing); "
                         "create one with `preserve store init`")
    try:
        layout_doc = json.loads((root / LAYOUT_FILE).read_text(encoding="utf-8"))
        layout = layout_doc["extension"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{root / LAYOUT_FILE}: cannot be read as an OCFL layout description ({exc}); "
                         "preserve needs it to find objects") from None
    if layout not in LAYOUTS:
        raise InputError(f"{root / LAYOUT_FILE}: storage layout {layout} is not one preserve knows "
                         f"({', '.join(LAYOUTS)})")
    config: dict[str, Any] = {}
    config_path = root / "extensions" / layout / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{config_path}: cannot be read as JSON ({exc})") from None
    if layout == HASHED:
        return StorageRoot(root, layout, digest_algorithm=str(config.get("digestAlgorithm", "sha256")),
                           tuple_size=int(config.get("tupleSize", 3)),
                           number_of_tuples=int(config.get("numberOfTuples", 3)),
                           short_object_root=bool(config.get("shortObjectRoot", False)))
    return StorageRoot(root, layout)


def find_objects(root: StorageRoot) -> list[Path]:
    """Every object root below the storage root (folders holding an object declaration), sorted."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root.path):
        if Path(dirpath) == root.path:
            dirnames[:] = [d for d in dirnames if d != "extensions"]
        if any(name.startswith("0=ocfl_object_") for name in filenames):
            found.append(Path(dirpath))
            dirnames[:] = []
    return sorted(found)

"""The OCFL inventory: reading, building and writing it with its digest sidecar.

An inventory is kept as the plain JSON structure the specification defines (a dict); these
functions add what preserve needs on top: the next version's name, a version's state as
``{logical path: digest}``, and durable writing of ``inventory.json`` with ``inventory.json.sha512``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from preserve.errors import InputError
from preserve.ocfl.layout import INVENTORY_TYPE

Inventory = dict[str, Any]
DIGEST = "sha512"
SIDECAR = f"inventory.json.{DIGEST}"
_VERSION = re.compile(r"^v([1-9][0-9]*)$")


def version_number(name: str) -> int:
    """The number of a version name written without zero padding (``v3`` -> 3), else 0."""
    m = _VERSION.match(name)
    return int(m.group(1)) if m else 0


def now() -> str:
    """The creation time of a version: RFC 3339, to the second, in UTC."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def new_inventory(object_id: str) -> Inventory:
    return {"id": object_id, "type": INVENTORY_TYPE, "digestAlgorithm": DIGEST, "head": "v0",
            "contentDirectory": "content", "manifest": {}, "versions": {}}


def state_of(inventory: Inventory, version: str | None = None) -> dict[str, str]:
    """``{logical path: digest}`` of ``version`` (the head by default)."""
    block = inventory["versions"][version or inventory["head"]]
    return {path: digest for digest, paths in block["state"].items() for path in paths}


def content_path_of(inventory: Inventory, digest: str) -> str | None:
    """A content path (relative to the object root) holding ``digest``, or None when purged."""
    paths = inventory["manifest"].get(digest)
    return paths[0] if paths else None


def add_version(inventory: Inventory, state: dict[str, str], new_content: dict[str, str], *,
                message: str, user: str, address: str | None) -> str:
    """Append the next version: ``state`` is ``{logical path: digest}``, ``new_content`` is
    ``{content path: digest}`` of the files stored in this version. Returns the version name."""
    version = f"v{version_number(inventory['head']) + 1}"
    for content_path, digest in sorted(new_content.items()):
        inventory["manifest"].setdefault(digest, []).append(content_path)
    by_digest: dict[str, list[str]] = {}
    for path, digest in sorted(state.items()):
        by_digest.setdefault(digest, []).append(path)
    person: dict[str, str] = {"name": user}
    if address:
        person["address"] = address
    inventory["versions"][version] = {"created": now(), "message": message, "user": person, "state": by_digest}
    inventory["head"] = version
    return version


def serialize(inventory: Inventory) -> bytes:
    return (json.dumps(inventory, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")


def write_inventory(folder: Path, data: bytes) -> None:
    """Write ``inventory.json`` and its sidecar into ``folder`` (a new folder: files must not exist)."""
    digest = hashlib.new(DIGEST, data).hexdigest()
    for name, body in (("inventory.json", data), (SIDECAR, f"{digest}  inventory.json\n".encode("ascii"))):
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)


def read_inventory(folder: Path) -> Inventory:
    """The inventory in ``folder`` (an object root or a version folder), checked against its sidecar."""
    path = folder / "inventory.json"
    try:
        data = path.read_bytes()
        sidecar = (folder / SIDECAR).read_text(encoding="ascii").split()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}); run `preserve store validate` on the object") from None
    if not sidecar or sidecar[0].lower() != hashlib.new(DIGEST, data).hexdigest():
        raise InputError(f"{path}: does not match its digest in {SIDECAR} (E060); the object is damaged: "
                         "run `preserve store validate` and restore it from a replica")
    try:
        inventory: Inventory = json.loads(data)
    except ValueError as exc:
        raise InputError(f"{path}: is not valid JSON ({exc}) (E033)") from None
    return inventory

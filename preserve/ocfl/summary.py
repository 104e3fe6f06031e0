"""What a store holds, for ``preserve report``: objects, versions, deaccessioned and purged objects.

Read from the inventories and preserve's purge records only (no content is read), with no link
followed: deaccession makes a head version whose message starts with ``deaccession``, and each
purge appends to the object's purge record (see retire.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.errors import InputError
from preserve.ocfl.audit import store_objects
from preserve.ocfl.retire import PURGE_RECORD
from preserve.safefs import read_beneath


@dataclass
class StoreSummary:
    """The objects at one storage root (or one object) and what was withdrawn from them."""

    path: str
    objects: int = 0
    versions: int = 0
    #: one row per object whose head version is a deaccession: id, version, created, message
    deaccessioned: list[dict[str, Any]] = field(default_factory=list)
    #: one row per purge: id, purged, reason, authority, items
    purged: list[dict[str, Any]] = field(default_factory=list)
    #: objects whose inventory or purge record could not be read, with the reason
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "objects": self.objects, "versions": self.versions,
                "deaccessioned": self.deaccessioned, "purged": self.purged, "unreadable": self.unreadable}


def _json(obj: Path, rel: str) -> Any:
    return json.loads(read_beneath(obj, rel))


def summarize_store(path: str | os.PathLike[str]) -> StoreSummary:
    """Count the objects and versions at ``path`` and list the deaccessioned and purged objects."""
    objects = store_objects(path)
    if objects is None:
        raise InputError(f"{path}: not an OCFL storage root or object")
    summary = StoreSummary(path=str(Path(path).resolve()), objects=len(objects))
    for obj in objects:
        try:
            inventory = _json(obj, "inventory.json")
            versions = inventory["versions"]
            head = inventory["head"]
            object_id = str(inventory["id"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            summary.unreadable.append(f"{obj}/inventory.json: cannot be read ({exc}); run `preserve audit` on it")
            continue
        summary.versions += len(versions)
        block = versions.get(head) or {}
        message = str(block.get("message") or "")
        if message.startswith("deaccession"):
            summary.deaccessioned.append({"id": object_id, "version": head, "created": block.get("created"),
                                          "message": message})
        if not os.path.lexists(obj / PURGE_RECORD):
            continue
        try:
            records = _json(obj, PURGE_RECORD)
        except (OSError, ValueError) as exc:
            summary.unreadable.append(f"{obj / PURGE_RECORD}: cannot be read ({exc})")
            continue
        for record in records if isinstance(records, list) else []:
            summary.purged.append({"id": object_id, "purged": record.get("purged"), "reason": record.get("reason"),
                                   "authority": record.get("authority"), "items": len(record.get("items") or [])})
    return summary


def summary_lines(summary: StoreSummary) -> list[str]:
    """The summary as lines of text (not yet escaped for a terminal)."""
    lines = [f"OCFL store {summary.path}: {summary.objects} object(s), {summary.versions} version(s)"]
    lines.append(f"  deaccessioned: {len(summary.deaccessioned)}")
    lines += [f"    {d['id']} ({d['version']}, {d['created']}): {d['message']}" for d in summary.deaccessioned]
    lines.append(f"  purges: {len(summary.purged)}")
    lines += [f"    {p['id']} ({p['purged']}): {p['items']} item(s); {p['reason']} (authority: {p['authority']})"
              for p in summary.purged]
    lines += [f"  unreadable: {u}" for u in summary.unreadable]
    return lines

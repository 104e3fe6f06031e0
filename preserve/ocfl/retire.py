"""Deaccession (a new version without payload) and purge (the legal takedown).

Deaccession keeps every earlier version: the new head version is a bag with an empty payload,
whose ``metadata/tombstone.json`` says what was there (paths, sha512, sizes), why and who
decided, and whose ``metadata/premis.xml`` carries the object's earlier events and a
deaccession event.

Purge is the one operation that changes versions already written. It deletes the content files
holding the purged bytes from every version folder, removes their digests from the manifest and
the logical paths from every version's state, and rewrites every inventory (each version folder's
copy and the root's) so the object stays valid. What was purged (logical paths, digest, reason,
authority, date, operator) is recorded in ``extensions/preserve-store/purges.json`` in the object.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from preserve.bag.writer import _write_tag_manifests
from preserve.errors import StorageError, UsageError
from preserve.fixity import fsync_path
from preserve.ocfl.history import store_event
from preserve.ocfl.inventory import (
    SIDECAR,
    now,
    read_inventory,
    serialize,
    state_of,
    version_number,
    write_inventory,
)
from preserve.ocfl.layout import OWN_EXTENSION, open_root
from preserve.ocfl.read import object_folder
from preserve.ocfl.txn import writing
from preserve.ocfl.update import (
    VersionBuild,
    copy_tag_files,
    events_in_version,
    finish_version,
    require_reason,
    start_version,
)
from preserve.sidecars import PREMIS_FILE
from preserve.sidecars.premis import NSMAP, PREMIS_NS, PREMIS_XSD, XSI_NS, event_element

TOMBSTONE = "metadata/tombstone.json"
PURGE_RECORD = f"extensions/{OWN_EXTENSION}/purges.json"


@dataclass
class RetireResult:
    object_id: str
    version: str | None
    paths: list[str] = field(default_factory=list)
    removed_files: int = 0


def deaccession(root_path: str | os.PathLike[str], object_id: str, *, reason: str | None, authority: str | None,
                operator: str | None, address: str | None = None) -> RetireResult:
    """A new version of ``object_id`` without payload, with tombstone metadata and a PREMIS event."""
    reason, operator = require_reason(reason, operator)
    if not authority or not authority.strip():
        raise UsageError("deaccession needs --authority: who decided (a committee, a court order, an agreement)")
    root = open_root(root_path)
    object_folder(root, object_id)
    with writing(root, object_id) as txn:
        build = start_version(txn, object_id)
        old = state_of(build.inventory)
        if build.inventory["versions"][build.inventory["head"]].get("message", "").startswith("deaccession"):
            raise UsageError(f"{object_id} is already deaccessioned (its head version has no payload)")
        earlier = events_in_version(txn, build.inventory)
        payload = {p: d for p, d in old.items() if p.startswith("data/")}
        copy_tag_files(build, old)
        _tombstone(build, payload, reason, authority.strip(), operator, earlier)
        finish_version(build, f"deaccession: {reason} (authority: {authority.strip()}; by {operator})", operator, address)
        return RetireResult(object_id, build.name, sorted(payload))


def _tombstone(build: VersionBuild, payload: dict[str, str], reason: str, authority: str, operator: str,
               earlier: list[etree._Element]) -> None:
    work, obj = build.work, build.txn.object_path
    sizes = {}
    for rel, digest in payload.items():
        paths = build.inventory["manifest"].get(digest) or []
        sizes[rel] = (obj / paths[0]).stat().st_size if paths else None
    # the payload's manifests, METS and fast-fixity list describe files this version does not hold
    for p in [*work.glob("manifest-*.txt"), *work.glob("tagmanifest-*.txt")]:
        p.unlink()
    for rel in ("metadata/mets.xml", "metadata/xxh3-128.txt", "metadata/empty-directories.txt"):
        if (work / rel).exists():
            (work / rel).unlink()
    algs = sorted(p.name[len("manifest-"):-len(".txt")] for p in _old_manifests(build)) or ["sha256", "sha512"]
    for alg in algs:
        (work / f"manifest-{alg}.txt").write_text("", encoding="utf-8")
    info = work / "bag-info.txt"
    lines = info.read_text(encoding="utf-8").splitlines() if info.is_file() else []
    # no longer an audio AIP: the profile it declared requires the METS of a payload it does not hold
    profile = [ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("bagit-profile-identifier:")]
    lines = [ln for ln in lines if not ln.lower().startswith(("payload-oxum:", "bag-size:", "bagit-profile-identifier:"))]
    info.write_text("\n".join([*lines, "Payload-Oxum: 0.0"]) + "\n", encoding="utf-8")
    when = now()
    record = {"deaccessioned": when, "reason": reason, "authority": authority, "operator": operator,
              "object": build.result.object_id, "previous_version": build.inventory["head"],
              "previous_profile": profile[0] if profile else None,
              "files": [{"path": p, "sha512": d, "size": sizes[p]} for p, d in sorted(payload.items())]}
    (work / "metadata").mkdir(exist_ok=True)
    (work / TOMBSTONE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    event = store_event("deaccession", f"program=preserve store deaccession; reason: {reason}; authority: "
                        f"{authority}; operator: {operator}",
                        [f"{len(payload)} payload file(s) withdrawn; earlier versions keep them; "
                         f"listed with their sha512 in {TOMBSTONE}"])
    _premis_tombstone(work / PREMIS_FILE, earlier, event_element(event))
    _write_tag_manifests(work, tuple(algs))


def _old_manifests(build: VersionBuild) -> list[Path]:
    return [Path(p) for p in state_of(build.inventory) if p.startswith("manifest-")]


def _premis_tombstone(path: Path, earlier: list[etree._Element], event: etree._Element) -> None:
    """A standalone PREMIS document: the collection object, every earlier event, the deaccession."""
    p = f"{{{PREMIS_NS}}}"
    root = etree.Element(p + "premis", {f"{{{XSI_NS}}}schemaLocation": f"{PREMIS_NS} {PREMIS_XSD}", "version": "3.0"},
                         nsmap=NSMAP)
    entity = None
    if path.is_file():
        from preserve.xmlsafe import parse_untrusted_file

        old = parse_untrusted_file(str(path))
        entity = next((o for o in old.iterfind(p + "object")
                       if (o.get(f"{{{XSI_NS}}}type") or "").endswith("intellectualEntity")), None)
    if entity is None:
        entity = etree.SubElement(root, p + "object", {f"{{{XSI_NS}}}type": "premis:intellectualEntity"})
        ident = etree.SubElement(entity, p + "objectIdentifier")
        etree.SubElement(ident, p + "objectIdentifierType").text = "local"
        etree.SubElement(ident, p + "objectIdentifierValue").text = "deaccessioned object"
    else:
        root.append(entity)
    for ev in earlier:
        root.append(ev)
    root.append(event)
    etree.ElementTree(root).write(str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True)


def purge(root_path: str | os.PathLike[str], object_id: str, path: str | None = None, *, reason: str | None,
          authority: str | None, operator: str | None, confirm: bool) -> RetireResult:
    """Delete the bytes of ``path`` (a logical path; every payload file when None) from every
    version of the object, rewriting every inventory. Breaks version immutability: see the module
    docstring and docs/store.md."""
    if not confirm:
        raise UsageError("purge deletes content from every version of the object and cannot be undone; "
                         "run it again with --confirm if that is what the takedown requires")
    reason, operator = require_reason(reason, operator)
    if not authority or not authority.strip():
        raise UsageError("purge needs --authority: who ordered the takedown")
    root = open_root(root_path)
    obj = object_folder(root, object_id)
    with writing(root, object_id) as txn:
        inventory = read_inventory(obj)
        digests: dict[str, set[str]] = {}
        for v in inventory["versions"]:
            for logical, digest in state_of(inventory, v).items():
                wanted = logical.startswith("data/") if path is None else logical in (path, f"data/{path}")
                if wanted:
                    digests.setdefault(digest, set()).add(logical)
        if not digests:
            raise UsageError(f"{path}: no version of {object_id} holds such a file")
        content = [c for d in digests for c in inventory["manifest"].get(d, [])]
        record = _purge_record(obj, digests, content, reason, authority.strip(), operator)
        # the record first: a run killed later still says what was being purged, and why
        _write_record(txn.staging("purge"), obj, record)
        for block in inventory["versions"].values():
            state = {d: [p for p in ps if d not in digests] for d, ps in block["state"].items()}
            block["state"] = {d: ps for d, ps in state.items() if ps}
        for d in digests:
            inventory["manifest"].pop(d, None)
        for alg_block in (inventory.get("fixity") or {}).values():
            for d in list(alg_block):
                alg_block[d] = [c for c in alg_block[d] if c not in content]
                if not alg_block[d]:
                    del alg_block[d]
        _rewrite_all(txn.staging("purge-inventories"), obj, inventory)
        removed = 0
        for c in content:
            try:
                os.unlink(obj / c)
                removed += 1
            except FileNotFoundError:
                pass
        _prune_versions(obj, inventory)
        return RetireResult(object_id, None, sorted({p for ps in digests.values() for p in ps}), removed)


def _purge_record(obj: Path, digests: dict[str, set[str]], content: list[str], reason: str, authority: str,
                  operator: str) -> dict[str, Any]:
    return {"purged": now(), "reason": reason, "authority": authority, "operator": operator,
            "items": [{"paths": sorted(paths), "sha512": d} for d, paths in sorted(digests.items())],
            "content_paths": sorted(content)}


def _write_record(staging: Path, obj: Path, record: dict[str, Any]) -> None:
    target = obj / PURGE_RECORD
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        records = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else []
        records.append(record)
        tmp = staging / "purges.json"
        tmp.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        fsync_path(target.parent)
    except OSError as exc:
        raise StorageError(path=str(target), reason=exc.strerror or str(exc)) from exc


def _rewrite_all(staging: Path, obj: Path, inventory: dict[str, Any]) -> None:
    """Every version's inventory copy, then the root's: each by rename of a complete file."""
    for v in sorted(inventory["versions"], key=version_number):
        older = {k: b for k, b in inventory["versions"].items() if version_number(k) <= version_number(v)}
        copy = dict(inventory, head=v, versions=older)
        copy["manifest"] = {d: [c for c in cs if version_number(c.split("/")[0]) <= version_number(v)]
                            for d, cs in inventory["manifest"].items()}
        copy["manifest"] = {d: cs for d, cs in copy["manifest"].items() if cs}
        if v == inventory["head"]:
            copy = inventory
        _replace_inventory(staging / v, obj / v, serialize(copy))
    _replace_inventory(staging / "root", obj, serialize(inventory))


def _replace_inventory(tmp: Path, folder: Path, data: bytes) -> None:
    tmp.mkdir()
    write_inventory(tmp, data)
    os.replace(tmp / "inventory.json", folder / "inventory.json")
    os.replace(tmp / SIDECAR, folder / SIDECAR)
    fsync_path(folder)


def _prune_versions(obj: Path, inventory: dict[str, Any]) -> None:
    """Empty folders left in content/ (OCFL forbids them, E024), and content/ itself when empty."""
    for v in inventory["versions"]:
        content = obj / v / "content"
        if not content.is_dir():
            continue
        for dirpath, _dirs, _files in os.walk(content, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


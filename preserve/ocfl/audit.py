"""Auditing OCFL store objects: each object's content against its inventory, as a ledger record.

``fast``  the inventory's structure and its sidecar digest (validate.py), and every content file
          the manifest names present (and nothing else there); no content is read. The OCFL
          inventory records no sizes, so a file altered in place passes the fast tier.
``full``  all of the fast tier, then every content file's sha512 against the manifest and, where
          the inventory has a fixity block, each digest of it that preserve can compute.

The object is walked with no link followed: a symbolic link anywhere in it is a finding naming
it, and then nothing of the object is read (what a link points to is not the store's content).
The record's identity is the object: location = the object's folder, identifier = its id.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from preserve.audit.ledger import now_iso
from preserve.audit.ledger_records import AuditRecord, FindingRecord
from preserve.errors import InputError
from preserve.fixity import hash_file
from preserve.ocfl.layout import OBJECT_DECLARATION, ROOT_DECLARATION, find_objects, open_root
from preserve.ocfl.validate import validate_object
from preserve.safefs import LINK_REASON, LinkRefused, read_beneath

#: fixity-block algorithms (OCFL names) preserve computes, mapped to hashlib's names
_FIXITY = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
#: presence is checked here, with the file named, so validate.py's own presence codes are not repeated
_PRESENCE_CODES = {"E023", "E092"}


def store_objects(path: str | os.PathLike[str]) -> list[Path] | None:
    """The OCFL objects at ``path`` (a storage root or one object), or None when it is neither."""
    # resolved as the bag audit resolves its targets, so the ledger's locations agree
    folder = Path(path).resolve()
    if (folder / OBJECT_DECLARATION).is_file() and not (folder / OBJECT_DECLARATION).is_symlink():
        return [folder]
    if (folder / ROOT_DECLARATION).is_file():
        return find_objects(open_root(folder))
    return None


def _scan(obj: Path) -> tuple[dict[str, int], list[str]]:
    """Every regular file below the object (relative path -> size) and every link, never followed."""
    files: dict[str, int] = {}
    links: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(obj / rel if rel else obj) as it:
            for entry in it:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    links.append(name)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(name)
                elif entry.is_file(follow_symlinks=False):
                    files[name] = entry.stat(follow_symlinks=False).st_size
    return files, sorted(links)


def audit_object(obj: Path, tier: str) -> AuditRecord:
    """Audit one OCFL object at ``tier`` (``fast`` or ``full``); every problem is a finding."""
    from preserve import __version__

    started = now_iso()
    findings: list[FindingRecord] = []
    # read with no link followed, so that the object is named by its id even when links are found
    inventory = _inventory(obj)
    given_id = inventory.get("id")
    object_id = given_id if isinstance(given_id, str) and given_id else obj.name
    files: dict[str, int] = {}
    read = 0
    manifest: dict[str, str] = {}
    try:
        files, links = _scan(obj)
    except OSError as exc:
        links = []
        findings.append(FindingRecord(file="", kind="unreadable", message=f"{obj}: cannot be read "
                                      f"({exc.strerror or exc}); check the store's permissions and disk"))
    for link in links:
        findings.append(FindingRecord(file=link, kind="invalid", message=f"{obj / link}: {LINK_REASON}; remove it and "
                                      "restore the object from a replica", code="link"))
    if not findings:
        report = validate_object(obj, fast=True)
        for f in report.errors:
            if f.code not in _PRESENCE_CODES:
                findings.append(FindingRecord(file="", kind="invalid", code=f.code,
                                              message=f"{obj}: {f.message}"))
        manifest = {p: d.lower() for d, ps in (inventory.get("manifest") or {}).items()
                    if isinstance(ps, list) for p in ps if isinstance(p, str)}
        for rel in sorted(set(manifest) - set(files)):
            findings.append(FindingRecord(file=rel, kind="missing", code="E092",
                                          message=f"{obj / rel}: the inventory lists it but it is gone; "
                                                  "restore the object from a replica"))
        content_dir = str(inventory.get("contentDirectory") or "content")
        content = {f for f in files if f.count("/") >= 2 and f.split("/")[1] == content_dir}
        for rel in sorted(content - set(manifest)):
            findings.append(FindingRecord(file=rel, kind="unlisted", code="E023",
                                          message=f"{obj / rel}: not in the inventory manifest; it does not "
                                                  "belong to the object (remove it after checking what it is)"))
        if tier == "full":
            read = _verify_content(obj, manifest, _fixity_of(inventory), files, findings)
    return AuditRecord(location=str(obj), identifier=object_id, tier=tier, started=started, ended=now_iso(),
                       bytes=read, files=len(manifest), outcome="fail" if findings else "pass", algorithm="sha512",
                       tool_version=__version__, payload_bytes=sum(files.get(p, 0) for p in manifest),
                       payload_files=len(manifest), host=socket.gethostname(), findings=findings)


def _inventory(obj: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_beneath(obj, "inventory.json"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _fixity_of(inventory: dict[str, Any]) -> dict[str, dict[str, str]]:
    """content path -> {hashlib algorithm: expected digest} from the inventory's fixity block."""
    out: dict[str, dict[str, str]] = {}
    block = inventory.get("fixity")
    if not isinstance(block, dict):
        return out
    for alg, entries in block.items():
        if alg not in _FIXITY or not isinstance(entries, dict):
            continue
        for digest, paths in entries.items():
            for p in paths if isinstance(paths, list) else []:
                out.setdefault(str(p), {})[_FIXITY[alg]] = str(digest).lower()
    return out


def _verify_content(obj: Path, manifest: dict[str, str], fixity: dict[str, dict[str, str]],
                    files: dict[str, int], findings: list[FindingRecord]) -> int:
    """Hash every present content file once with sha512 and its fixity algorithms; bytes read."""
    read = 0
    for rel in sorted(p for p in manifest if p in files):
        expected = {"sha512": manifest[rel], **{a: d for a, d in fixity.get(rel, {}).items() if a != "sha512"}}
        try:
            found = hash_file(rel, sorted(expected), root=obj)
        except LinkRefused:
            findings.append(FindingRecord(file=rel, kind="invalid", code="link", message=f"{obj / rel}: {LINK_REASON}"))
            continue
        except OSError as exc:
            findings.append(FindingRecord(file=rel, kind="unreadable", message=f"{obj / rel}: cannot be read "
                                          f"({exc.strerror or exc}); check the disk and permissions"))
            continue
        read += files[rel]
        for alg, want in sorted(expected.items()):
            if found[alg] != want:
                where = "manifest" if alg == "sha512" else f"fixity block ({alg})"
                findings.append(FindingRecord(file=rel, kind="altered", code="E092", expected=want, found=found[alg],
                                              message=f"{obj / rel}: its {alg} digest does not match the inventory "
                                                      f"{where}; the content was altered: restore the object from a replica"))
    return read


def audit_store(path: str | os.PathLike[str], tier: str) -> list[AuditRecord]:
    """Audit every object at ``path`` (a storage root or one object) at ``tier``."""
    objects = store_objects(path)
    if objects is None:
        raise InputError(f"{path}: not an OCFL storage root or object")
    return [audit_object(obj, tier) for obj in objects]


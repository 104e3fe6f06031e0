"""Auditing OCFL store objects: each object's content against its inventory, as a ledger record.

``fast``  the inventory's structure and its sidecar digest (validate.py), and every content file
          the manifest names present (and nothing else there); no content is read. The OCFL
          inventory records no sizes, so a file altered in place passes the fast tier.
``full``  all of the fast tier, then every content file's sha512 against the manifest and, where
          the inventory has a fixity block, each digest of it that preserve can compute.

The object is walked with no link followed: a symbolic link anywhere in it is a finding naming
it, and then nothing of the object is read (what a link points to is not the store's content).
The record's identity is the object: location = the object's folder, identifier = its id; the
audited version is the head the root inventory names (:class:`ObjectAudit`).

``preserve audit`` plans, schedules and records objects exactly as it does bags
(:mod:`preserve.audit.runner`): :func:`describe_object` gives the planner an object's size,
and :func:`audit_object` takes the run's progress callback (which also stops an audit when a
time budget runs out), its read-rate limiter and its worker count.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preserve.audit.ledger import now_iso
from preserve.audit.ledger_records import AuditRecord, FindingRecord
from preserve.errors import InputError
from preserve.fixity import Progress, RateLimiter, hash_file, ordered_map
from preserve.ocfl.layout import OBJECT_DECLARATION, ROOT_DECLARATION, find_objects, open_root
from preserve.ocfl.validate import validate_object
from preserve.safefs import LINK_REASON, LinkRefused, read_beneath

#: fixity-block algorithms (OCFL names) preserve computes, mapped to hashlib's names
_FIXITY = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
#: presence is checked here, with the file named, so validate.py's own presence codes are not repeated
_PRESENCE_CODES = {"E023", "E092"}
#: a version directory name as OCFL writes it: v1, v2... or zero-padded (v001)
_VERSION = re.compile(r"v\d+")


@dataclass
class ObjectAudit:
    """One object's audit: the ledger record, and the version whose inventory was checked."""

    record: AuditRecord
    #: the head version the root inventory names (``v3`` after two updates); None when the
    #: inventory could not be read or names no version
    version: str | None


def store_objects(path: str | os.PathLike[str]) -> list[Path] | None:
    """The OCFL objects at ``path`` (a storage root or one object), or None when it is neither."""
    # resolved as the bag audit resolves its targets, so the ledger's locations agree
    folder = Path(path).resolve()
    try:
        if (folder / OBJECT_DECLARATION).is_file() and not (folder / OBJECT_DECLARATION).is_symlink():
            return [folder]
        is_root = (folder / ROOT_DECLARATION).is_file()
    except OSError:
        return None  # a folder that cannot be looked into: the bag audit says why
    return find_objects(open_root(folder)) if is_root else None


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


def describe_object(obj: Path) -> tuple[str | None, int | None, int | None]:
    """(id, content bytes, content files) of an object, for planning: the inventory is read and each
    content file's size is taken from the file system (no content byte is read); None where unknown."""
    inventory = _inventory(obj)
    given_id = inventory.get("id")
    manifest = inventory.get("manifest")
    if not isinstance(manifest, dict):
        return (given_id if isinstance(given_id, str) and given_id else None), None, None
    paths = {p for ps in manifest.values() if isinstance(ps, list) for p in ps if isinstance(p, str)}
    total = 0
    for rel in paths:
        try:
            total += os.lstat(obj / rel).st_size
        except OSError:
            continue  # gone or unreadable: the audit says so; the estimate goes without it
    return (given_id if isinstance(given_id, str) and given_id else None), total, len(paths)


def audit_object(obj: Path, tier: str, *, progress: Progress | None = None, workers: int | None = None,
                 drop_cache: bool = False, limiter: RateLimiter | None = None,
                 identifier: str | None = None) -> AuditRecord:
    """Audit one OCFL object at ``tier`` (``fast`` or ``full``); every problem is a finding.

    The ledger record of :func:`check_object` (which see for the arguments).
    """
    return check_object(obj, tier, progress=progress, workers=workers, drop_cache=drop_cache, limiter=limiter,
                        identifier=identifier).record


def check_object(obj: Path, tier: str, *, progress: Progress | None = None, workers: int | None = None,
                 drop_cache: bool = False, limiter: RateLimiter | None = None,
                 identifier: str | None = None) -> ObjectAudit:
    """Audit one OCFL object at ``tier``: the record and the version audited.

    ``progress`` is told of the bytes read and the files checked; an exception it raises (the
    runner's time budget) ends the audit. ``workers`` content files are hashed at once,
    ``limiter`` caps the read rate, ``drop_cache`` evicts each file's cached pages first.
    ``identifier`` (the ledger's) names an object that can no longer name itself (gone).
    """
    from preserve import __version__

    started = now_iso()
    findings: list[FindingRecord] = []
    try:
        os.lstat(obj)
    except FileNotFoundError:
        findings.append(FindingRecord(file="", kind="missing", code="object-missing", message=(
            f"the object is gone: {obj} no longer exists; restore it from a replica")))
    # read with no link followed, so that the object is named by its id even when links are found
    inventory = _inventory(obj)
    given_id = inventory.get("id")
    object_id = given_id if isinstance(given_id, str) and given_id else identifier or obj.name
    head = inventory.get("head")
    version = head if isinstance(head, str) and _VERSION.fullmatch(head) else None
    files: dict[str, int] = {}
    read = 0
    manifest: dict[str, str] = {}
    links: list[str] = []
    if not findings:
        try:
            files, links = _scan(obj)
        except OSError as exc:
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
            read = _verify_content(obj, manifest, _fixity_of(inventory), files, findings, progress=progress,
                                   workers=workers, drop_cache=drop_cache, limiter=limiter)
        elif progress is not None:
            progress(0, len(manifest))  # the fast tier reads no content: files checked present, no bytes
    record = AuditRecord(location=str(obj), identifier=object_id, tier=tier, started=started, ended=now_iso(),
                         bytes=read, files=len(manifest), outcome="fail" if findings else "pass", algorithm="sha512",
                         tool_version=__version__, payload_bytes=sum(files.get(p, 0) for p in manifest),
                         payload_files=len(manifest), host=socket.gethostname(), findings=findings,
                         version=version)
    return ObjectAudit(record, version)


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
                    files: dict[str, int], findings: list[FindingRecord], *, progress: Progress | None,
                    workers: int | None, drop_cache: bool, limiter: RateLimiter | None) -> int:
    """Hash every present content file once with sha512 and its fixity algorithms; bytes read."""
    wanted = {rel: {"sha512": manifest[rel], **{a: d for a, d in fixity.get(rel, {}).items() if a != "sha512"}}
              for rel in sorted(p for p in manifest if p in files)}

    def one(rel: str) -> tuple[str, dict[str, str] | OSError]:
        try:
            return rel, hash_file(rel, sorted(wanted[rel]), root=obj, progress=progress, drop_cached=drop_cache,
                                  limiter=limiter)
        except OSError as exc:  # LinkRefused among them; anything else (the budget) ends the audit
            return rel, exc

    read = 0
    for rel, found in ordered_map(one, wanted, workers=workers):
        if isinstance(found, LinkRefused):
            findings.append(FindingRecord(file=rel, kind="invalid", code="link", message=f"{obj / rel}: {LINK_REASON}"))
            continue
        if isinstance(found, OSError):
            findings.append(FindingRecord(file=rel, kind="unreadable", message=f"{obj / rel}: cannot be read "
                                          f"({found.strerror or found}); check the disk and permissions"))
            continue
        read += files[rel]
        for alg, want in sorted(wanted[rel].items()):
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


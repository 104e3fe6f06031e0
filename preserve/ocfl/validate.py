"""OCFL 1.1 object validation, reporting with the specification's own codes (E0xx / W0xx).

Checks follow the specification's validation codes (https://ocfl.io/1.1/spec/validation-codes.html):
the object declaration, the root inventory and its sidecar, each version folder's inventory, the
inventory's structure, the files present against the manifest, and (unless ``fast``) every content
file's digest. Findings carry the bare code (``E092``); ocfl-py adds a letter to some of them
(``E092a``), which names the same rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from preserve.fixity import hash_file
from preserve.ocfl.inventory import version_number
from preserve.ocfl.layout import INVENTORY_TYPE

REGISTERED_EXTENSIONS = (
    "0001-digest-algorithms", "0002-flat-direct-storage-layout", "0003-hash-and-id-n-tuple-storage-layout",
    "0004-hashed-n-tuple-storage-layout", "0005-mutable-head",
)
#: digest algorithms OCFL 1.1 names, with the length of their hex digests
DIGEST_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128, "blake2b-512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_URI = re.compile(r"^[a-z][a-z\d+\-.]*:.+", re.IGNORECASE)


@dataclass(frozen=True)
class OcflFinding:
    severity: str  # "error" or "warning"
    code: str  # E0xx or W0xx
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


@dataclass
class ObjectReport:
    path: str
    object_id: str | None = None
    head: str | None = None
    mode: str = "full"
    files: int = 0
    findings: list[OcflFinding] = field(default_factory=list)

    @property
    def errors(self) -> list[OcflFinding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[OcflFinding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, code: str, message: str) -> None:
        self.findings.append(OcflFinding("error", code, message))

    def warning(self, code: str, message: str) -> None:
        self.findings.append(OcflFinding("warning", code, message))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "id": self.object_id, "head": self.head, "valid": self.ok, "mode": self.mode,
                "files": self.files, "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [asdict(f) for f in self.findings]}


def _digest_ok(algorithm: str, digest: object) -> bool:
    return isinstance(digest, str) and bool(_HEX.match(digest)) and len(digest) == DIGEST_LENGTHS.get(algorithm, -1)


def _bad_path(path: str) -> str | None:
    if path.startswith("/") or path.endswith("/"):
        return "starts or ends with /"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' element"
    return None


def _prefix_conflict(paths: list[str]) -> str | None:
    """A path that is also used as a folder of another path, if any."""
    names = set(paths)
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                return "/".join(parts[:i])
    return None


class _Inventory:
    """Structural checks of one inventory document; ``where`` is ``root`` or a version name."""

    def __init__(self, report: ObjectReport, where: str) -> None:
        self.r, self.where = report, where
        self.inv: dict[str, Any] = {}
        self.algorithm = "sha512"
        self.versions: list[str] = []
        self.content_dir = "content"
        self.manifest_paths: dict[str, str] = {}  # content path -> digest (normalized lower case)
        self.states: dict[str, dict[str, str]] = {}  # version -> {logical path: digest}

    def load(self, folder: Path) -> bool:
        path = folder / "inventory.json"
        try:
            data = path.read_bytes()
        except OSError:
            return False
        try:
            inv = json.loads(data)
        except ValueError as exc:
            self.r.error("E033", f"{self.where} inventory is not valid JSON ({exc})")
            return False
        if not isinstance(inv, dict):
            self.r.error("E033", f"{self.where} inventory is not a JSON object")
            return False
        self.inv = inv
        self._structure()
        self._sidecar(folder, data)
        return True

    def _sidecar(self, folder: Path, data: bytes) -> None:
        sidecar = folder / f"inventory.json.{self.algorithm}"
        if not sidecar.is_file():
            self.r.error("E058", f"{self.where} inventory is missing its sidecar digest file {sidecar.name}")
            return
        try:
            words = sidecar.read_text(encoding="utf-8").split()
        except (OSError, UnicodeDecodeError):
            words = []
        if len(words) != 2 or words[1] != "inventory.json":
            self.r.error("E061", f"{self.where} sidecar {sidecar.name} is not 'DIGEST inventory.json'")
            return
        if self.algorithm in DIGEST_LENGTHS and words[0].lower() != hashlib.new(self.algorithm, data).hexdigest():
            self.r.error("E060", f"{self.where} inventory does not match its digest in {sidecar.name}")

    def _structure(self) -> None:
        inv, w = self.inv, self.where
        oid = inv.get("id")
        if "id" not in inv:
            self.r.error("E036", f"{w} inventory has no id")
        elif not isinstance(oid, str) or not oid:
            self.r.error("E037", f"{w} inventory id is empty or not a string")
        elif not _URI.match(oid):
            self.r.warning("W005", f"{w} inventory id SHOULD be a URI (got {oid})")
        if "type" not in inv:
            self.r.error("E036", f"{w} inventory has no type")
        elif inv["type"] != INVENTORY_TYPE:
            self.r.error("E038", f"{w} inventory type must be {INVENTORY_TYPE} (got {inv['type']})")
        alg = inv.get("digestAlgorithm")
        if "digestAlgorithm" not in inv:
            self.r.error("E036", f"{w} inventory has no digestAlgorithm")
        elif alg == "sha256":
            self.algorithm = alg
            self.r.warning("W004", f"{w} inventory SHOULD use sha512 but uses sha256")
        elif alg != "sha512":
            self.r.error("E025", f"{w} inventory digestAlgorithm must be sha512 or sha256 (got {alg})")
        if "head" not in inv:
            self.r.error("E036", f"{w} inventory has no head")
        cd = inv.get("contentDirectory", "content")
        if not isinstance(cd, str) or "/" in cd:
            self.r.error("E017", f"{w} inventory contentDirectory must be a string without /")
        elif cd in (".", ".."):
            self.r.error("E018", f"{w} inventory contentDirectory must not be . or ..")
        else:
            self.content_dir = cd
        self._versions()
        self._manifest()
        self._states()
        self._fixity()

    def _versions(self) -> None:
        inv, w = self.inv, self.where
        versions = inv.get("versions")
        if "versions" not in inv:
            self.r.error("E041", f"{w} inventory has no versions block")
            return
        if not isinstance(versions, dict):
            self.r.error("E044", f"{w} inventory versions block is not a JSON object")
            return
        if not versions:
            self.r.error("E008", f"{w} inventory has no versions; there must be at least v1")
            return
        names = sorted(versions, key=lambda n: (len(n), n))
        padded = [n for n in names if re.match(r"^v0\d+$", n)]
        if padded:
            self.r.warning("W001", f"{w} inventory version numbers SHOULD NOT be zero-padded")
        numbers = [int(n[1:]) if re.match(r"^v\d+$", n) else -1 for n in names]
        if 1 not in numbers:
            self.r.error("E009", f"{w} inventory versions do not start with v1")
        elif sorted(numbers) != list(range(1, len(numbers) + 1)):
            self.r.error("E010", f"{w} inventory versions are not a gapless sequence (got {', '.join(names)})")
        self.versions = sorted(names, key=lambda n: int(n[1:]) if n[1:].isdigit() else 0)
        head = inv.get("head")
        if "head" in inv and self.versions and head != self.versions[-1]:
            self.r.error("E040", f"{w} inventory head is {head}, but the newest version is {self.versions[-1]}")
        for v in self.versions:
            block = versions[v]
            if not isinstance(block, dict):
                self.r.error("E048", f"{w} inventory version {v} is not a JSON object")
                continue
            created = block.get("created")
            if created is None:
                self.r.error("E048", f"{w} inventory version {v} has no created date")
            elif not isinstance(created, str) or not _DATETIME.match(created):
                self.r.error("E049", f"{w} inventory version {v} created date is not RFC 3339 with seconds and a time zone")
            if "message" not in block:
                self.r.warning("W007", f"{w} inventory version {v} SHOULD include a message")
            elif not isinstance(block["message"], str):
                self.r.error("E094", f"{w} inventory version {v} message is not a string")
            user = block.get("user")
            if "user" not in block:
                self.r.warning("W007", f"{w} inventory version {v} SHOULD include a user")
            elif not isinstance(user, dict):
                self.r.error("E054", f"{w} inventory version {v} user is not a JSON object")
            else:
                if not isinstance(user.get("name"), str):
                    self.r.error("E054", f"{w} inventory version {v} user has no name string")
                if "address" not in user:
                    self.r.warning("W008", f"{w} inventory version {v} user SHOULD have an address")
                elif not isinstance(user["address"], str):
                    self.r.error("E054", f"{w} inventory version {v} user address is not a string")
                elif not re.match(r"\w{3,6}:", user["address"]):
                    self.r.warning("W009", f"{w} inventory version {v} user address SHOULD be a URI")

    def _manifest(self) -> None:
        inv, w = self.inv, self.where
        manifest = inv.get("manifest")
        if "manifest" not in inv:
            self.r.error("E041", f"{w} inventory has no manifest block")
            return
        if not isinstance(manifest, dict):
            self.r.error("E041", f"{w} inventory manifest block is not a JSON object")
            return
        seen_digests: set[str] = set()
        for digest, paths in manifest.items():
            if not _digest_ok(self.algorithm, digest):
                self.r.error("E025", f"{w} inventory manifest digest {digest} is not a {self.algorithm} digest")
            if digest.lower() in seen_digests:
                self.r.error("E096", f"{w} inventory manifest lists digest {digest} twice")
            seen_digests.add(digest.lower())
            if not isinstance(paths, list):
                self.r.error("E091", f"{w} inventory manifest entry of {digest} is not a list")
                continue
            for p in paths:
                if not isinstance(p, str):
                    self.r.error("E042", f"{w} inventory manifest content path {p} is not a string")
                    continue
                why = _bad_path(p)
                if why:
                    self.r.error("E099" if "element" in why else "E100", f"{w} inventory manifest content path {p} {why}")
                    continue
                parts = p.split("/")
                if len(parts) < 3 or (not version_number(parts[0]) and not re.match(r"^v\d+$", parts[0])):
                    self.r.error("E042", f"{w} inventory manifest content path {p} is not in a version folder")
                elif parts[0] not in self.versions:
                    self.r.error("E042", f"{w} inventory manifest content path {p} is in version {parts[0]}, not in the inventory")
                elif parts[1] != self.content_dir:
                    self.r.error("E042", f"{w} inventory manifest content path {p} is not in the content folder {self.content_dir}")
                if p in self.manifest_paths:
                    self.r.error("E101", f"{w} inventory manifest content path {p} is listed twice")
                self.manifest_paths[p] = digest.lower()
        conflict = _prefix_conflict(list(self.manifest_paths))
        if conflict:
            self.r.error("E101", f"{w} inventory manifest content path {conflict} is used as a file and a folder")

    def _states(self) -> None:
        w = self.where
        versions = self.inv.get("versions")
        if not isinstance(versions, dict):
            return
        manifest_digests = set(self.manifest_paths.values())
        used: set[str] = set()
        for v in self.versions:
            block = versions.get(v)
            if not isinstance(block, dict):
                continue
            if "state" not in block:
                self.r.error("E048", f"{w} inventory version {v} has no state block")
                continue
            state = block["state"]
            if not isinstance(state, dict):
                self.r.error("E050", f"{w} inventory version {v} state block is not a JSON object")
                continue
            logical: dict[str, str] = {}
            for digest, paths in state.items():
                if not _digest_ok(self.algorithm, digest):
                    self.r.error("E050", f"{w} inventory version {v} state has a bad digest {digest}")
                    continue
                if digest.lower() not in manifest_digests:
                    self.r.error("E050", f"{w} inventory version {v} state digest {digest[:16]}... is not in the manifest")
                used.add(digest.lower())
                if not isinstance(paths, list):
                    self.r.error("E050", f"{w} inventory version {v} state value of {digest[:16]}... is not a list")
                    continue
                for p in paths:
                    if not isinstance(p, str):
                        self.r.error("E050", f"{w} inventory version {v} state path {p} is not a string")
                        continue
                    if p.startswith("/") or p.endswith("/"):
                        self.r.error("E052", f"{w} inventory version {v} state path {p} starts or ends with /")
                    elif any(part in ("", ".", "..") for part in p.split("/")):
                        self.r.error("E053", f"{w} inventory version {v} state path {p} has an empty, . or .. element")
                    if p in logical:
                        self.r.error("E095", f"{w} inventory version {v} state path {p} is used twice")
                    logical[p] = digest.lower()
            conflict = _prefix_conflict(list(logical))
            if conflict:
                self.r.error("E095", f"{w} inventory version {v} state path {conflict} is used as a file and a folder")
            self.states[v] = logical
        unused = manifest_digests - used
        if unused:
            self.r.error("E107", f"{w} inventory manifest holds {len(unused)} digest(s) no version uses")

    def _fixity(self) -> None:
        w = self.where
        if "fixity" not in self.inv:
            return
        fixity = self.inv["fixity"]
        if not isinstance(fixity, dict):
            self.r.error("E111", f"{w} inventory fixity block is not a JSON object")
            return
        for alg, block in fixity.items():
            if alg not in DIGEST_LENGTHS and alg not in ("sha512/256", "blake2b-160", "blake2b-256", "blake2b-384",
                                                        "sha1", "md5", "crc32", "size", "blake2b-512"):
                self.r.error("E056", f"{w} inventory fixity block key {alg} is not a registered digest algorithm")
                continue
            if not isinstance(block, dict):
                self.r.error("E057", f"{w} inventory fixity block of {alg} is not a JSON object")
                continue
            for digest, paths in block.items():
                if not isinstance(paths, list):
                    self.r.error("E057", f"{w} inventory fixity {alg} entry {digest} is not a list")
                    continue
                for p in paths:
                    if p not in self.manifest_paths:
                        self.r.error("E057", f"{w} inventory fixity {alg} names {p}, which is not in the manifest")


def _entries(folder: Path) -> Iterator[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        yield from sorted(it, key=lambda e: e.name)


def validate_object(path: str | os.PathLike[str], *, fast: bool = False) -> ObjectReport:
    """Validate the OCFL object at ``path``; every finding is in the report (never raises for
    what it finds)."""
    obj = Path(os.path.abspath(path))
    report = ObjectReport(path=str(obj), mode="fast" if fast else "full")
    if not obj.is_dir():
        report.error("E003", f"{obj}: no OCFL object here (not a folder)")
        return report
    names = {e.name: e for e in _entries(obj)}
    decls = [n for n in names if n.startswith("0=")]
    if not decls:
        report.error("E003", "the object declaration file 0=ocfl_object_1.1 is missing")
    elif len(decls) > 1:
        report.error("E003", f"more than one object declaration file ({', '.join(decls)})")
    elif decls[0] != "0=ocfl_object_1.1":
        report.error("E006", f"the object declaration must be 0=ocfl_object_1.1 (got {decls[0]})")
    else:
        try:
            body = (obj / decls[0]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            body = ""
        if body != "ocfl_object_1.1\n":
            report.error("E007", "0=ocfl_object_1.1 does not contain 'ocfl_object_1.1' and a newline")
    root = _Inventory(report, "root")
    if "inventory.json" not in names:
        report.error("E063", "the object root inventory inventory.json is missing")
        return report
    if not root.load(obj):
        return report
    report.object_id = root.inv.get("id") if isinstance(root.inv.get("id"), str) else None
    report.head = root.inv.get("head") if isinstance(root.inv.get("head"), str) else None
    allowed = {"inventory.json", f"inventory.json.{root.algorithm}", "extensions", "logs", *decls, *root.versions}
    for name, entry in names.items():
        if name in allowed:
            continue
        if re.match(r"^v\d+$", name) and entry.is_dir(follow_symlinks=False):
            report.error("E046", f"folder {name} looks like a version but is not in the inventory")
        elif entry.is_dir(follow_symlinks=False):
            report.error("E001", f"unexpected folder in the object root: {name}")
        elif entry.is_file(follow_symlinks=False):
            report.error("E001", f"unexpected file in the object root: {name}")
        else:
            report.error("E001", f"unexpected entry in the object root that is not a file or folder: {name}")
    if "extensions" in names:
        for entry in _entries(obj / "extensions"):
            if not entry.is_dir(follow_symlinks=False):
                report.error("E067", f"extensions/ holds {entry.name}, which is not a folder")
            elif entry.name not in REGISTERED_EXTENSIONS:
                report.warning("W013", f"extensions/{entry.name} is not a registered extension")
    on_disk = _version_folders(obj, root, report)
    _compare_files(obj, root, on_disk, report, fast)
    return report


def _version_folders(obj: Path, root: _Inventory, report: ObjectReport) -> set[str]:
    """Check each version folder and its inventory; return every content path found on disk."""
    on_disk: set[str] = set()
    for v in root.versions:
        folder = obj / v
        if not folder.is_dir():
            report.error("E046", f"version {v} is in the inventory but its folder is missing")
            continue
        for entry in _entries(folder):
            if entry.name in ("inventory.json", f"inventory.json.{root.algorithm}"):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name == root.content_dir:
                    files = _walk(folder / entry.name, f"{v}/{entry.name}", report)
                    if not files:
                        report.warning("W003", f"version {v} SHOULD NOT have an empty content folder")
                    on_disk.update(files)
                else:
                    report.warning("W002", f"version {v} SHOULD NOT hold a folder other than {root.content_dir} (found {entry.name})")
            else:
                report.error("E015", f"version {v} holds an unexpected file {entry.name}")
        if not (folder / "inventory.json").is_file():
            report.warning("W010", f"version {v} SHOULD hold a copy of its inventory")
            continue
        vinv = _Inventory(report, v)
        if not vinv.load(folder):
            continue
        if v == root.versions[-1]:
            # the head's copy must be the very same bytes; E064 says all there is to say
            if (folder / "inventory.json").read_bytes() != (obj / "inventory.json").read_bytes():
                report.error("E064", f"the root inventory and {v}/inventory.json must be identical")
            continue
        for prior, state in vinv.states.items():
            if root.states.get(prior) != state:
                report.error("E066", f"version {prior} of {v}/inventory.json differs from the root inventory's")
        if vinv.inv.get("id") != root.inv.get("id"):
            report.error("E037", f"{v} inventory id does not match the root inventory id")
    return on_disk


def _walk(folder: Path, prefix: str, report: ObjectReport) -> set[str]:
    found: set[str] = set()
    for entry in _entries(folder):
        rel = f"{prefix}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            inner = _walk(folder / entry.name, rel, report)
            if not inner:
                report.error("E024", f"content folder {rel} is empty")
            found |= inner
        else:
            found.add(rel)
    return found


def _compare_files(obj: Path, root: _Inventory, on_disk: set[str], report: ObjectReport, fast: bool) -> None:
    listed = set(root.manifest_paths)
    for extra in sorted(on_disk - listed):
        report.error("E023", f"file {extra} is not in the root inventory manifest")
    for gone in sorted(listed - on_disk):
        report.error("E092", f"the manifest names {gone}, which is not in the object")
    report.files = len(on_disk & listed)
    if fast or root.algorithm not in DIGEST_LENGTHS:
        return
    for rel in sorted(on_disk & listed):
        try:
            found = hash_file(obj / rel, [root.algorithm])[root.algorithm]
        except OSError as exc:
            report.error("E092", f"{rel} cannot be read ({exc.strerror or exc})")
            continue
        if found != root.manifest_paths[rel]:
            report.error("E092", f"{rel}: {root.algorithm} digest does not match the manifest "
                                 f"(expected {root.manifest_paths[rel][:16]}..., found {found[:16]}...)")


def validate_root(path: str | os.PathLike[str]) -> ObjectReport:
    """The storage root's own structure (declaration, layout, nothing stray between objects)."""
    root = Path(os.path.abspath(path))
    report = ObjectReport(path=str(root), mode="root")
    decls = [n for n in os.listdir(root) if n.startswith("0=")]
    if decls != ["0=ocfl_1.1"]:
        report.error("E069", f"the storage root must hold exactly one declaration 0=ocfl_1.1 (found {', '.join(decls) or 'none'})")
    elif (root / "0=ocfl_1.1").read_bytes() != b"ocfl_1.1\n":
        report.error("E069", "0=ocfl_1.1 does not contain 'ocfl_1.1' and a newline")
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d != "extensions"]
            continue
        if any(n.startswith("0=ocfl_object_") for n in filenames):
            dirnames[:] = []
            continue
        rel = here.relative_to(root).as_posix()
        if filenames:
            report.error("E072", f"folder {rel} holds files but is not an OCFL object")
        elif not dirnames:
            report.error("E073", f"folder {rel} is empty")
    return report

"""``store update``: a new version from a new bag or collection (unchanged content stored once),
or with files removed. Every update names its reason and operator, and appends PREMIS events to
the new version's metadata.

A new version is built in staging: ``work/`` holds the version's tag files (small: bag
declaration, manifests, bag-info, sidecars) where they are edited; ``content/`` receives only
files whose sha512 the object does not hold yet. Unchanged audio is never copied; with
``--remove`` it is not even read.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from preserve.bag.paths import encode_manifest_path
from preserve.bag.reader import open_bag
from preserve.bag.validate import validate_bag
from preserve.errors import BagInvalid, ProblemsFound, SourceChanged, StorageError, UsageError
from preserve.fixity import copy_and_hash, hash_file
from preserve.ocfl.history import append_events, events_in, rewrite_tag_manifests, store_event
from preserve.ocfl.inventory import (
    DIGEST,
    Inventory,
    add_version,
    read_inventory,
    serialize,
    state_of,
    version_number,
    write_inventory,
)
from preserve.ocfl.layout import open_root
from preserve.ocfl.read import object_folder
from preserve.ocfl.txn import Txn, commit_version, writing
from preserve.sidecars import METS_FILE, PREMIS_FILE
from preserve.sidecars.check import (
    _bag_path as premis_bag_path,  # the one reader of a file object's bag path
)
from preserve.sidecars.mets import href
from preserve.sidecars.premis import Event
from preserve.xmlsafe import parse_untrusted_file


@dataclass
class UpdateResult:
    object_id: str
    version: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stored: int = 0  # files written to the new version's content
    stored_bytes: int = 0


@dataclass
class VersionBuild:
    """A version being built: its staged folder, its tag files being edited, its state."""

    txn: Txn
    inventory: Inventory
    name: str
    folder: Path
    work: Path
    data: dict[str, str]  # data/... -> sha512
    result: UpdateResult

    @property
    def content(self) -> Path:
        return self.folder / "content"


def start_version(txn: Txn, result_id: str) -> VersionBuild:
    obj = txn.object_path
    inventory = read_inventory(obj)
    name = f"v{version_number(inventory['head']) + 1}"
    staged = txn.staging("update")
    folder, work = staged / name, staged / "work"
    (folder / "content").mkdir(parents=True)
    work.mkdir()
    return VersionBuild(txn, inventory, name, folder, work, {}, UpdateResult(result_id, name))


def copy_tag_files(build: VersionBuild, state: dict[str, str]) -> None:
    """The head version's tag files into ``work`` (small files; the payload is not touched)."""
    obj = build.txn.object_path
    for rel, digest in state.items():
        if rel.startswith("data/"):
            continue
        paths = build.inventory["manifest"].get(digest) or []
        if paths:
            (build.work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(obj / paths[0], build.work / rel)


def finish_version(build: VersionBuild, message: str, user: str, address: str | None) -> None:
    """Store the work bag's tag files that are new, write the inventory, commit the version."""
    known = set(build.inventory["manifest"])
    state = dict(build.data)
    new_content: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(build.work):
        for fname in files:
            path = Path(dirpath) / fname
            rel = path.relative_to(build.work).as_posix()
            digest = hash_file(path, [DIGEST])[DIGEST]
            state[rel] = digest
            if digest in known or digest in new_content.values():
                continue
            target = build.content / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)  # work and content share staging's file system: no second write
            except OSError:
                shutil.copyfile(path, target)
            new_content[f"{build.name}/content/{rel}"] = digest
    for dirpath, _dirs, files in os.walk(build.content):
        for fname in files:
            rel = (Path(dirpath) / fname).relative_to(build.content).as_posix()
            if rel.startswith("data/"):
                new_content[f"{build.name}/content/{rel}"] = build.data[rel]
                build.result.stored_bytes += (Path(dirpath) / fname).stat().st_size
    build.result.stored = len(new_content)
    if not any(build.content.iterdir()):
        build.content.rmdir()  # an empty content folder is discouraged (W003)
    add_version(build.inventory, state, new_content, message=message, user=user, address=address)
    write_inventory(build.folder, serialize(build.inventory))
    commit_version(build.txn, build.folder, build.name)


def require_reason(reason: str | None, operator: str | None) -> tuple[str, str]:
    if not reason or not reason.strip():
        raise UsageError("every update needs --reason: say why this version is made")
    if not operator or not operator.strip():
        raise UsageError("every update needs --operator: say who makes this version")
    return reason.strip(), operator.strip()


def update(root_path: str | os.PathLike[str], object_id: str, *, source: str | os.PathLike[str] | None = None,
           remove: tuple[str, ...] = (), reason: str | None, operator: str | None, address: str | None = None,
           on_warning: Callable[[str], None] | None = None) -> UpdateResult:
    """Make the next version of ``object_id``: the bag or collection ``source`` (deduplicated),
    and/or the head version without the files ``remove`` names."""
    reason, operator = require_reason(reason, operator)
    if source is None and not remove:
        raise UsageError("nothing to update: give --from COLLECTION|BAG and/or --remove PATH")
    root = open_root(root_path)
    object_folder(root, object_id)
    with writing(root, object_id) as txn:
        build = start_version(txn, object_id)
        old = state_of(build.inventory)
        earlier = events_in_version(txn, build.inventory)
        if source is not None:
            _from_source(build, Path(source), old, operator, on_warning)
        else:
            build.data = {p: d for p, d in old.items() if p.startswith("data/")}
            copy_tag_files(build, old)
        for path in remove:
            _remove(build, path)
        new_data = build.data
        old_data = {p: d for p, d in old.items() if p.startswith("data/")}
        result = build.result
        result.added = sorted(set(new_data) - set(old_data))
        result.removed = sorted(set(old_data) - set(new_data))
        result.changed = sorted(p for p in set(new_data) & set(old_data) if new_data[p] != old_data[p])
        if not (result.added or result.removed or result.changed) and source is None:
            raise UsageError("nothing changed: the paths given are not in the object")
        events = _events(result, old_data, new_data, reason, operator)
        append_events(build.work, earlier, events)
        if any(build.work.glob("tagmanifest-*.txt")):
            rewrite_tag_manifests(build.work)
        finish_version(build, f"{reason} (update by {operator})", operator, address)
    return build.result


def events_in_version(txn: Txn, inventory: Inventory) -> list[etree._Element]:
    """The PREMIS events of the head version's metadata/premis.xml."""
    digest = state_of(inventory).get(PREMIS_FILE)
    paths = inventory["manifest"].get(digest or "") or []
    return events_in(txn.object_path / paths[0]) if paths else []


def _events(result: UpdateResult, old: dict[str, str], new: dict[str, str], reason: str, operator: str) -> list[Event]:
    why = f"reason: {reason}; operator: {operator}"
    events = []
    if result.added:
        events.append(store_event("ingestion", f"program=preserve store update; new files added to the object ({why})",
                                  [f"added {p} sha512 {new[p]}" for p in result.added]))
    if result.changed:
        events.append(store_event("replacement", f"program=preserve store update; files replaced ({why})",
                                  [f"{p}: sha512 {old[p]} replaced by {new[p]}" for p in result.changed]))
    if result.removed:
        events.append(store_event("deletion", f"program=preserve store update; files removed from the object ({why})",
                                  [f"removed {p} sha512 {old[p]}" for p in result.removed]))
    if not events:
        events.append(store_event("metadata modification", f"program=preserve store update; metadata changed ({why})",
                                  ["no payload file changed"]))
    return events


def _from_source(build: VersionBuild, source: Path, old: dict[str, str], operator: str,
                 on_warning: Callable[[str], None] | None) -> None:
    if not source.exists():
        raise UsageError(f"{source}: no such bag or collection")
    bag = source
    if not (source / "bagit.txt").is_file():
        # a collection: packaged (the check and its rights gate included) into staging first
        from preserve.package import package_collection

        bag = build.txn.staging("package") / "bag"
        package_collection(source, bag, operator=operator, on_warning=on_warning)
    report = validate_bag(bag, fast=True)
    if not report.ok:
        raise BagInvalid(path=str(bag), count=len(report.errors), report=report)
    opened = open_bag(bag)
    listed: dict[str, str] = {}
    if DIGEST in opened.payload_manifests:
        listed = {line.path: line.digest for line in opened.iter_manifest(DIGEST)}
    known = set(build.inventory["manifest"])
    for rel, _st in opened.iter_payload_files():
        digest = listed.get(rel)
        if digest is not None and digest in known:
            found = hash_file(bag / rel, [DIGEST])[DIGEST]  # read to verify; not stored again
        else:
            target = build.content / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            copied = copy_and_hash(bag / rel, target, [DIGEST])
            if copied.changed:
                raise SourceChanged(path=str(bag / rel), detail=copied.changed)
            found = copied.digests[DIGEST]
            if found in known:  # no sha512 manifest: known content found only now
                target.unlink()
        if digest is not None and found != digest:
            raise ProblemsFound(f"{bag / rel}: sha512 does not match the bag's manifest (expected {digest}, found "
                                f"{found}); the bag is not valid and no version was made")
        build.data[rel] = found
    for rel, _st in opened.iter_tag_files():
        (build.work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bag / rel, build.work / rel)
    _prune(build.content)


def _prune(folder: Path) -> None:
    for dirpath, _dirs, _files in os.walk(folder, topdown=False):
        if Path(dirpath) != folder:
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def _remove(build: VersionBuild, path: str) -> None:
    rel = path if path in build.data else f"data/{path}"
    if rel not in build.data:
        raise UsageError(f"{path}: not a payload file of {build.result.object_id} (see `preserve store log` and "
                         "`preserve store export`)")
    del build.data[rel]
    target = build.content / rel
    if target.exists():
        target.unlink()
    _drop_manifest_lines(build.work, rel)
    _fix_oxum(build)
    _drop_from_sidecars(build.work, rel)


def _drop_manifest_lines(work: Path, rel: str) -> None:
    encoded = encode_manifest_path(rel)
    for manifest in [*work.glob("manifest-*.txt"), work / "metadata" / "xxh3-128.txt"]:
        if not manifest.is_file():
            continue
        lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [ln for ln in lines if ln.rstrip("\r\n").split(None, 1)[-1].lstrip("*") not in (encoded, rel)]
        manifest.write_text("".join(kept), encoding="utf-8")


def _fix_oxum(build: VersionBuild) -> None:
    info = build.work / "bag-info.txt"
    if not info.is_file():
        return
    obj = build.txn.object_path
    total = 0
    for rel, digest in build.data.items():
        staged = build.content / rel
        paths = build.inventory["manifest"].get(digest) or []
        where = staged if staged.exists() else obj / paths[0]
        total += where.stat().st_size
    lines = info.read_text(encoding="utf-8").splitlines()
    out = [f"Payload-Oxum: {total}.{len(build.data)}" if ln.lower().startswith("payload-oxum:") else ln for ln in lines]
    out = [ln for ln in out if not ln.lower().startswith("bag-size:")]
    info.write_text("\n".join(out) + "\n", encoding="utf-8")


def _drop_from_sidecars(work: Path, rel: str) -> None:
    """Take the removed file out of METS (file, pointers, its amdSec) and PREMIS (its object)."""
    ns = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3"}
    mets_path, premis_path = work / METS_FILE, work / PREMIS_FILE
    if mets_path.is_file():
        root = parse_untrusted_file(str(mets_path))
        link = href(rel)
        for f in root.iterfind(".//mets:fileGrp/mets:file", ns):
            loc = f.find("mets:FLocat", ns)
            if loc is None or loc.get("{http://www.w3.org/1999/xlink}href") != link:
                continue
            fid, adm = f.get("ID"), (f.get("ADMID") or "").split()
            for ptr in root.iterfind(".//mets:fptr", ns):
                if ptr.get("FILEID") == fid:
                    ptr.getparent().remove(ptr)  # type: ignore[union-attr]
            for sec in list(root.iterfind("mets:amdSec", ns)):
                if sec.get("ID") in adm:
                    root.remove(sec)
            for el in root.iter():
                if el.get("ADMID"):
                    left = [t for t in (el.get("ADMID") or "").split() if t not in adm]
                    if left:
                        el.set("ADMID", " ".join(left))
                    else:
                        del el.attrib["ADMID"]
            f.getparent().remove(f)  # type: ignore[union-attr]
        _save(mets_path, root)
    if premis_path.is_file():
        root = parse_untrusted_file(str(premis_path))
        for obj in list(root.iterfind("premis:object", ns)):
            if premis_bag_path(obj) == rel:
                root.remove(obj)
        _save(premis_path, root)


def _save(path: Path, root: etree._Element) -> None:
    try:
        etree.ElementTree(root).write(str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    except OSError as exc:
        raise StorageError(path=str(path), reason=exc.strerror or str(exc)) from exc

"""``store ingest``: a valid bag becomes a new OCFL object, version v1, in one read of its files.

The bag's structure is validated first (completeness, Payload-Oxum, tag files: no hashing). Then
each file is copied into staging and hashed as it passes, with every algorithm the bag's manifests
use plus sha512: the bytes are read once, checked against the manifests (a mismatch refuses the
bag) and the sha512 becomes the OCFL content digest. With ``link`` the files are hard-linked
instead and read once to be checked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from preserve.bag.reader import open_bag
from preserve.bag.validate import ValidationReport, tag_manifest_entries, validate_bag
from preserve.errors import (
    BagInvalid,
    DestinationExists,
    ProblemsFound,
    SourceChanged,
    SourceNotFound,
    StorageError,
    UsageError,
)
from preserve.fixity import ALGORITHMS, Progress, copy_and_hash, default_workers, hash_file
from preserve.ocfl.inventory import DIGEST, add_version, new_inventory, serialize, write_inventory
from preserve.ocfl.layout import OBJECT_DECLARATION, StorageRoot, open_root
from preserve.ocfl.txn import Txn, commit_object, writing
from preserve.staging import journaled

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


@dataclass
class IngestResult:
    object_id: str
    object_path: Path
    version: str
    files: int = 0
    bytes: int = 0
    stored: int = 0  # files stored (identical files in the bag are stored once)
    linked: bool = False
    warnings: list[str] = field(default_factory=list)


def object_id_for(bag_path: Path, given: str | None = None) -> str:
    """The object id: ``given``; else the bag's External-Identifier when it is a URI, or a
    ``urn:uuid`` derived from it (the same External-Identifier always gives the same id); else a
    new random ``urn:uuid``."""
    if given:
        return given
    bag = open_bag(bag_path)
    ext = (bag.info_value("External-Identifier") or "").strip()
    if not ext:
        return f"urn:uuid:{uuid.uuid4()}"
    if _URI.match(ext):
        return ext
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'preserve:External-Identifier:' + ext)}"


def _expected(bag_path: Path) -> tuple[dict[str, dict[str, str]], ValidationReport]:
    """Every manifest's digests of every file, ``{bag-relative path: {algorithm: digest}}``, after a
    structural validation (raises :class:`BagInvalid` when the bag is not valid)."""
    report = validate_bag(bag_path, fast=True)
    if not report.ok:
        raise BagInvalid(path=str(bag_path), count=len(report.errors), report=report)
    bag = open_bag(bag_path)
    expected: dict[str, dict[str, str]] = {}
    for alg in bag.payload_manifests:
        for line in bag.iter_manifest(alg):
            expected.setdefault(line.path, {})[alg] = line.digest
    for rel, digests in tag_manifest_entries(bag, report).items():
        expected.setdefault(rel, {}).update(digests)
    return expected, report


def _files(bag_path: Path) -> Iterator[str]:
    bag = open_bag(bag_path)
    for rel, _st in bag.iter_tag_files():
        yield rel
    for rel, _st in bag.iter_payload_files():
        yield rel


def ingest(root_path: str | os.PathLike[str], source: str | os.PathLike[str], *, object_id: str | None = None,
           link: bool = False, user: str, address: str | None = None, message: str | None = None,
           progress: Progress | None = None, workers: int | None = None) -> IngestResult:
    """Ingest the bag folder or serialized bag ``source`` as a new object in the storage root."""
    root = open_root(root_path)
    src = Path(os.path.abspath(source))
    if not os.path.lexists(src):
        raise SourceNotFound(path=str(src))
    if src.is_file():
        if link:
            raise UsageError("--link needs a bag folder: a serialized bag is unpacked, never linked")
        return _ingest_archive(root, src, object_id=object_id, user=user, address=address, message=message,
                               progress=progress, workers=workers)
    return _ingest_folder(root, src, object_id=object_id, link=link, user=user, address=address,
                          message=message or f"ingest of bag {src.name}", progress=progress, workers=workers)


def _ingest_archive(root: StorageRoot, archive: Path, **kw: object) -> IngestResult:
    from preserve.serialize.unpacking import unpack

    (root.own / "staging").mkdir(parents=True, exist_ok=True)
    with journaled(root.own / "unpacking", wait=3600) as journal:
        folder = journal.new_folder(root.own / "staging", "unpack")
        unpack(archive, folder / "bag")
        message = kw.pop("message") or f"ingest of serialized bag {archive.name}"
        # the unpacked copy is on the storage root's file system and removed afterwards: link it
        return _ingest_folder(root, folder / "bag", link=True, message=message, **kw)  # type: ignore[arg-type]


def _ingest_folder(root: StorageRoot, bag_path: Path, *, object_id: str | None, link: bool, user: str,
                   address: str | None, message: str, progress: Progress | None, workers: int | None) -> IngestResult:
    expected, _report = _expected(bag_path)
    oid = object_id_for(bag_path, object_id)
    with writing(root, oid) as txn:
        if os.path.lexists(txn.object_path):
            raise DestinationExists(f"{txn.object_path}: object {oid} is already in the store; "
                                    "use `preserve store update` to add a version (nothing was written)")
        staged = txn.staging("ingest")
        result = IngestResult(oid, txn.object_path, "v1", linked=link)
        state = _stage_files(txn, bag_path, staged / "v1" / "content", expected, link, progress, workers, result)
        inventory = new_inventory(oid)
        new_content: dict[str, str] = {}
        seen: set[str] = set()
        for rel, digest in sorted(state.items()):
            if digest in seen:  # the same bytes twice in the bag: OCFL stores them once
                os.unlink(staged / "v1" / "content" / rel)
                continue
            seen.add(digest)
            new_content[f"v1/content/{rel}"] = digest
        _prune_empty(staged / "v1" / "content")
        result.stored = len(new_content)
        add_version(inventory, state, new_content, message=message, user=user, address=address)
        data = serialize(inventory)
        try:
            write_inventory(staged / "v1", data)
            write_inventory(staged, data)
            with open(staged / OBJECT_DECLARATION, "x", encoding="ascii") as f:
                f.write("ocfl_object_1.1\n")
        except OSError as exc:
            raise StorageError(path=str(staged), reason=exc.strerror or str(exc)) from exc
        commit_object(txn, staged)
    return result


def _prune_empty(folder: Path) -> None:
    """Remove folders left empty by de-duplication (OCFL content holds files only: E024)."""
    for dirpath, _dirnames, _filenames in os.walk(folder, topdown=False):
        if Path(dirpath) != folder:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # fails, as wanted, on a folder that still holds a file


def _stage_files(txn: Txn, bag_path: Path, content: Path, expected: dict[str, dict[str, str]], link: bool,
                 progress: Progress | None, workers: int | None, result: IngestResult) -> dict[str, str]:
    """Copy (or link) and hash every file of the bag into ``content``; ``{path: sha512}``."""
    files = list(_files(bag_path))
    folders = {os.path.dirname(rel) for rel in files}
    try:
        for folder in sorted(folders):
            (content / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path=str(content), reason=exc.strerror or str(exc)) from exc

    def one(rel: str) -> tuple[str, dict[str, str], int]:
        want = expected.get(rel, {})
        algs = tuple(sorted({DIGEST, *(a for a in want if a in ALGORITHMS)}))
        src, dst = bag_path / rel, content / rel
        if link:
            os.link(src, dst, follow_symlinks=False)
            digests = hash_file(dst, algs, progress=progress)
            size = os.lstat(dst).st_size
        else:
            copied = copy_and_hash(src, dst, algs, progress=progress)
            if copied.changed:
                raise SourceChanged(path=str(src), detail=copied.changed)
            digests, size = copied.digests, copied.size
        for alg, digest in want.items():
            if alg in digests and digests[alg] != digest:
                raise ProblemsFound(f"{src}: {alg} checksum does not match the bag's manifest "
                                    f"(expected {digest}, found {digests[alg]}); the bag is not valid and was "
                                    "not ingested (nothing was stored)")
        return rel, digests, size

    state: dict[str, str] = {}
    try:
        with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
            for rel, digests, size in pool.map(one, files):
                state[rel] = digests[DIGEST]
                result.files += 1
                result.bytes += size
    except OSError as exc:
        if link and exc.errno == errno.EXDEV:
            raise UsageError(f"{bag_path}: --link needs the bag on the storage root's file system; "
                             "ingest without --link to copy it") from None
        raise StorageError(path=str(exc.filename or content), reason=exc.strerror or str(exc)) from exc
    if link:
        result.warnings.append(f"{bag_path}: the files were hard-linked into the store, not copied: editing a file "
                               "of the source bag in place now changes the stored content too; leave the source "
                               "bag unchanged or remove it")
    return state


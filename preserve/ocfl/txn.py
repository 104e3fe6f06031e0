"""Writing an OCFL object safely: one writer per object, staging under ``extensions/``, and
recovery of what a killed run left.

Each object has a lock and journal (:func:`preserve.staging.journaled`) under the storage root's
``extensions/preserve-store/locks/``, named by the sha256 of the object id; staging folders are
made under ``extensions/preserve-store/staging/`` and listed in that journal first, so the next
run on the object removes what a killed run staged. Nothing is ever written in an object root
except by a rename of a complete, durable folder or file:

1. a new object is staged whole and renamed to its object root;
2. a new version folder ``vN`` is staged whole (its inventory and sidecar included) and renamed
   into the object root; only then is the root inventory replaced, then its sidecar.

A run killed between the steps of 2 leaves ``vN`` complete and the root inventory older (or the
root sidecar older than the root inventory). The next run on the object rolls the root inventory
forward from ``vN`` (:func:`roll_forward`): the version was complete, so it is kept. Earlier
versions are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from preserve.errors import DestinationExists, StorageError, StoreBusy
from preserve.fixity import fsync_path
from preserve.ocfl.inventory import SIDECAR, version_number
from preserve.ocfl.layout import StorageRoot
from preserve.staging import Journal, journaled


@dataclass
class Txn:
    """An open write on one object: its journal, and where to stage."""

    root: StorageRoot
    object_id: str
    journal: Journal

    @property
    def object_path(self) -> Path:
        return self.root.object_path(self.object_id)

    def staging(self, kind: str) -> Path:
        return self.journal.new_folder(self.root.own / "staging", kind)


def _key(object_id: str) -> str:
    return hashlib.sha256(object_id.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def writing(root: StorageRoot, object_id: str, *, wait: float = 0.0) -> Iterator[Txn]:
    """Hold the object's lock for one write; a second writer gets :class:`StoreBusy` (exit 10)."""
    try:
        (root.own / "locks").mkdir(parents=True, exist_ok=True)
        (root.own / "staging").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path=str(root.own), reason=exc.strerror or str(exc)) from exc
    with contextlib.ExitStack() as stack:
        try:
            journal = stack.enter_context(journaled(root.own / "locks" / _key(object_id), wait=wait))
        except DestinationExists:
            raise StoreBusy(path=str(root.path), object_id=object_id) from None
        txn = Txn(root, object_id, journal)
        if txn.object_path.is_dir():
            roll_forward(txn)
        yield txn


def fsync_tree(folder: Path) -> None:
    """Make every file and folder below ``folder`` durable before it is renamed into place."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_path(dirpath)


def _versions_on_disk(obj: Path) -> list[str]:
    return sorted((e.name for e in os.scandir(obj) if e.is_dir(follow_symlinks=False) and version_number(e.name)),
                  key=version_number)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def roll_forward(txn: Txn) -> bool:
    """Make the root inventory that of the newest complete version folder. True if it changed."""
    obj = txn.object_path
    versions = _versions_on_disk(obj)
    if not versions:
        return False
    newest = obj / versions[-1]
    if not (newest / "inventory.json").is_file() or not (newest / SIDECAR).is_file():
        return False
    if _same(newest / "inventory.json", obj / "inventory.json") and _same(newest / SIDECAR, obj / SIDECAR):
        return False
    publish_inventory(txn, newest)
    return True


def publish_inventory(txn: Txn, version_folder: Path) -> None:
    """Copy ``version_folder``'s inventory and sidecar over the root ones, each by an atomic rename."""
    obj = txn.object_path
    tmp = txn.staging("inventory")
    try:
        for name in ("inventory.json", SIDECAR):
            data = (version_folder / name).read_bytes()
            with open(tmp / name, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp / "inventory.json", obj / "inventory.json")
        os.replace(tmp / SIDECAR, obj / SIDECAR)
        fsync_path(obj)
    except OSError as exc:
        raise StorageError(path=str(obj), reason=f"{exc.strerror or exc} while writing the inventory") from exc


def commit_version(txn: Txn, staged_version: Path, name: str) -> None:
    """Rename the complete, staged version folder into the object and publish its inventory."""
    obj = txn.object_path
    fsync_tree(staged_version)
    try:
        os.rename(staged_version, obj / name)
        fsync_path(obj)
    except OSError as exc:
        raise StorageError(path=str(obj / name), reason=exc.strerror or str(exc)) from exc
    publish_inventory(txn, obj / name)


def commit_object(txn: Txn, staged_object: Path) -> None:
    """Rename a complete, staged object folder to its object root (which must not exist)."""
    dest = txn.object_path
    fsync_tree(staged_object)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(dest):
            raise DestinationExists(f"{dest}: object {txn.object_id} already exists; use `preserve store update`")
        os.rename(staged_object, dest)
        fsync_path(dest.parent)
    except OSError as exc:
        raise StorageError(path=str(dest), reason=exc.strerror or str(exc)) from exc

"""Restoring a store object from a replica: into a new folder, or into a storage root.

Every file under the replica's object folder is downloaded into staging; each content file is
hashed (sha512) as it arrives and compared with the replica's inventory, whose own digest is
checked against its sidecar first. The staged object is then validated as OCFL (structure,
inventories, every file the manifest names present, nothing else in a content folder; its
digests were checked on the way) and only then renamed into place:

* DEST a new folder: the object's root becomes DEST (staging and lock beside it, as a bag's
  restore has them);
* DEST a storage root: the object goes where the root's layout puts its id, under the object's
  write lock, staged under the root's ``extensions/preserve-store/`` (a store that already holds
  the object refuses, exit 4: nothing of an object is ever overwritten).

Nothing is left at the destination otherwise; a killed restore's staging is removed by the next
restore to the same place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from preserve.bag.paths import unsafe_reason
from preserve.errors import (
    BadArchive,
    DestinationExists,
    Interrupted,
    ObjectArchived,
    ProblemsFound,
    StorageError,
)
from preserve.fixity import fsync_path, ordered_map
from preserve.ocfl.layout import ROOT_DECLARATION, open_root
from preserve.ocfl.replica import read_inventory
from preserve.ocfl.txn import fsync_tree, writing
from preserve.ocfl.validate import ObjectReport, validate_object
from preserve.safefs import LinkRefused, open_beneath, refusal
from preserve.staging import journaled
from preserve.stores.base import Store


@dataclass
class ObjectRestore:
    """Where the object came from, where it now is, and its OCFL validation report."""

    source: str
    dest: Path
    object_id: str
    head: str
    files: int
    bytes: int
    into_root: bool
    report: ObjectReport
    cleaned: list[Path] = field(default_factory=list)


def restore_object(store: Store, prefix: str, dest: str | os.PathLike[str], *, workers: int = 4,
                   progress: Callable[[int], None] | None = None,
                   on_total: Callable[[int], None] | None = None) -> ObjectRestore:
    """Restore the object replicated at ``prefix`` of ``store`` (the replica's storage root) to
    ``dest``, a new folder or a storage root (see the module docstring).

    Raises :class:`ProblemsFound` (the replica's copy is damaged or incomplete; nothing is left),
    :class:`DestinationExists`, :class:`StoreBusy`, :class:`ObjectArchived`, :class:`StorageError`,
    :class:`RemoteError`."""
    source = f"{store.url.rstrip('/')}/{prefix}"
    remote = read_inventory(store, prefix)
    if remote is None:
        raise ProblemsFound(f"{source}: no inventory.json there, so it is not a replicated object; nothing was restored")
    if remote.problem is not None:
        raise ProblemsFound(f"{source}: the replica's {remote.problem}; restore from another replica (nothing was "
                            "restored)")
    inventory = remote.inventory
    object_id, head = str(inventory.get("id", "")), str(inventory.get("head", ""))
    manifest = {p: str(d).lower() for d, ps in (inventory.get("manifest") or {}).items()
                for p in (ps if isinstance(ps, list) else []) if isinstance(p, str)}
    target = Path(os.path.abspath(dest))
    into_root = (target / ROOT_DECLARATION).is_file()
    with contextlib.ExitStack() as stack:
        if into_root:
            root = open_root(target)
            final = root.object_path(object_id)
            txn = stack.enter_context(writing(root, object_id))
            if os.path.lexists(final):
                raise DestinationExists(f"{final}: the store at {root.path} already holds object {object_id}; "
                                        "nothing was restored (restore into a new folder to compare the two)")
            staging = txn.staging("restore")
            journal = txn.journal
        else:
            if os.path.lexists(target):
                raise DestinationExists(path=str(target))
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(path=str(target.parent), reason=exc.strerror or str(exc)) from exc
            final = target
            busy = f"{target}: another preserve run is restoring or writing there now; let it finish or choose another DEST"
            journal = stack.enter_context(journaled(target, busy=busy))
            if os.path.lexists(target):
                raise DestinationExists(path=str(target))
            staging = journal.new_folder(target.parent, "staging")
        try:
            files, size = _download(store, prefix, staging, manifest, source, workers, progress, on_total)
            report = validate_object(staging, fast=True)
            if not report.ok:
                first = "; ".join(str(f) for f in report.errors[:3])
                raise ProblemsFound(f"{source}: the restored copy is not a valid OCFL object ({len(report.errors)} "
                                    f"problem(s): {first}); nothing was restored to {final}")
            fsync_tree(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(final):
                raise DestinationExists(path=str(final))
            os.rename(staging, final)
            fsync_path(final.parent)
        except KeyboardInterrupt:
            raise Interrupted(path=str(final)) from None
        except LinkRefused as exc:
            raise refusal(exc) from None
        except OSError as exc:
            raise StorageError(path=str(final.parent), reason=f"{exc.strerror or exc}; nothing was restored to "
                                                              f"{final}") from exc
        cleaned = list(journal.removed)
    report.path = str(final)
    return ObjectRestore(source=source, dest=final, object_id=object_id, head=head, files=files, bytes=size,
                         into_root=into_root, report=report, cleaned=cleaned)


def _download(store: Store, prefix: str, staging: Path, manifest: dict[str, str], source: str, workers: int,
              progress: Callable[[int], None] | None, on_total: Callable[[int], None] | None) -> tuple[int, int]:
    """Every object below ``prefix`` into ``staging``; content files checked against the manifest."""
    objects = list(store.list(f"{prefix}/"))
    for o in objects:
        rel = o.key[len(prefix) + 1:]
        reason = unsafe_reason(rel) or o.damage
        if reason:
            raise BadArchive(path=source, reason=f"object {rel!r}: {reason}; nothing was restored")
    there = {o.key[len(prefix) + 1:] for o in objects}
    missing = sorted(set(manifest) - there)
    if missing:
        raise ProblemsFound(f"{source}: {len(missing)} content file(s) the inventory names are not in the replica "
                            f"(e.g. {missing[0]}); nothing was restored: restore from another replica")
    if on_total is not None:
        on_total(sum(o.size for o in objects))
    archived: list[str] = []
    altered: list[str] = []

    def fetch(rel: str) -> int:
        digest = hashlib.sha512()
        written = 0
        try:
            with store.get(f"{prefix}/{rel}") as chunks:
                fd = open_beneath(staging, rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, create_dirs=True)
                with open(fd, "wb") as out:
                    for chunk in _counting(chunks, progress):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
        except ObjectArchived:
            archived.append(rel)
            return 0
        want = manifest.get(rel)
        if want is not None and digest.hexdigest() != want:
            altered.append(f"{rel} (sha512 {digest.hexdigest()}, the inventory says {want})")
        return written

    total = sum(ordered_map(fetch, sorted(there), workers=workers))
    if archived:
        raise ObjectArchived(f"{source}: {len(archived)} file(s) (e.g. {archived[0]}) are in an archive storage "
                             "class and must be restored first: run preserve audit --tier remote-full "
                             "--request-restore, wait for the restore, then restore again")
    if altered:
        raise ProblemsFound(f"{source}: {len(altered)} content file(s) in the replica do not match the inventory "
                            f"({'; '.join(sorted(altered)[:3])}); nothing was restored: restore from another replica")
    return len(there), total


def _counting(chunks: Iterator[bytes], progress: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk

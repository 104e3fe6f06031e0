"""Restoring a bag from a replica: download into staging, validate fully, then rename.

DEST appears whole and valid or not at all. The restore holds DEST's lock
(:func:`preserve.staging.journaled`, ``.<name>.preserve-lock`` beside DEST) and writes every
object into hidden staging beside DEST (``.<name>.preserve-staging-<token>``), listed in the
lock's journal before it is created. Every file and folder in staging is created without
following links (:mod:`preserve.safefs`). The folders ``metadata/empty-directories.txt`` lists
are created again (replicas hold files only), the staged bag is validated in full (every
manifest and tag manifest), made durable, and only then renamed to DEST, which becomes the bag's
root. A failed restore removes its staging; a killed one leaves it, and the next restore to the
same DEST removes it (and reports it). A full disk is a :class:`~preserve.errors.StorageError`
(exit 5) naming the folder, with nothing left at DEST.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.bag.paths import unsafe_reason
from preserve.bag.reader import empty_directories
from preserve.bag.validate import ValidationReport, validate_bag
from preserve.errors import (
    BadArchive,
    BagInvalid,
    DestinationExists,
    Interrupted,
    ObjectArchived,
    StorageError,
)
from preserve.fixity import fsync_path, hash_file, ordered_map, syncfs
from preserve.replication.layout import object_key, read_record, replica_location, tar_key
from preserve.replication.tarstream import extract_tar
from preserve.safefs import LinkRefused, makedirs_beneath, open_beneath, refusal
from preserve.staging import journaled
from preserve.stores.base import Store

_CHUNK = 1024 * 1024
#: ``on_phase(name, total_bytes, counted)``: a phase of the restore starts (or learns its total).
PhaseCallback = Callable[[str, int, bool], None]
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class RestoreResult:
    """Where the bag came from, where it now is, and its (valid) validation report."""

    source: str
    dest: Path
    files: int
    bytes: int
    report: ValidationReport
    #: empty folders created again from metadata/empty-directories.txt
    directories: list[str] = field(default_factory=list)
    #: what a killed earlier restore to DEST had left (its journal listed it), removed first
    cleaned: list[Path] = field(default_factory=list)


def restore_bag(store: Store, name: str, dest: str | os.PathLike[str], *, workers: int = 4,
                progress: Callable[[int], None] | None = None, wait: float = 0.0,
                on_phase: PhaseCallback | None = None) -> RestoreResult:
    """Restore the copy of bag ``name`` in ``store`` to a new directory ``dest``.

    ``progress`` is told of the bytes downloaded, then of the bytes the validation reads;
    ``on_phase(name, total_bytes, counted)`` as each starts ("download", then "validate", not
    counted until the validation has listed the payload, then counted with its total).

    Raises :class:`DestinationExists` (DEST exists, or another run holds its lock longer than
    ``wait`` seconds), :class:`BagInvalid` (the copy does not validate; nothing is left at DEST),
    :class:`ObjectArchived` (objects need a restore request first), :class:`StorageError` (the
    local disk is full or failed), :class:`RemoteError`, :class:`UnsafePath` (a link appeared in
    staging).
    """
    target = Path(os.path.abspath(dest))
    if os.path.lexists(target):
        raise DestinationExists(path=str(target))
    record = read_record(store, name)
    layout = record.layout if record else ("tar" if store.head(tar_key(name)) is not None else "files")
    source = replica_location(store, name, layout)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _storage(exc, target.parent, target) from exc
    busy = f"{target}: another preserve run is restoring or writing there now; let it finish or choose another DEST"
    with journaled(target, busy=busy, wait=wait) as journal:
        if os.path.lexists(target):
            raise DestinationExists(path=str(target))
        staging = journal.new_folder(target.parent, "staging")
        try:
            if layout == "tar":
                if on_phase is not None:
                    info = store.head(tar_key(name))
                    on_phase("download", info.size if info is not None else 0, True)
                with store.get(tar_key(name)) as chunks:
                    files = extract_tar(_counting(chunks, progress), name, staging, source)
            else:
                files = _download_files(store, name, staging, source, workers, progress, on_phase)
            if not (staging / "bagit.txt").is_file():
                raise BagInvalid(f"{source}: no bagit.txt in the replica; nothing was restored to {target}")
            directories = _recreate_empty_directories(staging)
            if on_phase is not None:
                on_phase("validate", 0, False)  # counted once the payload is listed
            report = validate_bag(staging, workers=workers,
                                  progress=None if progress is None else lambda nbytes, _files: progress(nbytes),
                                  on_total=None if on_phase is None else lambda total, _files: on_phase("validate", total, True))
            if not report.ok:
                first = "; ".join(str(f) for f in report.errors[:3])
                raise BagInvalid(f"{source}: the restored copy is not valid ({len(report.errors)} problem(s): {first}); "
                                 f"nothing was restored to {target}", report=report)
            lost = _lost_tag_files(staging, record.tag_files if record else None)
            if lost:
                raise BagInvalid(f"{source}: the replica record lists {len(lost)} tag file(s) the replica no longer holds "
                                 f"intact ({'; '.join(lost[:3])}); nothing was restored to {target}: repair the replica "
                                 "from another copy", report=report)
            if not syncfs(staging):
                for dirpath, _dirs, names in os.walk(staging):
                    for n in names:
                        fsync_path(os.path.join(dirpath, n))
            if os.path.lexists(target):
                raise DestinationExists(path=str(target))
            os.rename(staging, target)
            fsync_path(target.parent)
        except KeyboardInterrupt:
            raise Interrupted(path=str(target)) from None
        except LinkRefused as exc:
            raise refusal(exc) from None
        except OSError as exc:
            raise _storage(exc, target.parent, target) from exc
        # leaving the journal removes the staging of a failed run (a finished one was renamed)
    report.path = str(target)
    return RestoreResult(source=source, dest=target, files=files, bytes=report.bytes, report=report,
                         directories=directories, cleaned=list(journal.removed))


def _lost_tag_files(staging: Path, recorded: dict[str, dict[str, Any]] | None) -> list[str]:
    """Tag files the replica record lists that did not arrive whole: a replica that lost both tag
    manifests and metadata/ still validates as BagIt, so the record is what shows the loss."""
    lost: list[str] = []
    for rel, entry in sorted((recorded or {}).items()):
        try:
            found = hash_file(rel, ("sha256",), root=staging)["sha256"]
        except FileNotFoundError:
            lost.append(f"{rel}: missing")
            continue
        if isinstance(entry.get("sha256"), str) and found != entry["sha256"]:
            lost.append(f"{rel}: sha256 {found}, the record says {entry['sha256']}")
    return lost


def _storage(exc: OSError, folder: Path, target: Path) -> StorageError:
    if exc.errno in _NO_SPACE:
        why = f"no space left on the file system for the restored copy; free space and restore again (nothing was restored to {target})"
    else:
        why = f"{exc.strerror or exc} ({exc.filename or folder}); nothing was restored to {target}"
    return StorageError(path=str(folder), reason=why)


def _recreate_empty_directories(staging: Path) -> list[str]:
    """Create the folders metadata/empty-directories.txt lists (replicas hold files only), below
    the staging root without following links."""
    listed = empty_directories(staging)
    for rel in listed:
        makedirs_beneath(staging, rel)
    return listed


def _counting(chunks: Iterator[bytes], progress: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def _write_new(staging: Path, rel: str, chunks: Iterator[bytes], progress: Callable[[int], None] | None = None) -> None:
    """Create ``staging/rel`` (never an existing file, no link followed on the way) from ``chunks``."""
    fd = open_beneath(staging, rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, create_dirs=True)
    with open(fd, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            if progress is not None:
                progress(len(chunk))


def _download_files(store: Store, name: str, staging: Path, source: str, workers: int,
                    progress: Callable[[int], None] | None, on_phase: PhaseCallback | None = None) -> int:
    objects = list(store.list(f"{name}/"))
    keys = [o.key for o in objects]
    if on_phase is not None:
        on_phase("download", sum(o.size for o in objects), True)
    for key in keys:
        rel = key[len(name) + 1:]
        reason = unsafe_reason(rel)
        if reason:
            raise BadArchive(path=source, reason=f"object {key!r}: {reason}; nothing was restored")
    archived: list[str] = []

    def fetch(key: str) -> None:
        rel = key[len(name) + 1:]
        try:
            with store.get(object_key(name, rel)) as chunks:
                _write_new(staging, rel, chunks, progress)
        except ObjectArchived:
            archived.append(rel)

    for _ in ordered_map(fetch, keys, workers=workers):
        pass
    if archived:
        raise ObjectArchived(f"{source}: {len(archived)} object(s) (e.g. {archived[0]}) are in an archive storage "
                             "class and must be restored first: run preserve audit --tier remote-full "
                             "--request-restore, wait for the restore, then restore again")
    return len(keys)

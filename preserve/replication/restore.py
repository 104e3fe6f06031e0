"""Restoring a bag from a replica: download into staging, validate fully, then rename.

DEST appears whole and valid or not at all: every object is written into hidden staging beside
DEST (``.<name>.preserve-staging-<token>``), the staged bag is validated in full (every manifest
and tag manifest), made durable, and only then renamed to DEST, which becomes the bag's root.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from preserve.bag.paths import unsafe_reason
from preserve.bag.validate import ValidationReport, validate_bag
from preserve.errors import (
    BadArchive,
    BagInvalid,
    DestinationExists,
    Interrupted,
    ObjectArchived,
    StorageError,
)
from preserve.fixity import fsync_path, ordered_map, syncfs
from preserve.replication.layout import object_key, read_record, replica_location, tar_key
from preserve.replication.tarstream import extract_tar
from preserve.stores.base import Store


@dataclass
class RestoreResult:
    """Where the bag came from, where it now is, and its (valid) validation report."""

    source: str
    dest: Path
    files: int
    bytes: int
    report: ValidationReport


def restore_bag(store: Store, name: str, dest: str | os.PathLike[str], *, workers: int = 4,
                progress: Callable[[int], None] | None = None) -> RestoreResult:
    """Restore the copy of bag ``name`` in ``store`` to a new directory ``dest``.

    Raises :class:`DestinationExists`, :class:`BagInvalid` (the copy does not validate; nothing
    is left at DEST), :class:`ObjectArchived` (objects need a restore request first),
    :class:`RemoteError` / :class:`StorageError`.
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
        raise StorageError(path=str(target.parent), reason=exc.strerror or str(exc)) from exc
    staging = target.parent / f".{target.name}.preserve-staging-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        if layout == "tar":
            with store.get(tar_key(name)) as chunks:
                files = extract_tar(_counting(chunks, progress), name, staging, source)
        else:
            files = _download_files(store, name, staging, source, workers, progress)
        if not (staging / "bagit.txt").is_file():
            raise BagInvalid(f"{source}: no bagit.txt in the replica; nothing was restored to {target}")
        report = validate_bag(staging, workers=workers)
        if not report.ok:
            first = "; ".join(str(f) for f in report.errors[:3])
            raise BagInvalid(f"{source}: the restored copy is not valid ({len(report.errors)} problem(s): {first}); "
                             f"nothing was restored to {target}", report=report)
        if not syncfs(staging):
            for dirpath, _dirs, names in os.walk(staging):
                for n in names:
                    fsync_path(os.path.join(dirpath, n))
        if os.path.lexists(target):
            raise DestinationExists(path=str(target))
        os.rename(staging, target)
        fsync_path(target.parent)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise Interrupted(path=str(target)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.path = str(target)
    return RestoreResult(source=source, dest=target, files=files, bytes=report.bytes, report=report)


def _counting(chunks: Iterator[bytes], progress: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def _download_files(store: Store, name: str, staging: Path, source: str, workers: int,
                    progress: Callable[[int], None] | None) -> int:
    keys = [o.key for o in store.list(f"{name}/")]
    for key in keys:
        rel = key[len(name) + 1:]
        reason = unsafe_reason(rel)
        if reason:
            raise BadArchive(path=source, reason=f"object {key!r}: {reason}; nothing was restored")
    archived: list[str] = []

    def fetch(key: str) -> None:
        rel = key[len(name) + 1:]
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with store.get(object_key(name, rel)) as chunks, open(path, "xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except ObjectArchived:
            archived.append(rel)

    for _ in ordered_map(fetch, keys, workers=workers):
        pass
    if archived:
        raise ObjectArchived(f"{source}: {len(archived)} object(s) (e.g. {archived[0]}) are in an archive storage "
                             "class and must be restored first: run preserve audit --tier remote-full "
                             "--request-restore, wait for the restore, then restore again")
    return len(keys)

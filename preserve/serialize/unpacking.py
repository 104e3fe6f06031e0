"""Unpacking a serialized bag safely: check every member, extract into staging, validate, rename."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from preserve.bag.validate import ValidationReport, validate_bag
from preserve.errors import (
    BadArchive,
    BadTagFile,
    BagInvalid,
    DestinationExists,
    Interrupted,
    StorageError,
)
from preserve.fixity import Progress, fsync_path, syncfs
from preserve.serialize.archive import iter_members
from preserve.staging import journaled, lock_path_for


def unpack(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], *, progress: Progress | None = None,
    workers: int | None = None, on_removed: Callable[[Path], None] | None = None,
) -> ValidationReport:
    """Extract a serialized bag into ``dest`` (which becomes the bag folder), then validate it.

    Members are checked before anything is written (see :func:`iter_members`); the first unsafe
    member stops the run with :class:`~preserve.errors.BadArchive`. Extraction goes to hidden
    staging beside ``dest``; the staged bag is made durable and validated from disk (its sidecars
    too, when it has metadata/mets.xml), and renamed to ``dest`` only when valid. Otherwise staging is removed and :class:`BagInvalid` (carrying
    the report) is raised, and the parent folders this call made for ``dest`` are removed again.
    Nothing is ever written outside the staging folder.

    The run holds the lock and journal of ``dest`` (:func:`preserve.staging.journaled`), where
    its staging is listed before it is created: a killed run's staging is removed by the next
    run on ``dest``, each path passed to ``on_removed``.
    """
    src = Path(archive)
    if not src.is_file():
        raise BadArchive(path=str(src), reason="no such file")
    dest = Path(os.path.abspath(dest))
    if os.path.lexists(dest) and not os.path.lexists(lock_path_for(dest)):
        raise DestinationExists(path=str(dest))  # and no journal beside it lists anything to remove
    made = _missing_parents(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path=str(dest.parent), reason=exc.strerror or str(exc)) from exc
    try:
        with journaled(dest, busy=f"{dest}: another preserve run is writing this destination now") as journal:
            # a killed run's staging is removed before DEST is looked at, even when DEST exists
            if on_removed is not None:
                for path in journal.removed:
                    on_removed(path)
            if os.path.lexists(dest):
                raise DestinationExists(path=str(dest))
            staging = journal.record(dest.parent / f".{dest.name}.preserve-unpack-{secrets.token_hex(4)}")
            return _unpack(src, dest, staging, progress, workers)
    except BaseException:
        for folder in made:  # deepest first; a folder something else has since used stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _missing_parents(dest: Path) -> list[Path]:
    """The folders above ``dest`` that do not exist yet, deepest first (removed again on refusal)."""
    out = []
    parent = dest.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        out.append(parent)
        parent = parent.parent
    return out


def _unpack(src: Path, dest: Path, staging: Path, progress: Progress | None, workers: int | None) -> ValidationReport:
    try:
        staging.mkdir()
        root = os.path.realpath(staging)
        for m in iter_members(src):
            if m.problem is not None:
                raise BadArchive(path=str(src), reason=f"member {m.name!r} {m.problem}; nothing was extracted")
            if not m.rel:
                continue
            target = staging / m.rel
            if not os.path.realpath(target.parent).startswith(root + os.sep) and os.path.realpath(target.parent) != root:
                raise BadArchive(path=str(src), reason=f"member {m.name!r} would be written outside {dest}")
            try:
                if m.kind == "dir":
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise BadArchive(path=str(src), reason=f"member {m.name!r} clashes with another member (a file and a folder of one name); nothing was extracted") from exc
            with os.fdopen(fd, "wb") as out:
                for chunk in m.chunks():
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk), 0)
            os.utime(target, (m.mtime, m.mtime))
            if progress is not None:
                progress(0, 1)
        if not syncfs(staging):
            for dirpath, _dirs, filenames in os.walk(staging):
                for n in filenames:
                    fsync_path(os.path.join(dirpath, n))
        try:
            report = validate_bag(staging, workers=workers)
        except BadTagFile as exc:
            raise BadArchive(path=str(src), reason=f"does not hold a bag ({exc.fields.get('reason', exc)})") from exc
        if (staging / "metadata" / "mets.xml").is_file():
            # PREMIS/METS sidecars: checked as `preserve validate` checks them in a folder
            from preserve.sidecars.check import check_sidecars

            report.findings.extend(check_sidecars(staging))
        report.path = str(dest)
        if not report.ok:
            raise BagInvalid(path=str(src), count=len(report.errors), report=report)
        if os.path.lexists(dest):
            raise DestinationExists(path=str(dest))
        os.rename(staging, dest)
        fsync_path(dest.parent)
        return report
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise Interrupted(path=str(dest)) from None
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(path=str(dest), reason=f"{exc.strerror or exc} while unpacking") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

"""Unpacking a serialized bag safely: check every member, extract into staging, validate, rename."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path

from preserve.bag.index import PathIndex
from preserve.bag.paths import decode_manifest_path
from preserve.bag.reader import open_bag
from preserve.bag.validate import ValidationReport, validate_bag
from preserve.errors import (
    BadArchive,
    BadTagFile,
    BagInvalid,
    DestinationExists,
    Interrupted,
    StorageError,
    plain_reason,
)
from preserve.fixity import Progress, fsync_path, syncfs
from preserve.serialize.archive import SPOOLED, Member, archive_format, content_size, iter_members
from preserve.staging import journaled, lock_path_for


def unpack(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], *, progress: Progress | None = None,
    workers: int | None = None, on_removed: Callable[[Path], None] | None = None,
    on_phase: Callable[[str, int, bool], None] | None = None,
) -> ValidationReport:
    """Extract a serialized bag into ``dest`` (which becomes the bag folder), then validate it.

    Members are checked before anything is written (see :func:`iter_members`), and each is
    admitted against the bag's own tag files before a byte of it is written: a payload file no
    manifest lists, or one that would take the payload past Payload-Oxum, is refused, and no
    member is written past the size its header declares (zip bombs). The first unsafe member
    stops the run with :class:`~preserve.errors.BadArchive`. Extraction goes to hidden
    staging beside ``dest``; the staged bag is made durable and validated from disk (its sidecars
    too, when it has metadata/mets.xml), and renamed to ``dest`` only when valid. Otherwise staging is removed and :class:`BagInvalid` (carrying
    the report) is raised, and the parent folders this call made for ``dest`` are removed again.
    Nothing is ever written outside the staging folder.

    The run holds the lock and journal of ``dest`` (:func:`preserve.staging.journaled`), where
    its staging is listed before it is created: a killed run's staging is removed by the next
    run on ``dest``, each path passed to ``on_removed``.

    ``progress`` is told of the bytes extracted, then of the bytes the validation reads;
    ``on_phase(name, total_bytes, counted)`` as each starts ("extract", then "validate", not
    counted until the validation has listed the payload, then counted with its total).
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
            return _unpack(src, dest, staging, progress, workers, on_phase)
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


def _unpack(src: Path, dest: Path, staging: Path, progress: Progress | None, workers: int | None,
            on_phase: Callable[[str, int, bool], None] | None = None) -> ValidationReport:
    try:
        staging.mkdir()
        if on_phase is not None:
            on_phase("extract", content_size(src), True)
        _extract(src, dest, staging, progress)
        if not syncfs(staging):
            for dirpath, _dirs, filenames in os.walk(staging):
                for n in filenames:
                    fsync_path(os.path.join(dirpath, n))
        if on_phase is not None:
            on_phase("validate", 0, False)  # counted once the payload is listed
        try:
            report = validate_bag(staging, workers=workers, progress=progress,
                                  on_total=None if on_phase is None else lambda total, _files: on_phase("validate", total, True))
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


#: The largest top-level tag file (bagit.txt, bag-info.txt, a manifest) unpack writes: a manifest
#: of ten million files is well below it.
TAG_FILE_LIMIT = 4 << 30
#: What tag files no tag manifest lists (in a tag folder such as metadata/) may hold together.
UNLISTED_TAG_LIMIT = 256 << 20


def _top_tag(m: Member) -> bool:
    return m.kind == "file" and "/" not in m.rel and SPOOLED.match(m.rel) is not None


class _Allowance:
    """What the bag's own tag files allow unpack to write, checked before each member is written.

    A payload member must be listed in a payload manifest (by its name, or the name's Unicode
    normalization or '%' decoding, which validation resolves), the payload may not grow past
    the octets Payload-Oxum declares, a tag file in a tag folder no tag manifest
    lists shares :data:`UNLISTED_TAG_LIMIT` with the others. Listed names are kept in a
    disk-backed index, so memory stays flat for huge bags.
    """

    def __init__(self, src: Path, staging: Path, index: PathIndex) -> None:
        self.src, self.staging, self.index = src, staging, index
        index.db.execute("CREATE TABLE allowed (path TEXT NOT NULL, tag INTEGER NOT NULL, PRIMARY KEY (path, tag)) WITHOUT ROWID")
        self.loaded: set[str] = set()
        self.payload_manifests = 0
        self.oxum: tuple[int, int] | None = None
        self.payload = 0  # octets admitted
        self.unlisted_tags = 0

    def refuse(self, m: Member, why: str) -> BadArchive:
        return BadArchive(path=str(self.src), reason=f"member {m.name!r} {why}; nothing was extracted")

    def load(self) -> bool:
        """Read the top-level tag files written so far; True when a payload manifest is among them."""
        if not (self.staging / "bagit.txt").is_file():
            return False
        try:
            bag = open_bag(self.staging)
            oxum = bag.info_value("Payload-Oxum")
            if oxum is not None:
                with contextlib.suppress(ValueError):
                    octets, count = oxum.strip().split(".")
                    self.oxum = (int(octets), int(count))
            for tag, manifests in ((0, bag.payload_manifests), (1, bag.tag_manifests)):
                for alg, path in manifests.items():
                    if path.name in self.loaded:
                        continue
                    self.loaded.add(path.name)
                    self.payload_manifests += tag == 0
                    self.index.db.executemany("INSERT OR IGNORE INTO allowed VALUES (?,?)", (
                        (name, tag) for line in bag.iter_manifest(alg, tag=bool(tag)) if line.error is None
                        for name in _forms(line.path, line.raw)))
        except (BadTagFile, UnicodeDecodeError, OSError) as exc:
            raise BadArchive(path=str(self.src), reason=f"its tag files cannot be read ({plain_reason(exc)}); nothing was extracted") from exc
        return self.payload_manifests > 0

    def listed(self, rel: str, tag: int) -> bool:
        return self.index.db.execute("SELECT 1 FROM allowed WHERE path = ? AND tag = ?",
                                     (unicodedata.normalize("NFC", rel), tag)).fetchone() is not None

    def admit(self, m: Member) -> None:
        """Refuse ``m`` unless the bag's tag files allow writing it (its size is its header's)."""
        if m.rel.startswith("data/"):
            if not self.listed(m.rel, 0):
                raise self.refuse(m, "is not listed in the bag's payload manifests (an unlisted payload file makes the "
                                  "bag invalid, and is not written)")
            # octets only: a file too many is listed, so no larger than the manifests allow, and
            # validation reports the count
            self.payload += m.size
            if self.oxum is not None and self.payload > self.oxum[0]:
                raise self.refuse(m, f"would bring the payload to {self.payload} bytes, past the {self.oxum[0]} "
                                  "Payload-Oxum declares")
        elif not self.listed(m.rel, 1):
            self.unlisted_tags += m.size
            if self.unlisted_tags > UNLISTED_TAG_LIMIT:
                raise self.refuse(m, f"would bring the tag files no tag manifest lists past {UNLISTED_TAG_LIMIT} bytes")


def _forms(path: str, raw: str) -> set[str]:
    """The names a manifest line may stand for in the archive (what validation's fallbacks accept)."""
    return {unicodedata.normalize("NFC", n) for n in (path, raw, decode_manifest_path(raw))}


def _extract(src: Path, dest: Path, staging: Path, progress: Progress | None) -> None:
    """Write every member into ``staging``, each checked against the bag's tag files first.

    The top-level tag files are written first; every other member is admitted by
    :class:`_Allowance` before a byte of it is written, and never written past its declared
    size. A tar that brings its manifests first (as preserve writes it) is extracted in one pass,
    refusing an unlisted member as it arrives; a zip (whose tag files can be read before the rest)
    or a tar whose manifests come after payload takes a second pass.
    """
    fmt = archive_format(src)
    with PathIndex() as index:
        allowance = _Allowance(src, staging, index)
        ready = False
        deferred = False
        for m in iter_members(src):
            if m.problem is not None:
                raise BadArchive(path=str(src), reason=f"member {m.name!r} {m.problem}; nothing was extracted")
            if m.unreadable is not None:  # before the rest is extracted only to be thrown away
                raise BadArchive(path=str(src), reason=f"member {m.name!r} {m.unreadable}; nothing was extracted")
            if not m.rel:
                continue
            if _top_tag(m):
                if m.size > TAG_FILE_LIMIT:
                    raise allowance.refuse(m, f"is a tag file of {m.size} bytes, larger than any bag's ({TAG_FILE_LIMIT})")
                _write(src, dest, staging, m, progress)
                ready = False  # read again before the next member is admitted
                continue
            if m.kind != "dir" and not deferred and fmt != "zip":
                ready = ready or allowance.load()
                deferred = not ready
            if m.kind != "dir" and (deferred or fmt == "zip"):
                continue  # not read: after the second pass has the tag files
            _write(src, dest, staging, m, progress, allowance.admit)
        if fmt != "zip" and not deferred:
            return
        if not allowance.load():
            raise BadArchive(path=str(src), reason="does not hold a bag (no bagit.txt and payload manifest in its "
                                                   "top-level folder); nothing was extracted")
        for m in iter_members(src):
            if m.problem is None and m.rel and m.kind != "dir" and not _top_tag(m):
                _write(src, dest, staging, m, progress, allowance.admit)


def _write(src: Path, dest: Path, staging: Path, m: Member, progress: Progress | None,
           admit: Callable[[Member], None] | None = None) -> None:
    """Write ``m`` below ``staging``; a file only once ``admit`` accepts it (its name is taken
    first, so a file and a folder of one name are named as such)."""
    root = os.path.realpath(staging)
    target = staging / m.rel
    if not os.path.realpath(target.parent).startswith(root + os.sep) and os.path.realpath(target.parent) != root:
        raise BadArchive(path=str(src), reason=f"member {m.name!r} would be written outside {dest}")
    try:
        if m.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise BadArchive(path=str(src), reason=f"member {m.name!r} clashes with another member (a file and a folder of one name); nothing was extracted") from exc
    if admit is not None:
        try:
            admit(m)
        except BaseException:
            os.close(fd)
            raise
    with os.fdopen(fd, "wb") as out:
        for chunk in m.chunks():
            out.write(chunk)
            if progress is not None:
                progress(len(chunk), 0)
    os.utime(target, (m.mtime, m.mtime))
    if progress is not None:
        progress(0, 1)

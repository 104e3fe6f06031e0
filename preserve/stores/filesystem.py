"""A directory on another disk as a replica store.

Layout of the store's root::

    <root>/<bag-name>/...                      the bag's files, at their keys
    <root>/<bag-name>.preserve-replica.json    the replica record
    <root>/.preserve-uploads/                  the store's own folder (no bag may take this name)
        <token>.journal                        one per run: locked while the run lives, lists its staging
        <token>/                               the run's staging folder: temporaries named 1, 2, 3...

Writing: each object is written into the run's staging folder under a number (never a name a
payload file could have), hashed as it is written, compared with the bag's manifest, made durable
(fsync) and only then renamed to its key (the same file system, so the rename is atomic): a file
at a key is always complete. Before the staging folder is created its path is written to the run's
journal, which the run holds ``flock``-ed for as long as it lives. :meth:`FilesystemStore.abort_own_uploads`
removes exactly the staging folders that the journals of dead runs (lock free) list, and
:meth:`FilesystemStore.finish_uploads` removes the run's own; nothing is ever deleted because its
name looks like a temporary file, so a payload file named ``x.preserve-upload-1234abcd`` is kept,
listed and audited like any other.

Reading: no link is followed below the root (the root itself may be a link to a mount point);
every path is walked one folder at a time by :mod:`preserve.safefs`. A link or a special file
(pipe, device, socket) where an object should be is damage, never a copy:

* :meth:`~FilesystemStore.head` returns an :class:`~preserve.stores.base.ObjectInfo` whose
  ``damage`` says what is wrong (the object, or a folder above it, is a link; it is a folder or a
  special file), so :func:`~preserve.replication.layout.check_info` never verifies it;
* :meth:`~FilesystemStore.list` yields such entries with ``damage`` set and never descends into a
  linked folder;
* :meth:`~FilesystemStore.get` raises :class:`~preserve.errors.UnsafePath` (exit 1) naming the
  link or special file; restores and repairs rely on this.

Writing to a key whose file is a link replaces the link itself; a linked folder above a key is
refused (:class:`~preserve.errors.UnsafePath`), nothing is written through it.

A file system keeps no checksum of its own, so a metadata audit of this store checks presence and
size; the full tier re-reads and re-hashes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from preserve.bag.paths import unsafe_reason
from preserve.errors import BagInvalid, StorageError, UnsafePath
from preserve.safefs import (
    LINK_REASON,
    LinkRefused,
    lstat_beneath,
    makedirs_beneath,
    open_beneath,
    open_regular_beneath,
    parent_fd,
    refusal,
    unlink_beneath,
)
from preserve.stores.base import ObjectInfo, PutOptions, PutResult, Store

_CHUNK = 1024 * 1024
#: The store's own folder at its root: per-run journals and staging folders, nothing else.
STAGING = ".preserve-uploads"
_JOURNAL_SUFFIX = ".journal"
_HEADER = b"# preserve upload journal: the staging folder of a run; removed when the run is dead\n"
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NOT_REGULAR = "is not a regular file (a folder, pipe, device or socket)"


@dataclass(frozen=True)
class _Temp:
    """One temporary file: its name in the run's staging folder (a number) and that folder's descriptor."""

    dir_fd: int
    name: str


@dataclass
class _Run:
    """This store object's staging: journal descriptor (held locked) and folder."""

    token: str
    journal_fd: int
    counter: int = 0
    folder_fd: int = -1  # held open: each temporary is created and renamed relative to it


    @property
    def folder(self) -> str:
        return f"{STAGING}/{self.token}"


def _release(root: str, run: _Run) -> None:
    """Remove a live run's own staging folder and journal (called once, by its finalizer)."""
    if run.folder_fd >= 0:
        os.close(run.folder_fd)
    with contextlib.suppress(OSError), parent_fd(root, run.folder) as (fd, name):
        shutil.rmtree(name, dir_fd=fd)
    with contextlib.suppress(OSError):
        unlink_beneath(root, f"{STAGING}/{run.token}{_JOURNAL_SUFFIX}")
    os.close(run.journal_fd)
    # the shared folder goes only when no other run uses it (ENOTEMPTY otherwise)
    with contextlib.suppress(OSError), parent_fd(root, STAGING) as (fd, name):
        os.rmdir(name, dir_fd=fd)


class FilesystemStore(Store):
    """A directory tree; ``url`` is its absolute path. See the module docstring for the contract."""

    kind = "filesystem"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = os.fspath(root)
        if text.startswith("file://"):
            text = text[len("file://"):]
        self.root = Path(os.path.abspath(text))
        self.url = str(self.root)
        self._lock = threading.Lock()
        self._run: _Run | None = None
        self._finalizer: weakref.finalize[[str, _Run], FilesystemStore] | None = None

    def _path(self, key: str) -> Path:
        reason = unsafe_reason(key)
        if reason:
            raise UnsafePath(path=key, reason=reason)
        return self.root / key

    def where(self, key: str) -> str:
        """The path of one object, for messages."""
        return str(self.root / key)

    def name_refused(self, name: str) -> str | None:
        if name == STAGING:
            return f"{STAGING} is the folder where this directory store stages its uploads"
        return None

    # -- writing -----------------------------------------------------------------------------

    def _new_temp(self) -> _Temp:
        """A fresh temporary name in this run's staging folder."""
        with self._lock:
            if self._run is None:
                self._run = self._start_run()
                self._finalizer = weakref.finalize(self, _release, str(self.root), self._run)
            self._run.counter += 1
            return _Temp(self._run.folder_fd, str(self._run.counter))

    def _start_run(self) -> _Run:
        token = secrets.token_hex(8)
        journal = f"{STAGING}/{token}{_JOURNAL_SUFFIX}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            makedirs_beneath(self.root, STAGING)
            fd = open_beneath(self.root, journal, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except LinkRefused as exc:
            raise refusal(exc) from None
        except OSError as exc:
            raise _storage(exc, self.root / STAGING) from exc
        run = _Run(token, fd)
        try:
            # locked before the header is written: a run that finds the header and can take the
            # lock knows this run is dead, one that finds no header leaves the journal alone
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, _HEADER + os.fsencode(run.folder).hex().encode("ascii") + b"\n")
            os.fsync(fd)
            makedirs_beneath(self.root, run.folder, mode=0o700)
            run.folder_fd = open_beneath(self.root, run.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            _release(str(self.root), run)
            raise _storage(exc, self.root / STAGING) from exc
        return run

    def finish_uploads(self) -> None:
        """Remove this store object's staging folder and journal (no upload may be in flight);
        a later upload starts a new one."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._run = None
            self._finalizer = None

    def _write(self, key: str, chunks: Iterator[bytes], options: PutOptions) -> tuple[_Temp, int, str]:
        self._path(key)  # an unsafe key is refused before anything is written
        temp = self._new_temp()
        digest = hashlib.sha256()
        size = 0
        try:
            fd = os.open(temp.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_CLOEXEC", 0), 0o644, dir_fd=temp.dir_fd)
            try:
                for chunk in chunks:
                    if options.limiter is not None:
                        options.limiter.consume(len(chunk))
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                    digest.update(chunk)
                    size += len(chunk)
                    if options.progress is not None:
                        options.progress(len(chunk))
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException as exc:
            self._drop(temp)
            if isinstance(exc, LinkRefused):
                raise refusal(exc) from None
            if isinstance(exc, OSError):
                raise _storage(exc, self._path(key)) from exc
            raise
        return temp, size, digest.hexdigest()

    def _drop(self, temp: _Temp) -> None:
        with contextlib.suppress(OSError):
            os.unlink(temp.name, dir_fd=temp.dir_fd)

    def _commit(self, temp: _Temp, key: str) -> None:
        try:
            # the key's folders made (or walked) with no link followed, then one rename from staging
            with parent_fd(self.root, key, create=True) as (folder, name):
                os.replace(temp.name, name, src_dir_fd=temp.dir_fd, dst_dir_fd=folder)
                os.fsync(folder)
        except LinkRefused as exc:
            self._drop(temp)
            raise refusal(exc) from None
        except OSError as exc:
            self._drop(temp)
            raise _storage(exc, self._path(key)) from exc

    def put_file(self, key: str, source: Path, sha256_hex: str, size: int, options: PutOptions,
                 *, archive: bool = True) -> PutResult:
        try:
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(path=str(source), reason=LINK_REASON) from None
            raise BagInvalid(f"{source}: {exc.strerror or exc}; validate the bag before replicating") from None
        with open(fd, "rb") as f:
            temp, written, found = self._write(key, iter(lambda: f.read(_CHUNK), b""), options)
        if found != sha256_hex or written != size:
            self._drop(temp)
            raise BagInvalid(f"{source}: does not match manifest-sha256.txt (expected {sha256_hex}, found {found}, "
                             f"{written} of {size} bytes); validate the bag before replicating (it was not copied)")
        self._commit(temp, key)
        return PutResult(key=key, size=size, sent=size)

    def put_bytes(self, key: str, data: bytes, options: PutOptions) -> PutResult:
        temp, _, _ = self._write(key, iter([data]), options)
        self._commit(temp, key)
        return PutResult(key=key, size=len(data), sent=len(data))

    def put_stream(self, key: str, chunks: Iterator[bytes], options: PutOptions,
                   *, expected_size: int | None = None) -> tuple[PutResult, str]:
        temp, size, sha = self._write(key, chunks, options)
        self._commit(temp, key)
        return PutResult(key=key, size=size, sent=size), sha

    # -- reading -----------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = lstat_beneath(self.root, key)
        except LinkRefused as exc:
            return ObjectInfo(key=key, size=0, damage=f"{exc.filename} {LINK_REASON}")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _storage(exc, path) from exc
        return self._info(key, st)

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        if stat.S_ISREG(st.st_mode):
            return ObjectInfo(key=key, size=st.st_size)
        why = LINK_REASON if stat.S_ISLNK(st.st_mode) else _NOT_REGULAR
        return ObjectInfo(key=key, size=st.st_size if stat.S_ISLNK(st.st_mode) else 0,
                          damage=f"{self.where(key)} {why}")

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # key-prefix semantics, as S3 has: "bag/manifest-" lists bag/manifest-sha256.txt, ...
        base, _, partial = prefix.rpartition("/")
        try:
            fd = self._open_folder(base)
        except (FileNotFoundError, NotADirectoryError):
            return
        except LinkRefused:
            return  # a linked folder is not followed; head() of any key below it reports the link
        except OSError as exc:
            raise _storage(exc, self.root / base) from exc
        try:
            yield from self._walk(fd, base, lambda name: name.startswith(partial) and not (not base and name == STAGING))
        finally:
            os.close(fd)

    def _open_folder(self, rel: str) -> int:
        """A descriptor of the folder ``rel`` below the root, no link followed on the way."""
        if not rel:
            return os.open(self.root, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
        with parent_fd(self.root, rel) as (parent, name):
            return _open_child(parent, name, self.where(rel))

    def _walk(self, fd: int, rel: str, keep: Callable[[str], bool] | None = None) -> Iterator[ObjectInfo]:
        """Every entry below the folder ``fd`` (at ``rel``): its files first, then its folders in name
        order; links and special files come with ``damage`` set, linked folders are not entered."""
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        folders = []
        for entry in entries:
            if keep is not None and not keep(entry.name):
                continue
            key = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                folders.append((entry.name, key))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield self._info(key, st)
        for name, key in folders:
            try:
                child = _open_child(fd, name, self.where(key))
            except FileNotFoundError:
                continue
            except LinkRefused:  # swapped for a link since it was listed
                yield ObjectInfo(key=key, size=0, damage=f"{self.where(key)} {LINK_REASON}")
                continue
            try:
                yield from self._walk(child, key)
            finally:
                os.close(child)

    @contextlib.contextmanager
    def get(self, key: str) -> Iterator[Iterator[bytes]]:
        path = self._path(key)
        try:
            fd, _size = open_regular_beneath(self.root, key)
        except LinkRefused as exc:
            raise refusal(exc) from None
        except (FileNotFoundError, NotADirectoryError):
            raise StorageError(path=str(path), reason="not found in the replica") from None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise UnsafePath(path=str(path), reason=f"{_NOT_REGULAR}; a replica holds files only") from None
            raise _storage(exc, path) from exc
        with open(fd, "rb") as f:
            yield iter(lambda: f.read(_CHUNK), b"")

    # -- what killed runs left ---------------------------------------------------------------

    def abort_own_uploads(self, prefix: str) -> int:
        """Remove the staging folders of dead runs (their journals free to lock) and return how
        many unfinished files they held. Temporaries live only in those folders, so ``prefix``
        does not narrow the search; nothing outside ``.preserve-uploads/`` is touched."""
        try:
            fd = self._open_folder(STAGING)
        except (FileNotFoundError, NotADirectoryError, LinkRefused):
            return 0
        except OSError as exc:
            raise _storage(exc, self.root / STAGING) from exc
        own = self._run.token if self._run is not None else None
        count = 0
        try:
            with os.scandir(fd) as it:
                journals = sorted(e.name for e in it if e.name.endswith(_JOURNAL_SUFFIX)
                                  and e.is_file(follow_symlinks=False))
            for name in journals:
                if name != f"{own}{_JOURNAL_SUFFIX}":
                    count += _remove_dead_run(fd, name)
        finally:
            os.close(fd)
        return count


def _open_child(parent: int, name: str, where: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode):
                raise LinkRefused(where) from None
        raise type(exc)(exc.errno, exc.strerror, where) from None


def _remove_dead_run(staging_fd: int, journal: str) -> int:
    """When the run of ``journal`` is dead: remove the staging folder it lists, then the journal;
    the number of files removed. A live run (its lock held) is left alone."""
    try:
        fd = os.open(journal, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), dir_fd=staging_fd)
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        with open(os.dup(fd), "rb") as f:
            text = f.read()
        if not text.startswith(_HEADER):
            return 0  # created but not yet locked by its run: not known to be dead
        count = 0
        for line in text[len(_HEADER):].splitlines():
            try:
                listed = os.fsdecode(bytes.fromhex(line.decode("ascii")))
            except ValueError:
                continue  # cut short by a kill mid-write: names nothing that was created
            # only a folder directly inside .preserve-uploads is ever removed, whatever a journal says
            folder = listed.removeprefix(f"{STAGING}/")
            if listed == folder or not folder or "/" in folder or folder in (".", ".."):
                continue
            count += _remove_folder(staging_fd, folder)
        os.unlink(journal, dir_fd=staging_fd)
        return count
    finally:
        os.close(fd)


def _remove_folder(parent: int, name: str) -> int:
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError:
        return 0
    try:
        count = 0
        for _dirpath, _dirs, files, _dfd in os.fwalk(dir_fd=fd):
            count += len(files)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        shutil.rmtree(name, dir_fd=parent)
    return count


def _storage(exc: OSError, where: Path) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(path=str(where), reason="no space left on the replica's file system")
    if exc.errno == errno.EXDEV:
        return StorageError(path=str(where), reason="another file system is mounted inside the replica's folder; "
                                                    f"its staging ({STAGING}) must be on the same one")
    return StorageError(path=str(where), reason=f"{exc.strerror or exc}")

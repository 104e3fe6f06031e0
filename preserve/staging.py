"""One lock and one journal per destination: what a run may clean up after a killed run.

Every command that stages work beside or inside a destination (``bag``, ``package``, ``unpack``,
``restore``, ``repair``, serialized output) takes the lock ``.<name>.preserve-lock`` beside the
destination. The lock file is also the run's journal: before a run creates a staging folder or a
temporary file it appends that path to the journal and flushes it to disk. A run that ends
normally removes what it staged and then the lock file. A run that is killed leaves the lock file
with its journal behind; the next run on the same destination takes the lock, removes exactly the
paths the journal lists (and nothing else: never a file merely because its name looks like a
temporary file), reports them, and starts a fresh journal.

The lock is ``flock`` on the lock file, so it is released by the kernel when a process dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from preserve.errors import DestinationExists, StorageError

LOCK_SUFFIX = ".preserve-lock"
_HEADER = "# preserve journal: paths this run created; a later run removes them if this run was killed\n"


def lock_path_for(dest: Path) -> Path:
    """Where the lock and journal of ``dest`` live: a hidden file beside it."""
    return dest.parent / f".{dest.name}{LOCK_SUFFIX}"


def _storage(exc: OSError, where: Path) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(path=str(where), reason="no space left on the file system; free space and run again")
    if exc.errno == errno.EROFS:
        return StorageError(path=str(where), reason="the file system is read-only")
    return StorageError(path=str(where), reason=exc.strerror or str(exc))


@dataclass
class Journal:
    """The open, locked journal of one run."""

    dest: Path
    path: Path
    fd: int
    #: what a killed earlier run had left, removed when this run took the lock
    removed: list[Path] = field(default_factory=list)
    #: what this run created, in order; removed by :meth:`discard`
    entries: list[Path] = field(default_factory=list)

    def record(self, path: Path) -> Path:
        """Write ``path`` to the journal (durably) before the caller creates it."""
        line = (os.fsencode(os.fspath(path)).hex() + "\n").encode("ascii")
        try:
            os.write(self.fd, line)
            os.fsync(self.fd)
        except OSError as exc:
            raise _storage(exc, self.path) from exc
        self.entries.append(path)
        return path

    def new_folder(self, parent: Path, kind: str) -> Path:
        """Create and record a fresh hidden folder ``.<dest name>.preserve-<kind>-<token>`` in
        ``parent`` (by default beside the destination)."""
        folder = parent / f".{self.dest.name}.preserve-{kind}-{secrets.token_hex(4)}"
        self.record(folder)
        try:
            folder.mkdir(mode=0o700)
        except OSError as exc:
            raise _storage(exc, parent) from exc
        return folder

    def discard(self) -> None:
        """Remove everything this run recorded that still exists (a failed or finished run)."""
        for path in reversed(self.entries):
            _remove(path)
        self.entries.clear()


def _remove(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return True


def _read_entries(fd: int) -> list[Path]:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    paths = []
    for line in b"".join(chunks).splitlines():
        if not line or line.startswith(b"#"):
            continue
        try:
            paths.append(Path(os.fsdecode(bytes.fromhex(line.decode("ascii")))))
        except ValueError:
            continue  # a line cut short by a kill mid-write names nothing that was created
    return paths


def _acquire(lock_path: Path, busy: str, wait: float) -> int:
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise _storage(exc, lock_path.parent) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise DestinationExists(busy) from None
            time.sleep(0.1)
            continue
        # the holder before us may have removed the file after we opened it: our lock is then
        # on a file nobody else will ever find, so start again on the one at the path now
        try:
            same = os.fstat(fd).st_ino == os.lstat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def journaled(dest: Path, *, busy: str | None = None, wait: float = 0.0) -> Iterator[Journal]:
    """Lock ``dest``, remove what a killed earlier run's journal lists, and yield this run's journal.

    ``busy`` is the message of the :class:`DestinationExists` (exit 4) raised when another run holds
    the lock for longer than ``wait`` seconds. On leaving, normally or by an exception, whatever
    this run recorded is removed, then the lock file.
    """
    dest = Path(os.path.abspath(dest))
    lock_path = lock_path_for(dest)
    fd = _acquire(lock_path, busy or f"{dest}: another preserve run is working on it now", wait)
    journal = Journal(dest=dest, path=lock_path, fd=fd)
    try:
        for stale in _read_entries(fd):
            if _remove(stale):
                journal.removed.append(stale)
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, _HEADER.encode("ascii"))
            os.fsync(fd)
        except OSError as exc:
            raise _storage(exc, lock_path) from exc
        try:
            yield journal
        finally:
            journal.discard()
            # unlinked while still held: a run waiting on this inode sees it gone and retries
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
    finally:
        os.close(fd)

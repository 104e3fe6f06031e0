"""A disk-backed index of manifest entries and files found, so memory stays flat for huge bags.

Completeness needs a set difference between what the manifests list and what the disk holds; for
a million files that is two million strings. A temporary SQLite file does the joins in bounded
memory (its page cache is capped) and is deleted when the index is closed.
"""

from __future__ import annotations

import functools
import inspect
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from preserve.errors import StorageError

F = TypeVar("F", bound=Callable[..., Any])


def sqlite_temp_dir() -> str:
    """The folder SQLite's Unix VFS puts a temporary database in: $SQLITE_TMPDIR, $TMPDIR,
    /var/tmp, /usr/tmp, /tmp, then ".", the first that is a folder this process can write in.
    (Python's tempfile.gettempdir() passes over a full folder, so it may name another.)"""
    for cand in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"):
        if cand and os.path.isdir(cand) and os.access(cand, os.W_OK | os.X_OK):
            return cand
    return "."


def _temporary_failed(folder: str, exc: Exception) -> StorageError:
    """The failure of a temporary database's file (its folder full, an I/O error) as what it is:
    local storage failing, exit 5, naming the folder, never an internal error."""
    return StorageError(path=folder, reason=f"a temporary index there could not be written ({exc}); free space in "
                        "it or set TMPDIR to a folder with room, and run again")


def _folder_of(obj: object) -> str:
    """Where ``obj`` keeps its temporary database: its file's folder when it has one."""
    file = getattr(obj, "_file", None)
    return os.path.dirname(file) if file else sqlite_temp_dir()


def on_temporary_storage(fn: F) -> F:
    """A method (or generator method) whose SQLite failures are :func:`_temporary_failed`.

    A plain try block, no context manager: lookups and inserts of a million files pass here."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(self: object, *args: Any, **kw: Any) -> Any:
            try:
                yield from fn(self, *args, **kw)
            except sqlite3.OperationalError as exc:
                raise _temporary_failed(_folder_of(self), exc) from exc
        return gen  # type: ignore[return-value]

    @functools.wraps(fn)
    def plain(self: object, *args: Any, **kw: Any) -> Any:
        try:
            return fn(self, *args, **kw)
        except sqlite3.OperationalError as exc:
            raise _temporary_failed(_folder_of(self), exc) from exc
    return plain  # type: ignore[return-value]


def printable(path: str) -> str:
    """A path as text that can be printed and stored: undecodable bytes shown as \\xNN."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def real_path(shown: str, real: bytes | None) -> str:
    """The name to open: the real bytes where the stored text is only printable."""
    return os.fsdecode(real) if real is not None else shown


def _disk_row(row: tuple[str, int] | tuple[str, int, bool]) -> tuple[str, int, bytes | None, int]:
    path, size = row[0], row[1]
    odd = len(row) > 2 and bool(row[2])
    shown = printable(path)
    return (shown, size, None if shown == path else os.fsencode(path), int(odd))


class PathIndex:
    @on_temporary_storage
    def __init__(self) -> None:
        try:
            fd, self._file = tempfile.mkstemp(prefix="preserve-index-", suffix=".sqlite")
        except OSError as exc:  # the folder full (of inodes too), read-only or gone
            raise _temporary_failed(tempfile.gettempdir(), exc) from exc
        os.close(fd)
        self.db = sqlite3.connect(self._file, isolation_level=None, check_same_thread=False)
        self.db.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-16384;
            PRAGMA temp_store=FILE;
            CREATE TABLE m (path TEXT NOT NULL, alg TEXT NOT NULL, digest TEXT NOT NULL,
                            line INTEGER NOT NULL, raw TEXT NOT NULL);
            CREATE TABLE d (path TEXT PRIMARY KEY, size INTEGER NOT NULL, real BLOB,
                            odd INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
            """
        )
        self.db.execute("BEGIN")

    @on_temporary_storage
    def add_entries(self, rows: Iterable[tuple[str, str, str, int, str]]) -> None:
        self.db.executemany("INSERT INTO m VALUES (?,?,?,?,?)", rows)

    @on_temporary_storage
    def add_files(self, rows: Iterable[tuple[str, int] | tuple[str, int, bool]]) -> None:
        """Files found on disk: (path, size) or (path, size, odd); an odd entry (a link, a pipe) is
        never opened. A name that is not valid UTF-8 (surrogate-escaped by Python) is stored in a
        printable form, with its real bytes kept for opening it."""
        self.db.executemany("INSERT OR IGNORE INTO d VALUES (?,?,?,?)", (_disk_row(r) for r in rows))

    @on_temporary_storage
    def finish_loading(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("CREATE INDEX m_path ON m(path, alg)")

    @on_temporary_storage
    def query(self, sql: str, params: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
        cur = self.db.execute(sql, params)
        while True:
            rows = cur.fetchmany(1000)
            if not rows:
                return
            yield from rows

    def close(self) -> None:
        self.db.close()
        try:
            os.unlink(self._file)
        except FileNotFoundError:
            pass

    def __enter__(self) -> PathIndex:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

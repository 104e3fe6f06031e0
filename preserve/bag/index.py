"""A disk-backed index of manifest entries and files found, so memory stays flat for huge bags.

Completeness needs a set difference between what the manifests list and what the disk holds; for
a million files that is two million strings. A temporary SQLite file does the joins in bounded
memory (its page cache is capped) and is deleted when the index is closed.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from types import TracebackType


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
    def __init__(self) -> None:
        fd, self._file = tempfile.mkstemp(prefix="preserve-index-", suffix=".sqlite")
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

    def add_entries(self, rows: Iterable[tuple[str, str, str, int, str]]) -> None:
        self.db.executemany("INSERT INTO m VALUES (?,?,?,?,?)", rows)

    def add_files(self, rows: Iterable[tuple[str, int] | tuple[str, int, bool]]) -> None:
        """Files found on disk: (path, size) or (path, size, odd); an odd entry (a link, a pipe) is
        never opened. A name that is not valid UTF-8 (surrogate-escaped by Python) is stored in a
        printable form, with its real bytes kept for opening it."""
        self.db.executemany("INSERT OR IGNORE INTO d VALUES (?,?,?,?)", (_disk_row(r) for r in rows))

    def finish_loading(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("CREATE INDEX m_path ON m(path, alg)")

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

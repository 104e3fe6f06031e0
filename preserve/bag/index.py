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
            CREATE TABLE d (path TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
            """
        )
        self.db.execute("BEGIN")

    def add_entries(self, rows: Iterable[tuple[str, str, str, int, str]]) -> None:
        self.db.executemany("INSERT INTO m VALUES (?,?,?,?,?)", rows)

    def add_files(self, rows: Iterable[tuple[str, int]]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO d VALUES (?,?)", rows)

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

"""What verified each object of a replica, kept in memory that does not grow with the bag.

A replica of a million files records, per object, which of the ways in
:data:`~preserve.stores.base.VERIFIED_BY` vouched for it. The ledger keeps only a summary (the
count per way, the most common way, and every object verified another way), but which way is the
most common is known only at the end, so every object must be remembered until then. Up to
:data:`SPILL_AT` objects are held in a dict; past that they move to a private temporary SQLite
database (on disk, deleted when closed), so a bag of a million files costs a few MiB of page
cache instead of a million strings.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator

#: Objects held in memory before the mapping moves to a temporary database.
SPILL_AT = 10_000
_BATCH = 5_000


def _key(text: str) -> bytes:
    # UTF-8 bytes compare as the code points do, so the database sorts keys as Python does;
    # surrogatepass keeps a name that is not valid UTF-8 (surrogate-escaped) and its order
    return text.encode("utf-8", "surrogatepass")


class VerifiedBy:
    """An insertion-ordered mapping of object (bag-relative) -> the way it was verified.

    Setting a key again replaces its way and keeps its place, as a dict does. Thread-safe.
    """

    def __init__(self, spill_at: int | None = None) -> None:
        self._spill_at = SPILL_AT if spill_at is None else spill_at
        self._mem: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[bytes, int]] = []
        self._ways: dict[str, int] = {}
        self._lock = threading.Lock()

    def __setitem__(self, key: str, way: str) -> None:
        with self._lock:
            if self._db is None:
                self._mem[key] = way
                if len(self._mem) > self._spill_at:
                    self._spill()
                return
            self._pending.append((_key(key), self._way_id(way)))
            if len(self._pending) >= _BATCH:
                self._flush()

    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return len(self._mem)
            self._flush()
            return int(self._db.execute("SELECT count(*) FROM v").fetchone()[0])

    def counts(self) -> Counter[str]:
        """How many objects each way verified."""
        with self._lock:
            if self._db is None:
                return Counter(self._mem.values())
            self._flush()
            names = {i: w for w, i in self._ways.items()}
            # in the order each way first appears, as a Counter of a dict's values has them (ties
            # in most_common() go to the first)
            rows = self._db.execute("SELECT way, count(*) FROM v GROUP BY way ORDER BY min(rowid)")
            return Counter({names[i]: n for i, n in rows})

    def items(self, *, ordered: bool = False, except_way: str | None = None) -> Iterator[tuple[str, str]]:
        """``(object, way)`` in insertion order, or sorted by object with ``ordered``; with
        ``except_way``, only the objects verified some other way. Read once writing is over."""
        with self._lock:
            if self._db is None:
                pairs = [(k, w) for k, w in self._mem.items() if w != except_way]
                held = sorted(pairs) if ordered else pairs
                cur = None
            else:
                self._flush()
                names = {i: w for w, i in self._ways.items()}
                skip = self._ways.get(except_way, -1) if except_way is not None else -1
                cur = self._db.execute(f"SELECT k, way FROM v WHERE way <> ? ORDER BY {'k' if ordered else 'rowid'}",
                                       (skip,))
        if cur is None:
            yield from held
            return
        while batch := cur.fetchmany(1000):  # streamed: a million rows are never a list
            yield from ((k.decode("utf-8", "surrogatepass"), names[w]) for k, w in batch)

    def close(self) -> None:
        """Drop the temporary database (it is also dropped when this object is collected)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
                self._pending.clear()

    def _way_id(self, way: str) -> int:
        return self._ways.setdefault(way, len(self._ways))

    def _spill(self) -> None:
        # "" opens a private temporary database on disk, removed by SQLite when it is closed
        db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4096;"
                         "CREATE TABLE v (k BLOB NOT NULL UNIQUE, way INTEGER NOT NULL);")
        self._db = db
        self._pending = [(_key(k), self._way_id(w)) for k, w in self._mem.items()]
        self._mem = {}
        self._flush()

    def _flush(self) -> None:
        if self._db is None or not self._pending:
            return
        # an object set again keeps its row (and so its place) and takes the new way
        self._db.executemany("INSERT INTO v (k, way) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET way = excluded.way",
                             self._pending)
        self._pending = []

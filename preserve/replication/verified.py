"""Per-object facts of a replica, kept in memory that does not grow with the bag.

Two mappings of bag-relative name -> text, each held in a dict up to :data:`SPILL_AT` names and
in a private temporary SQLite database (on disk, deleted when closed) past that, so a bag of a
million files costs a few MiB of page cache instead of a million strings:

- :class:`VerifiedBy`: which of the ways in :data:`~preserve.stores.base.VERIFIED_BY` vouched for
  each object. The ledger keeps only a summary (the count per way, the most common way, and every
  object verified another way), but which way is the most common is known only at the end, so
  every object must be remembered until then.
- :class:`ManifestDigests`: each payload file's manifest SHA-256, looked up while the file streams
  into a ``--serialize tar`` upload (the tar's order is a walk of the bag, not the manifest's).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from types import TracebackType
from typing import Self

from preserve.bag.index import on_temporary_storage

#: Names held in memory before a mapping moves to a temporary database.
SPILL_AT = 10_000
_BATCH = 5_000


def _key(text: str) -> bytes:
    # UTF-8 bytes compare as the code points do, so the database sorts keys as Python does;
    # surrogatepass keeps a name that is not valid UTF-8 (surrogate-escaped) and its order
    return text.encode("utf-8", "surrogatepass")


class _SpillingMap:
    """The storage both mappings share: name -> text in a dict, moved to table ``v (k, val)`` of
    a private temporary database once it holds more than ``spill_at`` names. Setting a name again
    replaces its value, as a dict does. Thread-safe; also a context manager that closes it."""

    #: The table past the threshold (``k``: the name as :func:`_key` bytes; ``val``: the stored value).
    _TABLE = "CREATE TABLE v (k BLOB NOT NULL UNIQUE, val NOT NULL)"

    def __init__(self, spill_at: int | None = None) -> None:
        self._spill_at = SPILL_AT if spill_at is None else spill_at
        self._mem: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[bytes, object]] = []
        self._lock = threading.Lock()
        self._closed = False

    @on_temporary_storage
    def __setitem__(self, key: str, value: str) -> None:
        with self._lock:
            if self._db is None:
                self._mem[key] = value
                if len(self._mem) > self._spill_at:
                    self._spill()
                return
            self._pending.append((_key(key), self._encode(value)))
            if len(self._pending) >= _BATCH:
                self._flush()

    @on_temporary_storage
    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return len(self._mem)
            self._flush()
            return int(self._db.execute("SELECT count(*) FROM v").fetchone()[0])

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def on_disk(self) -> bool:
        """Whether the mapping has moved to its temporary database."""
        return self._db is not None

    def close(self) -> None:
        """Drop the temporary database (it is also dropped when this object is collected)."""
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None
                self._pending.clear()

    def _encode(self, value: str) -> object:
        """The value as the database stores it."""
        return value

    def _spill(self) -> None:
        # "" opens a private temporary database on disk, removed by SQLite when it is closed
        db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        db.executescript(f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4096; {self._TABLE};")
        self._db = db
        self._pending = [(_key(k), self._encode(v)) for k, v in self._mem.items()]
        self._mem = {}
        self._flush()

    def _flush(self) -> None:
        if self._db is None or not self._pending:
            return
        # one transaction per batch, not one per row; a name set again keeps its row (and so its
        # place) and takes the new value
        self._db.execute("BEGIN")
        with self._db:  # committed, or rolled back when it fails
            self._db.executemany("INSERT INTO v (k, val) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET val = excluded.val",
                                 self._pending)
        self._pending = []


class VerifiedBy(_SpillingMap):
    """An insertion-ordered mapping of object (bag-relative) -> the way it was verified.

    Setting a key again replaces its way and keeps its place, as a dict does. Thread-safe.
    """

    _TABLE = "CREATE TABLE v (k BLOB NOT NULL UNIQUE, val INTEGER NOT NULL)"  # rowid: the order set

    def __init__(self, spill_at: int | None = None) -> None:
        super().__init__(spill_at)
        self._ways: dict[str, int] = {}

    @on_temporary_storage
    def counts(self) -> Counter[str]:
        """How many objects each way verified."""
        with self._lock:
            if self._db is None:
                return Counter(self._mem.values())
            self._flush()
            names = {i: w for w, i in self._ways.items()}
            # in the order each way first appears, as a Counter of a dict's values has them (ties
            # in most_common() go to the first)
            rows = self._db.execute("SELECT val, count(*) FROM v GROUP BY val ORDER BY min(rowid)")
            return Counter({names[i]: n for i, n in rows})

    @on_temporary_storage
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
                cur = self._db.execute(f"SELECT k, val FROM v WHERE val <> ? ORDER BY {'k' if ordered else 'rowid'}",
                                       (skip,))
        if cur is None:
            yield from held
            return
        while batch := cur.fetchmany(1000):  # streamed: a million rows are never a list
            yield from ((k.decode("utf-8", "surrogatepass"), names[w]) for k, w in batch)

    def _encode(self, value: str) -> object:
        # a handful of ways: stored as small numbers
        return self._ways.setdefault(value, len(self._ways))


class ManifestDigests(_SpillingMap):
    """Payload path (bag-relative, as the manifest decodes it) -> its digest in one manifest.

    A path listed twice keeps the last digest, as a dict built from the lines would.
    """

    # looked up by name only, never listed in order: the name is the table's key
    _TABLE = "CREATE TABLE v (k BLOB PRIMARY KEY, val TEXT NOT NULL) WITHOUT ROWID"

    @on_temporary_storage
    def get(self, path: str) -> str | None:
        """The digest the manifest lists for ``path``, or None when it lists none."""
        with self._lock:
            if self._closed:  # "not listed" would let a file pass unchecked
                raise ValueError("the manifest's digests were closed")
            if self._db is None:
                return self._mem.get(path)
            self._flush()
            row = self._db.execute("SELECT val FROM v WHERE k = ?", (_key(path),)).fetchone()
            return None if row is None else str(row[0])

"""What every ledger backend shares: the vocabulary of the schema, timestamps, and the small
interface :class:`~preserve.audit.ledger.Ledger` writes its one set of SQL through.

The SQL in the ledger is written once, in the subset SQLite (3.35+) and PostgreSQL (12+) read
alike: ``?`` placeholders (the PostgreSQL connection turns them into its own), ``RETURNING id``
instead of a driver's last row id, ``ON CONFLICT`` instead of ``INSERT OR IGNORE``, and
``CASE`` sums instead of summing booleans. What differs, the schema's column types, how the
schema version is kept and how a file or a server is opened, lives in one module per backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from preserve.errors import PreserveError

#: Finding kinds stored in the ledger. ``invalid`` covers structural problems (a broken manifest
#: line, bagit.txt errors) that are not about one payload file's content.
KINDS = ("missing", "altered", "unlisted", "unreadable", "oxum", "invalid")

#: Audit outcomes the ledger stores.
OUTCOMES = ("pass", "fail", "pending")

#: What a bag's ``tag_files`` rows remember: a tag file, or an empty folder of the payload.
STRUCTURE_KINDS = ("file", "empty-dir")

#: Every table, in the order ``ledger export`` and ``ledger migrate`` copy them (parents first).
TABLES = ("bags", "audits", "findings", "replicas", "repairs", "tag_files", "compactions")

#: The schema version both backends migrate to (each keeps one migration per version).
SCHEMA_VERSION = 5

#: How long a writer waits for another's lock before giving up.
BUSY_TIMEOUT_S = 60.0

#: What ``ledger compact --keep`` may keep of each bag's audits.
COMPACT_KEEP = ("first", "last", "failures")

#: URL schemes that name a PostgreSQL ledger (libpq accepts both).
POSTGRES_SCHEMES = ("postgresql", "postgres")


# Each bag row keeps its audit summary (schema version 5): how many audits, the latest (by id:
# its id, end, outcome, tier), the latest full audit (its id; the latest end of any full audit)
# and how many audits came after it. Planning reads the least recently audited bags by the index
# on ``last_audit`` and a report counts over ``bags``, instead of grouping every audit on each
# read. Recording keeps the summary in the transaction that adds the audit (the bag row is locked
# by the upsert that registers it, so concurrent writers of one bag take turns and a new audit's
# id is above every other of its bag); a migration and ``ledger compact`` set it from the audits
# with the statements below, and ``audit_months`` likewise keeps the audits per month.

#: The bag columns holding the audit summary, as :class:`~preserve.audit.ledger_records.BagState` reads them.
SUMMARY_COLUMNS = ("audits_count", "last_audit", "last_outcome", "last_tier", "last_audit_id", "last_full",
                   "audits_since_full")


def summary_refresh(bags: str = "1 = 1", *, reset: bool = True) -> tuple[str, ...]:
    """SQL (both backends) that sets the audit summary of the bags matching ``bags`` (a condition on
    ``bags.id``) from their audits: set-based, two passes over the audits however many there are.
    ``reset=False`` when the summary columns are new (a migration): nothing to clear first."""
    audits = bags.replace("bags.id", "a.bag_id")
    clear = (
        "UPDATE bags SET audits_count = 0, last_audit_id = NULL, last_audit = NULL, last_outcome = NULL, "
        f"last_tier = NULL, last_full_id = NULL, last_full = NULL, audits_since_full = 0 WHERE {bags}",)
    return (clear if reset else ()) + (
        # the audits after the latest full one are counted through the (bag_id, id) index
        "UPDATE bags SET audits_count = g.n, last_audit_id = g.last_id, last_audit = la.ended, "
        "last_outcome = la.outcome, last_tier = la.tier, last_full_id = g.full_id, last_full = g.last_full, "
        "audits_since_full = (SELECT count(*) FROM audits s WHERE s.bag_id = g.bag_id AND s.id > coalesce(g.full_id, 0)) "
        "FROM (SELECT a.bag_id, count(*) AS n, max(a.id) AS last_id, max(CASE WHEN a.tier = 'full' THEN a.id END) AS full_id, "
        "max(CASE WHEN a.tier = 'full' THEN a.ended END) AS last_full "
        f"FROM audits a WHERE {audits} GROUP BY a.bag_id) g JOIN audits la ON la.id = g.last_id WHERE bags.id = g.bag_id",
    )


#: SQL (both backends) that sets ``audit_months`` (audits, failed, pending and bytes read per month
#: of their end) from every audit.
MONTHS_REFRESH = (
    "DELETE FROM audit_months",
    "INSERT INTO audit_months (month, audits, failed, pending, bytes) SELECT substr(ended, 1, 7), count(*), "
    "sum(CASE WHEN outcome = 'fail' THEN 1 ELSE 0 END), sum(CASE WHEN outcome = 'pending' THEN 1 ELSE 0 END), "
    "sum(bytes) FROM audits GROUP BY substr(ended, 1, 7)",
)


def now_iso() -> str:
    """The current UTC time as the ledger stores it (ISO 8601, seconds, ``Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """A ledger timestamp back to an aware datetime."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def url_scheme(text: str) -> str | None:
    """The scheme of ``text`` when it is a URL (``scheme://...``), lower-cased; None for a path.

    A value with a scheme is never a file path: ``postgresql://host/db`` taken as a path would
    silently become a new SQLite file under ``./postgresql:/host/db``.
    """
    head, sep, _ = text.partition("://")
    if not sep or not head or not head[0].isascii() or not head[0].isalpha():
        return None
    if all(c.isascii() and (c.isalnum() or c in "+.-") for c in head):
        return head.lower()
    return None


class Cursor(Protocol):
    """What the ledger reads back from one statement (sqlite3's and psycopg's cursors both fit)."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ...) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """One open connection as the ledger's SQL sees it: ``?`` placeholders on both backends."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...


class Backend(Protocol):
    """An opened ledger store: a SQLite file or a PostgreSQL database.

    Rows support ``row["column"]``, ``row[0]`` and ``dict(row)`` on both backends.
    """

    #: how the ledger is named in messages (a path, or a URL without any password)
    name: str
    #: ``sqlite`` or ``postgresql``
    kind: str
    #: SQLite's journal mode (``wal``, ``delete``), or ``postgresql``
    journal_mode: str
    #: what the user should hear about how the ledger was opened
    warnings: list[str]
    #: the driver's exception classes
    errors: tuple[type[Exception], ...]
    #: what a ``SELECT`` ends with to lock the rows it reads until the transaction ends ("" where
    #: a write transaction already excludes every other writer)
    row_lock: str

    def write(self) -> AbstractContextManager[Connection]:
        """One write transaction, committed at the end of the block, rolled back on an error."""
        ...

    def snapshot(self) -> AbstractContextManager[Connection]:
        """One consistent read of the whole ledger (an export, a migration's copy)."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of one read."""
        ...

    def schema_version(self) -> int:
        """The schema version the store records."""
        ...

    def failure(self, exc: Exception, what: str) -> PreserveError:
        """The preserve error for a driver error (a full disk is a storage error, exit 5)."""
        ...

    def reset_ids(self, table: str) -> None:
        """Make the next id of ``table`` follow its largest (after rows were copied in with their ids)."""
        ...

    def close(self) -> None:
        """Close the connection (idempotent)."""
        ...

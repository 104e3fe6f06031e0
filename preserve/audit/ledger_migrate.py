"""``ledger migrate SRC DEST``: copy a whole ledger between SQLite and PostgreSQL, verified.

Every row of every table is copied with its id, parents first, in batches (a ledger of millions
of audits is never held in memory). Then each table is compared: the row count and a SHA-256
digest of its rows in id order (each row as canonical JSON) must be the same on both sides, or
the command fails. Re-running it is safe: rows already there are skipped, and a DEST that holds
anything else (another ledger's rows) is refused before anything is written. After the copy
each table's id sequence follows its largest id, so new records get fresh ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from preserve.audit.ledger import Ledger
from preserve.audit.ledger_base import TABLES
from preserve.errors import LedgerError

#: Rows per read and per write transaction.
BATCH = 2000


@dataclass(frozen=True)
class TableCheck:
    """One table after the copy: its rows on both sides and their digest."""

    table: str
    rows: int
    copied: int
    digest: str


@dataclass
class MigrationResult:
    """What ``ledger migrate`` did, table by table."""

    source: str
    dest: str
    tables: list[TableCheck] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)


def _rows(ledger: Ledger, table: str, *, after: int = 0, upto: int | None = None) -> Iterator[dict[str, Any]]:
    """Every row of ``table`` in id order (ids above ``after``, up to ``upto``), read in batches."""
    while batch := ledger.table_rows(table, after=after, upto=upto, limit=BATCH):
        yield from batch
        after = int(batch[-1]["id"])


def table_digest(ledger: Ledger, table: str, upto: int | None = None) -> tuple[int, str]:
    """(rows, SHA-256 of the rows as canonical JSON lines in id order): equal on both backends
    for equal content, whatever the column types are called."""
    h = hashlib.sha256()
    count = 0
    for row in _rows(ledger, table, upto=upto):
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        h.update(b"\n")
        count += 1
    return count, h.hexdigest()


def migrate_ledger(source: Ledger, dest: Ledger) -> MigrationResult:
    """Copy every row of ``source`` into ``dest`` and verify each table (see the module docstring).

    Raises :class:`~preserve.errors.LedgerError` when DEST holds rows that are not SRC's (nothing
    is written then) or when a table differs after the copy.
    """
    if source.name == dest.name:
        raise LedgerError(path=dest.name, reason="SRC and DEST are the same ledger")
    result = MigrationResult(source=source.name, dest=dest.name)
    # what DEST holds already must be what SRC holds under the same ids (an earlier run of this
    # migration, stopped or finished): anything else is another ledger, never merged into
    for table in TABLES:
        held = dest.max_id(table)
        if held and table_digest(dest, table) != table_digest(source, table, upto=held):
            raise LedgerError(path=dest.name, reason=(
                f"DEST already holds {table} rows that are not those of {source.name}; nothing was written: "
                "migrate into an empty database or a new file"))
    for table in TABLES:
        copied = _copy_table(source, dest, table, after=dest.max_id(table))
        src_rows, src_digest = table_digest(source, table)
        dest_rows, dest_digest = table_digest(dest, table)
        if (src_rows, src_digest) != (dest_rows, dest_digest):
            raise LedgerError(path=dest.name, reason=(
                f"after the copy, {table} differs: {src_rows} row(s) in SRC, {dest_rows} in DEST "
                f"(digests {src_digest[:12]} and {dest_digest[:12]}); was SRC written to during the migration? run it again"))
        result.tables.append(TableCheck(table=table, rows=src_rows, copied=copied, digest=src_digest))
    # each bag came with its audit summary (its columns are verified with the table); the audits
    # per month are figures of the audits now in DEST
    dest.refresh_months()
    return result


def _copy_table(source: Ledger, dest: Ledger, table: str, *, after: int) -> int:
    """Rows of ``table`` with ids above ``after``, copied in batches; returns how many."""
    copied = 0
    batch: list[dict[str, Any]] = []
    for row in _rows(source, table, after=after):
        batch.append(row)
        if len(batch) >= BATCH:
            dest.insert_rows(table, batch)
            copied += len(batch)
            batch = []
    dest.insert_rows(table, batch)
    return copied + len(batch)

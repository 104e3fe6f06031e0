"""The audit ledger: decades of fixity evidence, in one SQLite file or a PostgreSQL database.

Tables (the same on both backends; schema version :data:`SCHEMA_VERSION`):

``bags``      one row per bag location: identifier (External-Identifier or folder name), location
              (absolute path or URL), payload bytes and files, first and last seen.
``audits``    one row per audit of one bag: tier, start, end, bytes and files read, outcome
              (``pass`` | ``fail`` | ``pending``: a replica waiting for an archive-class restore,
              neither verified nor failed), algorithm(s), tool version, host, a UUID (PREMIS event id).
``findings``  what a failed audit found, one row per file: kind (``missing`` | ``altered`` |
              ``unlisted`` | ``unreadable`` | ``oxum`` | ``invalid``), expected, found, message.
``replicas``  one row per replication of a bag to a target (written by the replication engine).
``repairs``   one row per file restored from a replica (written by the replication engine).
``compactions`` per bag, what ``ledger compact`` removed (when, what was kept, how many audits,
              the span): :mod:`preserve.audit.ledger_compact`.
``tag_files`` what a bag held outside its payload when it was first audited: every tag file
              (``kind`` ``file``: bagit.txt, manifests, metadata/...) and every empty folder listed in
              metadata/empty-directories.txt (``empty-dir``). Audits report any that disappear.

Where it lives: a path is a SQLite file (:mod:`preserve.audit.ledger_sqlite`, the embedded
default); ``postgresql://...`` is a PostgreSQL database (:mod:`preserve.audit.ledger_pg`, for
fleets). Any other URL scheme is a usage error: a value with a scheme is never a path. This
module holds the one set of SQL both run (see :mod:`preserve.audit.ledger_base`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from preserve.audit.ledger_base import (
    BUSY_TIMEOUT_S,
    KINDS,
    MONTHS_REFRESH,
    OUTCOMES,
    POSTGRES_SCHEMES,
    SCHEMA_VERSION,
    STRUCTURE_KINDS,
    TABLES,
    Backend,
    Connection,
    now_iso,
    parse_iso,
    url_scheme,
)
from preserve.audit.ledger_compact import LedgerCompact
from preserve.audit.ledger_pg import PgBackend
from preserve.audit.ledger_queue import drain, enqueue, queue_path
from preserve.audit.ledger_reads import LedgerReads
from preserve.audit.ledger_records import (
    AuditRecord,
    BagState,
    FindingRecord,
    RepairRecord,
    ReplicaRecord,
)
from preserve.audit.ledger_sqlite import (
    MIGRATIONS,
    NETWORK_FS,
    SqliteBackend,
    default_ledger_path,
    filesystem_type,
    is_network_fs,
)
from preserve.audit.ledger_summary import keep_summaries
from preserve.errors import LedgerError, UsageError

__all__ = [
    "BUSY_TIMEOUT_S", "KINDS", "MIGRATIONS", "NETWORK_FS", "OUTCOMES", "SCHEMA_VERSION", "STRUCTURE_KINDS",
    "TABLES", "AuditRecord", "BagState", "FindingRecord", "Ledger", "LedgerTarget", "RepairRecord",
    "ReplicaRecord", "default_ledger_path", "filesystem_type", "is_network_fs", "ledger_exists", "ledger_target",
    "now_iso", "open_ledger", "parse_iso", "printable", "record_to_dict",
]

#: Where a ledger lives: a SQLite file's path, or a ``postgresql://`` URL.
LedgerTarget = str | os.PathLike[str]

# JSON leaves NEL and the Unicode line/paragraph separators raw; tools that split lines on them
# (Python's str.splitlines among them) would cut a row in two, so the export escapes them too
#: Audits (and bags) per multi-row INSERT: one statement, one round trip to a server, for a whole
#: batch of the usual size. 12 values each stays well under the parameters a statement may carry
#: (32,766 in SQLite since 3.32, and the ledger needs 3.35 for RETURNING; 65,535 in PostgreSQL).
_ROWS_PER_INSERT = 1000

_AUDIT_COLUMNS = "uuid, bag_id, tier, started, ended, bytes, files, outcome, algorithm, tool_version, host, object_version"
_AUDIT_MARKS = ",".join("?" * 12)
#: What :meth:`Ledger.bag_states` reads of ``b`` (bags), in :class:`BagState`'s order.
_STATE_COLUMNS = ("b.id, b.identifier, b.location, b.payload_bytes, b.payload_files, b.first_seen, b.audits_count, "
                  "b.last_audit, b.last_outcome, b.last_tier, b.last_audit_id, b.last_full, b.audits_since_full")

_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def ledger_target(value: LedgerTarget | None) -> Path | str:
    """What ``--ledger VALUE`` names: a PostgreSQL URL (str) or a SQLite file (Path).

    None is the default SQLite file. A value with any other URL scheme is a
    :class:`~preserve.errors.UsageError` (exit 2), never a relative path.
    """
    if value is None:
        return default_ledger_path()
    if isinstance(value, Path):
        return value
    text = os.fspath(value)
    scheme = url_scheme(text)
    if scheme is None:
        return Path(text)
    if scheme in POSTGRES_SCHEMES:
        from preserve.audit.ledger_pg import check_postgres_url

        return check_postgres_url(text)
    raise UsageError(f"--ledger {scheme}://...: unknown ledger scheme {scheme!r}; give a file path for a "
                     "SQLite ledger or postgresql://user@host:5432/dbname for a PostgreSQL one")


def ledger_exists(path: LedgerTarget | None = None) -> bool:
    """Whether a ledger is there already (the file; the tables in the database), creating nothing."""
    target = ledger_target(path)
    if isinstance(target, Path):
        return target.exists()
    from preserve.audit.ledger_pg import database_has_ledger

    return database_has_ledger(target)


def open_ledger(path: LedgerTarget | None = None, *, create: bool = True,
                allow_network_fs: bool = False) -> Ledger:
    """The ledger at ``path`` (a file, a ``postgresql://`` URL; None: :func:`default_ledger_path`).

    ``create``: a ledger that does not exist yet is made (a new SQLite file appears atomically;
    an empty PostgreSQL database gets the tables); without it a missing ledger is a
    :class:`~preserve.errors.LedgerError`. An existing file or database that is not a ledger is
    always refused (exit 7) and left as it is; a full disk is a
    :class:`~preserve.errors.StorageError` (exit 5).
    """
    return Ledger(path, create=create, allow_network_fs=allow_network_fs)


class Ledger(LedgerReads, LedgerCompact):
    """An open ledger. Use as a context manager, or call :meth:`close`.

    ``path``: a SQLite file, or a ``postgresql://`` URL (see :func:`ledger_target`).
    ``allow_network_fs`` (SQLite): on a network file system, use a rollback journal instead of
    refusing (``journal_mode`` then says ``delete`` and ``warnings`` explains why).
    """

    def __init__(self, path: LedgerTarget | None = None, *, create: bool = True,
                 allow_network_fs: bool = False, mounts: str | None = None) -> None:
        target = ledger_target(path)
        self._lock = threading.RLock()
        self._backend: Backend
        #: outcomes kept on local disk during this run because the server was gone
        self.pending = 0
        self._retry_at = 0.0
        if isinstance(target, str):
            self._backend = PgBackend(target, create=create)
        else:
            self._backend = SqliteBackend(target, create=create, allow_network_fs=allow_network_fs, mounts=mounts)
        #: the SQLite file, or the PostgreSQL URL as it may be shown
        self.path: Path | str = target if isinstance(target, Path) else self._backend.name
        self.warnings: list[str] = self._backend.warnings
        self.journal_mode: str = self._backend.journal_mode
        #: where outcomes wait when the server goes away (PostgreSQL ledgers)
        self.queue: Path | None = queue_path(self._backend.name) if isinstance(self._backend, PgBackend) else None
        #: outcomes from an earlier run's queue written when this ledger was opened
        self.flushed = 0
        if self.queue is not None:
            written = self.flushed = self.flush_queue()
            if written:
                self.warnings.append(f"{self.name}: wrote {written} audit outcome(s) kept on local disk while the server was away")

    def flush_queue(self) -> int:
        """Write the outcomes queued on local disk while the server was away; returns how many."""
        if self.queue is None:
            return 0
        return drain(self.queue, lambda audit: self._record(AuditRecord(
            **{**audit, "findings": [FindingRecord(**f) for f in audit["findings"]]})))

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.kind

    @property
    def name(self) -> str:
        """How the ledger is named in messages (a path, or a URL without any password)."""
        return self._backend.name

    # -- plumbing -----------------------------------------------------------------------------

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._backend.close()

    @property
    def schema_version(self) -> int:
        """The schema version the ledger records (``PRAGMA user_version``, ``preserve_schema``)."""
        return self._backend.schema_version()

    def _write(self) -> Any:
        return self._backend.write()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._backend.query(sql, params)

    # -- bags -----------------------------------------------------------------------------------

    def ensure_bag(self, location: str, identifier: str, payload_bytes: int | None = None,
                   payload_files: int | None = None) -> int:
        """The id of the bag at ``location``, registering it (first seen now) when new."""
        with self._write() as db:
            return self._ensure_bag(db, location, identifier, payload_bytes, payload_files)

    def ensure_bags(self, bags: list[tuple[str, str | None, int | None, int | None]]) -> list[int]:
        """:meth:`ensure_bag` for many ``(location, identifier, payload_bytes, payload_files)`` in one transaction."""
        with self._write() as db:
            return [self._ensure_bag(db, *bag) for bag in bags]

    @staticmethod
    def _ensure_bag(db: Connection, location: str, identifier: str | None, payload_bytes: int | None,
                    payload_files: int | None) -> int:
        stamp = now_iso()
        if identifier is None:  # keep the identifier an audit recorded; a new bag gets its folder name
            known = db.execute("SELECT identifier FROM bags WHERE location = ?", (location,)).fetchone()
            identifier = str(known[0]) if known else Path(location.rstrip("/")).name
        row = db.execute(
            "INSERT INTO bags (identifier, location, payload_bytes, payload_files, first_seen, last_seen) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(location) DO UPDATE SET identifier=excluded.identifier, "
            "payload_bytes=coalesce(excluded.payload_bytes, bags.payload_bytes), "
            "payload_files=coalesce(excluded.payload_files, bags.payload_files), last_seen=excluded.last_seen "
            "RETURNING id", (identifier, location, payload_bytes, payload_files, stamp, stamp)).fetchone()
        return int(row[0])

    def _lock_bags(self, db: Connection, records: list[AuditRecord]) -> dict[str, tuple[int, AuditRecord]]:
        """Register the bags of ``records`` that are new and lock every one's row until the
        transaction ends; returns, per location, the bag's id and its latest record (what the bag
        is now)."""
        # The rows are locked, not updated (PostgreSQL: FOR UPDATE; SQLite's write transaction holds
        # the whole file): keep_summaries then writes each bag's identifier, payload, last seen and
        # audit summary in one update, one new row version per bag and batch. They are locked in
        # location order, so two writers of overlapping batches never wait for each other in a
        # circle (a deadlock the server would end by failing one).
        last = dict(sorted({r.location: r for r in records}.items()))
        stamp = now_iso()
        new = [(r.identifier if r.identifier is not None else Path(loc.rstrip("/")).name, loc, r.payload_bytes,
                r.payload_files, stamp, stamp) for loc, r in last.items()]
        for start in range(0, len(new), _ROWS_PER_INSERT):
            chunk = new[start:start + _ROWS_PER_INSERT]
            db.execute("INSERT INTO bags (identifier, location, payload_bytes, payload_files, first_seen, last_seen) VALUES "
                       + ",".join(["(?,?,?,?,?,?)"] * len(chunk)) + " ON CONFLICT (location) DO NOTHING",
                       [v for row in chunk for v in row])
        locations = list(last)
        out: dict[str, tuple[int, AuditRecord]] = {}
        for start in range(0, len(locations), _ROWS_PER_INSERT):
            wanted = locations[start:start + _ROWS_PER_INSERT]
            for row in db.execute(f"SELECT id, location FROM bags WHERE location IN ({','.join('?' * len(wanted))}) "
                                  f"ORDER BY location{self._backend.row_lock}", wanted).fetchall():
                out[str(row[1])] = (int(row[0]), last[str(row[1])])
        return out

    def find_bags(self, ref: str) -> list[BagState]:
        """Bags whose location is ``ref`` (a path is made absolute) or whose identifier is ``ref``."""
        location = str(Path(ref).resolve()) if "://" not in ref else ref
        return self.bag_states(where=("b.location IN (?, ?) OR b.identifier = ?", (location, ref, ref)))

    def bag_states(self, *, where: tuple[str, tuple[Any, ...]] | None = None, limit: int | None = None) -> list[BagState]:
        """Every bag with its audit summary, least recently audited first (never audited first).

        The summary is kept on each bag row (schema version 5), so this reads ``bags`` alone, in
        the order of its ``last_audit`` index: the first ``limit`` bags cost that many rows.
        ``where``: an SQL condition on ``b`` (bags) and its parameters, to read only some bags.
        ``limit``: only the first that many (the bags an audit within a budget reaches first).
        """
        cond, params = where if where is not None else ("1 = 1", ())
        rows = self._query(f"SELECT {_STATE_COLUMNS} FROM bags b WHERE {cond} "
                           "ORDER BY b.last_audit NULLS FIRST, b.location"
                           + ("" if limit is None else f" LIMIT {int(limit)}"), params)
        return [BagState(*(r[i] for i in range(13))) for r in rows]

    # -- audits ---------------------------------------------------------------------------------

    def record_audit(self, record: AuditRecord) -> int:
        """Store one bag's audit and its findings in one transaction; returns the audit id.

        Recording the same audit (its UUID) again keeps it once. When a PostgreSQL server has
        gone away, the outcome is queued on local disk instead (:mod:`preserve.audit.ledger_queue`),
        :attr:`pending` counts it, and 0 is returned; each later record first tries the server again
        (at most every few seconds).
        """
        if record.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {record.outcome!r}")
        backend = self._backend
        if not isinstance(backend, PgBackend) or self.queue is None:
            return self._record(record)
        if backend.gone() and (time.monotonic() < self._retry_at or not backend.reconnect()):
            self._retry_at = time.monotonic() + 5.0
            return self._queue_record(record)
        try:
            return self._record(record)
        except LedgerError:
            if not backend.gone():
                raise
            self._retry_at = time.monotonic() + 5.0
            return self._queue_record(record)

    def record_audits(self, records: list[AuditRecord]) -> list[int]:
        """Store many audits and their findings in one transaction; returns their ids, in order.

        The set-based form of :meth:`record_audit` for writers with many outcomes at once: each
        bag is registered once, the audits go in as multi-row inserts keyed by UUID (an audit
        recorded before is kept once, as with :meth:`record_audit`), findings in one batch. When
        a PostgreSQL server has gone away the whole batch is queued on local disk (ids 0).
        """
        for record in records:
            if record.outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {record.outcome!r}")
        backend = self._backend
        if not records:
            return []
        if not isinstance(backend, PgBackend) or self.queue is None:
            return self._record_many(records)
        if backend.gone() and (time.monotonic() < self._retry_at or not backend.reconnect()):
            self._retry_at = time.monotonic() + 5.0
            return [self._queue_record(r) for r in records]
        try:
            return self._record_many(records)
        except LedgerError:
            if not backend.gone():
                raise
            self._retry_at = time.monotonic() + 5.0
            return [self._queue_record(r) for r in records]

    def _record_many(self, records: list[AuditRecord]) -> list[int]:
        stamp = now_iso()
        with self._write() as db:
            bags = self._lock_bags(db, records)
            bag_ids = {loc: bag_id for loc, (bag_id, _) in bags.items()}
            fresh: dict[str, int] = {}
            for start in range(0, len(records), _ROWS_PER_INSERT):
                chunk = records[start:start + _ROWS_PER_INSERT]
                cur = db.execute(
                    f"INSERT INTO audits ({_AUDIT_COLUMNS}) VALUES " + ",".join([f"({_AUDIT_MARKS})"] * len(chunk))
                    + " ON CONFLICT (uuid) DO NOTHING RETURNING id, uuid",
                    [v for r in chunk for v in _audit_values(r, bag_ids[r.location])])
                fresh.update({str(row[1]): int(row[0]) for row in cur.fetchall()})
            known = [r.uuid for r in records if r.uuid not in fresh]
            # audits recorded before (a retry, a queued batch written again) keep their id and findings
            old: dict[str, int] = {}
            for start in range(0, len(known), _ROWS_PER_INSERT):
                uuids = known[start:start + _ROWS_PER_INSERT]
                old.update({str(row[1]): int(row[0]) for row in db.execute(
                    f"SELECT id, uuid FROM audits WHERE uuid IN ({','.join('?' * len(uuids))})", uuids).fetchall()})
            # one audit sent twice in the same batch is stored once, with the findings of the first
            firsts = list({r.uuid: r for r in reversed(records) if r.uuid in fresh}.values())
            db.executemany(
                "INSERT INTO findings (audit_id, file, kind, code, expected, found, message) VALUES (?,?,?,?,?,?,?)",
                [(fresh[r.uuid], printable(f.file), f.kind, f.code, f.expected, f.found, printable(f.message))
                 for r in reversed(firsts) for f in r.findings])
            for r in reversed(firsts):
                self._remember_structure(db, bag_ids[r.location], r)
            keep_summaries(db, list(bags.values()), [(bag_ids[r.location], fresh[r.uuid], r) for r in firsts], stamp)
        ids = [fresh.get(r.uuid) or old[r.uuid] for r in records]
        for r, audit_id in zip(records, ids, strict=True):
            r.id = audit_id
        return ids

    def _queue_record(self, record: AuditRecord) -> int:
        assert self.queue is not None
        enqueue(self.queue, self.name, record)
        self.pending += 1
        return 0

    def _record(self, record: AuditRecord) -> int:
        stamp = now_iso()
        with self._write() as db:
            [bag] = self._lock_bags(db, [record]).values()
            bag_id = bag[0]
            row = db.execute(
                f"INSERT INTO audits ({_AUDIT_COLUMNS}) VALUES ({_AUDIT_MARKS}) ON CONFLICT (uuid) DO NOTHING RETURNING id",
                _audit_values(record, bag_id)).fetchone()
            if row is None:
                # this audit (its UUID) is already recorded: a retry, a queued outcome written
                # again, two workers sending one result; it is kept once, findings included
                record.id = int(db.execute("SELECT id FROM audits WHERE uuid = ?", (record.uuid,)).fetchone()[0])
                keep_summaries(db, [bag], [], stamp)
                return record.id
            audit_id = int(row[0])
            db.executemany(
                "INSERT INTO findings (audit_id, file, kind, code, expected, found, message) VALUES (?,?,?,?,?,?,?)",
                [(audit_id, printable(f.file), f.kind, f.code, f.expected, f.found, printable(f.message)) for f in record.findings])
            self._remember_structure(db, bag_id, record)
            keep_summaries(db, [bag], [(bag_id, audit_id, record)], stamp)
        record.id = audit_id
        return audit_id

    @staticmethod
    def _remember_structure(db: Connection, bag_id: int, record: AuditRecord) -> None:
        """At a bag's first audit that looked, keep its tag files and empty folders: what later
        audits compare against. Later audits add nothing, so a loss is never taken as the norm."""
        if record.tag_files is None:
            return
        if db.execute("SELECT 1 FROM tag_files WHERE bag_id = ? LIMIT 1", (bag_id,)).fetchone():
            return
        rows = [(bag_id, printable(p), "file", record.ended) for p in record.tag_files]
        rows += [(bag_id, printable(p), "empty-dir", record.ended) for p in record.empty_dirs or ()]
        db.executemany("INSERT INTO tag_files (bag_id, path, kind, first_seen) VALUES (?,?,?,?) "
                       "ON CONFLICT (bag_id, path, kind) DO NOTHING", rows)

    def structure_counts(self) -> tuple[int, int, int]:
        """(bags with remembered structure, tag files, empty folders) for ``ledger info``."""
        r = self._query("SELECT count(DISTINCT bag_id), coalesce(sum(CASE WHEN kind = 'file' THEN 1 ELSE 0 END), 0), "
                        "coalesce(sum(CASE WHEN kind = 'empty-dir' THEN 1 ELSE 0 END), 0) FROM tag_files")[0]
        return int(r[0]), int(r[1]), int(r[2])

    def audits_for(self, bag_id: int) -> list[AuditRecord]:
        """Every audit of one bag, oldest first, with its findings."""
        rows = self._query("SELECT a.*, b.location, b.identifier FROM audits a JOIN bags b ON b.id = a.bag_id "
                           "WHERE a.bag_id = ? ORDER BY a.id", (bag_id,))
        return [self._audit(r) for r in rows]

    def audit(self, audit_id: int) -> AuditRecord:
        """One audit by id, with its findings."""
        rows = self._query("SELECT a.*, b.location, b.identifier FROM audits a JOIN bags b ON b.id = a.bag_id "
                           "WHERE a.id = ?", (audit_id,))
        if not rows:
            raise LedgerError(path=str(self.path), reason=f"no audit with id {audit_id}")
        return self._audit(rows[0])

    def _audit(self, r: Any) -> AuditRecord:
        findings = [FindingRecord(file=f["file"], kind=f["kind"], message=f["message"], code=f["code"],
                                  expected=f["expected"], found=f["found"])
                    for f in self._query("SELECT * FROM findings WHERE audit_id = ? ORDER BY id", (r["id"],))]
        return AuditRecord(location=r["location"], identifier=r["identifier"], tier=r["tier"], started=r["started"],
                           ended=r["ended"], bytes=r["bytes"], files=r["files"], outcome=r["outcome"],
                           algorithm=r["algorithm"], tool_version=r["tool_version"], host=r["host"],
                           findings=findings, uuid=r["uuid"], id=r["id"], version=r["object_version"])

    # -- replicas and repairs (written by the replication engine) --------------------------------

    def record_replica(self, bag: str, target: str, *, location: str, started: str, ended: str,
                       objects: int, bytes: int, outcome: str, identifier: str | None = None,
                       site: str | None = None, detail: dict[str, Any] | None = None) -> int:
        """Record one replication of the bag at local path/URL ``bag`` to ``target``; returns its id.

        ``target`` names the store (``s3://bucket/prefix`` or a path); ``location`` is where this
        bag's copy lives there; ``site`` a human name for the place (for NDSA geographic counts);
        ``outcome`` e.g. ``pass`` / ``fail``; ``detail`` any JSON (multipart part sizes, digests).
        """
        loc = _bag_location(bag)
        with self._write() as db:
            bag_id = self._ensure_bag(db, loc, identifier, None, None)
            cur = db.execute(
                "INSERT INTO replicas (uuid, bag_id, target, location, site, started, ended, objects, bytes, outcome, detail) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (str(uuid.uuid4()), bag_id, target, location, site, started, ended, objects, bytes, outcome,
                 json.dumps(detail or {}, sort_keys=True)))
            return int(cur.fetchone()[0])

    def replicas_for(self, bag: str) -> list[ReplicaRecord]:
        """Every replica recorded for a bag (location or identifier), oldest first."""
        ids = [s.id for s in self.find_bags(bag)]
        rows = self._query(f"SELECT * FROM replicas WHERE bag_id IN ({','.join('?' * len(ids))}) ORDER BY id", tuple(ids)) if ids else []
        return [ReplicaRecord(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]

    def record_repair(self, bag: str, file: str, source_target: str, *, outcome: str,
                      time: str | None = None, identifier: str | None = None,
                      detail: dict[str, Any] | None = None) -> int:
        """Record that ``file`` (bag-relative, ``data/...``) of ``bag`` was restored from ``source_target``."""
        loc = _bag_location(bag)
        with self._write() as db:
            bag_id = self._ensure_bag(db, loc, identifier, None, None)
            cur = db.execute(
                "INSERT INTO repairs (uuid, bag_id, file, source_target, time, outcome, detail) VALUES (?,?,?,?,?,?,?) RETURNING id",
                (str(uuid.uuid4()), bag_id, file, source_target, time or now_iso(), outcome,
                 json.dumps(detail or {}, sort_keys=True)))
            return int(cur.fetchone()[0])

    def repairs_for(self, bag: str) -> list[RepairRecord]:
        """Every repair recorded for a bag (location or identifier), oldest first."""
        ids = [s.id for s in self.find_bags(bag)]
        rows = self._query(f"SELECT * FROM repairs WHERE bag_id IN ({','.join('?' * len(ids))}) ORDER BY id", tuple(ids)) if ids else []
        return [RepairRecord(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]

    # -- keeping the evidence -------------------------------------------------------------------

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Copy a SQLite ledger to a new file ``dest`` with SQLite's online backup (safe while audits run).

        The copy is one consistent snapshot, checked with ``PRAGMA integrity_check`` and switched to
        a rollback journal so that it is a single self-contained file. A PostgreSQL ledger is backed
        up with the server's own tools (``pg_dump``), or copied to a SQLite file with
        ``preserve ledger migrate``.
        """
        if not isinstance(self._backend, SqliteBackend):
            raise LedgerError(path=self.name, reason=(
                "preserve ledger backup copies SQLite ledgers; back up a PostgreSQL ledger with pg_dump, "
                "or copy it into a SQLite file with preserve ledger migrate"))
        return self._backend.backup(dest)

    def export_jsonl(self, out: TextIO) -> int:
        """Write every row of every table (:data:`TABLES`) as JSON lines (``{"table": ..., ...columns}``); returns rows.

        A damaged ledger stops the export with a :class:`~preserve.errors.LedgerError` naming the
        SQLite error (the rows before it have been written).
        """
        count = 0
        try:
            with self._lock, self._backend.snapshot() as db:  # one read snapshot for the whole export
                for table in TABLES:
                    cur = db.execute(f"SELECT * FROM {table} ORDER BY id")
                    while rows := cur.fetchmany(1000):
                        for r in rows:
                            row = dict(r)
                            if "detail" in row:
                                row["detail"] = json.loads(row["detail"])
                            line = json.dumps({"table": table, **row}, ensure_ascii=False, sort_keys=True)
                            out.write(line.translate(_LINE_BREAKS) + "\n")
                            count += 1
        except self._backend.errors as exc:
            raise self._backend.failure(exc, f"the export stopped after {count} row(s): the ledger is damaged") from exc
        return count

    # -- whole tables (ledger migrate) ----------------------------------------------------------

    def table_rows(self, table: str, *, after: int = 0, upto: int | None = None, limit: int = 2000) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of ``table`` (one of :data:`TABLES`) with ids above ``after`` (and
        at most ``upto``), in id order, as plain dicts."""
        if table not in TABLES:
            raise ValueError(f"not a ledger table: {table}")
        sql = f"SELECT * FROM {table} WHERE id > ?" + (" AND id <= ?" if upto is not None else "") + f" ORDER BY id LIMIT {int(limit)}"
        return [dict(r) for r in self._query(sql, (after, upto) if upto is not None else (after,))]

    def refresh_months(self) -> None:
        """Set the audits per month (``audit_months``) again from every audit: after rows were
        copied in with :meth:`insert_rows`, which keeps no running figures of its own."""
        with self._write() as db:
            for statement in MONTHS_REFRESH:
                db.execute(statement)

    def max_id(self, table: str) -> int:
        """The largest id in ``table`` (0 when empty)."""
        if table not in TABLES:
            raise ValueError(f"not a ledger table: {table}")
        return int(self._query(f"SELECT coalesce(max(id), 0) FROM {table}")[0][0])

    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows with their ids in one transaction; a row whose id is there already is skipped.

        The rows go in as they are: a bag keeps the audit summary it was copied with, and the
        audits per month are set afterwards by :meth:`refresh_months`."""
        if table not in TABLES:
            raise ValueError(f"not a ledger table: {table}")
        if not rows:
            return
        columns = list(rows[0])
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
               "ON CONFLICT (id) DO NOTHING")
        with self._write() as db:
            db.executemany(sql, [tuple(r[c] for c in columns) for r in rows])
        self._backend.reset_ids(table)

    # -- replication: reads for the copies/NDSA report section (added by the replication engine) --

    def all_replicas(self) -> list[ReplicaRecord]:
        """Every replica of every bag, oldest first (one query, for reports over many bags)."""
        rows = self._query("SELECT * FROM replicas ORDER BY id")
        return [ReplicaRecord(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]


def _audit_values(r: AuditRecord, bag_id: int) -> tuple[Any, ...]:
    return (r.uuid, bag_id, r.tier, r.started, r.ended, r.bytes, r.files, r.outcome, r.algorithm, r.tool_version,
            r.host, r.version)


def printable(text: str) -> str:
    """``text`` storable as UTF-8: bytes of a non-UTF-8 file name (surrogate escapes) become ``\\xNN``."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _bag_location(bag: str | os.PathLike[str]) -> str:
    text = os.fspath(bag)
    return text if "://" in text else str(Path(text).resolve())


def record_to_dict(record: AuditRecord) -> dict[str, Any]:
    """An audit as plain JSON-ready data."""
    return asdict(record)

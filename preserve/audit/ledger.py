"""The audit ledger: decades of fixity evidence in one SQLite file.

Tables (schema version in ``PRAGMA user_version``, migrated forward by :data:`MIGRATIONS`):

``bags``      one row per bag location: identifier (External-Identifier or folder name), location
              (absolute path or URL), payload bytes and files, first and last seen.
``audits``    one row per audit of one bag: tier, start, end, bytes and files read, outcome
              (``pass`` | ``fail`` | ``pending``: a replica waiting for an archive-class restore,
              neither verified nor failed), algorithm(s), tool version, host, a UUID (PREMIS event id).
``findings``  what a failed audit found, one row per file: kind (``missing`` | ``altered`` |
              ``unlisted`` | ``unreadable`` | ``oxum`` | ``invalid``), expected, found, message.
``replicas``  one row per replication of a bag to a target (written by the replication engine).
``repairs``   one row per file restored from a replica (written by the replication engine).
``tag_files`` what a bag held outside its payload when it was first audited: every tag file
              (``kind`` ``file``: bagit.txt, manifests, metadata/...) and every empty folder listed in
              metadata/empty-directories.txt (``empty-dir``). Audits report any that disappear.

Opening: only a path that does not exist becomes a new ledger, and it appears there whole: the
schema is built in a temporary file beside it (listed in a :mod:`preserve.staging` journal, so a
killed creation is cleaned up by the next) and linked into place without replacing anything. An
existing file that is not a ledger (0 bytes, garbage, another program's database) is refused,
never re-initialized: a ledger truncated by accident must not silently become an empty one.

Concurrency: WAL journal, ``busy_timeout``, and every write in a ``BEGIN IMMEDIATE`` transaction,
so two audits can share a ledger: one writer at a time, readers never blocked. WAL needs shared
memory that network file systems do not provide, so a ledger on NFS/SMB/sshfs is refused unless
the caller allows a rollback journal there (then only one process should use it at a time).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import secrets
import socket
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from preserve.errors import DestinationExists, LedgerError, PreserveError, StorageError
from preserve.staging import journaled

#: Finding kinds stored in the ledger. ``invalid`` covers structural problems (a broken manifest
#: line, bagit.txt errors) that are not about one payload file's content.
KINDS = ("missing", "altered", "unlisted", "unreadable", "oxum", "invalid")

#: File system types where WAL's shared-memory index is unsafe (seen in /proc/mounts).
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "9p", "afs", "coda", "ceph",
    "glusterfs", "lustre", "gpfs", "davfs", "fuse.sshfs", "sshfs", "fuse.s3fs", "fuse.rclone",
    "fuse.glusterfs", "fuse.cephfs", "fuse.gcsfuse", "fuse.goofys", "fuse.davfs2", "fuse.smbnetfs",
})

BUSY_TIMEOUT_S = 60.0

# JSON leaves NEL and the Unicode line/paragraph separators raw; tools that split lines on them
# (Python's str.splitlines among them) would cut a row in two, so the export escapes them too
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}

_V1 = """
CREATE TABLE bags (
    id            INTEGER PRIMARY KEY,
    identifier    TEXT NOT NULL,
    location      TEXT NOT NULL UNIQUE,
    payload_bytes INTEGER,
    payload_files INTEGER,
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL
);
CREATE INDEX bags_identifier ON bags(identifier);
CREATE TABLE audits (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT NOT NULL UNIQUE,
    bag_id        INTEGER NOT NULL REFERENCES bags(id),
    tier          TEXT NOT NULL,
    started       TEXT NOT NULL,
    ended         TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    files         INTEGER NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('pass', 'fail')),
    algorithm     TEXT NOT NULL,
    tool_version  TEXT NOT NULL,
    host          TEXT NOT NULL
);
CREATE INDEX audits_bag ON audits(bag_id, id);
CREATE TABLE findings (
    id        INTEGER PRIMARY KEY,
    audit_id  INTEGER NOT NULL REFERENCES audits(id),
    file      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('missing', 'altered', 'unlisted', 'unreadable', 'oxum', 'invalid')),
    code      TEXT NOT NULL,
    expected  TEXT,
    found     TEXT,
    message   TEXT NOT NULL
);
CREATE INDEX findings_audit ON findings(audit_id);
CREATE TABLE replicas (
    id        INTEGER PRIMARY KEY,
    uuid      TEXT NOT NULL UNIQUE,
    bag_id    INTEGER NOT NULL REFERENCES bags(id),
    target    TEXT NOT NULL,
    location  TEXT NOT NULL,
    site      TEXT,
    started   TEXT NOT NULL,
    ended     TEXT NOT NULL,
    objects   INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX replicas_bag ON replicas(bag_id, id);
CREATE TABLE repairs (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT NOT NULL UNIQUE,
    bag_id        INTEGER NOT NULL REFERENCES bags(id),
    file          TEXT NOT NULL,
    source_target TEXT NOT NULL,
    time          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX repairs_bag ON repairs(bag_id, id);
"""

# SQLite cannot change a CHECK constraint in place: the audits table is rebuilt (foreign keys
# are switched off around it by _migrate, as SQLite's documented table rebuild requires)
_V2 = """
CREATE TABLE audits_v2 (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT NOT NULL UNIQUE,
    bag_id        INTEGER NOT NULL REFERENCES bags(id),
    tier          TEXT NOT NULL,
    started       TEXT NOT NULL,
    ended         TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    files         INTEGER NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('pass', 'fail', 'pending')),
    algorithm     TEXT NOT NULL,
    tool_version  TEXT NOT NULL,
    host          TEXT NOT NULL
);
INSERT INTO audits_v2 (id, uuid, bag_id, tier, started, ended, bytes, files, outcome, algorithm, tool_version, host)
    SELECT id, uuid, bag_id, tier, started, ended, bytes, files, outcome, algorithm, tool_version, host FROM audits;
DROP TABLE audits;
ALTER TABLE audits_v2 RENAME TO audits;
CREATE INDEX audits_bag ON audits(bag_id, id);
"""

_V3 = """
CREATE TABLE tag_files (
    id          INTEGER PRIMARY KEY,
    bag_id      INTEGER NOT NULL REFERENCES bags(id),
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'empty-dir')),
    first_seen  TEXT NOT NULL,
    UNIQUE (bag_id, path, kind)
);
"""

#: Audit outcomes the ledger stores.
OUTCOMES = ("pass", "fail", "pending")

#: What a bag's ``tag_files`` rows remember: a tag file, or an empty folder of the payload.
STRUCTURE_KINDS = ("file", "empty-dir")

#: Every table, in the order ``ledger export`` writes them.
TABLES = ("bags", "audits", "findings", "replicas", "repairs", "tag_files")

#: ``MIGRATIONS[n]`` takes a ledger from schema version n to n + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def now_iso() -> str:
    """The current UTC time as the ledger stores it (ISO 8601, seconds, ``Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """A ledger timestamp back to an aware datetime."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def default_ledger_path() -> Path:
    """``<user data dir>/preserve/ledger.sqlite`` (platformdirs), e.g. ~/.local/share/preserve."""
    import platformdirs

    return platformdirs.user_data_path("preserve") / "ledger.sqlite"


def _unescape_mount(text: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystem_type(path: str | os.PathLike[str], mounts: str | None = None) -> str | None:
    """The file system type holding ``path`` per /proc/mounts (``mounts`` text for tests), or None."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = Path(os.path.abspath(path))
    tail: list[str] = []
    while not target.exists() and target != target.parent:
        tail.insert(0, target.name)
        target = target.parent
    # symlinks resolved in the part that exists; the part still to be created kept as given
    real = os.path.join(os.path.realpath(target), *tail)
    best: tuple[int, str] | None = None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = _unescape_mount(parts[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), parts[2])
    return best[1] if best else None


def is_network_fs(fstype: str | None) -> bool:
    """True for NFS, SMB/CIFS, sshfs and the other shared file systems in :data:`NETWORK_FS`."""
    return fstype is not None and (fstype in NETWORK_FS or fstype.split(".")[-1] in NETWORK_FS)


# SQLite's primary result codes that mean the storage, not the ledger, failed
_SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 13, 14
#: Free space below this counts as a full disk when SQLite reports an I/O error.
_FULL_BELOW = 256 * 1024


def _disk_full(exc: sqlite3.Error, path: Path) -> bool:
    """Whether an SQLite error comes from a full file system under ``path``.

    SQLite says "database or disk is full" for a full database file, but a full disk met while
    it creates or grows the WAL index is only "disk I/O error": then free space decides.
    """
    code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code == _SQLITE_FULL:
        return True
    # a damaged file ("database disk image is malformed", SQLITE_CORRUPT) is never called full
    return code in (_SQLITE_IOERR, _SQLITE_CANTOPEN) and _no_space(path)


def _no_space(path: Path) -> bool:
    """Whether the file system holding ``path`` is (all but) full."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _FULL_BELOW or st.f_favail == 0


def _full_disk_error(path: Path, detail: str) -> StorageError:
    return StorageError(path=str(path), reason=(
        f"the file system holding the ledger is full ({detail}); free space and run again: "
        "the ledger keeps every audit committed before this"))


def _sqlite_failure(exc: sqlite3.Error, path: Path, what: str) -> PreserveError:
    """The error for an SQLite failure: a full disk says so (exit 5), anything else is a ledger error (7)."""
    if _disk_full(exc, path):
        return _full_disk_error(path, f"SQLite: {exc}")
    return LedgerError(path=str(path), reason=f"{what} ({exc})")


def _os_failure(exc: OSError, path: Path, what: str) -> PreserveError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _full_disk_error(path, exc.strerror or "no space left")
    return LedgerError(path=str(path), reason=f"{what} ({exc.strerror or exc})")


def _check_file(path: Path) -> None:
    """Refuse, before SQLite touches it, an existing path that cannot be a ledger."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_failure(exc, path, "cannot open the ledger") from exc
    if not stat.S_ISREG(st.st_mode):
        raise LedgerError(path=str(path), reason="not a usable preserve ledger (not a regular file); pass --ledger with the ledger's path")
    if st.st_size == 0:
        # SQLite would take a 0-byte file for a new, empty database and preserve would build a
        # fresh schema in it: years of audits gone without a word
        raise LedgerError(path=str(path), reason=(
            "not a usable preserve ledger (the file is empty, 0 bytes); it was left as it is: restore the ledger "
            "from a backup (preserve ledger backup makes one), or pass --ledger with another path; "
            "preserve never re-creates a ledger over an existing file"))


def _build(tmp: Path) -> None:
    """The current schema in the new file ``tmp``, made durable."""
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        # no journal: a build that fails is thrown away whole, never repaired
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("BEGIN")
        for step in MIGRATIONS:
            for statement in step.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    finally:
        db.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create(path: Path) -> list[str]:
    """Create a new ledger at ``path``, which did not exist; returns warnings for the user.

    The schema is built in a temporary file beside ``path``, listed in the destination's journal
    first, then hard-linked into place: the ledger appears whole or not at all, an existing file
    is never replaced (a concurrent creator's ledger wins), and the temporary file a killed
    creation leaves is removed by the next one.
    """
    try:
        with journaled(path, busy=f"{path}: another preserve run has been creating this ledger for too long",
                       wait=BUSY_TIMEOUT_S) as journal:
            notes = [f"{p}: removed, left by a ledger creation that was stopped" for p in journal.removed]
            if os.path.lexists(path):
                return notes  # created by another run while this one waited for the lock
            tmp = journal.record(path.with_name(f".{path.name}.preserve-new-{secrets.token_hex(4)}"))
            _build(tmp)
            with contextlib.suppress(FileExistsError):  # a creator that took no lock won: its ledger is used
                os.link(tmp, path)
            _fsync_dir(path.parent)
            return notes
    except sqlite3.Error as exc:
        raise _sqlite_failure(exc, path, "cannot create the ledger") from exc
    except OSError as exc:
        raise _os_failure(exc, path, "cannot create the ledger") from exc
    except StorageError as exc:  # the lock and journal beside it could not be written
        if _no_space(path):
            raise _full_disk_error(path, "no space left to create it") from exc
        raise


def open_ledger(path: str | os.PathLike[str] | None = None, *, create: bool = True,
                allow_network_fs: bool = False) -> Ledger:
    """The ledger at ``path`` (None: :func:`default_ledger_path`), as every command opens it.

    ``create``: a path that does not exist becomes a new, empty ledger (atomically); without it a
    missing ledger is a :class:`~preserve.errors.LedgerError`. An existing file that is not a
    ledger is always refused (exit 7) and left as it is; a full disk is a
    :class:`~preserve.errors.StorageError` (exit 5).
    """
    return Ledger(path, create=create, allow_network_fs=allow_network_fs)


@dataclass
class FindingRecord:
    """One problem an audit found with one file (or with the bag, ``file`` empty)."""

    file: str
    kind: str
    message: str
    code: str = ""
    expected: str | None = None
    found: str | None = None


@dataclass
class AuditRecord:
    """The outcome of auditing one bag, as the runner returns it and the ledger stores it."""

    location: str
    identifier: str
    tier: str
    started: str
    ended: str
    bytes: int
    files: int
    outcome: str
    algorithm: str
    tool_version: str
    payload_bytes: int | None = None
    payload_files: int | None = None
    host: str = field(default_factory=socket.gethostname)
    findings: list[FindingRecord] = field(default_factory=list)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    id: int | None = None
    #: the bag's tag files (bag-relative) as this audit found them, None when it could not look
    #: (the bag gone); the ledger remembers them at the bag's first audit
    tag_files: list[str] | None = None
    #: the empty folders metadata/empty-directories.txt listed at this audit (None: not looked)
    empty_dirs: list[str] | None = None


@dataclass(frozen=True)
class BagState:
    """A bag as the ledger knows it, with its audit summary (for planning and reports)."""

    id: int
    identifier: str
    location: str
    payload_bytes: int | None
    payload_files: int | None
    first_seen: str
    audits: int
    last_audit: str | None
    last_outcome: str | None
    last_tier: str | None
    last_audit_id: int | None
    last_full: str | None
    audits_since_full: int


@dataclass(frozen=True)
class ReplicaRecord:
    """One replication of a bag to a target (S3 bucket/prefix or a file system path)."""

    id: int
    uuid: str
    bag_id: int
    target: str
    location: str
    site: str | None
    started: str
    ended: str
    objects: int
    bytes: int
    outcome: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class RepairRecord:
    """One file of a bag restored from a replica."""

    id: int
    uuid: str
    bag_id: int
    file: str
    source_target: str
    time: str
    outcome: str
    detail: dict[str, Any]


class Ledger:
    """An open ledger. Use as a context manager, or call :meth:`close`.

    ``allow_network_fs``: on a network file system, use a rollback journal instead of refusing
    (``journal_mode`` then says ``delete`` and ``warnings`` explains why).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True,
                 allow_network_fs: bool = False, mounts: str | None = None) -> None:
        self.path = Path(path) if path is not None else default_ledger_path()
        self.warnings: list[str] = []
        self._lock = threading.RLock()
        exists = os.path.lexists(self.path)
        if not exists:
            if not create:
                raise LedgerError(path=str(self.path), reason="no ledger here; run preserve audit first or pass --ledger PATH")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _os_failure(exc, self.path.parent, "cannot create the ledger folder") from exc
        fstype = filesystem_type(self.path, mounts)
        network = is_network_fs(fstype)
        if network and not allow_network_fs:
            raise LedgerError(path=str(self.path), reason=(
                f"the ledger is on a network file system ({fstype}), where SQLite's WAL journal is not safe; "
                "keep the ledger on a local disk (and back it up with preserve ledger backup), or pass "
                "--ledger-on-network-fs to use a rollback journal there and run one audit at a time"))
        if not exists:
            self.warnings.extend(_create(self.path))
        else:
            _check_file(self.path)
        try:
            # mode=rw: SQLite never creates the file here; a ledger removed since it was checked
            # is an error, not a new empty file at its path
            uri = Path(os.path.abspath(self.path)).as_uri() + "?mode=rw"
            self._db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._failure(exc, "cannot open the ledger") from exc
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            # what the file is, asked before anything could write to it: nothing below may turn a
            # file that is not a ledger into an empty one
            self._check_schema()
            self._db.execute("PRAGMA foreign_keys=ON")
            wanted = "delete" if network else "wal"
            mode = str(self._db.execute(f"PRAGMA journal_mode={wanted}").fetchone()[0]).lower()
            self._db.execute("PRAGMA synchronous=FULL")  # evidence: a committed audit survives power loss
            self.journal_mode = mode
            if network:
                self.warnings.append(
                    f"{self.path}: on a network file system ({fstype}); using a rollback journal instead of WAL: "
                    "run one audit at a time against this ledger")
            elif mode != "wal":
                self.warnings.append(f"{self.path}: SQLite refused WAL here (journal mode {mode}); audits will wait for each other")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._failure(exc, "not a usable preserve ledger") from exc
        except BaseException:
            self._db.close()
            raise

    def _check_schema(self) -> None:
        """Refuse an SQLite file that preserve did not make a ledger (``user_version`` 0 or no
        ``audits`` table): migrating it from version 0 would re-initialize it."""
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        tables = {str(r[0]) for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 or not {"bags", "audits", "findings"} <= tables:
            what = "an empty SQLite database" if not tables else "an SQLite database of another program"
            raise LedgerError(path=str(self.path), reason=(
                f"not a usable preserve ledger ({what}, schema version {version}); it was left as it is: "
                "restore the ledger from a backup (preserve ledger backup makes one) or pass --ledger with another path"))

    def _failure(self, exc: sqlite3.Error, what: str) -> PreserveError:
        return _sqlite_failure(exc, self.path, what)

    # -- plumbing -----------------------------------------------------------------------------

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the file (``PRAGMA user_version``)."""
        return int(self._query("PRAGMA user_version")[0][0])

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front (no deadlock)."""
        with self._lock:
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise self._failure(exc, "cannot write") from exc
                    if time.monotonic() > deadline:
                        raise LedgerError(path=str(self.path), reason="another process has held the ledger's write lock for too long") from exc
                    time.sleep(0.05)
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise self._failure(exc, "write failed; nothing of it was kept") from exc
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._db.execute(sql, params))
            except sqlite3.Error as exc:
                raise self._failure(exc, "cannot read") from exc

    def _migrate(self) -> None:
        if self.schema_version == SCHEMA_VERSION:
            return
        # a table rebuild must not cascade or fail on foreign keys; the pragma only works outside
        # a transaction, and the keys are checked before the migration commits
        self._db.execute("PRAGMA foreign_keys=OFF")
        try:
            self._migrate_steps()
        finally:
            self._db.execute("PRAGMA foreign_keys=ON")

    def _migrate_steps(self) -> None:
        with self._write() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])  # re-read under the lock
            if version > SCHEMA_VERSION:
                raise LedgerError(path=str(self.path), reason=(
                    f"schema version {version} was written by a newer preserve (this one knows {SCHEMA_VERSION}); upgrade preserve"))
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={step + 1}")
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise LedgerError(path=str(self.path), reason=f"migration left {len(broken)} broken reference(s); nothing was changed")

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
    def _ensure_bag(db: sqlite3.Connection, location: str, identifier: str | None, payload_bytes: int | None,
                    payload_files: int | None) -> int:
        stamp = now_iso()
        if identifier is None:  # keep the identifier an audit recorded; a new bag gets its folder name
            known = db.execute("SELECT identifier FROM bags WHERE location = ?", (location,)).fetchone()
            identifier = str(known[0]) if known else Path(location.rstrip("/")).name
        row = db.execute(
            "INSERT INTO bags (identifier, location, payload_bytes, payload_files, first_seen, last_seen) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(location) DO UPDATE SET identifier=excluded.identifier, "
            "payload_bytes=coalesce(excluded.payload_bytes, payload_bytes), "
            "payload_files=coalesce(excluded.payload_files, payload_files), last_seen=excluded.last_seen "
            "RETURNING id", (identifier, location, payload_bytes, payload_files, stamp, stamp)).fetchone()
        return int(row[0])

    def find_bags(self, ref: str) -> list[BagState]:
        """Bags whose location is ``ref`` (a path is made absolute) or whose identifier is ``ref``."""
        location = str(Path(ref).resolve()) if "://" not in ref else ref
        return [s for s in self.bag_states() if s.location in (location, ref) or s.identifier == ref]

    def bag_states(self) -> list[BagState]:
        """Every bag with its audit summary, least recently audited first (never audited first)."""
        rows = self._query("""
            SELECT b.*, (SELECT count(*) FROM audits a WHERE a.bag_id = b.id) AS audits,
                   la.ended AS last_audit, la.outcome AS last_outcome, la.tier AS last_tier, la.id AS last_audit_id,
                   (SELECT max(f.ended) FROM audits f WHERE f.bag_id = b.id AND f.tier = 'full') AS last_full,
                   (SELECT count(*) FROM audits s WHERE s.bag_id = b.id AND s.id >
                        coalesce((SELECT max(f.id) FROM audits f WHERE f.bag_id = b.id AND f.tier = 'full'), 0)
                   ) AS audits_since_full
            FROM bags b LEFT JOIN audits la ON la.id = (SELECT max(id) FROM audits WHERE bag_id = b.id)
            ORDER BY la.ended IS NOT NULL, la.ended, b.location""")
        return [BagState(id=r["id"], identifier=r["identifier"], location=r["location"],
                         payload_bytes=r["payload_bytes"], payload_files=r["payload_files"],
                         first_seen=r["first_seen"], audits=r["audits"], last_audit=r["last_audit"],
                         last_outcome=r["last_outcome"], last_tier=r["last_tier"],
                         last_audit_id=r["last_audit_id"], last_full=r["last_full"],
                         audits_since_full=r["audits_since_full"]) for r in rows]

    # -- audits ---------------------------------------------------------------------------------

    def record_audit(self, record: AuditRecord) -> int:
        """Store one bag's audit and its findings in one transaction; returns the audit id."""
        if record.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {record.outcome!r}")
        with self._write() as db:
            bag_id = self._ensure_bag(db, record.location, record.identifier, record.payload_bytes, record.payload_files)
            cur = db.execute(
                "INSERT INTO audits (uuid, bag_id, tier, started, ended, bytes, files, outcome, algorithm, tool_version, host) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (record.uuid, bag_id, record.tier, record.started, record.ended, record.bytes, record.files,
                 record.outcome, record.algorithm, record.tool_version, record.host))
            audit_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO findings (audit_id, file, kind, code, expected, found, message) VALUES (?,?,?,?,?,?,?)",
                [(audit_id, printable(f.file), f.kind, f.code, f.expected, f.found, printable(f.message)) for f in record.findings])
            self._remember_structure(db, bag_id, record)
        record.id = audit_id
        return audit_id

    @staticmethod
    def _remember_structure(db: sqlite3.Connection, bag_id: int, record: AuditRecord) -> None:
        """At a bag's first audit that looked, keep its tag files and empty folders: what later
        audits compare against. Later audits add nothing, so a loss is never taken as the norm."""
        if record.tag_files is None:
            return
        if db.execute("SELECT 1 FROM tag_files WHERE bag_id = ? LIMIT 1", (bag_id,)).fetchone():
            return
        rows = [(bag_id, printable(p), "file", record.ended) for p in record.tag_files]
        rows += [(bag_id, printable(p), "empty-dir", record.ended) for p in record.empty_dirs or ()]
        db.executemany("INSERT OR IGNORE INTO tag_files (bag_id, path, kind, first_seen) VALUES (?,?,?,?)", rows)

    def remembered_structure(self) -> dict[str, list[tuple[str, str]]]:
        """Per bag location: the ``(path, kind)`` the ledger remembers (kind ``file`` for a tag file,
        ``empty-dir`` for an empty payload folder), from the bag's first audit that recorded them."""
        out: dict[str, list[tuple[str, str]]] = {}
        for r in self._query("SELECT b.location, t.path, t.kind FROM tag_files t JOIN bags b ON b.id = t.bag_id "
                             "ORDER BY b.location, t.kind, t.path"):
            out.setdefault(str(r[0]), []).append((str(r[1]), str(r[2])))
        return out

    def structure_counts(self) -> tuple[int, int, int]:
        """(bags with remembered structure, tag files, empty folders) for ``ledger info``."""
        r = self._query("SELECT count(DISTINCT bag_id), coalesce(sum(kind = 'file'), 0), "
                        "coalesce(sum(kind = 'empty-dir'), 0) FROM tag_files")[0]
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

    def _audit(self, r: sqlite3.Row) -> AuditRecord:
        findings = [FindingRecord(file=f["file"], kind=f["kind"], message=f["message"], code=f["code"],
                                  expected=f["expected"], found=f["found"])
                    for f in self._query("SELECT * FROM findings WHERE audit_id = ? ORDER BY id", (r["id"],))]
        return AuditRecord(location=r["location"], identifier=r["identifier"], tier=r["tier"], started=r["started"],
                           ended=r["ended"], bytes=r["bytes"], files=r["files"], outcome=r["outcome"],
                           algorithm=r["algorithm"], tool_version=r["tool_version"], host=r["host"],
                           findings=findings, uuid=r["uuid"], id=r["id"])

    def monthly(self, until: str | None = None) -> list[dict[str, Any]]:
        """Audits per month: ``{"month": "2026-11", "audits", "failed", "pending", "bytes"}``, oldest
        first, every month from the first audit to ``until`` (``YYYY-MM``, default this month)
        included: a month without audits is a zero, not a gap the charts would hide."""
        rows = {r["month"]: dict(r) for r in self._query(
            "SELECT substr(ended, 1, 7) AS month, count(*) AS audits, sum(outcome = 'fail') AS failed, "
            "sum(outcome = 'pending') AS pending, sum(bytes) AS bytes FROM audits GROUP BY month ORDER BY month")}
        if not rows:
            return []
        last = max(until or now_iso()[:7], max(rows))
        year, month = (int(x) for x in min(rows).split("-"))
        out = []
        while True:
            key = f"{year:04d}-{month:02d}"
            out.append(rows.get(key, {"month": key, "audits": 0, "failed": 0, "pending": 0, "bytes": 0}))
            if key >= last:
                return out
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def outcomes_by_bag(self) -> list[dict[str, Any]]:
        """Per bag: identifier, location, passed, failed and pending audit counts."""
        rows = self._query("SELECT b.identifier, b.location, sum(a.outcome = 'pass') AS passed, "
                           "sum(a.outcome = 'fail') AS failed, sum(a.outcome = 'pending') AS pending FROM bags b JOIN audits a ON a.bag_id = b.id "
                           "GROUP BY b.id ORDER BY b.identifier, b.location")
        return [dict(r) for r in rows]

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
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (str(uuid.uuid4()), bag_id, target, location, site, started, ended, objects, bytes, outcome,
                 json.dumps(detail or {}, sort_keys=True)))
            return int(cur.lastrowid or 0)

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
                "INSERT INTO repairs (uuid, bag_id, file, source_target, time, outcome, detail) VALUES (?,?,?,?,?,?,?)",
                (str(uuid.uuid4()), bag_id, file, source_target, time or now_iso(), outcome,
                 json.dumps(detail or {}, sort_keys=True)))
            return int(cur.lastrowid or 0)

    def repairs_for(self, bag: str) -> list[RepairRecord]:
        """Every repair recorded for a bag (location or identifier), oldest first."""
        ids = [s.id for s in self.find_bags(bag)]
        rows = self._query(f"SELECT * FROM repairs WHERE bag_id IN ({','.join('?' * len(ids))}) ORDER BY id", tuple(ids)) if ids else []
        return [RepairRecord(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]

    # -- keeping the evidence -------------------------------------------------------------------

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the ledger to a new file ``dest`` with SQLite's online backup (safe while audits run).

        The copy is one consistent snapshot, checked with ``PRAGMA integrity_check`` and switched to
        a rollback journal so that it is a single self-contained file.
        """
        target = Path(dest)
        if os.path.lexists(target):
            raise DestinationExists(path=str(target))
        folder = target.parent
        if not folder.is_dir():
            raise StorageError(path=str(target), reason=f"the folder {folder} does not exist; create it first (nothing was written)")
        partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            try:
                out = sqlite3.connect(partial, isolation_level=None)
                out.execute("BEGIN IMMEDIATE")  # creates the file: a folder we cannot write fails here
                out.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StorageError(path=str(target), reason=f"cannot write the backup in {folder} ({exc}); nothing was written") from exc
            try:
                with self._lock:
                    # pages=-1 copies everything from one read snapshot: writers carry on in WAL
                    self._db.backup(out, pages=-1)
                out.execute("PRAGMA journal_mode=DELETE")
                check = out.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise LedgerError(path=str(target), reason=f"the backup failed its integrity check ({check})")
            finally:
                out.close()
            if os.path.lexists(target):
                raise DestinationExists(path=str(target))
            os.rename(partial, target)
        except sqlite3.Error as exc:
            raise LedgerError(path=str(target), reason=f"backup failed ({exc})") from exc
        except OSError as exc:
            raise LedgerError(path=str(target), reason=f"backup failed ({exc.strerror or exc})") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
        return target

    def export_jsonl(self, out: TextIO) -> int:
        """Write every row of every table (:data:`TABLES`) as JSON lines (``{"table": ..., ...columns}``); returns rows.

        A damaged ledger stops the export with a :class:`~preserve.errors.LedgerError` naming the
        SQLite error (the rows before it have been written).
        """
        count = 0
        with self._lock:
            try:
                self._db.execute("BEGIN")  # one read snapshot for the whole export
                try:
                    for table in TABLES:
                        cur = self._db.execute(f"SELECT * FROM {table} ORDER BY id")
                        while rows := cur.fetchmany(1000):
                            for r in rows:
                                row = dict(r)
                                if "detail" in row:
                                    row["detail"] = json.loads(row["detail"])
                                line = json.dumps({"table": table, **row}, ensure_ascii=False, sort_keys=True)
                                out.write(line.translate(_LINE_BREAKS) + "\n")
                                count += 1
                finally:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failure(exc, f"the export stopped after {count} row(s): the ledger is damaged") from exc
        return count

    # -- replication: reads for the copies/NDSA report section (added by the replication engine) --

    def all_replicas(self) -> list[ReplicaRecord]:
        """Every replica of every bag, oldest first (one query, for reports over many bags)."""
        rows = self._query("SELECT * FROM replicas ORDER BY id")
        return [ReplicaRecord(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]


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

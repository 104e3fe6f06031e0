"""The SQLite ledger: decades of fixity evidence in one file on a local disk (the default).

Schema version in ``PRAGMA user_version``, migrated forward by :data:`MIGRATIONS`.

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
import errno
import os
import secrets
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from preserve.audit.ledger_base import (
    BUSY_TIMEOUT_S,
    MONTHS_REFRESH,
    SCHEMA_VERSION,
    Connection,
    summary_refresh,
)
from preserve.errors import DestinationExists, LedgerError, PreserveError, StorageError
from preserve.staging import journaled

#: File system types where WAL's shared-memory index is unsafe (seen in /proc/mounts).
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "9p", "afs", "coda", "ceph",
    "glusterfs", "lustre", "gpfs", "davfs", "fuse.sshfs", "sshfs", "fuse.s3fs", "fuse.rclone",
    "fuse.glusterfs", "fuse.cephfs", "fuse.gcsfuse", "fuse.goofys", "fuse.davfs2", "fuse.smbnetfs",
})


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

# what ``ledger compact`` removed, per bag and run: the PREMIS history says so afterwards
_V4 = """
CREATE TABLE compactions (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT NOT NULL UNIQUE,
    bag_id         INTEGER NOT NULL REFERENCES bags(id),
    time           TEXT NOT NULL,
    kept           TEXT NOT NULL,
    removed        INTEGER NOT NULL,
    first_removed  TEXT NOT NULL,
    last_removed   TEXT NOT NULL
);
CREATE INDEX compactions_bag ON compactions(bag_id, id);
"""

# each bag keeps its audit summary, and the audits per month are kept (see ledger_base); audits
# name the version of an object they read (an OCFL object's "v3"); the indexes come after the
# fill, which is then not slowed by maintaining them
_V5 = """
ALTER TABLE audits ADD COLUMN object_version TEXT;
ALTER TABLE bags ADD COLUMN audits_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bags ADD COLUMN last_audit_id INTEGER;
ALTER TABLE bags ADD COLUMN last_audit TEXT;
ALTER TABLE bags ADD COLUMN last_outcome TEXT;
ALTER TABLE bags ADD COLUMN last_tier TEXT;
ALTER TABLE bags ADD COLUMN last_full_id INTEGER;
ALTER TABLE bags ADD COLUMN last_full TEXT;
ALTER TABLE bags ADD COLUMN audits_since_full INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_months (
    month    TEXT PRIMARY KEY,
    audits   INTEGER NOT NULL,
    failed   INTEGER NOT NULL,
    pending  INTEGER NOT NULL,
    bytes    INTEGER NOT NULL
);
""" + ";\n".join((*summary_refresh(reset=False), *MONTHS_REFRESH)) + """;
CREATE INDEX bags_last_audit ON bags(last_audit, location);
CREATE INDEX bags_failing ON bags(last_audit, location) WHERE last_outcome = 'fail';
CREATE INDEX audits_unpassed ON audits(bag_id) WHERE outcome <> 'pass';
"""

#: ``MIGRATIONS[n]`` takes a ledger from schema version n to n + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
assert len(MIGRATIONS) == SCHEMA_VERSION


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



class SqliteBackend:
    """A ledger in one SQLite file (see the module docstring for how it is opened and shared).

    ``allow_network_fs``: on a network file system, use a rollback journal instead of refusing
    (``journal_mode`` then says ``delete`` and ``warnings`` explains why).
    """

    kind = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    # a write transaction (BEGIN IMMEDIATE) holds the whole file: no row lock to ask for
    row_lock = ""

    def __init__(self, path: Path, *, create: bool = True, allow_network_fs: bool = False,
                 mounts: str | None = None) -> None:
        self.path = path
        self.name = str(path)
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
            raise self.failure(exc, "cannot open the ledger") from exc
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
            raise self.failure(exc, "not a usable preserve ledger") from exc
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

    def failure(self, exc: Exception, what: str) -> PreserveError:
        if isinstance(exc, sqlite3.Error):
            return _sqlite_failure(exc, self.path, what)
        return LedgerError(path=str(self.path), reason=f"{what} ({exc})")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def schema_version(self) -> int:
        return int(self.query("PRAGMA user_version")[0][0])

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front (no deadlock)."""
        with self._lock:
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise self.failure(exc, "cannot write") from exc
                    if time.monotonic() > deadline:
                        raise LedgerError(path=str(self.path), reason="another process has held the ledger's write lock for too long") from exc
                    time.sleep(0.05)
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise self.failure(exc, "write failed; nothing of it was kept") from exc
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        with self._lock:
            self._db.execute("BEGIN")  # one read snapshot for the whole block
            try:
                yield self._db
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return list(self._db.execute(sql, tuple(params)))
            except sqlite3.Error as exc:
                raise self.failure(exc, "cannot read") from exc

    def reset_ids(self, table: str) -> None:
        # an INTEGER PRIMARY KEY without AUTOINCREMENT always continues after the largest id
        return None

    def _migrate(self) -> None:
        if self.schema_version() == SCHEMA_VERSION:
            return
        # a table rebuild must not cascade or fail on foreign keys; the pragma only works outside
        # a transaction, and the keys are checked before the migration commits
        self._db.execute("PRAGMA foreign_keys=OFF")
        try:
            self._migrate_steps()
        finally:
            self._db.execute("PRAGMA foreign_keys=ON")

    def _migrate_steps(self) -> None:
        with self.write() as db:
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

"""Outcomes waiting on local disk for a ledger server that went away.

An audit that has read a bag for an hour must not lose what it found because the PostgreSQL
server restarted. When writing an outcome fails because the connection is gone, the outcome is
appended to a queue file on the local disk (one JSON line, flushed and fsynced, under a file
lock so that several runs on one host can share it) and the run goes on. The queue is written
to the ledger the next time any command opens that ledger, or by ``preserve ledger flush``;
recording is idempotent by audit UUID, so an outcome written twice is kept once.

Queue files live in ``<user data dir>/preserve/pending/`` (``~/.local/share`` unless
``XDG_DATA_HOME`` says otherwise), one per ledger, named by a digest of the ledger's URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from preserve.errors import StorageError


def queue_path(ledger_name: str) -> Path:
    """The queue file for the ledger named ``ledger_name`` (its URL as shown, without a password)."""
    import platformdirs

    digest = hashlib.sha256(ledger_name.encode("utf-8")).hexdigest()[:20]
    return platformdirs.user_data_path("preserve") / "pending" / f"{digest}.jsonl"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def enqueue(path: Path, ledger_name: str, record: Any) -> None:
    """Append one :class:`~preserve.audit.ledger.AuditRecord` to the queue, durably."""
    line = json.dumps({"ledger": ledger_name, "audit": asdict(record)}, ensure_ascii=False, sort_keys=True) + "\n"
    try:
        with _locked(path):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise StorageError(path=str(path), reason=(
            f"the ledger server is gone and the outcome cannot be kept on local disk either ({exc.strerror or exc})")) from exc


def pending(path: Path) -> int:
    """How many outcomes wait in the queue file."""
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def drain(path: Path, write: Callable[[dict[str, Any]], object]) -> int:
    """Write every queued outcome with ``write`` (given the audit as a dict), then remove the
    queue; returns how many. An error stops it with the queue kept whole (what was written
    already is written again next time and kept once, by its UUID)."""
    if not path.exists():
        return 0
    with _locked(path):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return 0
        count = 0
        for line in lines:
            if line.strip():
                write(json.loads(line)["audit"])
                count += 1
        path.unlink()
        return count

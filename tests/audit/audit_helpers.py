"""Helpers for the audit tests (imported by name: test modules live in a folder without __init__)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path


def preserve_exe() -> str:
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent)) or shutil.which("preserve")
    assert exe, "the preserve console script is not installed in this environment"
    return exe


def flip_byte(path: Path, offset: int = 100) -> None:
    """Flip one bit of one byte in place (bit rot)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def xxh3_of(bag: Path, rel: str) -> str:
    """The digest metadata/xxh3-128.txt records for ``rel``."""
    for line in (bag / "metadata" / "xxh3-128.txt").read_text(encoding="utf-8").splitlines():
        digest, path = line.split("  ", 1)
        if path == rel:
            return digest
    raise AssertionError(f"{rel} not in the xxh3 file")


def manifest_digest(bag: Path, alg: str, rel: str, tag: bool = False) -> str:
    name = f"{'tag' if tag else ''}manifest-{alg}.txt"
    for line in (bag / name).read_text(encoding="utf-8").splitlines():
        digest, path = line.split("  ", 1)
        if path == rel:
            return digest
    raise AssertionError(f"{rel} not in {name}")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audits_in(ledger: Path | str) -> list[tuple[str, str, str]]:
    """(bag location, tier, outcome) of every audit in the ledger (a file or a URL), in order."""
    from preserve.audit.ledger import Ledger

    with Ledger(ledger, create=False) as led:
        rows = [(a.id or 0, a.location, a.tier, a.outcome) for s in led.bag_states() for a in led.audits_for(s.id)]
    return [(loc, tier, outcome) for _, loc, tier, outcome in sorted(rows)]


def run(*args: object, **kw: object) -> subprocess.CompletedProcess[str]:
    """``preserve ARGS`` in a real subprocess."""
    return subprocess.run([preserve_exe(), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=kw.pop("timeout", 300), **kw)  # type: ignore[call-overload]


def is_sqlite(ledger: Path | str) -> bool:
    """Whether the ledger fixture gave a SQLite file (else a postgresql:// URL)."""
    return "://" not in str(ledger)


def sql(ledger: Path | str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement on the ledger's own database, beside preserve (``?`` placeholders);
    what a test reads or damages behind preserve's back, on either backend."""
    if is_sqlite(ledger):
        db = sqlite3.connect(ledger)
        try:
            rows = [tuple(r) for r in db.execute(statement, params)]
            db.commit()
            return rows
        finally:
            db.close()
    import psycopg

    with psycopg.connect(str(ledger), autocommit=True) as conn:
        cur = conn.execute(statement.replace("?", "%s"), params or None)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


def ledger_exists(ledger: Path | str) -> bool:
    """Whether preserve has made a ledger there yet (a file; the tables in the database)."""
    if is_sqlite(ledger):
        return Path(ledger).exists()
    return bool(sql(ledger, "SELECT to_regclass('preserve_schema') IS NOT NULL")[0][0])

"""The ledger never loses history: a file that is not a ledger is refused and left as it is, a new
ledger appears whole, a killed creation never blocks the next, and a full disk says so."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import audits_in, preserve_exe

from preserve.audit.ledger import SCHEMA_VERSION, AuditRecord, FindingRecord, Ledger

PAST = (1_000_000_000, 1_000_000_000)  # 2001: an mtime no command run now could leave behind


def _state(path: Path) -> tuple[bytes, int, list[str]]:
    """The file's bytes, its mtime, and everything in its folder (nothing may appear beside it)."""
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("content", [b"", b"these are not the droids" * 100], ids=["zero-bytes", "garbage"])
def test_an_existing_file_that_is_not_a_ledger_is_refused_by_every_command_and_left_as_it_is(
        make_bag, tmp_path: Path, pv, content: bytes) -> None:
    ledger = tmp_path / "ledger" / "audit.sqlite"
    ledger.parent.mkdir()
    ledger.write_bytes(content)
    os.utime(ledger, ns=(PAST[0] * 10**9, PAST[1] * 10**9))
    before = _state(ledger)
    bag = make_bag("kept")
    for args in (("audit", bag, "--tier", "fast"), ("ledger", "export"), ("ledger", "info"), ("report",),
                 ("ledger", "backup", tmp_path / "copy.sqlite")):
        result = pv(*args, "--ledger", ledger)
        assert result.exit_code == 7, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert f"{ledger}: not a usable preserve ledger (" in result.stderr, result.stderr
        if not content:
            assert "the file is empty, 0 bytes); it was left as it is" in result.stderr
        assert _state(ledger) == before, f"{args[0]} changed the file"
    assert not (tmp_path / "copy.sqlite").exists()


def test_a_zero_byte_ledger_is_refused_by_the_command_run_as_a_user_runs_it(make_bag, tmp_path: Path) -> None:
    ledger = tmp_path / "audit.sqlite"
    ledger.touch()
    result = subprocess.run([preserve_exe(), "audit", make_bag("one"), "--ledger", ledger], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 7, result.stderr
    assert "restore the ledger from a backup (preserve ledger backup makes one), or pass --ledger with another path" in result.stderr
    assert ledger.stat().st_size == 0


def test_an_sqlite_database_of_another_program_is_not_turned_into_a_ledger(tmp_path: Path, pv, make_bag) -> None:
    other = tmp_path / "notes.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('keep me')")
    db.commit()
    db.close()
    bag = make_bag("x")
    before = _state(other)
    result = pv("audit", bag, "--ledger", other)
    assert result.exit_code == 7
    assert f"{other}: not a usable preserve ledger (an SQLite database of another program, schema version 0)" in result.stderr
    assert _state(other) == before


def _ledger_with_history(path: Path, audits: int = 60, findings: int = 40) -> None:
    with Ledger(path) as led:
        for i in range(audits):
            led.record_audit(AuditRecord(
                location=f"/archive/bag{i}", identifier=f"id-{i}", tier="full", started="2020-01-01T00:00:00Z",
                ended="2020-01-01T00:00:01Z", bytes=10, files=1, outcome="fail", algorithm="sha256",
                tool_version="0.1.0", findings=[FindingRecord(file=f"data/f{j}.wav", kind="altered", message="x" * 200)
                                                for j in range(findings)]))
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def test_export_of_a_damaged_ledger_is_exit_7_with_the_sqlite_error(tmp_path: Path, pv) -> None:
    ledger = tmp_path / "audit.sqlite"
    _ledger_with_history(ledger)
    size = ledger.stat().st_size
    with open(ledger, "r+b") as f:  # the findings' pages, far past the schema on page 1
        f.seek(size // 2)
        f.write(b"\xff" * (size // 4))
    before = ledger.read_bytes()
    out = tmp_path / "export.jsonl"
    for args in (("ledger", "export"), ("ledger", "export", "-o", out)):
        result = pv(*args, "--ledger", ledger)
        assert result.exit_code == 7, result.stderr
        assert "Traceback" not in result.stderr
        assert f"{ledger}: the export stopped after" in result.stderr
        assert "(database disk image is malformed)" in result.stderr
    assert not out.exists(), "a partial export was left at -o"
    assert ledger.read_bytes() == before


def test_a_new_ledger_appears_whole_and_leaves_nothing_beside_it(make_bag, tmp_path: Path, pv) -> None:
    ledger = tmp_path / "new" / "folder" / "audit.sqlite"
    result = pv("audit", make_bag("first"), "--ledger", ledger)
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in ledger.parent.iterdir() if not p.name.startswith("audit.sqlite-")] == ["audit.sqlite"]
    db = sqlite3.connect(ledger)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    assert len(audits_in(ledger)) == 1


_KILLED_CREATION = """
import os, signal, sys
from pathlib import Path
import preserve.audit.ledger as ledger
import preserve.audit.ledger_sqlite as ledger_sqlite
built = ledger_sqlite._build
def build_then_die(tmp):
    built(tmp)  # the schema is complete in the temporary file: killed just before it is linked
    os.kill(os.getpid(), signal.SIGKILL)
ledger_sqlite._build = build_then_die
ledger.open_ledger(Path(sys.argv[1]))
"""


def test_a_killed_creation_never_blocks_the_next_one(make_bag, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger" / "audit.sqlite"
    killed = subprocess.run([sys.executable, "-c", _KILLED_CREATION, ledger], capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    assert not ledger.exists(), "a creation killed before the link left a ledger"
    left = sorted(p.name for p in ledger.parent.iterdir())
    assert left == [".audit.sqlite.preserve-lock", *[n for n in left if n.startswith(".audit.sqlite.preserve-new-")]]
    assert len(left) == 2
    # an unrelated file that merely looks like one of ours is not preserve's to remove
    lookalike = ledger.parent / ".audit.sqlite.preserve-new-0badc0de"
    lookalike.write_bytes(b"someone else's")
    result = subprocess.run([preserve_exe(), "audit", make_bag("after"), "--ledger", ledger], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{ledger.parent / left[1]}: removed, left by a ledger creation that was stopped" in result.stderr
    assert sorted(p.name for p in ledger.parent.iterdir() if not p.name.startswith("audit.sqlite-")) == [
        lookalike.name, "audit.sqlite"]
    assert lookalike.read_bytes() == b"someone else's"
    assert len(audits_in(ledger)) == 1


def test_two_creators_at_once_share_one_ledger(make_bag, tmp_path: Path) -> None:
    ledger = tmp_path / "audit.sqlite"
    bags = [make_bag(f"b{i}") for i in range(2)]
    procs = [subprocess.Popen([preserve_exe(), "audit", b, "--ledger", ledger, "-q"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for b in bags]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(loc for loc, _, _ in audits_in(ledger)) == sorted(str(b) for b in bags)


# -- a full disk ----------------------------------------------------------------------------------



def _fill(folder: Path) -> Path:
    """Write a file in ``folder`` until the file system has no space left, to the last block."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def tiny_fs(tmpfs, tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "tiny", "size=4m") as mnt:
        yield mnt


def test_a_new_ledger_on_a_full_disk_says_the_disk_is_full_and_leaves_no_ledger(make_bag, tiny_fs: Path, pv) -> None:
    _fill(tiny_fs)
    ledger = tiny_fs / "audit.sqlite"
    result = pv("audit", make_bag("full"), "--ledger", ledger)
    assert result.exit_code == 5, result.stderr
    assert f"{ledger}: the file system holding the ledger is full (no space left to create it); free space" in result.stderr
    assert "not a usable preserve ledger" not in result.stderr
    # nothing half-made that a later run would refuse for ever (the empty lock file that could
    # not take its journal's first line stays: it blocks nothing, as the next run shows)
    assert not ledger.exists()
    assert sorted(p.name for p in tiny_fs.iterdir()) in (["filler"], [".audit.sqlite.preserve-lock", "filler"])
    (tiny_fs / "filler").unlink()
    again = pv("audit", make_bag("later"), "--ledger", ledger)
    assert again.exit_code == 0, again.stderr
    assert len(audits_in(ledger)) == 1


def test_an_existing_ledger_on_a_full_disk_says_the_disk_is_full_and_keeps_its_history(
        make_bag, tiny_fs: Path, pv) -> None:
    ledger = tiny_fs / "audit.sqlite"
    assert pv("audit", make_bag("first"), "--ledger", ledger).exit_code == 0
    filler = _fill(tiny_fs)
    result = pv("audit", make_bag("second", {f"objects/{i}.txt": b"x" for i in range(300)}), "--ledger", ledger, "--json")
    assert result.exit_code == 5, result.stderr
    assert f"{ledger}: the file system holding the ledger is full" in result.stderr, result.stderr
    assert "not a usable preserve ledger" not in result.stderr and "Traceback" not in result.stderr
    filler.unlink()
    info = pv("ledger", "export", "--ledger", ledger)
    assert info.exit_code == 0, info.stderr
    assert [json.loads(line)["table"] for line in info.stdout.splitlines()].count("audits") == 1

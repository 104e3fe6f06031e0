"""The ledger: two audits at once, a backup during an audit, schema versions, network file
systems, unreadable files, and the replica/repair records the replication engine writes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from audit_helpers import audits_in, is_sqlite, preserve_exe, sql

from preserve.audit.ledger import SCHEMA_VERSION, Ledger, filesystem_type, is_network_fs
from preserve.errors import LedgerError


def test_two_audits_at_once_share_one_ledger(make_bag, tmp_path: Path, ledger_path: Path) -> None:
    for i in range(6):
        make_bag(f"a{i}", {"objects/x.wav": os.urandom(100_000)}, parent=tmp_path / "left")
        make_bag(f"b{i}", {"objects/x.wav": os.urandom(100_000)}, parent=tmp_path / "right")
    # both start on a ledger that does not exist yet: creating the schema races too. The rate cap
    # stretches each run to ~6 s (a bag a second), so the two overlap even if one starts late
    procs = [subprocess.Popen([preserve_exe(), "audit", tmp_path / side, "--tier", "full", "--ledger", ledger_path, "-q",
                               "--max-rate", "100k"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for side in ("left", "right")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "audited 6 bag(s): 6 ok, 0 with problems" in out
    audits = audits_in(ledger_path)
    assert len(audits) == 12
    sides = [Path(loc).parent.name for loc, _, _ in audits]
    assert set(sides) == {"left", "right"}
    # the two runs wrote while both were running: each side's first record comes before the
    # other side's last one (not all of one run, then all of the other)
    for side, other in (("left", "right"), ("right", "left")):
        assert sides.index(side) < len(sides) - 1 - sides[::-1].index(other), f"the runs did not overlap: {sides}"
    if is_sqlite(ledger_path):
        assert sql(ledger_path, "PRAGMA integrity_check")[0][0] == "ok"
        assert sql(ledger_path, "PRAGMA journal_mode")[0][0] == "wal"
        assert sql(ledger_path, "PRAGMA user_version")[0][0] == SCHEMA_VERSION
    else:  # the two runs raced to create the tables: built once, under the advisory lock
        assert sql(ledger_path, "SELECT version FROM preserve_schema") == [(SCHEMA_VERSION,)]


def test_a_backup_taken_during_an_audit_opens_and_holds_the_audits(make_bag, tmp_path: Path, sqlite_ledger_path: Path) -> None:
    ledger_path = sqlite_ledger_path
    for i in range(4):
        make_bag(f"bag{i}", {"objects/x.wav": os.urandom(2_000_000)}, parent=tmp_path / "archive")
    audit = subprocess.Popen([preserve_exe(), "audit", tmp_path / "archive", "--tier", "fast", "--max-rate", "2M",
                              "--ledger", ledger_path, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if ledger_path.exists() and audits_in(ledger_path):
                    break
            except sqlite3.OperationalError:
                pass  # the schema is being created
            time.sleep(0.05)
        backup = subprocess.run([preserve_exe(), "ledger", "backup", tmp_path / "copy.sqlite", "--ledger", ledger_path],
                                capture_output=True, text=True, timeout=60)
        still_running = audit.poll() is None
    finally:
        out, err = audit.communicate(timeout=120)
    assert backup.returncode == 0, backup.stderr
    assert still_running, "the audit had finished before the backup: the test proves nothing"
    assert f"to {tmp_path / 'copy.sqlite'}" in backup.stdout
    assert audit.returncode == 0, err
    assert "audited 4 bag(s): 4 ok, 0 with problems" in out
    copy = sqlite3.connect(tmp_path / "copy.sqlite")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    held = copy.execute("SELECT count(*) FROM audits WHERE outcome = 'pass'").fetchone()[0]
    copy.close()
    assert 1 <= held < 4
    assert len(audits_in(ledger_path)) == 4
    again = subprocess.run([preserve_exe(), "ledger", "backup", tmp_path / "copy.sqlite", "--ledger", ledger_path],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 4
    assert f"{tmp_path / 'copy.sqlite'}: already exists" in again.stderr


def test_export_writes_every_table_as_json_lines(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("export")
    (bag / "data/objects/b.txt").write_bytes(b"changed")
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 1
    result = pv("ledger", "export", "--ledger", ledger_path)
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["table"] for r in rows[:4]] == ["bags", "audits", "findings", "findings"]
    # what the bag held besides its payload at its first audit, which later audits compare with
    assert sorted((r["table"], r["path"], r["kind"]) for r in rows[4:]) == [
        ("tag_files", str(p.relative_to(bag)), "file") for p in sorted(bag.rglob("*"))
        if p.is_file() and p.relative_to(bag).parts[0] != "data"]
    assert rows[0]["location"] == str(bag) and rows[0]["identifier"] == "id-export"
    assert rows[1]["outcome"] == "fail" and rows[1]["tier"] == "fast"
    assert sorted((r["kind"], r["file"]) for r in rows[2:4]) == [("altered", "data/objects/b.txt"), ("oxum", "bag-info.txt")]


def test_a_ledger_from_a_newer_preserve_is_refused(ledger_path: Path, pv) -> None:
    Ledger(ledger_path).close()
    if is_sqlite(ledger_path):
        sql(ledger_path, "PRAGMA user_version=99")
    else:
        sql(ledger_path, "UPDATE preserve_schema SET version = 99")
    result = pv("ledger", "info", "--ledger", ledger_path)
    assert result.exit_code == 7
    assert f"{ledger_path}: schema version 99 was written by a newer preserve (this one knows {SCHEMA_VERSION}); upgrade preserve" in result.stderr


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path, pv, make_bag) -> None:
    bogus = tmp_path / "notes.sqlite"
    bogus.write_bytes(b"these are not the droids" * 100)
    result = pv("audit", make_bag("x"), "--ledger", bogus)
    assert result.exit_code == 7
    assert f"{bogus}: not a usable preserve ledger (file is not a database)" in result.stderr
    assert bogus.read_bytes() == b"these are not the droids" * 100


def test_a_missing_ledger_is_reported_not_created_by_readers(tmp_path: Path, pv) -> None:
    result = pv("report", "--ledger", tmp_path / "none.sqlite")
    assert result.exit_code == 7
    assert "none.sqlite: no ledger here; run preserve audit first or pass --ledger PATH" in result.stderr
    assert not (tmp_path / "none.sqlite").exists()


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
nas:/export/archive /mnt/archive nfs4 rw,relatime,vers=4.2 0 0
//server/share /mnt/smb\\040share cifs rw 0 0
me@host:/srv /mnt/ssh fuse.sshfs rw 0 0
tmpfs /mnt/archive/local tmpfs rw 0 0
"""


def test_network_file_systems_are_recognised_from_proc_mounts() -> None:
    assert filesystem_type("/mnt/archive/ledger.sqlite", MOUNTS) == "nfs4"
    assert filesystem_type("/mnt/smb share/x/ledger.sqlite", MOUNTS) == "cifs"
    assert filesystem_type("/mnt/ssh/ledger.sqlite", MOUNTS) == "fuse.sshfs"
    assert filesystem_type("/mnt/archive/local/ledger.sqlite", MOUNTS) == "tmpfs"  # the longest mount point wins
    assert filesystem_type("/home/me/ledger.sqlite", MOUNTS) == "ext4"
    assert [is_network_fs(t) for t in ("nfs4", "cifs", "fuse.sshfs", "ext4", "tmpfs", None)] == [True, True, True, False, False, False]


def test_a_ledger_on_a_network_file_system_is_refused_or_uses_a_rollback_journal(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    mounts = f"/dev/vda / ext4 rw 0 0\nnas:/x {tmp_path} nfs rw 0 0\n"
    with pytest.raises(LedgerError) as refused:
        Ledger(path, mounts=mounts)
    assert str(refused.value).startswith(f"{path}: the ledger is on a network file system (nfs), where SQLite's WAL journal is not safe")
    assert refused.value.exit_code == 7
    assert not path.exists()
    with Ledger(path, mounts=mounts, allow_network_fs=True) as led:
        assert led.journal_mode == "delete"
        assert led.warnings == [f"{path}: on a network file system (nfs); using a rollback journal instead of WAL: "
                                "run one audit at a time against this ledger"]


def test_the_default_ledger_lives_in_the_user_data_folder(make_bag, tmp_path: Path) -> None:
    bag = make_bag("default")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    result = subprocess.run([preserve_exe(), "audit", bag, "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert audits_in(tmp_path / "xdg" / "preserve" / "ledger.sqlite") == [(str(bag), "full", "pass")]


@pytest.mark.parametrize("tier", ["fast", "full"])
def test_an_unreadable_file_is_reported_as_unreadable_not_a_crash(make_bag, ledger_path: Path, tier: str,
                                                                    permissions_apply) -> None:
    bag = make_bag(f"locked-{tier}")
    locked = bag / "data/objects/b.txt"
    os.chmod(locked, 0)
    preexec = permissions_apply
    try:
        result = subprocess.run([preserve_exe(), "audit", bag, "--tier", tier, "--ledger", ledger_path, "--json"],
                                capture_output=True, text=True, timeout=120, preexec_fn=preexec)
    finally:
        os.chmod(locked, 0o644)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    findings = json.loads(result.stdout)["audits"][0]["findings"]
    assert [(f["kind"], f["file"], f["message"]) for f in findings] == [
        ("unreadable", "data/objects/b.txt", "cannot be read (Permission denied)")]
    assert result.stderr.strip().endswith("preserve: error: the audit found problems in 1 bag(s)")


@pytest.mark.parametrize("tier", ["fast", "full"])
@pytest.mark.parametrize("folder", ["data/objects", "metadata"])
def test_a_folder_that_cannot_be_listed_is_named_once_and_nothing_in_it_called_missing(
        make_bag, ledger_path: Path, tier: str, folder: str, permissions_apply) -> None:
    """A payload folder: its files are unknown (unreadable, not checked), never missing, and
    Payload-Oxum is not judged. metadata/: the folder is the finding, not a file that may not be
    in it (this bag has no metadata/empty-directories.txt)."""
    bag = make_bag(f"blind-{tier}-{folder.replace('/', '-')}")
    assert not (bag / "metadata/empty-directories.txt").exists()
    os.chmod(bag / folder, 0)
    try:
        result = subprocess.run([preserve_exe(), "audit", bag, "--tier", tier, "--ledger", ledger_path, "--json"],
                                capture_output=True, text=True, timeout=120, preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / folder, 0o755)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    findings = [(f["kind"], f["file"], f["message"]) for f in json.loads(result.stdout)["audits"][0]["findings"]]
    if folder == "metadata":
        assert findings == [("unreadable", "metadata", "the folder cannot be listed (Permission denied); the tag "
                                                       "files in it were not checked")]
    else:
        unseen = "not checked: it lies in data/objects, a folder that cannot be listed"
        assert findings == [
            ("unreadable", "data/objects", "the folder cannot be listed (Permission denied); what it holds was not "
                                           "checked, nor Payload-Oxum"),
            ("unreadable", "data/objects/a.wav", unseen), ("unreadable", "data/objects/b.txt", unseen)]


def test_replicas_and_repairs_round_trip(make_bag, ledger_path: Path) -> None:
    bag = make_bag("copies")
    with Ledger(ledger_path) as led:
        rid = led.record_replica(str(bag), "s3://vault/archive", location="s3://vault/archive/copies/", site="Leeds",
                                 started="2026-01-01T00:00:00Z", ended="2026-01-01T00:05:00Z", objects=9, bytes=20016,
                                 outcome="pass", identifier="id-copies",
                                 detail={"parts": [{"size": 8388608, "sha256": "ab" * 32}]})
        led.record_repair(str(bag), "data/objects/a.wav", "s3://vault/archive", outcome="pass",
                          time="2026-02-01T00:00:00Z", detail={"bytes": 20004})
        replicas = led.replicas_for(str(bag))
        assert [(r.id, r.target, r.site, r.objects, r.outcome, r.detail) for r in replicas] == [
            (rid, "s3://vault/archive", "Leeds", 9, "pass", {"parts": [{"size": 8388608, "sha256": "ab" * 32}]})]
        assert led.replicas_for("id-copies") == replicas
        repairs = led.repairs_for(str(bag))
        assert [(r.file, r.source_target, r.time, r.outcome, r.detail) for r in repairs] == [
            ("data/objects/a.wav", "s3://vault/archive", "2026-02-01T00:00:00Z", "pass", {"bytes": 20004})]
        assert led.replicas_for("no-such-bag") == []


def test_a_version_1_ledger_is_migrated_and_keeps_every_audit(tmp_path: Path) -> None:
    from preserve.audit.ledger import MIGRATIONS, AuditRecord, FindingRecord

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version=1;")
    db.execute("INSERT INTO bags VALUES (1, 'id-old', '/archive/old', 10, 1, '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')")
    db.execute("INSERT INTO audits VALUES (7, 'u-7', 1, 'full', '2020-01-01T00:00:00Z', '2020-01-01T00:00:01Z', 10, 1, "
               "'fail', 'sha256', '0.0.9', 'host')")
    db.execute("INSERT INTO findings VALUES (1, 7, 'data/a', 'altered', 'altered', 'aa', 'bb', 'changed')")
    db.commit()
    db.close()
    with Ledger(path) as led:
        assert led.schema_version == SCHEMA_VERSION
        [old] = led.audits_for(1)
        assert (old.id, old.uuid, old.outcome, [(f.file, f.kind) for f in old.findings]) == (7, "u-7", "fail", [("data/a", "altered")])
        # a replica waiting for an archive-class restore is recorded as pending, neither pass nor fail
        led.record_audit(AuditRecord(location="s3://vault/old", identifier="id-old", tier="remote-full",
                                     started="2026-01-01T00:00:00Z", ended="2026-01-01T00:00:00Z", bytes=0, files=0,
                                     outcome="pending", algorithm="sha256", tool_version="0.1.0",
                                     findings=[FindingRecord(file="", kind="invalid", message="x")]))
        with pytest.raises(ValueError, match="outcome must be one of pass, fail, pending"):
            led.record_audit(AuditRecord(location="/archive/old", identifier="id-old", tier="fast", started="x", ended="x",
                                         bytes=0, files=0, outcome="maybe", algorithm="-", tool_version="0.1.0"))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "'pending'" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'audits'").fetchone()[0]
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'audits_bag'").fetchone()[0] == 1
    db.close()

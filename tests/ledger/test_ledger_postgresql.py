"""The PostgreSQL ledger on a real server the suite starts (tests/ledger/pg_server.py): naming it,
the same schema and migrations as SQLite, migrations under an advisory lock, several writers at
once, and ``ledger migrate`` both ways."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from preserve.audit.ledger import SCHEMA_VERSION, AuditRecord, FindingRecord, Ledger
from tests.ledger.conftest import one_file_bag


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def _export(run_preserve, ledger: Path | str) -> list[dict[str, object]]:
    result = run_preserve("ledger", "export", "--ledger", ledger)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- naming the ledger -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["mysql://user@host/db", "sqlite3://ledger.db", "https://example.org/ledger"])
def test_a_url_with_an_unknown_scheme_is_a_usage_error_never_a_path(tmp_path: Path, run_preserve, value: str) -> None:
    result = run_preserve("report", "--ledger", value, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    scheme = value.split(":")[0]
    assert f"unknown ledger scheme '{scheme}'" in result.stderr
    assert list(tmp_path.iterdir()) == [], "a URL became a path"


def test_a_postgresql_url_is_never_taken_for_a_path(tmp_path: Path, run_preserve) -> None:
    # nothing listens on port 9: before, this audit exited 0 after creating ./postgresql:/...
    bag = one_file_bag(tmp_path, "b", b"RIFF" + os.urandom(1000))
    work = tmp_path / "cwd"
    work.mkdir()
    result = run_preserve("audit", bag, "--tier", "fast", "--ledger",
                          "postgresql://preserve@127.0.0.1:9/vault?connect_timeout=2", cwd=work)
    assert result.returncode == 7, result.stderr
    assert "postgresql://preserve@127.0.0.1:9/vault" in result.stderr
    assert "the PostgreSQL server cannot be reached" in result.stderr or "cannot connect" in result.stderr
    assert list(work.iterdir()) == []


def test_a_password_in_the_url_is_refused_and_never_repeated(tmp_path: Path, run_preserve) -> None:
    for url in ("postgresql://archivist:Sekr3t-pw@db.example.org/vault", "postgresql://db.example.org/vault?password=Sekr3t-pw"):
        result = run_preserve("ledger", "info", "--ledger", url, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "Sekr3t-pw" not in result.stderr + result.stdout
        assert "PGPASSWORD" in result.stderr and "PGPASSFILE" in result.stderr
    (tmp_path / "preserve.toml").write_text('ledger = "postgresql://archivist:Sekr3t-pw@db.example.org/vault"\n')
    result = run_preserve("report", cwd=tmp_path)
    assert result.returncode == 2 and "Sekr3t-pw" not in result.stderr + result.stdout


@pytest.mark.slow
def test_ledger_info_shows_the_schema_version_on_both_backends(tmp_path: Path, postgres_url: str, run_preserve) -> None:
    bag = one_file_bag(tmp_path, "info", b"RIFF" + os.urandom(5000))
    for ledger in (tmp_path / "l.sqlite", postgres_url):
        assert run_preserve("audit", bag, "--tier", "fast", "--ledger", ledger, "-q").returncode == 0
        info = run_preserve("ledger", "info", "--ledger", ledger)
        assert info.returncode == 0, info.stderr
        assert f"schema version: {SCHEMA_VERSION};" in info.stdout
        assert "bags: 1; audits: 1; failing now: 0" in info.stdout
    assert "backend: PostgreSQL" in info.stdout
    assert _rows(postgres_url, "SELECT version FROM preserve_schema") == [(SCHEMA_VERSION,)]


def test_preserve_toml_names_a_postgresql_ledger_for_every_command(tmp_path: Path, postgres_url: str, run_preserve) -> None:
    bag = one_file_bag(tmp_path, "toml", b"RIFF" + os.urandom(5000))
    (tmp_path / "preserve.toml").write_text(f'ledger = "{postgres_url}"\n')
    env = {k: v for k, v in os.environ.items() if k != "PRESERVE_CONFIG"}
    audit = run_preserve("audit", bag, "--tier", "fast", "-q", cwd=tmp_path, env=env)
    assert audit.returncode == 0, audit.stderr
    report = run_preserve("report", "--json", cwd=tmp_path, env=env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["ledger"].startswith("postgresql://")
    assert _rows(postgres_url, "SELECT b.location, a.outcome FROM audits a JOIN bags b ON b.id = a.bag_id") == [(str(bag), "pass")]
    assert not (tmp_path / "postgresql:").exists()


@pytest.mark.slow
def test_the_same_audits_read_the_same_on_both_backends(tmp_path: Path, postgres_url: str, run_preserve) -> None:
    bags = [one_file_bag(tmp_path, f"same{i}", b"RIFF" + os.urandom(3000)) for i in range(3)]
    (bags[1] / "data/objects/a.wav").write_bytes(b"changed")
    outputs = []
    for ledger in (tmp_path / "same.sqlite", postgres_url):
        assert run_preserve("audit", tmp_path / "archive", "--tier", "fast", "--ledger", ledger, "-q").returncode == 1
        report = run_preserve("report", "--json", "--ledger", ledger)
        data = json.loads(report.stdout)
        # the document names its ledger (path and ledger) and when it was made
        assert data.pop("path") == data.pop("ledger")
        data.pop("generated")
        # the two runs differ only in when they ran
        # ... and in each audit's UUID
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "T", json.dumps(data))
        outputs.append(json.loads(re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "U", text)))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["sections"]["open_failures"]) == 1


# -- migrations, writers -----------------------------------------------------------------------------

_OPEN_AT = textwrap.dedent("""
    import sys, time
    from preserve.audit.ledger import Ledger
    start = float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))
    with Ledger(sys.argv[1]) as led:
        print(led.schema_version)
""")


def test_commands_starting_together_on_an_empty_database_build_the_schema_once(postgres_url: str) -> None:
    start = time.time() + 1.5  # every process is up and waiting before the first one opens
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, postgres_url, str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.strip() == str(SCHEMA_VERSION)
    assert _rows(postgres_url, "SELECT version FROM preserve_schema") == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in _rows(postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"preserve_schema", "bags", "audits", "findings", "replicas", "repairs", "tag_files", "compactions",
                      "audit_months"}


_WRITER = textwrap.dedent("""
    import sys, time
    from preserve.audit.ledger import AuditRecord, FindingRecord, Ledger
    url, me, count, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    time.sleep(max(0.0, start - time.time()))
    with Ledger(url) as led:
        for i in range(count):
            fail = i % 10 == 0
            led.record_audit(AuditRecord(
                location=f"/vault/bag{i % 25}", identifier=f"bag{i % 25}", tier="fast", started="2026-12-01T00:00:00Z",
                ended="2026-12-01T00:00:01Z", bytes=i, files=1, outcome="fail" if fail else "pass", algorithm="xxh3-128",
                tool_version="test", host=f"host{me}", uuid=f"00000000-0000-4000-8000-{me:04d}{i:08d}",
                findings=[FindingRecord(file="data/a.wav", kind="altered", message="changed")] if fail else []))
            # every writer also sends the same shared outcomes: each must be kept exactly once
            if i < 20:
                led.record_audit(AuditRecord(
                    location="/vault/shared", identifier="shared", tier="full", started="2026-12-01T00:00:00Z",
                    ended="2026-12-01T00:00:02Z", bytes=1, files=1, outcome="fail", algorithm="sha256",
                    tool_version="test", host="any", uuid=f"11111111-0000-4000-8000-{i:012d}",
                    findings=[FindingRecord(file="data/a.wav", kind="missing", message="gone")]))
""")


def test_several_writers_at_once_lose_and_duplicate_nothing(postgres_url: str) -> None:
    Ledger(postgres_url).close()
    writers, each = 4, 150
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, postgres_url, str(n), str(each), str(start)],
                              stderr=subprocess.PIPE, text=True) for n in range(writers)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _rows(postgres_url, "SELECT count(*), count(DISTINCT uuid) FROM audits") == [(writers * each + 20, writers * each + 20)]
    # findings: one per failing own audit (every tenth) and one per shared outcome, never twice
    assert _rows(postgres_url, "SELECT count(*) FROM findings") == [(writers * (each // 10) + 20,)]
    assert _rows(postgres_url, "SELECT count(*) FROM bags") == [(26,)]
    assert _rows(postgres_url, "SELECT count(*) FROM audits WHERE uuid LIKE '11111111%'") == [(20,)]


def test_recording_one_audit_twice_keeps_it_once_on_both_backends(tmp_path: Path, postgres_url: str) -> None:
    for target in (tmp_path / "twice.sqlite", postgres_url):
        record = AuditRecord(location="/vault/x", identifier="x", tier="fast", started="2026-12-01T00:00:00Z",
                             ended="2026-12-01T00:00:01Z", bytes=1, files=1, outcome="fail", algorithm="xxh3-128",
                             tool_version="test", findings=[FindingRecord(file="data/a", kind="missing", message="gone")])
        with Ledger(target) as led:
            first = led.record_audit(record)
            assert led.record_audit(record) == first
            [state] = led.bag_states()
            assert state.audits == 1
            assert len(led.audit(first).findings) == 1


# -- ledger migrate ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_migrate_sqlite_to_postgresql_and_back_verifies_and_is_idempotent(tmp_path: Path, postgres_url: str,
                                                                          run_preserve) -> None:
    source = tmp_path / "source.sqlite"
    for i in range(3):
        one_file_bag(tmp_path, f"m{i}", b"RIFF" + os.urandom(4000))
    (tmp_path / "archive/m1/data/objects/a.wav").write_bytes(b"altered")
    assert run_preserve("audit", tmp_path / "archive", "--tier", "fast", "--ledger", source, "-q").returncode == 1
    assert run_preserve("audit", tmp_path / "archive", "--tier", "full", "--ledger", source, "-q").returncode == 1
    with Ledger(source) as led:
        led.record_replica(str(tmp_path / "archive/m0"), "s3://vault/x", location="s3://vault/x/m0", started="2026-12-01T00:00:00Z",
                           ended="2026-12-01T00:00:05Z", objects=9, bytes=4000, outcome="pass", site="Leeds",
                           detail={"parts": [1, 2]})
    before = _export(run_preserve, source)

    first = run_preserve("ledger", "migrate", source, postgres_url)
    assert first.returncode == 0, first.stderr
    assert "row counts and digests of every table match" in first.stdout
    assert _export(run_preserve, postgres_url) == before  # every row, every id, every value
    again = run_preserve("ledger", "migrate", source, postgres_url)
    assert again.returncode == 0, again.stderr
    assert "0 row(s) copied" in again.stdout
    assert [line.split(", ")[0] for line in again.stdout.splitlines()[:6]] == [line.split(", ")[0] for line in first.stdout.splitlines()[:6]]
    assert _export(run_preserve, postgres_url) == before

    # new records after the migration get fresh ids (the sequences follow the copied rows)
    last = max(r["id"] for r in before if r["table"] == "audits")
    assert run_preserve("audit", tmp_path / "archive/m0", "--tier", "fast", "--ledger", postgres_url, "-q").returncode == 0
    after = _export(run_preserve, postgres_url)
    assert max(r["id"] for r in after if r["table"] == "audits") == last + 1

    back = tmp_path / "back.sqlite"
    result = run_preserve("ledger", "migrate", postgres_url, back)
    assert result.returncode == 0, result.stderr
    assert _export(run_preserve, back) == after


def test_migrate_refuses_a_destination_holding_another_ledger(tmp_path: Path, postgres_url: str, run_preserve) -> None:
    one, other = one_file_bag(tmp_path, "one", b"RIFF1" * 100), one_file_bag(tmp_path, "other", b"RIFF2" * 100)
    assert run_preserve("audit", one, "--tier", "fast", "--ledger", tmp_path / "one.sqlite", "-q").returncode == 0
    assert run_preserve("audit", other, "--tier", "fast", "--ledger", postgres_url, "-q").returncode == 0
    before = _export(run_preserve, postgres_url)
    result = run_preserve("ledger", "migrate", tmp_path / "one.sqlite", postgres_url)
    assert result.returncode == 7
    assert "DEST already holds bags rows that are not those of" in result.stderr
    assert _export(run_preserve, postgres_url) == before


# -- the server going away -----------------------------------------------------------------------------

@pytest.mark.slow
def test_outcomes_computed_while_the_server_is_gone_are_queued_then_flushed(tmp_path: Path, run_preserve) -> None:
    from pg_server import PgServer, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql package")
    server = PgServer(bindir, durable=True)  # its own server: this test stops it
    try:
        server.start()
        url = server.database()
        for i in range(5):
            one_file_bag(tmp_path, f"q{i}", b"RIFF" + os.urandom(600_000))
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
        # about a bag a second: the server is stopped after the first outcome is written
        proc = subprocess.Popen(["preserve", "audit", tmp_path / "archive", "--tier", "full", "--max-rate", "600k",
                                 "--ledger", url, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, executable=str(Path(sys.executable).parent / "preserve"))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if _rows(url, "SELECT count(*) FROM audits")[0][0] >= 1:
                        break
                except psycopg.Error:
                    pass  # the tables are being made
                time.sleep(0.05)
            written_before = _rows(url, "SELECT count(*) FROM audits")[0][0]
            server.stop("immediate")
            still_running = proc.poll() is None
        finally:
            out, err = proc.communicate(timeout=120)
        assert still_running, "the audit ended before the server stopped: the test proves nothing"
        assert proc.returncode == 7, err
        assert "audited 5 bag(s): 5 ok" in out  # every bag was still read and verified
        queued = list((tmp_path / "xdg" / "preserve" / "pending").glob("*.jsonl"))
        assert len(queued) == 1
        lines = queued[0].read_text().splitlines()
        assert len(lines) == 5 - written_before
        assert f"{len(lines)} audit outcome(s) are kept on local disk in {queued[0]}" in err
        assert "Traceback" not in err

        server.start()
        flushed = run_preserve("ledger", "flush", "--ledger", url, env=env)
        assert flushed.returncode == 0, flushed.stderr
        assert f"wrote {len(lines)} queued audit outcome(s)" in flushed.stdout
        assert not queued[0].exists()
        assert _rows(url, "SELECT count(*), count(DISTINCT uuid), count(DISTINCT bag_id) FROM audits") == [(5, 5, 5)]
        uuids = {json.loads(line)["audit"]["uuid"] for line in lines}
        assert uuids <= {r[0] for r in _rows(url, "SELECT uuid FROM audits")}
    finally:
        server.remove()

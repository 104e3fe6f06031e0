"""Schema version 5: each bag keeps its audit summary, the ledger keeps its audits per month, and an
audit names the object version it read; on SQLite and on the suite's PostgreSQL server.

The oracle is always computed here, in Python, from the audits' own rows (as inserted, or as read
back with ``table_rows``): never from the summary columns under test.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from preserve.audit.ledger import MIGRATIONS, AuditRecord, FindingRecord, Ledger, now_iso
from preserve.audit.ledger_migrate import migrate_ledger
from preserve.audit.ledger_pg import PG_MIGRATIONS
from preserve.audit.ledger_queue import enqueue
from preserve.audit.report import build_report

#: (id, bag location, tier, ended, outcome, bytes) of one audit
Audit = tuple[int, str, str, str, str, int]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite"
    return str(request.getfixturevalue("postgres_url"))


def _summaries(audits: list[Audit], locations: list[str]) -> dict[str, tuple[Any, ...]]:
    """Each bag's summary by its plain definition: (audits, last end, outcome, tier, id, latest end
    of a full audit, audits after the latest full one)."""
    out: dict[str, tuple[Any, ...]] = {loc: (0, None, None, None, None, None, 0) for loc in locations}
    for loc in locations:
        mine = sorted(a for a in audits if a[1] == loc)
        if not mine:
            continue
        last = mine[-1]
        fulls = [a for a in mine if a[2] == "full"]
        out[loc] = (len(mine), last[3], last[4], last[2], last[0], max(a[3] for a in fulls) if fulls else None,
                    sum(1 for a in mine if a[0] > (fulls[-1][0] if fulls else 0)))
    return out


def _months(audits: list[Audit]) -> dict[str, tuple[int, int, int, int]]:
    counts: dict[str, list[int]] = {}
    for _, _, _, ended, outcome, nbytes in audits:
        m = counts.setdefault(ended[:7], [0, 0, 0, 0])
        m[0] += 1
        m[1] += outcome == "fail"
        m[2] += outcome == "pending"
        m[3] += nbytes
    return {k: (v[0], v[1], v[2], v[3]) for k, v in counts.items()}


def _audits_of(led: Ledger) -> list[Audit]:
    bags = {r["id"]: r["location"] for r in led.table_rows("bags", limit=100_000)}
    return [(r["id"], bags[r["bag_id"]], r["tier"], r["ended"], r["outcome"], r["bytes"])
            for r in led.table_rows("audits", limit=100_000)]


def assert_summaries_hold(led: Ledger) -> None:
    """Every bag's kept summary and the kept months are what the audits say, and planning reads the
    bags in the order the definition gives (never audited first, then by last audit, then location)."""
    audits = _audits_of(led)
    states = led.bag_states()
    want = _summaries(audits, [s.location for s in states])
    got = {s.location: (s.audits, s.last_audit, s.last_outcome, s.last_tier, s.last_audit_id, s.last_full,
                        s.audits_since_full) for s in states}
    assert got == want
    order = sorted(want, key=lambda loc: (want[loc][1] is not None, want[loc][1] or "", loc))
    assert [s.location for s in states] == order
    assert {m["month"]: (m["audits"], m["failed"], m["pending"], m["bytes"])
            for m in led.monthly() if m["audits"]} == _months(audits)


def _random_audits(seed: int, bags: int, count: int) -> list[Audit]:
    rng = random.Random(seed)
    out = []
    for i in range(1, count + 1):
        # ends out of id order, over several months: the latest audit is the latest by id
        ended = f"2026-{rng.randint(1, 6):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        out.append((i, f"/vault/bag{rng.randrange(bags)}", rng.choice(["fast", "fast", "full", "remote-full"]), ended,
                    rng.choice(["pass", "pass", "pass", "fail", "pending"]), rng.randint(1, 10**9)))
    return out


# -- the migration from version 4 -----------------------------------------------------------------

def _version_4(target: Path | str, bags: list[str], audits: list[Audit]) -> None:
    """A ledger as preserve's schema version 4 left it, with rows."""
    bag_rows = [(i + 1, Path(loc).name, loc, 1000, 1, "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
                for i, loc in enumerate(bags)]
    ids = {loc: i + 1 for i, loc in enumerate(bags)}
    audit_rows = [(a[0], f"00000000-0000-4000-8000-{a[0]:012d}", ids[a[1]], a[2], a[3], a[3], a[5], 3, a[4],
                   "sha256", "0.9", "host") for a in audits]
    finding_rows = [(a[0], a[0], "data/a.wav", "altered", "altered", "aa", "bb", "changed") for a in audits if a[4] == "fail"]
    bag_sql = "INSERT INTO bags VALUES (?,?,?,?,?,?,?)"
    audit_sql = "INSERT INTO audits VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    finding_sql = "INSERT INTO findings VALUES (?,?,?,?,?,?,?,?)"
    if isinstance(target, Path):
        db = sqlite3.connect(target)
        db.executescript(";".join(MIGRATIONS[:4]) + ";PRAGMA user_version=4;")
        db.executemany(bag_sql, bag_rows)
        db.executemany(audit_sql, audit_rows)
        db.executemany(finding_sql, finding_rows)
        db.commit()
        db.close()
        return
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE preserve_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO preserve_schema (version) VALUES (4)")
        for step in PG_MIGRATIONS[:4]:
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(statement)
        with conn.cursor() as cur:
            for sql, rows in ((bag_sql, bag_rows), (audit_sql, audit_rows), (finding_sql, finding_rows)):
                cur.executemany(sql.replace("?", "%s"), rows)
        for table in ("bags", "audits", "findings"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def test_a_version_4_ledger_with_rows_is_migrated_to_the_summaries_its_audits_give(target: Path | str) -> None:
    bags = [f"/vault/bag{i}" for i in range(40)]  # some never audited
    audits = _random_audits(5, 36, 600)
    _version_4(target, bags, audits)
    with Ledger(target) as led:
        assert led.schema_version == 5
        assert _audits_of(led) == audits  # nothing lost or changed
        assert_summaries_hold(led)
        states = {s.location: s for s in led.bag_states()}
        assert states["/vault/bag39"].audits == 0 and states["/vault/bag39"].last_audit is None
        assert led.audit(1).version is None  # audits of bags read before version 5 name no version
        # the indexes planning and the report read by
        names = {r[0] for r in _sql(target, "SELECT name FROM sqlite_master WHERE type = 'index'" if isinstance(target, Path)
                                     else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
        assert {"bags_last_audit", "bags_failing", "audits_unpassed"} <= names
        # recording after the migration carries on from the filled summaries
        led.record_audits([AuditRecord(location="/vault/bag3", identifier="bag3", tier="full", started="2026-07-01T00:00:00Z",
                                       ended="2026-07-01T00:00:00Z", bytes=7, files=1, outcome="pass", algorithm="sha256",
                                       tool_version="test")])
        assert_summaries_hold(led)


def _sql(target: Path | str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on the ledger's database directly; the rows of the last."""
    if isinstance(target, Path):
        db = sqlite3.connect(target)
        try:
            for st in statements[:-1]:
                db.execute(st)
            return [tuple(r) for r in db.execute(statements[-1]).fetchall()]
        finally:
            db.close()
    with psycopg.connect(target, autocommit=True) as conn:
        for st in statements[:-1]:
            conn.execute(st)
        return [tuple(r) for r in conn.execute(statements[-1]).fetchall()]


def test_planning_reads_the_oldest_bags_by_the_index(target: Path | str) -> None:
    with Ledger(target) as led:
        led.record_audits([_record(f"/vault/b{i:03d}", "fast", f"2026-01-{1 + i % 28:02d}T00:00:00Z") for i in range(120)])
        led.ensure_bags([("/vault/zz-new", "zz-new", None, None), ("/vault/aa-new", "aa-new", None, None)])
        first = led.bag_states(limit=5)
        assert [s.location for s in first[:2]] == ["/vault/aa-new", "/vault/zz-new"]
        assert first == led.bag_states()[:5]
    sql = "SELECT b.* FROM bags b ORDER BY b.last_audit NULLS FIRST, b.location LIMIT 5"
    if isinstance(target, Path):
        plan = " ".join(str(r[3]) for r in _sql(target, "EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX bags_last_audit" in plan and "TEMP B-TREE" not in plan
    else:  # a table this small would be read whole: the planner is told not to, to show the index serves
        plan = " ".join(str(r[0]) for r in _sql(target, "SET enable_seqscan = off", "EXPLAIN " + sql))
        assert "Index Scan using bags_last_audit" in plan and "Sort" not in plan


# -- kept by every writer -------------------------------------------------------------------------

def _record(location: str, tier: str, ended: str, outcome: str = "pass", uuid: str | None = None,
            version: str | None = None) -> AuditRecord:
    record = AuditRecord(location=location, identifier=Path(location).name, tier=tier, started=ended, ended=ended,
                         bytes=len(location) * 1000, files=2, outcome=outcome, algorithm="sha256", tool_version="test",
                         findings=[FindingRecord(file="data/a.wav", kind="altered", message="changed")] if outcome == "fail" else [],
                         version=version)
    if uuid is not None:
        record.uuid = uuid
    return record


def test_every_way_of_recording_keeps_the_summaries(target: Path | str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    rng = random.Random(7)

    def some(n: int) -> list[AuditRecord]:
        return [_record(f"/vault/bag{rng.randrange(12)}", rng.choice(["fast", "full", "fast"]),
                        f"2026-{rng.randint(1, 4):02d}-{rng.randint(10, 28):02d}T00:00:00Z",
                        rng.choice(["pass", "pass", "fail", "pending"])) for _ in range(n)]

    with Ledger(target) as led:
        for r in some(30):  # one by one
            led.record_audit(r)
        assert_summaries_hold(led)
        batch = some(200)
        batch.append(_record("/vault/bag1", "full", "2026-05-01T00:00:00Z", uuid=batch[3].uuid))  # twice in a batch
        led.record_audits(batch)
        assert_summaries_hold(led)
        led.record_audits(batch[:50] + some(10))  # a retry with new ones among them: counted once
        led.record_audit(batch[7])
        assert_summaries_hold(led)
        led.ensure_bag("/vault/never", "never")
        assert_summaries_hold(led)
        if led.queue is not None:  # PostgreSQL: outcomes kept on local disk while the server was away
            queued = some(15)
            for r in queued:
                enqueue(led.queue, led.name, r)
            assert led.flush_queue() == 15
            assert_summaries_hold(led)
        before = len(_audits_of(led))
        done = led.compact("first,last,failures")
        assert done.removed > 0 and len(_audits_of(led)) == before - done.removed
        assert_summaries_hold(led)
        led.compact("last")  # bags left with one audit each, failures gone
        assert_summaries_hold(led)
        assert {s.audits for s in led.bag_states()} == {0, 1}


def test_migrate_copies_summaries_months_and_versions_both_ways(tmp_path: Path, postgres_url: str, cli) -> None:
    source = tmp_path / "source.sqlite"
    with Ledger(source) as led:
        led.record_audits([_record(f"/vault/obj{i % 5}", "full" if i % 4 == 0 else "fast",
                                   f"2026-0{1 + i % 3}-1{i % 10}T00:00:00Z", "fail" if i % 7 == 0 else "pass",
                                   version=f"v{i % 3 + 1}" if i % 2 else None) for i in range(60)])
        versions = [r["object_version"] for r in led.table_rows("audits")]
    assert "v2" in versions and None in versions
    with Ledger(source) as src, Ledger(postgres_url) as dest:
        migrate_ledger(src, dest)
        assert [r["object_version"] for r in dest.table_rows("audits")] == versions
        assert_summaries_hold(dest)
        assert dest.bag_states() == src.bag_states() and dest.monthly() == src.monthly()
    back = tmp_path / "back.sqlite"
    with Ledger(postgres_url) as src, Ledger(back) as dest:
        migrate_ledger(src, dest)
        assert_summaries_hold(dest)
        assert [r["object_version"] for r in dest.table_rows("audits")] == versions
    info = cli("ledger", "info", "--ledger", back)
    assert info.exit_code == 0 and "schema version: 5;" in info.stdout and "bags: 5; audits: 60; failing now:" in info.stdout


def test_an_audit_names_the_object_version_it_read_in_the_premis_history(target: Path | str, cli) -> None:
    with Ledger(target) as led:
        first = led.record_audit(_record("/store/obj1", "full", "2026-02-01T00:00:00Z", version="v3"))
        second = led.record_audits([_record("/store/obj1", "fast", "2026-02-02T00:00:00Z", version="v4"),
                                    _record("/store/obj1", "fast", "2026-02-03T00:00:00Z")])
        assert [led.audit(i).version for i in (first, *second)] == ["v3", "v4", None]
    events = cli("events", "/store/obj1", "--ledger", target)
    assert events.exit_code == 0, events.output
    details = events.stdout.split("<premis:eventDetail>")[1:]
    assert "audit (sha256) of /store/obj1 (object version v3) on" in details[0]
    assert "audit (sha256) of /store/obj1 (object version v4) on" in details[1]
    assert "of /store/obj1 on" in details[2] and "object version" not in details[2]


# -- the report reads aggregates -------------------------------------------------------------------

def test_the_report_counts_every_bag_and_lists_only_the_first(target: Path | str) -> None:
    with Ledger(target) as led:
        led.record_audits([_record(f"/vault/b{i:02d}", "fast", f"2026-01-{1 + i % 28:02d}T00:00:00Z",
                                   "fail" if i % 5 == 0 else ("pending" if i % 7 == 0 else "pass")) for i in range(60)])
        led.ensure_bags([(f"/vault/new{i}", f"new{i}", None, None) for i in range(4)])
        for i in range(3):  # two bags with replicas; one replica's own audit failed
            led.record_replica(f"/vault/b{i:02d}", "s3://vault/x", location=f"s3://vault/x/b{i:02d}",
                               started="2026-02-01T00:00:00Z", ended="2026-02-01T00:00:01Z", objects=3, bytes=10,
                               outcome="pass", site="Leeds")
        led.record_audit(_record("s3://vault/x/b01", "remote-full", "2026-03-01T00:00:00Z", "fail"))
        few = build_report(led, max_rows=5, now=1.8e9)
        full = build_report(led, max_rows=None, now=1.8e9)
    for key in ("never_audited", "overdue", "open_failures", "history", "copies"):
        assert few.section(key).total == full.section(key).total == len(full.section(key).rows), key
        assert few.section(key).rows == full.section(key).rows[:5], key
    assert full.section("copies").total == 64  # the replica's own row is counted under its bag
    copies = full.section("copies").rows
    assert few.tallies == full.tallies == {"copies": dict(Counter(r["copies"] for r in copies)),
                                           "level": dict(Counter(r["level"] for r in copies))}
    assert few.summary == full.summary and few.summary["failing_now"] == 13
    # the chart's bags: those with the most failures first, then by identifier and location
    assert few.outcomes == sorted(full.outcomes, key=lambda r: (-r["failed"], r["identifier"], r["location"]))[:5]
    assert [r["failed"] for r in few.outcomes] == [1, 1, 1, 1, 1]
    assert sum(r["passed"] + r["failed"] + r["pending"] for r in full.outcomes) == 61


# -- several writers at once ------------------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import random, sys, time
    from preserve.audit.ledger import AuditRecord, Ledger
    url, me, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rng = random.Random(me)

    def record(i, shared):
        # a shared outcome is the same audit sent by every writer: its content depends on i alone
        pick = random.Random(i) if shared else rng
        r = AuditRecord(location=f"/vault/shared{pick.randrange(8)}", identifier="shared", tier=pick.choice(["fast", "full"]),
                        started="2026-12-01T00:00:00Z", ended=f"2026-12-{1 + pick.randrange(28):02d}T00:00:00Z", bytes=i,
                        files=1, outcome=pick.choice(["pass", "fail"]), algorithm="sha256", tool_version="test", host=f"h{me}")
        r.uuid = f"22222222-0000-4000-8000-{i:012d}" if shared else f"33333333-0000-4000-8000-{me:04d}{i:08d}"
        return r

    time.sleep(max(0.0, start - time.time()))
    with Ledger(url) as led:
        for n in range(40):
            batch = [record(n * 10 + k, shared=k % 4 == 0) for k in range(10)]
            if n % 2:
                led.record_audits(batch)
            else:
                for r in batch:
                    led.record_audit(r)
""")


def test_writers_at_once_on_the_same_bags_keep_exact_summaries(postgres_url: str) -> None:
    Ledger(postgres_url).close()
    start = time.time() + 2.0  # every writer is up before the first writes
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, postgres_url, str(n), str(start)], stderr=subprocess.PIPE,
                              text=True) for n in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    with Ledger(postgres_url) as led:
        audits = _audits_of(led)
        assert len(audits) == 4 * 400 - 3 * 120  # each shared outcome (120 of them) kept once
        assert len({s.location for s in led.bag_states()}) == 8
        assert_summaries_hold(led)


def test_planning_reads_only_the_bags_under_its_paths(target: Path | str, tmp_path: Path) -> None:
    from preserve.audit.runner import Policy, plan_audit
    from preserve.bag.writer import PayloadEntry, create_bag

    archive = tmp_path / "archive"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.wav").write_bytes(b"RIFF" + b"\0" * 100)
    here = archive / "here"
    create_bag(here, [PayloadEntry(tmp_path / "src" / "a.wav", "objects/a.wav")])
    with Ledger(target) as led:
        # gone from under the archive (planned first, as lost); beside it, with names that sort
        # next to the archive's folder ("-" and "." come before "/"): never taken for its bags
        led.record_audits([_record(str(archive / "gone"), "full", now_iso()),
                           _record(str(archive / "deeper" / "gone"), "fast", "2026-01-02T00:00:00Z"),
                           _record(f"{archive}-b/bag", "fast", "2026-01-01T00:00:00Z"),
                           _record(f"{archive}.old/bag", "fast", "2026-01-01T00:00:00Z"),
                           _record(f"{archive}0/bag", "fast", "2026-01-01T00:00:00Z")])
        plan = plan_audit(led, [archive], Policy())
        assert [str(b.path) for b in plan.bags] == [str(archive / "deeper" / "gone"), str(archive / "gone"), str(here)]
        assert [b.tier for b in plan.bags] == ["full", "fast", "full"]  # by policy: a first full audit, then fast

"""Set-based ledger reads and batched recording, on SQLite and on the suite's PostgreSQL server.

The oracle for every summary is the plain per-bag definition (each bag's audits read one by one
with ``audits_for``), so the set-based SQL is checked against what it replaces.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from preserve.audit.html import render_html
from preserve.audit.ledger import AuditRecord, FindingRecord, Ledger
from preserve.audit.report import build_report, render_text


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite"
    return str(request.getfixturevalue("postgres_url"))


def _audit(bag: int, n: int, *, tier: str = "fast", outcome: str = "pass", findings: int = 0,
           uuid: str | None = None) -> AuditRecord:
    record = AuditRecord(location=f"/vault/bag{bag}", identifier=f"bag{bag}", tier=tier,
                         started=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z", ended=f"2026-01-01T01:{n // 60:02d}:{n % 60:02d}Z",
                         bytes=100 + n, files=3, outcome=outcome, algorithm="xxh3-128", tool_version="test",
                         findings=[FindingRecord(file=f"data/objects/f{i}.wav", kind="altered", message="changed",
                                                 expected="aa", found="bb") for i in range(findings)])
    if uuid is not None:
        record.uuid = uuid
    return record


def _counts(led: Ledger) -> tuple[int, int, int]:
    return (len(led.table_rows("bags", limit=10_000)), len(led.table_rows("audits", limit=10_000)),
            len(led.table_rows("findings", limit=10_000)))


def test_a_batch_is_recorded_once_by_audit_uuid(target: Path | str) -> None:
    batch = [_audit(i % 7, i, outcome="fail" if i % 10 == 0 else "pass", findings=2 if i % 10 == 0 else 0)
             for i in range(300)]
    batch.append(_audit(0, 999, uuid=batch[5].uuid))  # the same audit twice in one batch
    with Ledger(target) as led:
        ids = led.record_audits(batch)
        assert len(ids) == 301 and ids[5] == ids[300] and len(set(ids)) == 300
        assert _counts(led) == (7, 300, 60)
        # the whole batch sent again (a retry after a lost reply), with two new audits in it
        again = [_audit(i % 7, i, uuid=r.uuid) for i, r in enumerate(batch[:300])] + [_audit(8, 1), _audit(1, 2)]
        ids_again = led.record_audits(again)
        assert ids_again[:300] == ids[:300]
        assert _counts(led) == (8, 302, 60)
        # a single record of a batched audit is the same audit, too
        assert led.record_audit(_audit(3, 3, uuid=batch[3].uuid)) == ids[3]
        assert led.audit(ids[10]).findings[1].file == "data/objects/f1.wav"
        assert led.record_audits([]) == []


def test_bag_states_and_open_failures_match_the_per_bag_definition(target: Path | str) -> None:
    rng = random.Random(16)
    records = []
    for n in range(400):
        bag = rng.randrange(25)
        outcome = rng.choice(["pass", "pass", "fail", "pending"])
        records.append(_audit(bag, n, tier=rng.choice(["fast", "fast", "full"]), outcome=outcome,
                              findings=1 if outcome == "fail" else 0))
    with Ledger(target) as led:
        for start in range(0, len(records), 37):
            led.record_audits(records[start:start + 37])
        led.ensure_bag("/vault/never", "never")
        states = led.bag_states()
        assert states[0].location == "/vault/never"  # never audited comes first
        assert [s.last_audit for s in states[1:]] == sorted(s.last_audit or "" for s in states[1:])
        failing = []
        for s in states:
            audits = led.audits_for(s.id)
            fulls = [a for a in audits if a.tier == "full"]
            last = audits[-1] if audits else None
            assert (s.audits, s.last_audit_id, s.last_outcome, s.last_tier) == (
                len(audits), last and last.id, last and last.outcome, last and last.tier)
            assert s.last_full == (max(a.ended for a in fulls) if fulls else None)
            assert s.audits_since_full == len([a for a in audits if a.id > (fulls[-1].id if fulls else 0)])  # type: ignore[operator]
            if last and last.outcome == "fail":
                run = audits[:]
                while len(run) > 1 and run[-2].outcome == "fail":
                    run.pop()
                failing.append((s.id, run[-1].ended))
        assert failing, "the random history has bags failing now"
        assert led.failing_since([b for b, _ in failing]) == dict(failing)
        assert led.find_bags("bag3") == [s for s in states if s.identifier == "bag3"]
        assert len(led.bag_states(limit=5)) == 5 and led.bag_states(limit=5) == states[:5]
        latest = led.latest_audits([s.id for s in states], 3)
        for s in states[1:]:
            assert [a["ended"] for a in latest[s.id]] == [a.ended for a in led.audits_for(s.id)[-3:]]


def test_a_report_lists_the_first_rows_and_counts_the_rest(target: Path | str) -> None:
    with Ledger(target) as led:
        led.ensure_bags([(f"/vault/new{i:02d}", f"new{i:02d}", None, None) for i in range(30)])
        led.record_audits([_audit(i, i, outcome="fail", findings=1) for i in range(4)]
                          + [_audit(i, 100 + i) for i in range(4, 12)])
        report = build_report(led, max_rows=10, history=2)
        full = build_report(led, max_rows=None, history=2)
        text, html, data = render_text(report), render_html(report), report.to_dict()
    never = report.section("never_audited")
    assert (len(never.rows), never.total, never.left_out) == (10, 30, 20)
    assert never.rows == full.section("never_audited").rows[:10]
    assert report.summary["never_audited"] == 30 and report.summary["open_failures"] == 4
    history = report.section("history")
    assert history.total == 12 and len(history.rows) == 10 and history.rows == full.section("history").rows[:10]
    assert "Bags never audited (30)" in text and "... and 20 more (the first 10 are listed" in text
    assert "Bags never audited (30)</h2>" in html and "and 20 more; the first 10 are listed" in html
    assert data["section_totals"]["never_audited"] == 30 and len(data["sections"]["never_audited"]) == 10
    assert len(data["outcomes_by_bag"]) == 10 and [r["failed"] for r in data["outcomes_by_bag"][:4]] == [1, 1, 1, 1]
    assert json.loads(json.dumps(full.to_dict()))["section_totals"]["never_audited"] == 30
    assert len(full.section("never_audited").rows) == 30


def test_overdue_is_decided_to_the_second_without_parsing_every_stamp(target: Path | str) -> None:
    import datetime as dt

    with Ledger(target) as led:
        led.record_audits([_audit(1, 5)])  # ended 2026-01-01T01:00:05Z
        ended = dt.datetime(2026, 1, 1, 1, 0, 5, tzinfo=dt.UTC).timestamp()
        every = 30 * 86400.0
        for offset, overdue in ((0.5, True), (0.0, False), (-0.5, False), (1.0, True)):
            report = build_report(led, every=every, now=ended + every + offset)
            assert report.section("overdue").total == (1 if overdue else 0), offset
        row = build_report(led, every=every, now=ended + 2 * every).section("overdue").rows[0]
        assert row["age_days"] == 60.0

"""``preserve ledger compact --keep first,last,failures`` on SQLite and on the suite's PostgreSQL
server: what stays, what goes, that it is idempotent, and that ``events`` still exports a PREMIS
history valid against the official schema that says what was compacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from preserve.audit.ledger import AuditRecord, FindingRecord, Ledger

P = "{http://www.loc.gov/premis/v3}"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite"
    return str(request.getfixturevalue("postgres_url"))


def _audit(bag: str, day: int, outcome: str = "pass") -> AuditRecord:
    return AuditRecord(location=f"/vault/{bag}", identifier=bag, tier="fast", started=f"2026-01-{day:02d}T00:00:00Z",
                       ended=f"2026-01-{day:02d}T00:00:09Z", bytes=10, files=1, outcome=outcome, algorithm="xxh3-128",
                       tool_version="test", findings=[FindingRecord(file="data/objects/a.wav", kind="altered", message="changed",
                                                                    expected="aa", found="bb")] if outcome == "fail" else [])


def _history(target: Path | str) -> dict[str, list[tuple[str, str]]]:
    with Ledger(target) as led:
        return {s.identifier: [(a.ended[8:10], a.outcome) for a in led.audits_for(s.id)] for s in led.bag_states()}


def test_compact_keeps_first_last_and_failures_once(target: Path | str, cli, schemas_dir: Path) -> None:
    outcomes = ["pass", "pass", "fail", "pass", "pass", "pending", "pass"]
    with Ledger(target) as led:
        led.record_audits([_audit("a", d + 1, o) for d, o in enumerate(outcomes)]
                          + [_audit("b", 1, "fail"), _audit("b", 2, "fail"), _audit("c", 3), _audit("c", 4)])
    result = cli("ledger", "compact", "--keep", "first,last,failures", "--ledger", target, "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert (done["removed"], done["bags"], done["kept"], done["findings_removed"]) == (4, 1, 7, 0)  # the pending one too
    assert _history(target) == {"a": [("01", "pass"), ("03", "fail"), ("07", "pass")],
                                "b": [("01", "fail"), ("02", "fail")], "c": [("03", "pass"), ("04", "pass")]}
    with Ledger(target) as led:
        assert led.audits_for(led.find_bags("a")[0].id)[1].findings[0].found == "bb"  # a failure keeps its findings
    again = cli("ledger", "compact", "--ledger", target)
    assert again.exit_code == 0 and "removed 0 audit(s) of 0 bag(s), 7 audit(s) kept" in again.stdout

    events = cli("events", "/vault/a", "--ledger", target)
    assert events.exit_code == 0, events.output
    doc = etree.fromstring(events.stdout.encode())
    assert etree.XMLSchema(etree.parse(str(schemas_dir / "premis-v3-0.xsd"))).validate(etree.ElementTree(doc))
    assert len(doc.findall(f"{P}event")) == 3
    said = "(kept first,last,failures): 4 audit(s) ended 2026-01-02T00:00:09Z to 2026-01-06T00:00:09Z are not in this history"
    assert any(said in str(c.text) for c in doc.iter(etree.Comment))
    assert said in events.stderr
    assert "compacted" not in cli("events", "/vault/c", "--ledger", target).stdout


def test_compact_without_failures_drops_their_findings_and_refuses_unknown_words(target: Path | str, cli) -> None:
    with Ledger(target) as led:
        led.record_audits([_audit("a", 1), _audit("a", 2, "fail"), _audit("a", 3)])
    done = json.loads(cli("ledger", "compact", "--keep", "last", "--ledger", target, "--json").stdout)
    assert (done["keep"], done["removed"], done["findings_removed"]) == (["last"], 2, 1)
    assert _history(target) == {"a": [("03", "pass")]}
    with Ledger(target) as led:
        assert led.table_rows("findings") == []
    bad = cli("ledger", "compact", "--keep", "first,everything", "--ledger", target)
    assert bad.exit_code == 2
    assert "say what to keep of each bag's audits with one or more of first, last, failures" in bad.stderr

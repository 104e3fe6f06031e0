"""``preserve report --metrics FILE``: the Prometheus text format, read back with prometheus_client's
own parser, on both ledger backends."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from preserve.audit.ledger import Ledger
from tests.ledger.conftest import one_file_bag


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "metrics.sqlite"
    return str(request.getfixturevalue("postgres_url"))


def test_metrics_file_holds_the_reports_figures(tmp_path: Path, ledger: Path | str, run_preserve) -> None:
    bags = [one_file_bag(tmp_path, f"m{i}", b"RIFF" + os.urandom(1000 * (i + 1))) for i in range(3)]
    (bags[2] / "data/objects/a.wav").write_bytes(b"altered")
    assert run_preserve("audit", tmp_path / "archive", "--tier", "fast", "--ledger", ledger, "-q").returncode == 1
    assert run_preserve("audit", bags[0], "--tier", "full", "--ledger", ledger, "-q").returncode == 0
    with Ledger(ledger) as led:
        led.record_replica(str(bags[0]), "s3://vault/a", location="s3://vault/a/m0", started="2026-12-01T00:00:00Z",
                           ended="2026-12-01T00:00:01Z", objects=8, bytes=1004, outcome="pass", site="Leeds")
    out = tmp_path / "textfile" / "preserve.prom"
    out.parent.mkdir()
    out.write_text("old content\n")
    result = run_preserve("report", "--ledger", ledger, "--metrics", out)
    assert result.returncode == 1, result.stderr  # an open failure: the report's own exit code stays
    m = _samples(out)
    assert m[("preserve_bags", ())] == 3
    assert m[("preserve_audits", ())] == 4
    assert m[("preserve_open_failures", ())] == 1
    assert m[("preserve_never_audited_bags", ())] == 0
    assert m[("preserve_overdue_bags", ())] == 0
    assert m[("preserve_payload_bytes", ())] == sum(1004 + 1000 * i for i in range(3))
    # fast audits of m0, m1 and the altered m2 (7 bytes now), then a full audit of m0
    assert m[("preserve_verified_bytes", ())] == 1004 + 2004 + len(b"altered") + 1004
    for tier in ("fast", "full"):
        assert 0 <= m[("preserve_last_audit_age_seconds", (("tier", tier),))] < 600
        assert m[("preserve_last_audit_duration_seconds", (("tier", tier),))] >= 0
    assert 0 <= m[("preserve_oldest_verification_age_seconds", ())] < 600
    # copies: the failing bag has no verified copy, m0 its own and the replica's
    assert m[("preserve_bags_by_copies", (("copies", "0"),))] == 1
    assert m[("preserve_bags_by_copies", (("copies", "1"),))] == 1
    assert m[("preserve_bags_by_copies", (("copies", "2"),))] == 1
    # the NDSA levels are the report's own, bag for bag
    rows = json.loads(run_preserve("report", "--ledger", ledger, "--json").stdout)["sections"]["copies"]
    levels = Counter(str(r["level"]) for r in rows)
    assert {k[1][0][1]: v for k, v in m.items() if k[0] == "preserve_bags_by_ndsa_level"} == levels
    assert all(name.startswith("preserve_") for name, _ in m)
    assert sorted(p.name for p in out.parent.iterdir()) == ["preserve.prom"]  # replaced whole, nothing left beside


def test_metrics_into_a_missing_folder_is_a_storage_error(tmp_path: Path, run_preserve) -> None:
    ledger = tmp_path / "l.sqlite"
    Ledger(ledger).close()
    result = run_preserve("report", "--ledger", ledger, "--metrics", tmp_path / "nowhere" / "p.prom")
    assert result.returncode == 5
    assert "does not exist; create it first (nothing was written)" in result.stderr

"""Budgets, ordering (least recently verified first) and the tier policy, on real bags and ledgers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

from audit_helpers import audits_in

from preserve.audit.ledger import AuditRecord, Ledger


def _three_bags(make_bag, tmp_path: Path) -> list[Path]:
    parent = tmp_path / "archive"
    return [make_bag(f"bag{i}", {"objects/a.wav": os.urandom(100_000)}, parent=parent) for i in range(3)]


def test_max_bytes_stops_after_the_first_bag_and_the_next_run_continues(make_bag, tmp_path: Path, ledger_path: Path, pv) -> None:
    bags = _three_bags(make_bag, tmp_path)
    archive = tmp_path / "archive"
    first = pv("audit", archive, "--tier", "fast", "--max-bytes", "150k", "--ledger", ledger_path, "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert [a["location"] for a in report["audits"]] == [str(bags[0])]
    assert report["stop_reason"] == "--max-bytes: 2 bag(s) left for the next run"
    assert [d["path"] for d in report["deferred"]] == [str(bags[1]), str(bags[2])]

    second = pv("audit", archive, "--tier", "fast", "--max-bytes", "250k", "--ledger", ledger_path)
    assert second.exit_code == 0, second.stderr
    assert "audited 2 bag(s): 2 ok, 0 with problems" in second.stdout
    assert [loc for loc, _, _ in audits_in(ledger_path)] == [str(bags[0]), str(bags[1]), str(bags[2])]

    # the cycle goes on: the least recently verified bag is the first of the first run
    third = pv("audit", archive, "--tier", "fast", "--max-bytes", "1", "--ledger", ledger_path, "--json")
    assert [a["location"] for a in json.loads(third.stdout)["audits"]] == [str(bags[0])]


def _without_payload_oxum(bag: Path) -> None:
    """Drop Payload-Oxum from bag-info.txt (and re-hash it in the tag manifests): the runner then has
    no size to estimate the bag's time from, so it starts the bag whatever the budget left."""
    info = bag / "bag-info.txt"
    info.write_text("".join(line for line in info.read_text(encoding="utf-8").splitlines(keepends=True)
                            if not line.startswith("Payload-Oxum:")), encoding="utf-8")
    for tagmanifest in bag.glob("tagmanifest-*.txt"):
        alg = tagmanifest.stem.split("-", 1)[1]
        digest = hashlib.new(alg, info.read_bytes()).hexdigest()
        lines = tagmanifest.read_text(encoding="utf-8").splitlines()
        tagmanifest.write_text("".join(f"{digest}  bag-info.txt\n" if line.endswith("  bag-info.txt") else line + "\n"
                                       for line in lines), encoding="utf-8")


def test_a_time_budget_stops_a_running_bag_cleanly_without_recording_it(make_bag, tmp_path: Path, ledger_path: Path, pv) -> None:
    # the first bag always runs to its end; the second has no Payload-Oxum, so nothing tells the
    # runner it will not fit and it is started. At the 1 MB/s cap it needs ~40 s: a run that lasts
    # the 2 s budget and ends well inside those 40 s was stopped at the deadline
    parent = tmp_path / "archive"
    quick = make_bag("a-quick", {"objects/a.wav": os.urandom(1000)}, parent=parent)
    slow = make_bag("b-slow", {"objects/big.wav": os.urandom(40_000_000)}, parent=parent)
    _without_payload_oxum(slow)
    t0 = time.monotonic()
    result = pv("audit", parent, "--tier", "fast", "--budget", "2s", "--max-rate", "1M", "--ledger", ledger_path)
    elapsed = time.monotonic() - t0
    assert result.exit_code == 0, result.stderr
    assert "audited 1 bag(s)" in result.stdout
    assert "stopped: --budget spent: 1 bag(s) left for the next run" in result.stdout
    assert f"not audited this run: id-b-slow ({slow})" in result.stdout
    assert elapsed >= 1.9, "the slow bag was never started, so nothing was stopped at the deadline"
    assert elapsed < 20, "the audit did not stop at the deadline"
    assert audits_in(ledger_path) == [(str(quick), "fast", "pass")]
    with Ledger(ledger_path) as led:
        assert [s.location for s in led.bag_states() if not s.audits] == [str(slow)]


def test_a_time_budget_shorter_than_the_first_bag_never_stalls_the_cycle(make_bag, tmp_path: Path, ledger_path: Path, pv) -> None:
    # each bag takes ~1.5 s at the cap, far past the budget: the first is finished anyway
    parent = tmp_path / "archive"
    bags = [make_bag(f"bag{i}", {"objects/a.wav": os.urandom(2_000_000)}, parent=parent) for i in range(3)]
    first = pv("audit", parent, "--tier", "fast", "--budget", "0.2s", "--max-rate", "800k", "--ledger", ledger_path, "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert [a["location"] for a in report["audits"]] == [str(bags[0])]
    assert report["stop_reason"] == "--budget spent: 2 bag(s) left for the next run"
    assert [d["path"] for d in report["deferred"]] == [str(bags[1]), str(bags[2])]
    assert any("the first bag is always audited to its end" in w for w in report["warnings"])
    assert "the first bag is always audited to its end" in first.stderr

    # the next runs go on with the bags not yet verified, one a night, and the cycle comes round
    second = pv("audit", parent, "--tier", "fast", "--budget", "0.2s", "--max-rate", "800k", "--ledger", ledger_path, "--json")
    assert [a["location"] for a in json.loads(second.stdout)["audits"]] == [str(bags[1])]
    third = pv("audit", parent, "--tier", "fast", "--budget", "0.2s", "--max-rate", "800k", "--ledger", ledger_path, "--json")
    assert [a["location"] for a in json.loads(third.stdout)["audits"]] == [str(bags[2])]
    assert [loc for loc, _, _ in audits_in(ledger_path)] == [str(b) for b in bags]


def test_max_rate_caps_the_read_rate(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("rate", {"objects/a.wav": os.urandom(3_000_000)})
    t0 = time.monotonic()
    assert pv("audit", bag, "--tier", "fast", "--max-rate", "1M", "--ledger", ledger_path, "-q").exit_code == 0
    # the bucket starts full (1 MB), so 3 MB at 1 MB/s takes at least ~2 s
    assert time.monotonic() - t0 >= 1.8


def test_the_policy_runs_a_full_audit_every_nth_time(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("policy")
    for _ in range(5):
        assert pv("audit", bag, "--full-every", "3", "--ledger", ledger_path, "-q").exit_code == 0
    assert [tier for _, tier, _ in audits_in(ledger_path)] == ["full", "fast", "fast", "full", "fast"]


def test_the_policy_runs_a_full_audit_when_the_last_one_is_old(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("old")
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with Ledger(ledger_path) as led:
        led.record_audit(AuditRecord(location=str(bag), identifier="id-old", tier="full", started=long_ago, ended=long_ago,
                                     bytes=1, files=1, outcome="pass", algorithm="sha256", tool_version="0.0.1"))
    assert pv("audit", bag, "--ledger", ledger_path, "-q").exit_code == 0
    assert pv("audit", bag, "--ledger", ledger_path, "-q", "--full-after", "500d").exit_code == 0
    assert [tier for _, tier, _ in audits_in(ledger_path)] == ["full", "full", "fast"]


def test_bags_are_found_under_folders_least_recently_verified_first(make_bag, tmp_path: Path, ledger_path: Path, pv) -> None:
    bags = _three_bags(make_bag, tmp_path)
    assert pv("audit", bags[2], "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 0
    time.sleep(1.1)  # ledger times have one-second resolution
    assert pv("audit", bags[0], "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 0
    result = pv("audit", tmp_path / "archive", "--tier", "fast", "--ledger", ledger_path, "--json")
    # bag1 never audited, then bag2 (older audit), then bag0
    assert [a["location"] for a in json.loads(result.stdout)["audits"]] == [str(bags[1]), str(bags[2]), str(bags[0])]

"""Bags that go away or cannot be read: a loss is a recorded failure and an alert, never a skip,
a crash, or the end of the run for the other bags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from audit_helpers import audits_in, ledger_exists, preserve_exe, sql


def _findings(ledger: Path) -> dict[str, list[tuple[str, str]]]:
    """bag location -> (kind, file) of the findings of its latest audit."""
    rows = sql(ledger, "SELECT b.location, f.kind, f.file FROM findings f JOIN audits a ON a.id = f.audit_id "
                       "JOIN bags b ON b.id = a.bag_id WHERE a.id = (SELECT max(id) FROM audits WHERE bag_id = b.id) "
                       "ORDER BY f.id")
    out: dict[str, list[tuple[str, str]]] = {}
    for loc, kind, file in rows:
        out.setdefault(loc, []).append((kind, file))
    return out


def test_bags_that_vanish_or_lose_bagit_txt_are_failures_and_alerted(make_bag, tmp_path: Path, ledger_path: Path, pv,
                                                                      webhook) -> None:
    url, received = webhook
    archive = tmp_path / "archive"
    bags = [make_bag(f"bag{i}", parent=archive) for i in range(3)]
    assert pv("audit", archive, "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 0
    (bags[0] / "bagit.txt").unlink()
    shutil.rmtree(bags[2])

    result = pv("audit", archive, "--tier", "fast", "--ledger", ledger_path, "--notify", url)
    assert result.exit_code == 1, result.stderr
    assert "audited 3 bag(s): 1 ok, 2 with problems" in result.stdout
    assert f"missing: (the bag): the bag is gone: {bags[2]} no longer exists" in result.stdout
    outcomes = audits_in(ledger_path)[3:]
    assert sorted(outcomes) == [(str(bags[0]), "fast", "fail"), (str(bags[1]), "fast", "pass"), (str(bags[2]), "fast", "fail")]
    findings = _findings(ledger_path)
    assert findings[str(bags[0])] == [("missing", "bagit.txt")]
    assert findings[str(bags[2])] == [("missing", "")]
    [call] = received
    problems = {p["location"]: p for p in call["body"]["problems"]}
    assert sorted(problems) == [str(bags[0]), str(bags[2])]
    assert problems[str(bags[2])]["bag"] == "id-bag2"  # the ledger's identifier: the bag cannot tell it any more
    assert problems[str(bags[2])]["findings"][0]["kind"] == "missing"

    # a gone bag named directly is a failure too, not "no such file" (exit 3)
    direct = pv("audit", bags[2], "--tier", "fast", "--ledger", ledger_path)
    assert direct.exit_code == 1, direct.stderr
    assert "audited 1 bag(s): 0 ok, 1 with problems" in direct.stdout


def test_a_bag_moved_away_during_a_run_is_recorded_and_the_run_goes_on(make_bag, tmp_path: Path, ledger_path: Path,
                                                                       webhook) -> None:
    url, received = webhook
    archive = tmp_path / "archive"
    # at 1 MB/s the first bag takes ~3 s: time enough to move the second away while it is read
    first = make_bag("bag0", {"objects/a.wav": os.urandom(4_000_000)}, parent=archive)
    second = make_bag("bag1", parent=archive)
    proc = subprocess.Popen([preserve_exe(), "audit", archive, "--tier", "fast", "--max-rate", "1M", "--ledger", ledger_path,
                             "--notify", url, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        planned = False
        while time.monotonic() < deadline and not planned:
            # both bags registered: the plan is made and the first bag is being read. Read-only,
            # and only once it exists, so this never creates the ledger while preserve does
            if ledger_exists(ledger_path):
                try:
                    planned = sql(ledger_path, "SELECT count(*) FROM bags")[0][0] == 2
                except Exception:  # the schema is being created
                    pass
            time.sleep(0.02)
        assert planned, "the audit never planned its bags"
        shutil.move(second, tmp_path / "moved")
        still_running = proc.poll() is None
    finally:
        out, err = proc.communicate(timeout=120)
    assert still_running, "the audit had finished before the bag was moved: the test proves nothing"
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    run = json.loads(out)
    assert [(a["location"], a["outcome"]) for a in run["audits"]] == [(str(first), "pass"), (str(second), "fail")]
    assert [f["kind"] for f in run["audits"][1]["findings"]] == ["missing"]
    [call] = received
    assert [p["location"] for p in call["body"]["problems"]] == [str(second)]


def test_unreadable_bag_info_and_folders_are_reported_not_a_crash(make_bag, tmp_path: Path, ledger_path: Path,
                                                                     permissions_apply) -> None:
    archive = tmp_path / "archive"
    info_locked = make_bag("info-locked", parent=archive)
    hidden = make_bag("hidden", parent=archive / "locked")
    preexec = permissions_apply
    first = subprocess.run([preserve_exe(), "audit", archive, "--tier", "fast", "--ledger", ledger_path, "-q"],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    os.chmod(info_locked / "bag-info.txt", 0)
    os.chmod(archive / "locked", 0)
    try:
        result = subprocess.run([preserve_exe(), "audit", archive, "--tier", "fast", "--ledger", ledger_path, "--json"],
                                capture_output=True, text=True, timeout=120, preexec_fn=preexec)
        # a folder the ledger knows nothing under: its bags cannot be found, and the user is told
        fresh = subprocess.run([preserve_exe(), "audit", archive, "--tier", "fast", "--ledger", tmp_path / "new.sqlite", "--json"],
                               capture_output=True, text=True, timeout=120, preexec_fn=preexec)
    finally:
        os.chmod(archive / "locked", 0o755)
        os.chmod(info_locked / "bag-info.txt", 0o644)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    run = json.loads(result.stdout)
    found = {a["location"]: [(f["kind"], f["file"], f["message"]) for f in a["findings"]] for a in run["audits"]}
    assert found == {
        str(info_locked): [("unreadable", "bag-info.txt", "cannot be read (Permission denied)")],
        str(hidden): [("unreadable", "", "the bag cannot be read (Permission denied)")],
    }
    assert {a["identifier"] for a in run["audits"]} == {"id-info-locked", "id-hidden"}
    warning = f"{archive / 'locked'}: cannot be read (Permission denied); bags inside it cannot be found or audited"
    assert run["warnings"] == [warning]
    assert f"warning: {warning}" in result.stderr
    assert fresh.returncode == 1, fresh.stderr
    assert "Traceback" not in fresh.stderr
    assert json.loads(fresh.stdout)["warnings"] == [warning]

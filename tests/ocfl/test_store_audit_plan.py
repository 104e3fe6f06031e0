"""``preserve audit`` on OCFL stores goes the bag audit's way: the same plan (the ledger's history,
least recently verified first, --max-bytes, --budget), the same schedulers (local, Dask), the
same progress lines and the same summary and exit codes, with bags and store roots in one run."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from preserve.audit.runner import OCFL_OBJECT, AuditOptions, BudgetSpent, PlannedBag, audit_item
from preserve.ocfl import ingest
from preserve.ocfl.audit import check_object
from preserve.ocfl.inventory import read_inventory
from preserve.ocfl.layout import open_root
from preserve.ocfl.update import update
from tests.conftest import Preserve
from tests.ocfl.conftest import MakeBag


def _objects(make_bag: MakeBag, store_root: Path, sizes: list[int], first: int = 1) -> list[Path]:
    """One object per size (an audio file of that many bytes and a note), ids numbered from
    ``first``, sorted by folder: the order in which a run takes objects that were never audited."""
    for n, size in enumerate(sizes, first):
        bag = make_bag(f"bag{n}", {"a.wav": os.urandom(size), "notes.txt": f"take {n}\n".encode()},
                       info=[("External-Identifier", f"urn:example:obj{n}")])
        ingest(store_root, bag, user="Ann Curator", address="mailto:ann@example.org")
    root = open_root(store_root)
    return sorted((root.object_path(f"urn:example:obj{n}").resolve() for n in range(first, first + len(sizes))), key=str)


def _audit(pv: Preserve, *args: str | os.PathLike[str]) -> tuple[int, dict[str, Any]]:
    done = pv("audit", *args, "--json")
    return done.exit_code, json.loads(done.stdout)


def _audits_in(ledger: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(ledger) as db:
        return [(str(r[0]), str(r[1])) for r in db.execute(
            "SELECT b.location, a.tier FROM audits a JOIN bags b ON b.id = a.bag_id ORDER BY a.id")]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _content(obj: Path, suffix: str) -> Path:
    inventory = read_inventory(obj)
    return obj / str(sorted(p for ps in inventory["manifest"].values() for p in ps if p.endswith(suffix))[0])


def test_max_bytes_defers_objects_and_the_next_run_takes_them_first(make_bag: MakeBag, store_root: Path,
                                                                      tmp_path: Path, pv: Preserve) -> None:
    objs = _objects(make_bag, store_root, [100_000] * 3)
    ledger = tmp_path / "ledger.sqlite"
    code, first = _audit(pv, store_root, "--tier", "full", "--max-bytes", "150k", "--ledger", ledger)
    assert code == 0, first
    assert [a["location"] for a in first["audits"]] == [str(objs[0])]
    assert first["stop_reason"] == "--max-bytes: 2 bag(s) left for the next run"
    assert [d["path"] for d in first["deferred"]] == [str(objs[1]), str(objs[2])]
    assert first["audits"][0]["bytes"] > 100_000

    code, second = _audit(pv, store_root, "--tier", "full", "--max-bytes", "250k", "--ledger", ledger)
    assert code == 0, second
    assert [a["location"] for a in second["audits"]] == [str(objs[1]), str(objs[2])]
    assert [d["path"] for d in second["deferred"]] == [str(objs[0])]  # audited last run: it waits its turn
    # the cycle goes on: the least recently verified object is the first of the first run
    code, third = _audit(pv, store_root, "--tier", "full", "--max-bytes", "1", "--ledger", ledger)
    assert [a["location"] for a in third["audits"]] == [str(objs[0])]
    assert _audits_in(ledger) == [(str(o), "full") for o in (*objs, objs[0])]
    # the fast tier reads no content, so a byte limit defers nothing
    code, fast = _audit(pv, store_root, "--tier", "fast", "--max-bytes", "1", "--ledger", ledger)
    assert code == 0 and fast["deferred"] == [] and fast["stop_reason"] is None
    assert len(fast["audits"]) == 3 and fast["bytes"] == 0


def test_the_tier_policy_reads_each_objects_history(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                    pv: Preserve) -> None:
    objs = _objects(make_bag, store_root, [20_000, 20_000])
    ledger = tmp_path / "ledger.sqlite"
    tiers = []
    for _ in range(3):
        code, run = _audit(pv, store_root, "--full-every", "2", "--ledger", ledger)
        assert code == 0, run
        tiers.append([a["tier"] for a in run["audits"]])
    # never audited in full, then fast between full audits, then every 2nd audit full again
    assert tiers == [["full", "full"], ["fast", "fast"], ["full", "full"]]
    assert [loc for loc, _ in _audits_in(ledger)] == [str(o) for o in objs] * 3
    # an object added later is the one never audited: it goes first, in full
    (new,) = _objects(make_bag, store_root, [20_000], first=3)
    code, run = _audit(pv, store_root, "--full-every", "2", "--ledger", ledger)
    assert code == 0, run
    assert [(a["location"], a["tier"]) for a in run["audits"]][:2] == [(str(new), "full"), (str(objs[0]), "fast")]
    assert len(run["audits"]) == 3 and run["audits"][2]["tier"] == "fast"


def test_a_time_budget_stops_between_objects_and_inside_one(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                            pv: Preserve) -> None:
    objs = _objects(make_bag, store_root, [1_600_000] * 3)
    ledger = tmp_path / "ledger.sqlite"
    # at 800 kB/s each object takes ~1 s, far past the budget: the first is audited to its end anyway
    # (so the cycle never stalls), and the others are left for the next run
    code, run = _audit(pv, store_root, "--tier", "full", "--budget", "0.2s", "--max-rate", "800k", "--ledger", ledger)
    assert code == 0, run
    assert [a["location"] for a in run["audits"]] == [str(objs[0])]
    assert run["stop_reason"] == "--budget spent: 2 bag(s) left for the next run"
    assert [d["path"] for d in run["deferred"]] == [str(objs[1]), str(objs[2])]
    assert any("the first bag is always audited to its end" in w for w in run["warnings"])
    assert _audits_in(ledger) == [(str(objs[0]), "full")]
    # an object whose audit is running when the deadline passes is stopped (and so never recorded)
    item = PlannedBag(objs[1], "urn:example:obj2", "full", "test", 1_200_000, None, kind=OCFL_OBJECT)
    with pytest.raises(BudgetSpent):
        audit_item(item, AuditOptions(), deadline=time.monotonic() - 1)
    assert audit_item(item, AuditOptions()).outcome == "pass"


def test_bags_and_a_store_root_in_one_run(make_bag: MakeBag, store_root: Path, tmp_path: Path, pv: Preserve) -> None:
    objs = _objects(make_bag, store_root, [30_000, 30_000])
    bag = make_bag("loose")
    ledger = tmp_path / "ledger.sqlite"
    code, run = _audit(pv, bag, store_root, "--tier", "full", "--ledger", ledger)
    assert code == 0, run
    assert sorted(a["location"] for a in run["audits"]) == sorted([str(bag.resolve()), *map(str, objs)])
    assert {a["location"]: a["algorithm"] for a in run["audits"]}[str(objs[0])] == "sha512"
    assert (run["bags_audited"], run["bags_ok"], run["bags_with_problems"]) == (3, 3, 0)
    _flip(_content(objs[1], "a.wav"))
    done = pv("audit", bag, store_root, "--tier", "full", "--ledger", ledger)
    assert done.exit_code == 1
    assert "audited 3 bag(s): 2 ok, 1 with problems" in done.stdout
    damaged, sound = read_inventory(objs[1])["id"], read_inventory(objs[0])["id"]
    assert f"PROBLEMS in {damaged} ({objs[1]}, full tier):" in done.stdout
    # each object's line as it is done, as for a bag
    assert f"FAIL {objs[1]} [{damaged}] (full, sha512" in done.stderr
    assert f"ok   {objs[0]} [{sound}] (full, sha512" in done.stderr


def test_an_object_gone_from_the_store_is_a_failure(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                    pv: Preserve) -> None:
    objs = _objects(make_bag, store_root, [10_000, 10_000])
    ledger = tmp_path / "ledger.sqlite"
    assert _audit(pv, store_root, "--tier", "fast", "--ledger", ledger)[0] == 0
    gone_id = read_inventory(objs[0])["id"]
    shutil.rmtree(objs[0])
    code, run = _audit(pv, store_root, "--tier", "fast", "--ledger", ledger)
    assert code == 1
    audits = {a["location"]: a for a in run["audits"]}
    assert audits[str(objs[1])]["outcome"] == "pass"
    lost = audits[str(objs[0])]
    assert (lost["identifier"], lost["outcome"]) == (gone_id, "fail")
    assert [(f["kind"], f["code"]) for f in lost["findings"]] == [("missing", "object-missing")]
    assert "no longer exists" in lost["findings"][0]["message"]


def test_the_audited_version_is_the_head(make_bag: MakeBag, store_root: Path) -> None:
    (obj,) = _objects(make_bag, store_root, [5_000])
    first = check_object(obj, "full")
    assert (first.version, first.record.outcome) == ("v1", "pass")
    # two updates: the head is v3, and that is the version audited
    for path in ("data/notes.txt", "data/a.wav"):
        update(store_root, "urn:example:obj1", remove=(path,), reason="withdrawn", operator="Ann")
    after = check_object(obj, "full")
    assert (after.version, after.record.outcome) == ("v3", "pass")
    assert read_inventory(obj)["head"] == "v3"
    # an inventory that cannot be read names no version, and fails
    (obj / "inventory.json").write_text("{ not json", encoding="utf-8")
    broken = check_object(obj, "fast")
    assert (broken.version, broken.record.outcome) == (None, "fail")


_LINE = re.compile(r"^preserve: auditing: verify: (\d+)%, [\d.]+ (?:bytes|[kMGT]B) of [\d.]+ (?:bytes|[kMGT]B), ")


def test_progress_lines_and_quiet(make_bag: MakeBag, store_root: Path, tmp_path: Path, run_preserve: Any) -> None:
    # 2 MB at 1 MB/s: the rate limiter's bucket starts with one second's worth, so the run lasts ~1 s
    _objects(make_bag, store_root, [1_000_000] * 2)
    args = ["audit", "--tier", "full", "--max-rate", "1M", "--progress-interval", "0.02", str(store_root)]
    # standard error is a pipe, as under cron or systemd: one plain line per interval
    done = run_preserve(*args, "--ledger", tmp_path / "one.sqlite")
    assert done.returncode == 0, done.stderr
    lines = [m for m in map(_LINE.match, done.stderr.splitlines()) if m]
    assert len(lines) >= 2, done.stderr
    assert any(0 < int(m.group(1)) <= 100 for m in lines), done.stderr
    assert "audited 2 bag(s): 2 ok, 0 with problems" in done.stdout
    quiet = run_preserve(*args, "-q", "--ledger", tmp_path / "two.sqlite")
    assert quiet.returncode == 0, quiet.stderr
    assert "auditing" not in quiet.stderr and "%" not in quiet.stderr


@pytest.mark.slow
def test_a_dask_cluster_finds_what_the_local_run_finds(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                       pv: Preserve) -> None:
    distributed = pytest.importorskip("distributed", reason="Dask distributed is the optional extra preserve[dask]")
    objs = _objects(make_bag, store_root, [200_000] * 3)
    bag = make_bag("loose")
    _flip(_content(objs[0], "a.wav"))
    _content(objs[1], "notes.txt").unlink()

    def findings(run: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
        return {a["location"]: sorted((f["kind"], f["file"], f["code"]) for f in a["findings"]) for a in run["audits"]}

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for tier in ("fast", "full"):
            lcode, local = _audit(pv, bag, store_root, "--tier", tier, "--ledger", tmp_path / f"local-{tier}.sqlite")
            dcode, dask = _audit(pv, bag, store_root, "--tier", tier, "--ledger", tmp_path / f"dask-{tier}.sqlite",
                                 "--scheduler", cluster.scheduler_address)
            assert (lcode, dcode) == (1, 1), dask
            assert findings(dask) == findings(local)
            assert len(findings(dask)) == 4
            assert dask["bags_with_problems"] == (2 if tier == "full" else 1)
            assert sorted(_audits_in(tmp_path / f"dask-{tier}.sqlite")) == sorted(
                _audits_in(tmp_path / f"local-{tier}.sqlite"))

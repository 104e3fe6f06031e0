"""The same audit on a real Dask cluster (two worker processes): the same findings as the local run."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from audit_helpers import audits_in, flip_byte

from preserve.audit.distributed import per_task_options
from preserve.audit.ledger import parse_iso
from preserve.audit.runner import AuditOptions

distributed = pytest.importorskip("distributed", reason="Dask distributed is the optional extra preserve[dask]")


def _findings(report: dict[str, object]) -> dict[str, list[tuple[str, str, str | None, str | None]]]:
    out = {}
    for a in report["audits"]:  # type: ignore[attr-defined]
        out[a["location"]] = sorted((f["kind"], f["file"], f["expected"], f["found"]) for f in a["findings"])
    return out


@pytest.mark.slow
def test_a_local_cluster_finds_what_the_local_run_finds(make_bag, tmp_path: Path, pv) -> None:
    bags = [make_bag(f"bag{i}", {"objects/a.wav": os.urandom(200_000), "objects/b.txt": b"notes"}) for i in range(4)]
    flip_byte(bags[1] / "data/objects/a.wav")
    os.unlink(bags[2] / "data/objects/b.txt")
    (bags[3] / "data/objects/extra.txt").write_bytes(b"stray")
    archive = tmp_path / "archive"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert len(cluster.workers) == 2
        for tier in ("fast", "full"):
            local = pv("audit", archive, "--tier", tier, "--ledger", tmp_path / f"local-{tier}.sqlite", "--json")
            remote = pv("audit", archive, "--tier", tier, "--ledger", tmp_path / f"dask-{tier}.sqlite", "--json",
                        "--scheduler", cluster.scheduler_address)
            assert (local.exit_code, remote.exit_code) == (1, 1), remote.stderr
            assert _findings(json.loads(remote.stdout)) == _findings(json.loads(local.stdout))
            assert len(_findings(json.loads(remote.stdout))) == 4
            assert json.loads(remote.stdout)["bags_with_problems"] == 3
            # the client alone wrote its ledger, one audit per bag
            assert sorted(audits_in(tmp_path / f"dask-{tier}.sqlite")) == sorted(audits_in(tmp_path / f"local-{tier}.sqlite"))


def test_an_unreachable_scheduler_is_a_remote_error(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("lonely")
    result = pv("audit", bag, "--ledger", ledger_path, "--scheduler", "tcp://127.0.0.1:9",
                "--scheduler-timeout", "1")
    assert result.exit_code == 6
    assert "tcp://127.0.0.1:9: cannot reach the Dask scheduler" in result.stderr


def test_tls_options_need_a_tls_scheduler(make_bag, tmp_path: Path, ledger_path: Path, pv) -> None:
    bag = make_bag("tls")
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    result = pv("audit", bag, "--ledger", ledger_path, "--scheduler", "tcp://127.0.0.1:9", "--tls-ca-file", ca)
    assert result.exit_code == 2
    assert "--tls-ca-file/--tls-cert/--tls-key need a tls:// scheduler address, not tcp://127.0.0.1:9" in result.stderr


@pytest.mark.slow
def test_a_tls_cluster_is_reached_with_certificates(make_bag, tmp_path: Path, pv) -> None:
    pytest.importorskip("cryptography", reason="temporary TLS certificates need the cryptography package")
    security = distributed.security.Security.temporary()
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca.write_text(security.tls_ca_file)
    cert.write_text(security.tls_client_cert)
    key.write_text(security.tls_client_key)
    bag = make_bag("secure")
    flip_byte(bag / "data/objects/a.wav")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  protocol="tls://", security=security) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        ledger = tmp_path / "tls.sqlite"
        without = pv("audit", bag, "--tier", "fast", "--ledger", ledger, "--scheduler", cluster.scheduler_address)
        assert without.exit_code == 2
        assert f"{cluster.scheduler_address}: no TLS certificates: pass --tls-ca-file and --tls-cert" in without.stderr
        result = pv("audit", bag, "--tier", "fast", "--ledger", ledger, "--json", "--scheduler", cluster.scheduler_address,
                    "--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key)
        assert result.exit_code == 1, result.stderr
        [audit] = json.loads(result.stdout)["audits"]
        assert [(f["kind"], f["file"]) for f in audit["findings"]] == [("altered", "data/objects/a.wav")]
        assert audits_in(ledger) == [(str(bag), "fast", "fail")]


@pytest.mark.slow
def test_on_a_cluster_the_rate_cap_is_for_the_run_and_a_gone_bag_is_a_failure(make_bag, tmp_path: Path, pv) -> None:
    archive = tmp_path / "archive"
    bags = [make_bag(f"bag{i}", {"objects/a.wav": os.urandom(4_000_000)}, parent=archive) for i in range(2)]
    gone = make_bag("gone", parent=archive)
    ledger = tmp_path / "dask.sqlite"
    assert pv("audit", gone, "--tier", "fast", "--ledger", ledger, "-q").exit_code == 0
    shutil.rmtree(gone)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        t0 = time.monotonic()
        result = pv("audit", archive, "--tier", "fast", "--ledger", ledger, "--json", "--max-rate", "2M",
                    "--scheduler", cluster.scheduler_address)
        elapsed = time.monotonic() - t0
    assert result.exit_code == 1, result.stderr
    run = json.loads(result.stdout)
    assert sorted((a["location"], a["outcome"]) for a in run["audits"]) == [
        (str(bags[0]), "pass"), (str(bags[1]), "pass"), (str(gone), "fail")]
    [lost] = [a for a in run["audits"] if a["location"] == str(gone)]
    assert [(f["kind"], f["file"]) for f in lost["findings"]] == [("missing", "")]
    # 2 MB/s for the whole run: the two tasks read 4 MB each at 1 MB/s at once (buckets start
    # with 1 MB), ~3 s; a cap per task (2 MB/s each) would be done in about 1 s
    assert elapsed >= 2.5
    # each audit alone, without the cluster's start-up: >= 3 s read, so >= 2 s on the ledger's
    # one-second clock (a per-task cap of 2 MB/s reads a bag in ~1.5 s)
    for audit in run["audits"]:
        if audit["location"] != str(gone):
            seconds = (parse_iso(audit["ended"]) - parse_iso(audit["started"])).total_seconds()
            assert seconds >= 2, (audit["location"], audit["started"], audit["ended"])


@pytest.mark.parametrize(("max_rate", "threads", "per_task"), [
    (2_000_000, 2, 1_000_000), (3_000_000, 4, 750_000), (5, 8, 1), (1_000_000, 0, 1_000_000), (None, 4, None)])
def test_the_run_rate_cap_is_shared_by_the_clusters_threads(max_rate: int | None, threads: int,
                                                             per_task: int | None) -> None:
    opts = AuditOptions(workers=3, max_rate=max_rate, drop_cache=True, processes=None)
    task = per_task_options(opts, threads)
    assert task.max_rate == per_task
    # tasks keep to threads, everything else as given
    assert (task.workers, task.drop_cache, task.processes) == (3, True, 0)
    assert opts.max_rate == max_rate

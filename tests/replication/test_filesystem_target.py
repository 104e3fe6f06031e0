"""The same replication features on a file-system target (a directory on a second disk)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from replication_helpers import MIB, ledger_rows, make_bag

from preserve.audit.ledger import ledger_exists


def test_replicate_to_a_directory_verifies_and_second_run_copies_nothing(pcli, tmp_path: Path,
                                                                         ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=3 * MIB)
    disk = tmp_path / "disk2" / "bags"
    ledger = ledger_url
    n = sum(1 for p in bag.rglob("*") if p.is_file())
    r = pcli("replicate", bag, disk, "--ledger", ledger)  # -q would leave the warning out
    assert r.exit_code == 0, r.output
    assert f"{disk}/bag-one: complete, {n} objects" in r.output
    # tmp_path is one file system: the copy shares the bag's disk, and the tool says so
    assert f"warning: {disk} is on the same file system as {bag}; that copy does not protect against the disk failing" in r.output
    for p in bag.rglob("*"):
        if p.is_file():
            assert (disk / "bag-one" / p.relative_to(bag)).read_bytes() == p.read_bytes()
    assert json.loads((disk / "bag-one.preserve-replica.json").read_text())["complete"] is True
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"0 sent (0 B), {n} already there" in r.output
    rows = ledger_rows(ledger, "replicas")
    assert [(row["outcome"], row["target"], row["location"]) for row in rows] == [
        ("pass", str(disk), f"{disk}/bag-one")] * 2
    assert json.loads(rows[1]["detail"])["uploaded"] == 0


def test_a_replaced_copy_is_sent_again_and_a_different_bag_refused(pcli, tmp_path: Path,
                                                                   ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
    copy = disk / "bag-one/data/disc 1/02 song.flac"
    copy.write_bytes(b"\0" * copy.stat().st_size)
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert "1 sent" in r.output
    assert copy.read_bytes() == (bag / "data/disc 1/02 song.flac").read_bytes()
    other = make_bag(tmp_path / "other")
    r = pcli("replicate", other, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 1
    assert f"{disk}/bag-one: a different bag named 'bag-one' is already there" in r.output
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass", "pass"]


def test_copy_killed_part_way_then_rerun_completes(run_preserve, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=12 * MIB)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    exe = Path(sys.executable).parent / "preserve"
    proc = subprocess.Popen([str(exe), "replicate", str(bag), str(disk), "--ledger", str(ledger), "-q",
                             "--bandwidth", "3M", "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _largest_upload(disk) <= MIB:  # the 12 MiB file is being written in the run's staging
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (disk / "bag-one/data/disc 1/03 long.wav").exists()  # only in the staging folder
    r = run_preserve("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.returncode == 0, r.stderr
    assert "1 stale upload(s) aborted" in r.stdout
    assert not (disk / ".preserve-uploads").exists()
    r = run_preserve("audit", disk / "bag-one", "--tier", "remote-full", "--ledger", ledger, "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass"]
    assert [(a["tier"], a["outcome"]) for a in ledger_rows(ledger, "audits")] == [("remote-full", "pass")]


def test_remote_audit_of_a_directory_replica(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
    copy = disk / "bag-one/data/disc 1/02 song.flac"
    copy.write_bytes(b"\0" * copy.stat().st_size)  # same size, other bytes
    os.unlink(disk / "bag-one/data/notes%.txt")
    r = pcli("audit", disk / "bag-one", "--tier", "remote-metadata", "--ledger", ledger, "-q")
    assert r.exit_code == 1
    assert f"FAIL {disk}/bag-one/data/notes%.txt: listed in the manifest but not in the replica" in r.output
    assert "have no stored checksum (filesystem store): presence and size only" in r.output
    r = pcli("audit", disk / "bag-one", "--tier", "remote-full", "--ledger", ledger, "-q")
    assert r.exit_code == 1
    assert f"FAIL {disk}/bag-one/data/disc 1/02 song.flac: sha256 of the stored object does not match manifest-sha256.txt" in r.output
    findings = {(f["file"], f["kind"]) for f in ledger_rows(ledger, "findings")}
    assert ("data/notes%.txt", "missing") in findings and ("data/disc 1/02 song.flac", "altered") in findings


def test_the_bag_itself_is_not_a_replica(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    ledger = ledger_url
    for target in (tmp_path, bag / "data"):
        r = pcli("replicate", bag, target, "--ledger", ledger, "-q")
        assert r.exit_code == 2, r.output
        assert "which is the bag itself or inside it; choose a directory on another disk" in r.output
    assert not ledger_exists(ledger) or ledger_rows(ledger, "replicas") == []


def test_remote_audit_problems_are_posted_to_the_webhook(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    import http.server
    import threading

    received: list[dict[str, object]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bag = make_bag(tmp_path)
        disk = tmp_path / "disk2"
        ledger = ledger_url
        assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        r = pcli("audit", disk / "bag-one", "--tier", "remote-full", "--ledger", ledger, "--notify", hook, "-q")
        assert r.exit_code == 0 and received == []  # nothing to report: nothing posted
        os.unlink(disk / "bag-one/data/notes%.txt")
        r = pcli("audit", disk / "bag-one", "--tier", "remote-full", "--ledger", ledger, "--notify", hook, "-q")
        assert r.exit_code == 1
    finally:
        server.shutdown()
        server.server_close()
    [payload] = received
    assert payload["bags_with_problems"] == 1
    [problem] = payload["problems"]  # type: ignore[misc]
    assert problem["location"] == f"{disk}/bag-one" and problem["tier"] == "remote-full"
    assert problem["findings"] == [{"file": "data/notes%.txt", "kind": "missing", "message": "listed in the manifest but not in the replica",
                                    "expected": None, "found": None}]


def test_several_targets_one_failing(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    ledger = ledger_url
    r = pcli("replicate", bag, tmp_path / "disk2", tmp_path, "--ledger", ledger, "-q")
    assert r.exit_code == 2
    assert f"{tmp_path}/disk2/bag-one: complete" in r.output
    assert "which is the bag itself or inside it" in r.output
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass"]


def test_bandwidth_cap_slows_the_copy(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files={"a.wav": os.urandom(3 * MIB)})
    started = time.monotonic()
    r = pcli("replicate", bag, tmp_path / "disk2", "--bandwidth", "1M", "--ledger", ledger_url, "-q")
    elapsed = time.monotonic() - started
    assert r.exit_code == 0, r.output
    assert elapsed >= 1.5  # 3.1 MB at 1 MB/s, the first second's allowance free


def _largest_upload(disk: Path) -> int:
    """Bytes in the biggest temporary file in the store's staging so far; one renamed between glob
    and stat is skipped."""
    sizes = [0]
    for p in disk.glob(".preserve-uploads/*/*"):
        try:
            sizes.append(p.stat().st_size)
        except FileNotFoundError:
            pass
    return max(sizes)


def test_tar_copy_killed_part_way_then_rerun_leaves_no_temporary_file(run_preserve, tmp_path: Path,
                                                                      ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=12 * MIB)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    cmd = ["replicate", str(bag), str(disk), "--serialize", "tar", "--ledger", str(ledger), "-q"]
    exe = Path(sys.executable).parent / "preserve"
    proc = subprocess.Popen([str(exe), *cmd, "--bandwidth", "3M"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _largest_upload(disk) <= MIB:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (disk / "bag-one.tar").exists()
    r = run_preserve(*cmd)
    assert r.returncode == 0, r.stderr
    assert f"{disk}/bag-one.tar: complete, 1 objects" in r.stdout and "1 stale upload(s) aborted" in r.stdout
    assert sorted(p.name for p in disk.iterdir()) == ["bag-one.preserve-replica.json", "bag-one.tar"]
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass"]


def test_rerun_with_manifests_larger_than_the_small_object_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from preserve.errors import ReplicaConflict
    from preserve.replication import layout
    from preserve.replication.replicate import replicate_bag
    from preserve.stores.filesystem import FilesystemStore

    bag = make_bag(tmp_path, files={f"track {i:02d}.wav": os.urandom(100) for i in range(20)})
    disk = FilesystemStore(tmp_path / "disk2")
    assert replicate_bag(bag, disk).complete
    record = (tmp_path / "disk2/bag-one.preserve-replica.json").stat().st_size
    # the replica record still fits; the manifests do not (a bag of millions of files has such manifests)
    monkeypatch.setattr(layout, "SMALL_OBJECT_LIMIT", record + 16)
    assert (bag / "manifest-sha256.txt").stat().st_size > record + 16
    again = replicate_bag(bag, disk)
    assert again.complete and again.skipped == again.objects
    # without the record, the manifests themselves are compared (by streamed digest)
    os.unlink(tmp_path / "disk2/bag-one.preserve-replica.json")
    other = make_bag(tmp_path / "other", files={f"track {i:02d}.wav": os.urandom(100) for i in range(20)})
    with pytest.raises(ReplicaConflict, match=r"its manifest-sha256\.txt differs from ours"):
        replicate_bag(other, disk)
    again = replicate_bag(bag, disk)
    assert again.complete and again.skipped == again.objects


def test_metadata_audit_of_a_replica_whose_manifests_exceed_the_small_object_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from preserve.replication import layout
    from preserve.replication.remote_audit import audit_remote
    from preserve.replication.replicate import replicate_bag
    from preserve.stores.filesystem import FilesystemStore

    bag = make_bag(tmp_path, files={f"track {i:02d}.wav": os.urandom(100) for i in range(20)})
    disk = FilesystemStore(tmp_path / "disk3")
    assert replicate_bag(bag, disk).complete
    record = (tmp_path / "disk3/bag-one.preserve-replica.json").stat().st_size
    # a bag of millions of files has manifests of hundreds of MiB: they are streamed to disk
    monkeypatch.setattr(layout, "SMALL_OBJECT_LIMIT", record + 16)
    assert (bag / "manifest-sha512.txt").stat().st_size > record + 16
    result = audit_remote(disk, "bag-one", "remote-metadata")
    assert result.findings == [] and result.files == 20
    os.unlink(tmp_path / "disk3/bag-one/data/track 03.wav")
    result = audit_remote(disk, "bag-one", "remote-metadata")
    assert [(f.path, f.kind) for f in result.findings] == [("data/track 03.wav", "missing")]


@pytest.mark.parametrize("options", [["--storage-class", "GLACIER"],
                                     ["--lock-mode", "governance", "--retain-until", "2099-01-01"]],
                         ids=["storage-class", "object-lock"])
def test_s3_only_options_for_a_directory_target_are_refused_before_anything_is_sent(
        pcli, tmp_path: Path, options: list[str]) -> None:
    bag = make_bag(tmp_path)
    disk = tmp_path / "disk4"
    # one backend: refused before the ledger is opened
    r = pcli("replicate", bag, disk, *options, "--ledger", tmp_path / "ledger.sqlite", "-q")
    assert r.exit_code == 2
    assert f"{disk}: {options[0]}" in r.output and "apply to S3 targets only" in r.output
    assert not disk.exists()


def test_a_link_among_the_tag_files_stops_replication_with_a_message(pcli, tmp_path: Path,
                                                                     ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    (tmp_path / "elsewhere.txt").write_text("not part of the bag")
    (bag / "metadata" / "note.txt").symlink_to(tmp_path / "elsewhere.txt")
    r = pcli("replicate", bag, tmp_path / "disk5", "--ledger", ledger_url, "-q")
    assert r.exit_code == 1, r.output
    assert "metadata/note.txt: is a symbolic link" in r.output and "nothing was replicated" in r.output
    assert not (tmp_path / "disk5" / "bag-one" / "metadata" / "note.txt").exists()
    assert "Traceback" not in r.output

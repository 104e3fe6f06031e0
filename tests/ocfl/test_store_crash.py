"""Two writers on one object, and runs killed with SIGKILL at random moments: the previous
version stays intact and readable, and the next run cleans up."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.ocfl import ingest
from preserve.ocfl.layout import find_objects, open_root
from preserve.ocfl.read import export
from preserve.ocfl.txn import writing
from preserve.ocfl.validate import validate_object
from tests.ocfl.conftest import MakeBag, tree

Run = Callable[..., subprocess.CompletedProcess[str]]
ID = "urn:example:crash"
EXE = shutil.which("preserve", path=str(Path(sys.executable).parent)) or "preserve"


def _staging(root: Path) -> list[Path]:
    return list((root / "extensions" / "preserve-store" / "staging").iterdir())


def test_a_second_writer_is_refused_with_exit_10(make_bag: MakeBag, store_root: Path, run_preserve: Run) -> None:
    ingest(store_root, make_bag(), object_id=ID, user="t")
    with writing(open_root(store_root), ID):
        done = run_preserve("store", "update", store_root, ID, "--remove", "notes.txt", "--reason", "x",
                            "--operator", "Ann")
        assert done.returncode == 10, done.stderr
        assert f"another preserve run is writing object {ID}" in done.stderr and "nothing was written" in done.stderr
        again = run_preserve("store", "ingest", store_root, make_bag("other"), "--id", ID)
        assert again.returncode == 10
    # once the first writer is done, the same command works
    assert run_preserve("store", "update", store_root, ID, "--remove", "notes.txt", "--reason", "x",
                        "--operator", "Ann").returncode == 0


def _big_bag(make_bag: MakeBag, name: str, seed: int) -> Path:
    rnd = random.Random(seed)
    return make_bag(name, {f"disc{i % 3}/track{i:02d}.wav": rnd.randbytes(400_000) for i in range(24)})


def _duration(args: list[str]) -> float:
    """Seconds one uninterrupted run takes here and now: kills are timed within it, whatever the machine's speed."""
    started = time.perf_counter()
    subprocess.run([EXE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _kill_after(args: list[str], delay: float) -> bool:
    """Run preserve and SIGKILL it after ``delay`` seconds; True if it was killed (not finished)."""
    proc = subprocess.Popen([EXE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait() == -signal.SIGKILL


@pytest.mark.slow
def test_ingest_killed_at_random_points(make_bag: MakeBag, tmp_path: Path, run_preserve: Run) -> None:
    bag = _big_bag(make_bag, "bag", 1)
    rnd = random.Random(15)
    killed = 0
    assert run_preserve("store", "init", tmp_path / "timing").returncode == 0
    took = _duration(["store", "ingest", str(tmp_path / "timing"), str(bag), "--id", ID])
    for attempt in range(5):
        root = tmp_path / f"store{attempt}"
        assert run_preserve("store", "init", root).returncode == 0
        killed += _kill_after(["store", "ingest", str(root), str(bag), "--id", ID], rnd.uniform(0.1, 0.9) * took)
        objects = find_objects(open_root(root))
        for obj in objects:  # an object appears whole or not at all
            assert validate_object(obj).ok, attempt
        done = run_preserve("store", "ingest", root, bag, "--id", ID)
        assert done.returncode in (0, 4), done.stderr  # 4: the killed run had finished
        assert _staging(root) == [], attempt  # the next run removed what the killed one staged
        [obj] = find_objects(open_root(root))
        assert validate_object(obj).ok
    assert killed >= 2  # most kills must land while the run works, or this tests nothing


@pytest.mark.slow
def test_update_killed_at_random_points(make_bag: MakeBag, tmp_path: Path, run_preserve: Run) -> None:
    first, second = _big_bag(make_bag, "one", 1), _big_bag(make_bag, "two", 2)
    rnd = random.Random(16)
    killed = 0
    assert run_preserve("store", "init", tmp_path / "timing").returncode == 0
    ingest(tmp_path / "timing", first, object_id=ID, user="t")
    took = _duration(["store", "update", str(tmp_path / "timing"), ID, "--from", str(second), "--reason", "r",
                      "--operator", "o"])
    for attempt in range(5):
        root = tmp_path / f"store{attempt}"
        assert run_preserve("store", "init", root).returncode == 0
        result = ingest(root, first, object_id=ID, user="t")
        killed += _kill_after(["store", "update", str(root), ID, "--from", str(second), "--reason", "r",
                               "--operator", "o"], rnd.uniform(0.1, 0.9) * took)
        # the previous version is intact and readable, whatever the moment of the kill
        out = tmp_path / f"v1-{attempt}"
        export(root, ID, out, version="v1")
        assert tree(out) == tree(first)
        # the next run on the object cleans up (staging) and completes a version the killed run had written
        done = run_preserve("store", "update", root, ID, "--from", second, "--reason", "again", "--operator", "o")
        assert done.returncode == 0, done.stderr
        assert _staging(root) == [], attempt
        report = validate_object(result.object_path)
        assert report.ok, (attempt, [str(f) for f in report.errors])
        head = tmp_path / f"head-{attempt}"
        export(root, ID, head)
        assert tree(head) == tree(second)
    assert killed >= 2


def test_a_version_written_but_not_published_is_completed_by_the_next_run(
        make_bag: MakeBag, store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from preserve.ocfl import txn as txn_module
    from preserve.ocfl.update import update

    bag = make_bag()
    first = ingest(store_root, bag, object_id=ID, user="t")
    real = txn_module.publish_inventory

    def crash(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt  # as a kill between renaming v2 in and replacing the root inventory

    monkeypatch.setattr(txn_module, "publish_inventory", crash)
    with pytest.raises(KeyboardInterrupt):
        update(store_root, ID, remove=("notes.txt",), reason="r", operator="o")
    monkeypatch.setattr(txn_module, "publish_inventory", real)
    assert (first.object_path / "v2").is_dir()
    assert [f.code for f in validate_object(first.object_path).errors] == ["E046"]  # v2 not yet in the inventory
    export(store_root, ID, tmp_path / "v1", version="v1")  # the previous version is readable meanwhile
    assert tree(tmp_path / "v1") == tree(bag)
    with writing(open_root(store_root), ID):  # the next run on the object finishes the publication
        pass
    report = validate_object(first.object_path)
    assert report.ok and report.head == "v2", [str(f) for f in report.errors]

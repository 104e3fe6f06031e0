"""Worker processes for many small files: order, errors, and a worker that dies.

The workers are real processes started through the forkserver. They run preserve's own
functions, or those of ``pool_helpers.py`` beside this file (importable in the workers, which get
this process's ``sys.path``), one of which keeps a worker busy until it is killed.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from preserve.errors import EXIT_WORKER, WorkerDied
from preserve.fixity import WorkerPool, hash_batch, hash_file


def _files(root: Path, sizes: list[int]) -> list[Path]:
    root.mkdir(exist_ok=True)
    out = []
    for i, n in enumerate(sizes):
        p = root / f"f{i:04d}.bin"
        p.write_bytes(os.urandom(n))
        out.append(p)
    return out


def _jobs(paths: list[Path]) -> list[tuple[str, tuple[str, ...], bool, int]]:
    return [(str(p), ("sha256", "md5"), False, p.stat().st_size) for p in paths]


def _children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


def test_results_come_back_in_input_order_with_large_items_run_here(tmp_path: Path) -> None:
    # large items (>= big) run in this process between the batches; small ones go to workers in
    # batches of at most 7: the results must still line up with the input, item by item
    sizes = [(i * 37) % 900 for i in range(300)]
    sizes[5] = sizes[150] = sizes[299] = 5000
    paths = _files(tmp_path / "src", sizes)
    jobs = _jobs(paths)
    jobs.insert(100, (str(tmp_path / "src" / "missing.bin"), ("sha256",), False, 0))
    with WorkerPool(2) as pool:
        got = list(pool.map_batched(hash_batch, jobs, size=lambda j: j[3], max_files=7, big=4096))
    assert len(got) == len(jobs)
    assert got[100] == ("missing", "disappeared while being read")
    want = [hash_file(p, ("sha256", "md5")) for p in paths]
    assert got[:100] + got[101:] == want


def test_an_error_raised_in_a_worker_is_raised_here_and_the_workers_stop(tmp_path: Path) -> None:
    before = _children()
    with pytest.raises(TypeError, match="list"), WorkerPool(2) as pool:
        ours = _children() - before
        assert len(ours) == 2
        # os.fspath() of a list raises TypeError inside the worker
        list(pool.map_batched(os.fspath, ["a", "b", "c"], size=lambda _: 1))
    assert not (ours & _children()), "the workers must have ended when the block is left"


@pytest.fixture(name="helpers")
def helpers_fixture(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests/fixity/pool_helpers.py, importable by name in the workers (they get this sys.path)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("pool_helpers")


def test_a_killed_worker_is_reported_not_waited_for(helpers: Any) -> None:
    before = _children()

    def kill_later(pids: set[int]) -> None:
        time.sleep(0.5)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer does

    started = time.monotonic()
    with pytest.raises(WorkerDied) as info, WorkerPool(2) as pool:
        ours = _children() - before
        threading.Thread(target=kill_later, args=(ours,), daemon=True).start()
        # the workers wait until they are killed
        list(pool.map_batched(helpers.block, ["a", "b", "c", "d"], size=lambda _: 1, max_files=1))
    assert "ended without answering (killed by signal 9)" in str(info.value)
    assert info.value.exit_code == EXIT_WORKER
    assert time.monotonic() - started < 60
    assert not (ours & _children())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def test_leaving_the_block_early_kills_a_busy_worker(helpers: Any) -> None:
    before = _children()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), WorkerPool(1) as pool:
        ours = _children() - before
        results = pool.map_batched(helpers.sizes, ["abc", "de"], size=lambda _: 1, max_files=1)
        assert list(results) == [3, 2]
        busy = pool.map_batched(helpers.block, ["x", "y"], size=lambda _: 1, max_files=1)
        # hand the work out: the first result never comes, so stop waiting as Ctrl-C would (by a
        # real signal, which interrupts the wait; SIGALRM, as SIGINT may be ignored under CI)
        previous = signal.signal(signal.SIGALRM, _interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            next(busy)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 30
    assert not (ours & _children())


def test_an_empty_pool_refuses_work() -> None:
    with WorkerPool(0) as pool, pytest.raises(RuntimeError, match="one process or more"):
        list(pool.map_batched(hash_batch, [], size=lambda j: 0))


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError("the pool stopped making progress")


def test_batches_and_answers_larger_than_a_socket_buffer_do_not_block_each_other(helpers: Any) -> None:
    # 3,000 items of 1,000 bytes: batches of 256 items (~256 kB) each way, more than the socket
    # buffers hold, in both directions at once if more than one batch were in flight
    items = [f"{i:04d}" + "x" * 996 for i in range(3000)]
    previous = signal.signal(signal.SIGALRM, _timeout)
    try:
        signal.setitimer(signal.ITIMER_REAL, 60)  # a real signal: it interrupts a blocked send
        with WorkerPool(1) as pool:
            got = list(pool.map_batched(helpers.echo, items, size=lambda _: 1))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert got == items


def test_a_map_left_early_never_hands_its_answers_to_the_next(helpers: Any) -> None:
    with WorkerPool(1) as pool:
        first = pool.map_batched(helpers.echo, ["a", "b", "c", "d"], size=lambda _: 1, max_files=1)
        assert next(first) == "a"
        # the worker holds "b" now (it went out before "a" was handed back)
        first.close()  # so it is stopped, never reused with an answer the next map would take
        with pytest.raises(RuntimeError, match="one process or more"):
            list(pool.map_batched(helpers.echo, ["X", "Y"], size=lambda _: 1, max_files=1))
    with WorkerPool(2) as pool:
        assert list(pool.map_batched(helpers.echo, ["X", "Y"], size=lambda _: 1, max_files=1)) == ["X", "Y"]

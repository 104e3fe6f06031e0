"""Ctrl-C and SIGTERM at random moments of runs that use worker processes: every run stops.

A terminal's Ctrl-C reaches the whole process group, systemd's stop sends SIGTERM to every process
of the service, and ``kill`` reaches the main process alone. Whatever the moment (starting the
worker-process server, copying, verifying, shutting the pool down), the run must exit within a
few seconds with the interrupt code, print no traceback from any process, leave no process of its
group behind and no staging beside DEST.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from preserve.fixity import WorkerPool
from preserve.staging import LOCK_SUFFIX

EXIT_INTERRUPTED = 130
RUNS = 40
BUDGET = 75.0  # seconds of wall time for all runs together
SMALL_FILES = 2100  # at least PROCESSES_FROM_FILES, so the pool's worker processes are used


def _exe() -> str:
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe, "the preserve console script is not installed in this environment"
    return exe


def _source(src: Path) -> None:
    for i in range(SMALL_FILES):
        d = src / f"d{i // 300}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.wav").write_bytes(os.urandom(1500))
    for i in range(2):  # large files run in the main process, between the batches
        (src / f"master{i}.wav").write_bytes(os.urandom(24 * 1024 * 1024))


def _handlers_installed(pid: int) -> bool:
    """Whether the process catches SIGTERM yet: the console script (preserve.cli.entry) installs
    that handler before it imports the CLI, so the interpreter's own start-up (which no program
    can guard) is over."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return False


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting to be reaped do not count)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _idle_lock(path: Path) -> bool:
    """A lock file whose journal names nothing that still exists: a run stopped as it took or
    left the lock may leave one; the next run on that DEST takes it and removes it."""
    if not path.name.endswith(LOCK_SUFFIX):
        return False
    for line in path.read_bytes().splitlines():
        if line and not line.startswith(b"#") and os.path.lexists(os.fsdecode(bytes.fromhex(line.decode()))):
            return False
    return True


def _start(args: list[str]) -> subprocess.Popen[str]:
    # a job started in the background inherits SIGINT ignored (as CI may start this suite), and
    # Python keeps it ignored; a terminal's foreground job has the default disposition
    return subprocess.Popen([_exe(), *args], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _run_time(args: list[str]) -> float:
    """Seconds from the moment the run's handlers are installed to its end."""
    proc = _start(args)
    while not _handlers_installed(proc.pid) and proc.poll() is None:
        time.sleep(0.002)
    ready = time.monotonic()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return time.monotonic() - ready


@pytest.mark.slow
def test_signals_at_random_moments_always_stop_the_run_cleanly(tmp_path: Path) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("worker processes are used only with two cores or more")
    src = tmp_path / "src"
    _source(src)
    good = tmp_path / "good"
    bag_time = _run_time(["bag", str(src), str(good), "-q"])
    validate_time = min(_run_time(["validate", str(good), "-q"]) for _ in range(2))
    shutil.rmtree(good)
    bag_time = min(bag_time, _run_time(["bag", str(src), str(good), "-q"]))  # the page cache now warm
    dests = tmp_path / "dests"
    dests.mkdir()

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    failures: list[str] = []
    interrupted = finished = 0
    deadline = time.monotonic() + BUDGET
    for run in range(RUNS):
        if time.monotonic() > deadline:
            break
        command = "bag" if run % 2 == 0 else "validate"
        dest = dests / f"bag{run}"
        args = ["bag", str(src), str(dest), "-q"] if command == "bag" else ["validate", str(good), "-q"]
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        whole_group = rng.random() < 0.5
        delay = rng.uniform(0, 0.8 * (bag_time if command == "bag" else validate_time))
        what = (f"run {run} (seed {seed}): {command} with {sig.name} to the "
                f"{'process group' if whole_group else 'main process'} {delay:.3f} s in")
        proc = _start(args)
        out = err = ""
        reported = hung = False
        try:
            ready_by = time.monotonic() + 30
            while not _handlers_installed(proc.pid) and proc.poll() is None and time.monotonic() < ready_by:
                time.sleep(0.002)
            time.sleep(delay)
            # once its result is printed, the run has done its work: it may exit 0 after all
            reported = proc.poll() is not None or bool(select.select([proc.stdout], [], [], 0)[0])
            with contextlib.suppress(ProcessLookupError):
                (os.killpg if whole_group else os.kill)(proc.pid, sig)
            signalled = time.monotonic()
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                hung = True
            while _group_alive(proc.pid) and time.monotonic() < signalled + 5:
                time.sleep(0.01)
            if _group_alive(proc.pid):
                failures.append(f"{what}: a process of its group was still running 5 s after the signal")
        finally:
            if _group_alive(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
            if hung:
                out, err = proc.communicate()
        left = sorted(p.name for p in dests.iterdir() if p.name != dest.name and not _idle_lock(p))
        shutil.rmtree(dest, ignore_errors=True)  # a run that finished first made a whole bag
        for lock in dests.glob(f".{dest.name}{LOCK_SUFFIX}"):
            lock.unlink()  # idle (checked above); the next run on this DEST would remove it
        if hung:
            failures.append(f"{what}: still running 5 s after the signal:\n{err}")
        if left:
            failures.append(f"{what}: left {left} beside DEST")
        if "Traceback" in err or "Fatal Python error" in err:
            failures.append(f"{what}: printed a traceback:\n{err}")
        if proc.returncode == EXIT_INTERRUPTED:
            interrupted += 1
        elif proc.returncode == 0 and reported and out.strip():
            finished += 1
        elif not hung:
            failures.append(f"{what}: exit status {proc.returncode}, expected {EXIT_INTERRUPTED}:\n{err}")
    assert not failures, "\n\n".join(failures)
    assert interrupted >= 15, f"only {interrupted} run(s) were interrupted ({finished} had finished first; seed {seed})"


def test_a_signal_while_the_pool_lets_its_workers_go_still_ends_every_worker() -> None:
    # Ctrl-C while a finished pool waits for its first worker to exit: the others must not be
    # left running, as multiprocessing waits for them at exit and they ignore its SIGTERM
    if (os.cpu_count() or 1) < 2:
        pytest.skip("worker processes are used only with two cores or more")
    pool = WorkerPool(3)
    procs = []
    try:
        with pytest.raises(KeyboardInterrupt), pool:
            procs = [w.proc for w in pool._workers]
            first = procs[0]
            real_join = first.join
            interrupted: list[bool] = []

            def join_interrupted_once(timeout: float | None = None) -> None:
                if not interrupted:
                    interrupted.append(True)
                    raise KeyboardInterrupt
                real_join(timeout)

            first.join = join_interrupted_once
        assert interrupted
        assert [p.pid for p in procs if p.is_alive()] == [], "a worker outlived its pool"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()

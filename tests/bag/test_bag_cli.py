"""``preserve bag`` as a user runs it: exit codes, messages, interruption."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import bagit
import pytest


def test_bag_cli_copies_and_reports(make_source, tmp_path: Path, run_preserve, snapshot) -> None:
    src = make_source({"side a/01.wav": b"a" * 100, "side b/02.wav": b"b" * 50})
    before = snapshot(src)
    r = run_preserve("bag", src, tmp_path / "bag", "--info", "Source-Organization=Sound Archive", "-i", "External-Identifier=ACC-1")
    assert r.returncode == 0, r.stderr
    assert "bagged 2 file(s), 150 bytes" in r.stdout and "verified by re-reading 2 file(s)" in r.stdout
    assert snapshot(src) == before
    info = (tmp_path / "bag" / "bag-info.txt").read_text()
    assert "Source-Organization: Sound Archive\n" in info and "External-Identifier: ACC-1\n" in info
    bagit.Bag(str(tmp_path / "bag")).validate()


def test_bag_cli_errors(make_source, tmp_path: Path, run_preserve) -> None:
    src = make_source({"a.wav": b"a"})
    (src / "link.wav").symlink_to("a.wav")
    r = run_preserve("bag", src, tmp_path / "bag")
    assert r.returncode == 3
    assert "link.wav: is a symbolic link (to a.wav)" in r.stderr and "--follow-links" in r.stderr
    assert not (tmp_path / "bag").exists()
    r = run_preserve("bag", tmp_path / "missing", tmp_path / "bag")
    assert r.returncode == 3 and "no such file or directory" in r.stderr
    r = run_preserve("bag", src, tmp_path / "bag", "--info", "no-equals-sign")
    assert r.returncode == 2 and "is not KEY=VALUE" in r.stderr
    r = run_preserve("bag", src, tmp_path / "bag", "--follow-links", "--info", "Bad:Key=v")
    assert r.returncode == 2 and "'Bad:Key' is not valid" in r.stderr and "cannot contain ':'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "bag").exists()
    r = run_preserve("bag", src, tmp_path / "bag", "--follow-links")
    assert r.returncode == 0
    r = run_preserve("bag", src, tmp_path / "bag", "--follow-links")
    assert r.returncode == 4 and "already exists" in r.stderr


def test_bag_cli_lists_every_name_problem_at_once(tmp_path: Path, run_preserve) -> None:
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "one.wav").symlink_to("/etc/hostname")
    (src / "x" / "two.wav").symlink_to("/etc/hostname")
    r = run_preserve("bag", src, tmp_path / "bag")
    assert r.returncode == 3
    assert "one.wav: is a symbolic link" in r.stderr and "two.wav: is a symbolic link" in r.stderr
    assert "2 problems" in r.stderr


def test_destination_inside_the_source_is_refused(make_source, tmp_path: Path, run_preserve, snapshot) -> None:
    src = make_source({"a.wav": b"a", "sub/b.wav": b"b"})
    before = snapshot(src)
    for dest, extra in ((src / "inner-bag", ()), (src / "sub" / "new" / "bag", ()), (src / "bag", ("--serialize", "tar"))):
        r = run_preserve("bag", src, dest, *extra)
        assert r.returncode == 2, r.stderr
        assert "inside the source" in r.stderr and "nothing was written" in r.stderr
    assert snapshot(src) == before, "the source was modified"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_given_payload_oxum_is_replaced_with_a_warning(make_source, tmp_path: Path, run_preserve) -> None:
    src = make_source({"a.wav": b"abc"})
    r = run_preserve("bag", src, tmp_path / "bag", "--info", "Payload-Oxum=1.1")
    assert r.returncode == 0, r.stderr
    assert "warning: --info Payload-Oxum=1.1: replaced by the value computed from the payload" in r.stderr
    assert "Payload-Oxum: 3.1\n" in (tmp_path / "bag" / "bag-info.txt").read_text()


def test_unsafe_source_name_is_listed_with_the_other_problems_before_copying(tmp_path: Path, run_preserve) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "..\\evil.wav").write_bytes(b"e")
    (src / "one.wav").symlink_to("/etc/hostname")
    r = run_preserve("bag", src, tmp_path / "bag")
    assert r.returncode == 3, r.stderr  # an unsafe name (1) and a link (3): a mix is an input error
    assert "..\\evil.wav: unsafe path ('..' segment escapes the bag)" in r.stderr
    assert "one.wav: is a symbolic link" in r.stderr and "2 problems" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.slow
def test_sigkill_leaves_no_bag_and_rerun_succeeds(tmp_path: Path, snapshot) -> None:
    src = tmp_path / "src"
    src.mkdir()
    block = os.urandom(1024 * 1024)
    for i in range(40):
        with open(src / f"take-{i:02}.wav", "wb") as f:
            for _ in range(8):
                f.write(block)
    before = snapshot(src)
    dest = tmp_path / "bag"
    exe = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "preserve"
    import shutil
    import sys

    exe_path = shutil.which("preserve", path=str(Path(sys.executable).parent)) or str(exe)
    proc = subprocess.Popen([exe_path, "bag", str(src), str(dest), "-q", "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    staged = []
    while time.monotonic() < deadline:
        staged = list(tmp_path.glob(".bag.preserve-staging-*/data/take-0[3-9].wav"))
        if staged:
            break
        time.sleep(0.005)
    assert staged, "the run finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not dest.exists(), "a killed run left something at DEST"
    assert snapshot(src) == before, "a killed run changed the source"
    assert list(tmp_path.glob(".bag.preserve-staging-*")), "expected the hidden staging of the killed run"

    rerun = subprocess.run([exe_path, "bag", str(src), str(dest), "-q"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(tmp_path.glob(".bag.preserve-staging-*")), "stale staging was not cleaned up"
    bagit.Bag(str(dest)).validate(processes=2)


def test_sigterm_cleans_up(tmp_path: Path) -> None:
    import shutil
    import sys

    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):
        (src / f"f{i}.wav").write_bytes(os.urandom(4 * 1024 * 1024))
    exe_path = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe_path
    proc = subprocess.Popen([exe_path, "bag", str(src), str(tmp_path / "bag"), "-q", "-w", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob(".bag.preserve-staging-*/data/f1*.wav")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not (tmp_path / "bag").exists()
    assert not list(tmp_path.glob(".bag.preserve-staging-*")), "SIGTERM must clean its staging"


def _many_small_files(src: Path, n: int) -> None:
    for i in range(n):  # enough small files for the CLI to use worker processes
        d = src / f"d{i // 300}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.wav").write_bytes(os.urandom(4000))


@contextlib.contextmanager
def _bag_with_workers(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``preserve bag`` on many small files, in a process group of its own, once its worker
    processes are copying; whatever the test does, the group is gone afterwards."""
    import shutil
    import sys

    if (os.cpu_count() or 1) < 2:
        pytest.skip("worker processes are used only with two cores or more")
    src = tmp_path / "src"
    _many_small_files(src, 8000)
    exe_path = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe_path
    # a job started in the background inherits SIGINT ignored (as CI may start this suite), and
    # Python keeps it ignored; a terminal's foreground job has the default disposition
    proc = subprocess.Popen([exe_path, "bag", str(src), str(tmp_path / "bag"), "-q"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(tmp_path.glob(".bag.preserve-staging-*/data/d1/*.wav")):
            time.sleep(0.005)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(pid: int, depth: int = 99) -> list[int]:
    """The processes below ``pid`` (``depth`` 1: its children), read from /proc."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: list[int] = []
    level = [pid]
    for _ in range(depth):
        level = [c for c, pp in parent.items() if pp in level]
        if not level:
            break
        out.extend(level)
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "systemd-stop"])
def test_a_signal_to_the_whole_group_while_worker_processes_copy(tmp_path: Path, sig: signal.Signals) -> None:
    # a terminal's Ctrl-C, and systemd stopping a service, signal every process of the group:
    # the workers must leave the stopping to the main process and never hang it
    with _bag_with_workers(tmp_path) as proc:
        helpers = _descendants(proc.pid)  # the worker-process server and its workers
        assert len(helpers) >= 3
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; nothing half-written was left" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and [p for p in helpers if _alive(p)]:
        time.sleep(0.05)
    assert not [p for p in helpers if _alive(p)], "no worker may outlive the command"


def test_a_worker_killed_from_outside_ends_the_run_cleanly(tmp_path: Path) -> None:
    with _bag_with_workers(tmp_path) as proc:
        # the workers are forked by the worker-process server, itself a child of the command
        children = set(_descendants(proc.pid, depth=1))
        workers = [p for p in _descendants(proc.pid) if p not in children]
        assert workers, "the CLI should copy many small files in worker processes"
        os.kill(workers[0], signal.SIGKILL)  # what the out-of-memory killer does
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 9, err
    assert f"worker process {workers[0]} ended without answering (killed by signal 9)" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]

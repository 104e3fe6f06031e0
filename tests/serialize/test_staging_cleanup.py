"""A run killed while it stages leaves hidden work beside DEST: the next run removes it and says so.

Serialized ``bag`` (staging folder and partial archive) and ``unpack`` (staging folder) are killed
with SIGKILL, as the OOM killer or a power cut would stop them, at a moment their staging exists;
the rerun on the same DEST removes exactly what the killed run's journal lists, before it decides
whether DEST exists, and prints one line per removed path.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REMOVED = "removed staging left by an interrupted run: "


def _exe() -> str:
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe, "the preserve console script is not installed in this environment"
    return exe


def _source(src: Path, small: int = 0, large: int = 2, large_mb: int = 40) -> Path:
    src.mkdir()
    for i in range(large):
        with open(src / f"master{i}.wav", "wb") as f:
            for _ in range(large_mb):
                f.write(os.urandom(1024 * 1024))
    for i in range(small):
        d = src / f"d{i // 300}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}.wav").write_bytes(os.urandom(200))
    return src


def _kill_when(args: list[str], ready: Callable[[], bool], stop_first: bool = False) -> bool:
    """Start ``preserve ARGS``, and SIGKILL its whole group once ``ready()``; False when the run
    ended first. ``stop_first`` freezes it (SIGSTOP) the moment ``ready()`` holds, so that what
    was seen is still there when it is killed."""
    proc = subprocess.Popen([_exe(), *args], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                if stop_first:
                    os.killpg(proc.pid, signal.SIGSTOP)
                    if not ready():  # moved on between the look and the stop
                        return False
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.001)
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _reported(stderr: str) -> list[str]:
    return sorted(Path(line[len(REMOVED):]).name for line in stderr.splitlines() if line.startswith(REMOVED))


@pytest.mark.slow
def test_a_serialized_bag_killed_while_writing_its_archive_is_cleaned_by_the_rerun(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "bag.tar"

    def partial_archive_growing() -> bool:
        return any(p.name.endswith("-archive") and p.stat().st_size > 1024 * 1024
                   for p in out.glob(".bag.tar.preserve-staging-*"))

    assert _kill_when(["bag", str(src), str(dest), "--serialize", "tar", "-q", "--no-verify"], partial_archive_growing), \
        "the run finished before its archive was being written"
    left = _hidden(out)
    assert any(n.endswith("-archive") for n in left) and not dest.exists(), left
    staged = [n for n in left if n != ".bag.tar.preserve-lock"]
    assert len(staged) == 2, left  # the staging folder and the partial archive beside it

    rerun = subprocess.run([_exe(), "bag", str(src), str(dest), "--serialize", "tar"],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _reported(rerun.stderr) == staged
    assert _hidden(out) == [] and dest.is_file()


@pytest.mark.slow
def test_a_run_killed_after_its_archive_landed_leaves_staging_the_rerun_removes_then_exits_4(tmp_path: Path) -> None:
    # many small files: removing the staging after the archive has landed takes long enough to be caught
    src = _source(tmp_path / "src", small=4000, large=0)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "bag.tar"

    def landed_with_staging() -> bool:
        return dest.exists() and any(p.is_dir() for p in out.glob(".bag.tar.preserve-staging-*"))

    for _attempt in range(5):
        if _kill_when(["bag", str(src), str(dest), "--serialize", "tar", "-q", "--no-verify"], landed_with_staging,
                      stop_first=True):
            break
        shutil.rmtree(out)
        out.mkdir()
    else:
        pytest.fail("no run could be stopped between its archive landing and its staging being removed")
    archive = dest.read_bytes()
    staged = [n for n in _hidden(out) if n != ".bag.tar.preserve-lock"]
    assert staged, _hidden(out)

    rerun = subprocess.run([_exe(), "bag", str(src), str(dest), "--serialize", "tar"],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 4, rerun.stderr
    assert _reported(rerun.stderr) == staged
    assert _hidden(out) == []
    assert dest.read_bytes() == archive, "the archive at DEST must never be touched"


@pytest.mark.slow
def test_an_unpack_killed_while_extracting_is_cleaned_by_the_rerun(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    archive = tmp_path / "bag.tar"
    made = subprocess.run([_exe(), "bag", str(src), str(archive), "--serialize", "tar", "-q", "--no-verify"],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "bag"

    def extracting() -> bool:
        return any(p.is_dir() and any(p.rglob("master*.wav")) for p in out.glob(".bag.preserve-unpack-*"))

    assert _kill_when(["unpack", str(archive), str(dest), "-q"], extracting), "the unpack finished before it was killed"
    staged = [n for n in _hidden(out) if n != ".bag.preserve-lock"]
    assert len(staged) == 1 and staged[0].startswith(".bag.preserve-unpack-"), _hidden(out)

    rerun = subprocess.run([_exe(), "unpack", str(archive), str(dest)], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _reported(rerun.stderr) == staged
    assert _hidden(out) == [] and (dest / "bagit.txt").is_file()


def test_quiet_runs_remove_stale_staging_without_a_word(tmp_path: Path) -> None:
    src = _source(tmp_path / "src", small=3, large=0)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".bag.preserve-staging-0badcafe"
    killed = subprocess.run([sys.executable, "-c", (
        "import os, sys; from pathlib import Path; from preserve.staging import journaled\n"
        "with journaled(Path(sys.argv[1])) as j:\n"
        "    j.record(Path(sys.argv[2])).mkdir()\n"
        "    os.kill(os.getpid(), 9)\n"), str(out / "bag"), str(stale)])
    assert killed.returncode == -signal.SIGKILL and stale.is_dir()
    rerun = subprocess.run([_exe(), "bag", str(src), str(out / "bag"), "-q"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert REMOVED not in rerun.stderr
    assert _hidden(out) == []

"""`preserve schemas install` over a previous install: whenever it is stopped, a complete set stays.

A run is killed (SIGKILL, no clean-up of any kind) before and after each step that changes the
file system; after each kill DEST holds a complete, verified set (the previous or the new one),
and the next install leaves nothing hidden beside it. A full disk exits 5 with the previous
install untouched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from preserve.errors import StorageError
from preserve.sidecars import schemas
from preserve.sidecars.schemas import install_schemas, load_validators, pins

SHARED = Path(__file__).resolve().parents[3] / "shared" / "schemas"
NAMES = sorted([*(p.name for p in pins()), "catalog.xml"])

# Runs one install in a fresh interpreter and SIGKILLs it at the STEP-th call of any function
# that changes the file system ("before" the call, or "after" it returned or raised); prints the
# calls made.
DRIVER = """
import json, os, shutil, signal, sys
from pathlib import Path
from preserve.sidecars import schemas

dest, source, step, when = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
calls = []

def killing(owner, name):
    real = getattr(owner, name)
    def step_fn(*args, **kw):
        calls.append(name)
        if len(calls) == step and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        mine = len(calls)
        try:
            return real(*args, **kw)
        finally:
            if mine == step and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
    setattr(owner, name, step_fn)

for name in ("rename", "replace", "mkdir", "unlink", "rmdir", "fsync", "open", "symlink", "ftruncate"):
    killing(os, name)
killing(shutil, "rmtree")
killing(schemas, "_exchange")
schemas.install_schemas(dest, source=source)
print(json.dumps(calls))
"""


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PRESERVE_SCHEMAS", raising=False)


def assert_complete(folder: Path) -> None:
    assert folder.is_dir() and not folder.is_symlink(), f"{folder}: no install at all"
    assert sorted(p.name for p in folder.iterdir()) == NAMES
    for pin in pins():
        assert hashlib.sha256((folder / pin.name).read_bytes()).hexdigest() == pin.sha256
    load_validators(folder)


def _drive(dest: Path, step: int, when: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", DRIVER, str(dest), str(SHARED), str(step), when],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_kill_at_any_step_of_a_reinstall_leaves_a_complete_install(tmp_path: Path) -> None:
    dest = tmp_path / "schemas"
    first = _drive(dest, 0, "never")
    assert first.returncode == 0, first.stderr
    counted = _drive(dest, 0, "never")  # a reinstall over the first, every step counted
    assert counted.returncode == 0, counted.stderr
    calls = json.loads(counted.stdout)
    assert "_exchange" in calls and "rename" not in calls, calls  # one step replaces the install
    killed_at: list[str] = []
    # killed after one step is killed before the next; "after" the last one too, and the swap's
    points = [(step, "before") for step in range(1, len(calls) + 1)]
    points += [(len(calls), "after"), (calls.index("_exchange") + 1, "after")]
    for step, when in points:
        run = _drive(dest, step, when)
        assert run.returncode == -signal.SIGKILL, (step, when, run.stderr)
        killed_at.append(f"{when} {calls[step - 1]}")
        assert_complete(dest)  # the previous set or the new one, never a part, never none
        # the next install removes what the killed one had staged, and replaces the set
        install_schemas(dest, source=SHARED)
        assert_complete(dest)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["schemas"], (step, when)
    assert "before _exchange" in killed_at and "after _exchange" in killed_at


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), OSError(errno.EIO, "Input/output error")],
                         ids=["ctrl-c", "io-error"])
def test_an_install_stopped_at_its_swap_keeps_the_previous_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> None:
    dest = tmp_path / "schemas"
    install_schemas(dest, source=SHARED)
    previous = dest.stat().st_ino

    def exchange(a: Path, b: Path) -> None:
        raise failure

    monkeypatch.setattr(schemas, "_exchange", exchange)
    with pytest.raises(KeyboardInterrupt if isinstance(failure, KeyboardInterrupt) else StorageError):
        install_schemas(dest, source=SHARED)
    assert dest.stat().st_ino == previous
    assert_complete(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schemas"]


def test_without_an_exchange_the_previous_install_is_put_back_on_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a file system that cannot swap two folders (NFS): the install moves the previous one aside
    dest = tmp_path / "schemas"
    install_schemas(dest, source=SHARED)
    previous = dest.stat().st_ino

    def no_exchange(a: Path, b: Path) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(schemas, "_exchange", no_exchange)
    install_schemas(dest, source=SHARED)
    assert dest.stat().st_ino != previous
    assert_complete(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schemas"]

    replaced = dest.stat().st_ino
    real_rename = os.rename
    renames: list[str] = []

    def rename(src: Any, dst: Any) -> None:
        renames.append(str(dst))
        if len(renames) == 2:  # the previous install is aside, the new one not yet in place
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(schemas.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        install_schemas(dest, source=SHARED)
    monkeypatch.setattr(schemas.os, "rename", real_rename)
    assert renames[1] == str(dest)
    assert dest.stat().st_ino == replaced
    assert_complete(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schemas"]




def test_a_full_disk_exits_5_and_keeps_the_previous_install(tmpfs,
        tmp_path: Path, cli: Callable[..., Result], run_preserve: Callable[..., Any]) -> None:
    with tmpfs(tmp_path / "tiny", "size=400k") as disk:  # room for one install (~280 KB), not for two
        dest = disk / "schemas"
        assert cli("schemas", "install", "--from", SHARED, "--dest", dest).exit_code == 0
        previous = dest.stat().st_ino
        proc = run_preserve("schemas", "install", "--from", SHARED, "--dest", dest)
        assert proc.returncode == 5, proc.stderr
        assert "no space left" in proc.stderr and str(dest) in proc.stderr
        assert "Traceback" not in proc.stderr
        assert dest.stat().st_ino == previous
        assert_complete(dest)
        assert sorted(p.name for p in disk.iterdir()) == ["schemas"]

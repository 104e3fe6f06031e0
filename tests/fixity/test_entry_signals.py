"""A signal while the command is still starting (importing click and its modules) ends the run
quietly with the interrupt code: no traceback, no death by the signal."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from preserve.cli import entry
from preserve.errors import EXIT_INTERRUPTED

from .test_signal_stress import _handlers_installed


def test_the_entry_point_knows_the_interrupt_code() -> None:
    assert entry._EXIT_INTERRUPTED == EXIT_INTERRUPTED


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc to see when handlers are in place")
def test_signals_during_start_up_end_the_run_quietly(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "preserve"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    assert subprocess.run([str(exe), "bag", str(tmp_path / "src"), str(tmp_path / "bag"), "-q"]).returncode == 0
    rng = random.Random()
    interrupted = 0
    for run in range(24):
        sig = signal.SIGINT if run % 2 else signal.SIGTERM
        proc = subprocess.Popen([str(exe), "validate", str(tmp_path / "bag")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not _handlers_installed(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.12))  # the import of the CLI, most of a tiny run
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=10)
        assert "Traceback" not in err, err
        assert proc.returncode in (0, EXIT_INTERRUPTED), (sig.name, proc.returncode, err)
        interrupted += proc.returncode == EXIT_INTERRUPTED
    assert interrupted >= 6, f"only {interrupted} of 24 runs were still starting when signalled"


def test_the_handlers_are_in_place_before_the_cli_is_imported() -> None:
    """The window the early handler guards is the import of click and the commands: the entry
    module itself, and the package it sits in, import nothing of the kind."""
    code = ("import sys, signal; import preserve.cli.entry as e; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('preserve', 'click', 'lxml', 'numpy', 'boto3')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['preserve', 'preserve.cli', 'preserve.cli.entry']", loaded

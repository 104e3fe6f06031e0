"""Progress of the other long commands without a terminal, and Ctrl-C at any moment of them.

Each command runs as cron or systemd runs it: a child process whose standard error is a pipe.
Every ``--progress-interval`` it writes one plain line (phase, percent, bytes done of the total,
rate, ETA) and never a bar's carriage returns or escape sequences; ``-q`` silences the lines.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from preserve.bag.writer import create_bag, payload_from_directory

from ..fixity.test_signal_stress import _group_alive, _handlers_installed, _run_time, _start

#: One progress line: the command's label, a phase, then percent, bytes done of the total, rate, ETA;
#: or, for a phase whose bytes are not counted (replicate's check of the bag), how long it has run.
_SIZE = r"[\d.]+ (?:bytes|[kMGT]B)"
LINE = re.compile(rf"^preserve: (?P<label>.+?): (?P<phase>[a-z+]+): (?:(?P<percent>\d+)%, {_SIZE} of {_SIZE}, "
                  rf"{_SIZE}/s, ETA (?:[\d:]+|unknown)|running for [\d:]+)$")
INTERVAL = "0.02"  # seconds: several lines within the shortest of these runs


@dataclass
class Stock:
    """A bag of 32 MB (four files), its tar archive and its replica in a folder, made once."""

    root: Path
    bag: Path
    archive: Path
    replicas: Path


def _preserve(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    # stderr is a pipe, as under cron or systemd
    return subprocess.run([sys.executable, "-c", "from preserve.cli.entry import run; run()", *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> Stock:
    root = tmp_path_factory.mktemp("progress-more")
    src = root / "src"
    src.mkdir()
    chunk = os.urandom(1 << 20)
    for i in range(4):
        (src / f"take{i}.raw").write_bytes(chunk * 8)
    bag = create_bag(root / "bag", payload_from_directory(src), verify=False).path
    archive = root / "bag.tar"
    made = _preserve("bag", "-q", "--no-verify", "--serialize", "tar", src, archive)
    assert made.returncode == 0, made.stderr
    replicas = root / "replicas"
    replicas.mkdir()
    sent = _preserve("replicate", "-q", "--ledger", root / "stock-ledger.db", bag, replicas)
    assert sent.returncode == 0, sent.stderr
    return Stock(root, bag, archive, replicas)


def _fresh(stock: Stock, name: str) -> Path:
    n = 0
    while (stock.root / f"{name}{n}").exists():
        n += 1
    return stock.root / f"{name}{n}"


def _command(stock: Stock, name: str, ledger: Path | str) -> list[str | os.PathLike[str]]:
    if name == "audit":
        return ["audit", "--tier", "full", "--ledger", ledger, stock.bag]
    if name == "replicate":
        target = _fresh(stock, "target")
        target.mkdir()
        return ["replicate", "--ledger", ledger, stock.bag, target]
    if name == "restore":
        return ["restore", stock.replicas / "bag", _fresh(stock, "restored")]
    assert name == "unpack"
    return ["unpack", stock.archive, _fresh(stock, "unpacked")]


LABELS = {"audit": "auditing", "replicate": "replicating bag to ", "restore": "restoring bag", "unpack": "unpacking"}
PHASES = {"audit": {"verify"}, "replicate": {"check", "copy"}, "restore": {"list", "download", "validate"},
          "unpack": {"extract", "validate"}}
#: Each command, with each ledger backend for the two that record in a ledger (restore and unpack
#: record nothing: one run each).
WITH_LEDGER = pytest.mark.parametrize(("name", "ledger_url"), [
    ("audit", "sqlite"), ("audit", "postgresql"), ("replicate", "sqlite"), ("replicate", "postgresql"),
    ("restore", "sqlite"), ("unpack", "sqlite")], indirect=["ledger_url"])


@WITH_LEDGER
def test_without_a_terminal_progress_lines_come_at_the_interval(stock: Stock, name: str,
                                                                ledger_url: Path | str) -> None:
    argv = _command(stock, name, ledger_url)
    proc = _preserve(argv[0], "--progress-interval", INTERVAL, *argv[1:])
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"preserve: {LABELS[name]}")]
    assert len(lines) >= 2, proc.stderr
    matched = [LINE.match(line) for line in lines]
    assert all(matched), lines
    assert {m.group("phase") for m in matched if m} <= PHASES[name], lines
    assert any(m.group("percent") and int(m.group("percent")) > 0 for m in matched if m), lines
    # no bar drawing: nothing a log file would keep as garbage
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr


@WITH_LEDGER
def test_quiet_silences_the_progress_lines(stock: Stock, name: str, ledger_url: Path | str) -> None:
    argv = _command(stock, name, ledger_url)
    proc = _preserve(argv[0], "-q", "--progress-interval", INTERVAL, *argv[1:])
    assert proc.returncode == 0, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith(f"preserve: {LABELS[name]}")], proc.stderr
    assert "%" not in proc.stderr


def test_the_progress_interval_takes_a_unit_and_refuses_nonsense(stock: Stock, ledger_url: Path | str) -> None:
    from preserve.cli.main import cli

    # a period such as 2m is accepted as in the other commands; the run is over long before it
    ok = CliRunner().invoke(cli, ["audit", "--progress-interval", "2m", "--ledger", str(ledger_url), str(stock.bag)])
    assert ok.exit_code == 0, ok.output
    assert "preserve: auditing" not in ok.output
    for name in ("audit", "replicate", "restore", "unpack"):
        argv = [str(a) for a in _command(stock, name, ledger_url)]
        bad = CliRunner().invoke(cli, [argv[0], "--progress-interval", "soon", *argv[1:]])
        assert bad.exit_code == 2, (name, bad.output)
        assert "--progress-interval" in bad.output


def test_the_verify_phase_of_bag_shows_its_percent(stock: Stock) -> None:
    # one reader: the re-read of 32 MB lasts several intervals even from the page cache
    proc = _preserve("bag", "-w", "1", "--progress-interval", INTERVAL, stock.root / "src", _fresh(stock, "bagged"))
    assert proc.returncode == 0, proc.stderr
    verify = [m for m in map(LINE.match, proc.stderr.splitlines()) if m and m.group("phase") == "verify"]
    assert verify, proc.stderr
    assert all(m.group("label") == "bagging" for m in verify)
    assert "running for" not in proc.stderr


# -- Ctrl-C at random moments of audit and replicate ---------------------------------------------

EXIT_INTERRUPTED = 130
SMALL_FILES = 2100  # enough for the audit's worker processes (PROCESSES_FROM_FILES)
SIGNAL_RUNS = 12
SIGNAL_BUDGET = 35.0  # seconds of wall time for all runs together


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signals")
    src = root / "src"
    for i in range(SMALL_FILES):
        d = src / f"d{i // 300}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.wav").write_bytes(os.urandom(1500))
    (src / "master.wav").write_bytes(os.urandom(16 << 20))  # read in the main process, between the batches
    return create_bag(root / "bag", payload_from_directory(src), verify=False).path


def _half_written(bag: Path, target: Path) -> list[str]:
    """Files of the replica that are not whole copies of the bag's, and anything that is no file of the bag."""
    wrong = []
    for dirpath, _dirs, names in os.walk(target):
        for n in names:
            path = Path(dirpath) / n
            rel = path.relative_to(target)
            if rel.parts[0] == bag.name:
                original = bag.joinpath(*rel.parts[1:])
                if not original.is_file() or original.read_bytes() != path.read_bytes():
                    wrong.append(f"{rel}: not a whole copy of the bag's file")
            elif rel.name == f"{bag.name}.preserve-replica.json":
                try:  # a record is written whole or not at all
                    json.loads(path.read_text(encoding="utf-8"))
                except ValueError as exc:
                    wrong.append(f"{rel}: not whole ({exc})")
            elif rel.parts[0] != ".preserve-uploads" or not rel.name.endswith(".journal"):
                wrong.append(f"{rel}: left by the interrupted run")
    return wrong


def _ledger_intact(ledger: Path | str) -> list[str]:
    """What an interrupted run left wrong in its ledger: SQLite's own check of the file, and on
    either backend every table read back whole."""
    from preserve.audit.ledger import Ledger, ledger_exists
    from preserve.errors import PreserveError

    if not ledger_exists(ledger):
        return []
    if isinstance(ledger, Path):
        with contextlib.closing(sqlite3.connect(ledger)) as db:
            found = db.execute("PRAGMA integrity_check").fetchone()[0]
        if found != "ok":
            return [f"ledger {ledger.name}: {found}"]
    try:
        with Ledger(ledger, create=False) as led:
            led.export_jsonl(io.StringIO())
    except PreserveError as exc:
        return [f"ledger {ledger}: {exc}"]
    return []


@pytest.mark.slow
def test_ctrl_c_at_random_moments_of_audit_and_replicate(many_files: Path, tmp_path: Path,
                                                        new_ledger: Callable[[], Path | str]) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("worker processes are used only with two cores or more")
    bag = many_files
    ledgers = {run: new_ledger() for run in range(-1, SIGNAL_RUNS)}  # one new ledger per run

    def args(command: str, run: int) -> list[str]:
        ledger = str(ledgers[run])
        if command == "audit":  # full: every manifest, on worker processes
            return ["audit", "--tier", "full", "--ledger", ledger, str(bag)]
        target = tmp_path / f"target{run}"
        target.mkdir()
        return ["replicate", "-q", "--ledger", ledger, str(bag), str(target)]

    took = {"audit": _run_time(args("audit", -1)), "replicate": _run_time(args("replicate", -1))}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    failures: list[str] = []
    interrupted = 0
    deadline = time.monotonic() + SIGNAL_BUDGET
    for run in range(SIGNAL_RUNS):
        if time.monotonic() > deadline:
            break
        command = ("audit", "replicate")[run % 2]
        whole_group = rng.random() < 0.5  # a terminal's Ctrl-C reaches the group; kill -INT the main process
        delay = rng.uniform(0, 0.9 * took[command])
        what = (f"run {run} (seed {seed}): {command} with SIGINT to the "
                f"{'process group' if whole_group else 'main process'} {delay:.3f} s in")
        proc = _start(args(command, run))
        hung = False
        try:
            ready_by = time.monotonic() + 30
            while not _handlers_installed(proc.pid) and proc.poll() is None and time.monotonic() < ready_by:
                time.sleep(0.002)
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                (os.killpg if whole_group else os.kill)(proc.pid, signal.SIGINT)
            try:
                _out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                hung = True
        finally:
            if _group_alive(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
            if hung:
                _out, err = proc.communicate()
        if hung:
            failures.append(f"{what}: still running 10 s after the signal:\n{err}")
        if "Traceback" in err or "Fatal Python error" in err:
            failures.append(f"{what}: printed a traceback:\n{err}")
        if proc.returncode not in (0, EXIT_INTERRUPTED) and not hung:
            failures.append(f"{what}: exit status {proc.returncode}, expected {EXIT_INTERRUPTED} or 0:\n{err}")
        interrupted += proc.returncode == EXIT_INTERRUPTED
        failures += _ledger_intact(ledgers[run])
        if command == "replicate":
            failures += [f"{what}: {w}" for w in _half_written(bag, tmp_path / f"target{run}")]
    assert not failures, "\n\n".join(failures)
    assert interrupted >= 3, f"only {interrupted} run(s) were interrupted (seed {seed})"

"""The scheduling examples (examples/audit/) run as written, twice, with a test archive and ledger.

Their command lines are read from the files themselves, the host's paths replaced by folders in
tmp_path and the installed ``preserve``: an example that drifts from what the commands accept, or
that fails on its second run, fails here.

SQLite only: these examples keep the ledger as a file on the host and copy it with
``preserve ledger backup`` (SQLite's online backup). The fleet examples with a shared PostgreSQL
ledger are run by tests/ledger/test_fleet_examples.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from preserve.bag.writer import create_bag, payload_from_directory

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "audit"
BACKUP_NAME = re.compile(r"ledger-\d{8}T\d{6}Z\.sqlite")


def exe() -> str:
    found = shutil.which("preserve", path=str(Path(sys.executable).parent)) or shutil.which("preserve")
    assert found, "the preserve console script is not installed in this environment"
    return found


@pytest.fixture
def host(tmp_path: Path) -> dict[str, Path]:
    """The folders the examples name, made in tmp_path: an archive of one bag, the ledger's folder
    with its backups folder (as examples/audit/README.md says to create them), reports and logs."""
    folders = {name: tmp_path / name.strip("/").replace("/", "-") for name in
               ("/srv/archive", "/var/lib/preserve", "/srv/reports", "/var/log/preserve")}
    for folder in folders.values():
        folder.mkdir()
    (folders["/var/lib/preserve"] / "backups").mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"RIFF take one")
    create_bag(folders["/srv/archive"] / "tape-001", payload_from_directory(src), algorithms=("sha256",), verify=False)
    return folders


def localized(command: str, host: dict[str, Path]) -> str:
    """``command`` with the host's paths replaced by the test's, and no webhook on the internet."""
    command = command.replace("/usr/local/bin/preserve", shlex.quote(exe()))
    command = command.replace("https://alerts.example.org/hooks/preserve", "http://127.0.0.1:9/hook")
    for path, here in host.items():
        command = command.replace(path, str(here))
    return command


def unit_commands(unit: Path) -> dict[str, list[str]]:
    """``ExecStart=``-style settings of a systemd unit: continuation lines joined, ``%%`` made ``%``."""
    logical = re.sub(r"\\\n\s*", " ", unit.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for line in logical.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("Exec"):
            assert "%" not in value.replace("%%", ""), f"{unit.name}: {key} uses a systemd specifier"
            out.setdefault(key, []).append(value.replace("%%", "%"))
    return out


def crontab_commands(crontab: Path) -> list[str]:
    """The command of every crontab entry; an unescaped ``%`` (a line break to cron) fails."""
    commands = []
    for line in crontab.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line.split(None, 5)[5]
        assert "%" not in command.replace("\\%", ""), f"crontab: an unescaped % would cut the command: {command}"
        commands.append(command.replace("\\%", "%"))
    return commands


def sh(command: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(umask))


def next_second() -> None:
    """Wait for the wall clock's next second: the backups' names are by the second."""
    time.sleep(1.02 - time.time() % 1)


def backups(host: dict[str, Path]) -> list[Path]:
    return sorted((host["/var/lib/preserve"] / "backups").iterdir())


def bag_count(ledger: Path) -> int:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(db.execute("SELECT count(*) FROM bags").fetchone()[0])
    finally:
        db.close()


def test_the_systemd_unit_runs_twice_a_day(host: dict[str, Path]) -> None:
    commands = unit_commands(EXAMPLES / "preserve-audit.service")
    assert set(commands) == {"ExecStart", "ExecStopPost"}
    for run in (1, 2):
        if run == 2:
            next_second()
        for key in ("ExecStart", "ExecStopPost"):
            (command,) = commands[key]
            argv = shlex.split(localized(command, host))
            r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, f"run {run}, {key}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    made = backups(host)
    assert len(made) == 2 and all(BACKUP_NAME.fullmatch(p.name) for p in made), made
    assert [bag_count(p) for p in made] == [1, 1]


def test_the_crontab_runs_twice_and_publishes_the_report(host: dict[str, Path]) -> None:
    nightly, weekly = crontab_commands(EXAMPLES / "crontab")
    # the account running cron keeps its files to itself; the report is still for others to read
    r = sh(localized(nightly, host), umask=0o077)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "audited" in (host["/var/log/preserve"] / "audit.log").read_text(encoding="utf-8")
    for run in (1, 2):
        if run == 2:
            next_second()
        r = sh(localized(weekly, host), umask=0o077)
        assert r.returncode == 0, f"run {run}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    report = host["/srv/reports"] / "audit.html"
    assert stat.S_IMODE(report.stat().st_mode) == 0o644
    assert "tape-001" in report.read_text(encoding="utf-8")
    made = backups(host)
    assert len(made) == 2 and all(BACKUP_NAME.fullmatch(p.name) for p in made), made
    # the ledger's copies stay as private as the account wants them
    assert {stat.S_IMODE(p.stat().st_mode) & 0o077 for p in made} == {0}


def test_a_backup_never_replaces_a_file(host: dict[str, Path]) -> None:
    # why the names carry the time: the same name twice is refused, and the first copy kept
    ledger = host["/var/lib/preserve"] / "ledger.sqlite"
    r = subprocess.run([exe(), "audit", host["/srv/archive"], "--ledger", ledger, "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dest = host["/var/lib/preserve"] / "backups" / "ledger.sqlite"
    first = subprocess.run([exe(), "ledger", "backup", dest, "--ledger", ledger], capture_output=True, text=True)
    again = subprocess.run([exe(), "ledger", "backup", dest, "--ledger", ledger], capture_output=True, text=True)
    assert (first.returncode, again.returncode) == (0, 4), again.stderr
    assert bag_count(dest) == 1

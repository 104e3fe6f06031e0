"""The fleet examples (examples/fleet/): each file parses as its tool reads it, and its command
lines run, as written, against a test PostgreSQL ledger and a test archive."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from preserve.bag.writer import PayloadEntry, create_bag

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
URL = "postgresql://preserve@ledger.example.org:5432/vault"
METRICS = "/var/lib/node_exporter/textfile/preserve.prom"


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file as systemd reads it: sections of (key, value), backslash continuations joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}: {line}"
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None and "=" in line, f"{path.name}: {line}"
        key, value = line.split("=", 1)
        sections[current].append((key.strip(), value.strip()))
    return sections


def _archive(root: Path) -> Path:
    for name in ("one", "two"):
        src = root / "src" / name
        src.mkdir(parents=True)
        (src / "a.wav").write_bytes(b"RIFF" + os.urandom(5000))
        create_bag(root / "archive" / name, [PayloadEntry(src / "a.wav", "objects/a.wav")],
                   info=[("External-Identifier", f"id-{name}")])
    return root / "archive"


def _localize(command: str, tmp_path: Path, url: str, scheduler: str = "", shell: bool = False) -> str:
    exe = str(Path(sys.executable).parent / "preserve")
    return (command.replace("/usr/local/bin/preserve", exe).replace(URL, shlex.quote(url) if shell else url)
            .replace("/srv/archive", str(tmp_path / "archive")).replace(METRICS, str(tmp_path / "textfile" / "preserve.prom"))
            .replace("/var/log/preserve", str(tmp_path / "log")).replace("tcp://dask-scheduler.example.org:8786", scheduler))


def _env(tmp_path: Path, assignments: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PRESERVE_CONFIG"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    for a in assignments:
        key, value = a.split("=", 1)
        env[key] = value.replace("/etc/preserve/pgpass", str(tmp_path / "pgpass"))
    return env


def _check_metrics(tmp_path: Path) -> None:
    samples = {s.name: s.value for f in text_string_to_metric_families((tmp_path / "textfile/preserve.prom").read_text())
               for s in f.samples}
    assert samples["preserve_bags"] == 2 and samples["preserve_open_failures"] == 0


@pytest.fixture
def fleet_setup(tmp_path: Path, postgres_url: str) -> tuple[Path, str]:
    _archive(tmp_path)
    (tmp_path / "textfile").mkdir()
    (tmp_path / "log").mkdir()
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("*:*:*:preserve_test:unused-with-trust\n")
    pgpass.chmod(0o600)
    return tmp_path, postgres_url


def test_the_timer_is_a_valid_nightly_timer() -> None:
    unit = _unit(FLEET / "preserve-fleet-audit.timer")
    timer = dict(unit["Timer"])
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["OnCalendar"])
    assert timer["Persistent"] == "true"
    assert dict(unit["Install"])["WantedBy"] == "timers.target"
    if shutil.which("systemd-analyze"):
        assert subprocess.run(["systemd-analyze", "calendar", timer["OnCalendar"]], capture_output=True).returncode == 0


def test_the_fleet_unit_runs_its_audit_and_metrics_against_a_shared_ledger(fleet_setup: tuple[Path, str]) -> None:
    tmp_path, url = fleet_setup
    unit = _unit(FLEET / "preserve-fleet-audit.service")
    service = unit["Service"]
    env = _env(tmp_path, [v for k, v in service if k == "Environment"])
    assert env["PGPASSFILE"] == str(tmp_path / "pgpass")
    commands = [v for k, v in service if k in ("ExecStart", "ExecStopPost")]
    assert len(commands) == 2 and all(URL in c for c in commands)
    for command in commands:
        result = subprocess.run(shlex.split(_localize(command, tmp_path, url)), capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
    _check_metrics(tmp_path)


@pytest.mark.slow
def test_the_dask_unit_runs_on_a_cluster_against_the_shared_ledger(fleet_setup: tuple[Path, str]) -> None:
    distributed = pytest.importorskip("distributed")
    tmp_path, url = fleet_setup
    service = _unit(FLEET / "preserve-dask-audit.service")["Service"]
    env = _env(tmp_path, [v for k, v in service if k == "Environment"])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for command in [v for k, v in service if k in ("ExecStart", "ExecStopPost")]:
            assert "--scheduler" not in command or "tcp://dask-scheduler.example.org:8786" in command
            result = subprocess.run(shlex.split(_localize(command, tmp_path, url, cluster.scheduler_address)),
                                    capture_output=True, text=True, env=env, timeout=300)
            assert result.returncode == 0, result.stderr
    _check_metrics(tmp_path)


@pytest.mark.slow
def test_the_fleet_crontab_entries_parse_and_run(fleet_setup: tuple[Path, str]) -> None:
    tmp_path, url = fleet_setup
    assignments, entries = [], []
    for line in (FLEET / "crontab").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            assignments.append(line)
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        for f in fields[:5]:
            assert re.fullmatch(r"[\d*/,-]+", f), f"not a cron time field: {f}"
        assert "%" not in fields[5], "cron turns % into a newline"
        entries.append(fields[5])
    assert len(entries) == 2
    env = _env(tmp_path, assignments)
    for command in entries:
        result = subprocess.run(["/bin/sh", "-c", _localize(command, tmp_path, url, shell=True)], capture_output=True, text=True,
                                env=env, timeout=300)
        assert result.returncode == 0, result.stderr
    _check_metrics(tmp_path)
    assert "audited 2 bag(s): 2 ok, 0 with problems" in (tmp_path / "log" / "audit.log").read_text()

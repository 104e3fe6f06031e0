"""Progress: every phase of package is shown, and without a terminal plain lines come at an interval."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from preserve.cli.common import ProgressBar, human_bytes, parse_interval
from preserve.intake.testaudio import Tone, write_wav
from preserve.package import package_collection

TOML = """\
[collection]
identifier = "prog-0001"
organization = "Test Archive"

[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate"]
"""
LINE = re.compile(r"^preserve: bagging: (copy\+hash|verify)"
                  r"(: \d+%, [\d.]+ (?:bytes|[kMGT]B) of [\d.]+ [kMGT]?B, [\d.]+ (?:bytes|[kMGT]B)/s, ETA (?:[\d:]+|unknown)"
                  r"|: [\d.]+ [kMGT]?B, running for [\d:]+)$")


def _collection(root: Path) -> Path:
    root.mkdir()
    (root / "collection.toml").write_text(TOML, encoding="utf-8")
    (root / "rights").mkdir()
    (root / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
    write_wav(root / "a.wav", Tone(22050, 16, 1, 0.5))
    write_wav(root / "b.wav", Tone(22050, 16, 2, 0.5, 330.0))
    (root / "metadata.csv").write_text("file,title\na.wav,A\nb.wav,B\n", encoding="utf-8")
    return root


def test_package_reports_every_phase_in_order_with_its_bytes(tmp_path: Path) -> None:
    root = _collection(tmp_path / "coll")
    phases: list[tuple[str, int, bool]] = []
    counted: dict[str, int] = {}

    def progress(nbytes: int, nfiles: int) -> None:
        counted[phases[-1][0]] = counted.get(phases[-1][0], 0) + nbytes

    package_collection(root, tmp_path / "aip", profile=None, progress=progress, check_progress=progress,
                       on_phase=lambda name, total, c: phases.append((name, total, c)))
    audio = (root / "a.wav").stat().st_size + (root / "b.wav").stat().st_size
    submission = sum((root / n).stat().st_size for n in ("metadata.csv", "collection.toml", "rights/agreement.txt"))
    assert [p[0] for p in phases] == ["check", "copy+hash", "verify", "sidecars"]
    assert phases[0] == ("check", audio, True)
    assert phases[1] == ("copy+hash", audio + submission, True)
    assert phases[2] == ("verify", audio + submission, True)
    # the bytes each counted phase announced are the bytes it reported: the bar reaches 100% in each
    assert counted == {"check": audio, "copy+hash": audio + submission, "verify": audio + submission}


def test_package_archive_announces_the_archive_phase(tmp_path: Path) -> None:
    root = _collection(tmp_path / "coll")
    phases: list[str] = []
    package_collection(root, tmp_path / "aip", profile=None, serialization="tar", verify=False,
                       on_phase=lambda name, total, c: phases.append(name))
    assert phases == ["check", "copy+hash", "sidecars", "archive"]


def test_line_names_phase_percent_bytes_rate_and_eta() -> None:
    now = [100.0]
    bar = ProgressBar(0, "packaging", interval=30, clock=lambda: now[0])
    bar.phase("copy+hash", 3_000_000_000)
    now[0] += 10
    bar(1_200_000_000, 1)
    assert bar.line() == "packaging: copy+hash: 40%, 1.2 GB of 3.0 GB, 120.0 MB/s, ETA 0:15"
    bar.phase("verify", 3_000_000_000, counted=False)
    now[0] += 75
    assert bar.line() == "packaging: verify: 3.0 GB, running for 1:15"
    bar.phase("check")
    bar(500, 1)
    assert bar.line().startswith("packaging: check: 500 bytes done")


def test_sizes_and_intervals() -> None:
    assert human_bytes(999) == "999 bytes"
    assert human_bytes(1_234_567) == "1.2 MB"
    assert parse_interval("30") == 30.0
    assert parse_interval("0.2") == 0.2
    assert parse_interval("2m") == 120.0
    for bad in ("0", "-1", "soon"):
        with pytest.raises(click.BadParameter):
            parse_interval(bad)


def test_progress_interval_option_refuses_a_bad_value(tmp_path: Path) -> None:
    from preserve.cli.main import cli

    (tmp_path / "src").mkdir()
    result = CliRunner().invoke(cli, ["bag", "--progress-interval", "soon", str(tmp_path / "src"), str(tmp_path / "b")])
    assert result.exit_code == 2
    assert "--progress-interval" in result.output
    assert not (tmp_path / "b").exists()


def _big_source(src: Path, size: int) -> None:
    src.mkdir()
    chunk = os.urandom(1 << 20)
    for i in range(4):
        with open(src / f"take{i}.raw", "wb") as f:
            for _ in range(size // 4 // len(chunk)):
                f.write(chunk)


def _run_bag(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "src"
    if not src.exists():
        _big_source(src, 160 << 20)
    dest = tmp_path / f"bag{len(list(tmp_path.iterdir()))}"
    # stderr is a pipe, as under cron or systemd; one worker keeps the run long enough to be seen
    return subprocess.run([sys.executable, "-c", "from preserve.cli.entry import run; run()", "bag", "-w", "1", *extra, str(src), str(dest)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_without_a_terminal_progress_lines_come_at_the_interval(tmp_path: Path) -> None:
    proc = _run_bag(tmp_path, "--progress-interval", "0.2")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("preserve: bagging")]
    assert len(lines) >= 2, proc.stderr
    for line in lines:
        assert LINE.match(line), line
    assert any("copy+hash: " in line and "%" in line for line in lines)
    # no bar drawing: nothing a log file would keep as garbage
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    assert f"next: preserve validate {tmp_path}/bag" in proc.stderr


def test_quiet_silences_progress_lines(tmp_path: Path) -> None:
    proc = _run_bag(tmp_path, "-q", "--progress-interval", "0.2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def _on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run the CLI with standard error on a pseudo-terminal; returns the exit code and what it drew."""
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", "from preserve.cli.entry import run; run()", *argv],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        drawn += chunk
    assert proc.stdout is not None
    proc.stdout.read()
    code = proc.wait(timeout=60)
    os.close(leader)
    return code, drawn.decode("utf-8", "replace")


def test_on_a_terminal_package_draws_each_phase(tmp_path: Path) -> None:
    root = _collection(tmp_path / "coll")
    code, drawn = _on_a_terminal(["package", "--no-profile", str(root), str(tmp_path / "aip")])
    assert code == 0, drawn
    shown = [p for p in ("packaging: check", "packaging: copy+hash", "packaging: verify", "packaging: sidecars")
             if p in drawn]
    assert shown == ["packaging: check", "packaging: copy+hash", "packaging: verify", "packaging: sidecars"], drawn
    # the order they were drawn in is the order they ran in
    assert [drawn.index(p) for p in shown] == sorted(drawn.index(p) for p in shown)
    assert "100%" in drawn
    assert drawn.count("packaging: check  [---") == 1, "the check's bar is drawn once, not again when its total is known"
    assert not [line for line in drawn.splitlines() if line.startswith("preserve: packaging")]

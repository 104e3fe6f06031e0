"""Files and folders preserve writes for others to read follow the umask, as any tool's do:
the schemas install, report --html, events -o and ledger export -o."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.audit.ledger import open_ledger
from preserve.bag.writer import create_bag, payload_from_directory

SHARED = Path(__file__).resolve().parents[2] / "shared" / "schemas"
MODES = {0o022: (0o755, 0o644), 0o027: (0o750, 0o640), 0o002: (0o775, 0o664)}


def preserve_with_umask(umask: int) -> Callable[..., subprocess.CompletedProcess[str]]:
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent)) or shutil.which("preserve")
    assert exe, "the preserve console script is not installed in this environment"

    def run(*args: object, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *[str(a) for a in args]], capture_output=True, text=True, timeout=600,
                              preexec_fn=lambda: os.umask(umask), **kw)  # type: ignore[call-overload]

    return run


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", list(MODES), ids=["022", "027", "002"])
def test_schemas_install_follows_the_umask(tmp_path: Path, umask: int) -> None:
    dest = tmp_path / "srv" / "preserve" / "schemas"
    r = preserve_with_umask(umask)("schemas", "install", "--from", SHARED, "--dest", dest)
    assert r.returncode == 0, r.stderr
    folder_mode, file_mode = MODES[umask]
    assert {p.name: mode(p) for p in (dest, dest.parent)} == {dest.name: folder_mode, dest.parent.name: folder_mode}
    files = {p.name: mode(p) for p in dest.iterdir()}
    assert "catalog.xml" in files and set(files.values()) == {file_mode}
    # a second install replaces the first in one step: the new folder gets the same mode
    r = preserve_with_umask(umask)("schemas", "install", "--from", SHARED, "--dest", dest)
    assert r.returncode == 0, r.stderr
    assert mode(dest) == folder_mode and {mode(p) for p in dest.iterdir()} == {file_mode}


@pytest.mark.parametrize("umask", list(MODES), ids=["022", "027", "002"])
def test_reports_and_exports_follow_the_umask(tmp_path: Path, umask: int, ledger_url: Path | str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"RIFF take")
    bag = tmp_path / "bag"
    create_bag(bag, payload_from_directory(src), algorithms=("sha256",), verify=False)
    ledger = ledger_url
    open_ledger(ledger).close()
    out = tmp_path / "out"
    out.mkdir()
    run = preserve_with_umask(umask)
    r = run("report", "--ledger", ledger, "--html", out / "report.html")
    assert r.returncode in (0, 1), r.stderr  # 1: bags need attention; the page is written either way
    r = run("events", bag, "--ledger", ledger, "-o", out / "events.xml")
    assert r.returncode == 0, r.stderr
    r = run("ledger", "export", "--ledger", ledger, "-o", out / "ledger.jsonl")
    assert r.returncode == 0, r.stderr
    want = MODES[umask][1]
    assert {p.name: mode(p) for p in out.iterdir()} == {"report.html": want, "events.xml": want, "ledger.jsonl": want}

"""examples/README.md's walk-through, run as a user runs it, against the output it shows.

Every ```sh block of the walk-through runs in order (one shell script each, stopping at the first
command that fails) in a fresh folder holding a copy of the sample collections, with a fresh home
folder (so a fresh ledger) and the installed ``preserve`` first on the PATH. The ```text block that
follows a command block is what it prints, standard output and standard error together, in the
order written; a command block with none must print nothing. Outputs are compared by their shape:
numbers, dates, identifiers and absolute paths stand for any, runs of spaces for one, and progress
lines (written only while a long command runs) are left out. So the page fails the suite when a
command's wording, lines or exit status drift from it.

It runs twice: with the default ledger the page shows (a SQLite file in the fresh home's data
folder), and with the user's preserve.toml naming a PostgreSQL ledger (``ledger = "postgresql://..."``),
where the ledger's URL stands where the page shows the file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import PROGRESS_LINE, SHARED_SCHEMAS, output_problems

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "examples" / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SHAPES = [
    (re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?"), "<date>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<id>"),
    (re.compile(r"(?<![\w./])/[^\s:;,()'\"]+"), "<path>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"[ \t]+"), " "),
]


@dataclass
class Step:
    commands: str
    output: str | None  # None: the page shows no output, so none is expected
    line: int


def steps(page: str) -> list[Step]:
    """The command blocks of ``page``, each with the output block that follows it."""
    out: list[Step] = []
    for m in FENCE.finditer(page):
        kind, body = m.group(1), m.group(2)
        line = page.count("\n", 0, m.start()) + 1
        if kind == "sh":
            out.append(Step(body, None, line))
        elif kind == "text" and out and out[-1].output is None:
            out[-1].output = body
        else:
            raise AssertionError(f"examples/README.md line {line}: a ```{kind} block that follows no command block")
    return out


def shape(text: str) -> list[str]:
    """``text`` with what changes from run to run made general; blank lines at the ends dropped."""
    lines = []
    for line in text.replace("\r", "").splitlines():
        for pattern, stand_in in SHAPES:
            line = pattern.sub(stand_in, line)
        lines.append(line.strip())
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def without_progress(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not PROGRESS_LINE.match(line.rstrip("\n")))


def user_env(home: Path) -> dict[str, str]:
    """The environment of a user with a fresh home folder; the official schemas stand installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PRESERVE_", "AWS_"))}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONUNBUFFERED="1", PRESERVE_SCHEMAS=str(SHARED_SCHEMAS))
    return env


def run(step: Step, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One command block as a shell script, its two streams in one pipe (as a terminal shows them)."""
    return subprocess.run(["/bin/sh", "-ec", step.commands], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def test_the_page_has_the_whole_walk() -> None:
    found = steps(PAGE.read_text(encoding="utf-8"))
    commands = [line.split()[1] for s in found for line in s.commands.splitlines() if line.startswith("preserve ")]
    assert commands == ["init", "check", "package", "validate", "replicate", "audit", "report", "check", "package"]


def test_shape_keeps_the_words_and_generalizes_the_rest() -> None:
    a = "ledger /tmp/x/ledger.sqlite: 2 bag(s) in 0.3 s, ended 2026-12-03T05:36:31Z (1.5 MB/s)"
    b = "ledger /home/kim/.local/share/preserve/ledger.sqlite: 12 bag(s) in 10.25 s, ended 2027-01-01T00:00:00Z (12.0 MB/s)"
    assert shape(a) == shape(b) == ["ledger <path>: <n> bag(s) in <n>.<n> s, ended <date> (<n>.<n> MB/s)"]
    assert shape("audited 2 bag(s): 2 ok") != shape("audited 2 bag(s): 2 failed")
    assert shape("a\nb") != shape("a")


#: The ledger the page shows: the default file in the user data folder.
SHOWN_LEDGER = "/home/kim/.local/share/preserve/ledger.sqlite"


@pytest.mark.slow
def test_the_walkthrough_runs_as_the_page_shows(tmp_path: Path, ledger_url: Path | str) -> None:
    where = tmp_path / "preserve"
    for sample in ("label-masters", "label-ddex"):
        shutil.copytree(ROOT / "examples" / sample, where / "examples" / sample)
    (tmp_path / "home").mkdir()
    env = user_env(tmp_path / "home")
    if isinstance(ledger_url, str):  # else the default ledger, as on the page
        config = tmp_path / "home" / ".config" / "preserve" / "preserve.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'ledger = "{ledger_url}"\n', encoding="utf-8")
    for step in steps(PAGE.read_text(encoding="utf-8")):
        r = run(step, where, env)
        said = without_progress(r.stdout)
        if isinstance(ledger_url, str):
            assert "ledger.sqlite" not in said, said  # the configured ledger, not the default file
            said = said.replace(ledger_url, SHOWN_LEDGER)
        assert r.returncode == 0, f"examples/README.md line {step.line}: exit {r.returncode}\n{step.commands}\n{said}"
        assert output_problems(said) == [], f"examples/README.md line {step.line}:\n{said}"
        assert shape(said) == shape(step.output or ""), (
            f"examples/README.md line {step.line}: the output differs from the page; it is now:\n{said}")
    default = tmp_path / "home" / ".local" / "share" / "preserve" / "ledger.sqlite"
    assert default.exists() == isinstance(ledger_url, Path)  # the configured ledger took every record

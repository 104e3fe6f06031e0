"""Fixtures shared by every test package: the CLI as a user runs it, the official schemas."""

from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parent.parent
SHARED_SCHEMAS = (ROOT.parent / "shared" / "schemas").resolve()


def pytest_configure(config: pytest.Config) -> None:
    # The README sets XML_CATALOG_FILES relative to the project root; tests and their
    # subprocesses change directory, so make it absolute before libxml2 first reads it.
    catalog = os.environ.get("XML_CATALOG_FILES")
    if catalog and not os.path.isabs(catalog):
        os.environ["XML_CATALOG_FILES"] = " ".join(str((ROOT / c).resolve()) for c in catalog.split())


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """The official METS/PREMIS/MODS schemas (../shared/schemas), with their XML catalog."""
    if not (SHARED_SCHEMAS / "catalog.xml").is_file():
        pytest.fail(f"the official schemas are expected at {SHARED_SCHEMAS} (see README: Tests)")
    return SHARED_SCHEMAS


#: A Python object's repr shown to a person instead of its value (a path as ``PosixPath('...')``).
_REPRS = re.compile(r"\b(?:Posix|Windows|PurePosix|PureWindows)?Path\(['\"]")
#: The start of a traceback, from the interpreter or from the traceback module.
_TRACEBACK = "Traceback (most recent call last)"
#: A non-TTY progress line (see preserve.cli.common.ProgressBar.line): written every interval, it
#: may say the same thing twice ("running for 0:00") and is not a repeated message.
PROGRESS_LINE = re.compile(r"^preserve: .*(?:running for [\d:]+|\d+%, .* ETA \S+|/s)$")
#: The prefixes under which a line reports an error or a warning; the rest is the message itself.
_ERROR = re.compile(r"^\s*(?:preserve: )?(?:error|warning|problem): *(.+)$", re.IGNORECASE)


def output_problems(*outputs: str, traceback_expected: bool = False) -> list[str]:
    """What a person reading ``outputs`` (one command's streams) should never see, in plain words.

    A Python repr of a path, a traceback (unless the test expects an internal error), the same
    non-empty line twice in a row, and the same error or warning message twice in the command's
    output (say, once by the library's report and again by the command's final error line).
    """
    found: list[str] = []
    every = "\n".join(outputs)
    for m in _REPRS.finditer(every):
        line = every[every.rfind("\n", 0, m.start()) + 1:].split("\n", 1)[0]
        found.append(f"a Python repr instead of a path: {line}")
    if _TRACEBACK in every and not traceback_expected:
        found.append("a Python traceback")
    errors: dict[str, str] = {}
    for text in outputs:
        previous = ""
        for line in text.splitlines():
            line = line.rstrip()
            if line.strip() and line == previous and not PROGRESS_LINE.match(line):
                found.append(f"the same line twice in a row: {line}")
            previous = line
            said = _ERROR.match(line)
            if said:
                message = said.group(1).strip()
                if message in errors:
                    found.append(f"one message printed twice: {errors[message]} / {line.strip()}")
                else:
                    errors[message] = line.strip()
    return found


def assert_output_fit_for_people(request: pytest.FixtureRequest, command: object, *outputs: str) -> None:
    """Fail the test when ``outputs`` hold anything of :func:`output_problems`."""
    expected = request.node.get_closest_marker("internal_error") is not None
    problems = output_problems(*outputs, traceback_expected=expected)
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems)
        pytest.fail(f"`preserve {command}` printed what no one should read:\n{shown}\n"
                    f"--- its output ---\n" + "\n--- next stream ---\n".join(outputs), pytrace=False)


@pytest.fixture
def output_checked(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``output_checked(command, *outputs)``: for a test's own way of running preserve, the check
    the ``cli`` and ``run_preserve`` fixtures make of every output."""
    return functools.partial(assert_output_fit_for_people, request)


@pytest.fixture
def cli(request: pytest.FixtureRequest) -> Callable[..., Result]:
    """Invoke the click CLI in-process (fast); exit codes and output as a user sees them.

    Every output is checked with :func:`output_problems`; a :class:`PreserveError` raised out of
    the command is checked with the line ``main()`` would add for it, then raised to the test.
    """
    from preserve.cli.main import cli as group
    from preserve.errors import PreserveError

    def invoke(*args: str | os.PathLike[str], input: str | None = None) -> Result:
        runner = CliRunner()
        words = [str(a) for a in args]
        try:
            result = runner.invoke(group, words, input=input, catch_exceptions=False)
        except PreserveError as exc:
            # the runner keeps no output once the command raises: what it printed is lost, but
            # the message itself must still read as plain words
            assert_output_fit_for_people(request, " ".join(words), f"preserve: error: {exc}")
            raise
        assert_output_fit_for_people(request, " ".join(words), result.stdout, result.stderr)
        return result

    return invoke


@pytest.fixture
def run_preserve(request: pytest.FixtureRequest) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``preserve`` console script in a real subprocess (exit codes via main()).

    Every output is checked with :func:`output_problems` (captured output only).
    """
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent)) or shutil.which("preserve")
    assert exe, "the preserve console script is not installed in this environment"

    def run(*args: str | os.PathLike[str], check: bool = False, **kw: object) -> subprocess.CompletedProcess[str]:
        words = [str(a) for a in args]
        proc: subprocess.CompletedProcess[str] = subprocess.run([exe, *words], capture_output=True, text=True, check=check,
                              timeout=kw.pop("timeout", 600), **kw)  # type: ignore[call-overload]
        if isinstance(proc.stdout, str) and isinstance(proc.stderr, str):
            assert_output_fit_for_people(request, " ".join(words), proc.stdout, proc.stderr)
        return proc

    return run


def preserve_script(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it, with ``env`` added to the environment; every
    output checked with :func:`output_problems`. A plain function, for module-scoped fixtures too."""
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe, "the preserve console script is not installed in this environment"
    proc = subprocess.run([exe, *[str(a) for a in args]], capture_output=True, text=True, encoding="utf-8",
                          timeout=300, check=False, env={**os.environ, **(env or {})})
    problems = output_problems(proc.stdout, proc.stderr)
    assert not problems, "\n".join([*problems, "--- output ---", proc.stdout, proc.stderr])
    return proc


@dataclass
class Outcome:
    """One in-process run of ``preserve``: its exit code and what it wrote to each stream."""

    exit_code: int
    stdout: str
    stderr: str


#: The ``pv`` fixture's type, for annotations.
Preserve = Callable[..., Outcome]


@pytest.fixture
def pv(capsys: pytest.CaptureFixture[str]) -> Preserve:
    """Run ``preserve ARGS`` in-process through ``main()`` (errors mapped to exit codes as a user sees them)."""
    from preserve.cli.main import main

    def call(*args: object) -> Outcome:
        capsys.readouterr()
        code: int | str | None = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return Outcome(int(code or 0), out.out, out.err)

    return call


def _drop_read_override() -> None:
    """For ``preexec_fn``: root reads any file, so drop CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH
    (2) from the bounding set; the exec'd program then meets file permissions as anyone does."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture
def permissions_apply():
    """The ``preexec_fn`` that makes file permissions apply to a subprocess (None when not root);
    skips the test when root cannot drop its capabilities."""
    import subprocess

    if os.geteuid() != 0:
        return None
    try:
        subprocess.run(["true"], preexec_fn=_drop_read_override, check=True)
    except subprocess.SubprocessError:
        pytest.skip("running as root without CAP_SETPCAP: no way to make a file or folder unreadable")
    return _drop_read_override


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, str], contextlib.AbstractContextManager[Path]]]:
    """``tmpfs(where, options)``: a real tmpfs mounted at ``where`` (made first) with mount
    ``options`` such as ``size=2m`` or ``ro,size=1m``, unmounted on leaving; skips the test where
    mounting is not allowed (not root). For full and read-only disks that fail for real."""

    @contextlib.contextmanager
    def mount(where: Path, options: str) -> Iterator[Path]:
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
        try:
            yield where
        finally:
            subprocess.run(["umount", "-l", str(where)], check=False)

    yield mount


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its base URL (fetch.txt items, downloads)."""
    root = tmp_path / "served"
    root.mkdir()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


# -- PostgreSQL: a real server the suite starts itself (tests/ledger/pg_server.py) ----------------

sys.path.insert(0, str(Path(__file__).parent / "ledger"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """One PostgreSQL server per test worker, started on a temporary folder, removed at the end.

    Skipped (saying why) only where no PostgreSQL server binaries exist; .ci/run installs
    Debian's postgresql package, so CI never skips.
    """
    try:
        from pg_server import PgServer, find_pg_bindir
    except ImportError as exc:  # psycopg not installed
        pytest.skip(f"PostgreSQL tests need psycopg ({exc}): pip install -e '.[test]'")
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql package")
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: object) -> str:
    """A new, empty PostgreSQL database on the session's server: its libpq URL."""
    return postgres_server.database()  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new ledger for one test, on each backend in turn: a SQLite file in tmp_path (not made
    yet), then a new empty database on the session's PostgreSQL server (its URL).

    Every test that records in or reads a ledger takes this, so that it runs on both backends
    with the same expectations: ``-k postgresql`` runs only the PostgreSQL runs, ``-k "not
    postgresql"`` runs without the server. A test about the SQLite file itself (its path, mode,
    journal, damage) keeps its own path and says why.
    """
    if request.param == "sqlite":
        return tmp_path / "ledger" / "ledger.sqlite"
    return request.getfixturevalue("postgres_ledgers")()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def postgres_ledgers(postgres_server: Any) -> Callable[[], str]:
    """``new()``: the URL of a new, empty PostgreSQL ledger on the session's server.

    Each is a login role (no superuser) with a schema of its own name, in one database the
    session's tests share: PostgreSQL's default search_path starts with the user's own schema, so
    each ledger's tables stand apart from every other's. A role and a schema take milliseconds,
    where a new database takes 0.1 s and 11 MB (hundreds of them left the session a minute of
    deleting gigabytes at its end).
    """
    import psycopg

    shared = urlsplit(postgres_server.database("ledgers"))

    def new() -> str:
        role = f"ledger_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(shared.geturl(), autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{role}" LOGIN')
            conn.execute(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"')
        return shared._replace(netloc=f"{role}@{shared.hostname or ''}").geturl()

    return new


@pytest.fixture
def new_ledger(ledger_url: Path | str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], Path | str]:
    """``new_ledger()``: one more new ledger on the backend of this test's ``ledger_url``, for a
    test that needs several (a SQLite path not made yet, or a new database's URL)."""
    made = itertools.count(1)

    def make() -> Path | str:
        if isinstance(ledger_url, Path):
            return ledger_url.with_name(f"ledger-{next(made)}.sqlite")
        return request.getfixturevalue("postgres_ledgers")()  # type: ignore[no-any-return]

    return make

"""Fixtures shared by every test package: the CLI as a user runs it, the official schemas."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

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


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Invoke the click CLI in-process (fast); exit codes and output as a user sees them."""
    from preserve.cli.main import cli as group

    def invoke(*args: str | os.PathLike[str], input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(group, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def run_preserve() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``preserve`` console script in a real subprocess (exit codes via main())."""
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent)) or shutil.which("preserve")
    assert exe, "the preserve console script is not installed in this environment"

    def run(*args: str | os.PathLike[str], check: bool = False, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *[str(a) for a in args]], capture_output=True, text=True, check=check,
                              timeout=kw.pop("timeout", 600), **kw)  # type: ignore[call-overload]

    return run


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

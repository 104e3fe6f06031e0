"""`preserve schemas install`: from a folder, from an HTTP server, and refusing tampered files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from preserve.sidecars.check import check_sidecars
from preserve.sidecars.schemas import default_dir, load_validators, pins

SHARED = Path(__file__).resolve().parents[3] / "shared" / "schemas"
NAMES = sorted(p.name for p in pins())


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PRESERVE_SCHEMAS", raising=False)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Serve a folder over HTTP on 127.0.0.1 from a thread; returns its base URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def assert_installed(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted([*NAMES, "catalog.xml"])
    for pin in pins():
        assert hashlib.sha256((folder / pin.name).read_bytes()).hexdigest() == pin.sha256
    catalog = (folder / "catalog.xml").read_text()
    assert '<uri name="http://www.loc.gov/standards/mets/version1121/mets.xsd" uri="mets-1.12.1.xsd"/>' in catalog
    assert '<uri name="http://www.loc.gov/standards/amdvmd/audioMD.xsd" uri="audioMD-2-0.xsd"/>' in catalog
    load_validators(folder)  # compiles without network or catalog variable


def test_install_from_folder_into_the_user_data_dir(cli: Callable[..., Result], tmp_path: Path, kit: Any) -> None:
    result = cli("schemas", "install", "--from", SHARED)
    assert result.exit_code == 0, result.output
    folder = default_dir()
    assert folder == tmp_path / "xdg" / "preserve" / "schemas"
    assert result.output.startswith(f"installed 7 schemas in {folder} (SHA-256 verified; catalog: {folder / 'catalog.xml'})")
    assert_installed(folder)
    # validate now finds them on its own: no warning, schema checks run
    col, payload = kit.make_collection(tmp_path / "src", 2)
    bag = kit.package(tmp_path / "bag", col, payload)
    assert check_sidecars(bag) == []


def test_install_from_a_local_http_server(cli: Callable[..., Result], serve: Callable[[Path], str], tmp_path: Path) -> None:
    base = serve(SHARED)
    dest = tmp_path / "from-http"
    result = cli("schemas", "install", "--base-url", base, "--dest", dest)
    assert result.exit_code == 0, result.output
    assert_installed(dest)
    assert f"set PRESERVE_SCHEMAS={dest} to use this folder" in result.output


def test_tampered_schema_over_http_is_refused_and_nothing_changes(
        cli: Callable[..., Result], run_preserve: Callable[..., Any], serve: Callable[[Path], str], tmp_path: Path) -> None:
    dest = tmp_path / "schemas"
    assert cli("schemas", "install", "--from", SHARED, "--dest", dest).exit_code == 0
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    evil = tmp_path / "evil"
    shutil.copytree(SHARED, evil)
    text = (evil / "mets-1.12.1.xsd").read_text("utf-8")
    (evil / "mets-1.12.1.xsd").write_text(text.replace('processContents="lax"', 'processContents="skip"', 1), "utf-8")
    proc = run_preserve("schemas", "install", "--base-url", serve(evil), "--dest", dest)
    assert proc.returncode == 8
    found = hashlib.sha256((evil / "mets-1.12.1.xsd").read_bytes()).hexdigest()
    assert (f"/mets-1.12.1.xsd: SHA-256 {found} does not match the pinned "
            "8f289c776e490e4763dab0e4b958c74993e5f271718cf244f24d00bb5af62a1f for mets-1.12.1.xsd; the file is not the "
            "official schema (altered or tampered with); nothing was installed") in proc.stderr
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before


def test_tampered_schema_from_folder_is_refused(run_preserve: Callable[..., Any], tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    shutil.copytree(SHARED, evil)
    with open(evil / "xlink.xsd", "ab") as f:
        f.write(b"\n")
    dest = tmp_path / "schemas"
    proc = run_preserve("schemas", "install", "--from", evil, "--dest", dest)
    assert proc.returncode == 8
    assert proc.stderr.startswith(f"preserve: error: {evil / 'xlink.xsd'}: SHA-256 ")
    assert not dest.exists()


def test_missing_file_and_unreachable_server(run_preserve: Callable[..., Any], tmp_path: Path, serve: Callable[[Path], str]) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(SHARED, partial)
    (partial / "mods-3-8.xsd").unlink()
    proc = run_preserve("schemas", "install", "--from", partial, "--dest", tmp_path / "a")
    assert proc.returncode == 8
    assert f"{partial / 'mods-3-8.xsd'}: missing; the folder must hold the official mods-3-8.xsd" in proc.stderr
    proc = run_preserve("schemas", "install", "--base-url", serve(partial), "--dest", tmp_path / "b")
    assert proc.returncode == 8
    assert "/mods-3-8.xsd: cannot download the schema (HTTP 404 File not found)" in proc.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_pins_match_the_shared_official_copies() -> None:
    for pin in pins():
        assert hashlib.sha256((SHARED / pin.name).read_bytes()).hexdigest() == pin.sha256, pin.name
        assert pin.url.startswith(("https://www.loc.gov/", "https://www.w3.org/"))


def test_dest_holding_other_files_is_refused_and_kept(run_preserve: Callable[..., Any], tmp_path: Path) -> None:
    dest = tmp_path / "mydocs"
    dest.mkdir()
    (dest / "thesis.txt").write_text("years of work")
    (dest / "mets-1.12.1.xsd").write_text("an old copy")
    proc = run_preserve("schemas", "install", "--from", SHARED, "--dest", dest)
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr == (f"preserve: error: {dest}: holds files that are not the pinned schemas (thesis.txt); "
                           "installing would replace the folder and delete them. Choose a new or empty folder, or one "
                           "holding only a previous schemas install (nothing was written or deleted)\n")
    assert sorted(p.name for p in dest.iterdir()) == ["mets-1.12.1.xsd", "thesis.txt"]
    assert (dest / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydocs"]  # no staging folder left behind


def test_reinstall_over_a_previous_install_or_an_empty_folder(cli: Callable[..., Result], tmp_path: Path) -> None:
    dest = tmp_path / "schemas"
    dest.mkdir()
    assert cli("schemas", "install", "--from", SHARED, "--dest", dest).exit_code == 0
    assert_installed(dest)
    result = cli("schemas", "install", "--from", SHARED, "--dest", dest)
    assert result.exit_code == 0, result.output
    assert_installed(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schemas"]

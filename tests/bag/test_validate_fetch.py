"""``validate --fetch`` against a real HTTP server on 127.0.0.1: http(s) only, capped reads, no
redirect to another scheme, a timeout, and a holey bag whose items all match is valid."""

from __future__ import annotations

import http.server
import json
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from preserve.bag import validate as validate_module
from preserve.bag.validate import validate_bag

#: Bytes the endless route may send before the test calls the read uncapped.
ENDLESS_LIMIT = 256 * 1024 * 1024


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]]
    sent: dict[str, int]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should past the declared length

    def log_message(self, format: str, *args: object) -> None:
        pass


def _body(data: bytes) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def send(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return send


def _redirect(location: str) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def send(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return send


def _endless(server: _Server, name: str) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    """A body that does not end (like file:///dev/zero), counting what the client took."""

    def send(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.end_headers()
        chunk = b"\0" * 65536
        server.sent[name] = 0
        while server.sent[name] < ENDLESS_LIMIT:
            h.wfile.write(chunk)
            server.sent[name] += len(chunk)

    return send


def _stalled(h: http.server.BaseHTTPRequestHandler) -> None:
    time.sleep(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.sent = {}, {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _url(server: _Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.fixture
def holey(simple_bag: Path, tmp_path: Path) -> tuple[Path, bytes]:
    """simple_bag with data/a.wav moved out of it (its bytes returned), for fetch.txt to name."""
    data = (simple_bag / "data" / "a.wav").read_bytes()
    shutil.move(simple_bag / "data" / "a.wav", tmp_path / "a.wav")
    return simple_bag, data


def _fetch_txt(bag: Path, url: str, length: int | str) -> None:
    (bag / "fetch.txt").write_text(f"{url} {length} data/a.wav\n")


def test_a_holey_bag_whose_items_match_is_valid(holey: tuple[Path, bytes], server: _Server, run_preserve) -> None:
    bag, data = holey
    server.routes["/a.wav"] = _body(data)
    _fetch_txt(bag, _url(server, "/a.wav"), len(data))
    report = validate_bag(bag, fetch=True)
    assert report.ok, report.findings
    # the fetched item is part of the payload: counted as Payload-Oxum counts it (3 files, 2 on disk)
    oxum = next(line for line in (bag / "bag-info.txt").read_text().splitlines() if line.startswith("Payload-Oxum:"))
    octets, count = (int(n) for n in oxum.split(":", 1)[1].strip().split("."))
    assert (count, octets) == (3, sum(f.stat().st_size for f in (bag / "data").rglob("*") if f.is_file()) + len(data))
    assert (report.files, report.bytes) == (count, octets)
    r = run_preserve("validate", "--fetch", bag)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"valid ({count} files, {octets} bytes," in r.stdout
    r = run_preserve("validate", "--fetch", "--json", bag)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (json.loads(r.stdout)["files"], json.loads(r.stdout)["bytes"]) == (count, octets)
    assert not (bag / "data" / "a.wav").exists(), "--fetch must not write into the bag"
    r = run_preserve("validate", bag)  # without --fetch the hole is reported, and only the hole
    assert r.returncode == 1
    assert r.stdout.count("error:") == 1 and "data/a.wav: listed in fetch.txt" in r.stdout


def test_a_holey_tar_counts_its_fetched_item_as_the_folder_does(holey: tuple[Path, bytes], server: _Server,
                                                                 tmp_path: Path, run_preserve) -> None:
    bag, data = holey
    server.routes["/a.wav"] = _body(data)
    _fetch_txt(bag, _url(server, "/a.wav"), len(data))
    archive = tmp_path / "simple-bag.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(bag, arcname=bag.name)
    folder = validate_bag(bag, fetch=True)
    assert folder.ok and (folder.files, folder.bytes) == (3, 8014)  # the simple bag's Payload-Oxum
    r = run_preserve("validate", "--fetch", "--json", archive)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (json.loads(r.stdout)["files"], json.loads(r.stdout)["bytes"]) == (3, 8014)
    r = run_preserve("validate", "--fetch", archive)
    assert r.returncode == 0 and "valid (3 files, 8014 bytes," in r.stdout, r.stdout + r.stderr


def test_a_redirect_within_http_is_followed(holey: tuple[Path, bytes], server: _Server) -> None:
    bag, data = holey
    server.routes["/a.wav"] = _body(data)
    server.routes["/moved"] = _redirect(_url(server, "/a.wav"))
    _fetch_txt(bag, _url(server, "/moved"), len(data))
    assert validate_bag(bag, fetch=True).ok


def test_a_longer_body_is_a_mismatch_and_is_not_read_to_its_end(holey: tuple[Path, bytes], server: _Server) -> None:
    bag, data = holey
    server.routes["/zero"] = _endless(server, "zero")
    _fetch_txt(bag, _url(server, "/zero"), len(data))
    report = validate_bag(bag, fetch=True)
    assert [(f.code, f.path) for f in report.errors] == [("fetch", "data/a.wav")]
    assert "sends more bytes than fetch.txt says" in report.errors[0].message
    # the socket buffers hold a few MiB at most; reading on would have taken all ENDLESS_LIMIT
    time.sleep(0.5)
    assert server.sent["zero"] < ENDLESS_LIMIT // 4


def test_an_unknown_length_is_capped_by_payload_oxum(holey: tuple[Path, bytes], server: _Server) -> None:
    bag, _data = holey
    server.routes["/zero"] = _endless(server, "zero")
    _fetch_txt(bag, _url(server, "/zero"), "-")
    report = validate_bag(bag, fetch=True)
    assert ("fetch", "data/a.wav") in [(f.code, f.path) for f in report.errors]
    assert any("Payload-Oxum leaves" in f.message for f in report.errors)
    time.sleep(0.5)
    assert server.sent["zero"] < ENDLESS_LIMIT // 4


def test_a_redirect_to_a_file_url_is_refused(holey: tuple[Path, bytes], server: _Server, tmp_path: Path) -> None:
    bag, data = holey
    server.routes["/a.wav"] = _redirect((tmp_path / "a.wav").as_uri())  # the right bytes: following would pass
    _fetch_txt(bag, _url(server, "/a.wav"), len(data))
    report = validate_bag(bag, fetch=True)
    assert [(f.code, f.path) for f in report.errors] == [("fetch", "data/a.wav")]
    assert "redirected to file://" in report.errors[0].message


@pytest.mark.parametrize("url", ["file:///etc/shadow", "file:///dev/zero", "ftp://127.0.0.1/a.wav", "data:,hello"])
def test_only_http_and_https_urls_are_opened(holey: tuple[Path, bytes], run_preserve, url: str) -> None:
    bag, data = holey
    _fetch_txt(bag, url, len(data))
    r = run_preserve("validate", "--fetch", bag, timeout=60)
    assert r.returncode == 1, r.stderr
    assert f"data/a.wav: fetch.txt names {url}: preserve fetches only http and https URLs, so it was not opened" in r.stdout
    assert "altered" not in r.stdout and "fetched" not in r.stdout  # nothing was read, so no size or digest


def test_a_server_that_does_not_answer_times_out(holey: tuple[Path, bytes], server: _Server,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bag, data = holey
    monkeypatch.setattr(validate_module, "FETCH_TIMEOUT", 1.0)
    server.routes["/slow"] = _stalled
    _fetch_txt(bag, _url(server, "/slow"), len(data))
    started = time.monotonic()
    report = validate_bag(bag, fetch=True)
    assert time.monotonic() - started < 4
    assert [(f.code, f.path) for f in report.errors] == [("fetch", "data/a.wav")]
    assert "timed out" in report.errors[0].message

"""Helpers for replication tests: a real S3-compatible server (moto_server) in its own process,
reached over HTTP by boto3 with dummy credentials from the environment, and small bags."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

#: The dummy secret every test runs with; a test greps every output, log and ledger for it.
SECRET = "pReSeRvE-TeSt-SeCrEt-9f3c1a7e5b"
ACCESS_KEY = "AKIAPRESERVETESTKEY1"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    log: Path

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET,
                            config=Config(s3={"addressing_style": "path"}))

    def bucket(self, *, lock: bool = False) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
        if lock:
            self.client().put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def options(self) -> list[str]:
        """The S3 options a command needs to reach this server."""
        return ["--endpoint-url", self.endpoint, "--region", "us-east-1", "--path-style"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto_server on a free port of 127.0.0.1, as a separate process; killed at the end."""
    exe = Path(sys.executable).parent / "moto_server"
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text(errors='replace')}") from None
                time.sleep(0.1)
        yield S3Server(endpoint=endpoint, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials through the standard chain (environment) and no user AWS config; the
    user data folder in tmp_path, so that a command run without --ledger never opens the real
    user's default ledger (one another preserve may have written)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("PRESERVE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def make_bag(root: Path, name: str = "bag-one", *, big: int = 0, files: dict[str, bytes] | None = None,
             algorithms: tuple[str, ...] = ("sha256", "sha512")) -> Path:
    """A real bag made by preserve (sha256 + sha512), optionally with one file of ``big`` bytes."""
    from preserve.bag.writer import create_bag, payload_from_directory

    src = root / f"{name}-src"
    (src / "disc 1").mkdir(parents=True)
    contents = files or {
        "disc 1/01 intro.wav": b"RIFF" + os.urandom(3000),
        "disc 1/02 song.flac": os.urandom(7000),
        "notes%.txt": b"liner notes\n",
    }
    for rel, data in contents.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    if big:
        with open(src / "disc 1" / "03 long.wav", "wb") as f:
            f.write(os.urandom(big))
    dest = root / name
    create_bag(dest, payload_from_directory(src), algorithms=algorithms,
               info=[("External-Identifier", f"urn:test:{name}")])
    return dest


def keys(server: S3Server, bucket: str, prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            out[item["Key"]] = item["Size"]
    return out


def ledger_rows(ledger: Path | str, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` in the ledger (a SQLite file or a postgresql:// URL), read beside
    preserve, by id."""
    if "://" in str(ledger):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(str(ledger), row_factory=dict_row) as conn:
            return list(conn.execute(f"SELECT * FROM {table} ORDER BY id"))
    import sqlite3

    db = sqlite3.connect(ledger)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        db.close()


@dataclass
class CliResult:
    exit_code: int
    output: str


@pytest.fixture
def pcli(request: pytest.FixtureRequest, output_checked: Any) -> Any:
    """The CLI in-process, with errors turned into messages and exit codes as ``main()`` does;
    every output checked as tests/conftest.py's ``output_checked`` does."""
    from click.testing import CliRunner

    from preserve.cli.main import cli as group
    from preserve.errors import PreserveError

    def invoke(*args: Any) -> CliResult:
        result = CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=True)
        exc = result.exception
        if exc is not None and not isinstance(exc, (PreserveError, SystemExit)):
            raise exc
        out = CliResult(exc.exit_code, result.output + f"preserve: error: {exc}\n") if isinstance(exc, PreserveError) \
            else CliResult(result.exit_code, result.output)
        output_checked(" ".join(str(a) for a in args), out.output)
        return out

    return invoke


class CuttingProxy:
    """A TCP proxy in front of the S3 server that cuts a connection once it has carried more than
    ``limit`` bytes towards the server (or, with ``downstream``, back from it): small requests
    pass, large transfers break mid-way (the first ``max_cuts`` times, or always)."""

    def __init__(self, upstream_port: int, limit: int, *, downstream: bool = False, max_cuts: int | None = None) -> None:
        import threading

        self.limit = limit
        self.downstream = downstream  # cut responses (downloads) instead of requests (uploads)
        self.max_cuts = max_cuts
        self.upstream_port = upstream_port
        self.cuts = 0
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(32)
        self.port = int(self._server.getsockname()[1])
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        import threading

        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, towards_server: bool) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if towards_server != self.downstream and sent + len(data) > self.limit:
                    with self._lock:
                        cut = self.max_cuts is None or self.cuts < self.max_cuts
                        self.cuts += int(cut)
                    if cut:
                        dst.sendall(data[: max(0, self.limit - sent)])
                        break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._stop = True
        self._server.close()


class ChecksumRejectingProxy:
    """An HTTP reverse proxy in front of the S3 server behaving like stores that refuse the CRC32
    checksum boto3 adds by default: any request carrying ``x-amz-checksum-crc32`` gets 400
    InvalidArgument; everything else is passed through."""

    def __init__(self, upstream: str) -> None:
        import http.client
        import http.server
        import threading

        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.rejected = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                names = {k.lower() for k in self.headers}
                if "x-amz-checksum-crc32" in names:
                    proxy.rejected += 1
                    error = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidArgument</Code>"
                             b"<Message>Unsupported header x-amz-checksum-crc32 received "
                             b"for this API call.</Message></Error>")
                    self.send_response(400)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers.items()))
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data) if self.command != "HEAD" else resp.getheader("Content-Length") or 0))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_PROXY = Path(__file__).with_name("s3proxy.py")


@dataclass
class ProxiedS3(S3Server):
    """An S3 server reached through ``s3proxy.py`` (a server keeping no additional checksums, as
    Ceph RGW 16.2, unless started with ``--keep-checksums``). ``upstream`` is the moto server
    itself, for tests that look behind the proxy; ``fault_file`` switches faults on and off."""

    upstream: S3Server | None = None
    fault_file: Path | None = None
    process: Any = None

    def requests(self) -> list[str]:
        """Every request the proxy has passed so far, as ``METHOD /path?query`` (URL-encoded)."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if line.split(" ", 1)[0].isupper()]

    def parts_put(self, bucket: str, key: str, since: int = 0) -> list[int]:
        """The part numbers of the UploadPart requests of ``key`` the proxy has passed (from its
        ``since``-th request on). A part is logged once its whole body is in the proxy, so with one
        worker a part's number here means every earlier part was answered. Watching this, never
        ListParts, while an upload runs: moto works out a part's ETag the first time it is asked,
        unguarded, and a listing racing the part's own upload can leave it with a wrong one."""
        import urllib.parse

        numbers = []
        for line in self.requests()[since:]:
            method, _, target = line.partition(" ")
            path, _, query = target.partition("?")
            fields = urllib.parse.parse_qs(query)
            if method == "PUT" and urllib.parse.unquote(path) == f"/{bucket}/{key}" and "uploadId" in fields:
                numbers.append(int(fields["partNumber"][0]))
        return numbers

    def faults(self, **settings: Any) -> None:
        """Switch the proxy's faults (fail_part, cut_part, respond), or all off with none given."""
        import json

        assert self.fault_file is not None, "this proxy was started without a fault file"
        self.fault_file.write_text(json.dumps(settings))


@contextmanager
def proxy_for(upstream: S3Server, log_dir: Path, *args: str, fault_file: Path | None = None) -> Iterator[ProxiedS3]:
    """``s3proxy.py`` in its own process in front of ``upstream`` (extra ``args`` as its options),
    stopped on exit; ``.process`` lets a test kill it (a server dying mid-transfer)."""
    port = free_port()
    log = log_dir / f"s3proxy-{port}.log"
    extra = ["--fault-file", str(fault_file)] if fault_file is not None else []
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(_PROXY), "--upstream", upstream.endpoint, "--port", str(port),
                                 *extra, *args], stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError(f"s3proxy.py did not start: {log.read_text(errors='replace')}")
        yield ProxiedS3(endpoint=f"http://127.0.0.1:{port}", log=log, upstream=upstream, fault_file=fault_file,
                        process=proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="session")
def s3_nochecksum(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedS3]:
    """The session's moto server behind a proxy that keeps no additional checksums (as Ceph RGW
    16.2): a wrong x-amz-checksum-sha256 is accepted, none is stored or returned; ETags (MD5,
    MD5-of-part-MD5s) and x-amz-meta-* pass."""
    with proxy_for(s3_server, tmp_path_factory.mktemp("s3proxy")) as proxy:
        yield proxy


@pytest.fixture
def s3_faulty(s3_server: S3Server, tmp_path: Path) -> Iterator[ProxiedS3]:
    """Like ``s3_nochecksum``, with faults a test switches on through ``faults(...)``."""
    fault_file = tmp_path / "s3proxy-faults.json"
    fault_file.write_text("{}")
    with proxy_for(s3_server, tmp_path, fault_file=fault_file) as proxy:
        yield proxy

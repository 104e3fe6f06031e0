"""Fixtures for the audit tests: real bags made by preserve's writer, a ledger path, the CLI."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from preserve.bag.writer import PayloadEntry, create_bag

# pytest runs with --import-mode=importlib, which puts no test folder on sys.path: the helper
# module beside this file is made importable by name for the test modules here.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

MakeBag = Callable[..., Path]


@pytest.fixture
def make_bag(tmp_path: Path) -> MakeBag:
    """``make_bag("name", {"objects/a.wav": b"..."}, parent=..., info=[...])`` -> the bag's path."""

    def make(name: str, files: dict[str, bytes] | None = None, *, parent: Path | None = None,
             info: list[tuple[str, str]] | None = None, algorithms: tuple[str, ...] = ("sha256", "sha512")) -> Path:
        files = files if files is not None else {"objects/a.wav": b"RIFF" + os.urandom(20000), "objects/b.txt": b"liner notes\n"}
        src = tmp_path / "sources" / name
        entries = []
        for rel, data in files.items():
            p = src / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            entries.append(PayloadEntry(p, rel))
        dest = (parent or tmp_path / "archive") / name
        create_bag(dest, entries, algorithms=algorithms, info=info or [("External-Identifier", f"id-{name}")])
        return dest

    return make


@pytest.fixture
def ledger_path(ledger_url: Path | str) -> Path | str:
    """The ledger every audit test writes to: tests/conftest.py's ``ledger_url`` (a new SQLite
    file, then a new database on the suite's own PostgreSQL server; the same test, the same
    expectations, on both backends)."""
    return ledger_url


@pytest.fixture
def sqlite_ledger_path(tmp_path: Path) -> Path:
    """A ledger path for what only a SQLite file has (journal files, backups, file damage)."""
    return tmp_path / "ledger" / "audit.sqlite"


# -- the webhook: a real HTTP server on 127.0.0.1 that keeps what it is sent ----------------------

class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Any:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/audit", _Hook.received
    server.shutdown()
    server.server_close()

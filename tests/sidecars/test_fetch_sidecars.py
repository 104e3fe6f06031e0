"""A packaged bag with holes (fetch.txt) is valid under ``validate --fetch`` once every item matches:
the METS checks count a fetched item as they count a file on disk."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from preserve.sidecars.check import check_sidecars


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


def test_holey_package_is_valid_with_fetch(tmp_path: Path, kit: Any, served: tuple[Path, str], run_preserve) -> None:
    col, payload = kit.make_collection(tmp_path / "src", 3)
    bag = kit.package(tmp_path / "bag", col, payload)
    root, base = served
    holes = ["data/objects/release 000/z track #0.flac", "data/submission/metadata.csv"]
    lines = []
    for rel in holes:
        name = Path(rel).name
        size = (bag / rel).stat().st_size
        shutil.move(bag / rel, root / name)
        lines.append(f"{base}{quote(name)} {size} {rel}\n")  # BagIt paths are not URL-encoded
    (bag / "fetch.txt").write_text("".join(lines))

    assert not [f for f in check_sidecars(bag) if f.severity == "error"], "fetched items count as payload"
    r = run_preserve("validate", "--fetch", bag)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_preserve("validate", bag)
    assert r.returncode == 1
    assert sorted(ln.split(": ")[1] for ln in r.stdout.splitlines() if ln.startswith("error:")) == sorted(holes)

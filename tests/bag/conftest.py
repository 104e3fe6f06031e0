from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from preserve.bag.writer import create_bag, payload_from_directory


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under root: (sha256 or 'dir', mode, mtime_ns), to prove nothing changed."""
    out: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_file() and not p.is_symlink():
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode, st.st_mtime_ns)
            else:
                out[rel] = ("dir" if p.is_dir() else "other", st.st_mode, st.st_mtime_ns)
    return out


@pytest.fixture(name="snapshot")
def snapshot_fixture():
    return snapshot


@pytest.fixture
def make_source(tmp_path: Path):
    def make(files: dict[str, bytes], name: str = "src") -> Path:
        src = tmp_path / name
        src.mkdir()
        for rel, data in files.items():
            p = src / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        return src

    return make


@pytest.fixture
def simple_bag(tmp_path: Path) -> Path:
    src = tmp_path / "simple-src"
    (src / "sub").mkdir(parents=True)
    (src / "a.wav").write_bytes(b"RIFF" + os.urandom(5000))
    (src / "sub" / "b.flac").write_bytes(b"fLaC" + os.urandom(3000))
    (src / "sub" / "notes.txt").write_text("notes\n")
    bag = tmp_path / "simple-bag"
    create_bag(bag, payload_from_directory(src), info=[("Source-Organization", "Test Archive")])
    return bag



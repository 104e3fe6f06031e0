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
        pytest.skip("running as root without CAP_SETPCAP: no way to make a folder unreadable")
    return _drop_read_override

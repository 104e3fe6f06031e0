"""A full destination disk: a clear message, exit 5, nothing left at DEST, the source untouched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tiny_fs(tmpfs, tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB file system, so the copy runs out of space for real."""
    with tmpfs(tmp_path / "tiny", "size=2m") as mnt:
        yield mnt


def test_full_disk_fails_cleanly(tmp_path: Path, tiny_fs: Path, run_preserve, snapshot) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"take{i}.wav").write_bytes(os.urandom(1024 * 1024))
    before = snapshot(src)
    r = run_preserve("bag", src, tiny_fs / "bag")
    assert r.returncode == 5, r.stderr
    assert "no space left on the destination file system" in r.stderr
    assert not (tiny_fs / "bag").exists()
    assert list(tiny_fs.iterdir()) == [], "a failed run left something beside DEST"
    assert snapshot(src) == before


@pytest.fixture
def read_only_fs(tmpfs, tmp_path: Path) -> Iterator[Path]:
    """A real read-only file system: even root cannot write there."""
    with tmpfs(tmp_path / "ro", "ro,size=1m") as mnt:
        yield mnt


def test_read_only_destination_fails_cleanly(tmp_path: Path, read_only_fs: Path, run_preserve, snapshot) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"audio")
    before = snapshot(src)
    for dest in (read_only_fs / "bag", read_only_fs / "new" / "folder" / "bag"):
        r = run_preserve("bag", src, dest)
        assert r.returncode == 5, r.stderr
        assert "read-only" in r.stderr and "Traceback" not in r.stderr
        assert str(read_only_fs) in r.stderr
    assert list(read_only_fs.iterdir()) == []
    assert snapshot(src) == before


def test_destination_whose_parent_cannot_be_created(tmp_path: Path, run_preserve) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"audio")
    (tmp_path / "a-file").write_bytes(b"not a folder")
    r = run_preserve("bag", src, tmp_path / "a-file" / "sub" / "bag")
    assert r.returncode == 5, r.stderr
    assert f"{tmp_path / 'a-file' / 'sub'}: " in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "a-file").read_bytes() == b"not a folder"

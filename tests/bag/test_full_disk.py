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


@pytest.fixture
def small_tmpdir(tmpfs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR on a real 64 KiB file system, for this process (tempfile and SQLite) and its children."""
    import tempfile

    with tmpfs(tmp_path / "tmp", "size=64k") as mnt:
        monkeypatch.setenv("TMPDIR", str(mnt))
        monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() looks again
        yield mnt


def test_a_temporary_folder_that_fills_is_exit_5_naming_it(tmp_path: Path, small_tmpdir: Path, run_preserve) -> None:
    """validate keeps its completeness index in a temporary file: TMPDIR filling up part-way is
    local storage failing (exit 5, the folder named), not an internal error."""
    from preserve.bag.writer import create_bag, payload_from_directory

    src = tmp_path / "src"
    src.mkdir()
    for i in range(2000):
        (src / f"a file with a name long enough to fill the index {i:05d}.txt").write_text(f"{i}\n")
    bag = create_bag(tmp_path / "bag", payload_from_directory(src), algorithms=("sha256", "sha512")).path
    r = run_preserve("validate", bag)
    assert r.returncode == 5, r.stdout + r.stderr
    assert (f"preserve: error: {small_tmpdir}: a temporary index there could not be written (database or disk is "
            "full); free space in it or set TMPDIR to a folder with room, and run again") in r.stderr
    assert list(small_tmpdir.iterdir()) == [], "the temporary index was left behind"


_FILL_MAPPING = """
import sys
from preserve.errors import StorageError
from preserve.replication import verified

kind = sys.argv[1]
value = "stored-sha256" if kind == "VerifiedBy" else "ab" * 32
try:
    with getattr(verified, kind)(spill_at=0) as mapping:
        for i in range(200_000):
            mapping[f"data/a folder with a long name/and a file in it {i:07d}.wav"] = value
        len(mapping)  # the last batch written
except StorageError as exc:
    print(exc.exit_code, exc)
"""


@pytest.mark.parametrize("kind", ["VerifiedBy", "ManifestDigests"])
def test_a_spilled_mapping_on_a_full_temporary_folder_is_a_storage_error(kind: str, small_tmpdir: Path) -> None:
    """Replication's per-object mappings move to a temporary database past 10,000 names: a full
    TMPDIR there is the same StorageError (exit 5), whichever step meets it. (A process of its
    own: SQLite reads TMPDIR once per process.)"""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _FILL_MAPPING, kind], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TMPDIR": str(small_tmpdir)})
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout == (f"5 {small_tmpdir}: a temporary index there could not be written (database or disk is full); "
                        "free space in it or set TMPDIR to a folder with room, and run again\n")

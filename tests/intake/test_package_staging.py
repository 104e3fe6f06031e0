"""package, like bag, removes what a killed run's journal lists before it refuses an existing DEST."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preserve.errors import DestinationExists
from preserve.package import package_collection
from preserve.staging import journaled


def _killed_run_left_staging(dest: Path) -> Path:
    """A child takes DEST's journal, creates its staging and dies without cleaning up, as a run
    killed just after its archive landed does."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        with journaled(dest) as journal:
            folder = journal.new_folder(dest.parent, "staging")
            (folder / "partial").write_bytes(b"x" * 1000)
            os.write(write, os.fsencode(str(folder)))
            os._exit(0)
    os.close(write)
    folder = Path(os.fsdecode(os.read(read, 4096)))
    os.close(read)
    os.waitpid(pid, 0)
    return folder


@pytest.mark.parametrize("serialization", [None, "tar"])
def test_package_onto_an_existing_dest_removes_a_killed_runs_staging_then_exits_4(
        collection, tmp_path: Path, serialization: str | None) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dest = out / ("aip.tar" if serialization else "aip")
    dest.write_bytes(b"the archive a killed run completed") if serialization else dest.mkdir()
    staging = _killed_run_left_staging(dest)
    assert staging.is_dir()
    removed: list[Path] = []
    with pytest.raises(DestinationExists):
        package_collection(collection.root, out / "aip", serialization=serialization, on_removed=removed.append)
    assert removed == [staging]
    assert sorted(p.name for p in out.iterdir()) == [dest.name], "only DEST is left"
    if serialization:
        assert dest.read_bytes() == b"the archive a killed run completed"


def test_an_existing_dest_without_a_journal_is_refused_and_nothing_is_removed(collection, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "aip").mkdir(parents=True)
    lookalike = out / ".aip.preserve-staging-1234abcd"
    lookalike.mkdir()
    with pytest.raises(DestinationExists):
        package_collection(collection.root, out / "aip", on_removed=lambda p: pytest.fail(f"removed {p}"))
    assert lookalike.is_dir(), "a folder is never removed for its name alone"


def test_the_command_says_what_it_removed_and_exits_4(collection, tmp_path: Path) -> None:
    from preserve.cli.package_cmd import package

    from .conftest import invoke

    out = tmp_path / "out"
    (out / "aip").mkdir(parents=True)
    staging = _killed_run_left_staging(out / "aip")
    result = invoke(package, collection.root, out / "aip")
    assert result.code == 4
    assert f"removed staging left by an interrupted run: {staging}" in result.stderr
    assert not staging.exists()

"""Repair and restore never write through a link, never delete what they did not create, keep empty
folders, repair tag files too, and fail cleanly on a full disk or when another run holds the bag."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bagit
import pytest
from replication_helpers import MIB, S3Server, make_bag

from preserve.bag.validate import validate_bag
from preserve.stores.filesystem import FilesystemStore

FILES = {"disc 1/01 intro.wav": b"RIFF" + bytes(range(256)) * 12, "sub/take.wav": b"RIFF" + bytes(5000),
         "liner notes.txt": b"liner notes\n"}


def _flip(path: Path, at: int = 10) -> None:
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


def _replicated(pcli, tmp_path: Path, ledger: Path | str, **kw: object) -> tuple[Path, Path]:
    """A bag made by preserve and its copy in a directory replica (recorded in ``ledger``)."""
    bag = make_bag(tmp_path, files=FILES, **kw)  # type: ignore[arg-type]
    disk = tmp_path / "disk2"
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    return bag, disk


def _valid(bag: Path) -> bool:
    return validate_bag(bag).ok


# -- 1. no write through a link -----------------------------------------------------------------


def test_repair_refuses_a_linked_folder_and_leaves_the_file_outside_unchanged(pcli, tmp_path: Path,
                                                                              ledger_url: Path | str) -> None:
    bag, disk = _replicated(pcli, tmp_path, ledger_url)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "take.wav").write_bytes(b"someone else's file")
    (bag / "data/sub/take.wav").unlink()
    (bag / "data/sub").rmdir()
    (bag / "data/sub").symlink_to(outside, target_is_directory=True)
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.exit_code == 1, r.output
    assert "still damaged, not repairable from the replica: error: data/sub: is a symbolic link" in r.output
    assert "no file could be repaired from the replica; still damaged: data/sub, data/sub/take.wav" in r.output
    assert (outside / "take.wav").read_bytes() == b"someone else's file"
    assert sorted(p.name for p in outside.iterdir()) == ["take.wav"]
    assert (bag / "data/sub").is_symlink()
    assert not [p for p in bag.iterdir() if ".preserve-repair-" in p.name]


class _SwappingStore(FilesystemStore):
    """A directory replica that, as the damaged file is downloaded, has the bag's folder swapped
    for a link to a folder outside the bag (what another process could do after validation)."""

    def __init__(self, root: Path, bag: Path, outside: Path) -> None:
        super().__init__(root)
        self.bag, self.outside = bag, outside

    @contextlib.contextmanager
    def get(self, key: str) -> Iterator[Iterator[bytes]]:
        if key.endswith("data/sub/take.wav"):
            shutil.rmtree(self.bag / "data/sub")
            (self.bag / "data/sub").symlink_to(self.outside, target_is_directory=True)
        with super().get(key) as chunks:
            yield chunks


def test_repair_never_writes_through_a_link_that_appears_after_validation(pcli, tmp_path: Path,
                                                                           ledger_url: Path | str) -> None:
    from preserve.replication.repair import repair_bag

    bag, disk = _replicated(pcli, tmp_path, ledger_url)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "take.wav").write_bytes(b"someone else's file")
    _flip(bag / "data/sub/take.wav", at=3)
    result = repair_bag(bag, _SwappingStore(disk, bag, outside))
    assert not result.ok
    [take] = [f for f in result.files if f.path == "data/sub/take.wav"]
    assert take.outcome == "refused"
    assert take.reason == f"{bag}/data/sub is a symbolic link; preserve never follows a link inside a bag or replica; nothing was written"
    assert (outside / "take.wav").read_bytes() == b"someone else's file"
    assert sorted(p.name for p in outside.iterdir()) == ["take.wav"]
    assert not [p for p in bag.iterdir() if ".preserve-repair-" in p.name]


# -- 2. only what the journal lists is removed; one run at a time --------------------------------


def test_a_payload_file_named_like_a_temporary_file_survives_repair(pcli, tmp_path: Path,
                                                                    ledger_url: Path | str) -> None:
    files = {**FILES, "disc 1/.02 song.flac.preserve-repair-0badcafe": b"a real recording\n"}
    bag = make_bag(tmp_path, files=files)
    disk = tmp_path / "disk2"
    assert pcli("replicate", bag, disk, "--ledger", ledger_url, "-q").exit_code == 0
    real = bag / "data/disc 1/.02 song.flac.preserve-repair-0badcafe"
    inode = real.stat().st_ino
    _flip(bag / "data/liner notes.txt", at=2)
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert "repaired: data/liner notes.txt (altered)" in r.output and "1 of 1 damaged file(s) repaired" in r.output
    # the same file, never deleted (and fetched again)
    assert real.stat().st_ino == inode and real.read_bytes() == b"a real recording\n"
    assert _valid(bag)


#: A repair or restore in a process of its own, reading a directory replica that hands out the
#: first chunk of a payload object and then holds the download until the file $GO exists (it
#: touches $HELD then), so a test can kill it, or run a second command, mid-download for sure.
_HELD_RUN = """
import contextlib, os, sys, time
from pathlib import Path
from preserve.stores.filesystem import FilesystemStore

class Held(FilesystemStore):
    @contextlib.contextmanager
    def get(self, key):
        with super().get(key) as chunks:
            yield self.held(chunks) if "/data/" in "/" + key else chunks

    def held(self, chunks):
        for n, chunk in enumerate(chunks):
            yield chunk
            if n == 0:
                Path(os.environ["HELD"]).touch()
                while not Path(os.environ["GO"]).exists():
                    time.sleep(0.01)

what, replica, where = sys.argv[1:4]
if what == "repair":
    from preserve.replication.repair import repair_bag
    print("ok" if repair_bag(where, Held(replica)).ok else "not ok")
else:
    from preserve.replication.restore import restore_bag
    restore_bag(Held(replica), "bag-one", where)
    print("restored")
"""


def _held_run(tmp_path: Path, what: str, replica: Path, where: Path) -> subprocess.Popen[str]:
    """Start the held command and return once it is mid-download."""
    held, go = tmp_path / "held", tmp_path / "go"
    held.unlink(missing_ok=True)
    env = {**os.environ, "HELD": str(held), "GO": str(go)}
    proc = subprocess.Popen([sys.executable, "-c", _HELD_RUN, what, str(replica), str(where)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not held.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the {what} never reached its download: {proc.returncode} {out} {err}")
        time.sleep(0.01)
    return proc


def _damaged(pcli, tmp_path: Path, ledger: Path | str) -> tuple[Path, Path]:
    bag, disk = _replicated(pcli, tmp_path, ledger)
    _flip(bag / "data/disc 1/01 intro.wav", at=3)
    (bag / "data/liner notes.txt").unlink()
    return bag, disk


def test_a_killed_repair_leaves_staging_that_the_next_run_removes_and_reports(pcli, tmp_path: Path,
                                                                              ledger_url: Path | str) -> None:
    bag, disk = _damaged(pcli, tmp_path, ledger_url)
    proc = _held_run(tmp_path, "repair", disk, bag)
    [staging] = [p for p in bag.iterdir() if ".preserve-repair-" in p.name]
    assert list(staging.iterdir())  # the copy being downloaded
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert staging.is_dir() and (tmp_path / ".bag-one.preserve-lock").is_file()
    # the killed run's staging is a hidden folder at the bag's top, not an unlisted payload file
    r = pcli("validate", bag)
    assert ".preserve-repair-" not in r.output and "unlisted" not in r.output
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert f"removed what an interrupted earlier run left: {staging}" in r.output
    assert "2 of 2 damaged file(s) repaired" in r.output
    assert not staging.exists() and not (tmp_path / ".bag-one.preserve-lock").exists()
    assert not [p for p in bag.iterdir() if ".preserve-repair-" in p.name]
    assert _valid(bag)


def test_two_repairs_of_one_bag_one_waits_or_exits_4(pcli, run_preserve, tmp_path: Path,
                                                     ledger_url: Path | str) -> None:
    bag, disk = _damaged(pcli, tmp_path, ledger_url)
    first = _held_run(tmp_path, "repair", disk, bag)
    try:
        second = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url)
        assert second.returncode == 4, second.stdout + second.stderr
        assert f"preserve: error: {bag}: another preserve run is repairing or writing this bag now" in second.stderr
        assert "unlisted" not in second.stdout + second.stderr
        third = _start("repair", bag, "--from", disk, "--ledger", ledger_url, "--wait", "120")
        time.sleep(1)
        assert third.poll() is None  # waiting for the lock
    finally:
        (tmp_path / "go").touch()
    out, err = first.communicate(timeout=120)
    assert (first.returncode, out) == (0, "ok\n"), err
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, out + err
    assert f"{bag}: valid; nothing to repair" in out
    assert _valid(bag)


def _start(*args: object) -> subprocess.Popen[str]:
    """The installed console script in a process of its own, as a user starts it."""
    preserve = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert preserve
    return subprocess.Popen([preserve, *[str(a) for a in args]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


# -- 3. empty folders -----------------------------------------------------------------------------


def _bag_with_empty_folder(tmp_path: Path) -> Path:
    from preserve.bag.writer import create_bag, payload_from_directory

    src = tmp_path / "src"
    (src / "disc 1").mkdir(parents=True)
    (src / "disc 1" / "01.wav").write_bytes(b"RIFF" + bytes(3000))
    (src / "scans" / "not yet").mkdir(parents=True)
    bag = tmp_path / "bag-one"
    create_bag(bag, payload_from_directory(src))
    assert "data/scans/not yet" in (bag / "metadata/empty-directories.txt").read_text()
    return bag


@pytest.mark.parametrize("layout", [[], ["--serialize", "tar"]], ids=["files", "tar"])
@pytest.mark.parametrize("kind", ["s3", "filesystem"])
def test_restore_and_repair_keep_empty_folders(pcli, s3_server: S3Server, tmp_path: Path, kind: str,
                                               layout: list[str], ledger_url: Path | str) -> None:
    bag = _bag_with_empty_folder(tmp_path)
    url, opts = (f"s3://{s3_server.bucket()}/p", s3_server.options()) if kind == "s3" else (str(tmp_path / "disk2"), [])
    r = pcli("replicate", bag, url, *opts, *layout, "--ledger", ledger_url, "-q")
    assert r.exit_code == 0, r.output
    dest = tmp_path / "restored"
    r = pcli("restore", f"{url}/bag-one", dest, *opts, "-q")
    assert r.exit_code == 0, r.output
    assert (dest / "data/scans/not yet").is_dir() and not list((dest / "data/scans/not yet").iterdir())
    assert _valid(dest)
    (bag / "data/scans/not yet").rmdir()
    r = pcli("repair", bag, "--from", url, *opts, "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert "created again: data/scans/not yet/" in r.output
    assert (bag / "data/scans/not yet").is_dir() and _valid(bag)


# -- 4. tag files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [[], ["--serialize", "tar"]], ids=["files", "tar"])
@pytest.mark.parametrize("kind", ["s3", "filesystem"])
def test_repair_repairs_tag_files_with_the_payload(pcli, s3_server: S3Server, tmp_path: Path, kind: str,
                                                   layout: list[str], ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files=FILES)
    url, opts = (f"s3://{s3_server.bucket()}/p", s3_server.options()) if kind == "s3" else (str(tmp_path / "disk2"), [])
    assert pcli("replicate", bag, url, *opts, *layout, "--ledger", ledger_url, "-q").exit_code == 0
    info = (bag / "bag-info.txt").read_bytes()
    manifest = (bag / "manifest-sha512.txt").read_bytes()
    _flip(bag / "bag-info.txt", at=3)
    _flip(bag / "manifest-sha512.txt", at=3)
    _flip(bag / "data/liner notes.txt", at=2)
    (bag / "tagmanifest-sha512.txt").write_text("not a manifest line\n")
    r = pcli("repair", bag, "--from", url, *opts, "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert "repaired: tagmanifest-sha512.txt (altered)" in r.output
    assert "repaired: bag-info.txt (altered)" in r.output and "repaired: manifest-sha512.txt (altered)" in r.output
    assert "repaired: data/liner notes.txt (altered)" in r.output
    assert (bag / "bag-info.txt").read_bytes() == info and (bag / "manifest-sha512.txt").read_bytes() == manifest
    assert _valid(bag)
    bagit.Bag(str(bag)).validate()


def test_repair_exits_1_listing_a_tag_file_the_replica_cannot_fix(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag, disk = _replicated(pcli, tmp_path, ledger_url)
    _flip(bag / "bag-info.txt", at=3)
    _flip(disk / "bag-one/bag-info.txt", at=5)  # the replica's copy is damaged too
    _flip(bag / "data/liner notes.txt", at=2)
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.exit_code == 1, r.output
    assert "refused: bag-info.txt (altered): the replica's copy does not match tagmanifest-" in r.output
    assert "repaired: data/liner notes.txt (altered)" in r.output
    assert "1 of 2 damaged file(s) repaired; still damaged: bag-info.txt" in r.output
    assert not _valid(bag)


def test_repair_replaces_a_damaged_tag_manifest_only_with_a_copy_that_agrees(pcli, tmp_path: Path,
                                                                             ledger_url: Path | str) -> None:
    bag, disk = _replicated(pcli, tmp_path, ledger_url)
    good = (bag / "tagmanifest-sha256.txt").read_bytes()
    lines = good.decode().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.rstrip().endswith(" bag-info.txt"))
    lines[at] = ("0" * 64) + lines[at][64:]
    (bag / "tagmanifest-sha256.txt").write_text("".join(lines))
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert "repaired: tagmanifest-sha256.txt (altered)" in r.output
    assert (bag / "tagmanifest-sha256.txt").read_bytes() == good and _valid(bag)
    # the replica's copy damaged differently: the replica record's sha256 of it tells
    (bag / "tagmanifest-sha256.txt").write_text("".join(lines))
    other = list(lines)
    other[at] = ("1" * 64) + lines[at][64:]
    (disk / "bag-one/tagmanifest-sha256.txt").write_text("".join(other))
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.exit_code == 1, r.output
    assert "refused: tagmanifest-sha256.txt (altered): the replica's copy does not match the replica record" in r.output
    assert (bag / "tagmanifest-sha256.txt").read_text() == "".join(lines)
    # a record that lists no tag files (written by an older version): the copy agrees with no copy
    # of bag-info.txt, so it is not used either
    record = disk / "bag-one.preserve-replica.json"
    fields = json.loads(record.read_text())
    fields.pop("tag_files", None)
    record.write_text(json.dumps(fields))
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.exit_code == 1, r.output
    assert "refused: tagmanifest-sha256.txt (altered): the replica's copy lists bag-info.txt with sha256 1111" in r.output
    assert "still damaged: " in r.output and "tagmanifest-sha256.txt" in r.output.rsplit("still damaged: ", 1)[1]
    assert (bag / "tagmanifest-sha256.txt").read_text() == "".join(lines)


# -- 5. full disk ---------------------------------------------------------------------------------




@pytest.fixture
def tiny_fs(tmpfs, tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "tiny", "size=2m") as mnt:
        yield mnt


def test_restore_onto_a_full_disk_exits_5_and_leaves_nothing(pcli, run_preserve, tmp_path: Path, tiny_fs: Path,
                                                             ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files=FILES, big=3 * MIB)
    disk = tmp_path / "disk2"
    assert pcli("replicate", bag, disk, "--ledger", ledger_url, "-q").exit_code == 0
    r = run_preserve("restore", disk / "bag-one", tiny_fs / "restored", "-q")
    assert r.returncode == 5, r.stdout + r.stderr
    assert f"preserve: error: {tiny_fs}: no space left on the file system for the restored copy" in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tiny_fs.iterdir()) == []


def test_repair_without_room_for_its_copy_exits_5_and_leaves_the_bag_as_it_was(pcli, run_preserve, tmp_path: Path,
                                                                                tiny_fs: Path,
                                                                                ledger_url: Path | str) -> None:
    made = make_bag(tmp_path, files={"take.wav": os.urandom(1200 * 1024)}, algorithms=("sha256",))
    disk = tmp_path / "disk2"
    assert pcli("replicate", made, disk, "--ledger", ledger_url, "-q").exit_code == 0
    bag = Path(shutil.copytree(made, tiny_fs / "bag-one"))
    _flip(bag / "data/take.wav", at=5)
    damaged = (bag / "data/take.wav").read_bytes()
    r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.returncode == 5, r.stdout + r.stderr
    assert f"preserve: error: {bag}: no space left on the file system for the temporary copy of data/take.wav" in r.stderr
    assert "Traceback" not in r.stderr
    assert (bag / "data/take.wav").read_bytes() == damaged
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["bag-one"]
    assert not [p for p in bag.iterdir() if p.name.startswith(".")]


# -- 6. a killed restore ---------------------------------------------------------------------------


def test_a_killed_restore_leaves_staging_that_the_next_restore_removes(pcli, tmp_path: Path,
                                                                       ledger_url: Path | str) -> None:
    _bag, disk = _replicated(pcli, tmp_path, ledger_url)
    dest = tmp_path / "restored"
    proc = _held_run(tmp_path, "restore", disk, dest)
    [staging] = list(tmp_path.glob(".restored.preserve-staging-*"))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert staging.is_dir() and not dest.exists()
    r = pcli("restore", disk / "bag-one", dest)  # -q leaves the line out
    assert r.exit_code == 0, r.output
    assert f"removed what an interrupted earlier restore left: {staging}" in r.output
    assert not staging.exists() and not (tmp_path / ".restored.preserve-lock").exists()
    assert _valid(dest)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

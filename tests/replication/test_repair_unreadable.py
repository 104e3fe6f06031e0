"""Tag files that cannot be read are input problems for repair and replicate: a message naming
the file and an exit code, never a traceback (exit 70)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from replication_helpers import make_bag

from preserve.bag.writer import create_bag, payload_from_directory

EMPTY_LIST = "metadata/empty-directories.txt"


def bag_with_an_empty_folder(root: Path) -> Path:
    src = root / "src"
    (src / "scans" / "none yet").mkdir(parents=True)
    (src / "take.wav").write_bytes(b"RIFF" + bytes(2000))
    bag = root / "bag"
    create_bag(bag, payload_from_directory(src), algorithms=("sha256",))
    assert (bag / EMPTY_LIST).is_file()
    return bag


def replicated(pcli: Any, tmp_path: Path, bag: Path, ledger: Path | str) -> Path:
    disk = tmp_path / "disk2"
    disk.mkdir()
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    return disk


def folder_in_place(bag: Path, rel: str) -> None:
    """A folder where the tag file was: no one, root included, can read it as a file."""
    (bag / rel).unlink()
    (bag / rel).mkdir()


def test_repair_with_a_folder_for_the_empty_folder_list_reports_it(pcli: Any, tmp_path: Path, run_preserve: Any,
                                                                   ledger_url: Path | str) -> None:
    bag = bag_with_an_empty_folder(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    folder_in_place(bag, EMPTY_LIST)
    r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert "Traceback" not in r.stderr and r.returncode == 1, r.stdout + r.stderr
    assert f"still damaged, not repairable from the replica: error: {EMPTY_LIST}: is a folder, not a file" in r.stdout
    assert (bag / EMPTY_LIST).is_dir()  # repair never deletes what it did not create


@pytest.mark.parametrize("rel", ["bag-info.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt", "metadata/xxh3-128.txt"])
def test_repair_with_a_folder_for_a_tag_file_reports_it(pcli: Any, tmp_path: Path, run_preserve: Any, rel: str,
                                                        ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    folder_in_place(bag, rel)
    r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert "Traceback" not in r.stderr and r.returncode == 1, r.stdout + r.stderr
    assert f"error: {rel}: is a folder, not a file" in r.stdout


@pytest.mark.parametrize("rel", ["bag-info.txt", "tagmanifest-sha512.txt"])
def test_repair_with_an_unreadable_tag_file_exits_3_naming_it(pcli: Any, tmp_path: Path, run_preserve: Any,
                                                               permissions_apply: Any, rel: str,
                                                               ledger_url: Path | str) -> None:
    """Files repair must read to know what to repair: nothing is changed."""
    bag = make_bag(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    os.chmod(bag / rel, 0)
    try:
        r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url,
                         preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / rel, 0o644)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{bag / rel}: cannot be read (Permission denied)" in r.stderr and "Traceback" not in r.stderr


def test_repair_restores_an_unreadable_manifest_from_the_replica(pcli: Any, tmp_path: Path, run_preserve: Any,
                                                                  permissions_apply: Any,
                                                                  ledger_url: Path | str) -> None:
    """A payload manifest the tag manifests list is a tag file like any other: its replica copy,
    checked against them, replaces the one that cannot be read."""
    bag = make_bag(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    rel = "manifest-sha256.txt"
    before = (bag / rel).read_bytes()
    os.chmod(bag / rel, 0)
    r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url, preexec_fn=permissions_apply)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"repaired: {rel} (altered)" in r.stdout
    assert (bag / rel).read_bytes() == before


def test_replicate_with_an_unreadable_tag_file_exits_3_naming_it(tmp_path: Path, run_preserve: Any,
                                                                 permissions_apply: Any,
                                                                 ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    rel = "metadata/xxh3-128.txt"
    disk = tmp_path / "disk2"
    disk.mkdir()
    os.chmod(bag / rel, 0)
    try:
        r = run_preserve("replicate", bag, disk, "--ledger", ledger_url, "-q", preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / rel, 0o644)
    assert "Traceback" not in r.stderr
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{bag / rel}: cannot be read (Permission denied)" in r.stderr


def test_replicate_with_a_folder_for_a_tag_file_names_it(tmp_path: Path, run_preserve: Any,
                                                         ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    folder_in_place(bag, "metadata/xxh3-128.txt")
    disk = tmp_path / "disk2"
    disk.mkdir()
    r = run_preserve("replicate", bag, disk, "--ledger", ledger_url, "-q")
    assert "Traceback" not in r.stderr and r.returncode == 1, r.stdout + r.stderr
    assert "metadata/xxh3-128.txt: is a folder, not a file" in r.stderr
    assert not any(disk.rglob("*.txt")), "nothing is replicated from a bag that is not complete"

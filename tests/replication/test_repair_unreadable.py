"""Tag files, payload files and folders that cannot be read are input problems for repair and
replicate: a message naming the file and an exit code, never a traceback (exit 70)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from replication_helpers import ledger_rows, make_bag

from preserve.bag.writer import StagedBag, create_bag, payload_from_directory

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


def bag_with_mets(root: Path) -> Path:
    """A bag from the real writer with a METS sidecar in metadata/, as `package` makes, listed in
    both tag manifests."""
    src = root / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"RIFF" + os.urandom(2000))

    def sidecars(staged: StagedBag) -> None:
        (staged.path / "metadata").mkdir(exist_ok=True)
        (staged.path / "metadata/mets.xml").write_bytes(b'<mets xmlns="http://www.loc.gov/METS/"/>\n')

    return create_bag(root / "bag-one", payload_from_directory(src), algorithms=("sha256", "sha512"),
                      extra_tags=sidecars).path


def snapshot(bag: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path in the bag (hidden staging folders included) with its mode and, for files, bytes."""
    return {p.relative_to(bag).as_posix(): (p.lstat().st_mode, p.read_bytes() if p.is_file() else None)
            for p in sorted(bag.rglob("*"))}


READ_ACCESS = ("restore read access for the user running preserve and run repair again (nothing was changed); "
               "if the file is really damaged, remove it and repair restores it from the replica as a missing file")


@pytest.mark.parametrize("rel", ["manifest-sha256.txt", "metadata/mets.xml"])
def test_repair_with_an_unreadable_listed_tag_file_changes_nothing(pcli: Any, tmp_path: Path, run_preserve: Any,
                                                                   permissions_apply: Any, rel: str,
                                                                   ledger_url: Path | str) -> None:
    """A tag file the tag manifests list that cannot be read is a permission or I/O problem, not
    damage: repair stops before changing anything, records no repair and says what to do."""
    bag = bag_with_mets(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    before = snapshot(bag)
    os.chmod(bag / rel, 0)
    try:
        r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url, preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / rel, 0o644)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "repaired" not in r.stdout
    assert f"{bag / rel}: cannot be read (Permission denied); {READ_ACCESS}" in " ".join(r.stderr.split())
    assert snapshot(bag) == before  # no staging folder left in it either
    assert ledger_rows(ledger_url, "repairs") == []


def test_repair_with_an_unreadable_metadata_folder_names_the_folder(pcli: Any, tmp_path: Path, run_preserve: Any,
                                                                     permissions_apply: Any,
                                                                     ledger_url: Path | str) -> None:
    bag = bag_with_mets(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    before = snapshot(bag)
    os.chmod(bag / "metadata", 0)
    try:
        r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url, preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / "metadata", 0o755)
    assert r.returncode == 3, r.stdout + r.stderr
    assert (f"{bag / 'metadata'}: this folder cannot be opened (Permission denied), so metadata/mets.xml cannot be "
            "read; restore read access to it for the user running preserve and run repair again (nothing was "
            "changed)") in " ".join(r.stderr.split())
    assert snapshot(bag) == before
    assert ledger_rows(ledger_url, "repairs") == []


def test_repair_judging_damaged_tag_manifests_stops_at_an_unreadable_file_first(
        pcli: Any, tmp_path: Path, run_preserve: Any, permissions_apply: Any, ledger_url: Path | str) -> None:
    """The METS file is listed only in the replica's copies of the tag manifests (the bag's
    tagmanifest-sha256.txt is garbled and missing from the replica; its tagmanifest-sha512.txt
    lost the line): checking those copies meets the unreadable file before any is used or any
    outcome recorded."""
    bag = bag_with_mets(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    (disk / "bag-one/tagmanifest-sha256.txt").unlink()
    (bag / "tagmanifest-sha256.txt").write_text("not a manifest line\n")
    sha512 = bag / "tagmanifest-sha512.txt"
    sha512.write_text("".join(line for line in sha512.read_text().splitlines(keepends=True) if "mets.xml" not in line))
    before = snapshot(bag)
    os.chmod(bag / "metadata/mets.xml", 0)
    try:
        r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url, preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / "metadata/mets.xml", 0o644)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{bag / 'metadata/mets.xml'}: cannot be read (Permission denied); {READ_ACCESS}" in " ".join(r.stderr.split())
    assert snapshot(bag) == before
    assert ledger_rows(ledger_url, "repairs") == []


@pytest.mark.parametrize("rel", ["manifest-sha256.txt", "metadata/mets.xml"])
def test_repair_restores_a_removed_tag_file_as_missing(pcli: Any, tmp_path: Path, run_preserve: Any, rel: str,
                                                       ledger_url: Path | str) -> None:
    """What the message about an unreadable tag file promises: once removed, repair restores it."""
    bag = bag_with_mets(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    before = (bag / rel).read_bytes()
    (bag / rel).unlink()
    r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"repaired: {rel} (missing) from {disk / 'bag-one'}" in r.stdout
    assert (bag / rel).read_bytes() == before
    assert [(x["file"], x["outcome"]) for x in ledger_rows(ledger_url, "repairs")] == [(rel, "repaired")]


@pytest.mark.parametrize("tag_damage", [False, True], ids=["alone", "with-a-damaged-tag-file"])
def test_repair_with_an_unreadable_payload_file_changes_nothing(pcli: Any, tmp_path: Path, run_preserve: Any,
                                                                permissions_apply: Any, tag_damage: bool,
                                                                ledger_url: Path | str) -> None:
    """A payload file that is there but cannot be read is not damage repair can judge (it was
    'still damaged, not repairable', exit 1): repair stops before changing anything, even a
    damaged tag file it would otherwise have repaired first, records nothing and says what to do."""
    bag = bag_with_mets(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    if tag_damage:
        (bag / "metadata/mets.xml").write_bytes(b'<mets xmlns="http://www.loc.gov/METS/" OBJID="x"/>\n')
    rel = "data/take.wav"
    before = snapshot(bag)
    os.chmod(bag / rel, 0)
    try:
        r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url, preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / rel, 0o644)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "repaired" not in r.stdout and "still damaged" not in r.stdout
    assert f"{bag / rel}: cannot be read (Permission denied); {READ_ACCESS}" in " ".join(r.stderr.split())
    assert snapshot(bag) == before  # no staging folder left in it either
    assert ledger_rows(ledger_url, "repairs") == []


def test_repair_stops_at_an_unreadable_file_only_the_replicas_manifests_list(
        pcli: Any, tmp_path: Path, run_preserve: Any, permissions_apply: Any, ledger_url: Path | str) -> None:
    """Both payload manifests lost the file's line, so the validation does not read it; the
    replica's manifests, which repair would put back first, list it. It is found unreadable
    before any manifest is replaced."""
    bag = make_bag(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    rel = "data/disc 1/02 song.flac"
    for manifest in ("manifest-sha256.txt", "manifest-sha512.txt"):
        lines = (bag / manifest).read_text().splitlines(keepends=True)
        (bag / manifest).write_text("".join(line for line in lines if "02 song.flac" not in line))
    before = snapshot(bag)
    os.chmod(bag / rel, 0)
    try:
        r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url, preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / rel, 0o644)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{bag / rel}: cannot be read (Permission denied); {READ_ACCESS}" in " ".join(r.stderr.split())
    assert snapshot(bag) == before
    assert ledger_rows(ledger_url, "repairs") == []


def test_repair_with_a_payload_folder_that_cannot_be_listed_changes_nothing(pcli: Any, tmp_path: Path,
                                                                            run_preserve: Any, permissions_apply: Any,
                                                                            ledger_url: Path | str) -> None:
    """Its files were taken for missing, fetched, and recorded in the ledger as 'unavailable'."""
    bag = make_bag(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    folder = bag / "data/disc 1"
    before = snapshot(bag)
    os.chmod(folder, 0)
    try:
        r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url, preexec_fn=permissions_apply)
    finally:
        os.chmod(folder, 0o755)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "unavailable" not in r.stdout
    assert (f"{folder}: the folder cannot be listed (Permission denied), so the files in it cannot be read; restore "
            "read access to it for the user running preserve and run repair again (nothing was changed)"
            ) in " ".join(r.stderr.split())
    assert snapshot(bag) == before
    assert ledger_rows(ledger_url, "repairs") == []


def test_repair_restores_a_removed_payload_file_as_missing(pcli: Any, tmp_path: Path, run_preserve: Any,
                                                           ledger_url: Path | str) -> None:
    """What the message about an unreadable payload file promises: once removed, repair restores it."""
    bag = make_bag(tmp_path)
    disk = replicated(pcli, tmp_path, bag, ledger_url)
    rel = "data/disc 1/01 intro.wav"
    before = (bag / rel).read_bytes()
    (bag / rel).unlink()
    r = run_preserve("repair", bag, "--from", disk, "--ledger", ledger_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"repaired: {rel} (missing) from {disk / 'bag-one'}" in r.stdout
    assert (bag / rel).read_bytes() == before
    assert [(x["file"], x["outcome"]) for x in ledger_rows(ledger_url, "repairs")] == [(rel, "repaired")]
    assert run_preserve("validate", bag).returncode == 0


def _replicate_unreadable(bag: Path, rel: str, mode: int, tmp_path: Path, run_preserve: Any, permissions_apply: Any,
                          ledger: Path | str) -> tuple[Any, Path]:
    """``replicate`` BAG to a new folder with ``rel`` made unreadable (its ``mode`` given back after)."""
    disk = tmp_path / "disk2"
    disk.mkdir()
    os.chmod(bag / rel, 0)
    try:
        r = run_preserve("replicate", bag, disk, "--ledger", ledger, "-q", preexec_fn=permissions_apply)
    finally:
        os.chmod(bag / rel, mode)
    return r, disk


def test_replicate_with_an_unreadable_tag_file_exits_3_naming_it(tmp_path: Path, run_preserve: Any,
                                                                 permissions_apply: Any,
                                                                 ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    rel = "metadata/xxh3-128.txt"
    r, _disk = _replicate_unreadable(bag, rel, 0o644, tmp_path, run_preserve, permissions_apply, ledger_url)
    assert "Traceback" not in r.stderr
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{bag / rel}: cannot be read (Permission denied)" in r.stderr


@pytest.mark.parametrize("folder", ["metadata", "data/disc 1"])
def test_replicate_with_a_folder_that_cannot_be_opened_exits_3_naming_it(tmp_path: Path, run_preserve: Any,
                                                                         permissions_apply: Any, folder: str,
                                                                         ledger_url: Path | str) -> None:
    """A permission of this machine, not damage to the bag: exit 3 as for an unreadable tag file
    (it was exit 1, 'Permission denied; nothing was replicated')."""
    bag = make_bag(tmp_path)
    r, disk = _replicate_unreadable(bag, folder, 0o755, tmp_path, run_preserve, permissions_apply, ledger_url)
    assert "Traceback" not in r.stderr
    assert r.returncode == 3, r.stdout + r.stderr
    assert (f"{bag / folder}: this folder cannot be opened (Permission denied); make it readable by the user running "
            "preserve and run replicate again (nothing was replicated)") in " ".join(r.stderr.split())
    assert not any(disk.iterdir())


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

"""Nothing that reads a bag opens a file through a symbolic link, at any level below the bag.

A link is reported, naming it; what lies behind it is never read. The swaps happen after the
validator has listed the bag (in its ``on_total`` callback), the moment a check-then-open reader
would follow them; a digest-matching copy outside the bag proves a followed link would pass.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from preserve.bag.reader import empty_directories
from preserve.bag.validate import validate_bag
from preserve.bag.writer import create_bag, payload_from_directory

SECRET = "SECRET-OUTSIDE-THE-BAG-7d1e"
#: A METS file outside the bag; read through a link, its words would reach the output.
OUTSIDE_METS = f"""<?xml version="1.0" encoding="UTF-8"?>
<mets:mets xmlns:mets="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink" LABEL="{SECRET}" OBJID="{SECRET}">
  <mets:fileSec><mets:fileGrp><mets:file ID="{SECRET}"><mets:FLocat xlink:href="../{SECRET}"/></mets:file></mets:fileGrp></mets:fileSec>
</mets:mets>
"""


def _swap_for_link(bag: Path, rel: str, outside: Path) -> None:
    """Move ``bag/rel`` (a folder) to ``outside`` and leave a link to it in its place."""
    shutil.move(bag / rel, outside)
    (bag / rel).symlink_to(outside, target_is_directory=True)


def _codes(report) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.path) for f in report.errors)


def test_linked_payload_folder_is_reported_naming_the_link(simple_bag: Path, tmp_path: Path, run_preserve) -> None:
    _swap_for_link(simple_bag, "data/sub", tmp_path / "outside")  # same bytes outside: a followed link would match
    for mode in ([], ["--fast"]):
        r = run_preserve("validate", *mode, simple_bag)
        assert r.returncode == 1, r.stderr
        for rel in ("data/sub/b.flac", "data/sub/notes.txt"):
            assert f"{rel}: is reached through data/sub, a symbolic link, which was not followed" in r.stdout
        assert "data/sub: is a symbolic link; bags hold files, so it was not followed" in r.stdout


@pytest.mark.parametrize("processes", [0, 1], ids=["threads", "worker-process"])
def test_folder_swapped_for_a_link_after_listing_is_not_read(simple_bag: Path, tmp_path: Path, processes: int) -> None:
    def swap(_bytes: int, _files: int) -> None:
        _swap_for_link(simple_bag, "data/sub", tmp_path / "outside")

    report = validate_bag(simple_bag, on_total=swap, processes=processes)
    assert not report.ok
    assert _codes(report) == [("not-regular", "data/sub/b.flac"), ("not-regular", "data/sub/notes.txt")]
    assert all("reached through data/sub, a symbolic link" in f.message for f in report.errors)


@pytest.mark.parametrize("processes", [0, 1], ids=["threads", "worker-process"])
def test_a_pipe_behind_a_linked_folder_is_not_opened(simple_bag: Path, tmp_path: Path, processes: int) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("b.flac", "notes.txt"):
        os.mkfifo(outside / name)  # opened without O_NONBLOCK, a pipe with no writer blocks for ever

    def swap(_bytes: int, _files: int) -> None:
        shutil.rmtree(simple_bag / "data" / "sub")
        (simple_bag / "data" / "sub").symlink_to(outside, target_is_directory=True)

    started = time.monotonic()
    report = validate_bag(simple_bag, on_total=swap, processes=processes)
    assert time.monotonic() - started < 30
    # reported as behind the link, not as a pipe or as unreadable: nothing below the link was opened
    assert _codes(report) == [("not-regular", "data/sub/b.flac"), ("not-regular", "data/sub/notes.txt")]
    assert not [f for f in report.errors if "pipe" in f.message or f.code == "unreadable"]


def test_tag_folder_swapped_for_a_link_is_not_read(simple_bag: Path, tmp_path: Path) -> None:
    def swap(_bytes: int, _files: int) -> None:
        _swap_for_link(simple_bag, "metadata", tmp_path / "outside-metadata")

    report = validate_bag(simple_bag, on_total=swap)
    assert _codes(report) == [("not-regular", "metadata/xxh3-128.txt")]
    assert "reached through metadata, a symbolic link" in report.errors[0].message


def test_show_refuses_a_linked_mets(simple_bag: Path, tmp_path: Path, run_preserve) -> None:
    (tmp_path / "mets.xml").write_text(OUTSIDE_METS)
    (simple_bag / "metadata" / "mets.xml").symlink_to(tmp_path / "mets.xml")
    r = run_preserve("show", simple_bag)
    assert r.returncode == 1, r.stdout + r.stderr
    assert SECRET not in r.stdout + r.stderr
    link = simple_bag / "metadata" / "mets.xml"
    assert r.stderr == (f"preserve: error: {link}: unsafe path (is a symbolic link; preserve never follows a link "
                        "inside a bag or replica)\n")


def test_show_refuses_a_linked_metadata_folder(simple_bag: Path, tmp_path: Path, run_preserve) -> None:
    (simple_bag / "metadata" / "mets.xml").write_text(OUTSIDE_METS)
    _swap_for_link(simple_bag, "metadata", tmp_path / "outside-metadata")
    r = run_preserve("show", simple_bag)
    assert r.returncode == 1
    assert SECRET not in r.stdout + r.stderr
    assert f"{simple_bag / 'metadata'}: unsafe path (is a symbolic link" in r.stderr


def test_validate_does_not_read_a_linked_mets(simple_bag: Path, tmp_path: Path, run_preserve) -> None:
    (tmp_path / "mets.xml").write_text(OUTSIDE_METS)
    (simple_bag / "metadata" / "mets.xml").symlink_to(tmp_path / "mets.xml")
    for mode in ([], ["--fast"], ["--json"]):
        r = run_preserve("validate", *mode, simple_bag)
        assert r.returncode == 1, r.stderr
        assert SECRET not in r.stdout + r.stderr
        assert "metadata/mets.xml" in r.stdout and "symbolic link" in r.stdout
    assert "metadata/mets.xml is a symbolic link; preserve never follows a link inside a bag or replica; it was not read" in r.stdout


# -- metadata/empty-directories.txt ----------------------------------------------------------------

@pytest.fixture
def bag_with_empty_folders(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "scans" / "none yet").mkdir(parents=True)
    (src / "tapes").mkdir()
    (src / "a.wav").write_bytes(b"RIFF" + os.urandom(100))
    bag = tmp_path / "bag"
    create_bag(bag, payload_from_directory(src))
    return bag


def test_empty_directories_lists_what_the_writer_wrote(bag_with_empty_folders: Path, tmp_path: Path) -> None:
    assert empty_directories(bag_with_empty_folders) == ["data/scans/none yet", "data/tapes"]
    assert validate_bag(bag_with_empty_folders).ok
    assert empty_directories(tmp_path / "src") == []  # no such file: nothing listed


def test_empty_directories_refuses_a_link(bag_with_empty_folders: Path, tmp_path: Path) -> None:
    listing = bag_with_empty_folders / "metadata" / "empty-directories.txt"
    shutil.move(listing, tmp_path / "listing.txt")
    listing.symlink_to(tmp_path / "listing.txt")
    with pytest.raises(OSError, match="symbolic link") as caught:
        empty_directories(bag_with_empty_folders)
    assert caught.value.filename == str(listing)


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_a_missing_empty_folder_is_reported(bag_with_empty_folders: Path, run_preserve, fast: bool) -> None:
    (bag_with_empty_folders / "data" / "tapes").rmdir()
    (bag_with_empty_folders / "data" / "scans" / "none yet").rmdir()
    r = run_preserve("validate", *(["--fast"] if fast else []), bag_with_empty_folders)
    assert r.returncode == 1, r.stderr
    for rel in ("data/tapes", "data/scans/none yet"):
        assert (f"{rel}: listed in metadata/empty-directories.txt as an empty folder, but there is no such "
                "folder in the bag") in r.stdout
    report = validate_bag(bag_with_empty_folders, fast=fast)
    assert _codes(report) == [("missing-directory", "data/scans/none yet"), ("missing-directory", "data/tapes")]


def test_an_empty_folder_replaced_by_a_file_or_a_link(bag_with_empty_folders: Path, tmp_path: Path) -> None:
    bag = bag_with_empty_folders
    (bag / "data" / "tapes").rmdir()
    (bag / "data" / "tapes").symlink_to(tmp_path, target_is_directory=True)
    (bag / "data" / "scans" / "none yet").rmdir()
    (bag / "data" / "scans" / "none yet").write_bytes(b"")
    report = validate_bag(bag)
    assert ("missing-directory", "data/scans/none yet") in _codes(report)
    assert ("not-regular", "data/tapes") in _codes(report)
    assert "missing-directory" not in {f.code for f in report.errors if f.path == "data/tapes"}


def test_an_empty_folder_behind_a_linked_folder(bag_with_empty_folders: Path, tmp_path: Path) -> None:
    bag = bag_with_empty_folders
    _swap_for_link(bag, "data/scans", tmp_path / "outside-scans")  # holds "none yet": it would be found
    report = validate_bag(bag, fast=True)
    assert ("not-regular", "data/scans/none yet") in _codes(report)
    finding = next(f for f in report.errors if f.path == "data/scans/none yet")
    assert "data/scans on its way is a symbolic link" in finding.message


# -- unreadable tag files are input errors (exit 3), naming the file -------------------------------

@pytest.mark.parametrize("rel", ["bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt"])
@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_an_unreadable_tag_file_exits_3_naming_it(simple_bag: Path, run_preserve, permissions_apply, rel: str,
                                                  fast: bool) -> None:
    (simple_bag / rel).chmod(0)
    try:
        r = run_preserve("validate", *(["--fast"] if fast else []), simple_bag, preexec_fn=permissions_apply)
    finally:
        (simple_bag / rel).chmod(0o644)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert f"{simple_bag / rel}: cannot be read (Permission denied)" in r.stderr


def test_show_with_an_unreadable_mets_exits_3(simple_bag: Path, tmp_path: Path, run_preserve, permissions_apply) -> None:
    mets = simple_bag / "metadata" / "mets.xml"
    mets.write_text(OUTSIDE_METS)
    mets.chmod(0)
    try:
        r = run_preserve("show", simple_bag, preexec_fn=permissions_apply)
        v = run_preserve("validate", simple_bag, preexec_fn=permissions_apply)
    finally:
        mets.chmod(0o644)
    for proc in (r, v):
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"{mets}: cannot be read (Permission denied)" in proc.stderr


FOLDER_ADVICE = ("this folder cannot be opened (Permission denied), so the tag files in it cannot be read; make it "
                 "readable by the user running preserve and run the command again")


@pytest.mark.parametrize("command", [("validate",), ("validate", "--fast"), ("show",)], ids=" ".join)
def test_an_unreadable_metadata_folder_is_named_not_a_file_in_it(simple_bag: Path, run_preserve, permissions_apply,
                                                                 command: tuple[str, ...]) -> None:
    """The bag has no metadata/empty-directories.txt (nor mets.xml): the message names the folder
    that cannot be opened, never a file that may not be in it."""
    assert not (simple_bag / "metadata/empty-directories.txt").exists()
    assert not (simple_bag / "metadata/mets.xml").exists()
    (simple_bag / "metadata").chmod(0)
    try:
        r = run_preserve(*command, simple_bag, preexec_fn=permissions_apply)
    finally:
        (simple_bag / "metadata").chmod(0o755)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "empty-directories" not in r.stderr and "mets.xml" not in r.stderr
    assert f"{simple_bag / 'metadata'}: {FOLDER_ADVICE}" in " ".join(r.stderr.split())


def test_an_unreadable_tag_folder_not_listed_anywhere_is_named(simple_bag: Path, run_preserve, permissions_apply) -> None:
    """Any folder of tag files, not only metadata/: before, validate said 'the bag's folder cannot
    be listed', naming the bag."""
    (simple_bag / "extras").mkdir()
    (simple_bag / "extras" / "notes.txt").write_text("n\n")
    (simple_bag / "extras").chmod(0)
    try:
        r = run_preserve("validate", "--fast", simple_bag, preexec_fn=permissions_apply)
    finally:
        (simple_bag / "extras").chmod(0o755)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{simple_bag / 'extras'}: {FOLDER_ADVICE}" in " ".join(r.stderr.split())


# -- the other readers: events, profile checks ------------------------------------------------------

def test_events_leaves_out_a_linked_premis(simple_bag: Path, tmp_path: Path) -> None:
    from preserve.audit.events import bag_events

    outside = tmp_path / "premis.xml"
    outside.write_text(f'<premis:premis xmlns:premis="http://www.loc.gov/premis/v3" version="3.0">'
                       f'<premis:event><premis:eventType>{SECRET}</premis:eventType></premis:event></premis:premis>')
    (simple_bag / "metadata" / "premis.xml").symlink_to(outside)
    doc = bag_events(simple_bag, None)
    assert SECRET.encode() not in doc.xml
    assert doc.warnings == [f"{simple_bag / 'metadata' / 'premis.xml'}: is a symbolic link; preserve never follows "
                            "a link inside a bag or replica; the bag's packaging events are left out"]


def test_profile_required_tag_file_behind_a_linked_folder_is_absent(simple_bag: Path, tmp_path: Path) -> None:
    from preserve.bag.reader import open_bag
    from preserve.profiles.conformance import DirectoryFacts

    (simple_bag / "metadata" / "mets.xml").write_text(OUTSIDE_METS)
    facts = DirectoryFacts(open_bag(simple_bag))
    assert facts.has_file("metadata/mets.xml") and facts.folder_holds_something("metadata")
    _swap_for_link(simple_bag, "metadata", tmp_path / "outside-metadata")
    facts = DirectoryFacts(open_bag(simple_bag))
    assert not facts.has_file("metadata/mets.xml")
    assert not facts.folder_holds_something("metadata")


def test_hash_batch_below_a_root_refuses_links_in_a_folder_it_keeps_open(tmp_path: Path) -> None:
    from preserve.fixity import hash_batch

    root, outside = tmp_path / "bag", tmp_path / "outside"
    (root / "data" / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "f.wav").write_bytes(b"outside")
    (root / "data" / "sub" / "a.wav").write_bytes(b"inside")
    (root / "data" / "sub" / "link.wav").symlink_to(outside / "f.wav")
    os.mkfifo(root / "data" / "sub" / "pipe.wav")
    (root / "data" / "linked").symlink_to(outside, target_is_directory=True)
    jobs = [(rel, ("sha256",), False, 0) for rel in
            ("data/sub/a.wav", "data/sub/link.wav", "data/sub/pipe.wav", "data/sub/gone.wav", "data/linked/f.wav")]
    got = hash_batch(jobs, root=str(root))
    assert isinstance(got[0], dict) and set(got[0]) == {"sha256"}
    assert got[1:] == [("link", "data/sub/link.wav"),
                       ("unreadable", "read error (is not a regular file (a pipe, device or socket))"),
                       ("missing", "disappeared while being read"),
                       ("link", "data/linked")]


def test_a_folder_swapped_for_a_link_while_listing_is_not_listed(simple_bag: Path, tmp_path: Path) -> None:
    import stat

    from preserve.bag.reader import open_bag

    walk = open_bag(simple_bag).iter_payload_files()
    first = next(walk)
    assert first[0] == "data/a.wav"  # data/ listed; data/sub not yet
    shutil.rmtree(simple_bag / "data" / "sub")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / f"{SECRET}.wav").write_bytes(b"x")
    (simple_bag / "data" / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    rest = list(walk)
    assert [rel for rel, _st in rest] == ["data/sub"]
    assert stat.S_ISLNK(rest[0][1].st_mode)

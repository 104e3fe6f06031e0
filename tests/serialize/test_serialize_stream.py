"""Serialized bags: written deterministically and atomically, validated as a stream like folders."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import bagit
import pytest

from preserve.bag.validate import validate_bag
from preserve.bag.writer import create_bag, payload_from_directory
from preserve.cli.main import main
from preserve.errors import DestinationExists
from preserve.fixity import Tally
from preserve.serialize import finalizer, iter_members, top_folder, validate_archive, write_archive

ENDINGS = {"tar": ".tar", "tar.gz": ".tar.gz", "zip": ".zip"}
FORMATS = list(ENDINGS)


def as_tuples(findings: list[Any]) -> list[tuple[Any, ...]]:
    return [dataclasses.astuple(f) for f in findings]


@pytest.fixture
def bag_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "side b").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "a.wav").write_bytes(b"RIFF" + os.urandom(70_000))
    (src / "side b" / "tåke 1.wav").write_bytes(b"RIFF" + os.urandom(3000))
    (src / "side b" / "notes.txt").write_bytes(b"recorded in the hall\n")
    bag = tmp_path / "hall-1962"
    create_bag(bag, payload_from_directory(src), info=[("Source-Organization", "Northern Radio Archive")])
    return bag


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


@pytest.mark.parametrize("fmt", FORMATS)
def test_archive_validates_like_the_folder(bag_dir: Path, tmp_path: Path, fmt: str) -> None:
    archive = write_archive(bag_dir, tmp_path / f"hall-1962{ENDINGS[fmt]}", fmt)
    tally = Tally()
    folder, streamed = validate_bag(bag_dir), validate_archive(archive, progress=tally)
    assert streamed.ok and folder.ok
    # one pass: every file of the bag read exactly once (preserve writes the manifests first)
    every_file = [p for p in bag_dir.rglob("*") if p.is_file()]
    assert (tally.bytes, tally.files) == (sum(p.stat().st_size for p in every_file), len(every_file))
    assert as_tuples(streamed.findings) == as_tuples(folder.findings) == []
    assert (streamed.files, streamed.bytes, streamed.algorithms) == (folder.files, folder.bytes, folder.algorithms) == (3, 73_029, ["sha256", "sha512"])


def corrupt(bag: Path) -> None:
    """Flip a byte, delete a file, add an unlisted one, damage a tag file."""
    target = bag / "data" / "a.wav"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    (bag / "data" / "side b" / "notes.txt").unlink()
    (bag / "data" / "stray.txt").write_bytes(b"not listed")
    with open(bag / "metadata" / "xxh3-128.txt", "a", encoding="utf-8") as f:
        f.write("\n")


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_archive_gives_the_same_findings_as_the_folder(bag_dir: Path, tmp_path: Path, fmt: str) -> None:
    corrupt(bag_dir)
    folder = validate_bag(bag_dir)
    codes = [(f.code, f.path, f.algorithm) for f in folder.findings]
    assert codes == [
        ("unlisted", "data/stray.txt", None),
        ("missing", "data/side b/notes.txt", None),
        ("oxum", "bag-info.txt", None),
        ("altered", "data/a.wav", "sha256"),
        ("altered", "data/a.wav", "sha512"),
        ("tag-altered", "metadata/xxh3-128.txt", "sha256"),
        ("tag-altered", "metadata/xxh3-128.txt", "sha512"),
    ]
    archive = write_archive(bag_dir, tmp_path / f"hall-1962{ENDINGS[fmt]}", fmt)
    assert as_tuples(validate_archive(archive).findings) == as_tuples(folder.findings)
    assert as_tuples(validate_archive(archive, fast=True).findings) == as_tuples(validate_bag(bag_dir, fast=True).findings)


def test_foreign_member_order_and_algorithm_need_a_second_look_only(tmp_path: Path) -> None:
    """A tar made by another tool: plain sorted order, so the md5 manifest comes after the payload."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "one.wav").write_bytes(b"RIFF one")
    bag = tmp_path / "plain"
    create_bag(bag, payload_from_directory(src), algorithms=("md5",))
    archive = tmp_path / "plain.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(bag, arcname="plain", recursive=False)
        for path in sorted(p for p in bag.rglob("*")):
            tar.add(path, arcname=f"plain/{path.relative_to(bag)}", recursive=False)
    names = [m.rel for m in iter_members(archive)]
    assert names.index("data/one.wav") < names.index("manifest-md5.txt")
    tally = Tally()
    assert validate_archive(archive, progress=tally).ok
    every_file = {str(p.relative_to(bag)): p.stat().st_size for p in bag.rglob("*") if p.is_file()}
    # the second pass reads again only what md5 covers (unknown when it passed): the payload file
    # and the tag files tagmanifest-md5.txt lists
    again = ["data/one.wav"] + [line.split("  ", 1)[1] for line in (bag / "tagmanifest-md5.txt").read_text().splitlines()]
    assert sorted(again) == ["bag-info.txt", "bagit.txt", "data/one.wav", "manifest-md5.txt", "metadata/xxh3-128.txt"]
    assert (tally.bytes, tally.files) == (sum(every_file.values()) + sum(every_file[r] for r in again), len(every_file) + len(again))
    (bag / "data" / "one.wav").write_bytes(b"RIFF 0ne")
    shutil.rmtree(tmp_path / "src")
    archive.unlink()
    with tarfile.open(archive, "w") as tar:
        for path in sorted(p for p in bag.rglob("*")):
            tar.add(path, arcname=f"plain/{path.relative_to(bag)}", recursive=False)
    streamed = validate_archive(archive)
    assert as_tuples(streamed.findings) == as_tuples(validate_bag(bag).findings)
    assert [(f.code, f.algorithm) for f in streamed.findings] == [("altered", "md5")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_members_are_ordered_and_archives_repeat_byte_for_byte(bag_dir: Path, tmp_path: Path, fmt: str) -> None:
    first = write_archive(bag_dir, tmp_path / "one" / f"hall-1962{ENDINGS[fmt]}", fmt) if (tmp_path / "one").mkdir() is None else None
    second = write_archive(bag_dir, tmp_path / "two" / f"hall-1962{ENDINGS[fmt]}", fmt) if (tmp_path / "two").mkdir() is None else None
    assert first is not None and second is not None
    assert first.read_bytes() == second.read_bytes()
    names = [m.name.rstrip("/") for m in iter_members(first)]
    assert names == [
        "hall-1962", "hall-1962/bagit.txt", "hall-1962/bag-info.txt",
        "hall-1962/manifest-sha256.txt", "hall-1962/manifest-sha512.txt",
        "hall-1962/tagmanifest-sha256.txt", "hall-1962/tagmanifest-sha512.txt",
        "hall-1962/metadata", "hall-1962/metadata/empty-directories.txt", "hall-1962/metadata/xxh3-128.txt",
        "hall-1962/data", "hall-1962/data/a.wav", "hall-1962/data/empty",
        "hall-1962/data/side b", "hall-1962/data/side b/notes.txt", "hall-1962/data/side b/tåke 1.wav",
    ]


def test_an_existing_destination_is_never_replaced(bag_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "hall-1962.zip"
    dest.write_bytes(b"precious")
    with pytest.raises(DestinationExists):
        write_archive(bag_dir, dest, "zip")
    assert dest.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if "preserve-partial" in p.name]


@pytest.mark.parametrize("fmt", FORMATS)
def test_bag_serialize_then_validate_and_find_a_corrupted_member(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    payload = b"RIFF" + bytes(range(256)) * 64
    (src / "take.wav").write_bytes(payload)
    code, out, err = run(capsys, "bag", src, tmp_path / "take", "--serialize", fmt, "-q")
    assert code == 0, err
    archive = tmp_path / f"take{ENDINGS[fmt]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["src", archive.name])  # no staging left
    assert top_folder(archive) == "take"  # one top folder, named like the bag
    code, out, _ = run(capsys, "validate", archive, "-q")
    assert code == 0 and out.startswith(f"{archive}: valid (1 files, 16388 bytes, sha256, sha512")
    raw = bytearray(archive.read_bytes())
    if fmt == "tar.gz":
        raw[len(raw) // 2] ^= 0xFF  # compressed data: gzip's CRC-32 over the whole stream fails
        archive.write_bytes(bytes(raw))
        code, _, err = run(capsys, "validate", archive, "-q")
        assert code == 3
        assert err.startswith(f"preserve: error: {archive}: cannot read the serialized bag safely: damaged tar data after ")
        assert "CRC check failed" in err
        return
    at = raw.find(payload[1000:1100])
    raw[at] ^= 0xFF
    archive.write_bytes(bytes(raw))
    code, out, _ = run(capsys, "validate", archive, "-q")
    assert code == 1
    assert "error: data/take.wav: sha256 checksum does not match manifest-sha256.txt" in out
    assert "error: data/take.wav: sha512 checksum does not match manifest-sha512.txt" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_unpack_extracts_validates_and_renames(bag_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    archive = write_archive(bag_dir, tmp_path / f"hall-1962{ENDINGS[fmt]}", fmt)
    dest = tmp_path / "restored" / "hall-1962"
    code, out, err = run(capsys, "unpack", archive, dest, "-q")
    assert code == 0, err
    assert out.splitlines()[-1] == f"unpacked {archive} into {dest}"
    bagit.Bag(str(dest)).validate()
    assert (dest / "data" / "empty").is_dir()
    assert (dest / "data" / "a.wav").read_bytes() == (bag_dir / "data" / "a.wav").read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["hall-1962"]
    code, _, err = run(capsys, "unpack", archive, dest, "-q")
    assert code == 4


def test_unpack_of_an_invalid_bag_leaves_nothing(bag_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt(bag_dir)
    # a payload file no manifest lists is refused before it is written (it could be a zip bomb's)
    archive = write_archive(bag_dir, tmp_path / "hall-1962.tar", "tar")
    dest = tmp_path / "out" / "hall-1962"
    code, out, err = run(capsys, "unpack", archive, dest, "-q")
    assert code == 3
    assert err.strip() == (f"preserve: error: {archive}: cannot read the serialized bag safely: member "
                           "'hall-1962/data/stray.txt' is not listed in the bag's payload manifests (an unlisted "
                           "payload file makes the bag invalid, and is not written); nothing was extracted")
    assert not (tmp_path / "out").exists()  # the parent made for DEST is removed again
    # the rest of the damage is found by validating the unpacked bag, and nothing is left either
    (bag_dir / "data" / "stray.txt").unlink()
    (tmp_path / "listed").mkdir()
    archive = write_archive(bag_dir, tmp_path / "listed" / "hall-1962.tar", "tar")
    code, out, err = run(capsys, "unpack", archive, dest, "-q")
    assert code == 1
    assert "error: data/a.wav: sha256 checksum does not match manifest-sha256.txt" in out
    assert err.strip() == f"preserve: error: {archive}: the bag is not valid (6 problem(s))"
    assert not (tmp_path / "out").exists()


def test_finalizer_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="unknown serialization '7z'"):
        finalizer("7z")


def test_unpack_names_the_next_steps_unless_quiet(bag_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = write_archive(bag_dir, tmp_path / "hall-1962.tar", "tar")
    code, _out, err = run(capsys, "unpack", archive, tmp_path / "one")
    assert code == 0, err
    assert "next:" in err and "preserve validate" in err, err
    code, _out, err = run(capsys, "unpack", archive, tmp_path / "two", "-q")
    assert code == 0 and "next:" not in err, err

"""Zip files other tools write: names read the way the writing tool meant them, members
compressed with bzip2 or LZMA read as well as deflated ones.

Info-ZIP's zip on Unix stores the locale's bytes (UTF-8) without setting general-purpose bit 11,
sometimes with an Info-ZIP Unicode Path extra field (0x7075). Read as CP437, the zip format's
historical default, a valid bag's names turn into mojibake and the bag looks invalid.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import bagit
import pytest

from preserve.bag.writer import create_bag, payload_from_directory
from preserve.cli.main import main
from preserve.package import package_collection
from preserve.serialize import write_archive

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "donated-collection"

BAGIT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
PAYLOAD = b"RIFF music"
NAME = "data/Münster – 東京.wav"


class RawNameInfo(zipfile.ZipInfo):
    """A zip entry written with exactly the given name bytes and general-purpose bit 11 unset,
    as Info-ZIP's zip on Linux writes them."""

    raw_name: bytes = b""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile encodes names here
        return self.raw_name, self.flag_bits & ~0x800


def raw_entry(raw: bytes, extra: bytes = b"") -> RawNameInfo:
    info = RawNameInfo(raw.decode("cp437"), (2020, 1, 1, 0, 0, 0))
    info.raw_name = raw
    info.extra = extra
    return info


def unicode_path(name: str, for_raw: bytes) -> bytes:
    """An Info-ZIP Unicode Path extra field (0x7075) naming ``name`` for the header name ``for_raw``."""
    body = b"\x01" + struct.pack("<I", zlib.crc32(for_raw)) + name.encode("utf-8")
    return struct.pack("<HH", 0x7075, len(body)) + body


def bag_zip(path: Path, entry: RawNameInfo, listed: str = NAME) -> Path:
    """A valid bag 'bag' whose one payload file is written as ``entry``; the manifest lists ``listed``."""
    manifest = f"{hashlib.sha256(PAYLOAD).hexdigest()}  {listed}\n".encode()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bag/bagit.txt", BAGIT)
        zf.writestr("bag/manifest-sha256.txt", manifest)
        zf.writestr(entry, PAYLOAD)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def assert_valid_and_unpacks(capsys: pytest.CaptureFixture[str], archive: Path, tmp_path: Path, name: str = NAME) -> None:
    code, out, err = run(capsys, "validate", archive)
    assert code == 0, out + err
    dest = tmp_path / "unpacked"
    code, out, err = run(capsys, "unpack", archive, dest)
    assert code == 0, out + err
    assert (dest / name).read_bytes() == PAYLOAD
    assert sorted(p.name for p in (dest / "data").iterdir()) == [name.removeprefix("data/")]


def test_utf8_names_without_the_utf8_flag_are_read_as_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = bag_zip(tmp_path / "bag.zip", raw_entry(f"bag/{NAME}".encode()))
    with zipfile.ZipFile(archive) as zf:  # the archive is what Info-ZIP writes: no bit 11
        assert all(not zi.flag_bits & 0x800 for zi in zf.infolist())
    assert_valid_and_unpacks(capsys, archive, tmp_path)


def test_the_unicode_path_extra_field_wins_over_the_header_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = b"bag/data/Munster.wav"  # what an old unzip would show; valid UTF-8 (ASCII) too
    archive = bag_zip(tmp_path / "bag.zip", raw_entry(header, unicode_path("bag/data/Münster.wav", header)),
                      listed="data/Münster.wav")
    assert_valid_and_unpacks(capsys, archive, tmp_path, "data/Münster.wav")


def test_a_stale_unicode_path_extra_field_is_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The field carries the CRC-32 of the name it was written for: one left behind by a rename is not used."""
    header = b"bag/data/Munster.wav"
    archive = bag_zip(tmp_path / "bag.zip", raw_entry(header, unicode_path("bag/data/Münster.wav", b"bag/data/old.wav")),
                      listed="data/Munster.wav")
    assert_valid_and_unpacks(capsys, archive, tmp_path, "data/Munster.wav")


def test_names_that_are_not_utf8_fall_back_to_cp437(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 0x81 is 'ü' in CP437 and never a valid UTF-8 byte sequence on its own
    archive = bag_zip(tmp_path / "bag.zip", raw_entry(b"bag/data/M\x81nster.wav"), listed="data/Münster.wav")
    assert_valid_and_unpacks(capsys, archive, tmp_path, "data/Münster.wav")


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP's zip is not installed (Debian package zip)")
def test_a_bag_zipped_by_info_zip_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = tmp_path / "src" / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "bagit.txt").write_bytes(BAGIT)
    (bag / NAME).write_bytes(PAYLOAD)
    (bag / "manifest-sha256.txt").write_bytes(f"{hashlib.sha256(PAYLOAD).hexdigest()}  {NAME}\n".encode())
    archive = tmp_path / "bag.zip"
    subprocess.run(["zip", "-q", "-r", "-X", str(archive), "bag"], cwd=bag.parent, check=True,
                   env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert_valid_and_unpacks(capsys, archive, tmp_path)


# -- bzip2 and LZMA members --------------------------------------------------------------------

@pytest.fixture
def hall_bag(tmp_path: Path) -> Path:
    """A bag with a payload file of several read chunks (1 MiB each) and a small one."""
    src = tmp_path / "src"
    (src / "side b").mkdir(parents=True)
    (src / "take 1.wav").write_bytes(b"RIFF" + bytes(range(256)) * 10_000 + b"end")
    (src / "side b" / "notes.txt").write_bytes(b"recorded in the hall\n" * 50)
    bag = tmp_path / "hall-1962"
    create_bag(bag, payload_from_directory(src), info=[("Source-Organization", "Northern Radio Archive")])
    return bag


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_validates_and_unpacks_as_the_bag(capsys: pytest.CaptureFixture[str], archive: Path, bag: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "validate", archive)
    assert code == 0, out + err
    dest = tmp_path / "unpacked" / bag.name
    code, out, err = run(capsys, "unpack", archive, dest)
    assert code == 0, out + err
    bagit.Bag(str(dest)).validate()  # bagit-python, as an independent check
    assert files_of(dest) == files_of(bag)


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_a_bag_zipped_with_bzip2_or_lzma_validates_and_unpacks(tmp_path: Path, hall_bag: Path, method: int,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "hall-1962.zip"
    with zipfile.ZipFile(archive, "w", compression=method) as zf:
        for p in sorted(hall_bag.rglob("*")):
            zf.write(p, f"hall-1962/{p.relative_to(hall_bag).as_posix()}")
    with zipfile.ZipFile(archive) as zf:
        assert {zi.compress_type for zi in zf.infolist() if not zi.is_dir()} == {method}
    assert_validates_and_unpacks_as_the_bag(capsys, archive, hall_bag, tmp_path)


def test_a_bag_zipped_by_info_zip_with_bzip2_is_valid(tmp_path: Path, hall_bag: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zip_help = subprocess.run(["zip", "-v"], capture_output=True, text=True).stdout if shutil.which("zip") else ""
    if "BZIP2_SUPPORT" not in zip_help:
        pytest.skip("Info-ZIP's zip with bzip2 support is not installed (Debian package zip)")
    archive = tmp_path / "hall-1962.zip"
    subprocess.run(["zip", "-q", "-r", "-X", "-Z", "bzip2", str(archive), "hall-1962"], cwd=tmp_path, check=True)
    with zipfile.ZipFile(archive) as zf:  # zip stores what would not shrink
        assert zf.getinfo("hall-1962/data/take 1.wav").compress_type == zipfile.ZIP_BZIP2
    assert_validates_and_unpacks_as_the_bag(capsys, archive, hall_bag, tmp_path)


# -- fetch.txt in an archive ---------------------------------------------------------------------



@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_an_archive_with_holes_counts_fetched_items_as_payload(tmp_path: Path, served: tuple[Path, str], fmt: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Payload-Oxum and the METS sizes count a fetch.txt item as a folder's validation does."""
    bag = tmp_path / "bag"
    package_collection(EXAMPLE, bag)
    root, base = served
    wavs = sorted(str(p.relative_to(bag)) for p in (bag / "data").rglob("*") if p.is_file())
    holes = wavs[:2]
    lines = []
    for i, rel in enumerate(holes):
        size = (bag / rel).stat().st_size
        shutil.move(bag / rel, root / f"item{i}")
        lines.append(f"{base}item{i} {size} {rel}\n")
    (bag / "fetch.txt").write_text("".join(lines), encoding="utf-8")
    # preserve's own profile forbids fetch.txt: this is a holey bag as other tools make them
    info = bag / "bag-info.txt"
    info.write_text("".join(ln for ln in info.read_text(encoding="utf-8").splitlines(keepends=True)
                            if not ln.startswith("BagIt-Profile-Identifier:")), encoding="utf-8")
    for manifest in bag.glob("tagmanifest-*.txt"):
        alg = manifest.name.removeprefix("tagmanifest-").removesuffix(".txt")
        digests = [f"{hashlib.new(alg, (bag / rel).read_bytes()).hexdigest()}  {rel}\n"
                   for _, rel in (ln.split("  ", 1) for ln in manifest.read_text(encoding="utf-8").splitlines())]
        manifest.write_text("".join(digests), encoding="utf-8")
    archive = write_archive(bag, tmp_path / f"bag.{fmt}", fmt)

    code, out, err = run(capsys, "validate", "--fetch", archive)
    assert code == 0, out + err
    code, out, err = run(capsys, "validate", "--json", archive)
    assert code == 1
    found = [(f["code"], f["path"]) for f in json.loads(out)["findings"] if f["severity"] == "error"]
    assert sorted(found) == [("not-fetched", rel) for rel in holes]

"""Archive bombs: unpack checks each member against the bag's manifests and Payload-Oxum before
writing it, and never writes more of a member than its header declares."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from preserve.errors import BadArchive
from preserve.serialize import unpack

PAYLOAD = b"RIFF good take"
BOMB = 50 * 1024 * 1024  # zeros: ~50 KB deflated
BAGIT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def tag_files(listed: dict[str, bytes] | None = None, oxum: str | None = None) -> list[tuple[str, bytes]]:
    """A bag's top-level tag files for the payload ``listed`` (good.wav by default)."""
    listed = listed if listed is not None else {"data/good.wav": PAYLOAD}
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {rel}\n" for rel, data in listed.items()).encode()
    if oxum is None:
        oxum = f"{sum(len(d) for d in listed.values())}.{len(listed)}"
    return [("bag/bagit.txt", BAGIT), ("bag/bag-info.txt", f"Payload-Oxum: {oxum}\n".encode()),
            ("bag/manifest-sha256.txt", manifest)]


def zip_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def tar_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def written_by(archive: Path, dest: Path) -> tuple[int, BadArchive]:
    """Unpack ``archive``, which must be refused; the bytes written before the refusal."""
    written = [0]

    def progress(nbytes: int, _files: int) -> None:
        written[0] += nbytes

    with pytest.raises(BadArchive) as refused:
        unpack(archive, dest, progress=progress)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p != archive and not p.name.endswith(".preserve-lock")] == []
    return written[0], refused.value


def test_an_unlisted_zip_bomb_is_refused_before_a_byte_of_it_is_written(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "bag.zip", [*tag_files(), ("bag/data/good.wav", PAYLOAD), ("bag/data/zeros.bin", bytes(BOMB))])
    assert archive.stat().st_size < 200_000
    written, refused = written_by(archive, tmp_path / "bag")
    assert written <= 200  # the tag files (~150 bytes) and at most the listed payload
    assert "member 'bag/data/zeros.bin' is not listed in the bag's payload manifests" in str(refused)


@pytest.mark.parametrize("bomb_first", [False, True], ids=["manifests-first", "payload-first"])
def test_an_unlisted_tar_gz_bomb_is_refused_before_a_byte_of_it_is_written(tmp_path: Path, bomb_first: bool) -> None:
    """Manifests first (as preserve writes): refused as it arrives; payload first (as some tools
    write): the tag files are read in a first pass, and the bomb is refused in the second."""
    bomb = ("bag/data/zeros.bin", bytes(BOMB))
    members = [*tag_files(), ("bag/data/good.wav", PAYLOAD)]
    archive = tar_of(tmp_path / "bag.tar.gz", [bomb, *members] if bomb_first else [*members, bomb])
    written, refused = written_by(archive, tmp_path / "bag")
    assert written <= 200
    assert "member 'bag/data/zeros.bin' is not listed in the bag's payload manifests" in str(refused)


def test_a_listed_member_larger_than_payload_oxum_is_refused_before_it_is_written(tmp_path: Path) -> None:
    big = bytes(BOMB)
    archive = zip_of(tmp_path / "bag.zip", [*tag_files({"data/zeros.bin": big}, oxum="1024.1"), ("bag/data/zeros.bin", big)])
    written, refused = written_by(archive, tmp_path / "bag")
    assert written <= 200
    assert f"member 'bag/data/zeros.bin' would bring the payload to {BOMB} bytes, past the 1024 Payload-Oxum declares" in str(refused)


def lie_about_size(archive: Path, name: str, size: int) -> None:
    """Set the uncompressed size of ``name`` in its local and central headers to ``size``."""
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        local, start_dir = zf.getinfo(name).header_offset, zf.start_dir
    struct.pack_into("<I", raw, local + 22, size)
    central = raw.find(b"PK\x01\x02", start_dir)
    while central != -1:
        name_len = struct.unpack_from("<H", raw, central + 28)[0]
        if raw[central + 46:central + 46 + name_len] == name.encode():
            struct.pack_into("<I", raw, central + 24, size)
            break
        central = raw.find(b"PK\x01\x02", central + 4)
    else:
        raise AssertionError(f"no central header for {name}")
    archive.write_bytes(bytes(raw))


def test_a_listed_member_inflating_past_its_header_size_is_refused_at_that_size(tmp_path: Path) -> None:
    small = b"RIFF" + bytes(96)
    tags = tag_files({"data/take.wav": small})
    archive = zip_of(tmp_path / "bag.zip", [*tags, ("bag/data/take.wav", bytes(BOMB))])
    lie_about_size(archive, "bag/data/take.wav", len(small))
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("bag/data/take.wav").file_size == len(small)
    written, refused = written_by(archive, tmp_path / "bag")
    assert written <= sum(len(data) for _, data in tags) + len(small)
    assert f"member 'bag/data/take.wav' inflates past the {len(small)} bytes its header declares" in str(refused)


def test_a_good_bag_still_unpacks(tmp_path: Path) -> None:
    for fmt, make in (("zip", zip_of), ("tar.gz", tar_of)):
        archive = make(tmp_path / f"bag.{fmt}", [*tag_files(), ("bag/data/good.wav", PAYLOAD)])
        dest = tmp_path / fmt / "bag"
        unpack(archive, dest)
        assert (dest / "data" / "good.wav").read_bytes() == PAYLOAD


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB file system: a bomb written before it is refused fills it."""
    where = tmp_path / "small"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_the_cli_refuses_a_bomb_on_a_small_disk_without_filling_it(tmp_path: Path, small_fs: Path, run_preserve) -> None:
    archive = zip_of(tmp_path / "bag.zip", [*tag_files(), ("bag/data/good.wav", PAYLOAD), ("bag/data/zeros.bin", bytes(BOMB))])
    r = run_preserve("unpack", archive, small_fs / "bag")
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert "'bag/data/zeros.bin' is not listed in the bag's payload manifests" in r.stderr
    assert not (small_fs / "bag").exists()
    assert [p for p in small_fs.iterdir() if not p.name.endswith(".preserve-lock")] == []

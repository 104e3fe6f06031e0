"""Archive bombs: unpack checks each member against the bag's manifests and Payload-Oxum before
writing it, and never writes more of a member than its header declares; bzip2 and LZMA members
are inflated a chunk at a time, so a bomb is refused with flat memory; compression methods
preserve cannot read are refused by name."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from preserve.cli.main import main
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


def patch_headers(archive: Path, name: str, *, size: int | None = None, method: int | None = None,
                  flags: int = 0) -> None:
    """Set the uncompressed size and/or the compression method of ``name``, and add general-purpose
    ``flags``, in its local and central headers."""
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        local, start_dir = zf.getinfo(name).header_offset, zf.start_dir

    def patch(flags_at: int, method_at: int, size_at: int) -> None:
        struct.pack_into("<H", raw, flags_at, struct.unpack_from("<H", raw, flags_at)[0] | flags)
        if method is not None:
            struct.pack_into("<H", raw, method_at, method)
        if size is not None:
            struct.pack_into("<I", raw, size_at, size)

    patch(local + 6, local + 8, local + 22)
    central = raw.find(b"PK\x01\x02", start_dir)
    while central != -1:
        name_len = struct.unpack_from("<H", raw, central + 28)[0]
        if raw[central + 46:central + 46 + name_len] == name.encode():
            patch(central + 8, central + 10, central + 24)
            break
        central = raw.find(b"PK\x01\x02", central + 4)
    else:
        raise AssertionError(f"no central header for {name}")
    archive.write_bytes(bytes(raw))


def lie_about_size(archive: Path, name: str, size: int) -> None:
    """Set the uncompressed size of ``name`` in its local and central headers to ``size``."""
    patch_headers(archive, name, size=size)


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
def small_fs(tmp_path: Path, tmpfs: Callable[[Path, str], AbstractContextManager[Path]]) -> Iterator[Path]:
    """A real 8 MiB file system: a bomb written before it is refused fills it."""
    with tmpfs(tmp_path / "small", "size=8m") as where:
        yield where


def test_the_cli_refuses_a_bomb_on_a_small_disk_without_filling_it(tmp_path: Path, small_fs: Path, run_preserve) -> None:
    archive = zip_of(tmp_path / "bag.zip", [*tag_files(), ("bag/data/good.wav", PAYLOAD), ("bag/data/zeros.bin", bytes(BOMB))])
    r = run_preserve("unpack", archive, small_fs / "bag")
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert "'bag/data/zeros.bin' is not listed in the bag's payload manifests" in r.stderr
    assert not (small_fs / "bag").exists()
    assert [p for p in small_fs.iterdir() if not p.name.endswith(".preserve-lock")] == []


# -- bzip2 and LZMA members: inflated a chunk at a time ------------------------------------------

def bzip2_zeros(blocks: int, block: int = 32 << 20) -> bytes:
    """One bzip2 stream of ``blocks`` blocks of ``block`` zeros each, in a few bytes a block.

    bzip2 takes a second per 100 MiB of zeros; the stream is built instead by compressing one
    block and repeating its bits (blocks are bit-aligned, not byte-aligned), then ending the
    stream with its end-of-stream magic and the combined CRC (each block's CRC folded in by
    rotating left one bit, then XOR).
    """
    one = bz2.compress(bytes(block), 9)
    nbits, bits = len(one) * 8, int.from_bytes(one, "big")

    def field(start: int, width: int) -> int:
        return (bits >> (nbits - start - width)) & ((1 << width) - 1)

    # the end-of-stream magic, then a 32-bit CRC, then 0-7 bits of padding
    end = next(p for p in range(nbits - 80, nbits - 88, -1) if field(p, 48) == 0x177245385090)
    length = end - 32  # the block: after "BZh9", up to the end-of-stream magic
    body, crc = field(32, length), field(32 + 48, 32)  # a block opens with 48 bits of magic, then its CRC
    combined, out = 0, int.from_bytes(one[:4], "big")
    for _ in range(blocks):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ crc
        out = (out << length) | body
    out = (out << 80) | (0x177245385090 << 32) | combined
    total = 32 + blocks * length + 80
    pad = -total % 8
    return (out << pad).to_bytes((total + pad) // 8, "big")


def lzma_zip_stream(data: bytes, dict_size: int | None = None) -> bytes:
    """``data`` as an LZMA zip member's bytes (APPNOTE 5.8.8): version, properties size, the
    LZMA1 properties (lc/lp/pb byte, dictionary size), the raw stream with its end marker."""
    compressor = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1, "preset": 0}])
    stream = compressor.compress(data) + compressor.flush()
    lc, lp, pb = 3, 0, 2  # preset 0's
    props = struct.pack("<BI", (pb * 5 + lp) * 9 + lc, dict_size if dict_size is not None else 1 << 18)
    return struct.pack("<BBH", 9, 4, len(props)) + props + stream


def zip_with_raw_member(path: Path, members: list[tuple[str, bytes]], name: str, raw: bytes, method: int,
                        declared: int, flags: int | None = None) -> Path:
    """A zip of ``members`` (deflated) and ``name``, whose bytes are ``raw`` as written, labelled
    with compression ``method``, uncompressed size ``declared`` and general-purpose ``flags``
    (for LZMA, bit 1 unless told: the stream ends with its end marker, as zipfile writes it)."""
    zip_of(path, members)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(zipfile.ZipInfo(name), raw)  # stored: the bytes as given
    if flags is None:
        flags = 0x2 if method == zipfile.ZIP_LZMA else 0
    patch_headers(path, name, size=declared, method=method, flags=flags)
    return path


#: Runs the command given after the file name in a child process, then writes the child's peak
#: resident memory (KiB on Linux) to that file; exits with the child's code.
_MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(done.returncode)
"""
#: The CLI alone peaks near 30 MiB; a bomb inflated whole in memory takes hundreds.
PEAK_BOUND_MIB = 128
SMALL = b"RIFF" + bytes(96)


def run_measured(output_checked: Callable[..., None], where: Path, *args: object) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the preserve console script in its own process: the result, and its peak memory in MiB."""
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe, "the preserve console script is not installed in this environment"
    words = [str(a) for a in args]
    peak = where / "peak-rss"
    r = subprocess.run([sys.executable, "-c", _MEASURE, str(peak), exe, *words], capture_output=True, text=True, timeout=300)
    output_checked(" ".join(words), r.stdout, r.stderr)
    return r, int(peak.read_text()) // 1024


@pytest.fixture(scope="module")
def bomb_streams() -> dict[int, bytes]:
    """Member data that inflates to hundreds of MiB of zeros: bzip2 (512 MiB in ~600 bytes) and
    LZMA (128 MiB in ~19 KB: LZMA's ratio tops out near 7,000:1)."""
    return {zipfile.ZIP_BZIP2: bzip2_zeros(16), zipfile.ZIP_LZMA: lzma_zip_stream(bytes(128 << 20))}


@pytest.mark.parametrize("command", ["validate", "unpack"])
@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_a_bzip2_or_lzma_bomb_is_refused_with_flat_memory(tmp_path: Path, output_checked: Callable[..., None],
                                                           bomb_streams: dict[int, bytes], method: int, command: str) -> None:
    """zipfile inflates each 1 MiB read of bzip2 or LZMA data whole: this bomb would be in memory
    entire before its size was checked."""
    archive = zip_with_raw_member(tmp_path / "bag.zip", tag_files({"data/take.wav": SMALL}), "bag/data/take.wav",
                                  bomb_streams[method], method, declared=len(SMALL))
    assert archive.stat().st_size < 25_000
    dest = tmp_path / "out" / "bag"
    r, peak = run_measured(output_checked, tmp_path, command, archive, *([dest] if command == "unpack" else []))
    assert r.returncode == 3, r.stderr
    assert (f"{archive}: cannot read the serialized bag safely: member 'bag/data/take.wav' inflates past the "
            f"{len(SMALL)} bytes its header declares (a zip bomb, or damaged data)") in r.stderr
    assert peak < PEAK_BOUND_MIB, f"peak memory {peak} MiB"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_bzip2_and_lzma_members_of_many_chunks_unpack_exactly(tmp_path: Path, method: int) -> None:
    take = b"RIFF" + bytes(range(256)) * 12_000 + b"end"  # three chunks and a bit
    raw = bz2.compress(take) if method == zipfile.ZIP_BZIP2 else lzma_zip_stream(take)
    archive = zip_with_raw_member(tmp_path / "bag.zip", tag_files({"data/take.wav": take}), "bag/data/take.wav",
                                  raw, method, declared=len(take))
    unpack(archive, tmp_path / "bag")
    assert (tmp_path / "bag" / "data" / "take.wav").read_bytes() == take


def test_an_lzma_member_without_an_end_marker_ends_at_its_declared_size(tmp_path: Path) -> None:
    """Without general-purpose bit 1 an LZMA stream has no end marker and its declared size ends it:
    the data is cut there, never refused as inflating past it."""
    take = b"RIFF" + bytes(range(256)) * 8_000
    archive = zip_with_raw_member(tmp_path / "bag.zip", tag_files({"data/take.wav": take}), "bag/data/take.wav",
                                  lzma_zip_stream(take + b"more than declared"), zipfile.ZIP_LZMA, declared=len(take), flags=0)
    unpack(archive, tmp_path / "bag")
    assert (tmp_path / "bag" / "data" / "take.wav").read_bytes() == take


def test_an_lzma_header_claiming_a_4_gib_dictionary_does_not_reserve_it(tmp_path: Path, output_checked: Callable[..., None]) -> None:
    """liblzma allocates the dictionary the header names; no match reaches past the member's own
    size, so no more is asked for. Under a 2 GiB address-space limit, 4 GiB cannot be had."""
    take = b"RIFF" + bytes(range(256)) * 100
    archive = zip_with_raw_member(tmp_path / "bag.zip", tag_files({"data/take.wav": take}), "bag/data/take.wav",
                                  lzma_zip_stream(take, dict_size=0xFFFFFFFF), zipfile.ZIP_LZMA, declared=len(take))
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe
    limited = f"import resource, os, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); os.execv({exe!r}, sys.argv[1:])"
    r = subprocess.run([sys.executable, "-c", limited, "preserve", "validate", str(archive)], capture_output=True,
                       text=True, timeout=120)
    output_checked(f"validate {archive}", r.stdout, r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


@pytest.mark.parametrize(("method", "damage", "found"), [
    (zipfile.ZIP_BZIP2, lambda raw: raw[:20] + bytes(len(raw) - 20), "Invalid data stream"),
    (zipfile.ZIP_LZMA, lambda raw: raw[:4] + b"\xff" + raw[5:], "invalid LZMA properties byte 255"),
    (zipfile.ZIP_LZMA, lambda raw: raw[:2] + b"\x02\x00" + raw[4:6], "the LZMA properties are 2 bytes, not 5"),
], ids=["bzip2-data", "lzma-properties", "lzma-header-cut"])
def test_damaged_bzip2_or_lzma_data_is_a_bad_archive_naming_the_member(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                       output_checked: Callable[..., None], method: int,
                                                                       damage: Callable[[bytes], bytes], found: str) -> None:
    take = b"RIFF" + bytes(range(256)) * 100
    raw = bz2.compress(take) if method == zipfile.ZIP_BZIP2 else lzma_zip_stream(take)
    archive = zip_with_raw_member(tmp_path / "bag.zip", tag_files({"data/take.wav": take}), "bag/data/take.wav",
                                  damage(raw), method, declared=len(take))
    for command in (["validate", archive], ["unpack", archive, tmp_path / "bag"]):
        code, out, err = run_cli(capsys, *command)
        output_checked(" ".join(map(str, command)), out, err)
        assert code == 3, out + err
        assert f"{archive}: cannot read the serialized bag safely: damaged archive data in member 'bag/data/take.wav' ({found}" in err
    assert not (tmp_path / "bag").exists()


# -- compression methods preserve cannot read ----------------------------------------------------

@pytest.mark.parametrize(("method", "named"), [(9, "Deflate64 (method 9)"), (98, "PPMd (method 98)"),
                                               (93, "Zstandard (method 93)"), (77, "method 77")])
def test_a_member_compressed_with_a_method_preserve_cannot_read_is_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], output_checked: Callable[..., None], method: int, named: str) -> None:
    archive = zip_with_raw_member(tmp_path / "bag.zip", tag_files(), "bag/data/good.wav", PAYLOAD, method,
                                  declared=len(PAYLOAD))
    refused = (f"{archive}: cannot read the serialized bag safely: member 'bag/data/good.wav' is compressed with "
               f"{named}, which preserve cannot read (it reads stored, deflate, bzip2 and LZMA members)")
    code, out, err = run_cli(capsys, "validate", archive)
    output_checked(f"validate {archive}", out, err)
    assert (code, out) == (3, "")
    assert refused in err
    code, out, err = run_cli(capsys, "unpack", archive, tmp_path / "out" / "bag")
    output_checked(f"unpack {archive}", out, err)
    assert code == 3
    assert refused in err and "nothing was extracted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag.zip"]


def test_a_deflate64_member_is_refused_before_the_rest_is_extracted(tmp_path: Path, run_preserve) -> None:
    """As Windows Explorer writes a large file: the other members are not written first only to be thrown away."""
    tags = tag_files({"data/good.wav": PAYLOAD, "data/large.wav": PAYLOAD})
    archive = zip_with_raw_member(tmp_path / "bag.zip", [*tags, ("bag/data/good.wav", PAYLOAD)], "bag/data/large.wav",
                                  PAYLOAD, 9, declared=len(PAYLOAD))
    written = [0]
    with pytest.raises(BadArchive, match=r"member 'bag/data/large.wav' is compressed with Deflate64 \(method 9\)"):
        unpack(archive, tmp_path / "bag", progress=lambda nbytes, _files: written.__setitem__(0, written[0] + nbytes))
    assert written[0] == sum(len(data) for _, data in tags)  # the tag files, read to check the members against
    r = run_preserve("unpack", archive, tmp_path / "bag")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    assert "member 'bag/data/large.wav' is compressed with Deflate64 (method 9)" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag.zip"]


def test_a_member_using_a_zip_feature_zipfile_lacks_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                      output_checked: Callable[..., None]) -> None:
    archive = zip_with_raw_member(tmp_path / "bag.zip", tag_files(), "bag/data/good.wav", PAYLOAD, zipfile.ZIP_STORED,
                                  declared=len(PAYLOAD), flags=0x20)  # general-purpose bit 5: compressed patched data
    code, out, err = run_cli(capsys, "validate", archive)
    output_checked(f"validate {archive}", out, err)
    assert code == 3, err
    assert (f"{archive}: cannot read the serialized bag safely: member 'bag/data/good.wav' uses a zip feature preserve "
            "cannot read (compressed patched data (flag bit 5))") in err

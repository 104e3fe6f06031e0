"""The fixity engine's reading paths: reusable buffers, hash threads, batched thread pool.

Every digest is checked against hashlib / xxhash computed independently over the same bytes, at
sizes around the buffer boundaries, with and without hash threads (whose buffers are recycled
while other threads still hash them, the case a bug would corrupt).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from preserve.fixity import (
    ALGORITHMS,
    CHUNK,
    RING,
    RateLimiter,
    Tally,
    copy_and_hash,
    hash_file,
    hash_stream,
    ordered_map,
)


def expected(data: bytes, algorithms: tuple[str, ...] = ALGORITHMS) -> dict[str, str]:
    return {a: xxhash.xxh3_128(data).hexdigest() if a == "xxh3-128" else hashlib.new(a, data).hexdigest()
            for a in algorithms}


# around one buffer, and past the ring of buffers so each is reused while others are in flight
SIZES = [0, 1, 4095, 4097, CHUNK - 1, CHUNK, CHUNK + 1, (RING + 3) * CHUNK + 17]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("threaded", [False, True])
def test_hash_file_matches_hashlib(tmp_path: Path, size: int, threaded: bool) -> None:
    data = os.urandom(size)
    path = tmp_path / "take.wav"
    path.write_bytes(data)
    tally = Tally()
    assert hash_file(path, ALGORITHMS, threaded=threaded, progress=tally) == expected(data)
    assert (tally.bytes, tally.files) == (size, 1)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("threaded", [False, True])
def test_copy_and_hash_writes_the_bytes_it_hashed(tmp_path: Path, size: int, threaded: bool) -> None:
    data = os.urandom(size)
    src, dst = tmp_path / "src.wav", tmp_path / "dst.wav"
    src.write_bytes(data)
    result = copy_and_hash(src, dst, ("sha256", "sha512", "xxh3-128"), threaded=threaded)
    assert dst.read_bytes() == data
    assert result.size == size
    assert result.changed is None
    assert result.digests == expected(data, ("sha256", "sha512", "xxh3-128"))
    assert os.stat(dst).st_mtime_ns == os.stat(src).st_mtime_ns


def test_hash_file_under_a_rate_limit_still_reads_everything(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 5)
    path = tmp_path / "a.bin"
    path.write_bytes(data)
    assert hash_file(path, ("md5",), limiter=RateLimiter(1 << 40)) == expected(data, ("md5",))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=12), st.booleans())
def test_hash_stream_matches_hashlib(chunks: list[bytes], threaded: bool) -> None:
    whole = b"".join(chunks)
    assert hash_stream(iter(chunks), ("sha1", "sha256", "xxh3-128"), threaded=threaded) == (
        expected(whole, ("sha1", "sha256", "xxh3-128")), len(whole))


def test_ordered_map_keeps_order_across_batches() -> None:
    # cheap items are batched (up to 64 per task): order must survive that
    assert list(ordered_map(lambda x: x * 3, range(20_000), workers=2)) == [x * 3 for x in range(20_000)]


def test_ordered_map_yields_every_result_before_the_failing_item() -> None:
    def fn(x: int) -> int:
        if x == 5_000:
            raise KeyError(x)
        return x

    got: list[int] = []
    with pytest.raises(KeyError, match="5000"):
        for r in ordered_map(fn, range(10_000), workers=2):
            got.append(r)
    assert got == list(range(5_000))


def test_ordered_map_runs_expensive_items_side_by_side() -> None:
    # each of the first two items waits for the other: they pass only if both run at once
    barrier = threading.Barrier(2, timeout=10)

    def fn(x: int) -> int:
        if x < 2:
            barrier.wait()
        return x

    assert list(ordered_map(fn, range(4), workers=2)) == [0, 1, 2, 3]


def test_hash_file_never_follows_a_link_nor_reads_a_pipe(tmp_path: Path) -> None:
    (tmp_path / "target.wav").write_bytes(b"x" * 100)
    (tmp_path / "link.wav").symlink_to(tmp_path / "target.wav")
    os.mkfifo(tmp_path / "pipe.wav")  # nobody writes to it: reading it would wait for ever
    with pytest.raises(OSError, match="is a symbolic link; it was not followed") as info:
        hash_file(tmp_path / "link.wav", ("sha256",))
    assert info.value.filename == str(tmp_path / "link.wav")
    with pytest.raises(OSError, match="is not a regular file"):
        hash_file(tmp_path / "pipe.wav", ("sha256",))
    assert hash_file(tmp_path / "target.wav", ("sha256",)) == {"sha256": hashlib.sha256(b"x" * 100).hexdigest()}

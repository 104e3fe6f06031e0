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

import preserve.fixity as fixity
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


# -- adaptive hashing: a large file moves its algorithms onto threads and back as cores free up --


def test_adaptive_hasher_switching_mode_mid_stream_keeps_the_digests() -> None:
    import queue

    from preserve.fixity import MultiHasher

    algs = ("sha256", "sha512", "md5", "xxh3-128")
    hasher = MultiHasher(algs, adaptive=True)
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(RING):
        free.put(bytearray(4096))
    data = b""
    # every pattern of switches: on, off, on-on, off-off, and back
    for i, spare in enumerate([True, True, False, True, False, False, True, False, True, True, False]):
        hasher.balance(spare)
        assert hasher.threaded is spare
        buf = free.get()
        chunk = os.urandom(1000 + i)
        buf[: len(chunk)] = chunk
        hasher.update_from(buf, len(chunk), free)
        data += chunk
    assert hasher.hexdigests() == expected(data, algs)


class _CountThreads:
    """On a machine of ``cores`` cores, counts the hash threads started (patching ``_HashThread``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
        monkeypatch.setattr(fixity, "usable_cores", lambda: cores)
        self.started = 0
        original = fixity._HashThread.__init__

        def counting(thread: object, *args: object) -> None:
            self.started += 1
            original(thread, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(fixity._HashThread, "__init__", counting)


def _master(folder: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    (folder / "master.wav").write_bytes(data)
    return folder / "master.wav", data


@pytest.fixture
def small_large_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make 'large' mean 64 KiB and read 16 KiB chunks, so the adaptive path runs on small data."""
    monkeypatch.setattr(fixity, "THREADED_FROM", 64 * 1024)
    monkeypatch.setattr(fixity, "CHUNK", 16 * 1024)
    monkeypatch.setattr(fixity, "BALANCE_EVERY", 1)


@pytest.mark.usefixtures("small_large_files")
def test_a_large_file_alone_hashes_on_threads_when_a_core_is_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = _CountThreads(monkeypatch, cores=2)
    path, data = _master(tmp_path, 300 * 1024)
    assert hash_file(path, ("sha256", "sha512", "xxh3-128")) == expected(data, ("sha256", "sha512", "xxh3-128"))
    assert counter.started == 2  # sha256 and sha512; xxh3 stays on the reading thread
    assert fixity._LARGE_FILES.count == 0


@pytest.mark.usefixtures("small_large_files")
def test_large_files_hash_inline_while_every_core_has_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _CountThreads(monkeypatch, cores=2)
    src, data = _master(tmp_path, 300 * 1024)
    dst = tmp_path / "copy.wav"
    with fixity._LARGE_FILES.hashing():  # another large file keeps the other core busy
        result = copy_and_hash(src, dst, ("sha256", "sha512", "xxh3-128"))
        assert fixity._LARGE_FILES.count == 1
    assert counter.started == 0
    assert result.digests == expected(data, ("sha256", "sha512", "xxh3-128"))
    assert dst.read_bytes() == data


@pytest.mark.usefixtures("small_large_files")
def test_the_last_large_file_moves_onto_threads_when_the_others_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = _CountThreads(monkeypatch, cores=2)
    path, data = _master(tmp_path, 400 * 1024)
    other = fixity._LARGE_FILES.hashing()
    other.__enter__()
    chunks = 0

    def progress(nbytes: int, nfiles: int) -> None:
        nonlocal chunks
        chunks += nbytes > 0
        if chunks == 5:  # the other file ends part-way through this one
            other.__exit__(None, None, None)

    assert hash_file(path, ("sha256", "sha512"), progress=progress) == expected(data, ("sha256", "sha512"))
    assert counter.started == 2
    assert fixity._LARGE_FILES.count == 0


@pytest.mark.usefixtures("small_large_files")
def test_one_core_never_starts_hash_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _CountThreads(monkeypatch, cores=1)
    path, data = _master(tmp_path, 200 * 1024)
    assert hash_file(path, ("sha256", "sha512")) == expected(data, ("sha256", "sha512"))
    assert counter.started == 0

"""The fixity engine: every digest from one read, copy-and-hash in one pass, parallel scheduling.

Why it is written here rather than taken from a library: bagit-python hashes file by file with
one algorithm after another inside a process pool, and reads its own manifests again at the end;
``hashlib.file_digest`` does one algorithm per read. Neither copies while hashing nor spreads the
algorithms of one large file over cores, which is what a 2-core machine needs to keep both busy.

hashlib (OpenSSL) and xxhash release the GIL on large buffers, so plain threads scale here:
- a large file gets one thread per expensive algorithm, fed chunks by the reading thread, while
  a core would otherwise be idle (one file alone, the last file of a run); while every core has a
  large file of its own, each hashes its chunks inline instead (:class:`_LargeFiles`). The chunks
  are read into a few reusable buffers, each reused once every hash thread is done with it
  (fresh buffers per chunk made the kernel zero-fill new pages all the time);
- many small files are spread over a thread pool (:func:`ordered_map`), each hashed inline, in
  batches once they turn out to be cheap (a pool task has a cost of its own).

``benchmarks/bench_bag.py`` measures all of this against bagit-python and the hashing floor.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import queue
import signal
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import xxhash

from preserve.algorithms import ALGORITHMS as ALGORITHMS
from preserve.errors import WorkerDied
from preserve.safefs import LinkRefused, open_beneath, open_regular_beneath

# the direct constructors: hashlib.new() looks the name up on every call, once per small file
_CONSTRUCTORS: dict[str, Callable[[], Any]] = {
    "md5": hashlib.md5, "sha1": hashlib.sha1, "sha224": hashlib.sha224, "sha256": hashlib.sha256,
    "sha384": hashlib.sha384, "sha512": hashlib.sha512, "blake2b": hashlib.blake2b,
}

#: Relative cost per byte (measured, rounded): cheapest first is what the fast tier wants.
COST: dict[str, float] = {
    "xxh3-128": 0.05, "sha1": 0.6, "sha256": 0.9, "sha224": 0.9, "md5": 1.2,
    "blake2b": 1.1, "sha512": 1.4, "sha384": 1.4,
}

#: Read size. 1 MiB is large enough that a thread hand-off per chunk costs nothing and small
#: enough that a chunk stays in a core's L2 cache between the write and the hashes that follow.
CHUNK = 1024 * 1024
SMALL_CHUNK = 1024 * 1024
#: Reusable read buffers per large file: chunks the hash threads may lag behind the reader.
RING = 8
#: From this size on, a file's algorithms may be hashed on threads of their own (when a core is
#: spare: see :class:`_LargeFiles`).
THREADED_FROM = 64 * 1024 * 1024
#: A large file looks again every this many chunks whether a core is spare.
BALANCE_EVERY = 8

#: Called with (bytes done, files done) increments; must be thread-safe.
Progress = Callable[[int, int], None]


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hash object for a BagIt algorithm name."""
    if algorithm == "xxh3-128":
        return xxhash.xxh3_128()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
    return hashlib.new(algorithm)


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Normalise and validate algorithm names (lower case, no duplicates, order kept)."""
    seen: list[str] = []
    for name in algorithms:
        name = name.strip().lower().replace("_", "-")
        if name == "xxh3" or name == "xxh128":
            name = "xxh3-128"
        if name not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {name!r}; choose from {', '.join(ALGORITHMS)}")
        if name not in seen:
            seen.append(name)
    if not seen:
        raise ValueError("at least one algorithm is needed")
    return tuple(seen)


class RateLimiter:
    """A token bucket shared by every reader of one run: caps bytes per second."""

    def __init__(self, bytes_per_second: float) -> None:
        if bytes_per_second <= 0:
            raise ValueError("the rate must be positive")
        self.rate = float(bytes_per_second)
        self._lock = threading.Lock()
        self._allowance = self.rate
        self._last = time.monotonic()

    def consume(self, n: int) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._allowance = min(self.rate, self._allowance + (now - self._last) * self.rate)
                self._last = now
                if self._allowance >= n or self._allowance >= self.rate:
                    self._allowance -= n
                    return
                wait = (n - self._allowance) / self.rate
            time.sleep(min(wait, 1.0))


class _Lease:
    """A shared read buffer handed to several hash threads; it is reused once every one is done."""

    __slots__ = ("_buffer", "_free", "_left", "_lock")

    def __init__(self, buffer: bytearray, free: queue.SimpleQueue[bytearray], users: int) -> None:
        self._buffer = buffer
        self._free = free
        self._left = users
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._free.put(self._buffer)


class _Ring:
    """A few reusable read buffers. Reading into them (``readinto``) instead of allocating a fresh
    bytes object per chunk saves the kernel from zero-filling new pages for every chunk, which
    cost as much system time as the copy itself."""

    def __init__(self, count: int, size: int) -> None:
        self.free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(count):
            self.free.put(bytearray(size))

    def get(self) -> bytearray:
        return self.free.get()


def _readinto(fd: int, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``fd`` as far as the file goes; returns the bytes read (0 at EOF)."""
    view = memoryview(buffer)
    got = 0
    size = len(buffer)
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            break
        got += n
    return got


class _HashThread:
    """One algorithm on a thread of its own, fed chunks through a small bounded queue. It takes
    over a hasher that may already hold part of the file (see :meth:`MultiHasher.balance`)."""

    _STOP: Any = object()

    def __init__(self, algorithm: str, hasher: Hasher) -> None:
        self.algorithm = algorithm
        self.hasher = hasher
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=RING)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"hash-{algorithm}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        update = self.hasher.update
        while True:
            item = self.queue.get()
            if item is self._STOP:
                return
            chunk, lease = item
            if self.error is None:
                try:
                    update(chunk)
                except BaseException as exc:  # reported by stop()
                    self.error = exc
            del chunk, item
            if lease is not None:
                lease.release()

    def stop(self) -> None:
        """Hash what is queued, then end the thread; raises what the hasher raised."""
        self.queue.put(self._STOP)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _LargeFiles:
    """How many large files this process hashes right now, each on its own reading thread.

    While there are at least as many as cores, every core already has a file to hash, and a file
    does best hashing its chunks on its own thread, one algorithm after the other, while the chunk
    is still in that core's cache. Handing each algorithm to a thread of its own costs thread
    switches and cache misses (measured on 2 GiB of masters on 2 cores, eight interleaved rounds
    of the engine alone: 3.51 s against 3.29 s to copy, 3.12 s against 2.62 s to hash); it pays
    only for a core that would otherwise wait: one file alone, or the last file of a run.
    """

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hashing(self) -> Iterator[None]:
        with self._lock:
            self.count += 1
        try:
            yield
        finally:
            with self._lock:
                self.count -= 1


_LARGE_FILES = _LargeFiles()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class MultiHasher:
    """Computes several digests over one stream of chunks.

    With ``threaded=True`` every algorithm but xxh3 (which is ~20x cheaper than the rest) runs on
    a thread of its own, so the caller's thread only reads (and writes, when copying). With
    ``adaptive=True`` it starts inline and :meth:`balance` moves the algorithms onto threads and
    back as cores fall idle or get busy; the digests are the same either way, since each hasher
    object carries its state from one mode to the other and chunks reach it in order.
    """

    def __init__(self, algorithms: Sequence[str], *, threaded: bool = False, adaptive: bool = False) -> None:
        self.algorithms = tuple(algorithms)
        self._hashers: dict[str, Hasher] = {name: new_hasher(name) for name in self.algorithms}
        self._inline: list[tuple[str, Hasher]] = list(self._hashers.items())
        self._threads: list[_HashThread] = []
        self._closed = False
        self.adaptive = adaptive and len(self.algorithms) > 1
        if threaded:
            self._start_threads()

    def _threadable(self) -> list[str]:
        return [name for name in self.algorithms if name != "xxh3-128"]

    def _start_threads(self) -> None:
        names = self._threadable()
        self._threads = [_HashThread(name, self._hashers[name]) for name in names]
        self._inline = [(name, h) for name, h in self._hashers.items() if name not in names]

    def _stop_threads(self) -> None:
        threads, self._threads = self._threads, []
        self._inline = list(self._hashers.items())
        error: BaseException | None = None
        for t in threads:
            try:
                t.stop()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error

    @property
    def threaded(self) -> bool:
        return bool(self._threads)

    def balance(self, spare_cores: bool) -> None:
        """Hash on threads while cores are spare, inline otherwise (``adaptive`` hashers only)."""
        if not self.adaptive or spare_cores == bool(self._threads):
            return
        if spare_cores:
            self._start_threads()
        else:
            self._stop_threads()  # the queued chunks are hashed first, so the order holds

    def inline_updates(self) -> list[Callable[[bytes | memoryview], None]]:
        """The ``update`` methods of the hashers that run on the caller's thread."""
        return [h.update for _, h in self._inline]

    def update(self, data: bytes) -> None:
        for t in self._threads:
            t.queue.put((data, None))
        for _, h in self._inline:
            h.update(data)

    def update_from(self, buffer: bytearray, size: int, free: queue.SimpleQueue[bytearray]) -> None:
        """Hash ``buffer[:size]``, then hand ``buffer`` back to ``free`` once every thread is done
        with it: the caller must not write into it until it comes back out of ``free``."""
        view = memoryview(buffer)[:size]
        if self._threads:
            lease = _Lease(buffer, free, len(self._threads))
            for t in self._threads:
                t.queue.put((view, lease))
        for _, h in self._inline:
            h.update(view)
        if not self._threads:
            free.put(buffer)

    def hexdigests(self) -> dict[str, str]:
        try:
            self._stop_threads()
        finally:
            self._closed = True
        return {name: self._hashers[name].hexdigest() for name in self.algorithms}

    def abandon(self) -> None:
        """Stop helper threads after an error (idempotent)."""
        if not self._closed:
            self._closed = True
            for t in self._threads:
                t.error = t.error or RuntimeError("abandoned")
                t.queue.put(_HashThread._STOP)
            for t in self._threads:
                t.thread.join()


def drop_cache(fd: int) -> None:
    """Evict a file's clean pages from the page cache, so the next read comes from the device."""
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


def _advise_sequential(fd: int) -> None:
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass


def _pump(
    fd: int, size: int, hasher: MultiHasher, *, write_fd: int | None = None,
    limiter: RateLimiter | None = None, progress: Progress | None = None,
) -> int:
    """Read ``fd`` to its end into reusable buffers, hash every chunk (and write it to
    ``write_fd``); returns the bytes read. ``size`` (from fstat) only sizes the buffers."""
    total = 0
    if not hasher.threaded and not hasher.adaptive:
        # every digest is taken on this thread, so one buffer suffices; a small file gets one of
        # its own size (+1, so that a second read, at EOF, is the only other system call)
        buf = bytearray(CHUNK if size >= CHUNK else size + 1)
        whole = memoryview(buf)
        updates = hasher.inline_updates()
        while True:
            n = os.readv(fd, (buf,))
            if n == 0:
                return total
            if limiter is not None:
                limiter.consume(n)
            view = whole[:n] if n < len(buf) else whole
            for update in updates:
                update(view)
            if write_fd is not None:
                while view:
                    view = view[os.write(write_fd, view):]
            total += n
            if progress is not None:
                progress(n, 0)
    # Hashing inline, one buffer is read, hashed and written over and over, so it stays in the
    # core's L2 cache; cycling through the ring would miss the cache on every chunk (measured:
    # ~7% more time for 2 GiB of masters). The ring is made only if the hash threads run.
    ring: queue.SimpleQueue[bytearray] | None = None
    own = bytearray(CHUNK)
    cores = usable_cores()
    chunks = 0
    while True:
        if chunks % BALANCE_EVERY == 0:
            hasher.balance(_LARGE_FILES.count < cores)
        chunks += 1
        if hasher.threaded:
            if ring is None:
                ring = _Ring(RING, CHUNK).free
            # this thread is the only one taking buffers out of the ring: a buffer it holds is its own
            buf = ring.get()
        else:
            buf = own
        n = _readinto(fd, buf)
        if n == 0:
            if buf is not own:
                assert ring is not None
                ring.put(buf)
            return total
        if limiter is not None:
            limiter.consume(n)  # after the read, so a small file is charged its size, not a buffer's
        if buf is own:
            view = memoryview(buf)[:n]
            for update in hasher.inline_updates():
                update(view)
            del view
        else:
            assert ring is not None
            hasher.update_from(buf, n, ring)
        if write_fd is not None:
            # the hash threads only read the buffer, and it cannot be refilled before this returns
            view = memoryview(buf)[:n]
            while view:
                view = view[os.write(write_fd, view):]
        total += n
        if progress is not None:
            progress(n, 0)


def _open_regular(path: str | os.PathLike[str]) -> tuple[int, int]:
    """A read-only descriptor of ``path`` and its size. ``path`` must be a regular file: a symbolic
    link is not followed (it may point out of the bag) and a pipe or device is never read (a pipe
    would block for ever). Anything else raises OSError naming the path and what it is."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "is a symbolic link; it was not followed", os.fspath(path)) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "is not a regular file (a pipe, device or socket)", os.fspath(path))
    return fd, st.st_size


def _hasher_for(algorithms: Sequence[str], size: int, threaded: bool | None) -> MultiHasher:
    """``threaded=None``: a large file with several algorithms gets an adaptive hasher."""
    if threaded is None:
        return MultiHasher(algorithms, adaptive=size >= THREADED_FROM)
    return MultiHasher(algorithms, threaded=threaded)


def hash_file(
    path: str | os.PathLike[str],
    algorithms: Sequence[str],
    *,
    threaded: bool | None = None,
    progress: Progress | None = None,
    drop_cached: bool = False,
    limiter: RateLimiter | None = None,
    root: str | os.PathLike[str] | FilesBelow | None = None,
) -> dict[str, str]:
    """Every requested digest of one file, from one read. Returns ``{algorithm: hexdigest}``.

    With ``root``, ``path`` is relative to it and no link is followed at any level below ``root``
    (:func:`preserve.safefs.open_regular_beneath`; a link raises :class:`~preserve.safefs.LinkRefused`,
    an OSError); a :class:`FilesBelow` as ``root`` does the same, reusing the last folder it
    opened. Without it only the last component is opened without following a link.

    ``threaded=None`` decides by size (:data:`THREADED_FROM`) and, for a large file, by whether a
    core is spare, as it goes (:class:`_LargeFiles`). ``drop_cached`` evicts the file's
    pages first so the bytes come from the storage device rather than memory.
    """
    if root is None:
        fd, size = _open_regular(path)
    elif isinstance(root, FilesBelow):
        fd, size = root.open_regular(os.fspath(path))
    else:
        fd, size = open_regular_beneath(root, os.fspath(path))
    return _hash_open(fd, size, algorithms, threaded=threaded, progress=progress, drop_cached=drop_cached,
                      limiter=limiter)


def _hash_open(fd: int, size: int, algorithms: Sequence[str], *, threaded: bool | None = None,
               progress: Progress | None = None, drop_cached: bool = False,
               limiter: RateLimiter | None = None) -> dict[str, str]:
    """:func:`hash_file` on a descriptor of a regular file of ``size`` bytes, which it closes."""
    with open(fd, "rb", buffering=0):
        if drop_cached:
            drop_cache(fd)
        _advise_sequential(fd)
        hasher = _hasher_for(algorithms, size, threaded)
        try:
            with _LARGE_FILES.hashing() if hasher.adaptive else contextlib.nullcontext():
                _pump(fd, size, hasher, limiter=limiter, progress=progress)
        except BaseException:
            hasher.abandon()
            raise
        digests = hasher.hexdigests()
        if drop_cached:
            drop_cache(fd)
    if progress is not None:
        progress(0, 1)
    return digests


def hash_stream(
    chunks: Iterable[bytes], algorithms: Sequence[str], *, threaded: bool = False
) -> tuple[dict[str, str], int]:
    """Digests and length of a stream of byte chunks (an S3 body, an archive member)."""
    hasher = MultiHasher(algorithms, threaded=threaded)
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            hasher.update(chunk)
    except BaseException:
        hasher.abandon()
        raise
    return hasher.hexdigests(), size


@dataclass(frozen=True)
class CopyResult:
    """What one copy-and-hash saw: the digests of the bytes read, and the source's identity."""

    size: int
    digests: dict[str, str]
    mtime_ns: int
    changed: str | None = None  # why the source looks changed while copying, or None


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_size, st.st_mtime_ns)


def copy_and_hash(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    algorithms: Sequence[str],
    *,
    threaded: bool | None = None,
    progress: Progress | None = None,
    fsync: bool = False,
    follow_links: bool = False,
) -> CopyResult:
    """Copy ``src`` to a new file ``dst`` and hash the bytes as they pass: the source is read once.

    The destination must not exist (``O_EXCL``). The source's size and mtime are compared before
    and after; a difference is reported in ``CopyResult.changed`` (the caller decides).
    """
    src, dst = os.fspath(src), os.fspath(dst)  # once, not on every system call below
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    before = os.stat(src, follow_symlinks=follow_links)
    sfd = os.open(src, flags)
    try:
        size = os.fstat(sfd).st_size
        _advise_sequential(sfd)
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        hasher = _hasher_for(algorithms, size, threaded)
        try:
            with _LARGE_FILES.hashing() if hasher.adaptive else contextlib.nullcontext():
                copied = _pump(sfd, size, hasher, write_fd=dfd, progress=progress)
            if fsync:
                os.fsync(dfd)
        except BaseException:
            hasher.abandon()
            raise
        finally:
            os.close(dfd)
        digests = hasher.hexdigests()
        after_fd = os.fstat(sfd)
    finally:
        os.close(sfd)
    after_path = os.stat(src, follow_symlinks=follow_links)
    changed = None
    if _identity(before) != _identity(after_fd) or _identity(before) != _identity(after_path):
        changed = (
            f"size/mtime before {before.st_size}/{before.st_mtime_ns}, "
            f"after {after_path.st_size}/{after_path.st_mtime_ns}"
        )
    elif copied != before.st_size:
        changed = f"expected {before.st_size} bytes, read {copied}"
    try:
        os.utime(dst, ns=(before.st_atime_ns, before.st_mtime_ns))
    except OSError:
        pass
    if progress is not None:
        progress(0, 1)
    return CopyResult(size=copied, digests=digests, mtime_ns=before.st_mtime_ns, changed=changed)


T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


#: ordered_map batches items whose calls take less than this (seconds) on average...
_BATCH_BELOW = 0.0005
#: ...up to this many items to one task.
_BATCH_MAX = 64


def _run_batch(fn: Callable[[T], R], batch: list[T]) -> tuple[list[R], BaseException | None, float]:
    """Call ``fn`` on each item in turn; stop at the first error and hand it back with the results
    before it (so the caller can yield those first, as a plain ``map`` would)."""
    out: list[R] = []
    start = time.perf_counter()
    try:
        for item in batch:
            out.append(fn(item))
    except BaseException as exc:  # re-raised in the caller's thread, in order
        return out, exc, 0.0
    return out, None, (time.perf_counter() - start) / len(batch)


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None, window: int | None = None
) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, results in input order, at most ``window`` tasks in flight.

    The window bounds memory: a million items never become a million futures at once. Items that
    turn out to be cheap (many small files) are handed out in batches of up to 64, since a pool
    task costs some 10-20 microseconds of CPU and thread wake-ups of its own; every item starts as
    a task of its own, so a few expensive items (large files) still run side by side.
    """
    workers = workers or default_workers()
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    window = window or workers * 8
    pending: deque[Future[tuple[list[R], BaseException | None, float]]] = deque()
    source = iter(items)
    size = 1

    def collect() -> Iterator[R]:
        nonlocal size
        results, error, per_item = pending.popleft().result()
        yield from results
        if error is not None:
            raise error
        size = min(_BATCH_MAX, size * 2) if per_item < _BATCH_BELOW else 1

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preserve") as pool:
        try:
            while True:
                batch = list(itertools.islice(source, size))
                if not batch:
                    break
                pending.append(pool.submit(_run_batch, fn, batch))
                if len(pending) >= window:
                    yield from collect()
            while pending:
                yield from collect()
        finally:
            for fut in pending:
                fut.cancel()


@dataclass
class Tally:
    """Thread-safe running totals behind a :data:`Progress` callback."""

    bytes: int = 0
    files: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, nbytes: int, nfiles: int) -> None:
        with self._lock:
            self.bytes += nbytes
            self.files += nfiles


def syncfs(path: str | os.PathLike[str]) -> bool:
    """Flush the whole file system holding ``path`` (Linux ``syncfs``). False where unavailable."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
        return True
    finally:
        os.close(fd)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_verify(path: str | os.PathLike[str] | Path, expected_xxh3: str, *,
                root: str | os.PathLike[str] | None = None, progress: Progress | None = None) -> str | None:
    """Re-read a written file from the device (page cache dropped) and compare its xxh3-128.

    Returns the digest found when it differs, None when it matches. The file must already be
    durable: dirty pages cannot be dropped. With ``root``, ``path`` is relative to it and no link
    is followed below it (as :func:`hash_file`). ``progress`` is told of the bytes as they are read.
    """
    found = hash_file(path, ("xxh3-128",), drop_cached=True, root=root, progress=progress)["xxh3-128"]
    return None if found == expected_xxh3 else found


# -- many small files: processes ------------------------------------------------------------------
#
# A small file costs ~50-70 microseconds of Python per file (open, stat, read, hash calls, close)
# and that part holds the GIL, so threads cannot use a second core for 20,000 small files.
# Batches of small files go to a process pool; large files stay in this process, where hashlib
# already spreads their algorithms over threads.

#: Below this many files (or above this average size) processes are not worth their start-up.
PROCESSES_FROM_FILES = 2000
PROCESSES_BELOW_AVERAGE = 1024 * 1024


def processes_for(files: int, total_bytes: int) -> int:
    """How many worker processes suit a job of ``files`` files and ``total_bytes`` bytes (0: none)."""
    cores = os.cpu_count() or 1
    if cores < 2 or files < PROCESSES_FROM_FILES or total_bytes / max(files, 1) >= PROCESSES_BELOW_AVERAGE:
        return 0
    return min(cores, 8)


def _process_context() -> Any:
    import multiprocessing

    # forkserver: workers start from a clean process, never from a fork of one holding locks in
    # other threads (progress bars, hash threads, a test's servers)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["preserve.fixity", "preserve.bag.writer"])
    return ctx


_HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held(*, ignored_by_children: bool = False) -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the length of the block, then deliver the first one caught.

    They are blocked in this thread (a process started here inherits that, and keeps them
    blocked) and, from the main thread, caught by a handler that only notes them (another thread
    may be the one the kernel picks). Starting a worker must not be cut half-way: a worker
    started but not registered with its pool would never be stopped.

    ``ignored_by_children``: a program started (fork and exec) in the block begins with both
    signals ignored instead. A new Python interpreter only starts ignoring them once its own code
    has run, and until then one of them prints a traceback (KeyboardInterrupt in an import) from
    a process the user never started. The main thread then ignores them meanwhile instead of
    noting them: blocked here, one aimed at this process stays pending and is delivered when the
    block ends; only one that the kernel hands to another thread, in these few milliseconds, is lost.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        action: Any = signal.SIG_IGN if ignored_by_children else hold
        previous = {sig: signal.signal(sig, action) for sig in _HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # one still pending is delivered now
        if caught:
            signal.raise_signal(caught[0])


def start_processes() -> None:
    """Start the worker-process server now, in the background, so that its start-up (~0.1 s)
    overlaps other work such as walking the source; harmless when no pool is used after all."""
    if (os.cpu_count() or 1) < 2:
        return
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    _process_context()
    # The server's start begins by starting multiprocessing's resource tracker (which ignores both
    # signals itself), and that unblocks SIGINT and SIGTERM in this thread when done: started
    # first, alone, while a signal is only noted, so that none is lost below.
    with _signals_held():
        multiprocessing.resource_tracker.ensure_running()
    # A terminal's Ctrl-C reaches the whole process group, and systemd stops a service by sending
    # SIGTERM to every process in it. The server is a new interpreter that imports its preloaded
    # modules before it ignores SIGINT, and never ignores SIGTERM: it starts with both ignored
    # (as does every worker it forks), so that a signal during its start-up prints no traceback
    # from a process the user never started, only this process decides how to stop, and no worker
    # dies half-way through a batch. The server still exits when this process does.
    with _signals_held(ignored_by_children=True):
        multiprocessing.forkserver.ensure_running()


def _worker_main(conn: Any) -> None:
    """A worker: run each ``(fn, batch)`` received on ``conn`` and send back ``(ok, value)``.

    It ignores Ctrl-C and SIGTERM (the parent alone decides how to stop), and dies with the server
    that forked it, which itself exits when the parent does, so that no orphan writes on. It ends
    when the parent closes its end of the connection.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    while True:
        try:
            fn, batch = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[bool, Any] = (True, fn(batch))
        except BaseException as exc:  # sent back and raised in the parent
            reply = (False, exc)
        try:
            conn.send(reply)
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception:  # an exception that cannot be pickled: send its text instead
            import traceback

            conn.send((False, RuntimeError("".join(traceback.format_exception(reply[1])))))


class _Sender:
    """Sends one worker its batches from a thread of its own, so that this process never waits
    for a worker to read: the worker may itself be waiting for this process to read its answer."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="worker-sender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (message := self.queue.get()) is not None:
            try:
                self.conn.send(message)
            except OSError:
                return  # the worker is gone: its connection's end tells the pool

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join()


class _Worker:
    __slots__ = ("conn", "proc", "sender")

    def __init__(self, proc: Any, conn: Any) -> None:
        self.proc, self.conn = proc, conn
        self.sender = _Sender(conn)

    def end(self, kill: bool) -> None:
        """Stop the worker: killed at once, or let go (it exits when its connection closes)."""
        if kill:
            self.proc.kill()  # also ends a send the sender is blocked in
        self.sender.stop()
        self.conn.close()
        self.proc.join()


def _end_all(workers: list[_Worker]) -> None:
    """Kill and reap every worker, with SIGINT and SIGTERM held: a signal part-way through must
    not leave one running (it is delivered once all are gone)."""
    with _signals_held():
        for worker in workers:
            worker.end(kill=True)


class WorkerPool:
    """Worker processes for batches of small files, for the length of a ``with`` block.

    ``WorkerPool(0)`` is an empty pool that runs nothing (callers use threads instead).

    Each worker has a connection of its own to this process, so a worker that dies, even half-way
    through sending a result, is seen at once as the end of its connection and raised as
    :class:`WorkerDied`; a shared result queue would wait for the rest of the message for ever
    (the reason this is not :class:`concurrent.futures.ProcessPoolExecutor`). Leaving the block
    normally lets idle workers exit; leaving it by an exception (Ctrl-C included) kills them. In
    both cases they have ended before the block is left, so nothing is still writing when the
    caller removes its work.
    """

    #: Batches in flight per worker, so that a worker never waits for its next batch. Batches go
    #: out through a sender thread per worker, and answers are read here: neither side can block
    #: the other, however large batches and answers are.
    AHEAD = 2

    def __init__(self, processes: int) -> None:
        self.processes = max(0, processes)
        self._workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        if self.processes:
            start_processes()
            ctx = _process_context()
            try:
                for _ in range(self.processes):
                    with _signals_held():
                        ours, theirs = ctx.Pipe(duplex=True)
                        proc = ctx.Process(target=_worker_main, args=(theirs,), daemon=True)
                        try:
                            proc.start()
                        finally:
                            theirs.close()
                        self._workers.append(_Worker(proc, ours))
            except BaseException:
                self._stop(kill=True)
                raise
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop(kill=exc_type is not None)

    def _stop(self, kill: bool) -> None:
        workers, self._workers = self._workers, []
        if not kill:
            try:
                for worker in workers:
                    worker.end(kill=False)
                return
            except BaseException:
                # A signal (or an error) while waiting for the workers to exit: the rest would
                # never be ended, and at exit multiprocessing waits for them for ever (it stops
                # them with SIGTERM, which they ignore): kill every one before going on.
                _end_all(workers)
                raise
        _end_all(workers)

    def _died(self, n: int) -> WorkerDied:
        proc = self._workers[n].proc
        proc.join(5)
        code = proc.exitcode
        how = ("still running, but its connection broke" if code is None
               else f"killed by signal {-code}" if code < 0 else f"exit status {code}")
        return WorkerDied(pid=proc.pid, how=how)

    def map_batched(
        self,
        fn_batch: Callable[[list[T]], list[R]],
        items: Iterable[T],
        *,
        size: Callable[[T], int],
        max_files: int = 256,
        max_bytes: int = 16 * 1024 * 1024,
        big: int = THREADED_FROM,
    ) -> Iterator[R]:
        """Results of ``fn_batch`` over ``items`` in input order, small items batched onto the workers.

        ``fn_batch`` must be picklable (a module-level function or a ``functools.partial`` of one).
        Items of ``big`` bytes or more run here, one at a time, between the batches; at most
        :attr:`AHEAD` batches per worker are in flight, so memory stays bounded however many
        items there are. An exception raised by ``fn_batch`` in a worker is raised here.
        """
        if not self._workers:
            raise RuntimeError("WorkerPool.map_batched needs an open pool of one process or more")
        workers = self._workers
        inflight: list[deque[int]] = [deque() for _ in workers]
        try:
            yield from self._map(fn_batch, _batches(items, size, max_files, max_bytes, big), inflight)
        finally:
            # left early (closed, or an error): a batch still in flight would answer the next
            # map with this one's results, so its worker is stopped and leaves the pool
            busy = {n for n in range(len(workers)) if inflight[n]}
            if busy:
                self._stop_some(busy)

    def _stop_some(self, indices: set[int]) -> None:
        _end_all([self._workers[n] for n in indices])
        self._workers = [w for n, w in enumerate(self._workers) if n not in indices]

    def _map(self, fn_batch: Callable[[list[T]], list[R]], units_in: Iterator[tuple[bool, list[T]]],
             inflight: list[deque[int]]) -> Iterator[R]:
        from multiprocessing.connection import wait

        workers = self._workers
        window = 4 * len(workers)  # batches between the oldest not yet yielded and the newest
        done: dict[int, list[R]] = {}
        units = iter(units_in)
        waiting: tuple[int, list[T]] | None = None  # a batch no worker has room for yet
        seq = out = 0
        exhausted = False
        while True:
            # hand out work while there is room, running large items here in their turn
            while not exhausted or waiting is not None:
                if waiting is None:
                    if seq - out >= window:
                        break  # a slow batch holds the line: memory stays bounded meanwhile
                    unit = next(units, None)
                    if unit is None:
                        exhausted = True
                        break
                    here, batch = unit
                    if here:
                        done[seq] = fn_batch(batch)
                        seq += 1
                        continue
                    waiting = (seq, batch)
                    seq += 1
                w = min(range(len(workers)), key=lambda n: len(inflight[n]))
                if len(inflight[w]) >= self.AHEAD:
                    break
                workers[w].sender.queue.put((fn_batch, waiting[1]))  # a dead worker shows below
                inflight[w].append(waiting[0])
                waiting = None
            while out in done:
                yield from done.pop(out)
                out += 1
            if exhausted and waiting is None and out == seq:
                return
            busy = [n for n in range(len(workers)) if inflight[n]]
            if not busy:
                continue
            conns = {workers[n].conn: n for n in busy}
            sentinels = {workers[n].proc.sentinel: n for n in busy}
            for ready in wait([*conns, *sentinels]):
                n = conns[ready] if ready in conns else sentinels[ready]
                if not inflight[n]:
                    continue  # answered through its connection in this same round
                try:
                    ok, value = workers[n].conn.recv()
                except (EOFError, OSError):
                    raise self._died(n) from None
                if not ok:
                    inflight[n].popleft()  # it answered: it is free again
                    raise value
                done[inflight[n].popleft()] = value

def _batches(items: Iterable[T], size: Callable[[T], int], max_files: int, max_bytes: int,
             big: int) -> Iterator[tuple[bool, list[T]]]:
    """``(here, batch)`` in order: small items grouped into batches for workers (``here`` False),
    each item of ``big`` bytes or more alone, to run in this process (``here`` True)."""
    batch: list[T] = []
    nbytes = 0
    for item in items:
        n = size(item)
        if n >= big:
            if batch:
                yield False, batch
                batch, nbytes = [], 0
            yield True, [item]
            continue
        batch.append(item)
        nbytes += n
        if len(batch) >= max_files or nbytes >= max_bytes:
            yield False, batch
            batch, nbytes = [], 0
    if batch:
        yield False, batch


class FilesBelow:
    """Opens files below ``root`` with no link followed, keeping the descriptor of the last folder;
    pass one as :func:`hash_file`'s ``root`` (one per thread), and close it when done.

    Files hashed in path order share folders: walking every folder of every path again
    (:func:`~preserve.safefs.open_regular_beneath`) would cost some 45 microseconds per file four
    levels down, as much as hashing a small file. Each folder is still reached one component at a
    time with no link followed, and each file is opened relative to it with ``O_NOFOLLOW``.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.folder: str | None = None
        self.fd = -1

    def open_regular(self, rel: str) -> tuple[int, int]:
        folder, _, name = rel.rpartition("/")
        if not folder:
            return open_regular_beneath(self.root, rel)
        if folder != self.folder:
            self.close()
            self.fd = open_beneath(self.root, folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            self.folder = folder
        path = os.path.join(self.root, rel)
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(name, flags, dir_fd=self.fd)
        except OSError as exc:
            try:
                is_link = stat.S_ISLNK(os.lstat(name, dir_fd=self.fd).st_mode)
            except OSError:
                is_link = False
            if is_link:
                raise LinkRefused(path) from None
            raise type(exc)(exc.errno, exc.strerror, path) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "is not a regular file (a pipe, device or socket)", path)
        return fd, st.st_size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.folder = -1, None


def hash_batch(jobs: list[tuple[str, tuple[str, ...], bool, int]], root: str | None = None,
               ) -> list[dict[str, str] | tuple[str, str]]:
    """For a process pool: digests of each (path, algorithms, drop_cached, size) job, or
    (kind, detail) where the file cannot be read: ("missing", message), ("unreadable", message),
    or ("link", the link's path relative to ``root``) when ``root`` is given, the paths are
    relative to it, and a component of one is a symbolic link (never followed, see
    :func:`hash_file`). ``functools.partial(hash_batch, root=...)`` pickles for a worker."""
    out: list[dict[str, str] | tuple[str, str]] = []
    folders = FilesBelow(root) if root is not None else None
    try:
        for path, algs, drop, _size in jobs:
            try:
                out.append(hash_file(path, algs, drop_cached=drop, root=folders))
            except LinkRefused as exc:
                out.append(("link", os.path.relpath(str(exc.filename), root) if root is not None else str(exc.filename)))
            except FileNotFoundError:
                out.append(("missing", "disappeared while being read"))
            except PermissionError as exc:
                out.append(("unreadable", f"cannot be read ({exc.strerror})"))
            except OSError as exc:
                out.append(("unreadable", f"read error ({exc.strerror or exc})"))
    finally:
        if folders is not None:
            folders.close()
    return out

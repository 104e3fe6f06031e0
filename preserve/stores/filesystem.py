"""A directory on another disk as a replica store.

Objects are plain files under the root, at their keys. Each file is written to a hidden temporary
name beside its final place, hashed as it is written, compared with the bag's manifest, made
durable (fsync) and only then renamed into place: a file at its final name is always complete.
A file system keeps no checksum of its own, so a metadata audit of this store checks presence and
size; the full tier re-reads and re-hashes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from preserve.bag.paths import unsafe_reason
from preserve.errors import BagInvalid, StorageError, UnsafePath
from preserve.fixity import fsync_path
from preserve.stores.base import ObjectInfo, PutOptions, PutResult, Store

_CHUNK = 1024 * 1024
#: Temporary files of unfinished writes carry this marker; only these are ever deleted.
TEMP_MARK = ".preserve-upload-"


class FilesystemStore(Store):
    """A directory tree; ``url`` is its absolute path."""

    kind = "filesystem"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = os.fspath(root)
        if text.startswith("file://"):
            text = text[len("file://"):]
        self.root = Path(os.path.abspath(text))
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        reason = unsafe_reason(key)
        if reason:
            raise UnsafePath(path=key, reason=reason)
        return self.root / key

    def where(self, key: str) -> str:
        """The path of one object, for messages."""
        return str(self.root / key)

    def _write(self, key: str, chunks: Iterator[bytes], options: PutOptions) -> tuple[Path, int, str]:
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _storage(exc, final.parent) from exc
        temp = final.parent / f".{final.name}{TEMP_MARK}{secrets.token_hex(4)}"
        digest = hashlib.sha256()
        size = 0
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                for chunk in chunks:
                    if options.limiter is not None:
                        options.limiter.consume(len(chunk))
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                    digest.update(chunk)
                    size += len(chunk)
                    if options.progress is not None:
                        options.progress(len(chunk))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise _storage(exc, final) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return temp, size, digest.hexdigest()

    def _commit(self, temp: Path, key: str) -> None:
        final = self._path(key)
        try:
            os.replace(temp, final)
            fsync_path(final.parent)
        except OSError as exc:
            raise _storage(exc, final) from exc

    def put_file(self, key: str, source: Path, sha256_hex: str, size: int, options: PutOptions,
                 *, archive: bool = True) -> PutResult:
        with open(source, "rb") as f:
            temp, written, found = self._write(key, iter(lambda: f.read(_CHUNK), b""), options)
        if found != sha256_hex or written != size:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise BagInvalid(f"{source}: does not match manifest-sha256.txt (expected {sha256_hex}, found {found}, "
                             f"{written} of {size} bytes); validate the bag before replicating (it was not copied)")
        self._commit(temp, key)
        return PutResult(key=key, size=size, sent=size)

    def put_bytes(self, key: str, data: bytes, options: PutOptions) -> PutResult:
        temp, _, _ = self._write(key, iter([data]), options)
        self._commit(temp, key)
        return PutResult(key=key, size=len(data), sent=len(data))

    def put_stream(self, key: str, chunks: Iterator[bytes], options: PutOptions,
                   *, expected_size: int | None = None) -> tuple[PutResult, str]:
        temp, size, sha = self._write(key, chunks, options)
        self._commit(temp, key)
        return PutResult(key=key, size=size, sent=size), sha

    def head(self, key: str) -> ObjectInfo | None:
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _storage(exc, self._path(key)) from exc
        return ObjectInfo(key=key, size=st.st_size)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # key-prefix semantics, as S3 has: "bag/manifest-" lists bag/manifest-sha256.txt, ...
        base, _, partial = prefix.rpartition("/")
        top = self._path(base) if base else self.root
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        stack: list[Path] = []
        for entry in entries:
            if not entry.name.startswith(partial):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif TEMP_MARK not in entry.name:
                yield self._info(Path(entry.path))
        stack.reverse()
        while stack:
            here = stack.pop()
            try:
                children = sorted(os.scandir(here), key=lambda e: e.name, reverse=True)
            except FileNotFoundError:
                continue
            files = []
            for entry in children:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif TEMP_MARK not in entry.name:
                    files.append(Path(entry.path))
            for f in reversed(files):
                yield self._info(f)

    def _info(self, path: Path) -> ObjectInfo:
        return ObjectInfo(key=path.relative_to(self.root).as_posix(), size=path.lstat().st_size)

    @contextlib.contextmanager
    def get(self, key: str) -> Iterator[Iterator[bytes]]:
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, after the caller's loop
        except FileNotFoundError:
            raise StorageError(path=str(path), reason="not found in the replica") from None
        except OSError as exc:
            raise _storage(exc, path) from exc
        with f:
            yield iter(lambda: f.read(_CHUNK), b"")

    def abort_own_uploads(self, prefix: str) -> int:
        count = 0
        if prefix.strip("/") and not prefix.endswith("/"):
            # key-prefix semantics: the temporary file of key "bag-one.tar" is the sibling
            # ".bag-one.tar.preserve-upload-<token>", not something inside a folder of that name
            base, _, partial = prefix.rpartition("/")
            top = self._path(base) if base else self.root
            try:
                entries = list(os.scandir(top))
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            for entry in entries:
                name = entry.name
                if name.startswith(f".{partial}") and TEMP_MARK in name and name.index(TEMP_MARK) > len(partial) \
                        and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        count += 1
        start = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if TEMP_MARK in name:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        count += 1
        return count


def _storage(exc: OSError, where: Path) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(path=str(where), reason="no space left on the replica's file system")
    return StorageError(path=str(where), reason=f"{exc.strerror or exc}")

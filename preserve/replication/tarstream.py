"""A bag as one tar stream, written on the fly (for ``--serialize tar``), and read back safely.

The tar is produced chunk by chunk (headers from :mod:`tarfile`, file bodies streamed), so a
bag of any size is serialized with bounded memory and without a temporary file. Each payload
file's bytes are hashed as they pass and compared with the manifest: a file that changed since
it was bagged stops the upload. Every file is opened below the bag's root with no link followed
(:mod:`preserve.safefs`): a link found there stops the upload, naming it.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from preserve.bag.paths import unsafe_reason
from preserve.errors import BadArchive, BagInvalid
from preserve.safefs import (
    LinkRefused,
    lstat_beneath,
    makedirs_beneath,
    open_beneath,
    open_regular_beneath,
    refusal,
)

_CHUNK = 1024 * 1024
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


class DigestLookup(Protocol):
    """What :func:`tar_chunks` needs of a manifest: a payload path's digest, or None (a dict, or
    :class:`~preserve.replication.verified.ManifestDigests` for a bag too large for one)."""

    def get(self, path: str, /) -> str | None: ...


def _walk(root: Path, top: Path, skip: str | None = None) -> Iterator[str]:
    """The files below ``top`` (bag-relative), each folder's files sorted, then its subfolders in
    sorted order; ``skip``: a folder of ``top`` not entered. A link met on the way is refused."""
    base = os.fspath(root)
    for dirpath, dirs, files in os.walk(top):
        dirs.sort()
        # os.walk lists a linked folder among the folders without entering it: refuse it here
        for name in [*dirs, *files]:
            if os.path.islink(os.path.join(dirpath, name)):
                raise refusal(LinkRefused(os.path.join(dirpath, name)))
        if skip is not None and dirpath == str(top) and skip in dirs:
            dirs.remove(skip)
        # plain strings: a Path per file would intern every name (CPython 3.11's pathlib), and the
        # table of interned strings grows with the files and never shrinks
        folder = os.path.relpath(dirpath, base)
        prefix = "" if folder == "." else f"{folder}/"
        for name in sorted(files):
            yield prefix + name


def _files(root: Path) -> Iterator[str]:
    """Every file of the bag, tag files first (readers find the manifests early), sorted, then
    the payload. The order is that of one walk of the bag (each folder's files sorted, then its
    subfolders in sorted order) with the payload moved last; the payload is walked on its own and
    streamed, so a bag of a million files is never held as a list of names."""
    tags = list(_walk(root, root, skip="data"))
    manifests = [t for t in tags if t.startswith("manifest-")]
    tagmanifests = [t for t in tags if t.startswith("tagmanifest-")]
    others = [t for t in tags if t not in manifests and t not in tagmanifests]
    yield from ["bagit.txt"] if "bagit.txt" in others else []
    yield from manifests
    yield from (t for t in others if t != "bagit.txt")
    yield from tagmanifests
    if os.path.isdir(root / "data"):  # not a link: the walk above refused one
        yield from _walk(root, root / "data")


def _header(name: str, rel: str, st: os.stat_result) -> bytes:
    info = tarfile.TarInfo(f"{name}/{rel}")
    info.size = st.st_size
    info.mtime = int(st.st_mtime)
    info.mode = 0o644
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_size(root: Path, name: str) -> int:
    """The exact length of :func:`tar_chunks`' output for the bag as it is now (headers and
    padding worked out from each file's size, nothing read), so an upload can size its parts."""
    written = 0
    for rel in _files(root):
        try:
            st = lstat_beneath(root, rel)
        except LinkRefused as exc:
            raise refusal(exc) from None
        written += len(_header(name, rel, st)) + st.st_size + (-st.st_size) % _BLOCK
    written += 2 * _BLOCK
    return written + (-written) % _RECORD


def tar_chunks(root: Path, name: str, sha256_of: DigestLookup) -> Iterator[bytes]:
    """The tar of the bag at ``root`` with members under ``<name>/``; ``sha256_of`` maps payload
    paths to their manifest digests (checked as the bytes pass). Memory does not grow with the
    number of files, beyond what ``sha256_of`` holds."""
    written = 0
    for rel in _files(root):
        path = os.path.join(root, rel)  # for messages; not a Path, which would intern every name
        try:
            fd, _size = open_regular_beneath(root, rel)
        except LinkRefused as exc:
            raise refusal(exc) from None
        except OSError as exc:
            raise BagInvalid(f"{path}: {exc.strerror or exc}; validate the bag before replicating") from None
        with open(fd, "rb") as f:
            st = os.fstat(fd)
            header = _header(name, rel, st)
            written += len(header)
            yield header
            digest = hashlib.sha256()
            size = 0
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
        if size != st.st_size:
            raise BagInvalid(f"{path}: changed size while being serialized ({st.st_size} -> {size} bytes)")
        expected = sha256_of.get(rel)
        if expected is not None and digest.hexdigest() != expected:
            raise BagInvalid(f"{path}: does not match manifest-sha256.txt (expected {expected}, found "
                             f"{digest.hexdigest()}); validate the bag before replicating (the upload was abandoned)")
        written += size
        pad = (-size) % _BLOCK
        if pad:
            written += pad
            yield b"\0" * pad
    end = b"\0" * (2 * _BLOCK)
    written += len(end)
    yield end + b"\0" * ((-written) % _RECORD)


class _ChunkReader:
    """A file-like view of a chunk iterator, for :func:`tarfile.open` in stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def extract_tar(chunks: Iterator[bytes], name: str, dest: Path, source: str) -> int:
    """Unpack a bag's tar stream into ``dest`` (the bag's root); returns the files written.

    Only regular files and directories under ``<name>/`` are accepted: links, devices, absolute
    paths and ``..`` are refused (:class:`BadArchive`), before anything is written for them. No
    link below ``dest`` is followed (:class:`~preserve.safefs.LinkRefused`), no file overwritten.
    """
    count = 0
    try:
        with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tf:  # type: ignore[call-overload]
            for member in tf:
                if not member.name.startswith(f"{name}/"):
                    raise BadArchive(path=source, reason=f"member {member.name!r} lies outside {name}/")
                rel = member.name[len(name) + 1:].rstrip("/")
                if not rel:
                    continue
                reason = unsafe_reason(rel)
                if reason:
                    raise BadArchive(path=source, reason=f"member {member.name!r}: {reason}")
                if member.isdir():
                    makedirs_beneath(dest, rel)
                    continue
                if not member.isfile():
                    raise BadArchive(path=source, reason=f"member {member.name!r} is not a regular file")
                body = tf.extractfile(member)
                assert body is not None  # a regular file always has a body
                # a new file only, its folders reached with no link followed (LinkRefused otherwise)
                fd = open_beneath(dest, rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, create_dirs=True)
                with open(fd, "wb") as out:
                    while chunk := body.read(_CHUNK):
                        out.write(chunk)
                count += 1
    except tarfile.TarError as exc:
        raise BadArchive(path=source, reason=str(exc)) from exc
    return count

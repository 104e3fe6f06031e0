"""Paths under a root, opened without following any link: what keeps every command inside its bag.

A bag, a staging folder or a directory replica is a root that preserve trusts; what lies below it
is not trusted. A symbolic link anywhere below the root (a linked folder in ``data/``, a linked
``metadata/mets.xml``) could lead a read out of the bag (``/etc/shadow``) or a write out of it
(replacing a file elsewhere with a replica's content). Checking with ``lstat`` first and opening
afterwards leaves a window in which a folder can be swapped for a link, so every function here
walks the path one component at a time from a descriptor of the root, opening each folder with
``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor (``openat``), and acts on the
last component relative to its parent's descriptor too. The root itself may be a link (an
operator's ``/archive`` pointing at a mount); nothing below it may be.

A link found on the way raises :class:`LinkRefused`, an ``OSError`` (``ELOOP``) whose
``filename`` is the link, so code that reports unreadable files reports it as they do, and
:func:`refusal` turns it into the :class:`~preserve.errors.UnsafePath` a command exits with.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from preserve.errors import UnsafePath

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FLAGS = os.O_RDONLY | _CLOEXEC | _NOFOLLOW | _DIRECTORY

#: The words every refusal uses, so that messages and tests agree.
LINK_REASON = "is a symbolic link; preserve never follows a link inside a bag or replica"


class LinkRefused(OSError):
    """A component of a path below the root is a symbolic link (``filename`` names it)."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.ELOOP, LINK_REASON, path)


def refusal(exc: LinkRefused) -> UnsafePath:
    """The error a command exits with (1) when it meets a link where it would read or write."""
    return UnsafePath(path=str(exc.filename), reason=LINK_REASON)


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(path=rel, reason="'..' segment escapes the root")
    return parts


def _is_link_error(exc: OSError, dir_fd: int, name: str) -> bool:
    """After an ``O_NOFOLLOW`` open failed: was ``name`` a link? (ELOOP on Linux; ENOTDIR for a
    link to a non-folder opened with O_DIRECTORY; EMLINK/EFTYPE on some BSDs.)"""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR, getattr(errno, "EMLINK", -1), getattr(errno, "EFTYPE", -1)):
        return False
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _open_root(root: str | os.PathLike[str]) -> int:
    return os.open(root, os.O_RDONLY | _CLOEXEC | _DIRECTORY)


def _walk(root_fd: int, root: str, parts: list[str], *, create: bool, mode: int = 0o777) -> int:
    """A new descriptor of the folder ``parts`` below ``root_fd``; each component opened without
    following links, created first when ``create``."""
    fd = os.dup(root_fd)
    here = root
    try:
        for part in parts:
            here = os.path.join(here, part)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), here) from None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if _is_link_error(exc, fd, part):
                        raise LinkRefused(here) from None
                    raise type(exc)(exc.errno, exc.strerror, here) from None
            except OSError as exc:
                if _is_link_error(exc, fd, part):
                    raise LinkRefused(here) from None
                raise type(exc)(exc.errno, exc.strerror, here) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def parent_fd(root: str | os.PathLike[str], rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """``(descriptor of rel's folder, rel's last component)``; the folders walked without links
    (created with ``create``). The descriptor is closed on leaving."""
    parts = _parts(rel)
    if not parts:
        raise UnsafePath(path=rel, reason="names the root itself")
    root_fd = _open_root(root)
    try:
        fd = _walk(root_fd, os.fspath(root), parts[:-1], create=create)
    finally:
        os.close(root_fd)
    try:
        yield fd, parts[-1]
    finally:
        os.close(fd)


def open_beneath(root: str | os.PathLike[str], rel: str, flags: int = os.O_RDONLY, mode: int = 0o644,
                 *, create_dirs: bool = False) -> int:
    """Open ``root/rel`` with no link followed at any level below ``root``; returns a descriptor.

    ``flags`` are ``os.open`` flags (``O_NOFOLLOW`` and ``O_CLOEXEC`` are added). With
    ``create_dirs`` missing folders are made on the way, each checked in turn.
    """
    with parent_fd(root, rel, create=create_dirs) as (dir_fd, name):
        try:
            return os.open(name, flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as exc:
            path = os.path.join(os.fspath(root), rel)
            if _is_link_error(exc, dir_fd, name):
                raise LinkRefused(path) from None
            raise type(exc)(exc.errno, exc.strerror, path) from None


def open_regular_beneath(root: str | os.PathLike[str], rel: str) -> tuple[int, int]:
    """A read-only descriptor of the regular file ``root/rel`` and its size. A link at any level is
    refused (:class:`LinkRefused`) and a pipe or device is never read (OSError EINVAL)."""
    fd = open_beneath(root, rel, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "is not a regular file (a pipe, device or socket)", os.path.join(os.fspath(root), rel))
    return fd, st.st_size


def read_beneath(root: str | os.PathLike[str], rel: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``root/rel`` (at most ``limit``), read without following links."""
    fd, size = open_regular_beneath(root, rel)
    with open(fd, "rb") as f:
        return f.read(size if limit is None else min(size, limit))


def makedirs_beneath(root: str | os.PathLike[str], rel: str, mode: int = 0o777) -> None:
    """Create the folder ``root/rel`` and its missing parents, refusing any link on the way."""
    parts = _parts(rel)
    root_fd = _open_root(root)
    try:
        os.close(_walk(root_fd, os.fspath(root), parts, create=True, mode=mode))
    finally:
        os.close(root_fd)


def lstat_beneath(root: str | os.PathLike[str], rel: str) -> os.stat_result:
    """``lstat`` of ``root/rel`` reached without following a link in any folder above it."""
    with parent_fd(root, rel) as (dir_fd, name):
        return os.lstat(name, dir_fd=dir_fd)


def replace_beneath(root: str | os.PathLike[str], src_rel: str, dst_rel: str) -> None:
    """``os.replace`` of one path below ``root`` by another, both reached without links (the
    destination's own last component is replaced, never followed)."""
    with parent_fd(root, src_rel) as (src_fd, src_name), parent_fd(root, dst_rel) as (dst_fd, dst_name):
        os.replace(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        os.fsync(dst_fd)


def unlink_beneath(root: str | os.PathLike[str], rel: str) -> None:
    """Remove the file (or link) ``root/rel``, its folders reached without links."""
    with parent_fd(root, rel) as (dir_fd, name):
        os.unlink(name, dir_fd=dir_fd)


def links_below(root: str | os.PathLike[str], rel: str) -> str | None:
    """The first component of ``root/rel`` (below ``root``) that is a symbolic link, or None.
    For messages and reports; acting on a path goes through the functions above."""
    here = os.fspath(root)
    for part in _parts(rel):
        here = os.path.join(here, part)
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return here
        except OSError:
            return None
    return None

"""Reading a bag on disk as tools really write it (BagIt 0.93 to 1.0), without modifying it.

Every tag file (bagit.txt, bag-info.txt, manifests, tag manifests, fetch.txt, ``metadata/*``) is
opened through :mod:`preserve.safefs` below the bag's folder: no symbolic link is followed at any
level, so a linked ``metadata`` folder or ``metadata/mets.xml`` is refused
(:class:`~preserve.safefs.LinkRefused`, an OSError naming the link), never read.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from preserve.bag.paths import decode_manifest_path, normalize_manifest_path, unsafe_reason
from preserve.bag.tagfiles import (
    EMPTY_DIRECTORIES,
    FetchEntry,
    TagProblem,
    decode_tag_text,
    parse_bag_info,
    parse_bagit_txt,
    parse_fetch,
    python_encoding,
    split_lines,
)
from preserve.errors import BadTagFile, SourceNotFound
from preserve.safefs import (
    LINK_REASON,
    LinkRefused,
    open_beneath,
    open_regular_beneath,
    read_beneath,
)

_MANIFEST = re.compile(r"^(tag)?manifest-([A-Za-z0-9-]+)\.txt$")
_LINE = re.compile(r"^([0-9A-Fa-f]+)[ \t]+(\*?)(.*)$")


class ManifestLine(NamedTuple):
    """One line of a manifest. ``path`` is decoded; ``raw`` is the path as written. (A named
    tuple: one is made for every line, and it builds several times faster than a frozen
    dataclass.)"""

    digest: str
    path: str
    raw: str
    line: int
    error: str | None = None


@dataclass
class Bag:
    """A bag on disk. Cheap to open: manifests are streamed, never held whole."""

    path: Path
    version: str | None
    declared_encoding: str | None
    problems: list[TagProblem] = field(default_factory=list)
    info: list[tuple[str, str]] = field(default_factory=list)
    info_file: str | None = None
    payload_manifests: dict[str, Path] = field(default_factory=dict)
    tag_manifests: dict[str, Path] = field(default_factory=dict)
    #: Tag files at the top of the bag that were not read: (name, why), e.g. a symbolic link.
    irregular: list[tuple[str, str]] = field(default_factory=list)

    @property
    def encoding(self) -> str:
        return python_encoding(self.declared_encoding or "UTF-8") or "utf-8"

    @property
    def version_tuple(self) -> tuple[int, int]:
        try:
            major, minor = (self.version or "1.0").split(".")
            return int(major), int(minor)
        except ValueError:
            return (1, 0)

    @property
    def name(self) -> str:
        return self.path.name

    def info_values(self, label: str) -> list[str]:
        """Every value of a bag-info label (labels compare case-insensitively)."""
        want = label.lower()
        return [v for k, v in self.info if k.lower() == want]

    def info_value(self, label: str) -> str | None:
        values = self.info_values(label)
        return values[0] if values else None

    def read_tag_text(self, relative: str) -> str:
        """The decoded text of a tag file, read with no link followed below the bag (a link raises
        :class:`~preserve.safefs.LinkRefused`; a pipe or device OSError EINVAL)."""
        return decode_tag_text(read_beneath(self.path, relative), self.declared_encoding or "UTF-8")

    def iter_manifest(self, algorithm: str, *, tag: bool = False) -> Iterator[ManifestLine]:
        """Lines of one manifest, streamed: CRLF, ``./`` prefixes and md5sum's ``*`` accepted.
        Paths are decoded as the bag's BagIt version wrote them (``%25`` only from 1.0 on)."""
        source = (self.tag_manifests if tag else self.payload_manifests)[algorithm]
        version = self.version_tuple  # '%25' is decoded in BagIt 1.0 bags only
        fd, _size = open_regular_beneath(self.path, source.name)
        with open(fd, encoding=self.encoding, newline="") as f:
            for number, text in enumerate(f, 1):
                if number == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                text = text.rstrip("\r\n")
                if not text.strip():
                    continue
                m = _LINE.match(text)
                if not m:
                    yield ManifestLine("", "", text, number, error=f"line {number} is not 'DIGEST PATH': {text!r}")
                    continue
                raw = normalize_manifest_path(m.group(3))
                yield ManifestLine(m.group(1).lower(), decode_manifest_path(raw, version), raw, number)

    def fetch_entries(self) -> tuple[list[FetchEntry], list[TagProblem]]:
        if _regular("fetch.txt", self.path / "fetch.txt") is None:
            return [], []  # absent; a link or pipe is in ``irregular``
        return parse_fetch(self.read_tag_text("fetch.txt"), self.version_tuple)

    def iter_payload_files(self, unreadable: list[tuple[str, str]] | None = None) -> Iterator[tuple[str, os.stat_result]]:
        """Every entry under data/ that is not a folder, as (bag-relative path, lstat), in sorted
        order, streamed. Symbolic links, pipes and devices are included: check
        :func:`irregular_reason` before opening one. Folders that cannot be listed are added to
        ``unreadable`` as (path, why); a ``data`` that is itself a symbolic link is not followed.
        """
        try:
            st = os.lstat(self.path / "data")
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(self.path, "data", unreadable)

    def iter_tag_files(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every file outside data/ (bagit.txt, manifests, bag-info.txt, metadata/...). A folder
        that cannot be listed raises OSError whose ``filename`` is that folder."""
        for entry in sorted(os.scandir(self.path), key=lambda e: e.name):
            if entry.name == "data" and entry.is_dir(follow_symlinks=False):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(self.path, entry.name)
            else:
                yield entry.name, entry.stat(follow_symlinks=False)


#: What a curator does about a tag file that cannot be read.
_READABLE = "make it readable by the user running preserve (or restore it from a replica) and run the command again"


#: What a curator does about a folder of tag files that cannot be opened.
_OPENABLE = "make it readable by the user running preserve and run the command again"


def unreadable_tag_file(root: str | os.PathLike[str], rel: str, exc: OSError, *, advice: str = _READABLE) -> BadTagFile:
    """The input error (exit 3) for a tag file that exists but cannot be read (permissions, I/O);
    ``advice`` says what to do about it, when the command has better advice than the default.

    When what could not be opened is a folder on the way (``metadata/``, as :mod:`preserve.safefs`
    names it in ``exc.filename``), the error names that folder: whether the file is in it at all
    cannot be known, so naming the file would blame one that may not exist."""
    folder = blocked_folder(root, rel, exc)
    if folder is not None:
        return unreadable_tag_folder(folder, exc)
    return BadTagFile(path=os.path.join(os.fspath(root), rel), reason=f"cannot be read ({exc.strerror or exc}); {advice}")


def unreadable_tag_folder(folder: str | os.PathLike[str], exc: OSError) -> BadTagFile:
    """The input error (exit 3) for a folder of tag files (``metadata/``) that cannot be opened;
    ``folder=True`` among its fields tells readers (the audit) that it names a folder."""
    return BadTagFile(path=os.fspath(folder), folder=True, reason=(
        f"this folder cannot be opened ({exc.strerror or exc}), so the tag files in it cannot be read; {_OPENABLE}"))


def blocked_folder(root: str | os.PathLike[str], rel: str, exc: OSError) -> str | None:
    """The folder on the way to ``root/rel`` that ``exc`` (raised by :mod:`preserve.safefs`) says
    could not be opened, or None when the error concerns ``rel`` itself."""
    where = os.fspath(exc.filename) if isinstance(exc.filename, (str, os.PathLike)) else ""
    if not where or where == os.path.join(os.fspath(root), rel):
        return None
    inside = os.path.join(os.fspath(root), rel).startswith(where.rstrip(os.sep) + os.sep)
    return where if inside else None


def empty_directories(bag: str | os.PathLike[str]) -> list[str]:
    """The payload folders ``metadata/empty-directories.txt`` lists (bag-relative, decoded, e.g.
    ``data/scans/empty``), in file order; [] when the bag has no such file.

    preserve writes the file because BagIt manifests list files only, so an empty folder would
    otherwise be lost by a copy. It is read without following a link (a link raises
    :class:`~preserve.safefs.LinkRefused`); a line that is not a safe path inside data/ raises
    :class:`~preserve.errors.BadTagFile` naming the line.
    """
    try:
        raw = read_beneath(bag, EMPTY_DIRECTORIES)
    except FileNotFoundError:
        return []
    try:
        text = decode_tag_text(raw, "UTF-8")
    except UnicodeDecodeError as exc:
        raise BadTagFile(path=os.path.join(os.fspath(bag), EMPTY_DIRECTORIES), reason=f"is not UTF-8 ({exc.reason})") from None
    out: list[str] = []
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip():
            continue
        rel = decode_manifest_path(normalize_manifest_path(line))
        why = unsafe_reason(rel) or (None if rel.startswith("data/") else "not inside data/")
        if why:
            raise BadTagFile(path=os.path.join(os.fspath(bag), EMPTY_DIRECTORIES), reason=f"line {number} names {line!r}: {why}")
        out.append(rel)
    return out


@contextlib.contextmanager
def pinned_tag_file(bag: str | os.PathLike[str], rel: str) -> Iterator[Path]:
    """A path that reads the regular file ``bag/rel`` as opened with no link followed below the bag,
    for readers that take a path (lxml's streaming parser).

    The file is opened first (:func:`~preserve.safefs.open_regular_beneath`) and the path yielded
    is that open descriptor's (``/proc/self/fd/N``), so swapping a folder for a link afterwards
    changes nothing. Where there is no ``/proc`` the file's own path is yielded once the open has
    shown that no link leads to it.
    """
    fd, _size = open_regular_beneath(bag, rel)
    try:
        proc = Path(f"/proc/self/fd/{fd}")
        yield proc if proc.exists() else Path(bag) / rel
    finally:
        os.close(fd)


def irregular_reason(st: os.stat_result) -> str | None:
    """Why an entry found in a bag must not be opened (a link may point out of the bag, a pipe
    blocks the reader for ever), or None for a regular file."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link; bags hold files, so it was not followed"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a pipe, device or socket); it was not opened"
    return None


def _regular(name: str, path: Path, irregular: list[tuple[str, str]] | None = None) -> Path | None:
    """``path`` when it is a regular file; None when absent or (noted in ``irregular``) not regular."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    reason = irregular_reason(st)
    if reason:
        if irregular is not None:
            irregular.append((name, reason))
        return None
    return path


def _walk(root: Path, relative: str, unreadable: list[tuple[str, str]] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    stack = [relative]
    while stack:
        rel = stack.pop()
        # each folder is opened from the bag's root with no link followed, and listed by its
        # descriptor: a folder swapped for a link after its parent was listed is not listed
        try:
            fd = open_beneath(root, rel, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except LinkRefused as exc:
            if str(exc.filename) == os.path.join(os.fspath(root), rel):
                try:
                    link = os.lstat(exc.filename)
                except OSError:
                    continue
                yield rel, link  # reported as the link it now is
            continue
        except FileNotFoundError:
            continue
        except OSError as exc:
            if unreadable is None:
                raise
            unreadable.append((rel, f"the folder cannot be listed ({exc.strerror or exc})"))
            continue
        files = []
        try:
            with os.scandir(fd) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
            for entry in entries:
                child = f"{rel}/{entry.name}"
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(child)
                    else:
                        files.append((child, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if unreadable is None:
                        raise
                    unreadable.append((child, f"cannot be examined ({exc.strerror or exc})"))
        except OSError as exc:
            if unreadable is None:
                # named as the folder (scandir of a descriptor names none), as a failed open is
                raise type(exc)(exc.errno, exc.strerror, os.path.join(root, rel)) from exc
            unreadable.append((rel, f"the folder cannot be listed ({exc.strerror or exc})"))
        finally:
            os.close(fd)
        yield from reversed(files)


def open_bag(path: str | os.PathLike[str]) -> Bag:
    """Open a bag directory: read bagit.txt and bag-info.txt, find the manifests.

    Raises :class:`BadTagFile` only when there is no bag to speak of (no bagit.txt); every other
    defect is kept in ``Bag.problems`` for the validator to report with the rest.
    """
    root = Path(path)
    if not root.exists():
        raise SourceNotFound(path=str(root))
    bagit_txt = root / "bagit.txt"
    if not root.is_dir() or not os.path.lexists(bagit_txt):
        raise BadTagFile(path=str(root), reason="not a bag: bagit.txt is missing")
    bagit_txt_odd = irregular_reason(os.lstat(bagit_txt))
    if bagit_txt_odd:
        raise BadTagFile(path=str(bagit_txt), reason=f"{bagit_txt_odd}; the bag cannot be read safely")
    try:
        data = read_beneath(root, "bagit.txt")
    except LinkRefused as exc:
        raise BadTagFile(path=str(exc.filename), reason=f"{LINK_REASON}; the bag cannot be read safely") from None
    except OSError as exc:
        raise BadTagFile(path=str(bagit_txt), reason=f"cannot be read ({exc.strerror}); {_READABLE}") from exc
    version, encoding, problems = parse_bagit_txt(data)
    bag = Bag(path=root, version=version, declared_encoding=encoding, problems=list(problems))
    for special in ("bag-info.txt", "package-info.txt", "fetch.txt"):
        _regular(special, root / special, bag.irregular)
    for candidate in ("bag-info.txt", "package-info.txt"):
        if _regular(candidate, root / candidate) is not None:
            if candidate == "package-info.txt" and bag.version_tuple >= (0, 96):
                bag.problems.append(TagProblem("warning", "package-info.txt is the BagIt 0.95 name; 0.96+ calls it bag-info.txt"))
            try:
                text = bag.read_tag_text(candidate)
            except (UnicodeDecodeError, LookupError) as exc:
                bag.problems.append(TagProblem("error", f"{candidate} is not valid {bag.declared_encoding}: {exc}"))
                break
            except LinkRefused as exc:
                # swapped for a link since it was examined: refused like any link
                bag.irregular.append((candidate, f"{LINK_REASON} ({exc.filename})"))
                break
            except OSError as exc:
                raise unreadable_tag_file(root, candidate, exc) from exc
            items, info_problems = parse_bag_info(text)
            bag.info = items
            bag.info_file = candidate
            bag.problems.extend(TagProblem(p.severity, f"{candidate}: {p.message}", p.line) for p in info_problems)
            break
    for entry in os.scandir(root):
        m = _MANIFEST.match(entry.name)
        if m and _regular(entry.name, Path(entry.path), bag.irregular) is not None:
            algorithm = m.group(2).lower()
            (bag.tag_manifests if m.group(1) else bag.payload_manifests)[algorithm] = Path(entry.path)
    return bag

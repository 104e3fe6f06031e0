"""Reading a bag on disk as tools really write it (BagIt 0.93 to 1.0), without modifying it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from preserve.bag.paths import decode_manifest_path, normalize_manifest_path
from preserve.bag.tagfiles import (
    FetchEntry,
    TagProblem,
    decode_tag_text,
    parse_bag_info,
    parse_bagit_txt,
    parse_fetch,
    python_encoding,
)
from preserve.errors import BadTagFile, SourceNotFound

_MANIFEST = re.compile(r"^(tag)?manifest-([A-Za-z0-9-]+)\.txt$")
_LINE = re.compile(r"^([0-9A-Fa-f]+)[ \t]+(\*?)(.*)$")


@dataclass(frozen=True)
class ManifestLine:
    """One line of a manifest. ``path`` is decoded; ``raw`` is the path as written."""

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
        return decode_tag_text((self.path / relative).read_bytes(), self.declared_encoding or "UTF-8")

    def iter_manifest(self, algorithm: str, *, tag: bool = False) -> Iterator[ManifestLine]:
        """Lines of one manifest, streamed: CRLF, ``./`` prefixes and md5sum's ``*`` accepted."""
        source = (self.tag_manifests if tag else self.payload_manifests)[algorithm]
        with open(source, encoding=self.encoding, newline="") as f:
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
                yield ManifestLine(m.group(1).lower(), decode_manifest_path(raw), raw, number)

    def fetch_entries(self) -> tuple[list[FetchEntry], list[TagProblem]]:
        fetch = self.path / "fetch.txt"
        if not fetch.is_file():
            return [], []
        return parse_fetch(self.read_tag_text("fetch.txt"))

    def iter_payload_files(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every file under data/, as (bag-relative path, lstat), in sorted order, streamed."""
        yield from _walk(self.path, "data")

    def iter_tag_files(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every file outside data/ (bagit.txt, manifests, bag-info.txt, metadata/...)."""
        for entry in sorted(os.scandir(self.path), key=lambda e: e.name):
            if entry.name == "data" and entry.is_dir(follow_symlinks=False):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(self.path, entry.name)
            else:
                yield entry.name, entry.stat(follow_symlinks=False)


def _walk(root: Path, relative: str) -> Iterator[tuple[str, os.stat_result]]:
    stack = [relative]
    while stack:
        rel = stack.pop()
        try:
            entries = sorted(os.scandir(root / rel), key=lambda e: e.name, reverse=True)
        except FileNotFoundError:
            continue
        files = []
        for entry in entries:
            child = f"{rel}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append(child)
            else:
                files.append((child, entry.stat(follow_symlinks=False)))
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
    if not root.is_dir() or not bagit_txt.is_file():
        raise BadTagFile(path=str(root), reason="not a bag: bagit.txt is missing")
    try:
        data = bagit_txt.read_bytes()
    except OSError as exc:
        raise BadTagFile(path=str(bagit_txt), reason=f"cannot be read ({exc.strerror})") from exc
    version, encoding, problems = parse_bagit_txt(data)
    bag = Bag(path=root, version=version, declared_encoding=encoding, problems=list(problems))
    for candidate in ("bag-info.txt", "package-info.txt"):
        if (root / candidate).is_file():
            if candidate == "package-info.txt" and bag.version_tuple >= (0, 96):
                bag.problems.append(TagProblem("warning", "package-info.txt is the BagIt 0.95 name; 0.96+ calls it bag-info.txt"))
            try:
                text = bag.read_tag_text(candidate)
            except (UnicodeDecodeError, LookupError) as exc:
                bag.problems.append(TagProblem("error", f"{candidate} is not valid {bag.declared_encoding}: {exc}"))
                break
            items, info_problems = parse_bag_info(text)
            bag.info = items
            bag.info_file = candidate
            bag.problems.extend(TagProblem(p.severity, f"{candidate}: {p.message}", p.line) for p in info_problems)
            break
    for entry in os.scandir(root):
        m = _MANIFEST.match(entry.name)
        if m and entry.is_file(follow_symlinks=False):
            algorithm = m.group(2).lower()
            (bag.tag_manifests if m.group(1) else bag.payload_manifests)[algorithm] = Path(entry.path)
    return bag

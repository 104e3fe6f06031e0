"""Checksums the producer delivered: sheet columns, md5sum/sha*sum files, a submitted bag's manifests.

Checksum files are recognised by name (``*.md5``, ``*.sha1``, ``*.sha256``, ``*.sha512``,
``md5sum.txt``, ``checksums.sha256``, ``SHA256SUMS``...). Lines may be GNU style
(``digest  name`` or ``digest *name``) or BSD style (``MD5 (name) = digest``); names are relative
to the checksum file's folder. The algorithm comes from the file name, else from the digest length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from preserve.bag.reader import open_bag
from preserve.bag.tagfiles import split_lines
from preserve.errors import PreserveError

ALGS = ("md5", "sha1", "sha256", "sha512")
_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_GNU = re.compile(r"^([0-9A-Fa-f]{32,128})[ \t]+[ *]?(.+)$")
_BSD = re.compile(r"^(MD5|SHA1|SHA256|SHA512|SHA-1|SHA-256|SHA-512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]{32,128})$", re.IGNORECASE)
_NAME = re.compile(r"(?:^|[._-])(md5|sha1|sha256|sha512)(?:sums?)?(?:\.txt)?$|^(md5|sha1|sha256|sha512)sums?(?:\.txt)?$|^checksums?\.(md5|sha1|sha256|sha512)$",
                   re.IGNORECASE)


def checksum_file_algorithm(name: str) -> str | None:
    """The algorithm a checksum file's name announces ('' for a recognised name without one)."""
    base = name.rsplit("/", 1)[-1]
    m = _NAME.search(base)
    if m:
        return next(g for g in m.groups() if g).lower()
    if base.lower() in ("checksums.txt", "checksum.txt", "fixity.txt"):
        return ""
    return None


def is_checksum_file(name: str) -> bool:
    return checksum_file_algorithm(name) is not None and not name.rsplit("/", 1)[-1].startswith(("manifest-", "tagmanifest-"))


@dataclass(frozen=True)
class Expected:
    target: str           # collection-relative path the digest is for
    algorithm: str
    value: str
    source: str           # "checksums.md5 line 3", "metadata.csv row 2", "manifest-sha256.txt line 4"


@dataclass
class Delivered:
    expected: list[Expected] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_checksum_file(root: Path, rel: str, out: Delivered) -> None:
    """Add every line of a delivered checksum file to ``out``."""
    announced = checksum_file_algorithm(rel) or None
    folder = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
    try:
        raw = (root / rel).read_bytes()
    except OSError as exc:
        out.problems.append(f"{rel}: cannot be read ({exc.strerror})")
        return
    text = raw.decode("utf-8-sig", errors="replace")
    for number, line in enumerate(split_lines(text), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        bsd = _BSD.match(line)
        if bsd:
            alg = bsd.group(1).lower().replace("-", "")
            name, digest = bsd.group(2), bsd.group(3)
        else:
            gnu = _GNU.match(line)
            if not gnu:
                out.problems.append(f"{rel} line {number}: not a checksum line ('DIGEST  NAME' or 'MD5 (NAME) = DIGEST'): {line[:80]!r}")
                continue
            digest, name = gnu.group(1), gnu.group(2)
            alg = announced or _BY_LENGTH.get(len(digest), "")
        if alg not in ALGS or len(digest) != {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}[alg]:
            out.problems.append(f"{rel} line {number}: {digest[:16]}... is not a {alg or 'known'} digest ({len(digest)} hex digits)")
            continue
        name = name.strip().replace("\\", "/").removeprefix("./")
        out.expected.append(Expected(folder + name if not name.startswith("/") else name, alg, digest.lower(), f"{rel} line {number}"))


def read_bag_manifests(root: Path, out: Delivered) -> None:
    """When the submission is itself a BagIt bag, its payload and tag manifests are producer checksums."""
    try:
        bag = open_bag(root)
    except PreserveError as exc:
        out.problems.append(f"the submission has bagit.txt but cannot be read as a bag: {exc}")
        return
    for tag, manifests in ((False, bag.payload_manifests), (True, bag.tag_manifests)):
        for alg, path in manifests.items():
            if alg not in ALGS:
                continue
            for line in bag.iter_manifest(alg, tag=tag):
                if line.error:
                    out.problems.append(f"{path.name} {line.error}")
                    continue
                out.expected.append(Expected(line.path, alg, line.digest, f"{path.name} line {line.line}"))


def from_sheet(file: str, cells: dict[str, str], where: str, out: Delivered) -> None:
    """The sheet's md5/sha1/sha256/sha512 cells for one row."""
    for alg in ALGS:
        value = cells.get(alg, "").strip()
        if not value:
            continue
        length = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}[alg]
        if not re.fullmatch(f"[0-9A-Fa-f]{{{length}}}", value):
            out.problems.append(f"{where}: the {alg} cell {value[:20]!r} is not a {alg} digest ({length} hex digits)")
            continue
        out.expected.append(Expected(file, alg, value.lower(), where))

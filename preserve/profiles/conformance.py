"""Checking a bag (a folder or a serialized file) against a BagIt profile, field by field.

Every failure is a :class:`~preserve.bag.validate.Finding` with code ``profile`` whose message
starts with the profile field it breaks and names the offending value. As the specification asks,
Serialization / Accept-Serialization and Accept-BagIt-Version come first; when one of them fails
the bag cannot be processed under this profile, so the other fields are not checked.

Profile checks read names, sizes and tag files only; they never hash (RFC 8493 validation does).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from preserve.bag.reader import Bag, open_bag, unreadable_tag_folder
from preserve.bag.validate import Finding
from preserve.errors import PreserveError, UnsafePath
from preserve.profiles.model import PathPatterns, Profile, version_key
from preserve.safefs import lstat_beneath, open_beneath

#: BagIt's own files, governed by their own fields rather than by Tag-Files-Allowed.
_BAGIT_FILES = re.compile(r"^(bagit\.txt|bag-info\.txt|package-info\.txt|fetch\.txt|(tag)?manifest-[A-Za-z0-9-]+\.txt)$")

#: MIME types by which a profile may accept each serialization preserve reads and writes.
MIME_TYPES: dict[str, tuple[str, ...]] = {
    "tar": ("application/x-tar", "application/tar"),
    "tar.gz": ("application/gzip", "application/x-gzip", "application/tar+gzip", "application/x-tar+gzip",
               "application/x-gtar", "application/gtar"),
    "zip": ("application/zip", "application/x-zip-compressed", "application/x-zip"),
}


class BagFacts(Protocol):
    """What profile checks need to know about a bag, however it is stored."""

    bag: Bag  # bagit.txt, bag-info.txt and the manifests, as read

    @property
    def serialization(self) -> str | None:
        """'tar', 'tar.gz', 'zip', or None for a folder."""

    def tag_files(self) -> Iterator[str]:
        """Bag-relative paths of every file outside data/, sorted."""

    def payload_files(self) -> Iterator[tuple[str, int]]:
        """(bag-relative path, size) of every payload file, sorted."""

    def has_file(self, rel: str) -> bool:
        """Whether the regular file ``rel`` exists in the bag."""

    def folder_holds_something(self, rel: str) -> bool:
        """Whether the folder ``rel`` exists and holds at least one file or folder."""


class DirectoryFacts:
    """:class:`BagFacts` of a bag folder on disk."""

    def __init__(self, bag: Bag, serialization: str | None = None) -> None:
        self.bag = bag
        # a staged folder about to be serialized is checked as the archive it will become
        self.serialization = serialization
        #: Required paths whose presence could not be told, with the OS error that hid them.
        self.unknown: dict[str, str] = {}

    def tag_files(self) -> Iterator[str]:
        try:
            for rel, _st in self.bag.iter_tag_files():
                yield rel
        except OSError as exc:
            # tag files that cannot be read are an input problem (exit 3), as validation says
            raise unreadable_tag_folder(exc.filename or self.bag.path, exc) from exc

    def payload_files(self) -> Iterator[tuple[str, int]]:
        # a folder that cannot be listed is validation's finding (unreadable); what it holds is
        # unknown, so the profile's rules are checked against what could be listed
        for rel, st in self.bag.iter_payload_files(unreadable=[]):
            yield rel, st.st_size

    def has_file(self, rel: str) -> bool:
        # reached with no link followed at any level: a file behind a linked folder is not in the bag
        try:
            return stat.S_ISREG(lstat_beneath(self.bag.path, rel).st_mode)
        except UnsafePath:
            return False
        except OSError as exc:
            self._unknown(rel, exc)
            return False

    def _unknown(self, rel: str, exc: OSError) -> None:
        # absent (or a file where a folder should be) is an answer; a folder on the way that
        # cannot be opened is not: whether ``rel`` is there cannot be told
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            self.unknown[rel] = exc.strerror or str(exc)

    def folder_holds_something(self, rel: str) -> bool:
        try:
            fd = open_beneath(self.bag.path, rel.rstrip("/"), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except UnsafePath:
            return False  # a link (never followed)
        except OSError as exc:
            self._unknown(rel, exc)  # absent or not a folder, else it cannot be opened
            return False
        try:
            with os.scandir(fd) as it:
                return next(it, None) is not None
        except OSError as exc:
            self._unknown(rel, exc)
            return False
        finally:
            os.close(fd)


def _fail(message: str, path: str | None = None, **kw: str) -> Finding:
    return Finding("error", "profile", message, path=path, **kw)


def _listing(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values) if values else "none"


def accepted_mime(profile: Profile, fmt: str) -> str | None:
    """The MIME type under which ``profile`` accepts serialization ``fmt``, or None."""
    if not profile.accept_serialization:
        return MIME_TYPES[fmt][0]  # the profile names none: the warning came at load time
    wanted = {m.lower() for m in profile.accept_serialization}
    return next((m for m in MIME_TYPES[fmt] if m in wanted), None)


def _fatal(facts: BagFacts, profile: Profile) -> list[Finding]:
    return fatal_findings(profile, facts.serialization, facts.bag.version)


def fatal_findings(profile: Profile, serialization: str | None, version: str | None) -> list[Finding]:
    """Serialization, Accept-Serialization and Accept-BagIt-Version: the checks the specification
    puts first, since a bag failing them cannot be processed under the profile at all."""
    out: list[Finding] = []
    fmt = serialization
    if fmt is None and profile.serialization == "required":
        out.append(_fail(f"Serialization: the profile requires a serialized bag ({_listing(profile.accept_serialization)}); this bag is a folder"))
    elif fmt is not None and profile.serialization == "forbidden":
        out.append(_fail(f"Serialization: the profile forbids serialized bags; this bag is a {fmt} file ({MIME_TYPES[fmt][0]})"))
    elif fmt is not None and accepted_mime(profile, fmt) is None:
        out.append(_fail(f"Accept-Serialization: {MIME_TYPES[fmt][0]} ({fmt}) is not accepted; the profile accepts {_listing(profile.accept_serialization)}"))
    accepted = {version_key(v) for v in profile.accept_bagit_version}
    try:
        ok = version is not None and version_key(version) in accepted
    except ValueError:
        ok = False
    if not ok:
        out.append(_fail(f"Accept-BagIt-Version: BagIt-Version {version or '(none)'} is not accepted; the profile accepts {_listing(profile.accept_bagit_version)}", path="bagit.txt",
                         expected=", ".join(profile.accept_bagit_version), found=version or ""))
    return out


def check_facts(facts: BagFacts, profile: Profile) -> list[Finding]:
    """Check every field of ``profile`` against a bag; returns the failures (empty: conforms)."""
    fatal = _fatal(facts, profile)
    if fatal:
        return fatal
    bag = facts.bag
    out: list[Finding] = []
    info_file = bag.info_file or "bag-info.txt"

    ids = bag.info_values("BagIt-Profile-Identifier")
    if not ids:
        out.append(_fail(f"BagIt-Profile-Identifier: {info_file} has none; a bag conforming to this profile must carry {profile.identifier}", path=info_file))
    elif profile.identifier not in ids:
        out.append(_fail(f"BagIt-Profile-Identifier: {info_file} names {', '.join(ids)}, not this profile ({profile.identifier})", path=info_file,
                         expected=profile.identifier, found=", ".join(ids)))

    for rule in profile.bag_info:
        values = bag.info_values(rule.label)
        where = f"Bag-Info {rule.label}"
        if rule.required and not values:
            out.append(_fail(f"{where}: required, but {info_file} does not have it", path=info_file))
        elif rule.required and all(not v.strip() for v in values):
            out.append(_fail(f"{where}: required, but its value in {info_file} is empty", path=info_file))
        if not rule.repeatable and len(values) > 1:
            out.append(_fail(f"{where}: not repeatable, but {info_file} has it {len(values)} times ({', '.join(repr(v) for v in values)})", path=info_file))
        if rule.values:
            for v in values:
                if v not in rule.values:
                    out.append(_fail(f"{where}: value {v!r} is not one of {', '.join(repr(a) for a in rule.values)}", path=info_file,
                                     found=v))

    for algs, present, label, prefix in (
        (profile.manifests_required, bag.payload_manifests, "Manifests-Required", "manifest"),
        (profile.tag_manifests_required, bag.tag_manifests, "Tag-Manifests-Required", "tagmanifest"),
    ):
        for alg in algs:
            if alg not in present:
                out.append(_fail(f"{label}: {alg} is required but {prefix}-{alg}.txt is missing (the bag has: {_listing(sorted(present))})",
                                 path=f"{prefix}-{alg}.txt", algorithm=alg))
    for allowed, present, label, prefix in (
        (profile.manifests_allowed, bag.payload_manifests, "Manifests-Allowed", "manifest"),
        (profile.tag_manifests_allowed, bag.tag_manifests, "Tag-Manifests-Allowed", "tagmanifest"),
    ):
        if allowed is None:
            continue
        for alg in sorted(present):
            if alg not in allowed:
                out.append(_fail(f"{label}: {prefix}-{alg}.txt uses {alg}, which the profile does not allow (allowed: {_listing(allowed)})",
                                 path=f"{prefix}-{alg}.txt", algorithm=alg))

    has_fetch = facts.has_file("fetch.txt")
    if has_fetch and not profile.allow_fetch:
        out.append(_fail("Allow-Fetch.txt: the profile does not allow fetch.txt, and the bag has one", path="fetch.txt"))
    if profile.fetch_required and not has_fetch:
        out.append(_fail("Fetch.txt-Required: the profile requires fetch.txt, and the bag has none", path="fetch.txt"))

    out.extend(_tag_files(facts, profile))
    out.extend(_payload(facts, profile))
    return out


def _required_paths(facts: BagFacts, required: tuple[str, ...], label: str) -> list[Finding]:
    out = []
    unknown: dict[str, str] = getattr(facts, "unknown", {})
    for rel in required:
        there = facts.folder_holds_something(rel) if rel.endswith("/") else facts.has_file(rel)
        if there:
            continue
        if rel in unknown:
            out.append(_fail(f"{label}: {rel} is required, and whether it is there cannot be told: a folder on its "
                             f"way cannot be opened ({unknown[rel]})", path=rel))
        elif rel.endswith("/"):
            out.append(_fail(f"{label}: the folder {rel} must exist and hold at least one file or folder; it is missing or empty", path=rel))
        else:
            out.append(_fail(f"{label}: {rel} is required but missing", path=rel))
    return out


def _tag_files(facts: BagFacts, profile: Profile) -> list[Finding]:
    out = _required_paths(facts, profile.tag_files_required, "Tag-Files-Required")
    if profile.tag_files_allowed is not None:
        patterns = PathPatterns(profile.tag_files_allowed)
        for rel in facts.tag_files():
            if _BAGIT_FILES.match(rel) or patterns.allows(rel):
                continue
            out.append(_fail(f"Tag-Files-Allowed: tag file {rel} matches none of {_listing(profile.tag_files_allowed)}", path=rel))
    return out


def _payload_allowed(rel: str, profile: Profile) -> Finding:
    return _fail(f"Payload-Files-Allowed: payload file {rel} matches none of {_listing(profile.payload_files_allowed or ())}", path=rel)


def _data_empty(files: int, total: int) -> Finding:
    return _fail(f"Data-Empty: the profile requires data/ to be empty (no file, or one zero-byte file); it holds {files} file(s), {total} bytes",
                 path="data", found=f"{total}.{files}")


def payload_findings(profile: Profile, entries: Iterable[tuple[str, int, bool]]) -> list[Finding]:
    """Payload-Files-Required, Payload-Files-Allowed and Data-Empty for a payload about to be
    copied: ``entries`` are (bag-relative path, size, is an empty folder). Checking before the
    copy saves copying a large payload only to refuse it; the messages are those of a made bag.
    """
    req_files = {r for r in profile.payload_files_required if not r.endswith("/")}
    req_dirs = {r for r in profile.payload_files_required if r.endswith("/")}
    patterns = PathPatterns(profile.payload_files_allowed) if profile.payload_files_allowed is not None else None
    if not (req_files or req_dirs or patterns is not None or profile.data_empty):
        return []
    found: set[str] = set()
    refused: list[Finding] = []
    files = total = 0
    for rel, size, empty_dir in entries:
        for d in req_dirs:
            if rel.startswith(d) and len(rel) > len(d):
                found.add(d)
        if empty_dir:
            continue
        files += 1
        total += size
        if rel in req_files:
            found.add(rel)
        if patterns is not None and not patterns.allows(rel):
            refused.append(_payload_allowed(rel, profile))
    out = []
    for rel in profile.payload_files_required:
        if rel in found:
            continue
        if rel.endswith("/"):
            out.append(_fail(f"Payload-Files-Required: the folder {rel} must exist and hold at least one file or folder; it is missing or empty", path=rel))
        else:
            out.append(_fail(f"Payload-Files-Required: {rel} is required but missing", path=rel))
    out.extend(refused)
    if profile.data_empty and (files > 1 or total > 0):
        out.append(_data_empty(files, total))
    return out


def _payload(facts: BagFacts, profile: Profile) -> list[Finding]:
    out = _required_paths(facts, profile.payload_files_required, "Payload-Files-Required")
    patterns = PathPatterns(profile.payload_files_allowed) if profile.payload_files_allowed is not None else None
    if patterns is None and not profile.data_empty:
        return out
    files = total = 0
    for rel, size in facts.payload_files():
        files += 1
        total += size
        if patterns is not None and not patterns.allows(rel):
            out.append(_payload_allowed(rel, profile))
    if profile.data_empty and (files > 1 or total > 0):
        out.append(_data_empty(files, total))
    return out


def validate_profile(bag_path_or_archive: str | os.PathLike[str], profile: Profile) -> list[Finding]:
    """Check a bag folder or a serialized bag (tar, tar.gz, zip) against ``profile``.

    Returns the failures, each naming the profile field and the value; an empty list means the
    bag conforms. RFC 8493 validity is a separate check (:func:`preserve.validate_bag`).
    """
    path = Path(bag_path_or_archive)
    if path.is_file():
        from preserve.serialize import archive_profile_findings

        return archive_profile_findings(path, profile)
    return check_facts(DirectoryFacts(open_bag(path)), profile)


def fatal_profile_findings(bag_path_or_archive: str | os.PathLike[str], profile: Profile) -> list[Finding]:
    """The fatal checks alone (see :func:`fatal_findings`), reading only bagit.txt: run them before
    hashing, so a bag the profile cannot accept is refused at once. Empty when they pass or when
    there is no bagit.txt to read (full validation then reports that)."""
    path = Path(bag_path_or_archive)
    if path.is_file():
        from preserve.serialize import archive_fatal_findings

        return archive_fatal_findings(path, profile)
    try:
        bag = open_bag(path)
    except PreserveError:
        return []
    return fatal_findings(profile, None, bag.version)

"""A collection folder: its ``collection.toml`` defaults and the files it holds.

``collection.toml`` (optional) has three tables::

    [collection]          identifier, title, organization, description, group_identifier,
                          sheet (default: metadata.csv, else metadata.json), ignore = [globs]
    [defaults]            any sheet column (rights_basis, rights_holder, agreement, donor,
                          album, ...) used where a row leaves that cell empty; the rights columns
                          act as one statement (see preserve.intake.rights). Not file, the
                          checksum columns or accept_damaged: those are facts about one file
    [bag-info]            extra bag-info.txt fields, e.g. Contact-Email = "archive@example.org"
"""

from __future__ import annotations

import fnmatch
import os
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from preserve.configfile import closest
from preserve.intake.sheet import COLUMNS, SHEET_NAMES, normalize_header

CONFIG_NAME = "collection.toml"
OS_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "ehthumbs.db", ".directory"})
# checksums and accepting damage are facts about one file, never collection-wide
_PER_ROW = frozenset({"md5", "sha1", "sha256", "sha512", "accept_damaged"})
_COLLECTION_KEYS = {"identifier", "title", "organization", "description", "group_identifier", "sheet", "ignore"}
_TABLES = ("collection", "defaults", "bag-info", "bag_info")


@dataclass
class CollectionConfig:
    identifier: str | None = None
    title: str | None = None
    organization: str | None = None
    description: str | None = None
    group_identifier: str | None = None
    sheet: str | None = None
    ignore: list[str] = field(default_factory=list)
    defaults: dict[str, str] = field(default_factory=dict)
    bag_info: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    present: bool = False


def _text(value: object) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def load_config(root: Path) -> CollectionConfig:
    """Read ``collection.toml``; problems are collected on the result (never raised)."""
    cfg = CollectionConfig()
    path = root / CONFIG_NAME
    if not path.is_file():
        return cfg
    cfg.present = True
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        cfg.problems.append(f"{CONFIG_NAME}: not valid TOML ({exc})")
        return cfg
    except OSError as exc:
        cfg.problems.append(f"{CONFIG_NAME}: cannot be read ({exc.strerror})")
        return cfg
    # like preserve.toml's (preserve.configfile), an unknown table or key is refused, never ignored,
    # and named with the closest known one
    for table in data:
        if table not in _TABLES:
            close = closest(table, _TABLES[:3])
            cfg.problems.append(f"{CONFIG_NAME}: unknown table or key [{table}]"
                                + (f"; did you mean [{close}]?" if close else " (expected [collection], [defaults], [bag-info])"))
    coll = data.get("collection", {})
    if isinstance(coll, dict):
        for key, value in coll.items():
            if key not in _COLLECTION_KEYS:
                close = closest(key, sorted(_COLLECTION_KEYS))
                cfg.problems.append(f"{CONFIG_NAME}: unknown key collection.{key}"
                                    + (f"; did you mean {close!r}?" if close else f" (known: {', '.join(sorted(_COLLECTION_KEYS))})"))
            elif key == "ignore":
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    cfg.ignore = list(value)
                else:
                    cfg.problems.append(f"{CONFIG_NAME}: collection.ignore must be a list of glob patterns")
            else:
                setattr(cfg, key, _text(value).strip() or None)
    defaults = data.get("defaults", {})
    if isinstance(defaults, dict):
        for key, value in defaults.items():
            column = normalize_header(key)
            if column not in COLUMNS or column == "file":
                close = closest(column, [c for c in COLUMNS if c != "file" and c not in _PER_ROW])
                cfg.problems.append(f"{CONFIG_NAME}: defaults.{key} is not a sheet column"
                                    + (f"; did you mean {close!r}?" if close else ""))
                continue
            if column in _PER_ROW:
                cfg.problems.append(f"{CONFIG_NAME}: defaults.{key} cannot be a default; it belongs to one file's row")
                continue
            cfg.defaults[column] = _text(value)
    info = data.get("bag-info", data.get("bag_info", {}))
    if isinstance(info, dict):
        for key, value in info.items():
            for v in value if isinstance(value, list) else [value]:
                cfg.bag_info.append((str(key), _text(v)))
    return cfg


def find_sheet(root: Path, cfg: CollectionConfig) -> str | None:
    """Collection-relative name of the sheet, or None when there is none."""
    if cfg.sheet:
        return cfg.sheet
    for name in SHEET_NAMES:
        if (root / name).is_file():
            return name
    return None


@dataclass(frozen=True)
class FoundFile:
    rel: str                        # collection-relative, POSIX separators
    size: int
    mtime_ns: int = 0
    symlink: bool = False
    special: bool = False           # device, pipe or socket
    unreadable: str | None = None   # why a regular file cannot be opened for reading (the OS error)


@dataclass
class Inventory:
    files: list[FoundFile] = field(default_factory=list)
    litter: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: folders that cannot be listed: (collection-relative path, the OS error); their files are unknown
    unlisted_folders: list[tuple[str, str]] = field(default_factory=list)

    def unlisted_folder(self, rel: str) -> tuple[str, str] | None:
        """The unlistable folder ``rel`` lies in (path, OS error), or None."""
        for folder, why in self.unlisted_folders:
            if not folder or rel.startswith(folder + "/"):
                return folder, why
        return None


def matches_ignore(rel: str, patterns: list[str]) -> bool:
    """``*.tmp`` matches by name anywhere; ``work/*`` or ``work/**`` by collection-relative path."""
    name = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        pat = pat.strip().removeprefix("./")
        if not pat:
            continue
        if "/" not in pat.rstrip("/"):
            if fnmatch.fnmatchcase(name, pat.rstrip("/")):
                return True
        elif fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(rel, pat.rstrip("*").rstrip("/") + "/*"):
            return True
    return False


def folder_ignored(folder: str, patterns: list[str]) -> bool:
    """Whether a pattern such as ``work/*`` or ``work/**`` leaves out everything in ``folder``."""
    for pat in patterns:
        pat = pat.strip().removeprefix("./")
        if pat.endswith(("/*", "/**")) and fnmatch.fnmatchcase(folder, pat.rstrip("*").rstrip("/")):
            return True
    return False


def is_litter(name: str) -> bool:
    return name in OS_LITTER or name.startswith("._")


def walk(root: Path, ignore: list[str]) -> Inventory:
    """Every file under ``root`` in sorted order (litter and ignored files set aside).

    Nothing is skipped in silence: a folder that cannot be listed goes to ``unlisted_folders`` and
    a regular file that cannot be opened for reading carries its OS error in ``unreadable``.
    """
    inv = Inventory()
    for rel, st, is_link in _iter(root, "", inv, ignore):
        if matches_ignore(rel, ignore):
            inv.ignored.append(rel)
            continue
        name = rel.rsplit("/", 1)[-1]
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
            inv.problems.append(f"{shown}: the name is not valid UTF-8; BagIt manifests are UTF-8, so rename it")
            continue
        if is_litter(name):
            inv.litter.append(rel)
            continue
        regular = stat.S_ISREG(st.st_mode) and not is_link
        inv.files.append(FoundFile(rel, st.st_size if regular else 0, st.st_mtime_ns, is_link,
                                   not regular and not is_link, _open_error(root / rel) if regular else None))
    return inv


def _open_error(path: Path) -> str | None:
    """Why ``path`` cannot be opened for reading, or None: a file packaging cannot read is found now, not mid-copy."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    return None


def _unlisted(inv: Inventory, rel: str, exc: OSError, ignore: list[str]) -> None:
    if rel and folder_ignored(rel, ignore):
        inv.ignored.append(f"{rel}/")       # left out whole: what it holds does not matter
    else:
        inv.unlisted_folders.append((rel, exc.strerror or str(exc)))


def _iter(root: Path, rel: str, inv: Inventory, ignore: list[str]) -> Iterator[tuple[str, os.stat_result, bool]]:
    try:
        entries = sorted(os.scandir(root / rel if rel else root), key=lambda e: e.name)
    except OSError as exc:
        _unlisted(inv, rel, exc, ignore)
        return
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            # listed but not searchable (read without execute permission): nothing below it can be read
            _unlisted(inv, rel, exc, ignore)
            return
        if stat.S_ISLNK(st.st_mode):
            yield child, st, True
        elif stat.S_ISDIR(st.st_mode):
            yield from _iter(root, child, inv, ignore)
        else:
            yield child, st, False


def inside(root: Path, rel: str) -> bool:
    """Whether ``rel`` stays inside ``root`` (no ``..`` climbing out, no absolute path, no link out)."""
    return bool(rel) and outside_reason(root, rel) is None


def outside_reason(root: Path, rel: str, fix: str = "list only files inside the collection folder") -> str | None:
    """Why the sheet's path ``rel`` cannot name a file of the collection at ``root``, with the fix
    (``fix`` where the path leads out); None when it names one below ``root``.

    Only a path that really leads out is said to point outside: an absolute path or one through
    ``..`` that ends inside the collection is told how to write it instead.
    """
    rel = rel.replace("\\", "/")
    real_root = os.path.realpath(root)

    def within(path: str) -> bool:
        return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)

    if rel.startswith("/"):
        real = os.path.realpath(rel)
        if real == real_root:
            return "is the collection folder itself; list its files, relative to it"
        if within(real):
            return f"is an absolute path; write it relative to the collection folder, as {os.path.relpath(real, real_root)}"
        return f"points outside the collection (an absolute path); {fix}, relative to it"
    if len(rel) >= 2 and rel[1] == ":" and rel[0].isascii() and rel[0].isalpha() and (len(rel) == 2 or rel[2] == "/"):
        return "is a Windows drive path; write it relative to the collection folder"
    if ".." in rel.split("/"):
        plain = os.path.normpath(rel)
        if plain == ".." or plain.startswith("../"):
            return f"points outside the collection ('..' climbs out of it); {fix}"
        return f"goes through '..'; write it as {plain}"
    real = os.path.realpath(root / rel)
    if within(real):
        return None
    # inside by name, outside on disk: a symbolic link on the way leads out; name it
    here = root
    for part in rel.split("/"):
        here = here / part
        if here.is_symlink():
            return (f"points outside the collection through the symbolic link {here.relative_to(root)}; "
                    "deliver the file itself inside the collection")
    return f"points outside the collection; {fix}"

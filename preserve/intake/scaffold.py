"""``preserve init``: a first sheet and ``collection.toml`` for a folder of audio.

:func:`scaffold_collection` walks the collection as ``preserve check`` does, writes one sheet row
per audio file (sorted by path) with the descriptive cells its embedded tags and BWF ``bext``
chunk give, and a commented ``collection.toml`` skeleton. The rights cells stay empty: rights are
a curator's statement, never guessed from a file.

What it writes passes ``preserve check`` once the organization and the rights (in the sheet or
in ``[defaults]``) are filled in. To get there, a pre-filled value the check would refuse (a tag
date that is not a date, an ISRC that is not one) is left out with a note, and the files that are
neither audio nor checksum files go to the ``ignore`` list, each named, with a comment saying
that a rights document among them must be taken off the list.

Nothing existing is overwritten: an existing sheet (``metadata.csv`` or ``metadata.json``) or
``collection.toml`` refuses the run (:class:`~preserve.errors.DestinationExists`, exit 4) before
anything is written, and each file is created with a hard link that fails if the name appeared
meanwhile.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import glob
import io
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from preserve.errors import DestinationExists, InputError, SourceNotFound
from preserve.intake import checksums as ck
from preserve.intake.check import looks_like_audio
from preserve.intake.collection import CONFIG_NAME, walk
from preserve.intake.identify import normalize_isrc, valid_isrc
from preserve.intake.sheet import COLUMNS, SHEET_NAMES

SHEET_FORMATS = ("csv", "json")
#: embedded tag -> sheet column (the tag names :mod:`preserve.intake.audio` reads)
_TAG_COLUMNS = {"title": "title", "artist": "artist", "album": "album", "tracknumber": "track_number",
                "discnumber": "disc_number", "date": "date", "isrc": "isrc", "label": "label",
                "composer": "composer", "genre": "genre"}
_NUMBER = re.compile(r"^\s*\d+\s*(?:/\s*\d+\s*)?$")


@dataclass
class ScaffoldResult:
    """What :func:`scaffold_collection` wrote and what it noticed."""

    root: Path
    sheet: Path
    config: Path
    #: one dict per audio file, by column (only the columns with a value)
    rows: list[dict[str, str]] = field(default_factory=list)
    #: files neither audio nor checksum files, put on collection.toml's ignore list
    ignored: list[str] = field(default_factory=list)
    #: pre-filled values left out, audio the check will refuse, folders that could not be read
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"collection": str(self.root), "sheet": str(self.sheet), "config": str(self.config),
                "audio_files": len(self.rows), "rows": self.rows, "ignored": self.ignored, "notes": self.notes}


def scaffold_collection(root: str | os.PathLike[str], *, sheet_format: str = "csv",
                        progress: Callable[[int, int], None] | None = None,
                        on_total: Callable[[int, int], None] | None = None) -> ScaffoldResult:
    """Write ``metadata.csv`` (or ``.json``) and ``collection.toml`` into the collection ``root``.

    ``progress(bytes, files)`` is called as each audio file has been read, ``on_total(bytes,
    files)`` once before the first. Raises :class:`DestinationExists` when a sheet or the config
    is already there, :class:`SourceNotFound` / :class:`InputError` for a missing or non-folder
    ``root``.
    """
    if sheet_format not in SHEET_FORMATS:
        raise InputError(f"{sheet_format!r}: the sheet format is csv or json")
    root = Path(root)
    if not root.exists():
        raise SourceNotFound(path=str(root))
    if not root.is_dir():
        raise InputError(f"{root}: is not a folder; preserve init takes the folder holding the audio")
    for name in (*SHEET_NAMES, CONFIG_NAME):
        if os.path.lexists(root / name):
            raise DestinationExists(f"{root / name}: already exists and is never overwritten; move it away to "
                                    "start again, or edit it (nothing was written)")
    result = ScaffoldResult(root, root / f"metadata.{sheet_format}", root / CONFIG_NAME)
    inventory = walk(root, [])
    for folder, why in inventory.unlisted_folders:
        result.notes.append(f"{folder or '.'}/: the folder cannot be listed ({why}); its files are not in the sheet")
    for problem in inventory.problems:
        result.notes.append(problem)
    audio: list[tuple[str, int]] = []
    for found in inventory.files:
        if found.symlink or found.special:
            result.notes.append(f"{found.rel}: not a regular file; preserve check will refuse it, replace it by the file")
        elif found.unreadable:
            result.notes.append(f"{found.rel}: cannot be read ({found.unreadable}); it is not in the sheet")
        elif looks_like_audio(root, found.rel):
            audio.append((found.rel, found.size))
        elif not ck.is_checksum_file(found.rel.rsplit("/", 1)[-1]):
            result.ignored.append(found.rel)
    if on_total is not None:
        on_total(sum(size for _, size in audio), len(audio))
    if audio:
        from preserve.intake.audio import analyse_audio
        from preserve.intake.identify import FormatIdentifier

        identifier = FormatIdentifier()
        for rel, size in audio:
            analysis = analyse_audio(str(root / rel), rel, identifier)
            result.notes.extend(p.message for p in analysis.problems)
            result.rows.append(_row(rel, analysis.tags, analysis.technical.bext, result.notes))
            if progress is not None:
                progress(size, 1)
    else:
        result.notes.append(f"{root}: no audio file was found; the sheet has its header only")
    sheet = _csv_text(result.rows) if sheet_format == "csv" else _json_text(result.rows)
    _create(result.sheet, sheet)
    _create(result.config, config_text(root, len(result.rows), result.ignored, result.sheet.name))
    return result


def _row(rel: str, tags: dict[str, list[str]], bext: dict[str, str], notes: list[str]) -> dict[str, str]:
    cells = {"file": rel}
    for tag, column in _TAG_COLUMNS.items():
        values = [v.strip() for v in tags.get(tag, []) if v.strip()]
        if values:
            cells[column] = "; ".join(values) if column in ("artist", "composer") else values[0]
    if bext.get("Description"):
        cells.setdefault("description", " ".join(bext["Description"].split()))
    if bext.get("OriginationDate"):
        # the day the file was made (a capture), never a release date
        cells.setdefault("recorded", bext["OriginationDate"].strip())
    return _checked(rel, cells, notes)


def _checked(rel: str, cells: dict[str, str], notes: list[str]) -> dict[str, str]:
    """``cells`` without the values the check would refuse, each left out with a note."""
    from preserve.sidecars.mods import date_encoding

    for column in ("date", "recorded"):
        date = cells.get(column)
        if date and date_encoding(date) is None:
            notes.append(f"{rel}: the embedded date {date!r} is not a date the sheet takes (YYYY, YYYY-MM, YYYY-MM-DD); "
                         f"left out, put it in the {column} or description cell as it should be")
            del cells[column]
    isrc = cells.get("isrc")
    if isrc:
        if valid_isrc(isrc):
            cells["isrc"] = normalize_isrc(isrc)
        else:
            notes.append(f"{rel}: the embedded ISRC {isrc!r} is not an ISRC; left out")
            del cells["isrc"]
    for column in ("track_number", "disc_number"):
        value = cells.get(column)
        if value and not _NUMBER.match(value):
            notes.append(f"{rel}: the embedded {column} {value!r} is not a number; left out")
            del cells[column]
    return cells


def _csv_text(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row.get(c, "") for c in COLUMNS])
    return out.getvalue()


def _json_text(rows: list[dict[str, str]]) -> str:
    # every column in every object: the curator sees what can be filled in
    return json.dumps([{c: row.get(c, "") for c in COLUMNS} for row in rows], indent=2, ensure_ascii=False) + "\n"


def _toml_string(value: str) -> str:
    # JSON's escapes are TOML basic-string escapes (\" \\ \n \uXXXX)
    return json.dumps(value, ensure_ascii=False)


def config_text(root: Path, tracks: int, ignored: list[str], sheet: str) -> str:
    """The commented ``collection.toml`` skeleton (see docs/intake.md for every key)."""
    today = dt.date.today().isoformat()
    lines = [
        f"# collection.toml, written by `preserve init` on {today} with {sheet} ({tracks} audio file(s)).",
        "# Fill in `organization` and the rights (below in [defaults], or per file in the sheet's",
        f"# rights columns), then run: preserve check {root.name}",
        "# Every key is described in the documentation (docs/intake.md, 'collection.toml').",
        "",
        "[collection]",
        f"identifier = {_toml_string(root.resolve().name)}   # bag-info External-Identifier",
        "# organization = \"Example Sound Archive\"   # REQUIRED: bag-info Source-Organization",
        "# title = \"The Example family recordings\"",
        "# description = \"Home recordings ...\"     # bag-info External-Description (default: the title)",
        "# group_identifier = \"example-donations\"  # bag-info Bag-Group-Identifier",
    ]
    if ignored:
        lines += [
            "# Files that are neither audio nor checksum files, left out of the package. A rights",
            "# document among them must be taken off this list and named in `agreement`. (A name",
            "# without a folder is left out in every folder.)",
            "ignore = [",
            *(f"    {_toml_string(glob.escape(rel))}," for rel in ignored),
            "]",
        ]
    lines += [
        "",
        "[defaults]   # any sheet column, used where a row leaves it empty",
        "# rights_basis = \"donor\"              # REQUIRED (here or in the sheet): copyright, license, statute,",
        "#                                      # donor, policy or other",
        "# rights_holder = \"Alex Example\"      # who holds the rights (not needed for public domain)",
        "# copyright_status = \"copyrighted\"    # copyrighted, public domain or unknown",
        "# agreement = \"rights/deed-of-gift.pdf\"   # the rights document, a file in this folder",
        "# permitted_acts = [\"replicate\", \"migrate\"]   # replicate, migrate, disseminate, modify, delete",
        "",
        "[bag-info]   # extra bag-info.txt fields",
        "# Contact-Email = \"archive@example.org\"",
        "",
    ]
    return "\n".join(lines)


def _create(path: Path, text: str) -> None:
    """Write ``path`` whole, or not at all, and never over a file that appeared meanwhile."""
    tmp = path.with_name(f".{path.name}.preserve-init-{secrets.token_hex(4)}")
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise DestinationExists(f"{path}: appeared while preserve init ran; it was left as it is") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

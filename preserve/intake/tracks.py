"""Building a :class:`~preserve.model.Track` from a sheet row and what the audio file says of itself.

The sheet wins; an empty cell falls back to ``collection.toml`` ``[defaults]``, then to the file's
embedded tags. Where the sheet and the tags disagree on ISRC or title, a warning says so (the
sheet is kept): a mismatch is often a row pasted against the wrong file.

What is written is true or refused: a sheet date that is not W3CDTF or EDTF level 0 or 1, an
identifier that is not what its column says (ISRC, UPC/EAN, catalogue or matrix number), a
contributor without a MARC relator role and a notice without a year and holder are problems (never
written, never "normalized" into something else); an embedded date, ISRC or notice that is not one
is left out with a warning. BWF ``bext`` fields off the FADGI guidelines are warnings only. A track with no title in the sheet or its
tags is titled by its file name (without folder and extension), and a warning says so.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Mapping

from preserve.intake.audio import AudioAnalysis
from preserve.intake.fadgi import fadgi_warnings
from preserve.intake.identifiers import check_free_form, check_gtin, check_isrc
from preserve.intake.identify import normalize_isrc, valid_isrc
from preserve.intake.notices import notice_problem, parse_notice
from preserve.intake.roles import parse_contributors
from preserve.intake.sheet import SheetRow, split_multi
from preserve.model import Rights, Track
from preserve.sidecars.dates import DATE_FORMS, date_encoding

_DAMAGE = frozenset({"essence-mismatch", "truncated", "undecodable"})


def _int(value: str, column: str, where: str, warnings: list[str]) -> int | None:
    if not value:
        return None
    m = re.match(r"^\s*(\d+)\s*(?:/\s*\d+\s*)?$", value)
    if not m:
        warnings.append(f"{where}: {column} {value!r} is not a number; left out")
        return None
    return int(m.group(1))


def _date(cell: str, column: str, where: str, problems: list[tuple[str, str]]) -> str | None:
    if cell and date_encoding(cell) is None:
        problems.append(("date", f"{where}: {column} {cell!r} is not a date ({DATE_FORMS}); correct it, or put "
                                 "free text such as 'summer 1978' in the description"))
        return None
    return cell or None


def _release_date(cell: Callable[[str], str], where: str, problems: list[tuple[str, str]]) -> str | None:
    """The release date: the ``released`` column, or ``date`` (which has always meant a release date)."""
    released = _date(cell("released"), "released", where, problems)
    date = _date(cell("date"), "date", where, problems)
    if released and date and released != date:
        problems.append(("date", f"{where}: released {released!r} and date {date!r} disagree; both are the release "
                                 "date: keep one (a recording date goes in the recorded column)"))
    return released or date


def _identifiers(cell: Callable[[str], str], where: str, problems: list[tuple[str, str]]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for column in ("isrc", "upc", "catalogue_number", "matrix_number"):
        value = cell(column)
        if not value:
            out[column] = None
            continue
        if column == "isrc":
            checked = check_isrc(value)
        elif column == "upc":
            checked, _type = check_gtin(value, column)
        else:
            checked = check_free_form(value, column)
        if checked.problem:
            problems.append(("identifier", f"{where}: {checked.problem}"))
        out[column] = checked.value
    return out


def _notices(cell: Callable[[str], str], where: str, problems: list[tuple[str, str]]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for column, kind in (("p_line", "p"), ("c_line", "c")):
        value = cell(column)
        notice = parse_notice(value, kind) if value else None
        if value and notice is None:
            problems.append(("notice", f"{where}: {notice_problem(column, value)}"))
        out[column] = notice
    return out


def track_from_row(row: SheetRow, rel: str, rights: Rights, defaults: Mapping[str, str],
                   where: str) -> tuple[Track, list[str], list[tuple[str, str]]]:
    """A track from the sheet (and defaults) alone; returns it, its warnings and its problems (code, message)."""
    warnings: list[str] = []
    problems: list[tuple[str, str]] = []

    def cell(column: str) -> str:
        return row.get(column) or defaults.get(column, "").strip()

    ids = _identifiers(cell, where, problems)
    notices = _notices(cell, where, problems)
    contributors, role_problems = parse_contributors(split_multi(cell("contributors")))
    problems.extend(("role", f"{where}: {p}") for p in role_problems)
    track = Track(
        source_path=rel, bag_path="", row=row.number,
        title=cell("title") or None, artists=split_multi(cell("artist")), album=cell("album") or None,
        track_number=_int(cell("track_number"), "track_number", where, warnings),
        disc_number=_int(cell("disc_number"), "disc_number", where, warnings),
        date=_release_date(cell, where, problems), recorded=_date(cell("recorded"), "recorded", where, problems),
        isrc=ids["isrc"], upc=ids["upc"], label=cell("label") or None,
        composers=split_multi(cell("composer")), genre=cell("genre") or None, language=cell("language") or None,
        description=cell("description") or None, catalogue_number=ids["catalogue_number"],
        matrix_number=ids["matrix_number"], contributors=contributors,
        p_line=notices["p_line"], c_line=notices["c_line"],
        carrier=cell("source") or None, accession=cell("accession") or None, donor=cell("donor") or None,
        rights=rights,
    )
    return track, warnings, problems


def apply_analysis(track: Track, a: AudioAnalysis, accept_damaged: bool) -> list[tuple[str, str, bool]]:
    """Fold an analysis into ``track``: returns (message, code, is_problem) for each finding."""
    out: list[tuple[str, str, bool]] = []
    track.format, track.technical, track.essence = a.format, a.technical, a.essence
    track.size = a.size
    damage = [p for p in a.problems if p.code in _DAMAGE]
    for p in a.problems:
        if accept_damaged and p.code in _DAMAGE:
            out.append((f"{p.message} [packaged as a recorded known defect: accept_damaged = yes]", p.code, False))
        else:
            out.append((p.message, p.code, True))
    if accept_damaged and damage:
        essence = track.essence
        if essence.outcome in ("not applicable", "pass"):
            essence = dataclasses.replace(essence, outcome="fail", method=essence.method or "decoding",
                                          detail="; ".join(p.message for p in damage))
        track.essence = dataclasses.replace(essence, accepted_damage=True)
    out.extend((w, "warning", False) for w in a.warnings)
    where = f"{track.source_path} (row {track.row})"
    tags = a.tags
    tag_isrcs = []
    for value in tags.get("isrc", []):
        if valid_isrc(value):
            tag_isrcs.append(normalize_isrc(value))
        else:
            out.append((f"{where}: the file's embedded ISRC {value!r} is not an ISRC; it is left out", "warning", False))
    if track.isrc and tag_isrcs and track.isrc not in tag_isrcs:
        out.append((f"{where}: the sheet's ISRC {track.isrc} differs from the file's embedded ISRC {', '.join(tag_isrcs)}; the sheet is kept", "warning", False))
    if not track.isrc and tag_isrcs:
        track.isrc = tag_isrcs[0]
    tag_title = tags["title"][0] if tags.get("title") else None
    if track.title and tag_title and track.title.casefold().strip() != tag_title.casefold().strip():
        out.append((f"{where}: the sheet's title {track.title!r} differs from the file's embedded title {tag_title!r}; the sheet is kept", "warning", False))
    track.title = track.title or tag_title
    if not track.title:
        name = posixpath.splitext(posixpath.basename(track.source_path))[0] or posixpath.basename(track.source_path)
        track.title = name
        out.append((f"{where}: no title in the sheet or in the file's tags; its file name {name!r} is used as the "
                    "title (give one in the sheet's title column)", "warning", False))
    if not track.artists and tags.get("artist"):
        track.artists = tuple(v for a_ in tags["artist"] for v in split_multi(a_))
    if not track.composers and tags.get("composer"):
        track.composers = tuple(tags["composer"])
    for attr, key in (("album", "album"), ("genre", "genre"), ("label", "label")):
        if not getattr(track, attr) and tags.get(key):
            setattr(track, attr, tags[key][0])
    if not track.date and tags.get("date"):
        tag_date = tags["date"][0].strip()
        if date_encoding(tag_date) is not None:
            track.date = tag_date
        else:
            out.append((f"{where}: the file's embedded date {tag_date!r} is not a date ({DATE_FORMS}); it is left out "
                        "(give the date in the sheet's date column)", "warning", False))
    for attr, key in (("track_number", "tracknumber"), ("disc_number", "discnumber")):
        if getattr(track, attr) is None and tags.get(key):
            m = re.match(r"\d+", tags[key][0])
            if m:
                setattr(track, attr, int(m.group(0)))
    out.extend(_tag_notices(track, tags, where))
    out.extend((w, "warning", False) for w in fadgi_warnings(track.source_path, track.technical.bext))
    return out


def _tag_notices(track: Track, tags: Mapping[str, list[str]], where: str) -> list[tuple[str, str, bool]]:
    """P-line and C-line from the file's tags (ID3 TPRO/TCOP, Vorbis COPYRIGHT, MP4 cprt, RIFF INFO ICOP)."""
    out: list[tuple[str, str, bool]] = []
    info_copyright = track.technical.info.get("ICOP")
    for attr, kind, values in (("p_line", "p", tags.get("pline", [])),
                               ("c_line", "c", [*tags.get("copyright", []), *([info_copyright] if info_copyright else [])])):
        if getattr(track, attr) or not values:
            continue
        notice = parse_notice(values[0], kind)
        other, other_attr = ("c", "c_line") if kind == "p" else ("p", "p_line")
        if notice is not None:
            setattr(track, attr, notice)
        elif parse_notice(values[0], other) is not None:
            # a phonogram notice in a copyright field (RIFF ICOP and ID3 TCOP hold either): it is the
            # other line, taken as such unless the sheet gives that line
            label = "P-line" if other == "p" else "copyright notice (C-line)"
            if getattr(track, other_attr):
                out.append((f"{where}: the file's embedded {'P-line' if kind == 'p' else 'copyright notice'} field "
                            f"holds {values[0]!r}, a {label}; the sheet's {other_attr} is kept", "warning", False))
            else:
                setattr(track, other_attr, parse_notice(values[0], other))
        else:
            out.append((f"{where}: the file's embedded {'P-line' if kind == 'p' else 'copyright notice'} {values[0]!r} "
                        "gives no year and holder; it is left out (give it in the sheet's "
                        f"{attr} column)", "warning", False))
    return out


def lossy_warnings(tracks: list[Track]) -> list[str]:
    """A lossy file that is the only copy of its recording is not a preservation-grade master."""
    def keys(t: Track) -> set[tuple[str, ...]]:
        k: set[tuple[str, ...]] = set()
        if t.isrc:
            k.add(("isrc", t.isrc))
        if t.title:
            k.add(("title", t.title.casefold(), *sorted(a.casefold() for a in t.artists)))
        return k

    lossless: set[tuple[str, ...]] = set()
    for t in tracks:
        if t.technical.codec and not t.technical.lossy:
            lossless |= keys(t)
    out = []
    for t in tracks:
        if t.technical.lossy and not (keys(t) & lossless):
            out.append(f"{t.source_path} (row {t.row}): {t.technical.codec} is a lossy format and this is the only copy of "
                       "the recording in the collection; it is not a preservation-grade master (ask the producer for a "
                       "lossless original if one exists)")
    return out

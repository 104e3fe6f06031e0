"""What an ERN message says, as the check's sheet rows, producer checksums and expectations.

A delivery is checked exactly as a collection with a sheet is: each file of each SoundRecording
becomes one row (title, artist, album, track and disc, date, ISRC, UPC, label, composer, genre,
language, catalogue number), so the rights gate, the file accounting and the comparison with the
file's own tags work unchanged. What a sheet has no column for (contributors with their roles,
subtitle and version, P-line, original release date, parental warning, DDEX references) is
carried as :class:`TrackFacts` and set on the track after the row is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from preserve.errors import InputError
from preserve.intake.checksums import Expected
from preserve.intake.ddex.parse import FileRef, Message, Recording, Release, read_message
from preserve.intake.notices import parse_notice
from preserve.intake.roles import relator_label
from preserve.intake.sheet import Sheet, SheetRow
from preserve.model import Contributor, Track

#: DDEX contributor and artist roles with a MARC relator code (id.loc.gov/vocabulary/relators);
#: a role not listed is kept as DDEX names it
MARC_RELATORS = {
    "Actor": "act", "Arranger": "arr", "MusicArranger": "arr", "Author": "aut", "Writer": "aut",
    "Composer": "cmp", "ComposerLyricist": "cmp", "Conductor": "cnd", "Choreographer": "chr",
    "Director": "drt", "Editor": "edt", "Engineer": "eng", "Librettist": "lbt", "Lyricist": "lyr",
    "Narrator": "nrt", "Performer": "prf", "MainArtist": "prf", "FeaturedArtist": "prf",
    "AssociatedPerformer": "prf", "Artist": "art", "Producer": "pro", "StudioProducer": "pro",
    "Publisher": "pbl", "MusicPublisher": "pbl", "RecordingEngineer": "rce", "Singer": "sng",
    "Vocalist": "sng", "LeadVocalist": "sng", "BackgroundVocalist": "sng", "Translator": "trl",
    "Instrumentalist": "itr", "Musician": "mus", "Orchestra": "prf", "Ensemble": "prf",
}
_COMPOSER_ROLES = frozenset({"Composer", "ComposerLyricist"})
_DURATION = re.compile(r"^P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def marc_role(role: str) -> str:
    """The MARC relator code of a DDEX role, or the DDEX role itself when MARC has none."""
    return MARC_RELATORS.get(role, role)


def _contributor(name: str, role: str) -> Contributor:
    """A credit with its MARC relator code and label; a DDEX role MARC has no code for keeps its own name."""
    code = marc_role(role)
    label = relator_label(code)
    return Contributor(name, code, label) if label else Contributor(name, "", role)


def _notice(value: str | None, kind: str) -> str | None:
    """A P-line or C-line as the sheet's notices are written (symbol, year, holder); as given otherwise."""
    if not value:
        return None
    return parse_notice(value, kind) or value


def duration_seconds(value: str | None) -> float | None:
    """ISO 8601 duration (``PT3M20.5S``, ``P0DT0H3M20S``) in seconds, or None."""
    m = _DURATION.match((value or "").strip())
    if not value or not m or not any(m.groups()):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


@dataclass
class TrackFacts:
    """What the message says of one audio file beyond the sheet's columns."""

    recording: Recording
    file: FileRef
    release: Release | None
    message: Message


@dataclass
class Delivery:
    """One ERN message read as the check needs it."""

    name: str                                   # collection-relative path of the message
    message: Message
    sheet: Sheet
    labels: dict[int, str] = field(default_factory=dict)       # row number -> "SoundRecording A1"
    facts: dict[int, TrackFacts] = field(default_factory=dict)
    expected: list[Expected] = field(default_factory=list)
    #: non-audio resources (images, booklets): collection-relative path -> "Image A3"
    others: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)   # (code, message, file)
    warnings: list[str] = field(default_factory=list)

    @property
    def release(self) -> Release | None:
        return self.message.main_release


def _relative(path: str) -> str | None:
    """A message's file reference as a collection-relative path, or None when it points elsewhere."""
    p = path.strip().replace("\\", "/")
    if p.lower().startswith("file://"):
        return None
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", p):
        return None
    return p.removeprefix("./") or None


def load_delivery(root: Path, rel: str, version: str) -> Delivery:
    """Read the message ``rel`` of the delivery folder ``root``.

    Raises :class:`~preserve.errors.UnsafeXML` for a dangerous or broken document and
    :class:`~preserve.errors.InputError` for a message that lists no resources at all.
    """
    msg = read_message(str(root / rel), source=rel, version=version)
    if not msg.recordings and not msg.others:
        raise InputError(f"{rel}: the ERN message lists no resources (no SoundRecording, no Image); it describes "
                         "nothing to package. Ask the label for the full delivery message")
    sheet = Sheet(root / rel, rel, encoding=f"ERN {version}")
    sheet.columns = ["file", "title", "artist", "album", "track_number", "disc_number", "date", "isrc", "upc",
                     "label", "composer", "genre", "language", "catalogue_number"]
    d = Delivery(rel, msg, sheet)
    release = msg.main_release
    if release is None:
        d.warnings.append(f"{rel}: the message has no Release; the tracks are packaged without album, UPC or order")
    elif msg.deals:
        d.warnings.append(f"{rel}: {msg.deals} deal(s) are kept in the packaged message; deal terms are commercial, "
                          "not rights the archive holds, so they are not recorded as PREMIS rights")
    number = 0
    for rec in msg.recordings:
        where = f"{rel} SoundRecording {rec.reference or '(no ResourceReference)'}"
        if not rec.files:
            d.problems.append(("missing-file", f"{where}: names no file (no File in its technical details); "
                                               "the recording cannot be packaged without its audio", None))
        for f in rec.files:
            target = _relative(f.path)
            if target is None:
                d.problems.append(("unsafe-path", f"{where}: the file {f.path} is not a path inside the delivery; "
                                                  "deliver the file in the folder and name it relatively", None))
                continue
            number += 1
            d.labels[number] = f"SoundRecording {rec.reference}"
            d.facts[number] = TrackFacts(rec, f, release, msg)
            d.sheet.rows.append(SheetRow(number, _cells(target, rec, release)))
            _expect(d, target, f, where)
    for other in msg.others:
        where = f"{rel} {other.kind} {other.reference}"
        for f in other.files:
            target = _relative(f.path)
            if target is None:
                d.problems.append(("unsafe-path", f"{where}: the file {f.path} is not a path inside the delivery", None))
                continue
            d.others[target] = f"{other.kind} {other.reference}"
            _expect(d, target, f, where)
    return d


def _expect(d: Delivery, target: str, f: FileRef, where: str) -> None:
    for h in f.hashes:
        if h.hashlib_name is None or h.hex is None:
            what = "an algorithm preserve cannot compute" if h.hashlib_name is None else "not hexadecimal or base64"
            d.warnings.append(f"{where}: HashSum {h.algorithm} of {target} is {what}; it is kept in the packaged "
                              "message but not verified")
            continue
        d.expected.append(Expected(target, h.hashlib_name, h.hex, f"{where} HashSum {h.algorithm}"))


def _cells(target: str, rec: Recording, release: Release | None) -> dict[str, str]:
    disc, number = release.order.get(rec.reference, (None, None)) if release else (None, None)
    composers = [name for name, role in rec.contributors if role in _COMPOSER_ROLES and name]
    return {
        "file": target,
        "title": rec.title or "",
        "artist": "; ".join(rec.artists) or (rec.display_artist or ""),
        "album": (release.title or "") if release else "",
        "track_number": str(number) if number is not None else "",
        "disc_number": str(disc) if disc is not None else "",
        "date": (release.release_date or release.original_release_date or "") if release else "",
        "isrc": rec.isrc or "",
        "upc": (release.icpn or "") if release else "",
        "label": rec.label or ((release.label or "") if release else ""),
        "composer": "; ".join(composers),
        "genre": rec.genre or ((release.genre or "") if release else ""),
        "language": rec.language or "",
        "catalogue_number": (release.catalogue_number or "") if release else "",
    }


def apply_facts(track: Track, facts: TrackFacts) -> None:
    """Set on ``track`` what the message says beyond the sheet's columns."""
    rec, release, msg = facts.recording, facts.release, facts.message
    track.subtitle = " ".join(v for v in (rec.subtitle, rec.version) if v) or None
    track.contributors = tuple(_contributor(name, role) for name, role in rec.contributors if name)
    track.p_line = _notice(rec.p_line or (release.p_line if release else None), "p")
    track.c_line = _notice(release.c_line if release else None, "c")
    track.original_date = release.original_release_date if release else None
    track.parental_warning = rec.parental_warning
    ids: list[tuple[str, str]] = [("DDEX ResourceReference", rec.reference)] if rec.reference else []
    ids.extend((f"DDEX ProprietaryId {ns}".strip(), value) for ns, value in rec.proprietary_ids)
    if facts.file.technical_reference:
        ids.append(("DDEX TechnicalResourceDetailsReference", facts.file.technical_reference))
    if release is not None:
        ids.extend(("DDEX " + kind, value) for kind, value in (
            ("ReleaseReference", release.reference), ("GRid", release.grid)) if value)
    if msg.message_id:
        ids.append(("DDEX MessageId", msg.message_id))
    if msg.sender_party_id:
        ids.append(("DDEX MessageSender PartyId", msg.sender_party_id))
    track.source_identifiers = tuple(ids)


def technical_problems(track: Track, facts: TrackFacts, where: str) -> list[str]:
    """Where the message's stated bit depth, sample rate or channel count differs from the file."""
    f, tech = facts.file, track.technical
    out = []
    for name, stated, found in (("BitsPerSample", f.bit_depth, tech.bit_depth),
                                ("NumberOfChannels", f.channels, tech.channels)):
        if stated is not None and found is not None and stated != found:
            out.append(f"{where}: the message states {name} {stated}, the file has {found}; "
                       "correct the message or deliver the right file")
    if f.sample_rate is not None and tech.sample_rate is not None and abs(f.sample_rate - tech.sample_rate) > 0.5:
        out.append(f"{where}: the message states SamplingRate {f.sample_rate:g} Hz, the file has {tech.sample_rate} Hz; "
                   "correct the message or deliver the right file")
    return out


def duration_warning(track: Track, facts: TrackFacts, where: str) -> str | None:
    """A warning when the message's duration and the file's differ by more than a second."""
    stated = duration_seconds(facts.recording.duration)
    found = track.technical.duration
    if stated is None or found is None or abs(stated - found) <= 1.0:
        return None
    return f"{where}: the message states Duration {facts.recording.duration} ({stated:g} s), the file lasts {found:.3f} s"


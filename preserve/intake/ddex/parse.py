"""Reading an ERN 3.8.2 or 4.x NewReleaseMessage into plain records, in bounded memory.

The message is streamed (:func:`preserve.xmlsafe.iterparse_untrusted`): each item of the
message's lists (a SoundRecording, an Image, a Release, a Party) is read when it ends and then
cleared, so a box set's 50 MB message never stands in memory as one tree. Elements are matched
by local name, so a message that qualifies its children with the ERN namespace reads the same.

The two families differ where the comments say: 3.8.2 names artists inline and keeps most facts
in a ``...DetailsByTerritory`` block; 4.x references a PartyList and uses DisplayTitle,
TechnicalDetails/DeliveryFile and File/URI. A file's technical facts and HashSums are read the
same way in both: from each ``File`` element and the element holding it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from lxml import etree

from preserve.xmlsafe import iterparse_untrusted

#: ERN HashSumAlgorithmType values and the hashlib names preserve verifies them with
HASH_ALGORITHMS = {"MD5": "md5", "SHA1": "sha1", "SHA-1": "sha1", "SHA224": "sha224", "SHA-224": "sha224",
                   "SHA256": "sha256", "SHA-256": "sha256", "SHA384": "sha384", "SHA-384": "sha384",
                   "SHA512": "sha512", "SHA-512": "sha512"}
_LISTS = {"ResourceList", "ReleaseList", "PartyList", "DealList", "WorkList", "CueSheetList", "CollectionList",
          "ChapterList", "SupplementalDocumentList"}
#: the items of those lists (and the header): each is read whole when it ends, then cleared
_ITEMS = ("MessageHeader", "SoundRecording", "Image", "Text", "Video", "SheetMusic", "Software", "MIDI",
          "UserDefinedResource", "Release", "TrackRelease", "Party", "ReleaseDeal", "MusicalWork", "CueSheet",
          "Collection", "Chapter")


@dataclass(frozen=True)
class HashSum:
    algorithm: str                 # as the message names it: "MD5", "SHA256"
    value: str                     # as given
    hashlib_name: str | None       # "md5", ... or None when preserve cannot compute it
    hex: str | None                # the digest in lower-case hex, None when it is neither hex nor base64


@dataclass(frozen=True)
class FileRef:
    path: str                      # as the message gives it (FilePath + FileName, or URI)
    hashes: tuple[HashSum, ...] = ()
    codec: str | None = None
    channels: int | None = None
    sample_rate: float | None = None   # Hz
    bit_depth: int | None = None
    technical_reference: str | None = None


@dataclass
class Recording:
    reference: str
    isrc: str | None = None
    title: str | None = None
    subtitle: str | None = None
    version: str | None = None
    display_artist: str | None = None
    artists: list[str] = field(default_factory=list)
    artist_refs: list[str] = field(default_factory=list)
    contributors: list[tuple[str, str]] = field(default_factory=list)      # (name, DDEX role)
    contributor_refs: list[tuple[str, str]] = field(default_factory=list)  # (party reference, DDEX role)
    duration: str | None = None
    p_line: str | None = None
    genre: str | None = None
    language: str | None = None
    parental_warning: str | None = None
    label: str | None = None
    proprietary_ids: list[tuple[str, str]] = field(default_factory=list)   # (namespace, value)
    files: list[FileRef] = field(default_factory=list)


@dataclass
class OtherResource:
    reference: str
    kind: str                      # "Image", "Text", "Video", ...
    type: str | None = None        # "FrontCoverImage", ...
    files: list[FileRef] = field(default_factory=list)


@dataclass
class Release:
    reference: str
    kind: str = "Release"          # "Release" or "TrackRelease"
    main: bool = False
    release_type: str | None = None
    icpn: str | None = None
    grid: str | None = None
    catalogue_number: str | None = None
    proprietary_ids: list[tuple[str, str]] = field(default_factory=list)
    title: str | None = None
    display_artist: str | None = None
    label: str | None = None
    label_ref: str | None = None
    genre: str | None = None
    release_date: str | None = None
    original_release_date: str | None = None
    p_line: str | None = None
    c_line: str | None = None
    #: resource reference -> (disc, track) from the resource group sequence
    order: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    resources: list[str] = field(default_factory=list)


@dataclass
class Message:
    source: str
    version: str
    message_id: str | None = None
    thread_id: str | None = None
    sender_party_id: str | None = None
    sender_name: str | None = None
    created: str | None = None
    recordings: list[Recording] = field(default_factory=list)
    others: list[OtherResource] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    parties: dict[str, str] = field(default_factory=dict)   # party reference -> name
    deals: int = 0

    @property
    def main_release(self) -> Release | None:
        """The release the delivery is of: the one marked main, else the first that is not a TrackRelease."""
        for r in self.releases:
            if r.main:
                return r
        full = [r for r in self.releases if r.kind == "Release"]
        with_icpn = [r for r in full if r.icpn]
        chosen = with_icpn or full
        return chosen[0] if chosen else None


# --------------------------------------------------------------------------------------- helpers

def _local(el: etree._Element) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


# "{*}Name" matches the name in any namespace or none, and lxml does the matching in C
def _kids(el: etree._Element, name: str) -> list[etree._Element]:
    return list(el.iterchildren(f"{{*}}{name}"))


def _kid(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if el is None:
            return None
        el = next(el.iterchildren(f"{{*}}{name}"), None)
    return el


def _text(el: etree._Element | None, *path: str) -> str | None:
    found = _kid(el, *path)
    if found is None or found.text is None:
        return None
    value = " ".join(found.text.split())
    return value or None


def _descendants(el: etree._Element, name: str) -> list[etree._Element]:
    return list(el.iter(f"{{*}}{name}"))


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _digest(value: str) -> str | None:
    v = value.strip()
    if re.fullmatch(r"[0-9A-Fa-f]+", v) and len(v) % 2 == 0:
        return v.lower()
    try:
        return base64.b64decode(v, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def _hashsums(file_el: etree._Element) -> tuple[HashSum, ...]:
    out = []
    for h in _kids(file_el, "HashSum"):
        # 4.x: Algorithm + HashSumValue; 3.8.2: HashSumAlgorithmType + an inner HashSum
        named = _kid(h, "Algorithm")
        named = named if named is not None else _kid(h, "HashSumAlgorithmType")
        algorithm = _role(named) if named is not None else ""
        value = _text(h, "HashSumValue") or _text(h, "HashSum") or ""
        if algorithm or value:
            out.append(HashSum(algorithm, value, HASH_ALGORITHMS.get(algorithm.upper().replace("_", "-")), _digest(value)))
    return tuple(out)


def _rate(el: etree._Element | None) -> float | None:
    if el is None or not el.text:
        return None
    try:
        value = float(el.text.strip())
    except ValueError:
        return None
    unit = (el.get("UnitOfMeasure") or "").lower()
    return value * 1000 if unit == "khz" or (not unit and value < 1000) else value


def _files(resource: etree._Element) -> list[FileRef]:
    out = []
    for f in _descendants(resource, "File"):
        holder = f.getparent()
        uri = _text(f, "URI") or _text(f, "URL")
        if uri:
            path = uri
        else:
            name = _text(f, "FileName") or ""
            folder = (_text(f, "FilePath") or "").replace("\\", "/")
            path = (folder.rstrip("/") + "/" + name) if folder else name
        if not path:
            continue
        tech = holder
        if tech is not None and _local(tech) == "DeliveryFile":
            ref = _text(tech.getparent(), "TechnicalResourceDetailsReference")
        else:
            ref = _text(tech, "TechnicalResourceDetailsReference")
        out.append(FileRef(path, _hashsums(f), _text(tech, "AudioCodecType"), _int(_text(tech, "NumberOfChannels")),
                           _rate(_kid(tech, "SamplingRate")), _int(_text(tech, "BitsPerSample")), ref))
    return out


def _territory(el: etree._Element, name: str) -> etree._Element | None:
    """The Worldwide block of a ``...DetailsByTerritory`` list (3.8.2), else the first."""
    blocks = _kids(el, name)
    for b in blocks:
        if any((t.text or "").strip() == "Worldwide" for t in _kids(b, "TerritoryCode")):
            return b
    return blocks[0] if blocks else None


def _display_title(el: etree._Element | None) -> tuple[str | None, str | None]:
    """(title, subtitle) of a 3.8.2 DisplayTitle/Title block, preferring TitleType DisplayTitle."""
    if el is None:
        return None, None
    titles = _kids(el, "Title")
    chosen = next((t for t in titles if t.get("TitleType") == "DisplayTitle"), titles[0] if titles else None)
    return _text(chosen, "TitleText"), _text(chosen, "SubTitle")


def _line(el: etree._Element | None, name: str) -> str | None:
    block = _kid(el, name)
    if block is None:
        return None
    text = _text(block, f"{name}Text")
    year = _text(block, "Year")
    if text and year and year not in text:
        return f"{year} {text}"
    return text or year


def _names(el: etree._Element, name: str) -> list[str]:
    out = []
    for a in _kids(el, name):
        full = _text(a, "PartyName", "FullName")
        if full:
            out.append(full)
    return out


# --------------------------------------------------------------------------------------- readers

def _recording(el: etree._Element, v3: bool) -> Recording:
    rec = Recording(_text(el, "ResourceReference") or "")
    # the recording's own identifiers: 3.8.2 SoundRecordingId, 4.x ResourceId (in 4.2+ inside an edition),
    # not the ProprietaryIds of the parties named inside the recording
    ids = _kids(el, "SoundRecordingId") + _descendants(el, "ResourceId")
    isrcs = [i for block in ids for i in _kids(block, "ISRC")] or _descendants(el, "ISRC")
    rec.isrc = " ".join((isrcs[0].text or "").split()) or None if isrcs else None
    for pid in (p for block in ids for p in _kids(block, "ProprietaryId")):
        if pid.text and pid.text.strip():
            rec.proprietary_ids.append((pid.get("Namespace") or "", pid.text.strip()))
    rec.duration = _text(el, "Duration")
    rec.language = _text(el, "LanguageOfPerformance")
    rec.files = _files(el)
    if v3:
        rec.title, rec.subtitle = _text(el, "ReferenceTitle", "TitleText"), _text(el, "ReferenceTitle", "SubTitle")
        details = _territory(el, "SoundRecordingDetailsByTerritory")
        if details is not None:
            title, subtitle = _display_title(details)
            rec.title, rec.subtitle = title or rec.title, subtitle or rec.subtitle
            rec.artists = _names(details, "DisplayArtist")
            rec.display_artist = _text(details, "DisplayArtistName") or (", ".join(rec.artists) or None)
            for c in _kids(details, "ResourceContributor"):
                for role in _kids(c, "ResourceContributorRole"):
                    rec.contributors.append((_text(c, "PartyName", "FullName") or "", _role(role)))
            for c in _kids(details, "IndirectResourceContributor"):
                for role in _kids(c, "IndirectResourceContributorRole"):
                    rec.contributors.append((_text(c, "PartyName", "FullName") or "", _role(role)))
            rec.p_line = _line(details, "PLine")
            rec.genre = _text(details, "Genre", "GenreText")
            rec.parental_warning = _text(details, "ParentalWarningType")
            rec.label = _text(details, "LabelName")
        rec.version = None
    else:
        rec.title = _text(el, "DisplayTitleText") or _text(el, "DisplayTitle", "TitleText")
        rec.subtitle = _text(el, "DisplayTitle", "SubTitle")
        rec.version = _text(el, "VersionType")
        rec.display_artist = _text(el, "DisplayArtistName")
        for a in _kids(el, "DisplayArtist"):
            ref = _text(a, "ArtistPartyReference")
            if ref:
                rec.artist_refs.append(ref)
            elif _text(a, "PartyName", "FullName"):
                rec.artists.append(_text(a, "PartyName", "FullName") or "")
        for c in _kids(el, "Contributor"):
            ref = _text(c, "ContributorPartyReference") or ""
            for role in _kids(c, "Role"):
                rec.contributor_refs.append((ref, _role(role)))
        edition = _kid(el, "SoundRecordingEdition")
        rec.p_line = _line(el, "PLine") or _line(edition, "PLine")
        rec.genre = _text(el, "Genre", "GenreText")
        rec.parental_warning = _text(el, "ParentalWarningType")
    return rec


def _role(el: etree._Element) -> str:
    value = " ".join((el.text or "").split())
    return (el.get("UserDefinedValue") or value) if value == "UserDefined" else value


def _other(el: etree._Element) -> OtherResource:
    kind = _local(el)
    type_ = _text(el, f"{kind}Type") or _text(el, "Type")
    return OtherResource(_text(el, "ResourceReference") or "", kind, type_, _files(el))


def _order(group: etree._Element, release: Release) -> None:
    """Track and disc numbers from the resource group: nested groups are discs, their items tracks."""
    subgroups = _kids(group, "ResourceGroup")
    if subgroups:
        for number, sub in enumerate(subgroups, 1):
            disc = _int(_text(sub, "SequenceNumber")) or number
            _items(sub, release, disc if len(subgroups) > 1 or _text(sub, "SequenceNumber") else None)
    _items(group, release, None)


def _items(group: etree._Element, release: Release, disc: int | None) -> None:
    items = _kids(group, "ResourceGroupContentItem")
    for number, item in enumerate(items, 1):
        ref = _text(item, "ReleaseResourceReference")
        if ref and ref not in release.order:
            release.order[ref] = (disc, _int(_text(item, "SequenceNumber")) or number)


def _release(el: etree._Element, v3: bool) -> Release:
    rel = Release(_text(el, "ReleaseReference") or "", kind=_local(el))
    rel.main = el.get("IsMainRelease") in ("true", "1")
    rel.release_type = _text(el, "ReleaseType")
    rid = _kid(el, "ReleaseId")
    rel.icpn = _text(rid, "ICPN")
    rel.grid = _text(rid, "GRid")
    rel.catalogue_number = _text(rid, "CatalogNumber")
    for pid in _kids(rid, "ProprietaryId") if rid is not None else []:
        if pid.text and pid.text.strip():
            rel.proprietary_ids.append((pid.get("Namespace") or "", pid.text.strip()))
    rel.p_line, rel.c_line = _line(el, "PLine"), _line(el, "CLine")
    if v3:
        rel.title = _text(el, "ReferenceTitle", "TitleText")
        details = _territory(el, "ReleaseDetailsByTerritory")
        rel.release_date = _text(el, "GlobalReleaseDate")
        rel.original_release_date = _text(el, "GlobalOriginalReleaseDate")
        if details is not None:
            rel.title = _display_title(details)[0] or rel.title
            rel.display_artist = _text(details, "DisplayArtistName") or (", ".join(_names(details, "DisplayArtist")) or None)
            rel.label = _text(details, "LabelName")
            rel.genre = _text(details, "Genre", "GenreText")
            rel.release_date = _text(details, "ReleaseDate") or rel.release_date
            rel.original_release_date = _text(details, "OriginalReleaseDate") or rel.original_release_date
            group = _kid(details, "ResourceGroup")
            if group is not None:
                _order(group, rel)
        listing = _kid(el, "ReleaseResourceReferenceList")
        for ref in _kids(listing if listing is not None else el, "ReleaseResourceReference"):
            if ref.text and ref.text.strip():
                rel.resources.append(ref.text.strip())
    else:
        rel.title = _text(el, "DisplayTitleText") or _text(el, "DisplayTitle", "TitleText")
        rel.display_artist = _text(el, "DisplayArtistName")
        rel.label_ref = _text(el, "ReleaseLabelReference")
        rel.genre = _text(el, "Genre", "GenreText")
        rel.release_date = _text(el, "ReleaseDate")
        rel.original_release_date = _text(el, "OriginalReleaseDate")
        group = _kid(el, "ResourceGroup")
        if group is not None:
            _order(group, rel)
        rel.resources = list(rel.order)
    return rel


def read_message(path: str, *, source: str, version: str) -> Message:
    """Read the message at ``path`` (shown as ``source``); raises UnsafeXML for a dangerous or broken file."""
    v3 = version.startswith("3")
    msg = Message(source, version)
    for _event, el in iterparse_untrusted(path, source=source, tags=[f"{{*}}{t}" for t in _ITEMS]):
        name = _local(el)
        parent = el.getparent()
        grandparent = parent.getparent() if parent is not None else None
        depth = 1 if grandparent is None else 2 if grandparent.getparent() is None else 3
        if depth == 1 and name == "MessageHeader":
            msg.message_id = _text(el, "MessageId")
            msg.thread_id = _text(el, "MessageThreadId")
            msg.sender_party_id = _text(el, "MessageSender", "PartyId")
            msg.sender_name = _text(el, "MessageSender", "PartyName", "FullName")
            msg.created = _text(el, "MessageCreatedDateTime")
            el.clear()
        elif depth == 2 and parent is not None and _local(parent) in _LISTS:
            listed = _local(parent)
            if listed == "ResourceList":
                if name == "SoundRecording":
                    msg.recordings.append(_recording(el, v3))
                else:
                    msg.others.append(_other(el))
            elif listed == "ReleaseList" and name in ("Release", "TrackRelease"):
                msg.releases.append(_release(el, v3))
            elif listed == "PartyList" and name == "Party":
                ref = _text(el, "PartyReference")
                if ref:
                    msg.parties[ref] = _text(el, "PartyName", "FullName") or ref
            elif listed == "DealList":
                msg.deals += 1
            # done with it: keep memory to the item being read
            el.clear()
            while el.getprevious() is not None:
                del parent[0]
    _resolve(msg)
    return msg


def _resolve(msg: Message) -> None:
    """4.x names parties by reference: turn the references into the PartyList's names."""
    for rec in msg.recordings:
        rec.artists.extend(msg.parties.get(ref, ref) for ref in rec.artist_refs)
        rec.contributors.extend((msg.parties.get(ref, ref), role) for ref, role in rec.contributor_refs)
        if not rec.display_artist and rec.artists:
            rec.display_artist = ", ".join(rec.artists)
    for rel in msg.releases:
        if rel.label_ref and not rel.label:
            rel.label = msg.parties.get(rel.label_ref, rel.label_ref)

"""A human summary of a bag from its METS: releases, tracks, durations, rights, formats, events, and
for each track its technical metadata, BWF fields, embedded documents, names with roles, dates with
their kind and any embargo.

Reads only ``metadata/mets.xml`` (safely and streamed, see :mod:`preserve.sidecars.xmlstream`); it
never opens the audio. The METS is opened with no symbolic link followed below the bag: a linked
``metadata/mets.xml`` (or ``metadata`` folder) is refused with :class:`~preserve.errors.UnsafePath`
(exit 1, the bag is unsafe to read), and nothing behind the link is read or shown.
"""

from __future__ import annotations

import errno
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lxml import etree

from preserve.bag.reader import pinned_tag_file, unreadable_tag_file
from preserve.errors import InputError
from preserve.safefs import LinkRefused, refusal
from preserve.sidecars.audiomd import AUDIOMD_NS, duration_seconds
from preserve.sidecars.dates import date_kind_label
from preserve.sidecars.ext import AUDIO_NS
from preserve.sidecars.mets import METS_NS
from preserve.sidecars.mods import MODS_NS
from preserve.sidecars.premis import PREMIS_NS
from preserve.sidecars.xmlstream import stream

_NS = {"mets": METS_NS, "premis": PREMIS_NS, "mods": MODS_NS, "audio": AUDIO_NS, "audiomd": AUDIOMD_NS}


@dataclass
class TrackSummary:
    disc: str
    number: str
    title: str
    path: str
    duration: float | None
    format: str
    #: the track's rights statement as one line (one of :attr:`BagSummary.rights`)
    rights: str
    #: "R1", "R2"...: the statement's place in :attr:`BagSummary.rights`; "" when it has none
    rights_ref: str = ""
    #: "until YYYY-MM-DD" while dissemination is embargoed, "ended YYYY-MM-DD" where a grant says
    #: the embargo ended before packaging, "" otherwise
    embargo: str = ""
    #: the statement's identifier (tells apart statements that print alike)
    statement: str = ""
    #: "FLAC, 44100 Hz, 16-bit, 2 channels" (what the file's technical metadata says), "" when unknown
    technical: str = ""
    #: every BWF bext field the file carries, by name (CodingHistory keeps its lines)
    bwf: dict[str, str] = field(default_factory=dict)
    #: the XML documents embedded in the file ("iXML", "axml")
    documents: list[str] = field(default_factory=list)
    #: "Sam Example (interviewee)": each name of the track's MODS with its role
    roles: list[str] = field(default_factory=list)
    #: "recorded 1978-07-14", "released 1981~ (approximate)": each date with its kind
    dates: list[str] = field(default_factory=list)

    @property
    def rights_mark(self) -> str:
        """What the track line says of its rights: ``R2, embargo until 2031-06-30``."""
        mark = self.rights_ref or "no rights statement"
        return f"{mark}, embargo {self.embargo}" if self.embargo else mark


@dataclass
class ReleaseSummary:
    title: str
    tracks: list[TrackSummary] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return sum(t.duration or 0.0 for t in self.tracks)

    @property
    def rights_differ(self) -> bool:
        """True when the release's tracks are not all under one rights statement (the PREMIS then
        links no statement to the release: each track carries its own)."""
        return len({(t.statement, t.rights) for t in self.tracks}) > 1


@dataclass
class BagSummary:
    """What ``preserve show`` prints."""

    path: str
    title: str
    identifier: str
    created: str
    agents: list[str]
    releases: list[ReleaseSummary]
    other_files: int
    rights: list[str]
    formats: dict[str, int]
    events: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for rel, r in zip(d["releases"], self.releases, strict=True):
            rel["duration"] = r.duration
            rel["rights_differ"] = r.rights_differ
        return d


def _text(el: etree._Element | None, path: str) -> str:
    if el is None:
        return ""
    return (el.findtext(path, namespaces=_NS) or "").strip()


def _rights_line(st: etree._Element) -> str:
    basis = _text(st, "premis:rightsBasis")
    parts = [basis]
    notes = [n.text or "" for n in st.iter(f"{{{PREMIS_NS}}}copyrightNote", f"{{{PREMIS_NS}}}licenseNote",
                                            f"{{{PREMIS_NS}}}otherRightsNote", f"{{{PREMIS_NS}}}statuteNote")]
    holder = next((n.removeprefix("rights holder: ") for n in notes if n.startswith("rights holder: ")), "")
    terms = _text(st, "premis:licenseInformation/premis:licenseTerms")
    status = _text(st, "premis:copyrightInformation/premis:copyrightStatus")
    other = _text(st, "premis:otherRightsInformation/premis:otherRightsBasis")
    for value in (other, status, terms, holder and f"holder {holder}"):
        if value:
            parts.append(value)
    # An act granted with restriction "disallow" is not permitted: it only carries an embargo date.
    acts = [g.findtext("premis:act", namespaces=_NS) or "" for g in st.iterfind("premis:rightsGranted", _NS)
            if "disallow" not in [(r.text or "").lower() for r in g.iterfind("premis:restriction", _NS)]]
    if acts:
        parts.append("may " + ", ".join(acts))
    embargo = _embargo(st)
    if embargo:
        parts.append(f"embargo {embargo}")
    return "; ".join(parts)


_ENDED = re.compile(r"embargo ended on (\S+?)(?:,|\s|$)")


def _embargo(st: etree._Element) -> str:
    """"until DATE" for an embargo a grant restricts, "ended DATE" where a grant's note says it
    ended before packaging (then no restriction is written, only the note), else ""."""
    until = _text(st, "premis:rightsGranted/premis:termOfRestriction/premis:endDate")
    if until:
        return f"until {until}"
    for note in st.iterfind("premis:rightsGranted/premis:rightsGrantedNote", _NS):
        m = _ENDED.search(note.text or "")
        if m:
            return f"ended {m.group(1)}"
    return ""


_M = f"{{{METS_NS}}}"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_HREF = "{http://www.w3.org/1999/xlink}href"
_CLEAR = frozenset({_M + "dmdSec", _M + "amdSec", _M + "file", _M + "structMap"})


@dataclass
class _FileFacts:
    duration: float | None
    format: str
    rights: str
    embargo: str = ""
    statement: str = ""
    technical: str = ""
    bwf: dict[str, str] = field(default_factory=dict)
    documents: list[str] = field(default_factory=list)


@dataclass
class _Description:
    roles: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)


def _describe(mods: etree._Element) -> _Description:
    """Names with their roles and dates with their kind, from one track's MODS."""
    d = _Description()
    for name in mods.iterfind("mods:name", _NS):
        part = " ".join(p.text or "" for p in name.iterfind("mods:namePart", _NS)).strip()
        role = _text(name, "mods:role/mods:roleTerm[@type='text']") or _text(name, "mods:role/mods:roleTerm")
        d.roles.append(f"{part} ({role})" if role else part)
    for origin in mods.iterfind("mods:originInfo", _NS):
        for el in origin:
            tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
            if not tag.startswith("date") or tag == "dateOther":
                continue
            extra = [v for v in (el.get("point"), el.get("qualifier")) if v]
            d.dates.append(f"{date_kind_label(tag)} {(el.text or '').strip()}" + (f" ({', '.join(extra)})" if extra else ""))
    return d


def _technical(obj: etree._Element) -> str:
    """One line of what the file is: codec, sample rate, bit depth, channels."""
    def find(*names: str) -> str:
        for name in names:
            for el in obj.iterfind(f".//{{*}}{name}"):
                if (el.text or "").strip():
                    return (el.text or "").strip()
        return ""

    codec = find("codec", "codecName", "audioDataEncoding")
    rate = find("sampleRateHz")
    khz = find("samplingFrequency")        # audioMD states the rate in kHz
    if not rate and khz:
        try:
            rate = f"{float(khz) * 1000:g}"
        except ValueError:
            rate = ""
    bits, channels = find("bitDepth", "bitsPerSample"), find("channels", "numChannels")
    parts = [codec, rate and f"{rate} Hz", bits and f"{bits}-bit", channels and f"{channels} channel(s)"]
    if find("lossy") == "true" or find("codecQuality") == "lossy":
        parts.append("lossy")
    return ", ".join(p for p in parts if p)


def summarize(bag_path: str | os.PathLike[str]) -> BagSummary:
    """Read ``BAG/metadata/mets.xml`` and summarize it.

    The METS is streamed (see :mod:`preserve.sidecars.xmlstream`): only a few facts per file are
    kept, so a bag of 100,000 tracks is summarized in bounded memory.
    """
    bag = Path(bag_path)
    mets_path = bag / "metadata" / "mets.xml"
    try:
        with pinned_tag_file(bag, "metadata/mets.xml") as pinned:
            return _summarize(bag, pinned, str(mets_path))
    except LinkRefused as exc:
        raise refusal(exc) from None
    except FileNotFoundError:
        raise InputError(f"{mets_path}: no METS sidecar; `preserve show` reads bags made by `preserve package`") from None
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise InputError(f"{mets_path}: is not a regular file (a folder, pipe, device or socket); `preserve show` reads "
                             "the METS file of bags made by `preserve package`") from None
        raise unreadable_tag_file(bag, "metadata/mets.xml", exc) from exc


def _summarize(bag: Path, mets_path: Path, shown: str) -> BagSummary:
    formats: Counter[str] = Counter()
    rights: dict[str, str] = {}
    events: dict[str, Counter[str]] = {}
    facts: dict[str, _FileFacts] = {}
    described: dict[str, _Description] = {}
    hrefs: dict[str, str] = {}
    releases: list[ReleaseSummary] = []
    root: etree._Element | None = None
    title, created, agents = "", "", []
    for event, el in stream(mets_path, shown, clear=_CLEAR):
        if root is None:
            root = el
        if event != "end":
            continue
        if el.tag == _M + "metsHdr":
            created = el.get("CREATEDATE", "")
            agents = [f"{a.get('TYPE') if a.get('TYPE') != 'OTHER' else a.get('OTHERTYPE')}: {_text(a, 'mets:name')}"
                      for a in el.iterfind("mets:agent", _NS)]
        elif el.tag == _M + "dmdSec" and el.get("ID") == "dmdSec_collection":
            title = _text(el, ".//mods:titleInfo/mods:title")
        elif el.tag == _M + "dmdSec" and (el.get("ID") or "").startswith("dmdSec_track_"):
            mods = el.find("mets:mdWrap/mets:xmlData/mods:mods", _NS)
            if mods is not None:
                described[el.get("ID", "")] = _describe(mods)
        elif el.tag == _M + "amdSec":
            _amdsec(el, facts, formats, rights, events)
        elif el.tag == _M + "file":
            loc = el.find("mets:FLocat", _NS)
            hrefs[el.get("ID", "")] = (loc.get(_HREF) or "") if loc is not None else ""
        elif el.tag == _M + "structMap" and el.get("TYPE") == "logical":
            releases = [_release(rel, facts, described, hrefs) for rel in el.iterfind("mets:div/mets:div[@TYPE='release']", _NS)]
    assert root is not None
    n_tracks = sum(len(r.tracks) for r in releases)
    # rights in the order a reader meets them in the releases, then any covering other files only
    lines = list(dict.fromkeys([*(t.rights for r in releases for t in r.tracks if t.rights in rights.values()),
                                *rights.values()]))
    refs = {line: f"R{n}" for n, line in enumerate(lines, 1)}
    for r in releases:
        for t in r.tracks:
            t.rights_ref = refs.get(t.rights, "")
    return BagSummary(
        path=str(bag), title=title or (root.get("LABEL") or ""), identifier=root.get("OBJID") or "",
        created=created, agents=agents, releases=releases, other_files=len(hrefs) - n_tracks,
        rights=lines, formats=dict(formats), events={k: dict(v) for k, v in sorted(events.items())})


def _amdsec(sec: etree._Element, facts: dict[str, _FileFacts], formats: Counter[str], rights: dict[str, str],
            events: dict[str, Counter[str]]) -> None:
    line = embargo = ident = ""
    for st in sec.iterfind("mets:rightsMD//premis:rightsStatement", _NS):
        ident = _text(st, "premis:rightsStatementIdentifier/premis:rightsStatementIdentifierValue")
        line = rights.setdefault(ident, _rights_line(st))
        embargo = _embargo(st)
    for ev in sec.iterfind("mets:digiprovMD//premis:event", _NS):
        outcome = _text(ev, "premis:eventOutcomeInformation/premis:eventOutcome")
        events.setdefault(_text(ev, "premis:eventType"), Counter())[outcome] += 1
    for obj in sec.iterfind("mets:techMD//premis:object", _NS):
        if not (obj.get(_XSI_TYPE) or "").endswith("file"):
            continue
        fmt = obj.find("premis:objectCharacteristics/premis:format", _NS)
        name = _text(fmt, "premis:formatDesignation/premis:formatName")
        puid = _text(fmt, "premis:formatRegistry/premis:formatRegistryKey")
        formats[f"{name} ({puid})" if puid else name or "unidentified"] += 1
        d = duration_seconds(_text(sec, "mets:techMD//audiomd:AUDIOMD/audiomd:audioInfo/audiomd:duration"))
        if d is None and _text(obj, ".//audio:durationSeconds"):
            d = float(_text(obj, ".//audio:durationSeconds"))   # a bag packaged before audioMD was written
        bwf = {el.get("name", ""): (el.text or "") for el in obj.iterfind(".//audio:bext", _NS)}
        documents = [el.get("chunk", "") for el in obj.iterfind(".//audio:embeddedDocument", _NS)]
        facts[sec.get("ID", "")] = _FileFacts(d, puid or name, line or "no rights statement",
                                              embargo, ident, _technical(sec), bwf, documents)


def _release(rel: etree._Element, facts: dict[str, _FileFacts], described: dict[str, _Description],
             hrefs: dict[str, str]) -> ReleaseSummary:
    rs = ReleaseSummary(rel.get("LABEL") or "")
    for disc in rel.iterfind("mets:div[@TYPE='disc']", _NS):
        for div in disc.iterfind("mets:div[@TYPE='track']", _NS):
            fptr = div.find("mets:fptr", _NS)
            href = hrefs.get(fptr.get("FILEID", "") if fptr is not None else "", "")
            f = facts.get(div.get("ADMID", ""), _FileFacts(None, "", "no rights statement"))
            desc = described.get(div.get("DMDID", ""), _Description())
            rs.tracks.append(TrackSummary(disc.get("ORDER") or "", div.get("ORDERLABEL") or div.get("ORDER") or "",
                                          div.get("LABEL") or "", unquote(href).removeprefix("../"),
                                          f.duration, f.format, f.rights, embargo=f.embargo, statement=f.statement,
                                          technical=f.technical, bwf=f.bwf, documents=f.documents,
                                          roles=desc.roles, dates=desc.dates))
    return rs

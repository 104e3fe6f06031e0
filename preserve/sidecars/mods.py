"""MODS 3.8 descriptions of the collection, each release and each track (METS dmdSecs)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from lxml import etree

from preserve.model import Track
from preserve.sidecars.plan import FileItem, Plan, Release
from preserve.sidecars.xmltext import XmlText

MODS_NS = "http://www.loc.gov/mods/v3"
_M = f"{{{MODS_NS}}}"
_DAY = r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?"
_TIME = r"T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
_ZONE = r"(Z|[+-](\d{2}):(\d{2}))"
_W3CDTF = re.compile(rf"{_DAY}(?:{_TIME}{_ZONE})?")
_EDTF_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(Z|[+-](\d{2})(?::(\d{2}))?)?")
_EDTF_DAY = re.compile(_DAY)
_LANG_CODE = re.compile(r"^[a-z]{3}$")


DateEncoding = Literal["w3cdtf", "edtf"]


def _real_day(year: str, month: str | None, day: str | None) -> bool:
    try:
        dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return False
    return True


def _real_time(hour: str, minute: str, second: str | None, zh: str | None = None, zm: str | None = None) -> bool:
    return (int(hour) < 24 and int(minute) < 60 and int(second or 0) < 60
            and int(zh or 0) < 24 and int(zm or 0) < 60)


def date_encoding(value: str) -> DateEncoding | None:
    """How a date is encoded in MODS: ``w3cdtf``, ``edtf`` (level 0 only: a time without a zone, an
    interval ``1978/1981``), or None when it is neither (``2001-13-45``, ``summer 1978``).

    W3CDTF is preferred: every W3CDTF date is also EDTF, and more tools read W3CDTF.
    """
    m = _W3CDTF.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, _frac, _zone, zh, zm = m.groups()
        if (hour is None or day is not None) and _real_day(year, month, day) and \
                (hour is None or _real_time(hour, minute, second, zh, zm)):
            return "w3cdtf"
        return None
    m = _EDTF_TIME.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, _zone, zh, zm = m.groups()
        return "edtf" if _real_day(year, month, day) and _real_time(hour, minute, second, zh, zm) else None
    start, sep, end = value.partition("/")
    if sep:
        a, b = _EDTF_DAY.fullmatch(start), _EDTF_DAY.fullmatch(end)
        if a and b and _real_day(*a.groups()) and _real_day(*b.groups()) and start[:len(end)] <= end[:len(start)]:
            return "edtf"
    return None


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, _M + tag, attrs)
    if text is not None:
        el.text = text
    return el


def _root() -> etree._Element:
    return etree.Element(_M + "mods", {"version": "3.8"}, nsmap={"mods": MODS_NS})


def _title(mods: etree._Element, title: str) -> None:
    _sub(_sub(mods, "titleInfo"), "title", title)


def _name(mods: etree._Element, name: str, role: str, code: str) -> None:
    el = _sub(mods, "name")
    _sub(el, "namePart", name)
    r = _sub(el, "role")
    _sub(r, "roleTerm", role, type="text", authority="marcrelator")
    _sub(r, "roleTerm", code, type="code", authority="marcrelator")


def _origin(mods: etree._Element, x: XmlText, where: str, publisher: str | None, date: str | None) -> None:
    if not publisher and not date:
        return
    oi = _sub(mods, "originInfo")
    if publisher:
        _sub(oi, "publisher", x(publisher, f"{where}: label"))
    if date:
        d = x(date, f"{where}: date")
        encoding = date_encoding(d)
        if encoding is not None:
            _sub(oi, "dateIssued", d, encoding=encoding, keyDate="yes")
        else:
            # intake refuses such a date; a model built elsewhere keeps it as text with no claim of encoding
            _sub(oi, "dateIssued", d)


def _language(mods: etree._Element, value: str) -> None:
    lang = _sub(mods, "language")
    if _LANG_CODE.match(value):
        _sub(lang, "languageTerm", value, type="code", authority="iso639-2b")
    else:
        _sub(lang, "languageTerm", value, type="text")


def _identifiers(mods: etree._Element, x: XmlText, where: str, t: Track, release: bool) -> None:
    pairs = [("upc", t.upc), ("catalogue number", t.catalogue_number)] if release else \
        [("isrc", t.isrc), ("accession number", t.accession)]
    for type_, value in pairs:
        if value:
            _sub(mods, "identifier", x(value, f"{where}: {type_}"), type=type_)


def collection_mods(plan: Plan) -> etree._Element:
    """The collection as a whole."""
    x, col = plan.text, plan.collection
    mods = _root()
    _title(mods, x(col.title or col.identifier or plan.staged.name, "collection title"))
    org = plan.context.organization or col.organization
    if org:
        _name(mods, x(org, "organization"), "depositor", "dpt")
    _sub(mods, "typeOfResource", "sound recording", collection="yes")
    if col.description:
        _sub(mods, "abstract", x(col.description, "collection description"))
    if col.identifier:
        _sub(mods, "identifier", x(col.identifier, "collection identifier"), type="local")
    return mods


def release_mods(plan: Plan, rel: Release) -> etree._Element:
    """A release (album): title, album artists, label, date, UPC and catalogue number."""
    x = plan.text
    t = rel.first
    where = f"release {rel.key}"
    mods = _root()
    _title(mods, x(rel.title, f"{where}: album"))
    common = [a for a in t.artists if all(a in i.track.artists for i in rel.tracks if i.track is not None)]
    for artist in common:
        _name(mods, x(artist, f"{where}: artist"), "performer", "prf")
    _sub(mods, "typeOfResource", "sound recording")
    if t.genre:
        _sub(mods, "genre", x(t.genre, f"{where}: genre"))
    _origin(mods, x, where, t.label, t.date)
    _identifiers(mods, x, where, t, release=True)
    _source_identifiers(mods, x, where, t, release=True)
    related = _sub(mods, "relatedItem", type="host")
    _title(related, x(plan.collection.title or plan.staged.name, "collection title"))
    return mods


def track_mods(plan: Plan, item: FileItem) -> etree._Element:
    """A track: title, artists and composers with roles, date, ISRC, genre, language, notes, place."""
    x, where = plan.text, item.path
    t = item.track
    assert t is not None
    mods = _root()
    _title(mods, x(t.title or item.path.rsplit("/", 1)[-1], f"{where}: title"))
    for artist in t.artists:
        _name(mods, x(artist, f"{where}: artists"), "performer", "prf")
    for composer in t.composers:
        _name(mods, x(composer, f"{where}: composers"), "composer", "cmp")
    _sub(mods, "typeOfResource", "sound recording")
    if t.genre:
        _sub(mods, "genre", x(t.genre, f"{where}: genre"))
    _origin(mods, x, where, t.label, t.date)
    if t.language:
        _language(mods, x(t.language, f"{where}: language"))
    pd = _sub(mods, "physicalDescription")
    _sub(pd, "internetMediaType", x(item.mime, f"{where}: media type"))
    if t.technical.duration is not None:
        _sub(pd, "extent", f"{t.technical.duration:.3f} seconds", unit="seconds")
    if t.description:
        _sub(mods, "note", x(t.description, f"{where}: description"))
    if t.carrier:
        _sub(mods, "note", x(t.carrier, f"{where}: carrier"), type="source")
    if t.donor:
        _sub(mods, "note", x(t.donor, f"{where}: donor"), type="acquisition")
    _identifiers(mods, x, where, t, release=False)
    _source_facts(mods, x, where, t)
    if t.album:
        host = _sub(mods, "relatedItem", type="host")
        _title(host, x(t.album, f"{where}: album"))
        _identifiers(host, x, where, t, release=True)
    if t.disc_number is not None or t.track_number is not None:
        part = _sub(mods, "part")
        for type_, value in (("disc", t.disc_number), ("track", t.track_number)):
            if value is not None:
                _sub(_sub(part, "detail", type=type_), "number", str(value))
    return mods


#: identifiers of the release a track belongs to, among a track's source identifiers
RELEASE_ID_TYPES = frozenset({"DDEX ReleaseReference", "DDEX GRid"})


def _source_identifiers(mods: etree._Element, x: XmlText, where: str, t: Track, release: bool) -> None:
    for type_, value in t.source_identifiers:
        if (type_ in RELEASE_ID_TYPES) == release:
            _sub(mods, "identifier", x(value, f"{where}: {type_}"), type=x(type_, f"{where}: identifier type"))


def _source_facts(mods: etree._Element, x: XmlText, where: str, t: Track) -> None:
    """What a DDEX message says beyond the sheet: subtitle, credits, P-line, original date, warning, references."""
    if t.subtitle:
        info = mods.find(_M + "titleInfo")
        if info is not None:
            _sub(info, "subTitle", x(t.subtitle, f"{where}: subtitle"))
    for name, role in t.contributors:
        el = _sub(mods, "name")
        _sub(el, "namePart", x(name, f"{where}: contributor"))
        r = _sub(el, "role")
        if re.fullmatch(r"[a-z]{3}", role):
            _sub(r, "roleTerm", role, type="code", authority="marcrelator")
        else:
            _sub(r, "roleTerm", x(role, f"{where}: contributor role"), type="text")
    if t.original_date:
        d = x(t.original_date, f"{where}: original release date")
        encoding = date_encoding(d)
        oi = _sub(mods, "originInfo", eventType="original release")
        if encoding is not None:
            _sub(oi, "dateOther", d, type="original release", encoding=encoding)
        else:
            _sub(oi, "dateOther", d, type="original release")
    if t.p_line:
        _sub(mods, "accessCondition", x("\u2117 " + t.p_line.removeprefix("\u2117").strip(), f"{where}: P-line"),
             type="use and reproduction", displayLabel="P-line")
    if t.parental_warning:
        _sub(mods, "note", x(t.parental_warning, f"{where}: parental warning"), type="content advice")
    _source_identifiers(mods, x, where, t, release=False)

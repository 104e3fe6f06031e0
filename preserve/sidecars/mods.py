"""MODS 3.8 descriptions of the collection, each release and each track (METS dmdSecs).

What each sheet column and embedded field becomes is tabled in docs/sidecars.md. In short: a
release date is ``dateIssued`` (in an ``originInfo`` of ``eventType="publication"``), a recording
date ``dateCreated`` and the BWF origination date of an unpublished recording ``dateCaptured``
(``eventType="production"``); every name carries a MARC relator role; the archive is the
record's content source, not a name; identifiers carry the type the MODS guidelines give.
"""

from __future__ import annotations

import re

from lxml import etree

from preserve.model import Contributor, Track
from preserve.sidecars.bwf import capture_datetime
from preserve.sidecars.dates import DateEncoding, date_encoding, date_parts
from preserve.sidecars.plan import FileItem, Plan, Release
from preserve.sidecars.xmltext import XmlText

__all__ = ["MODS_NS", "DateEncoding", "collection_mods", "date_encoding", "release_mods", "track_mods"]

MODS_NS = "http://www.loc.gov/mods/v3"
_M = f"{{{MODS_NS}}}"
_LANG_CODE = re.compile(r"^[a-z]{3}$")
#: the accessCondition type MODS 3.8 gives a statement of copyright and terms of use
USE_AND_REPRODUCTION = "use and reproduction"


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
    if not code:
        # a role the relator list has no term for (a DDEX role, say) is written as its source names it
        _sub(r, "roleTerm", role, type="text")
        return
    _sub(r, "roleTerm", role, type="text", authority="marcrelator")
    _sub(r, "roleTerm", code, type="code", authority="marcrelator")


def _dates(oi: etree._Element, x: XmlText, where: str, tag: str, value: str, key: bool) -> None:
    """One date as its MODS elements: an interval as a start and an end, each with its encoding and qualifier."""
    d = x(value, f"{where}: {tag}")
    parts = date_parts(d)
    if not parts:
        # intake refuses such a date; a model built elsewhere keeps it as text with no claim of encoding
        _sub(oi, tag, d)
        return
    for n, part in enumerate(parts):
        attrs: dict[str, str] = {"encoding": part.encoding}
        if key and n == 0:
            attrs["keyDate"] = "yes"
        if part.qualifier:
            attrs["qualifier"] = part.qualifier
        if part.point:
            attrs["point"] = part.point
        _sub(oi, tag, part.value, **attrs)


def _origin(mods: etree._Element, x: XmlText, where: str, publisher: str | None, date: str | None) -> None:
    """The publication: label and release date."""
    if not publisher and not date:
        return
    oi = _sub(mods, "originInfo", eventType="publication")
    if publisher:
        _sub(oi, "publisher", x(publisher, f"{where}: label"))
    if date:
        _dates(oi, x, where, "dateIssued", date, key=True)


def _production(mods: etree._Element, x: XmlText, where: str, t: Track) -> None:
    """The recording: when it was made (the sheet's ``recorded``) and, for a recording never released,
    when the file was captured (the BWF OriginationDate and OriginationTime)."""
    captured = capture_datetime(t.technical.bext) if t.date is None else None
    if not t.recorded and not captured:
        return
    oi = _sub(mods, "originInfo", eventType="production")
    if t.recorded:
        _dates(oi, x, where, "dateCreated", t.recorded, key=t.date is None)
    if captured:
        _dates(oi, x, where, "dateCaptured", captured, key=t.date is None and not t.recorded)


def _language(mods: etree._Element, value: str) -> None:
    lang = _sub(mods, "language")
    if _LANG_CODE.match(value):
        _sub(lang, "languageTerm", value, type="code", authority="iso639-2b")
    else:
        _sub(lang, "languageTerm", value, type="text")


def gtin_type(value: str) -> str:
    """``upc`` for a 12-digit UPC-A, ``ean`` for an EAN-13 or EAN-8."""
    return "upc" if len(value) == 12 else "ean"


def _identifiers(mods: etree._Element, x: XmlText, where: str, t: Track, release: bool) -> None:
    pairs = [(gtin_type(t.upc or ""), t.upc), ("issue number", t.catalogue_number)] if release else \
        [("isrc", t.isrc), ("matrix number", t.matrix_number), ("accession number", t.accession)]
    for type_, value in pairs:
        if value:
            _sub(mods, "identifier", x(value, f"{where}: {type_}"), type=type_)


def _notices(mods: etree._Element, x: XmlText, where: str, t: Track) -> None:
    for notice in (t.p_line, t.c_line):
        if notice:
            _sub(mods, "accessCondition", x(notice, f"{where}: notice"), type=USE_AND_REPRODUCTION)


def _record_info(mods: etree._Element, plan: Plan) -> None:
    """The archive that made the record: its content source (MODS has no better place for it)."""
    org = plan.context.organization or plan.collection.organization
    if org:
        _sub(_sub(mods, "recordInfo"), "recordContentSource", plan.text(org, "organization"))


def _contributor(mods: etree._Element, x: XmlText, where: str, c: Contributor) -> None:
    # the relator list's terms are written in lower case in MODS records, as "performer" is
    _name(mods, x(c.name, f"{where}: contributors"), c.label.lower() if c.code else x(c.label, f"{where}: role"),
          c.code)


def collection_mods(plan: Plan) -> etree._Element:
    """The collection as a whole."""
    x, col = plan.text, plan.collection
    mods = _root()
    _title(mods, x(col.title or col.identifier or plan.staged.name, "collection title"))
    _sub(mods, "typeOfResource", "sound recording", collection="yes")
    if col.description:
        _sub(mods, "abstract", x(col.description, "collection description"))
    if col.identifier:
        _sub(mods, "identifier", x(col.identifier, "collection identifier"), type="local")
    _record_info(mods, plan)
    return mods


def release_mods(plan: Plan, rel: Release) -> etree._Element:
    """A release (album): title, album artists, label, date, UPC/EAN, catalogue number and notices."""
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
    _notices(mods, x, where, t)
    _source_identifiers(mods, x, where, t, release=True)
    related = _sub(mods, "relatedItem", type="host")
    _title(related, x(plan.collection.title or plan.staged.name, "collection title"))
    _record_info(mods, plan)
    return mods


def track_mods(plan: Plan, item: FileItem) -> etree._Element:
    """A track: title, names with roles, dates, identifiers, notices, genre, language, notes, place."""
    x, where = plan.text, item.path
    t = item.track
    assert t is not None
    mods = _root()
    _title(mods, x(t.title or item.path.rsplit("/", 1)[-1], f"{where}: title"))
    for artist in t.artists:
        _name(mods, x(artist, f"{where}: artists"), "performer", "prf")
    for composer in t.composers:
        _name(mods, x(composer, f"{where}: composers"), "composer", "cmp")
    for c in t.contributors:
        _contributor(mods, x, where, c)
    if t.donor and not any(c.code == "dnr" and c.name == t.donor for c in t.contributors):
        _name(mods, x(t.donor, f"{where}: donor"), "donor", "dnr")
    _sub(mods, "typeOfResource", "sound recording")
    if t.genre:
        _sub(mods, "genre", x(t.genre, f"{where}: genre"))
    _origin(mods, x, where, t.label, t.date)
    _production(mods, x, where, t)
    if t.language:
        _language(mods, x(t.language, f"{where}: language"))
    pd = _sub(mods, "physicalDescription")
    _sub(pd, "internetMediaType", x(item.mime, f"{where}: media type"))
    if t.technical.duration is not None:
        # one unit, a bare number: what a machine reads (MODS has no element that takes an ISO 8601 duration)
        _sub(pd, "extent", f"{t.technical.duration:.3f}", unit="seconds")
    if t.description:
        _sub(mods, "note", x(t.description, f"{where}: description"))
    if t.carrier:
        _sub(mods, "note", x(t.carrier, f"{where}: carrier"), type="source")
    _identifiers(mods, x, where, t, release=False)
    _notices(mods, x, where, t)
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
    _record_info(mods, plan)
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
    if t.original_date:
        d = x(t.original_date, f"{where}: original release date")
        encoding = date_encoding(d)
        oi = _sub(mods, "originInfo", eventType="original release")
        if encoding is not None:
            _sub(oi, "dateOther", d, type="original release", encoding=encoding)
        else:
            _sub(oi, "dateOther", d, type="original release")
    if t.parental_warning:
        _sub(mods, "note", x(t.parental_warning, f"{where}: parental warning"), type="content advice")
    _source_identifiers(mods, x, where, t, release=False)

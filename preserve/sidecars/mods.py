"""MODS 3.8 descriptions of the collection, each release and each track (METS dmdSecs)."""

from __future__ import annotations

import re

from lxml import etree

from preserve.model import Track
from preserve.sidecars.plan import FileItem, Plan, Release
from preserve.sidecars.xmltext import XmlText

MODS_NS = "http://www.loc.gov/mods/v3"
_M = f"{{{MODS_NS}}}"
_W3CDTF = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_LANG_CODE = re.compile(r"^[a-z]{3}$")


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
        if _W3CDTF.match(d):
            _sub(oi, "dateIssued", d, encoding="w3cdtf", keyDate="yes")
        else:
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

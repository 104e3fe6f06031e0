"""METS 1.12.1 for the package, streamed with ``lxml.etree.xmlfile``.

Layout, following the conventions Archivematica and metsrw read: metsHdr; dmdSecs (MODS) for
the collection, each release and each track; one amdSec per payload file (techMD with the PREMIS
file object, a second techMD with an audio file's LoC audioMD, rightsMD with its rights
statement, digiprovMD with its events), one per release and one for the package (collection entity, package events, agents); a fileSec of the payload
only, by use; a physical structMap (Directory/Item divs) and a logical one (collection > release >
disc > track).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from lxml import etree

from preserve.sidecars import premis as P
from preserve.sidecars.audiomd import AUDIOMD_NS, AUDIOMD_XSD, MDWRAP, audiomd_element
from preserve.sidecars.mods import MODS_NS, collection_mods, release_mods, track_mods
from preserve.sidecars.plan import USE_MASTER, USE_SUBMISSION, FileItem, Plan

METS_NS = "http://www.loc.gov/METS/"
XLINK_NS = "http://www.w3.org/1999/xlink"
METS_XSD = "http://www.loc.gov/standards/mets/version1121/mets.xsd"
MODS_XSD = "http://www.loc.gov/standards/mods/v3/mods-3-8.xsd"
NSMAP = {"mets": METS_NS, "xlink": XLINK_NS, "xsi": P.XSI_NS, "premis": P.PREMIS_NS, "mods": MODS_NS,
         "audiomd": AUDIOMD_NS}
_M = f"{{{METS_NS}}}"
_XL = f"{{{XLINK_NS}}}"
PACKAGE_AMD = "amdSec_package"
COLLECTION_DMD = "dmdSec_collection"


def href(bag_path: str) -> str:
    """``data/objects/a b.wav`` -> ``../data/objects/a%20b.wav``: relative to metadata/mets.xml."""
    return "../" + urllib.parse.quote(bag_path, safe="/")


def _wrap(xf: etree.xmlfile, section: str, sec_id: str, mdtype: str, content: etree._Element,
          wrap: dict[str, str] | None = None) -> None:
    # The wrapper is streamed around the content, so the PREMIS element built for this section is
    # serialized as it is and dropped: no tree of the whole amdSec is ever held.
    with xf.element(_M + section, ID=sec_id), xf.element(_M + "mdWrap", wrap or {"MDTYPE": mdtype}), \
            xf.element(_M + "xmlData"):
        xf.write(content, pretty_print=True)
    xf.write("\n")


def _file_amdsec(xf: etree.xmlfile, plan: Plan, item: FileItem) -> None:
    n = item.index + 1
    with xf.element(_M + "amdSec", ID=item.amd_id):
        _wrap(xf, "techMD", f"techMD_{n}", "PREMIS:OBJECT", P.file_object(plan, item))
        track = item.track
        # in the same amdSec as the PREMIS object: metsrw reads only the first amdSec ADMID names
        amd = None if track is None else audiomd_element(track.technical, track.essence, plan.context.started,
                                                          plan.text, item.path)
        if amd is not None:
            _wrap(xf, "techMD", f"techMD_{n}_audioMD", "OTHER", amd, MDWRAP)
        if item.statement is not None:
            st = plan.statements[item.statement]
            # Each file's rightsMD links the statement to that file only; premis.xml links it to all.
            _wrap(xf, "rightsMD", f"rightsMD_{n}", "PREMIS:RIGHTS", P.statement_element(plan, st, [item.uuid]))
        for k, ev in enumerate(P.file_events(plan, item), 1):
            _wrap(xf, "digiprovMD", f"digiprovMD_{n}_{k}", "PREMIS:EVENT", P.event_element(ev))
    xf.write("\n")


def _package_amdsec(xf: etree.xmlfile, plan: Plan) -> None:
    with xf.element(_M + "amdSec", ID=PACKAGE_AMD):
        _wrap(xf, "techMD", "techMD_collection", "PREMIS:OBJECT", P.collection_object(plan))
        for k, ev in enumerate(P.package_events(plan), 1):
            _wrap(xf, "digiprovMD", f"digiprovMD_package_{k}", "PREMIS:EVENT", P.event_element(ev))
        for k, agent in enumerate(P.agent_elements(plan), 1):
            _wrap(xf, "digiprovMD", f"digiprovMD_agent_{k}", "PREMIS:AGENT", agent)
    xf.write("\n")


def _release_amdsec(xf: etree.xmlfile, plan: Plan, index: int) -> None:
    rel = plan.releases[index]
    with xf.element(_M + "amdSec", ID=f"amdSec_release_{index + 1}"):
        _wrap(xf, "techMD", f"techMD_release_{index + 1}", "PREMIS:OBJECT", P.release_object(plan, rel))
    xf.write("\n")


def _dmdsec(xf: etree.xmlfile, sec_id: str, mods: etree._Element, created: str) -> None:
    with xf.element(_M + "dmdSec", ID=sec_id, CREATED=created), xf.element(_M + "mdWrap", MDTYPE="MODS"), \
            xf.element(_M + "xmlData"):
        xf.write(mods, pretty_print=True)
    xf.write("\n")


def _file_element(plan: Plan, item: FileItem) -> etree._Element:
    attrs = {"ID": item.file_id, "GROUPID": f"Group-{item.uuid}", "MIMETYPE": plan.text(item.mime),
             "SIZE": str(item.record.size), "CHECKSUM": item.sha256, "CHECKSUMTYPE": "SHA-256",
             "ADMID": item.amd_id}
    if item.track is not None:
        attrs["DMDID"] = item.dmd_id
    f = etree.Element(_M + "file", attrs, nsmap={"mets": METS_NS, "xlink": XLINK_NS})
    etree.SubElement(f, _M + "FLocat", {"LOCTYPE": "URL", _XL + "type": "simple",
                                        _XL + "href": plan.text(href(item.path))})
    return f


def _tree(xf: etree.xmlfile, plan: Plan, entries: list[tuple[list[str], FileItem]], depth: int) -> None:
    """Write the divs of one folder level; ``entries`` are sorted, so each subfolder is contiguous."""
    i = 0
    while i < len(entries):
        parts, item = entries[i]
        if len(parts) == depth + 1:
            div = etree.Element(_M + "div", TYPE="Item", LABEL=plan.text(parts[-1]), nsmap={"mets": METS_NS})
            etree.SubElement(div, _M + "fptr", FILEID=item.file_id)
            xf.write(div, pretty_print=True)
            i += 1
            continue
        name = parts[depth]
        j = i
        while j < len(entries) and len(entries[j][0]) > depth + 1 and entries[j][0][depth] == name:
            j += 1
        with xf.element(_M + "div", TYPE="Directory", LABEL=plan.text(name)):
            _tree(xf, plan, entries[i:j], depth + 1)
        i = j


def _physical(xf: etree.xmlfile, plan: Plan) -> None:
    """The folder tree of the payload, under one Directory div for the bag."""
    entries = sorted(((i.path.split("/"), i) for i in plan.files), key=lambda e: e[0])
    with xf.element(_M + "structMap", TYPE="physical", ID="structMap_physical", LABEL="Bag payload"), \
            xf.element(_M + "div", TYPE="Directory", LABEL=plan.text(plan.staged.name), ADMID=PACKAGE_AMD,
                       DMDID=COLLECTION_DMD):
        _tree(xf, plan, entries, 0)


def _logical(xf: etree.xmlfile, plan: Plan) -> None:
    x = plan.text
    col_label = x(plan.collection.title or plan.collection.identifier or plan.staged.name)
    with xf.element(_M + "structMap", TYPE="logical", ID="structMap_logical", LABEL="Collection, releases, discs, tracks"), \
            xf.element(_M + "div", TYPE="collection", LABEL=col_label, DMDID=COLLECTION_DMD, ADMID=PACKAGE_AMD):
        for rel in plan.releases:
            rel_attrs = {"TYPE": "release", "ORDER": str(rel.index + 1), "LABEL": x(rel.title),
                         "DMDID": f"dmdSec_release_{rel.index + 1}", "ADMID": f"amdSec_release_{rel.index + 1}"}
            with xf.element(_M + "div", rel_attrs):
                for disc, items in rel.discs():
                    d = etree.Element(_M + "div", TYPE="disc", ORDER=str(disc), LABEL=f"Disc {disc}",
                                      nsmap={"mets": METS_NS})
                    for pos, item in enumerate(items, 1):
                        t = item.track
                        assert t is not None
                        tdiv = etree.SubElement(d, _M + "div", TYPE="track", DMDID=item.dmd_id, ADMID=item.amd_id,
                                                LABEL=x(t.title or item.path.rsplit("/", 1)[-1]))
                        tdiv.set("ORDER", str(t.track_number if t.track_number is not None else pos))
                        if t.track_number is not None:
                            tdiv.set("ORDERLABEL", str(t.track_number))
                        etree.SubElement(tdiv, _M + "fptr", FILEID=item.file_id)
                    xf.write(d, pretty_print=True)


def write_mets(path: Path, plan: Plan) -> None:
    """Stream ``mets.xml`` for ``plan``."""
    x, col, ctx = plan.text, plan.collection, plan.context
    schema_loc = f"{METS_NS} {METS_XSD} {P.PREMIS_NS} {P.PREMIS_XSD} {MODS_NS} {MODS_XSD} {AUDIOMD_NS} {AUDIOMD_XSD}"
    root_attrs = {f"{{{P.XSI_NS}}}schemaLocation": schema_loc,
                  "OBJID": x(col.identifier or plan.staged.name), "TYPE": "audio collection",
                  "LABEL": x(col.title or col.identifier or plan.staged.name)}
    with etree.xmlfile(str(path), encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_M + "mets", root_attrs, nsmap=NSMAP):
            hdr = etree.Element(_M + "metsHdr", CREATEDATE=plan.created, nsmap={"mets": METS_NS})
            org = ctx.organization or col.organization
            if org:
                a = etree.SubElement(hdr, _M + "agent", ROLE="CREATOR", TYPE="ORGANIZATION")
                etree.SubElement(a, _M + "name").text = x(org)
            a = etree.SubElement(hdr, _M + "agent", ROLE="CREATOR", TYPE="OTHER", OTHERTYPE="SOFTWARE")
            etree.SubElement(a, _M + "name").text = x(f"{plan.software.name} {plan.software.version}")
            if ctx.operator:
                a = etree.SubElement(hdr, _M + "agent", ROLE="CREATOR", TYPE="INDIVIDUAL")
                etree.SubElement(a, _M + "name").text = x(ctx.operator)
            xf.write(hdr, pretty_print=True)
            _dmdsec(xf, COLLECTION_DMD, collection_mods(plan), plan.created)
            for rel in plan.releases:
                _dmdsec(xf, f"dmdSec_release_{rel.index + 1}", release_mods(plan, rel), plan.created)
            for item in plan.files:
                if item.track is not None:
                    _dmdsec(xf, item.dmd_id, track_mods(plan, item), plan.created)
            for item in plan.files:
                _file_amdsec(xf, plan, item)
            for index in range(len(plan.releases)):
                _release_amdsec(xf, plan, index)
            _package_amdsec(xf, plan)
            with xf.element(_M + "fileSec"):
                for use in (USE_MASTER, USE_SUBMISSION):
                    members = [i for i in plan.files if i.use == use]
                    if not members:
                        continue
                    with xf.element(_M + "fileGrp", USE=use, ID=f"fileGrp_{use.replace(' ', '_')}"):
                        for item in members:
                            xf.write(_file_element(plan, item), pretty_print=True)
            _physical(xf, plan)
            _logical(xf, plan)

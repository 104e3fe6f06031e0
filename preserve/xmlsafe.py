"""Parsing XML that preserve did not write itself (a producer's iXML/axml, a sidecar in a bag).

Every parse goes through :func:`parse_untrusted`: no DTD loading, no entity resolution, no network,
no huge trees. A document that declares a DOCTYPE with entities is refused outright, so neither
XXE (an entity naming a local file or URL) nor an entity-expansion bomb gets a chance to act.
"""

from __future__ import annotations

import re

from lxml import etree

from preserve.errors import UnsafeXML

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=False,
    )


def parse_untrusted(data: bytes, *, source: str) -> etree._Element:
    """Parse ``data`` safely; raise :class:`UnsafeXML` naming ``source`` when it is dangerous or broken."""
    head = data[:65536]
    if _ENTITY.search(data) or _DOCTYPE.search(head):
        reason = "it declares entities (a DOCTYPE with <!ENTITY>), which could read local files or expand without bound" \
            if _ENTITY.search(data) else "it has a DOCTYPE; preserve reads only XML without DTDs"
        raise UnsafeXML(path=source, reason=reason)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXML(path=source, reason=f"not well-formed XML: {exc}") from exc
    if getattr(root.getroottree().docinfo, "doctype", ""):  # lxml-stubs omit DocInfo.doctype
        # a DOCTYPE further in than the quick look above (after a long comment, say)
        raise UnsafeXML(path=source, reason="it has a DOCTYPE; preserve reads only XML without DTDs")
    return root


def parse_untrusted_file(path: str, *, source: str | None = None) -> etree._Element:
    with open(path, "rb") as f:
        return parse_untrusted(f.read(), source=source or path)

"""Parsing XML that preserve did not write itself (a producer's iXML/axml, a sidecar in a bag).

Every parse goes through :func:`parse_untrusted`: no DTD loading, no entity resolution, no network,
no huge trees. A document that declares a DOCTYPE with entities is refused outright, so neither
XXE (an entity naming a local file or URL) nor an entity-expansion bomb gets a chance to act.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence

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


# ------------------------------------------------------------------------------- large documents

_CHUNK = 1 << 20


def text_encoding(head: bytes) -> str:
    """The codec a document's first bytes announce (byte-order mark, UTF-16 zero bytes, declaration)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] != 0:
        return "utf-16-le"
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] != 0:
        return "utf-16-be"
    declared = re.match(rb"<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", head)
    if declared:
        name = declared.group(1).decode("ascii").lower()
        # an 8-bit declaration leaves "<!ENTITY" as ASCII; anything unusual is read as Latin-1 for the scan
        return name if name.startswith(("utf-8", "utf8", "iso-8859", "latin", "windows-", "cp", "us-ascii", "ascii")) else "latin-1"
    return "utf-8"


def refuse_dangerous_file(path: str, *, source: str) -> None:
    """Raise :class:`UnsafeXML` when the file declares a DOCTYPE or entities, reading it in chunks.

    The scan decodes with the document's own encoding, so a UTF-16 document cannot hide
    ``<!ENTITY`` from a byte search. Memory stays one chunk, whatever the file's size.
    """
    with open(path, "rb") as f:
        head = f.read(_CHUNK)
        decoder = codecs.getincrementaldecoder(text_encoding(head))(errors="replace")
        tail = ""
        chunk = head
        while chunk:
            text = tail + decoder.decode(chunk)
            upper = text.upper()
            if "<!ENTITY" in upper:
                raise UnsafeXML(path=source, reason="it declares entities (a DOCTYPE with <!ENTITY>), which could "
                                                    "read local files or expand without bound")
            if "<!DOCTYPE" in upper:
                raise UnsafeXML(path=source, reason="it has a DOCTYPE; preserve reads only XML without DTDs")
            tail = text[-16:]
            chunk = f.read(_CHUNK)


def iterparse_untrusted(path: str, *, source: str, tags: Sequence[str] | None = None) -> Iterator[tuple[str, etree._Element]]:
    """``("end", element)`` as each element (or each of ``tags``) of a large untrusted document ends.

    The file is first scanned for DOCTYPEs and entities (refused); the parser then loads no DTD,
    resolves no entity, reaches no network and keeps libxml2's depth limit, so a deeply nested
    document is refused at that depth. The caller clears elements it is done with.
    """
    refuse_dangerous_file(path, source=source)
    events = etree.iterparse(path, events=("end",), tag=tags, resolve_entities=False, no_network=True,
                             load_dtd=False, dtd_validation=False, huge_tree=False, remove_comments=True,
                             remove_pis=True)
    try:
        yield from events
    except etree.XMLSyntaxError as exc:
        raise UnsafeXML(path=source, reason=f"not well-formed XML: {exc}") from exc

"""Reading large sidecars element by element, with the same safety as :mod:`preserve.xmlsafe`.

A METS for 20,000 tracks is some 350 MB; as one lxml tree it would need gigabytes. These helpers
stream it with ``iterparse`` (no DTD loading, no entity resolution, no network) and clear each
completed section once the caller has looked at it, so memory stays bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from preserve.errors import UnsafeXML

_DANGER = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


class SchemaInvalid(Exception):
    """A streamed document broke its schema; the message is libxml2's (it gives no line)."""


_ENTITIES = "it declares entities (a DOCTYPE with <!ENTITY>), which could read local files or expand without bound"
_DOCTYPE = "it has a DOCTYPE; preserve reads only XML without DTDs"


def refuse_dtd(path: Path, rel: str) -> None:
    """Raise :class:`UnsafeXML` if ``path`` opens with a DOCTYPE (entities live only inside one).

    A quick look at the first 64 KiB, before any parsing; :func:`refuse_doctype` catches a DOCTYPE
    placed later (after a long comment) once the parser has read it.
    """
    with open(path, "rb") as f:
        head = f.read(65536)
    if _DANGER.search(head):
        raise UnsafeXML(path=rel, reason=_ENTITIES if b"<!ENTITY" in head.upper() else _DOCTYPE)


def refuse_doctype(docinfo: etree.DocInfo, rel: str) -> None:
    """Raise :class:`UnsafeXML` if a parsed document has a DOCTYPE, wherever it stood before the root."""
    dtd = docinfo.internalDTD
    # lxml-stubs omit DocInfo.doctype and DTD.iterentities, both part of lxml's API.
    if docinfo.doctype or dtd is not None or docinfo.externalDTD is not None:  # type: ignore[attr-defined]
        entities = dtd is not None and any(True for _ in dtd.iterentities())  # type: ignore[attr-defined]
        raise UnsafeXML(path=rel, reason=_ENTITIES if entities else _DOCTYPE)


def stream(path: Path, rel: str, *, clear: frozenset[str], schema: etree.XMLSchema | None = None,
           ) -> Iterator[tuple[str, etree._Element]]:
    """Yield ``(event, element)`` for start and end events; elements whose tag is in ``clear`` are
    emptied (with their preceding siblings removed) after the caller has seen their end."""
    refuse_dtd(path, rel)
    kw: dict[str, object] = {"schema": schema} if schema is not None else {}
    first = True
    try:
        for event, el in etree.iterparse(str(path), events=("start", "end"), resolve_entities=False,
                                         no_network=True, load_dtd=False, huge_tree=True, **kw):
            if first:
                # The root's start comes after any DOCTYPE: refuse before the caller sees anything.
                refuse_doctype(el.getroottree().docinfo, rel)
                first = False
            yield event, el
            if event == "end" and el.tag in clear:
                el.clear(keep_tail=False)
                while el.getprevious() is not None:
                    del el.getparent()[0]
    except etree.XMLSyntaxError as exc:
        message = str(exc).split(" (<string>", 1)[0].split(" (line ", 1)[0]
        if schema is not None and "not well-formed" not in message.lower() and "parser error" not in message.lower():
            raise SchemaInvalid(message) from exc
        raise UnsafeXML(path=rel, reason=f"not well-formed XML: {exc}") from exc

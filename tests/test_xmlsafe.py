"""Parsing XML preserve did not write: DOCTYPEs and entities are refused wherever they stand."""

from __future__ import annotations

import pytest

from preserve.errors import UnsafeXML
from preserve.xmlsafe import parse_untrusted

PADDING = b"<!--" + b"x" * 70_000 + b"-->"


def test_plain_xml_is_parsed() -> None:
    root = parse_untrusted(b"<?xml version='1.0'?><BWFXML><SCENE>3</SCENE></BWFXML>", source="ixml")
    assert root.findtext("SCENE") == "3"


@pytest.mark.parametrize("padding", [b"", PADDING], ids=["at-the-start", "after-70-kB"])
def test_a_doctype_is_refused_wherever_it_stands(padding: bytes) -> None:
    data = b"<?xml version='1.0'?>" + padding + b"<!DOCTYPE BWFXML><BWFXML/>"
    with pytest.raises(UnsafeXML, match=r"ixml chunk: XML refused \(it has a DOCTYPE"):
        parse_untrusted(data, source="ixml chunk")


@pytest.mark.parametrize("padding", [b"", PADDING], ids=["at-the-start", "after-70-kB"])
def test_entities_are_refused_wherever_they_stand(padding: bytes) -> None:
    data = (b"<?xml version='1.0'?>" + padding
            + b'<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/hostname">]><r>&secret;</r>')
    with pytest.raises(UnsafeXML, match="declares entities"):
        parse_untrusted(data, source="axml chunk")


def test_broken_xml_is_named() -> None:
    with pytest.raises(UnsafeXML, match=r"axml chunk: XML refused \(not well-formed XML"):
        parse_untrusted(b"<r><unclosed></r>", source="axml chunk")

"""Strings from broken tags never break a document: escaped visibly, recorded, always valid XML."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from preserve.sidecars.xmltext import XmlText, is_xml_safe


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60))
def test_any_text_becomes_element_text_that_round_trips(value: str) -> None:
    x = XmlText()
    cleaned = x(value, "field")
    el = etree.Element("t")
    el.text = cleaned  # lxml raises ValueError on anything XML 1.0 forbids
    back = etree.fromstring(etree.tostring(el, encoding="UTF-8")).text or ""
    assert back.replace("\r", "\n") == cleaned.replace("\r\n", "\n").replace("\r", "\n") or back == cleaned
    if is_xml_safe(value):
        assert cleaned == value and x.count == 0
    else:
        assert x.count == 1 and x.changes == [f"field: {cleaned}"]


def test_control_characters_are_escaped_and_listed() -> None:
    x = XmlText()
    assert x("Side A\x00\x1b", "data/objects/a.wav: title") == "Side A[U+0000][U+001B]"
    assert x("tab\tand\nnewline kept", "other") == "tab\tand\nnewline kept"
    assert x("\ud800lone surrogate", "b") == "[U+D800]lone surrogate"
    assert x.summary() == ("2 metadata value(s) held characters XML 1.0 forbids; each was written as [U+XXXX]: "
                           "data/objects/a.wav: title: Side A[U+0000][U+001B]; b: [U+D800]lone surrogate")

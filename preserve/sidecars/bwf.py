"""What a Broadcast WAVE file says of its own making, read for the sidecars.

The ``bext`` fields themselves are kept whole in the audio extension (:mod:`preserve.sidecars.ext`);
this module gives their meaning: the capture date and time (OriginationDate and OriginationTime,
for MODS ``dateCaptured`` and PREMIS ``dateCreatedByApplication``), the transfer chain
(CodingHistory, one stage a line, for the PREMIS capture or digitization event), and the iXML and
axml documents embedded whole.

An embedded document goes into the file's PREMIS ``objectCharacteristicsExtension`` as
``<audio:embeddedDocument chunk="iXML" encoding="xml">`` holding the document's root element when
it parses safely (:func:`preserve.xmlsafe.parse_untrusted`: no DTD, no entities, no network, and
well-formed, so every character is one XML 1.0 allows); otherwise as ``encoding="base64"`` holding its exact bytes.
Either way nothing the producer wrote is dropped, and no document can make the sidecar unsafe.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping

from lxml import etree

from preserve.errors import UnsafeXML
from preserve.sidecars.ext import AUDIO_NS
from preserve.xmlsafe import parse_untrusted

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})")


def valid_date(value: str) -> bool:
    """``yyyy-mm-dd`` and a real day."""
    m = _DATE.fullmatch(value)
    if not m:
        return False
    try:
        dt.date(*(int(g) for g in m.groups()))
    except ValueError:
        return False
    return True


def valid_time(value: str) -> bool:
    """``hh:mm:ss`` and a real time of day."""
    m = _TIME.fullmatch(value)
    return m is not None and int(m.group(1)) < 24 and int(m.group(2)) < 60 and int(m.group(3)) < 60


def capture_datetime(bext: Mapping[str, str]) -> str | None:
    """``1978-07-14T10:30:00`` (or the day alone) from OriginationDate and OriginationTime; None when the
    date is missing or not in the FADGI form (a date that cannot be read is never guessed at)."""
    date = bext.get("OriginationDate", "")
    if not valid_date(date):
        return None
    time = bext.get("OriginationTime", "")
    return f"{date}T{time}" if valid_time(time) else date


def coding_history_lines(value: str) -> list[str]:
    """The stages of a CodingHistory, one a line (empty lines dropped)."""
    return [line.strip() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]


def capture_event_type(lines: list[str]) -> str:
    """``digitization`` when the chain starts from an analogue source (``A=ANALOGUE``), else ``capture``."""
    first = lines[0].upper() if lines else ""
    return "digitization" if first.startswith(("A=ANALOGUE", "A=ANALOG")) else "capture"


def documents_element(documents: Mapping[str, str]) -> etree._Element | None:
    """``<audio:embeddedDocuments>`` holding each embedded document, or None when there is none."""
    if not documents:
        return None
    root = etree.Element(f"{{{AUDIO_NS}}}embeddedDocuments", nsmap={"audio": AUDIO_NS})
    for chunk, b64 in documents.items():
        el = etree.SubElement(root, f"{{{AUDIO_NS}}}embeddedDocument", chunk=chunk)
        raw = base64.b64decode(b64)
        parsed = _parsed(raw, chunk)
        if parsed is not None:
            el.set("encoding", "xml")
            el.append(parsed)
        else:
            el.set("encoding", "base64")
            el.text = b64
    return root


def _parsed(raw: bytes, chunk: str) -> etree._Element | None:
    try:
        return parse_untrusted(raw, source=f"{chunk} chunk")
    except UnsafeXML:  # a DTD, entities or broken XML: the exact bytes are kept as base64 instead
        return None

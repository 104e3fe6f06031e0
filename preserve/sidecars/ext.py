"""The project's own small technical-metadata element for audio, placed in PREMIS
``objectCharacteristicsExtension``. Namespace and fields are documented in docs/sidecars.md.

LoC audioMD (:mod:`preserve.sidecars.audiomd`) carries the audio's technical description. This
element keeps only what audioMD has no place for: the BWF ``bext`` fields and RIFF INFO chunks
as the file states them, and a sample frame count too large for audioMD's ``xs:int``.
"""

from __future__ import annotations

from lxml import etree

from preserve.model import AudioTechnical
from preserve.sidecars.audiomd import INT_MAX
from preserve.sidecars.xmltext import XmlText

AUDIO_NS = "urn:preserve:audio-technical:1"


def audio_element(tech: AudioTechnical, text: XmlText, where: str) -> etree._Element | None:
    """``<audio:audioTechnical>`` for ``tech``, or None when audioMD holds all there is."""
    long_count = tech.frames if tech.frames is not None and tech.frames > INT_MAX else None
    if long_count is None and not tech.bext and not tech.info:
        return None
    root = etree.Element(f"{{{AUDIO_NS}}}audioTechnical", nsmap={"audio": AUDIO_NS})
    if long_count is not None:
        etree.SubElement(root, f"{{{AUDIO_NS}}}sampleFrames").text = str(long_count)
    for key, value in tech.bext.items():
        el = etree.SubElement(root, f"{{{AUDIO_NS}}}bext", name=text(key, f"{where}: bext name"))
        el.text = text(value, f"{where}: {key}")
    for key, value in tech.info.items():
        el = etree.SubElement(root, f"{{{AUDIO_NS}}}riffInfo", id=text(key, f"{where}: INFO id"))
        el.text = text(value, f"{where}: {key}")
    return root

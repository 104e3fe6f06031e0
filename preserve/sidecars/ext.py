"""The project's own small technical-metadata element for audio, placed in PREMIS
``objectCharacteristicsExtension``. Namespace and fields are documented in docs/sidecars.md.

PREMIS leaves format-specific technical metadata to extension schemas; the established audio
schemas (AES57, audioMD) are large and their XSDs are not on every archive's shelf. This element
keeps to what intake measures, with plain names and units in the element names.
"""

from __future__ import annotations

from lxml import etree

from preserve.model import AudioTechnical
from preserve.sidecars.xmltext import XmlText

AUDIO_NS = "urn:preserve:audio-technical:1"


def audio_element(tech: AudioTechnical, text: XmlText, where: str) -> etree._Element | None:
    """``<audio:audioTechnical>`` for ``tech``, or None when nothing is known."""
    fields: list[tuple[str, object]] = [
        ("codec", tech.codec), ("container", tech.container), ("sampleRateHz", tech.sample_rate),
        ("bitDepth", tech.bit_depth), ("channels", tech.channels),
        ("durationSeconds", None if tech.duration is None else f"{tech.duration:.6f}"),
        ("sampleFrames", tech.frames), ("bitrateBitsPerSecond", tech.bitrate),
    ]
    if not any(v is not None for _, v in fields) and not tech.bext and not tech.info:
        return None
    root = etree.Element(f"{{{AUDIO_NS}}}audioTechnical", nsmap={"audio": AUDIO_NS})
    for name, value in fields:
        if value is not None:
            etree.SubElement(root, f"{{{AUDIO_NS}}}{name}").text = text(value, f"{where}: {name}")
    etree.SubElement(root, f"{{{AUDIO_NS}}}lossy").text = "true" if tech.lossy else "false"
    for key, value in tech.bext.items():
        el = etree.SubElement(root, f"{{{AUDIO_NS}}}bext", name=text(key, f"{where}: bext name"))
        el.text = text(value, f"{where}: {key}")
    for key, value in tech.info.items():
        el = etree.SubElement(root, f"{{{AUDIO_NS}}}riffInfo", id=text(key, f"{where}: INFO id"))
        el.text = text(value, f"{where}: {key}")
    return root

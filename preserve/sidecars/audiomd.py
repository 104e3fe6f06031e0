"""LoC audioMD 2.0 for one audio file: what its own headers state, in the schema's own terms.

The element is written twice over the package, never twice in one document: in ``mets.xml`` as
a ``techMD`` of its own (``mdWrap MDTYPE="OTHER" OTHERMDTYPE="AudioMD"``) in the file's amdSec,
beside the PREMIS object; in the standalone ``premis.xml`` inside that object's
``objectCharacteristicsExtension``, the place PREMIS gives to format-specific schemas.

Only what the file says is written: a lossy stream has no bit depth, a compressed one no byte
order, a format that does not define a channel layout no sound field. Uncompressed PCM has no
``compression`` element at all (audioMD's ``compression`` describes a codec, and PCM has none).
The essence checksum a file carries (FLAC STREAMINFO MD5, the BWF ``MD5 `` chunk) goes into
``messageDigest``; the schema requires a date the file does not give, so the packaging start is
used: the time preserve read the digest from the file (documented in docs/sidecars.md).
"""

from __future__ import annotations

import re
from decimal import Decimal

from lxml import etree

from preserve.model import AudioTechnical, EssenceCheck
from preserve.sidecars.xmltext import XmlText

AUDIOMD_NS = "http://www.loc.gov/audioMD/"
AUDIOMD_XSD = "http://www.loc.gov/standards/amdvmd/audioMD.xsd"
#: mdWrap attributes of the METS techMD that carries it
MDWRAP = {"MDTYPE": "OTHER", "OTHERMDTYPE": "AudioMD", "MDTYPEVERSION": "2.0"}
_A = f"{{{AUDIOMD_NS}}}"
#: xs:int bounds numSampleFrames; a longer file keeps its count in the project's extension
INT_MAX = 2**31 - 1

#: container -> audioMD formatName (the schema's example for BWF is "Broadcast Wave Format")
FORMAT_NAMES = {"WAVE": "WAVE", "BWF": "Broadcast Wave Format", "RF64": "RF64", "FLAC": "FLAC",
                "AIFF": "AIFF", "AIFF-C": "AIFF-C", "MP3": "MPEG audio", "Ogg": "Ogg", "MP4": "MPEG-4",
                "ADTS": "ADTS"}
#: codecs that keep every sample exactly
LOSSLESS = frozenset({"FLAC", "ALAC"})
_BYTE_ORDER = {"little-endian": "0", "big-endian": "1"}   # the schema's 0 least-to-most, 1 most-to-least
_RATE_MODE = {"fixed": "Fixed", "variable": "Variable"}


def is_pcm(codec: str | None) -> bool:
    """Whether ``codec`` names uncompressed PCM (integer or IEEE float)."""
    return codec is not None and codec.startswith("PCM")


def iso_duration(frames: int | None, rate: int | None, seconds: float | None) -> str | None:
    """ISO 8601 duration, to the microsecond: finer than one sample at any rate up to 384 kHz.

    Intake measures ``seconds`` as frames / rate wherever the container counts frames.
    """
    if seconds is None and frames is not None and rate:
        seconds = frames / rate
    if seconds is None:
        return None
    return f"PT{seconds:.6f}S"


_ISO = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?")


def duration_seconds(value: str | None) -> float | None:
    """Seconds in an ISO 8601 ``PT..H..M..S`` duration; None when it is not one."""
    m = _ISO.fullmatch((value or "").strip())
    if not m or not any(m.groups()):
        return None
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def khz(rate: int) -> str:
    """44100 -> "44.1": audioMD states the sampling frequency in kHz."""
    return str((Decimal(rate) / 1000).normalize())


def kbps(bits_per_second: int) -> int:
    """audioMD's dataRate is an integer in kbps: rounded half up."""
    return int((Decimal(bits_per_second) / 1000).to_integral_value("ROUND_HALF_UP"))


def audiomd_element(tech: AudioTechnical, essence: EssenceCheck, digest_date: str, text: XmlText,
                    where: str) -> etree._Element | None:
    """``<audiomd:AUDIOMD>`` for one file, or None when intake learned nothing about its audio."""
    if tech.codec is None and tech.sample_rate is None and tech.channels is None:
        return None
    root = etree.Element(_A + "AUDIOMD", nsmap={"audiomd": AUDIOMD_NS}, ANALOGDIGITALFLAG="FileDigital")
    fd = etree.SubElement(root, _A + "fileData")

    def sub(parent: etree._Element, tag: str, value: object | None) -> None:
        if value is not None:
            etree.SubElement(parent, _A + tag).text = text(str(value), f"{where}: audioMD {tag}")

    # the schema fixes the order of fileData's children; the calls below follow it
    pcm = is_pcm(tech.codec)
    sub(fd, "audioDataEncoding", "PCM" if pcm else None)
    sub(fd, "bitsPerSample", tech.bit_depth)
    sub(fd, "byteOrder", _BYTE_ORDER.get(tech.byte_order or ""))
    if essence.expected and essence.outcome != "not applicable":
        md = etree.SubElement(fd, _A + "messageDigest")
        sub(md, "messageDigestDatetime", digest_date)
        sub(md, "messageDigestAlgorithm", "MD5")
        sub(md, "messageDigest", essence.expected)
    if tech.codec is not None and not pcm:
        comp = etree.SubElement(fd, _A + "compression")
        sub(comp, "codecName", tech.codec)
        sub(comp, "codecQuality", "lossy" if tech.lossy else "lossless" if tech.codec in LOSSLESS else None)
    sub(fd, "dataRate", kbps(tech.bitrate) if tech.bitrate else None)
    sub(fd, "dataRateMode", _RATE_MODE.get(tech.rate_mode or ""))
    sub(fd, "formatName", FORMAT_NAMES.get(tech.container or "", tech.container))
    sub(fd, "formatVersion", tech.format_version)
    sub(fd, "numSampleFrames", tech.frames if tech.frames is not None and tech.frames <= INT_MAX else None)
    sub(fd, "samplingFrequency", khz(tech.sample_rate) if tech.sample_rate else None)
    info = etree.SubElement(root, _A + "audioInfo")
    sub(info, "duration", iso_duration(tech.frames, tech.sample_rate, tech.duration))
    sub(info, "numChannels", tech.channels)
    sub(info, "soundField", tech.sound_field)
    if not len(info):
        root.remove(info)
    return root

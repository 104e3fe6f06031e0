"""Finding the DDEX ERN message of a delivery folder, by looking at each XML file's root element.

Only the first bytes of each top-level ``*.xml`` file are read, decoded with the encoding they
announce (UTF-16 ERN files exist), and the root element's name and namespace taken from them
without running a parser: a hostile file is refused later, when the one chosen message is parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from preserve.xmlsafe import text_encoding

ERN_PREFIX = "http://ddex.net/xml/ern/"
#: the ERN namespaces preserve reads, and the version each one is
VERSIONS = {"http://ddex.net/xml/ern/382": "3.8.2", "http://ddex.net/xml/ern/41": "4.1",
            "http://ddex.net/xml/ern/42": "4.2", "http://ddex.net/xml/ern/43": "4.3"}
MESSAGE_TYPE = "NewReleaseMessage"
_HEAD = 65536
_SKIP = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>", re.DOTALL | re.IGNORECASE)
_START = re.compile(r"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)((?:\s+[^\s=>/]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*/?>", re.DOTALL)
_XMLNS = re.compile(r"xmlns(?::([\w.-]+))?\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


@dataclass(frozen=True)
class RootElement:
    name: str                      # local name, e.g. "NewReleaseMessage"
    namespace: str                 # "" when none

    @property
    def is_ern(self) -> bool:
        return self.namespace.startswith(ERN_PREFIX)

    @property
    def version(self) -> str | None:
        return VERSIONS.get(self.namespace.rstrip("/"))


def root_element(path: Path) -> RootElement | None:
    """The root element of an XML file from its first bytes, or None when they hold no start tag."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return None
    text = head.decode(text_encoding(head), errors="replace").lstrip("\ufeff")
    pos = 0
    while True:
        m = _SKIP.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
    start = _START.match(text, pos)
    if not start:
        return None
    prefix = (start.group(1) or "").rstrip(":")
    spaces = {(m.group(1) or ""): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _XMLNS.finditer(start.group(3) or "")}
    return RootElement(start.group(2), spaces.get(prefix, ""))


def is_batch_control(name: str) -> bool:
    """Batch-control files (``BatchComplete_*.xml``) belong to the batch, not to a release."""
    return name.rsplit("/", 1)[-1].startswith("BatchComplete")


def candidates(root: Path, files: list[str]) -> list[tuple[str, RootElement]]:
    """Top-level XML files of ``root`` whose root element is in an ERN namespace, in name order."""
    out = []
    for rel in sorted(files):
        if "/" in rel or not rel.lower().endswith(".xml") or is_batch_control(rel):
            continue
        found = root_element(root / rel)
        if found is not None and found.is_ern:
            out.append((rel, found))
    return out


def refusal(rel: str, found: RootElement) -> str | None:
    """Why an ERN file is not a message preserve reads (its type or version), or None when it is."""
    if found.version is None:
        return (f"{rel}: an ERN message in namespace {found.namespace}, a version preserve does not read "
                f"(it reads ERN {', '.join(VERSIONS.values())}); ask the label for an ERN 4.3 or 3.8.2 message")
    if found.name != MESSAGE_TYPE:
        return (f"{rel}: a {found.name} (ERN {found.version}); preserve packages deliveries described by a "
                f"{MESSAGE_TYPE}, not a {found.name}")
    return None

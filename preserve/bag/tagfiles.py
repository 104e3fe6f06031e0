"""Reading and writing BagIt tag files: bagit.txt, bag-info.txt (package-info.txt), fetch.txt."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

BAGIT_VERSION = "1.0"
SUPPORTED_VERSIONS = ("0.93", "0.94", "0.95", "0.96", "0.97", "1.0")
#: preserve's list of the payload's empty folders (manifests list files only), one encoded path a line.
EMPTY_DIRECTORIES = "metadata/empty-directories.txt"
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "utf16": "utf-16",
              "iso-8859-1": "iso-8859-1", "iso8859-1": "iso-8859-1", "latin-1": "iso-8859-1",
              "latin1": "iso-8859-1", "us-ascii": "ascii", "ascii": "ascii"}
_LABEL = re.compile(r"^([^:\s][^:]*?):[ \t](.*)$")
_LABEL_LOOSE = re.compile(r"^([^:\s][^:]*?)\s*:\s*(.*)$")
_LINE_END = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines ended by LF, CRLF or CR only, as RFC 8493 defines them.

    ``str.splitlines`` also splits at U+2028, NEL, form feed and others, which are ordinary
    characters in a BagIt value or path.
    """
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot be a bag-info.txt label (RFC 8493 2.2.2), or None."""
    if not label:
        return "a label cannot be empty"
    if ":" in label:
        return "a label cannot contain ':'"
    if any(c in label for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        return "a label cannot contain a line break"
    if label != label.strip():
        return "a label cannot start or end with whitespace"
    return None


@dataclass(frozen=True)
class TagProblem:
    severity: str  # "error" | "warning"
    message: str
    line: int | None = None


def python_encoding(declared: str) -> str | None:
    """The codec for a Tag-File-Character-Encoding value, or None when it is not one we read."""
    name = declared.strip().lower()
    if name in _ENCODINGS:
        return _ENCODINGS[name]
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def parse_bagit_txt(data: bytes) -> tuple[str | None, str | None, list[TagProblem]]:
    """(version, encoding, problems) from bagit.txt, which must be exactly two ``Key: value`` lines."""
    problems: list[TagProblem] = []
    if data.startswith(codecs.BOM_UTF8):
        problems.append(TagProblem("error", "bagit.txt starts with a byte-order mark, which RFC 8493 forbids"))
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, [TagProblem("error", "bagit.txt is not UTF-8")]
    version = encoding = None
    lines = split_lines(text)
    for number, line in enumerate(lines, 1):
        m = _LABEL.match(line)
        if not m:
            problems.append(TagProblem("error", f"bagit.txt line {number} is not 'Key: value': {line!r}", number))
            loose = _LABEL_LOOSE.match(line)
            if not loose:
                continue
            key, value = loose.group(1), loose.group(2)
        else:
            key, value = m.group(1), m.group(2)
        if key == "BagIt-Version":
            version = value.strip()
        elif key == "Tag-File-Character-Encoding":
            encoding = value.strip()
        else:
            problems.append(TagProblem("error", f"bagit.txt line {number} has an unknown label {key!r}", number))
    if version is None:
        problems.append(TagProblem("error", "bagit.txt has no BagIt-Version"))
    elif version not in SUPPORTED_VERSIONS:
        problems.append(TagProblem("warning" if re.fullmatch(r"\d+\.\d+", version) else "error",
                                   f"BagIt-Version {version} is not one of {', '.join(SUPPORTED_VERSIONS)}"))
    if encoding is None:
        problems.append(TagProblem("error", "bagit.txt has no Tag-File-Character-Encoding"))
    elif python_encoding(encoding) is None:
        problems.append(TagProblem("error", f"unknown Tag-File-Character-Encoding {encoding!r}"))
    if len([ln for ln in lines if ln.strip()]) != 2:
        problems.append(TagProblem("error", f"bagit.txt must hold exactly two lines, it holds {len(lines)}"))
    return version, encoding, problems


def decode_tag_text(data: bytes, encoding: str) -> str:
    """Decode a tag file; a UTF-8 BOM is tolerated (stripped) outside bagit.txt."""
    codec = python_encoding(encoding) or "utf-8"
    if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    return data.decode(codec)


def parse_bag_info(text: str) -> tuple[list[tuple[str, str]], list[TagProblem]]:
    """Labels and values in file order (labels repeat), with folded continuation lines joined."""
    items: list[tuple[str, str]] = []
    problems: list[TagProblem] = []
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip():
            continue
        if line[0] in " \t":
            if not items:
                problems.append(TagProblem("error", f"line {number} continues a value but none started", number))
                continue
            key, value = items[-1]
            items[-1] = (key, value + " " + line.strip())
            continue
        m = _LABEL.match(line)
        if not m:
            loose = _LABEL_LOOSE.match(line)
            if loose:
                problems.append(TagProblem("warning", f"line {number} is not 'Label: value' with one space: {line!r}", number))
                items.append((loose.group(1).strip(), loose.group(2).strip()))
            else:
                problems.append(TagProblem("error", f"line {number} is not 'Label: value': {line!r}", number))
            continue
        items.append((m.group(1).strip(), m.group(2).strip()))
    return items, problems


def format_bag_info(items: list[tuple[str, str]]) -> str:
    """Serialise bag-info items; values never span lines (newlines folded to spaces)."""
    out = []
    for key, value in items:
        problem = label_problem(key)
        if problem:
            raise ValueError(f"bag-info label {key!r} is not a valid label: {problem}")
        value = " ".join(str(value).split())
        out.append(f"{key}: {value}\n")
    return "".join(out)


def write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


@dataclass(frozen=True)
class FetchEntry:
    url: str
    length: int | None
    path: str
    line: int


def parse_fetch(text: str, version: tuple[int, int] = (1, 0)) -> tuple[list[FetchEntry], list[TagProblem]]:
    """fetch.txt's entries, paths decoded as BagIt ``version`` encodes them (see
    :func:`~preserve.bag.paths.decode_manifest_path`)."""
    from preserve.bag.paths import decode_manifest_path

    entries: list[FetchEntry] = []
    problems: list[TagProblem] = []
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        if len(parts) != 3:
            problems.append(TagProblem("error", f"fetch.txt line {number} is not 'URL LENGTH PATH': {line!r}", number))
            continue
        url, length_text, path = parts
        length: int | None
        if length_text == "-":
            length = None
        elif length_text.isdigit():
            length = int(length_text)
        else:
            problems.append(TagProblem("error", f"fetch.txt line {number}: length {length_text!r} is neither a number nor '-'", number))
            continue
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
            problems.append(TagProblem("error", f"fetch.txt line {number}: {url!r} is not a URL", number))
        entries.append(FetchEntry(url, length, decode_manifest_path(path, version), number))
    return entries, problems

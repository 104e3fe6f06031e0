"""The producer's metadata sheet: ``metadata.csv`` (as spreadsheets really export it) or ``metadata.json``.

CSV is read as Excel, LibreOffice, Numbers and Google Sheets write it: UTF-8 with or without a
byte-order mark, UTF-16 with a BOM (Excel's "Unicode text"), Windows-1252 as a last resort (with
a warning), ``,``, ``;`` or tab delimiters, quoted cells holding newlines. Header cells are
compared without case, surrounding spaces, or the difference between spaces, hyphens and
underscores (``Rights Holder`` is ``rights_holder``).

Rows are numbered from 1 for the first row under the header, in every message and in the
package model. Reading never raises for the content of a sheet: every problem is collected,
naming its row, so a curator sees them all at once.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

DESCRIPTIVE = ("title", "artist", "album", "track_number", "disc_number", "date", "isrc", "upc", "label",
               "composer", "genre", "language", "description", "catalogue_number", "recorded", "released",
               "contributors", "matrix_number", "p_line", "c_line")
RIGHTS = ("rights_basis", "rights_holder", "copyright_status", "license", "agreement", "permitted_acts",
          "restriction_until", "rights_note")
CHECKSUMS = ("md5", "sha1", "sha256", "sha512")
OTHER = ("accept_damaged", "source", "accession", "donor")
COLUMNS = ("file", *DESCRIPTIVE, *RIGHTS, *CHECKSUMS, *OTHER)
#: columns whose cells hold several values separated by ``;``
MULTI = frozenset({"artist", "composer", "permitted_acts", "contributors"})
SHEET_NAMES = ("metadata.csv", "metadata.json")
_ALIASES = {"filename": "file", "path": "file", "file_name": "file", "artists": "artist",
            "composers": "composer", "licence": "license", "track": "track_number",
            "disc": "disc_number", "catalog_number": "catalogue_number", "ean": "upc",
            "contributor": "contributors", "recording_date": "recorded", "release_date": "released",
            "pline": "p_line", "cline": "c_line"}


@dataclass
class SheetRow:
    number: int                    # 1 = first row under the header
    cells: dict[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "").strip()


@dataclass
class Sheet:
    path: Path
    name: str                      # as shown in messages (collection-relative)
    rows: list[SheetRow] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ""
    problems: list[tuple[int | None, str]] = field(default_factory=list)   # (row, message)
    warnings: list[str] = field(default_factory=list)


def normalize_header(text: str) -> str:
    """'  Rights Holder ' -> 'rights_holder'; known aliases (Filename, Licence) to their column."""
    key = re.sub(r"[\s\-]+", "_", text.replace("\ufeff", "").strip().lower()).strip("_")
    return _ALIASES.get(key, key)


def decode_sheet(raw: bytes) -> tuple[str, str, str | None]:
    """Bytes to text: returns (text, encoding name, warning or None). Never raises."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return _decode(raw[3:], "utf-8", "UTF-8 with BOM")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode(raw, "utf-16", "UTF-16")
    if len(raw) >= 4 and raw[1] == 0 and raw[3] == 0 and raw[0] != 0:
        return _decode(raw, "utf-16-le", "UTF-16LE (no BOM)")
    if len(raw) >= 4 and raw[0] == 0 and raw[2] == 0 and raw[1] != 0:
        return _decode(raw, "utf-16-be", "UTF-16BE (no BOM)")
    try:
        return raw.decode("utf-8"), "UTF-8", None
    except UnicodeDecodeError as exc:
        text = raw.decode("cp1252", errors="replace")
        return text, "Windows-1252", (
            f"not valid UTF-8 (byte offset {exc.start}); read as Windows-1252. Export the sheet as "
            "'CSV UTF-8' so names and titles keep their accents exactly")


def _decode(raw: bytes, codec: str, name: str) -> tuple[str, str, str | None]:
    try:
        return raw.decode(codec), name, None
    except UnicodeDecodeError as exc:
        return raw.decode(codec, errors="replace"), name, (
            f"not valid {name} (byte offset {exc.start}); unreadable characters were replaced by \ufffd. "
            "Export the sheet again as 'CSV UTF-8'")


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_sheet(path: Path, name: str) -> Sheet:
    """Read a CSV or JSON sheet; problems are collected on the result, never raised."""
    sheet = Sheet(path, name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        sheet.problems.append((None, f"{name}: cannot be read ({exc.strerror})"))
        return sheet
    text, sheet.encoding, warning = decode_sheet(raw)
    if warning:
        sheet.warnings.append(f"{name}: {warning}")
    if path.suffix.lower() == ".json":
        _read_json(sheet, text)
    else:
        _read_csv(sheet, text)
    _check_rows(sheet)
    return sheet


def _read_csv(sheet: Sheet, text: str) -> None:
    sheet.delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sheet.delimiter)
    records: list[tuple[int, list[str]]] = []     # (line the record starts on, cells)
    try:
        start = 1
        for record in reader:
            records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as exc:
        sheet.problems.append((None, f"{sheet.name}: not readable as CSV (line {reader.line_num}: {exc})"))
        return
    unclosed = _unclosed_quote(text, sheet.delimiter)
    if unclosed is not None:
        began, why = unclosed
        sheet.problems.append((None, f"{sheet.name} line {began}: a quoted cell begins here and {why}, so the lines "
                                     "after it were read into that one cell. Close the quote (a quote inside a "
                                     "quoted cell is written as two: \"\")"))
    while records and not any(c.strip() for c in records[0][1]):
        records.pop(0)
    if not records:
        sheet.problems.append((None, f"{sheet.name}: the sheet is empty; it needs a header row with at least a 'file' column"))
        return
    header = [normalize_header(h) for h in records[0][1]]
    sheet.columns = header
    for number, (line, record) in enumerate(records[1:], 1):
        if not any(c.strip() for c in record):
            continue
        spans_lines = any("\n" in c or "\r" in c for c in record)
        if unclosed is not None and spans_lines:
            pass    # the open quote is reported above; its row's cell count says nothing more
        elif len(record) > len(header) and any(c.strip() for c in record[len(header):]):
            sheet.problems.append((number, f"{sheet.name} row {number}: {len(record)} cells but the header has {len(header)} columns "
                                            f"(a '{sheet.delimiter}' inside a cell that is not quoted?)"))
        elif len(record) != len(header) and spans_lines:
            # a quote opened in one row and closed in a later one: the rows between became one cell
            first = next(i for i, c in enumerate(record) if "\n" in c or "\r" in c)
            began = line + sum(len(_LINE_BREAK.findall(c)) for c in record[:first])
            sheet.problems.append((number, f"{sheet.name} row {number}: {len(record)} cells but the header has {len(header)} "
                                            f"columns, and the quoted cell that begins on line {began} spans several lines; "
                                            "is a quote there left open?"))
        cells = {h: record[i] if i < len(record) else "" for i, h in enumerate(header) if h}
        sheet.rows.append(SheetRow(number, cells))


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _unclosed_quote(text: str, delimiter: str) -> tuple[int, str] | None:
    """Where a quoted cell opens that strict CSV cannot close: (its line, what went wrong), or None.

    The lenient reader used for the rows runs such a cell on to the end of the file (or to a stray
    quote much later), swallowing every row in between; this finds the line the cell began on.
    Only quotes and line breaks are visited, so a long sheet costs one regular-expression pass.
    """
    if '"' not in text:
        return None
    line, quote_line, in_quote, skip = 1, 0, False, -1
    for m in _QUOTE_OR_BREAK.finditer(text):
        i, c = m.start(), m.group()
        if i == skip:
            continue                        # the second quote of a doubled quote
        if c != '"':
            line += 1
        elif in_quote:
            if text[i + 1:i + 2] == '"':
                skip = i + 1
                continue
            in_quote = False
            following = text[i + 1:i + 2]
            if following not in ("", delimiter, "\r", "\n"):
                return quote_line, (f"its closing quote on line {line} is followed by {following!r}, "
                                    f"not by '{delimiter}' or the end of the row")
        elif i == 0 or text[i - 1] in (delimiter, "\r", "\n"):
            in_quote, quote_line = True, line
    if in_quote:
        return quote_line, "is never closed"
    return None


_QUOTE_OR_BREAK = re.compile(r'"|\r\n|\r|\n')


def _scalar(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _cell(column: str, value: object) -> str | None:
    """The cell text of a JSON value, or None when the value is not one the column can hold.

    A column holds one scalar (text, number, true/false, null); a column of several values
    (artist, composer, permitted_acts) also takes a list of scalars. An object, a list of lists,
    or a list where one value is expected is never turned into text: that text would be a
    Python rendering, not the producer's value.
    """
    if isinstance(value, list):
        if (column in MULTI or column not in COLUMNS) and not any(isinstance(v, (list, dict)) for v in value):
            return "; ".join(_scalar(v) for v in value)
        return None
    if isinstance(value, dict):
        return None
    return _scalar(value)


def _read_json(sheet: Sheet, text: str) -> None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        sheet.problems.append((None, f"{sheet.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"))
        return
    except RecursionError:
        sheet.problems.append((None, f"{sheet.name}: nested too deeply to be a sheet"))
        return
    if isinstance(data, dict):
        data = next((data[k] for k in ("tracks", "rows", "files") if isinstance(data.get(k), list)), None)
    if not isinstance(data, list):
        sheet.problems.append((None, f"{sheet.name}: expected a list of rows (objects), or an object with a 'tracks' list"))
        return
    columns: dict[str, None] = {}
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict):
            sheet.problems.append((number, f"{sheet.name} row {number}: is not an object with column names"))
            continue
        cells: dict[str, str] = {}
        for key, value in item.items():
            column = normalize_header(str(key))
            cell = _cell(column, value)
            if cell is None:
                kind = "an object" if isinstance(value, dict) else "a list"
                if column in COLUMNS:
                    expected = "one value or a list of values" if column in MULTI else "one value (text or a number)"
                    sheet.problems.append((number, f"{sheet.name} row {number}: {key!r} holds {kind}; the {column} "
                                                   f"column takes {expected}"))
                else:
                    sheet.warnings.append(f"{sheet.name} row {number}: {key!r} holds {kind}; the column is not one "
                                          "preserve reads, so it is kept only in the packaged sheet")
            cells[column] = cell or ""
        columns.update(dict.fromkeys(cells))
        sheet.rows.append(SheetRow(number, cells))
    sheet.columns = list(columns)


def _check_rows(sheet: Sheet) -> None:
    if not sheet.rows and not sheet.problems:
        sheet.problems.append((None, f"{sheet.name}: has a header but no rows; add one row per audio file"))
    if sheet.columns and "file" not in sheet.columns:
        sheet.problems.append((None, f"{sheet.name}: no 'file' column (found: {', '.join(c for c in sheet.columns if c)}); "
                                     "the first column should be 'file', the path of each audio file"))
        return
    unknown = [c for c in sheet.columns if c and c not in COLUMNS]
    if unknown:
        sheet.warnings.append(f"{sheet.name}: column(s) {', '.join(repr(c) for c in unknown)} are not sheet columns "
                              "preserve knows; they are kept in the packaged sheet but not read")
    seen: dict[str, int] = {}
    for row in sheet.rows:
        name = row.get("file").replace("\\", "/")
        row.cells["file"] = name
        if not name:
            sheet.problems.append((row.number, f"{sheet.name} row {row.number}: the 'file' cell is empty"))
            continue
        # "é" typed as one code point in one row and as two in another names the same file
        key = unicodedata.normalize("NFC", name.removeprefix("./"))
        if key in seen:
            sheet.problems.append((row.number, f"{sheet.name} row {row.number}: {name.removeprefix('./')} is already described in row {seen[key]}; "
                                               "keep one row per file"))
        else:
            seen[key] = row.number


def split_multi(value: str) -> tuple[str, ...]:
    """'A; B ;C' -> ('A', 'B', 'C')."""
    return tuple(v.strip() for v in value.split(";") if v.strip())

"""Checking a bag's sidecars: well-formed, consistent with the bag, valid against the schemas.

Every problem becomes a :class:`~preserve.bag.validate.Finding` with code ``sidecar``:
the XML parses safely (no DTDs, no entities, no network); every payload file of the manifests is
in the METS fileSec and in PREMIS exactly once, and nothing else is; every fileSec entry has a
CHECKSUM and every PREMIS file object a fixity for each manifest algorithm, each equal to the
manifest's; every FLocat resolves to a payload file; and, where the official schemas are
installed, both documents are valid.

Documents up to :data:`TREE_LIMIT` bytes are parsed whole with :func:`preserve.xmlsafe.parse_untrusted`
(schema errors then carry line numbers). Larger ones, from bags of thousands of tracks, are
streamed with the same parser safety and cleared as they are read, so memory stays bounded;
schema errors then name the element but libxml2 gives no line.

The sidecars, and the payload files whose sizes are compared, are reached without following a
symbolic link at any level below the bag (:mod:`preserve.safefs`): a linked sidecar is reported,
never read. A payload file that fetch.txt names and the bag does not hold yet is compared with the
length fetch.txt declares (``validate --fetch`` checks that length against the download).
"""

from __future__ import annotations

import errno
import os
import stat
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from lxml import etree

from preserve.bag.reader import open_bag, pinned_tag_file, unreadable_tag_file
from preserve.bag.validate import Finding
from preserve.errors import PreserveError, SchemaError, UnsafeXML
from preserve.safefs import LINK_REASON, LinkRefused, lstat_beneath, read_beneath
from preserve.sidecars.mets import METS_NS, XLINK_NS
from preserve.sidecars.plan import DIGEST_NAMES
from preserve.sidecars.premis import LOCAL_ID, LOCAL_ID_ENCODED, PREMIS_NS, XSI_NS
from preserve.sidecars.schemas import ENV_VAR, Validators, find_schemas, load_validators
from preserve.sidecars.xmlstream import SchemaInvalid, refuse_doctype, stream
from preserve.sidecars.xmltext import decode_path
from preserve.xmlsafe import parse_untrusted

METS_FILE = "metadata/mets.xml"
PREMIS_FILE = "metadata/premis.xml"
#: Sidecars larger than this are streamed rather than parsed into one tree.
TREE_LIMIT = 64 * 1024 * 1024
#: At most this many findings of one kind are listed; the rest are counted in one more finding.
MAX_LISTED = 50
_ALG_BY_PREMIS = {v.upper(): k for k, v in DIGEST_NAMES.items()}
_NS = {"mets": METS_NS, "premis": PREMIS_NS, "xlink": XLINK_NS}
_FILE = f"{{{METS_NS}}}file"
_OBJECT = f"{{{PREMIS_NS}}}object"
#: Elements cleared once read while streaming (each is complete and checked by then).
_SECTIONS = frozenset(f"{{{METS_NS}}}{t}" for t in ("dmdSec", "amdSec", "file", "structMap")) | \
    frozenset(f"{{{PREMIS_NS}}}{t}" for t in ("object", "event", "agent", "rights"))


class _Findings:
    def __init__(self) -> None:
        self.items: list[Finding] = []
        self._counts: dict[str, int] = {}

    def add(self, severity: str, message: str, *, kind: str, path: str | None = None,
            expected: str | None = None, found: str | None = None, algorithm: str | None = None) -> None:
        n = self._counts[kind] = self._counts.get(kind, 0) + 1
        if n <= MAX_LISTED:
            self.items.append(Finding(severity, "sidecar", message, path=path,  # type: ignore[arg-type]
                                      algorithm=algorithm, expected=expected, found=found))

    def close(self) -> list[Finding]:
        for kind, n in self._counts.items():
            if n > MAX_LISTED:
                self.items.append(Finding("error", "sidecar", f"{n - MAX_LISTED} more sidecar problem(s) of the kind '{kind}' not listed"))
        return self.items


def _manifests(bag_path: Path) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """The payload manifests' digests by path, and the lengths fetch.txt declares by path."""
    bag = open_bag(bag_path)
    out: dict[str, dict[str, str]] = {}
    for alg in bag.payload_manifests:
        try:
            for line in bag.iter_manifest(alg):
                if line.error is None:
                    out.setdefault(line.path, {})[alg] = line.digest
        except (LinkRefused, UnicodeDecodeError):
            continue  # validate_bag reports both; this manifest gives nothing to compare
        except OSError as exc:
            raise unreadable_tag_file(bag_path, f"manifest-{alg}.txt", exc) from exc
    try:
        entries, _problems = bag.fetch_entries()
    except (OSError, UnicodeDecodeError):
        entries = []  # validate_bag reports an unreadable fetch.txt
    return out, {e.path: e.length for e in entries if e.length is not None}


def _bag_path(obj: etree._Element) -> str | None:
    """The bag path a PREMIS file object names in its local identifier (decoded when percent-encoded)."""
    for ident in obj.iterfind("premis:objectIdentifier", _NS):
        type_ = ident.findtext("premis:objectIdentifierType", namespaces=_NS)
        value = ident.findtext("premis:objectIdentifierValue", namespaces=_NS)
        if value is not None and type_ == LOCAL_ID:
            return value
        if value is not None and type_ == LOCAL_ID_ENCODED:
            return decode_path(value)
    return None


class _Consistency:
    """Compares each fileSec file and PREMIS file object, as it is read, with the manifests."""

    def __init__(self, bag: Path, manifests: dict[str, dict[str, str]], out: _Findings,
                 payload_size: Callable[[str], int | None] | None = None, fetched: dict[str, int] | None = None) -> None:
        self.bag, self.manifests, self.out = bag, manifests, out
        self.fetched = fetched or {}
        if payload_size is None and _lstat_kind(bag, "data") == "dir":
            payload_size = self._stat_size
        # None: a folder of tag files only, with no payload to resolve FLocats against
        self.payload_size = payload_size
        self.in_filesec: set[str] = set()
        self.in_premis: dict[str, set[str]] = {}

    def _stat_size(self, target: str) -> int | None:
        """The size of the regular file ``target``, reached with no link followed; for an item
        fetch.txt names and the bag does not hold, its declared length; else None."""
        try:
            st = lstat_beneath(self.bag, target)
        except FileNotFoundError:
            return self.fetched.get(target)
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def element(self, rel: str, el: etree._Element) -> None:
        if el.tag == _FILE and el.getparent() is not None and el.getparent().tag == f"{{{METS_NS}}}fileGrp":  # type: ignore[union-attr]
            self.file(el)
        elif el.tag == _OBJECT and (el.get(f"{{{XSI_NS}}}type") or "").split(":")[-1] == "file":
            self.premis_object(rel, el)

    def file(self, f: etree._Element) -> None:
        out = self.out
        loc = f.find("mets:FLocat", _NS)
        href = loc.get(f"{{{XLINK_NS}}}href") if loc is not None else None
        fid = f.get("ID")
        if not href:
            out.add("error", f"{METS_FILE}: file {fid} has no FLocat xlink:href", kind="flocat", path=METS_FILE)
            return
        target = os.path.normpath(os.path.join("metadata", urllib.parse.unquote(href))).replace(os.sep, "/")
        if not target.startswith("data/"):
            out.add("error", f"{METS_FILE}: FLocat {href!r} of {fid} points outside the payload", kind="flocat", path=METS_FILE)
            return
        if target in self.in_filesec:
            out.add("error", f"{METS_FILE}: the fileSec lists this payload file more than once ({fid})",
                    kind="mets-duplicate", path=target)
            return
        self.in_filesec.add(target)
        expected = self.manifests.get(target)
        if expected is None:
            out.add("error", f"{METS_FILE}: the fileSec lists {target}, which is not in the payload manifests", kind="mets-extra", path=target)
            return
        actual = None
        if self.payload_size is not None:
            actual = self.payload_size(target)
            if actual is None:
                out.add("error", f"{METS_FILE}: FLocat {href!r} does not resolve to a file", kind="flocat", path=target)
        ctype = (f.get("CHECKSUMTYPE") or "").upper()
        alg = _ALG_BY_PREMIS.get(ctype)
        checksum = (f.get("CHECKSUM") or "").lower()
        if not checksum or not ctype:
            out.add("error", f"{METS_FILE}: the fileSec entry {fid} has no {'CHECKSUM' if not checksum else 'CHECKSUMTYPE'}",
                    kind="mets-no-checksum", path=target)
        elif alg in expected and checksum != expected[alg]:
            out.add("error", f"{METS_FILE}: the fileSec CHECKSUM ({ctype}) differs from manifest-{alg}.txt",
                    kind="mets-digest", path=target, algorithm=alg, expected=expected[alg], found=checksum)
        size = f.get("SIZE")
        if actual is not None and size is not None and size != str(actual):
            out.add("error", f"{METS_FILE}: the fileSec SIZE differs from the file's size", kind="mets-size",
                    path=target, expected=str(actual), found=size)

    def premis_object(self, rel: str, obj: etree._Element) -> None:
        out = self.out
        local = _bag_path(obj)
        if local is None:
            out.add("error", f"{rel}: a PREMIS file object has no local identifier (bag path)", kind="premis-id", path=rel)
            return
        seen = self.in_premis.setdefault(rel, set())
        if local in seen:
            out.add("error", f"{rel} has more than one file object for this payload file", kind="premis-duplicate", path=local)
            return
        seen.add(local)
        expected = self.manifests.get(local)
        if expected is None:
            out.add("error", f"{rel} describes {local}, which is not in the payload manifests", kind="premis-extra", path=local)
            return
        found: set[str] = set()
        for fx in obj.iterfind("premis:objectCharacteristics/premis:fixity", _NS):
            name = (fx.findtext("premis:messageDigestAlgorithm", namespaces=_NS) or "").strip()
            alg = _ALG_BY_PREMIS.get(name.upper())
            digest = (fx.findtext("premis:messageDigest", namespaces=_NS) or "").strip().lower()
            if alg is not None:
                found.add(alg)
            if alg in expected and digest != expected[alg]:
                out.add("error", f"{rel}: the PREMIS {name} of this file differs from manifest-{alg}.txt",
                        kind="premis-digest", path=local, algorithm=alg, expected=expected[alg], found=digest)
        for alg in sorted(set(expected) - found):
            out.add("error", f"{rel}: the PREMIS file object has no {DIGEST_NAMES.get(alg, alg)} fixity, which "
                    f"manifest-{alg}.txt gives", kind="premis-no-fixity", path=local, algorithm=alg, expected=expected[alg])

    def finish(self, read: set[str]) -> None:
        for path in self.manifests:
            if METS_FILE in read and path not in self.in_filesec:
                self.out.add("error", f"{METS_FILE}: the fileSec does not list this payload file", kind="mets-missing", path=path)
            for rel in sorted(read):
                if path not in self.in_premis.get(rel, set()):
                    self.out.add("error", f"{rel} has no file object for this payload file", kind="premis-missing", path=path)


def _check_document(bag: Path, rel: str, consistency: _Consistency, validators: Validators | None,
                    out: _Findings) -> bool:
    """Check one sidecar; False when it could not be read at all. It is opened with no link
    followed below the bag: a link is reported, and nothing behind it is read."""
    kind = _lstat_kind(bag, rel)
    if kind == "link":
        out.add("error", f"{rel} {LINK_REASON}; it was not read", kind="link", path=rel)
        return False
    if kind is None:
        out.add("error", f"{rel} is missing; the bag's PREMIS/METS sidecars are incomplete", kind="missing", path=rel)
        return False
    if kind != "file":
        out.add("error", f"{rel} is not a regular file (a folder, pipe or device); it was not read", kind="missing", path=rel)
        return False
    schema = None if validators is None else (validators.mets if rel == METS_FILE else validators.premis)
    try:
        if lstat_beneath(bag, rel).st_size <= TREE_LIMIT:
            root = parse_untrusted(read_beneath(bag, rel), source=rel)
            refuse_doctype(root.getroottree().docinfo, rel)
            for el in _iter_checked(root):
                consistency.element(rel, el)
            if schema is not None and not schema.validate(etree.ElementTree(root)):
                for err in list(iter(schema.error_log))[:MAX_LISTED]:  # type: ignore[call-overload]
                    out.add("error", f"not valid against the official schema (line {err.line}): {err.message}",
                            kind=f"schema {rel}", path=rel)
        else:
            with pinned_tag_file(bag, rel) as path:
                for event, el in stream(path, rel, clear=_SECTIONS):
                    if event == "end":
                        consistency.element(rel, el)
                if schema is not None:
                    try:
                        for _ in stream(path, rel, clear=_SECTIONS, schema=schema):
                            pass
                    except SchemaInvalid as exc:
                        out.add("error", f"not valid against the official schema: {exc}", kind=f"schema {rel}", path=rel)
    except UnsafeXML as exc:
        out.add("error", str(exc), kind="xml", path=rel)
        return False
    except LinkRefused as exc:
        # a folder on the way is a link (metadata/ itself), or one was swapped in since the lstat
        out.add("error", f"{rel}: {exc.filename} {LINK_REASON}; it was not read", kind="link", path=rel)
        return False
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            out.add("error", f"{rel} is not a regular file (a pipe or device); it was not read", kind="missing", path=rel)
            return False
        raise unreadable_tag_file(bag, rel, exc) from exc
    return True


def _lstat_kind(bag: Path, rel: str) -> str | None:
    """'file', 'dir', 'link' or 'other' for ``bag/rel`` reached with no link followed (a link on
    the way counts as 'link'); None when absent."""
    try:
        st = lstat_beneath(bag, rel)
    except LinkRefused:
        return "link"
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "link"
    return "file" if stat.S_ISREG(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "other"


def _iter_checked(root: etree._Element) -> Iterator[etree._Element]:
    yield from root.iter(_FILE, _OBJECT)


def check_sidecars(bag_path: str | os.PathLike[str], *, schemas: Path | None = None,
                   payload_size: Callable[[str], int | None] | None = None) -> list[Finding]:
    """Every problem with the bag's ``metadata/mets.xml`` and ``metadata/premis.xml``.

    ``bag_path`` may also be a folder of the bag's tag files only (bagit.txt, bag-info.txt,
    manifests, tag manifests, ``metadata/``), as spooled from an archive: without a ``data/``
    folder the FLocats are not resolved and METS SIZEs not compared, unless ``payload_size`` gives
    the size of a payload file by its bag path (None where there is no such file), as an archive's
    index can; everything else is checked.
    ``schemas`` is a folder of the official schemas; by default ``$PRESERVE_SCHEMAS`` or the
    installed ones. Without any, a warning says so and only the schema check is skipped.
    """
    bag = Path(bag_path)
    out = _Findings()
    try:
        manifests, fetched = _manifests(bag)
    except PreserveError:
        # validate_bag already reports unreadable tag files; without manifests there is nothing to compare.
        manifests, fetched = {}, {}
    folder = schemas if schemas is not None else find_schemas()
    validators = None
    if folder is None:
        out.add("warning", f"the official XML schemas are not installed, so the sidecars were not checked against them; "
                f"run `preserve schemas install` (or set {ENV_VAR} to a folder of them)", kind="no-schemas")
    else:
        try:
            validators = load_validators(folder)
        except SchemaError as exc:
            out.add("error", f"cannot check the sidecars against the schemas: {exc}", kind="schemas")
    consistency = _Consistency(bag, manifests, out, payload_size, fetched)
    read = {rel for rel in (METS_FILE, PREMIS_FILE) if _check_document(bag, rel, consistency, validators, out)}
    consistency.finish(read)
    return out.close()

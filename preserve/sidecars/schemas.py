"""The official XML schemas: installing them (pinned SHA-256), finding them, compiling validators.

The schemas are not part of the project. ``preserve schemas install`` fetches the METS, PREMIS,
MODS, XLink and xml.xsd files from their Library of Congress and W3C addresses, or copies them from
a folder (``--from DIR``), checks each against the SHA-256 pinned in ``preserve/schemas_pins.json``
and refuses the whole install if any differs. They land in the user's data directory
(platformdirs) with an OASIS XML catalog for other tools (``xmllint``, ``XML_CATALOG_FILES``).

Validation does not depend on the catalog: lxml is given a resolver that maps every pinned
``schemaLocation`` to the local file, so nothing is fetched from the network at validation time,
and every file is checked against its pin again before it is compiled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree
from platformdirs import user_data_dir

from preserve.errors import DestinationExists, SchemaError

ENV_VAR = "PRESERVE_SCHEMAS"
CATALOG = "catalog.xml"
MAX_SCHEMA_BYTES = 4 * 1024 * 1024  # the largest official file is ~150 KB


@dataclass(frozen=True)
class PinnedSchema:
    """One official schema file: local name, official address, SHA-256, the URIs that name it."""

    name: str
    url: str
    sha256: str
    uris: tuple[str, ...]


def pins() -> list[PinnedSchema]:
    """The pinned schema list shipped with the package."""
    raw: dict[str, Any] = json.loads(resources.files("preserve").joinpath("schemas_pins.json").read_text("utf-8"))
    return [PinnedSchema(f["name"], f["url"], f["sha256"], tuple(f["uris"])) for f in raw["files"]]


def default_dir() -> Path:
    """Where ``schemas install`` puts the schemas: ``<user data dir>/preserve/schemas``."""
    return Path(user_data_dir("preserve", appauthor=False)) / "schemas"


def find_schemas() -> Path | None:
    """The schema folder to validate with: ``$PRESERVE_SCHEMAS`` if set, else the installed one."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    d = default_dir()
    return d if (d / CATALOG).is_file() else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # fixed https URLs, or a test's override
            data: bytes = resp.read(MAX_SCHEMA_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        reason = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise SchemaError(f"{url}: cannot download the schema ({reason}); check the network, or use "
                          "`preserve schemas install --from DIR` with a folder of the official files") from exc
    if len(data) > MAX_SCHEMA_BYTES:
        raise SchemaError(f"{url}: larger than {MAX_SCHEMA_BYTES} bytes; this is not the official schema")
    return data


def _read_local(folder: Path, pin: PinnedSchema) -> bytes:
    path = folder / pin.name
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCHEMA_BYTES + 1)
    except FileNotFoundError:
        raise SchemaError(f"{path}: missing; the folder must hold the official {pin.name} "
                          f"(from {pin.url})") from None
    except OSError as exc:
        raise SchemaError(f"{path}: cannot be read ({exc.strerror})") from exc
    return data


def _check_pin(pin: PinnedSchema, data: bytes, where: str) -> None:
    found = _sha256(data)
    if found != pin.sha256:
        raise SchemaError(f"{where}: SHA-256 {found} does not match the pinned {pin.sha256} for {pin.name}; "
                          "the file is not the official schema (altered or tampered with); nothing was installed")


def catalog_xml(entries: list[PinnedSchema]) -> bytes:
    """An OASIS XML catalog mapping each pinned URI to the local file beside it."""
    ns = "urn:oasis:names:tc:entity:xmlns:xml:catalog"
    root = etree.Element(f"{{{ns}}}catalog", nsmap={None: ns})  # type: ignore[dict-item]  # default namespace
    root.append(etree.Comment(" written by preserve schemas install: official schemas, SHA-256 pinned "))
    for pin in entries:
        for uri in pin.uris:
            etree.SubElement(root, f"{{{ns}}}uri", name=uri, uri=pin.name)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


def _refuse_foreign(dest: Path, entries: list[PinnedSchema]) -> None:
    """Refuse a destination that holds anything but a previous install: replacing it would delete that."""
    if not dest.exists() and not dest.is_symlink():
        return
    if dest.is_symlink() or not dest.is_dir():
        raise DestinationExists(f"{dest}: exists and is not a folder; choose a new or empty folder for the schemas "
                                "(nothing was written or deleted)", path=str(dest))
    ours = {pin.name for pin in entries} | {CATALOG}
    try:
        foreign = sorted(p.name for p in dest.iterdir() if p.name not in ours or p.is_symlink() or not p.is_file())
    except OSError as exc:
        raise SchemaError(f"{dest}: cannot be read ({exc.strerror or exc})") from exc
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DestinationExists(f"{dest}: holds files that are not the pinned schemas ({shown}); installing would "
                                "replace the folder and delete them. Choose a new or empty folder, or one holding "
                                "only a previous schemas install (nothing was written or deleted)", path=str(dest))


def _put_back(previous: Path, dest: Path) -> None:
    """After a failed or interrupted install, move the previous install back if the new one is not
    in its place, so that an install never ends with no schemas at all."""
    try:
        if os.path.lexists(previous) and not os.path.lexists(dest):
            os.rename(previous, dest)
    except OSError:
        return  # the previous install stays in its hidden folder beside dest rather than be deleted
    shutil.rmtree(previous.parent, ignore_errors=True)


def install_schemas(dest: Path | None = None, *, source: Path | None = None, base_url: str | None = None,
                    timeout: float = 60.0) -> Path:
    """Install every pinned schema into ``dest`` (default :func:`default_dir`); return the folder.

    ``source`` copies from a local folder instead of downloading. ``base_url`` replaces the
    official addresses with ``<base_url>/<name>`` (for tests against a local server). Every file
    is checked against its pin before anything is written; the folder is replaced atomically, and
    only when it holds nothing but a previous install (else :class:`DestinationExists`).
    """
    dest = Path(dest) if dest is not None else default_dir()
    entries = pins()
    _refuse_foreign(dest, entries)
    blobs: dict[str, bytes] = {}
    for pin in entries:
        if source is not None:
            data, where = _read_local(source, pin), str(source / pin.name)
        else:
            url = f"{base_url.rstrip('/')}/{pin.name}" if base_url else pin.url
            data, where = _fetch(url, timeout), url
        _check_pin(pin, data, where)
        blobs[pin.name] = data
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".schemas-", dir=dest.parent))
        old_parent: Path | None = None
        try:
            for name, data in blobs.items():
                (staging / name).write_bytes(data)
            (staging / CATALOG).write_bytes(catalog_xml(entries))
            _refuse_foreign(dest, entries)
            if dest.exists():
                # A fresh hidden folder of our own holds the previous install until the new one is in place.
                old_parent = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
                os.rename(dest, old_parent / dest.name)
            os.rename(staging, dest)
            if old_parent is not None:
                shutil.rmtree(old_parent, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if old_parent is not None:
                _put_back(old_parent / dest.name, dest)
            raise
    except OSError as exc:
        raise SchemaError(f"{dest}: cannot write the schemas ({exc.strerror or exc})") from exc
    return dest


class _PinnedResolver(etree.Resolver):
    """Maps every pinned schemaLocation to the verified local copy; refuses anything else."""

    def __init__(self, folder: Path, by_uri: dict[str, str]) -> None:
        super().__init__()
        self.folder = folder
        self.by_uri = by_uri

    # lxml-stubs omit the context argument that lxml passes and resolve_filename needs.
    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> Any:  # type: ignore[override]
        name = self.by_uri.get(system_url or "")
        if name is None and system_url and Path(system_url).name in self.by_uri.values():
            name = Path(system_url).name
        if name is None:
            raise SchemaError(f"{system_url}: a schema imports a file that is not pinned; refusing to fetch it")
        return self.resolve_filename(str(self.folder / name), context)  # type: ignore[attr-defined]


@dataclass
class Validators:
    """Compiled schemas: ``mets`` (METS with PREMIS and MODS for wrapped content) and ``premis``."""

    folder: Path
    mets: etree.XMLSchema
    premis: etree.XMLSchema


def _driver(by_pin: dict[str, PinnedSchema]) -> bytes:
    """A schema importing METS, PREMIS and MODS together, so mdWrap content is validated strictly."""
    xs = "http://www.w3.org/2001/XMLSchema"
    imports = (("http://www.w3.org/XML/1998/namespace", "xml-w3-2001.xsd"),
               ("http://www.w3.org/1999/xlink", "xlink.xsd"),
               ("http://www.loc.gov/METS/", "mets-1.12.1.xsd"),
               ("http://www.loc.gov/premis/v3", "premis-v3-0.xsd"),
               ("http://www.loc.gov/mods/v3", "mods-3-8.xsd"))
    lines = [f'<xs:schema xmlns:xs="{xs}" targetNamespace="urn:preserve:schema-driver" elementFormDefault="qualified">']
    for ns, name in imports:
        lines.append(f'<xs:import namespace="{ns}" schemaLocation="{by_pin[name].uris[0]}"/>')
    lines.append("</xs:schema>")
    return "\n".join(lines).encode()


def load_validators(folder: Path) -> Validators:
    """Verify every pinned file in ``folder`` and compile the METS and PREMIS validators."""
    entries = pins()
    for pin in entries:
        _check_pin(pin, _read_local(folder, pin), str(folder / pin.name))
    by_uri = {uri: pin.name for pin in entries for uri in pin.uris}
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_PinnedResolver(folder, by_uri))
    try:
        driver = etree.fromstring(_driver({p.name: p for p in entries}), parser, base_url=str(folder / "driver.xsd"))
        mets = etree.XMLSchema(etree.ElementTree(driver))
        premis = etree.XMLSchema(etree.parse(str(folder / "premis-v3-0.xsd"), parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise SchemaError(f"{folder}: the schemas do not compile ({exc})") from exc
    return Validators(folder, mets, premis)

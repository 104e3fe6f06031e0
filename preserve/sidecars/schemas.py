"""The official XML schemas: installing them (pinned SHA-256), finding them, compiling validators.

The schemas are not part of the project. ``preserve schemas install`` fetches the METS, PREMIS,
MODS, LoC audioMD, XLink and xml.xsd files from their Library of Congress and W3C addresses, or copies them from
a folder (``--from DIR``), checks each against the SHA-256 pinned in ``preserve/schemas_pins.json``
and refuses the whole install if any differs. They land in the user's data directory
(platformdirs) with an OASIS XML catalog for other tools (``xmllint``, ``XML_CATALOG_FILES``).

Validation does not depend on the catalog: lxml is given a resolver that maps every pinned
``schemaLocation`` to the local file, so nothing is fetched from the network at validation time,
and every file is checked against its pin again before it is compiled.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree
from platformdirs import user_data_dir

from preserve.errors import DestinationExists, PreserveError, SchemaError, StorageError
from preserve.fixity import fsync_path
from preserve.staging import Journal, journaled

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
    """The schema folder to validate with: ``$PRESERVE_SCHEMAS`` if set, else the installed one;
    None when neither is there.

    The folder found is verified (:func:`verify_schemas`): one that cannot be used (a file
    missing, unreadable, or not the official one) raises :class:`SchemaError` (exit 8) naming
    the file, as it says nothing about the bag being checked, which must not be called invalid.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return verify_schemas(Path(env))
    d = default_dir()
    try:
        installed = (d / CATALOG).is_file()
    except PermissionError:
        installed = True  # there, but it cannot be looked into: verify_schemas names the folder
    return verify_schemas(d) if installed else None


def verify_schemas(folder: Path) -> Path:
    """``folder``, once every pinned schema in it reads back with its pinned SHA-256."""
    for pin in pins():
        try:
            data = _read_local(folder, pin)
        except SchemaError as exc:
            raise SchemaError(f"{exc}; {_REPAIR}") from exc
        _check_pin(pin, data, str(folder / pin.name), _REPAIR)
    return folder


_REPAIR = (f"run `preserve schemas install` again, or set {ENV_VAR} to a folder of the official files "
           "(the bag was not judged)")


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
    except OSError as exc:  # unreadable, a folder in its place, a disk error
        closed = _unenterable(folder, path)
        if closed is not None:  # the folder is the problem, not this file
            raise SchemaError(f"{folder}: the schemas folder cannot be opened ({closed.strerror or closed}); make it "
                              "readable and searchable by the user running preserve") from exc
        raise SchemaError(f"{path}: cannot be read ({exc.strerror or exc}); the folder must hold the official "
                          f"{pin.name} as a readable file") from exc
    return data


def _unenterable(folder: Path, path: Path) -> OSError | None:
    """Why ``path`` cannot even be looked up in ``folder`` (no search permission on the folder), or
    None when it can and the file itself is what cannot be read."""
    try:
        os.stat(path)  # needs search permission on the folder, not read permission on the file
    except PermissionError as exc:
        return exc
    except OSError:
        pass
    return None


def _check_pin(pin: PinnedSchema, data: bytes, where: str, then: str = "nothing was installed") -> None:
    found = _sha256(data)
    if found != pin.sha256:
        raise SchemaError(f"{where}: SHA-256 {found} does not match the pinned {pin.sha256} for {pin.name}; "
                          f"the file is not the official schema (altered or tampered with); {then}")


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


def _exchange(a: Path, b: Path) -> None:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``).

    Raises :class:`OSError` where the system or the file system cannot (``EINVAL``, ``ENOSYS``).
    """
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        raise OSError(errno.ENOSYS, "renameat2 is not available") from None
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a), None, str(b))


def _replace(staging: Path, dest: Path, journal: Journal) -> None:
    """Put the staged install at ``dest``, where a previous install may be: one atomic step.

    The previous install and the new one change places, so ``dest`` always holds one complete
    set; the previous install, now at the journaled staging path, is removed with it (by this run,
    or by the next one if this run is killed first). Where the file system cannot exchange
    (network file systems, kernels before 3.15), the previous install is first moved aside: a
    run killed between the two renames then leaves it in its hidden folder beside ``dest``, and
    any error puts it back.
    """
    if not os.path.lexists(dest):
        os.rename(staging, dest)
        return
    try:
        _exchange(staging, dest)
        return
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    aside = dest.parent / f".{dest.name}.preserve-previous-{secrets.token_hex(4)}"
    os.rename(dest, aside)
    try:
        os.rename(staging, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(aside, dest)
        raise
    journal.record(aside)  # after the new install is in place: removed with the staging


def _write_file(path: Path, data: bytes) -> None:
    # 0o666 less the umask, as any tool's files: a shared install is read by service users
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _storage_error(exc: OSError, dest: Path) -> PreserveError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(path=str(dest), reason="no space left on the file system to install the schemas; free "
                            "space and run again (a previous install is unchanged)")
    if exc.errno == errno.EROFS:
        return StorageError(path=str(dest), reason="the file system is read-only (a previous install is unchanged)")
    return StorageError(path=str(dest), reason=f"cannot write the schemas ({exc.strerror or exc}); "
                        "a previous install is unchanged")


def install_schemas(dest: Path | None = None, *, source: Path | None = None, base_url: str | None = None,
                    timeout: float = 60.0) -> Path:
    """Install every pinned schema into ``dest`` (default :func:`default_dir`); return the folder.

    ``source`` copies from a local folder instead of downloading. ``base_url`` replaces the
    official addresses with ``<base_url>/<name>`` (for tests against a local server). Every file
    is checked against its pin before anything is written, and only a folder holding nothing but
    a previous install is replaced (else :class:`DestinationExists`). The new install is staged
    beside ``dest`` under its lock and journal (:mod:`preserve.staging`), made durable, and
    exchanged with the previous one in one step: ``dest`` holds the previous complete set or the
    new one at every moment, whenever the run is stopped. A full or read-only disk raises
    :class:`StorageError` (exit 5).
    """
    dest = Path(os.path.abspath(dest if dest is not None else default_dir()))
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
    blobs[CATALOG] = catalog_xml(entries)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with journaled(dest, busy=f"{dest}: another preserve run is installing schemas here now") as journal:
            _refuse_foreign(dest, entries)  # again, now that no other run can change it
            staging = journal.record(dest.parent / f".{dest.name}.preserve-staging-{secrets.token_hex(4)}")
            staging.mkdir(0o777)  # less the umask: the folder is renamed into place as it is
            for name, data in blobs.items():
                _write_file(staging / name, data)
            fsync_path(staging)
            _replace(staging, dest, journal)
            fsync_path(dest.parent)
    except OSError as exc:
        raise _storage_error(exc, dest) from exc
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
    """A schema importing METS, PREMIS, MODS and audioMD together, so mdWrap content is validated strictly."""
    xs = "http://www.w3.org/2001/XMLSchema"
    imports = (("http://www.w3.org/XML/1998/namespace", "xml-w3-2001.xsd"),
               ("http://www.w3.org/1999/xlink", "xlink.xsd"),
               ("http://www.loc.gov/METS/", "mets-1.12.1.xsd"),
               ("http://www.loc.gov/premis/v3", "premis-v3-0.xsd"),
               ("http://www.loc.gov/mods/v3", "mods-3-8.xsd"),
               ("http://www.loc.gov/audioMD/", "audioMD-2-0.xsd"))
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

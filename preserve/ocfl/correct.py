"""``store update --sheet/--config``: a metadata-only correction, written without reading the audio.

The new version keeps every payload file of the head version (its inventory points at the
content already stored). Its sidecars are written again by the one sidecar writer
(:func:`preserve.sidecars.write_sidecars`) from a collection rebuilt out of two halves:

- what intake learned by reading the audio (format, technical metadata, embedded-checksum
  checks, producer checksums), read back from the head version's ``metadata/premis.xml``
  (:mod:`preserve.ocfl.stored`), with sizes and digests from the inventory and the manifests;
- the descriptive and rights columns of the new sheet laid over the stored description (the
  delivered sheet or DDEX message, then each earlier correction: :mod:`preserve.ocfl.described`),
  cell by cell, so a fact the sheet does not restate is kept (a DDEX message's contributors,
  P-line, references...); with ``collection.toml`` (the one given, else the one delivered in
  ``data/submission/``), read and gated by intake's own code, so a row that would be refused at
  intake refuses the correction, naming the row.

The sheet and configuration given are kept in the new version as tag files
(``metadata/correction-vN-<name>``), so the version holds what it was made from. bag-info takes
the collection's fields from the configuration; the tag manifests are rewritten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from preserve.bag.tagfiles import parse_bag_info
from preserve.bag.writer import StagedBag, Verification
from preserve.errors import ProblemsFound, UsageError
from preserve.intake.checksums import is_checksum_file
from preserve.intake.collection import CONFIG_NAME, CollectionConfig, load_config
from preserve.intake.inherited import BATCH_FOLDER
from preserve.intake.rights import build_rights, embargo_warning, gate, rights_cells
from preserve.intake.sheet import RIGHTS, SHEET_NAMES, SheetRow, read_sheet
from preserve.intake.tracks import lossy_warnings, track_from_row
from preserve.model import Collection, PackagingContext, Rights, SubmissionFile, Track
from preserve.ocfl.described import read_description
from preserve.ocfl.history import append_events, events_in, rewrite_tag_manifests, store_event
from preserve.ocfl.inventory import state_of
from preserve.ocfl.layout import open_root
from preserve.ocfl.read import object_folder
from preserve.ocfl.stored import StoredFile, read_stored
from preserve.ocfl.txn import writing
from preserve.ocfl.update import (
    UpdateResult,
    VersionBuild,
    copy_tag_files,
    events_in_version,
    finish_version,
    require_reason,
    start_version,
)
from preserve.sidecars import METS_FILE, PREMIS_FILE, write_sidecars
from preserve.sidecars.mets import href
from preserve.xmlsafe import parse_untrusted_file

OBJECTS, SUBMISSION = "data/objects/", "data/submission/"
_P, _M = "{http://www.loc.gov/premis/v3}", "{http://www.loc.gov/METS/}"
XLINK = "http://www.w3.org/1999/xlink"
_CORRECTION = re.compile(r"metadata/correction-v(\d+)-.+")
_FOLDER = re.compile(r"\(folder '([^']+)'\)")


def correct(root_path: str | os.PathLike[str], object_id: str, *, sheet: str | os.PathLike[str] | None = None,
            config: str | os.PathLike[str] | None = None, reason: str | None, operator: str | None,
            address: str | None = None, on_warning: Callable[[str], None] | None = None) -> UpdateResult:
    """Make the next version of ``object_id`` with sidecars written from ``sheet`` and/or ``config``
    and the stored technical metadata; no payload file is read or copied (see the module docstring)."""
    reason, operator = require_reason(reason, operator)
    if sheet is None and config is None:
        raise UsageError("a metadata correction needs --sheet FILE and/or --config collection.toml")
    for given in (sheet, config):
        if given is not None and not Path(given).is_file():
            raise UsageError(f"{given}: no such file; give the corrected sheet or collection.toml")
    root = open_root(root_path)
    object_folder(root, object_id)
    with writing(root, object_id) as txn:
        build = start_version(txn, object_id)
        old = state_of(build.inventory)
        build.data = {p: d for p, d in old.items() if p.startswith("data/")}
        # the head's sidecars are read where they are stored and written anew: never copied into the work bag
        head_mets, head_premis = _stored_path(build, METS_FILE), _stored_path(build, PREMIS_FILE)
        copy_tag_files(build, {p: d for p, d in old.items() if p not in (METS_FILE, PREMIS_FILE)})
        if head_premis is None:
            raise UsageError(f"{object_id}: the head version has no {PREMIS_FILE} to take the technical metadata from "
                             "(a deaccessioned object, or a bag made without sidecars); use --from to make a version")
        earlier = events_in_version(txn, build.inventory)
        stored = read_stored(head_premis)
        sizes = {p: _size(build, d) for p, d in build.data.items()}
        cfg = _config(build, config)
        collection, warnings = _collection(build, cfg, Path(sheet) if sheet is not None else None, stored, sizes,
                                           head_mets, head_premis)
        for w in warnings:
            if on_warning is not None:
                on_warning(w)
        if config is not None:
            _rewrite_bag_info(build.work, cfg)
        made = _made(head_mets, head_premis, object_id)
        if collection.title is None:
            collection.title = made.title
        collection.source_identifiers = made.identifiers
        context = PackagingContext(started=made.started, ended=made.created, operator=made.operator,
                                   organization=collection.organization, software="preserve",
                                   software_version=_version())
        staged = _staged(build, stored, sizes, made)
        write_sidecars(staged, collection, context)
        kept = []
        for given in (sheet, config):
            if given is not None:
                rel = f"metadata/correction-{build.name}-{Path(given).name}"
                shutil.copyfile(given, build.work / rel)
                kept.append(rel)
        why = f"reason: {reason}; operator: {operator}"
        event = store_event("metadata modification",
                            f"program=preserve store update; descriptive and rights metadata corrected from "
                            f"{' and '.join(Path(g).name for g in (sheet, config) if g is not None)} ({why})",
                            ["no payload file changed; sidecars written again from the stored technical metadata",
                             *(f"the correction is kept as {rel}" for rel in kept)])
        append_events(build.work, _not_regenerated(earlier, build.work), [event])
        rewrite_tag_manifests(build.work)
        finish_version(build, f"{reason} (metadata correction by {operator})", operator, address)
    return build.result


def _stored_path(build: VersionBuild, rel: str) -> Path | None:
    """Where the head version's file ``rel`` is stored in the object, or None."""
    digest = state_of(build.inventory).get(rel)
    return build.txn.object_path / str(build.inventory["manifest"][digest][0]) if digest is not None else None


def _size(build: VersionBuild, digest: str) -> int:
    # the size from the file system's record of the stored copy: no content byte is read
    return (build.txn.object_path / str(build.inventory["manifest"][digest][0])).stat().st_size


def _config(build: VersionBuild, config: str | os.PathLike[str] | None) -> CollectionConfig:
    """collection.toml: the one given, else the latest correction's, else the one the object holds in
    data/submission/, else the batch's it was packaged with (data/submission/batch/), else none."""
    folder = build.txn.staging("config")
    batch = None
    if config is not None:
        shutil.copyfile(config, folder / CONFIG_NAME)
    else:
        held = _latest_correction(build, (".toml",)) or _stored_path(build, SUBMISSION + CONFIG_NAME)
        if held is None:
            batch = _stored_path(build, SUBMISSION + BATCH_FOLDER + CONFIG_NAME)
            held = batch
        if held is None:
            return CollectionConfig()
        shutil.copyfile(held, folder / CONFIG_NAME)
    cfg = load_config(folder)
    if cfg.problems:
        raise ProblemsFound(f"{config or SUBMISSION + CONFIG_NAME}: " + "; ".join(cfg.problems)
                            + "; no version was made")
    if batch is not None:
        # as at packaging: the batch's identifier groups its releases, each release keeps the name and
        # title its message gave it, and the batch's agreement is a path in the batch folder
        # (packaged under data/submission/batch/)
        cfg.group_identifier = cfg.group_identifier or cfg.identifier
        cfg.identifier = cfg.title = None
        if cfg.defaults.get("agreement", "").strip():
            cfg.defaults["agreement"] = BATCH_FOLDER + cfg.defaults["agreement"].strip().replace("\\", "/").removeprefix("./")
    return cfg


def _collection(build: VersionBuild, cfg: CollectionConfig, sheet_path: Path | None, stored: dict[str, StoredFile],
                sizes: dict[str, int], head_mets: Path | None, head_premis: Path) -> tuple[Collection, list[str]]:
    """The collection the new sidecars describe: stored facts, the sheet's columns, the rights gate."""
    info = dict((k.lower(), v) for k, v in _bag_info(build.work))
    coll = Collection(root=_folder(head_premis) or build.result.object_id,
                      identifier=cfg.identifier or info.get("external-identifier"), title=cfg.title,
                      organization=cfg.organization or info.get("source-organization"),
                      description=cfg.description or info.get("external-description"),
                      group_identifier=cfg.group_identifier or info.get("bag-group-identifier"))
    held = {p.removeprefix(SUBMISSION) for p in build.data if p.startswith(SUBMISSION)}
    by_nfc = {unicodedata.normalize("NFC", p): p for p in build.data}
    roles: dict[str, str] = {}

    def on_disk(name: str) -> str:
        name = name.replace("\\", "/").removeprefix("./")
        return by_nfc.get(unicodedata.normalize("NFC", name), name)

    def agreement_ok(path: str) -> str | None:
        rel = on_disk(SUBMISSION + path).removeprefix(SUBMISSION)
        if rel not in held:
            return (f"is not among the documents the object holds under {SUBMISSION} (a correction cannot add one: "
                    "deliver it with `store update --from`)")
        roles[rel] = "rights-document"
        return None

    problems: list[str] = []
    warnings: list[str] = []
    today = dt.datetime.now(dt.UTC).date()
    if any(cfg.defaults.get(c, "").strip() for c in RIGHTS):
        coll.default_rights = build_rights({c: cfg.defaults.get(c, "") for c in RIGHTS})
        if coll.default_rights.agreement:
            why = agreement_ok(coll.default_rights.agreement)
            if why:
                problems.append(f"{CONFIG_NAME} [defaults]: agreement {coll.default_rights.agreement!r} {why}")
    audio = sorted(p for p in build.data if p.startswith(OBJECTS))
    described = read_description(state_of(build.inventory), lambda rel: _stored_path(build, rel) or Path(rel),
                                 cfg.sheet, on_disk)
    if sheet_path is not None:
        sheet = read_sheet(sheet_path, sheet_path.name)
    elif described.layers:
        sheet = described.layers.pop()  # --config alone: the latest correction's sheet, else the delivered one
    else:
        raise UsageError(f"{build.result.object_id}: the object holds no sheet under {SUBMISSION}; give one with --sheet")
    below = described.cells(on_disk)
    message = (described.message or "").removeprefix(SUBMISSION)
    warnings.extend(sheet.warnings)
    problems.extend(f"{sheet.name}{f' row {row}' if row else ''}: {msg}" if not msg.startswith(sheet.name) else msg
                    for row, msg in sheet.problems)
    tracks: dict[str, Track] = {}
    mimes = _mimes(head_mets)
    for row in sheet.rows:
        if not row.get("file"):
            continue
        bag_path = on_disk(OBJECTS + row.get("file").replace("\\", "/").removeprefix("./"))
        rel = bag_path.removeprefix(OBJECTS)
        where = f"{sheet.name} row {row.number} ({rel})"
        if bag_path not in audio:
            problems.append(f"{where}: the object holds no such audio file (a correction changes metadata only; "
                            "add or replace audio with `store update --from`)")
            continue
        if bag_path in tracks:
            problems.append(f"{where}: is already described in row {tracks[bag_path].row}; keep one row per file")
            continue
        # the sheet wins where a cell gives a value; elsewhere the stored description stands
        row = SheetRow(row.number, {**below.get(bag_path, {}), **{k: v for k, v in row.cells.items() if v.strip()}})
        cells, origin = rights_cells(row.cells, cfg.defaults)
        rights = build_rights(cells)
        if rights.agreement:
            rights = dataclasses.replace(rights, agreement_source=on_disk(SUBMISSION + rights.agreement)
                                         .removeprefix(SUBMISSION))
        problems.extend(gate(rights, where, agreement_ok))
        if origin == "row":
            ended = embargo_warning(rights, where, today)
            if ended:
                warnings.append(ended)
        track, msgs, row_problems = track_from_row(row, rel, rights, cfg.defaults, where)
        described.apply(track, bag_path, row.cells)
        problems.extend(msg for _code, msg in row_problems)
        warnings.extend(msgs)
        facts = stored.get(bag_path) or StoredFile(bag_path)
        track.bag_path, track.size = bag_path, sizes[bag_path]
        track.source_path = facts.original_name or rel
        track.format = dataclasses.replace(facts.format, mime=mimes.get(href(bag_path)) or facts.format.mime)
        track.technical, track.essence = facts.technical, facts.essence
        track.producer_checksums = list(facts.producer_checksums)
        if bag_path not in described.facts:  # a DDEX file's references are the message's, set above
            track.source_identifiers = facts.source_identifiers or track.source_identifiers
        track.rights = _bagged(track.rights) or Rights()
        tracks[bag_path] = track
    problems.extend(f"{sheet.name}: no row for {p.removeprefix(OBJECTS)}, which the object holds; every audio file "
                    "needs a row (a correction cannot remove one: use `store update --remove`)"
                    for p in audio if p not in tracks)
    if problems:
        raise ProblemsFound(f"{build.result.object_id}: the correction is refused, no version was made "
                            f"({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    coll.default_rights = _bagged(coll.default_rights)
    coll.tracks = [tracks[p] for p in audio]
    for rel in sorted(held):
        role = roles.get(rel) or ("collection-config" if rel == CONFIG_NAME else
                                  "sheet" if rel in (*SHEET_NAMES, cfg.sheet, message) else
                                  "checksum-file" if is_checksum_file(rel) else "other")
        facts = stored.get(SUBMISSION + rel) or StoredFile(SUBMISSION + rel)
        coll.submission_files.append(SubmissionFile(facts.original_name or rel, SUBMISSION + rel, role,  # type: ignore[arg-type]
                                                    sizes[SUBMISSION + rel], list(facts.producer_checksums)))
    warnings.extend(lossy_warnings(coll.tracks))
    coll.warnings = list(warnings)
    return coll, warnings


def _bagged(r: Rights | None) -> Rights | None:
    # sidecars cite the rights document where it lives in the bag (as packaging does)
    if r is None or not r.agreement_source:
        return r
    return dataclasses.replace(r, agreement=SUBMISSION + r.agreement_source)


def _latest_correction(build: VersionBuild, suffixes: tuple[str, ...]) -> Path | None:
    """The newest ``metadata/correction-vN-NAME`` of the head version with one of ``suffixes``: what
    an earlier correction was made from, so a later one starts from it, not from the delivery."""
    found = []
    for rel in state_of(build.inventory):
        m = _CORRECTION.fullmatch(rel)
        if m and rel.lower().endswith(suffixes):
            found.append((int(m.group(1)), rel))
    return _stored_path(build, max(found)[1]) if found else None


def _bag_info(work: Path) -> list[tuple[str, str]]:
    path = work / "bag-info.txt"
    return parse_bag_info(path.read_text(encoding="utf-8"))[0] if path.is_file() else []


def _rewrite_bag_info(work: Path, cfg: CollectionConfig) -> None:
    """The collection's bag-info fields from the configuration, each in its place; every other field is kept."""
    given = [(label, value) for label, value in (("Source-Organization", cfg.organization),
                                                 ("External-Identifier", cfg.identifier),
                                                 ("External-Description", cfg.description or cfg.title),
                                                 ("Bag-Group-Identifier", cfg.group_identifier)) if value]
    given += cfg.bag_info
    if not given:
        return
    values: dict[str, list[str]] = {}
    for k, v in given:
        values.setdefault(k.lower(), []).append(" ".join(v.split()))
    info: list[tuple[str, str]] = []
    for k, v in _bag_info(work):
        if k.lower() not in values:
            info.append((k, v))
        elif values[k.lower()]:  # a label given replaces the stored one in its place
            info.extend((k, new) for new in values[k.lower()])
            values[k.lower()] = []
    info += [(k, " ".join(v.split())) for k, v in given if values.get(k.lower())]  # labels new to the bag
    (work / "bag-info.txt").write_text("".join(f"{k}: {v}\n" for k, v in info), encoding="utf-8")


def _manifests(work: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for m in sorted(work.glob("manifest-*.txt")):
        alg = m.name[len("manifest-"):-len(".txt")]
        for line in m.read_text(encoding="utf-8").splitlines():
            if line.strip():
                digest, path = line.split(None, 1)
                out.setdefault(path.lstrip("*").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%"),
                               {})[alg] = digest
    return out


def _staged(build: VersionBuild, stored: dict[str, StoredFile], sizes: dict[str, int], made: _Made) -> StagedBag:
    """The bag as the sidecar writer sees it: every payload file's size and digests, from the
    inventory and the manifests (the writer would read a file only for a sha256 it lacks)."""
    digests = _manifests(build.work)
    algs = tuple(sorted(build.work.glob("manifest-*.txt")))
    algorithms = tuple(p.name[len("manifest-"):-len(".txt")] for p in algs)
    if "sha256" not in algorithms:
        raise UsageError(f"{build.result.object_id}: the stored bag has no sha256 manifest, which METS needs; "
                         "correct it with `store update --from` instead")
    records = build.txn.staging("records") / "payload.jsonl"
    with open(records, "w", encoding="utf-8") as f:
        for path in sorted(build.data):
            source = stored[path].original_name if path in stored else path
            f.write(json.dumps({"t": path, "s": source, "n": sizes[path], "d": digests.get(path, {}), "m": 0}) + "\n")
    return StagedBag(build.work, made.name, algorithms, len(build.data), sum(sizes.values()),
                     Verification(False), records, made.started, _bag_info(build.work))


@dataclass
class _Made:
    """How the stored package was made (its bag name, run dates and operator), read from its sidecars:
    the regenerated packaging facts keep them, and the correction is told by its own event."""

    name: str
    started: str
    created: str
    operator: str | None
    title: str | None
    #: the collection's identifiers from its delivery (a DDEX message id, its sender...), as stored
    identifiers: tuple[tuple[str, str], ...] = ()


#: the collection object's identifiers the sidecar writer makes itself; the others are the delivery's
_OWN_IDENTIFIERS = frozenset({"UUID", "local", "Bag-Group-Identifier", "bag name"})


def _made(mets: Path | None, premis_path: Path, object_id: str) -> _Made:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = _Made(object_id, now, now, None, None)
    if mets is not None:
        root = parse_untrusted_file(str(mets))
        label, objid = root.get("LABEL"), root.get("OBJID")
        made.title = label if label and label != objid else None
        hdr = root.find(f"{_M}metsHdr")
        if hdr is not None:
            made.created = made.started = hdr.get("CREATEDATE") or now
            people = [a.findtext(f"{_M}name") for a in hdr.iterfind(f"{_M}agent") if a.get("TYPE") == "INDIVIDUAL"]
            made.operator = people[0] if people else None
    premis = parse_untrusted_file(str(premis_path))
    for ident in premis.iter(f"{_P}objectIdentifier"):
        if ident.findtext(f"{_P}objectIdentifierType") == "bag name":
            made.name = ident.findtext(f"{_P}objectIdentifierValue") or made.name
            owner = ident.getparent()
            pairs = [(i.findtext(f"{_P}objectIdentifierType") or "", i.findtext(f"{_P}objectIdentifierValue") or "")
                     for i in (owner.iterfind(f"{_P}objectIdentifier") if owner is not None else [])]
            made.identifiers = tuple((t, v) for t, v in pairs if t and v and t not in _OWN_IDENTIFIERS)
            break
    for ev in premis.iterfind(f"{_P}event"):
        if ev.findtext(f"{_P}eventType") == "ingestion" and "collection read" in (
                ev.findtext(f"{_P}eventDetailInformation/{_P}eventDetail") or ""):
            made.started = ev.findtext(f"{_P}eventDateTime") or made.started
            break
    return made


def _folder(premis: Path) -> str | None:
    """The collection folder's name as the stored ingestion event recorded it."""
    m = _FOLDER.search(premis.read_text(encoding="utf-8"))
    return m.group(1) if m else None


def _not_regenerated(earlier: list[etree._Element], work: Path) -> list[etree._Element]:
    """Earlier events that the regenerated sidecars do not already state (same type, date and detail)."""
    def key(ev: etree._Element) -> tuple[str, str, str]:
        return (ev.findtext(f"{_P}eventType") or "", ev.findtext(f"{_P}eventDateTime") or "",
                ev.findtext(f"{_P}eventDetailInformation/{_P}eventDetail") or "")
    have = {key(ev) for ev in events_in(work / PREMIS_FILE)}
    return [ev for ev in earlier if key(ev) not in have]


def _mimes(mets: Path | None) -> dict[str, str]:
    """Each file's media type as the stored METS gives it (the identification tool's, kept as it was)."""
    if mets is None:
        return {}
    out = {}
    for f in parse_untrusted_file(str(mets)).iter(f"{_M}file"):
        loc = f.find(f"{_M}FLocat")
        link = loc.get(f"{{{XLINK}}}href") if loc is not None else None
        if link and f.get("MIMETYPE"):
            out[link] = f.get("MIMETYPE") or ""
    return out


def _version() -> str:
    from preserve import __version__

    return __version__

"""``preserve check``: everything intake can find out about a collection, without writing anything.

:func:`check_collection` reads the sheet and ``collection.toml``, accounts for every file, applies
the rights gate, verifies the producer's checksums, identifies and measures every audio file and
verifies the checksums the audio carries of itself. It returns a :class:`CheckReport` with every
problem at once (each naming its file and sheet row) and the :class:`~preserve.model.Collection`
that packaging and the sidecar writers use. It raises only for a collection folder that is not
there at all.

Nothing is skipped in silence: a folder that cannot be listed or a file that cannot be opened is
an ``unreadable`` problem naming the OS error, since what the check does not see the package
would silently lack.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.bag.paths import bagit_python_trouble, needs_percent_warning, visible
from preserve.bag.tagfiles import split_lines
from preserve.bag.writer import BAGIT_PYTHON_MISSING
from preserve.errors import InputError, SourceNotFound
from preserve.fixity import hash_file, ordered_map
from preserve.intake import checksums as ck
from preserve.intake.audio import AudioAnalysis, analyse_audio
from preserve.intake.collection import (
    CONFIG_NAME,
    FoundFile,
    find_sheet,
    outside_reason,
    walk,
)
from preserve.intake.ddex import (
    Delivery,
    apply_facts,
    duration_warning,
    open_delivery,
    technical_problems,
)
from preserve.intake.ddex.detect import candidates
from preserve.intake.identify import AUDIO_EXTENSIONS, FormatIdentifier, sniff_family
from preserve.intake.inherited import batch_parent, config_for
from preserve.intake.rights import build_rights, embargo_warning, gate, rights_cells
from preserve.intake.sheet import RIGHTS, SHEET_NAMES, Sheet, read_sheet
from preserve.intake.tracks import apply_analysis, lossy_warnings, track_from_row
from preserve.model import Collection, ProducerChecksum, SubmissionFile, Track

OBJECTS = "data/objects/"
SUBMISSION = "data/submission/"
#: problem codes an ``accept_damaged = yes`` row turns into a recorded known defect
DAMAGE_CODES = frozenset({"essence-mismatch", "truncated", "undecodable"})


@dataclass(frozen=True)
class Problem:
    """One thing that stops packaging. ``code`` is stable for machines; ``message`` is for people."""

    code: str
    message: str
    file: str | None = None
    row: int | None = None


@dataclass
class CheckReport:
    root: Path
    collection: Collection
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None
    uncleared: set[str] = field(default_factory=set)      # source paths failing the rights gate
    identification: str = ""
    bag_info: list[tuple[str, str]] = field(default_factory=list)   # collection.toml [bag-info]
    #: (size, mtime_ns) of every file as the check saw it, by collection-relative path
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.problems

    def rights_status(self, track: Track) -> str:
        return "not cleared" if track.source_path in self.uncleared else "cleared"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``preserve check --json``)."""
        files = []
        for t in self.collection.tracks:
            d = dataclasses.asdict(t)
            d["rights_status"] = self.rights_status(t)
            files.append(d)
        return {
            "collection": str(self.root),
            "ready": self.ready,
            "sheet": self.sheet,
            "identification": self.identification,
            "files": files,
            "submission_files": [dataclasses.asdict(s) for s in self.collection.submission_files],
            "problems": [dataclasses.asdict(p) for p in self.problems],
            "warnings": self.warnings,
            "notes": self.notes,
        }


Progress = Callable[[int, int], None]


def check_collection(root: str | os.PathLike[str], *, sheet_file: str | None = None,
                     inherit_from: str | os.PathLike[str] | None = None, workers: int | None = None,
                     progress: Progress | None = None,
                     on_total: Callable[[int, int], None] | None = None) -> CheckReport:
    """Check the collection folder ``root``; see the module docstring. Writes nothing.

    ``progress(bytes, files)`` is called as files are read; ``on_total(bytes, files)`` once, when
    the amount to read is known. ``sheet_file`` names the sheet (or DDEX message) to read, as
    collection.toml's ``sheet`` does; without either, a folder with no metadata.csv/json is
    looked at for one DDEX ERN message (:mod:`preserve.intake.ddex`). ``inherit_from`` is a batch
    folder whose collection.toml applies when ``root`` has none (:mod:`preserve.intake.inherited`).
    """
    root = Path(root)
    if not root.exists():
        raise SourceNotFound(path=str(root))
    if not root.is_dir():
        raise InputError(f"{root}: is not a folder; preserve check takes the collection folder")
    cfg, inherited = config_for(root, inherit_from if inherit_from is not None else batch_parent(root))
    if sheet_file is not None:
        cfg.sheet = sheet_file.replace("\\", "/").removeprefix("./")
    coll = Collection(root=str(root.resolve()), identifier=cfg.identifier, title=cfg.title,
                      organization=cfg.organization, description=cfg.description,
                      group_identifier=cfg.group_identifier)
    report = CheckReport(root, coll, bag_info=list(cfg.bag_info))
    if inherited is not None:
        report.notes.append(f"{root} has no {CONFIG_NAME}: the batch's {inherited.folder}/{CONFIG_NAME} applies")
    problems = report.problems
    problems.extend(Problem("config", p, CONFIG_NAME) for p in cfg.problems)
    if not coll.identifier:
        coll.identifier = root.resolve().name
        report.notes.append(f"{CONFIG_NAME} gives no [collection] identifier; the folder name {coll.identifier!r} is used")

    inv = walk(root, cfg.ignore)
    found: dict[str, FoundFile] = {f.rel: f for f in inv.files}
    report.stamps = {f.rel: (f.size, f.mtime_ns) for f in inv.files}
    excluded = {rel: "operating-system litter" for rel in inv.litter}
    excluded.update({rel: "matching an ignore pattern of collection.toml" for rel in inv.ignored})
    # A sheet typed on one system names files stored on another: "é" may be one code point in the
    # sheet and two on disk (macOS). Names are matched in NFC and the name on disk is kept.
    by_nfc = {unicodedata.normalize("NFC", rel): rel for rel in found}

    def on_disk(name: str) -> str:
        name = name.replace("\\", "/").removeprefix("./")
        return name if name in found else by_nfc.get(unicodedata.normalize("NFC", name), name)
    problems.extend(Problem("bad-name", p) for p in inv.problems)
    for folder, why in inv.unlisted_folders:
        shown = f"{folder}/" if folder else f"{root}/"
        problems.append(Problem("unreadable", f"{shown}: the folder cannot be listed ({why}); its files can be neither "
                                              "checked nor packaged. Give the account running preserve permission to "
                                              "read it, then check again", folder or None))

    def unlisted(rel: str) -> str | None:
        """Why ``rel`` cannot be known: the unlistable folder it lies in, or None."""
        hit = inv.unlisted_folder(rel)
        if hit is None:
            return None
        return f"the folder {hit[0] or root}/ cannot be listed ({hit[1]}), so this file cannot be checked"
    report.notes.extend(f"{rel}: operating-system litter, left out of the package" for rel in inv.litter)
    report.notes.extend(f"{rel}: matches an ignore pattern, left out of the package" for rel in inv.ignored)
    roles: dict[str, str] = {}
    if cfg.present and inherited is None:
        roles[CONFIG_NAME] = "collection-config"

    sheet_name = find_sheet(root, cfg)
    ddex = open_delivery(root, list(found), sheet_name) \
        if sheet_name is None or sheet_name.lower().endswith(".xml") else None
    delivery = ddex.delivery if ddex is not None else None
    if ddex is not None:
        problems.extend(Problem(code, msg, rel) for code, msg, rel in ddex.problems)
        roles.update(dict.fromkeys(ddex.messages, "sheet"))
        if delivery is not None:
            sheet_name = delivery.name
            if inherited is not None and cfg.identifier and not cfg.group_identifier:
                coll.group_identifier = cfg.identifier     # the batch's identifier groups its releases
            _ddex_collection(report, delivery, cfg.identifier is None or inherited is not None,
                             cfg.title is None or inherited is not None, inherited is not None)
    report.sheet = sheet_name
    others = [n for n in SHEET_NAMES if n != sheet_name and n in found] if not cfg.sheet and sheet_name else []
    for other in others:
        problems.append(Problem("sheet", f"{other}: a second sheet beside {sheet_name}; keep one sheet (or name the one "
                                         f"to read with 'sheet' in the [collection] table of {CONFIG_NAME})", other))
        roles[other] = "sheet"
    sheet: Sheet | None = None
    if delivery is not None:
        sheet = delivery.sheet
        report.warnings.extend(delivery.warnings)
        problems.extend(Problem(code, msg, rel) for code, msg, rel in delivery.problems)
    elif ddex is not None and ddex.messages:
        pass    # the message found is refused above, naming why
    elif sheet_name is None and (releases := _ddex_releases(root, found)):
        shown = ", ".join(releases[:3]) + (", ..." if len(releases) > 3 else "")
        problems.append(Problem("no-sheet", f"{root}: a DDEX batch (a release with its message in each of {shown}), "
                                            f"not one collection; check a release folder (preserve check "
                                            f"{root / releases[0]}) or package them all with preserve package "
                                            "--batch BATCH DEST_DIR"))
    elif sheet_name is None:
        problems.append(Problem("no-sheet", f"{root}: no metadata.csv or metadata.json; every audio file needs a row "
                                            "(start from the template: preserve/templates/metadata-template.csv)"))
    elif sheet_name not in found:
        blocked = unlisted(sheet_name)
        problems.append(Problem("unreadable", f"{sheet_name}: the sheet named in {CONFIG_NAME}: {blocked}", sheet_name)
                        if blocked else
                        Problem("no-sheet", f"{sheet_name}: the sheet named in {CONFIG_NAME} does not exist", sheet_name))
    else:
        roles[sheet_name] = "sheet"
        sheet = read_sheet(root / sheet_name, sheet_name)
        report.warnings.extend(sheet.warnings)
        problems.extend(Problem("sheet", msg, sheet_name, row) for row, msg in sheet.problems)

    is_bag = (root / "bagit.txt").is_file()
    bag_tags = _bag_tag_files(root, found) if is_bag else set()
    for rel in found:
        if rel in roles:
            continue
        if rel in bag_tags:
            roles[rel] = "bag-tag-file"
        elif ck.is_checksum_file(rel):
            roles[rel] = "checksum-file"

    def agreement_ok(path: str) -> str | None:
        rel = on_disk(path)
        if rel in found and found[rel].symlink:
            return "is a symbolic link; deliver the file itself"
        outside = outside_reason(root, rel, "rights documents must be delivered inside it")
        if outside:
            return outside
        if rel not in found:
            return unlisted(rel) or "does not exist in the collection"
        if found[rel].special:
            return "is not a regular file (device, socket or pipe)"
        roles.setdefault(rel, "rights-document")
        return None

    today = dt.datetime.now(dt.UTC).date()
    default_cells = {c: cfg.defaults.get(c, "") for c in RIGHTS}
    if any(v.strip() for v in default_cells.values()):
        coll.default_rights = build_rights(default_cells)
        if coll.default_rights.agreement:
            where = on_disk(coll.default_rights.agreement)
            coll.default_rights = dataclasses.replace(coll.default_rights, agreement=where, agreement_source=where)
            if inherited is not None:
                coll.default_rights = dataclasses.replace(coll.default_rights, agreement_source=inherited.bagged(where))
        ended = embargo_warning(coll.default_rights, f"{CONFIG_NAME} [defaults]", today)
        if ended:
            report.warnings.append(ended)
        if coll.default_rights.agreement:
            reason = (inherited.agreement_ok if inherited is not None else agreement_ok)(coll.default_rights.agreement)
            if reason:
                problems.append(Problem("rights", f"{CONFIG_NAME} [defaults]: agreement {coll.default_rights.agreement!r} {reason}", CONFIG_NAME))

    delivered = ck.Delivered()
    tracks: list[Track] = []
    accept: dict[str, bool] = {}
    first_row: dict[str, int] = {}
    sheet_problems = sheet.problems if sheet is not None else []
    for row in sheet.rows if sheet is not None else []:
        rel = on_disk(row.get("file"))
        if not rel:
            continue
        where = f"{sheet_name} {delivery.labels[row.number] if delivery else f'row {row.number}'} ({rel})"
        outside = outside_reason(root, rel)
        if outside:
            problems.append(Problem("unsafe-path", f"{where}: the path {outside}", rel, row.number))
            continue
        if rel not in found:
            why = "no such file in the collection"
            if rel in excluded:
                why = f"the file is left out as {excluded[rel]}; a listed file cannot be excluded"
            blocked = unlisted(rel)
            problems.append(Problem("unreadable", f"{where}: {blocked}", rel, row.number) if blocked else
                            Problem("missing-file", f"{where}: {why}", rel, row.number))
            continue
        if roles.get(rel) == "audio":
            # a second row for the same file; the sheet reader reports the plain cases
            if not any(r == row.number and "already described" in m for r, m in sheet_problems):
                problems.append(Problem("sheet", f"{where}: is already described in row {first_row[rel]}; keep one row per file",
                                        rel, row.number))
            continue
        if found[rel].symlink or found[rel].special:
            continue    # reported below with every other file that is not a regular file
        if roles.get(rel) not in (None, "rights-document"):
            problems.append(Problem("sheet", f"{where}: names the {roles[rel]} itself, not an audio file", rel, row.number))
            continue
        roles[rel] = "audio"
        first_row[rel] = row.number
        cells, origin = rights_cells(row.cells, cfg.defaults)
        rights = build_rights(cells)
        if rights.agreement:
            rights = dataclasses.replace(rights, agreement=on_disk(rights.agreement), agreement_source=on_disk(rights.agreement))
        if inherited is not None and origin == "defaults" and rights.agreement:
            rights = dataclasses.replace(rights, agreement_source=inherited.bagged(rights.agreement))
        reasons = gate(rights, where, inherited.agreement_ok if inherited is not None and origin == "defaults" else agreement_ok)
        if origin == "row":     # an ended embargo of the defaults is told once, above
            ended = embargo_warning(rights, where, today)
            if ended:
                report.warnings.append(ended)
        if reasons:
            report.uncleared.add(rel)
            problems.extend(Problem("rights", r, rel, row.number) for r in reasons)
        track, msgs, row_problems = track_from_row(row, rel, rights, cfg.defaults, where)
        problems.extend(Problem(code, msg, rel, row.number) for code, msg in row_problems)
        track.bag_path = OBJECTS + rel
        if delivery is not None:
            apply_facts(track, delivery.facts[row.number])
        track.size = found[rel].size
        report.warnings.extend(msgs)
        # Only the row itself can accept a defect, and only with "yes": a default or a typo never does.
        accept[rel] = row.get("accept_damaged").lower() == "yes"
        label = f"{sheet_name} row {row.number}"
        before = len(delivered.problems)
        ck.from_sheet(rel, row.cells, label, delivered)
        for msg in delivered.problems[before:]:
            problems.append(Problem("sheet", where + msg.removeprefix(label), rel, row.number))
        del delivered.problems[before:]
        tracks.append(track)

    if delivery is not None:
        _ddex_files(delivery, report, roles, found, on_disk, delivered)
    for rel, role in list(roles.items()):
        if role == "checksum-file":
            ck.read_checksum_file(root, rel, delivered)
    if is_bag:
        ck.read_bag_manifests(root, delivered)
    problems.extend(Problem("checksum-file", p) for p in delivered.problems)

    for f in inv.files:
        if f.unreadable and roles.get(f.rel) not in _READ_BY_INTAKE:
            problems.append(Problem("unreadable", f"{f.rel}: cannot be read ({f.unreadable}); it can be neither checked "
                                                  "nor packaged. Give the account running preserve permission to read "
                                                  "it, then check again", f.rel, first_row.get(f.rel)))
        if f.rel in roles:
            continue
        if f.symlink:
            problems.append(Problem("symlink", f"{f.rel}: is a symbolic link; deliver the file itself", f.rel))
        elif f.special:
            problems.append(Problem("unlisted-file", f"{f.rel}: is not a regular file (device, socket or pipe)", f.rel))
        elif delivery is not None and looks_like_audio(root, f.rel):
            problems.append(Problem("unlisted-audio", f"{f.rel}: audio file that the DDEX message {sheet_name} does not "
                                                      "reference; remove it, ask the label for a message that lists it, "
                                                      "or add an ignore pattern in collection.toml", f.rel))
        elif looks_like_audio(root, f.rel):
            problems.append(Problem("unlisted-audio", f"{f.rel}: audio file with no row in {sheet_name or 'the sheet'}; "
                                                      "add a row for it (or an ignore pattern in collection.toml)", f.rel))
        else:
            problems.append(Problem("unlisted-file", f"{f.rel}: not audio, not the sheet, not a checksum file and not a rights "
                                                     "document named by a row or the defaults; remove it, name it in "
                                                     "'agreement', or add an ignore pattern in collection.toml", f.rel))

    expected: dict[str, list[ck.Expected]] = {}
    for e in delivered.expected:
        target = on_disk(e.target)
        if target in excluded:
            # a producer's checksum listing made before the litter was left out still names it
            report.notes.append(f"{e.source}: names {target}, which is left out as {excluded[target]}; its checksum is not verified")
            continue
        if target not in found:
            blocked = unlisted(target)
            problems.append(Problem("unreadable", f"{e.source}: names {target}; {blocked}", target) if blocked else
                            Problem("checksum-missing-file", f"{e.source}: names {target}, which is not in the collection", target))
            continue
        expected.setdefault(target, []).append(e)

    identifier = FormatIdentifier()
    report.identification = (f"fido {identifier.tool_version} ({identifier.signature_version})"
                             if identifier.error is None else identifier.error)
    if identifier.error:
        report.warnings.append(identifier.error)

    def examine(rel: str) -> tuple[str, AudioAnalysis | None, dict[str, str]]:
        path = str(root / rel)
        algs = sorted({e.algorithm for e in expected.get(rel, [])})
        digests: dict[str, str] = {}
        if algs:
            try:
                digests = hash_file(path, algs)
            except OSError:
                digests = {}
        analysis = analyse_audio(path, rel, identifier) if roles.get(rel) == "audio" else None
        if progress is not None:
            progress(found[rel].size, 1)
        return rel, analysis, digests

    # a file that cannot be opened is already a problem; reading it again would only repeat it
    todo = [rel for rel in found if (roles.get(rel) == "audio" or rel in expected) and not found[rel].unreadable]
    if on_total is not None:
        on_total(sum(found[rel].size for rel in todo), len(todo))
    by_track = {t.source_path: t for t in tracks}
    verified: dict[str, list[ProducerChecksum]] = {}
    for rel, analysis, digests in ordered_map(examine, todo, workers=workers):
        results = []
        for e in expected.get(rel, []):
            got = digests.get(e.algorithm)
            if got is None:
                problems.append(Problem("unreadable", f"{rel}: cannot be read to verify {e.source}", rel))
                continue
            ok = got == e.value
            results.append(ProducerChecksum(e.algorithm, e.value, e.source, "pass" if ok else "fail", got))
            if not ok:
                problems.append(Problem("checksum-mismatch",
                                        f"{rel}: {e.algorithm} does not match the producer's checksum ({e.source}): "
                                        f"expected {e.value}, found {got}", rel, _row_of(by_track, rel)))
        verified[rel] = results
        if analysis is not None:
            track = by_track[rel]
            track.producer_checksums = results
            for msg, code, is_problem in apply_analysis(track, analysis, accept.get(rel, False)):
                if is_problem:
                    problems.append(Problem(code, msg, rel, track.row))
                else:
                    report.warnings.append(msg)
            if delivery is not None and track.row is not None:
                facts, where = delivery.facts[track.row], f"{sheet_name} {delivery.labels[track.row]} ({rel})"
                problems.extend(Problem("technical-mismatch", m, rel, track.row) for m in technical_problems(track, facts, where))
                longer = duration_warning(track, facts, where)
                if longer:
                    report.warnings.append(longer)
    report.warnings.extend(lossy_warnings(tracks))
    if delivery is not None and report.uncleared and coll.default_rights is None:
        problems.append(Problem("rights", f"{delivery.name}: a DDEX message says who owns the recordings (P-line, rights "
                                          "controller), not that the archive may keep them. Add the label's deposit "
                                          f"agreement to {CONFIG_NAME} [defaults]: rights_basis, rights_holder, "
                                          "copyright_status, agreement (the signed document, delivered in the folder) "
                                          "and permitted_acts (with 'replicate')", CONFIG_NAME))
    coll.tracks = tracks
    for rel, role in roles.items():
        if role != "audio":
            coll.submission_files.append(SubmissionFile(rel, SUBMISSION + rel, role,  # type: ignore[arg-type]
                                                        found[rel].size if rel in found else 0, verified.get(rel, [])))
    if inherited is not None:
        coll.submission_files.extend(inherited.submission_files())
    coll.submission_files.sort(key=lambda s: s.bag_path)
    for bag_path in sorted([t.bag_path for t in tracks] + [s.bag_path for s in coll.submission_files]):
        report.warnings.extend(name_warnings(bag_path))
    coll.warnings = list(report.warnings)
    return report


def _ddex_collection(report: CheckReport, delivery: Delivery, name_it: bool, title_it: bool, batch: bool) -> None:
    """The collection as the message names it, where collection.toml does not."""
    coll, msg, release = report.collection, delivery.message, delivery.release
    if release is not None and name_it and (release.icpn or release.reference):
        coll.identifier = release.icpn or release.reference
        report.notes[:] = [n for n in report.notes if "gives no [collection] identifier" not in n]
        named = f"the AIP is named by the release's {'ICPN' if release.icpn else 'ReleaseReference'} {coll.identifier!r}"
        report.notes.append(f"{named}; the batch's Bag-Group-Identifier is {coll.group_identifier!r}"
                            if batch and coll.group_identifier else
                            named if batch else f"{named} (an identifier in [collection] of {CONFIG_NAME} would name it)")
    if release is not None and title_it and release.title:
        coll.title = release.title
    coll.source_identifiers = tuple((kind, value) for kind, value in (
        ("DDEX MessageId", msg.message_id), ("DDEX MessageThreadId", msg.thread_id),
        ("DDEX MessageSender PartyId", msg.sender_party_id),
        ("DDEX ReleaseReference", release.reference if release else None),
        ("ICPN", release.icpn if release else None)) if value)


def _ddex_files(delivery: Delivery, report: CheckReport, roles: dict[str, str], found: dict[str, FoundFile],
                on_disk: Callable[[str], str], delivered: ck.Delivered) -> None:
    """The message's other resources (images, booklets) go to data/submission; its HashSums are producer checksums."""
    root = report.root
    for target, what in sorted(delivery.others.items()):
        rel = on_disk(target)
        where = f"{delivery.name} {what} ({rel})"
        outside = outside_reason(root, rel, "list only files inside the delivery folder")
        if outside:
            report.problems.append(Problem("unsafe-path", f"{where}: the path {outside}", rel))
        elif rel not in found:
            report.problems.append(Problem("missing-file", f"{where}: no such file in the delivery", rel))
        elif found[rel].symlink or found[rel].special:
            continue    # reported with every other file that is not a regular file
        elif roles.get(rel) in (None, "other"):
            roles[rel] = "other"
    for e in delivery.expected:
        rel = on_disk(e.target)
        # an absent file is already a problem of its row or resource: its checksum adds nothing
        if rel in found and outside_reason(root, rel) is None:
            delivered.expected.append(dataclasses.replace(e, target=rel))


def _ddex_releases(root: Path, found: dict[str, FoundFile]) -> list[str]:
    """The sub-folders of ``root`` that each hold a DDEX message at their top: a batch's releases."""
    tops: dict[str, list[str]] = {}
    for rel in found:
        folder, _, name = rel.partition("/")
        if name and "/" not in name:
            tops.setdefault(folder, []).append(name)
    return [folder for folder, names in sorted(tops.items()) if candidates(root / folder, names)]


#: roles whose readers name their own OS error (the sheet, collection.toml, checksum files)
_READ_BY_INTAKE = frozenset({"sheet", "collection-config", "checksum-file"})
_BAG_TAG_NAMES = frozenset({"bagit.txt", "bag-info.txt", "fetch.txt"})


def _bag_tag_files(root: Path, found: dict[str, FoundFile]) -> set[str]:
    """The tag files of a submission that is a bag: BagIt's own files and what its tag manifests list.

    Anything else outside ``data/`` is accounted for like any other file, so audio left beside
    the bag's payload does not pass the rights gate as a "tag file". A file a tag manifest
    lists that looks like audio is not taken as a tag file either.
    """
    tags = {rel for rel in found if "/" not in rel and not found[rel].symlink and not found[rel].special
            and (rel in _BAG_TAG_NAMES or rel.startswith(("manifest-", "tagmanifest-")))}
    for rel in sorted(tags):
        if not rel.startswith("tagmanifest-"):
            continue
        try:
            text = (root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in split_lines(text):
            parts = line.strip().split(maxsplit=1)
            if len(parts) != 2:
                continue
            listed = parts[1].replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%").removeprefix("./")
            if (listed in found and not listed.startswith("data/") and not found[listed].symlink
                    and not found[listed].special and not looks_like_audio(root, listed)):
                tags.add(listed)
    return tags


def name_warnings(bag_path: str) -> list[str]:
    """What ``preserve bag`` warns of a payload name: '%' (escaped as RFC 8493 says, which common
    readers do not undo) and names bagit-python cuts. The same words, so both commands agree."""
    out = []
    if needs_percent_warning(bag_path):
        out.append(f"{visible(bag_path)}: the name contains '%'; it is written as %25 as RFC 8493 requires, "
                   "but bagit-python 1.9 and DART do not decode %25 and will report it missing")
    trouble = bagit_python_trouble(bag_path)
    if trouble:
        out.append(f"{visible(bag_path)}: {trouble}; it is written as it is (RFC 8493 escapes only %, CR and LF) and "
                   f"preserve validates it, but {BAGIT_PYTHON_MISSING}")
    return out


def _row_of(by_track: dict[str, Track], rel: str) -> int | None:
    t = by_track.get(rel)
    return t.row if t else None


def looks_like_audio(root: Path, rel: str) -> bool:
    """An audio ending, or audio content under another name (what the check counts as audio)."""
    if os.path.splitext(rel)[1].lower() in AUDIO_EXTENSIONS:
        return True
    try:
        with open(root / rel, "rb") as f:
            return sniff_family(f.read(4096)) is not None
    except OSError:
        return False

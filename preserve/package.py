"""``preserve package``: check a collection, then seal it into a bag with its sidecars.

The pipeline is :func:`~preserve.intake.check_collection` (every problem at once; any problem
refuses with :class:`~preserve.errors.CollectionNotReady` and nothing is written at DEST), then
:func:`~preserve.bag.writer.create_bag` with

- the audio under ``data/objects/<original relative path>``;
- the sheet, ``collection.toml``, checksum files and rights documents (and, for a submission that
  is itself a bag, its tag files) under ``data/submission/<original relative path>``;
- bag-info fields from the collection (Source-Organization, External-Identifier,
  External-Description, Bag-Group-Identifier, ``[bag-info]`` of collection.toml, ``--info``);
- PREMIS/METS sidecars written by :func:`preserve.sidecars.write_sidecars` into the staged bag.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preserve.bag.writer import XXH3_FILE, BagResult, PayloadEntry, StagedBag, create_bag
from preserve.errors import CollectionNotReady, DestinationExists, SourceChanged, UsageError
from preserve.intake.check import SUBMISSION, CheckReport, check_collection
from preserve.intake.collection import CONFIG_NAME
from preserve.intake.inherited import batch_parent, config_for
from preserve.model import Collection, PackagingContext, Rights
from preserve.sidecars import write_sidecars
from preserve.staging import journaled, lock_path_for

Progress = Callable[[int, int], None]
#: ``on_phase(name, total_bytes, counted)``: a phase of packaging starts; ``counted`` says whether
#: ``progress`` will report its bytes (the check's, the copy's and verification's are).
PhaseCallback = Callable[[str, int, bool], None]
#: The phases of :func:`package_collection`, in order (verify only with ``verify``, archive only
#: when an archive is written).
PHASES = ("check", "copy+hash", "verify", "sidecars", "archive")
DEFAULT_PROFILE = "preserve-audio-aip"
#: Tag files (besides BagIt's own) every package has: the writer's xxh3-128 listing and the sidecars.
PACKAGE_TAG_FILES = (XXH3_FILE, "metadata/mets.xml", "metadata/premis.xml")


@dataclass
class PackageResult:
    report: CheckReport
    bag: BagResult
    profile: str | None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bagged_rights(r: Rights | None) -> Rights | None:
    # Sidecars cite the rights document where it lives in the bag, not where the producer had it.
    if r is None or not r.agreement_source:
        return r
    return dataclasses.replace(r, agreement=SUBMISSION + r.agreement_source.replace("\\", "/").removeprefix("./"))


def bag_info_for(report: CheckReport, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """bag-info.txt fields from the collection, then collection.toml ``[bag-info]``, then ``extra``."""
    coll = report.collection
    return _bag_info(coll.organization, coll.identifier, coll.description or coll.title, coll.group_identifier,
                     report.bag_info, extra)


def _bag_info(organization: str | None, identifier: str | None, description: str | None, group: str | None,
              bag_info: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    info: list[tuple[str, str]] = []
    for label, value in (("Source-Organization", organization), ("External-Identifier", identifier),
                         ("External-Description", description), ("Bag-Group-Identifier", group)):
        if value:
            info.append((label, " ".join(value.split())))
    info.extend(bag_info)
    labels = {k.lower() for k, _ in extra}
    return [kv for kv in info if kv[0].lower() not in labels] + list(extra)


def bag_info_from_config(root: str | os.PathLike[str], extra: Sequence[tuple[str, str]] = (),
                         inherit_from: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """The bag-info fields :func:`bag_info_for` will give, from ``collection.toml`` alone (no check).

    Lets packaging refuse a profile's missing required field before the long check, not after it.
    """
    root = Path(root)
    cfg, _ = config_for(root, inherit_from)
    return _bag_info(cfg.organization, cfg.identifier or root.resolve().name, cfg.description or cfg.title,
                     cfg.group_identifier, cfg.bag_info, extra)


#: bag-info labels the collection gives, and the collection.toml key that gives each
CONFIG_KEYS = {"source-organization": "organization", "external-identifier": "identifier",
               "external-description": "description", "bag-group-identifier": "group_identifier"}
_INFO_HINT = "pass them with --info LABEL=VALUE"


def where_to_give(message: str) -> str:
    """A missing-bag-info message that names where a collection gives each value.

    The profile planner, shared with ``preserve bag``, says "pass them with --info"; for a
    collection the usual place is collection.toml, and ``preserve check`` has no --info option.
    """
    head, sep, _rest = message.partition(_INFO_HINT)
    if not sep:
        return message
    listed = head.rsplit("missing: ", 1)[-1].rstrip("; ")
    labels = re.findall(r"(?:^|, )([A-Za-z0-9][\w.-]*)(?= \(one of:|, |$)", listed)
    keys = [f"{label} as '{CONFIG_KEYS[label.lower()]}' in its [collection] table" if label.lower() in CONFIG_KEYS
            else f"{label} as '{label} = \"...\"' in its [bag-info] table" for label in labels]
    return message.replace(_INFO_HINT, f"give them in collection.toml ({'; '.join(keys)}), or to "
                                       "`preserve package` with --info LABEL=VALUE")


def profile_problem(profile: str, report: CheckReport, *, algorithms: Sequence[str] | None = None,
                    info: Sequence[tuple[str, str]] = (), serialization: str | None = None) -> str | None:
    """Why packaging ``report``'s collection with ``profile`` would be refused (missing bag-info...), or None."""
    from preserve.profiles import load_profile

    try:
        _plan(load_profile(profile), algorithms, bag_info_for(report, info), serialization)
    except UsageError as exc:
        return where_to_give(str(exc))
    return None


def payload_for(root: Path, collection: Collection) -> list[PayloadEntry]:
    """The payload: audio under ``objects/``, delivered documents under ``submission/``."""
    entries = [PayloadEntry(root / t.source_path, t.bag_path.removeprefix("data/")) for t in collection.tracks]
    entries += [PayloadEntry(root / s.source_path, s.bag_path.removeprefix("data/")) for s in collection.submission_files]
    return sorted(entries, key=lambda e: e.target)


def package_collection(
    root: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    operator: str | None = None,
    algorithms: Sequence[str] | None = None,
    info: Sequence[tuple[str, str]] = (),
    profile: str | None = DEFAULT_PROFILE,
    serialization: str | None = None,
    verify: bool = True,
    workers: int | None = None,
    check_progress: Progress | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int, int], None] | None = None,
    on_checked: Callable[[CheckReport], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_removed: Callable[[Path], None] | None = None,
    on_phase: PhaseCallback | None = None,
    sheet_file: str | None = None,
    inherit_from: str | os.PathLike[str] | None = None,
) -> PackageResult:
    """Check ``root`` and, when it is ready, build the bag at ``dest`` (see the module docstring).

    ``profile`` is a BagIt profile reference (a path, an identifier URL or a shipped name; None
    for none): it sets BagIt-Profile-Identifier and may require algorithms, fields or a
    serialization. ``serialization`` ("tar", "tar.gz", "zip") writes an archive at ``dest``.
    ``check_progress``/``on_total`` follow the check (see :func:`check_collection`), ``progress``
    the copy and then verification's re-read (``on_phase`` says when one ends and the other starts); ``on_checked`` sees the report before copying starts; ``on_warning`` gets the
    profile's warnings; ``on_removed`` each path a killed earlier run on ``dest`` had left and its
    journal listed (removed before anything else, also when ``dest`` exists). ``on_phase`` is
    told as each phase of :data:`PHASES` starts, with the bytes it will read. ``sheet_file`` names
    the sheet or DDEX message to read, ``inherit_from`` a batch folder whose collection.toml
    applies when ``root`` has none (see :func:`check_collection`).

    With a profile, what packaging can never meet (tag files it does not write, or that
    Tag-Files-Allowed refuses) is refused before the check (:class:`UsageError`), and so is a
    bag-info value the profile requires that neither collection.toml nor ``info`` gives
    (:class:`CollectionNotReady`, as the check reports it); the payload
    rules are checked before the copy, and the staged bag, complete, before it lands at ``dest``
    (:class:`~preserve.errors.ProfileViolation`, nothing written).
    """
    root = Path(root)
    dest_path = Path(os.path.abspath(dest))
    if serialization:
        from preserve.serialize import archive_path

        dest_path = archive_path(dest_path, serialization)
    _refuse_existing(dest_path, on_removed)
    real_root = os.path.realpath(root)
    if os.path.realpath(dest_path).startswith(real_root + os.sep):
        raise UsageError(f"{dest_path}: the destination is inside the collection {root}; choose a folder outside it")
    loaded = None
    if profile is not None:
        from preserve.profiles import check_tag_files, load_profile

        loaded = load_profile(profile)    # a bad profile reference fails before the long check
        if on_warning is not None:
            for w in loaded.warnings:
                on_warning(f"profile {loaded.name}: {w}")
        check_tag_files(loaded, PACKAGE_TAG_FILES, "`preserve package`")
        # required bag-info (Source-Organization...) comes from collection.toml: refuse before the long check
        # (a missing folder or a broken collection.toml is left to the check, which names it)
        batch = inherit_from if inherit_from is not None else (batch_parent(root) if root.is_dir() else None)
        if root.is_dir() and not config_for(root, batch)[0].problems:
            given = bag_info_from_config(root, info, batch)
            try:
                _plan(loaded, algorithms, given, serialization, verify)
            except UsageError as exc:
                message = where_to_give(str(exc))
                try:
                    # what `preserve check` finds too (the profile against the bag-info values given) is a
                    # problem in the collection, exit 1 as there; what only -a or --serialize cause is usage
                    _plan(loaded, None, given, None)
                except UsageError:
                    raise CollectionNotReady(f"{root}: not packaged: {CONFIG_NAME}: {message}; nothing was written "
                                             f"at {dest_path}", path=str(root), count=1) from None
                raise UsageError(message) from None
    started = _now()

    def check_total(total: int, files: int) -> None:
        if on_phase is not None:
            on_phase("check", total, True)
        if on_total is not None:
            on_total(total, files)

    report = check_collection(root, sheet_file=sheet_file, inherit_from=inherit_from, workers=workers, progress=check_progress,
                              on_total=check_total)
    if not report.ready:
        raise CollectionNotReady(path=str(root), count=len(report.problems), report=report)
    if on_checked is not None:
        on_checked(report)
    collection = report.collection
    for t in collection.tracks:
        t.rights = _bagged_rights(t.rights) or Rights()
    collection.default_rights = _bagged_rights(collection.default_rights)
    plan = _plan(loaded, algorithms, bag_info_for(report, info), serialization, verify)
    # the organization the sidecars name is the one bag-info.txt names (--info may override the collection's)
    organization = next((v for k, v in reversed(plan.info) if k.lower() == "source-organization" and v.strip()),
                        collection.organization)
    context = PackagingContext(started=started, operator=operator, organization=organization,
                               software="preserve", software_version=_version())
    paths = [(t.bag_path, t.source_path) for t in collection.tracks]
    paths += [(s.bag_path, s.source_path) for s in collection.submission_files]
    stamps = {bag_path: report.stamps[src] for bag_path, src in paths if src in report.stamps}

    def extra_tags(staged: StagedBag) -> None:
        # A file that changed between the check and the copy is not the file that was checked.
        for rec in staged.iter_payload():
            size, mtime_ns = stamps.get(rec.target, (rec.size, rec.mtime_ns))
            if (size, mtime_ns) != (rec.size, rec.mtime_ns):
                raise SourceChanged(path=rec.source, detail=f"it changed after the check (size/mtime {size}/{mtime_ns} "
                                                            f"when checked, {rec.size}/{rec.mtime_ns} when copied); check it again")
        if on_phase is not None:
            on_phase("sidecars", 0, False)
        write_sidecars(staged, collection, context)

    if plan.serialization and plan.serialization != serialization:
        # the profile requires an archive: the destination gets the format's file name ending
        from preserve.serialize import archive_path

        dest_path = archive_path(dest_path, plan.serialization)
        _refuse_existing(dest_path, on_removed)
    payload = payload_for(root, collection)
    finalize = plan.finalize
    if loaded is not None:
        from preserve.profiles import conformance_violation, conforming_finalizer, payload_findings

        sizes = {t.bag_path: t.size for t in collection.tracks} | {s.bag_path: s.size for s in collection.submission_files}
        failures = payload_findings(loaded, ((f"data/{e.target}", sizes.get(f"data/{e.target}", 0), False) for e in payload))
        if failures:
            raise conformance_violation(dest_path, loaded, failures)
        finalize = conforming_finalizer(loaded, plan.serialization, finalize)
    copy_bytes = sum(t.size for t in collection.tracks) + sum(s.size for s in collection.submission_files)
    on_staged = None
    if on_phase is not None:
        on_phase("copy+hash", copy_bytes, True)
        if verify:
            def on_staged(staging: Path) -> None:
                on_phase("verify", copy_bytes, True)
        if finalize is not None:
            finalize = _announced(finalize, on_phase)
    result = create_bag(dest_path, payload, algorithms=plan.algorithms, info=plan.info,
                        verify=verify, workers=workers, progress=progress, extra_tags=extra_tags,
                        finalize=finalize, on_removed=on_removed, on_staged=on_staged, verify_progress=progress)
    return PackageResult(report, result, plan.profile)


def _announced(finalize: Callable[[Path, Path], None], on_phase: PhaseCallback) -> Callable[[Path, Path], None]:
    def announced(staging: Path, dest: Path) -> None:
        on_phase("archive", 0, False)
        finalize(staging, dest)
    return announced


def _refuse_existing(dest: Path, on_removed: Callable[[Path], None] | None) -> None:
    """DestinationExists when ``dest`` is there, after removing what a killed earlier run's journal
    lists (a run killed just after its archive landed leaves its staging beside it)."""
    if not os.path.lexists(dest):
        return
    if os.path.lexists(lock_path_for(dest)):
        with journaled(dest) as journal:
            if on_removed is not None:
                for path in journal.removed:
                    on_removed(path)
    raise DestinationExists(path=str(dest))


@dataclass
class _Plan:
    algorithms: tuple[str, ...]
    info: list[tuple[str, str]]
    finalize: Callable[[Path, Path], None] | None
    profile: str | None
    serialization: str | None


def _plan(profile: Any, algorithms: Sequence[str] | None, info: list[tuple[str, str]],
          serialization: str | None, verify: bool = True) -> _Plan:
    algs = tuple(algorithms) if algorithms else ("sha256", "sha512")
    finalize: Callable[[Path, Path], None] | None = None
    profile_id: str | None = None
    if profile is not None:
        from preserve.profiles import plan_creation

        creation = plan_creation(profile, algorithms or (), info, serialization=serialization)
        algs, info, serialization = tuple(creation.algorithms), list(creation.info), creation.serialization
        profile_id = f"{profile.name} ({profile.identifier})" if profile.name else profile.identifier
    if serialization:
        from preserve.serialize import finalizer

        finalize = finalizer(serialization, verify=verify)
    return _Plan(algs, info, finalize, profile_id, serialization)


def _version() -> str:
    from preserve import __version__

    return __version__

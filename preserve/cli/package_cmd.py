"""``preserve package COLLECTION DEST``: check, then seal the collection into a bag with sidecars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from preserve.batch import ReleaseOutcome, package_batch
from preserve.cli.check_cmd import render_report
from preserve.cli.common import (
    Command,
    PhaseClock,
    ProgressBar,
    emit_json,
    for_people,
    json_option,
    next_steps,
    parse_info,
    profile_option,
    progress_interval_option,
    quiet_option,
    verbose_option,
    warn,
    workers_option,
)
from preserve.errors import CollectionNotReady, ProfileViolation, UsageError
from preserve.fixity import ALGORITHMS
from preserve.intake import CheckReport
from preserve.package import DEFAULT_PROFILE, package_collection


@click.command(cls=Command)
@click.argument("collection", type=click.Path(path_type=Path))
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--operator", metavar="NAME", help="The person running the packaging, recorded as a PREMIS agent "
              "(none is recorded unless given: a login name is not a person).")
@profile_option("BagIt profile to declare and follow: a shipped name, a path or an identifier URL.",
                default=DEFAULT_PROFILE, show_default=True)
@click.option("--no-profile", is_flag=True, help="Declare no BagIt profile.")
@click.option("--serialize", type=click.Choice(["tar", "tar.gz", "zip"]),
              help="Write DEST as one archive file instead of a folder.")
@click.option("-a", "--algorithm", "algorithms", multiple=True,
              type=click.Choice([a for a in ALGORITHMS if a != "xxh3-128"]),
              help="Manifest algorithm (repeat for several). Default: sha256 and sha512, or the profile's.")
@click.option("-i", "--info", "info", multiple=True, metavar="KEY=VALUE", help="An extra bag-info.txt field (repeatable).")
@click.option("--no-verify", is_flag=True, help="Skip re-reading the written payload from storage.")
@click.option("--sheet", "sheet_file", metavar="FILE", help="The sheet or DDEX ERN message to read, relative to "
              "COLLECTION (default: metadata.csv or metadata.json, else the folder's one DDEX message).")
@click.option("--batch", is_flag=True, help="COLLECTION is a DDEX batch (one folder per release): one AIP per "
              "release in the folder DEST, named by its ICPN/UPC; releases already there are skipped.")
@workers_option()
@json_option
@quiet_option
@verbose_option
@progress_interval_option
def package(collection: Path, dest: Path, operator: str | None, profile: str, no_profile: bool,
            serialize: str | None, algorithms: tuple[str, ...], info: tuple[str, ...], no_verify: bool,
            sheet_file: str | None, batch: bool, workers: int | None, as_json: bool, quiet: bool, verbose: bool,
            progress_interval: float) -> None:
    """Check COLLECTION, then package it as a BagIt bag at DEST with PREMIS/METS sidecars.

    Refuses (exit 1, nothing written at DEST) when the check finds any problem: an uncleared
    file, a missing or unlisted file, a checksum mismatch, damaged audio. The audio goes under
    data/objects/, the sheet, collection.toml, checksum files and rights documents under
    data/submission/, all with their original relative paths. COLLECTION is only read.
    A package that would break its profile is refused (exit 1) before anything lands at DEST.

    With --batch, COLLECTION is a label's batch delivery and DEST the folder for its AIPs: each
    release folder is packaged on its own (the batch's collection.toml applies where a release
    has none); a failing release does not stop the others, and the summary exits 1 naming them.
    """
    if batch:
        if sheet_file:
            raise UsageError("--sheet names one collection's sheet; a batch's release folders each have their own message")
        _package_batch(collection, dest, quiet=quiet or as_json, as_json=as_json, operator=operator, algorithms=algorithms or None,
                       info=parse_info(info), profile=None if no_profile else profile, serialization=serialize,
                       verify=not no_verify, workers=workers)
        return
    # One bar per phase: the check reads every audio file once, the copy reads it again and hashes
    # it, verification re-reads what was written; each phase says how far it is.
    quiet = quiet or as_json  # one JSON document, nothing around it but problems on standard error
    bar = ProgressBar(0, "packaging", enabled=not quiet, interval=progress_interval)
    bar.phase("check")
    clock = PhaseClock(verbose and not as_json)
    clock.phase("check")

    def phase(name: str, total: int, counted: bool) -> None:
        clock.phase(name)
        bar.phase(name, total, counted=counted)

    def checked(report: CheckReport) -> None:
        if not quiet:
            for w in report.warnings:
                warn(w)

    try:
        with bar.shown():
            result = package_collection(
                collection, dest, operator=operator, algorithms=algorithms or None, info=parse_info(info),
                profile=None if no_profile else profile, serialization=serialize, verify=not no_verify,
                workers=workers, check_progress=bar, progress=bar, sheet_file=sheet_file, on_phase=phase,
                on_checked=checked,
                on_warning=None if quiet else warn,
                on_removed=None if quiet else _removed)
    except ProfileViolation as exc:
        failures = exc.fields.get("failures", [])
        for f in failures:
            click.echo(f"error: {for_people(f.path) + ': ' if f.path else ''}{for_people(f.message, lines=True)}", err=True)
        if as_json:
            emit_json({}, path=exc.fields.get("path"), exit_code=exc.exit_code,
                      problems=[{"path": f.path, "message": f.message} for f in failures] or [str(exc)])
        raise
    except CollectionNotReady as exc:
        if exc.report is None:  # refused before the check, by one problem its message names
            raise
        if as_json:
            emit_json(exc.report.to_dict(), path=collection, exit_code=exc.exit_code)
        else:
            render_report(exc.report, err=True, table=not quiet)
        raise CollectionNotReady(f"{collection}: not packaged, {exc.fields.get('count')} problem(s) listed above; "
                                 f"nothing was written at {dest}") from None
    bag = result.bag
    # the check already warned of each name it had a word for; the bag adds what only copying finds
    named = {w.split(": ", 1)[0] for w in result.report.warnings}
    added = [w for w in bag.warnings if w.split(": ", 1)[0] not in named]
    if not quiet:
        for w in added:
            warn(w)
    if as_json:
        report = result.report
        emit_json({"collection": str(collection), "audio_files": len(report.collection.tracks),
                   "submission_files": len(report.collection.submission_files), "files": bag.files,
                   "bytes": bag.bytes, "algorithms": list(bag.algorithms), "profile": result.profile,
                   "verified": bag.verification.performed, "verified_files": bag.verification.files,
                   "notes": report.notes},
                  path=bag.path, warnings=[*report.warnings, *added], problems=[])
        return
    verified = (f"verified by re-reading {bag.verification.files} file(s) from storage"
                if bag.verification.performed else "not verified (--no-verify)")
    # the profile's name is enough here: its identifier URL is in bag-info.txt
    profile_text = f"; profile {result.profile.split(' (', 1)[0]}" if result.profile else ""
    click.echo(f"packaged {len(result.report.collection.tracks)} audio file(s) and "
               f"{len(result.report.collection.submission_files)} submission file(s), {bag.bytes} bytes, into {for_people(str(bag.path))} "
               f"({', '.join(bag.algorithms)}; {verified}{for_people(profile_text)})")
    clock.report()
    if not quiet:
        next_steps(bag.path)


def _removed(path: Path) -> None:
    click.echo(f"removed staging left by an interrupted run: {for_people(str(path))}", err=True)


def _package_batch(batch: Path, dest: Path, *, quiet: bool, as_json: bool, **options: Any) -> None:
    def started(folder: str, target: Path) -> None:
        if not quiet:
            click.echo(f"packaging {for_people(folder)} into {for_people(str(target))}", err=True)

    def ended(o: ReleaseOutcome) -> None:
        if as_json:
            return      # the outcomes are in the one JSON document
        if o.status == "packaged":
            click.echo(f"packaged {for_people(o.folder)}: {for_people(str(o.bag))}")
        elif o.status == "skipped":
            where = f" ({for_people(str(o.bag))})" if o.bag else ""
            click.echo(f"skipped {for_people(o.folder)}: {o.reason}{where}")
        else:
            click.echo(f"error: {for_people(o.folder)}: not packaged: {for_people(o.reason, lines=True)}", err=True)
            for p in o.problems:
                click.echo(f"error:   {for_people(p, lines=True)}", err=True)

    result = package_batch(batch, dest, on_start=started, on_outcome=ended, **options)
    counts = {s: sum(o.status == s for o in result.outcomes) for s in ("packaged", "skipped", "failed")}
    if as_json:
        emit_json({"batch": str(batch), **counts,
                   "releases": [{"folder": o.folder, "status": o.status, "bag": None if o.bag is None else str(o.bag),
                                 "reason": o.reason, "problems": list(o.problems)} for o in result.outcomes]},
                  path=dest, exit_code=CollectionNotReady.exit_code if result.failed else 0, warnings=[],
                  problems=[f"{o.folder}: {o.reason}" for o in result.failed])
    else:
        click.echo(f"batch {for_people(str(batch))}: {counts['packaged']} packaged, {counts['skipped']} skipped, "
                   f"{counts['failed']} failed")
    if result.failed:
        raise CollectionNotReady(f"{batch}: {len(result.failed)} release(s) not packaged: "
                                 + "; ".join(f"{o.folder} ({o.reason})" for o in result.failed))

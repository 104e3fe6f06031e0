"""``preserve check COLLECTION``: is this collection ready to package? Writes nothing.

File names, sheet values and the messages quoting them come from the collection: each is escaped
(:func:`~preserve.textsafe.for_people`) as it is printed; ``--json`` keeps the exact strings.
"""

from __future__ import annotations

from pathlib import Path

import click

from preserve.cli.common import (
    Command,
    ProgressBar,
    emit_json,
    for_people,
    json_option,
    profile_option,
    progress_interval_option,
    quiet_option,
    workers_option,
)
from preserve.errors import EXIT_PROBLEMS, CollectionNotReady
from preserve.intake import CheckReport, check_collection
from preserve.intake.check import Problem
from preserve.intake.collection import CONFIG_NAME
from preserve.package import DEFAULT_PROFILE, profile_problem


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:06.3f}"


def _format(report: CheckReport, i: int) -> str:
    t = report.collection.tracks[i]
    if t.format.puid is None:
        return "unidentified"
    name = t.technical.container or t.format.name or ""
    return f"{t.format.puid} {name}".strip()


def render_report(report: CheckReport, *, err: bool = False, table: bool = True) -> None:
    """The readable report: a table of files (format, duration, rights, audio check), then the problems.

    ``table=False`` prints only the problems (``--quiet``): those are never left out.
    """
    if table:
        _render_table(report, err)
    if report.problems:
        gap = "\n" if table else ""  # a blank line after the table, none without it
        click.echo(f"{gap}{len(report.problems)} problem(s) stop packaging:", err=err)
        for p in report.problems:
            click.echo(click.style("  error: ", fg="red") + for_people(p.message, lines=True), err=err)


def _render_table(report: CheckReport, err: bool) -> None:
    tracks = report.collection.tracks
    if tracks:
        rows = [("FILE", "FORMAT", "DURATION", "RIGHTS", "AUDIO CHECK")]
        for i, t in enumerate(tracks):
            essence = t.essence.outcome + (" (accepted defect)" if t.essence.accepted_damage else "")
            rows.append((for_people(t.source_path), for_people(_format(report, i)), _duration(t.technical.duration),
                         for_people(report.rights_status(t)), for_people(essence)))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        for r in rows:
            click.echo("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4], err=err)
    if report.collection.submission_files:
        click.echo("", err=err)
        for s in report.collection.submission_files:
            click.echo(f"  {s.role:<18} {for_people(s.source_path)}", err=err)
    if report.identification:
        click.echo(f"\nformats identified with {for_people(report.identification)}", err=err)
    for note in report.notes:
        click.echo(f"note: {for_people(note, lines=True)}", err=err)
    for w in report.warnings:
        click.echo(click.style("warning: ", fg="yellow") + for_people(w, lines=True), err=err)


@click.command(cls=Command)
@click.argument("collection", type=click.Path(path_type=Path))
@json_option
@workers_option("Files examined in parallel (default: the number of cores).")
@quiet_option
@profile_option("BagIt profile `preserve package` will follow: its required bag-info must be there too.",
                default=DEFAULT_PROFILE, show_default=True)
@click.option("--no-profile", is_flag=True, help="Check for packaging with no BagIt profile.")
@click.option("--sheet", "sheet_file", metavar="FILE", help="The sheet or DDEX ERN message to read, relative to "
              "COLLECTION (default: metadata.csv or metadata.json, else the folder's one DDEX message).")
@progress_interval_option
def check(collection: Path, as_json: bool, workers: int | None, quiet: bool, profile: str, no_profile: bool,
          sheet_file: str | None, progress_interval: float) -> None:
    """Check COLLECTION (a folder with audio and metadata.csv, or a DDEX ERN message) without writing anything.

    Reads the sheet and collection.toml, accounts for every file, applies the rights gate,
    verifies the producer's checksums, identifies every audio file (PRONOM), reads its technical
    metadata and verifies the checksums the audio carries of itself (FLAC STREAMINFO MD5, BWF MD5
    chunk). Prints every problem at once. Exits 0 when the collection is ready to package, 1 when
    anything would stop packaging, including a bag-info value the packaging profile (--profile)
    requires that the collection does not give (e.g. Source-Organization).
    """
    if not no_profile:
        from preserve.profiles import load_profile

        load_profile(profile)     # a bad profile reference fails before the long check
    bar = ProgressBar(0, "checking", enabled=not quiet and not as_json, interval=progress_interval)
    with bar.shown():
        report = check_collection(collection, sheet_file=sheet_file, workers=workers, progress=bar,
                                  on_total=lambda total, files: bar.set_total(total, files))
    if not no_profile and not any(p.code == "config" for p in report.problems):
        why = profile_problem(profile, report)
        if why:
            report.problems.append(Problem("profile", f"{CONFIG_NAME}: {why}", CONFIG_NAME))
    if as_json:
        emit_json(report.to_dict(), path=collection, exit_code=0 if report.ready else EXIT_PROBLEMS)
    else:
        render_report(report, table=not quiet)
    if not report.ready:
        raise CollectionNotReady(path=str(collection), count=len(report.problems), report=report)
    if not as_json:
        gap = "" if quiet else "\n"
        click.echo(f"{gap}ready to package: {len(report.collection.tracks)} audio file(s), "
                   f"{len(report.collection.submission_files)} submission file(s)")

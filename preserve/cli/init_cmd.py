"""``preserve init COLLECTION``: a first sheet and collection.toml for a folder of audio."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from preserve.cli.common import (
    Command,
    ProgressBar,
    emit_json,
    for_people,
    json_option,
    progress_interval_option,
    quiet_option,
)
from preserve.intake.scaffold import SHEET_FORMATS, scaffold_collection


@click.command(cls=Command)
@click.argument("collection", type=click.Path(path_type=Path))
@click.option("--sheet-format", type=click.Choice(SHEET_FORMATS), default="csv", show_default=True,
              help="Write the sheet as metadata.csv (for spreadsheets) or metadata.json.")
@json_option
@quiet_option
@progress_interval_option
def init(collection: Path, sheet_format: str, as_json: bool, quiet: bool, progress_interval: float) -> None:
    """Write a first metadata sheet and collection.toml for the audio in COLLECTION.

    The sheet has one row per audio file found (sorted by path), its descriptive cells filled
    from the file's embedded tags and BWF bext chunk; the rights cells are left empty for you.
    collection.toml is a commented skeleton: fill in `organization` and the rights (in the sheet,
    or once for all in [defaults]) and `preserve check` passes. Files that are neither audio nor
    checksum files are put on its ignore list, each named. An existing metadata.csv,
    metadata.json or collection.toml is never overwritten (exit 4, nothing written). Only the
    two new files are written; the audio is only read.
    """
    bar = ProgressBar(0, "reading tags", enabled=not quiet and not as_json, interval=progress_interval)
    with bar.shown():
        result = scaffold_collection(collection, sheet_format=sheet_format, progress=bar, on_total=bar.set_total)
    if as_json:
        emit_json(result.to_dict(), path=result.root, warnings=result.notes, problems=[])
        return
    if not quiet:
        for note in result.notes:
            click.echo(f"note: {for_people(note, lines=True)}", err=True)
    ignored = f"; {len(result.ignored)} other file(s) put on its ignore list" if result.ignored else ""
    click.echo(f"wrote {for_people(str(result.sheet))} ({len(result.rows)} audio file(s)) and "
               f"{for_people(str(result.config))}{ignored}")
    if not quiet:
        click.echo(f"next: fill in organization and the rights in {result.config.name} (or the sheet's rights "
                   f"columns), then: preserve check {for_people(shlex.quote(str(collection)))}", err=True)

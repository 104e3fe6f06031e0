"""``preserve show BAG``: a human summary of a packaged bag, read from its METS."""

from __future__ import annotations

import json
from pathlib import Path

import click

from preserve.sidecars.show import BagSummary, summarize


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def render(s: BagSummary) -> None:
    click.echo(f"{s.title}  [{s.identifier}]")
    click.echo(f"  packaged {s.created} by " + ", ".join(s.agents))
    n_tracks = sum(len(r.tracks) for r in s.releases)
    click.echo(f"  {len(s.releases)} release(s), {n_tracks} track(s), {s.other_files} other file(s)")
    for rel in s.releases:
        click.echo(f"\n{rel.title}  ({len(rel.tracks)} track(s), {_duration(rel.duration)})")
        for t in rel.tracks:
            click.echo(f"  {t.disc}-{t.number:>2}  {_duration(t.duration):>7}  {t.title}  [{t.format}]")
    click.echo("\nRights:")
    for line in s.rights:
        click.echo(f"  {line}")
    click.echo("Formats:")
    for name, n in sorted(s.formats.items()):
        click.echo(f"  {n:>6}  {name}")
    click.echo("Events:")
    for kind, outcomes in s.events.items():
        click.echo(f"  {kind}: " + ", ".join(f"{o} {n}" for o, n in sorted(outcomes.items())))


@click.command()
@click.argument("bag", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def show(bag: Path, as_json: bool) -> None:
    """Summarize BAG from its METS: releases, tracks, durations, rights, formats and events."""
    summary = summarize(bag)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        render(summary)

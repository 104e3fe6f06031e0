"""``preserve show BAG``: a human summary of a packaged bag, read from its METS."""

from __future__ import annotations

from pathlib import Path

import click

from preserve.cli.common import Command, emit_json, json_option, quiet_option
from preserve.cli.common import for_people as shown
from preserve.sidecars.show import BagSummary, TrackSummary, summarize


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _details(t: TrackSummary) -> None:
    """The lines under a track: what it is, when, who, what its BWF chunk and embedded documents say
    (its embargo is on the track's own line)."""
    pad = " " * 14
    if t.technical:
        click.echo(f"{pad}technical: {shown(t.technical)}")
    if t.dates:
        click.echo(f"{pad}dates: " + "; ".join(shown(d) for d in t.dates))
    if t.roles:
        click.echo(f"{pad}names: " + "; ".join(shown(r) for r in t.roles))
    for name, value in t.bwf.items():
        lines = value.splitlines() or [""]
        click.echo(f"{pad}bext {shown(name)}: {shown(lines[0])}")
        for more in lines[1:]:
            click.echo(f"{pad}  {shown(more)}")
    if t.documents:
        click.echo(f"{pad}embedded XML: " + ", ".join(shown(d) for d in t.documents))


def render(s: BagSummary, *, brief: bool = False, quiet: bool = False) -> None:
    """The summary for people; ``brief``: one line per track; ``quiet``: one line, the title and the counts."""
    # every string here comes from the bag's METS: each is escaped as it is printed
    n_tracks = sum(len(r.tracks) for r in s.releases)
    if quiet:
        click.echo(f"{shown(s.title)}  [{shown(s.identifier)}]: {len(s.releases)} release(s), {n_tracks} track(s), "
                   f"{s.other_files} other file(s)")
        return
    click.echo(f"{shown(s.title)}  [{shown(s.identifier)}]")
    click.echo(f"  packaged {shown(s.created)} by " + ", ".join(shown(a) for a in s.agents))
    click.echo(f"  {len(s.releases)} release(s), {n_tracks} track(s), {s.other_files} other file(s)")
    for rel in s.releases:
        differ = "  the tracks' rights differ (each track names its own)" if rel.rights_differ else ""
        click.echo(f"\n{shown(rel.title)}  ({len(rel.tracks)} track(s), {_duration(rel.duration)}){differ}")
        for t in rel.tracks:
            # each track names its statement in the list below (R1, R2...) and any embargo on it
            click.echo(f"  {shown(t.disc)}-{shown(t.number):>2}  {_duration(t.duration):>7}  {shown(t.title)}  "
                       f"[{shown(t.format)}]  {shown(t.rights_mark)}")
            if not brief:
                _details(t)
    click.echo("\nRights:")
    for n, line in enumerate(s.rights, 1):
        click.echo(f"  R{n}  {shown(line)}")
    click.echo("Formats:")
    for name, n in sorted(s.formats.items()):
        click.echo(f"  {n:>6}  {shown(name)}")
    click.echo("Events:")
    for kind, outcomes in s.events.items():
        click.echo(f"  {shown(kind)}: " + ", ".join(f"{shown(o)} {n}" for o, n in sorted(outcomes.items())))


@click.command(cls=Command)
@click.argument("bag", type=click.Path(path_type=Path, exists=True, file_okay=False))
@json_option
@quiet_option
@click.option("--brief", is_flag=True, help="One line per track, without its technical metadata, dates, names and BWF fields.")
def show(bag: Path, as_json: bool, quiet: bool, brief: bool) -> None:
    """Summarize BAG from its METS: releases, tracks, durations, rights, formats and events.

    Each track names its rights statement (R1, R2... in the Rights list) and any embargo on
    dissemination ("embargo until DATE", or "embargo ended DATE" when it ended before packaging);
    a release whose tracks are under different statements says so. Under each track: its
    technical metadata, its dates with their kind (recorded, captured, released), its names with
    their roles, its embargo, every BWF bext field and the XML documents embedded in it.
    """
    summary = summarize(bag)
    if as_json:
        emit_json({**summary.to_dict(), "tracks": sum(len(r.tracks) for r in summary.releases)}, path=bag,
                  warnings=[], problems=[])
    else:
        render(summary, brief=brief, quiet=quiet)

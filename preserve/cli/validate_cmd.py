"""``preserve validate BAG``: RFC 8493 completeness and validity; never writes to the bag."""

from __future__ import annotations

import json
from pathlib import Path

import click

from preserve.bag.validate import ValidationReport, validate_bag
from preserve.cli.common import ProgressBar
from preserve.errors import EXIT_PROBLEMS


def render(report: ValidationReport) -> None:
    for f in report.findings:
        style = "red" if f.severity == "error" else "yellow"
        line = click.style(f"{f.severity}: ", fg=style) + (f"{f.path}: " if f.path else "") + f.message
        if f.expected is not None or f.found is not None:
            line += f" (expected {f.expected}, found {f.found})"
        click.echo(line, err=f.severity == "warning")
    status = "valid" if report.ok else "INVALID"
    click.echo(f"{report.path}: {status} ({report.files} files, {report.bytes} bytes, "
               f"{', '.join(report.algorithms) or 'no manifests'}, {len(report.errors)} error(s), "
               f"{len(report.warnings)} warning(s), {report.mode} check)")


@click.command()
@click.argument("bag", type=click.Path(path_type=Path))
@click.option("--fast", is_flag=True, help="Only completeness and Payload-Oxum; no hashing.")
@click.option("--fetch", is_flag=True, help="Download fetch.txt items to check them (nothing is written to the bag).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
@click.option("-w", "--workers", type=click.IntRange(1, 64), help="Parallel readers.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def validate(bag: Path, fast: bool, fetch: bool, as_json: bool, workers: int | None, quiet: bool) -> None:
    """Validate BAG (BagIt 0.93 to 1.0): every manifest, tag manifest and Payload-Oxum.

    Reports every problem, not only the first. Warnings leave the exit code at 0; any error
    exits 1.
    """
    bar = ProgressBar(0, "validating", enabled=not quiet and not as_json)
    with bar.shown():
        report = validate_bag(bag, fast=fast, fetch=fetch, workers=workers, progress=bar, on_total=bar.set_total)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        render(report)
    if not report.ok:
        raise click.exceptions.Exit(EXIT_PROBLEMS)

"""``preserve validate BAG``: RFC 8493 completeness and validity; never writes to the bag."""

from __future__ import annotations

import json
from pathlib import Path

import click

from preserve.bag.validate import ValidationReport, validate_bag
from preserve.cli.common import ProgressBar, warn
from preserve.errors import EXIT_PROBLEMS, InputError
from preserve.profiles import Profile, fatal_profile_findings, load_profile, validate_profile
from preserve.serialize import validate_archive


def render(report: ValidationReport) -> None:
    for f in report.findings:
        style = "red" if f.severity == "error" else "yellow"
        line = click.style(f"{f.severity}: ", fg=style) + (f"{f.path}: " if f.path else "") + f.message
        if f.expected is not None or f.found is not None:
            line += f" (expected {f.expected}, found {f.found})"
        click.echo(line, err=f.severity == "warning")
    if report.mode == "profile":
        click.echo(f"{report.path}: INVALID ({len(report.errors)} error(s): the profile cannot accept this bag, "
                   "so nothing was hashed)")
        return
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
@click.option("-p", "--profile", "profile_ref", metavar="PROFILE",
              help="Also check conformance to a BagIt profile: a JSON file, a shipped profile's name "
                   "(preserve-audio-aip) or a profile identifier URI (matched locally, never fetched).")
def validate(bag: Path, fast: bool, fetch: bool, as_json: bool, workers: int | None, quiet: bool,
             profile_ref: str | None) -> None:
    """Validate BAG (BagIt 0.93 to 1.0): every manifest, tag manifest and Payload-Oxum.

    BAG is a bag folder or a serialized bag (.tar, .tar.gz, .zip), which is validated as a
    stream without being extracted (PREMIS/METS sidecars included). Reports every problem, not
    only the first. With --profile, its Serialization and Accept-BagIt-Version checks come
    first: when they fail, only they are reported and nothing is hashed. Warnings leave the exit
    code at 0; any error, including a profile violation, exits 1.
    """
    profile = load_profile(profile_ref) if profile_ref else None
    if profile is not None:
        for w in profile.warnings:
            warn(f"profile {profile.name}: {w}")
    try:
        report = _run(bag, fast, fetch, as_json, workers, quiet, profile)
    except InputError as exc:
        if as_json:  # a script reading stdout gets an answer, and the exit code stays 3
            click.echo(json.dumps({"path": str(bag), "valid": False, "error": str(exc)}, indent=2, ensure_ascii=False))
        raise
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        render(report)
    if not report.ok:
        raise click.exceptions.Exit(EXIT_PROBLEMS)


def _run(bag: Path, fast: bool, fetch: bool, as_json: bool, workers: int | None, quiet: bool,
         profile: Profile | None) -> ValidationReport:
    bar = ProgressBar(0, "validating", enabled=not quiet and not as_json)
    with bar.shown():
        if bag.is_file():
            # the profile's fatal checks run first, inside; the sidecars are spooled while streaming
            report = validate_archive(bag, fast=fast, fetch=fetch, profile=profile, progress=bar, on_total=bar.set_total,
                                      sidecars=True)
        elif profile is not None and (fatal := fatal_profile_findings(bag, profile)):
            # the specification puts these first: a bag the profile cannot accept is not hashed
            report = ValidationReport(path=str(bag), findings=fatal, mode="profile")
        else:
            report = validate_bag(bag, fast=fast, fetch=fetch, workers=workers, progress=bar, on_total=bar.set_total,
                                  processes=None if workers is None else 0)
            if profile is not None:
                report.findings.extend(validate_profile(bag, profile))
            if (bag / "metadata" / "mets.xml").is_file():
                # PREMIS/METS sidecars: well-formed, consistent with the manifests, schema-valid if installed.
                from preserve.sidecars.check import check_sidecars

                report.findings.extend(check_sidecars(bag))
    return report

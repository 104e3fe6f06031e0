"""``preserve bag SOURCE DEST``: copy a folder into a new bag; the source is never modified."""

from __future__ import annotations

from pathlib import Path

import click

from preserve.bag.writer import create_bag, payload_from_directory
from preserve.cli.common import ProgressBar, parse_info, warn
from preserve.errors import ProblemsFound, ProfileViolation, UsageError
from preserve.fixity import ALGORITHMS, processes_for, start_processes
from preserve.profiles import load_profile, plan_creation, validate_profile
from preserve.serialize import archive_path, finalizer


@click.command()
@click.argument("source", type=click.Path(path_type=Path, file_okay=False))
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("-a", "--algorithm", "algorithms", multiple=True, type=click.Choice([a for a in ALGORITHMS if a != "xxh3-128"]),
              help="Manifest algorithm (repeat for several). Default: sha256 and sha512.")
@click.option("-i", "--info", "info", multiple=True, metavar="KEY=VALUE", help="A bag-info.txt field (repeatable).")
@click.option("--no-verify", is_flag=True, help="Skip re-reading the written payload from storage.")
@click.option("--follow-links", is_flag=True, help="Copy what symbolic links point to instead of refusing them.")
@click.option("-w", "--workers", type=click.IntRange(1, 64), help="Parallel copies (default: cores).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("-p", "--profile", "profile_ref", metavar="PROFILE",
              help="Make the bag conform to a BagIt profile (a JSON file, a shipped profile's name such as "
                   "preserve-transfer, or a profile identifier): its algorithms, bag-info values, serialization.")
@click.option("--serialize", type=click.Choice(["tar", "tar.gz", "zip"]),
              help="Write the bag as one file; DEST gets the ending (.tar, .tar.gz, .zip) if it lacks it.")
def bag(source: Path, dest: Path, algorithms: tuple[str, ...], info: tuple[str, ...], no_verify: bool,
        follow_links: bool, workers: int | None, quiet: bool, profile_ref: str | None,
        serialize: str | None) -> None:
    """Copy SOURCE into a new BagIt bag at DEST.

    SOURCE is only read. DEST appears whole or not at all: the bag is built in hidden staging
    beside DEST, made durable, re-read from storage to verify it (unless --no-verify), then
    renamed into place.
    """
    info_items = parse_info(info)  # usage errors before any work
    profile = load_profile(profile_ref) if profile_ref else None
    chosen = tuple(algorithms) or ("sha256", "sha512")
    if profile is not None:
        for w in profile.warnings:
            warn(f"profile {profile.name}: {w}")
        plan = plan_creation(profile, algorithms, info_items, serialization=serialize)
        if plan.tag_files_required:
            raise UsageError(f"profile {profile.name} requires tag files ({', '.join(plan.tag_files_required)}) that "
                             "`preserve bag` does not write; `preserve package` makes packages with them")
        chosen, info_items, serialize = plan.algorithms, plan.info, plan.serialization
    if serialize:
        dest = archive_path(dest, serialize)
    payload = payload_from_directory(source, follow_links=follow_links)
    start_processes()  # overlaps the walk below; used when the source has many small files
    summary = payload.scan()
    for w in summary.warnings:
        warn(w)
    if summary.problems:
        for p in summary.problems:
            click.echo(f"preserve: error: {p}", err=True)
        first = summary.problems[0]
        if len(summary.problems) == 1:
            raise first
        raise type(first)(f"{len(summary.problems)} problems in {source} (listed above); nothing was written")
    bar = ProgressBar(summary.bytes, "bagging", enabled=not quiet)
    with bar.shown():
        result = create_bag(dest, payload, algorithms=chosen, info=info_items, verify=not no_verify, workers=workers,
                            processes=processes_for(summary.files, summary.bytes),
                            progress=bar, follow_links=follow_links, finalize=finalizer(serialize) if serialize else None)
    if not result.verification.performed:
        verified = "not verified (--no-verify)"
    else:
        verified = f"verified by re-reading {result.verification.files} file(s) from storage"
    click.echo(f"bagged {result.files} file(s), {result.bytes} bytes into {result.path} ({', '.join(result.algorithms)}; {verified})")
    if result.empty_dirs:
        click.echo(f"kept {result.empty_dirs} empty folder(s), listed in metadata/empty-directories.txt")
    if profile is not None:
        failures = validate_profile(result.path, profile)
        for f in failures:
            click.echo(f"error: {f.path + ': ' if f.path else ''}{f.message}", err=True)
        if failures:
            raise ProfileViolation(path=str(result.path), profile=profile.name, count=len(failures))
        click.echo(f"conforms to profile {profile.name} ({profile.identifier})")


__all__ = ["ProblemsFound", "bag"]

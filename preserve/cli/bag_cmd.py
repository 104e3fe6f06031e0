"""``preserve bag SOURCE DEST``: copy a folder into a new bag; the source is never modified."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click

from preserve.bag.validate import Finding
from preserve.bag.writer import (
    XXH3_FILE,
    PayloadEntry,
    check_dest_outside_source,
    create_bag,
    payload_from_directory,
)
from preserve.cli.common import (
    Command,
    PhaseClock,
    ProgressBar,
    emit_json,
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
from preserve.errors import InputError, ProblemsFound, ProfileViolation, UsageError
from preserve.fixity import ALGORITHMS, processes_for, start_processes
from preserve.profiles import (
    Profile,
    check_tag_files,
    conformance_violation,
    conforming_finalizer,
    load_profile,
    payload_findings,
    plan_creation,
)
from preserve.serialize import archive_path, finalizer
from preserve.textsafe import for_people


@click.command(cls=Command)
@click.argument("source", type=click.Path(path_type=Path, file_okay=False))
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("-a", "--algorithm", "algorithms", multiple=True, type=click.Choice([a for a in ALGORITHMS if a != "xxh3-128"]),
              help="Manifest algorithm (repeat for several). Default: sha256 and sha512.")
@click.option("-i", "--info", "info", multiple=True, metavar="KEY=VALUE", help="A bag-info.txt field (repeatable).")
@click.option("--no-verify", is_flag=True, help="Skip re-reading the written payload from storage.")
@click.option("--follow-links", is_flag=True, help="Copy what symbolic links point to instead of refusing them.")
@click.option("--serialize", type=click.Choice(["tar", "tar.gz", "zip"]),
              help="Write the bag as one file; DEST gets the ending (.tar, .tar.gz, .zip) if it lacks it.")
@profile_option("Make the bag conform to a BagIt profile (a JSON file, a shipped profile's name such as "
                "preserve-transfer, or a profile identifier): its algorithms, bag-info values, serialization.")
@workers_option("Parallel copies (default: the number of cores).")
@json_option
@quiet_option
@verbose_option
@progress_interval_option
def bag(source: Path, dest: Path, algorithms: tuple[str, ...], info: tuple[str, ...], no_verify: bool,
        follow_links: bool, serialize: str | None, profile: str | None, workers: int | None, as_json: bool,
        quiet: bool, verbose: bool, progress_interval: float) -> None:
    """Copy SOURCE into a new BagIt bag at DEST.

    SOURCE is only read. DEST appears whole or not at all: the bag is built in hidden staging
    beside DEST, made durable, re-read from storage to verify it (unless --no-verify), then
    renamed into place (or written as an archive, which is read back too). With --profile, a
    bag that would not conform is refused (exit 1) before anything lands at DEST. Staging left by
    a run that was killed is removed by the next run on DEST, which says so.
    """
    info_items = parse_info(info)  # usage errors before any work
    quiet = quiet or as_json  # one JSON document, nothing around it but problems on standard error
    warnings: list[str] = []

    def warned(message: str) -> None:
        warnings.append(message)
        if not quiet:
            warn(message)

    loaded = load_profile(profile) if profile else None
    chosen = tuple(algorithms) or ("sha256", "sha512")
    if loaded is not None:
        for w in loaded.warnings:
            warned(f"profile {loaded.name}: {w}")
        plan = plan_creation(loaded, algorithms, info_items, serialization=serialize)
        if plan.tag_files_required:
            raise UsageError(f"profile {loaded.name} requires tag files ({', '.join(plan.tag_files_required)}) that "
                             "`preserve bag` does not write; `preserve package` makes packages with them")
        check_tag_files(loaded, (XXH3_FILE,), "`preserve bag`")
        chosen, info_items, serialize = plan.algorithms, plan.info, plan.serialization
    if serialize:
        dest = archive_path(dest, serialize)
    payload = payload_from_directory(source, follow_links=follow_links)
    check_dest_outside_source(dest, source)  # before the walk: nothing is read or written
    for key, value in info_items:
        if key.lower() in ("payload-oxum", "bag-size"):
            warned(f"--info {key}={value}: replaced by the value computed from the payload")
    start_processes()  # overlaps the walk below; used when the source has many small files
    summary = payload.scan()
    for w in summary.warnings:
        warned(w)
    if summary.problems:
        first = summary.problems[0]
        if len(summary.problems) == 1:
            raise first  # main() prints it: listing it here too would say it twice
        for p in summary.problems:
            click.echo(f"preserve: error: {for_people(str(p), lines=True)}", err=True)
        # one kind of problem keeps its exit code; a mix of kinds is about the input as a whole (3)
        kind = type(first) if len({p.exit_code for p in summary.problems}) == 1 else InputError
        raise kind(f"{len(summary.problems)} problems in {source} (listed above); nothing was written")
    finalize = finalizer(serialize, verify=not no_verify) if serialize else None
    if loaded is not None:
        # the payload rules, on the names and sizes, before anything is copied
        _refuse(dest, loaded, payload_findings(loaded, (
            (f"data/{e.target}", 0 if e.empty_dir else _size(e), e.empty_dir) for e in payload)))
        # the whole staged bag, with its tag manifests, before it lands at DEST
        finalize = conforming_finalizer(loaded, serialize, finalize)
    bar = ProgressBar(0, "bagging", enabled=not quiet, interval=progress_interval)
    clock = PhaseClock(verbose and not as_json)
    bar.phase("copy+hash", summary.bytes)
    clock.phase("copy+hash")
    if finalize is not None:
        finalize = _announced(finalize, bar, clock)

    def staged(staging: Path) -> None:
        if not no_verify:  # the writer re-reads the payload now
            bar.phase("verify", summary.bytes)
            clock.phase("verify")

    try:
        with bar.shown():
            result = create_bag(dest, payload, algorithms=chosen, info=info_items, verify=not no_verify,
                                workers=workers, processes=processes_for(summary.files, summary.bytes),
                                progress=bar, verify_progress=bar, follow_links=follow_links, finalize=finalize, on_staged=staged,
                                on_removed=None if quiet else _removed)
    except ProfileViolation as exc:
        _list_failures(exc)
        raise
    for w in result.warnings:
        if w not in warnings:
            warned(w)
    if as_json:
        emit_json({"source": str(source), "files": result.files, "bytes": result.bytes,
                   "algorithms": list(result.algorithms), "oxum": result.oxum, "empty_directories": result.empty_dirs,
                   "profile": None if loaded is None else {"name": loaded.name, "identifier": loaded.identifier},
                   "verified": result.verification.performed, "verified_files": result.verification.files},
                  path=result.path, warnings=warnings, problems=[])
        return
    if not result.verification.performed:
        verified = "not verified (--no-verify)"
    else:
        verified = f"verified by re-reading {result.verification.files} file(s) from storage"
    click.echo(f"bagged {result.files} file(s), {result.bytes} bytes into {result.path} ({', '.join(result.algorithms)}; {verified})")
    clock.report()
    if quiet:
        return
    if result.empty_dirs:
        click.echo(f"kept {result.empty_dirs} empty folder(s), listed in metadata/empty-directories.txt")
    if loaded is not None:
        click.echo(f"conforms to profile {loaded.name} ({loaded.identifier})")
    next_steps(result.path, show=False)


def _announced(finalize: Callable[[Path, Path], None], bar: ProgressBar,
               clock: PhaseClock) -> Callable[[Path, Path], None]:
    def announced(staging: Path, dest: Path) -> None:
        bar.phase("archive", counted=False)
        clock.phase("archive")
        finalize(staging, dest)
    return announced


def _size(entry: PayloadEntry) -> int:
    if entry.size >= 0:
        return entry.size
    try:
        return os.stat(entry.source).st_size
    except OSError:
        return 0  # the copy reports it


def _list_failures(exc: ProfileViolation) -> None:
    for f in exc.fields.get("failures", []):
        click.echo(f"error: {f.path + ': ' if f.path else ''}{f.message}", err=True)


def _refuse(dest: Path, profile: Profile, failures: list[Finding]) -> None:
    """Raise ProfileViolation for ``failures``, listing them first (nothing is written)."""
    if failures:
        exc = conformance_violation(dest, profile, failures)
        _list_failures(exc)
        raise exc


def _removed(path: Path) -> None:
    click.echo(f"removed staging left by an interrupted run: {path}", err=True)


__all__ = ["ProblemsFound", "bag"]

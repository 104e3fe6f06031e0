"""``preserve unpack ARCHIVE DEST``: extract a serialized bag safely, validate it, then rename it into place."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from preserve.bag.validate import ValidationReport
from preserve.cli.common import (
    Command,
    ProgressBar,
    emit_json,
    for_people,
    json_option,
    next_steps,
    progress_interval_option,
    quiet_option,
    workers_option,
)
from preserve.cli.validate_cmd import render
from preserve.errors import BagInvalid
from preserve.serialize import content_size
from preserve.serialize import unpack as unpack_archive


@click.command(cls=Command)
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("dest", type=click.Path(path_type=Path))
@workers_option("Parallel readers for the validation (default: the number of cores).")
@json_option
@quiet_option
@progress_interval_option
def unpack(archive: Path, dest: Path, workers: int | None, as_json: bool, quiet: bool, progress_interval: float) -> None:
    """Extract the serialized bag ARCHIVE (.tar, .tar.gz, .zip) into the new folder DEST.

    Every member is checked first: absolute names, '..', links, devices, duplicate names and
    members outside the one top-level folder stop the run (exit 3) before anything lands outside
    DEST; so do a payload file no manifest lists, a payload larger than Payload-Oxum declares and
    a member inflating past the size its header declares (zip bombs), before they are written, and
    a zip member compressed with a method other than stored, deflate, bzip2 or LZMA (such as
    Deflate64), before anything is extracted. The bag is extracted into hidden staging beside DEST, validated from disk (with its
    PREMIS/METS sidecars, as `preserve validate` checks them), and renamed to DEST only when valid; an invalid bag is reported (exit 1) and nothing is left behind.
    Staging left by a run that was killed is removed by the next run on DEST, which says so.
    """
    quiet = quiet or as_json  # one JSON document, nothing around it but problems on standard error
    bar = ProgressBar(0, "unpacking", enabled=not quiet, interval=progress_interval)
    # tar.gz: 0, as its content size is known only once decompressed (bytes done are shown)
    bar.phase("extract", content_size(archive) if archive.is_file() else 0)
    try:
        with bar.shown():
            report = unpack_archive(archive, dest, progress=bar, workers=workers, on_removed=None if quiet else _removed,
                                    on_phase=lambda phase, total, counted: bar.phase(phase, total, counted=counted))
    except BagInvalid as exc:
        if exc.report is not None:
            if as_json:
                _json(archive, exc.report, exc.exit_code)
            else:
                render(exc.report, quiet=quiet)
        raise
    if as_json:
        _json(archive, report, 0)
        return
    if not quiet:  # the line below is the verdict: the bag lands at DEST only when valid
        render(report)
    click.echo(f"unpacked {for_people(str(archive))} into {for_people(str(report.path))}")
    if not quiet:
        next_steps(Path(report.path), show=(Path(report.path) / "metadata" / "mets.xml").is_file())


def _json(archive: Path, report: ValidationReport, code: int) -> None:
    findings = [{k: v for k, v in asdict(f).items() if v is not None} for f in report.findings]
    emit_json({**report.to_dict(), "archive": str(archive)}, path=report.path, exit_code=code,
              warnings=[f for f in findings if f["severity"] != "error"],
              problems=[f for f in findings if f["severity"] == "error"])


def _removed(path: Path) -> None:
    click.echo(f"removed staging left by an interrupted run: {for_people(str(path))}", err=True)

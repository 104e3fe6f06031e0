"""``preserve restore SOURCE DEST``: a bag back from a replica, validated before it appears."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from preserve.cli.common import (
    Command,
    ProgressBar,
    emit_json,
    json_option,
    progress_interval_option,
    quiet_option,
    workers_option,
)
from preserve.cli.common import for_people as shown
from preserve.cli.replicate_cmd import human, s3_options, store_opener, with_config
from preserve.replication.config import ReplicationConfig
from preserve.replication.remote_audit import split_location
from preserve.stores import Store


@click.command(cls=Command)
@click.argument("source", metavar="SOURCE")
@click.argument("dest", type=click.Path(path_type=Path))
@workers_option("Objects downloaded in parallel.", default=4, show_default=True)
@json_option
@quiet_option
@progress_interval_option
@s3_options
@with_config
def restore(source: str, dest: Path, workers: int, as_json: bool, quiet: bool, progress_interval: float,
            config: ReplicationConfig, **kw: Any) -> None:
    """Restore the bag copy (or store object) at SOURCE into a new directory DEST.

    SOURCE is STORE/BAG-NAME: s3://bucket/prefix/BAG-NAME, a directory path, or TARGET-NAME/BAG-NAME
    for a target named in preserve.toml. Everything is downloaded into hidden staging beside DEST,
    the empty folders listed in metadata/empty-directories.txt are created again, and the bag is
    validated in full (every manifest and tag manifest); only a valid bag is renamed to DEST,
    which then holds bagit.txt. Nothing is left at DEST otherwise (exit 1 invalid, 4 DEST exists
    or is being restored, 5 local disk full). Staging a killed restore left is removed by the
    next restore to the same DEST.
    \f
    A replicated OCFL object (TARGET/<object path>) is restored as an OCFL object, each content
    file checked against the replica's inventory: into DEST, or, when DEST is a storage root, where
    that root's layout puts it (docs/store.md).
    """
    from preserve.ocfl.replica import locate
    from preserve.replication.restore import restore_bag

    parent, name = split_location(source)
    kw["workers"] = workers
    opened = store_opener(config, kw)
    store = opened(parent)
    located = locate(source, opened)
    if located is not None:
        _restore_object(*located, dest, workers=workers, as_json=as_json, quiet=quiet,
                        progress_interval=progress_interval)
        return
    bar = ProgressBar(0, shown(f"restoring {name}"), enabled=not quiet and not as_json, interval=progress_interval)
    bar.phase("list", counted=False)  # the replica record and the objects, before their bytes are known
    with bar.shown():
        result = restore_bag(store, name, dest, workers=workers, progress=bar,
                             on_phase=lambda phase, total, counted: bar.phase(phase, total, counted=counted))
    if as_json:
        emit_json({"source": result.source, "dest": str(result.dest), "files": result.files,
                   "payload_files": result.report.files, "bytes": result.bytes,
                   "algorithms": list(result.report.algorithms), "valid": result.report.ok,
                   "empty_directories": result.directories, "cleaned": [str(p) for p in result.cleaned]},
                  path=result.dest, warnings=[str(f) for f in result.report.warnings], problems=[])
        return
    for p in [] if quiet else result.cleaned:
        click.echo(f"removed what an interrupted earlier restore left: {shown(str(p))}")
    click.echo(f"{shown(str(result.dest))}: restored from {shown(result.source)} and valid ({result.report.files} payload files, "
               f"{human(result.bytes)}, {', '.join(result.report.algorithms)})")


def _restore_object(store: Store, prefix: str, dest: Path, *, workers: int, as_json: bool, quiet: bool,
                    progress_interval: float) -> None:
    """A replicated store object back, into a new folder or a storage root (docs/store.md)."""
    from preserve.ocfl.restore import restore_object

    bar = ProgressBar(0, shown(f"restoring {prefix}"), enabled=not quiet and not as_json, interval=progress_interval)
    bar.phase("download", counted=False)
    with bar.shown():
        result = restore_object(store, prefix, dest, workers=workers, progress=bar,
                                on_total=lambda total: bar.phase("download", total))
    if as_json:
        emit_json({"source": result.source, "dest": str(result.dest), "object": result.object_id,
                   "head": result.head, "into_store": result.into_root, "files": result.files, "bytes": result.bytes,
                   "valid": result.report.ok, "cleaned": [str(p) for p in result.cleaned]},
                  path=result.dest, warnings=[str(f) for f in result.report.warnings], problems=[])
        return
    for p in [] if quiet else result.cleaned:
        click.echo(f"removed what an interrupted earlier restore left: {shown(str(p))}")
    where = "into the store" if result.into_root else "as a store object"
    click.echo(f"{shown(str(result.dest))}: {shown(result.object_id)} ({result.head}) restored {where} from "
               f"{shown(result.source)} and valid ({result.files} files, {human(result.bytes)})")

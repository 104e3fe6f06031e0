"""``preserve repair BAG --from TARGET``: damaged payload and tag files replaced by verified replica copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from preserve.cli.common import Command, emit_json, json_option, quiet_option, workers_option
from preserve.cli.common import for_people as shown
from preserve.cli.ledger_cmd import LEDGER
from preserve.cli.replicate_cmd import open_ledger, resolve_target, s3_options, with_config
from preserve.errors import EXIT_PROBLEMS
from preserve.replication.config import ReplicationConfig


@click.command(cls=Command)
@click.argument("bag", type=click.Path(path_type=Path, file_okay=False))
@click.option("--from", "source", required=True, metavar="TARGET",
              help="The replica to repair from: s3://bucket/prefix, a directory, or a target name "
                   "(the bag's copy is looked up under its own name there).")
@click.option("--name", help="The bag's name in the replica, when it differs from BAG's directory name.")
@click.option("--ledger", "ledger_path", type=LEDGER, metavar="PATH|URL",
              help="Audit ledger to record the repairs in: a SQLite file or postgresql://... (default: the user data folder).")
@click.option("--wait", type=click.FloatRange(0), default=0, show_default=True, metavar="SECONDS",
              help="How long to wait for another run working on BAG to finish (then exit 4).")
@workers_option("Parallel readers for validation (default: the number of cores).")
@json_option
@quiet_option
@s3_options
@with_config
def repair(bag: Path, source: str, name: str | None, ledger_path: Path | str | None, wait: float, workers: int | None,
           as_json: bool, quiet: bool, config: ReplicationConfig, **kw: Any) -> None:
    """Repair BAG's missing or altered payload and tag files from a replica.

    Tag files are checked against the tag manifests, then BAG is validated in full; for each file
    found missing or altered, the replica's copy is downloaded into a hidden staging folder in BAG
    and hashed with every manifest algorithm. Only a copy that matches replaces the damaged file
    (atomically); a copy that does not verify is never used, and nothing is written through a
    symbolic link. Missing empty folders listed in metadata/empty-directories.txt are created
    again. Every attempt is recorded in the ledger. A tag or payload file that cannot be read
    (permission denied, an I/O error) is not repaired: nothing is changed and repair exits 3 naming
    it; restore read access, or remove a file that is really damaged and repair restores it as
    missing. Exit 1 when anything is left damaged, 4 when another run holds BAG, 5 when BAG's disk
    has no room for the copies.
    """
    from preserve.replication.repair import repair_bag

    store, _spec = resolve_target(source, config, kw)
    ledger = open_ledger(ledger_path, config.path)
    try:
        result = repair_bag(bag, store, name=name, ledger=ledger, workers=workers, wait=wait)
    finally:
        ledger.close()
    if as_json:
        unrepaired: list[dict[str, str | None]] = [
            {"path": f.path, "problem": f.problem, "outcome": f.outcome, "message": f.reason}
            for f in result.files if f.outcome != "repaired"]
        unrepaired += [{"path": u.path, "code": u.code, "message": u.message} for u in result.unrepairable]
        emit_json({**result.to_dict(), "repaired": sum(1 for f in result.files if f.outcome == "repaired"),
                   "damaged": len(result.files)}, path=result.bag,
                  exit_code=0 if result.ok else EXIT_PROBLEMS, warnings=[], problems=unrepaired)
    else:
        # names, reasons and findings come from the bag and the replica: each is escaped as printed
        for p in [] if quiet else result.cleaned:
            click.echo(f"removed what an interrupted earlier run left: {shown(str(p))}")
        for f in result.files:
            if f.outcome == "repaired":
                if not quiet:
                    click.echo(f"repaired: {shown(f.path)} ({shown(f.problem)}) from {shown(result.source)}")
            else:
                click.echo(click.style(f"{shown(f.outcome)}: ", fg="red")
                           + f"{shown(f.path)} ({shown(f.problem)}): {shown(f.reason, lines=True)}")
        for d in [] if quiet else result.directories:
            click.echo(f"created again: {shown(d)}/ (an empty folder listed in metadata/empty-directories.txt)")
        for u in result.unrepairable:
            click.echo(click.style("still damaged, not repairable from the replica: ", fg="red") + shown(str(u), lines=True))
        if not result.files and not result.unrepairable and not result.directories:
            click.echo(f"{shown(str(result.bag))}: valid; nothing to repair")
        else:
            done = sum(1 for f in result.files if f.outcome == "repaired")
            left = [f.path for f in result.files if f.outcome != "repaired"]
            left += [u.path or "(the bag)" for u in result.unrepairable]
            if result.files:
                summary = f"{done} of {len(result.files)} damaged file(s) repaired"
            elif not left:
                summary = f"{len(result.directories)} empty folder(s) created again; nothing else to repair"
            else:
                summary = "no file could be repaired from the replica"
            still = f"; still damaged: {', '.join(shown(p) for p in dict.fromkeys(left))}" if left else ""
            click.echo(f"{shown(str(result.bag))}: {summary}{still}")
    if not result.ok:
        raise click.exceptions.Exit(EXIT_PROBLEMS)

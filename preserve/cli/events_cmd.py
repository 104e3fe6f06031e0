"""``preserve events BAG``: a bag's whole history (packaging, audits, replicas, repairs) as PREMIS 3."""

from __future__ import annotations

from pathlib import Path

import click

from preserve.audit.events import bag_events
from preserve.audit.ledger import default_ledger_path, ledger_exists
from preserve.cli.common import Command, for_people, quiet_option, warn
from preserve.cli.ledger_cmd import configured_ledger, ledger_options, open_ledger, output_file


@click.command(cls=Command)
@click.argument("bag")
@ledger_options
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE instead of standard output.")
@quiet_option
def events(bag: str, ledger_path: Path | str | None, network_ok: bool, output: Path | None, quiet: bool) -> None:
    """Export BAG's history as one PREMIS 3 document.

    BAG is a bag folder (any bag, made by any tool) or a bag identifier known to the ledger. The
    document holds an object for the bag; the packaging events of its metadata/premis.xml when
    it has one; every audit as a "fixity check" event (pass or fail, one note per finding);
    every replica as "replication" and every repair as "recovery".
    """
    path = ledger_path if ledger_path is not None else (configured_ledger() or default_ledger_path())
    if ledger_exists(path):
        with open_ledger(path, network_ok, create=False, quiet=quiet) as led:
            doc = bag_events(bag, led)
    else:  # exporting never creates a ledger
        if not quiet:
            warn(f"{path}: no ledger here; only the bag's own history is exported")
        doc = bag_events(bag, None)
    for w in [] if quiet else doc.warnings:
        warn(w)
    with output_file(output, binary=True) as out:
        out.write(doc.xml)
    if output is not None and not quiet:
        click.echo(f"wrote {doc.events} event(s) for {for_people(bag)} to {for_people(str(output))}", err=True)

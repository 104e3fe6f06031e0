"""``preserve report``: what the ledger says, as text, JSON or a self-contained HTML page."""

from __future__ import annotations

import time
from pathlib import Path

import click

from preserve.audit.html import render_html
from preserve.audit.report import (
    audit_history,
    build_report,
    finding_line,
    human_bytes,
    render_text,
)
from preserve.cli.common import (
    Command,
    emit_json,
    for_people,
    json_option,
    parse_period,
    quiet_option,
)
from preserve.cli.ledger_cmd import ledger_options, open_ledger, output_file
from preserve.errors import EXIT_PROBLEMS, ProblemsFound, SourceNotFound


@click.command(cls=Command)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH...]")
@ledger_options
@click.option("--every", default="30d", show_default=True, metavar="PERIOD", help="A bag is overdue this long after its last audit.")
@click.option("--history", type=click.IntRange(1), default=12, show_default=True, help="Audits shown per bag.")
@click.option("--bag", "bag_ref", metavar="BAG", help="Only the audit history of this bag (path or identifier), every finding included.")
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False), help="Also write a self-contained HTML report to FILE.")
@click.option("--metrics", "metrics_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the figures to FILE in the Prometheus text format, atomically.")
@json_option
@quiet_option
def report(paths: tuple[Path, ...], ledger_path: Path | str | None, network_ok: bool, every: str, history: int,
           bag_ref: str | None, html_file: Path | None, as_json: bool, quiet: bool,
           metrics_file: Path | None = None) -> None:
    """Report from the ledger: bags never audited, overdue, failures still open, audit history.

    PATH... (optional) are bags or folders of bags on disk: those the ledger has never seen count
    as never audited. An OCFL storage root among them adds its objects, versions, deaccessioned and
    purged objects. Exit 0 when nothing needs attention, 1 when a bag is never audited, overdue
    or failing.
    """
    with open_ledger(ledger_path, network_ok, create=False) as led:
        if bag_ref is not None:
            audits = audit_history(led, bag_ref)
            if not audits and not led.find_bags(bag_ref):
                raise SourceNotFound(f"{bag_ref}: no such bag in the ledger {led.path}")
            failed = bool(audits) and audits[-1].outcome == "fail"
            if as_json:
                from dataclasses import asdict

                problems = [{"path": audits[-1].location, "file": f.file, "kind": f.kind, "message": f.message}
                            for f in audits[-1].findings] if failed else []
                emit_json({"ledger": str(led.path), "audits": [asdict(a) for a in audits]}, path=bag_ref,
                          exit_code=EXIT_PROBLEMS if failed else 0, warnings=[], problems=problems)
            else:
                for a in audits:
                    click.echo(f"{a.ended}  {a.tier:<4}  {a.outcome:<4}  {a.files} file(s), {human_bytes(a.bytes)}, "
                               f"{for_people(a.algorithm)}, preserve {for_people(a.tool_version)} on "
                               f"{for_people(a.host)}  {for_people(a.location)}")
                    for f in a.findings:
                        click.echo(f"    {finding_line(f.kind, f.file, f.message, f.expected, f.found)}")
            if failed:
                raise ProblemsFound(f"{bag_ref}: the latest audit failed ({len(audits[-1].findings)} problem(s))")
            return
        now = time.time()
        result = build_report(led, every=parse_period(every), paths=paths, history=history, now=now)
        if metrics_file is not None:
            from preserve.audit.metrics import render_metrics

            exposition = render_metrics(result, led, now)
            with output_file(metrics_file, binary=True) as out:
                out.write(exposition)
    if html_file is not None:
        with output_file(html_file) as out:
            out.write(render_html(result))
        if not quiet:
            click.echo(f"wrote the HTML report to {for_people(str(html_file))}", err=True)
    if as_json:
        problems = [{"section": r.section.key, **row} for r in result.sections if r.section.problem for row in r.rows]
        emit_json(result.to_dict(), path=result.ledger, exit_code=EXIT_PROBLEMS if result.has_problems else 0,
                  warnings=[], problems=problems)
    else:
        click.echo(render_text(result, problems_only=quiet))
    if result.has_problems:
        counts = ", ".join(f"{len(r.rows)} {r.section.title.lower()}" for r in result.sections if r.section.problem and r.rows)
        raise ProblemsFound(f"bags need attention: {counts}")

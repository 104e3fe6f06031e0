"""``preserve ledger backup DEST`` / ``compact`` / ``export`` / ``info``: keep the audit evidence safe."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from preserve.audit import ledger as ledger_lib
from preserve.audit.ledger import Ledger, default_ledger_path
from preserve.cli.common import Group, emit_json, for_people, json_option, quiet_option, warn
from preserve.configfile import find_config, read_config
from preserve.errors import InputError, LedgerError, StorageError, UsageError

F = TypeVar("F", bound=Callable[..., Any])


class LedgerParam(click.ParamType[Path | str]):
    """``--ledger``: a SQLite file's path, or ``postgresql://...``; any other URL scheme is a usage
    error (exit 2), never a relative path named after the URL."""

    name = "path-or-url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        try:
            return ledger_lib.ledger_target(value)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


LEDGER = LedgerParam()


def ledger_options(fn: F) -> F:
    """``--ledger PATH|URL`` and ``--ledger-on-network-fs``, shared by every command that reads the ledger."""
    fn = click.option("--ledger-on-network-fs", "network_ok", is_flag=True,
                      help="Allow a ledger on NFS/SMB/sshfs (rollback journal: one audit at a time).")(fn)
    fn = click.option("--ledger", "ledger_path", type=LEDGER, metavar="PATH|URL",
                      help=f"Audit ledger: a SQLite file (default: preserve.toml's ledger, else "
                           f"{default_ledger_path()}) or postgresql://user@host/db (password from libpq).")(fn)
    return fn


def configured_ledger(config: Path | None = None) -> Path | str | None:
    """``ledger = "..."`` in preserve.toml (``config``, the file --config names, else the search:
    $PRESERVE_CONFIG, ./preserve.toml, the user's configuration folder), or None. A relative path
    is taken from the file's folder."""
    found = find_config(config)
    if found is None:
        return None
    if not found.is_file():  # named by --config or $PRESERVE_CONFIG: never quietly the default ledger
        raise InputError(f"{found}: no such configuration file")
    value = read_config(found).get("ledger")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"{found}: ledger must be a path or a postgresql:// URL in quotes")
    try:
        target = ledger_lib.ledger_target(value)
    except UsageError as exc:
        raise UsageError(f"{found}: {exc}") from exc
    return found.parent / target if isinstance(target, Path) and not target.is_absolute() else target


def open_ledger(path: Path | str | None, network_ok: bool, *, create: bool = True, quiet: bool = False,
                config: Path | None = None) -> Ledger:
    """Open the ledger (--ledger, else the ``ledger`` of preserve.toml, the one ``config`` names
    when given, else the default file) and print its warnings (rollback journal on a network file
    system, what a stopped creation left and this one removed) unless ``quiet``."""
    ledger = ledger_lib.open_ledger(path if path is not None else configured_ledger(config), create=create,
                                    allow_network_fs=network_ok)
    for w in [] if quiet else ledger.warnings:
        warn(w)
    return ledger


def check_pending(led: Ledger) -> None:
    """Exit 7 naming what waits on local disk when the ledger's server went away during the run."""
    if led.pending:
        raise LedgerError(path=led.name, reason=(
            f"the server went away during the run: {led.pending} audit outcome(s) are kept on local disk in "
            f"{led.queue} and are written the next time a command opens this ledger, or by "
            "preserve ledger flush --ledger URL"))


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def output_file(path: Path | None, binary: bool = False) -> Any:
    """Standard output, or a file written beside its destination and renamed into place when whole.

    A destination that cannot be written (its folder missing, no space) is a :class:`StorageError`
    naming it, and nothing is left behind.
    """
    if path is None:
        yield sys.stdout.buffer if binary else sys.stdout
        return
    folder = path.parent or Path(".")
    if not folder.is_dir():
        raise StorageError(path=str(path), reason=f"the folder {folder} does not exist; create it first (nothing was written)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise StorageError(path=str(path), reason=f"cannot write here ({exc.strerror or exc}); nothing was written") from exc
    try:
        with open(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            # mkstemp makes the file 0600; what is written for others to read (a report, an
            # export) gets the mode any new file gets, 0666 less the umask
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            yield f
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise StorageError(path=str(path), reason=f"cannot write here ({exc.strerror or exc}); nothing was written") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@click.group(cls=Group)
def ledger() -> None:
    """Back up, export and inspect the audit ledger (decades of fixity evidence)."""


@ledger.command()
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@ledger_options
@json_option
@quiet_option
def backup(dest: Path, ledger_path: Path | str | None, network_ok: bool, as_json: bool, quiet: bool) -> None:
    """Copy the ledger to a new file DEST with SQLite's online backup.

    Safe while audits are running: the copy is one consistent snapshot, checked with
    PRAGMA integrity_check, and a single self-contained file. DEST must not exist (exit 4).
    """
    with open_ledger(ledger_path, network_ok, create=False, quiet=quiet) as led:
        out = led.backup(dest)
        count = led.bag_totals().bags
    if as_json:
        emit_json({"ledger": str(led.path), "bags": count}, path=out, warnings=led.warnings, problems=[])
        return
    click.echo(f"backed up {for_people(str(led.path))} ({count} bag(s)) to {for_people(str(out))}")


def _keep_words(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    from preserve.audit.ledger_compact import parse_keep

    try:
        return parse_keep(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc).partition(": ")[2], ctx, param) from exc


@ledger.command()
@click.option("--keep", default="first,last,failures", show_default=True, metavar="WHAT", callback=_keep_words,
              help="What to keep of each bag's audits: first, last (successful audits), failures; comma-separated.")
@ledger_options
@json_option
@quiet_option
def compact(keep: tuple[str, ...], ledger_path: Path | str | None, network_ok: bool, as_json: bool, quiet: bool) -> None:
    """Thin each bag's audit history: keep its first and last successful audit and every failure.

    The other audits are removed in one transaction; each bag that lost some records when and how
    many, and `preserve events` says so in its PREMIS history. Never automatic: take a backup
    first (`preserve ledger backup` or pg_dump). Running it again removes nothing more.
    """
    with open_ledger(ledger_path, network_ok, create=False, quiet=quiet) as led:
        done = led.compact(keep)
    if as_json:
        emit_json({"ledger": str(led.path), "keep": list(done.keep), "bags": done.bags, "removed": done.removed,
                   "kept": done.kept, "findings_removed": done.findings_removed, "time": done.time},
                  path=str(led.path), warnings=led.warnings, problems=[])
        return
    # the verdict line: kept with -q, as every command's is
    click.echo(f"compacted {for_people(str(led.path))} (kept {','.join(done.keep)}): removed {done.removed} "
               f"audit(s) of {done.bags} bag(s), {done.kept} audit(s) kept")


@ledger.command()
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE instead of standard output.")
@ledger_options
@quiet_option
def export(output: Path | None, ledger_path: Path | str | None, network_ok: bool, quiet: bool) -> None:
    """Export every row of the ledger as JSON lines: {"table": "bags"|"audits"|"findings"|"replicas"|"repairs"|"tag_files", ...}.

    A damaged ledger stops the export with exit 7 and SQLite's error.
    """
    with open_ledger(ledger_path, network_ok, create=False, quiet=quiet) as led, output_file(output) as out:
        rows = led.export_jsonl(out)
    if output is not None and not quiet:
        click.echo(f"exported {rows} row(s) to {for_people(str(output))}", err=True)


@ledger.command()
@ledger_options
@json_option
@quiet_option
def info(ledger_path: Path | str | None, network_ok: bool, as_json: bool, quiet: bool) -> None:
    """Where the ledger is, its schema version and journal mode, and what it holds."""
    with open_ledger(ledger_path, network_ok, create=False, quiet=quiet) as led:
        totals = led.bag_totals()
        failing = totals.failing
        if as_json:
            bags, files, empties = led.structure_counts()
            emit_json({"schema_version": led.schema_version, "journal_mode": led.journal_mode, "bags": totals.bags,
                       "audits": totals.audits, "failing": failing, "remembered_tag_files": files,
                       "remembered_empty_folders": empties, "remembered_bags": bags},
                      path=led.path, warnings=led.warnings, problems=[])
            return
        if quiet:
            click.echo(f"ledger {for_people(str(led.path))}: {totals.bags} bag(s), "
                       f"{totals.audits} audit(s), {failing} failing now")
            return
        click.echo(f"ledger: {for_people(str(led.path))}")
        if led.kind == "sqlite":
            click.echo(f"schema version: {led.schema_version}; journal mode: {led.journal_mode}")
        else:
            click.echo(f"schema version: {led.schema_version}; backend: PostgreSQL")
        click.echo(f"bags: {totals.bags}; audits: {totals.audits}; "
                   f"failing now: {failing}")
        bags, files, empties = led.structure_counts()
        click.echo(f"remembered from first audits: {files} tag file(s) and {empties} empty folder(s) of {bags} bag(s)")


@ledger.command()
@click.argument("src", type=LEDGER, metavar="SRC")
@click.argument("dest", type=LEDGER, metavar="DEST")
@json_option
@quiet_option
def migrate(src: Path | str, dest: Path | str, as_json: bool, quiet: bool) -> None:
    """Copy the whole ledger SRC into DEST (SQLite file <-> postgresql://...), verified.

    Every row keeps its id; then each table's row count and SHA-256 digest must match on both
    sides (exit 7 otherwise). Safe to run again: rows already copied are skipped. DEST must be
    new, empty, or an earlier copy of SRC; new records in DEST get fresh ids.
    """
    from preserve.audit.ledger_migrate import migrate_ledger

    if isinstance(src, Path) and not os.path.lexists(src):
        # said here: the ledger's own message points at --ledger, which migrate does not take
        raise LedgerError(path=str(src), reason="no ledger here; give as SRC the path of an existing ledger file "
                                                "or a postgresql:// URL")
    with open_ledger(src, False, create=False, quiet=quiet or as_json) as source, \
            open_ledger(dest, False, quiet=quiet or as_json) as target:
        result = migrate_ledger(source, target)
        warnings = [*source.warnings, *target.warnings]
    if as_json:
        emit_json({"source": result.source, "dest": result.dest, "copied": result.copied,
                   "tables": [{"table": t.table, "rows": t.rows, "copied": t.copied, "sha256": t.digest}
                              for t in result.tables]},
                  path=result.dest, warnings=warnings, problems=[])
        return
    for t in [] if quiet else result.tables:  # the table -q leaves out
        click.echo(f"{t.table}: {t.rows} row(s), {t.copied} copied, sha256 {t.digest[:16]}")
    click.echo(f"migrated {for_people(result.source)} to {for_people(result.dest)}: {result.copied} row(s) copied; "
               "row counts and digests of every table match")


@ledger.command()
@ledger_options
@json_option
@quiet_option
def flush(ledger_path: Path | str | None, network_ok: bool, as_json: bool, quiet: bool) -> None:
    """Write the audit outcomes kept on local disk while a PostgreSQL ledger's server was away.

    Any command that opens the ledger writes them first; this does only that. Exit 7 when the
    server still cannot be reached (the outcomes stay queued).
    """
    with open_ledger(ledger_path, network_ok, create=False, quiet=True) as led:
        written = led.flushed + led.flush_queue()
        # opening the ledger already wrote the queue and noted it as a warning: the line below says it once
        warnings = led.warnings[:-1] if led.flushed else list(led.warnings)
    if as_json:
        emit_json({"ledger": led.name, "backend": led.kind, "written": written}, path=led.path, warnings=warnings,
                  problems=[])
        return
    for w in [] if quiet else warnings:
        warn(w)
    if led.queue is None:
        click.echo(f"{for_people(led.name)}: a SQLite ledger is written directly; no audit outcomes wait on local disk")
        return
    click.echo(f"{for_people(led.name)}: wrote {written} queued audit outcome(s); none wait on local disk now")

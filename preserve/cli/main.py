"""Entry point: the click group, and the one place that turns errors into exit codes."""

from __future__ import annotations

import importlib
import re
import signal
import sys
import traceback
from typing import Any

import click

from preserve import __version__
from preserve.errors import EXIT_CODES, EXIT_INTERNAL, EXIT_INTERRUPTED, PreserveError
from preserve.textsafe import for_people


class LazyGroup(click.Group):
    """A click group that imports a command's module only when the command is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The list comes from the table: importing every command module for one line each would
        # load numpy, lxml and boto3 just to print --help.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, _shortened(COMMANDS[n][1], limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shortened(text: str, limit: int) -> str:
    """``text`` cut at a word to fit ``limit`` characters with "...", as click shortens a command's help."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 3, 0)].rsplit(" ", 1)[0].rstrip(" ,;:")
    return f"{cut}..."


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="preserve")
def cli() -> None:
    """preserve: BagIt preservation packages for rights-cleared audio, kept safe for decades."""


def _exit_code_help() -> str:
    """The exit codes for --help, from the one table in preserve.errors (so none is left out)."""
    short = (re.split(r"[:;(]", text, maxsplit=1)[0].strip() for text in EXIT_CODES.values())
    return "Exit codes: " + ", ".join(f"{code} {text}" for code, text in zip(EXIT_CODES, short, strict=True)) + "."


cli.help = f"{cli.help}\n\n{_exit_code_help()}"


#: Every command: where it lives, and its short help (the first line of its docstring; a test
#: keeps them equal). Modules are imported only when their command runs, so `preserve --help`
#: and `preserve bag` do not pay for numpy, lxml, boto3 or dask.
COMMANDS: dict[str, tuple[str, str]] = {
    "bag": ("preserve.cli.bag_cmd:bag",
           "Copy SOURCE into a new BagIt bag at DEST."),
    "validate": ("preserve.cli.validate_cmd:validate",
                "Validate BAG (BagIt 0.93 to 1.0): every manifest, tag manifest and Payload-Oxum."),
    "check": ("preserve.cli.check_cmd:check",
             "Check COLLECTION (a folder with audio and metadata.csv, or a DDEX ERN message) without writing anything."),
    "package": ("preserve.cli.package_cmd:package",
               "Check COLLECTION, then package it as a BagIt bag at DEST with PREMIS/METS sidecars."),
    "show": ("preserve.cli.show_cmd:show",
            "Summarize BAG from its METS: releases, tracks, durations, rights, formats and events."),
    "schemas": ("preserve.cli.schemas_cmd:schemas",
               "The official XML schemas that `preserve validate` checks sidecars against."),
    "unpack": ("preserve.cli.unpack_cmd:unpack",
              "Extract the serialized bag ARCHIVE (.tar, .tar.gz, .zip) into the new folder DEST."),
    "audit": ("preserve.cli.audit_cmd:audit",
             "Re-verify the bags at PATH..."),
    "report": ("preserve.cli.report_cmd:report",
              "Report from the ledger: bags never audited, overdue, failures still open, audit history."),
    "events": ("preserve.cli.events_cmd:events",
              "Export BAG's history as one PREMIS 3 document."),
    "ledger": ("preserve.cli.ledger_cmd:ledger",
              "Back up, export and inspect the audit ledger (decades of fixity evidence)."),
    "replicate": ("preserve.cli.replicate_cmd:replicate",
                 "Copy BAG (or an OCFL store or object) to each TARGET and verify every object there."),
    "restore": ("preserve.cli.restore_cmd:restore",
               "Restore the bag copy (or store object) at SOURCE into a new directory DEST."),
    "init": ("preserve.cli.init_cmd:init",
             "Write a first metadata sheet and collection.toml for the audio in COLLECTION."),
    "template": ("preserve.cli.template_cmd:template",
                 "Print the metadata sheet template: every column and one example row, as CSV."),
    "repair": ("preserve.cli.repair_cmd:repair",
              "Repair BAG's missing or altered payload and tag files from a replica."),
    "store": ("preserve.cli.store_cmd:store", "A versioned OCFL 1.1 store of bags: ingest, update, export, validate."),
}


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map :class:`PreserveError` to its exit code, anything else to 70.

    Run as the program (``argv`` None), SIGINT and SIGTERM are ignored from the moment the exit
    code is known: one arriving while the interpreter shuts down would otherwise print a
    traceback from an exit handler, or kill the process by the signal although its work was
    complete and reported.
    """
    signal.signal(signal.SIGTERM, _sigterm)
    if argv is None:  # the console script's early handler (preserve.cli.entry) hands over to ours
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = _run(argv)
    except KeyboardInterrupt:  # a second signal while the first, or an error, was being reported
        code = EXIT_INTERRUPTED
    finally:
        if argv is None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    try:
        # standalone_mode=False returns the code of a click Exit instead of raising it
        rc = cli.main(args=argv, prog_name="preserve", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except PreserveError as exc:
        # messages name files and quote bag-info values: nothing in them may drive the terminal
        click.echo(f"preserve: error: {for_people(str(exc), lines=True)}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("preserve: interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception:
        click.echo("preserve: internal error (a bug; please report it with this trace):", err=True)
        traceback.print_exc()
        return EXIT_INTERNAL
    return rc if isinstance(rc, int) else 0

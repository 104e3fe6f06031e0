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


class LazyGroup(click.Group):
    """A click group that imports a command's module only when the command is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="preserve")
def cli() -> None:
    """preserve: BagIt preservation packages for rights-cleared audio, kept safe for decades."""


def _exit_code_help() -> str:
    """The exit codes for --help, from the one table in preserve.errors (so none is left out)."""
    short = (re.split(r"[:;(]", text, maxsplit=1)[0].strip() for text in EXIT_CODES.values())
    return "Exit codes: " + ", ".join(f"{code} {text}" for code, text in zip(EXIT_CODES, short, strict=True)) + "."


cli.help = f"{cli.help}\n\n{_exit_code_help()}"


#: Every command: its name and where it lives. Modules are imported only when their command runs
#: (or when help lists them), so `preserve bag` does not pay for numpy, boto3 or dask.
COMMANDS: dict[str, str] = {
    "bag": "preserve.cli.bag_cmd:bag",
    "validate": "preserve.cli.validate_cmd:validate",
    "check": "preserve.cli.check_cmd:check",
    "package": "preserve.cli.package_cmd:package",
    "show": "preserve.cli.show_cmd:show",
    "schemas": "preserve.cli.schemas_cmd:schemas",
    "unpack": "preserve.cli.unpack_cmd:unpack",
    "audit": "preserve.cli.audit_cmd:audit",
    "report": "preserve.cli.report_cmd:report",
    "events": "preserve.cli.events_cmd:events",
    "ledger": "preserve.cli.ledger_cmd:ledger",
    "replicate": "preserve.cli.replicate_cmd:replicate",
    "restore": "preserve.cli.restore_cmd:restore",
    "repair": "preserve.cli.repair_cmd:repair",
}


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map :class:`PreserveError` to its exit code, anything else to 70."""
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        # standalone_mode=False returns the code of a click Exit instead of raising it
        rc = cli.main(args=argv, prog_name="preserve", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PreserveError as exc:
        click.echo(f"preserve: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("preserve: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(0)
    except Exception:
        click.echo("preserve: internal error (a bug; please report it with this trace):", err=True)
        traceback.print_exc()
        sys.exit(EXIT_INTERNAL)
    sys.exit(rc if isinstance(rc, int) else 0)

"""Entry point: the click group, and the one place that turns errors into exit codes."""

from __future__ import annotations

import signal
import sys
import traceback
from typing import Any

import click

from preserve import __version__
from preserve.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, PreserveError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="preserve")
def cli() -> None:
    """preserve: BagIt preservation packages for rights-cleared audio, kept safe for decades.

    Exit codes: 0 ok, 1 problems found, 2 usage error, 3 bad input, 4 destination exists,
    5 local storage failed, 6 remote storage failed, 7 ledger error, 8 schemas missing or
    tampered, 70 internal error, 130 interrupted.
    """


def _register() -> None:
    # One module per command. Each module defines a click command named like itself.
    from preserve.cli import bag_cmd, validate_cmd

    cli.add_command(bag_cmd.bag)
    cli.add_command(validate_cmd.validate)
    from preserve.cli import check_cmd, package_cmd

    cli.add_command(check_cmd.check)
    cli.add_command(package_cmd.package)
    from preserve.cli import schemas_cmd, show_cmd

    cli.add_command(show_cmd.show)
    cli.add_command(schemas_cmd.schemas)
    from preserve.cli import repair_cmd, replicate_cmd, restore_cmd

    cli.add_command(replicate_cmd.replicate)
    cli.add_command(restore_cmd.restore)
    cli.add_command(repair_cmd.repair)
    from preserve.cli import audit_cmd, events_cmd, ledger_cmd, report_cmd

    cli.add_command(audit_cmd.audit)
    cli.add_command(ledger_cmd.ledger)
    cli.add_command(events_cmd.events)
    cli.add_command(report_cmd.report)
    from preserve.cli import unpack_cmd

    cli.add_command(unpack_cmd.unpack)


_register()


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

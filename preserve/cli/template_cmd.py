"""``preserve template``: the metadata sheet template, with every column and one example row."""

from __future__ import annotations

from importlib import resources

import click

from preserve.cli.common import Command

#: The template shipped with the package (preserve/templates/).
TEMPLATE = "metadata-template.csv"


@click.command(cls=Command)
def template() -> None:
    """Print the metadata sheet template: every column and one example row, as CSV.

    Save it as metadata.csv in the collection folder and fill one row per audio file, or let
    `preserve init COLLECTION` write a sheet with a row for each audio file already found.
    The columns are described in the documentation (docs/intake.md, 'The sheet').
    """
    text = resources.files("preserve").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    click.echo(text, nl=not text.endswith("\n"))

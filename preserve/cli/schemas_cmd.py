"""``preserve schemas install``: fetch the official METS/PREMIS/MODS schemas, pinned by SHA-256."""

from __future__ import annotations

from pathlib import Path

import click

from preserve.cli.common import Group, emit_json, json_option, quiet_option
from preserve.sidecars.schemas import ENV_VAR, default_dir, install_schemas, pins


@click.group(cls=Group)
def schemas() -> None:
    """The official XML schemas that `preserve validate` checks sidecars against."""


@schemas.command()
@click.option("--from", "source", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Copy the schemas from this folder instead of downloading them.")
@click.option("--dest", type=click.Path(path_type=Path), help="Install here instead of the user data folder.")
@click.option("--base-url", hidden=True, help="Testing only: fetch <BASE-URL>/<file name> instead of the official addresses.")
@json_option
@quiet_option
def install(source: Path | None, dest: Path | None, base_url: str | None, as_json: bool, quiet: bool) -> None:
    """Install the METS 1.12.1, PREMIS 3.0, MODS 3.8, XLink and xml.xsd schemas.

    Downloads them from the Library of Congress and W3C (or copies them from --from DIR), refuses
    any file whose SHA-256 differs from the pinned one, and writes them with an XML catalog into
    the user data folder. `preserve validate` then uses them (or set PRESERVE_SCHEMAS to a folder).
    A previous install is replaced in one step: stopped at any moment, the folder holds the old
    set or the new one, complete. A full disk exits 5 and leaves the previous install as it was.
    """
    folder = install_schemas(dest, source=source, base_url=base_url)
    elsewhere = dest is not None and dest != default_dir()
    hint = f"preserve validate looks in {default_dir()}; set {ENV_VAR}={folder} to use this folder"
    if as_json:
        emit_json({"schemas": len(pins()), "catalog": str(folder / "catalog.xml"), "default": str(default_dir())},
                  path=folder, warnings=[hint] if elsewhere else [], problems=[])
        return
    click.echo(f"installed {len(pins())} schemas in {folder} (SHA-256 verified; catalog: {folder / 'catalog.xml'})")
    if elsewhere and not quiet:
        click.echo(f"preserve validate looks in {default_dir()}; set {ENV_VAR}={folder} to use this folder")

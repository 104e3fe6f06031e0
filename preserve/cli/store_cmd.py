"""``preserve store ...``: the versioned OCFL 1.1 store of bags (see docs/store.md)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

import click

from preserve.cli.common import (
    Group,
    echo_err,
    emit_json,
    for_people,
    json_option,
    next_steps,
    quiet_option,
    warn,
)
from preserve.errors import EXIT_PROBLEMS, UsageError

# one option, one text: the commands that share an option explain it the same way
_OPERATOR = click.option("--operator", help="Who makes this version, recorded in the inventory and PREMIS "
                                            "(required; ingest defaults to your login).")
_ADDRESS = click.option("--address", metavar="URI",
                        help="The operator's address as a URI, e.g. mailto:curator@example.org (OCFL recommends one).")
_REASON = click.option("--reason", help="Why this version is made (required; recorded in the inventory and PREMIS).")
_AUTHORITY = click.option("--authority", help="Who decided or ordered it (required), "
                                              "e.g. 'Collections Committee, minute 2026-14'.")


def _operator(operator: str | None) -> str:
    return operator or getpass.getuser()


def _warnings(quiet: bool, as_json: bool) -> tuple[list[str], Callable[[str], None]]:
    """The warnings a run gives, kept for --json, and the callback that shows them to people (never with -q)."""
    kept: list[str] = []

    def on_warning(text: str) -> None:
        kept.append(text)
        if not quiet and not as_json:
            warn(text)

    return kept, on_warning


@click.group(cls=Group)
def store() -> None:
    """A versioned OCFL 1.1 store of bags: ingest, update, export, validate."""


@store.command("init")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice(["0004-hashed-n-tuple-storage-layout", "0002-flat-direct-storage-layout"]),
              default="0004-hashed-n-tuple-storage-layout", show_default=True,
              help="Where objects go: hashed (sha256 of the id, 3 tuples of 3) or flat (the id as the folder name).")
@json_option
@quiet_option
def init(root: Path, layout: str, as_json: bool, quiet: bool) -> None:
    """Create an OCFL 1.1 storage root at ROOT (a new or empty folder)."""
    from preserve.ocfl.layout import init_root

    made = init_root(root, layout=layout)
    if as_json:
        emit_json({"layout": made.layout, "ocfl_version": "1.1"}, path=made.path)
        return
    click.echo(f"{for_people(str(made.path))}: OCFL 1.1 storage root ({made.layout})")


@store.command("ingest")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("bag", type=click.Path(path_type=Path))
@click.option("--id", "object_id", help="The object id (default: from the bag's External-Identifier, else a new urn:uuid).")
@click.option("--link", is_flag=True, help="Hard-link the bag's files instead of copying (same file system only).")
@click.option("--message", help="The version message (default: 'ingest of bag NAME').")
@_OPERATOR
@_ADDRESS
@json_option
@quiet_option
def ingest(root: Path, bag: Path, object_id: str | None, link: bool, message: str | None, operator: str | None,
           address: str | None, as_json: bool, quiet: bool) -> None:
    """Ingest BAG (a bag folder or .tar/.tar.gz/.zip) as a new object in the store at ROOT."""
    from preserve.ocfl.ingest import ingest as run

    result = run(root, bag, object_id=object_id, link=link, user=_operator(operator), address=address, message=message)
    if as_json:
        emit_json({"object": result.object_id, "object_path": str(result.object_path), "version": result.version,
                   "bag": str(bag), "files": result.files, "bytes": result.bytes, "stored": result.stored,
                   "linked": result.linked}, path=root, warnings=result.warnings)
        return
    for text in [] if quiet else result.warnings:
        warn(text)
    how = "linked" if result.linked else "copied"
    click.echo(f"{for_people(result.object_id)}: {result.version} ingested ({result.files} files, {result.bytes} bytes, "
               f"{result.stored} stored, {how}) at {for_people(str(result.object_path))}")


@store.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("ids", nargs=-1)
@click.option("--fast", is_flag=True, help="Structure and inventories only; no content digest is computed.")
@json_option
@quiet_option
def validate(path: Path, ids: tuple[str, ...], fast: bool, as_json: bool, quiet: bool) -> None:
    """Validate the OCFL objects of the store at PATH (all, or the IDs given), or the object folder PATH.

    Exit 0 when every one is valid (warnings allowed), 1 when any has an error.
    """
    from preserve.ocfl.layout import ROOT_DECLARATION, find_objects, open_root
    from preserve.ocfl.read import object_folder
    from preserve.ocfl.validate import validate_object, validate_root

    reports = []
    if (path / ROOT_DECLARATION).exists():
        root = open_root(path)
        if not ids:
            reports.append(validate_root(root.path))
        folders = [object_folder(root, i) for i in ids] if ids else find_objects(root)
    elif ids:
        raise UsageError(f"{path}: IDs can be given only with a storage root, and this is not one")
    else:
        folders = [path]
    reports += [validate_object(f, fast=fast) for f in folders]
    valid = all(r.ok for r in reports)
    code = 0 if valid else EXIT_PROBLEMS
    if as_json:
        found = [{"path": r.path, "id": r.object_id, "severity": f.severity, "code": f.code, "message": f.message}
                 for r in reports for f in r.findings]
        emit_json({"valid": valid, "mode": "fast" if fast else "full", "objects": [r.to_dict() for r in reports]},
                  path=path, exit_code=code, warnings=[f for f in found if f["severity"] == "warning"],
                  problems=[f for f in found if f["severity"] == "error"])
    else:
        for r in reports:
            for f in r.findings:
                if f.severity == "warning" and quiet:
                    continue
                style = "red" if f.severity == "error" else "yellow"
                click.echo(click.style(f"{f.severity}: ", fg=style) + f"{for_people(r.path)}: {for_people(str(f))}",
                           err=f.severity == "warning")
            if not quiet:
                # a folder without an inventory has neither id nor head to name
                what = ("storage root" if r.mode == "root" else f"object {for_people(r.object_id or '(no id)')}"
                        + (f" (head {for_people(r.head)})" if r.head else ""))
                click.echo(f"{for_people(r.path)}: {what} {'valid' if r.ok else 'INVALID'} ({r.files} files, "
                           f"{len(r.errors)} error(s), {len(r.warnings)} warning(s), {r.mode} check)")
        if quiet:  # the verdict of the whole run in one line
            objects = [r for r in reports if r.mode != "root"]
            bad = sum(not r.ok for r in reports)
            click.echo(f"{for_people(str(path))}: {len(objects)} object(s) checked, "
                       f"{'all valid' if valid else f'{bad} INVALID'} ({'fast' if fast else 'full'} check)")
    if not valid:
        raise click.exceptions.Exit(EXIT_PROBLEMS)


@store.command("export")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("object_id", metavar="ID")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--version", "version", metavar="vN", help="The version to export (default: the newest).")
@click.option("--serialize", type=click.Choice(["tar", "tar.gz", "zip"]),
              help="Write the bag as one file; DEST gets the ending (.tar, .tar.gz, .zip) if it lacks it.")
@json_option
@quiet_option
def export(root: Path, object_id: str, dest: Path, version: str | None, serialize: str | None, as_json: bool,
           quiet: bool) -> None:
    """Write version vN of object ID as a bag at DEST (byte-identical to that version's files)."""
    from preserve.ocfl.read import export as run

    out = run(root, object_id, dest, version=version, serialize=serialize)
    if as_json:
        emit_json({"root": str(root), "object": object_id, "version": version or "head", "serialization": serialize},
                  path=out)
        return
    click.echo(f"{for_people(str(out))}: {for_people(object_id)} {version or 'head'} exported")
    if not quiet:
        next_steps(out, show=(out / "metadata" / "mets.xml").is_file())


@store.command("log")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("object_id", metavar="ID")
@json_option
@quiet_option
def log(root: Path, object_id: str, as_json: bool, quiet: bool) -> None:
    """The versions of object ID: date, user, message and the PREMIS events each records."""
    from preserve.ocfl.read import log as run

    entries = run(root, object_id)
    if as_json:
        emit_json({"object": object_id, "versions": [e.to_dict() for e in entries]}, path=root)
        return
    if quiet:
        last = entries[-1]
        click.echo(for_people(f"{object_id}: {len(entries)} version(s), head {last.version} of {last.created} "
                              f"({last.files} files)"))
        return
    for e in entries:
        who = f"{e.user} <{e.address}>" if e.address else e.user
        click.echo(for_people(f"{e.version}  {e.created}  {who}  {e.files} files  {e.message}"))
        for ev in e.events:
            click.echo(for_people(f"    {ev['date']}  {ev['type']}  {ev['detail']}"))


@store.command("diff")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("object_id", metavar="ID")
@click.argument("old", metavar="vN")
@click.argument("new", metavar="vM")
@json_option
@quiet_option
def diff(root: Path, object_id: str, old: str, new: str, as_json: bool, quiet: bool) -> None:
    """Files added, removed and changed between versions vN and vM of object ID."""
    from preserve.ocfl.read import diff as run

    result = run(root, object_id, old, new)
    if as_json:
        emit_json({"object": object_id, "from": old, "to": new, **result.to_dict()}, path=root)
        return
    counts = f"{len(result.added)} added, {len(result.removed)} removed, {len(result.changed)} changed"
    if quiet:  # the counts are the verdict; the list is the table -q leaves out
        click.echo(f"{for_people(object_id)} {old}..{new}: {counts}")
        return
    for mark, paths in (("+", result.added), ("-", result.removed), ("M", result.changed)):
        for p in paths:
            click.echo(f"{mark} {for_people(p)}")
    echo_err(counts)


@store.command("update")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("object_id", metavar="ID")
@click.option("--from", "source", type=click.Path(path_type=Path), metavar="COLLECTION|BAG",
              help="The new state: a collection (checked and packaged, rights gate included) or a bag; files whose "
                   "content the object already holds are not stored again.")
@click.option("--remove", "remove", multiple=True, metavar="PATH",
              help="Remove the payload file PATH (data/... or relative to data/); repeatable.")
@click.option("--sheet", type=click.Path(path_type=Path), metavar="FILE",
              help="A metadata-only correction from this sheet: sidecars written again from the stored technical "
                   "metadata, no audio read or copied (rights gate included).")
@click.option("--config", type=click.Path(path_type=Path), metavar="collection.toml",
              help="A metadata-only correction from this collection.toml (collection fields, rights defaults, "
                   "bag-info); with or without --sheet.")
@_REASON
@_OPERATOR
@_ADDRESS
@json_option
@quiet_option
def update(root: Path, object_id: str, source: Path | None, remove: tuple[str, ...], sheet: Path | None,
           config: Path | None, reason: str | None, operator: str | None, address: str | None, as_json: bool,
           quiet: bool) -> None:
    """Make a new version of object ID: a new bag or collection, files removed, or corrected metadata."""
    from preserve.ocfl.update import update as run

    warnings, on_warning = _warnings(quiet, as_json)
    if sheet is not None or config is not None:
        if source is not None or remove:
            raise UsageError("--sheet/--config make a metadata-only version; give --from or --remove in a "
                             "separate update")
        from preserve.ocfl.correct import correct

        result = correct(root, object_id, sheet=sheet, config=config, reason=reason, operator=operator,
                         address=address, on_warning=on_warning)
    else:
        result = run(root, object_id, source=source, remove=remove, reason=reason, operator=operator, address=address,
                     on_warning=on_warning)
    if as_json:
        emit_json({"object": object_id, "version": result.version, "added": result.added, "changed": result.changed,
                   "removed": result.removed, "stored": result.stored, "stored_bytes": result.stored_bytes},
                  path=root, warnings=warnings)
        return
    click.echo(f"{for_people(object_id)}: {result.version} made ({len(result.added)} added, {len(result.changed)} "
               f"changed, {len(result.removed)} removed; {result.stored} file(s), {result.stored_bytes} payload "
               "bytes stored)")


@store.command("deaccession")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("object_id", metavar="ID")
@_REASON
@_AUTHORITY
@_OPERATOR
@_ADDRESS
@json_option
@quiet_option
def deaccession(root: Path, object_id: str, reason: str | None, authority: str | None, operator: str | None,
                address: str | None, as_json: bool, quiet: bool) -> None:
    """Withdraw object ID: a new version without payload, with tombstone metadata; earlier versions stay."""
    from preserve.ocfl.retire import deaccession as run

    result = run(root, object_id, reason=reason, authority=authority, operator=operator, address=address)
    if as_json:
        emit_json({"object": object_id, "version": result.version, "withdrawn": result.paths}, path=root)
        return
    click.echo(f"{for_people(object_id)}: {result.version} made without payload ({len(result.paths)} file(s) "
               "withdrawn; earlier versions keep them)")


@store.command("purge")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("object_id", metavar="ID")
@click.argument("path", required=False)
@_REASON
@_AUTHORITY
@_OPERATOR
@click.option("--confirm", is_flag=True, help="Required: purge deletes content from every version, for good.")
@json_option
@quiet_option
def purge(root: Path, object_id: str, path: str | None, reason: str | None, authority: str | None,
          operator: str | None, confirm: bool, as_json: bool, quiet: bool) -> None:
    """Delete PATH (or all payload) of object ID from every version: the legal takedown. Cannot be undone."""
    from preserve.ocfl.retire import purge as run

    result = run(root, object_id, path, reason=reason, authority=authority, operator=operator, confirm=confirm)
    if as_json:
        emit_json({"object": object_id, "purged": result.paths, "content_files_deleted": result.removed_files,
                   "record": "extensions/preserve-store/purges.json"}, path=root)
        return
    click.echo(f"{for_people(object_id)}: purged {len(result.paths)} path(s) from every version "
               f"({result.removed_files} content file(s) deleted); the record is in the object's "
               "extensions/preserve-store/purges.json")


@store.command("replicate")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("target")
@json_option
@quiet_option
def replicate(root: Path, target: str, as_json: bool, quiet: bool) -> None:
    """Copy the store at ROOT to TARGET (s3://bucket/prefix or a folder): only versions it lacks, inventories last."""
    from preserve.ocfl.replicate import replicate_store

    result = replicate_store(root, target)
    problems = [str(e) for e in result.errors]
    code = 0 if result.complete else result.errors[0].exit_code
    if as_json:
        emit_json({"target": result.target, "objects": result.objects, "versions_sent": result.versions_sent,
                   "files_sent": result.files_sent, "bytes_sent": result.bytes_sent}, path=root, exit_code=code,
                  problems=problems)
    else:
        for text in problems:
            echo_err(f"preserve: error: {text}")
        click.echo(f"{for_people(result.target)}: {result.objects} object(s) checked, {len(result.versions_sent)} "
                   f"version(s) sent ({result.files_sent} files, {result.bytes_sent} bytes)")
    if code:
        raise click.exceptions.Exit(code)

"""``preserve replicate BAG TARGET...``: verified, resumable copies to S3-compatible storage or a disk.

Also holds the S3 options every command taking an ``s3://`` URL shares (replicate, audit,
restore, repair), so they are spelled and documented the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from preserve.cli.common import (
    DEFAULT_PROGRESS_INTERVAL,
    Command,
    ProgressBar,
    echo_err,
    emit_json,
    for_people,
    json_option,
    parse_size,
    progress_interval_option,
    quiet_option,
    warn,
    workers_option,
)
from preserve.cli.ledger_cmd import LEDGER
from preserve.errors import EXIT_PROBLEMS, PreserveError
from preserve.fixity import RateLimiter
from preserve.replication.config import ReplicationConfig, TargetSpec, load_config
from preserve.stores import Store, is_s3_url, open_store
from preserve.stores.base import PutOptions, check_endpoint_url

#: Objects (and parts of one large file) sent in parallel by default. Chosen from the figures of
#: benchmarks/bench_replicate.py (benchmarks/README.md, 2026-12-03, two runs: 2,000 files of
#: 64 KiB and one of 256 MiB, 20 ms per request, with and without server checksums) by the
#: script's rule, the smallest value within 5% of the fastest on average, else the fastest on
#: average: mean time relative to the fastest of each case, over both runs, 4: 1.31, 8: 1.15,
#: 16: 1.12. At most this many files below the multipart threshold, or parts, are held in memory.
DEFAULT_WORKERS = 16


def _refuse_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError("--profile names a BagIt profile; for the AWS profile use --aws-profile NAME", ctx=ctx)


def s3_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The S3 options (and --config) shared by every command that accepts an s3:// target.

    Their help is one line each (--help fits a screen); docs/replication.md says more.
    """
    options = [
        click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                     help="preserve.toml with the targets (default: ./preserve.toml)."),
        click.option("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, Ceph RGW...); default: AWS."),
        click.option("--region", "s3_region", metavar="NAME", help="S3 region (e.g. eu-central-1)."),
        click.option("--aws-profile", "aws_profile", metavar="NAME",
                     help="AWS config profile; credentials only ever come from the AWS chain."),
        # --profile always names a BagIt profile; here it was once the AWS one: say which to use
        click.option("--profile", "old_aws_profile", hidden=True, expose_value=False, callback=_refuse_profile),
        click.option("--path-style", is_flag=True, default=None,
                     help="Path-style addressing, which most non-AWS stores need."),
        click.option("--checksum-when", type=click.Choice(["supported", "required"]), default=None, metavar="WHEN",
                     help="supported, or required for stores that reject boto3's default CRC32."),
        click.option("--retries", type=click.IntRange(1, 20), default=5, show_default=True, metavar="N",
                     help="Attempts per request."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def upload_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options for commands that write to a store."""
    options = [
        click.option("--storage-class", metavar="CLASS",
                     help="S3 storage class of payload objects, e.g. GLACIER (not of tag files)."),
        click.option("--retain-until", metavar="DATE", help="Object lock: retain every object until DATE (ISO 8601)."),
        click.option("--lock-mode", type=click.Choice(["compliance", "governance"]), metavar="MODE",
                     help="Object lock mode: compliance or governance (with --retain-until)."),
        click.option("--multipart-threshold", default="64MiB", show_default=True, metavar="SIZE",
                     help="Files larger than this are sent in parts."),
        click.option("--part-size", default="16MiB", show_default=True, metavar="SIZE",
                     help="Multipart part size (5 MiB at least)."),
        click.option("--bandwidth", metavar="RATE", help="Cap the transfer rate, e.g. 20M (bytes per second)."),
        workers_option("Objects (and parts) sent in parallel.", default=DEFAULT_WORKERS, show_default=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def resolve_target(text: str, config: ReplicationConfig, kw: dict[str, Any]) -> tuple[Store, TargetSpec]:
    """Open the store for a target name/URL/path; command-line options win over preserve.toml."""
    spec = config.resolve(text)
    if is_s3_url(spec.url):
        from preserve.stores.s3 import S3Settings

        path_style = kw.get("path_style")
        settings = S3Settings(
            endpoint_url=kw.get("endpoint_url") or spec.endpoint_url,
            region=kw.get("s3_region") or spec.s3_region,
            profile=kw.get("aws_profile") or spec.profile,
            path_style=bool(path_style if path_style is not None else spec.path_style),
            checksum_when=kw.get("checksum_when") or spec.checksum_when or "supported",
            max_attempts=kw.get("retries") or 5,
            # objects in parallel, each large one with as many parts in parallel
            max_connections=max(10, 2 * (kw.get("workers") or DEFAULT_WORKERS) + 2),
        )
        return open_store(spec.url, settings), spec
    return open_store(spec.url), spec


def store_opener(config: ReplicationConfig, kw: dict[str, Any]) -> Callable[[str], Store]:
    """Open (once each) the stores at a replica's location and the folders above it, with the
    command's S3 options: a store object's replica is found by its storage root above it."""
    opened: dict[str, Store] = {}

    def open_at(text: str) -> Store:
        name, sep, rest = text.partition("/")
        if sep and "://" not in text and name in config.targets:
            # TARGET-NAME/<path>: the folder below the configured target, with its settings
            text = f"{config.targets[name].url.rstrip('/')}/{rest}"
        if text not in opened:
            opened[text] = resolve_target(text, config, kw)[0]
        return opened[text]

    return open_at


def put_options(kw: dict[str, Any], spec: TargetSpec) -> PutOptions:
    """Upload settings from the command line (and the target's configured storage class)."""
    if kw.get("lock_mode") and not kw.get("retain_until"):
        raise click.BadParameter("--lock-mode needs --retain-until DATE", param_hint="--lock-mode")
    if kw.get("retain_until") and not kw.get("lock_mode"):
        raise click.BadParameter("--retain-until needs --lock-mode compliance|governance", param_hint="--retain-until")
    if kw.get("retain_until"):
        try:
            dt.datetime.fromisoformat(kw["retain_until"])
        except ValueError:
            raise click.BadParameter(f"{kw['retain_until']!r} is not a date such as 2035-12-31",
                                     param_hint="--retain-until") from None
    bandwidth = kw.get("bandwidth")
    return PutOptions(
        storage_class=kw.get("storage_class") or spec.storage_class,
        lock_mode=(kw.get("lock_mode") or "").upper() or None,
        retain_until=kw.get("retain_until"),
        multipart_threshold=parse_size(kw.get("multipart_threshold") or "64MiB"),
        part_size=parse_size(kw.get("part_size") or "16MiB"),
        limiter=RateLimiter(parse_size(bandwidth)) if bandwidth else None,
        part_workers=kw.get("workers") or DEFAULT_WORKERS,
    )


def human(n: float) -> str:
    """Bytes for people: 1.5 MB, 320 kB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _copy_phase(bar: ProgressBar, total_bytes: int, files: int) -> None:
    bar.phase("copy", total_bytes)


def open_ledger(path: Path | str | None, config: Path | None = None) -> Any:
    """The audit ledger (--ledger, else that of preserve.toml, the one --config names when
    given, else the default file)."""
    from preserve.cli.ledger_cmd import open_ledger as open_audit_ledger

    return open_audit_ledger(path, False, config=config)


def _same_device(bag: Path, store: Store) -> str | None:
    """A copy on the bag's own file system shares every failure of that disk: the warning that says so."""
    root = getattr(store, "root", None)
    if root is None:
        return None
    try:
        same = os.stat(root).st_dev == os.stat(bag).st_dev
    except OSError:
        return None
    if not same:
        return None
    return (f"{store.url} is on the same file system as {bag}; that copy does not protect against the disk failing "
            "(use a second disk or an S3-compatible store)")


def with_config(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Load preserve.toml once, from --config or the default places."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        kw["config"] = load_config(kw.pop("config_path", None))
        return fn(*args, **kw)
    return wrapper


@click.command(cls=Command)
@click.argument("bag", type=click.Path(path_type=Path, file_okay=False))
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--serialize", type=click.Choice(["tar"]),
              help="Send the bag as one tar object (BAG-NAME.tar), not one object per file.")
@click.option("--ledger", "ledger_path", type=LEDGER, metavar="PATH|URL",
              help="Audit ledger to record the replica in: a SQLite file or postgresql://... (default: the user data folder).")
@json_option
@quiet_option
@progress_interval_option
@click.option("--abort-incomplete", is_flag=True,
              help="Abort the bag's unfinished multipart uploads instead of resuming them.")
@click.option("--incomplete-max-age", type=click.IntRange(0), default=7, show_default=True, metavar="DAYS",
              help="Older unfinished uploads are aborted, not resumed.")
@upload_options
@s3_options
@with_config
def replicate(bag: Path, targets: tuple[str, ...], serialize: str | None, ledger_path: Path | str | None,
              as_json: bool, quiet: bool, progress_interval: float, abort_incomplete: bool, incomplete_max_age: int,
              config: ReplicationConfig, **kw: Any) -> None:
    """Copy BAG (or an OCFL store or object) to each TARGET and verify every object there.

    TARGET is s3://bucket/prefix, a directory, or a target name from preserve.toml. A rerun skips
    what is there and verified, and resumes interrupted uploads. More: docs/replication.md.
    \f
    TARGET is s3://bucket/prefix, a directory path, or a target name from preserve.toml. Objects
    go to PREFIX/BAG-NAME/<path in the bag> (or PREFIX/BAG-NAME.tar with --serialize tar), each
    with the manifest's SHA-256 as its S3 checksum and in its metadata; large files go in parts,
    each part with its own SHA-256 (part size and digests are kept in the ledger and in
    PREFIX/BAG-NAME.preserve-replica.json). A rerun skips objects already present and verified
    and resumes interrupted uploads: a run that fails keeps its unfinished uploads for the next
    one (see --abort-incomplete and --incomplete-max-age). Objects are verified by the store's
    SHA-256 checksum, or on a store that keeps none by their ETag (MD5), and read back only where
    neither can vouch. The replica is recorded in the ledger whatever the outcome,
    and counts as complete only when every object verified. A symbolic link anywhere in BAG is
    refused before anything is sent; in a directory TARGET a link is damage, never followed.

    An OCFL storage root, or one object's folder in it, is replicated by the store's own engine:
    each object's versions the replica lacks, verified the same way, then its replica record and
    its inventory last; one ledger record per object (docs/store.md).
    """
    from preserve.ocfl.replicate import is_store
    from preserve.replication.replicate import ReplicateOptions, replicate_bag

    for text in targets:  # before anything is sent anywhere
        spec = config.resolve(text)
        asked = [name for name, value in (("--lock-mode", kw.get("lock_mode")), ("--retain-until", kw.get("retain_until")),
                                          ("--storage-class", kw.get("storage_class") or spec.storage_class)) if value]
        if asked and not is_s3_url(spec.url):
            raise click.UsageError(f"{text}: {', '.join(asked)} apply to S3 targets only; a directory has no object "
                                   "lock or storage classes, so its copy could not be kept as asked")
        if kw.get("endpoint_url") and is_s3_url(spec.url):
            # told before the ledger is opened, so that a broken ledger cannot hide a usage error
            # (preserve.toml's endpoints are checked as the file is read)
            check_endpoint_url(kw["endpoint_url"], "--endpoint-url")
    if is_store(bag):
        if serialize:
            raise click.UsageError(f"{bag}: a store is replicated file by file (each version is sent once); "
                                   "--serialize applies to bags")
        _replicate_store(bag, targets, ledger_path=ledger_path, as_json=as_json, quiet=quiet,
                         progress_interval=progress_interval, abort_incomplete=abort_incomplete,
                         incomplete_max_age=incomplete_max_age, config=config, kw=kw)
        return
    ledger = open_ledger(ledger_path, config.path)
    failures: list[PreserveError] = []
    summaries = []
    replicated = 0
    warnings: list[str] = []
    try:
        for text in targets:
            store, spec = resolve_target(text, config, kw)
            put = put_options(kw, spec)
            put.upload_max_age = dt.timedelta(days=incomplete_max_age)
            bar = ProgressBar(0, for_people(f"replicating {bag.name} to {store.url}"), enabled=not quiet and not as_json,
                              interval=progress_interval)
            # the bag's size is known once replicate_bag has checked it is complete
            bar.phase("check", counted=False)
            put.progress = bar
            opts = ReplicateOptions(layout=serialize or "files", put=put, workers=kw.get("workers") or DEFAULT_WORKERS,
                                    target_name=spec.name, place=spec.location, origin=config.origin,
                                    abort_incomplete=abort_incomplete)
            try:
                with bar.shown():
                    result = replicate_bag(bag, store, opts, ledger=ledger,
                                           on_total=functools.partial(_copy_phase, bar))
            except PreserveError as exc:
                click.echo(f"preserve: error: {exc}", err=True)
                failures.append(exc)
                continue
            if as_json:  # it lists every object: a million-file bag's list is built only when asked for
                summaries.append(result.to_dict())
            replicated += 1
            same = _same_device(bag, store)
            if same:
                warnings.append(same)
                if not quiet and not as_json:
                    warn(same)
            if not as_json:
                click.echo(f"{result.location}: complete, {result.objects} objects ({human(result.bytes)}) verified; "
                           f"{result.uploaded} sent ({human(result.sent)}), {result.skipped} already there"
                           + (f", {result.resumed_parts} part(s) resumed" if result.resumed_parts else "")
                           + (f", {result.aborted_uploads} stale upload(s) aborted" if result.aborted_uploads else ""))
    finally:
        ledger.close()
    codes = {f.exit_code for f in failures}
    code = 0 if not failures else failures[0].exit_code if len(codes) == 1 else EXIT_PROBLEMS
    if as_json:
        emit_json({"targets": len(targets), "replicated": replicated, "replicas": summaries,
                   "errors": [str(f) for f in failures]},
                  path=bag, exit_code=code, warnings=warnings, problems=[str(f) for f in failures])
    if code:
        raise click.exceptions.Exit(code)


def _replicate_store(source: Path, targets: tuple[str, ...], *, ledger_path: Path | str | None, as_json: bool,
                     quiet: bool, progress_interval: float, abort_incomplete: bool, incomplete_max_age: int,
                     config: ReplicationConfig, kw: dict[str, Any]) -> None:
    """``preserve replicate ROOT|ROOT/OBJECT TARGET...``: the store's own replication (docs/store.md)."""
    from preserve.ocfl.replicate import replicate_store
    from preserve.replication.replicate import ReplicateOptions

    ledger = open_ledger(ledger_path, config.path)
    summaries: list[dict[str, Any]] = []
    problems: list[str] = []
    codes: set[int] = set()
    try:
        for text in targets:
            store, spec = resolve_target(text, config, kw)
            put = put_options(kw, spec)
            put.upload_max_age = dt.timedelta(days=incomplete_max_age)
            bar = ProgressBar(0, for_people(f"replicating {source.name} to {store.url}"),
                              enabled=not quiet and not as_json, interval=progress_interval)
            bar.phase("send", counted=False)  # what each object lacks is known only as it is reached
            put.progress = bar
            opts = ReplicateOptions(put=put, workers=kw.get("workers") or DEFAULT_WORKERS, target_name=spec.name,
                                    place=spec.location, origin=config.origin, abort_incomplete=abort_incomplete)
            try:
                with bar.shown():
                    result = replicate_store(source, store, opts, ledger=ledger)
            except PreserveError as exc:
                echo_err(f"preserve: error: {exc}")
                problems.append(str(exc))
                codes.add(exc.exit_code)
                continue
            summaries.append(result.to_dict())
            for failed in result.errors:
                echo_err(f"preserve: error: {failed}")
                problems.append(str(failed))
                codes.add(failed.exit_code)
            if not as_json:
                verdict = "complete" if result.complete else f"INCOMPLETE ({len(result.errors)} object(s) failed)"
                click.echo(f"{for_people(result.target)}: {verdict}, {result.objects} object(s): "
                           f"{len(result.versions_sent)} version(s) sent ({result.files_sent} files, "
                           f"{human(result.bytes_sent)}), {result.up_to_date} already up to date")
    finally:
        ledger.close()
    code = 0 if not codes else codes.pop() if len(codes) == 1 else EXIT_PROBLEMS
    if as_json:
        emit_json({"targets": len(targets), "store": True, "replicated": len(summaries), "replicas": summaries,
                   "errors": problems}, path=source, exit_code=code, problems=problems)
    if code:
        raise click.exceptions.Exit(code)


def audit_replicas(targets: tuple[str, ...], tier: str | None, *, ledger: Any, as_json: bool, quiet: bool,
                   workers: int | None, request_restore: bool, kw: dict[str, Any],
                   progress_interval: float = DEFAULT_PROGRESS_INTERVAL) -> list[Any]:
    """``preserve audit STORE/BAG-NAME --tier remote-metadata|remote-full``: audit replicas where they
    are, record each audit in the ledger, print them; returns the ledger's audit records."""
    from preserve.errors import UsageError
    from preserve.ocfl.remote_audit import audit_record, audit_replica_object
    from preserve.ocfl.replica import locate
    from preserve.replication.remote_audit import REMOTE_TIERS, audit_remote, split_location

    if tier not in REMOTE_TIERS:
        raise UsageError(f"{targets[0]}: a replica copy; audit it with --tier remote-metadata (no payload download) "
                         "or --tier remote-full (streams and re-hashes every object)")
    config = load_config(kw.pop("config_path", None))
    kw["workers"] = workers or 4
    records = []
    dicts = []
    opened = store_opener(config, kw)
    for text in targets:
        parent, name = split_location(text)
        store = opened(parent)
        bar = ProgressBar(0, for_people(f"auditing {name}"), enabled=not quiet and not as_json and tier == "remote-full",
                          interval=progress_interval)
        bar.phase("read+hash")
        located = locate(text, opened)  # a replicated store object, audited against its inventory
        with bar.shown():
            if located is not None:
                result = audit_replica_object(*located, tier, request_restore=request_restore, workers=workers or 4,
                                              progress=bar)
            else:
                result = audit_remote(store, name, tier, request_restore=request_restore, workers=workers or 4,
                                      progress=bar)
        record = audit_record(result) if located is not None else result.to_audit_record()
        ledger.record_audit(record)
        records.append(record)
        dicts.append(result.to_dict())
        if as_json:
            continue
        for f in result.findings:
            line = click.style("FAIL ", fg="red") + f"{result.location}/{f.path}: {f.message}"
            if f.expected is not None or f.found is not None:
                line += f" (expected {f.expected}, found {f.found})"
            click.echo(line)
        for rel in result.pending[:20]:
            click.echo(click.style("pending ", fg="yellow") + f"{result.location}/{rel}: in an archive storage class, not yet restored")
        for note in result.notes:  # kept with -q: each says what the verdict below could not vouch for
            click.echo(f"note: {note}", err=True)
        status = "ok" if result.ok else "FAIL"
        pending = f", {len(result.pending)} pending restore" if result.pending else ""
        click.echo(f"{status} {result.location} ({tier}, {result.files} object(s), {human(result.bytes)}, "
                   f"{len(result.findings)} problem(s){pending})")
    if as_json:
        failed = [d for d in dicts if not d.get("ok", True)]
        problems = [{**f, "path": f"{d.get('location')}/{f.get('path')}"} for d in dicts for f in d.get("findings", [])]
        emit_json({"tier": tier, "replicas": dicts}, path=targets[0], exit_code=EXIT_PROBLEMS if failed else 0,
                  warnings=[n for d in dicts for n in d.get("notes", [])], problems=problems)
    return records

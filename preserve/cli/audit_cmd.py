"""``preserve audit PATH...``: re-verify bags, record every outcome in the ledger, report, alert."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from preserve.audit.ledger import AuditRecord, Ledger, now_iso
from preserve.audit.notify import check_notify, deliver, load_smtp_settings
from preserve.audit.report import human_bytes, summarize_run
from preserve.audit.runner import (
    REMOTE_TIERS,
    TIERS,
    AuditOptions,
    AuditRun,
    Budget,
    Policy,
    plan_audit,
    run_audit,
)
from preserve.cli.common import (
    Command,
    ProgressBar,
    emit_json,
    for_people,
    json_option,
    parse_period,
    parse_size,
    progress_interval_option,
    quiet_option,
    warn,
    workers_option,
)
from preserve.cli.ledger_cmd import check_pending, ledger_options, open_ledger
from preserve.cli.replicate_cmd import audit_replicas, s3_options
from preserve.configfile import find_config
from preserve.errors import AuditProblems, PreserveError, UsageError


def resolve_targets(targets: tuple[str, ...], tier: str | None) -> list[Path]:
    """The one place audit targets are told apart: local bags and folders of bags become paths.

    ``s3://`` targets (replicas) take the remote tiers, run by the replication engine; the local
    tiers refuse them and the remote tiers refuse local paths.
    """
    remote = [t for t in targets if "://" in t]
    local = [t for t in targets if "://" not in t]
    if remote:
        # replicas are audited by the replication engine (see audit_replicas); reaching here means a local tier
        raise UsageError(f"{remote[0]}: a replica copy; audit it with --tier remote-metadata (no payload download) "
                         "or --tier remote-full (streams and re-hashes every object)")
    if tier in REMOTE_TIERS:
        raise UsageError(f"--tier {tier} audits replicas in S3-compatible stores (s3://bucket/prefix); "
                         f"{local[0]} is a local path: use --tier fast or --tier full")
    return [Path(t) for t in local]


def _bag_line(record: AuditRecord) -> str:
    status = {"pass": "ok  ", "pending": "pend"}.get(record.outcome, "FAIL")
    problems = f", {len(record.findings)} problem(s)" if record.findings else ""
    # where it is, not only what it is: a bag and its replica share an identifier
    shown = record.location
    if os.path.basename(record.location.rstrip("/")) != record.identifier:
        shown = f"{record.location} [{record.identifier}]"
    return (f"{status} {for_people(shown)} ({record.tier}, {record.algorithm}, {record.files} file(s), "
            f"{human_bytes(record.bytes)}{problems})")


@click.command(cls=Command)
@click.argument("targets", nargs=-1, required=True, metavar="PATH...")
@click.option("--tier", type=click.Choice([*TIERS, *REMOTE_TIERS]), metavar="TIER",
              help="fast, full, remote-metadata or remote-full (default: the policy).")
@click.option("--full-every", type=click.IntRange(1), default=12, show_default=True, metavar="N",
              help="Policy: every Nth audit of a bag is full.")
@click.option("--full-after", default="365d", show_default=True, metavar="PERIOD",
              help="Policy: a full audit when the last one is older.")
@click.option("--budget", metavar="PERIOD", help="Stop cleanly after this long (e.g. 2h).")
@click.option("--max-bytes", metavar="SIZE", help="Stop before reading more than this (e.g. 500G).")
@click.option("--max-rate", metavar="SIZE", help="Cap reads at SIZE per second (e.g. 200M).")
@click.option("--drop-cache", is_flag=True, help="Evict each file's cached pages first: verify what the disk holds.")
@click.option("--request-restore", is_flag=True,
              help="Remote tiers: request restores of archive-class objects.")
@click.option("--notify", metavar="URL", help="When problems are found: POST a JSON summary to this webhook, "
                                              "or mail one to mailto:ADDRESS ([smtp] in preserve.toml).")
@click.option("--scheduler", metavar="ADDRESS", help="A Dask cluster (tcp://host:8786, tls://...); needs preserve[dask].")
@click.option("--scheduler-timeout", type=click.FloatRange(0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="How long to try reaching the --scheduler.")
@click.option("--tls-ca-file", type=click.Path(exists=True, dir_okay=False), help="CA certificate for a tls:// scheduler.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Client certificate for a tls:// scheduler.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Client key for a tls:// scheduler.")
@ledger_options
@workers_option("Files read in parallel within a bag (default: by the cores).")
@json_option
@quiet_option
@progress_interval_option
@s3_options
def audit(targets: tuple[str, ...], tier: str | None, full_every: int, full_after: str, budget: str | None,
          max_bytes: str | None, max_rate: str | None, drop_cache: bool, request_restore: bool, notify: str | None,
          scheduler: str | None, scheduler_timeout: float, tls_ca_file: str | None, tls_cert: str | None,
          tls_key: str | None, ledger_path: Path | str | None, network_ok: bool, workers: int | None, as_json: bool,
          quiet: bool, progress_interval: float, **s3: Any) -> None:
    """Re-verify the bags at PATH... (bags, folders of bags, OCFL stores); record each outcome.

    Least recently verified first; never modifies a bag. Exit 0 all verified, 1 problems found, 2
    usage, 3 bad input, 6 Dask scheduler unreachable, 7 ledger error. A webhook that cannot be
    reached is a warning: the exit code stays that of the audit. Remote tiers: each PATH is a
    replica. More: docs/audit.md.
    \f
    Bags least recently verified go first. Audits only read: a bag is never modified. Exit 0 when
    every bag audited verified, 1 when any has problems (missing, altered, unlisted or unreadable
    files, a wrong Payload-Oxum, a bag gone), 2 usage, 3 bad input, 6 Dask scheduler unreachable,
    7 ledger error. A webhook that cannot be reached is a warning: the exit code stays that of
    the audit. Replica objects waiting for an archive-class restore are pending, not failures.

    With --tier remote-metadata or --tier remote-full, each PATH is a replica copy instead:
    s3://bucket/prefix/BAG-NAME, a directory on another disk, or TARGET-NAME/BAG-NAME from
    preserve.toml (see docs/replication.md); the S3 options below apply. A replicated OCFL object
    (TARGET/<object path>) is audited against its inventory (docs/store.md).
    """
    if tier in REMOTE_TIERS:
        # replicas (STORE/BAG-NAME: s3://bucket/prefix/bag or a path on another disk) are audited
        # where they are by the replication engine
        if notify:
            _check_notify(notify, find_config(s3.get("config_path")))
        remote_run = AuditRun(started=now_iso())
        with open_ledger(ledger_path, network_ok, config=s3.get("config_path")) as led:
            remote_run.records = audit_replicas(targets, tier, ledger=led, as_json=as_json, quiet=quiet,
                                                workers=workers, request_restore=request_restore, kw=s3,
                                                progress_interval=progress_interval)
            ledger_name = str(led.path)
        check_pending(led)
        remote_run.ended = now_iso()
        if remote_run.failed and notify:
            try:
                deliver(notify, remote_run, ledger_name, config=find_config(s3.get("config_path")))
            except PreserveError as exc:
                warn(f"the audit found problems, and the {'e-mail' if notify.startswith('mailto:') else 'webhook'} failed too: {exc}")
        if remote_run.failed:
            raise AuditProblems(count=len(remote_run.failed))
        return
    paths = resolve_targets(targets, tier)
    if notify:
        _check_notify(notify, find_config(s3.get("config_path")))
    policy = Policy(tier=tier, full_every=full_every, full_after=parse_period(full_after))
    limits = Budget(seconds=parse_period(budget) if budget else None,
                    max_bytes=parse_size(max_bytes) if max_bytes else None)
    # worker processes as preserve validate chooses them; a rate limit or -w N keeps to threads
    opts = AuditOptions(workers=workers, max_rate=parse_size(max_rate) if max_rate else None, drop_cache=drop_cache,
                        processes=None if workers is None and not max_rate else 0)
    security = None
    if scheduler:
        from preserve.audit.distributed import make_security

        security = make_security(scheduler, ca_file=tls_ca_file, cert=tls_cert, key=tls_key)
    elif tls_ca_file or tls_cert or tls_key:
        raise UsageError("--tls-ca-file/--tls-cert/--tls-key go with --scheduler tls://...")
    run = AuditRun(started=now_iso())
    with open_ledger(ledger_path, network_ok, config=s3.get("config_path")) as led:
        # bags, folders of bags and OCFL stores (their objects checked against their inventories)
        # are planned together: one order, one budget, one scheduler, one progress bar
        plan = plan_audit(led, paths, policy, limits)
        bar = ProgressBar(0, "auditing", enabled=not quiet and not as_json, interval=progress_interval)
        bar.phase("verify", plan.total_bytes)

        def each(record: AuditRecord) -> None:
            if not quiet and not as_json:
                # on a terminal, clear the progress bar's line first; it is redrawn on the next update
                click.echo(("\r\033[K" if bar.enabled else "") + _bag_line(record), err=True)

        try:
            with bar.shown():
                run_audit(led, plan, opts=opts, budget=limits, progress=bar, on_record=each,
                          scheduler=scheduler, security=security, connect_timeout=scheduler_timeout, run=run)
        finally:
            # what was audited is reported and alerted even when the run stops early
            _finish(run, str(led.path), as_json, notify, quiet, targets[0], led, find_config(s3.get("config_path")))
    check_pending(led)
    if run.failed:
        raise AuditProblems(count=len(run.failed))


def _check_notify(notify: str, config: Path | None) -> None:
    """--notify, checked before anything is audited: the URL or address and, for mail, preserve.toml's
    [smtp] (a key there preserve does not know is refused now, not found out after the audit)."""
    check_notify(notify)
    if notify.lower().startswith("mailto:"):
        load_smtp_settings(config)


def _finish(run: AuditRun, ledger_name: str, as_json: bool, notify: str | None, quiet: bool, path: str,
            led: Ledger | None = None, config: Path | None = None) -> None:
    """The summary (text or JSON), the run's warnings, and the webhook when problems were found."""
    # kept with -q: each says that bags could not be found or audited, which the operator must hear
    for w in run.warnings:
        warn(w)
    if as_json:
        problems = [{"path": r.location, "file": f.file, "kind": f.kind, "message": f.message}
                    for r in run.failed for f in r.findings]
        emit_json({**run.to_dict(), "ledger": ledger_name}, path=path,
                  exit_code=AuditProblems.exit_code if run.failed else 0, warnings=run.warnings, problems=problems)
    else:
        click.echo(summarize_run(run))
    if run.failed and notify:
        try:
            deliver(notify, run, ledger_name, config=config, html=lambda: _html_report(led))
        except PreserveError as exc:
            warn(f"the audit found problems, and the {'e-mail' if notify.startswith('mailto:') else 'webhook'} failed too: {exc}")


def _html_report(led: Ledger | None) -> str:
    """The HTML report of the ledger, for the e-mail that asks for it attached."""
    from preserve.audit.html import render_html
    from preserve.audit.report import build_report

    return render_html(build_report(led)) if led is not None else ""

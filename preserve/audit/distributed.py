"""The same audit on a Dask distributed cluster (optional extra ``preserve[dask]``).

Each bag (or OCFL store object) becomes one task. Workers read it from storage they share with the
client (same mount paths), audit it exactly as the local run does (:func:`preserve.audit.runner.audit_item`),
and send the :class:`~preserve.audit.ledger.AuditRecord` back; the client alone writes the
ledger, so workers need no access to it.

Security: a ``tcp://`` scheduler accepts any client and runs any code it is sent, so it trusts
everyone who can reach its port. Use ``tls://`` with certificates (Dask's security settings,
:func:`make_security`) anywhere but a private, trusted network.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from typing import Any

from preserve.audit.ledger import AuditRecord
from preserve.audit.runner import AuditOptions, BudgetSpent, PlannedBag, audit_item, error_record
from preserve.errors import RemoteError, UsageError
from preserve.fixity import Progress

#: How long to keep trying to reach the scheduler (Dask retries refused connections until then).
CONNECT_TIMEOUT_S = 10


def _distributed() -> Any:
    """The ``distributed`` module (untyped, optional): imported only when a scheduler is asked for."""
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise UsageError("--scheduler needs Dask distributed: install preserve[dask]") from exc


def make_security(scheduler: str, *, ca_file: str | None = None, cert: str | None = None,
                  key: str | None = None) -> Any:
    """Dask ``Security`` for a ``tls://`` scheduler, or None for ``tcp://``.

    Without explicit files, Dask's own configuration is used (``distributed.comm.tls.ca-file``,
    ``distributed.comm.tls.client.cert`` / ``.key``, e.g. in ~/.config/dask/distributed.yaml).
    """
    given = any((ca_file, cert, key))
    if not scheduler.startswith("tls://"):
        if given:
            raise UsageError(f"--tls-ca-file/--tls-cert/--tls-key need a tls:// scheduler address, not {scheduler}")
        return None
    Security = _distributed().Security
    if given:
        if not (ca_file and cert):
            raise UsageError("a tls:// scheduler needs --tls-ca-file and --tls-cert (and --tls-key unless the key is in the cert file)")
        return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)
    security = Security(require_encryption=True)
    if not getattr(security, "tls_ca_file", None):
        raise UsageError(f"{scheduler}: no TLS certificates: pass --tls-ca-file and --tls-cert, or set Dask's distributed.comm.tls settings")
    return security


def _task(item: PlannedBag, opts: AuditOptions, wall_deadline: float | None) -> AuditRecord:
    # monotonic clocks differ between machines: the deadline travels as wall-clock time
    deadline = time.monotonic() + (wall_deadline - time.time()) if wall_deadline is not None else None
    # the same audit as a local run (a bag, or a store object against its inventory): files opened
    # with no link followed, and a bag's remembered tag files and empty folders compared on the
    # worker, where the bag is read
    return audit_item(item, opts, None, deadline)


def per_task_options(opts: AuditOptions, threads: int) -> AuditOptions:
    """The options each task gets: ``--max-rate`` is for the whole run, so the cluster's threads
    (as many bags read at once) share it; tasks keep to threads (no worker processes of their own)."""
    rate = max(1, opts.max_rate // max(threads, 1)) if opts.max_rate else None
    return dataclasses.replace(opts, max_rate=rate, processes=0)


def run_on_cluster(scheduler: str | Any, bags: list[PlannedBag], opts: AuditOptions,
                   keep: Callable[[AuditRecord], None], *, progress: Progress | None = None,
                   deadline: float | None = None, security: Any = None,
                   connect_timeout: float = CONNECT_TIMEOUT_S) -> list[PlannedBag]:
    """Audit ``bags`` as tasks on the cluster at ``scheduler``; ``keep`` gets each record on the
    client as it arrives. Returns the bags not audited because the time budget ran out.

    The first bag runs to its end whatever the budget (so a long bag never stalls the cycle); a
    task that fails (a worker killed, an error on a worker) is recorded as a failed audit of its
    bag and the others go on.
    """
    dist = _distributed()
    try:
        client = dist.Client(scheduler, security=security, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RemoteError(f"{scheduler}: cannot reach the Dask scheduler ({exc})") from exc
    wall_deadline = time.time() + (deadline - time.monotonic()) if deadline is not None else None
    left: list[PlannedBag] = []
    with client:
        threads = sum(client.nthreads().values()) or 1
        task_opts = per_task_options(opts, threads)
        first = [True]
        queue = list(bags)
        in_flight: dict[Any, PlannedBag] = {}
        done = dist.as_completed(loop=client.loop)

        def submit_more() -> None:
            while queue and len(in_flight) < threads * 2:
                if deadline is not None and time.monotonic() >= deadline:
                    left.extend(queue)
                    queue.clear()
                    return
                item = queue.pop(0)
                fut = client.submit(_task, item, task_opts, None if first[0] else wall_deadline, pure=False,
                                    key=f"preserve-audit-{item.tier}-{item.identifier}-{time.time_ns()}")
                first[0] = False
                in_flight[fut] = item
                done.add(fut)

        submit_more()
        for fut in done:
            item = in_flight.pop(fut)
            try:
                record = fut.result()
            except BudgetSpent:
                left.append(item)
            except Exception as exc:  # KilledWorker, an error on a worker: this bag only
                keep(error_record(item, exc))
            else:
                keep(record)
                if progress is not None:
                    progress(record.bytes, record.files)
            submit_more()
    order = {id(b): i for i, b in enumerate(bags)}
    return sorted(left, key=lambda b: order[id(b)])

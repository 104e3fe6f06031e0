"""Each bag's audit summary and the audits per month (schema version 5), kept as audits are recorded.

A bag row holds its audit count, its latest audit (id, end, outcome, tier), its latest full audit
(id, and the latest end of a full audit) and how many audits came since; ``audit_months`` holds
the audits, failures, pending outcomes and bytes read per month. Both are kept in the transaction
that records the audits (:func:`keep_summaries`) and set again from the audits, set-based, when
audits are removed or copied (:func:`refresh_summaries`). What a report and planning need is then
read from ``bags`` by index and aggregate, never grouped again from every audit.

Why the increments are exact with several writers: recording locks each bag's row until the
transaction ends before it inserts the audits, so a new audit's id is above every other audit of
that bag (SQLite has one writer at a time anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

from preserve.audit.ledger_base import MONTHS_REFRESH, Connection, summary_refresh
from preserve.audit.ledger_records import AuditRecord

#: Bags per multi-row UPDATE (one round trip to a server for a batch of the usual size): 13 values
#: each stays well under SQLite's (3.32+) and PostgreSQL's limits on a statement's parameters.
_BAGS_PER_UPDATE = 1000

# Each bag of a batch once: its identifier, payload and last seen as the batch's latest record says
# (an unknown identifier or payload keeps the bag's), and its new audits: how many, the latest (id,
# end, outcome, tier), the latest full one (id; the latest end of a full one) and how many came
# after it. A bag without a new audit (a retry) changes only its first four; without a new full
# audit, its count since the last full one grows.
_BAGS = ("UPDATE bags SET identifier = coalesce(v.column2, bags.identifier), "
         "payload_bytes = coalesce(CAST(v.column3 AS BIGINT), bags.payload_bytes), "
         "payload_files = coalesce(CAST(v.column4 AS BIGINT), bags.payload_files), last_seen = v.column5, "
         "audits_count = bags.audits_count + CAST(v.column6 AS BIGINT), "
         "last_audit_id = coalesce(CAST(v.column7 AS BIGINT), bags.last_audit_id), "
         "last_audit = coalesce(v.column8, bags.last_audit), last_outcome = coalesce(v.column9, bags.last_outcome), "
         "last_tier = coalesce(v.column10, bags.last_tier), "
         "last_full_id = coalesce(CAST(v.column11 AS BIGINT), bags.last_full_id), "
         "last_full = CASE WHEN v.column12 IS NOT NULL AND (bags.last_full IS NULL OR bags.last_full < v.column12) "
         "THEN v.column12 ELSE bags.last_full END, "
         "audits_since_full = CASE WHEN v.column11 IS NULL THEN bags.audits_since_full + CAST(v.column6 AS BIGINT) "
         "ELSE CAST(v.column13 AS BIGINT) END "
         "FROM (VALUES {rows}) AS v WHERE bags.id = CAST(v.column1 AS BIGINT)")
_MONTHS = ("INSERT INTO audit_months (month, audits, failed, pending, bytes) VALUES {rows} "
           "ON CONFLICT (month) DO UPDATE SET audits = audit_months.audits + excluded.audits, "
           "failed = audit_months.failed + excluded.failed, pending = audit_months.pending + excluded.pending, "
           "bytes = audit_months.bytes + excluded.bytes")


def _run(db: Connection, template: str, rows: list[tuple[object, ...]], width: int) -> None:
    marks = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), _BAGS_PER_UPDATE):
        chunk = rows[start:start + _BAGS_PER_UPDATE]
        db.execute(template.format(rows=",".join([marks] * len(chunk))), [v for row in chunk for v in row])


def keep_summaries(db: Connection, bags: Sequence[tuple[int, AuditRecord]],
                   added: Sequence[tuple[int, int, AuditRecord]], stamp: str) -> None:
    """Write what a batch of records changes, in the transaction ``db`` that recorded it: each bag of
    ``bags`` (its id and the batch's latest record of it; its row locked by the caller) gets its
    identifier, payload, last seen (``stamp``) and audit summary with the audits just inserted,
    ``added`` as ``(bag id, audit id, record)``; ``audit_months`` counts those audits."""
    per_bag: dict[int, list[tuple[int, AuditRecord]]] = {}
    months: dict[str, list[int]] = {}
    for bag_id, audit_id, record in sorted(added, key=lambda a: a[1]):
        per_bag.setdefault(bag_id, []).append((audit_id, record))
        month = months.setdefault(record.ended[:7], [0, 0, 0, 0])
        month[0] += 1
        month[1] += record.outcome == "fail"
        month[2] += record.outcome == "pending"
        month[3] += record.bytes
    rows: list[tuple[object, ...]] = []
    for bag_id, bag in sorted(bags, key=lambda b: b[0]):  # one order for every writer
        new = per_bag.get(bag_id, [])
        head = (bag_id, bag.identifier, bag.payload_bytes, bag.payload_files, stamp, len(new))
        if not new:
            rows.append((*head, None, None, None, None, None, None, 0))
            continue
        last_id, last = new[-1]
        fulls = [k for k, (_, r) in enumerate(new) if r.tier == "full"]
        if fulls:
            full: tuple[object, ...] = (new[fulls[-1]][0], max(new[k][1].ended for k in fulls), len(new) - 1 - fulls[-1])
        else:
            full = (None, None, 0)
        rows.append((*head, last_id, last.ended, last.outcome, last.tier, *full))
    _run(db, _BAGS, rows, 13)
    _run(db, _MONTHS, [(m, *counts) for m, counts in sorted(months.items())], 5)


def refresh_summaries(db: Connection, bags: str = "1 = 1") -> None:
    """Set the summary of the bags matching ``bags`` (a condition on ``bags.id``) and every month
    from the audits, in the transaction ``db`` (after audits were removed or copied in)."""
    for statement in (*summary_refresh(bags), *MONTHS_REFRESH):
        db.execute(statement)

"""Each bag's audit summary and the audits per month (schema version 5), kept as audits are recorded.

A bag row holds its audit count, its latest audit (id, end, outcome, tier), its latest full audit
(id, and the latest end of a full audit) and how many audits came since; ``audit_months`` holds
the audits, failures, pending outcomes and bytes read per month. Both are kept in the transaction
that records the audits (:func:`keep_summaries`) and set again from the audits, set-based, when
audits are removed or copied (:func:`refresh_summaries`). What a report and planning need is then
read from ``bags`` by index and aggregate, never grouped again from every audit.

Why the increments are exact with several writers: the upsert that registers a bag locks its row
until the transaction ends, and the audits are inserted after it, so a new audit's id is above
every other audit of that bag (SQLite has one writer at a time anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

from preserve.audit.ledger_base import MONTHS_REFRESH, Connection, summary_refresh
from preserve.audit.ledger_records import AuditRecord

#: Bags per multi-row UPDATE: 9 values each stays under SQLite's oldest limit of 999 parameters.
_BAGS_PER_UPDATE = 100

# a bag whose new audits hold no full one: its count since the last full audit grows
_PLAIN = ("UPDATE bags SET audits_count = bags.audits_count + CAST(v.column2 AS BIGINT), "
          "last_audit_id = CAST(v.column3 AS BIGINT), last_audit = v.column4, last_outcome = v.column5, "
          "last_tier = v.column6, audits_since_full = bags.audits_since_full + CAST(v.column2 AS BIGINT) "
          "FROM (VALUES {rows}) AS v WHERE bags.id = CAST(v.column1 AS BIGINT)")
# a bag whose new audits hold a full one: the count restarts after the last of them
_FULL = ("UPDATE bags SET audits_count = bags.audits_count + CAST(v.column2 AS BIGINT), "
         "last_audit_id = CAST(v.column3 AS BIGINT), last_audit = v.column4, last_outcome = v.column5, "
         "last_tier = v.column6, last_full_id = CAST(v.column7 AS BIGINT), "
         "last_full = CASE WHEN bags.last_full IS NULL OR bags.last_full < v.column8 THEN v.column8 ELSE bags.last_full END, "
         "audits_since_full = CAST(v.column9 AS BIGINT) "
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


def keep_summaries(db: Connection, added: Sequence[tuple[int, int, AuditRecord]]) -> None:
    """Add audits just inserted, ``(bag id, audit id, record)``, to their bags' summaries and to
    ``audit_months``, in the transaction ``db`` that inserted them."""
    per_bag: dict[int, list[tuple[int, AuditRecord]]] = {}
    months: dict[str, list[int]] = {}
    for bag_id, audit_id, record in sorted(added, key=lambda a: a[1]):
        per_bag.setdefault(bag_id, []).append((audit_id, record))
        month = months.setdefault(record.ended[:7], [0, 0, 0, 0])
        month[0] += 1
        month[1] += record.outcome == "fail"
        month[2] += record.outcome == "pending"
        month[3] += record.bytes
    plain: list[tuple[object, ...]] = []
    full: list[tuple[object, ...]] = []
    for bag_id, new in sorted(per_bag.items()):  # one order for every writer: rows are locked alike
        last_id, last = new[-1]
        head = (bag_id, len(new), last_id, last.ended, last.outcome, last.tier)
        fulls = [k for k, (_, r) in enumerate(new) if r.tier == "full"]
        if fulls:
            full.append((*head, new[fulls[-1]][0], max(new[k][1].ended for k in fulls), len(new) - 1 - fulls[-1]))
        else:
            plain.append(head)
    _run(db, _PLAIN, plain, 6)
    _run(db, _FULL, full, 9)
    _run(db, _MONTHS, [(m, *counts) for m, counts in sorted(months.items())], 5)


def refresh_summaries(db: Connection, bags: str = "1 = 1") -> None:
    """Set the summary of the bags matching ``bags`` (a condition on ``bags.id``) and every month
    from the audits, in the transaction ``db`` (after audits were removed or copied in)."""
    for statement in (*summary_refresh(bags), *MONTHS_REFRESH):
        db.execute(statement)

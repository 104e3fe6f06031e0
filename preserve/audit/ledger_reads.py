"""The ledger's set-based reads for reports over many bags: a few queries over indexed columns,
each taking a list of bags (or audits) at once, never one query per bag.

Lists of ids go in as ``IN (...)`` chunks of :data:`CHUNK` (under SQLite's oldest limit of 999
parameters), so a report over a million bags costs a few hundred statements, not millions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from preserve.audit.ledger_base import now_iso
from preserve.audit.ledger_records import BagState, FindingRecord

#: ids per ``IN (...)`` list
CHUNK = 900


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


@dataclass(frozen=True)
class BagTotals:
    """Counts over every bag the ledger knows (:meth:`LedgerReads.bag_totals`)."""

    bags: int
    audits: int
    never_audited: int
    overdue: int
    failing: int
    pending: int
    #: rows an audit history listing ``history`` audits per bag has in all
    history_rows: int
    payload_bytes: int
    #: the least recent of the bags' latest audit ends (None: no audit yet)
    oldest_audit: str | None


class LedgerReads:
    """Reads shared by reports and metrics; mixed into :class:`~preserve.audit.ledger.Ledger`."""

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError

    def bag_states(self, *, where: tuple[str, tuple[Any, ...]] | None = None, limit: int | None = None) -> list[BagState]:
        raise NotImplementedError

    def failing_since(self, bag_ids: Sequence[int]) -> dict[int, str]:
        """Per bag whose latest audit failed: when its current run of failed audits began (the end
        of the first failed audit after its last one that did not fail)."""
        out: dict[int, str] = {}
        for chunk in _chunks(bag_ids):
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"""
                WITH ok AS (SELECT bag_id, max(id) AS id FROM audits
                            WHERE bag_id IN ({marks}) AND outcome <> 'fail' GROUP BY bag_id),
                first AS (SELECT a.bag_id, min(a.id) AS id FROM audits a LEFT JOIN ok ON ok.bag_id = a.bag_id
                          WHERE a.bag_id IN ({marks}) AND a.id > coalesce(ok.id, 0) GROUP BY a.bag_id)
                SELECT f.bag_id, a.ended FROM first f JOIN audits a ON a.id = f.id""", (*chunk, *chunk))
            out.update({int(r[0]): str(r[1]) for r in rows})
        return out

    def findings_of(self, audit_ids: Sequence[int]) -> dict[int, list[FindingRecord]]:
        """The findings of each audit, in the order they were recorded."""
        out: dict[int, list[FindingRecord]] = {}
        for chunk in _chunks(audit_ids):
            rows = self._query(f"SELECT audit_id, file, kind, message, code, expected, found FROM findings "
                               f"WHERE audit_id IN ({','.join('?' * len(chunk))}) ORDER BY id", tuple(chunk))
            for r in rows:
                out.setdefault(int(r[0]), []).append(FindingRecord(file=r[1], kind=r[2], message=r[3], code=r[4],
                                                                   expected=r[5], found=r[6]))
        return out

    def latest_audits(self, bag_ids: Sequence[int], per_bag: int) -> dict[int, list[dict[str, Any]]]:
        """Per bag: its latest ``per_bag`` audits, oldest first, each with its count of findings."""
        out: dict[int, list[dict[str, Any]]] = {}
        for chunk in _chunks(bag_ids):
            rows = self._query(f"""
                SELECT r.bag_id, r.ended, r.tier, r.outcome, r.files, r.bytes, r.algorithm,
                       (SELECT count(*) FROM findings f WHERE f.audit_id = r.id) AS findings, r.uuid
                FROM (SELECT a.*, row_number() OVER (PARTITION BY a.bag_id ORDER BY a.id DESC) AS n
                      FROM audits a WHERE a.bag_id IN ({','.join('?' * len(chunk))})) r
                WHERE r.n <= ? ORDER BY r.bag_id, r.id""", (*chunk, per_bag))
            for r in rows:
                out.setdefault(int(r[0]), []).append({"ended": r[1], "tier": r[2], "outcome": r[3], "files": r[4],
                                                      "bytes": r[5], "algorithm": r[6], "findings": int(r[7]),
                                                      "audit": r[8]})
        return out

    def bag_totals(self, overdue_before: str = "", history: int = 1) -> BagTotals:
        """The report's counts over every bag, in one pass over ``bags`` (each bag row keeps its audit
        summary): ``overdue_before`` the ledger timestamp a last audit is overdue before, ``history``
        the audits a report lists per bag."""
        r = self._query(
            "SELECT count(*), CAST(coalesce(sum(audits_count), 0) AS BIGINT), "
            "coalesce(sum(CASE WHEN last_audit IS NULL THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(CASE WHEN last_audit < ? THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(CASE WHEN last_outcome = 'fail' THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(CASE WHEN last_outcome = 'pending' THEN 1 ELSE 0 END), 0), "
            "CAST(coalesce(sum(CASE WHEN audits_count < ? THEN audits_count ELSE ? END), 0) AS BIGINT), "
            "CAST(coalesce(sum(payload_bytes), 0) AS BIGINT), min(last_audit) FROM bags",
            (overdue_before, history, history))[0]
        bags, audits, never, overdue, failing, pending, history_rows, payload = (int(r[i]) for i in range(8))
        return BagTotals(bags, audits, never, overdue, failing, pending, history_rows, payload, r[8])

    def states_at(self, *, ids: Sequence[int] = (), locations: Sequence[str] = ()) -> list[BagState]:
        """The bags with these ids or at these locations (each once), with their audit summaries."""
        seen: dict[int, BagState] = {}
        for column, values in (("b.id", list(ids)), ("b.location", list(locations))):
            for start in range(0, len(values), CHUNK):
                chunk = values[start:start + CHUNK]
                for s in self.bag_states(where=(f"{column} IN ({','.join('?' * len(chunk))})", tuple(chunk))):
                    seen[s.id] = s
        return list(seen.values())

    def outcomes_by_bag(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Per audited bag: identifier, location, passed, failed and pending audit counts, by
        identifier; with ``limit``, only that many bags: those with the most failures first.

        Read from each bag's audit count and the audits that did not pass (a partial index holds
        only those), so a million bags with ten million audits are never grouped in full."""
        unpassed = {int(r[0]): (int(r[1]), int(r[2])) for r in self._query(
            "SELECT bag_id, sum(CASE WHEN outcome = 'fail' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN outcome = 'pending' THEN 1 ELSE 0 END) FROM audits WHERE outcome <> 'pass' GROUP BY bag_id")}
        cols = "SELECT id, identifier, location, audits_count FROM bags WHERE audits_count > 0"
        if limit is None:
            rows = self._query(f"{cols} ORDER BY identifier, location")
        else:
            failed = [b for b, (n, _) in unpassed.items() if n]
            rows = []
            for start in range(0, len(failed), CHUNK):
                chunk = failed[start:start + CHUNK]
                rows += self._query(f"{cols} AND id IN ({','.join('?' * len(chunk))})", tuple(chunk))
            rows.sort(key=lambda r: (-unpassed[int(r[0])][0], r[1], r[2]))
            rows = rows[:limit]
            if len(rows) < limit:  # then the bags without failures, by identifier
                more = self._query(f"{cols} ORDER BY identifier, location LIMIT {int(limit) + len(failed)}")
                rows += [r for r in more if not unpassed.get(int(r[0]), (0, 0))[0]][:limit - len(rows)]
        out = []
        for r in rows:
            failed_n, pending_n = unpassed.get(int(r[0]), (0, 0))
            out.append({"identifier": r[1], "location": r[2], "passed": int(r[3]) - failed_n - pending_n,
                        "failed": failed_n, "pending": pending_n})
        return out

    def remembered_structure(self, locations: list[str] | None = None) -> dict[str, list[tuple[str, str]]]:
        """Per bag location: the ``(path, kind)`` the ledger remembers (kind ``file`` for a tag file,
        ``empty-dir`` for an empty payload folder), from the bag's first audit that recorded them.
        ``locations``: only those bags' (None: every bag's)."""
        sql = "SELECT b.location, t.path, t.kind FROM tag_files t JOIN bags b ON b.id = t.bag_id"
        order = " ORDER BY b.location, t.kind, t.path"
        if locations is None:
            rows = self._query(sql + order)
        else:
            rows = []
            for start in range(0, len(locations), CHUNK):
                chunk = tuple(locations[start:start + CHUNK])
                rows += self._query(f"{sql} WHERE b.location IN ({','.join('?' * len(chunk))}){order}", chunk)
        out: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            out.setdefault(str(r[0]), []).append((str(r[1]), str(r[2])))
        return out

    def monthly(self, until: str | None = None) -> list[dict[str, Any]]:
        """Audits per month: ``{"month": "2026-11", "audits", "failed", "pending", "bytes"}``, oldest
        first, every month from the first audit to ``until`` (``YYYY-MM``, default this month)
        included: a month without audits is a zero, not a gap the charts would hide."""
        # kept per month as audits are recorded (schema version 5): a few hundred rows, not every audit
        rows = {r["month"]: dict(r) for r in self._query(
            "SELECT month, audits, failed, pending, bytes FROM audit_months WHERE audits > 0 ORDER BY month")}
        if not rows:
            return []
        last = max(until or now_iso()[:7], max(rows))
        year, month = (int(x) for x in min(rows).split("-"))
        out = []
        while True:
            key = f"{year:04d}-{month:02d}"
            out.append(rows.get(key, {"month": key, "audits": 0, "failed": 0, "pending": 0, "bytes": 0}))
            if key >= last:
                return out
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def latest_by_tier(self) -> list[tuple[str, str, str]]:
        """(tier, started, ended) of the latest audit of each tier, by tier name."""
        rows = self._query("SELECT a.tier, a.started, a.ended FROM audits a JOIN "
                           "(SELECT tier, max(id) AS id FROM audits GROUP BY tier) l ON l.id = a.id ORDER BY a.tier")
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

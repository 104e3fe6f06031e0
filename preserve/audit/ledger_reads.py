"""The ledger's set-based reads for reports over many bags: a few queries over indexed columns,
each taking a list of bags (or audits) at once, never one query per bag.

Lists of ids go in as ``IN (...)`` chunks of :data:`CHUNK` (under SQLite's oldest limit of 999
parameters), so a report over a million bags costs a few hundred statements, not millions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from preserve.audit.ledger_records import FindingRecord

#: ids per ``IN (...)`` list
CHUNK = 900


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


class LedgerReads:
    """Reads shared by reports and metrics; mixed into :class:`~preserve.audit.ledger.Ledger`."""

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
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

    def outcomes_by_bag(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Per bag: identifier, location, passed, failed and pending audit counts, by identifier;
        with ``limit``, only that many bags: those with the most failures."""
        rows = self._query(
            "SELECT b.identifier, b.location, g.passed, g.failed, g.pending FROM bags b JOIN "
            "(SELECT bag_id, sum(CASE WHEN outcome = 'pass' THEN 1 ELSE 0 END) AS passed, "
            "sum(CASE WHEN outcome = 'fail' THEN 1 ELSE 0 END) AS failed, "
            "sum(CASE WHEN outcome = 'pending' THEN 1 ELSE 0 END) AS pending FROM audits GROUP BY bag_id) g "
            "ON g.bag_id = b.id ORDER BY " + ("b.identifier, b.location" if limit is None else
                                              f"g.failed DESC, b.identifier, b.location LIMIT {int(limit)}"))
        return [{"identifier": r[0], "location": r[1], "passed": int(r[2]), "failed": int(r[3]), "pending": int(r[4])}
                for r in rows]

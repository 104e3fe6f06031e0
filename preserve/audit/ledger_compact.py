"""Retention: ``ledger compact --keep first,last,failures`` thins decades of successful audits.

Per bag it keeps what ``--keep`` names (the first and the last successful audit, every failed
audit with its findings) and removes the other audits, in one transaction (which also sets the
thinned bags' audit summaries and the audits per month again from what stays). Each bag that lost
audits gets a ``compactions`` row (when, what was kept, how many audits and which span), which
``preserve events`` turns into a note in the PREMIS history, so the thinning is never silent.
It only ever runs when asked: nothing in preserve compacts on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from preserve.audit.ledger_base import COMPACT_KEEP, Connection, now_iso
from preserve.audit.ledger_summary import refresh_summaries
from preserve.errors import UsageError


@dataclass(frozen=True)
class Compaction:
    """What one compaction did: bags thinned, audits removed and kept, findings removed."""

    keep: tuple[str, ...]
    bags: int
    removed: int
    kept: int
    findings_removed: int
    time: str


@dataclass(frozen=True)
class CompactionNote:
    """One bag's record of a compaction (a row of ``compactions``)."""

    time: str
    kept: str
    removed: int
    first_removed: str
    last_removed: str


def parse_keep(text: str | Sequence[str]) -> tuple[str, ...]:
    """``first,last,failures`` (any of them, comma-separated) into the words, in canonical order."""
    words = [w.strip() for w in (text.split(",") if isinstance(text, str) else text) if w.strip()]
    unknown = [w for w in words if w not in COMPACT_KEEP]
    if unknown or not words:
        raise UsageError(f"--keep {','.join(words) or '(nothing)'}: say what to keep of each bag's audits with "
                         f"one or more of {', '.join(COMPACT_KEEP)} (e.g. --keep first,last,failures)")
    return tuple(w for w in COMPACT_KEEP if w in words)


def _kept_ids(keep: tuple[str, ...]) -> str:
    """SQL for the ids of the audits ``keep`` keeps (every bag at once, over the bag index)."""
    parts = []
    if "first" in keep:
        parts.append("SELECT min(id) FROM audits WHERE outcome = 'pass' GROUP BY bag_id")
    if "last" in keep:
        parts.append("SELECT max(id) FROM audits WHERE outcome = 'pass' GROUP BY bag_id")
    if "failures" in keep:
        parts.append("SELECT id FROM audits WHERE outcome = 'fail'")
    return " UNION ".join(parts)


class LedgerCompact:
    """Compaction, mixed into :class:`~preserve.audit.ledger.Ledger`."""

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError

    def compact(self, keep: str | Sequence[str] = COMPACT_KEEP) -> Compaction:
        """Remove every audit ``keep`` does not keep (see the module docstring); returns what was done.

        Running it again with the same ``keep`` removes nothing more.
        """
        words = parse_keep(keep)
        kept_sql = _kept_ids(words)
        stamp = now_iso()
        label = ",".join(words)
        with self._write() as db:
            db.execute("CREATE TEMPORARY TABLE IF NOT EXISTS compact_doomed (id BIGINT PRIMARY KEY)")
            db.execute("DELETE FROM compact_doomed")
            db.execute(f"INSERT INTO compact_doomed (id) SELECT id FROM audits WHERE id NOT IN ({kept_sql})")
            spans = db.execute("SELECT a.bag_id, count(*), min(a.ended), max(a.ended) FROM audits a "
                               "JOIN compact_doomed d ON d.id = a.id GROUP BY a.bag_id ORDER BY a.bag_id").fetchall()
            db.executemany("INSERT INTO compactions (uuid, bag_id, time, kept, removed, first_removed, last_removed) "
                           "VALUES (?,?,?,?,?,?,?)",
                           [(str(uuid.uuid4()), int(r[0]), stamp, label, int(r[1]), r[2], r[3]) for r in spans])
            findings = int(db.execute("SELECT count(*) FROM findings WHERE audit_id IN "
                                      "(SELECT id FROM compact_doomed)").fetchone()[0])
            db.execute("CREATE TEMPORARY TABLE IF NOT EXISTS compact_bags (id BIGINT PRIMARY KEY)")
            db.execute("DELETE FROM compact_bags")
            db.executemany("INSERT INTO compact_bags (id) VALUES (?)", [(int(r[0]),) for r in spans])
            db.execute("DELETE FROM findings WHERE audit_id IN (SELECT id FROM compact_doomed)")
            db.execute("DELETE FROM audits WHERE id IN (SELECT id FROM compact_doomed)")
            # the thinned bags' summaries and the months, from the audits that stay
            refresh_summaries(db, "bags.id IN (SELECT id FROM compact_bags)")
            db.execute("DELETE FROM compact_doomed")
            db.execute("DELETE FROM compact_bags")
            kept = int(db.execute("SELECT count(*) FROM audits").fetchone()[0])
        return Compaction(keep=words, bags=len(spans), removed=sum(int(r[1]) for r in spans), kept=kept,
                          findings_removed=findings, time=stamp)

    def compactions_for(self, bag_ids: Sequence[int]) -> list[CompactionNote]:
        """Every compaction that removed audits of these bags, oldest first."""
        if not bag_ids:
            return []
        rows = self._query(f"SELECT time, kept, removed, first_removed, last_removed FROM compactions "
                           f"WHERE bag_id IN ({','.join('?' * len(bag_ids))}) ORDER BY id", tuple(bag_ids))
        return [CompactionNote(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]

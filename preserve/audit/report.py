"""What the ledger says: bags never audited, overdue, failures still open, history per bag.

A report is a list of :class:`Section` objects, each a title, columns and a function that
collects rows from a :class:`ReportContext`. Text, JSON and HTML are rendered generically from
them, so a new section (copies per bag, NDSA levels) is one ``collect`` function appended to
:data:`SECTIONS`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.audit.ledger import AuditRecord, BagState, Ledger
from preserve.audit.ledger_reads import BagTotals
from preserve.audit.runner import AuditRun, discover_bags
from preserve.ocfl.audit import store_objects
from preserve.ocfl.summary import StoreSummary, summarize_store, summary_lines
from preserve.replication.ndsa import copies_rows
from preserve.textsafe import for_people


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    kind: str = "text"  # text | bytes | count | time


@dataclass
class ReportContext:
    """Everything a section may look at. Sections read the bags they list from the ledger (by
    index, at most ``max_rows``) and take their counts from ``totals``: a report over a million
    bags never holds a million of them."""

    ledger: Ledger
    totals: BagTotals
    every: float
    now: float
    history: int
    unknown: list[str] = field(default_factory=list)  # bags found on disk the ledger has never seen
    #: rows a section lists at most (None: all); its count in the summary stays complete
    max_rows: int | None = None
    #: per section key, how many rows it has in all when it lists only some (set by its collect)
    counted: dict[str, int] = field(default_factory=dict)
    #: figures a section counts over every bag (the copies section: bags by copies, by NDSA level)
    tallies: dict[str, dict[int, int]] = field(default_factory=dict)

    def bags(self, condition: str = "1 = 1", params: tuple[Any, ...] = (), *, extra: int = 0) -> list[BagState]:
        """The bags matching ``condition`` (SQL on ``b``), least recently audited first, at most
        ``max_rows`` (plus ``extra``) of them."""
        limit = None if self.max_rows is None else self.max_rows + extra
        return self.ledger.bag_states(where=(condition, params), limit=limit)

    def age_days(self, stamp: str) -> float:
        # fromisoformat reads the ledger's fixed form ~20x faster than strptime: a report over
        # a million bags spent most of its time here
        return (self.now - dt.datetime.fromisoformat(stamp).timestamp()) / 86400

    def before(self, seconds: float) -> str:
        """The ledger timestamp ``seconds`` before now, rounded up: its fixed ISO form sorts as text,
        and a whole-second stamp is below it exactly when it is earlier than ``now - seconds``."""
        return _stamp(math.ceil(self.now - seconds))


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Section:
    """One part of the report. ``problem``: rows here make ``preserve report`` exit 1."""

    key: str
    title: str
    columns: tuple[Column, ...]
    collect: Callable[[ReportContext], list[dict[str, Any]]]
    empty: str
    problem: bool = False


@dataclass
class SectionResult:
    section: Section
    rows: list[dict[str, Any]]
    #: how many rows the section has in all (``rows`` may list only the first of them)
    total: int = -1

    def __post_init__(self) -> None:
        if self.total < 0:
            self.total = len(self.rows)

    @property
    def left_out(self) -> int:
        """Rows counted but not listed (a report over a million bags lists the first of each section)."""
        return self.total - len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.section.key, "title": self.section.title, "rows": self.rows, "total": self.total}


@dataclass
class Report:
    generated: str
    ledger: str
    every_days: float
    summary: dict[str, Any]
    sections: list[SectionResult]
    monthly: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]
    #: the OCFL stores among the report's paths: objects, versions, deaccessioned and purged
    stores: list[StoreSummary] = field(default_factory=list)
    #: counts over every bag the ledger knows
    totals: BagTotals | None = None
    #: figures counted over every bag by a section (``copies``: bags by copies, ``level``: by NDSA level)
    tallies: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def has_problems(self) -> bool:
        return any(s.rows for s in self.sections if s.section.problem)

    def section(self, key: str) -> SectionResult:
        return next(s for s in self.sections if s.section.key == key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: summary, every section's rows, the monthly series behind the charts."""
        return {"generated": self.generated, "ledger": self.ledger, "every_days": self.every_days,
                "summary": self.summary, "sections": {s.section.key: s.rows for s in self.sections},
                "section_totals": {s.section.key: s.total for s in self.sections},
                "monthly": self.monthly, "outcomes_by_bag": self.outcomes,
                "stores": [st.to_dict() for st in self.stores]}


def _never(ctx: ReportContext) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{"identifier": s.identifier, "location": s.location, "first_seen": s.first_seen}
                                  for s in ctx.bags("b.last_audit IS NULL")]
    rows += [{"identifier": Path(p).name, "location": p, "first_seen": None} for p in ctx.unknown]
    ctx.counted["never_audited"] = ctx.totals.never_audited + len(ctx.unknown)
    return rows


def _overdue(ctx: ReportContext) -> list[dict[str, Any]]:
    ctx.counted["overdue"] = ctx.totals.overdue
    return [{"identifier": s.identifier, "location": s.location, "last_audit": s.last_audit,
             "age_days": round(ctx.age_days(s.last_audit), 1)}
            for s in ctx.bags("b.last_audit < ?", (ctx.before(ctx.every),)) if s.last_audit]


def _open_failures(ctx: ReportContext) -> list[dict[str, Any]]:
    failing = [s for s in ctx.bags("b.last_outcome = 'fail'") if s.last_audit_id is not None]
    ctx.counted["open_failures"] = ctx.totals.failing
    since = ctx.ledger.failing_since([s.id for s in failing])
    findings = ctx.ledger.findings_of([s.last_audit_id for s in failing if s.last_audit_id is not None])
    rows = []
    for s in failing:
        found = findings.get(s.last_audit_id or 0, [])
        kinds = Counter(f.kind for f in found)
        rows.append({"identifier": s.identifier, "location": s.location, "since": since.get(s.id, s.last_audit),
                     "last_audit": s.last_audit, "tier": s.last_tier,
                     "problems": ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
                     "details": [{"file": f.file, "kind": f.kind, "message": f.message, "expected": f.expected,
                                "found": f.found} for f in found]})
    return rows


def _history(ctx: ReportContext) -> list[dict[str, Any]]:
    audited = ctx.bags("b.last_audit IS NOT NULL")  # each lists one row at least: max_rows bags suffice
    ctx.counted["history"] = ctx.totals.history_rows
    if ctx.max_rows is not None:  # only the bags whose rows can be listed are read
        shown, rows_so_far = [], 0
        for s in audited:
            if rows_so_far >= ctx.max_rows:
                break
            shown.append(s)
            rows_so_far += min(s.audits, ctx.history)
        audited = shown
    latest = ctx.ledger.latest_audits([s.id for s in audited], ctx.history)
    rows = []
    for s in audited:
        for a in latest.get(s.id, []):
            rows.append({"identifier": s.identifier, "location": s.location, "ended": a["ended"], "tier": a["tier"],
                         "outcome": a["outcome"], "files": a["files"], "bytes": a["bytes"], "findings": a["findings"],
                         "algorithm": a["algorithm"], "audit": a["audit"]})
    return rows


_BAG = Column("identifier", "bag")
_WHERE = Column("location", "location")

#: The report, in order. Append a Section to add one (e.g. copies per bag, NDSA levels).
SECTIONS: list[Section] = [
    Section("never_audited", "Bags never audited", (_BAG, _WHERE, Column("first_seen", "first seen", "time")),
            _never, "every bag known has been audited at least once", problem=True),
    Section("overdue", "Bags overdue", (_BAG, _WHERE, Column("last_audit", "last audit", "time"),
                                        Column("age_days", "days since", "count")),
            _overdue, "no bag is overdue", problem=True),
    Section("open_failures", "Failures still open", (_BAG, _WHERE, Column("since", "failing since", "time"),
                                                     Column("tier", "tier"), Column("problems", "problems")),
            _open_failures, "no open failures: the latest audit of every bag passed", problem=True),
    # the location too: the same bag audited at its origin and at a replica would read as one line twice;
    # and the audit's UUID: two audits ended in the same second would too (it is the PREMIS event's)
    Section("history", "Audit history per bag", (_BAG, _WHERE, Column("ended", "ended", "time"), Column("tier", "tier"),
                                                 Column("outcome", "outcome"), Column("files", "files", "count"),
                                                 Column("bytes", "bytes", "bytes"), Column("findings", "findings", "count"),
                                                 Column("audit", "audit")),
            _history, "no audits recorded yet"),
    Section("copies", "Copies per bag and NDSA 2.0 storage level",
            (_BAG, _WHERE, Column("copies", "copies", "count"), Column("level", "NDSA level", "count"),
             Column("places", "where"), Column("next", "for the next level")),
            copies_rows, "no bags known"),
]


def build_report(ledger: Ledger, *, every: float = 30 * 86400.0, paths: Sequence[str | os.PathLike[str]] = (),
                 history: int = 12, now: float | None = None, sections: Sequence[Section] | None = None,
                 max_rows: int | None = 1000) -> Report:
    """Read the ledger (and, for ``paths``, the bags on disk it has not seen) into a :class:`Report`.

    ``max_rows``: each section lists at most this many rows (None: all) and counts the rest, so
    the report of a million bags stays readable: its summary and counts are complete, its lists
    start with the bags that need attention first (never audited, least recently audited).
    """
    from preserve.audit.ledger import now_iso

    # OCFL storage roots and objects are read as stores; their objects count as bags on disk
    store_paths = [p for p in paths if store_objects(p) is not None]
    on_disk = [obj for p in store_paths for obj in store_objects(p) or []]
    bag_paths = [p for p in paths if p not in store_paths]
    on_disk += discover_bags(bag_paths) if bag_paths else []
    known = {s.location for s in ledger.states_at(locations=list(dict.fromkeys(str(p) for p in on_disk)))}
    unknown = [str(p) for p in on_disk if str(p) not in known]
    now = now if now is not None else time.time()
    ctx = ReportContext(ledger=ledger, totals=ledger.bag_totals(_stamp(math.ceil(now - every)), history), every=every,
                        now=now, history=history, unknown=unknown, max_rows=max_rows)
    results = []
    for sec in sections if sections is not None else SECTIONS:
        rows = sec.collect(ctx)
        total = ctx.counted.get(sec.key, len(rows))
        results.append(SectionResult(sec, rows if max_rows is None else rows[:max_rows], total))
    monthly = ledger.monthly()
    summary = {"bags": ctx.totals.bags + len(unknown), "audits": ctx.totals.audits,
               "bytes_verified": sum(int(m["bytes"] or 0) for m in monthly),
               "failing_now": ctx.totals.failing}
    summary.update({r.section.key: r.total for r in results if r.section.key != "history"})
    return Report(generated=now_iso(), ledger=str(ledger.path), every_days=every / 86400, summary=summary,
                  sections=results, monthly=monthly, outcomes=ledger.outcomes_by_bag(limit=max_rows),
                  stores=[summarize_store(p) for p in store_paths], totals=ctx.totals, tallies=ctx.tallies)


def human_bytes(n: float | None) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as disks are sold)."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(size) < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def format_cell(value: Any, kind: str) -> str:
    """A cell's value as text (exact: escaping is for the renderer of each medium)."""
    if value is None:
        return "-"
    if kind == "bytes":
        return human_bytes(value)
    return str(value)


def render_text(report: Report, *, problems_only: bool = False) -> str:
    """The report as plain text for a terminal; every value from a bag or the ledger is escaped
    (:func:`preserve.textsafe.for_people`), so the lines are the report's own. ``problems_only``
    (``--quiet``) keeps the first line and the sections that list problems."""
    s = report.summary
    lines = [f"ledger {for_people(report.ledger)}: {s['bags']} bag(s), {s['audits']} audit(s), "
             f"{human_bytes(s['bytes_verified'])} verified in all; overdue after {report.every_days:g} days"]
    for result in report.sections:
        sec = result.section
        if problems_only and not (sec.problem and result.rows):
            continue
        lines.append("")
        lines.append(f"{sec.title} ({result.total})")
        if not result.rows:
            lines.append(f"  {sec.empty}")
            continue
        for row in result.rows:
            lines.append("  " + "  ".join(f"{c.heading}: {for_people(format_cell(row.get(c.key), c.kind))}"
                                          for c in sec.columns))
            lines.extend(f"      {finding_line(f['kind'], f['file'], f['message'], f.get('expected'), f.get('found'))}"
                         for f in row.get("details", []))
        if result.left_out:
            lines.append(f"  ... and {result.left_out} more (the first {len(result.rows)} are listed; --json has the counts)")
    for store in report.stores:
        lines.append("")
        lines.extend(for_people(line) for line in summary_lines(store))
    return "\n".join(lines)


def summarize_run(run: AuditRun) -> str:
    """The terminal summary at the end of ``preserve audit``: totals, then the problems by bag and
    file (values escaped as in :func:`render_text`)."""
    rate = human_bytes(run.bytes / run.seconds) + "/s" if run.seconds > 0 and run.bytes else "-"
    failed = run.failed
    lines = [f"audited {len(run.records)} bag(s): {len(run.records) - len(failed)} ok, {len(failed)} with problems; "
             f"{run.files} file(s), {human_bytes(run.bytes)} in {run.seconds:.1f} s ({rate})"]
    for r in failed:
        lines.append(f"PROBLEMS in {for_people(r.identifier)} ({for_people(r.location)}, {r.tier} tier):")
        lines.extend(f"  {finding_line(f.kind, f.file, f.message, f.expected, f.found)}" for f in r.findings)
    if run.stop_reason:
        lines.append(f"stopped: {for_people(run.stop_reason)}")
        lines.extend(f"  not audited this run: {for_people(b.identifier)} ({for_people(str(b.path))})"
                     for b in run.deferred[:20])
        if len(run.deferred) > 20:
            lines.append(f"  ... and {len(run.deferred) - 20} more")
    return "\n".join(lines)


def finding_line(kind: str, file: str, message: str, expected: str | None, found: str | None) -> str:
    """One finding on one line, for people: kind, file, message, expected vs found, each escaped
    (a file name or message holding a newline or an ESC stays on this one line, inert)."""
    detail = f" (expected {for_people(str(expected))}, found {for_people(str(found))})" if expected or found else ""
    return f"{for_people(kind)}: {for_people(file) if file else '(the bag)'}: {for_people(message)}{detail}"


def audit_history(ledger: Ledger, ref: str) -> list[AuditRecord]:
    """Every audit of the bag(s) matching ``ref`` (location or identifier), oldest first."""
    out: list[AuditRecord] = []
    for state in ledger.find_bags(ref):
        out.extend(ledger.audits_for(state.id))
    return out

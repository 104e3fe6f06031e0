"""Ledger at scale: planning, reporting and recording on a synthetic ledger, SQLite and PostgreSQL.

    python benchmarks/bench_ledger.py                        # 1,000,000 bags, 10,000,000 audits (the targets)
    python benchmarks/bench_ledger.py --bags 20000 --audits 200000 --postgresql URL

Builds a ledger of ``--bags`` bags and ``--audits`` audits (0.1% failures, one finding each) on
SQLite (a temporary file) and, with ``--postgresql URL`` (an empty database), on PostgreSQL; then
measures, on each:

- planning: the ledger's part of choosing the next bags by policy (the least recently verified
  bags with their audit summaries, each one's tier, within a budget), target under 2 s;
- report: ``build_report`` then text, JSON and HTML, target under 5 s;
- recording (PostgreSQL): outcomes per second from 8 concurrent writer processes, target 5,000/s;
- peak memory (max RSS) of the measuring process, target under 500 MiB.

Each ledger is built in a child process with bulk SQL, then completed by the statements the
schema version 5 migration runs (each bag's audit summary, the audits per month), timed and shown
for reference. Prints each figure beside its target and exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PLAN_S, REPORT_S, WRITES_PER_S, PEAK_MIB = 2.0, 5.0, 5000.0, 500.0


# The synthetic ledger is made by the database itself (a recursive CTE on SQLite, generate_series
# on PostgreSQL): building 10,000,000 rows through Python would measure Python, not the ledger.
# Bag i lives at /vault/<i mod 1000>/bag<i>; audit a belongs to bag ((a-1) div per_bag) mod bags + 1,
# is a full audit when a mod 12 = 0 and fails (with one finding) when a mod 1000 = 0.
_SQLITE_ROWS = {
    "bags": """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :bags)
        INSERT INTO bags (id, identifier, location, payload_bytes, payload_files, first_seen, last_seen)
        SELECT i, 'bag' || i, printf('/vault/%03d/bag%d', i % 1000, i), 10000000, 100,
               '2020-01-01T00:00:00Z', '2026-11-30T00:00:00Z' FROM n""",
    "audits": """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :audits)
        INSERT INTO audits (id, uuid, bag_id, tier, started, ended, bytes, files, outcome, algorithm, tool_version, host)
        SELECT i, printf('00000000-0000-4000-8000-%012x', i), ((i - 1) / :per_bag) % :bags + 1,
               CASE WHEN i % 12 = 0 THEN 'full' ELSE 'fast' END,
               printf('2026-%02d-%02dT01:00:00Z', 1 + (i - 1) * 11 / :audits, 1 + i % 28),
               printf('2026-%02d-%02dT01:00:05Z', 1 + (i - 1) * 11 / :audits, 1 + i % 28),
               10000000, 100, CASE WHEN i % 1000 = 0 THEN 'fail' ELSE 'pass' END, 'xxh3-128', 'bench', 'host' FROM n""",
    "findings": """INSERT INTO findings (audit_id, file, kind, code, expected, found, message)
        SELECT id, 'data/objects/a.wav', 'altered', 'altered', 'x', 'y', 'changed' FROM audits WHERE outcome = 'fail'""",
}

_PG_ROWS = {
    "bags": """INSERT INTO bags (id, identifier, location, payload_bytes, payload_files, first_seen, last_seen)
        SELECT i, 'bag' || i, format('/vault/%%s/bag%%s', lpad((i %% 1000)::text, 3, '0'), i), 10000000, 100,
               '2020-01-01T00:00:00Z', '2026-11-30T00:00:00Z' FROM generate_series(1, %(bags)s) i""",
    "audits": """INSERT INTO audits (id, uuid, bag_id, tier, started, ended, bytes, files, outcome, algorithm, tool_version, host)
        SELECT i, '00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), ((i - 1) / %(per_bag)s) %% %(bags)s + 1,
               CASE WHEN i %% 12 = 0 THEN 'full' ELSE 'fast' END,
               format('2026-%%s-%%sT01:00:00Z', lpad((1 + (i - 1) * 11 / %(audits)s)::text, 2, '0'), lpad((1 + i %% 28)::text, 2, '0')),
               format('2026-%%s-%%sT01:00:05Z', lpad((1 + (i - 1) * 11 / %(audits)s)::text, 2, '0'), lpad((1 + i %% 28)::text, 2, '0')),
               10000000, 100, CASE WHEN i %% 1000 = 0 THEN 'fail' ELSE 'pass' END, 'xxh3-128', 'bench', 'host'
        FROM generate_series(1, %(audits)s::bigint) i""",
    "findings": """INSERT INTO findings (audit_id, file, kind, code, expected, found, message)
        SELECT id, 'data/objects/a.wav', 'altered', 'altered', 'x', 'y', 'changed' FROM audits WHERE outcome = 'fail'""",
}


def _sizes(bags: int, audits: int) -> dict[str, int]:
    return {"bags": bags, "audits": audits, "per_bag": max(1, audits // max(1, bags))}


def _fill_statements() -> tuple[str, ...]:
    """What the schema version 5 migration runs to fill the bags' audit summaries and the audits
    per month from existing audits: the synthetic ledger is completed the same way."""
    from preserve.audit.ledger_base import MONTHS_REFRESH, summary_refresh

    return (*summary_refresh(reset=False), *MONTHS_REFRESH)


def build_sqlite(path: Path, bags: int, audits: int) -> float:
    """Build the SQLite ledger; returns the seconds the migration's fill took."""
    from preserve.audit.ledger import Ledger

    Ledger(path).close()  # the schema, as preserve makes it
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-200000")
    for table in ("bags", "audits", "findings"):
        db.execute(_SQLITE_ROWS[table], _sizes(bags, audits))
        db.commit()
    t = time.perf_counter()
    for statement in _fill_statements():
        db.execute(statement)
    db.commit()
    fill = time.perf_counter() - t
    db.execute("ANALYZE")
    db.commit()
    db.close()
    return fill


def build_postgresql(url: str, bags: int, audits: int) -> float:
    """Build the PostgreSQL ledger; returns the seconds the migration's fill took."""
    import psycopg

    from preserve.audit.ledger import Ledger

    Ledger(url).close()  # the schema, as preserve makes it
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("bags", "audits", "findings"):
            conn.execute(_PG_ROWS[table], _sizes(bags, audits))
        for table in ("bags", "audits", "findings"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.execute("VACUUM ANALYZE")
        t = time.perf_counter()
        with conn.transaction():
            for statement in _fill_statements():
                conn.execute(statement)
        fill = time.perf_counter() - t
        conn.execute("VACUUM ANALYZE")
    return fill


def _build(kind: str, target: str, bags: int, audits: int) -> float:
    return build_sqlite(Path(target), bags, audits) if kind == "sqlite" else build_postgresql(target, bags, audits)


def build(kind: str, target: str, bags: int, audits: int) -> float:
    """Build in a child process, so the measuring process's peak memory is the measurement's own
    (the build's page cache is not); returns the fill's seconds."""
    with ProcessPoolExecutor(max_workers=1) as pool:
        return pool.submit(_build, kind, target, bags, audits).result()


class Results(list[tuple[str, float, float, str]]):
    """The figures, each also shown on standard error as it is measured (a long run shows progress)."""

    def append(self, item: tuple[str, float, float, str]) -> None:
        print(f"  measured {item[0]}: {item[1]:,.2f} {item[3]}", file=sys.stderr, flush=True)
        super().append(item)


def measure(target: str | Path, label: str, results: list[tuple[str, float, float, str]]) -> None:
    from preserve.audit.html import render_html
    from preserve.audit.ledger import Ledger
    from preserve.audit.report import build_report, render_text
    from preserve.audit.runner import Policy

    with Ledger(target, create=False) as led:
        t = time.perf_counter()
        # the ledger's part of plan_audit: the least recently audited bags, each one's tier by
        # policy, taken until the budget (10 TB here) is spent
        policy, budget, spent, chosen = Policy(), 10 * 10**12, 0, 0
        for state in led.bag_states(limit=1000):
            policy.choose(state)
            if spent + (state.payload_bytes or 0) > budget:
                break
            spent += state.payload_bytes or 0
            chosen += 1
        results.append((f"{label}: planning ({chosen:,} least recently audited bags, tier by policy)",
                        time.perf_counter() - t, PLAN_S, "s"))
        t = time.perf_counter()
        report = build_report(led)
        text, data, html = render_text(report), json.dumps(report.to_dict()), render_html(report)
        results.append((f"{label}: report text+JSON+HTML ({len(html) / 1e6:.1f} MB of HTML, "
                        f"{report.summary['failing_now']:,} failing of {report.summary['bags']:,} bags)",
                        time.perf_counter() - t, REPORT_S, "s"))
        del text, data, html, report


def _writer(url: str, me: int, count: int, start: float, batch: int) -> None:
    from preserve.audit.ledger import AuditRecord, Ledger

    time.sleep(max(0.0, start - time.time()))
    with Ledger(url) as led:
        for start_at in range(0, count, batch):
            led.record_audits([AuditRecord(location=f"/vault/w{me}/bag{i % 500}", identifier=f"w{me}-{i % 500}", tier="fast",
                                           started="2026-12-01T00:00:00Z", ended="2026-12-01T00:00:01Z", bytes=1, files=1,
                                           outcome="pass", algorithm="xxh3-128", tool_version="bench")
                               for i in range(start_at, min(count, start_at + batch))])


def measure_writers(url: str, writers: int, each: int, batch: int, results: list[tuple[str, float, float, str]]) -> None:
    start = time.time() + 1.0
    procs = [multiprocessing.Process(target=_writer, args=(url, n, each, start, batch)) for n in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.time() - start
    results.append((f"postgresql: recording from {writers} writers ({writers * each:,} outcomes, {batch} per transaction)",
                    writers * each / elapsed, WRITES_PER_S, "/s"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=int, default=1_000_000)
    ap.add_argument("--audits", type=int, default=10_000_000)
    ap.add_argument("--postgresql", metavar="URL", help="an empty PostgreSQL database to build the same ledger in")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--outcomes", type=int, default=20_000, help="outcomes per writer")
    ap.add_argument("--batch", type=int, default=250, help="outcomes per transaction (Ledger.record_audits)")
    ap.add_argument("--tmp", help="where the SQLite ledger is built (default: the system's temporary folder)")
    ap.add_argument("--skip-sqlite", action="store_true", help="measure PostgreSQL only")
    args = ap.parse_args(argv)
    results = Results()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            path = Path(tmp) / "bench.sqlite"
            t = time.perf_counter()
            fill = build("sqlite", str(path), args.bags, args.audits)
            print(f"built a SQLite ledger of {args.bags:,} bags and {args.audits:,} audits in "
                  f"{time.perf_counter() - t:.0f} s ({path.stat().st_size / 2**30:.1f} GiB)", file=sys.stderr)
            results.append(("sqlite: the version 5 migration's fill (every bag's summary, the months)", fill, 0.0, "s"))
            measure(path, "sqlite", results)
    if args.postgresql:
        t = time.perf_counter()
        fill = build("postgresql", args.postgresql, args.bags, args.audits)
        print(f"built the PostgreSQL ledger in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        results.append(("postgresql: the version 5 migration's fill (every bag's summary, the months)", fill, 0.0, "s"))
        measure(args.postgresql, "postgresql", results)
        measure_writers(args.postgresql, args.writers, args.outcomes, args.batch, results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.append(("peak memory of the measuring process", peak, PEAK_MIB, "MiB"))
    missed = 0
    for name, value, target, unit in results:
        if not target:  # a figure shown for reference, with no target of its own
            print(f"     {name}: {value:,.2f} {unit}")
            continue
        ok = value >= target if unit == "/s" else value <= target
        missed += not ok
        print(f"{'ok  ' if ok else 'MISS'} {name}: {value:,.2f} {unit} (target {'>=' if unit == '/s' else '<='} {target:,.0f} {unit})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Ledger at scale: planning, reporting and recording on a synthetic ledger, SQLite and PostgreSQL.

    python benchmarks/bench_ledger.py                        # 1,000,000 bags, 10,000,000 audits (the targets)
    python benchmarks/bench_ledger.py --bags 20000 --audits 200000 --postgresql URL

Builds a ledger of ``--bags`` bags and ``--audits`` audits (0.1% failures, one finding each) on
SQLite (a temporary file) and, with ``--postgresql URL`` (an empty database), on PostgreSQL; then
measures, on each:

- planning: the ledger's part of choosing the next bags by policy (every bag's audit summary,
  least recently verified first), target under 2 s;
- report: ``build_report`` then text, JSON and HTML, target under 5 s;
- recording (PostgreSQL): outcomes per second from 8 concurrent writer processes, target 5,000/s;
- peak memory (max RSS) of the measuring process, target under 500 MiB.

Prints each figure beside its target and exits 1 when one is missed.
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
import uuid
from collections.abc import Iterator
from pathlib import Path

PLAN_S, REPORT_S, WRITES_PER_S, PEAK_MIB = 2.0, 5.0, 5000.0, 500.0


def _generate(bags: int, audits: int, chunk: int = 200_000) -> Iterator[tuple[str, list[tuple[object, ...]]]]:
    """Yield (table, rows) chunks: bags first, then audits with 0.1% failures (one finding each)."""
    for start in range(1, bags + 1, chunk):
        yield "bags", [(i, f"bag{i}", f"/vault/{i % 1000:03d}/bag{i}", 10_000_000, 100, "2020-01-01T00:00:00Z",
                        "2026-11-30T00:00:00Z") for i in range(start, min(bags, start + chunk - 1) + 1)]
    per_bag = max(1, audits // max(1, bags))
    finding = 0
    for start in range(1, audits + 1, chunk):
        rows: list[tuple[object, ...]] = []
        findings: list[tuple[object, ...]] = []
        for a in range(start, min(audits, start + chunk - 1) + 1):
            bag = (a - 1) // per_bag % bags + 1
            day = 1 + (a % 28)
            fail = a % 1000 == 0
            rows.append((a, f"{uuid.UUID(int=a)}", bag, "full" if a % 12 == 0 else "fast", f"2026-{1 + a % 11:02d}-{day:02d}T01:00:00Z",
                         f"2026-{1 + a % 11:02d}-{day:02d}T01:00:05Z", 10_000_000, 100, "fail" if fail else "pass",
                         "xxh3-128", "bench", "host"))
            if fail:
                finding += 1
                findings.append((finding, a, "data/objects/a.wav", "altered", "altered", "x", "y", "changed"))
        yield "audits", rows
        if findings:
            yield "findings", findings


_COLUMNS = {
    "bags": "id, identifier, location, payload_bytes, payload_files, first_seen, last_seen",
    "audits": "id, uuid, bag_id, tier, started, ended, bytes, files, outcome, algorithm, tool_version, host",
    "findings": "id, audit_id, file, kind, code, expected, found, message",
}


def build_sqlite(path: Path, bags: int, audits: int) -> None:
    from preserve.audit.ledger import Ledger

    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    for table, rows in _generate(bags, audits):
        marks = ",".join("?" * len(rows[0]))
        db.executemany(f"INSERT INTO {table} ({_COLUMNS[table]}) VALUES ({marks})", rows)
        db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()


def build_postgresql(url: str, bags: int, audits: int) -> None:
    import psycopg

    from preserve.audit.ledger import Ledger

    Ledger(url).close()  # the schema, as preserve makes it
    with psycopg.connect(url, autocommit=True) as conn:
        for table, rows in _generate(bags, audits):
            with conn.cursor().copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        for table in _COLUMNS:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.execute("ANALYZE")


def measure(target: str | Path, label: str, results: list[tuple[str, float, float, str]]) -> None:
    from preserve.audit.html import render_html
    from preserve.audit.ledger import Ledger
    from preserve.audit.report import build_report, render_text

    with Ledger(target, create=False) as led:
        t = time.perf_counter()
        states = led.bag_states()
        plan = sorted(states, key=lambda s: (s.last_audit is not None, s.last_audit or ""))[:1000]
        results.append((f"{label}: planning ({len(states):,} bags)", time.perf_counter() - t, PLAN_S, "s"))
        del states, plan
        t = time.perf_counter()
        report = build_report(led, history=1)
        render_text(report), json.dumps(report.to_dict()), render_html(report)
        results.append((f"{label}: report text+JSON+HTML", time.perf_counter() - t, REPORT_S, "s"))


def _writer(url: str, me: int, count: int, start: float) -> None:
    from preserve.audit.ledger import AuditRecord, Ledger

    time.sleep(max(0.0, start - time.time()))
    with Ledger(url) as led:
        for i in range(count):
            led.record_audit(AuditRecord(location=f"/vault/w{me}/bag{i % 500}", identifier=f"w{me}-{i % 500}", tier="fast",
                                         started="2026-12-01T00:00:00Z", ended="2026-12-01T00:00:01Z", bytes=1, files=1,
                                         outcome="pass", algorithm="xxh3-128", tool_version="bench"))


def measure_writers(url: str, writers: int, each: int, results: list[tuple[str, float, float, str]]) -> None:
    start = time.time() + 1.0
    procs = [multiprocessing.Process(target=_writer, args=(url, n, each, start)) for n in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.time() - start
    results.append((f"postgresql: recording from {writers} writers ({writers * each:,} outcomes)",
                    writers * each / elapsed, WRITES_PER_S, "/s"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=int, default=1_000_000)
    ap.add_argument("--audits", type=int, default=10_000_000)
    ap.add_argument("--postgresql", metavar="URL", help="an empty PostgreSQL database to build the same ledger in")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--outcomes", type=int, default=2000, help="outcomes per writer")
    args = ap.parse_args(argv)
    results: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        t = time.perf_counter()
        build_sqlite(path, args.bags, args.audits)
        print(f"built a SQLite ledger of {args.bags:,} bags and {args.audits:,} audits in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
        measure(path, "sqlite", results)
    if args.postgresql:
        t = time.perf_counter()
        build_postgresql(args.postgresql, args.bags, args.audits)
        print(f"built the PostgreSQL ledger in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        measure(args.postgresql, "postgresql", results)
        measure_writers(args.postgresql, args.writers, args.outcomes, results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.append(("peak memory of the measuring process", peak, PEAK_MIB, "MiB"))
    missed = 0
    for name, value, target, unit in results:
        ok = value >= target if unit == "/s" else value <= target
        missed += not ok
        print(f"{'ok  ' if ok else 'MISS'} {name}: {value:,.2f} {unit} (target {'>=' if unit == '/s' else '<='} {target:,.0f} {unit})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

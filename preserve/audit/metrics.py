"""``preserve report --metrics FILE``: the report's figures in the Prometheus text format.

What node_exporter's textfile collector reads (``--collector.textfile.directory``): one file,
replaced atomically, every metric prefixed ``preserve_``. The exposition is written by
prometheus_client (the format's reference implementation), from a :class:`~preserve.audit.report.Report`.

============================================  =====================================================
``preserve_bags``                              bags known (the ledger's, and unknown ones found on disk)
``preserve_payload_bytes``                     payload bytes of the bags the ledger knows
``preserve_audits``                            audits recorded
``preserve_verified_bytes``                    bytes read by every audit recorded
``preserve_never_audited_bags``                bags never audited
``preserve_overdue_bags``                      bags whose last audit is older than ``--every``
``preserve_open_failures``                     bags whose latest audit failed
``preserve_last_audit_age_seconds{tier}``      seconds since the latest audit of each tier ended
``preserve_oldest_verification_age_seconds``   seconds since the least recently audited bag's last audit
``preserve_last_audit_duration_seconds{tier}`` how long the latest audit of each tier took
``preserve_bags_by_copies{copies}``            bags by how many copies they have
``preserve_bags_by_ndsa_level{level}``         bags by NDSA 2.0 storage level
``preserve_report_timestamp_seconds``          when the report was made (Unix time)
============================================  =====================================================
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from preserve.audit.ledger import Ledger, parse_iso
from preserve.audit.report import Report
from preserve.errors import UsageError


def render_metrics(report: Report, ledger: Ledger, now: float) -> bytes:
    """The Prometheus text exposition of ``report`` (read from ``ledger``) at Unix time ``now``."""
    try:
        from prometheus_client import CollectorRegistry, Gauge, generate_latest
    except ImportError as exc:
        raise UsageError("--metrics needs prometheus_client: pip install 'preserve[metrics]'") from exc
    registry = CollectorRegistry()
    gauges: dict[str, Any] = {}

    def gauge(name: str, doc: str, value: float, **labels: str) -> None:
        if name not in gauges:
            gauges[name] = Gauge(f"preserve_{name}", doc, tuple(labels), registry=registry)
        (gauges[name].labels(**labels) if labels else gauges[name]).set(value)

    summary = report.summary
    totals = report.totals
    gauge("bags", "Bags known (the ledger's, and those found on disk it has not seen).", summary["bags"])
    gauge("payload_bytes", "Payload bytes of the bags the ledger knows.", totals.payload_bytes if totals else 0)
    gauge("audits", "Audits recorded in the ledger.", summary["audits"])
    gauge("verified_bytes", "Bytes read by every audit recorded.", summary["bytes_verified"])
    # a section's total, not its listed rows: a report lists the first 1,000 and counts the rest
    gauge("never_audited_bags", "Bags never audited.", report.section("never_audited").total)
    gauge("overdue_bags", "Bags whose last audit is older than the report's --every.", report.section("overdue").total)
    gauge("open_failures", "Bags whose latest audit failed.", report.section("open_failures").total)
    for tier, started, ended in ledger.latest_by_tier():
        gauge("last_audit_age_seconds", "Seconds since the latest audit of a tier ended.",
              max(0.0, now - parse_iso(ended).timestamp()), tier=tier)
        gauge("last_audit_duration_seconds", "How long the latest audit of a tier took.",
              max(0.0, parse_iso(ended).timestamp() - parse_iso(started).timestamp()), tier=tier)
    if totals is not None and totals.oldest_audit:
        gauge("oldest_verification_age_seconds", "Seconds since the least recently audited bag's last audit.",
              max(0.0, now - parse_iso(totals.oldest_audit).timestamp()))
    copies = report.tallies.get("copies") or Counter(int(r["copies"]) for r in report.section("copies").rows)
    levels = report.tallies.get("level") or Counter(int(r["level"]) for r in report.section("copies").rows)
    for n, count in sorted(copies.items()):
        gauge("bags_by_copies", "Bags by how many copies they have.", count, copies=str(n))
    for level, count in sorted(levels.items()):
        gauge("bags_by_ndsa_level", "Bags by NDSA 2.0 storage level.", count, level=str(level))
    gauge("report_timestamp_seconds", "When the report was made (Unix time).", now)
    return generate_latest(registry)

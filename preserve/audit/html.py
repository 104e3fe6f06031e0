"""A self-contained HTML report a curator can open from a file share, years from now.

One file: no scripts at all, no external styles, fonts or images (a Content-Security-Policy
forbids them, so a mistake shows up as a blocked load rather than a silent dependency). Charts
are inline SVG with their numbers repeated in tables and ``<title>`` tooltips.
"""

from __future__ import annotations

import html
from typing import Any

from preserve.audit.report import Report, format_cell, human_bytes
from preserve.textsafe import for_people


def escape(text: str) -> str:
    """Text for HTML: markup characters as entities, and the code points :func:`for_people` escapes
    shown as escapes too (a control character is not valid HTML; an override would reorder a
    name; the file is also read with ``less`` and ``grep``)."""
    return html.escape(for_people(text))

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#1d1d1f;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
.meta{color:#555}.cards{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}.card b{display:block;font-size:1.5em}
.bad b{color:#b00020}.good b{color:#1b7f3b}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f5f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b00020;font-weight:600}.pass{color:#1b7f3b}.empty{color:#555;font-style:italic}
svg{max-width:100%;height:auto;font:11px sans-serif}svg .axis{stroke:#888}svg .lbl{fill:#333}
details{margin:.2em 0}code{font-size:.9em;word-break:break-all}
"""

_GREEN, _RED, _BLUE, _AMBER = "#1b7f3b", "#b00020", "#2f6db5", "#b7791f"


def _bar_chart(chart_id: str, title: str, labels: list[str], series: list[tuple[str, str, list[float]]],
               fmt: Any = str) -> str:
    """Vertical stacked bars: one bar per label, one colour per series."""
    width, height, left, bottom, top = 760, 260, 60, 40, 20
    n = max(len(labels), 1)
    totals = [sum(s[2][i] for s in series) for i in range(len(labels))] or [0]
    peak = max(max(totals), 1)
    slot = (width - left - 10) / n
    bar = max(min(slot * 0.7, 40), 2)
    parts = [f'<svg id="{chart_id}" class="chart" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
             f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}"/>',
             f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}"/>',
             f'<text class="lbl" x="{left - 6}" y="{top + 4}" text-anchor="end">{escape(fmt(peak))}</text>',
             f'<text class="lbl" x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>']
    scale = (height - bottom - top) / peak
    step = max(1, n // 12)  # at most ~12 axis labels
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        y = float(height - bottom)
        for name, colour, values in series:
            h = values[i] * scale
            if h <= 0:
                continue
            y -= h
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                         f'<title>{escape(label)}: {escape(fmt(values[i]))} {escape(name)}</title></rect>')
        if i % step == 0:
            parts.append(f'<text class="lbl" x="{x + bar / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle">{escape(label)}</text>')
    legend_x = left
    for name, colour, _ in series:
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text class="lbl" x="{legend_x + 14}" y="{height - 5}">{escape(name)}</text>')
        legend_x += 14 + 8 * len(name) + 16
    parts.append("</svg>")
    return "".join(parts)


def _outcome_chart(outcomes: list[dict[str, Any]], limit: int = 40) -> str:
    """Horizontal stacked bars per bag: passed and failed audits (bags with failures first)."""
    rows = sorted(outcomes, key=lambda r: (-(r["failed"] or 0), r["identifier"]))[:limit]
    row_h, left, width = 18, 220, 760
    height = max(len(rows), 1) * row_h + 30
    peak = max([(r["passed"] or 0) + (r["failed"] or 0) for r in rows] or [1])
    scale = (width - left - 40) / max(peak, 1)
    parts = [f'<svg id="chart-outcome-by-bag" class="chart" role="img" aria-label="Audit outcomes by bag" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>Audit outcomes by bag</title>']
    for i, r in enumerate(rows):
        y = 10 + i * row_h
        name = r["identifier"] if len(r["identifier"]) <= 32 else r["identifier"][:31] + "…"
        parts.append(f'<text class="lbl" x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(name)}</text>')
        x = float(left)
        for key, colour in (("passed", _GREEN), ("failed", _RED)):
            w = (r[key] or 0) * scale
            if w > 0:
                parts.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 4}" fill="{colour}">'
                             f'<title>{escape(r["identifier"])}: {r[key]} {key}</title></rect>')
                x += w
        parts.append(f'<text class="lbl" x="{x + 4:.1f}" y="{y + 12}">{r["passed"] or 0} / {r["failed"] or 0}</text>')
    if not rows:
        parts.append(f'<text class="lbl" x="{left}" y="20">no audits yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(columns: list[tuple[str, str, str]], rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for _, h, _ in columns)
    body = []
    for row in rows:
        cells = []
        for key, _, kind in columns:
            value = row.get(key)
            cls = ' class="num"' if kind in ("bytes", "count") else ""
            if key == "outcome":
                cls = f' class="{escape(str(value))}"'
            text = escape(format_cell(value, kind))
            if key == "location":
                text = f"<code>{text}</code>"
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
        if row.get("details"):
            items = "".join(
                f"<li><b>{escape(f['kind'])}</b> <code>{escape(f['file'] or '(the bag)')}</code>: {escape(f['message'])}"
                + (f" (expected <code>{escape(str(f['expected']))}</code>, found <code>{escape(str(f['found']))}</code>)"
                   if f.get("expected") or f.get("found") else "") + "</li>"
                for f in row["details"])
            body.append(f'<tr><td colspan="{len(columns)}"><details><summary>{len(row["details"])} finding(s)</summary>'
                        f"<ul>{items}</ul></details></td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: Report) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    s = report.summary
    months = [m["month"] for m in report.monthly]
    series = [("passed", _GREEN, [float((m["audits"] or 0) - (m["failed"] or 0) - (m.get("pending") or 0)) for m in report.monthly]),
              ("failed", _RED, [float(m["failed"] or 0) for m in report.monthly])]
    if any(m.get("pending") for m in report.monthly):
        series.append(("pending restore", _AMBER, [float(m.get("pending") or 0) for m in report.monthly]))
    audits_chart = _bar_chart("chart-audits-per-month", "Audits per month", months, series, fmt=lambda v: f"{v:.0f}")
    bytes_chart = _bar_chart("chart-bytes-verified", "Bytes verified per month", months,
                             [("bytes verified", _BLUE, [float(m["bytes"] or 0) for m in report.monthly])],
                             fmt=human_bytes)
    failing = int(s.get("failing_now", 0))
    cards = [("bags", s["bags"], ""), ("audits", s["audits"], ""), ("verified", human_bytes(s["bytes_verified"]), ""),
             ("failing now", failing, "bad" if failing else "good")]
    cards += [(r.section.title.lower(), r.total, "bad" if r.rows else "good")
              for r in report.sections if r.section.problem and r.section.key != "open_failures"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>preserve fixity audit report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Fixity audit report</h1>",
        f'<p class="meta">Generated {escape(report.generated)} from the ledger <code>{escape(report.ledger)}</code>. '
        f"Bags are overdue {report.every_days:g} days after their last audit.</p>",
        '<div class="cards">' + "".join(f'<div class="card {c}"><b>{escape(str(v))}</b>{escape(k)}</div>' for k, v, c in cards) + "</div>",
        "<h2>Audits per month</h2>", audits_chart,
        "<h2>Bytes verified per month</h2>", bytes_chart,
        "<h2>Outcome by bag</h2>", '<p class="meta">Passed / failed audits; bags with failures first.</p>',
        _outcome_chart(report.outcomes),
    ]
    for result in report.sections:
        sec = result.section
        parts.append(f'<h2 id="{escape(sec.key)}">{escape(sec.title)} ({result.total})</h2>')
        if not result.rows:
            parts.append(f'<p class="empty">{escape(sec.empty)}</p>')
        else:
            parts.append(_table([(c.key, c.heading, c.kind) for c in sec.columns], result.rows))
            if result.left_out:
                parts.append(f'<p class="meta">… and {result.left_out} more; the first {len(result.rows)} are listed.</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)

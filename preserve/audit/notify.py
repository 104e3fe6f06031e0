"""The webhook: when an audit finds problems, POST a JSON summary to a URL (Slack relays, ticket
systems, a monitoring bridge). Standard library only."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from preserve.audit.runner import AuditRun
from preserve.errors import RemoteError, UsageError

#: Findings listed per bag in the message; the ledger has them all.
MAX_FINDINGS_PER_BAG = 100


def check_url(url: str) -> str:
    """Accept only http(s) URLs (urllib would also open file:// and ftp://)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--notify {url!r}: give an http:// or https:// URL")
    return url


def summary_payload(run: AuditRun, ledger: str) -> dict[str, Any]:
    """The JSON body: who, when, totals, and for each failed bag its findings (capped)."""
    problems = []
    for r in run.failed:
        problems.append({
            "bag": r.identifier, "location": r.location, "tier": r.tier, "ended": r.ended,
            "findings_total": len(r.findings),
            "findings": [{"file": f.file, "kind": f.kind, "message": f.message, "expected": f.expected, "found": f.found}
                         for f in r.findings[:MAX_FINDINGS_PER_BAG]],
        })
    return {
        "event": "preserve.audit.problems", "host": socket.gethostname(), "ledger": ledger,
        "started": run.started, "ended": run.ended, "bags_audited": len(run.records),
        "bags_ok": len(run.records) - len(run.failed) - len(run.pending), "bags_with_problems": len(run.failed),
        "bags_pending": len(run.pending),
        "bytes": run.bytes, "files": run.files, "problems": problems,
    }


def post_json(url: str, payload: dict[str, Any], *, timeout: float = 30.0) -> int:
    """POST ``payload`` as JSON; returns the HTTP status, raises :class:`RemoteError` on failure."""
    check_url(url)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "preserve-audit"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise RemoteError(f"{url}: the webhook answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(f"{url}: cannot post the audit summary ({reason})") from exc

"""When an audit finds problems: POST a JSON summary to a webhook (Slack relays, ticket systems, a
monitoring bridge), or mail a plain-text summary (``--notify mailto:ops@example.org``) through the
SMTP server named in preserve.toml ``[smtp]``, the HTML report attached when asked. Standard
library only."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preserve.audit.runner import AuditRun
from preserve.configfile import read_config
from preserve.errors import InputError, RemoteError, UsageError
from preserve.textsafe import for_people

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


# -- e-mail: --notify mailto:ops@example.org, the SMTP server from preserve.toml [smtp] ------------

#: The environment variable holding the SMTP password (preserve.toml holds no secrets).
SMTP_PASSWORD_ENV = "PRESERVE_SMTP_PASSWORD"


@dataclass(frozen=True)
class SmtpSettings:
    """``[smtp]`` in preserve.toml: where to send, how to secure it, who sends, what to attach."""

    host: str = "localhost"
    port: int | None = None
    security: str = "starttls"  # starttls | ssl | none
    username: str | None = None
    sender: str | None = None
    ca_file: str | None = None
    attach_html: bool = False
    timeout: float = 30.0


def check_notify(target: str) -> str:
    """``--notify``: an http(s) webhook or ``mailto:address``; anything else is a usage error."""
    if target.lower().startswith("mailto:"):
        address = target[len("mailto:"):].split("?", 1)[0]
        if "@" not in address or any(c in address for c in "\r\n,; "):
            raise UsageError(f"--notify {target!r}: give one address, as mailto:ops@example.org")
        return target
    return check_url(target)


def load_smtp_settings(path: Path | None) -> SmtpSettings:
    """``[smtp]`` of the preserve.toml at ``path`` (defaults when there is none; a file named by
    --config or $PRESERVE_CONFIG must exist)."""
    if path is None:
        return SmtpSettings()
    if not path.is_file():
        raise InputError(f"{path}: no such configuration file")
    # every key checked (an unknown one is a usage error); the password comes from $PRESERVE_SMTP_PASSWORD
    data = read_config(path).get("smtp") or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: smtp must be a table ([smtp], its keys on the lines below it)")
    security = str(data.get("security", "starttls")).lower()
    if security not in ("starttls", "ssl", "none"):
        raise InputError(f"{path}: [smtp] security must be starttls, ssl or none, not {security!r}")
    return SmtpSettings(host=str(data.get("host", "localhost")), port=int(data["port"]) if "port" in data else None,
                        security=security, username=data.get("username"), sender=data.get("from"),
                        ca_file=data.get("ca-file"), attach_html=bool(data.get("attach-html", False)),
                        timeout=float(data.get("timeout", 30.0)))


def mail_text(run: AuditRun, ledger: str) -> str:
    """The plain-text summary: totals, each failing bag with its findings, and what to do."""
    p = summary_payload(run, ledger)
    lines = [f"preserve audited {p['bags_audited']} bag(s) on {p['host']} from {p['started']} to {p['ended']}:",
             f"{p['bags_ok']} ok, {p['bags_with_problems']} with problems, {p['bags_pending']} pending.",
             f"Ledger: {ledger}", ""]
    for bag in p["problems"]:
        lines.append(f"{bag['bag']} ({bag['tier']} audit, {bag['ended']}): {bag['findings_total']} problem(s)")
        lines.append(f"  {bag['location']}")
        for f in bag["findings"]:
            lines.append(f"  - {f['kind']}: {f['file'] or '(the bag)'}: {f['message']}")
        if bag["findings_total"] > len(bag["findings"]):
            lines.append(f"  ... and {bag['findings_total'] - len(bag['findings'])} more in the ledger")
        lines.append("")
    lines += ["What to do:",
              "- see a bag's whole history: preserve report --bag IDENTIFIER --ledger LEDGER",
              "- restore damaged files from a replica that verifies: preserve repair BAG --from TARGET",
              "- a bag reported gone: find where it was moved, or restore it: preserve restore URL DEST",
              "Nothing was changed by the audit: it only reads."]
    return "\n".join(for_people(line) for line in lines) + "\n"


def send_mail(target: str, run: AuditRun, ledger: str, settings: SmtpSettings, html: str | None = None) -> None:
    """Send the summary to ``mailto:address`` through the configured SMTP server (the HTML report
    attached when given); :class:`RemoteError` when the server refuses or cannot be reached."""
    import smtplib
    import ssl
    from email.message import EmailMessage

    to = check_notify(target)[len("mailto:"):].split("?", 1)[0]
    msg = EmailMessage()
    msg["Subject"] = f"preserve audit on {socket.gethostname()}: {len(run.failed)} bag(s) with problems"
    msg["From"] = settings.sender or f"preserve@{socket.getfqdn()}"
    msg["To"] = to
    msg.set_content(mail_text(run, ledger))
    if html is not None:
        msg.add_attachment(html.encode("utf-8"), maintype="text", subtype="html", filename="preserve-report.html")
    context = ssl.create_default_context(cafile=settings.ca_file)
    where = f"smtp://{settings.host}:{settings.port or ''}"
    try:
        if settings.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port or 465, timeout=settings.timeout,
                                                    context=context)
        else:
            server = smtplib.SMTP(settings.host, settings.port or (587 if settings.security == "starttls" else 25),
                                  timeout=settings.timeout)
        with server:
            if settings.security == "starttls":
                server.starttls(context=context)
            if settings.username:
                password = os.environ.get(SMTP_PASSWORD_ENV)
                if password is None:
                    raise RemoteError(f"{where}: [smtp] username is set but ${SMTP_PASSWORD_ENV} is not; set it to the password")
                server.login(settings.username, password)
            server.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise RemoteError(f"{where}: cannot send the audit summary to {to} ({exc})") from exc


def deliver(target: str, run: AuditRun, ledger: str, *, config: Path | None = None,
            html: Callable[[], str] | None = None) -> None:
    """Send the summary to ``target``: POST to a webhook, or mail it (``[smtp]`` of ``config``;
    ``html`` makes the HTML report when the settings ask for it attached)."""
    if target.lower().startswith("mailto:"):
        settings = load_smtp_settings(config)
        send_mail(target, run, ledger, settings, html() if settings.attach_html and html is not None else None)
    else:
        post_json(target, summary_payload(run, ledger))

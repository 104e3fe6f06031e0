"""What the ledger tells curators: the report sections, the HTML page in a real browser, the
webhook, and the PREMIS history of a bag."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from audit_helpers import flip_byte, ledger_exists, xxh3_of
from lxml import etree

from preserve.audit.ledger import AuditRecord, FindingRecord, Ledger


def _stamp(days_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(led: Ledger, bag: Path, days_ago: float, outcome: str = "pass", tier: str = "fast",
            findings: list[FindingRecord] | None = None) -> None:
    when = _stamp(days_ago)
    led.record_audit(AuditRecord(location=str(bag), identifier=f"id-{bag.name}", tier=tier, started=when, ended=when,
                                 bytes=20016, files=2, outcome=outcome, algorithm="xxh3-128", tool_version="0.1.0",
                                 findings=findings or []))


def test_report_lists_never_audited_overdue_and_open_failures(make_bag, tmp_path: Path, ledger_path: Path, pv) -> None:
    fresh = make_bag("fresh")
    stale = make_bag("stale")
    broken = make_bag("broken")
    with Ledger(ledger_path) as led:
        _record(led, stale, 40)
    flip_byte(broken / "data/objects/a.wav")
    assert pv("audit", broken, "--tier", "fast", "--ledger", ledger_path).exit_code == 1

    result = pv("report", tmp_path / "archive", "--ledger", ledger_path, "--json")
    assert result.exit_code == 1
    assert result.stderr.strip() == "preserve: error: bags need attention: 1 bags never audited, 1 bags overdue, 1 failures still open"
    report = json.loads(result.stdout)
    sections = report["sections"]
    assert [r["location"] for r in sections["never_audited"]] == [str(fresh)]
    assert [(r["location"], r["age_days"]) for r in sections["overdue"]] == [(str(stale), 40.0)]
    [open_failure] = sections["open_failures"]
    assert open_failure["location"] == str(broken) and open_failure["problems"] == "1 altered"
    assert [(d["kind"], d["file"], d["expected"]) for d in open_failure["details"]] == [
        ("altered", "data/objects/a.wav", xxh3_of(broken, "data/objects/a.wav"))]
    assert [(r["identifier"], r["outcome"]) for r in sections["history"]] == [("id-stale", "pass"), ("id-broken", "fail")]

    text = pv("report", tmp_path / "archive", "--ledger", ledger_path, "--every", "60d")
    assert "Bags overdue (0)\n  no bag is overdue" in text.stdout
    assert "Failures still open (1)" in text.stdout
    assert "      altered: data/objects/a.wav: xxh3-128 checksum does not match metadata/xxh3-128.txt" in text.stdout

    # repaired and audited again: the failure is closed and nothing needs attention
    flip_byte(broken / "data/objects/a.wav")
    assert pv("audit", tmp_path / "archive", "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 0
    clean = pv("report", "--ledger", ledger_path)
    assert clean.exit_code == 0, clean.stdout
    assert "Failures still open (0)\n  no open failures: the latest audit of every bag passed" in clean.stdout


def test_report_history_of_one_bag_carries_every_finding(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("hist")
    assert pv("audit", bag, "--tier", "full", "--ledger", ledger_path).exit_code == 0
    os.unlink(bag / "data/objects/b.txt")
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 1
    result = pv("report", "--bag", "id-hist", "--ledger", ledger_path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert re.match(r"^\S+Z  full  pass  2 file\(s\), 20.0 kB, sha256\+sha512, preserve 0\.1\.0 on ", lines[0])
    assert re.match(r"^\S+Z  fast  fail  1 file\(s\), 20.0 kB, xxh3-128, ", lines[1])
    assert lines[2:] == ["    missing: data/objects/b.txt: listed in the manifest but not found in the bag",
                         "    oxum: bag-info.txt: Payload-Oxum does not match the payload (expected 20016.2, found 20004.1)"]
    unknown = pv("report", "--bag", "nope", "--ledger", ledger_path)
    assert unknown.exit_code == 3
    assert "nope: no such bag in the ledger" in unknown.stderr


# -- the HTML report in a real browser ----------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _chromium(page: Path, profile: Path) -> tuple[str, str]:
    assert CHROMIUM is not None
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian package chromium) on this machine")
def test_the_html_report_opens_in_chromium_without_console_errors(make_bag, tmp_path: Path, ledger_path: Path, pv) -> None:
    bags = [make_bag(f"bag{i}") for i in range(3)]
    with Ledger(ledger_path) as led:
        for month in range(5):
            for bag in bags:
                _record(led, bag, 31 * (5 - month) + 1)
        _record(led, bags[1], 1, outcome="fail", findings=[
            FindingRecord(file="data/objects/<a&b>.wav", kind="altered", message="xxh3-128 checksum does not match",
                          expected="00", found="ff")])
    page = tmp_path / "report.html"
    result = pv("report", "--ledger", ledger_path, "--html", page)
    assert result.exit_code == 1  # one open failure
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), "the report must not load anything"
    assert "<script" not in html

    dom, log = _chromium(page, tmp_path / "profile")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == []
    tree = etree.HTML(dom)
    chart = tree.xpath('//*[local-name()="svg" and @id="chart-audits-per-month"]')
    assert len(chart) == 1
    months = {m for m in chart[0].xpath('.//*[local-name()="text"]/text()') if re.fullmatch(r"\d{4}-\d{2}", m)}
    assert len(months) >= 5
    bars = chart[0].xpath('.//*[local-name()="rect" and @class="bar"]')
    assert len(bars) >= 6  # five or six months of passes and one month with a failure
    assert any("failed" in "".join(b.xpath("./*[local-name()='title']/text()")) for b in bars)
    assert tree.xpath('//*[local-name()="svg" and @id="chart-bytes-verified"]')
    outcome = tree.xpath('//*[local-name()="svg" and @id="chart-outcome-by-bag"]')[0]
    assert "id-bag1" in "".join(outcome.itertext())
    assert "data/objects/<a&b>.wav" in "".join(tree.itertext())  # escaped, shown as text


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian package chromium) on this machine")
def test_the_console_check_does_catch_a_blocked_load(tmp_path: Path) -> None:
    # the control for the test above: a page that loads something does show up in the log
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
                    '<link rel="stylesheet" href="https://example.invalid/x.css"></head><body>x</body></html>', encoding="utf-8")
    _dom, log = _chromium(page, tmp_path / "profile")
    assert [line for line in log.splitlines() if ":CONSOLE" in line]


# -- the webhook ---------------------------------------------------------------------------------

def test_a_webhook_receives_the_failure_summary(make_bag, tmp_path: Path, ledger_path: Path, pv, webhook) -> None:
    url, received = webhook
    good = make_bag("good")
    bad = make_bag("bad")
    assert pv("audit", good, "--tier", "fast", "--ledger", ledger_path, "--notify", url).exit_code == 0
    assert received == []  # nothing to say when everything verified
    flip_byte(bad / "data/objects/a.wav")
    result = pv("audit", tmp_path / "archive", "--tier", "fast", "--ledger", ledger_path, "--notify", url)
    assert result.exit_code == 1
    [call] = received
    assert call["path"] == "/hooks/audit" and call["type"] == "application/json; charset=utf-8"
    body = call["body"]
    assert (body["event"], body["bags_audited"], body["bags_ok"], body["bags_with_problems"]) == ("preserve.audit.problems", 2, 1, 1)
    assert body["ledger"] == str(ledger_path)
    [problem] = body["problems"]
    assert (problem["bag"], problem["location"], problem["tier"], problem["findings_total"]) == ("id-bad", str(bad), "fast", 1)
    assert problem["findings"][0]["kind"] == "altered" and problem["findings"][0]["file"] == "data/objects/a.wav"
    assert problem["findings"][0]["expected"] == xxh3_of(bad, "data/objects/a.wav")


def test_a_failing_webhook_is_a_warning_and_the_exit_code_stays_1(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("hookless")
    flip_byte(bag / "data/objects/a.wav")
    result = pv("audit", bag, "--tier", "fast", "--ledger", ledger_path, "--notify", "http://127.0.0.1:9/none")
    assert result.exit_code == 1
    assert "the audit found problems, and the webhook failed too: http://127.0.0.1:9/none: cannot post the audit summary" in result.stderr
    # the help says what happens: a failed webhook warns, only an unreachable scheduler is exit 6
    help_text = " ".join(pv("audit", "--help").stdout.split())
    assert "6 Dask scheduler unreachable" in help_text and "webhook unreachable" not in help_text
    assert "A webhook that cannot be reached is a warning: the exit code stays that of the audit." in help_text
    bad_url = pv("audit", bag, "--ledger", ledger_path, "--notify", "file:///etc/passwd")
    assert bad_url.exit_code == 2
    assert "--notify 'file:///etc/passwd': give an http:// or https:// URL" in bad_url.stderr


# -- PREMIS events -------------------------------------------------------------------------------

P = "{http://www.loc.gov/premis/v3}"
BAG_PREMIS = b"""<?xml version="1.0" encoding="UTF-8"?>
<premis:premis xmlns:premis="http://www.loc.gov/premis/v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="3.0">
  <premis:object xsi:type="premis:intellectualEntity">
    <premis:objectIdentifier><premis:objectIdentifierType>UUID</premis:objectIdentifierType>
      <premis:objectIdentifierValue>6f1e0c1e-7a43-4a57-9d1c-1f0a5c3b9e10</premis:objectIdentifierValue></premis:objectIdentifier>
  </premis:object>
  <premis:event>
    <premis:eventIdentifier><premis:eventIdentifierType>UUID</premis:eventIdentifierType>
      <premis:eventIdentifierValue>0b8f1b7e-2c55-4e0b-9d0e-7f6f5d7d1a01</premis:eventIdentifierValue></premis:eventIdentifier>
    <premis:eventType>information package creation</premis:eventType>
    <premis:eventDateTime>2026-01-05T10:00:00Z</premis:eventDateTime>
    <premis:eventOutcomeInformation><premis:eventOutcome>success</premis:eventOutcome></premis:eventOutcomeInformation>
  </premis:event>
  <premis:agent>
    <premis:agentIdentifier><premis:agentIdentifierType>UUID</premis:agentIdentifierType>
      <premis:agentIdentifierValue>a0c9e8f3-1111-4a57-9d1c-1f0a5c3b9e10</premis:agentIdentifierValue></premis:agentIdentifier>
    <premis:agentName>Sound Archive</premis:agentName>
  </premis:agent>
</premis:premis>
"""


def _premis_schema(schemas_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schemas_dir / "premis-v3-0.xsd")))


def test_events_validate_and_carry_the_failed_outcomes(make_bag, tmp_path: Path, ledger_path: Path, pv, schemas_dir: Path) -> None:
    bag = make_bag("history")
    (bag / "metadata/premis.xml").write_bytes(BAG_PREMIS)  # as if packaged with its sidecars
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 0
    flip_byte(bag / "data/objects/a.wav")
    os.unlink(bag / "data/objects/b.txt")
    assert pv("audit", bag, "--tier", "full", "--ledger", ledger_path).exit_code == 1
    with Ledger(ledger_path) as led:
        led.record_replica(str(bag), "s3://vault/a", location="s3://vault/a/history/", started=_stamp(0), ended=_stamp(0),
                           objects=8, bytes=20016, outcome="pass", site="Leeds", detail={"parts": [20016]})
        led.record_repair(str(bag), "data/objects/a.wav", "s3://vault/a", outcome="pass", time=_stamp(0))

    out = tmp_path / "events.xml"
    result = pv("events", bag, "--ledger", ledger_path, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert f"wrote 5 event(s) for {bag} to {out}" in result.stderr
    doc = etree.parse(str(out))
    schema = _premis_schema(schemas_dir)
    assert schema.validate(doc), schema.error_log
    root = doc.getroot()
    objects = root.findall(f"{P}object")
    assert objects[0].findtext(f"{P}objectIdentifier/{P}objectIdentifierValue") == "id-history"
    assert len(objects) == 2  # the bag, and the intellectual entity of its own PREMIS
    events = root.findall(f"{P}event")
    assert [e.findtext(f"{P}eventType") for e in events] == [
        "information package creation", "fixity check", "fixity check", "replication", "recovery"]
    assert [e.findtext(f"{P}eventOutcomeInformation/{P}eventOutcome") for e in events[1:3]] == ["pass", "fail"]
    notes = [n.text for n in events[2].iter(f"{P}eventOutcomeDetailNote")]
    assert notes == [
        "1 file(s), 20004 bytes read",
        "missing: data/objects/b.txt: listed in the manifest but not found in the bag",
        "oxum: bag-info.txt: Payload-Oxum does not match the payload (expected 20016.2, found 20004.1)",
        f"altered: data/objects/a.wav: sha256 checksum does not match manifest-sha256.txt (expected {_manifest(bag, 'sha256')}, found {_sha256(bag)})",
        f"altered: data/objects/a.wav: sha512 checksum does not match manifest-sha512.txt (expected {_manifest(bag, 'sha512')}, found {_sha512(bag)})",
    ]
    assert "full tier audit (sha256+sha512)" in events[2].findtext(f"{P}eventDetailInformation/{P}eventDetail")
    assert [a.findtext(f"{P}agentName") for a in root.findall(f"{P}agent")] == ["Sound Archive", "preserve"]


def test_events_work_for_any_bag_and_go_to_standard_output(tmp_path: Path, ledger_path: Path, pv, schemas_dir: Path) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    (src / "a.txt").write_text("x")
    subprocess.run([sys.executable, "-m", "bagit", str(src)], check=True, capture_output=True)
    result = pv("events", src, "--ledger", ledger_path)
    assert result.exit_code == 0, result.stderr
    assert f"{ledger_path}: no ledger here; only the bag's own history is exported" in result.stderr
    assert not ledger_exists(ledger_path)
    doc = etree.fromstring(result.stdout.encode())
    assert _premis_schema(schemas_dir).validate(etree.ElementTree(doc))
    assert doc.findtext(f"{P}object/{P}objectIdentifier/{P}objectIdentifierValue") == "plain"
    assert doc.findall(f"{P}event") == []


def test_events_refuse_a_premis_with_entities_but_still_export(make_bag, ledger_path: Path, pv, schemas_dir: Path) -> None:
    bag = make_bag("xxe")
    (bag / "metadata/premis.xml").write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    result = pv("events", bag, "--ledger", ledger_path)
    assert result.exit_code == 0
    assert "XML refused (it declares entities" in result.stderr
    assert "passwd" not in result.stdout.replace("file:///etc/passwd", "")
    assert _premis_schema(schemas_dir).validate(etree.ElementTree(etree.fromstring(result.stdout.encode())))


def _manifest(bag: Path, alg: str) -> str:
    from audit_helpers import manifest_digest

    return manifest_digest(bag, alg, "data/objects/a.wav")


def _sha256(bag: Path) -> str:
    from audit_helpers import sha256_file

    return sha256_file(bag / "data/objects/a.wav")


def _sha512(bag: Path) -> str:
    import hashlib

    return hashlib.sha512((bag / "data/objects/a.wav").read_bytes()).hexdigest()


def test_events_of_a_packaged_bag_keep_its_packaging_history(tmp_path: Path, ledger_path: Path, pv, schemas_dir: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "label-masters"
    bag = tmp_path / "label-masters"
    packaged = pv("package", "--operator", "Test Operator", example, bag)
    assert packaged.exit_code == 0, packaged.stderr
    packaging = [e.findtext(f"{P}eventType") for e in etree.parse(str(bag / "metadata/premis.xml")).getroot().findall(f"{P}event")]
    flip_byte(bag / "data/objects/tides-ep/01-tides.wav", 2000)
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 1
    result = pv("events", bag, "--ledger", ledger_path)
    assert result.exit_code == 0, result.stderr
    doc = etree.fromstring(result.stdout.encode())
    assert _premis_schema(schemas_dir).validate(etree.ElementTree(doc))
    events = doc.findall(f"{P}event")
    assert [e.findtext(f"{P}eventType") for e in events] == [*packaging, "fixity check"]
    assert "ingestion" in packaging and "information package creation" in packaging
    last = events[-1]
    assert last.findtext(f"{P}eventOutcomeInformation/{P}eventOutcome") == "fail"
    assert any(n.text.startswith("altered: data/objects/tides-ep/01-tides.wav: xxh3-128 checksum does not match")
               for n in last.iter(f"{P}eventOutcomeDetailNote"))

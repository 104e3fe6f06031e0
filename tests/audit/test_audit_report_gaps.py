"""Reports that tell the whole truth: months without audits, copies whose original failed, output
written only where it can be, and the history of a bag that has lost its bagit.txt."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from lxml import etree

from preserve.audit.html import render_html
from preserve.audit.ledger import AuditRecord, Ledger
from preserve.audit.report import build_report


def _months_ago(n: int) -> str:
    today = dt.datetime.now(dt.UTC).replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    year, month = today.year, today.month - n
    while month < 1:
        year, month = year - 1, month + 12
    return today.replace(year=year, month=month).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(led: Ledger, location: str, ended: str, outcome: str = "pass", tier: str = "fast") -> None:
    led.record_audit(AuditRecord(location=location, identifier=Path(location).name, tier=tier, started=ended, ended=ended,
                                 bytes=1000, files=1, outcome=outcome, algorithm="xxh3-128", tool_version="0.1.0"))


def test_months_without_audits_are_zeros_in_the_charts(make_bag, ledger_path: Path) -> None:
    bag = make_bag("monthly")
    with Ledger(ledger_path) as led:
        _record(led, str(bag), _months_ago(4))
        _record(led, str(bag), _months_ago(2), outcome="fail")
        report = build_report(led)
    months = [m["month"] for m in report.monthly]
    assert months == [_months_ago(n)[:7] for n in (4, 3, 2, 1, 0)]  # up to this month, gaps included
    assert [(m["audits"], m["failed"], m["bytes"]) for m in report.monthly] == [(1, 0, 1000), (0, 0, 0), (1, 1, 1000), (0, 0, 0), (0, 0, 0)]
    svg = etree.HTML(render_html(report)).xpath('//*[local-name()="svg" and @id="chart-audits-per-month"]')[0]
    labels = [t for t in svg.xpath('.//*[local-name()="text"]/text()') if re.fullmatch(r"\d{4}-\d{2}", t)]
    assert labels == months
    bars = svg.xpath('.//*[local-name()="rect" and @class="bar"]')
    assert len(bars) == 2  # an empty month has a slot and a label, no bar


def test_a_new_ledger_has_no_months(ledger_path: Path) -> None:
    with Ledger(ledger_path) as led:
        assert led.monthly() == []


def test_an_original_whose_latest_audit_failed_is_not_a_copy(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("origin")
    with Ledger(ledger_path) as led:
        led.record_replica(str(bag), "/mnt/second", location="/mnt/second/origin", started=_months_ago(0),
                           ended=_months_ago(0), objects=5, bytes=1000, outcome="pass",
                           detail={"origin": {"site": "Leeds"}, "place": {"site": "York"}})
    copies = json.loads(pv("report", "--ledger", ledger_path, "--json").stdout)["sections"]["copies"]
    assert [(r["location"], r["copies"], r["level"]) for r in copies] == [(str(bag), 2, 1)]

    (bag / "data/objects/b.txt").write_bytes(b"bit rot")
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 1
    [row] = json.loads(pv("report", "--ledger", ledger_path, "--json").stdout)["sections"]["copies"]
    assert (row["copies"], row["level"], row["replicas"]) == (1, 0, ["/mnt/second/origin"])
    assert f"{bag}: latest audit of the original (fast) failed" in row["next"]


@pytest.mark.parametrize("command", [
    ("report", "--html"),
    ("ledger", "export", "-o"),
    ("events", "{bag}", "-o"),
    ("ledger", "backup"),
])
def test_output_into_a_missing_folder_is_a_storage_error_naming_it(make_bag, tmp_path: Path, ledger_path: Path, pv,
                                                                   command: tuple[str, ...]) -> None:
    bag = make_bag("dest")
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 0
    dest = tmp_path / "no-such-folder" / "out.file"
    args = [a.format(bag=bag) for a in command]
    result = pv(*args, dest, "--ledger", ledger_path)
    if command == ("ledger", "backup") and "://" in str(ledger_path):
        # a PostgreSQL ledger is backed up with the server's tools: said before anything is written
        assert result.exit_code == 7, result.stderr
        assert "back up a PostgreSQL ledger with pg_dump" in result.stderr
        assert not dest.parent.exists()
        return
    assert result.exit_code == 5, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{dest}: the folder {dest.parent} does not exist; create it first (nothing was written)" in result.stderr
    assert not dest.parent.exists()


def test_events_of_a_bag_that_lost_its_bagit_txt_come_from_the_ledger(make_bag, tmp_path: Path, ledger_path: Path, pv,
                                                                      schemas_dir: Path) -> None:
    bag = make_bag("damaged")
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 0
    (bag / "bagit.txt").unlink()
    assert pv("audit", bag.parent, "--tier", "fast", "--ledger", ledger_path, "-q").exit_code == 1
    out = tmp_path / "events.xml"
    result = pv("events", bag, "--ledger", ledger_path, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "the bag is identified from the ledger" in result.stderr
    doc = etree.parse(str(out))
    schema = etree.XMLSchema(etree.parse(str(schemas_dir / "premis-v3-0.xsd")))
    assert schema.validate(doc), schema.error_log
    p = "{http://www.loc.gov/premis/v3}"
    assert doc.getroot().findtext(f"{p}object/{p}objectIdentifier/{p}objectIdentifierValue") == "id-damaged"
    outcomes = [e.findtext(f"{p}eventOutcomeInformation/{p}eventOutcome") for e in doc.getroot().findall(f"{p}event")]
    assert outcomes == ["pass", "fail"]

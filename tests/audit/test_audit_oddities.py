"""Odd file names and messages survive the ledger, the JSON export and the PREMIS export (Hypothesis)."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from preserve.audit.events import bag_events
from preserve.audit.ledger import AuditRecord, FindingRecord, Ledger

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).resolve().parents[2].parent / "shared/schemas/premis-v3-0.xsd")))
names = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None)
@given(files=st.lists(names, min_size=1, max_size=4), message=names)
def test_any_file_name_round_trips_and_exports_valid_premis(files: list[str], message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        findings = [FindingRecord(file=f"data/{f}", kind="altered", message=message, code="altered",
                                  expected="0" * 32, found="f" * 32) for f in files]
        record = AuditRecord(location=f"{tmp}/bag", identifier="odd-bag", tier="fast", started="2026-01-01T00:00:00Z",
                             ended="2026-01-01T00:00:01Z", bytes=1, files=len(files), outcome="fail",
                             algorithm="xxh3-128", tool_version="0.1.0", findings=findings)
        with Ledger(Path(tmp) / "ledger.sqlite") as led:
            led.record_audit(record)
            [state] = led.bag_states()
            [back] = led.audits_for(state.id)
            assert back.findings == findings
            out = io.StringIO()
            led.export_jsonl(out)
            rows = [json.loads(line) for line in out.getvalue().splitlines()]
            assert [r["file"] for r in rows if r["table"] == "findings"] == [f"data/{f}" for f in files]
            doc = bag_events("odd-bag", led)
        tree = etree.fromstring(doc.xml)
        assert SCHEMA.validate(etree.ElementTree(tree)), SCHEMA.error_log
        notes = [n.text for n in tree.iter("{http://www.loc.gov/premis/v3}eventOutcomeDetailNote")]
        assert len(notes) == 1 + len(files)

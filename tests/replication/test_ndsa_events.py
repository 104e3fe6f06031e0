"""Copies per bag and NDSA 2.0 storage levels in ``preserve report``; replicas and repairs as
PREMIS events in ``preserve events``; named targets from preserve.toml."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree
from replication_helpers import S3Server, make_bag

from preserve.replication.config import Location
from preserve.replication.ndsa import Copy, storage_level

PREMIS = "{http://www.loc.gov/premis/v3}"


def _copy(site: str | None, region: str | None = None, threats: tuple[str, ...] = (), provider: str | None = None) -> Copy:
    return Copy("x", Location(site=site, region=region, provider=provider, threats=threats))


def _copies(pcli, ledger: Path | str) -> list[dict[str, object]]:
    r = pcli("report", "--ledger", ledger, "--json")
    assert r.exit_code in (0, 1)  # 1: the bag itself was never audited locally
    return json.loads(r.output.split("preserve: error:")[0])["sections"]["copies"]  # type: ignore[no-any-return]


def test_storage_levels() -> None:
    assert storage_level([_copy("A")]) == (0, "Level 1 needs a second complete copy (preserve replicate)")
    assert storage_level([_copy("A"), _copy(None)])[0] == 0
    assert storage_level([_copy("A"), _copy("A")]) == (0, "Level 1 needs two copies that are not collocated (all declared sites are the same)")
    assert storage_level([_copy("A"), _copy("B")]) == (1, "Level 2 needs a third complete copy")
    assert storage_level([_copy("A", "r1"), _copy("B", "r1"), _copy("C", "r1")]) == (1, "Level 2 needs a copy in a separate geographic location (another region)")
    assert storage_level([_copy("A", "r1"), _copy("B", "r1"), _copy("C", "r2")])[0] == 2
    three = [_copy("A", "r1", ("flood",)), _copy("B", "r1", ("flood",)), _copy("C", "r2", ("quake",))]
    assert storage_level(three) == (3, "Level 4 needs three copies in different regions, each with a different disaster threat")
    four = [_copy("A", "r1", ("flood",), "own"), _copy("B", "r2", ("fire",), "own"), _copy("C", "r3", ("quake",), "aws")]
    assert storage_level(four) == (4, "highest level")
    assert storage_level([*four[:2], _copy("C", "r3", ("quake",), "own")])[0] == 3


def test_report_counts_copies_and_level_from_named_targets(pcli, s3_server: S3Server, tmp_path: Path,
                                                           ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_server.bucket()
    disk = tmp_path / "vault"
    (tmp_path / "preserve.toml").write_text(f"""
[origin]
site = "Reading room, Leeds"
region = "uk-north"
threats = ["river flood"]

[targets.offsite]
url = "s3://{bucket}/bags"
endpoint-url = "{s3_server.endpoint}"
s3-region = "us-east-1"
path-style = true
site = "Object store, Frankfurt"
region = "eu-central"
provider = "S3-compatible"
threats = ["earthquake"]

[targets.vault]
url = "{disk}"
site = "Tape vault, Exeter"
region = "uk-south-west"
provider = "own"
threats = ["fire"]
""", encoding="utf-8")
    ledger = ledger_url
    r = pcli("replicate", bag, "offsite", "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    rows = _copies(pcli, ledger)
    assert [(x["identifier"], x["copies"], x["level"]) for x in rows] == [("urn:test:bag-one", 2, 1)]
    r = pcli("replicate", bag, "vault", "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert (disk / "bag-one" / "bagit.txt").is_file()
    rows = _copies(pcli, ledger)
    assert len(rows) == 1
    row = rows[0]
    assert (row["copies"], row["level"]) == (3, 4)
    assert row["places"] == "Reading room, Leeds / uk-north; Tape vault, Exeter / uk-south-west / own; Object store, Frankfurt / eu-central / S3-compatible"
    assert row["replicas"] == [f"{disk}/bag-one", f"s3://{bucket}/bags/bag-one"]
    # a replica whose latest audit fails no longer counts
    (disk / "bag-one/data/notes%.txt").unlink()
    r = pcli("audit", "vault/bag-one", "--tier", "remote-metadata", "--ledger", ledger, "-q")
    assert r.exit_code == 1
    rows = _copies(pcli, ledger)
    assert [(x["copies"], x["level"]) for x in rows] == [(2, 1)]
    assert f"{disk}/bag-one: latest audit (remote-metadata) failed" in rows[0]["next"]
    text = pcli("report", "--ledger", ledger).output
    assert "Copies per bag and NDSA 2.0 storage level" in text


def test_replicas_and_repairs_are_premis_events(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
    (bag / "data/notes%.txt").write_bytes(b"damaged\n")
    assert pcli("repair", bag, "--from", disk, "--ledger", ledger).exit_code == 0
    out = tmp_path / "events.xml"
    r = pcli("events", bag, "--ledger", ledger, "-o", out)
    assert r.exit_code == 0, r.output
    root = etree.parse(str(out)).getroot()
    events = {e.findtext(f"{PREMIS}eventType"): e for e in root.iter(f"{PREMIS}event")}
    assert "replication" in events and "recovery" in events
    replication = events["replication"]
    assert replication.findtext(f"{PREMIS}eventOutcomeInformation/{PREMIS}eventOutcome") == "pass"
    assert f"copied to {disk}" in replication.findtext(f"{PREMIS}eventDetailInformation/{PREMIS}eventDetail")
    recovery = events["recovery"]
    assert recovery.findtext(f"{PREMIS}eventOutcomeInformation/{PREMIS}eventOutcome") == "repaired"
    assert "data/notes%.txt restored from" in etree.tostring(recovery, encoding="unicode")

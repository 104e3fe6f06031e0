"""Remote audits of S3 replicas: remote-metadata (tag files and HEADs only) and remote-full
(streamed re-hash), against a real moto_server; archive storage classes are pending."""

from __future__ import annotations

import json
from pathlib import Path

from replication_helpers import MIB, S3Server, ledger_rows, make_bag

from preserve.audit.ledger import Ledger
from preserve.audit.report import build_report

SMALL_PARTS = ["--multipart-threshold", "6MiB", "--part-size", "5MiB"]


def _replicate(pcli, bag: Path, url: str, server: S3Server, ledger: Path, *extra: str) -> None:
    r = pcli("replicate", bag, url, *server.options(), *SMALL_PARTS, "--ledger", ledger, "-q", *extra)
    assert r.exit_code == 0, r.output


def _log_since(server: S3Server, offset: int) -> str:
    return server.log.read_bytes()[offset:].decode("utf-8", "replace")


def test_clean_replica_passes_both_tiers_and_metadata_downloads_no_payload(pcli, s3_server: S3Server, tmp_path: Path,
                                                                           ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_server.bucket()
    ledger = ledger_url
    _replicate(pcli, bag, f"s3://{bucket}/p", s3_server, ledger)
    offset = s3_server.log.stat().st_size
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"ok s3://{bucket}/p/bag-one (remote-metadata, 4 object(s)" in r.output
    log = _log_since(s3_server, offset)
    assert f"GET /{bucket}/p/bag-one/manifest-sha256.txt" in log
    assert f"GET /{bucket}/p/bag-one/data/" not in log  # HEAD only for the payload
    assert f"HEAD /{bucket}/p/bag-one/data/disc%201/03%20long.wav" in log
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"GET /{bucket}/p/bag-one/data/disc%201/03%20long.wav" in _log_since(s3_server, offset)
    audits = ledger_rows(ledger, "audits")
    assert [(a["tier"], a["outcome"], a["files"]) for a in audits] == [("remote-metadata", "pass", 4), ("remote-full", "pass", 4)]
    bags = {b["id"]: b for b in ledger_rows(ledger, "bags")}
    assert bags[audits[0]["bag_id"]]["location"] == f"s3://{bucket}/p/bag-one"
    assert ledger_rows(ledger, "findings") == []


def test_replaced_and_deleted_objects_are_found(pcli, s3_server: S3Server, tmp_path: Path,
                                                ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_server.bucket()
    ledger = ledger_url
    _replicate(pcli, bag, f"s3://{bucket}/p", s3_server, ledger)
    client = s3_server.client()
    key = "p/bag-one/data/disc 1/02 song.flac"
    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    # other bytes of the same size, with a genuine SHA-256 the server stores for them
    client.put_object(Bucket=bucket, Key=key, Body=b"\0" * size, ChecksumAlgorithm="SHA256")
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 1, r.output
    assert f"FAIL s3://{bucket}/p/bag-one/data/disc 1/02 song.flac: the stored object does not match manifest-sha256.txt" in r.output
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 1, r.output
    assert f"FAIL s3://{bucket}/p/bag-one/data/disc 1/02 song.flac: sha256 of the stored object does not match manifest-sha256.txt" in r.output
    assert "sha512 of the stored object does not match manifest-sha512.txt" in r.output
    # the same replaced bytes, sent without any checksum: still found (preserve always stores one)
    client.put_object(Bucket=bucket, Key=key, Body=b"\1" * size)
    client.delete_object(Bucket=bucket, Key="p/bag-one/data/notes%.txt")
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 1, r.output
    assert "data/disc 1/02 song.flac: the object has no stored SHA-256 checksum and no sha256 metadata" in r.output
    assert f"FAIL s3://{bucket}/p/bag-one/data/notes%.txt: listed in the manifest but not in the replica" in r.output
    audits = ledger_rows(ledger, "audits")
    assert [(a["tier"], a["outcome"]) for a in audits] == [("remote-metadata", "fail"), ("remote-full", "fail"), ("remote-metadata", "fail")]
    findings = ledger_rows(ledger, "findings")
    by_audit: dict[int, list[tuple[str, str]]] = {}
    for f in findings:
        by_audit.setdefault(f["audit_id"], []).append((f["file"], f["kind"]))
    assert by_audit[audits[0]["id"]] == [("data/disc 1/02 song.flac", "altered")]
    assert by_audit[audits[1]["id"]] == [("data/disc 1/02 song.flac", "altered")] * 2
    assert sorted(by_audit[audits[2]["id"]]) == [("data/disc 1/02 song.flac", "altered"), ("data/notes%.txt", "missing")]


def test_archive_storage_class_is_pending_not_failed(pcli, s3_server: S3Server, tmp_path: Path,
                                                     ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_server.bucket()
    ledger = ledger_url
    _replicate(pcli, bag, f"s3://{bucket}/p", s3_server, ledger, "--storage-class", "GLACIER")
    client = s3_server.client()
    assert client.head_object(Bucket=bucket, Key="p/bag-one/data/notes%.txt")["StorageClass"] == "GLACIER"
    assert "StorageClass" not in client.head_object(Bucket=bucket, Key="p/bag-one/manifest-sha256.txt")
    # metadata needs no restore: tag files stay in the default class, payload is HEADed
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"pending s3://{bucket}/p/bag-one/data/notes%.txt: in an archive storage class, not yet restored" in r.output
    assert "3 object(s) are in an archive storage class and must be restored before they can be read; rerun with --request-restore" in r.output
    assert "0 problem(s), 3 pending restore" in r.output
    # pending is not verified: the replica does not count as a copy until it is read again
    with Ledger(ledger) as led:
        [row] = build_report(led).section("copies").rows
    assert (row["location"], row["copies"], row["replicas"]) == (str(bag.resolve()), 1, [])
    assert f"s3://{bucket}/p/bag-one: latest audit (remote-full) pending an archive-class restore" in row["next"]
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", "--request-restore", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert "restore requested" in r.output
    # moto completes restores at once: the next full audit reads and re-hashes everything
    r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", *s3_server.options(), "--ledger", ledger, "-q", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)["replicas"][0]
    assert out["pending"] == [] and out["files"] == 3 and out["ok"] is True
    audits = ledger_rows(ledger, "audits")
    assert [(a["tier"], a["outcome"], a["files"]) for a in audits] == [
        ("remote-metadata", "pass", 3), ("remote-full", "pending", 0), ("remote-full", "pending", 0), ("remote-full", "pass", 3)]
    with Ledger(ledger) as led:
        [row] = build_report(led).section("copies").rows
    assert (row["copies"], row["replicas"]) == (2, [f"s3://{bucket}/p/bag-one"])


def test_replica_targets_need_a_remote_tier_and_a_bag_name(pcli, s3_server: S3Server, tmp_path: Path,
                                                           ledger_url: Path | str) -> None:
    ledger = ledger_url
    r = pcli("audit", "s3://bucket/p/bag-one", "--tier", "full", "--ledger", ledger)
    assert r.exit_code == 2
    assert "s3://bucket/p/bag-one: a replica copy; audit it with --tier remote-metadata (no payload download)" in r.output
    r = pcli("audit", "s3://bucket", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger)
    assert r.exit_code == 2
    assert "s3://bucket: name the bag's copy, as STORE/<bag-name>" in r.output
    bucket = s3_server.bucket()
    r = pcli("audit", f"s3://{bucket}/p/nothing-here", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger)
    assert r.exit_code == 1
    assert f"FAIL s3://{bucket}/p/nothing-here/bagit.txt: bagit.txt is not in the replica; it is not a complete bag" in r.output
    assert [(a["tier"], a["outcome"]) for a in ledger_rows(ledger, "audits")] == [("remote-metadata", "fail")]

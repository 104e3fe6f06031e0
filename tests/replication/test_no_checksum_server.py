"""Replicas on an S3-compatible server that keeps no additional checksums (as Ceph RGW 16.2):
moto behind ``s3proxy.py``, which drops every checksum header and element both ways and keeps
user metadata and MD5 ETags. Verdicts, verification by ETag without reading objects back, and
what the ledger and the PREMIS event say verified each object."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree
from replication_helpers import MIB, ProxiedS3, ledger_rows, make_bag

from preserve.stores.base import ObjectInfo

SMALL_PARTS = ["--multipart-threshold", "6MiB", "--part-size", "5MiB"]
BIG = "data/disc 1/03 long.wav"
PREMIS = "{http://www.loc.gov/premis/v3}"


def _replicate(pcli, bag: Path, url: str, server: ProxiedS3, ledger: Path, *extra: str) -> str:
    r = pcli("replicate", bag, url, *server.options(), *SMALL_PARTS, "--ledger", ledger, "-q", *extra)
    assert r.exit_code == 0, r.output
    return str(r.output)


def _payload_gets(server: ProxiedS3, bucket: str, since: int = 0) -> list[str]:
    return [line for line in server.requests()[since:] if line.startswith(f"GET /{bucket}/p/bag-one/data/")]


def test_the_proxy_keeps_no_checksum(s3_nochecksum: ProxiedS3) -> None:
    """The premise of this file: a wrong checksum is accepted and none is stored."""
    bucket = s3_nochecksum.bucket()
    client = s3_nochecksum.client()
    client.put_object(Bucket=bucket, Key="k", Body=b"abc", ChecksumSHA256="A" * 43 + "=", Metadata={"sha256": "x"})
    head = client.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head and head["Metadata"] == {"sha256": "x"}
    assert head["ETag"] == '"900150983cd24fb0d6963f7d28e17f72"'  # md5("abc")


def test_healthy_replica_passes_remote_metadata_with_a_note_and_a_real_mismatch_is_altered(
        pcli, s3_nochecksum: ProxiedS3, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_nochecksum.bucket()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    _replicate(pcli, bag, url, s3_nochecksum, ledger)
    r = pcli("audit", f"{url}/bag-one", "--tier", "remote-metadata", *s3_nochecksum.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"ok {url}/bag-one (remote-metadata, 4 object(s)" in r.output
    assert "FAIL" not in r.output
    # the note says what was and was not verified
    assert ("4 object(s) have no stored SHA-256 checksum (the server keeps none): presence, size, "
            "the sha256 metadata and the ETag were verified") in r.output
    assert "the bytes at rest were not re-hashed; run --tier remote-full" in r.output
    audits = ledger_rows(ledger, "audits")
    assert [(a["tier"], a["outcome"]) for a in audits] == [("remote-metadata", "pass")]

    # the same bytes count, different content, the sha256 metadata copied over: the ETag tells
    upstream = s3_nochecksum.upstream
    assert upstream is not None
    client = upstream.client()
    key = "p/bag-one/data/disc 1/02 song.flac"
    head = client.head_object(Bucket=bucket, Key=key)
    client.put_object(Bucket=bucket, Key=key, Body=b"Z" * head["ContentLength"], Metadata=head["Metadata"])
    r = pcli("audit", f"{url}/bag-one", "--tier", "remote-metadata", *s3_nochecksum.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 1, r.output
    fails = [line for line in r.output.splitlines() if line.startswith("FAIL ") and "/data/" in line]
    assert len(fails) == 1 and f"{url}/bag-one/data/disc 1/02 song.flac: " in fails[0]
    assert "ETag" in fails[0]
    # an object put there by something else, without preserve's metadata: altered as before
    client.put_object(Bucket=bucket, Key=key, Body=b"Z" * head["ContentLength"])
    r = pcli("audit", f"{url}/bag-one", "--tier", "remote-metadata", *s3_nochecksum.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 1, r.output
    assert "no stored SHA-256 checksum and no sha256 metadata" in r.output
    assert [a["outcome"] for a in ledger_rows(ledger, "audits")] == ["pass", "fail", "fail"]


def test_uploads_and_reruns_verify_by_etag_without_reading_objects_back(
        pcli, s3_nochecksum: ProxiedS3, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_nochecksum.bucket()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    out = _replicate(pcli, bag, url, s3_nochecksum, ledger)
    assert "4 sent" in out or "sent" in out
    assert _payload_gets(s3_nochecksum, bucket) == []  # nothing read back
    # one request per small object: the listing says it is absent, the PUT's answer carries its ETag
    heads = [line for line in s3_nochecksum.requests() if line.startswith(f"HEAD /{bucket}/p/bag-one/data/")]
    assert heads == [f"HEAD /{bucket}/p/bag-one/data/disc%201/03%20long.wav"]  # the multipart one, after completion
    first = json.loads(ledger_rows(ledger, "replicas")[0]["detail"])
    by = first["verified_by"]
    # three single-part payload files by their MD5 ETag, the large one by its MD5-of-part-MD5s
    assert by["counts"]["etag-md5"] >= 3 and by["counts"]["etag-multipart"] == 1
    assert by["counts"].get("re-read", 0) == 0 and by["counts"].get("stored-sha256", 0) == 0
    assert by["objects"][BIG] == "etag-multipart"
    before = len(s3_nochecksum.requests())
    out = _replicate(pcli, bag, url, s3_nochecksum, ledger)
    assert "0 sent" in out
    assert _payload_gets(s3_nochecksum, bucket, before) == []  # an idempotent rerun reads nothing back either
    second = json.loads(ledger_rows(ledger, "replicas")[1]["detail"])
    assert second["verified_by"]["counts"] == by["counts"]
    # the PREMIS replication event says which verified each object
    events = tmp_path / "events.xml"
    r = pcli("events", bag, "--ledger", ledger, "-o", events)
    assert r.exit_code == 0, r.output
    root = etree.parse(str(events)).getroot()
    text = etree.tostring(root, encoding="unicode")
    assert '"verified_by"' in text and "etag-multipart" in text


def test_a_server_keeping_checksums_verifies_by_them(pcli, s3_server, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_server.bucket()
    ledger = ledger_url
    _replicate(pcli, bag, f"s3://{bucket}/p", s3_server, ledger)
    by = json.loads(ledger_rows(ledger, "replicas")[0]["detail"])["verified_by"]
    assert set(by["counts"]) == {"stored-sha256"}


def test_an_etag_that_is_no_md5_is_verified_by_reading_the_object_back(
        pcli, s3_nochecksum: ProxiedS3, tmp_path: Path, monkeypatch, ledger_url: Path | str) -> None:
    """Where the ETag is not the MD5 (SSE-KMS, some gateways) the object is read back."""
    bag = make_bag(tmp_path)
    bucket = s3_nochecksum.bucket()
    ledger = ledger_url
    # the server's ETags are no MD5 (as under SSE-KMS): nothing but the bytes can vouch
    monkeypatch.setattr(ObjectInfo, "etag_md5", property(lambda self: None))
    _replicate(pcli, bag, f"s3://{bucket}/p", s3_nochecksum, ledger)
    by = json.loads(ledger_rows(ledger, "replicas")[0]["detail"])["verified_by"]
    assert set(by["counts"]) == {"re-read"}
    assert len(_payload_gets(s3_nochecksum, bucket)) == 3


def test_etag_is_an_md5_only_without_sse_kms_or_sse_c() -> None:
    md5 = '"900150983cd24fb0d6963f7d28e17f72"'
    assert ObjectInfo("k", 3, etag=md5).etag_md5 == md5.strip('"')
    assert ObjectInfo("k", 3, etag=md5, encryption="AES256").etag_md5 == md5.strip('"')
    assert ObjectInfo("k", 3, etag='"900150983cd24fb0d6963f7d28e17f72-12"').etag_md5 is not None
    for enc in ("aws:kms", "aws:kms:dsse", "sse-c"):
        assert ObjectInfo("k", 3, etag=md5, encryption=enc).etag_md5 is None
    assert ObjectInfo("k", 3, etag='"not-an-md5"').etag_md5 is None

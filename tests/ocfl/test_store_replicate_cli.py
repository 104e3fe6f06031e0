"""``preserve replicate``, ``restore`` and ``audit --tier remote-*`` on a store, on a real S3
server (moto over HTTP), with and without stored checksums: versions sent once, inventories last,
one ledger record per object, the replica restored and audited against the object's inventory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from preserve.ocfl import ingest
from preserve.ocfl.layout import init_root
from preserve.ocfl.update import update
from preserve.ocfl.validate import validate_object
from tests.ocfl.conftest import MakeBag, tree
from tests.replication.replication_helpers import (
    MIB,
    ProxiedS3,
    S3Server,
    aws_env,
    keys,
    ledger_rows,
    pcli,
    s3_nochecksum,
    s3_server,
)

__all__ = ["aws_env", "pcli", "s3_nochecksum", "s3_server"]  # the shared moto servers, credentials, CLI

OID = "urn:example:replicated"
SMALL_PARTS = ["--multipart-threshold", "6MiB", "--part-size", "5MiB"]


def _object(make_bag: MakeBag, root: Path, object_id: str = OID, *, big: int = 0, bag: str | None = None) -> str:
    """An object of two versions (v2 removes a file); returns its path below the storage root."""
    files = {"a.wav": b"RIFF" + os.urandom(6000), "sub/b.flac": b"fLaC" + os.urandom(3000), "notes.txt": b"notes\n"}
    if big:
        files["big.wav"] = b"RIFF" + os.urandom(big)
    made = ingest(root, make_bag(bag or object_id.rsplit(":", 1)[-1], files), object_id=object_id, user="t")
    update(root, object_id, remove=("notes.txt",), reason="not audio", operator="o")
    return made.object_path.relative_to(root).as_posix()


def _json(output: str) -> Any:
    return json.loads(output[output.index("{"):])


@pytest.mark.slow
def test_store_replicated_once_restored_and_audited_on_s3(pcli: Any, make_bag: MakeBag, store_root: Path,
                                                          tmp_path: Path, s3_server: S3Server) -> None:
    prefix = _object(make_bag, store_root)
    bucket = s3_server.bucket()
    url, ledger = f"s3://{bucket}/store", tmp_path / "ledger.sqlite"
    r = pcli("replicate", store_root, url, *s3_server.options(), "--ledger", ledger, "--json")
    assert r.exit_code == 0, r.output
    doc = _json(r.output)["replicas"][0]
    assert doc["versions_sent"] == [f"{OID} v1", f"{OID} v2"] and doc["up_to_date"] == 0
    there = keys(s3_server, bucket, "store/")
    local = {f"store/{p}" for p in tree(store_root) if not p.startswith("extensions/preserve-store/")}
    assert local <= set(there)  # every file of the store, with the same key
    assert f"store/extensions/preserve-store/replicas/{prefix}.json" in there
    [row] = ledger_rows(ledger, "replicas")
    assert row["location"] == f"{url}/{prefix}" and row["outcome"] == "pass"
    detail = json.loads(row["detail"])
    assert detail["object_id"] == OID and detail["versions_sent"] == ["v1", "v2"]
    assert detail["verified_by"]["default"] == "stored-sha256"

    # a rerun sends nothing; a new version sends only itself
    r = pcli("replicate", store_root, url, *s3_server.options(), "--ledger", ledger, "--json")
    assert r.exit_code == 0, r.output
    again = _json(r.output)["replicas"][0]
    assert again["files_sent"] == 0 and again["up_to_date"] == 1
    update(store_root, OID, remove=("sub/b.flac",), reason="withdrawn", operator="o")
    r = pcli("replicate", store_root, url, *s3_server.options(), "--ledger", ledger, "--json")
    third = _json(r.output)["replicas"][0]
    assert third["versions_sent"] == [f"{OID} v3"]
    sent = {k for k in keys(s3_server, bucket, f"store/{prefix}/v3/")}
    assert third["files_sent"] == len(sent) + 2  # v3's files, then the root inventory and its sidecar

    # audits of the replica: recorded under the object id, at the replica's location
    for tier in ("remote-metadata", "remote-full"):
        r = pcli("audit", f"{url}/{prefix}", "--tier", tier, *s3_server.options(), "--ledger", ledger)
        assert r.exit_code == 0, r.output
        assert f"ok {url}/{prefix} ({tier}" in r.output
    audits = ledger_rows(ledger, "audits")
    bags = {b["id"]: b for b in ledger_rows(ledger, "bags")}
    assert [(a["tier"], a["outcome"], bags[a["bag_id"]]["location"], bags[a["bag_id"]]["identifier"])
            for a in audits] == [("remote-metadata", "pass", f"{url}/{prefix}", OID),
                                 ("remote-full", "pass", f"{url}/{prefix}", OID)]
    assert audits[1]["algorithm"] == "sha512"

    # restored into a new folder: the same object, valid
    back = tmp_path / "back"
    r = pcli("restore", f"{url}/{prefix}", back, *s3_server.options())
    assert r.exit_code == 0, r.output
    assert tree(back) == tree(store_root / prefix)
    report = validate_object(back)
    assert report.ok and report.head == "v3"
    # and into another storage root, where its layout puts it
    other = tmp_path / "other"
    init_root(other)
    r = pcli("restore", f"{url}/{prefix}", other, *s3_server.options(), "--json")
    assert r.exit_code == 0, r.output
    assert _json(r.output)["into_store"] is True
    assert tree(other / prefix) == tree(store_root / prefix)
    assert pcli("store", "validate", other).exit_code == 0
    assert pcli("restore", f"{url}/{prefix}", other, *s3_server.options()).exit_code == 4  # never overwritten

    # damage at rest: same size, other bytes
    client = s3_server.client()
    content = f"store/{prefix}/v1/content/data/a.wav"
    size = client.head_object(Bucket=bucket, Key=content)["ContentLength"]
    client.put_object(Bucket=bucket, Key=content, Body=b"Z" * size)
    r = pcli("audit", f"{url}/{prefix}", "--tier", "remote-full", *s3_server.options(), "--ledger", ledger)
    assert r.exit_code == 1, r.output
    assert f"FAIL {url}/{prefix}/v1/content/data/a.wav: sha512 of the stored file does not match" in r.output
    r = pcli("audit", f"{url}/{prefix}", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger)
    assert r.exit_code == 1 and "v1/content/data/a.wav" in r.output, r.output
    assert ledger_rows(ledger, "audits")[-1]["outcome"] == "fail"
    gone = tmp_path / "gone"
    r = pcli("restore", f"{url}/{prefix}", gone, *s3_server.options())
    assert r.exit_code == 1 and "v1/content/data/a.wav" in r.output and not gone.exists(), r.output
    # a file the inventory needs, deleted: missing in both tiers
    client.delete_object(Bucket=bucket, Key=f"store/{prefix}/v2/inventory.json")
    r = pcli("audit", f"{url}/{prefix}", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger)
    assert r.exit_code == 1 and f"{url}/{prefix}/v2/inventory.json: " in r.output, r.output


def test_one_object_folder_is_replicated_alone(pcli: Any, make_bag: MakeBag, store_root: Path,
                                               s3_server: S3Server) -> None:
    first = _object(make_bag, store_root, "urn:example:first")
    second = _object(make_bag, store_root, "urn:example:second")
    bucket = s3_server.bucket()
    r = pcli("replicate", store_root / second, f"s3://{bucket}/s", *s3_server.options(), "-q")
    assert r.exit_code == 0, r.output
    there = keys(s3_server, bucket, "s/")
    assert any(k.startswith(f"s/{second}/") for k in there)
    assert not any(k.startswith(f"s/{first}/") for k in there)
    assert "s/0=ocfl_1.1" in there and "s/ocfl_layout.json" in there  # the replica is a storage root


def test_a_replica_with_another_history_is_refused(pcli: Any, make_bag: MakeBag, tmp_path: Path,
                                                   s3_server: S3Server) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    init_root(one)
    init_root(two)
    prefix = _object(make_bag, one)
    assert _object(make_bag, two, bag="other") == prefix  # the same id, another history
    bucket = s3_server.bucket()
    assert pcli("replicate", one, f"s3://{bucket}/s", *s3_server.options(), "-q").exit_code == 0
    before = keys(s3_server, bucket)
    r = pcli("replicate", two, f"s3://{bucket}/s", *s3_server.options())
    assert r.exit_code == 1, r.output
    assert f"s3://{bucket}/s/{prefix}: the replica's inventory of v2 differs" in r.output
    assert keys(s3_server, bucket) == before


def test_a_damaged_local_file_is_not_replicated(pcli: Any, make_bag: MakeBag, store_root: Path,
                                                s3_server: S3Server) -> None:
    prefix = _object(make_bag, store_root)
    damaged = store_root / prefix / "v1" / "content" / "data" / "a.wav"
    damaged.write_bytes(b"X" * damaged.stat().st_size)
    bucket = s3_server.bucket()
    r = pcli("replicate", store_root, f"s3://{bucket}/s", *s3_server.options())
    assert r.exit_code == 1, r.output
    assert f"{damaged}: its sha512 is" in r.output and "was not replicated" in r.output
    there = keys(s3_server, bucket)
    assert f"s/{prefix}/inventory.json" not in there and f"s/{prefix}/v1/inventory.json" not in there


@pytest.mark.slow
def test_no_checksum_server_verifies_by_etag_and_audits(pcli: Any, make_bag: MakeBag, store_root: Path,
                                                         tmp_path: Path, s3_nochecksum: ProxiedS3) -> None:
    """A server that keeps no checksums (Ceph RGW 16.2): uploads verified by their ETags (one part
    and multipart), a rerun reads nothing back, audits compare ETags, restores re-hash."""
    prefix = _object(make_bag, store_root, big=11 * MIB)
    bucket = s3_nochecksum.bucket()
    url, ledger = f"s3://{bucket}/store", tmp_path / "ledger.sqlite"
    r = pcli("replicate", store_root, url, *s3_nochecksum.options(), *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    [row] = ledger_rows(ledger, "replicas")
    counts = json.loads(row["detail"])["verified_by"]["counts"]
    assert set(counts) == {"etag-md5", "etag-multipart"} and counts["etag-multipart"] == 1
    since = len(s3_nochecksum.requests())
    update(store_root, OID, remove=("a.wav",), reason="r", operator="o")
    r = pcli("replicate", store_root, url, *s3_nochecksum.options(), *SMALL_PARTS, "--ledger", ledger, "--json")
    assert r.exit_code == 0, r.output
    assert _json(r.output)["replicas"][0]["versions_sent"] == [f"{OID} v3"]
    content_gets = [q for q in s3_nochecksum.requests()[since:] if q.startswith("GET ") and "/content/" in q]
    assert content_gets == []  # nothing read back: the ETags vouched
    r = pcli("audit", f"{url}/{prefix}", "--tier", "remote-metadata", *s3_nochecksum.options(), "--ledger", ledger)
    assert r.exit_code == 0, r.output
    assert "the sha256 metadata and the ETag were verified" in r.output
    upstream = s3_nochecksum.upstream
    assert upstream is not None
    client = upstream.client()
    key = f"store/{prefix}/v1/content/data/sub/b.flac"
    head = client.head_object(Bucket=bucket, Key=key)
    client.put_object(Bucket=bucket, Key=key, Body=b"Z" * head["ContentLength"], Metadata=head["Metadata"])
    r = pcli("audit", f"{url}/{prefix}", "--tier", "remote-metadata", *s3_nochecksum.options(), "--ledger", ledger)
    assert r.exit_code == 1 and "ETag" in r.output and "v1/content/data/sub/b.flac" in r.output, r.output
    r = pcli("audit", f"{url}/{prefix}", "--tier", "remote-full", *s3_nochecksum.options(), "--ledger", ledger)
    assert r.exit_code == 1 and "sha512 of the stored file does not match" in r.output, r.output

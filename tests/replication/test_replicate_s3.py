"""Replication to a real S3-compatible server (moto_server over HTTP): layout, checksums,
multipart, idempotent reruns, conflicts, object lock, storage classes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from replication_helpers import MIB, S3Server, keys, ledger_rows, make_bag

SMALL_PARTS = ["--multipart-threshold", "6MiB", "--part-size", "5MiB"]


def _manifest(bag: Path) -> dict[str, str]:
    from preserve.bag.reader import open_bag

    return {line.path: line.digest for line in open_bag(bag).iter_manifest("sha256")}


def test_multipart_bag_replicates_verifies_and_second_run_sends_nothing(pcli, s3_server: S3Server, tmp_path: Path,
                                                                        ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_server.bucket()
    ledger = ledger_url
    n = sum(1 for p in bag.rglob("*") if p.is_file())
    r = pcli("replicate", bag, f"s3://{bucket}/archive", *s3_server.options(), *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"s3://{bucket}/archive/bag-one: complete, {n} objects" in r.output
    stored = keys(s3_server, bucket, "archive/")
    manifest = _manifest(bag)
    for rel in manifest:
        assert f"archive/bag-one/{rel}" in stored
    assert "archive/bag-one/bagit.txt" in stored
    assert "archive/bag-one.preserve-replica.json" in stored
    client = s3_server.client()
    # every single-part object carries the manifest's sha256 as its S3 checksum and in metadata
    head = client.head_object(Bucket=bucket, Key="archive/bag-one/data/notes%.txt", ChecksumMode="ENABLED")
    digest = manifest["data/notes%.txt"]
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(digest)).decode()
    assert head["Metadata"]["sha256"] == digest
    # the large file went in 3 parts of 5 MiB; the record beside the bag holds the part digests
    big = bag / "data/disc 1/03 long.wav"
    data = big.read_bytes()
    parts = [hashlib.sha256(data[i:i + 5 * MIB]).hexdigest() for i in range(0, len(data), 5 * MIB)]
    record = json.loads(client.get_object(Bucket=bucket, Key="archive/bag-one.preserve-replica.json")["Body"].read())
    entry = record["multipart"]["data/disc 1/03 long.wav"]
    assert entry["part_size"] == 5 * MIB and entry["parts"] == parts and record["complete"] is True
    composite = base64.b64encode(hashlib.sha256(b"".join(bytes.fromhex(p) for p in parts)).digest()).decode()
    head = client.head_object(Bucket=bucket, Key="archive/bag-one/data/disc 1/03 long.wav", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].split("-")[0] == composite
    # the ledger: one complete replica with its objects, bytes and multipart detail
    rows = ledger_rows(ledger, "replicas")
    assert len(rows) == 1
    row = rows[0]
    assert row["outcome"] == "pass" and row["objects"] == n and row["target"] == f"s3://{bucket}/archive"
    assert row["location"] == f"s3://{bucket}/archive/bag-one"
    detail = json.loads(row["detail"])
    assert detail["complete"] is True and detail["uploaded"] == n and detail["skipped"] == 0
    assert detail["multipart"]["data/disc 1/03 long.wav"]["parts"] == parts
    # second run: nothing uploaded, everything verified again, recorded again
    r = pcli("replicate", bag, f"s3://{bucket}/archive", *s3_server.options(), *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"0 sent (0 B), {n} already there" in r.output
    rows = ledger_rows(ledger, "replicas")
    assert len(rows) == 2
    second = json.loads(rows[1]["detail"])
    assert rows[1]["outcome"] == "pass" and second["uploaded"] == 0 and second["sent_bytes"] == 0 and second["skipped"] == n
    assert second["multipart"]["data/disc 1/03 long.wav"]["parts"] == parts
    # without the replica record (a run killed before writing it), the composite is worked out
    # from the local file: still nothing is sent again, and the record comes back the same
    client.delete_object(Bucket=bucket, Key="archive/bag-one.preserve-replica.json")
    r = pcli("replicate", bag, f"s3://{bucket}/archive", *s3_server.options(), *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"0 sent (0 B), {n} already there" in r.output
    record = json.loads(client.get_object(Bucket=bucket, Key="archive/bag-one.preserve-replica.json")["Body"].read())
    assert record["multipart"]["data/disc 1/03 long.wav"]["parts"] == parts


def test_a_different_bag_under_the_same_name_is_refused(pcli, s3_server: S3Server, tmp_path: Path,
                                                        ledger_url: Path | str) -> None:
    bucket = s3_server.bucket()
    first = make_bag(tmp_path / "a")
    other = make_bag(tmp_path / "b")  # same name, other random content: other manifests
    ledger = ledger_url
    assert pcli("replicate", first, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger, "-q").exit_code == 0
    before = keys(s3_server, bucket)
    r = pcli("replicate", other, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 1
    assert f"s3://{bucket}/p/bag-one: a different bag named 'bag-one' is already there" in r.output
    assert "choose another prefix (nothing was uploaded)" in r.output
    assert keys(s3_server, bucket) == before
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass"]


def test_local_file_not_matching_its_manifest_is_not_uploaded(pcli, s3_server: S3Server, tmp_path: Path,
                                                              ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    target = bag / "data/disc 1/02 song.flac"
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0xFF
    target.write_bytes(bytes(raw))
    bucket = s3_server.bucket()
    ledger = ledger_url
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 1
    assert f"{target}: does not match manifest-sha256.txt" in r.output
    assert "p/bag-one/data/disc 1/02 song.flac" not in keys(s3_server, bucket)
    rows = ledger_rows(ledger, "replicas")
    assert len(rows) == 1 and rows[0]["outcome"] == "fail"
    assert json.loads(rows[0]["detail"])["complete"] is False


def test_object_lock_never_deletes_a_locked_version(pcli, s3_server: S3Server, tmp_path: Path,
                                                    ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=7 * MIB)
    bucket = s3_server.bucket(lock=True)
    client = s3_server.client()
    ledger = ledger_url
    lock = ["--retain-until", "2099-01-01", "--lock-mode", "governance"]
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), *SMALL_PARTS, *lock, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    key = "p/bag-one/data/disc 1/01 intro.wav"
    for k in (key, "p/bag-one/data/disc 1/03 long.wav"):  # single PUT and multipart alike
        head = client.head_object(Bucket=bucket, Key=k)
        assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"].year == 2099
    # someone overwrites an object (a new version on a versioned bucket) and leaves a stale upload
    client.put_object(Bucket=bucket, Key=key, Body=b"X" * 3004)
    stale = client.create_multipart_upload(Bucket=bucket, Key="p/bag-one/data/disc 1/03 long.wav",
                                           ChecksumAlgorithm="SHA256")["UploadId"]
    client.upload_part(Bucket=bucket, Key="p/bag-one/data/disc 1/03 long.wav", UploadId=stale,
                       PartNumber=1, Body=b"Z" * (5 * MIB))
    versions_before = client.list_object_versions(Bucket=bucket, Prefix="p/")
    ids_before = {(v["Key"], v["VersionId"]) for v in versions_before["Versions"]}
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), *SMALL_PARTS, *lock, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert "1 sent" in r.output and "1 stale upload(s) aborted" in r.output
    after = client.list_object_versions(Bucket=bucket, Prefix="p/")
    ids_after = {(v["Key"], v["VersionId"]) for v in after["Versions"]}
    assert ids_before <= ids_after  # every version is still there
    assert not after.get("DeleteMarkers")  # and nothing was deleted (moto would add a marker)
    latest = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert latest == (bag / "data/disc 1/01 intro.wav").read_bytes()
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass", "pass"]


def test_bad_options_are_usage_errors_and_credentials_are_not_options(pcli, s3_server: S3Server, tmp_path: Path) -> None:
    bag = make_bag(tmp_path)
    r = pcli("replicate", bag, "s3://bkt/p", *s3_server.options(), "--lock-mode", "compliance")
    assert r.exit_code == 2 and "--lock-mode needs --retain-until DATE" in r.output
    r = pcli("replicate", bag, "s3://bkt/p", "--aws-secret-access-key", "x")
    assert r.exit_code == 2 and "No such option '--aws-secret-access-key'" in r.output


def test_a_bag_without_sha256_manifest_is_refused(pcli, s3_server: S3Server, tmp_path: Path,
                                                  ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, algorithms=("sha512",))
    bucket = s3_server.bucket()
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger_url, "-q")
    assert r.exit_code == 3
    assert f"{bag}: replication sends each manifest's SHA-256 as the S3 checksum, but the bag has no manifest-sha256.txt (only sha512)" in r.output
    assert keys(s3_server, bucket) == {}


def _bag_keys(server: S3Server, bucket: str) -> list[str]:
    return [k for k in keys(server, bucket, "p/bag-one/")]


def test_rerun_with_object_lock_locks_objects_already_there(pcli, s3_server: S3Server, tmp_path: Path,
                                                            ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=7 * MIB)
    bucket = s3_server.bucket(lock=True)
    client = s3_server.client()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    r = pcli("replicate", bag, url, *s3_server.options(), *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    objects = _bag_keys(s3_server, bucket)
    assert "p/bag-one/data/disc 1/03 long.wav" in objects
    assert all("ObjectLockMode" not in client.head_object(Bucket=bucket, Key=k) for k in objects)
    versions = {(v["Key"], v["VersionId"]) for v in client.list_object_versions(Bucket=bucket, Prefix="p/")["Versions"]}
    # the same bytes are there: nothing is sent again, but every object gets the retention asked for
    lock = ["--lock-mode", "governance", "--retain-until", "2099-01-01"]
    r = pcli("replicate", bag, url, *s3_server.options(), *SMALL_PARTS, *lock, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"0 sent (0 B), {len(objects)} already there" in r.output
    for k in objects:
        head = client.head_object(Bucket=bucket, Key=k)
        assert head.get("ObjectLockMode") == "GOVERNANCE", k
        assert head["ObjectLockRetainUntilDate"].date().isoformat() == "2099-01-01", k
    after = client.list_object_versions(Bucket=bucket, Prefix="p/")
    assert versions <= {(v["Key"], v["VersionId"]) for v in after["Versions"]} and not after.get("DeleteMarkers")
    detail = json.loads(ledger_rows(ledger, "replicas")[-1]["detail"])
    assert detail["object_lock"] == {"mode": "GOVERNANCE", "retain_until": "2099-01-01", "retention_set": len(objects)}
    # an earlier date never shortens a retention; the objects already satisfy it
    r = pcli("replicate", bag, url, *s3_server.options(), *SMALL_PARTS, "--lock-mode", "governance",
             "--retain-until", "2090-06-30", "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    for k in objects:
        assert client.head_object(Bucket=bucket, Key=k)["ObjectLockRetainUntilDate"].year == 2099
    assert json.loads(ledger_rows(ledger, "replicas")[-1]["detail"])["object_lock"]["retention_set"] == 0


def test_rerun_on_a_bucket_without_object_lock_is_not_complete(pcli, s3_server: S3Server, tmp_path: Path,
                                                               ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_server.bucket()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    assert pcli("replicate", bag, url, *s3_server.options(), "--ledger", ledger, "-q").exit_code == 0
    r = pcli("replicate", bag, url, *s3_server.options(), "--lock-mode", "compliance", "--retain-until", "2099-01-01",
             "--ledger", ledger, "-q")
    assert r.exit_code == 6, r.output
    assert f"s3://{bucket}/p/bag-one/" in r.output and "could not set its object lock retention" in r.output
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass", "fail"]


def test_rerun_with_a_storage_class_sends_objects_kept_in_another(pcli, s3_server: S3Server, tmp_path: Path,
                                                                  ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_server.bucket()
    client = s3_server.client()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    assert pcli("replicate", bag, url, *s3_server.options(), "--ledger", ledger, "-q").exit_code == 0
    payload = [k for k in _bag_keys(s3_server, bucket) if k.startswith("p/bag-one/data/")]
    r = pcli("replicate", bag, url, *s3_server.options(), "--storage-class", "STANDARD_IA", "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"{len(payload)} sent" in r.output
    for k in payload:
        assert client.head_object(Bucket=bucket, Key=k).get("StorageClass") == "STANDARD_IA", k
    assert "StorageClass" not in client.head_object(Bucket=bucket, Key="p/bag-one/bagit.txt")  # tag files stay readable
    r = pcli("replicate", bag, url, *s3_server.options(), "--storage-class", "STANDARD_IA", "--ledger", ledger, "-q")
    assert r.exit_code == 0 and "0 sent (0 B)" in r.output, r.output
    assert json.loads(ledger_rows(ledger, "replicas")[-1]["detail"])["storage_class"] == "STANDARD_IA"

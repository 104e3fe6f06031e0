"""Failing S3 servers: parts refused, a connection cut mid-part, the server dying mid-upload,
paged upload listings; and the messages a curator gets for a bad endpoint, a missing bucket, a
storage class or object lock the server refuses, and wrong keys. The faults come from
``s3proxy.py`` (a server keeping no checksums, as Ceph RGW 16.2) in front of moto."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from replication_helpers import MIB, ProxiedS3, S3Server, keys, ledger_rows, make_bag, proxy_for

SMALL_PARTS = ["--multipart-threshold", "6MiB", "--part-size", "5MiB"]
BIG_KEY = "p/bag-one/data/disc 1/03 long.wav"


def _uploads(server: S3Server, bucket: str) -> list[dict[str, object]]:
    return list(server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _parts(server: S3Server, bucket: str) -> int:
    uploads = _uploads(server, bucket)
    if not uploads:
        return 0
    return len(server.client().list_parts(Bucket=bucket, Key=uploads[0]["Key"],
                                          UploadId=uploads[0]["UploadId"]).get("Parts", []))


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("preserve: error:")]


@pytest.mark.parametrize("fault", ["fail_part", "cut_part"])
def test_a_failed_part_is_the_error_shown_and_the_next_run_resumes_the_upload(
        pcli, s3_faulty: ProxiedS3, tmp_path: Path, fault: str, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=21 * MIB)  # five parts of 5 MiB
    bucket = s3_faulty.bucket()
    upstream = s3_faulty.upstream
    assert upstream is not None
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    s3_faulty.faults(**{fault: 4})
    r = pcli("replicate", bag, url, *s3_faulty.options(), *SMALL_PARTS, "--retries", "2", "--workers", "1",
             "--ledger", ledger, "-q")
    assert r.exit_code == 6, r.output
    errors = _error_lines(r.output)
    # the first error shown is the cause: the part that failed, named with its object
    assert errors and f"{url}/bag-one/data/disc 1/03 long.wav" in errors[0] and "upload part 4" in errors[0], r.output
    assert "unfinished uploads" not in r.output
    rows = ledger_rows(ledger, "replicas")
    assert [row["outcome"] for row in rows] == ["fail"]
    assert "upload part 4" in json.loads(rows[0]["detail"])["failures"][0]
    # the failed run kept its upload, with the parts that went through, for the next run
    kept = _parts(upstream, bucket)
    assert len(_uploads(upstream, bucket)) == 1 and kept >= 3
    assert BIG_KEY not in keys(upstream, bucket)
    s3_faulty.faults()
    r = pcli("replicate", bag, url, *s3_faulty.options(), *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"{kept} part(s) resumed" in r.output
    assert _uploads(upstream, bucket) == []
    detail = json.loads(ledger_rows(ledger, "replicas")[-1]["detail"])
    assert detail["resumed_parts"] == kept and detail["verified_by"]["objects"]["data/disc 1/03 long.wav"] == "etag-multipart"
    r = pcli("audit", f"{url}/bag-one", "--tier", "remote-full", *s3_faulty.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output


def test_the_server_dying_mid_upload_is_reported_as_the_part_that_failed(
        run_preserve, s3_server: S3Server, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=21 * MIB)
    bucket = s3_server.bucket()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    with proxy_for(s3_server, tmp_path) as proxy:
        cmd = ["replicate", str(bag), url, *proxy.options(), *SMALL_PARTS, "--ledger", str(ledger), "-q",
               "--retries", "1", "--workers", "1", "--bandwidth", "4M"]
        exe = Path(sys.executable).parent / "preserve"
        run = subprocess.Popen([str(exe), *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while 3 not in proxy.parts_put(bucket, BIG_KEY):  # parts 1 and 2 answered (one worker)
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the upload never got going"
            time.sleep(0.05)
        proxy.process.kill()  # the server goes away mid-upload, and stays away
        out, err = run.communicate(timeout=120)
    assert run.returncode == 6, out + err
    errors = _error_lines(err)
    assert errors and "03 long.wav" in errors[0] and "upload part" in errors[0], err
    assert "unfinished uploads" not in err
    assert len(_uploads(s3_server, bucket)) == 1  # kept for the next run
    with proxy_for(s3_server, tmp_path) as proxy:
        r = run_preserve("replicate", bag, url, *proxy.options(), *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.returncode == 0, r.stderr
    assert "part(s) resumed" in r.stdout


def test_every_page_of_unfinished_uploads_is_read(pcli, s3_faulty: ProxiedS3, tmp_path: Path,
                                                  ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_faulty.bucket()
    upstream = s3_faulty.upstream
    assert upstream is not None
    client = upstream.client()
    # three uploads of the file; the one with a part to resume is listed last, on the third page
    # (the proxy pages by key, then upload id); and three stale uploads of other keys in the bag
    ids = sorted(client.create_multipart_upload(Bucket=bucket, Key=BIG_KEY)["UploadId"] for _ in range(3))
    own = ids[-1]
    for n in range(3):
        client.create_multipart_upload(Bucket=bucket, Key=f"{BIG_KEY}.{n}")
    client.upload_part(Bucket=bucket, Key=BIG_KEY, UploadId=own, PartNumber=1,
                       Body=(bag / "data/disc 1/03 long.wav").read_bytes()[:5 * MIB])
    s3_faulty.faults(max_uploads=1)
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_faulty.options(), *SMALL_PARTS, "-q",
             "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert "1 part(s) resumed" in r.output  # found on its page and resumed
    assert "3 stale upload(s) aborted" in r.output  # every page listed once the replica is complete
    assert sum("uploads" in line and "key-marker" in line for line in s3_faulty.requests()) >= 3
    assert _uploads(upstream, bucket) == []


def test_abort_incomplete_and_max_age_start_afresh(pcli, s3_faulty: ProxiedS3, tmp_path: Path,
                                                   ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=11 * MIB)
    bucket = s3_faulty.bucket()
    upstream = s3_faulty.upstream
    assert upstream is not None
    client = upstream.client()
    own = client.create_multipart_upload(Bucket=bucket, Key=BIG_KEY)["UploadId"]
    client.upload_part(Bucket=bucket, Key=BIG_KEY, UploadId=own, PartNumber=1,
                       Body=(bag / "data/disc 1/03 long.wav").read_bytes()[:5 * MIB])
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_faulty.options(), *SMALL_PARTS, "-q", "--abort-incomplete",
             "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert "resumed" not in r.output and "1 stale upload(s) aborted" in r.output
    bag2 = make_bag(tmp_path / "two", big=11 * MIB)
    own = client.create_multipart_upload(Bucket=bucket, Key="q/bag-one/data/disc 1/03 long.wav")["UploadId"]
    client.upload_part(Bucket=bucket, Key="q/bag-one/data/disc 1/03 long.wav", UploadId=own, PartNumber=1,
                       Body=(bag2 / "data/disc 1/03 long.wav").read_bytes()[:5 * MIB])
    r = pcli("replicate", bag2, f"s3://{bucket}/q", *s3_faulty.options(), *SMALL_PARTS, "-q",
             "--incomplete-max-age", "0", "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    assert "resumed" not in r.output
    assert _uploads(upstream, bucket) == []


def test_an_endpoint_without_scheme_is_a_usage_error_everywhere(pcli, tmp_path: Path) -> None:
    bag = make_bag(tmp_path)
    bad = ["--endpoint-url", "127.0.0.1:7480"]
    for args in (("replicate", bag, "s3://b/p", *bad),
                 ("audit", "s3://b/p/bag-one", "--tier", "remote-metadata", *bad),
                 ("restore", "s3://b/p/bag-one", tmp_path / "out", *bad),
                 ("repair", bag, "--from", "s3://b/p", *bad)):
        r = pcli(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "--endpoint-url '127.0.0.1:7480' is not an endpoint URL" in r.output, r.output
        assert "http://127.0.0.1:7480" in r.output
    # a usage error is told before the ledger is opened: one that cannot be used does not hide it
    broken = tmp_path / "newer.sqlite"
    with sqlite3.connect(broken) as db:  # a ledger of a newer preserve: opening it is refused (exit 7)
        db.execute("CREATE TABLE bags (id INTEGER PRIMARY KEY)")
        db.execute("PRAGMA user_version=99")
    db.close()
    r = pcli("replicate", bag, "s3://b/p", *bad, "--ledger", broken)
    assert r.exit_code == 2 and "is not an endpoint URL" in r.output, r.output
    config = tmp_path / "preserve.toml"
    config.write_text('[targets.ceph]\nurl = "s3://b/p"\nendpoint-url = "127.0.0.1:7480"\n')
    r = pcli("replicate", bag, "ceph", "--config", config)
    assert r.exit_code == 2, r.output
    assert f"{config}: [targets.ceph] endpoint-url '127.0.0.1:7480' is not an endpoint URL" in r.output


def test_a_bucket_that_does_not_exist_is_exit_6_everywhere(pcli, s3_nochecksum: ProxiedS3, tmp_path: Path,
                                                           ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    url = "s3://no-such-bucket-here/p"
    opts = s3_nochecksum.options()
    for args in (("replicate", bag, url, *opts, "--ledger", ledger_url),
                 ("audit", f"{url}/bag-one", "--tier", "remote-metadata", *opts, "--ledger", ledger_url),
                 ("restore", f"{url}/bag-one", tmp_path / "out", *opts),
                 ("repair", bag, "--from", url, *opts, "--ledger", ledger_url)):
        r = pcli(*args)
        assert r.exit_code == 6, (args, r.output)
        assert "the bucket does not exist" in r.output, (args, r.output)
        assert "holds no copy" not in r.output


def test_a_refused_storage_class_is_named(pcli, s3_faulty: ProxiedS3, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_faulty.bucket()
    # as Ceph RGW: 400 InvalidArgument with no message, for any request naming a storage class
    s3_faulty.faults(respond=[{"header": "x-amz-storage-class", "status": 400, "code": "InvalidArgument"}])
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_faulty.options(), "--storage-class", "GLACIER_IR", "-q",
             "--ledger", ledger_url)
    assert r.exit_code == 6, r.output
    assert "the store refused storage class 'GLACIER_IR' (InvalidArgument: no reason given)" in r.output
    assert "None" not in r.output


def test_a_refused_lock_change_keeps_the_reason_and_the_intact_replica_complete(
        pcli, s3_faulty: ProxiedS3, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_faulty.bucket(lock=True)
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    r = pcli("replicate", bag, url, *s3_faulty.options(), "--lock-mode", "governance", "--retain-until", "2099-01-01",
             "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    reason = "Changing the retention mode from GOVERNANCE to COMPLIANCE is not permitted here"
    s3_faulty.faults(respond=[{"method": "PUT", "query": "retention", "status": 403, "code": "AccessDenied",
                               "message": reason}])
    r = pcli("replicate", bag, url, *s3_faulty.options(), "--lock-mode", "compliance", "--retain-until", "2099-01-01",
             "--ledger", ledger, "-q")
    assert r.exit_code == 6, r.output
    assert reason in r.output  # the server's reason, not only "access denied"
    assert "every object is there and verified" in r.output
    rows = ledger_rows(ledger, "replicas")
    assert [row["outcome"] for row in rows] == ["pass", "pass"]
    lock = json.loads(rows[1]["detail"])["object_lock"]
    assert lock["refused"] and reason in lock["refused"][0]


def test_wrong_keys_say_keys_or_permission(pcli, s3_faulty: ProxiedS3, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_faulty.bucket()
    s3_faulty.faults(respond=[{"status": 403, "code": "InvalidAccessKeyId",
                               "message": "The AWS Access Key Id you provided does not exist in our records."}])
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_faulty.options(), "-q", "--ledger", ledger_url)
    assert r.exit_code == 6, r.output
    assert "either the access key or secret is wrong (or expired), or these credentials lack the permission" in r.output

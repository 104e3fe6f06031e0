"""Interrupted and failing transfers: SIGKILL part-way then rerun, connections cut mid-transfer,
and credentials that must never show up anywhere."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from replication_helpers import (
    ACCESS_KEY,
    MIB,
    SECRET,
    CuttingProxy,
    S3Server,
    keys,
    ledger_rows,
    make_bag,
    proxy_for,
)

from preserve.audit.ledger import ledger_exists

SMALL_PARTS = ["--multipart-threshold", "6MiB", "--part-size", "5MiB"]
BIG = "p/bag-one/data/disc 1/03 long.wav"


def _listed_parts(server: S3Server, bucket: str) -> list[dict[str, object]]:
    uploads = server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert len(uploads) == 1, uploads
    return list(server.client().list_parts(Bucket=bucket, Key=BIG, UploadId=uploads[0]["UploadId"]).get("Parts", []))


def test_upload_killed_part_way_then_rerun_completes_and_verifies(run_preserve, s3_server: S3Server, tmp_path: Path,
                                                                  ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=21 * MIB)  # five parts of 5 MiB
    data = (bag / "data/disc 1/03 long.wav").read_bytes()
    bucket = s3_server.bucket()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    fault_file = tmp_path / "faults.json"
    # part 3 is refused (and retried) by the proxy, so that when the process is killed exactly
    # parts 1 and 2 are on the server and no part is half-way there. The test watches the
    # proxy's log, never ListParts: moto works out a part's ETag the first time it is asked for
    # it, unguarded, and a listing racing the part's own upload can leave it with a wrong one.
    fault_file.write_text(json.dumps({"fail_part": 3}))
    with proxy_for(s3_server, tmp_path, "--keep-checksums", fault_file=fault_file) as proxy:
        cmd = ["replicate", str(bag), url, *proxy.options(), *SMALL_PARTS, "--ledger", str(ledger), "-q"]
        exe = Path(sys.executable).parent / "preserve"
        proc = subprocess.Popen([str(exe), *cmd, "--workers", "1", "--retries", "20"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while 3 not in proxy.parts_put(bucket, BIG):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the upload never got going"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        assert proc.returncode == -signal.SIGKILL
        assert BIG not in keys(s3_server, bucket)  # the half-sent file is not an object
        assert (ledger_rows(ledger, "replicas") if ledger_exists(ledger) else []) == []  # killed: nothing recorded
        # parts 1 and 2 are on the server, whole: their ETags are the MD5s of the file's bytes
        assert [(p["PartNumber"], p["Size"], str(p["ETag"]).strip('"')) for p in _listed_parts(s3_server, bucket)] \
            == [(n, 5 * MIB, hashlib.md5(data[(n - 1) * 5 * MIB:n * 5 * MIB]).hexdigest()) for n in (1, 2)]
        proxy.faults()
        before = len(proxy.requests())
        r = run_preserve(*cmd)  # same command, full speed
        assert r.returncode == 0, r.stderr
        assert f"{url}/bag-one: complete" in r.stdout
        assert "2 part(s) resumed" in r.stdout
        assert sorted(proxy.parts_put(bucket, BIG, since=before)) == [3, 4, 5]  # 1 and 2 are not sent again
    assert s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    rows = ledger_rows(ledger, "replicas")
    assert [row["outcome"] for row in rows] == ["pass"]
    detail = json.loads(rows[0]["detail"])
    assert detail["resumed_parts"] == 2 and len(detail["multipart"]["data/disc 1/03 long.wav"]["parts"]) == 5
    # every object verifies, re-hashed from the server
    r = run_preserve("audit", f"{url}/bag-one", "--tier", "remote-full", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [(a["tier"], a["outcome"]) for a in ledger_rows(ledger, "audits")] == [("remote-full", "pass")]


@pytest.mark.parametrize("damage", ["other bytes", "cut short"])
def test_a_listed_part_that_does_not_hold_the_file_s_bytes_is_sent_again(pcli, s3_server: S3Server, tmp_path: Path,
                                                                         damage: str, ledger_url: Path | str) -> None:
    """An interrupted upload whose part 2 is listed with the right size and an ETag that is not the
    MD5 of its bytes (as a listing racing moto's own ETag computation can leave it), or cut short
    (as a server keeping a partial body would): part 1 is reused, part 2 is sent again."""
    bag = make_bag(tmp_path, big=21 * MIB)
    data = (bag / "data/disc 1/03 long.wav").read_bytes()
    bucket = s3_server.bucket()
    client = s3_server.client()
    upload = client.create_multipart_upload(Bucket=bucket, Key=BIG, ChecksumAlgorithm="SHA256")["UploadId"]
    client.upload_part(Bucket=bucket, Key=BIG, UploadId=upload, PartNumber=1, Body=data[:5 * MIB])
    wrong = bytes(5 * MIB) if damage == "other bytes" else data[5 * MIB:8 * MIB]
    client.upload_part(Bucket=bucket, Key=BIG, UploadId=upload, PartNumber=2, Body=wrong)
    with proxy_for(s3_server, tmp_path, "--keep-checksums") as proxy:
        r = pcli("replicate", bag, f"s3://{bucket}/p", *proxy.options(), *SMALL_PARTS, "--ledger", ledger_url, "-q")
        assert r.exit_code == 0, r.output
        assert "1 part(s) resumed" in r.output
        assert sorted(proxy.parts_put(bucket, BIG)) == [2, 3, 4, 5]
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert client.get_object(Bucket=bucket, Key=BIG)["Body"].read() == data
    assert json.loads(ledger_rows(ledger_url, "replicas")[0]["detail"])["resumed_parts"] == 1


def test_connection_cut_mid_transfer_retries_then_names_the_object(pcli, s3_server: S3Server, tmp_path: Path,
                                                                   ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files={"small.txt": b"small\n", "large.wav": os.urandom(2 * MIB)})
    bucket = s3_server.bucket()
    ledger = ledger_url
    proxy = CuttingProxy(int(s3_server.endpoint.rsplit(":", 1)[1]), limit=512 * 1024)
    try:
        r = pcli("replicate", bag, f"s3://{bucket}/p", "--endpoint-url", proxy.endpoint, "--region", "us-east-1",
                 "--path-style", "--retries", "3", "--workers", "1", "--ledger", ledger, "-q")
    finally:
        proxy.close()
    assert r.exit_code == 6, r.output
    assert (f"s3://{bucket}/p/bag-one/data/large.wav: the connection failed while trying to upload it, "
            "after 3 attempt(s)") in r.output
    assert proxy.cuts >= 3  # the request was retried before giving up
    assert "p/bag-one/data/large.wav" not in keys(s3_server, bucket)
    rows = ledger_rows(ledger, "replicas")
    assert len(rows) == 1 and rows[0]["outcome"] == "fail"
    detail = json.loads(rows[0]["detail"])
    assert detail["complete"] is False and "data/large.wav" in detail["failures"][0]
    record = json.loads(s3_server.client().get_object(Bucket=bucket, Key="p/bag-one.preserve-replica.json")["Body"].read())
    assert record["complete"] is False


_DEBUG_WRAPPER = """
import logging, sys
import boto3
boto3.set_stream_logger("botocore", logging.DEBUG)
from preserve.cli.main import main
main(sys.argv[1:])
"""


def _preserve_with_botocore_debug_log(*args: object) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess with botocore's debug log (requests, headers, credential lookup) on stderr."""
    return subprocess.run([sys.executable, "-c", _DEBUG_WRAPPER, *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_no_credential_value_in_any_output_log_or_ledger(run_preserve, s3_server: S3Server, tmp_path: Path,
                                                         ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, big=7 * MIB)
    bucket = s3_server.bucket()
    ledger = ledger_url
    url = f"s3://{bucket}/p"
    outputs = []
    for args in (
        ("replicate", bag, url, *s3_server.options(), *SMALL_PARTS, "--ledger", ledger, "--json"),
        ("audit", f"{url}/bag-one", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger, "--json"),
        ("audit", f"{url}/bag-one", "--tier", "remote-full", *s3_server.options(), "--ledger", ledger),
        ("restore", f"{url}/bag-one", tmp_path / "back", *s3_server.options()),
        ("repair", bag, "--from", url, *s3_server.options(), "--ledger", ledger),
        # failures: unreachable endpoint, unknown profile, a bucket that does not exist
        ("replicate", bag, url, "--endpoint-url", "http://127.0.0.1:9", "--retries", "1", "--ledger", ledger),
        ("replicate", bag, url, *s3_server.options(), "--aws-profile", "nobody", "--ledger", ledger),
        ("audit", "s3://no-such-bucket-x/p/bag-one", "--tier", "remote-metadata", *s3_server.options(), "--ledger", ledger),
    ):
        r = _preserve_with_botocore_debug_log(*args)
        outputs.append((args[0], r.returncode, r.stdout + r.stderr))
    assert [code for _, code, _ in outputs] == [0, 0, 0, 0, 0, 6, 2, 6], [(c, a, t[-2000:]) for a, c, t in outputs]
    # botocore really logged every request (signed headers included) where the secret is looked for
    assert "botocore.endpoint [DEBUG] Sending http request" in outputs[0][2]
    assert "Authorization" in outputs[0][2] and ACCESS_KEY in outputs[0][2]
    for _, _, text in outputs:
        assert SECRET not in text
    assert "Could not connect" in outputs[5][2] or "connection failed" in outputs[5][2]
    assert "AWS profile 'nobody' is not configured" in outputs[6][2]
    # every table of the ledger, on either backend (a SQLite ledger's file is also read below)
    export = run_preserve("ledger", "export", "--ledger", ledger)
    assert export.returncode == 0 and '"table": "replicas"' in export.stdout, export.stderr
    assert SECRET not in export.stdout
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET.encode() not in s3_server.log.read_bytes()
    record = s3_server.client().get_object(Bucket=bucket, Key="p/bag-one.preserve-replica.json")["Body"].read()
    assert SECRET.encode() not in record
    # a configuration file holding a credential is refused without echoing it
    (tmp_path / "preserve.toml").write_text(f'[targets.off]\nurl = "{url}"\naws_secret_access_key = "{SECRET}"\n')
    r = run_preserve("replicate", bag, "off", "--config", tmp_path / "preserve.toml", "--ledger", ledger)
    assert r.returncode == 3
    assert "targets.off.aws_secret_access_key looks like a credential" in r.stderr
    assert SECRET not in r.stdout + r.stderr


def test_store_rejecting_the_default_checksum_points_at_the_option(pcli, s3_server: S3Server, tmp_path: Path,
                                                                   ledger_url: Path | str) -> None:
    from replication_helpers import ChecksumRejectingProxy

    bag = make_bag(tmp_path)
    bucket = s3_server.bucket()
    ledger = ledger_url
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--storage-class", "DEEP_ARCHIVE",
             "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    proxy = ChecksumRejectingProxy(s3_server.endpoint)
    try:
        via = ["--endpoint-url", proxy.endpoint, "--region", "us-east-1", "--path-style"]
        # a restore request is one of the calls boto3 adds CRC32 to by default
        r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", "--request-restore", *via,
                 "--ledger", ledger, "-q")
        assert r.exit_code == 6, r.output
        assert "the store rejected the request checksum that boto3 sends by default (InvalidArgument: Unsupported header" in r.output
        assert "rerun with --checksum-when required" in r.output
        assert proxy.rejected >= 1
        r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", "--request-restore", *via,
                 "--checksum-when", "required", "--ledger", ledger, "-q")
        assert r.exit_code == 0, r.output
        assert "restore requested" in r.output
    finally:
        proxy.close()


def test_download_cut_mid_object_resumes_or_names_the_object(pcli, s3_server: S3Server, tmp_path: Path,
                                                             ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files={"small.txt": b"small\n", "large.wav": os.urandom(2 * MIB)})
    bucket = s3_server.bucket()
    ledger = ledger_url
    assert pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger, "-q").exit_code == 0
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    # two cuts in the middle of the large object: the download resumes where it stopped
    proxy = CuttingProxy(port, limit=700 * 1024, downstream=True, max_cuts=2)
    try:
        via = ["--endpoint-url", proxy.endpoint, "--region", "us-east-1", "--path-style", "--workers", "1"]
        r = pcli("restore", f"s3://{bucket}/p/bag-one", tmp_path / "back", *via, "-q")
        assert r.exit_code == 0, r.output
        assert proxy.cuts == 2
        assert (tmp_path / "back/data/large.wav").read_bytes() == (bag / "data/large.wav").read_bytes()
    finally:
        proxy.close()
    # cut every time: the audit gives up after its attempts and names the object; recorded as nothing passed
    proxy = CuttingProxy(port, limit=700 * 1024, downstream=True)
    try:
        via = ["--endpoint-url", proxy.endpoint, "--region", "us-east-1", "--path-style", "--retries", "2"]
        r = pcli("audit", f"s3://{bucket}/p/bag-one", "--tier", "remote-full", *via, "--ledger", ledger, "-q")
        assert r.exit_code == 6, r.output
        assert f"s3://{bucket}/p/bag-one/data/large.wav: the connection failed while trying to download it" in r.output
    finally:
        proxy.close()
    assert ledger_rows(ledger, "audits") == []  # an audit that could not finish records no verdict


def test_object_lock_through_a_store_rejecting_crc32_with_checksum_when_required(pcli, s3_server: S3Server,
                                                                                 tmp_path: Path,
                                                                                 ledger_url: Path | str) -> None:
    from replication_helpers import ChecksumRejectingProxy

    bag = make_bag(tmp_path, big=7 * MIB)
    bucket = s3_server.bucket(lock=True)
    ledger = ledger_url
    lock = ["--lock-mode", "governance", "--retain-until", "2099-01-01"]
    proxy = ChecksumRejectingProxy(s3_server.endpoint)
    try:
        via = ["--endpoint-url", proxy.endpoint, "--region", "us-east-1", "--path-style", "--checksum-when", "required"]
        # a retention set after a multipart upload is a call botocore always sends a checksum with
        r = pcli("replicate", bag, f"s3://{bucket}/p", *via, *SMALL_PARTS, *lock, "--ledger", ledger, "-q")
        assert r.exit_code == 0, r.output
        # and so is setting the retention of objects already there
        r = pcli("replicate", bag, f"s3://{bucket}/q", *via, *SMALL_PARTS, "--ledger", ledger, "-q")
        assert r.exit_code == 0, r.output
        r = pcli("replicate", bag, f"s3://{bucket}/q", *via, *SMALL_PARTS, *lock, "--ledger", ledger, "-q")
        assert r.exit_code == 0, r.output
    finally:
        proxy.close()
    assert proxy.rejected == 0
    client = s3_server.client()
    for prefix in ("p", "q"):
        head = client.head_object(Bucket=bucket, Key=f"{prefix}/bag-one/data/disc 1/03 long.wav")
        assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"].year == 2099
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass"] * 3

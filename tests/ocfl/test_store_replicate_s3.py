"""``store replicate`` to a real S3-compatible server (moto over HTTP): versions sent once, the
object inventory last, the replica restorable as a valid object."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.ocfl import ingest
from preserve.ocfl.replicate import replicate_store
from preserve.ocfl.update import update
from preserve.ocfl.validate import validate_object
from tests.ocfl.conftest import MakeBag
from tests.replication.replication_helpers import S3Server, aws_env, s3_server

__all__ = ["aws_env", "s3_server"]  # the shared moto server and its dummy credentials


def _download(server: S3Server, bucket: str, prefix: str, dest: Path) -> None:
    client = server.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = dest / item["Key"][len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


@pytest.mark.slow
def test_replicate_to_s3(make_bag: MakeBag, store_root: Path, tmp_path: Path, s3_server: S3Server,
                         monkeypatch: pytest.MonkeyPatch, run_preserve: Callable[..., object]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    bucket = s3_server.bucket()
    first = ingest(store_root, make_bag(), object_id="urn:example:s3", user="t")
    one = replicate_store(store_root, f"s3://{bucket}/store")
    assert one.versions_sent == ["urn:example:s3 v1"]
    update(store_root, "urn:example:s3", remove=("notes.txt",), reason="r", operator="o")
    two = replicate_store(store_root, f"s3://{bucket}/store")
    assert two.versions_sent == ["urn:example:s3 v2"]
    assert two.bytes_sent < one.bytes_sent  # v1's audio was not sent again
    assert replicate_store(store_root, f"s3://{bucket}/store").files_sent == 0
    back = tmp_path / "back"
    _download(s3_server, bucket, "store/", back)
    prefix = first.object_path.relative_to(store_root)
    report = validate_object(back / prefix)
    assert report.ok and report.head == "v2", [str(f) for f in report.errors]
    assert (back / "0=ocfl_1.1").read_text() == "ocfl_1.1\n"

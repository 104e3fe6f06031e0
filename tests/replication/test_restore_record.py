"""restore compares what arrived with the replica record: a replica that lost its tag manifests and
metadata/ still validates as BagIt, and must not be restored as a 'valid' bag without them."""

from __future__ import annotations

import os
from pathlib import Path

from replication_helpers import S3Server
from test_replica_safety import _bag_with_sidecars, _tags_to_lose


def _assert_refused(pcli, location: str, dest: Path, lost: list[str], *options: str) -> None:
    r = pcli("restore", location, dest, *options)
    assert r.exit_code == 1, r.output
    assert "the replica record lists" in r.output and lost[0] in r.output, r.output
    assert not dest.exists()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.preserve-")]


def test_restore_refuses_a_directory_replica_that_lost_its_tag_files(pcli, tmp_path: Path,
                                                                     ledger_url: Path | str) -> None:
    bag = _bag_with_sidecars(tmp_path)
    disk = tmp_path / "disk2"
    assert pcli("replicate", bag, disk, "--ledger", ledger_url, "-q").exit_code == 0
    intact = pcli("restore", f"{disk}/bag-one", tmp_path / "intact")
    assert intact.exit_code == 0, intact.output
    lost = _tags_to_lose(bag)
    for rel in lost:
        os.unlink(disk / "bag-one" / rel)
    _assert_refused(pcli, f"{disk}/bag-one", tmp_path / "restored", lost)


def test_restore_refuses_an_s3_replica_whose_mets_was_replaced(pcli, s3_server: S3Server, tmp_path: Path,
                                                               ledger_url: Path | str) -> None:
    bag = _bag_with_sidecars(tmp_path)
    bucket = s3_server.bucket()
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger_url, "-q")
    assert r.exit_code == 0, r.output
    lost = _tags_to_lose(bag)
    for rel in lost:
        s3_server.client().delete_object(Bucket=bucket, Key=f"p/bag-one/{rel}")
    _assert_refused(pcli, f"s3://{bucket}/p/bag-one", tmp_path / "restored", lost, *s3_server.options())

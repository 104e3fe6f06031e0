"""Restore round-trips (checked by bagit-python) and repairs from a replica, on S3 and on disk."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import bagit
import pytest
from replication_helpers import MIB, S3Server, ledger_rows, make_bag

from preserve.stores.filesystem import FilesystemStore

SMALL_PARTS = ["--multipart-threshold", "6MiB", "--part-size", "5MiB"]
# bagit-python does not decode %25 in manifests, so the bags it checks here avoid '%' in names
FILES = {"disc 1/01 intro.wav": b"RIFF" + bytes(range(256)) * 12, "disc 1/02 song.flac": b"fLaC" + bytes(7000),
         "liner notes.txt": "Übersetzung\n".encode()}


def _flip(path: Path, at: int = 10) -> None:
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.fixture(params=["s3", "filesystem"])
def target(request: pytest.FixtureRequest, s3_server: S3Server, tmp_path: Path) -> tuple[str, list[str]]:
    """A replica target and the options to reach it: a bucket prefix, or a directory on 'another disk'."""
    if request.param == "s3":
        return f"s3://{s3_server.bucket()}/p", s3_server.options()
    return str(tmp_path / "second-disk" / "bags"), []


@pytest.mark.parametrize("layout", [[], ["--serialize", "tar"]], ids=["files", "tar"])
def test_restore_round_trip_is_valid_for_bagit_python(pcli, target, tmp_path: Path, layout: list[str],
                                                      ledger_url: Path | str) -> None:
    url, opts = target
    bag = make_bag(tmp_path, big=7 * MIB, files=FILES)
    ledger = ledger_url
    r = pcli("replicate", bag, url, *opts, *SMALL_PARTS, *layout, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    dest = tmp_path / "restored" / "again"
    r = pcli("restore", f"{url}/bag-one", dest, *opts, "-q")
    assert r.exit_code == 0, r.output
    assert f"{dest}: restored from {url}/bag-one" in r.output and "and valid" in r.output
    assert (dest / "bagit.txt").is_file()
    restored = bagit.Bag(str(dest))
    restored.validate()  # raises when invalid
    assert sorted(restored.payload_files()) == sorted(bagit.Bag(str(bag)).payload_files())
    for rel in restored.payload_files():
        assert (dest / rel).read_bytes() == (bag / rel).read_bytes()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no staging left
    # restoring onto an existing directory is refused, nothing touched
    r = pcli("restore", f"{url}/bag-one", dest, *opts, "-q")
    assert r.exit_code == 4 and f"{dest}: already exists" in r.output
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass"]
    assert json.loads(ledger_rows(ledger, "replicas")[0]["detail"])["layout"] == ("tar" if layout else "files")


def test_restore_of_a_damaged_replica_leaves_nothing(pcli, s3_server: S3Server, tmp_path: Path,
                                                     ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    bucket = s3_server.bucket()
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger_url, "-q")
    assert r.exit_code == 0, r.output
    client = s3_server.client()
    key = "p/bag-one/data/disc 1/01 intro.wav"
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[5] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    dest = tmp_path / "restored"
    r = pcli("restore", f"s3://{bucket}/p/bag-one", dest, *s3_server.options(), "-q")
    assert r.exit_code == 1
    assert f"s3://{bucket}/p/bag-one: the restored copy is not valid" in r.output
    assert "data/disc 1/01 intro.wav: sha256 checksum does not match manifest-sha256.txt" in r.output
    assert f"nothing was restored to {dest}" in r.output
    assert not dest.exists() and not list(tmp_path.glob(".restored.preserve-staging-*"))


def test_repair_restores_a_flipped_file_and_refuses_a_damaged_copy(pcli, target, tmp_path: Path, s3_server: S3Server,
                                                                   ledger_url: Path | str) -> None:
    url, opts = target
    bag = make_bag(tmp_path, big=7 * MIB, files=FILES)
    ledger = ledger_url
    r = pcli("replicate", bag, url, *opts, *SMALL_PARTS, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    good = (bag / "data/disc 1/03 long.wav").read_bytes()
    _flip(bag / "data/disc 1/03 long.wav", at=6 * MIB)
    (bag / "data/liner notes.txt").unlink()
    r = pcli("repair", bag, "--from", url, *opts, "--ledger", ledger)
    assert r.exit_code == 0, r.output
    assert f"repaired: data/disc 1/03 long.wav (altered) from {url}/bag-one" in r.output
    assert f"repaired: data/liner notes.txt (missing) from {url}/bag-one" in r.output
    assert (bag / "data/disc 1/03 long.wav").read_bytes() == good
    bagit.Bag(str(bag)).validate()
    rows = ledger_rows(ledger, "repairs")
    assert sorted((r["file"], r["outcome"], r["source_target"]) for r in rows) == [
        ("data/disc 1/03 long.wav", "repaired", f"{url}/bag-one"), ("data/liner notes.txt", "repaired", f"{url}/bag-one")]
    # now the replica's copy is damaged too: it must not be used
    if url.startswith("s3://"):
        bucket = url[5:].split("/")[0]
        client = s3_server.client()
        key = "p/bag-one/data/disc 1/01 intro.wav"
        body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[7] ^= 0xFF
        client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    else:
        _flip(Path(url) / "bag-one/data/disc 1/01 intro.wav", at=7)
    local = bag / "data/disc 1/01 intro.wav"
    _flip(local, at=9)
    damaged = local.read_bytes()
    r = pcli("repair", bag, "--from", url, *opts, "--ledger", ledger)
    assert r.exit_code == 1, r.output
    assert "refused: data/disc 1/01 intro.wav (altered): the replica's copy does not match manifest-sha256.txt" in r.output
    assert local.read_bytes() == damaged  # left as it was
    assert not list(local.parent.glob(".*preserve-repair-*"))
    rows = ledger_rows(ledger, "repairs")
    assert (rows[-1]["file"], rows[-1]["outcome"]) == ("data/disc 1/01 intro.wav", "refused")
    assert "does not match manifest-sha256.txt" in json.loads(rows[-1]["detail"])["reason"]


def test_tar_replica_audits_and_repairs(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files=FILES)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    r = pcli("replicate", bag, disk, "--serialize", "tar", "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert f"{disk}/bag-one.tar: complete, 1 objects" in r.output
    assert sorted(p.name for p in disk.iterdir()) == ["bag-one.preserve-replica.json", "bag-one.tar"]
    r = pcli("replicate", bag, disk, "--serialize", "tar", "--ledger", ledger, "-q")
    assert r.exit_code == 0 and "0 sent (0 B), 1 already there" in r.output
    r = pcli("audit", disk / "bag-one", "--tier", "remote-full", "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    _flip(bag / "data/liner notes.txt", at=2)
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger)
    assert r.exit_code == 0, r.output
    assert f"repaired: data/liner notes.txt (altered) from {disk}/bag-one.tar" in r.output
    bagit.Bag(str(bag)).validate()
    # the tar replaced by other bytes: found, and a restore refuses it
    tar = disk / "bag-one.tar"
    _flip(tar, at=tar.stat().st_size // 2)
    r = pcli("audit", disk / "bag-one", "--tier", "remote-full", "--ledger", ledger, "-q")
    assert r.exit_code == 1
    assert "sha256 of the tar object does not match its record" in r.output
    assert [(a["tier"], a["outcome"]) for a in ledger_rows(ledger, "audits")] == [("remote-full", "pass"), ("remote-full", "fail")]


def test_restore_from_an_archive_storage_class_leaves_nothing(pcli, s3_server: S3Server, tmp_path: Path,
                                                              ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files=FILES)
    bucket = s3_server.bucket()
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--storage-class", "GLACIER",
             "--ledger", ledger_url, "-q")
    assert r.exit_code == 0, r.output
    dest = tmp_path / "restored"
    r = pcli("restore", f"s3://{bucket}/p/bag-one", dest, *s3_server.options(), "-q")
    assert r.exit_code == 6, r.output
    assert f"s3://{bucket}/p/bag-one: 3 object(s)" in r.output and "archive storage class" in r.output
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


class _InterruptedStore(FilesystemStore):
    """A directory replica whose second payload download is interrupted (Ctrl-C) after its first chunk."""

    payload_gets = 0

    @contextlib.contextmanager
    def get(self, key: str) -> Iterator[Iterator[bytes]]:
        with super().get(key) as chunks:
            if "/data/" in f"/{key}":
                self.payload_gets += 1
                if self.payload_gets == 2:
                    yield _then_interrupt(chunks)
                    return
            yield chunks


def _then_interrupt(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield next(chunks)
    raise KeyboardInterrupt


def test_interrupted_repair_leaves_no_temporary_file_and_a_rerun_finishes(pcli, tmp_path: Path,
                                                                          ledger_url: Path | str) -> None:
    from preserve.replication.repair import repair_bag

    bag = make_bag(tmp_path, files=FILES)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
    damaged = ["data/disc 1/01 intro.wav", "data/disc 1/02 song.flac", "data/liner notes.txt"]
    for rel in damaged:
        _flip(bag / rel, at=3)
    with pytest.raises(KeyboardInterrupt):
        repair_bag(bag, _InterruptedStore(disk))
    assert not list(bag.rglob("*preserve-repair*"))
    assert (bag / damaged[0]).read_bytes() == (disk / "bag-one" / damaged[0]).read_bytes()  # put in place at once
    assert not (tmp_path / ".bag-one.preserve-lock").exists()  # the lock is released
    # (what a killed repair leaves is tested in test_repair_restore_safety.py: only its journal's entries go)
    r = pcli("repair", bag, "--from", disk, "--ledger", ledger)
    assert r.exit_code == 0, r.output
    assert "repaired: data/disc 1/02 song.flac (altered)" in r.output and "repaired: data/liner notes.txt (altered)" in r.output
    assert not list(bag.rglob("*preserve-repair*"))
    bagit.Bag(str(bag)).validate()

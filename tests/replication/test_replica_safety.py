"""Directory replicas and replication: no payload file is ever dropped for its name, a link in a
replica is damage (never followed, never a verified copy), the local bag is read with no link
followed, and the replica record lets both remote tiers notice every lost tag file."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from replication_helpers import S3Server, ledger_rows, make_bag

from preserve.errors import UnsafePath
from preserve.stores.base import PutOptions
from preserve.stores.filesystem import STAGING, FilesystemStore

LOOK_ALIKES = {
    "x.preserve-upload-1234abcd": b"a payload file whose name looks like a temporary one\n",
    ".a.preserve-upload-00": b"hidden, and it too looks like a temporary file\n",
    "disc 1/.02 song.flac.preserve-upload-9f3c1a7e": os.urandom(5000),
    "disc 1/01 intro.wav": b"RIFF" + os.urandom(3000),
}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- 1. a name that looks like a temporary file is never deleted ---------------------------------


def test_payload_named_like_a_temporary_file_is_replicated_audited_and_restored(pcli, tmp_path: Path,
                                                                                ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, files=LOOK_ALIKES)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert _files(disk / "bag-one") == _files(bag)  # every file, the look-alikes included
    assert sorted(p.name for p in disk.iterdir()) == ["bag-one", "bag-one.preserve-replica.json"]  # no staging left
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 0 and "0 sent (0 B)" in r.output, r.output
    assert _files(disk / "bag-one") == _files(bag)
    for tier in ("remote-metadata", "remote-full"):
        r = pcli("audit", disk / "bag-one", "--tier", tier, "--ledger", ledger, "-q")
        assert r.exit_code == 0, r.output
    r = pcli("restore", disk / "bag-one", tmp_path / "restored", "-q")
    assert r.exit_code == 0, r.output
    assert _files(tmp_path / "restored") == _files(bag)
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass", "pass"]


def test_only_what_a_dead_run_s_journal_lists_is_removed(tmp_path: Path) -> None:
    from test_store_contract import killed_mid_upload

    disk = tmp_path / "disk2"
    store = FilesystemStore(disk)
    store.put_bytes("bag/data/x.preserve-upload-1234abcd", b"kept", PutOptions())
    store.finish_uploads()
    (disk / "bag/data/.y.preserve-upload-00").write_bytes(b"kept too")  # put there by hand: never ours
    killed_mid_upload(disk, "bag/data/half.wav")
    [dead] = [p for p in (disk / STAGING).iterdir() if p.is_dir()]
    assert [p.name for p in dead.iterdir()] == ["1"]  # the temporary has a number, never a key's name
    # a live run's staging (its journal locked) is left alone, whatever it holds
    live = FilesystemStore(disk)
    started, release = threading.Event(), threading.Event()

    def slow() -> object:
        yield b"in flight"
        started.set()
        release.wait(30)

    writer = threading.Thread(target=live.put_stream, args=("bag/data/live.wav", slow(), PutOptions()))
    writer.start()
    try:
        assert started.wait(30)
        assert store.abort_own_uploads("bag/") == 1
        assert not dead.exists()
        assert [p.name for p in (disk / STAGING).iterdir() if p.is_dir()] == [live._run.folder.split("/")[1]]  # type: ignore[union-attr]
    finally:
        release.set()
        writer.join(30)
    live.finish_uploads()
    store.finish_uploads()
    assert not (disk / STAGING).exists()
    assert sorted(o.key for o in store.list("bag/")) == [
        "bag/data/.y.preserve-upload-00", "bag/data/live.wav", "bag/data/x.preserve-upload-1234abcd"]


def test_a_journal_naming_anything_outside_the_staging_folder_removes_nothing(tmp_path: Path) -> None:
    disk = tmp_path / "disk2"
    store = FilesystemStore(disk)
    store.put_bytes("bag/data/a.wav", b"kept", PutOptions())
    store.finish_uploads()
    (disk / STAGING).mkdir()
    header = b"# preserve upload journal: the staging folder of a run; removed when the run is dead\n"
    lines = [os.fsencode(p).hex().encode() for p in ("bag", f"{STAGING}/../bag", str(disk / "bag"))]
    (disk / STAGING / "forged.journal").write_bytes(header + b"\n".join(lines) + b"\n")
    assert store.abort_own_uploads("") == 0
    assert (disk / "bag/data/a.wav").read_bytes() == b"kept"


def test_a_bag_named_like_the_staging_folder_is_refused(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path, name=STAGING)
    disk = tmp_path / "disk2"
    r = pcli("replicate", bag, disk, "--ledger", ledger_url, "-q")
    assert r.exit_code == 2, r.output
    assert f"a bag named '{STAGING}' cannot be replicated to {disk}" in r.output and "rename the bag" in r.output
    assert not disk.exists() or list(disk.iterdir()) == []


# -- 2. a link in a directory replica is damage ------------------------------------------------


def _linked_replica(pcli, tmp_path: Path, ledger: Path | str) -> tuple[Path, Path, Path | str]:
    """A replica whose data/notes%.txt is a link to an identical copy outside it and whose
    data/disc 1 folder is a link to an identical folder outside it: every byte read through
    the links would match the manifests."""
    bag = make_bag(tmp_path)
    disk = tmp_path / "disk2"
    assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    note = disk / "bag-one/data/notes%.txt"
    shutil.move(note, outside / "notes%.txt")
    note.symlink_to(outside / "notes%.txt")
    folder = disk / "bag-one/data/disc 1"
    shutil.move(folder, outside / "disc 1")
    folder.symlink_to(outside / "disc 1")
    return bag, disk, ledger


def test_links_in_a_directory_replica_fail_both_remote_tiers(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    _bag, disk, ledger = _linked_replica(pcli, tmp_path, ledger_url)
    for tier in ("remote-metadata", "remote-full"):
        r = pcli("audit", disk / "bag-one", "--tier", tier, "--ledger", ledger, "-q")
        assert r.exit_code == 1, r.output
        assert (f"FAIL {disk}/bag-one/data/notes%.txt: not a stored object: {disk}/bag-one/data/notes%.txt is a "
                "symbolic link") in r.output
        for name in ("01 intro.wav", "02 song.flac"):
            assert (f"FAIL {disk}/bag-one/data/disc 1/{name}: not a stored object: {disk}/bag-one/data/disc 1 is a "
                    "symbolic link") in r.output
    audits = ledger_rows(ledger, "audits")
    assert [(a["tier"], a["outcome"]) for a in audits] == [("remote-metadata", "fail"), ("remote-full", "fail")]
    findings = {(f["audit_id"], f["file"], f["kind"]) for f in ledger_rows(ledger, "findings")}
    for audit in audits:
        assert {(audit["id"], "data/notes%.txt", "altered"), (audit["id"], "data/disc 1/01 intro.wav", "altered"),
                (audit["id"], "data/disc 1/02 song.flac", "altered")} <= findings


def test_the_store_never_follows_a_link_below_its_root(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    _bag, disk, _ledger = _linked_replica(pcli, tmp_path, ledger_url)
    store = FilesystemStore(disk)
    for key, link in (("bag-one/data/notes%.txt", "bag-one/data/notes%.txt"),
                      ("bag-one/data/disc 1/02 song.flac", "bag-one/data/disc 1")):
        info = store.head(key)
        assert info is not None and info.damage == f"{disk}/{link} is a symbolic link; preserve never follows a link inside a bag or replica"
        with pytest.raises(UnsafePath) as raised, store.get(key) as chunks:
            b"".join(chunks)
        assert raised.value.exit_code == 1 and str(raised.value).startswith(f"{disk}/{link}: unsafe path (is a symbolic link")
    listed = {o.key: o.damage for o in store.list("bag-one/data/")}
    assert listed["bag-one/data/notes%.txt"] is not None and listed["bag-one/data/disc 1"] is not None
    assert "bag-one/data/disc 1/02 song.flac" not in listed  # a linked folder is not entered
    # the root itself may be a link (an operator's mount point)
    (tmp_path / "mount").symlink_to(disk)
    assert FilesystemStore(tmp_path / "mount").head("bag-one/bagit.txt") is not None


def test_restore_from_a_replica_with_a_link_fails_and_replicate_replaces_only_the_object_link(
        pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag, disk, ledger = _linked_replica(pcli, tmp_path, ledger_url)
    outside = _files(tmp_path / "outside")
    r = pcli("restore", disk / "bag-one", tmp_path / "restored", "-q")
    assert r.exit_code == 1, r.output
    assert "is a symbolic link" in r.output and not (tmp_path / "restored").exists()
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 1, r.output  # nothing is written through the linked folder
    assert f"{disk}/bag-one/data/disc 1: unsafe path (is a symbolic link" in r.output
    assert _files(tmp_path / "outside") == outside  # nothing outside the replica was touched
    os.unlink(disk / "bag-one/data/disc 1")
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output  # the object link is replaced by the file itself, never followed
    assert not (disk / "bag-one/data/notes%.txt").is_symlink()
    assert _files(disk / "bag-one") == _files(bag) and _files(tmp_path / "outside") == outside
    assert [row["outcome"] for row in ledger_rows(ledger, "replicas")] == ["pass", "fail", "pass"]


# -- 3. the local bag is read with no link followed --------------------------------------------


def test_a_linked_folder_in_data_is_refused_before_anything_is_sent(pcli, tmp_path: Path,
                                                                    ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(bag / "data/disc 1", outside / "disc 1")
    (bag / "data/disc 1").symlink_to(outside / "disc 1")
    for extra in ([], ["--serialize", "tar"]):
        disk = tmp_path / f"disk{len(extra)}"
        r = pcli("replicate", bag, disk, *extra, "--ledger", ledger_url, "-q")
        assert r.exit_code == 1, r.output
        assert "data/disc 1: is a symbolic link" in r.output
        assert not disk.exists() or list(disk.iterdir()) == []


def test_links_that_appear_after_validation_are_refused_by_replicate_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation and sending are moments apart: replicate does not lean on validation having
    seen no link; it refuses every link itself, before anything is sent."""
    from preserve.bag.validate import validate_bag
    from preserve.replication import replicate

    for case in ("file", "folder", "tag"):
        root = tmp_path / case
        root.mkdir()
        bag = make_bag(root)
        report = validate_bag(bag, fast=True)
        monkeypatch.setattr(replicate, "validate_bag", lambda *a, report=report, **k: report)
        outside = root / "outside"
        outside.mkdir()
        rel = {"file": "data/notes%.txt", "folder": "data/disc 1", "tag": "metadata/xxh3-128.txt"}[case]
        shutil.move(bag / rel, outside / "x")
        (bag / rel).symlink_to(outside / "x")  # identical bytes: only the link itself is wrong
        disk = root / "disk2"
        with pytest.raises(UnsafePath, match=f"{bag / rel}: is a symbolic link"):
            replicate.replicate_bag(bag, FilesystemStore(disk))
        assert not disk.exists() or list(disk.iterdir()) == []


def test_tar_stream_refuses_a_link_below_the_bag(tmp_path: Path) -> None:
    from preserve.replication.tarstream import tar_chunks

    bag = make_bag(tmp_path)
    note = bag / "data/notes%.txt"
    shutil.move(note, tmp_path / "n")
    note.symlink_to(tmp_path / "n")
    with pytest.raises(UnsafePath, match=f"{note}: unsafe path \\(is a symbolic link"):
        for _ in tar_chunks(bag, "bag-one", {}):
            pass


# -- 4. the replica record lists every object; remote tiers notice lost ones --------------------

def _bag_with_sidecars(root: Path) -> Path:
    """A bag from the real writer with METS and PREMIS sidecars in metadata/, as `package` makes."""
    from preserve.bag.writer import StagedBag, create_bag, payload_from_directory

    src = root / "src"
    (src / "disc 1").mkdir(parents=True)
    (src / "disc 1/01 intro.wav").write_bytes(b"RIFF" + os.urandom(3000))
    (src / "notes.txt").write_bytes(b"liner notes\n")

    def sidecars(staged: StagedBag) -> None:
        (staged.path / "metadata").mkdir(exist_ok=True)
        (staged.path / "metadata/mets.xml").write_bytes(b'<mets xmlns="http://www.loc.gov/METS/"/>\n')
        (staged.path / "metadata/premis.xml").write_bytes(b'<premis xmlns="http://www.loc.gov/premis/v3"/>\n')

    return create_bag(root / "bag-one", payload_from_directory(src), algorithms=("sha256", "sha512"),
                      extra_tags=sidecars).path


def _tags_to_lose(bag: Path) -> list[str]:
    """Both tag manifests and every metadata/* file (the METS, PREMIS, checksums... a bag holds)."""
    lost = sorted([*(p.relative_to(bag).as_posix() for p in (bag / "metadata").rglob("*") if p.is_file()),
                   "tagmanifest-sha256.txt", "tagmanifest-sha512.txt"])
    assert {"metadata/mets.xml", "metadata/premis.xml"} <= set(lost) and all((bag / rel).is_file() for rel in lost)
    return lost


def _assert_lost_tags_found(pcli, location: str, ledger: Path | str, lost: list[str], *options: str) -> None:
    for tier in ("remote-metadata", "remote-full"):
        r = pcli("audit", location, "--tier", tier, *options, "--ledger", ledger, "-q")
        assert r.exit_code == 1, r.output
        for rel in lost:
            assert f"FAIL {location}/{rel}: listed in the replica record but not in the replica" in r.output
    audits = ledger_rows(ledger, "audits")
    assert [(a["tier"], a["outcome"]) for a in audits[-2:]] == [("remote-metadata", "fail"), ("remote-full", "fail")]
    for audit in audits[-2:]:
        found = sorted(f["file"] for f in ledger_rows(ledger, "findings") if f["audit_id"] == audit["id"])
        assert found == lost and {f["kind"] for f in ledger_rows(ledger, "findings")} == {"missing"}


def test_the_record_lists_every_tag_file_and_pins_the_payload(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    disk = tmp_path / "disk2"
    assert pcli("replicate", bag, disk, "--ledger", ledger_url, "-q").exit_code == 0
    record = json.loads((disk / "bag-one.preserve-replica.json").read_text())
    import hashlib

    tags = {p.relative_to(bag).as_posix(): p for p in bag.rglob("*") if p.is_file() and not
            p.relative_to(bag).as_posix().startswith("data/")}
    assert record["tag_files"] == {rel: {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                                   for rel, p in tags.items()}
    payload = [p for p in (bag / "data").rglob("*") if p.is_file()]
    assert (record["payload_files"], record["payload_bytes"]) == (len(payload), sum(p.stat().st_size for p in payload))
    assert record["objects"] == len(tags) + len(payload)


def test_lost_tag_files_of_a_directory_replica_fail_both_tiers(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = _bag_with_sidecars(tmp_path)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
    lost = _tags_to_lose(bag)
    for rel in lost:
        os.unlink(disk / "bag-one" / rel)
    _assert_lost_tags_found(pcli, f"{disk}/bag-one", ledger, lost)


def test_lost_tag_files_of_an_s3_replica_fail_both_tiers(pcli, s3_server: S3Server, tmp_path: Path,
                                                         ledger_url: Path | str) -> None:
    bag = _bag_with_sidecars(tmp_path)
    bucket = s3_server.bucket()
    ledger = ledger_url
    r = pcli("replicate", bag, f"s3://{bucket}/p", *s3_server.options(), "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    lost = _tags_to_lose(bag)
    for rel in lost:
        s3_server.client().delete_object(Bucket=bucket, Key=f"p/bag-one/{rel}")
    _assert_lost_tags_found(pcli, f"s3://{bucket}/p/bag-one", ledger, lost, *s3_server.options())


def test_a_lost_record_fails_and_an_old_record_is_still_read(pcli, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    disk = tmp_path / "disk2"
    ledger = ledger_url
    assert pcli("replicate", bag, disk, "--ledger", ledger, "-q").exit_code == 0
    path = disk / "bag-one.preserve-replica.json"
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("tag_files", "payload_files", "payload_bytes")}
    path.write_text(json.dumps(old))  # as an older preserve wrote it
    r = pcli("audit", disk / "bag-one", "--tier", "remote-metadata", "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert "the replica record was written by an older preserve and does not list the tag files" in r.output
    r = pcli("replicate", bag, disk, "--ledger", ledger, "-q")  # an old record is read: nothing sent again
    assert r.exit_code == 0 and "0 sent (0 B)" in r.output, r.output
    assert "tag_files" in json.loads(path.read_text())  # and written again in full
    os.unlink(path)
    r = pcli("audit", disk / "bag-one", "--tier", "remote-full", "--ledger", ledger, "-q")
    assert r.exit_code == 1, r.output
    assert f"the replica record {disk}/bag-one.preserve-replica.json is not there" in r.output
    findings = ledger_rows(ledger, "findings")
    assert [(f["file"], f["kind"]) for f in findings] == [("bag-one.preserve-replica.json", "missing")]

"""A store replicated to a folder on another disk: the replica is itself a valid storage root, an
object restored from it passes ocfl-py's validator, and a replication killed half-way resumes
sending only what is missing, never leaving an inventory ahead of its content."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from preserve.ocfl import ingest
from preserve.ocfl.inventory import read_inventory
from preserve.ocfl.update import update
from preserve.ocfl.validate import validate_object, validate_root
from tests.ocfl.conftest import MakeBag, tree
from tests.ocfl.test_store_ocflpy import ocfl_validate, ocflpy
from tests.replication.replication_helpers import aws_env, pcli

__all__ = ["aws_env", "ocfl_validate", "pcli"]

OID = "urn:example:on-disk"
MIB = 1024 * 1024


def _object(make_bag: MakeBag, root: Path, files: dict[str, bytes] | None = None) -> Path:
    files = files or {"a.wav": b"RIFF" + os.urandom(5000), "sub/b.flac": b"fLaC" + os.urandom(2000),
                      "notes.txt": b"notes\n"}
    made = ingest(root, make_bag("bag", files), object_id=OID, user="t")
    update(root, OID, remove=("notes.txt",), reason="not audio", operator="o")
    return made.object_path


def _json(output: str) -> Any:
    return json.loads(output[output.index("{"):])


@pytest.mark.slow
def test_folder_replica_is_a_storage_root_and_restores_as_ocflpy_accepts(
        pcli: Any, make_bag: MakeBag, store_root: Path, tmp_path: Path, ocfl_validate: Path) -> None:
    obj = _object(make_bag, store_root)
    prefix = obj.relative_to(store_root).as_posix()
    replica, ledger = tmp_path / "replica", tmp_path / "ledger.sqlite"
    r = pcli("replicate", store_root, replica, "--ledger", ledger, "-q")
    assert r.exit_code == 0, r.output
    assert validate_root(replica).ok  # nothing stray: the replica is a storage root as it stands
    assert pcli("store", "validate", replica).exit_code == 0
    assert tree(replica / prefix) == tree(obj)

    r = pcli("audit", replica / prefix, "--tier", "remote-metadata", "--ledger", ledger)
    assert r.exit_code == 0, r.output
    assert "presence and size only" in r.output  # a folder keeps no checksum, and says so
    r = pcli("audit", replica / prefix, "--tier", "remote-full", "--ledger", ledger)
    assert r.exit_code == 0, r.output

    back = tmp_path / "restored"
    r = pcli("restore", replica / prefix, back, "--json")
    assert r.exit_code == 0, r.output
    doc = _json(r.output)
    assert doc["object"] == OID and doc["head"] == "v2" and doc["valid"] is True
    assert tree(back) == tree(obj)
    valid, errors, _warnings = ocflpy(ocfl_validate, [back])[back]
    assert valid and not errors

    # a content file altered in the replica: found by the full tier, and refused by a restore
    (replica / prefix / "v1" / "content" / "data" / "a.wav").write_bytes(b"RIFF" + b"\0" * 5000)
    r = pcli("audit", replica / prefix, "--tier", "remote-full", "--ledger", ledger)
    assert r.exit_code == 1 and "v1/content/data/a.wav: sha512 of the stored file does not match" in r.output
    r = pcli("restore", replica / prefix, tmp_path / "again")
    assert r.exit_code == 1 and not (tmp_path / "again").exists(), r.output


def _files_below(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


@pytest.mark.slow
def test_killed_replication_resumes_with_only_what_is_missing(pcli: Any, make_bag: MakeBag, store_root: Path,
                                                              tmp_path: Path) -> None:
    files = {f"track{i:02}.wav": b"RIFF" + os.urandom(MIB) for i in range(8)} | {"notes.txt": b"notes\n"}
    obj = _object(make_bag, store_root, files)
    prefix = obj.relative_to(store_root).as_posix()
    replica = tmp_path / "replica"
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe is not None
    proc = subprocess.Popen([exe, "replicate", str(store_root), str(replica), "--bandwidth", "2M", "-w", "1", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    content = replica / prefix / "v1" / "content" / "data"
    deadline = time.monotonic() + 60
    while len(_files_below(content)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _files_below(replica / prefix)
    assert 2 <= len(before) < len(tree(obj)), before  # killed half-way
    assert "inventory.json" not in before and "v1/inventory.json" not in before  # never ahead of its content

    r = pcli("replicate", store_root, replica, "--json")
    assert r.exit_code == 0, r.output
    doc = _json(r.output)["replicas"][0]
    assert doc["versions_sent"] == [f"{OID} v1", f"{OID} v2"]
    assert doc["files_sent"] == len(tree(obj)) - len(before)  # what arrived before was verified, not sent again
    assert tree(replica / prefix) == tree(obj)
    assert validate_object(replica / prefix).ok and validate_root(replica).ok  # the killed run's staging is gone
    assert read_inventory(replica / prefix)["head"] == "v2"


def test_flat_layout_object_is_located_by_its_replica_folder(pcli: Any, make_bag: MakeBag, tmp_path: Path) -> None:
    from preserve.ocfl.layout import FLAT, init_root
    from preserve.ocfl.replica import locate, read_record
    from preserve.stores import open_store

    root = tmp_path / "flat"
    init_root(root, layout=FLAT)
    ingest(root, make_bag("flat-bag"), object_id="object-one", user="t")
    replica = tmp_path / "replica"
    r = pcli("replicate", root / "object-one", replica, "-q")
    assert r.exit_code == 0, r.output
    store, prefix = locate(str(replica / "object-one"), open_store) or (None, "")
    assert store is not None and prefix == "object-one" and store.url == str(replica)
    record = read_record(store, prefix)
    assert record is not None and record.object_id == "object-one" and record.head == "v1"
    assert set(record.files) == _files_below(root / "object-one") - {"inventory.json", "inventory.json.sha512"}
    assert locate(str(tmp_path / "flat-bag"), open_store) is None  # a bag's folder is no store object
    r = pcli("replicate", root, tmp_path / "tarred", "--serialize", "tar")
    assert r.exit_code == 2 and "--serialize applies to bags" in r.output, r.output

"""``store ingest``: a valid bag becomes object v1; its digests come from the verified manifests."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from preserve.ocfl import ingest
from preserve.ocfl.inventory import read_inventory, state_of
from preserve.ocfl.layout import find_objects, open_root
from preserve.ocfl.validate import validate_object
from tests.ocfl.conftest import MakeBag, sha512

Run = Callable[..., subprocess.CompletedProcess[str]]


def _manifest(bag: Path, name: str) -> dict[str, str]:
    out = {}
    for line in (bag / name).read_text().splitlines():
        digest, path = line.split(" ", 1)
        out[path.strip()] = digest
    return out


def test_ingest_makes_v1_with_the_whole_bag_as_state(make_bag: MakeBag, store_root: Path, run_preserve: Run) -> None:
    bag = make_bag(info=[("External-Identifier", "urn:isrc:GBAAA9900001")])
    done = run_preserve("store", "ingest", store_root, bag, "--operator", "Ann Curator",
                        "--address", "mailto:ann@example.org")
    assert done.returncode == 0, done.stderr
    obj = open_root(store_root).object_path("urn:isrc:GBAAA9900001")
    inventory = read_inventory(obj)
    assert inventory["id"] == "urn:isrc:GBAAA9900001" and inventory["head"] == "v1"
    state = state_of(inventory)
    on_disk = {p.relative_to(bag).as_posix() for p in bag.rglob("*") if p.is_file()}
    assert set(state) == on_disk  # bagit.txt, manifests, tag files, data/, metadata/
    # the content digests are the bag's own sha512 manifest values, verified
    for path, digest in _manifest(bag, "manifest-sha512.txt").items():
        assert state[path] == digest
    for path, digest in _manifest(bag, "tagmanifest-sha512.txt").items():
        assert state[path] == digest
    # identical bytes are stored once
    assert state["data/same.wav"] == state["data/sub/copy-of-a.wav"]
    assert len(inventory["manifest"][state["data/same.wav"]]) == 1
    assert inventory["versions"]["v1"]["user"] == {"name": "Ann Curator", "address": "mailto:ann@example.org"}
    assert validate_object(obj).ok


def test_a_bag_without_sha512_gets_sha512_in_the_same_read(make_bag: MakeBag, store_root: Path) -> None:
    bag = make_bag(algorithms=("sha256",))
    result = ingest(store_root, bag, object_id="urn:uuid:2f1e4a3c-0000-4000-8000-000000000001", user="t")
    state = state_of(read_inventory(result.object_path))
    assert state["data/a.wav"] == sha512(bag / "data" / "a.wav")
    assert state["bagit.txt"] == sha512(bag / "bagit.txt")


def test_ids_from_external_identifier(make_bag: MakeBag, store_root: Path) -> None:
    plain = make_bag("plain", info=[("External-Identifier", "HARBOUR-2024")])
    first = ingest(store_root, plain, user="t")
    assert first.object_id.startswith("urn:uuid:")
    none = make_bag("none", info=[("Source-Organization", "X")])
    second = ingest(store_root, none, user="t")
    assert second.object_id.startswith("urn:uuid:") and second.object_id != first.object_id
    # the same External-Identifier gives the same id: a second ingest is refused, not duplicated
    again = make_bag("again", info=[("External-Identifier", "HARBOUR-2024")])
    with pytest.raises(Exception, match="already in the store"):
        ingest(store_root, again, user="t")


def test_an_altered_payload_file_is_refused_and_nothing_stored(make_bag: MakeBag, store_root: Path, run_preserve: Run) -> None:
    bag = make_bag()
    data = bytearray((bag / "data" / "a.wav").read_bytes())
    data[100] ^= 1  # same size: only hashing finds it
    (bag / "data" / "a.wav").write_bytes(bytes(data))
    done = run_preserve("store", "ingest", store_root, bag)
    assert done.returncode == 1
    assert "a.wav" in done.stderr and "does not match the bag's manifest" in done.stderr
    assert find_objects(open_root(store_root)) == []
    assert list((store_root / "extensions" / "preserve-store" / "staging").iterdir()) == []


def test_an_incomplete_bag_is_refused_before_copying(make_bag: MakeBag, store_root: Path, run_preserve: Run) -> None:
    bag = make_bag()
    (bag / "data" / "notes.txt").unlink()
    done = run_preserve("store", "ingest", store_root, bag)
    assert done.returncode == 1 and "not valid" in done.stderr
    assert find_objects(open_root(store_root)) == []


def test_link_hard_links_and_warns(make_bag: MakeBag, store_root: Path, cli: Callable[..., Result]) -> None:
    bag = make_bag()
    result = cli("store", "ingest", store_root, bag, "--link", "--id", "urn:example:linked")
    assert result.exit_code == 0, result.output
    assert "hard-linked" in result.stderr and "changes the stored content" in result.stderr
    obj = open_root(store_root).object_path("urn:example:linked")
    assert os.stat(obj / "v1/content/data/a.wav").st_ino == os.stat(bag / "data/a.wav").st_ino


def test_ingest_of_a_serialized_bag(make_bag: MakeBag, store_root: Path, tmp_path: Path, run_preserve: Run) -> None:
    bag = make_bag()
    assert run_preserve("bag", bag / "data", tmp_path / "rebagged", "--serialize", "tar").returncode == 0
    done = run_preserve("store", "ingest", store_root, tmp_path / "rebagged.tar", "--id", "urn:example:tar")
    assert done.returncode == 0, done.stderr
    obj = open_root(store_root).object_path("urn:example:tar")
    assert validate_object(obj).ok
    assert list((store_root / "extensions" / "preserve-store" / "staging").iterdir()) == []


def test_ingest_writes_nothing_in_the_object_but_ocfl_files(make_bag: MakeBag, store_root: Path) -> None:
    result = ingest(store_root, make_bag(), user="t")
    assert sorted(p.name for p in result.object_path.iterdir()) == [
        "0=ocfl_object_1.1", "inventory.json", "inventory.json.sha512", "v1"]
    assert sorted(p.name for p in (result.object_path / "v1").iterdir()) == [
        "content", "inventory.json", "inventory.json.sha512"]
    assert json.loads((result.object_path / "inventory.json").read_bytes()) == json.loads(
        (result.object_path / "v1" / "inventory.json").read_bytes())

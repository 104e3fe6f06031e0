"""``store update``, ``log``, ``diff``, ``deaccession`` and ``purge`` on small bags."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.errors import UsageError
from preserve.ocfl import ingest
from preserve.ocfl.inventory import read_inventory, state_of
from preserve.ocfl.read import diff, export, log
from preserve.ocfl.retire import PURGE_RECORD, TOMBSTONE, deaccession, purge
from preserve.ocfl.update import update
from preserve.ocfl.validate import validate_object
from tests.ocfl.conftest import MakeBag, tree

Run = Callable[..., subprocess.CompletedProcess[str]]
ID = "urn:example:upd"


def _twenty(make_bag: MakeBag, name: str, replaced: int | None = None) -> Path:
    files = {f"t{i:02d}.wav": (b"RIFF%02d" % i) * 2000 for i in range(20)}
    if replaced is not None:
        files[f"t{replaced:02d}.wav"] = b"RIFF remastered" * 3000
    return make_bag(name, files)


def _content_files(obj: Path, version: str) -> list[str]:
    content = obj / version / "content"
    return sorted(p.relative_to(content).as_posix() for p in content.rglob("*") if p.is_file())


def test_replacing_one_of_twenty_stores_only_that_file(make_bag: MakeBag, store_root: Path, tmp_path: Path) -> None:
    first = ingest(store_root, _twenty(make_bag, "one"), object_id=ID, user="t")
    result = update(store_root, ID, source=_twenty(make_bag, "two", replaced=7), reason="remaster delivered",
                    operator="Ann")
    assert result.version == "v2" and result.changed == ["data/t07.wav"] and not result.added and not result.removed
    stored = _content_files(first.object_path, "v2")
    assert [p for p in stored if p.startswith("data/")] == ["data/t07.wav"]
    assert result.stored_bytes == len(b"RIFF remastered" * 3000)
    assert validate_object(first.object_path).ok
    out = tmp_path / "v2"
    export(store_root, ID, out)
    assert tree(out) == tree(tmp_path / "two")  # the new version is exactly the new bag
    changes = diff(store_root, ID, "v1", "v2")
    assert "data/t07.wav" in changes.changed and "data/t06.wav" not in changes.changed


def test_remove_reads_no_audio_and_leaves_a_valid_bag(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                      run_preserve: Run) -> None:
    bag = make_bag()
    first = ingest(store_root, bag, object_id=ID, user="t")
    done = run_preserve("store", "update", store_root, ID, "--remove", "notes.txt", "--reason", "not ours",
                        "--operator", "Ann")
    assert done.returncode == 0, done.stderr
    inventory = read_inventory(first.object_path)
    assert "data/notes.txt" not in state_of(inventory) and "data/notes.txt" in state_of(inventory, "v1")
    assert not any(p.startswith("data/") for p in _content_files(first.object_path, "v2"))
    export(store_root, ID, tmp_path / "out")
    checked = run_preserve("validate", tmp_path / "out")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Payload-Oxum: " in (tmp_path / "out" / "bag-info.txt").read_text()


def test_every_update_needs_reason_and_operator(make_bag: MakeBag, store_root: Path, run_preserve: Run) -> None:
    ingest(store_root, make_bag(), object_id=ID, user="t")
    no_reason = run_preserve("store", "update", store_root, ID, "--remove", "notes.txt", "--operator", "Ann")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    no_operator = run_preserve("store", "update", store_root, ID, "--remove", "notes.txt", "--reason", "x")
    assert no_operator.returncode == 2 and "--operator" in no_operator.stderr
    unknown = run_preserve("store", "update", store_root, ID, "--remove", "nope.wav", "--reason", "x", "--operator", "A")
    assert unknown.returncode == 2 and "nope.wav" in unknown.stderr


def test_log_and_diff(make_bag: MakeBag, store_root: Path, run_preserve: Run) -> None:
    ingest(store_root, make_bag(), object_id=ID, user="Bo", address="mailto:bo@example.org", message="first")
    update(store_root, ID, remove=("notes.txt",), reason="not ours", operator="Ann")
    entries = log(store_root, ID)
    assert [(e.version, e.user, e.message) for e in entries] == [
        ("v1", "Bo", "first"), ("v2", "Ann", "not ours (update by Ann)")]
    done = run_preserve("store", "log", store_root, ID, "--json")
    assert [e["version"] for e in json.loads(done.stdout)["versions"]] == ["v1", "v2"]
    changes = diff(store_root, ID, "v1", "v2")
    assert changes.removed == ["data/notes.txt"] and not changes.added
    assert "bag-info.txt" in changes.changed and "manifest-sha512.txt" in changes.changed
    text = run_preserve("store", "diff", store_root, ID, "v1", "v2")
    assert "- data/notes.txt" in text.stdout


def test_deaccession_keeps_earlier_versions(make_bag: MakeBag, store_root: Path, tmp_path: Path, run_preserve: Run) -> None:
    bag = make_bag()
    first = ingest(store_root, bag, object_id=ID, user="t")
    result = deaccession(store_root, ID, reason="agreement ended", authority="Collections Committee", operator="Ann")
    head = state_of(read_inventory(first.object_path))
    assert not any(p.startswith("data/") for p in head)
    export(store_root, ID, tmp_path / "tomb")
    record = json.loads((tmp_path / "tomb" / TOMBSTONE).read_text())
    assert record["authority"] == "Collections Committee" and record["reason"] == "agreement ended"
    assert {f["path"] for f in record["files"]} == set(result.paths)
    assert run_preserve("validate", tmp_path / "tomb").returncode == 0
    export(store_root, ID, tmp_path / "v1", version="v1")
    assert tree(tmp_path / "v1") == tree(bag)
    with pytest.raises(UsageError, match="already deaccessioned"):
        deaccession(store_root, ID, reason="again", authority="x", operator="Ann")


def test_purge_needs_confirm_and_removes_bytes_from_every_version(make_bag: MakeBag, store_root: Path,
                                                                   run_preserve: Run) -> None:
    bag = make_bag()
    first = ingest(store_root, bag, object_id=ID, user="t")
    update(store_root, ID, remove=("notes.txt",), reason="x", operator="Ann")
    refused = run_preserve("store", "purge", store_root, ID, "data/a.wav", "--reason", "court order",
                           "--authority", "High Court", "--operator", "Ann")
    assert refused.returncode == 2 and "--confirm" in refused.stderr
    assert (first.object_path / "v1/content/data/a.wav").exists()
    secret = (bag / "data" / "a.wav").read_bytes()
    purge(store_root, ID, "data/a.wav", reason="court order", authority="High Court", operator="Ann", confirm=True)
    for path in first.object_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    inventory = read_inventory(first.object_path)
    for v in ("v1", "v2"):
        assert "data/a.wav" not in state_of(inventory, v)
    record = json.loads((first.object_path / PURGE_RECORD).read_text())
    assert record[0]["items"][0]["paths"] == ["data/a.wav"] and record[0]["authority"] == "High Court"
    report = validate_object(first.object_path)
    assert report.ok, [str(f) for f in report.errors]
    assert [f.code for f in report.warnings if f.code == "W013"] == ["W013"]

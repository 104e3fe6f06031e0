"""``store export``: any version as a bag, byte-identical to that version's state."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.ocfl import ingest
from tests.ocfl.conftest import MakeBag, tree

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_export_is_byte_identical_and_validates(make_bag: MakeBag, store_root: Path, tmp_path: Path, run_preserve: Run) -> None:
    bag = make_bag()
    result = ingest(store_root, bag, object_id="urn:example:exp", user="t")
    out = tmp_path / "out"
    done = run_preserve("store", "export", store_root, result.object_id, out, "--version", "v1")
    assert done.returncode == 0, done.stderr
    assert tree(out) == tree(bag)
    checked = run_preserve("validate", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_export_serialized(make_bag: MakeBag, store_root: Path, tmp_path: Path, run_preserve: Run) -> None:
    bag = make_bag()
    ingest(store_root, bag, object_id="urn:example:ser", user="t")
    done = run_preserve("store", "export", store_root, "urn:example:ser", tmp_path / "out", "--serialize", "tar")
    assert done.returncode == 0, done.stderr
    with tarfile.open(tmp_path / "out.tar") as tf:
        names = {m.name for m in tf.getmembers() if m.isfile()}
    assert names == {f"out/{p}" for p in tree(bag)}
    assert run_preserve("validate", tmp_path / "out.tar").returncode == 0


def test_export_refuses_existing_dest_unknown_id_and_version(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                            run_preserve: Run) -> None:
    ingest(store_root, make_bag(), object_id="urn:example:x", user="t")
    (tmp_path / "taken").mkdir()
    assert run_preserve("store", "export", store_root, "urn:example:x", tmp_path / "taken").returncode == 4
    missing = run_preserve("store", "export", store_root, "urn:example:nope", tmp_path / "o1")
    assert missing.returncode == 3 and "holds no object urn:example:nope" in missing.stderr
    bad = run_preserve("store", "export", store_root, "urn:example:x", tmp_path / "o2", "--version", "v7")
    assert bad.returncode == 2 and "has no version v7" in bad.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_export_refuses_a_damaged_stored_file(make_bag: MakeBag, store_root: Path, tmp_path: Path, run_preserve: Run) -> None:
    result = ingest(store_root, make_bag(), object_id="urn:example:dmg", user="t")
    stored = result.object_path / "v1/content/data/a.wav"
    data = bytearray(stored.read_bytes())
    data[10] ^= 0xFF
    stored.write_bytes(bytes(data))
    done = run_preserve("store", "export", store_root, "urn:example:dmg", tmp_path / "out")
    assert done.returncode == 1 and "a.wav" in done.stderr and "damaged" in done.stderr
    assert not (tmp_path / "out").exists()


def test_validate_a_whole_root_reports_stray_folders(make_bag: MakeBag, store_root: Path, run_preserve: Run) -> None:
    ingest(store_root, make_bag(), object_id="urn:example:root", user="t")
    good = run_preserve("store", "validate", store_root, "--fast")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "storage root valid" in good.stdout and "object urn:example:root (head v1) valid" in good.stdout
    (store_root / "abc" / "def").mkdir(parents=True)
    (store_root / "abc" / "def" / "leftover.tmp").write_text("x")
    bad = run_preserve("store", "validate", store_root, "--fast")
    assert bad.returncode == 1 and "[E072]" in bad.stdout and "abc/def" in bad.stdout
    by_id = run_preserve("store", "validate", store_root, "urn:example:root")
    assert by_id.returncode == 0  # one object named: the root's own structure is not judged


def test_audit_finds_bags_beside_a_store_but_never_inside_its_objects(make_bag: MakeBag, store_root: Path,
                                                                      tmp_path: Path) -> None:
    from preserve.audit.runner import discover_bags
    from preserve.ocfl.update import update

    source = make_bag()
    ingest(store_root, source, object_id="urn:example:audit", user="t")
    update(store_root, "urn:example:audit", remove=("notes.txt",), reason="r", operator="o")  # v2: a partial bag
    plain = make_bag("plain")
    warnings: list[str] = []
    found = discover_bags([tmp_path], warnings)
    assert sorted(found) == sorted([source.resolve(), plain.resolve()])  # nothing from inside the store
    assert any("an OCFL store object" in w and "preserve audit STORE_ROOT" in w for w in warnings)


def test_replicate_sends_only_new_versions_and_the_inventory_last(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from preserve.ocfl.replicate import replicate_store
    from preserve.ocfl.update import update
    from preserve.ocfl.validate import validate_object
    from preserve.stores.filesystem import FilesystemStore

    sent: list[str] = []
    real = FilesystemStore.put_file

    def record(self: FilesystemStore, key: str, *args: object, **kw: object) -> object:
        sent.append(key)
        return real(self, key, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(FilesystemStore, "put_file", record)
    first = ingest(store_root, make_bag(), object_id="urn:example:rep", user="t")
    replica = tmp_path / "replica"
    one = replicate_store(store_root, str(replica))
    assert one.versions_sent == ["urn:example:rep v1"]
    prefix = first.object_path.relative_to(store_root).as_posix()
    assert sent[-2:] == [f"{prefix}/inventory.json", f"{prefix}/inventory.json.sha512"]
    assert validate_object(replica / prefix).ok
    sent.clear()
    update(store_root, "urn:example:rep", remove=("notes.txt",), reason="r", operator="o")
    two = replicate_store(store_root, str(replica))
    assert two.versions_sent == ["urn:example:rep v2"]
    assert not any(k.startswith(f"{prefix}/v1/") for k in sent)  # written versions are never sent again
    assert sent[-2:] == [f"{prefix}/inventory.json", f"{prefix}/inventory.json.sha512"]
    assert validate_object(replica / prefix).ok
    assert replicate_store(store_root, str(replica)).versions_sent == []

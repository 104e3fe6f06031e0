"""Audits notice lost tag files and empty folders, and follow no link: on real bags made by
``preserve package`` and ``preserve bag``, with the CLI run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from audit_helpers import sql

from preserve.fixity import ALGORITHMS, hash_file
from preserve.safefs import LINK_REASON

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _findings(result_stdout: str) -> list[tuple[str, str, str]]:
    [audit] = json.loads(result_stdout)["audits"]
    return sorted((f["file"], f["kind"], f["code"]) for f in audit["findings"])


def _ledger_findings(ledger: Path) -> list[tuple[str, str, str, str]]:
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in sql(
        ledger, "SELECT a.tier, f.file, f.kind, f.code FROM findings f JOIN audits a ON a.id = f.audit_id ORDER BY f.id")]


# -- lost tag files --------------------------------------------------------------------------------

def test_lost_tag_manifests_and_metadata_fail_the_fast_and_full_audits(tmp_path: Path, ledger_path: Path, pv) -> None:
    bag = tmp_path / "label-masters"
    assert pv("package", "-q", "--operator", "Test Operator", EXAMPLES / "label-masters", bag).exit_code == 0
    first = pv("audit", bag, "--tier", "fast", "--ledger", ledger_path)
    assert first.exit_code == 0, first.stderr
    info = pv("ledger", "info", "--ledger", ledger_path)
    assert "remembered from first audits: 9 tag file(s) and 0 empty folder(s) of 1 bag(s)" in info.stdout
    # what the tester did: both tag manifests and metadata/ (METS, PREMIS, xxh3) deleted
    lost = ["metadata/mets.xml", "metadata/premis.xml", "metadata/xxh3-128.txt", "tagmanifest-sha256.txt",
            "tagmanifest-sha512.txt"]
    shutil.rmtree(bag / "metadata")
    for name in ("tagmanifest-sha256.txt", "tagmanifest-sha512.txt"):
        (bag / name).unlink()
    for tier in ("fast", "full"):
        result = pv("audit", bag, "--tier", tier, "--ledger", ledger_path, "--json")
        assert result.exit_code == 1, result.stderr
        assert _findings(result.stdout) == [(name, "missing", "tag-file-lost") for name in lost], tier
        [audit] = json.loads(result.stdout)["audits"]
        assert {f["message"] for f in audit["findings"]} == {
            "a tag file the bag had at its first audit is gone; restore it from a replica or a backup of the bag"}
    # recorded as failures in the ledger, and the remembered set did not shrink to what is left
    assert _ledger_findings(ledger_path) == [(tier, name, "missing", "tag-file-lost") for tier in ("fast", "full") for name in lost]
    info = pv("ledger", "info", "--ledger", ledger_path)
    assert "remembered from first audits: 9 tag file(s)" in info.stdout


def test_a_bag_first_audited_before_this_ledger_version_is_remembered_from_its_next_audit(
        make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("plain")
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 0
    sql(ledger_path, "DELETE FROM tag_files")  # as a ledger migrated from schema 2 holds it
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 0
    info = pv("ledger", "info", "--ledger", ledger_path)
    assert "remembered from first audits: 7 tag file(s) and 0 empty folder(s) of 1 bag(s)" in info.stdout
    (bag / "tagmanifest-sha512.txt").unlink()
    result = pv("audit", bag, "--tier", "fast", "--ledger", ledger_path, "--json")
    assert result.exit_code == 1
    assert _findings(result.stdout) == [("tagmanifest-sha512.txt", "missing", "tag-file-lost")]


# -- empty folders ---------------------------------------------------------------------------------

@pytest.fixture
def bag_with_empty_folders(tmp_path: Path, pv) -> Path:
    src = tmp_path / "src"
    (src / "scans" / "none-yet").mkdir(parents=True)
    (src / "scans" / "later").mkdir()
    (src / "take.wav").write_bytes(b"RIFF" + os.urandom(5000))
    bag = tmp_path / "bag"
    made = pv("bag", "-q", src, bag)
    assert made.exit_code == 0, made.stderr
    assert (bag / "metadata/empty-directories.txt").read_text().splitlines() == ["data/scans/later", "data/scans/none-yet"]
    return bag


def test_a_missing_empty_folder_fails_the_fast_and_full_audits(bag_with_empty_folders: Path, ledger_path: Path, pv) -> None:
    bag = bag_with_empty_folders
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 0
    (bag / "data/scans/none-yet").rmdir()
    for tier in ("fast", "full"):
        result = pv("audit", bag, "--tier", tier, "--ledger", ledger_path, "--json")
        assert result.exit_code == 1, result.stderr
        assert [(f, k) for f, k, _ in _findings(result.stdout)] == [("data/scans/none-yet", "missing")], tier


def test_empty_folders_lost_with_the_file_that_listed_them_are_still_reported(
        bag_with_empty_folders: Path, ledger_path: Path, pv) -> None:
    bag = bag_with_empty_folders
    assert pv("audit", bag, "--tier", "fast", "--ledger", ledger_path).exit_code == 0
    shutil.rmtree(bag / "data/scans")
    shutil.rmtree(bag / "metadata")
    for tier in ("fast", "full"):
        result = pv("audit", bag, "--tier", tier, "--ledger", ledger_path, "--json")
        assert result.exit_code == 1, result.stderr
        # the tag manifests still list the metadata files (validation says so); the folders only
        # the ledger remembers
        assert [(f, k) for f, k, _ in _findings(result.stdout)] == [
            ("data/scans/later", "missing"), ("data/scans/none-yet", "missing"),
            ("metadata/empty-directories.txt", "missing"), ("metadata/xxh3-128.txt", "missing")]
        assert [c for f, _, c in _findings(result.stdout) if f.startswith("data/")] == ["empty-dir-missing"] * 2


# -- links ---------------------------------------------------------------------------------------

def _digests(*paths: Path) -> set[str]:
    """Every digest preserve could compute of the files: none may appear anywhere in the output."""
    out: set[str] = set()
    for p in paths:
        out.update(hash_file(p, ALGORITHMS).values())
    return out


@pytest.fixture
def linked_bag(make_bag, tmp_path: Path) -> tuple[Path, Path]:
    """A bag whose data/objects was replaced by a link to a folder outside it, where one file has
    the digest the manifests expect and one ("the secret") does not."""
    bag = make_bag("linked", {"objects/a.wav": b"RIFF" + os.urandom(30000), "objects/secret.txt": b"liner notes\n"})
    outside = tmp_path / "outside"
    shutil.move(bag / "data/objects", outside)
    (outside / "secret.txt").write_bytes(b"root:$6$saltsalt$not-a-real-hash:19000:0:99999:7:::\n")
    (bag / "data/objects").symlink_to(outside, target_is_directory=True)
    return bag, outside


@pytest.mark.parametrize("tier", ["fast", "full"])
def test_a_linked_folder_in_data_is_reported_and_nothing_behind_it_is_read(
        linked_bag: tuple[Path, Path], ledger_path: Path, pv, tier: str) -> None:
    bag, outside = linked_bag
    secrets = _digests(outside / "secret.txt", outside / "a.wav")
    result = pv("audit", bag, "--tier", tier, "--ledger", ledger_path, "--json")
    assert result.exit_code == 1, result.stderr
    [audit] = json.loads(result.stdout)["audits"]
    assert audit["outcome"] == "fail"
    # the link is named; nothing behind it was opened (no byte read, no file counted)
    assert any(f["file"] == "data/objects" and f["kind"] == "invalid" and "symbolic link" in f["message"]
               for f in audit["findings"]), audit["findings"]
    assert (audit["bytes"], audit["files"]) == (0, 0)
    assert not any(f["found"] for f in audit["findings"] if f["file"].startswith("data/objects/"))
    exported = pv("ledger", "export", "--ledger", ledger_path)
    for text in (result.stdout, result.stderr, exported.stdout):
        assert not any(d in text for d in secrets), "a digest of the file outside the bag was printed or recorded"


def test_a_link_that_swaps_in_after_validation_is_refused_by_the_hashing_itself(
        make_bag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast tier opens each file below the bag with no link followed, so a folder swapped
    for a link between the listing and the read is refused at the read, not followed."""
    from preserve.audit import runner

    bag = make_bag("swapped", {"objects/a.wav": b"RIFF" + os.urandom(30000)})
    outside = tmp_path / "outside"
    validate = runner.validate_bag

    def validate_then_swap(*args: object, **kw: object) -> object:
        report = validate(*args, **kw)  # type: ignore[arg-type]
        shutil.move(bag / "data/objects", outside)
        (bag / "data/objects").symlink_to(outside, target_is_directory=True)
        return report

    monkeypatch.setattr(runner, "validate_bag", validate_then_swap)
    record = runner.audit_bag(bag, "fast")
    assert record.outcome == "fail"
    assert [(f.file, f.kind, f.code) for f in record.findings] == [("data/objects", "invalid", "link")]
    assert record.findings[0].message == f"{LINK_REASON}; data/objects/a.wav lies beyond it and was not read"
    assert (record.bytes, record.files) == (0, 0)


def test_a_linked_metadata_folder_is_not_read_for_the_xxh3_file(make_bag, tmp_path: Path, pv, ledger_path: Path) -> None:
    bag = make_bag("meta", {"objects/a.wav": b"RIFF" + os.urandom(30000)})
    outside = tmp_path / "elsewhere"
    shutil.move(bag / "metadata", outside)
    (bag / "metadata").symlink_to(outside, target_is_directory=True)
    secrets = _digests(outside / "xxh3-128.txt")
    result = pv("audit", bag, "--tier", "fast", "--ledger", ledger_path, "--json")
    assert result.exit_code == 1, result.stderr
    [audit] = json.loads(result.stdout)["audits"]
    assert ("metadata", "invalid") in [(f["file"], f["kind"]) for f in audit["findings"]]
    # the payload was checked against the manifest instead, never against the linked xxh3 file
    assert audit["algorithm"] == "sha256 (fallback: no metadata/xxh3-128.txt)"
    assert not any(d in result.stdout for d in secrets)


@pytest.mark.slow
def test_on_a_dask_cluster_links_and_lost_tag_files_are_found_as_in_a_local_run(
        linked_bag: tuple[Path, Path], make_bag, tmp_path: Path, pv) -> None:
    distributed = pytest.importorskip("distributed", reason="Dask distributed is the optional extra preserve[dask]")
    bag, outside = linked_bag
    other = make_bag("lost-tags")
    secrets = _digests(outside / "secret.txt", outside / "a.wav")
    archive = tmp_path / "archive"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        out = {}
        for where in ("local", "dask"):
            ledger = tmp_path / f"{where}.sqlite"
            assert pv("audit", other, "--tier", "fast", "--ledger", ledger).exit_code == 0
        (other / "tagmanifest-sha256.txt").unlink()
        for where in ("local", "dask"):
            extra = ("--scheduler", cluster.scheduler_address) if where == "dask" else ()
            result = pv("audit", archive, "--tier", "fast", "--ledger", tmp_path / f"{where}.sqlite", "--json", *extra)
            assert result.exit_code == 1, result.stderr
            assert not any(d in result.stdout for d in secrets)
            out[where] = {a["location"]: sorted((f["file"], f["kind"], f["code"]) for f in a["findings"])
                          for a in json.loads(result.stdout)["audits"]}
    assert out["dask"] == out["local"]
    assert out["dask"][str(other)] == [("tagmanifest-sha256.txt", "missing", "tag-file-lost")]
    assert ("data/objects", "invalid", "not-regular") in out["dask"][str(bag)] or \
        ("data/objects", "invalid", "link") in out["dask"][str(bag)]


def test_an_empty_folder_list_naming_a_path_outside_the_bag_is_a_finding_not_a_look_outside(
        bag_with_empty_folders: Path, tmp_path: Path, ledger_path: Path, pv) -> None:
    bag = bag_with_empty_folders
    listing = bag / "metadata/empty-directories.txt"
    listing.write_text("data/scans/later\ndata/../../outside\n")
    result = pv("audit", bag, "--tier", "fast", "--ledger", ledger_path, "--json")
    assert result.exit_code == 1, result.stderr
    [audit] = json.loads(result.stdout)["audits"]
    # one finding names the file and its line (validation's, or the audit's when validation is silent)
    assert [(f["file"], f["kind"]) for f in audit["findings"]] == [("metadata/empty-directories.txt", "invalid")]
    assert "line 2" in audit["findings"][0]["message"]

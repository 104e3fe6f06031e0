"""The two tiers on damaged real bags: what each finds, exactly, and the exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from audit_helpers import audits_in, flip_byte, ledger_exists, manifest_digest, sha256_file, xxh3_of

from preserve.audit.ledger import FindingRecord
from preserve.audit.runner import audit_bag
from preserve.fixity import hash_file


def _findings(records: list[FindingRecord]) -> list[tuple[str, str]]:
    return sorted((f.kind, f.file) for f in records)


@pytest.mark.parametrize("tier", ["fast", "full"])
def test_a_flipped_byte_is_found_by_both_tiers(make_bag, ledger_path: Path, pv, tier: str) -> None:
    bag = make_bag("flip")
    target = bag / "data/objects/a.wav"
    expected_xxh3 = xxh3_of(bag, "data/objects/a.wav")
    expected_sha256 = manifest_digest(bag, "sha256", "data/objects/a.wav")
    flip_byte(target)
    # evicting the cache first must not change what is found
    result = pv("audit", bag, "--tier", tier, "--ledger", ledger_path, "--json", "--drop-cache", "--workers", "1")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["bags_with_problems"] == 1
    findings = report["audits"][0]["findings"]
    if tier == "fast":
        found = hash_file(target, ("xxh3-128",))["xxh3-128"]
        assert findings == [{"file": "data/objects/a.wav", "kind": "altered", "code": "altered",
                             "message": "xxh3-128 checksum does not match metadata/xxh3-128.txt",
                             "expected": expected_xxh3, "found": found}]
        assert report["audits"][0]["algorithm"] == "xxh3-128"
    else:
        assert [(f["kind"], f["file"], f["expected"], f["found"]) for f in findings] == [
            ("altered", "data/objects/a.wav", expected_sha256, sha256_file(target)),
            ("altered", "data/objects/a.wav", manifest_digest(bag, "sha512", "data/objects/a.wav"),
             hash_file(target, ("sha512",))["sha512"]),
        ]
    assert audits_in(ledger_path) == [(str(bag), tier, "fail")]


def test_the_terminal_summary_names_the_bag_file_and_digests(make_bag, ledger_path: Path, pv) -> None:
    bag = make_bag("summary")
    flip_byte(bag / "data/objects/a.wav")
    expected = xxh3_of(bag, "data/objects/a.wav")
    result = pv("audit", bag, "--tier", "fast", "--ledger", ledger_path)
    assert result.exit_code == 1
    assert "audited 1 bag(s): 0 ok, 1 with problems" in result.stdout
    assert f"PROBLEMS in id-summary ({bag}, fast tier):" in result.stdout
    assert f"altered: data/objects/a.wav: xxh3-128 checksum does not match metadata/xxh3-128.txt (expected {expected}, found " in result.stdout


@pytest.mark.parametrize("tier", ["fast", "full"])
def test_a_deleted_file_is_missing_and_breaks_the_oxum(make_bag, tier: str) -> None:
    bag = make_bag("deleted")
    os.unlink(bag / "data/objects/b.txt")
    record = audit_bag(bag, tier)
    assert record.outcome == "fail"
    assert _findings(record.findings) == [("missing", "data/objects/b.txt"), ("oxum", "bag-info.txt")]
    oxum = next(f for f in record.findings if f.kind == "oxum")
    assert (oxum.expected, oxum.found) == ("20016.2", "20004.1")


@pytest.mark.parametrize("tier", ["fast", "full"])
def test_an_added_file_is_unlisted(make_bag, tier: str) -> None:
    bag = make_bag("added")
    (bag / "data/objects/stray.wav").write_bytes(b"not in any manifest")
    record = audit_bag(bag, tier)
    assert _findings(record.findings) == [("oxum", "bag-info.txt"), ("unlisted", "data/objects/stray.wav")]
    unlisted = next(f for f in record.findings if f.kind == "unlisted")
    assert unlisted.message == "a file in data/ is not listed in any payload manifest"


def test_an_edited_tag_manifest_is_found_by_the_full_tier(make_bag) -> None:
    bag = make_bag("tagedit")
    tagmanifest = bag / "tagmanifest-sha256.txt"
    real = manifest_digest(bag, "sha256", "bag-info.txt", tag=True)
    tagmanifest.write_text(tagmanifest.read_text(encoding="utf-8").replace(real, "0" * 64), encoding="utf-8")
    full = audit_bag(bag, "full")
    assert [(f.kind, f.code, f.file, f.expected, f.found) for f in full.findings] == [
        ("altered", "tag-altered", "bag-info.txt", "0" * 64, real)]
    assert full.findings[0].message == "sha256 checksum does not match tagmanifest-sha256.txt"
    # the fast tier is about payload bit rot: tag manifest digests are the full tier's job
    assert audit_bag(bag, "fast").outcome == "pass"


def test_a_bag_without_the_xxh3_file_falls_back_to_the_cheapest_manifest(tmp_path: Path) -> None:
    # made by bagit-python: sha256 and sha512 manifests, no metadata/xxh3-128.txt
    src = tmp_path / "bagit-bag"
    (src / "objects").mkdir(parents=True)
    (src / "objects/a.wav").write_bytes(os.urandom(30000))
    (src / "objects/b.txt").write_bytes(b"notes")
    subprocess.run([sys.executable, "-m", "bagit", "--sha512", "--sha256", str(src)], check=True, capture_output=True)
    assert audit_bag(src, "fast").outcome == "pass"
    flip_byte(src / "data/objects/a.wav")
    record = audit_bag(src, "fast")
    assert record.algorithm == "sha256 (fallback: no metadata/xxh3-128.txt)"
    assert [(f.kind, f.file, f.expected, f.found, f.message) for f in record.findings] == [
        ("altered", "data/objects/a.wav", manifest_digest(src, "sha256", "data/objects/a.wav"),
         sha256_file(src / "data/objects/a.wav"), "sha256 checksum does not match manifest-sha256.txt")]


def test_a_deleted_xxh3_file_is_reported_and_the_manifest_is_used(make_bag) -> None:
    bag = make_bag("noxxh", algorithms=("sha512", "md5"))
    os.unlink(bag / "metadata/xxh3-128.txt")
    flip_byte(bag / "data/objects/a.wav")
    record = audit_bag(bag, "fast")
    # md5 is cheaper than sha512 (fixity.COST): the fallback takes the cheapest manifest
    assert record.algorithm == "md5 (fallback: no metadata/xxh3-128.txt)"
    assert _findings(record.findings) == [("altered", "data/objects/a.wav"), ("missing", "metadata/xxh3-128.txt")]


def test_a_damaged_xxh3_file_is_blamed_not_the_payload(make_bag) -> None:
    bag = make_bag("badxxh")
    xxh = bag / "metadata/xxh3-128.txt"
    listed = manifest_digest(bag, "sha256", "metadata/xxh3-128.txt", tag=True)
    data = xxh.read_bytes()  # another hex digit in the first digest: a good payload file would look "altered"
    xxh.write_bytes((b"1" if data[:1] == b"0" else b"0") + data[1:])
    record = audit_bag(bag, "fast")
    assert record.algorithm == "sha256"  # the payload manifest, used instead
    assert [(f.kind, f.file, f.code, f.expected, f.found, f.message) for f in record.findings] == [
        ("altered", "metadata/xxh3-128.txt", "tag-altered", listed, sha256_file(xxh),
         "sha256 checksum does not match tagmanifest-sha256.txt; the payload was checked against the manifest instead")]
    # a payload file damaged as well is still found, against the manifest
    flip_byte(bag / "data/objects/a.wav")
    assert _findings(audit_bag(bag, "fast").findings) == [("altered", "data/objects/a.wav"), ("altered", "metadata/xxh3-128.txt")]


def test_the_full_tier_uses_worker_processes_as_validate_does(make_bag, ledger_path: Path, pv, monkeypatch) -> None:
    import preserve.audit.runner as runner

    seen: list[object] = []
    real = runner.validate_bag

    def spy(*args: object, **kw: object) -> object:
        if not kw.get("fast"):
            seen.append(kw.get("processes"))
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "validate_bag", spy)
    bag = make_bag("procs")
    assert pv("audit", bag, "--tier", "full", "--ledger", ledger_path, "-q").exit_code == 0
    assert pv("audit", bag, "--tier", "full", "--ledger", ledger_path, "-q", "--max-rate", "100M").exit_code == 0
    assert pv("audit", bag, "--tier", "full", "--ledger", ledger_path, "-q", "--workers", "2").exit_code == 0
    # None: decided from the bag (many small files), as preserve validate does; threads only under a cap or -w
    assert seen == [None, 0, 0]


def test_an_audit_never_modifies_the_bag(make_bag, ledger_path: Path, pv) -> None:
    from audit_helpers import sha256_file as digest

    bag = make_bag("readonly")
    flip_byte(bag / "data/objects/a.wav")
    before = {p: (digest(p), p.stat().st_mtime_ns, p.stat().st_mode) for p in bag.rglob("*") if p.is_file()}
    dirs_before = sorted(p for p in bag.rglob("*"))
    for tier in ("fast", "full"):
        assert pv("audit", bag, "--tier", tier, "--ledger", ledger_path, "-q").exit_code == 1
    assert {p: (digest(p), p.stat().st_mtime_ns, p.stat().st_mode) for p in bag.rglob("*") if p.is_file()} == before
    assert sorted(p for p in bag.rglob("*")) == dirs_before


def test_local_tiers_refuse_replica_urls(ledger_path: Path, pv) -> None:
    for args in (("--tier", "fast"), ("--tier", "full"), ()):
        result = pv("audit", "s3://vault/archive/bag1", *args, "--ledger", ledger_path)
        assert result.exit_code == 2
        assert "s3://vault/archive/bag1: a replica copy; audit it with --tier remote-metadata" in result.stderr
    assert not ledger_exists(ledger_path)


def test_a_folder_without_bags_is_bad_input(tmp_path: Path, ledger_path: Path, pv) -> None:
    (tmp_path / "empty").mkdir()
    result = pv("audit", tmp_path / "empty", "--ledger", ledger_path)
    assert result.exit_code == 3
    assert f"{tmp_path / 'empty'}: holds no bag (no bagit.txt found in it or below it)" in result.stderr
    result = pv("audit", tmp_path / "nowhere", "--ledger", ledger_path)
    assert result.exit_code == 3
    assert f"{tmp_path / 'nowhere'}: no such file or directory" in result.stderr


@pytest.mark.parametrize("tier", ["fast", "full"])
def test_a_file_name_that_is_not_utf8_is_a_finding_not_a_crash(make_bag, ledger_path: Path, pv, tier: str) -> None:
    bag = make_bag(f"latin1-{tier}")
    with open(os.fsencode(bag / "data/objects") + b"/caf\xe9.wav", "wb") as f:  # Latin-1 bytes in the name
        f.write(b"stray")
    result = pv("audit", bag, "--tier", tier, "--ledger", ledger_path, "--json")
    assert result.exit_code == 1, result.stderr
    findings = json.loads(result.stdout)["audits"][0]["findings"]
    # the audit goes on past the name: the stray file is unlisted and the payload no longer matches its Oxum
    assert sorted((f["kind"], f["file"]) for f in findings) == [("oxum", "bag-info.txt"), ("unlisted", "data/objects/caf\\xe9.wav")]
    unlisted = next(f for f in findings if f["kind"] == "unlisted")
    assert "its name is not valid UTF-8, so no manifest can list it" in unlisted["message"]
    assert "caf\\xe9.wav" in pv("report", "--bag", bag, "--ledger", ledger_path).stdout

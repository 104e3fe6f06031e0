"""Verdicts on names in bags other tools made: '%' by BagIt version, Unicode normalization forms.

bagit-python and bagit-utils are the oracles for bags bagit-python writes (BagIt 0.97).
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bagit
import pytest
from bagit_utils.bagit import Bag as UtilsBag

from preserve.bag.paths import decode_manifest_path
from preserve.bag.validate import validate_bag
from preserve.bag.writer import create_bag, payload_from_directory


def _bagit_python_bag(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir()
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    bagit.make_bag(str(root), checksums=["sha256"])  # bags in place, BagIt 0.97
    assert (root / "bagit.txt").read_text().startswith("BagIt-Version: 0.97\n")
    return root


def _oracles(bag: Path) -> tuple[bool, bool]:
    """(bagit-python's verdict, bagit-utils' verdict)."""
    logging.getLogger("bagit").setLevel(logging.CRITICAL)  # it logs every file it hashes
    return bagit.Bag(str(bag)).is_valid(), bool(UtilsBag(bag, load=True).validate().valid)


def _errors(report: Any) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.path) for f in report.errors)


def test_0_97_bag_with_a_percent_and_a_percent_25_name_is_valid(tmp_path: Path, run_preserve: Callable[..., Any]) -> None:
    bag = _bagit_python_bag(tmp_path / "b", {"a%b.txt": b"x", "a%25b.txt": b"yy"})
    manifest = (bag / "manifest-sha256.txt").read_text()
    assert "  data/a%25b.txt\n" in manifest and "  data/a%b.txt\n" in manifest  # both as named
    assert _oracles(bag) == (True, True)
    report = validate_bag(bag)
    assert report.findings == []
    assert report.files == 2
    r = run_preserve("validate", bag)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid (2 files, 3 bytes" in r.stdout


def test_0_97_bag_names_the_right_file_missing(tmp_path: Path) -> None:
    bag = _bagit_python_bag(tmp_path / "b", {"a%b.txt": b"x", "a%25b.txt": b"yy"})
    (bag / "data" / "a%25b.txt").unlink()
    assert _oracles(bag) == (False, False)
    report = validate_bag(bag)
    assert _errors(report) == [("missing", "data/a%25b.txt"), ("oxum", "bag-info.txt")]


def test_0_97_keeps_decoding_cr_and_lf_as_bagit_python_writes_them(tmp_path: Path) -> None:
    bag = _bagit_python_bag(tmp_path / "b", {"two\nlines%25.txt": b"x"})
    assert "  data/two%0Alines%25.txt\n" in (bag / "manifest-sha256.txt").read_text()
    assert _oracles(bag)[0] is True
    assert validate_bag(bag).findings == []
    assert decode_manifest_path("data/a%0d%0A%25", (0, 97)) == "data/a\r\n%25"
    assert decode_manifest_path("data/a%0d%0A%25", (1, 0)) == "data/a\r\n%"


def test_0_97_manifest_that_encodes_percent_as_1_0_does_is_read_with_a_warning(tmp_path: Path) -> None:
    bag = _bagit_python_bag(tmp_path / "b", {"50%.txt": b"x"})
    manifest = bag / "manifest-sha256.txt"
    manifest.write_text(manifest.read_text().replace("data/50%.txt", "data/50%25.txt"))
    report = validate_bag(bag, check_tag_manifests=False)
    assert report.errors == []
    assert [(f.code, f.path) for f in report.warnings] == [("percent-literal", "data/50%25.txt")]
    assert "read as 'data/50%.txt'" in report.warnings[0].message


def test_bare_percent_in_a_1_0_manifest_is_a_warning(tmp_path: Path, run_preserve: Callable[..., Any]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "100% done.txt").write_bytes(b"done")
    bag = tmp_path / "bag"
    create_bag(bag, payload_from_directory(src), algorithms=("sha256", "sha512"))
    for manifest in bag.glob("manifest-*.txt"):  # as a tool that does not encode '%' writes it
        manifest.write_text(manifest.read_text().replace("100%25 done", "100% done"))
    report = validate_bag(bag, check_tag_manifests=False)
    assert report.errors == []
    assert [(f.code, f.path) for f in report.warnings] == [("percent-literal", "data/100% done.txt")]
    assert "not encoded as %25" in report.warnings[0].message
    r = run_preserve("validate", "--json", bag)
    data = json.loads(r.stdout)
    assert [f["code"] for f in data["findings"] if f["severity"] == "warning"] == ["percent-literal"]


def test_encoded_percent_in_a_1_0_manifest_gives_no_warning(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "100% done.txt").write_bytes(b"done")
    bag = tmp_path / "bag"
    create_bag(bag, payload_from_directory(src), algorithms=("sha256",))
    assert "data/100%25 done.txt" in (bag / "manifest-sha256.txt").read_text()
    assert validate_bag(bag).findings == []


NFC = unicodedata.normalize("NFC", "Café élan.wav")
NFD = unicodedata.normalize("NFD", NFC)


@pytest.mark.parametrize("maker", ["preserve", "bagit-python"])
def test_names_differing_by_normalization_are_one_error_naming_both(
        tmp_path: Path, run_preserve: Callable[..., Any], maker: str) -> None:
    if maker == "preserve":
        src = tmp_path / "src"
        src.mkdir()
        (src / NFC).write_bytes(b"audio")
        bag = tmp_path / "bag"
        create_bag(bag, payload_from_directory(src), algorithms=("sha256",))
    else:
        bag = _bagit_python_bag(tmp_path / "bag", {NFC: b"audio"})
    (bag / "data" / NFC).rename(bag / "data" / NFD)  # what a copy through macOS leaves
    report = validate_bag(bag)
    assert _errors(report) == [("name-normalization", f"data/{NFC}")]
    finding = report.errors[0]
    assert "data/Caf\\u00e9 \\u00e9lan.wav' (NFC)" in finding.message
    assert "data/Cafe\\u0301 e\\u0301lan.wav' (NFD)" in finding.message
    assert "differ only by Unicode normalization" in finding.message
    assert finding.found == "data/Cafe\\u0301 e\\u0301lan.wav"
    r = run_preserve("validate", bag)
    assert r.returncode == 1
    assert r.stdout.count("error:") == 1, r.stdout
    assert "Cafe\\u0301" in r.stdout


def test_normalization_error_still_checks_the_content(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / NFC).write_bytes(b"audio")
    bag = tmp_path / "bag"
    create_bag(bag, payload_from_directory(src), algorithms=("sha256",))
    (bag / "data" / NFC).unlink()
    (bag / "data" / NFD).write_bytes(b"AUDIO")  # same size, other bytes
    assert _errors(validate_bag(bag)) == [("altered", f"data/{NFD}"), ("name-normalization", f"data/{NFC}")]


def test_two_look_alikes_on_disk_are_not_guessed_between(tmp_path: Path) -> None:
    mixed = unicodedata.normalize("NFC", "Café") + unicodedata.normalize("NFD", " élan.wav")  # a third form
    assert len({NFC, NFD, mixed}) == 3
    src = tmp_path / "src"
    src.mkdir()
    (src / NFC).write_bytes(b"audio")
    bag = tmp_path / "bag"
    create_bag(bag, payload_from_directory(src), algorithms=("sha256",))
    (bag / "data" / NFC).rename(bag / "data" / NFD)
    (bag / "data" / mixed).write_bytes(b"audio")
    report = validate_bag(bag)
    assert _errors(report) == sorted([("missing", f"data/{NFC}"), ("oxum", "bag-info.txt"),
                                      ("unlisted", f"data/{NFD}"), ("unlisted", f"data/{mixed}")])

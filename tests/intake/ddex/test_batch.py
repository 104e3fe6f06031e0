"""``preserve package --batch``: one AIP per release of a label's DDEX batch."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.batch import aip_name, package_batch
from preserve.cli.package_cmd import package as package_cmd

from ..conftest import invoke
from .conftest import AGREEMENT_TOML, make_delivery

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "label-ddex"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.slow
def test_the_example_batch_packages_with_one_command(run_preserve: Run, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()}
    dest = tmp_path / "aips"
    done = run_preserve("package", "--batch", EXAMPLE, dest)
    assert done.returncode == 0, done.stderr
    assert "packaged 5012345678900: " in done.stdout and "packaged 5012345678917: " in done.stdout
    assert done.stdout.rstrip().endswith("2 packaged, 1 skipped, 0 failed")      # agreements/ is not a release
    assert sorted(p.name for p in dest.iterdir()) == ["5012345678900", "5012345678917"]
    for icpn, version in (("5012345678900", "43"), ("5012345678917", "382")):
        bag = dest / icpn
        valid = run_preserve("validate", bag)
        assert valid.returncode == 0, valid.stdout + valid.stderr
        submitted = sorted(p.relative_to(bag / "data/submission").as_posix()
                           for p in (bag / "data/submission").rglob("*") if p.is_file())
        assert submitted == [f"{icpn}.xml", "batch/agreements/deposit-agreement.txt", "batch/collection.toml",
                             "resources/cover.png"]
        assert f"http://ddex.net/xml/ern/{version}" in (bag / "data/submission" / f"{icpn}.xml").read_text(encoding="utf-8")
        info = (bag / "bag-info.txt").read_text(encoding="utf-8")
        assert f"External-Identifier: {icpn}" in info and "Bag-Group-Identifier: example-ddex-batch-2026-03" in info
        mets = (bag / "metadata/mets.xml").read_text(encoding="utf-8")
        assert "data/submission/batch/agreements/deposit-agreement.txt" in mets      # the agreement that cleared it
    again = run_preserve("package", "--batch", EXAMPLE, dest)
    assert again.returncode == 0 and "0 packaged, 3 skipped, 0 failed" in again.stdout
    assert "skipped 5012345678900: already packaged there" in again.stdout
    assert {p: p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()} == before     # the source is only read


def _batch(root: Path) -> Path:
    root.mkdir()
    (root / "collection.toml").write_text(AGREEMENT_TOML.replace("deposit-agreement.txt", "legal/deposit-agreement.txt"),
                                          encoding="utf-8")
    (root / "legal").mkdir()
    (root / "legal" / "deposit-agreement.txt").write_text("Deposit agreement (batch)\n", encoding="utf-8")
    (root / "BatchComplete_1.xml").write_text("<BatchComplete/>", encoding="utf-8")
    return root


def test_one_failing_release_does_not_stop_the_others(tmp_path: Path) -> None:
    batch = _batch(tmp_path / "batch")
    make_delivery(batch / "a-good", "4.3", agreement=False, icpn="5000000000012")
    (batch / "a-good" / "collection.toml").unlink()                   # the batch's agreement applies
    make_delivery(batch / "b-missing", "3.8.2", agreement=False, icpn="5000000000029")
    (batch / "b-missing" / "collection.toml").unlink()
    (batch / "b-missing" / "resources" / "A2.wav").unlink()
    make_delivery(batch / "c-own-toml", "4.3", agreement=False, icpn="5000000000036")   # its own toml, no rights
    dest = tmp_path / "aips"
    out = invoke(package_cmd, "--batch", batch, dest, "-q")
    assert out.code == 1
    assert "packaged a-good: " in out.stdout and out.stdout.rstrip().endswith("1 packaged, 1 skipped, 2 failed")
    assert "skipped legal: holds no DDEX message or sheet" in out.stdout
    assert re.search(r"error: b-missing: not packaged: 1 problem\(s\) found by the check\nerror:   message\.xml "
                     r"SoundRecording A2 \(resources/A2\.wav\): no such file", out.stderr)
    assert "error: c-own-toml: not packaged" in out.stderr and "add the label's deposit agreement" in out.stderr.lower()
    assert "2 release(s) not packaged: b-missing (1 problem(s) found by the check); c-own-toml (" in str(out.exception)
    assert sorted(p.name for p in dest.iterdir()) == ["5000000000012"]
    assert (dest / "5000000000012" / "data/submission/batch/legal/deposit-agreement.txt").is_file()


def test_a_release_without_icpn_is_named_by_its_reference(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "b" / "rel", "4.3")
    message = folder / "message.xml"
    message.write_text(re.sub(r"<ICPN>\d+</ICPN>", "", message.read_text(encoding="utf-8")), encoding="utf-8")
    assert aip_name(folder) == "R0"
    result = package_batch(tmp_path / "b", tmp_path / "aips", profile=None)
    assert [(o.folder, o.status, o.bag) for o in result.outcomes] == [("rel", "packaged", tmp_path / "aips" / "R0")]


def test_a_release_folder_checked_alone_finds_its_batch(tmp_path: Path) -> None:
    from preserve.intake import check_collection

    report = check_collection(EXAMPLE / "5012345678917")
    assert report.ready, [p.message for p in report.problems]
    assert any("has no collection.toml: the batch's" in n for n in report.notes)
    bagged = {s.bag_path for s in report.collection.submission_files}
    assert {"data/submission/batch/collection.toml", "data/submission/batch/agreements/deposit-agreement.txt"} <= bagged
    assert report.collection.default_rights is not None
    assert report.collection.default_rights.agreement_source == "batch/agreements/deposit-agreement.txt"


def test_a_batch_checked_as_one_collection_says_it_is_a_batch() -> None:
    from preserve.intake import check_collection

    report = check_collection(EXAMPLE)
    [first, *_] = report.problems
    assert first.code == "no-sheet" and "a DDEX batch" in first.message
    assert "5012345678900, 5012345678917" in first.message and "--batch" in first.message

"""Packaging: the examples end to end (as a user runs them), the bag layout, what the sidecars get."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import bagit
import pytest

from preserve.bag.reader import open_bag
from preserve.cli.package_cmd import package
from preserve.errors import EXIT_EXISTS, EXIT_PROBLEMS, EXIT_USAGE
from preserve.intake import check_collection
from preserve.intake.testaudio import Tone, write_flac, write_wav
from preserve.package import package_collection
from preserve.profiles import AUDIO_AIP_PROFILE_ID

from .conftest import Collection, invoke

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize(("name", "audio", "submission"), [
    ("donated-collection",
     ["recordings/interview-1978-side-a.wav", "recordings/radio-broadcast-1986.mp3", "recordings/rehearsal-1981.flac"],
     ["checksums.md5", "collection.toml", "metadata.csv", "rights/deed-of-gift.txt"]),
    ("label-masters",
     ["lanterns-single/01-lanterns.wav", "tides-ep/01-tides.wav", "tides-ep/02-undertow.wav"],
     ["collection.toml", "licences/lanterns-single-licence.txt", "licences/tides-ep-licence.txt", "metadata.json"]),
])
def test_examples_check_package_and_validate(run_preserve: Run, tmp_path: Path, name: str, audio: list[str],
                                             submission: list[str]) -> None:
    source = EXAMPLES / name
    before = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    checked = run_preserve("check", source)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ready to package: 3 audio file(s), 4 submission file(s)" in checked.stdout
    as_json = json.loads(run_preserve("check", "--json", source).stdout)
    assert as_json["ready"] is True and as_json["problems"] == []
    assert [f["rights_status"] for f in as_json["files"]] == ["cleared"] * 3

    dest = tmp_path / name
    packaged = run_preserve("package", "--operator", "Test Operator", source, dest)
    assert packaged.returncode == 0, packaged.stderr
    assert packaged.stdout.startswith("packaged 3 audio file(s) and 4 submission file(s), ")
    payload = sorted(str(p.relative_to(dest / "data")) for p in (dest / "data").rglob("*") if p.is_file())
    assert payload == sorted([f"objects/{a}" for a in audio] + [f"submission/{s}" for s in submission])
    for a in audio:
        assert (dest / "data" / "objects" / a).read_bytes() == (source / a).read_bytes()
    bag = open_bag(dest)
    config = (source / "collection.toml").read_text(encoding="utf-8")
    assert str(bag.info_value("External-Identifier")) in config
    assert bag.info_value("Source-Organization") == "Example Sound Archive"
    assert str(bag.info_value("Bag-Group-Identifier")) in config
    assert str(bag.info_value("External-Description")) in config
    assert bag.info_value("Contact-Email") == "archive@example.org"
    assert bag.info_value("BagIt-Profile-Identifier") == AUDIO_AIP_PROFILE_ID
    assert (dest / "metadata" / "mets.xml").is_file() and (dest / "metadata" / "premis.xml").is_file()

    bagit.Bag(str(dest)).validate()                    # an independent validator agrees
    validated = run_preserve("validate", dest)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.startswith(f"{dest}: valid (")
    assert {p: p.read_bytes() for p in source.rglob("*") if p.is_file()} == before   # the source is only read


def test_every_example_with_a_sheet_is_tested() -> None:
    with_sheet = {p.parent.name for p in EXAMPLES.glob("*/metadata.*") if p.suffix in (".csv", ".json")}
    assert with_sheet == {"donated-collection", "label-masters"}


def test_the_examples_are_reproducible(tmp_path: Path) -> None:
    # Our own writers (WAVE/BWF, text) are byte-exact. FLAC and MP3 come from the encoders bundled
    # with soundfile, whose bytes may change with its version: for those the decoded audio must match.
    import runpy

    import soundfile

    generate = runpy.run_path(str(EXAMPLES / "generate.py"))["generate"]
    for folder in generate(tmp_path):
        original = EXAMPLES / folder.name
        made = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
        assert made == sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file())
        for rel in made:
            new, kept = folder / rel, original / rel
            if rel.suffix in (".flac", ".mp3"):
                a, rate_a = soundfile.read(str(new), dtype="int16")
                b, rate_b = soundfile.read(str(kept), dtype="int16")
                assert rate_a == rate_b and a.shape == b.shape, rel
                assert (a == b).all() if rel.suffix == ".flac" else abs(a.astype(int) - b.astype(int)).max() < 400, rel
            elif rel.name == "checksums.md5":
                wavs = [line for line in new.read_text().splitlines() if line.endswith(".wav")]
                assert wavs == [line for line in kept.read_text().splitlines() if line.endswith(".wav")]
            else:
                assert new.read_bytes() == kept.read_bytes(), rel


def test_model_given_to_the_sidecars(collection: Collection, tmp_path: Path) -> None:
    (collection.root / "checksums.md5").write_text(f"{collection.md5('one.wav')}  one.wav\n", encoding="utf-8")
    result = package_collection(collection.root, tmp_path / "bag", operator="Olga", profile=None)
    coll = result.report.collection
    one = next(t for t in coll.tracks if t.source_path == "one.wav")
    assert one.bag_path == "data/objects/one.wav" and one.row == 1
    assert one.rights.agreement == "data/submission/rights/agreement.txt"
    assert one.rights.agreement_source == "rights/agreement.txt"
    assert [(c.algorithm, c.source, c.outcome) for c in one.producer_checksums] == [("md5", "checksums.md5 line 1", "pass")]
    assert coll.default_rights is not None and coll.default_rights.agreement == "data/submission/rights/agreement.txt"
    assert [(s.source_path, s.bag_path, s.role) for s in coll.submission_files] == [
        ("checksums.md5", "data/submission/checksums.md5", "checksum-file"),
        ("collection.toml", "data/submission/collection.toml", "collection-config"),
        ("metadata.csv", "data/submission/metadata.csv", "sheet"),
        ("rights/agreement.txt", "data/submission/rights/agreement.txt", "rights-document"),
    ]
    premis = (tmp_path / "bag" / "metadata" / "premis.xml").read_text(encoding="utf-8")
    assert "Olga" in premis
    assert f"md5 {collection.md5('one.wav')} from checksums.md5 line 1" in premis     # the producer's value, verified
    bagit.Bag(str(tmp_path / "bag")).validate()


def test_accept_damaged_packages_a_recorded_defect(collection: Collection, tmp_path: Path) -> None:
    write_flac(collection.root / "three.flac", Tone(22050, 16, 1, 0.25, 550.0), md5="12" * 16)
    collection.header = "file,title,artist,accept_damaged"
    collection.rows = ["one.wav,One,Ann,", "side b/two.wav,Two,Ben,no", "three.flac,Three,Cy,yes"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert report.problems == []
    three = report.collection.tracks[2]
    assert (three.essence.outcome, three.essence.accepted_damage, three.essence.expected) == ("fail", True, "12" * 16)
    assert any(w.startswith("three.flac: the decoded audio does not match the FLAC STREAMINFO MD5")
               and w.endswith("[packaged as a recorded known defect: accept_damaged = yes]") for w in report.warnings)
    out = invoke(package, collection.root, tmp_path / "bag", "--no-profile")
    assert out.code == 0, out.stderr
    premis = (tmp_path / "bag" / "metadata" / "premis.xml").read_text(encoding="utf-8")
    assert "packaged anyway as a recorded known defect" in premis
    bagit.Bag(str(tmp_path / "bag")).validate()


def test_flac_with_unset_md5_packages(collection: Collection, tmp_path: Path) -> None:
    write_flac(collection.root / "three.flac", Tone(22050, 16, 1, 0.25, 550.0), md5="unset")
    result = package_collection(collection.root, tmp_path / "bag", profile=None)
    three = result.report.collection.tracks[2]
    assert three.essence.outcome == "unverifiable"
    assert "three.flac: the FLAC STREAMINFO MD5 is not set, so the audio cannot be checked against it " \
           "(unverifiable, not damage)" in result.report.warnings


def test_submission_that_is_a_bag(collection: Collection, tmp_path: Path) -> None:
    # The producer bagged the audio with bagit-python, then added the sheet and collection.toml beside it.
    sheet = (collection.root / "metadata.csv").read_text(encoding="utf-8")
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "metadata.csv").unlink()
    (collection.root / "collection.toml").unlink()
    bagit.make_bag(str(collection.root), checksums=["md5", "sha256"])
    lines = sheet.splitlines()
    (collection.root / "metadata.csv").write_text("\n".join([lines[0], *[f"data/{r}" for r in lines[1:]]]) + "\n", encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace("rights/agreement.txt", "data/rights/agreement.txt"),
                                                     encoding="utf-8")
    report = check_collection(collection.root)
    assert report.problems == []
    roles = {s.source_path: s.role for s in report.collection.submission_files}
    assert roles["bagit.txt"] == roles["manifest-md5.txt"] == roles["tagmanifest-sha256.txt"] == "bag-tag-file"
    one = report.collection.tracks[0]
    assert sorted((c.algorithm, c.outcome) for c in one.producer_checksums) == [("md5", "pass"), ("sha256", "pass")]
    # the producer's manifest is a producer checksum: a changed file is caught
    write_flac(collection.root / "data" / "three.flac", Tone(22050, 16, 1, 0.25, 551.0))
    report = check_collection(collection.root)
    assert [p.code for p in report.problems] == ["checksum-mismatch", "checksum-mismatch"]
    messages = sorted(p.message for p in report.problems)
    assert messages[0].startswith("data/three.flac: md5 does not match the producer's checksum (manifest-md5.txt line ")
    assert messages[1].startswith("data/three.flac: sha256 does not match the producer's checksum (manifest-sha256.txt line ")


def test_files_beside_a_bag_are_not_tag_files(collection: Collection) -> None:
    # Only BagIt's own files and what a tag manifest lists are the bag's tag files; audio beside
    # the payload must not pass the rights gate as one.
    sheet = (collection.root / "metadata.csv").read_text(encoding="utf-8")
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "metadata.csv").unlink()
    (collection.root / "collection.toml").unlink()
    bagit.make_bag(str(collection.root), checksums=["sha256"])
    lines = sheet.splitlines()
    (collection.root / "metadata.csv").write_text("\n".join([lines[0], *[f"data/{r}" for r in lines[1:]]]) + "\n", encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace("rights/agreement.txt", "data/rights/agreement.txt"),
                                                     encoding="utf-8")
    (collection.root / "extra").mkdir()
    (collection.root / "extra" / "notes.txt").write_text("listed in the tag manifest\n", encoding="utf-8")
    digest = hashlib.sha256(b"listed in the tag manifest\n").hexdigest()
    with open(collection.root / "tagmanifest-sha256.txt", "a", encoding="utf-8") as f:
        f.write(f"{digest}  extra/notes.txt\n")
    write_wav(collection.root / "bonus.wav", Tone(8000, 16, 1, 0.1))
    (collection.root / "notes.docx").write_bytes(b"PK\x03\x04 not really a document")
    report = check_collection(collection.root)
    assert sorted((p.code, p.file) for p in report.problems) == [
        ("unlisted-audio", "bonus.wav"), ("unlisted-file", "notes.docx")]
    roles = {s.source_path: s.role for s in report.collection.submission_files}
    assert roles["extra/notes.txt"] == roles["bag-info.txt"] == roles["manifest-sha256.txt"] == "bag-tag-file"
    assert "bonus.wav" not in roles and "notes.docx" not in roles


def test_destination_exists_and_inside(collection: Collection, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    out = invoke(package, collection.root, tmp_path / "taken", "--no-profile")
    assert out.code == EXIT_EXISTS
    assert str(out.exception) == f"{tmp_path / 'taken'}: already exists; choose a new destination (nothing was written)"
    out = invoke(package, collection.root, collection.root / "bag", "--no-profile")
    assert out.code == EXIT_USAGE
    assert not (collection.root / "bag").exists()


def test_default_profile_needs_an_organization(collection: Collection, tmp_path: Path) -> None:
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace('organization = "Test Archive"\n', ""), encoding="utf-8")
    out = invoke(package, collection.root, tmp_path / "bag")
    assert out.code == EXIT_PROBLEMS  # a value the collection lacks: exit 1, as `preserve check` says
    assert "required bag-info values are missing: Source-Organization" in str(out.exception)
    assert not (tmp_path / "bag").exists()
    out = invoke(package, collection.root, tmp_path / "bag", "--info", "Source-Organization=Given Archive",
                 "--serialize", "zip")
    assert out.code == 0, out.stderr
    assert (tmp_path / "bag.zip").is_file() and not (tmp_path / "bag").exists()


def test_missing_required_bag_info_is_found_before_the_check_and_by_check(collection: Collection, tmp_path: Path,
                                                                         run_preserve: Run) -> None:
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace('organization = "Test Archive"\n', ""), encoding="utf-8")
    checked = run_preserve("check", collection.root)
    assert checked.returncode == EXIT_PROBLEMS
    assert ("error: collection.toml: cannot make a bag conforming to profile" in checked.stdout
            and "required bag-info values are missing: Source-Organization" in checked.stdout)
    assert run_preserve("check", "--no-profile", collection.root).returncode == 0
    # packaging refuses on the profile before reading any audio: a broken file is not even reached
    (collection.root / "one.wav").write_bytes(b"")
    out = invoke(package, collection.root, tmp_path / "bag")
    assert out.code == EXIT_PROBLEMS  # the same exit code as the check's
    assert "required bag-info values are missing: Source-Organization" in str(out.exception)
    assert not (tmp_path / "bag").exists()
    checked = run_preserve("check", "--json", collection.root)
    assert checked.returncode == EXIT_PROBLEMS
    assert [(p["code"], p["file"]) for p in json.loads(checked.stdout)["problems"]] == [
        ("empty", "one.wav"), ("profile", "collection.toml")]


def test_litter_and_ignored_are_left_out(collection: Collection, tmp_path: Path) -> None:
    (collection.root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (collection.root / "side b" / "._two.wav").write_bytes(b"\x00\x05\x16\x07")
    (collection.root / "scratch.tmp").write_text("x", encoding="utf-8")
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace("[defaults]", 'ignore = ["*.tmp"]\n\n[defaults]'), encoding="utf-8")
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.notes == [".DS_Store: operating-system litter, left out of the package",
                            "side b/._two.wav: operating-system litter, left out of the package",
                            "scratch.tmp: matches an ignore pattern, left out of the package"]
    result = package_collection(collection.root, tmp_path / "bag", profile=None)
    names = {p.name for p in (result.bag.path / "data").rglob("*")}
    assert not names & {".DS_Store", "._two.wav", "scratch.tmp"}
    shutil.rmtree(tmp_path / "bag")


def test_checksum_line_for_litter_is_a_note(collection: Collection, tmp_path: Path) -> None:
    (collection.root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (collection.root / "checksums.md5").write_text(
        f"{collection.md5('.DS_Store')}  .DS_Store\n{collection.md5('one.wav')}  one.wav\n", encoding="utf-8")
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.notes == [".DS_Store: operating-system litter, left out of the package",
                            "checksums.md5 line 1: names .DS_Store, which is left out as operating-system litter; "
                            "its checksum is not verified"]
    assert [c.outcome for c in report.collection.tracks[0].producer_checksums] == ["pass"]
    result = package_collection(collection.root, tmp_path / "bag", profile=None)
    assert not (tmp_path / "bag" / "data" / "submission" / ".DS_Store").exists()
    assert (tmp_path / "bag" / "data" / "submission" / "checksums.md5").is_file()
    assert result.report.ready


def test_a_file_changed_after_the_check_is_not_packaged(collection: Collection, tmp_path: Path) -> None:
    from preserve.errors import SourceChanged

    def meddle(report: object) -> None:
        write_flac(collection.root / "three.flac", Tone(22050, 16, 1, 0.25, 551.0))   # same size, new audio

    with pytest.raises(SourceChanged) as info:
        package_collection(collection.root, tmp_path / "bag", profile=None, on_checked=meddle)
    assert info.value.exit_code == 1
    assert str(info.value).startswith(f"{collection.root / 'three.flac'}: the file changed while it was being copied "
                                      "(it changed after the check (size/mtime ")
    assert not (tmp_path / "bag").exists()
    assert not [p for p in tmp_path.iterdir() if "preserve-staging" in p.name]

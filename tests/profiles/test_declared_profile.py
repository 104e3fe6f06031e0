"""`preserve validate` checks the profile a bag declares (BagIt-Profile-Identifier) when preserve
knows it without the network; --no-profile skips it; a declared profile it does not know is named
in a note as not checked, and the verdict is that of BagIt alone."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bagit
import pytest

from preserve.intake.testaudio import Tone, write_flac, write_wav
from preserve.profiles import AUDIO_AIP_PROFILE_ID

from ..conftest import preserve_script as preserve

SHIPPED = Path(__file__).resolve().parents[2] / "profiles" / "preserve-audio-aip.json"
UNKNOWN_ID = "https://archive.example.org/profiles/reel-transfer-v9.json"

TOML = """\
[collection]
identifier = "declared-0001"
organization = "Test Archive"
description = "A collection for the declared-profile tests"

[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate", "migrate"]
"""


def verdict(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A package (folder and zip) made by `preserve package`, which declares the shipped AIP profile."""
    root = tmp_path_factory.mktemp("declared")
    coll = root / "coll"
    (coll / "rights").mkdir(parents=True)
    (coll / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
    (coll / "collection.toml").write_text(TOML, encoding="utf-8")
    write_wav(coll / "one.wav", Tone(22050, 16, 1, 0.25))
    write_flac(coll / "two.flac", Tone(22050, 16, 1, 0.25, 550.0))
    (coll / "metadata.csv").write_text("file,title,artist\none.wav,One,Ann\ntwo.flac,Two,Ben\n", encoding="utf-8")
    out = {}
    for key, dest, extra in (("folder", root / "pkg", ()), ("zip", root / "pkg.zip", ("--serialize", "zip"))):
        result = preserve("package", coll, dest, "-q", *extra)
        assert result.returncode == 0, result.stderr
        out[key] = dest
    assert f"BagIt-Profile-Identifier: {AUDIO_AIP_PROFILE_ID}\n" in (out["folder"] / "bag-info.txt").read_text(encoding="utf-8")
    return out


@pytest.fixture
def package(made: dict[str, Path], tmp_path: Path) -> Path:
    bag = tmp_path / "pkg"
    shutil.copytree(made["folder"], bag)
    return bag


def strip_aip(bag: Path) -> None:
    """What the AIP profile requires and BagIt does not: both tag manifests and metadata/."""
    for alg in ("sha256", "sha512"):
        (bag / f"tagmanifest-{alg}.txt").unlink()
    shutil.rmtree(bag / "metadata")


def test_a_package_stripped_of_what_its_profile_requires_is_invalid(package: Path) -> None:
    strip_aip(package)
    out = preserve("validate", package)
    assert out.returncode == 1, out.stdout + out.stderr
    for line in (
        "error: tagmanifest-sha256.txt: Tag-Manifests-Required: sha256 is required but tagmanifest-sha256.txt is missing (the bag has: none)",
        "error: tagmanifest-sha512.txt: Tag-Manifests-Required: sha512 is required but tagmanifest-sha512.txt is missing (the bag has: none)",
        "error: metadata/mets.xml: Tag-Files-Required: metadata/mets.xml is required but missing",
        "error: metadata/premis.xml: Tag-Files-Required: metadata/premis.xml is required but missing",
    ):
        assert line in out.stdout.splitlines()
    last = out.stdout.splitlines()[-1]
    assert last.startswith(f"{package}: INVALID (") and last.endswith(", 4 error(s), 0 warning(s), full check)")
    assert f"checked against profile preserve-audio-aip ({AUDIO_AIP_PROFILE_ID}), as the bag's BagIt-Profile-Identifier declares" in out.stderr
    report = verdict(preserve("validate", package, "-q", "--json"))
    assert report["valid"] is False
    assert report["profiles"] == {"checked": [{"identifier": AUDIO_AIP_PROFILE_ID, "name": "preserve-audio-aip",
                                               "declared": True}], "not_checked": []}
    assert sorted(f["path"] for f in report["findings"] if f["code"] == "profile") == [
        "metadata/mets.xml", "metadata/premis.xml", "tagmanifest-sha256.txt", "tagmanifest-sha512.txt"]


def test_no_profile_or_another_profile_skips_the_declared_one_and_says_so(package: Path, tmp_path: Path) -> None:
    strip_aip(package)
    out = preserve("validate", package, "--no-profile")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1].endswith(", 0 error(s), 0 warning(s), full check)")
    assert f"note: declared profile {AUDIO_AIP_PROFILE_ID} was not checked: --no-profile was given" in out.stderr
    other = tmp_path / "other.json"
    raw = json.loads(SHIPPED.read_text(encoding="utf-8"))
    raw["BagIt-Profile-Info"]["BagIt-Profile-Identifier"] = UNKNOWN_ID
    other.write_text(json.dumps(raw), encoding="utf-8")
    instead = preserve("validate", package, "--profile", other)
    assert instead.returncode == 1  # the given profile's rules apply: the tag manifests are missing
    assert f"note: declared profile {AUDIO_AIP_PROFILE_ID} was not checked: --profile {other} was checked instead" in instead.stderr
    both = preserve("validate", package, "--no-profile", "--profile", "preserve-audio-aip")
    assert both.returncode == 2
    assert "--profile and --no-profile exclude each other" in both.stderr


def test_an_intact_package_stays_valid_folder_and_archive(made: dict[str, Path]) -> None:
    for bag in made.values():
        out = preserve("validate", bag)
        assert out.returncode == 0, out.stdout + out.stderr
        assert " valid (" in out.stdout.splitlines()[-1]
        assert "checked against profile preserve-audio-aip" in out.stderr
        report = verdict(preserve("validate", bag, "-q", "--json"))
        assert report["profiles"]["checked"][0]["identifier"] == AUDIO_AIP_PROFILE_ID
        assert not [f for f in report["findings"] if f["code"] == "profile"]


def test_an_archive_declaring_the_aip_profile_is_checked_against_it(make_bag: Callable[..., Path]) -> None:
    # valid BagIt, declares the AIP profile, has none of its sidecars and only sha256
    bag = make_bag("plain", {"a.wav": b"RIFF tone"}, info=[("BagIt-Profile-Identifier", AUDIO_AIP_PROFILE_ID)],
                   serialize="tar.gz")
    out = preserve("validate", bag)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: manifest-sha512.txt: Manifests-Required: sha512 is required but manifest-sha512.txt is missing (the bag has: sha256)" \
        in out.stdout.splitlines()
    assert "error: metadata/mets.xml: Tag-Files-Required: metadata/mets.xml is required but missing" in out.stdout.splitlines()
    assert preserve("validate", bag, "--no-profile").returncode == 0


def test_bags_declaring_no_profile_keep_their_verdict(make_bag: Callable[..., Path], tmp_path: Path) -> None:
    ours = make_bag("ours", {"a.wav": b"RIFF tone"})
    out = preserve("validate", ours)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1].endswith("1 files, 9 bytes, sha256, 0 error(s), 0 warning(s), full check)")
    assert "profile" not in out.stderr
    assert verdict(preserve("validate", ours, "-q", "--json"))["profiles"] == {"checked": [], "not_checked": []}
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "song.flac").write_bytes(b"fLaC song")
    bagit.make_bag(str(theirs), checksums=["sha256"])
    out = preserve("validate", theirs)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "note:" not in out.stderr


def test_an_unknown_declared_profile_is_valid_with_a_note(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "song.flac").write_bytes(b"fLaC song")
    bagit.make_bag(str(theirs), {"BagIt-Profile-Identifier": UNKNOWN_ID}, checksums=["sha256"])
    out = preserve("validate", theirs)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1].endswith(", 0 error(s), 0 warning(s), full check)")
    assert f"note: declared profile {UNKNOWN_ID} was not checked: no shipped or local profile has this identifier" in out.stderr
    report = verdict(preserve("validate", theirs, "-q", "--json"))
    assert report["valid"] is True and report["warnings"] == []
    assert [n["identifier"] for n in report["profiles"]["not_checked"]] == [UNKNOWN_ID]


def test_a_declared_identifier_is_never_opened_as_a_path(tmp_path: Path) -> None:
    # a profile file on this machine that the bag would break, named by path in the bag
    strict = json.loads(SHIPPED.read_text(encoding="utf-8"))
    strict["BagIt-Profile-Info"]["BagIt-Profile-Identifier"] = "https://archive.example.org/strict.json"
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(strict), encoding="utf-8")
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "song.flac").write_bytes(b"fLaC song")
    bagit.make_bag(str(bag), {"BagIt-Profile-Identifier": str(path)}, checksums=["sha256"])
    out = preserve("validate", bag)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"note: declared profile {path} was not checked" in out.stderr


def test_a_profile_in_the_users_folder_is_checked_when_declared(tmp_path: Path) -> None:
    folder = tmp_path / "my-profiles"
    folder.mkdir()
    strict = json.loads(SHIPPED.read_text(encoding="utf-8"))
    strict["BagIt-Profile-Info"]["BagIt-Profile-Identifier"] = UNKNOWN_ID
    strict["Accept-BagIt-Version"] = ["0.97", "1.0"]  # bagit-python writes 0.97
    (folder / "reel.json").write_text(json.dumps(strict), encoding="utf-8")
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "song.flac").write_bytes(b"fLaC song")
    bagit.make_bag(str(bag), {"BagIt-Profile-Identifier": UNKNOWN_ID}, checksums=["sha256"])
    out = preserve("validate", bag, env={"PRESERVE_PROFILES_DIR": str(folder)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: manifest-sha512.txt: Manifests-Required: sha512 is required but manifest-sha512.txt is missing (the bag has: sha256)" \
        in out.stdout.splitlines()
    (folder / "reel.json").write_text(json.dumps({**strict, "Accept-BagIt-Version": "1.0"}), encoding="utf-8")
    broken = preserve("validate", bag, env={"PRESERVE_PROFILES_DIR": str(folder)})
    assert broken.returncode == 0, broken.stdout + broken.stderr
    assert f"note: declared profile {UNKNOWN_ID} was not checked: the local profile with this identifier cannot be used" \
        in broken.stderr

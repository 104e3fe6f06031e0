"""Every bag `preserve package` makes for the examples conforms to the shipped audio profile."""

from __future__ import annotations

from pathlib import Path

import bagit
import pytest

from preserve.bag.validate import validate_bag
from preserve.package import package_collection
from preserve.profiles import AUDIO_AIP_PROFILE_ID, load_profile, validate_profile
from preserve.serialize import validate_archive

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _collections() -> list[str]:
    """Each example collection; a batch (a collection.toml over release folders, each with its DDEX
    message) gives each of its releases, packaged on its own."""
    names = []
    for p in sorted(EXAMPLES.iterdir()):
        if not (p / "collection.toml").is_file():
            continue
        releases = [q for q in sorted(p.iterdir()) if q.is_dir() and any(q.glob("*.xml"))]
        names += [f"{p.name}/{q.name}" for q in releases] if releases else [p.name]
    return names


NAMES = _collections()


def test_there_are_examples() -> None:
    assert NAMES == ["donated-collection", "label-ddex/5012345678900", "label-ddex/5012345678917", "label-masters"]


@pytest.mark.parametrize("name", NAMES)
def test_packaged_example_conforms_to_the_audio_profile(tmp_path: Path, name: str) -> None:
    profile = load_profile("preserve-audio-aip")
    result = package_collection(EXAMPLES / name, tmp_path / name)
    bag = result.bag.path
    assert validate_profile(bag, profile) == []
    assert validate_bag(bag).ok
    assert bagit.Bag(str(bag)).info["BagIt-Profile-Identifier"] == AUDIO_AIP_PROFILE_ID
    bagit.Bag(str(bag)).validate()


def test_serialized_package_conforms_as_a_stream(tmp_path: Path) -> None:
    profile = load_profile(AUDIO_AIP_PROFILE_ID)
    result = package_collection(EXAMPLES / "donated-collection", tmp_path / "donated", serialization="tar.gz")
    archive = result.bag.path
    assert archive.name == "donated.tar.gz"
    report = validate_archive(archive, profile=profile)
    assert report.ok and [f for f in report.findings if f.code in ("profile", "serialization")] == []
    assert (report.files, report.algorithms) == (7, ["sha256", "sha512"])

"""`preserve package --profile`: the package is checked against its profile before it lands at DEST,
the profile's warnings are shown, and the sidecars name the organization bag-info.txt names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bagit
import pytest
from lxml import etree

from preserve.cli.package_cmd import package
from preserve.cli.validate_cmd import validate
from preserve.errors import EXIT_PROBLEMS, EXIT_USAGE
from preserve.profiles import AUDIO_AIP_PROFILE_ID
from preserve.serialize import unpack
from preserve.sidecars.mets import METS_NS
from preserve.sidecars.premis import PREMIS_NS

from .conftest import Collection, invoke

SHIPPED = Path(__file__).resolve().parents[2] / "profiles" / "preserve-audio-aip.json"


def audio_profile(tmp_path: Path, **changes: Any) -> Path:
    """The shipped audio profile under a new identifier, with ``changes`` (None removes a field)."""
    raw = json.loads(SHIPPED.read_text(encoding="utf-8"))
    raw["BagIt-Profile-Info"]["BagIt-Profile-Identifier"] = "https://archive.example.org/profiles/audio-strict.json"
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return path


def test_a_package_that_would_break_its_profile_is_refused_and_nothing_is_written(collection: Collection, tmp_path: Path) -> None:
    # Bagging-Date is written by the bag writer, so only the staged bag shows the breach
    bag_info = json.loads(SHIPPED.read_text(encoding="utf-8"))["Bag-Info"]
    bag_info["Bagging-Date"] = {"required": True, "values": ["1999-12-31"]}
    profile = audio_profile(tmp_path, **{"Bag-Info": bag_info})
    dest = tmp_path / "bag"
    out = invoke(package, collection.root, dest, "--profile", profile, "-q")
    assert out.code == EXIT_PROBLEMS, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith("error: bag-info.txt: Bag-Info Bagging-Date: value '")
    assert lines[0].endswith("' is not one of '1999-12-31'")
    assert str(out.exception) == f"{dest}: the bag does not conform to profile strict (1 problem(s)); nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coll", "strict.json"]  # no DEST, no staging


def test_payload_rules_are_checked_before_the_copy(collection: Collection, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def no_copy(*args: object, **kw: object) -> None:
        raise AssertionError("the payload was copied before its rules were checked")

    monkeypatch.setattr("preserve.package.create_bag", no_copy)
    profile = audio_profile(tmp_path, **{"Payload-Files-Allowed": ["data/objects/*"]})
    out = invoke(package, collection.root, tmp_path / "bag", "--profile", profile, "--serialize", "zip", "-q")
    assert out.code == EXIT_PROBLEMS
    assert out.stderr.splitlines() == [
        f"error: data/submission/{rel}: Payload-Files-Allowed: payload file data/submission/{rel} matches none of data/objects/*"
        for rel in ("collection.toml", "metadata.csv", "rights/agreement.txt")
    ]
    assert str(out.exception) == f"{tmp_path / 'bag.zip'}: the bag does not conform to profile strict (3 problem(s)); nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coll", "strict.json"]


def test_a_profile_whose_tag_files_packaging_cannot_meet_is_refused_before_the_check(collection: Collection, tmp_path: Path) -> None:
    profile = audio_profile(tmp_path, **{"Tag-Files-Allowed": ["metadata/mets.xml", "metadata/premis.xml", "metadata/rights.xml"],
                                         "Tag-Files-Required": ["metadata/mets.xml", "metadata/rights.xml"]})
    out = invoke(package, collection.root, tmp_path / "bag", "--profile", profile, "-q")
    assert out.code == EXIT_USAGE
    assert str(out.exception).splitlines()[1:] == [
        "  - Tag-Files-Required lists metadata/rights.xml, which `preserve package` does not write",
        "  - Tag-Files-Allowed (metadata/mets.xml, metadata/premis.xml, metadata/rights.xml) does not allow metadata/xxh3-128.txt, "
        "which `preserve package` always writes",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coll", "strict.json"]


def test_a_profile_requiring_serialization_and_values_gets_a_conforming_archive(collection: Collection, tmp_path: Path) -> None:
    bag_info = json.loads(SHIPPED.read_text(encoding="utf-8"))["Bag-Info"]
    bag_info["Contact-Phone"] = {"required": True, "repeatable": False}
    profile = audio_profile(tmp_path, **{"Bag-Info": bag_info, "Serialization": "required",
                                         "Accept-Serialization": ["application/x-tar"]})
    missing = invoke(package, collection.root, tmp_path / "bag", "--profile", profile, "-q")
    assert missing.code == EXIT_PROBLEMS  # a value the collection lacks, as `preserve check` reports it
    assert "required bag-info values are missing: Contact-Phone" in str(missing.exception)
    out = invoke(package, collection.root, tmp_path / "bag", "--profile", profile, "-q", "-i", "Contact-Phone=+1 555 0100")
    assert out.code == 0, out.stderr
    archive = tmp_path / "bag.tar"
    assert archive.is_file() and not (tmp_path / "bag").exists()
    checked = invoke(validate, archive, "--profile", profile, "-q")
    assert checked.code == 0, checked.stdout
    folder = unpack(archive, tmp_path / "unpacked").path
    bag = bagit.Bag(folder)
    bag.validate()
    assert bag.info["Contact-Phone"] == "+1 555 0100"


def test_profile_warnings_are_shown_unless_quiet(collection: Collection, tmp_path: Path) -> None:
    profile = audio_profile(tmp_path, recommended={"Contact-Email": True})
    out = invoke(package, collection.root, tmp_path / "bag", "--profile", profile)
    assert out.code == 0, out.stderr
    warning = ("profile strict: top-level key 'recommended' is not defined by the BagIt Profiles specification "
               "and is ignored")
    assert warning in out.stderr
    quiet = invoke(package, collection.root, tmp_path / "bag2", "--profile", profile, "-q")
    assert quiet.code == 0 and warning not in quiet.stderr


def test_the_sidecars_name_the_organization_bag_info_names(collection: Collection, tmp_path: Path) -> None:
    out = invoke(package, collection.root, tmp_path / "bag", "-q", "-i", "Source-Organization=Harbour Sound Library")
    assert out.code == 0, out.stderr
    bag = tmp_path / "bag"
    assert bagit.Bag(str(bag)).info["Source-Organization"] == "Harbour Sound Library"
    ns = {"mets": METS_NS, "premis": PREMIS_NS}
    mets = etree.parse(str(bag / "metadata" / "mets.xml"))
    assert mets.xpath("/mets:mets/mets:metsHdr/mets:agent[@TYPE='ORGANIZATION']/mets:name/text()", namespaces=ns) == \
        ["Harbour Sound Library"]
    premis = etree.parse(str(bag / "metadata" / "premis.xml"))
    agents = premis.xpath("//premis:agent[premis:agentType='organization']/premis:agentName/text()", namespaces=ns)
    assert "Harbour Sound Library" in agents and "Test Archive" not in agents
    assert b"Test Archive" not in (bag / "metadata" / "mets.xml").read_bytes()
    assert invoke(validate, bag, "--profile", AUDIO_AIP_PROFILE_ID, "-q").code == 0

"""Every field of the profile specification: a conforming bag passes, each violation is named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bagit_utils.bagit import Bag as BagitUtilsBag
from bagit_utils.validator import BagValidator

from preserve.bag.validate import validate_bag
from preserve.cli.main import main
from preserve.profiles import load_profile, validate_profile

DATA = Path(__file__).parent / "data"
# Foo-style: few rules, serialization required, one algorithm.
REEL: dict[str, Any] = json.loads((DATA / "reel-transfer-profile.json").read_text(encoding="utf-8"))
REEL_ID = REEL["BagIt-Profile-Info"]["BagIt-Profile-Identifier"]
# Bar-style: many bag-info rules with closed value lists, tag files, every 1.4.0 field.
DOCK: dict[str, Any] = json.loads((DATA / "loading-dock-profile.json").read_text(encoding="utf-8"))
DOCK_ID = DOCK["BagIt-Profile-Info"]["BagIt-Profile-Identifier"]
DOCK_INFO = [
    ("Source-Organization", "Northern Radio Archive"),
    ("Organization-Address", "1 Harbour Road, Northtown"),
    ("Contact-Name", "A. Keeper"),
    ("Contact-Email", "a.keeper@example.net"),
    ("External-Description", "Field recordings, 1962"),
    ("External-Identifier", "NRA-1962-04"),
    ("Bag-Count", "1 of 1"),
    ("BagIt-Profile-Identifier", DOCK_ID),
]
REEL_INFO = [
    ("Source-Organization", "Example Sound Archive"),
    ("Contact-Phone", "+1 555 0100"),
    ("BagIt-Profile-Identifier", REEL_ID),
]
DOCK_FILES = {"audio/side-a.wav": b"RIFF side a", "audio/side-b.wav": b"RIFF side b", "README.txt": b"two sides\n"}


def messages(findings: list[Any]) -> list[str]:
    assert all(f.code == "profile" and f.severity == "error" for f in findings)
    return [f.message for f in findings]


def test_bar_style_profile_accepts_a_conforming_bag(make_bag, write_profile) -> None:
    bag = make_bag("dock", DOCK_FILES, info=DOCK_INFO, dock=True)
    profile = load_profile(write_profile(DOCK))
    assert profile.warnings == ()
    assert validate_profile(bag, profile) == []
    assert validate_bag(bag).ok
    assert BagValidator.validate_once(BagitUtilsBag(bag, load=True), profile=DOCK).valid


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_foo_style_profile_accepts_a_conforming_serialized_bag(make_bag, write_profile, fmt: str) -> None:
    bag = make_bag("reel", {"reel-1.flac": b"fLaC reel"}, algorithms=("md5",), info=REEL_INFO, serialize=fmt)
    assert bag.is_file()
    assert validate_profile(bag, load_profile(write_profile(REEL))) == []


def test_foo_style_profile_refuses_a_folder_first_and_only(make_bag, write_profile) -> None:
    # The bag also lacks the required Contact-Phone and md5 manifest; serialization is fatal, so
    # only it is reported, as the specification asks.
    bag = make_bag("reel", {"reel-1.flac": b"fLaC"}, info=[("BagIt-Profile-Identifier", REEL_ID)])
    found = messages(validate_profile(bag, load_profile(write_profile(REEL))))
    assert found == ["Serialization: the profile requires a serialized bag (application/zip, application/x-tar); this bag is a folder"]


def _drop_info(label: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in DOCK_INFO if k != label]


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(p: dict[str, Any]) -> None:
        p[key] = value

    return edit


def _remove(rel: str) -> Callable[[Path], None]:
    return lambda bag: (bag / rel).unlink()


def _add(rel: str, data: bytes = b"x") -> Callable[[Path], None]:
    def add(bag: Path) -> None:
        (bag / rel).parent.mkdir(parents=True, exist_ok=True)
        (bag / rel).write_bytes(data)

    return add


# (field, profile edit, bag options, change to the made bag, expected messages in order)
CASES: list[tuple[str, Any, dict[str, Any], Any, list[str]]] = [
    ("BagIt-Profile-Identifier", None, {"info": _drop_info("BagIt-Profile-Identifier")}, None,
     [f"BagIt-Profile-Identifier: bag-info.txt has none; a bag conforming to this profile must carry {DOCK_ID}"]),
    ("BagIt-Profile-Identifier", None, {"info": [*_drop_info("BagIt-Profile-Identifier"), ("BagIt-Profile-Identifier", "https://other.example/p.json")]}, None,
     [f"BagIt-Profile-Identifier: bag-info.txt names https://other.example/p.json, not this profile ({DOCK_ID})"]),
    ("Bag-Info", None, {"info": _drop_info("Contact-Email")}, None,
     ["Bag-Info Contact-Email: required, but bag-info.txt does not have it"]),
    ("Bag-Info", None, {"info": [*_drop_info("Contact-Email"), ("Contact-Email", "")]}, None,
     ["Bag-Info Contact-Email: required, but its value in bag-info.txt is empty"]),
    ("Bag-Info", None, {"info": [*_drop_info("Source-Organization"), ("Source-Organization", "Elsewhere Museum")]}, None,
     ["Bag-Info Source-Organization: value 'Elsewhere Museum' is not one of 'Northern Radio Archive', 'Southern Song Library'"]),
    ("Bag-Info", None, {"info": [*DOCK_INFO, ("External-Identifier", "NRA-1962-05")]}, None,
     ["Bag-Info External-Identifier: not repeatable, but bag-info.txt has it 2 times ('NRA-1962-04', 'NRA-1962-05')"]),
    ("Manifests-Required", None, {"algorithms": ("sha512",)}, None,
     ["Manifests-Required: sha256 is required but manifest-sha256.txt is missing (the bag has: sha512)",
      "Tag-Manifests-Required: sha256 is required but tagmanifest-sha256.txt is missing (the bag has: sha512)"]),
    ("Manifests-Allowed", None, {"algorithms": ("sha256", "md5")}, None,
     ["Manifests-Allowed: manifest-md5.txt uses md5, which the profile does not allow (allowed: sha256, sha512)",
      "Tag-Manifests-Allowed: tagmanifest-md5.txt uses md5, which the profile does not allow (allowed: sha256, sha512)"]),
    ("Tag-Manifests-Required", None, {}, _remove("tagmanifest-sha256.txt"),
     ["Tag-Manifests-Required: sha256 is required but tagmanifest-sha256.txt is missing (the bag has: none)"]),
    ("Tag-Manifests-Allowed", _set("Tag-Manifests-Allowed", ["sha256"]), {"algorithms": ("sha256", "sha512")}, None,
     ["Tag-Manifests-Allowed: tagmanifest-sha512.txt uses sha512, which the profile does not allow (allowed: sha256)"]),
    ("Allow-Fetch.txt", None, {}, _add("fetch.txt", b"https://dock.example.net/x 1 data/x\n"),
     ["Allow-Fetch.txt: the profile does not allow fetch.txt, and the bag has one"]),
    ("Fetch.txt-Required", lambda p: p.update({"Allow-Fetch.txt": True, "Fetch.txt-Required": True}), {}, None,
     ["Fetch.txt-Required: the profile requires fetch.txt, and the bag has none"]),
    ("Data-Empty", _set("Data-Empty", True), {}, None,
     ["Data-Empty: the profile requires data/ to be empty (no file, or one zero-byte file); it holds 3 file(s), 32 bytes"]),
    ("Tag-Files-Required", None, {"dock": False}, None,
     ["Tag-Files-Required: dock/first-node.txt is required but missing",
      "Tag-Files-Required: dock/registry is required but missing"]),
    ("Tag-Files-Allowed", None, {}, _add("notes/about.txt"),
     ["Tag-Files-Allowed: tag file notes/about.txt matches none of dock/*, metadata/*"]),
    ("Payload-Files-Required", None, {"files": {"audio/side-a.wav": b"a"}}, None,
     ["Payload-Files-Required: data/README.txt is required but missing"]),
    ("Payload-Files-Required", None, {"files": {"README.txt": b"r"}}, None,
     ["Payload-Files-Required: the folder data/audio/ must exist and hold at least one file or folder; it is missing or empty"]),
    ("Payload-Files-Allowed", None, {"files": {**DOCK_FILES, "video/reel.mp4": b"v"}}, None,
     ["Payload-Files-Allowed: payload file data/video/reel.mp4 matches none of data/audio/*, data/README.txt"]),
    ("Accept-BagIt-Version", _set("Accept-BagIt-Version", ["0.96", "0.97"]), {"dock": False}, None,
     ["Accept-BagIt-Version: BagIt-Version 1.0 is not accepted; the profile accepts 0.96, 0.97"]),
    ("Serialization", _set("Serialization", "required"), {}, None,
     ["Serialization: the profile requires a serialized bag (application/zip); this bag is a folder"]),
    ("Serialization", _set("Serialization", "forbidden"), {"serialize": "zip"}, None,
     ["Serialization: the profile forbids serialized bags; this bag is a zip file (application/zip)"]),
    ("Accept-Serialization", None, {"serialize": "tar.gz", "dock": False}, None,
     ["Accept-Serialization: application/gzip (tar.gz) is not accepted; the profile accepts application/zip"]),
    # both fatal checks fail: serialization first, version second, and nothing else (the bag also
    # lacks every required bag-info value and tag file)
    ("Accept-Serialization", lambda p: p.update({"Accept-BagIt-Version": ["0.97"], "Accept-Serialization": ["application/zip"]}),
     {"serialize": "tar", "dock": False, "info": []}, None,
     ["Accept-Serialization: application/x-tar (tar) is not accepted; the profile accepts application/zip",
      "Accept-BagIt-Version: BagIt-Version 1.0 is not accepted; the profile accepts 0.97"]),
]


@pytest.mark.parametrize(("field", "edit", "options", "change", "expected"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_violated_field_is_named(make_bag, write_profile, field: str, edit: Any, options: dict[str, Any],
                                      change: Any, expected: list[str]) -> None:
    opts = {"files": DOCK_FILES, "info": DOCK_INFO, "dock": True, **options}
    bag = make_bag("dock", opts.pop("files"), **opts)
    if change is not None:
        change(bag)
    path = write_profile(DOCK, edit)
    found = messages(validate_profile(bag, load_profile(path)))
    assert found == expected
    assert found[0].startswith(field)  # the message opens with the profile field it breaks
    if bag.is_dir() and field not in BAGIT_UTILS_SKIPS and "is empty" not in found[0]:
        # an independent implementation of the 1.4.0 specification rejects the bag too
        report = BagValidator.validate_once(BagitUtilsBag(bag, load=True), profile=json.loads(path.read_text(encoding="utf-8")))
        assert not report.valid


# Fields bagit-utils 1.2.5 does not check (it also accepts an empty required value): our checks
# there follow the specification's text (bags MUST carry BagIt-Profile-Identifier).
BAGIT_UTILS_SKIPS = ("BagIt-Profile-Identifier", "Serialization", "Accept-Serialization")


def test_profile_failure_exits_1_though_the_bag_is_valid_bagit(make_bag, write_profile, capsys) -> None:
    bag = make_bag("dock", DOCK_FILES, info=_drop_info("Contact-Email"), dock=True)
    assert validate_bag(bag).ok
    profile = write_profile(DOCK)
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(bag), "--profile", str(profile), "-q"])
    out = capsys.readouterr().out
    assert exit_.value.code == 1
    assert "error: bag-info.txt: Bag-Info Contact-Email: required, but bag-info.txt does not have it" in out
    assert out.rstrip().endswith("INVALID (3 files, 32 bytes, sha256, 1 error(s), 0 warning(s), full check)")
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(bag), "-q"])  # without --profile, only BagIt rules apply
    assert exit_.value.code == 0


def test_identifier_url_selects_a_local_profile_without_network(make_bag, write_profile, tmp_path, monkeypatch, capsys) -> None:
    folder = tmp_path / "my-profiles"
    folder.mkdir()
    shutil.copy(write_profile(REEL), folder / "reel.json")
    monkeypatch.setenv("PRESERVE_PROFILES_DIR", str(folder))
    bag = make_bag("reel", {"reel-1.flac": b"fLaC reel"}, algorithms=("md5",), info=REEL_INFO, serialize="zip")
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(bag), "--profile", REEL_ID, "-q"])
    assert exit_.value.code == 0, capsys.readouterr()
    assert load_profile("reel").identifier == REEL_ID

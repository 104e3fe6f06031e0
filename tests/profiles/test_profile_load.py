"""Reading profiles: finding them without the network, refusing malformed ones, warning on extras."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from bagit_utils.validator import BagItProfileValidator

from preserve.cli.main import main
from preserve.errors import BadProfile
from preserve.profiles import (
    AUDIO_AIP_PROFILE_ID,
    FIELDS,
    TRANSFER_PROFILE_ID,
    PathPatterns,
    load_profile,
    parse_profile,
    shipped_dir,
)

DATA = Path(__file__).parent / "data"
DOCK: dict[str, Any] = json.loads((DATA / "loading-dock-profile.json").read_text(encoding="utf-8"))
REPO_PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def edited(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(DOCK)
    change(data)
    return data


def test_shipped_profiles_load_by_name_and_identifier() -> None:
    audio = load_profile("preserve-audio-aip")
    assert audio.identifier == AUDIO_AIP_PROFILE_ID
    assert load_profile(AUDIO_AIP_PROFILE_ID).source == audio.source
    assert load_profile("preserve-transfer").identifier == TRANSFER_PROFILE_ID
    assert Path(audio.source).parent == shipped_dir()
    assert sorted(p.name for p in shipped_dir().glob("*.json")) == ["preserve-audio-aip.json", "preserve-transfer.json"]


@pytest.mark.parametrize("name", ["preserve-audio-aip", "preserve-transfer"])
def test_shipped_profiles_are_valid_against_the_specification(name: str) -> None:
    path = REPO_PROFILES / f"{name}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    profile = load_profile(path)
    assert profile.warnings == ()  # only fields and options the specification defines
    assert set(raw) <= set(FIELDS)
    info = raw["BagIt-Profile-Info"]
    assert info["BagIt-Profile-Version"] == "1.4.0"
    assert {"Source-Organization", "External-Description", "Version", "BagIt-Profile-Identifier"} <= set(info)
    # an independent implementation of the 1.4.0 specification accepts it too
    assert BagItProfileValidator.load_profile(raw) == raw


def test_audio_profile_says_what_packaging_writes() -> None:
    p = load_profile("preserve-audio-aip")
    assert p.manifests_required == ("sha256", "sha512") and p.tag_manifests_required == ("sha256", "sha512")
    assert p.tag_files_required == ("metadata/mets.xml", "metadata/premis.xml")
    required = [r.label for r in p.bag_info if r.required]
    assert required == ["Source-Organization", "External-Identifier", "Bagging-Date", "Payload-Oxum", "Bag-Software-Agent"]
    assert p.serialization == "optional" and p.accept_bagit_version == ("1.0",)
    assert p.allow_fetch is False


def test_unknown_name_lists_the_known_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESERVE_PROFILES_DIR", str(tmp_path))
    with pytest.raises(BadProfile) as exc:
        load_profile("https://unknown.example/profile.json")
    msg = str(exc.value)
    assert msg.startswith("https://unknown.example/profile.json: not a usable BagIt profile: no such file, and no shipped or local profile")
    assert f"preserve-audio-aip ({AUDIO_AIP_PROFILE_ID})" in msg and "the network is never used" in msg
    with pytest.raises(BadProfile, match=r"missing\.json: not a usable BagIt profile: no such file"):
        load_profile(tmp_path / "missing.json")


def test_a_broken_local_profile_asked_for_by_identifier_says_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESERVE_PROFILES_DIR", str(tmp_path))
    dock_id = DOCK["BagIt-Profile-Info"]["BagIt-Profile-Identifier"]
    broken = tmp_path / "dock.json"
    broken.write_text(json.dumps(edited(lambda d: d.update({"Accept-BagIt-Version": "1.0"}))), encoding="utf-8")
    (tmp_path / "other.json").write_text("{not json", encoding="utf-8")  # broken too, but not the one asked for
    with pytest.raises(BadProfile) as exc:
        load_profile(dock_id)
    assert str(exc.value) == (f"{broken}: not a usable BagIt profile: Accept-BagIt-Version must be a list of strings, "
                              'found "1.0" (a string)')
    # another identifier still gets the "no such profile" answer, listing the readable ones
    with pytest.raises(BadProfile, match="no such file, and no shipped or local profile"):
        load_profile("https://unknown.example/profile.json")


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "BagIt-Profile-Info": {,\n}', encoding="utf-8")
    with pytest.raises(BadProfile) as exc:
        load_profile(bad)
    assert str(exc.value) == f"{bad}: not a usable BagIt profile: is not valid JSON: Expecting property name enclosed in double quotes at line 2 column 26"
    assert exc.value.exit_code == 3


def test_cli_exit_3_for_a_bad_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    (tmp_path / "bag").mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(tmp_path / "bag"), "--profile", str(bad)])
    assert exit_.value.code == 3
    assert capsys.readouterr().err.strip() == f"preserve: error: {bad}: not a usable BagIt profile: the top level must be a JSON object, found [] (a list)"


MALFORMED = [
    (lambda p: p.pop("BagIt-Profile-Info"), "BagIt-Profile-Info is required and must be an object"),
    (lambda p: p["BagIt-Profile-Info"].pop("Version"), "BagIt-Profile-Info lacks Version (required by the specification)"),
    (lambda p: p["BagIt-Profile-Info"].update({"BagIt-Profile-Identifier": "not a uri"}), "BagIt-Profile-Info BagIt-Profile-Identifier 'not a uri' is not a URI"),
    (lambda p: p["BagIt-Profile-Info"].update({"BagIt-Profile-Version": "1.0.0"}), "BagIt-Profile-Info BagIt-Profile-Version 1.0.0 predates 1.1.0; preserve reads profiles written for 1.1.0 to 1.4.0"),
    (lambda p: p.update({"Manifests-Required": "sha256"}), 'Manifests-Required must be a list of strings, found "sha256" (a string)'),
    (lambda p: p.update({"Manifests-Required": ["manifest-sha256.txt"]}), "Manifests-Required lists 'manifest-sha256.txt', which is not a manifest algorithm name (such as sha256): the list holds names, not file names"),
    (lambda p: p.update({"Manifests-Required": ["md5"]}), "Manifests-Required lists md5, missing from Manifests-Allowed (sha256, sha512)"),
    (lambda p: p.update({"Tag-Manifests-Allowed": []}), "Tag-Manifests-Required lists sha256, missing from Tag-Manifests-Allowed (empty)"),
    (lambda p: p.update({"Allow-Fetch.txt": "no"}), 'Allow-Fetch.txt must be true or false, found "no" (a string)'),
    (lambda p: p.update({"Fetch.txt-Required": True}), "Fetch.txt-Required is true but Allow-Fetch.txt is false"),
    (lambda p: p.update({"Data-Empty": 1}), "Data-Empty must be true or false, found 1 (int)"),
    (lambda p: p.update({"Serialization": "sometimes"}), 'Serialization must be one of forbidden, required, optional; found "sometimes" (a string)'),
    (lambda p: p.update({"Serialization": "required", "Accept-Serialization": []}), "Serialization is required but Accept-Serialization names no MIME type"),
    (lambda p: p.pop("Accept-BagIt-Version"), 'Accept-BagIt-Version is required (a list of BagIt versions such as "1.0")'),
    (lambda p: p.update({"Accept-BagIt-Version": []}), "Accept-BagIt-Version must name at least one value, found an empty list"),
    (lambda p: p.update({"Accept-BagIt-Version": ["one"]}), "Accept-BagIt-Version lists 'one', which is not a version number"),
    (lambda p: p.update({"Bag-Info": []}), "Bag-Info must be an object, found [] (a list)"),
    (lambda p: p["Bag-Info"].update({"Contact-Email": True}), "Bag-Info 'Contact-Email' must be an object such as {\"required\": true}, found true (true/false)"),
    (lambda p: p["Bag-Info"].update({"Contact-Email": {"required": "yes"}}), 'required must be true or false, found "yes" (a string)'),
    (lambda p: p["Bag-Info"].update({"Contact-Email": {"values": "a"}}), 'values must be a list of strings, found "a" (a string)'),
    (lambda p: p["Bag-Info"].update({"contact-email": {}}), "Bag-Info 'contact-email' is listed twice (also as 'Contact-Email'); labels compare without regard to case"),
    (lambda p: p.update({"Tag-Files-Allowed": ["metadata/*"]}), "Tag-Files-Required lists 'dock/first-node.txt', which no pattern of Tag-Files-Allowed covers"),
    (lambda p: p.update({"Payload-Files-Required": ["README.txt"]}), "Payload-Files-Required lists 'README.txt'; payload paths start with data/"),
    (lambda p: p.update({"Payload-Files-Allowed": ["data/audio/*"]}), "Payload-Files-Required lists 'data/README.txt', which no pattern of Payload-Files-Allowed covers"),
    (lambda p: p.update({"Tag-Files-Required": ["../outside"]}), "Tag-Files-Required lists '../outside', which is not a tag file path relative to the bag"),
]


@pytest.mark.parametrize(("change", "reason"), MALFORMED, ids=[r[:40] for _, r in MALFORMED])
def test_malformed_profiles_are_refused_naming_the_field(change: Any, reason: str) -> None:
    with pytest.raises(BadProfile) as exc:
        parse_profile(edited(change), source="dock.json")
    assert str(exc.value) == f"dock.json: not a usable BagIt profile: {reason}"


def test_unknown_keys_are_warnings_not_errors() -> None:
    def change(p: dict[str, Any]) -> None:
        p["Tag-Files-Recommended"] = ["dock/notes.txt"]
        p["bag-info"] = {}
        p["Bag-Info"]["Contact-Email"]["recommended"] = True
        p["BagIt-Profile-Info"]["Maintainer"] = "someone"
        p["Bag-Info"]["BagIt-Profile-Identifier"] = {"required": True}

    profile = parse_profile(edited(change), source="dock.json")
    assert profile.warnings == (
        "top-level key 'Tag-Files-Recommended' is not defined by the BagIt Profiles specification and is ignored",
        "top-level key 'bag-info' is not defined by the BagIt Profiles specification and is ignored (did you mean Bag-Info?)",
        "BagIt-Profile-Info key 'Maintainer' is not defined by the specification and is ignored",
        "Bag-Info 'Contact-Email' option 'recommended' is not defined by the specification and is ignored",
        "Bag-Info 'BagIt-Profile-Identifier': the specification says BagIt-Profile-Identifier SHOULD NOT be listed under Bag-Info (it is always required)",
    )


@pytest.mark.parametrize("version", [None, "1.1.0", "1.2.0", "1.3.0", "1.4.0"])
def test_spec_versions_1_1_to_1_4_are_read(version: str | None) -> None:
    def change(p: dict[str, Any]) -> None:
        if version is None:
            p["BagIt-Profile-Info"].pop("BagIt-Profile-Version")
        else:
            p["BagIt-Profile-Info"]["BagIt-Profile-Version"] = version

    profile = parse_profile(edited(change))
    assert profile.spec_version == (version or "1.1.0")
    assert profile.warnings == ()


def test_newer_spec_version_is_read_with_a_warning() -> None:
    profile = parse_profile(edited(lambda p: p["BagIt-Profile-Info"].update({"BagIt-Profile-Version": "2.0.0"})))
    assert profile.warnings == ("BagIt-Profile-Version 2.0.0 is newer than 1.4.0, the newest preserve knows; fields it does not know are ignored",)


@pytest.mark.parametrize(("patterns", "path", "allowed"), [
    (["*"], "metadata/mets.xml", True),          # '*' allows every tag file (its folder matches)
    (["*"], "bag-notes.txt", True),
    (["metadata/*"], "metadata/mets.xml", True),
    (["metadata/*"], "metadata/sub/deep.xml", True),  # a folder allowed allows what it holds
    (["metadata/*"], "other/mets.xml", False),
    (["data/*/*"], "data/a", False),               # '*' never matches '/'
    (["data/*/*"], "data/a/b", True),
    (["data/take-?.wav"], "data/take-1.wav", True),
    (["data/take-?.wav"], "data/take-10.wav", False),
    (["data/take-[0-9].wav"], "data/take-7.wav", True),
    (["data/take-[!0-9].wav"], "data/take-7.wav", False),
    (["data/take-[!0-9].wav"], "data/take-x.wav", True),
    (["data/*.wav"], "data/x.WAV", False),         # case matters, as in glob(7)
    (["data/a.wav"], "data/a.wav", True),
    (["data/a.wav"], "data/a.wav.bak", False),
])
def test_glob_semantics(patterns: list[str], path: str, allowed: bool) -> None:
    assert PathPatterns(tuple(patterns)).allows(path) is allowed

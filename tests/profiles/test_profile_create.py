"""Creating conforming bags: `preserve bag --profile`, and the plan behind it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bagit
import pytest

from preserve.cli.main import main
from preserve.errors import UsageError
from preserve.profiles import (
    TRANSFER_PROFILE_ID,
    load_profile,
    parse_profile,
    plan_creation,
    validate_profile,
)
from preserve.serialize import unpack

DATA = Path(__file__).parent / "data"
REEL: dict[str, Any] = json.loads((DATA / "reel-transfer-profile.json").read_text(encoding="utf-8"))
REEL_ID = REEL["BagIt-Profile-Info"]["BagIt-Profile-Identifier"]


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def test_plan_takes_algorithms_identifier_and_serialization_from_the_profile() -> None:
    profile = parse_profile(REEL)
    plan = plan_creation(profile, (), [("Source-Organization", "Example Music Library"), ("Contact-Phone", "555")])
    assert plan.algorithms == ("md5",)
    assert plan.serialization == "zip"  # the first format the profile accepts that preserve writes
    assert plan.info == [("Source-Organization", "Example Music Library"), ("Contact-Phone", "555"),
                         ("BagIt-Profile-Identifier", REEL_ID)]


def test_plan_lists_every_missing_value_at_once() -> None:
    with pytest.raises(UsageError) as exc:
        plan_creation(parse_profile(REEL), ("sha256",), [], serialization="tar.gz")
    assert str(exc.value) == (
        f"cannot make a bag conforming to profile {REEL_ID} ({REEL_ID}):\n"
        "  - required bag-info values are missing: Source-Organization (one of: 'Example Sound Archive', 'Example Music Library'), "
        "Contact-Phone; pass them with --info LABEL=VALUE\n"
        "  - Accept-Serialization (application/zip, application/x-tar) does not accept tar.gz")
    assert exc.value.exit_code == 2


def test_plan_refuses_what_the_profile_forbids() -> None:
    raw = dict(REEL, **{"Manifests-Allowed": ["md5"], "Serialization": "forbidden",
                        "Bag-Info": {"Source-Organization": {"required": True, "values": ["Example Sound Archive"]},
                                     "Contact-Phone": {"repeatable": False}}})
    profile = parse_profile(raw)
    with pytest.raises(UsageError) as exc:
        plan_creation(profile, ("sha256",), [("Contact-Phone", "1"), ("Contact-Phone", "2")], serialization="zip")
    assert str(exc.value).splitlines()[1:] == [
        "  - Manifests-Allowed (md5) does not allow sha256",
        "  - Serialization is forbidden by the profile; drop --serialize zip",
        "  - Bag-Info Contact-Phone is not repeatable, and 2 values were given",
    ]
    # a required value with a single allowed value is filled in
    plan = plan_creation(profile, (), [])
    assert ("Source-Organization", "Example Sound Archive") in plan.info and plan.serialization is None


def test_bag_with_a_foo_style_profile_conforms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "reels"
    src.mkdir()
    (src / "reel-1.flac").write_bytes(b"fLaC" + bytes(range(256)) * 40)
    profile = tmp_path / "reel.json"
    profile.write_text(json.dumps(REEL), encoding="utf-8")
    # without -q, which leaves out all but the summary line
    code, out, err = run(capsys, "bag", src, tmp_path / "reel-bag", "--profile", profile,
                         "-i", "Source-Organization=Example Sound Archive", "-i", "Contact-Phone=+1 555 0100")
    assert code == 0, err
    archive = tmp_path / "reel-bag.zip"  # Serialization required: the first accepted format, zip
    assert out.splitlines()[-1] == f"conforms to profile reel ({REEL_ID})"
    assert validate_profile(archive, load_profile(profile)) == []
    code, out, _ = run(capsys, "validate", archive, "--profile", profile, "-q")
    assert code == 0 and out.startswith(f"{archive}: valid (1 files, 10244 bytes, md5, 0 error(s)")
    unpack(archive, tmp_path / "unpacked")
    bagit.Bag(str(tmp_path / "unpacked")).validate()  # an independent validator agrees
    assert bagit.Bag(str(tmp_path / "unpacked")).info["BagIt-Profile-Identifier"] == REEL_ID


def test_bag_with_missing_values_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "reels"
    src.mkdir()
    (src / "a.flac").write_bytes(b"fLaC")
    profile = tmp_path / "reel.json"
    profile.write_text(json.dumps(REEL), encoding="utf-8")
    code, _, err = run(capsys, "bag", src, tmp_path / "out", "--profile", profile, "-q")
    assert code == 2
    assert "required bag-info values are missing: Source-Organization (one of: 'Example Sound Archive', 'Example Music Library'), Contact-Phone" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.json", "reels"]


def test_bag_refuses_the_audio_profile_which_needs_sidecars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "s"
    src.mkdir()
    (src / "a.wav").write_bytes(b"RIFF")
    code, _, err = run(capsys, "bag", src, tmp_path / "out", "--profile", "preserve-audio-aip", "-q",
                       "-i", "Source-Organization=Archive", "-i", "External-Identifier=C-1")
    assert code == 2
    assert err.strip() == ("preserve: error: profile preserve-audio-aip requires tag files (metadata/mets.xml, metadata/premis.xml) "
                           "that `preserve bag` does not write; `preserve package` makes packages with them")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("serialize", [None, "tar.gz"])
def test_shipped_transfer_profile_bag_validates_here_and_under_bagit_python(tmp_path: Path, run_preserve: Any, serialize: str | None) -> None:
    src = tmp_path / "tapes"
    (src / "side-b").mkdir(parents=True)
    (src / "side-a.wav").write_bytes(b"RIFF" + bytes(3000))
    (src / "side-b" / "take 1.wav").write_bytes(b"RIFF" + bytes(range(200)))
    extra = ["--serialize", serialize] if serialize else []
    made = run_preserve("bag", src, tmp_path / "tapes-bag", "--profile", "preserve-transfer",
                        "-i", "Source-Organization=Northern Radio Archive", *extra)
    assert made.returncode == 0, made.stderr
    bag = tmp_path / ("tapes-bag.tar.gz" if serialize else "tapes-bag")
    assert made.stdout.splitlines()[-1] == f"conforms to profile preserve-transfer ({TRANSFER_PROFILE_ID})"
    checked = run_preserve("validate", bag, "--profile", TRANSFER_PROFILE_ID, "-q")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"{bag}: valid (2 files, 3208 bytes, sha256, sha512, 0 error(s), 0 warning(s)")
    folder = bag
    if serialize:
        folder = tmp_path / "unpacked"
        assert run_preserve("unpack", bag, folder, "-q").returncode == 0
    bagit.Bag(str(folder)).validate()


def test_bag_whose_payload_breaks_the_profile_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "reels"
    src.mkdir()
    (src / "reel-1.flac").write_bytes(b"fLaC")
    (src / "notes.doc").write_bytes(b"notes")
    raw = dict(REEL, **{"Payload-Files-Allowed": ["data/*.flac"], "Payload-Files-Required": ["data/reel-2.flac"]})
    profile = tmp_path / "reel.json"
    profile.write_text(json.dumps(raw), encoding="utf-8")

    def no_copy(*args: object, **kw: object) -> None:
        raise AssertionError("the payload was copied before its rules were checked")

    monkeypatch.setattr("preserve.cli.bag_cmd.create_bag", no_copy)
    code, _, err = run(capsys, "bag", src, tmp_path / "out", "--profile", profile, "-q",
                       "-i", "Source-Organization=Example Sound Archive", "-i", "Contact-Phone=1")
    assert code == 1
    assert err.splitlines() == [
        "error: data/reel-2.flac: Payload-Files-Required: data/reel-2.flac is required but missing",
        "error: data/notes.doc: Payload-Files-Allowed: payload file data/notes.doc matches none of data/*.flac",
        f"preserve: error: {tmp_path / 'out.zip'}: the bag does not conform to profile reel (2 problem(s)); nothing was written",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.json", "reels"]


def test_bag_refuses_a_profile_whose_tag_files_allowed_excludes_what_preserve_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "reels"
    src.mkdir()
    (src / "reel-1.flac").write_bytes(b"fLaC")
    profile = tmp_path / "reel.json"
    profile.write_text(json.dumps(dict(REEL, **{"Tag-Files-Allowed": ["notes/*"]})), encoding="utf-8")
    code, _, err = run(capsys, "bag", src, tmp_path / "out", "--profile", profile, "-q",
                       "-i", "Source-Organization=Example Sound Archive", "-i", "Contact-Phone=1")
    assert code == 2
    assert err.strip() == (f"preserve: error: cannot make a bag conforming to profile reel ({REEL_ID}):\n"
                           "  - Tag-Files-Allowed (notes/*) does not allow metadata/xxh3-128.txt, which `preserve bag` always writes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.json", "reels"]


@pytest.mark.parametrize("serialize", [None, "zip"])
def test_bag_that_would_break_the_profile_once_staged_leaves_nothing_at_dest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], serialize: str | None) -> None:
    # Tag-Files-Allowed covers the xxh3-128 listing but not the list of empty folders, which the
    # writer adds only when the payload has one: found in the staged bag, before it lands at DEST.
    src = tmp_path / "reels"
    (src / "empty box").mkdir(parents=True)
    (src / "reel-1.flac").write_bytes(b"fLaC")
    raw = dict(REEL, **{"Tag-Files-Allowed": ["metadata/xxh3-128.txt"], "Serialization": "optional"})
    profile = tmp_path / "reel.json"
    profile.write_text(json.dumps(raw), encoding="utf-8")
    extra = ["--serialize", serialize] if serialize else []
    dest = tmp_path / ("out.zip" if serialize else "out")
    code, out, err = run(capsys, "bag", src, tmp_path / "out", "--profile", profile, "-q", *extra,
                         "-i", "Source-Organization=Example Sound Archive", "-i", "Contact-Phone=1")
    assert code == 1, err
    assert err.splitlines() == [
        "error: metadata/empty-directories.txt: Tag-Files-Allowed: tag file metadata/empty-directories.txt matches none of metadata/xxh3-128.txt",
        f"preserve: error: {dest}: the bag does not conform to profile reel (1 problem(s)); nothing was written",
    ]
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.json", "reels"]

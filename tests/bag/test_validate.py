"""Validation finds every kind of damage, names the file, exits 1, and never writes to the bag."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import bagit
import pytest

from preserve.bag.validate import validate_bag


def _retag(bag: Path) -> None:
    """Recompute tag manifests after a deliberate edit, so only the intended damage remains."""
    import hashlib

    for tm in bag.glob("tagmanifest-*.txt"):
        alg = tm.name[len("tagmanifest-"):-4]
        lines = []
        for line in tm.read_text().splitlines():
            _, rel = line.split("  ", 1)
            lines.append(f"{hashlib.new(alg, (bag / rel).read_bytes()).hexdigest()}  {rel}\n")
        tm.write_text("".join(lines))


def _codes(report) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.path) for f in report.errors)


def test_valid_bag_exits_0(simple_bag: Path, run_preserve) -> None:
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 0, r.stderr
    assert "valid (3 files" in r.stdout


@pytest.mark.parametrize("damage, expected", [
    ("flip", [("altered", "data/a.wav"), ("altered", "data/a.wav")]),
    ("truncate", [("altered", "data/a.wav"), ("altered", "data/a.wav"), ("oxum", "bag-info.txt")]),
    ("delete", [("missing", "data/a.wav"), ("oxum", "bag-info.txt")]),
    ("add", [("oxum", "bag-info.txt"), ("unlisted", "data/extra.wav")]),
])
def test_payload_damage_is_found_and_named(simple_bag: Path, run_preserve, snapshot, damage: str, expected) -> None:
    target = simple_bag / "data" / "a.wav"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[1234] ^= 0x40
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-10])
    elif damage == "delete":
        target.unlink()
    elif damage == "add":
        (simple_bag / "data" / "extra.wav").write_bytes(b"not listed")
    before = snapshot(simple_bag)
    report = validate_bag(simple_bag)
    assert _codes(report) == sorted(expected)
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1
    for _, path in expected:
        assert path in r.stdout
    assert "INVALID" in r.stdout
    assert snapshot(simple_bag) == before, "validation wrote to the bag"


def test_flipped_byte_reports_algorithm_and_both_digests(simple_bag: Path, run_preserve) -> None:
    target = simple_bag / "data" / "sub" / "b.flac"
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.write_bytes(bytes(data))
    r = run_preserve("validate", "--json", simple_bag)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["valid"] is False and doc["errors"] == 2
    sha256 = next(f for f in doc["findings"] if f.get("algorithm") == "sha256")
    assert sha256["path"] == "data/sub/b.flac" and sha256["code"] == "altered"
    assert len(sha256["expected"]) == 64 and sha256["expected"] != sha256["found"]


def test_edited_tag_file(simple_bag: Path, run_preserve) -> None:
    with open(simple_bag / "bag-info.txt", "a") as f:
        f.write("Contact-Name: Someone\n")
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1
    assert "bag-info.txt: sha256 checksum does not match tagmanifest-sha256.txt" in r.stdout


def test_wrong_payload_oxum(simple_bag: Path, run_preserve) -> None:
    info = (simple_bag / "bag-info.txt").read_text()
    import re

    (simple_bag / "bag-info.txt").write_text(re.sub(r"Payload-Oxum: \d+\.3", "Payload-Oxum: 999.3", info))
    _retag(simple_bag)
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1
    assert "bag-info.txt: Payload-Oxum does not match the payload (expected 999.3, found 8014.3)" in r.stdout
    fast = run_preserve("validate", "--fast", simple_bag)
    assert fast.returncode == 1 and "Payload-Oxum" in fast.stdout


@pytest.mark.parametrize("bad", ["data/../../etc/passwd", "../outside.wav", "data/..\\..\\x.wav"])
def test_manifest_line_escaping_the_bag(simple_bag: Path, run_preserve, bad: str) -> None:
    with open(simple_bag / "manifest-sha256.txt", "a") as f:
        f.write(f"{'0' * 64}  {bad}\n")
    _retag(simple_bag)
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1
    assert f"{bad}: manifest-sha256.txt line 4 lists an unsafe path ('..' segment escapes the bag); it was not opened" in r.stdout


@pytest.mark.parametrize("path, reason", [
    ("/etc/passwd", "absolute path"),
    ("C:\\Windows\\system.ini", "Windows drive path"),
    ("c:/boot.ini", "Windows drive path"),
    ("\\\\server\\share\\x.wav", "UNC network path"),
    ("%HomeDrive%\\x.wav", "Windows environment-variable path"),
    ("~/x.wav", "leading '~' (home directory)"),
])
def test_fetch_txt_unsafe_paths(simple_bag: Path, run_preserve, path: str, reason: str) -> None:
    (simple_bag / "fetch.txt").write_text(f"https://example.org/x.wav 10 {path}\n")
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1
    assert f"fetch.txt line 1 names an unsafe path ({reason})" in r.stdout


def test_fetch_items_are_checked_not_downloaded(simple_bag: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere.wav"
    shutil.move(simple_bag / "data" / "a.wav", moved)
    (simple_bag / "fetch.txt").write_text(f"{moved.as_uri()} {moved.stat().st_size} data/a.wav\n")
    report = validate_bag(simple_bag)
    assert [(f.code, f.path) for f in report.errors if f.code != "oxum"] == [("not-fetched", "data/a.wav")]
    report = validate_bag(simple_bag, fetch=True)
    assert [f.code for f in report.errors] == ["oxum"]  # fetched content verified; payload still short
    assert not (simple_bag / "data" / "a.wav").exists(), "--fetch must not write into the bag"
    moved.write_bytes(b"other bytes")
    report = validate_bag(simple_bag, fetch=True)
    assert {f.code for f in report.errors} >= {"fetch", "altered"}


def _bag_by_hand(root: Path, bagit_txt: bytes, manifest: bytes, files: dict[str, bytes],
                 info: bytes | None = None, info_name: str = "bag-info.txt") -> Path:
    (root / "data").mkdir(parents=True)
    (root / "bagit.txt").write_bytes(bagit_txt)
    (root / "manifest-md5.txt").write_bytes(manifest)
    if info is not None:
        (root / info_name).write_bytes(info)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


MD5_HELLO = "5d41402abc4b2a76b9719d911017c592"  # b"hello"


def test_manifests_as_tools_write_them(tmp_path: Path) -> None:
    bag = _bag_by_hand(tmp_path / "b", b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8\r\n",
                       f"{MD5_HELLO}  ./data/a.wav\r\n{MD5_HELLO} *data/b c.wav\r\n".encode(),
                       {"data/a.wav": b"hello", "data/b c.wav": b"hello"})
    report = validate_bag(bag)
    assert report.ok, report.findings
    assert report.files == 2


def test_path_listed_twice(tmp_path: Path) -> None:
    same = f"{MD5_HELLO}  data/a.wav\n{MD5_HELLO}  data/a.wav\n".encode()
    old = _bag_by_hand(tmp_path / "old", b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n", same, {"data/a.wav": b"hello"})
    report = validate_bag(old)
    assert report.ok and [f.code for f in report.warnings] == ["duplicate"]
    new = _bag_by_hand(tmp_path / "new", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n", same, {"data/a.wav": b"hello"})
    assert [f.code for f in validate_bag(new).errors] == ["duplicate"]
    differ = f"{MD5_HELLO}  data/a.wav\n{'f' * 32}  data/a.wav\n".encode()
    old2 = _bag_by_hand(tmp_path / "old2", b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n", differ, {"data/a.wav": b"hello"})
    assert "duplicate" in [f.code for f in validate_bag(old2).errors]


def test_old_bag_with_package_info_and_latin1(tmp_path: Path) -> None:
    name = "données-é.wav"
    bag = _bag_by_hand(tmp_path / "b", b"BagIt-Version: 0.95\nTag-File-Character-Encoding: ISO-8859-1\n",
                       f"{MD5_HELLO}  data/{name}\n".encode("iso-8859-1"), {f"data/{name}": b"hello"},
                       info="Source-Organization: Bibliothèque\nPayload-Oxum: 5.1\n".encode("iso-8859-1"),
                       info_name="package-info.txt")
    report = validate_bag(bag)
    assert report.ok, report.findings
    from preserve.bag.reader import open_bag

    assert open_bag(bag).info_value("Source-Organization") == "Bibliothèque"


def test_utf16_tag_files(tmp_path: Path) -> None:
    bag = _bag_by_hand(tmp_path / "b", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-16\n",
                       f"{MD5_HELLO}  data/ü.wav\n".encode("utf-16"), {"data/ü.wav": b"hello"},
                       info="Payload-Oxum: 5.1\n".encode("utf-16"))
    assert validate_bag(bag).ok


def test_bagit_txt_defects(tmp_path: Path) -> None:
    bom = _bag_by_hand(tmp_path / "bom", b"\xef\xbb\xbfBagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
                       f"{MD5_HELLO}  data/a.wav\n".encode(), {"data/a.wav": b"hello"})
    assert any("byte-order mark" in f.message for f in validate_bag(bom).errors)
    syntax = _bag_by_hand(tmp_path / "syn", b"BagIt-Version:1.0\nTag-File-Character-Encoding: UTF-8\n",
                          f"{MD5_HELLO}  data/a.wav\n".encode(), {"data/a.wav": b"hello"})
    assert any("is not 'Key: value'" in f.message and f.path == "bagit.txt" for f in validate_bag(syntax).errors)


def test_bagit_python_unencoded_percent(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a%25b.wav").write_bytes(b"hello")  # a literal name that looks like an escape
    bagit.make_bag(str(src), checksums=["md5"])  # bags in place, writes '%' unencoded
    report = validate_bag(src)
    assert report.ok, report.findings
    assert [(f.code, f.path) for f in report.warnings] == [("percent-literal", "data/a%25b.wav")]


def test_bag_made_by_bagit_python_validates(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "x y").mkdir(parents=True)
    (src / "x y" / "f.wav").write_bytes(os.urandom(2000))
    bagit.make_bag(str(src), {"Source-Organization": "Elsewhere"}, checksums=["sha256", "sha512"])
    report = validate_bag(src)
    assert report.ok and report.files == 1


def test_not_a_bag(tmp_path: Path, run_preserve) -> None:
    r = run_preserve("validate", tmp_path)
    assert r.returncode == 3
    assert f"{tmp_path}: not a bag: bagit.txt is missing" in r.stderr
    r = run_preserve("validate", tmp_path / "nope")
    assert r.returncode == 3 and "no such file or directory" in r.stderr


def test_name_that_is_not_utf8(simple_bag: Path, run_preserve) -> None:
    bad = os.fsencode(simple_bag / "data") + b"/caf\xe9.wav"  # Latin-1 bytes from an old system
    with open(bad, "wb") as f:
        f.write(b"x")
    report = validate_bag(simple_bag)
    assert sorted((f.code, f.path) for f in report.errors) == [("oxum", "bag-info.txt"), ("unlisted", "data/caf\\xe9.wav")]
    assert any("not valid UTF-8" in f.message for f in report.errors if f.code == "unlisted")
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1 and "data/caf\\xe9.wav" in r.stdout


def test_many_small_files_in_worker_processes_give_the_same_findings(tmp_path: Path) -> None:
    from preserve.bag.writer import create_bag, payload_from_directory
    from preserve.fixity import processes_for

    src = tmp_path / "src"
    for i in range(2100):
        p = src / f"d{i % 13}" / f"f{i}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(64 + i % 500))
    bag = tmp_path / "bag"
    create_bag(bag, payload_from_directory(src))
    assert processes_for(2100, 2100 * 300) > 0  # this bag takes the process path
    flip = bag / "data/d5/f5.wav"
    flip.write_bytes(bytes([flip.read_bytes()[0] ^ 1]) + flip.read_bytes()[1:])
    (bag / "data/d6/f6.wav").unlink()
    in_processes = validate_bag(bag, processes=None)
    in_threads = validate_bag(bag, workers=4)
    key = sorted((f.code, f.path, f.algorithm, f.expected, f.found) for f in in_processes.findings)
    assert key == sorted((f.code, f.path, f.algorithm, f.expected, f.found) for f in in_threads.findings)
    assert {(f.code, f.path) for f in in_processes.errors} == {
        ("altered", "data/d5/f5.wav"), ("missing", "data/d6/f6.wav"), ("oxum", "bag-info.txt")}

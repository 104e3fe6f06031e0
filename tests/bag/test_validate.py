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
    # Once this test fetched a file:// URL; --fetch now refuses every scheme but http(s), and the
    # downloads themselves are tested against a real HTTP server in test_validate_fetch.py.
    moved = tmp_path / "elsewhere.wav"
    shutil.move(simple_bag / "data" / "a.wav", moved)
    (simple_bag / "fetch.txt").write_text(f"{moved.as_uri()} {moved.stat().st_size} data/a.wav\n")
    report = validate_bag(simple_bag)
    # the declared length counts towards Payload-Oxum, so only the missing download is reported
    assert [(f.code, f.path) for f in report.errors] == [("not-fetched", "data/a.wav")]
    report = validate_bag(simple_bag, fetch=True)
    assert [(f.code, f.path) for f in report.errors] == [("fetch", "data/a.wav")]
    assert "fetches only http and https" in report.errors[0].message
    assert not (simple_bag / "data" / "a.wav").exists(), "--fetch must not write into the bag"


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
    bagit.make_bag(str(src), checksums=["md5"])  # bags in place, BagIt 0.97, writes '%' unencoded
    # before BagIt 1.0 '%25' is not an escape at all: the name is read as written, nothing to warn of
    report = validate_bag(src)
    assert report.ok, report.findings
    assert report.warnings == []
    # the same manifest declared 1.0 (as some tools write it): read literally, with a warning
    (src / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    report = validate_bag(src, check_tag_manifests=False)
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


def test_not_a_bag_with_json_still_answers_on_stdout(tmp_path: Path, run_preserve) -> None:
    r = run_preserve("validate", "--json", tmp_path)
    assert r.returncode == 3
    doc = json.loads(r.stdout)
    message = f"{tmp_path}: not a bag: bagit.txt is missing"
    assert doc == {"path": str(tmp_path), "exit": 3, "meaning": "an input is missing, unreadable or malformed",
                   "valid": False, "error": message, "warnings": [], "problems": [message]}
    r = run_preserve("validate", "--json", tmp_path / "nope")
    assert r.returncode == 3 and "no such file or directory" in json.loads(r.stdout)["error"]


def test_fifos_are_reported_never_opened(simple_bag: Path) -> None:
    """A pipe blocks whoever opens it until a writer comes: validation must not wait for ever."""
    import subprocess
    import sys

    for rel in ("data/a.wav", "metadata/xxh3-128.txt", "bag-info.txt"):
        (simple_bag / rel).unlink()
        os.mkfifo(simple_bag / rel)
    code = "import sys; from preserve.cli.main import main; main(['validate', sys.argv[1]])"
    r = subprocess.run([sys.executable, "-c", code, str(simple_bag)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    for rel in ("data/a.wav", "metadata/xxh3-128.txt", "bag-info.txt"):
        assert f"{rel}: is not a regular file (a pipe, device or socket); it was not opened" in r.stdout, r.stdout


def test_symbolic_links_are_reported_never_followed(simple_bag: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.wav"
    outside.write_bytes((simple_bag / "data" / "a.wav").read_bytes())  # same bytes: a followed link would pass
    (simple_bag / "data" / "a.wav").unlink()
    (simple_bag / "data" / "a.wav").symlink_to(outside)
    (simple_bag / "data" / "extra-link.wav").symlink_to("/etc/hostname")
    report = validate_bag(simple_bag)
    odd = sorted((f.code, f.path) for f in report.errors if "symbolic link" in f.message)
    assert odd == [("not-regular", "data/a.wav"), ("not-regular", "data/extra-link.wav")]
    assert ("unlisted", "data/extra-link.wav") in _codes(report)
    assert not [f for f in report.errors if f.code == "altered"], "a link was hashed through"


def test_payload_folder_that_is_a_symbolic_link(simple_bag: Path, tmp_path: Path, run_preserve) -> None:
    shutil.move(simple_bag / "data", tmp_path / "elsewhere")
    (simple_bag / "data").symlink_to(tmp_path / "elsewhere")
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1
    assert "data: the payload directory is a symbolic link; it was not followed" in r.stdout
    # each file the manifests list is reported as behind the link, not read through it
    assert "data/a.wav: is reached through data, a symbolic link, which was not followed" in r.stdout


def test_tag_file_that_is_a_symbolic_link(simple_bag: Path) -> None:
    (simple_bag / "metadata" / "xxh3-128.txt").unlink()
    (simple_bag / "metadata" / "xxh3-128.txt").symlink_to("/etc/hostname")
    report = validate_bag(simple_bag)
    assert _codes(report) == [("not-regular", "metadata/xxh3-128.txt")]


def test_unreadable_folder_is_reported(simple_bag: Path, run_preserve, permissions_apply) -> None:
    sub = simple_bag / "data" / "sub"
    sub.chmod(0)
    try:
        r = run_preserve("validate", simple_bag, preexec_fn=permissions_apply)
    finally:
        sub.chmod(0o755)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "data/sub: the folder cannot be listed (Permission denied)" in r.stdout


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_files_in_a_folder_that_cannot_be_listed_are_not_called_missing(simple_bag: Path, run_preserve,
                                                                         permissions_apply, fast: bool) -> None:
    """What the folder holds is unknown, not lost: its files are not checked (said so, as errors:
    the bag is never 'valid'), and neither is Payload-Oxum, which the unseen files would change."""
    sub = simple_bag / "data" / "sub"
    sub.chmod(0)
    try:
        r = run_preserve("validate", "--json", *(["--fast"] if fast else []), simple_bag, preexec_fn=permissions_apply)
    finally:
        sub.chmod(0o755)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert doc["valid"] is False
    assert [(f["code"], f["path"], f["message"]) for f in doc["findings"]] == [
        ("unreadable", "data/sub", "the folder cannot be listed (Permission denied); what it holds was not checked, "
                                   "nor Payload-Oxum"),
        ("unreadable", "data/sub/b.flac", "not checked: it lies in data/sub, a folder that cannot be listed"),
        ("unreadable", "data/sub/notes.txt", "not checked: it lies in data/sub, a folder that cannot be listed")]


def test_files_that_cannot_be_examined_are_not_called_missing(simple_bag: Path, run_preserve,
                                                               permissions_apply) -> None:
    """A folder that can be listed but not searched (r--): its entries are named, but cannot be
    examined; each is unreadable, once, and Payload-Oxum is not judged."""
    sub = simple_bag / "data" / "sub"
    sub.chmod(0o444)
    try:
        r = run_preserve("validate", "--json", "--fast", simple_bag, preexec_fn=permissions_apply)
    finally:
        sub.chmod(0o755)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert [(f["code"], f["path"], f["message"]) for f in doc["findings"]] == [
        ("unreadable", rel, "cannot be examined (Permission denied); it was not checked, nor Payload-Oxum")
        for rel in ("data/sub/b.flac", "data/sub/notes.txt")]


def test_a_folder_that_cannot_be_listed_under_a_profile_check_is_a_finding_not_a_crash(
        simple_bag: Path, run_preserve, permissions_apply) -> None:
    """The profile's payload rules were checked on a listing that raised (exit 70, a traceback)."""
    sub = simple_bag / "data" / "sub"
    sub.chmod(0)
    try:
        r = run_preserve("validate", "--fast", "--profile", "preserve-audio-aip", simple_bag,
                         preexec_fn=permissions_apply)
    finally:
        sub.chmod(0o755)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "error: data/sub: the folder cannot be listed (Permission denied)" in r.stdout
    assert "listed in the manifest but not found" not in r.stdout



def test_a_required_path_behind_a_folder_that_cannot_be_opened_is_not_called_missing(
        simple_bag: Path, tmp_path: Path, run_preserve, permissions_apply) -> None:
    """Payload-Files-Required: a file (or folder) below a folder that cannot be opened may be there;
    the profile check says that it cannot tell, never that it is missing."""
    profile = json.loads((Path(__file__).parents[2] / "profiles" / "preserve-transfer.json").read_text())
    profile["Payload-Files-Required"] = ["data/sub/b.flac", "data/sub/", "data/gone.wav"]
    path = tmp_path / "needs-sub.json"
    path.write_text(json.dumps(profile))
    sub = simple_bag / "data" / "sub"
    sub.chmod(0)
    try:
        r = run_preserve("validate", "--fast", "--profile", path, simple_bag, preexec_fn=permissions_apply)
    finally:
        sub.chmod(0o755)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for rel in ("data/sub/b.flac", "data/sub/"):
        assert (f"error: {rel}: Payload-Files-Required: {rel} is required, and whether it is there cannot be told: "
                "a folder on its way cannot be opened (Permission denied)") in lines, r.stdout
    assert "error: data/gone.wav: Payload-Files-Required: data/gone.wav is required but missing" in lines
    assert "data/sub/b.flac is required but missing" not in r.stdout

def _drop_line(path: Path, needle: str) -> None:
    path.write_text("".join(ln for ln in path.read_text().splitlines(keepends=True) if needle not in ln))


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line)


def _damage(bag: Path, kind: str) -> None:
    if kind == "missing-from-one-manifest":
        _drop_line(bag / "manifest-sha512.txt", "data/a.wav")
    elif kind == "fetch-not-in-manifests":
        (bag / "fetch.txt").write_text("https://example.org/new.wav 5 data/new.wav\n")
    elif kind == "tag-missing":
        _append(bag / "tagmanifest-sha256.txt", f"{'0' * 64}  metadata/gone.txt\n")
        return
    elif kind == "outside-payload":
        _append(bag / "manifest-sha256.txt", f"{'0' * 64}  other/x.wav\n")
    elif kind == "no-manifest":
        for m in bag.glob("*manifest-*.txt"):
            m.unlink()
        return
    elif kind == "unsupported-algorithm":
        (bag / "manifest-md6.txt").write_text((bag / "manifest-sha256.txt").read_text())
    elif kind.startswith("path:"):
        _append(bag / "manifest-sha256.txt", f"{'0' * 64}  {kind[5:]}\n")
    _retag(bag)


@pytest.mark.parametrize("kind, expected, message", [
    ("missing-from-one-manifest", [("unlisted", "data/a.wav")], "not listed in manifest-sha512.txt"),
    # fetch.txt items are payload, so Payload-Oxum (which leaves this one out) no longer matches
    ("fetch-not-in-manifests", [("fetch", "data/new.wav"), ("fetch", "data/new.wav"), ("not-fetched", "data/new.wav"),
                                ("oxum", "bag-info.txt")],
     "fetch.txt line 1: not listed in manifest-sha256.txt"),
    ("tag-missing", [("tag-missing", "metadata/gone.txt")], "listed in a tag manifest but not found"),
    ("outside-payload", [("outside-payload", "other/x.wav")], "manifest-sha256.txt line 4 lists a path outside data/"),
    ("no-manifest", [("no-manifest", None)], "the bag has no payload manifest"),
    ("unsupported-algorithm", [("unsupported-algorithm", "manifest-md6.txt")], "uses an algorithm preserve cannot compute"),
    ("path:/etc/passwd", [("unsafe-path", "/etc/passwd")], "unsafe path (absolute path)"),
    ("path:C:\\Windows\\system.ini", [("unsafe-path", "C:\\Windows\\system.ini")], "unsafe path (Windows drive path)"),
    ("path:d:/x.wav", [("unsafe-path", "d:/x.wav")], "unsafe path (Windows drive path)"),
    ("path:\\\\server\\share\\x.wav", [("unsafe-path", "\\\\server\\share\\x.wav")], "unsafe path (UNC network path)"),
    ("path://server/share/x.wav", [("unsafe-path", "//server/share/x.wav")], "unsafe path (UNC network path)"),
])
def test_validator_findings(simple_bag: Path, run_preserve, kind: str, expected, message: str) -> None:
    _damage(simple_bag, kind)
    report = validate_bag(simple_bag)
    assert _codes(report) == sorted(expected, key=lambda e: (e[0], e[1] or ""))
    assert any(message in f.message for f in report.errors), report.errors
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1 and message in r.stdout


def test_only_warnings_exit_0(tmp_path: Path, run_preserve) -> None:
    same = f"{MD5_HELLO}  data/a.wav\n{MD5_HELLO}  data/a.wav\n".encode()
    bag = _bag_by_hand(tmp_path / "old", b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n", same, {"data/a.wav": b"hello"})
    r = run_preserve("validate", bag)
    assert r.returncode == 0, r.stdout
    assert "warning: data/a.wav: listed 2 times in manifest-md5.txt with the same digest" in r.stderr
    assert "valid (1 files" in r.stdout and "1 warning(s)" in r.stdout
    r = run_preserve("validate", "--json", bag)
    assert r.returncode == 0 and json.loads(r.stdout)["valid"] is True


def test_path_listed_twice_in_a_tag_manifest(simple_bag: Path, tmp_path: Path) -> None:
    tm = simple_bag / "tagmanifest-sha256.txt"
    original = tm.read_text()
    info_line = next(ln for ln in original.splitlines() if ln.endswith("  bag-info.txt"))
    _append(tm, info_line + "\n")
    report = validate_bag(simple_bag)
    assert [(f.code, f.path, f.algorithm) for f in report.errors] == [("duplicate", "bag-info.txt", "sha256")]
    assert "with the same digest" in report.errors[0].message
    tm.write_text(original + f"{'f' * 64}  bag-info.txt\n")
    report = validate_bag(simple_bag)
    assert [(f.code, f.path) for f in report.errors] == [("duplicate", "bag-info.txt")]
    assert "with different digests" in report.errors[0].message
    old = _bag_by_hand(tmp_path / "old", b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
                       f"{MD5_HELLO}  data/a.wav\n".encode(), {"data/a.wav": b"hello"})
    import hashlib

    digest = hashlib.md5((old / "bagit.txt").read_bytes()).hexdigest()
    (old / "tagmanifest-md5.txt").write_text(f"{digest}  bagit.txt\n{digest}  bagit.txt\n")
    report = validate_bag(old)
    assert report.ok and [(f.code, f.path) for f in report.warnings] == [("duplicate", "bagit.txt")]


def test_tag_files_split_lines_only_at_cr_and_lf(tmp_path: Path) -> None:
    from preserve.bag.tagfiles import parse_bag_info, parse_fetch

    items, problems = parse_bag_info("Title: Side\u2028A\r\nNote: a\x85b\x0cc\rExternal-Description: one\n  two\n")
    assert items == [("Title", "Side\u2028A"), ("Note", "a\x85b\x0cc"), ("External-Description", "one two")]
    assert problems == []
    entries, problems = parse_fetch("https://example.org/x 5 data/a\u2029b.wav\r\nhttps://example.org/y - data/c\x1ed.wav\n")
    assert [(e.path, e.line) for e in entries] == [("data/a\u2029b.wav", 1), ("data/c\x1ed.wav", 2)] and problems == []
    bag = _bag_by_hand(tmp_path / "b", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
                       f"{MD5_HELLO}  data/a\u2028b.wav\n".encode(), {"data/a\u2028b.wav": b"hello"},
                       info="Title: Side\u2028A\nPayload-Oxum: 5.1\n".encode())
    report = validate_bag(bag)
    assert report.ok and not report.warnings, report.findings


def test_a_link_outside_data_is_reported_even_when_no_tag_manifest_lists_it(simple_bag: Path, run_preserve,
                                                                             tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_text("not part of the bag")
    (simple_bag / "metadata").mkdir(exist_ok=True)
    (simple_bag / "metadata" / "note.txt").symlink_to(tmp_path / "elsewhere.txt")
    r = run_preserve("validate", simple_bag)
    assert r.returncode == 1
    assert "metadata/note.txt" in r.stdout and "symbolic link" in r.stdout

"""``store validate`` agrees with ocfl-py's validator (the reference implementation) on every
object the tests make, good and bad.

ocfl-py 2.1.0 cannot share this venv (its s3fs pins a botocore that boto3 here does not accept),
so it gets a venv of its own, made once and kept under the user's cache folder keyed by its
version; a file lock stops two xdist workers from building it at the same time. Every test that
runs it is in this file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from preserve.ocfl import ingest
from preserve.ocfl.layout import init_root, open_root
from preserve.ocfl.validate import validate_object

OCFL_PY = "ocfl-py==2.1.0"
_CODE = re.compile(r"^\[([EW]\d{3})[a-z]?\]", re.MULTILINE)

pytestmark = pytest.mark.slow


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "preserve-tests" / OCFL_PY.replace("==", "-")


@pytest.fixture(scope="session")
def ocfl_validate() -> Path:
    """The ``ocfl-validate.py`` of a venv holding only ocfl-py, built once and reused across runs."""
    venv = _cache()
    script = venv / "bin" / "ocfl-validate.py"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here, then find it made
        if not (venv / "ready").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
            done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", OCFL_PY],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"could not install {OCFL_PY} into {venv}: {done.stderr[-2000:]}")
            (venv / "ready").write_text(OCFL_PY + "\n")
    return script


Verdict = tuple[bool, set[str], set[str]]
_VERDICT = re.compile(r"^OCFL v[\d.]+ Object at (.+) is (VALID|INVALID)$")
_NOT_AN_OBJECT = re.compile(r"^Bad path '(.+)' \(no 0= declaration file\)$")


def ocflpy(script: Path, objects: list[Path]) -> dict[Path, Verdict]:
    """ocfl-py's verdict on each object (one process for all, it reports them one by one):
    valid?, error codes, warning codes (the letters it adds to a code dropped)."""
    done = subprocess.run([str(script.parent / "python"), str(script), *map(str, objects)], capture_output=True,
                          text=True, timeout=600)
    verdicts: dict[Path, Verdict] = {}
    codes: set[str] = set()
    for line in done.stdout.splitlines():
        if m := _CODE.match(line):
            codes.add(m.group(1))
        elif m := _VERDICT.match(line):
            verdicts[Path(m.group(1))] = (m.group(2) == "VALID", {c for c in codes if c[0] == "E"},
                                          {c for c in codes if c[0] == "W"})
            codes = set()
        elif m := _NOT_AN_OBJECT.match(line):
            verdicts[Path(m.group(1))] = (False, {"E003"}, set())  # not even recognized as an object
    assert set(verdicts) == set(objects), done.stdout + done.stderr
    return verdicts


def ours(obj: Path) -> Verdict:
    report = validate_object(obj)
    return report.ok, {f.code for f in report.errors}, {f.code for f in report.warnings}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """One object ingested by preserve, copied by each test that damages it."""
    base = tmp_path_factory.mktemp("ocflpy")
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.wav").write_bytes(b"RIFF" + bytes(range(256)) * 40)
    (src / "sub" / "b.flac").write_bytes(b"fLaC" + bytes(range(200)) * 10)
    (src / "same.wav").write_bytes(b"same\n")
    (src / "sub" / "same-again.wav").write_bytes(b"same\n")
    from preserve.bag.writer import create_bag, payload_from_directory

    create_bag(base / "bag", payload_from_directory(src), info=[("External-Identifier", "urn:example:ocflpy")])
    init_root(base / "store")
    result = ingest(base / "store", base / "bag", user="Test Curator", address="mailto:curator@example.org")
    return result.object_path


def _rewrite(obj: Path, change: Callable[[dict[str, Any]], None], *, version_copy: bool = True) -> None:
    """Edit the root inventory (and the head version's copy), with correct sidecars."""
    inv = json.loads((obj / "inventory.json").read_text())
    change(inv)
    data = (json.dumps(inv, indent=2) + "\n").encode()
    folders = [obj] + ([obj / inv["head"]] if version_copy and (obj / inv["head"]).is_dir() else [])
    for folder in folders:
        (folder / "inventory.json").write_bytes(data)
        (folder / "inventory.json.sha512").write_text(f"{hashlib.sha512(data).hexdigest()}  inventory.json\n")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _gap(obj: Path) -> None:
    shutil.copytree(obj / "v1", obj / "v3")
    (obj / "v3" / "content" / "extra.txt").parent.mkdir(exist_ok=True)

    def change(inv: dict[str, Any]) -> None:
        inv["versions"]["v3"] = json.loads(json.dumps(inv["versions"]["v1"]))
        inv["head"] = "v3"
        for digest, paths in inv["manifest"].items():
            inv["manifest"][digest] = paths + [p.replace("v1/", "v3/", 1) for p in paths]

    _rewrite(obj, change)


def _state_digest_not_in_manifest(obj: Path) -> None:
    def change(inv: dict[str, Any]) -> None:
        inv["versions"]["v1"]["state"]["f" * 128] = ["data/ghost.wav"]

    _rewrite(obj, change)


def _unused_manifest_digest(obj: Path) -> None:
    (obj / "v1" / "content" / "orphan.bin").write_bytes(b"orphan")

    def change(inv: dict[str, Any]) -> None:
        inv["manifest"][hashlib.sha512(b"orphan").hexdigest()] = ["v1/content/orphan.bin"]

    _rewrite(obj, change)


def _xxh3_fixity(obj: Path) -> None:
    def change(inv: dict[str, Any]) -> None:
        first = next(iter(inv["manifest"].values()))[0]
        inv["fixity"] = {"xxh3-128": {"0" * 32: [first]}}

    _rewrite(obj, change)


def _id(value: str) -> Callable[[Path], None]:
    def damage(obj: Path) -> None:
        _rewrite(obj, lambda inv: inv.__setitem__("id", value))

    return damage


def _id_differs_in_version(obj: Path) -> None:
    _rewrite(obj, lambda inv: inv.__setitem__("id", "urn:example:other"), version_copy=False)


def _missing_content(obj: Path) -> None:
    (obj / "v1" / "content" / "data" / "a.wav").unlink()


def _bad_created(obj: Path) -> None:
    _rewrite(obj, lambda inv: inv["versions"]["v1"].__setitem__("created", "yesterday"))


def _updated(obj: Path) -> None:
    """The object through every writing command preserve has: the result must stay valid."""
    from preserve.ocfl.retire import deaccession, purge
    from preserve.ocfl.update import update

    root = obj.parent / f"{obj.name}-root"
    init_root(root)
    target = open_root(root).object_path("urn:example:ocflpy")
    target.parent.mkdir(parents=True)
    obj.rename(target)
    bag = obj.parent / f"{obj.name}-bag"
    from preserve.bag.writer import create_bag, payload_from_directory

    src = obj.parent / f"{obj.name}-src"
    src.mkdir()
    (src / "a.wav").write_bytes(b"RIFF" + bytes(range(256)) * 40)  # unchanged: not stored again
    (src / "new.wav").write_bytes(b"RIFF new track")
    create_bag(bag, payload_from_directory(src))
    update(root, "urn:example:ocflpy", source=bag, reason="track added", operator="Ann", address="mailto:a@example.org")
    update(root, "urn:example:ocflpy", remove=("new.wav",), reason="wrong track", operator="Ann",
           address="mailto:a@example.org")
    deaccession(root, "urn:example:ocflpy", reason="withdrawn", authority="Committee", operator="Ann",
                address="mailto:a@example.org")
    purge(root, "urn:example:ocflpy", "data/sub/b.flac", reason="takedown", authority="Court", operator="Ann",
          confirm=True)
    target.rename(obj)


#: name -> (damage, the code both validators must report; None for a valid object)
CASES: dict[str, tuple[Callable[[Path], None] | None, str | None]] = {
    "as-ingested": (None, None),
    "updated-removed-deaccessioned-purged": (_updated, None),
    "wrong-content-digest": (lambda o: _flip(o / "v1" / "content" / "data" / "a.wav"), "E092"),
    "missing-root-sidecar": (lambda o: (o / "inventory.json.sha512").unlink(), "E058"),
    "root-sidecar-wrong": (lambda o: (o / "inventory.json.sha512").write_text("0" * 128 + "  inventory.json\n"), "E060"),
    "extra-file-in-object-root": (lambda o: (o / "notes.txt").write_text("hello\n"), "E001"),
    "extra-folder-in-object-root": (lambda o: (o / "staging").mkdir(), "E001"),
    "lock-file-in-object-root": (lambda o: (o / ".lock").write_text(""), "E001"),
    "file-directly-in-extensions": (lambda o: (o / "extensions").mkdir() or (o / "extensions" / "x").write_text(""), "E067"),
    "version-gap": (_gap, "E010"),
    "empty-id": (_id(""), "E037"),
    "id-not-a-uri": (_id("plain-id"), None),
    "id-differs-between-inventories": (_id_differs_in_version, "E064"),
    "missing-declaration": (lambda o: (o / "0=ocfl_object_1.1").unlink(), "E003"),
    "declaration-content": (lambda o: (o / "0=ocfl_object_1.1").write_text("ocfl_object_1.0\n"), "E007"),
    "missing-content-file": (_missing_content, "E092"),
    "file-not-in-manifest": (lambda o: (o / "v1" / "content" / "stray.txt").write_text("x"), "E023"),
    "file-in-version-folder": (lambda o: (o / "v1" / "stray.txt").write_text("x"), "E015"),
    "state-digest-not-in-manifest": (_state_digest_not_in_manifest, "E050"),
    "manifest-digest-unused": (_unused_manifest_digest, "E107"),
    "xxh3-key-in-fixity": (_xxh3_fixity, "E056"),
    "bad-created-date": (_bad_created, "E049"),
    "missing-root-inventory": (lambda o: (o / "inventory.json").unlink(), "E063"),
}


@pytest.fixture(scope="module")
def judged(template: Path, tmp_path_factory: pytest.TempPathFactory, ocfl_validate: Path) -> dict[str, tuple[Path, Verdict]]:
    """Every case's object, damaged as the case says, with ocfl-py's verdict on it."""
    base = tmp_path_factory.mktemp("cases")
    objects: dict[str, Path] = {}
    for case, (damage, _code) in CASES.items():
        obj = objects[case] = base / case
        shutil.copytree(template, obj)
        if damage is not None:
            damage(obj)
    verdicts = ocflpy(ocfl_validate, list(objects.values()))
    return {case: (obj, verdicts[obj]) for case, obj in objects.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_agrees_with_ocfl_py(case: str, judged: dict[str, tuple[Path, Verdict]]) -> None:
    obj, (theirs_ok, theirs_errors, theirs_warnings) = judged[case]
    our_ok, our_errors, our_warnings = ours(obj)
    code = CASES[case][1]
    assert our_ok == theirs_ok, (case, our_errors, theirs_errors)
    if code is None:
        assert our_ok and theirs_ok
        assert our_warnings == theirs_warnings, (case, our_warnings, theirs_warnings)
    else:
        assert code in our_errors and code in theirs_errors, (case, our_errors, theirs_errors)
    # never an error the reference does not see (it may add consequences of the same damage)
    assert our_errors <= theirs_errors, (case, our_errors, theirs_errors)
    if case == "updated-removed-deaccessioned-purged":
        assert "W013" in our_warnings  # the purge record's folder under extensions/
    if case == "id-not-a-uri":
        assert "W005" in our_warnings and "W005" in theirs_warnings


def test_the_cli_reports_the_code_and_exit_1(template: Path, tmp_path: Path, run_preserve: Callable[..., Any]) -> None:
    obj = tmp_path / "object"
    shutil.copytree(template, obj)
    _flip(obj / "v1" / "content" / "data" / "a.wav")
    done = run_preserve("store", "validate", obj, "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["valid"] is False
    assert [f["code"] for f in report["objects"][0]["findings"] if f["severity"] == "error"] == ["E092"]
    fast = run_preserve("store", "validate", obj, "--fast")
    assert fast.returncode == 0  # no digest is computed in the fast check


def test_a_metadata_correction_passes_ocfl_py(tmp_path: Path, ocfl_validate: Path) -> None:
    """A version made by ``store update --sheet`` (new sidecars, the payload referenced, not copied)."""
    from preserve.ocfl.correct import correct
    from preserve.package import package_collection
    from tests.intake.conftest import Collection

    coll = Collection(tmp_path / "coll")
    package_collection(coll.root, tmp_path / "bag", operator="Ann")
    init_root(tmp_path / "store")
    obj = ingest(tmp_path / "store", tmp_path / "bag", object_id="urn:example:corrected", user="Ann",
                 address="mailto:a@example.org").object_path
    sheet = tmp_path / "corrected.csv"
    sheet.write_text("\n".join([coll.header, "one.wav,One (corrected),Ann", *coll.rows[1:]]) + "\n", encoding="utf-8")
    correct(tmp_path / "store", "urn:example:corrected", sheet=sheet, reason="title corrected", operator="Ben",
            address="mailto:b@example.org")
    theirs = ocflpy(ocfl_validate, [obj])[obj]
    assert theirs == (True, set(), set()), theirs
    assert ours(obj) == theirs

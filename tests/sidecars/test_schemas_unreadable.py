"""Schemas that cannot be used say nothing about a bag: validate and unpack exit 8 naming the
file, never call a good bag invalid (exit 1)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from preserve.serialize import write_archive

SHARED = Path(__file__).resolve().parents[3] / "shared" / "schemas"
BROKEN = "premis-v3-0.xsd"


def missing(folder: Path) -> None:
    (folder / BROKEN).unlink()


def a_folder(folder: Path) -> None:
    """Unreadable, for root too."""
    (folder / BROKEN).unlink()
    (folder / BROKEN).mkdir()


def not_xml(folder: Path) -> None:
    (folder / BROKEN).write_bytes(b"\x00\x01 this is not a schema")


BREAKS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (missing, f"{BROKEN}: missing; the folder must hold the official {BROKEN}"),
    "a-folder": (a_folder, f"{BROKEN}: cannot be read (Is a directory)"),
    "not-xml": (not_xml, f"{BROKEN}: SHA-256 "),
}


@pytest.fixture(scope="module")
def good_bag(tmp_path_factory: pytest.TempPathFactory, kit: Any) -> Path:
    root = tmp_path_factory.mktemp("pkg")
    col, payload = kit.make_collection(root / "src", 2)
    return kit.package(root / "bag", col, payload)  # type: ignore[no-any-return]


def schemas(tmp_path: Path, breaking: str | None) -> Path:
    folder = tmp_path / "schemas"
    shutil.copytree(SHARED, folder)
    if breaking is not None:
        BREAKS[breaking][0](folder)
    return folder


def with_schemas(folder: Path) -> dict[str, str]:
    return {**os.environ, "PRESERVE_SCHEMAS": str(folder)}


def test_good_schemas_pass_a_good_bag(good_bag: Path, tmp_path: Path, run_preserve: Any) -> None:
    r = run_preserve("validate", good_bag, env=with_schemas(schemas(tmp_path, None)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "not installed" not in r.stderr  # the schemas were used


@pytest.mark.parametrize("breaking", list(BREAKS))
@pytest.mark.parametrize("form", ["folder", "zip"])
def test_unusable_schemas_exit_8_naming_the_file(good_bag: Path, tmp_path: Path, run_preserve: Any, breaking: str,
                                                 form: str) -> None:
    folder = schemas(tmp_path, breaking)
    target = good_bag if form == "folder" else write_archive(good_bag, tmp_path / "bag.zip", "zip")
    r = run_preserve("validate", target, env=with_schemas(folder))
    assert r.returncode == 8, r.stdout + r.stderr
    assert f"{folder / BROKEN}" in r.stderr and BREAKS[breaking][1] in r.stderr
    assert "INVALID" not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert "run `preserve schemas install` again" in r.stderr


def test_schemas_folder_that_does_not_exist_exits_8(good_bag: Path, tmp_path: Path, run_preserve: Any) -> None:
    folder = tmp_path / "nowhere"
    r = run_preserve("validate", good_bag, env=with_schemas(folder))
    assert r.returncode == 8, r.stdout + r.stderr
    assert f"{folder / 'mets-1.12.1.xsd'}: missing" in r.stderr
    assert "INVALID" not in r.stdout + r.stderr


def test_unpack_with_unusable_schemas_exits_8_and_leaves_nothing(good_bag: Path, tmp_path: Path, run_preserve: Any) -> None:
    archive = write_archive(good_bag, tmp_path / "bag.tar", "tar")
    out = tmp_path / "out"
    out.mkdir()
    r = run_preserve("unpack", archive, out / "bag", env=with_schemas(schemas(tmp_path, "a-folder")))
    assert r.returncode == 8, r.stdout + r.stderr
    assert f"{tmp_path / 'schemas' / BROKEN}: cannot be read" in r.stderr
    assert [p.name for p in out.iterdir() if not p.name.endswith(".preserve-lock")] == []


def installed(tmp_path: Path, run_preserve: Any, dest: Path) -> Path:
    r = run_preserve("schemas", "install", "--from", SHARED, "--dest", dest)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest


@pytest.mark.parametrize("mode", [0, 0o644])  # neither listed nor entered; listed but not entered
def test_unreadable_schemas_folder_exits_8_naming_the_folder(good_bag: Path, tmp_path: Path, run_preserve: Any,
                                                             permissions_apply: Any, mode: int) -> None:
    folder = installed(tmp_path, run_preserve, tmp_path / "shared-schemas")
    os.chmod(folder, mode)
    try:
        r = run_preserve("validate", good_bag, env=with_schemas(folder), preexec_fn=permissions_apply)
    finally:
        os.chmod(folder, 0o755)
    assert r.returncode == 8, r.stdout + r.stderr
    said = " ".join(r.stderr.split())
    assert (f"{folder}: the schemas folder cannot be opened (Permission denied); make it readable and searchable "
            "by the user running preserve") in said
    assert "mets-1.12.1.xsd" not in said and "INVALID" not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert "run `preserve schemas install` again" in said


def test_unreadable_installed_schemas_folder_exits_8_naming_the_folder(good_bag: Path, tmp_path: Path,
                                                                       run_preserve: Any,
                                                                       permissions_apply: Any) -> None:
    """The installed folder (found in the user data folder, not through $PRESERVE_SCHEMAS)."""
    data = tmp_path / "data"
    folder = installed(tmp_path, run_preserve, data / "preserve" / "schemas")
    env = {k: v for k, v in os.environ.items() if k != "PRESERVE_SCHEMAS"}
    env["XDG_DATA_HOME"] = str(data)
    assert run_preserve("validate", good_bag, env=env).returncode == 0
    os.chmod(folder, 0)
    try:
        r = run_preserve("validate", good_bag, env=env, preexec_fn=permissions_apply)
    finally:
        os.chmod(folder, 0o755)
    assert r.returncode == 8, r.stdout + r.stderr
    assert f"{folder}: the schemas folder cannot be opened (Permission denied)" in " ".join(r.stderr.split())
    assert "INVALID" not in r.stdout + r.stderr and "Traceback" not in r.stderr


def test_unreadable_schema_file_in_a_readable_folder_names_the_file(good_bag: Path, tmp_path: Path,
                                                                    run_preserve: Any, permissions_apply: Any) -> None:
    folder = installed(tmp_path, run_preserve, tmp_path / "shared-schemas")
    os.chmod(folder / BROKEN, 0)
    try:
        r = run_preserve("validate", good_bag, env=with_schemas(folder), preexec_fn=permissions_apply)
    finally:
        os.chmod(folder / BROKEN, 0o644)
    assert r.returncode == 8, r.stdout + r.stderr
    assert f"{folder / BROKEN}: cannot be read (Permission denied)" in " ".join(r.stderr.split())

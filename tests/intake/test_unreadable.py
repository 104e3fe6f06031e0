"""Intake never skips what it cannot read: an unlistable folder or an unreadable file stops packaging.

Root reads everything, so these tests run the real ``preserve`` command with the file permissions
applied to it (``permissions_apply`` drops root's read override in the subprocess only): a folder
with mode 000 is then really unreadable, as it is for any curator's account.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import Collection

Run = Callable[..., subprocess.CompletedProcess[str]]


@contextmanager
def unreadable(path: Path) -> Iterator[None]:
    mode = path.stat().st_mode & 0o7777
    path.chmod(0)
    try:
        yield
    finally:
        path.chmod(mode)


def test_check_refuses_a_folder_it_cannot_list(collection: Collection, run_preserve: Run, permissions_apply: object) -> None:
    with unreadable(collection.root / "side b"):
        r = run_preserve("check", collection.root, preexec_fn=permissions_apply)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "error: side b/: the folder cannot be listed (Permission denied); its files can be neither checked nor packaged" in r.stdout
    # the row naming a file inside it says why the file cannot be checked, not that it does not exist
    assert ("error: metadata.csv row 2 (side b/two.wav): the folder side b/ cannot be listed (Permission denied), "
            "so this file cannot be checked") in r.stdout
    assert "no such file" not in r.stdout
    assert "ready to package" not in r.stdout


def test_package_refuses_a_folder_it_cannot_list(collection: Collection, run_preserve: Run, permissions_apply: object,
                                                 tmp_path: Path) -> None:
    dest = tmp_path / "aip"
    with unreadable(collection.root / "side b"):
        r = run_preserve("package", "--no-profile", collection.root, dest, preexec_fn=permissions_apply)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "side b/: the folder cannot be listed (Permission denied)" in r.stderr
    assert "not packaged" in r.stderr
    assert not dest.exists()


def test_check_json_names_the_unlistable_folder(collection: Collection, run_preserve: Run, permissions_apply: object) -> None:
    import json

    with unreadable(collection.root / "side b"):
        r = run_preserve("check", "--json", collection.root, preexec_fn=permissions_apply)
    assert r.returncode == 1
    problems = json.loads(r.stdout)["problems"]
    assert [(p["code"], p["file"], p["row"]) for p in problems if p["code"] == "unreadable"] == [
        ("unreadable", "side b", None), ("unreadable", "side b/two.wav", 2)]


def test_check_refuses_a_rights_document_it_cannot_read(collection: Collection, run_preserve: Run,
                                                        permissions_apply: object, tmp_path: Path) -> None:
    with unreadable(collection.root / "rights" / "agreement.txt"):
        checked = run_preserve("check", collection.root, preexec_fn=permissions_apply)
        packaged = run_preserve("package", "--no-profile", collection.root, tmp_path / "aip", preexec_fn=permissions_apply)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "error: rights/agreement.txt: cannot be read (Permission denied); it can be neither checked nor packaged" in checked.stdout
    # refused by the check (exit 1, nothing written), not by a copy that fails half-way
    assert packaged.returncode == 1, packaged.stderr
    assert "rights/agreement.txt: cannot be read (Permission denied)" in packaged.stderr
    assert not (tmp_path / "aip").exists()


def test_an_unreadable_audio_file_is_named_once(collection: Collection, run_preserve: Run, permissions_apply: object) -> None:
    with unreadable(collection.root / "one.wav"):
        r = run_preserve("check", collection.root, preexec_fn=permissions_apply)
    assert r.returncode == 1
    assert r.stdout.count("one.wav: cannot be read (Permission denied)") == 1, r.stdout


def test_an_unlistable_folder_an_ignore_pattern_leaves_out_is_no_problem(collection: Collection, run_preserve: Run,
                                                                         permissions_apply: object) -> None:
    (collection.root / "work").mkdir()
    (collection.root / "work" / "draft.txt").write_text("notes\n", encoding="utf-8")
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace("[collection]\n", '[collection]\nignore = ["work/*"]\n'),
                                                     encoding="utf-8")
    with unreadable(collection.root / "work"):
        r = run_preserve("check", "--no-profile", collection.root, preexec_fn=permissions_apply)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: work/: matches an ignore pattern, left out of the package" in r.stdout

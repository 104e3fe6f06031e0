"""``store init``: an OCFL 1.1 storage root with its layout extension, and what it refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from preserve.ocfl.layout import FLAT, HASHED, open_root


def test_init_writes_declaration_spec_text_and_hashed_layout(tmp_path: Path, cli: Callable[..., Result]) -> None:
    root = tmp_path / "root"
    result = cli("store", "init", root)
    assert result.exit_code == 0, result.output
    assert (root / "0=ocfl_1.1").read_bytes() == b"ocfl_1.1\n"
    assert "https://ocfl.io/1.1/spec/" in (root / "ocfl_1.1.md").read_text()
    layout = json.loads((root / "ocfl_layout.json").read_text())
    assert layout["extension"] == HASHED and layout["description"]
    config = json.loads((root / "extensions" / HASHED / "config.json").read_text())
    assert config == {"extensionName": HASHED, "digestAlgorithm": "sha256", "tupleSize": 3, "numberOfTuples": 3,
                      "shortObjectRoot": False}


def test_hashed_layout_places_objects_as_published_examples_do(tmp_path: Path, cli: Callable[..., Result]) -> None:
    # Fedora 6 documents this mapping for its default 0004 configuration
    cli("store", "init", tmp_path / "root")
    root = open_root(tmp_path / "root")
    assert root.object_relpath("info:fedora/foo/bar") == (
        "70c/b11/831/70cb11831eda669bfa7ccbe0996d3df06186f47a6f3544cabff61b3f79509d73")


def test_flat_layout_option(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli("store", "init", tmp_path / "root", "--layout", FLAT)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "root" / "ocfl_layout.json").read_text())["extension"] == FLAT
    assert json.loads((tmp_path / "root" / "extensions" / FLAT / "config.json").read_text()) == {"extensionName": FLAT}
    root = open_root(tmp_path / "root")
    assert root.object_path("object-01") == tmp_path / "root" / "object-01"


def test_refuses_a_non_empty_folder_that_is_not_a_root(tmp_path: Path, run_preserve: Callable[..., object]) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / "song.wav").write_bytes(b"RIFF")
    done = run_preserve("store", "init", folder)
    assert done.returncode == 2, done.stderr  # type: ignore[attr-defined]
    assert "not empty" in done.stderr and "not an OCFL storage root" in done.stderr  # type: ignore[attr-defined]
    assert sorted(p.name for p in folder.iterdir()) == ["song.wav"]


def test_refuses_an_existing_root_and_accepts_an_empty_folder(tmp_path: Path, run_preserve: Callable[..., object]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_preserve("store", "init", empty).returncode == 0  # type: ignore[attr-defined]
    again = run_preserve("store", "init", empty)
    assert again.returncode == 4 and "already an OCFL storage root" in again.stderr  # type: ignore[attr-defined]

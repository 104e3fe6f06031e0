"""Fixtures for profile tests: writing profiles (ours, in the style of the specification's Foo and Bar
examples, kept in data/) and making bags to check against them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from preserve.bag.writer import StagedBag, create_bag, payload_from_directory
from preserve.serialize import finalizer


@pytest.fixture
def write_profile(tmp_path: Path) -> Callable[..., Path]:
    """Write a profile dict (deep-copied, optionally changed by ``edit``) to a JSON file."""

    def write(base: dict[str, Any], edit: Callable[[dict[str, Any]], None] | None = None, name: str = "profile.json") -> Path:
        data = copy.deepcopy(base)
        if edit is not None:
            edit(data)
        path = tmp_path / name
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path

    return write


def _dock_tags(staged: StagedBag) -> None:
    (staged.path / "dock").mkdir()
    (staged.path / "dock" / "first-node.txt").write_text("north\n", encoding="utf-8")
    (staged.path / "dock" / "registry").write_text("registry entry\n", encoding="utf-8")


@pytest.fixture
def make_bag(tmp_path: Path) -> Callable[..., Path]:
    """A bag from a few payload files: ``files`` (relative to data/), algorithms, info, extra tag
    files (``dock=True`` adds the Bar-style tag files), ``serialize`` (tar, tar.gz, zip)."""

    def make(name: str, files: dict[str, bytes], *, algorithms: tuple[str, ...] = ("sha256",),
             info: list[tuple[str, str]] | None = None, dock: bool = False, serialize: str | None = None) -> Path:
        src = tmp_path / f"{name}-src"
        for rel, data in files.items():
            p = src / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        src.mkdir(exist_ok=True)
        dest = tmp_path / (name + ({"tar": ".tar", "tar.gz": ".tar.gz", "zip": ".zip"}[serialize] if serialize else ""))
        create_bag(dest, payload_from_directory(src), algorithms=algorithms, info=info or [],
                   extra_tags=_dock_tags if dock else None, finalize=finalizer(serialize) if serialize else None)
        return dest

    return make



"""Fixtures for the OCFL store tests: real bags made by the bag writer, real storage roots."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.bag.writer import create_bag, payload_from_directory
from preserve.ocfl.layout import init_root

MakeBag = Callable[..., Path]


@pytest.fixture
def make_bag(tmp_path: Path) -> MakeBag:
    """A bag made by preserve's bag writer from ``files`` (default: two audio-like files, a duplicate
    and a text file), with sha256 and sha512 manifests unless ``algorithms`` says otherwise."""

    def make(name: str = "bag", files: dict[str, bytes] | None = None, *,
             info: list[tuple[str, str]] | None = None, algorithms: tuple[str, ...] = ("sha256", "sha512")) -> Path:
        src = tmp_path / f"{name}-src"
        files = files if files is not None else {
            "a.wav": b"RIFF" + os.urandom(6000), "sub/b.flac": b"fLaC" + os.urandom(3000),
            "sub/copy-of-a.wav": b"same bytes\n", "same.wav": b"same bytes\n", "notes.txt": b"notes\n"}
        for rel, data in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)
        bag = tmp_path / name
        create_bag(bag, payload_from_directory(src), algorithms=list(algorithms),
                   info=info if info is not None else [("Source-Organization", "Test Archive")])
        return bag

    return make


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    init_root(root)
    return root


def sha512(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` and its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

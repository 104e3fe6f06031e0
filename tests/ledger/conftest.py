"""Helpers for the ledger tests."""

from __future__ import annotations

from pathlib import Path

from preserve.bag.writer import PayloadEntry, create_bag


def one_file_bag(root: Path, name: str, data: bytes) -> Path:
    """A bag made by preserve at ``root/archive/name`` holding ``data`` as objects/a.wav."""
    src = root / "src" / name
    src.mkdir(parents=True)
    (src / "a.wav").write_bytes(data)
    dest = root / "archive" / name
    create_bag(dest, [PayloadEntry(src / "a.wav", "objects/a.wav")], info=[("External-Identifier", f"id-{name}")])
    return dest

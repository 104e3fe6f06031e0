"""A packaged bag with holes (fetch.txt) is valid under ``validate --fetch`` once every item matches:
the METS checks count a fetched item as they count a file on disk."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from preserve.sidecars.check import check_sidecars


def test_holey_package_is_valid_with_fetch(tmp_path: Path, kit: Any, served: tuple[Path, str], run_preserve) -> None:
    col, payload = kit.make_collection(tmp_path / "src", 3)
    bag = kit.package(tmp_path / "bag", col, payload)
    root, base = served
    holes = ["data/objects/release 000/z track #0.flac", "data/submission/metadata.csv"]
    lines = []
    for rel in holes:
        name = Path(rel).name
        size = (bag / rel).stat().st_size
        shutil.move(bag / rel, root / name)
        lines.append(f"{base}{quote(name)} {size} {rel}\n")  # BagIt paths are not URL-encoded
    (bag / "fetch.txt").write_text("".join(lines))

    assert not [f for f in check_sidecars(bag) if f.severity == "error"], "fetched items count as payload"
    r = run_preserve("validate", "--fetch", bag)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_preserve("validate", bag)
    assert r.returncode == 1
    assert sorted(ln.split(": ")[1] for ln in r.stdout.splitlines() if ln.startswith("error:")) == sorted(holes)

"""Hypothesis: awkward file names survive every serialization with the same findings as the folder."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preserve.bag.validate import validate_bag
from preserve.bag.writer import create_bag, payload_from_directory
from preserve.serialize import unpack, validate_archive, write_archive

# Names a curator meets: spaces, accents, non-Latin scripts, '%', '#', leading dashes and dots.
_CHARS = st.characters(codec="utf-8", exclude_characters="/\\\x00", exclude_categories=("Cs", "Cc", "Zl", "Zp"))
NAMES = st.text(_CHARS, min_size=1, max_size=24).filter(lambda n: n not in (".", "..") and n.strip() == n and not n.startswith("~"))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(names=st.lists(NAMES, min_size=1, max_size=4, unique_by=lambda n: n.casefold()), data=st.binary(max_size=64),
       fmt=st.sampled_from(["tar", "tar.gz", "zip"]))
def test_names_round_trip(names: list[str], data: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / "src"
        (src / names[0]).mkdir(parents=True)
        for i, name in enumerate(names):
            (src / names[0] / name).write_bytes(data + bytes([i]))
        bag = root / "bag"
        create_bag(bag, payload_from_directory(src), algorithms=("sha256",), verify=False)
        archive = write_archive(bag, root / f"bag.{fmt}", fmt)
        folder = validate_bag(bag)
        streamed = validate_archive(archive)
        assert [dataclasses.astuple(f) for f in streamed.findings] == [dataclasses.astuple(f) for f in folder.findings]
        assert (streamed.files, streamed.bytes) == (folder.files, folder.bytes) == (len(names), len(names) * (len(data) + 1))
        shutil.rmtree(bag)
        unpack(archive, bag)
        for i, name in enumerate(names):
            assert (bag / "data" / names[0] / name).read_bytes() == data + bytes([i])

"""``replicate --serialize tar`` checks every file against its manifest digest as it streams, in
memory that does not grow with the bag: past a few thousand files the digests are looked up in a
temporary database, and the payload is walked, not listed. The tar's bytes and order are those
preserve has always written."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import bagit
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replication_helpers import ledger_rows, make_bag

from preserve.replication import replicate, verified
from preserve.replication.tarstream import tar_chunks, tar_size
from preserve.replication.verified import ManifestDigests

FILES = {f"disc {i // 4}/{i:02d} take.wav": bytes([i]) * (100 + i) for i in range(12)}


class _Watched(ManifestDigests):
    """ManifestDigests noting, at each lookup, whether it had moved to its database."""

    lookups: list[bool] = []

    def get(self, path: str) -> str | None:
        type(self).lookups.append(self.on_disk)
        return super().get(path)


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Lookups of the digests during replication, each True when it was answered from disk."""
    lookups: list[bool] = []
    monkeypatch.setattr(_Watched, "lookups", lookups)
    monkeypatch.setattr(replicate, "ManifestDigests", _Watched)
    return lookups


@pytest.mark.parametrize("spill_at", [100_000, 2], ids=["in-memory", "on-disk"])
def test_a_good_bag_replicates_as_a_tar_that_verifies(pcli, tmp_path: Path, ledger_url: Path | str,
                                                      monkeypatch: pytest.MonkeyPatch, watched: list[bool],
                                                      spill_at: int) -> None:
    monkeypatch.setattr(verified, "SPILL_AT", spill_at)
    bag = make_bag(tmp_path, files=FILES)
    disk = tmp_path / "disk"
    r = pcli("replicate", bag, disk, "--serialize", "tar", "--ledger", ledger_url, "-q")
    assert r.exit_code == 0, r.output
    assert f"{disk}/bag-one.tar: complete, 1 objects" in r.output
    # every file of the tar was looked up, from the database exactly when the bag passed the threshold
    assert len(watched) == len([p for p in bag.rglob("*") if p.is_file()]) and set(watched) == {spill_at < len(FILES)}
    with tarfile.open(disk / "bag-one.tar") as tf:
        tf.extractall(tmp_path / "out", filter="data")
    bagit.Bag(str(tmp_path / "out" / "bag-one")).validate()  # an independent validator
    assert (tmp_path / "out/bag-one/data/disc 2/11 take.wav").read_bytes() == FILES["disc 2/11 take.wav"]


@pytest.mark.parametrize("spill_at", [100_000, 2], ids=["in-memory", "on-disk"])
def test_a_damaged_local_file_is_never_sent(pcli, tmp_path: Path, ledger_url: Path | str,
                                            monkeypatch: pytest.MonkeyPatch, watched: list[bool],
                                            spill_at: int) -> None:
    monkeypatch.setattr(verified, "SPILL_AT", spill_at)
    bag = make_bag(tmp_path, files=FILES)
    damaged = bag / "data/disc 1/05 take.wav"
    expected = hashlib.sha256(damaged.read_bytes()).hexdigest()
    raw = bytearray(damaged.read_bytes())
    raw[50] ^= 0xFF  # same size: the fast check replicate starts with cannot see it
    damaged.write_bytes(bytes(raw))
    found = hashlib.sha256(raw).hexdigest()
    disk = tmp_path / "disk"
    r = pcli("replicate", bag, disk, "--serialize", "tar", "--ledger", ledger_url, "-q")
    assert r.exit_code == 1, r.output
    assert (f"{damaged}: does not match manifest-sha256.txt (expected {expected}, found {found}); validate the bag "
            "before replicating (the upload was abandoned)") in r.output
    assert set(watched) == {spill_at < len(FILES)}
    assert not (disk / "bag-one.tar").exists()
    rows = ledger_rows(ledger_url, "replicas")
    assert len(rows) == 1 and rows[0]["outcome"] == "fail"
    assert json.loads(rows[0]["detail"])["complete"] is False


# names as manifests and the disk hold them: ASCII, accented, astral, a surrogate-escaped byte
NAMES = st.text(alphabet=st.sampled_from(["a", "b", "/", "é", "\U0001f3b5", "\udcff", " "]), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(NAMES, st.sampled_from(["0" * 64, "f" * 64, "ab" * 32])), max_size=30),
       st.lists(NAMES, max_size=10), st.sampled_from([0, 1, 3, 1000]))
def test_digests_answer_as_a_dict_before_and_after_moving_to_disk(lines: list[tuple[str, str]], others: list[str],
                                                                  spill_at: int) -> None:
    plain: dict[str, str] = {}
    with ManifestDigests(spill_at) as kept:
        for path, digest in lines:  # a path listed twice keeps its last digest, as the dict does
            plain[path] = digest
            kept[path] = digest
        assert kept.on_disk == (len(plain) > spill_at)
        assert len(kept) == len(plain)
        for path in [p for p, _ in lines] + others:
            assert kept.get(path) == plain.get(path)


def test_closed_digests_refuse_to_answer() -> None:
    """A lookup after closing must not read as 'not in the manifest' (the file would go unchecked)."""
    for spill_at in (0, 1000):
        kept = ManifestDigests(spill_at)
        kept["data/a.wav"] = "0" * 64
        kept.close()
        with pytest.raises(ValueError, match="closed"):
            kept.get("data/a.wav")


def test_many_digests_are_not_held_in_memory() -> None:
    count = 60_000

    def lines() -> Iterator[tuple[str, str]]:  # new strings for each line, as a manifest's reader gives
        for i in range(count):
            name = f"data/vol-{i // 10000:03d}/item-{i // 100:05d}/track-{i % 100:02d}.dat"
            yield name, hashlib.sha256(name.encode()).hexdigest()

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        plain = dict(lines())
        held_by_dict = tracemalloc.get_traced_memory()[0] - base
        del plain
        base = tracemalloc.get_traced_memory()[0]
        kept = ManifestDigests()
        for name, digest in lines():
            kept[name] = digest
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    try:
        assert held_by_dict > 5 * 2**20  # what a dict of them holds: the check below can fail
        assert held < held_by_dict / 10, (held, held_by_dict)
        name = "data/vol-001/item-00123/track-45.dat"
        assert kept.get(name) == hashlib.sha256(name.encode()).hexdigest() and kept.get("data/none") is None
    finally:
        kept.close()


def _bare_bag(root: Path, payload: list[str], tags: list[str]) -> Path:
    bag = root / "b"
    rels = ["bagit.txt", *tags, *(f"data/{p}" for p in payload)]
    for folder in {(bag / rel).parent for rel in rels}:
        folder.mkdir(parents=True, exist_ok=True)
    for rel in rels:
        (bag / rel).write_bytes(rel.encode())
    return bag


def test_tar_member_order_is_unchanged(tmp_path: Path) -> None:
    """The order preserve promises: bagit.txt, payload manifests, other tag files, tag
    manifests, then the payload; each a walk with a folder's files sorted before its subfolders,
    which are taken in sorted order (so 'a/z' comes before 'a-b/c', unlike a sort of the paths)."""
    payload = ["a-b/c.wav", "a/z.wav", "a/y/x.wav", "a.b/q.wav", "top.wav", "a/a.wav"]
    tags = ["manifest-sha256.txt", "bag-info.txt", "aux/data/n.txt", "metadata/mets.xml",
            "tagmanifest-sha256.txt", "data.txt"]
    bag = _bare_bag(tmp_path, payload, tags)
    blob = b"".join(tar_chunks(bag, "b", {}))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        names = [m.name.removeprefix("b/") for m in tf.getmembers()]
    assert names == ["bagit.txt", "manifest-sha256.txt", "bag-info.txt", "data.txt", "aux/data/n.txt",
                     "metadata/mets.xml", "tagmanifest-sha256.txt",
                     "data/top.wav", "data/a/a.wav", "data/a/z.wav", "data/a/y/x.wav", "data/a-b/c.wav",
                     "data/a.b/q.wav"]


def test_the_payload_is_walked_not_listed(tmp_path: Path) -> None:
    """Walking a bag for its tar holds one folder's names at a time, not every payload path
    (tar_size walks as tar_chunks does, without reading the files)."""
    folders, per_folder = 40, 100
    long = "a long title as catalogues hold them, " * 6  # few files, but their names weigh a MiB
    payload = [f"disc-{d:03d}/{t:03d} {long}.wav" for d in range(folders) for t in range(per_folder)]
    bag = _bare_bag(tmp_path, payload, [])
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        listed = [f"data/{p}" for p in payload]
        held_by_list = tracemalloc.get_traced_memory()[0] - base
        del listed
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        size = tar_size(bag, "b")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert size == sum(len(chunk) for chunk in tar_chunks(bag, "b", {}))
    assert held_by_list > 2**20  # the check below can fail
    assert peak < held_by_list / 4, (peak, held_by_list)

"""What verified each replicated object is kept on disk past a few thousand objects, and reads
back exactly as the dict it replaces: order, counts, ties, names that are not UTF-8."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replication_helpers import ledger_rows, make_bag

from preserve.replication import verified
from preserve.replication.verified import VerifiedBy

WAYS = ("stored-sha256", "etag-md5", "etag-multipart", "re-read")
# names as bags hold them: ASCII, accented, astral, and a surrogate-escaped byte that is not UTF-8
NAMES = st.text(alphabet=st.sampled_from(["a", "b", "/", "é", "\u00e9", "\U0001f3b5", "\udcff", "z"]), min_size=1, max_size=4)


def _summary(pairs: dict[str, str] | VerifiedBy) -> dict[str, object]:
    """The ledger's summary as ReplicaResult made it from a plain dict before."""
    if isinstance(pairs, dict):
        counts = Counter(pairs.values())
        default = counts.most_common(1)[0][0] if counts else None
        return {"counts": list(counts.items()), "default": default,
                "objects": [(k, v) for k, v in sorted(pairs.items()) if v != default]}
    counts = pairs.counts()
    default = counts.most_common(1)[0][0] if counts else None
    return {"counts": list(counts.items()), "default": default,
            "objects": list(pairs.items(ordered=True, except_way=default))}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(NAMES, st.sampled_from(WAYS)), max_size=40), st.sampled_from([0, 1, 3, 1000]))
def test_reads_back_as_a_dict_before_and_after_moving_to_disk(sets: list[tuple[str, str]], spill_at: int) -> None:
    plain: dict[str, str] = {}
    kept = VerifiedBy(spill_at)
    for key, way in sets:
        plain[key] = way
        kept[key] = way
    try:
        assert len(kept) == len(plain)
        assert list(kept.items()) == list(plain.items())  # insertion order, a key set again keeps its place
        assert list(kept.items(ordered=True)) == sorted(plain.items())
        assert _summary(kept) == _summary(plain)  # counts in first-seen order: most_common breaks ties alike
    finally:
        kept.close()


def _name(i: int) -> str:
    return f"data/vol-{i // 10000:03d}/item-{i // 100:05d}/track-{i % 100:02d}.dat"


def _traced_growth(fill: Callable[[], object]) -> int:
    """Bytes of Python memory still held by what ``fill`` returns."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = fill()
        grown = tracemalloc.get_traced_memory()[0] - base
        del kept
        return grown
    finally:
        tracemalloc.stop()


def test_a_large_replica_does_not_hold_its_object_names_in_memory() -> None:
    count = 60_000

    def as_dict() -> dict[str, str]:
        return {_name(i): "re-read" for i in range(count)}

    def as_verified() -> VerifiedBy:
        kept = VerifiedBy()
        for i in range(count):
            kept[_name(i)] = "re-read"
        return kept

    held_by_dict, held = _traced_growth(as_dict), _traced_growth(as_verified)
    assert held_by_dict > 5 * 2**20  # what a dict of them holds: the check below can fail
    assert held < held_by_dict / 10, (held, held_by_dict)


def test_replicating_past_the_threshold_records_the_same(pcli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's summary and the JSON listing are the same whether the mapping moved to disk."""
    files = {f"disc {i // 4}/{i:02d} take.wav": bytes([i]) * (100 + i) for i in range(12)}
    bag = make_bag(tmp_path, files=files)
    ledger = tmp_path / "ledger.sqlite"
    outputs = []
    for spill_at, target in ((100_000, tmp_path / "in-memory"), (2, tmp_path / "on-disk")):
        monkeypatch.setattr(verified, "SPILL_AT", spill_at)
        r = pcli("replicate", bag, target, "--ledger", ledger, "--json")
        assert r.exit_code == 0, r.output
        doc, _ = json.JSONDecoder().raw_decode(r.output[r.output.index("{"):])
        outputs.append(doc["replicas"][0]["verified_by"])
    details = [json.loads(row["detail"])["verified_by"] for row in ledger_rows(ledger, "replicas")]
    assert details[0] == details[1] and details[0]["counts"]
    assert sum(details[0]["counts"].values()) == len(outputs[0]) > 12
    assert outputs[0] == outputs[1]  # every object, each with its way (their order is the threads')


def test_the_listing_of_every_object_is_built_only_for_json(pcli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --json, replicate never lists every object with its way (a million-entry dict)."""
    from preserve.replication.replicate import ReplicaResult

    bag = make_bag(tmp_path)
    listed: list[int] = []
    real = ReplicaResult.to_dict

    def counting(self: ReplicaResult) -> dict[str, object]:
        listed.append(1)
        return real(self)

    monkeypatch.setattr(ReplicaResult, "to_dict", counting)
    r = pcli("replicate", bag, tmp_path / "copy", "--ledger", tmp_path / "ledger.sqlite", "-q")
    assert r.exit_code == 0, r.output
    assert "complete" in r.output and listed == []
    r = pcli("replicate", bag, tmp_path / "copy", "--ledger", tmp_path / "ledger.sqlite", "--json")
    assert r.exit_code == 0, r.output
    assert listed == [1]

"""``preserve audit`` on an OCFL store: objects audited against their inventories, fast and full."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from preserve.audit.ledger import Ledger
from preserve.ocfl import ingest
from preserve.ocfl.inventory import read_inventory, serialize, write_inventory
from preserve.ocfl.layout import open_root
from preserve.ocfl.retire import deaccession, purge
from tests.ocfl.conftest import MakeBag

Run = Callable[..., subprocess.CompletedProcess[str]]


def _store_of_two(make_bag: MakeBag, store_root: Path) -> tuple[Path, Path]:
    objects = []
    for n in (1, 2):
        bag = make_bag(f"bag{n}", info=[("External-Identifier", f"urn:example:obj{n}")])
        ingest(store_root, bag, user="Ann Curator", address="mailto:ann@example.org")
        objects.append(open_root(store_root).object_path(f"urn:example:obj{n}"))
    return objects[0], objects[1]


def _audit(run_preserve: Run, target: Path, tier: str, ledger: Path | str) -> tuple[int, dict[str, Any]]:
    done = run_preserve("audit", target, "--tier", tier, "--ledger", ledger, "--json")
    return done.returncode, json.loads(done.stdout)


def test_store_audited_fast_and_full_then_damage_found(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                       run_preserve: Run, ledger_url: Path | str) -> None:
    obj1, obj2 = _store_of_two(make_bag, store_root)
    ledger = ledger_url
    for tier in ("fast", "full"):
        code, out = _audit(run_preserve, store_root, tier, ledger)
        assert code == 0, out
        audits = out["audits"]
        assert isinstance(audits, list) and len(audits) == 2
        assert {a["identifier"] for a in audits} == {"urn:example:obj1", "urn:example:obj2"}
        assert all(a["outcome"] == "pass" and a["tier"] == tier and a["files"] > 0 for a in audits)
        if tier == "full":
            assert all(a["bytes"] > 0 for a in audits)
    with Ledger(ledger) as led:
        states = led.find_bags("urn:example:obj1")
        assert [(s.location, s.audits, s.last_outcome) for s in states] == [(str(obj1.resolve()), 2, "pass")]

    # alter one content file in place (same size): the inventory holds no sizes, so fast passes
    inventory = read_inventory(obj2)
    rel = sorted(p for paths in inventory["manifest"].values() for p in paths if p.endswith("a.wav"))[0]
    victim = obj2 / rel
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, out = _audit(run_preserve, store_root, "fast", ledger)
    assert code == 0, out
    code, out = _audit(run_preserve, obj2, "full", ledger)
    assert code == 1
    audits = out["audits"]
    assert isinstance(audits, list) and len(audits) == 1 and audits[0]["outcome"] == "fail"
    assert [(f["file"], f["kind"]) for f in audits[0]["findings"]] == [(rel, "altered")]
    assert str(victim.resolve()) in audits[0]["findings"][0]["message"]
    with Ledger(ledger) as led:
        assert [s.last_outcome for s in led.find_bags("urn:example:obj2")] == ["fail"]

    # a deleted file is found by the fast tier, named
    victim.unlink()
    code, out = _audit(run_preserve, obj2, "fast", ledger)
    assert code == 1
    audits = out["audits"]
    assert isinstance(audits, list)
    assert [(f["file"], f["kind"]) for f in audits[0]["findings"]] == [(rel, "missing")]


def test_link_in_an_object_is_refused_and_not_followed(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                       run_preserve: Run, ledger_url: Path | str) -> None:
    obj1, _ = _store_of_two(make_bag, store_root)
    inventory = read_inventory(obj1)
    rel = sorted(p for paths in inventory["manifest"].values() for p in paths if p.endswith("notes.txt"))[0]
    outside = tmp_path / "outside.txt"
    outside.write_bytes((obj1 / rel).read_bytes())  # the very bytes: only the link itself can fail it
    (obj1 / rel).unlink()
    os.symlink(outside, obj1 / rel)
    code, out = _audit(run_preserve, store_root, "full", ledger_url)
    assert code == 1
    audits = {a["identifier"]: a for a in out["audits"]}
    assert audits["urn:example:obj2"]["outcome"] == "pass"
    findings = audits["urn:example:obj1"]["findings"]
    assert [(f["file"], f["kind"], f["code"]) for f in findings] == [(rel, "invalid", "link")]
    assert "symbolic link" in findings[0]["message"]


def test_report_counts_objects_versions_deaccessioned_and_purged(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                                                 run_preserve: Run, ledger_url: Path | str) -> None:
    obj1, obj2 = _store_of_two(make_bag, store_root)
    deaccession(store_root, "urn:example:obj1", reason="donor withdrew", authority="Board", operator="Ann")
    purge(store_root, "urn:example:obj2", "data/a.wav", reason="court order", authority="High Court", operator="Ann",
          confirm=True)
    ledger = ledger_url
    code, _ = _audit(run_preserve, obj1, "fast", ledger)
    assert code == 0
    done = run_preserve("report", store_root, "--ledger", ledger, "--json")
    # obj2 is on disk and was never audited: the report needs attention, as for a bag
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert [u["location"] for u in out["sections"]["never_audited"]] == [str(obj2.resolve())]
    [store] = out["stores"]
    assert (store["objects"], store["versions"]) == (2, 3)
    assert [(d["id"], d["version"]) for d in store["deaccessioned"]] == [("urn:example:obj1", "v2")]
    assert "donor withdrew" in store["deaccessioned"][0]["message"]
    assert [(p["id"], p["reason"], p["authority"], p["items"]) for p in store["purged"]] == [
        ("urn:example:obj2", "court order", "High Court", 1)]
    text = run_preserve("report", store_root, "--ledger", ledger).stdout
    assert f"OCFL store {store_root.resolve()}: 2 object(s), 3 version(s)" in text
    assert "deaccessioned: 1" in text and "purges: 1" in text and "urn:example:obj2" in text


def test_full_tier_checks_the_fixity_block(make_bag: MakeBag, store_root: Path, tmp_path: Path,
                                           run_preserve: Run, ledger_url: Path | str) -> None:
    obj1, _ = _store_of_two(make_bag, store_root)
    inventory = read_inventory(obj1)
    rel = sorted(p for paths in inventory["manifest"].values() for p in paths if p.endswith("notes.txt"))[0]
    # an md5 the file does not have, written by another tool into the inventory's fixity block
    inventory["fixity"] = {"md5": {"0" * 32: [rel]}}
    for folder in (obj1, obj1 / inventory["head"]):
        for name in ("inventory.json", "inventory.json.sha512"):
            (folder / name).unlink()
        write_inventory(folder, serialize(inventory))
    ledger = ledger_url
    code, out = _audit(run_preserve, obj1, "fast", ledger)
    assert code == 0, out
    code, out = _audit(run_preserve, obj1, "full", ledger)
    assert code == 1
    [finding] = out["audits"][0]["findings"]
    assert (finding["file"], finding["kind"], finding["expected"]) == (rel, "altered", "0" * 32)
    assert "fixity block (md5)" in finding["message"]

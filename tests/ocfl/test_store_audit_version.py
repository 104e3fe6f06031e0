"""The ledger records the version of a store object that each audit read, local and remote, on
both ledger backends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from preserve.audit.ledger import open_ledger
from preserve.ocfl import ingest
from preserve.ocfl.update import update
from tests.ocfl.conftest import MakeBag
from tests.replication.replication_helpers import aws_env, pcli

__all__ = ["aws_env", "pcli"]

OID = "urn:example:versioned"


def _rows(ledger: Path | str) -> list[tuple[str, str, str, str | None]]:
    with open_ledger(ledger, create=False) as db:
        bags = {r["id"]: r for r in db.table_rows("bags")}
        return [(bags[a["bag_id"]]["identifier"], bags[a["bag_id"]]["location"], a["tier"], a["object_version"])
                for a in sorted(db.table_rows("audits"), key=lambda a: int(a["id"]))]


def test_local_and_remote_audits_record_the_version_they_read(pcli: Any, make_bag: MakeBag, store_root: Path,
                                                              tmp_path: Path, ledger_url: Path | str) -> None:
    made = ingest(store_root, make_bag("bag", {"a.wav": b"RIFF" + os.urandom(3000), "notes.txt": b"notes\n"}),
                  object_id=OID, user="t")
    obj = made.object_path
    r = pcli("audit", obj, "--tier", "fast", "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    update(store_root, OID, remove=("notes.txt",), reason="not audio", operator="o")
    r = pcli("audit", obj, "--tier", "full", "--ledger", ledger_url)
    assert r.exit_code == 0, r.output

    replica = tmp_path / "replica"
    assert pcli("replicate", store_root, replica, "--ledger", ledger_url, "-q").exit_code == 0
    prefix = obj.relative_to(store_root).as_posix()
    update(store_root, OID, remove=("a.wav",), reason="withdrawn", operator="o")  # v3 here, the replica keeps v2
    r = pcli("audit", replica / prefix, "--tier", "remote-full", "--ledger", ledger_url)
    assert r.exit_code == 0, r.output
    r = pcli("audit", obj, "--tier", "fast", "--ledger", ledger_url)
    assert r.exit_code == 0, r.output

    assert _rows(ledger_url) == [
        (OID, str(obj), "fast", "v1"),
        (OID, str(obj), "full", "v2"),
        (OID, str(replica / prefix), "remote-full", "v2"),
        (OID, str(obj), "fast", "v3"),
    ]

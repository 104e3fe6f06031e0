"""``--config FILE`` names the preserve.toml whose ``ledger`` records the run: a run meant for one
institution's ledger must never be recorded in the one the current folder happens to hold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from replication_helpers import ledger_rows, make_bag


@pytest.mark.parametrize("command", ["replicate", "audit", "repair"])
def test_the_ledger_of_the_file_config_names_is_the_one_used(command: str, tmp_path: Path, run_preserve: Any,
                                                             ledger_url: Path | str) -> None:
    bag = make_bag(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "preserve.toml").write_text('ledger = "wrong.sqlite"\n', encoding="utf-8")
    config = site / "preserve.toml"
    config.write_text(f'ledger = "{ledger_url}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESERVE_")}
    disk = tmp_path / "disk2"
    disk.mkdir()
    replicated = run_preserve("replicate", bag, disk, "--config", config, "-q", cwd=tmp_path, env=env)
    assert replicated.returncode == 0, replicated.stdout + replicated.stderr
    r, table = replicated, "replicas"
    if command == "audit":
        r, table = run_preserve("audit", bag, "--config", config, "-q", cwd=tmp_path, env=env), "audits"
    elif command == "repair":
        victim = next(p for p in (bag / "data").rglob("*") if p.is_file())
        victim.unlink()
        r = run_preserve("repair", bag, "--from", disk, "--config", config, "-q", cwd=tmp_path, env=env)
        table = "repairs"
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(ledger_rows(ledger_url, table)) >= 1
    assert not (tmp_path / "wrong.sqlite").exists()


@pytest.mark.parametrize("notify", [False, True])
def test_a_config_file_that_does_not_exist_is_named_not_passed_over(notify: bool, tmp_path: Path,
                                                                    run_preserve: Any) -> None:
    """A local audit reads only the ledger (and the [smtp] table) of --config: a misspelt path is
    told, never the default ledger or mail settings in its place."""
    bag = make_bag(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESERVE_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "user-data")
    missing = tmp_path / "site" / "preserv.toml"
    extra = ["--notify", "mailto:ops@example.org"] if notify else []
    r = run_preserve("audit", bag, "--config", missing, *extra, "-q", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{missing}: no such configuration file" in r.stderr
    assert not (tmp_path / "user-data").exists()  # no default ledger was made

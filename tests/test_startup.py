"""Start-up: ``preserve --help`` loads no heavy library, and its command list is each command's own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from preserve.cli.main import COMMANDS, cli

HEAVY = ("numpy", "lxml", "boto3", "botocore", "dask")

_PROBE = """
import json, sys
from preserve.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
command_modules = sorted(m for m in sys.modules if m.startswith("preserve.cli.") and m.endswith("_cmd"))
own = sorted(m for m in sys.modules if m.startswith("preserve."))
print(json.dumps({{"heavy": heavy, "command_modules": command_modules, "own": own}}), file=sys.stderr)
"""


def _modules_after(*argv: str, heavy: tuple[str, ...] = HEAVY) -> dict[str, list[str]]:
    # a fresh interpreter: the test process has long imported everything
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=set(heavy)), *argv],
                          capture_output=True, text=True, check=True, timeout=60)
    assert "Commands:" in proc.stdout or argv != ("--help",)
    loaded: dict[str, list[str]] = json.loads(proc.stderr.strip().splitlines()[-1])
    return loaded


def test_help_imports_no_heavy_library_and_no_command_module() -> None:
    loaded = _modules_after("--help")
    assert loaded["heavy"] == []
    assert loaded["command_modules"] == []


def test_probe_sees_heavy_imports_when_they_happen() -> None:
    # the probe itself must be able to fail: a command that loads numpy is seen doing it
    loaded = _modules_after("check", "--help")
    assert "preserve.cli.check_cmd" in loaded["command_modules"]


def test_short_help_in_the_table_is_each_commands_own() -> None:
    ctx = click.Context(cli)
    for name, (_target, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(10**6) == short, f"COMMANDS[{name!r}] short help differs from the command's"


def test_help_lists_every_command_once() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:\n", 1)[1].splitlines() if line.startswith("  ")]
    assert listed == sorted(COMMANDS)


#: What ``preserve validate --fast`` of a small bag folder never needs: audio, XML, cloud and
#: cluster libraries, the hashing engine (nothing is hashed), profiles (none declared or given).
NOT_FOR_FAST = (*HEAVY, "soundfile", "mutagen", "fido", "xxhash", "concurrent", "platformdirs")
NOT_FOR_FAST_OWN = ("preserve.fixity", "preserve.profiles", "preserve.serialize", "preserve.sidecars",
                    "preserve.intake", "preserve.audit", "preserve.replication", "preserve.stores")


def _tiny_bag(where: Path, *info: str) -> Path:
    src = where / "src"
    src.mkdir()
    for i in range(7):
        (src / f"file{i}.txt").write_text(f"content {i}\n", encoding="utf-8")
    bag = where / "bag"
    result = CliRunner().invoke(cli, ["bag", "-q", *info, str(src), str(bag)])
    assert result.exit_code == 0, result.output
    return bag


def test_validate_fast_of_a_tiny_bag_loads_only_what_it_uses(tmp_path: Path) -> None:
    bag = _tiny_bag(tmp_path)
    loaded = _modules_after("validate", "--fast", str(bag), heavy=NOT_FOR_FAST)
    assert loaded["heavy"] == []
    assert [m for m in loaded["own"] if m.startswith(NOT_FOR_FAST_OWN)] == []
    assert loaded["command_modules"] == ["preserve.cli.validate_cmd"]


def test_validate_loads_the_hashing_engine_and_profiles_when_it_needs_them(tmp_path: Path) -> None:
    # the probe can fail: a full validation hashes, and a declared profile is checked
    bag = _tiny_bag(tmp_path, "-p", "preserve-transfer", "-i", "Source-Organization=Test Archive")
    loaded = _modules_after("validate", str(bag), heavy=NOT_FOR_FAST)
    assert "xxhash" in loaded["heavy"]
    assert {"preserve.fixity", "preserve.profiles"} <= set(loaded["own"])

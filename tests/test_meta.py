"""Meta-tests: every command has help and is documented; the exit-code table is the code's."""

from __future__ import annotations

import re
from pathlib import Path

import click

import preserve.errors as errors_module
from preserve.cli.main import cli
from preserve.errors import EXIT_CODES, PreserveError

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"preserve {prefix}{name} is listed but cannot be loaded"
        assert cmd.name == name, f"{name} loads a command named {cmd.name}"
        full = f"{prefix}{name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, full + " "))
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    commands = _commands(cli)
    assert len(commands) >= 2
    for name, cmd in commands:
        assert (cmd.help or "").strip(), f"preserve {name} has no help text"
        assert f"preserve {name}" in README, f"README.md does not mention `preserve {name}`"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"preserve {name} {param.opts[0]} has no help text"


def test_readme_exit_code_table_matches_the_code() -> None:
    rows = dict(re.findall(r"^\|\s*(\d+)\s*\|\s*(.+?)\s*\|\s*$", README, flags=re.MULTILINE))
    documented = {int(code): text for code, text in rows.items()}
    assert documented == EXIT_CODES


def test_every_error_class_has_a_documented_exit_code() -> None:
    def walk(cls: type[PreserveError]) -> list[type[PreserveError]]:
        return [cls] + [c for sub in cls.__subclasses__() for c in walk(sub)]

    for cls in walk(PreserveError):
        assert cls.exit_code in EXIT_CODES, cls
        assert cls.__name__ in (errors_module.__doc__ or ""), \
            f"{cls.__name__} is missing from the tree drawn in preserve/errors.py"


def test_readme_opens_with_the_quick_start() -> None:
    head = README.split("\n## ", 2)
    assert head[1].startswith("Quick start")
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", head[1], flags=re.DOTALL)
    commands = [line for b in blocks for line in b.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci, ".ci/run must run the README's test command"


def test_the_public_api_is_pinned() -> None:
    import preserve

    expected = {
        "ALGORITHMS", "Bag", "BagResult", "Finding", "Ledger", "PayloadEntry", "PreserveError",
        "ValidationReport", "__version__", "audit_bag", "check_collection", "check_sidecars",
        "copy_and_hash", "create_bag", "hash_file", "load_profile", "open_bag", "open_store",
        "package_collection", "payload_from_directory", "plan_creation", "repair_bag", "replicate_bag",
        "restore_bag", "unpack", "validate_archive", "validate_bag", "validate_profile", "write_sidecars",
    }
    assert set(preserve.__all__) == expected
    for name in expected:
        assert getattr(preserve, name) is not None, name
    assert callable(preserve.package_collection) and callable(preserve.replicate_bag)


def test_help_lists_every_exit_code(run_preserve) -> None:
    r = run_preserve("--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    listed = text.split("Exit codes:", 1)[1]
    for code in EXIT_CODES:
        assert re.search(rf"(^|, ){code} \w", listed.strip()), f"preserve --help leaves out exit code {code}"

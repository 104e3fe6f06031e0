"""One meaning per flag: every command of the real click group spells, abbreviates and explains
its shared options the same way; --profile is always a BagIt profile; --help fits a screen.

The tables below are walked over every command the group lists (subcommands included), so a new
command or option that breaks the convention fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from preserve.cli.common import QUIET_HELP, Command, exit_meaning
from preserve.cli.main import cli
from preserve.errors import EXIT_CODES, EXIT_PROBLEMS, EXIT_USAGE
from preserve.intake.testaudio import Tone, write_wav

#: Each short flag and the one long option it stands for, wherever it appears.
SHORT_FLAGS = {
    "-a": "--algorithm",
    "-h": "--help",
    "-i": "--info",
    "-o": "--output",
    "-p": "--profile",
    "-q": "--quiet",
    "-v": "--verbose",
    "-w": "--workers",
}
#: Commands without -q/--quiet, and why.
NO_QUIET = {"template": "its whole output is the template a user asked for; there is nothing to leave out"}
#: The commands that take s3:// locations, with arguments that get them past argument parsing.
S3_COMMANDS = {
    "replicate": ["replicate", "bag", "s3://bucket/prefix"],
    "audit": ["audit", "s3://bucket/prefix/bag", "--tier", "remote-metadata"],
    "restore": ["restore", "s3://bucket/prefix/bag", "back"],
    "repair": ["repair", "bag", "--from", "s3://bucket/prefix"],
}
MAX_HELP_LINES = 50
OLD_PROFILE = "--profile names a BagIt profile; for the AWS profile use --aws-profile NAME"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """Every leaf command of ``group`` as (its name as typed, the command)."""
    out = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, (*prefix, name)))
        else:
            out.append((" ".join((*prefix, name)), cmd))
    return out


COMMANDS = _commands(cli)
NAMES = [name for name, _ in COMMANDS]


def _options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option)]


def _visible(cmd: click.Command) -> list[click.Option]:
    return [p for p in _options(cmd) if not p.hidden]


def test_the_group_lists_every_command_module() -> None:
    # the walk below must see the subcommands too, or the tables would check nothing
    assert {"bag", "check", "package", "validate", "replicate", "repair", "show", "ledger info", "ledger migrate",
            "schemas install", "store ingest", "store validate"} <= set(NAMES)


@pytest.mark.parametrize("name,cmd", COMMANDS, ids=NAMES)
def test_short_flags_mean_the_same_option_everywhere(name: str, cmd: click.Command) -> None:
    for option in _visible(cmd):
        shorts = [o for o in option.opts if re.fullmatch(r"-[A-Za-z]", o)]
        longs = [o for o in option.opts if o.startswith("--")]
        for short in shorts:
            assert short in SHORT_FLAGS, f"preserve {name}: {short} is not one of the shared short flags"
            assert SHORT_FLAGS[short] in longs, f"preserve {name}: {short} means {longs}, elsewhere {SHORT_FLAGS[short]}"
        for short, long in SHORT_FLAGS.items():
            if long in longs:
                assert short in shorts, f"preserve {name}: {long} without {short}, which it has elsewhere"


@pytest.mark.parametrize("name,cmd", COMMANDS, ids=NAMES)
def test_quiet_json_and_verbose_have_one_meaning(name: str, cmd: click.Command) -> None:
    by_long = {o: option for option in _visible(cmd) for o in option.opts if o.startswith("--")}
    if name in NO_QUIET:
        assert "--quiet" not in by_long
    else:
        assert "--quiet" in by_long, f"preserve {name} has output but no -q/--quiet"
        assert by_long["--quiet"].help == QUIET_HELP, f"preserve {name}: -q explained differently"
        assert by_long["--quiet"].is_flag
    helps = {long: {o.help for _, c in COMMANDS for o in _visible(c) if long in o.opts} for long in ("--json", "--verbose")}
    assert len(helps["--json"]) == 1 and len(helps["--verbose"]) == 1, helps
    if "--json" in by_long:
        assert by_long["--json"].name == "as_json" and by_long["--json"].is_flag


@pytest.mark.parametrize("name,cmd", COMMANDS, ids=NAMES)
def test_profile_is_always_a_bagit_profile(name: str, cmd: click.Command) -> None:
    visible = {o for option in _visible(cmd) for o in option.opts}
    hidden = [option for option in _options(cmd) if option.hidden and "--profile" in option.opts]
    if "--profile" in visible:
        [option] = [o for o in _visible(cmd) if "--profile" in o.opts]
        assert option.name == "profile" and "BagIt profile" in (option.help or ""), name
        assert "--aws-profile" not in visible
    if name in S3_COMMANDS:
        assert "--aws-profile" in visible, f"preserve {name} takes s3:// locations but has no --aws-profile"
        assert "--profile" not in visible and len(hidden) == 1, f"preserve {name}: --profile must only refuse"
    else:
        assert "--aws-profile" not in visible and not hidden, name


def test_package_check_bag_and_validate_take_the_same_profile_option() -> None:
    table = dict(COMMANDS)
    for name in ("package", "check", "bag", "validate"):
        [option] = [o for o in _visible(table[name]) if "--profile" in o.opts]
        assert option.opts == ["-p", "--profile"] and option.metavar == "PROFILE", name


@pytest.mark.parametrize("name", sorted(S3_COMMANDS))
def test_the_old_aws_profile_spelling_is_a_usage_error_naming_the_new_one(name: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bag").mkdir()
    result = CliRunner().invoke(cli, [*S3_COMMANDS[name], "--profile", "archive"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert OLD_PROFILE in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "back").exists()


def test_aws_profile_reaches_the_s3_client(run_preserve, tmp_path: Path, ledger_url: Path | str) -> None:
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n", encoding="utf-8")
    # no network is needed: botocore refuses a profile that is not configured before any request
    env = {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = run_preserve("replicate", bag, "s3://bucket/prefix", "--aws-profile", "nobody",
                     "--endpoint-url", "http://127.0.0.1:9", "--retries", "1", "--ledger", ledger_url, env=env)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "AWS profile 'nobody' is not configured" in r.stderr


@pytest.mark.parametrize("key", ["aws-profile", "profile"])
def test_preserve_toml_names_the_aws_profile_aws_profile(key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         ledger_url: Path | str) -> None:
    # "profile" was its name before: a configuration file written then keeps working
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    (tmp_path / "preserve.toml").write_text(f'[targets.off]\nurl = "s3://bucket/p"\nendpoint-url = "http://127.0.0.1:9"\n'
                                            f'{key} = "nobody"\n', encoding="utf-8")
    (tmp_path / "bag").mkdir()
    result = CliRunner().invoke(cli, ["replicate", str(tmp_path / "bag"), "off", "--config", str(tmp_path / "preserve.toml"),
                                      "--ledger", str(ledger_url)])
    assert "AWS profile 'nobody' is not configured" in str(result.exception)


@pytest.mark.parametrize("name,cmd", COMMANDS, ids=NAMES)
def test_help_fits_one_screen_with_grouped_options_each_listed_once(name: str, cmd: click.Command) -> None:
    assert isinstance(cmd, Command), f"preserve {name} does not use the shared Command (grouped help, --json errors)"
    result = CliRunner().invoke(cli, [*name.split(), "--help"], terminal_width=100)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) <= MAX_HELP_LINES, f"preserve {name} --help is {len(lines)} lines"
    assert max(len(line) for line in lines) <= 100
    # the option rows: a line opening with a flag, in the sections after the description
    first = next(i for i, line in enumerate(lines) if re.fullmatch(r"[A-Z][\w .]*:", line))
    rows = [line for line in lines[first:] if re.match(r"^  -", line)]
    listed = [flag for row in rows for flag in re.findall(r"(?:^|, )(--?[\w-]+)", row.strip().split("  ")[0])]
    assert len(listed) == len(set(listed)), f"preserve {name} --help lists an option twice: {listed}"
    expected = {o for option in _visible(cmd) for o in option.opts} | {"-h", "--help"}
    assert set(listed) == expected, name
    headings = [line[:-1] for line in lines if re.fullmatch(r"[A-Z][\w .]*:", line)]
    assert len(headings) == len(set(headings))
    sections = {"Options", "Profile", "Ledger", "S3 and preserve.toml", "Upload", "Progress", "Output"}
    assert set(headings) - {"Usage"} <= sections and "Output" in headings, headings
    if "--quiet" in expected:  # the shared options sit under their heading, not among the command's own
        output = lines[lines.index("Output:"):]
        assert any(line.startswith("  -q, --quiet") for line in output)


@pytest.mark.parametrize("group", [[], ["ledger"], ["schemas"], ["store"]], ids=["preserve", "ledger", "schemas", "store"])
def test_the_groups_help_fits_one_screen_too(group: list[str]) -> None:
    result = CliRunner().invoke(cli, [*group, "--help"], terminal_width=100)
    assert result.exit_code == 0
    assert 0 < len(result.output.splitlines()) <= MAX_HELP_LINES


def test_exit_meanings_are_the_documented_table() -> None:
    assert exit_meaning(EXIT_PROBLEMS) == "problems found in the bag, collection or replica"
    for code, text in EXIT_CODES.items():
        assert text.startswith(exit_meaning(code))


# -- the same collection problems, the same exit code in check and package ---------------------------

TOML = """\
[collection]
identifier = "flags-0001"
{organization}
[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate"]
"""


def _collection(root: Path, *, organization: bool = True, rows: str = "one.wav,One\n") -> Path:
    root.mkdir()
    (root / "rights").mkdir()
    (root / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
    org = 'organization = "Test Archive"' if organization else ""
    (root / "collection.toml").write_text(TOML.format(organization=org), encoding="utf-8")
    write_wav(root / "one.wav", Tone(22050, 16, 1, 0.1))
    (root / "metadata.csv").write_text("file,title\n" + rows, encoding="utf-8")
    return root


@pytest.mark.slow
def test_a_required_bag_info_value_missing_is_exit_1_in_check_and_package_printed_once(run_preserve, tmp_path: Path) -> None:
    coll = _collection(tmp_path / "coll", organization=False)
    problem = "required bag-info values are missing: Source-Organization"
    checked = run_preserve("check", coll, "-q")
    packaged = run_preserve("package", coll, tmp_path / "bag", "-q")
    assert (checked.returncode, packaged.returncode) == (EXIT_PROBLEMS, EXIT_PROBLEMS), packaged.stderr
    assert (checked.stdout + checked.stderr).count(problem) == 1
    assert (packaged.stdout + packaged.stderr).count(problem) == 1, packaged.stderr
    assert "as 'organization' in its [collection] table" in packaged.stderr
    assert not (tmp_path / "bag").exists()
    # given on the command line, the value is there: the same collection packages
    fixed = run_preserve("package", coll, tmp_path / "bag", "-q", "-p", "preserve-audio-aip",
                         "-i", "Source-Organization=Test Archive")
    assert fixed.returncode == 0, fixed.stderr
    # an algorithm the profile refuses is the command's fault, not the collection's: still a usage error
    refused = run_preserve("package", coll, tmp_path / "bag2", "-q", "-a", "md5", "-i", "Source-Organization=X",
                           "-p", str(_md5_refusing_profile(tmp_path)))
    assert refused.returncode == EXIT_USAGE, refused.stderr
    assert "does not allow md5" in refused.stderr


def _md5_refusing_profile(tmp_path: Path) -> Path:
    shipped = Path(__file__).resolve().parents[2] / "profiles" / "preserve-audio-aip.json"
    raw = json.loads(shipped.read_text(encoding="utf-8"))
    raw["BagIt-Profile-Info"]["BagIt-Profile-Identifier"] = "https://example.org/profiles/strict.json"
    raw["Manifests-Allowed"] = raw["Tag-Manifests-Allowed"] = ["sha256", "sha512"]
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_problem_in_the_collection_is_exit_1_in_check_and_package_printed_once(run_preserve, tmp_path: Path) -> None:
    coll = _collection(tmp_path / "coll", rows="one.wav,One\nmissing.wav,Gone\n")
    checked = run_preserve("check", coll, "-q")
    packaged = run_preserve("package", coll, tmp_path / "bag", "-q")
    assert (checked.returncode, packaged.returncode) == (EXIT_PROBLEMS, EXIT_PROBLEMS)
    for r in (checked, packaged):
        text = r.stdout + r.stderr
        [line] = [line for line in text.splitlines() if "missing.wav" in line]
        assert "error:" in line
        # -q: the problems and the verdict, no table of files
        assert "FORMAT" not in text and "one.wav" not in text
    assert not (tmp_path / "bag").exists()


def test_verbose_prints_the_time_of_each_phase(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["bag", str(src), str(tmp_path / "bag"), "-v", "-q"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("timings: ")]
    assert re.fullmatch(r"timings: copy\+hash \d+\.\d\d s, verify \d+\.\d\d s, total \d+\.\d\d s", line), line
    quiet = CliRunner().invoke(cli, ["bag", str(src), str(tmp_path / "bag2"), "-q"])
    assert quiet.stderr == "" and len(quiet.stdout.splitlines()) == 1


def test_the_examples_use_no_old_spelling() -> None:
    root = Path(__file__).resolve().parents[2]
    texts = [p for p in [root / "README.md", *(root / "docs").glob("*.md"), *(root / "examples").rglob("*")]
             if p.is_file() and p.suffix not in {".wav", ".flac", ".mp3"}]
    s3_words = ("replicate", "restore", "repair", "s3://", "--endpoint-url")
    for path in texts:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if re.search(r"(?<![\w-])--profile\b", line) and any(w in line for w in (*s3_words, "AWS")):
                assert "BagIt" in line or "--aws-profile" in line, f"{path}: {line}"
    assert len(texts) > 10  # the walk above ran over the real files


def test_the_readme_documents_the_shared_options() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Options every command shares\n", 1)[1].split("\n## ", 1)[0]
    for flag in ("`-q`/`--quiet`", "`-v`/`--verbose`", "`--json`", "`-p`/`--profile PROFILE`", "`--aws-profile NAME`",
                 "`-w`/`--workers N`", "`-a`/`--algorithm`", "`-i`/`--info KEY=VALUE`", "`-o`/`--output FILE`"):
        assert flag in section, flag
    for name in NO_QUIET:
        assert f"but `{name}`" in section
    assert "only problems and the final verdict line" in section

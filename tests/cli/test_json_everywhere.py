"""--json on every command with a result, and -q meaning the same everywhere, on real inputs.

One module fixture builds what the commands work on, as a user would have it: the example
donated collection, its package, that bag as a zip, a directory replica, a damaged copy, a
ledger with an audit, and an OCFL store made with ``store init`` holding small bags ingested with
``store ingest`` (one object per command that changes an object, so each run has its own). Each command then runs as the installed program with --json: its standard
output must be exactly one JSON document carrying the path, the exit code and its meaning,
warnings and problems. The -q runs go through the click group in-process (the same code, faster).

The commands that read or write the ledger run twice: on the world's SQLite ledger, and on a
second world whose ledger is a database on the suite's PostgreSQL server (the same replica and
audit recorded in it). The world is built once per module, so these tests choose the world by a
``backend`` parameter rather than through the per-test ``ledger_url`` fixture.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from preserve.audit.ledger import ledger_exists
from preserve.cli.common import exit_meaning
from preserve.cli.main import cli
from preserve.package import package_collection

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "donated-collection"
SCHEMAS = (ROOT.parent / "shared" / "schemas").resolve()

#: Commands whose output is not a result but the thing asked for, and why they take no --json.
NO_JSON = {
    "template": "prints the sheet template itself (CSV), not a result",
    "events": "its output is the PREMIS document itself (XML)",
    "ledger export": "its output is the export itself, already JSON lines",
}


@dataclass
class World:
    tmp: Path
    coll: Path
    bag: Path
    zip: Path
    replica: Path
    damaged: Path
    ledger: Path | str
    plain: Path
    fresh: Path
    store: Path
    small: Path
    small2: Path
    #: ``spare(name)``: a new ledger beside ``ledger``, on its backend, for a command that must not
    #: change the shared one (repair's records, a copy to compact)
    spare: Callable[[str], Path | str]


def _invoke(*args: object) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("json")
    coll = tmp / "donated"
    shutil.copytree(EXAMPLE, coll)
    bag = package_collection(coll, tmp / "donated-bag").bag.path
    archive = tmp / "donated-bag.zip"
    with zipfile.ZipFile(archive, "w") as z:  # a serialized bag: one top-level folder
        for path in sorted(bag.rglob("*")):
            z.write(path, path.relative_to(tmp).as_posix())
    ledger = tmp / "ledger.sqlite"
    replicas = tmp / "replicas"
    replicas.mkdir()
    _invoke("replicate", bag, replicas, "--ledger", ledger, "-q")
    _invoke("audit", bag, "--ledger", ledger, "-q")
    damaged = tmp / "damaged" / bag.name
    shutil.copytree(bag, damaged)
    (damaged / "data" / "objects" / "recordings" / "rehearsal-1981.flac").unlink()
    plain = tmp / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("liner notes\n", encoding="utf-8")
    fresh = tmp / "fresh"
    fresh.mkdir()
    shutil.copy(coll / "recordings" / "interview-1978-side-a.wav", fresh / "interview.wav")
    small, small2 = _small_bag(tmp, "small", "liner notes\n"), _small_bag(tmp, "small2", "liner notes, corrected\n")
    store = tmp / "store"
    _invoke("store", "init", store, "-q")
    for object_id in STORE_OBJECTS:
        _invoke("store", "ingest", store, small, "--id", object_id, "--operator", "Test Curator", "-q")
    _invoke("store", "update", store, "urn:example:small", "--from", small2, "--reason", "notes corrected",
            "--operator", "Test Curator", "-q")
    return World(tmp, coll, bag, archive, replicas, damaged, ledger, plain, fresh, store, small, small2,
                 lambda name: tmp / f"{name}.sqlite")


@pytest.fixture(scope="module")
def pg_world(world: World, postgres_ledgers: Callable[[], str]) -> World:
    """The same world with its ledgers on the suite's PostgreSQL server: the replica and the audit
    recorded in a new database, and what the ledger commands write kept in a folder of its own."""
    tmp = world.tmp / "postgresql"
    tmp.mkdir()
    ledger = postgres_ledgers()
    _invoke("replicate", world.bag, world.replica, "--ledger", ledger, "-q")
    _invoke("audit", world.bag, "--ledger", ledger, "-q")
    damaged = tmp / "damaged" / world.bag.name
    shutil.copytree(world.bag, damaged)
    (damaged / "data" / "objects" / "recordings" / "rehearsal-1981.flac").unlink()
    return dataclasses.replace(world, tmp=tmp, ledger=ledger, damaged=damaged,
                               spare=lambda _name: postgres_ledgers())


def _world(request: pytest.FixtureRequest, backend: str) -> World:
    """The world whose ledger is on ``backend`` (the PostgreSQL one is built when first asked for)."""
    return request.getfixturevalue("world" if backend == "sqlite" else "pg_world")  # type: ignore[no-any-return]


#: The objects of the test store: one read by log, diff, export and validate, and one per run
#: (--json, then -q) of each command that makes a version or deletes content.
STORE_OBJECTS = ["urn:example:small", *(f"urn:example:{verb}-{how}" for verb in ("update", "withdraw", "purge")
                                        for how in ("json", "quiet"))]


def _small_bag(tmp: Path, name: str, notes: str) -> Path:
    """A bag of two small text files, made by ``preserve bag``."""
    folder = tmp / f"{name}-files"
    folder.mkdir()
    (folder / "notes.txt").write_text(notes, encoding="utf-8")
    (folder / "credits.txt").write_text("recorded by the donor\n", encoding="utf-8")
    _invoke("bag", folder, tmp / name, "-q")
    return tmp / name


def _ledger_copy(w: Any, name: str) -> Path | str:
    """A copy of the shared ledger for a command that changes what it holds: SQLite's backup API,
    or a new PostgreSQL database the ledger is migrated into."""
    dest = w.spare(name)
    if isinstance(w.ledger, str):
        _invoke("ledger", "migrate", w.ledger, dest, "-q")
        return dest
    with sqlite3.connect(w.ledger) as src, sqlite3.connect(dest) as out:
        src.backup(out)
    return dest


def _compact_case(name: str) -> Case:
    """``ledger compact`` of a copy of the shared ledger (the copy is what the result is about)."""

    def case(w: World) -> tuple[list[object], Path | str]:
        copy = _ledger_copy(w, name)
        return ["ledger", "compact", "--ledger", copy], copy

    return case


def _store_case(verb: str, how: str) -> Case:
    """``store update``, ``deaccession`` or ``purge`` of the object kept for this run."""
    who = ["--operator", "Test Curator"]
    extra = {"update": ["--from", "{small2}", "--reason", "notes corrected", *who],
             "withdraw": ["--reason", "agreement withdrawn", "--authority", "Collections Committee", *who],
             "purge": ["--reason", "court order", "--authority", "County Court", *who, "--confirm"]}[verb]
    command = {"withdraw": "deaccession"}.get(verb, verb)

    def case(w: World) -> tuple[list[object], Path]:
        args = [w.small2 if a == "{small2}" else a for a in extra]
        return ["store", command, w.store, f"urn:example:{verb}-{how}", *args], w.store

    return case


#: Every command with a result: its arguments (without --json) and the path its result is about.
Case = Callable[[World], tuple[list[object], Path | str]]
RESULTS: dict[str, Case] = {
    "check": lambda w: (["check", w.coll], w.coll),
    "package": lambda w: (["package", w.coll, w.tmp / "pkg-json"], w.tmp / "pkg-json"),
    "bag": lambda w: (["bag", w.plain, w.tmp / "plain-bag"], w.tmp / "plain-bag"),
    "validate": lambda w: (["validate", w.bag], w.bag),
    "unpack": lambda w: (["unpack", w.zip, w.tmp / "unzipped"], w.tmp / "unzipped"),
    "show": lambda w: (["show", w.bag], w.bag),
    "init": lambda w: (["init", w.fresh], w.fresh),
    "audit": lambda w: (["audit", w.bag, "--ledger", w.ledger], w.bag),
    "report": lambda w: (["report", "--ledger", w.ledger], w.ledger),
    "replicate": lambda w: (["replicate", w.bag, w.tmp / "second-copy", "--ledger", w.ledger], w.bag),
    "restore": lambda w: (["restore", w.replica / w.bag.name, w.tmp / "restored"], w.tmp / "restored"),
    "repair": lambda w: (["repair", w.damaged, "--from", w.replica, "--ledger", w.spare("repairs")], w.damaged),
    "ledger backup": lambda w: (["ledger", "backup", w.tmp / "backup.sqlite", "--ledger", w.ledger],
                                w.tmp / "backup.sqlite"),
    "ledger info": lambda w: (["ledger", "info", "--ledger", w.ledger], w.ledger),
    "schemas install": lambda w: (["schemas", "install", "--from", SCHEMAS, "--dest", w.tmp / "schemas"],
                                  w.tmp / "schemas"),
    "ledger migrate": lambda w: (["ledger", "migrate", w.ledger, w.tmp / "migrated.sqlite"], w.tmp / "migrated.sqlite"),
    "ledger flush": lambda w: (["ledger", "flush", "--ledger", w.ledger], w.ledger),
    "ledger compact": _compact_case("compact"),
    "store init": lambda w: (["store", "init", w.tmp / "store-json"], w.tmp / "store-json"),
    "store ingest": lambda w: (["store", "ingest", w.store, w.small, "--id", "urn:example:ingest-json"], w.store),
    "store validate": lambda w: (["store", "validate", w.store], w.store),
    "store export": lambda w: (["store", "export", w.store, "urn:example:small", w.tmp / "exported"],
                               w.tmp / "exported"),
    "store log": lambda w: (["store", "log", w.store, "urn:example:small"], w.store),
    "store diff": lambda w: (["store", "diff", w.store, "urn:example:small", "v1", "v2"], w.store),
    "store update": _store_case("update", "json"),
    "store deaccession": _store_case("withdraw", "json"),
    "store purge": _store_case("purge", "json"),
    "store replicate": lambda w: (["store", "replicate", w.store, w.tmp / "store-replica"], w.store),
}
#: Commands whose result is a bag: its counts and digest algorithms are in the document.
MAKE_OR_READ_BAGS = {"package", "bag", "validate", "unpack", "restore"}
#: Commands that read or write the ledger: each runs on both backends. (``ledger backup`` copies a
#: SQLite file; a PostgreSQL ledger is backed up with the server's tools, which tests/audit check.)
LEDGER_COMMANDS = {"audit", "report", "replicate", "repair", "ledger info", "ledger migrate", "ledger flush",
                   "ledger compact"}


def _runs(names: Any) -> list[Any]:
    """``(name, backend)`` for each command: both backends for a ledger command, else the SQLite world."""
    return [pytest.param(name, backend, id=f"{name}-{backend}" if name in LEDGER_COMMANDS else name)
            for name in sorted(names)
            for backend in (("sqlite", "postgresql") if name in LEDGER_COMMANDS else ("sqlite",))]


def _leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        if isinstance(cmd, click.Group):
            out.update(_leaf_commands(cmd, (*prefix, name)))
        else:
            out[" ".join((*prefix, name))] = cmd
    return out


def test_every_command_is_run_with_json_or_exempt_with_a_reason() -> None:
    commands = _leaf_commands(cli)
    assert set(RESULTS) | set(NO_JSON) == set(commands)
    assert not set(RESULTS) & set(NO_JSON)
    for name in RESULTS:
        assert any("--json" in p.opts for p in commands[name].params if isinstance(p, click.Option)), name
    for name, reason in NO_JSON.items():
        assert reason and not any("--json" in getattr(p, "opts", ()) for p in commands[name].params), name


def _one_document(stdout: str) -> dict[str, object]:
    doc = json.loads(stdout)  # the whole of standard output: one document, nothing before or after it
    assert isinstance(doc, dict)
    return doc


@pytest.mark.slow
@pytest.mark.parametrize(("name", "backend"), _runs(RESULTS))
def test_json_is_one_document_with_the_path_and_exit_code(name: str, backend: str, request: pytest.FixtureRequest,
                                                          run_preserve) -> None:
    args, path = RESULTS[name](_world(request, backend))
    r = run_preserve(*args, "--json")
    doc = _one_document(r.stdout)
    if isinstance(path, Path):
        assert Path(str(doc["path"])).resolve() == path.resolve(), doc["path"]
    else:  # a PostgreSQL ledger's URL, as given (it carries no password to hide)
        assert doc["path"] == path
    assert doc["exit"] == r.returncode and doc["meaning"] == exit_meaning(r.returncode), (r.returncode, r.stderr)
    assert isinstance(doc["warnings"], list) and isinstance(doc["problems"], list)
    assert "Traceback" not in r.stderr
    if r.returncode == 0:
        assert doc["problems"] == [], doc["problems"]
    if name in MAKE_OR_READ_BAGS:
        assert doc["algorithms"] == ["sha256", "sha512"] and isinstance(doc["files"], int) and doc["files"] > 0
    # the command did its work: what it made is there
    assert path.exists() if isinstance(path, Path) else ledger_exists(path)


@pytest.mark.slow
def test_json_answers_when_the_command_is_refused(world: World, run_preserve, tmp_path: Path) -> None:
    exists = run_preserve("package", world.coll, world.bag, "--json")
    doc = _one_document(exists.stdout)
    assert (exists.returncode, doc["exit"], doc["meaning"]) == (4, 4, "the destination already exists")
    assert doc["path"] == str(world.coll) and doc["problems"] == [exists.stderr.strip().removeprefix("preserve: error: ")]
    # a usage error found while running (not by click's parser) answers too
    lock = run_preserve("replicate", world.bag, world.tmp / "third", "--lock-mode", "compliance",
                        "--retain-until", "2040-01-01", "--json")
    doc = _one_document(lock.stdout)
    assert (lock.returncode, doc["exit"]) == (2, 2) and "apply to S3 targets only" in str(doc["problems"])
    # problems found: the findings are the problems, each naming its file
    broken = tmp_path / world.bag.name
    shutil.copytree(world.bag, broken)
    (broken / "data" / "objects" / "recordings" / "rehearsal-1981.flac").unlink()
    damaged = run_preserve("validate", broken, "--json")
    doc = _one_document(damaged.stdout)
    assert damaged.returncode == doc["exit"] == 1 and doc["valid"] is False
    problems = doc["problems"]
    assert isinstance(problems, list) and problems and all(p["severity"] == "error" for p in problems)
    assert "data/objects/recordings/rehearsal-1981.flac" in {p.get("path") for p in problems}


#: -q: only problems and the verdict line. On success: one line on standard output, nothing on
#: standard error. events writes the document asked for, whose length is its own.
QUIET: dict[str, Case] = {
    **RESULTS,
    "package": lambda w: (["package", w.coll, w.tmp / "pkg-quiet"], w.tmp / "pkg-quiet"),
    "bag": lambda w: (["bag", w.plain, w.tmp / "plain-bag-quiet"], w.tmp / "plain-bag-quiet"),
    "unpack": lambda w: (["unpack", w.zip, w.tmp / "unzipped-quiet"], w.tmp / "unzipped-quiet"),
    "init": lambda w: (["init", w.tmp / "fresh-quiet"], w.tmp / "fresh-quiet"),
    "replicate": lambda w: (["replicate", w.bag, w.tmp / "second-quiet", "--ledger", w.ledger], w.bag),
    "restore": lambda w: (["restore", w.replica / w.bag.name, w.tmp / "restored-quiet"], w.tmp / "restored-quiet"),
    "repair": lambda w: (["repair", _damaged_again(w), "--from", w.replica, "--name", w.bag.name,
                          "--ledger", w.spare("repairs")], w.damaged),
    "ledger backup": lambda w: (["ledger", "backup", w.tmp / "backup-quiet.sqlite", "--ledger", w.ledger], w.ledger),
    "schemas install": lambda w: (["schemas", "install", "--from", SCHEMAS, "--dest", w.tmp / "schemas-quiet"],
                                  w.tmp / "schemas-quiet"),
    "ledger migrate": lambda w: (["ledger", "migrate", w.ledger, w.tmp / "migrated-quiet.sqlite"],
                                 w.tmp / "migrated-quiet.sqlite"),
    "ledger compact": _compact_case("compact-quiet"),
    "store init": lambda w: (["store", "init", w.tmp / "store-quiet"], w.tmp / "store-quiet"),
    "store ingest": lambda w: (["store", "ingest", w.store, w.small, "--id", "urn:example:ingest-quiet"], w.store),
    "store export": lambda w: (["store", "export", w.store, "urn:example:small", w.tmp / "exported-quiet"],
                               w.tmp / "exported-quiet"),
    "store update": _store_case("update", "quiet"),
    "store deaccession": _store_case("withdraw", "quiet"),
    "store purge": _store_case("purge", "quiet"),
    "store replicate": lambda w: (["store", "replicate", w.store, w.tmp / "store-replica-quiet"], w.store),
}


def _damaged_again(w: World) -> Path:
    copy = w.tmp / "damaged-quiet"
    shutil.copytree(w.bag, copy)
    (copy / "data" / "objects" / "recordings" / "rehearsal-1981.flac").write_bytes(b"not the recording")
    return copy


@pytest.mark.parametrize(("name", "backend"), _runs(QUIET))
def test_quiet_is_the_verdict_line_alone(name: str, backend: str, request: pytest.FixtureRequest) -> None:
    world = _world(request, backend)
    if name == "init":
        (world.tmp / "fresh-quiet").mkdir(exist_ok=True)
        shutil.copy(world.fresh / "interview.wav", world.tmp / "fresh-quiet" / "interview.wav")
    args, _path = QUIET[name](world)
    result = CliRunner().invoke(cli, [str(a) for a in args] + ["-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == "", result.stderr
    assert len(result.stdout.splitlines()) == 1, result.stdout


def test_quiet_events_writes_only_the_document(world: World, ledger_url: Path | str) -> None:
    result = CliRunner().invoke(cli, ["events", str(world.bag), "--ledger", str(ledger_url), "-q"])
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith("<?xml")
    loud = CliRunner().invoke(cli, ["events", str(world.bag), "--ledger", str(ledger_url)])
    assert "no ledger here" in loud.stderr  # what -q left out


@pytest.mark.slow
def test_verbose_package_times_every_phase(world: World) -> None:
    result = CliRunner().invoke(cli, ["package", str(world.coll), str(world.tmp / "pkg-verbose"), "-q", "-v"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("timings: ")]
    assert [part.rsplit(" ", 2)[0] for part in line.removeprefix("timings: ").split(", ")] == [
        "check", "copy+hash", "verify", "sidecars", "archive", "total"]
    assert len(result.stdout.splitlines()) == 1


def test_json_without_a_ledger_names_the_ledger_it_looked_for(ledger_url: Path | str) -> None:
    missing = ledger_url  # no file there yet; an empty database
    result = CliRunner().invoke(cli, ["ledger", "info", "--ledger", str(missing), "--json"])
    doc = json.loads(result.stdout)
    assert doc["path"] == str(missing) and doc["exit"] == 7 and doc["problems"]


# -- the store and the ledger's migrate/flush: what their documents and -q lines say -------------------


def _json(*args: object) -> dict[str, Any]:
    """The command's --json document, run in-process, with its exit code as ``_exit``."""
    result = CliRunner().invoke(cli, [str(a) for a in args] + ["--json"])
    return {**_one_document(result.stdout), "_exit": result.exit_code}


def test_store_documents_say_what_was_done(world: World) -> None:
    log = _json("store", "log", world.store, "urn:example:small")
    assert log["object"] == "urn:example:small" and log["_exit"] == 0
    versions = log["versions"]
    assert isinstance(versions, list) and [v["version"] for v in versions] == ["v1", "v2"]
    assert versions[1]["user"] == "Test Curator"
    changes = _json("store", "diff", world.store, "urn:example:small", "v1", "v2")
    assert changes["changed"] and "data/notes.txt" in changes["changed"] and changes["added"] == []
    checked = _json("store", "validate", world.store, "--fast")
    assert checked["valid"] is True and checked["mode"] == "fast" and checked["problems"] == []
    assert {o["id"] for o in checked["objects"]} >= set(STORE_OBJECTS)


def test_store_validate_quiet_keeps_the_errors_and_one_verdict(world: World, tmp_path: Path) -> None:
    from preserve.ocfl.layout import open_root
    from preserve.ocfl.read import object_folder

    obj = tmp_path / "object"
    shutil.copytree(object_folder(open_root(world.store), "urn:example:small"), obj)
    [content] = [p for p in (obj / "v2" / "content" / "data").rglob("notes.txt")]
    content.write_text("not the notes any more\n", encoding="utf-8")
    quiet = CliRunner().invoke(cli, ["store", "validate", str(obj), "-q"])
    assert quiet.exit_code == 1 and quiet.stderr == ""
    errors = [line for line in quiet.stdout.splitlines() if line.startswith("error: ")]
    assert errors and all("[E092]" in line for line in errors), quiet.stdout
    assert quiet.stdout.splitlines()[-1] == f"{obj}: 1 object(s) checked, 1 INVALID (full check)"
    assert len(quiet.stdout.splitlines()) == len(errors) + 1
    doc = _json("store", "validate", obj)
    assert (doc["_exit"], doc["exit"], doc["valid"]) == (1, 1, False)
    problems = doc["problems"]
    assert isinstance(problems, list) and {p["code"] for p in problems} == {"E092"}
    assert all(p["id"] == "urn:example:small" and p["severity"] == "error" for p in problems)


def test_store_refusals_answer_in_json(world: World, run_preserve) -> None:
    refused = run_preserve("store", "purge", world.store, "urn:example:small", "--reason", "r", "--authority", "a",
                           "--operator", "o", "--json")
    doc = _one_document(refused.stdout)
    assert (refused.returncode, doc["exit"], doc["path"]) == (2, 2, str(world.store))
    assert doc["problems"] == [refused.stderr.strip().removeprefix("preserve: error: ")]
    assert "run it again with --confirm" in refused.stderr
    missing = run_preserve("store", "log", world.store, "urn:example:nobody", "--json")
    doc = _one_document(missing.stdout)
    assert doc["exit"] == missing.returncode != 0 and "urn:example:nobody" in str(doc["problems"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ledger_migrate_json_lists_every_table_and_the_copy_reads_the_same(backend: str,
                                                                           request: pytest.FixtureRequest) -> None:
    world = _world(request, backend)
    dest = world.tmp / "migrated-check.sqlite"
    doc = _json("ledger", "migrate", world.ledger, dest)
    assert doc["_exit"] == 0 and doc["path"] == str(dest) and doc["copied"]
    tables = doc["tables"]
    assert isinstance(tables, list) and {"bags", "audits"} <= {t["table"] for t in tables}
    assert all(len(t["sha256"]) == 64 and t["rows"] >= t["copied"] for t in tables)
    before, after = (_json("ledger", "info", "--ledger", path) for path in (world.ledger, dest))
    assert (after["bags"], after["audits"]) == (before["bags"], before["audits"]) and after["audits"]
    again = CliRunner().invoke(cli, ["ledger", "migrate", str(world.ledger), str(dest), "-q"])
    assert again.exit_code == 0 and again.stderr == ""
    assert again.stdout == (f"migrated {world.ledger} to {dest}: 0 row(s) copied; "
                            "row counts and digests of every table match\n")


def test_ledger_flush_of_a_sqlite_ledger_says_nothing_waits(world: World) -> None:
    # SQLite only: what flush says of a PostgreSQL ledger (its queue) is tests/ledger's
    result = CliRunner().invoke(cli, ["ledger", "flush", "--ledger", str(world.ledger)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{world.ledger}: a SQLite ledger is written directly; no audit outcomes wait on local disk\n"
    doc = _json("ledger", "flush", "--ledger", world.ledger)
    assert (doc["backend"], doc["written"], doc["path"]) == ("sqlite", 0, str(world.ledger))


def test_messages_name_what_the_command_takes(world: World, run_preserve, tmp_path: Path) -> None:
    # a folder that is not an OCFL object has no id and no head: the verdict says so in words
    checked = run_preserve("store", "validate", world.plain)
    assert checked.returncode == 1
    assert checked.stdout.splitlines()[-1] == (f"{world.plain}: object (no id) INVALID (0 files, 2 error(s), "
                                               "0 warning(s), full check)")
    assert "None" not in checked.stdout
    # migrate takes its ledgers as arguments: a missing SRC is not sent to a --ledger it lacks
    missing = run_preserve("ledger", "migrate", tmp_path / "none.sqlite", tmp_path / "copy.sqlite")
    assert missing.returncode == 7
    assert missing.stderr == (f"preserve: error: {tmp_path / 'none.sqlite'}: no ledger here; give as SRC the path of "
                              "an existing ledger file or a postgresql:// URL\n")
    assert not (tmp_path / "copy.sqlite").exists()

"""``store update --sheet/--config``: a metadata-only correction on real audio, written from the
stored technical metadata; the audio is neither read nor copied, and the rights gate still holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from preserve.intake.testaudio import Tone, write_mp3, write_wav
from preserve.ocfl.inventory import read_inventory, state_of
from preserve.ocfl.layout import open_root
from preserve.ocfl.validate import validate_object
from tests.intake.conftest import Collection

Run = Callable[..., subprocess.CompletedProcess[str]]
P = "{http://www.loc.gov/premis/v3}"
ID = "urn:example:correct"
#: the one audio file made long enough that reading it even once would show in the byte counts
LONG = Tone(44100, 16, 2, 30.0, 440.0)

#: Runs the CLI in this process and records what it read and wrote through system calls
#: (/proc/self/io rchar and wchar, which count every read() and write(), cached or not). The same
#: command is run first on a copy of the store (argv[2]), so the code it imports lazily is loaded
#: before the counting starts: the counts are the measured run's own file I/O.
_MEASURE = """
import json, sys
from preserve.cli.main import main

def io():
    fields = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    return int(fields["rchar"]), int(fields["wchar"])

def run(argv):
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0

command = sys.argv[3:]
run(command[:2] + [sys.argv[2]] + command[3:])
before = io()
code = run(command)
after = io()
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "read": after[0] - before[0], "written": after[1] - before[1]}, out)
"""


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Collection, Path]:
    """A collection (one long WAV, a BWF, a FLAC, an MP3) and its bag, made once for the file."""
    from preserve.package import package_collection

    base = tmp_path_factory.mktemp("correct")
    coll = Collection(base / "coll")
    write_wav(coll.root / "one.wav", LONG)
    # a BWF with everything intake reads from a file's own chunks, and a lossy file: all of it must survive
    write_wav(coll.root / "side b" / "two.wav", Tone(48000, 24, 2, 0.25, 330.0), md5_chunk=True,
              info={"INAM": "Interview B", "IART": "Sam Example", "ISFT": "Recorder 2.1"},
              bext={"Description": "Interview with Sam, side B", "Originator": "Archive", "OriginationDate": "1978-07-14",
                    "OriginationTime": "10:30:00", "CodingHistory": "A=ANALOGUE,M=stereo,T=Studer A807\r\n"
                    "A=PCM,F=48000,W=24,M=stereo,T=Benchmark ADC1\r\n"},
              ixml={"PROJECT": "Oral history", "SCENE": "B"})
    write_mp3(coll.root / "four.mp3", Tone(44100, 16, 2, 0.5, 660.0), tags={"TIT2": "Four", "TPE1": "Dee"})
    coll.rows.append("four.mp3,Four,Dee")
    coll.write_sheet()
    package_collection(coll.root, base / "bag", operator="Ada Archivist")
    return coll, base / "bag"


@pytest.fixture
def stored(tmp_path: Path, packaged: tuple[Collection, Path], run_preserve: Run) -> tuple[Collection, Path, Path]:
    """The packaged bag ingested as v1 of a new store; returns the collection, the store and the object."""
    coll, bag = packaged
    store = tmp_path / "store"
    assert run_preserve("store", "init", store).returncode == 0
    done = run_preserve("store", "ingest", store, bag, "--id", ID, "--operator", "Ada")
    assert done.returncode == 0, done.stderr
    return coll, store, open_root(store).object_path(ID)


def _sheet(tmp_path: Path, coll: Collection, rows: list[str], header: str | None = None) -> Path:
    path = tmp_path / "corrected.csv"
    path.write_text("\n".join([header or coll.header, *rows]) + "\n", encoding="utf-8")
    return path


def _file_objects(premis: Path) -> dict[str, bytes]:
    """Each payload file's objectCharacteristics (fixity, size, format, audioMD...), canonical."""
    root = etree.parse(str(premis)).getroot()
    out = {}
    for obj in root.iter(f"{P}object"):
        chars = obj.find(f"{P}objectCharacteristics")
        ids = [i.findtext(f"{P}objectIdentifierValue") or "" for i in obj.iter(f"{P}objectIdentifier")]
        if chars is not None:
            path = next(i for i in ids if i.startswith("data/"))
            out[path] = etree.tostring(chars, method="c14n")
    return out


def _version_file(obj: Path, version: str, rel: str) -> Path:
    inventory = read_inventory(obj)
    return obj / str(inventory["manifest"][state_of(inventory, version)[rel]][0])


@pytest.mark.slow
def test_a_corrected_sheet_makes_a_metadata_only_version(tmp_path: Path, stored: tuple[Collection, Path, Path],
                                                         run_preserve: Run, schemas_dir: Path) -> None:
    coll, store, obj = stored
    audio = (obj / "v1" / "content" / "data" / "objects" / "one.wav").stat().st_size
    assert audio > 5 * 1024 * 1024
    sheet = _sheet(tmp_path, coll, ["one.wav,One (corrected title),Ann", "side b/two.wav,Two,Ben",
                                    "three.flac,Three,Cy", "four.mp3,Four,Dee"])
    result, warm = tmp_path / "io.json", tmp_path / "warm-store"
    shutil.copytree(store, warm)
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(result), str(warm), "store", "update", str(store), ID,
                           "--sheet", str(sheet), "--reason", "title corrected", "--operator", "Ben Cataloguer",
                           "--address", "mailto:ben@example.org"], capture_output=True, text=True, timeout=120)
    measured = json.loads(result.read_text())
    assert measured["code"] == 0, done.stdout + done.stderr
    # no audio read or copied: far less than the one long file went through read() and write() (what is
    # read is the tag files, the sidecars a few times over, the inventories and the small submission files)
    assert measured["read"] < min(1536 * 1024, audio // 4), measured
    assert measured["written"] < 1024 * 1024, measured
    content = obj / "v2" / "content"
    stored_now = sorted(p.relative_to(content).as_posix() for p in content.rglob("*") if p.is_file())
    assert stored_now == ["metadata/correction-v2-corrected.csv", "metadata/mets.xml", "metadata/premis.xml",
                          "tagmanifest-sha256.txt", "tagmanifest-sha512.txt"]
    inventory = read_inventory(obj)
    v1, v2 = state_of(inventory, "v1"), state_of(inventory, "v2")
    assert {p: d for p, d in v2.items() if p.startswith("data/")} == {p: d for p, d in v1.items()
                                                                      if p.startswith("data/")}
    assert v2["bag-info.txt"] == v1["bag-info.txt"]
    report = validate_object(obj)
    assert report.ok, [str(f) for f in report.findings]
    # the technical metadata is carried over exactly; the description is the new sheet's
    old, new = _version_file(obj, "v1", "metadata/premis.xml"), _version_file(obj, "v2", "metadata/premis.xml")
    assert _file_objects(new) == _file_objects(old)
    assert len(_file_objects(new)) == 7
    mets = _version_file(obj, "v2", "metadata/mets.xml").read_text(encoding="utf-8")
    assert "One (corrected title)" in mets and "audiomd:samplingFrequency>44.1<" in mets
    assert "Studer A807" in mets and "Oral history" in mets and "codecQuality>lossy<" in mets
    def events(premis: Path) -> list[tuple[str, str]]:
        return sorted((ev.findtext(f"{P}eventType") or "", ev.findtext(f"{P}eventDateTime") or "")
                      for ev in etree.parse(str(premis)).getroot().iter(f"{P}event"))
    # v1's events, each told once (regenerated with v1's dates, or carried over), and the correction's
    added = [e for e in events(new) if e not in events(old)]
    assert [kind for kind, _ in added] == ["metadata modification"], added
    assert len(events(new)) == len(events(old)) + 1
    assert ("digitization", "1978-07-14T10:30:00") in events(new)
    # the exported version is a valid bag, sidecars against the official schemas included
    out = tmp_path / "v2"
    assert run_preserve("store", "export", store, ID, out).returncode == 0
    checked = run_preserve("validate", out, env={**os.environ, "PRESERVE_SCHEMAS": str(schemas_dir)})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 warning(s)" in checked.stdout, checked.stdout + checked.stderr
    log = json.loads(run_preserve("store", "log", store, ID, "--json").stdout)["versions"]
    assert "title corrected" in log[1]["message"]
    assert [e["type"] for e in log[1]["events"]].count("metadata modification") == 1


@pytest.mark.slow
def test_the_rights_gate_and_the_sheet_checks_refuse_naming_the_row(tmp_path: Path, stored: tuple[Collection, Path, Path],
                                                                    run_preserve: Run) -> None:
    coll, store, obj = stored
    header = coll.header + ",copyright_status,rights_basis,rights_holder,permitted_acts"
    sheet = _sheet(tmp_path, coll, ["one.wav,One,Ann,,,,", "side b/two.wav,Two,Ben,unknown,donor,Dana,replicate",
                                    "four.wav,Four,Dee,,,,"], header)
    done = run_preserve("store", "update", store, ID, "--sheet", sheet, "--reason", "rights", "--operator", "Ann")
    assert done.returncode == 1, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert "corrected.csv row 2 (side b/two.wav): not cleared: copyright_status is 'unknown'" in err
    assert "corrected.csv row 3 (four.wav): the object holds no such audio file" in err
    assert "no row for three.flac" in err
    assert read_inventory(obj)["head"] == "v1" and not (obj / "v2").exists()
    assert list((store / "extensions" / "preserve-store" / "staging").iterdir()) == []
    # a rights document the object does not hold cannot be cited by a correction
    sheet = _sheet(tmp_path, coll, ["one.wav,One,Ann,copyrighted,donor,Dana,replicate", "side b/two.wav,Two,Ben,,,,",
                                    "three.flac,Three,Cy,,,,"], header)
    done = run_preserve("store", "update", store, ID, "--sheet", sheet, "--reason", "rights", "--operator", "Ann")
    assert done.returncode == 1
    assert "row 1 (one.wav): not cleared: rights_basis 'donor' needs the donor agreement" in " ".join(done.stderr.split())


@pytest.mark.slow
def test_a_corrected_config_rewrites_bag_info_and_the_collection(tmp_path: Path, stored: tuple[Collection, Path, Path],
                                                                 run_preserve: Run) -> None:
    coll, store, obj = stored
    toml = (coll.root / "collection.toml").read_text(encoding="utf-8").replace(
        'organization = "Test Archive"', 'organization = "Renamed Sound Archive"')
    config = tmp_path / "collection.toml"
    config.write_text(toml, encoding="utf-8")
    sheet = _sheet(tmp_path, coll, ["one.wav,One (corrected),Ann", *coll.rows[1:]])
    assert run_preserve("store", "update", store, ID, "--sheet", sheet, "--reason", "title", "--operator",
                        "Ann").returncode == 0
    done = run_preserve("store", "update", store, ID, "--config", config, "--reason", "archive renamed",
                        "--operator", "Ann")
    assert done.returncode == 0, done.stderr
    info = _version_file(obj, "v3", "bag-info.txt").read_text(encoding="utf-8")
    assert "Source-Organization: Renamed Sound Archive\n" in info and "Test Archive" not in info
    old_info = _version_file(obj, "v1", "bag-info.txt").read_text(encoding="utf-8").splitlines()
    assert [ln.split(":")[0] for ln in info.splitlines()] == [ln.split(":")[0] for ln in old_info]  # order kept
    # each correction starts from the one before: the config alone keeps v2's corrected sheet, and a
    # later sheet alone keeps v3's config
    mets = _version_file(obj, "v3", "metadata/mets.xml").read_text(encoding="utf-8")
    assert "Renamed Sound Archive" in mets and "One (corrected)" in mets
    sheet.write_text(sheet.read_text(encoding="utf-8").replace("One (corrected)", "One (again)"), encoding="utf-8")
    assert run_preserve("store", "update", store, ID, "--sheet", sheet, "--reason", "title", "--operator",
                        "Ann").returncode == 0
    mets = _version_file(obj, "v4", "metadata/mets.xml").read_text(encoding="utf-8")
    assert "Renamed Sound Archive" in mets and "One (again)" in mets and "Test Archive" not in mets
    out = tmp_path / "v4"
    assert run_preserve("store", "export", store, ID, out).returncode == 0
    checked = run_preserve("validate", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # --sheet/--config do not mix with --from or --remove, and need a reason
    done = run_preserve("store", "update", store, ID, "--config", config, "--remove", "one.wav", "--reason", "x",
                        "--operator", "Ann")
    assert done.returncode == 2
    done = run_preserve("store", "update", store, ID, "--config", config, "--operator", "Ann")
    assert done.returncode == 2 and "--reason" in done.stderr
    assert read_inventory(obj)["head"] == "v4"


@pytest.mark.slow
def test_a_correction_killed_at_random_points(tmp_path: Path, stored: tuple[Collection, Path, Path],
                                              run_preserve: Run) -> None:
    import random
    import signal
    import time

    from preserve.ocfl.read import export

    coll, store, _obj = stored
    sheet = _sheet(tmp_path, coll, ["one.wav,One (corrected),Ann", *coll.rows[1:]])
    exe = Path(sys.executable).parent / "preserve"
    v1 = tmp_path / "v1-before"
    export(store, ID, v1, version="v1")
    rnd = random.Random(17)
    killed = 0
    shutil.copytree(store, tmp_path / "timing")
    started = time.perf_counter()  # kills are timed within one uninterrupted run, whatever the machine's speed
    assert run_preserve("store", "update", tmp_path / "timing", ID, "--sheet", sheet, "--reason", "r",
                        "--operator", "o").returncode == 0
    took = time.perf_counter() - started
    for attempt in range(4):
        root = tmp_path / f"store{attempt}"
        shutil.copytree(store, root)
        args = ["store", "update", str(root), ID, "--sheet", str(sheet), "--reason", "r", "--operator", "o"]
        proc = subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.1, 0.9) * took)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        out = tmp_path / f"v1-{attempt}"
        export(root, ID, out, version="v1")  # the previous version is intact and readable
        assert sorted(p.relative_to(out) for p in out.rglob("*")) == sorted(p.relative_to(v1) for p in v1.rglob("*"))
        done = run_preserve(*args)  # the next run cleans up, finishing a version the killed run had written
        assert done.returncode == 0, done.stderr
        assert list((root / "extensions" / "preserve-store" / "staging").iterdir()) == []
        obj = open_root(root).object_path(ID)
        report = validate_object(obj)
        assert report.ok, (attempt, [str(f) for f in report.errors])
        assert read_inventory(obj)["head"] in ("v2", "v3")
    assert killed >= 2, "kills must land while the correction runs, or this tests nothing"


@pytest.mark.slow
def test_a_sheet_that_restates_little_keeps_the_rest(tmp_path: Path, stored: tuple[Collection, Path, Path],
                                                     run_preserve: Run) -> None:
    coll, store, obj = stored
    # two columns only, and empty title cells: the delivered sheet's titles and artists stand
    sheet = _sheet(tmp_path, coll, ["one.wav,One (retitled)", "side b/two.wav,", "three.flac,", "four.mp3,"],
                   header="file,title")
    done = run_preserve("store", "update", store, ID, "--sheet", sheet, "--reason", "title", "--operator", "Ann")
    assert done.returncode == 0, done.stderr
    M = "{http://www.loc.gov/mods/v3}"
    mods = etree.parse(str(_version_file(obj, "v2", "metadata/mets.xml"))).getroot()
    titles = [t.text for t in mods.iter(f"{M}title")]
    names = {n.text for n in mods.iter(f"{M}namePart")}
    assert {"One (retitled)", "Two", "Three", "Four"} <= set(titles) and "One" not in titles
    assert {"Ann", "Ben", "Cy", "Dee"} <= names

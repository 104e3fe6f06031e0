"""The whole life of an AIP in the store, on real audio: ingest, a correction, an added track,
deaccession, and exports of v1 and v3 that validate as bags (sidecars against the official
schemas) whose METS and PREMIS tell the history."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from preserve.intake.testaudio import Tone, write_wav
from preserve.ocfl.inventory import read_inventory, state_of
from preserve.ocfl.layout import open_root
from preserve.ocfl.validate import validate_object
from tests.intake.conftest import Collection
from tests.ocfl.conftest import tree

Run = Callable[..., subprocess.CompletedProcess[str]]
PREMIS = "{http://www.loc.gov/premis/v3}"


def _event_types(bag: Path, document: str) -> list[str]:
    root = etree.parse(str(bag / "metadata" / document)).getroot()
    return [(ev.findtext(f"{PREMIS}eventType") or "") for ev in root.iter(f"{PREMIS}event")]


def _notes(bag: Path) -> str:
    root = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    return "\n".join(n.text or "" for n in root.iter(f"{PREMIS}eventOutcomeDetailNote"))


def _audio_in(obj: Path, version: str) -> list[str]:
    content = obj / version / "content" / "data" / "objects"
    return sorted(p.name for p in content.rglob("*") if p.is_file()) if content.is_dir() else []


@pytest.mark.slow
def test_ingest_correct_add_deaccession_export(tmp_path: Path, run_preserve: Run, schemas_dir: Path) -> None:
    coll = Collection(tmp_path / "coll")
    store = tmp_path / "store"
    bag = tmp_path / "bag"
    assert run_preserve("package", "-q", "--operator", "Ada Archivist", coll.root, bag).returncode == 0
    assert run_preserve("store", "init", store).returncode == 0
    done = run_preserve("store", "ingest", store, bag, "--operator", "Ada Archivist", "--address",
                        "mailto:ada@example.org")
    assert done.returncode == 0, done.stderr
    object_id = done.stdout.split(": v1 ingested")[0]
    assert object_id.startswith("urn:uuid:")  # built from the External-Identifier test-0001, not a URI
    obj = open_root(store).object_path(object_id)

    # v2: a corrected title in the sheet, a metadata-only correction; no audio is read or stored again
    coll.rows[0] = "one.wav,One (corrected title),Ann"
    coll.write_sheet()
    done = run_preserve("store", "update", store, object_id, "--sheet", coll.root / "metadata.csv", "--reason",
                        "title corrected", "--operator", "Ben Cataloguer", "--address", "mailto:ben@example.org")
    assert done.returncode == 0, done.stderr
    assert _audio_in(obj, "v2") == []
    assert not any(p.startswith("data/") for p in state_of(read_inventory(obj), "v2")
                   if p not in state_of(read_inventory(obj), "v1"))

    # v3: a track added; only its audio is stored
    write_wav(coll.root / "four.wav", Tone(22050, 16, 1, 0.25, 660.0))
    coll.rows.append("four.wav,Four,Dee")
    coll.write_sheet()
    done = run_preserve("store", "update", store, object_id, "--from", coll.root, "--reason", "track delivered late",
                        "--operator", "Ben Cataloguer", "--address", "mailto:ben@example.org")
    assert done.returncode == 0, done.stderr
    assert _audio_in(obj, "v3") == ["four.wav"]

    # v4: deaccession
    done = run_preserve("store", "deaccession", store, object_id, "--reason", "donor agreement withdrawn",
                        "--authority", "Collections Committee", "--operator", "Cy Director",
                        "--address", "mailto:cy@example.org")
    assert done.returncode == 0, done.stderr
    inventory = read_inventory(obj)
    assert inventory["head"] == "v4"
    assert not any(p.startswith("data/") for p in state_of(inventory))
    report = validate_object(obj)
    assert report.ok and not report.warnings, [str(f) for f in report.findings]

    v1, v3 = tmp_path / "v1", tmp_path / "v3"
    assert run_preserve("store", "export", store, object_id, v1, "--version", "v1").returncode == 0
    assert run_preserve("store", "export", store, object_id, v3, "--version", "v3").returncode == 0
    assert tree(v1) == tree(bag)
    for exported in (v1, v3):
        checked = run_preserve("validate", exported)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # v3's sidecars tell the whole history: the first packaging, the correction, the added track
    for document in ("premis.xml", "mets.xml"):
        types = _event_types(v3, document)
        assert types.count("ingestion") >= 3, (document, types)  # v1's packaging, v3's packaging, v3's new track
        assert "replacement" in types, (document, types)
        assert types.count("metadata modification") == 1, (document, types)  # v2's correction
    notes = _notes(v3)
    four = hashlib.sha512((coll.root / "four.wav").read_bytes()).hexdigest()
    assert f"added data/objects/four.wav sha512 {four}" in notes
    assert "data/submission/metadata.csv" in notes  # replaced in v3 (v2 kept the sheet as a tag file)
    assert "one.wav" in (v3 / "metadata" / "mets.xml").read_text() and "corrected title" in (
        v3 / "metadata" / "mets.xml").read_text()
    # the export of the deaccessioned head is a bag without payload that says why
    tomb = tmp_path / "v4"
    assert run_preserve("store", "export", store, object_id, tomb).returncode == 0
    assert run_preserve("validate", tomb).returncode == 0
    assert "deaccession" in _event_types(tomb, "premis.xml")


@pytest.mark.slow
def test_a_new_track_without_rights_is_refused(tmp_path: Path, run_preserve: Run) -> None:
    coll = Collection(tmp_path / "coll")
    store = tmp_path / "store"
    assert run_preserve("package", "-q", coll.root, tmp_path / "bag").returncode == 0
    assert run_preserve("store", "init", store).returncode == 0
    assert run_preserve("store", "ingest", store, tmp_path / "bag", "--id", "urn:example:gate").returncode == 0
    (coll.root / "rights" / "agreement.txt").unlink()  # the rights gate now fails for every track
    done = run_preserve("store", "update", store, "urn:example:gate", "--from", coll.root, "--reason", "more",
                        "--operator", "Ann")
    assert done.returncode == 1, done.stderr
    obj = open_root(store).object_path("urn:example:gate")
    assert read_inventory(obj)["head"] == "v1" and not (obj / "v2").exists()
    assert list((store / "extensions" / "preserve-store" / "staging").iterdir()) == []

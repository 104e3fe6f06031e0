"""The check's report: the table, JSON, warnings, rights vocabulary, checksum files, odd input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from preserve.cli.check_cmd import check
from preserve.errors import EXIT_INPUT, EXIT_OK, EXIT_PROBLEMS
from preserve.intake import check_collection
from preserve.intake.sheet import COLUMNS, read_sheet
from preserve.intake.testaudio import Tone, write_flac, write_mp3, write_wav

from .conftest import Collection, invoke

Run = Callable[..., subprocess.CompletedProcess[str]]
TEMPLATE = Path(__file__).resolve().parents[2] / "preserve" / "templates" / "metadata-template.csv"


def test_table_then_problems(collection: Collection) -> None:
    collection.rows.append("missing.flac,Gone,Nobody")
    collection.write_sheet()
    out = invoke(check, collection.root)
    assert out.code == EXIT_PROBLEMS
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["FILE", "FORMAT", "DURATION", "RIGHTS", "AUDIO", "CHECK"]
    assert lines[1].split() == ["one.wav", "fmt/141", "WAVE", "0:00.250", "cleared", "not", "applicable"]
    assert lines[3].split() == ["three.flac", "fmt/279", "FLAC", "0:00.250", "cleared", "pass"]
    assert "1 problem(s) stop packaging:" in out.stdout
    assert out.stdout.rstrip().endswith("error: metadata.csv row 4 (missing.flac): no such file in the collection")


def test_json_report(collection: Collection) -> None:
    out = invoke(check, "--json", collection.root)
    assert out.code == EXIT_OK
    data = json.loads(out.stdout)
    assert data["ready"] is True and data["sheet"] == "metadata.csv"
    two = data["files"][1]
    assert two["source_path"] == "side b/two.wav"
    assert two["technical"]["channels"] == 2 and two["technical"]["sample_rate"] == 22050
    assert two["format"]["puid"] == "fmt/141" and two["format"]["tool"] == "fido"
    assert two["rights"]["basis"] == "donor" and two["rights_status"] == "cleared"


def test_missing_collection_folder(tmp_path: Path) -> None:
    out = invoke(check, tmp_path / "nowhere")
    assert out.code == EXIT_INPUT
    assert str(out.exception) == f"{tmp_path / 'nowhere'}: no such file or directory"


def test_isrc_and_title_disagreement_warns(collection: Collection) -> None:
    write_wav(collection.root / "one.wav", Tone(22050, 16, 1, 0.25), bext={"Description": "x"},
              ixml={"ISRC": "GB-EXR-24-00001"}, info={"INAM": "Another title"})
    collection.header = "file,title,artist,isrc"
    collection.rows = ["one.wav,One,Ann,GB-EXR-24-00099", "side b/two.wav,Two,Ben,", "three.flac,Three,Cy,"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.warnings == [
        "one.wav (row 1): the sheet's ISRC GBEXR2400099 differs from the file's embedded ISRC GBEXR2400001; the sheet is kept",
        "one.wav (row 1): the sheet's title 'One' differs from the file's embedded title 'Another title'; the sheet is kept",
    ]
    assert report.collection.tracks[0].isrc == "GBEXR2400099"


def test_empty_cells_fall_back_to_tags(collection: Collection) -> None:
    write_mp3(collection.root / "four.mp3", Tone(22050, 16, 1, 0.3),
              tags={"TIT2": "Tagged title", "TPE1": "Tagged artist", "TSRC": "GBEXR2400005", "TALB": "Tagged album"})
    write_flac(collection.root / "four.flac", Tone(22050, 16, 1, 0.3))
    collection.header = "file,title,artist,isrc"
    collection.rows = [r + "," for r in collection.rows] + ["four.mp3,,,", "four.flac,Tagged title,Tagged artist,GBEXR2400005"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert report.problems == []
    four = report.collection.tracks[3]
    assert (four.title, four.artists, four.isrc, four.album) == ("Tagged title", ("Tagged artist",), "GBEXR2400005", "Tagged album")
    assert report.warnings == []        # the MP3 has a lossless copy (same ISRC) in the collection


def test_lossy_only_copy_warns(collection: Collection) -> None:
    write_mp3(collection.root / "four.mp3", Tone(22050, 16, 1, 0.3))
    collection.rows.append("four.mp3,Four,Di")
    collection.write_sheet()
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.warnings == [
        "four.mp3 (row 4): MP3 is a lossy format and this is the only copy of the recording in the collection; it is "
        "not a preservation-grade master (ask the producer for a lossless original if one exists)"]


def test_rights_vocabulary(collection: Collection) -> None:
    collection.header = "file,title,rights_basis,rights_holder,copyright_status,permitted_acts,license,agreement"
    collection.rows = [
        "one.wav,One,copyright,,public domain,replicate,,",                    # cleared: public domain needs no holder
        "side b/two.wav,Two,license,Label Ltd,copyrighted,replicate;migrate,,",  # a licence basis without its licence
        "three.flac,Three,contract,Label Ltd,Copyrighted,replicate;share,,",    # not in the vocabularies
    ]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [p.message for p in report.problems] == [
        "metadata.csv row 2 (side b/two.wav): not cleared: rights_basis 'license' needs the licence ('license') or its agreement document ('agreement')",
        "metadata.csv row 3 (three.flac): not cleared: rights_basis 'contract' is not one of copyright, license, statute, donor, policy, other",
        "metadata.csv row 3 (three.flac): not cleared: permitted_acts 'share' not among replicate, migrate, disseminate, modify, delete",
    ]
    assert report.uncleared == {"side b/two.wav", "three.flac"}
    # the defaults' deed of gift is still named by the defaults, so it is accounted for
    assert "rights/agreement.txt" in {s.source_path for s in report.collection.submission_files}


def test_missing_agreement_document(collection: Collection) -> None:
    (collection.root / "rights" / "agreement.txt").unlink()
    report = check_collection(collection.root)
    assert [p.message for p in report.problems] == [
        "collection.toml [defaults]: agreement 'rights/agreement.txt' does not exist in the collection",
        "metadata.csv row 1 (one.wav): not cleared: agreement 'rights/agreement.txt' does not exist in the collection",
        "metadata.csv row 2 (side b/two.wav): not cleared: agreement 'rights/agreement.txt' does not exist in the collection",
        "metadata.csv row 3 (three.flac): not cleared: agreement 'rights/agreement.txt' does not exist in the collection",
    ]


def test_checksum_files_gnu_bsd_and_subfolders(collection: Collection) -> None:
    sha = hashlib.sha256((collection.root / "side b" / "two.wav").read_bytes()).hexdigest()
    (collection.root / "side b" / "SHA256SUMS").write_text(f"{sha} *two.wav\n", encoding="utf-8")
    (collection.root / "md5sum.txt").write_text(
        f"MD5 (one.wav) = {collection.md5('one.wav')}\n# a comment\n{collection.md5('three.flac')}  ./three.flac\n"
        f"{'1' * 32}  gone.wav\nnot a checksum line\n", encoding="utf-8")
    report = check_collection(collection.root)
    assert [p.message for p in report.problems] == [
        "md5sum.txt line 5: not a checksum line ('DIGEST  NAME' or 'MD5 (NAME) = DIGEST'): 'not a checksum line'",
        "md5sum.txt line 4: names gone.wav, which is not in the collection",
    ]
    checks = {t.source_path: [(c.algorithm, c.source, c.outcome) for c in t.producer_checksums] for t in report.collection.tracks}
    assert checks == {"one.wav": [("md5", "md5sum.txt line 1", "pass")],
                      "side b/two.wav": [("sha256", "side b/SHA256SUMS line 1", "pass")],
                      "three.flac": [("md5", "md5sum.txt line 3", "pass")]}


def test_sheet_checksum_column(collection: Collection) -> None:
    collection.header = "file,title,artist,sha1"
    sha1 = hashlib.sha1((collection.root / "one.wav").read_bytes()).hexdigest()
    collection.rows = [f"one.wav,One,Ann,{sha1}", "side b/two.wav,Two,Ben,not-hex", "three.flac,Three,Cy,"]
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [(p.code, p.message, p.file, p.row) for p in report.problems] == [
        ("sheet", "metadata.csv row 2 (side b/two.wav): the sha1 cell 'not-hex' is not a sha1 digest (40 hex digits)",
         "side b/two.wav", 2)]
    assert report.collection.tracks[0].producer_checksums[0].outcome == "pass"


def test_paths_outside_and_symlinks(collection: Collection, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.wav").write_bytes((collection.root / "one.wav").read_bytes())
    os.symlink(tmp_path / "elsewhere.wav", collection.root / "link.wav")
    collection.rows.append("../elsewhere.wav,Out,Side")
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [(p.code, p.message) for p in report.problems] == [
        ("unsafe-path", "metadata.csv row 4 (../elsewhere.wav): the path points outside the collection "
                         "('..' climbs out of it); list only files inside the collection folder"),
        ("symlink", "link.wav: is a symbolic link; deliver the file itself"),
    ]


def test_symlink_named_as_agreement(collection: Collection) -> None:
    # a link that stays inside the collection: still not the document itself
    (collection.root / "rights" / "agreement.txt").rename(collection.root / "rights" / "real.txt")
    os.symlink("real.txt", collection.root / "rights" / "agreement.txt")
    report = check_collection(collection.root)
    link = "is a symbolic link; deliver the file itself"
    assert [(p.code, p.message, p.file, p.row) for p in report.problems] == [
        ("rights", f"collection.toml [defaults]: agreement 'rights/agreement.txt' {link}", "collection.toml", None),
        *[("rights", f"metadata.csv row {n} ({f}): not cleared: agreement 'rights/agreement.txt' {link}", f, n)
          for n, f in enumerate(["one.wav", "side b/two.wav", "three.flac"], 1)],
        ("symlink", f"rights/agreement.txt: {link}", "rights/agreement.txt", None),
        ("unlisted-file", "rights/real.txt: not audio, not the sheet, not a checksum file and not a rights document "
                          "named by a row or the defaults; remove it, name it in 'agreement', or add an ignore pattern "
                          "in collection.toml", "rights/real.txt", None),
    ]


def test_two_sheets(collection: Collection) -> None:
    (collection.root / "metadata.json").write_text('[{"file": "one.wav", "title": "One"}]', encoding="utf-8")
    report = check_collection(collection.root)
    assert [(p.code, p.message, p.file) for p in report.problems] == [
        ("sheet", "metadata.json: a second sheet beside metadata.csv; keep one sheet (or name the one to read with "
                  "'sheet' in the [collection] table of collection.toml)", "metadata.json")]
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace("[collection]", '[collection]\nsheet = "metadata.csv"'),
                                                     encoding="utf-8")
    assert [p.code for p in check_collection(collection.root).problems] == ["unlisted-file"]


def test_config_errors(collection: Collection) -> None:
    (collection.root / "collection.toml").write_text('[collection]\nidentifer = "typo"\ncolour = "red"\n[defaults]\nrating = 5\n'
                                                     'rights_holdr = "A"\n[bag_inf]\nContact-Email = "a@example.org"\n',
                                                     encoding="utf-8")
    report = check_collection(collection.root)
    # refused, never ignored, each with the closest known key, as preserve.toml's are
    assert [p.message for p in report.problems][:5] == [
        "collection.toml: unknown table or key [bag_inf]; did you mean [bag-info]?",
        "collection.toml: unknown key collection.identifer; did you mean 'identifier'?",
        "collection.toml: unknown key collection.colour (known: description, group_identifier, identifier, ignore, organization, sheet, title)",
        "collection.toml: defaults.rating is not a sheet column",
        "collection.toml: defaults.rights_holdr is not a sheet column; did you mean 'rights_holder'?",
    ]
    (collection.root / "collection.toml").write_text("[collection\n", encoding="utf-8")
    report = check_collection(collection.root)
    assert report.problems[0].message.startswith("collection.toml: not valid TOML (")


def test_template_is_a_valid_sheet() -> None:
    sheet = read_sheet(TEMPLATE, "metadata-template.csv")
    assert sheet.problems == [] and sheet.warnings == []
    assert tuple(sheet.columns) == COLUMNS
    assert sheet.rows[0].get("permitted_acts") == "replicate; migrate; disseminate"


def test_unicode_normalization_of_names(collection: Collection, tmp_path: Path) -> None:
    import unicodedata

    from preserve.package import package_collection

    nfd = unicodedata.normalize("NFD", "café.wav")
    (collection.root / "one.wav").rename(collection.root / nfd)
    (collection.root / "rights" / "agreement.txt").rename(collection.root / "rights" / unicodedata.normalize("NFD", "accord signé.txt"))
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    (collection.root / "collection.toml").write_text(toml.replace("rights/agreement.txt", "rights/accord signé.txt"), encoding="utf-8")
    collection.rows[0] = "café.wav,One,Ann"      # NFC, as typed in a spreadsheet
    collection.write_sheet()
    report = check_collection(collection.root)
    assert report.problems == []
    assert report.collection.tracks[0].source_path == nfd
    result = package_collection(collection.root, tmp_path / "bag", profile=None)
    agreement = result.report.collection.tracks[0].rights.agreement
    assert agreement == "data/submission/rights/" + unicodedata.normalize("NFD", "accord signé.txt")
    assert (tmp_path / "bag" / agreement).is_file()
    assert (tmp_path / "bag" / "data" / "objects" / nfd).is_file()


def test_duplicate_rows_in_different_unicode_forms(collection: Collection) -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "café.wav")
    (collection.root / "one.wav").rename(collection.root / nfd)
    collection.rows[0] = "café.wav,One,Ann"
    collection.rows.append(f"{nfd},One again,Ann")
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [(p.code, p.row) for p in report.problems] == [("sheet", 4)]
    assert report.problems[0].message == f"metadata.csv row 4: {nfd} is already described in row 1; keep one row per file"
    assert [t.title for t in report.collection.tracks] == ["One", "Two", "Three"]


def test_fifo_and_undecodable_names_are_reported_not_opened(collection: Collection) -> None:
    os.mkfifo(collection.root / "pipe.wav")            # opening it for reading would block forever
    (collection.root / os.fsdecode(b"caf\xe9.wav")).write_bytes(b"RIFF")
    collection.rows.append("pipe.wav,Pipe,Nobody")
    collection.write_sheet()
    report = check_collection(collection.root)
    assert [(p.code, p.message) for p in report.problems] == [
        ("bad-name", "caf\\xe9.wav: the name is not valid UTF-8; BagIt manifests are UTF-8, so rename it"),
        ("unlisted-file", "pipe.wav: is not a regular file (device, socket or pipe)"),
    ]
    out = invoke(check, "--json", collection.root)
    assert out.code == EXIT_PROBLEMS
    assert json.loads(out.stdout)["problems"][0]["code"] == "bad-name"


def test_listed_file_that_is_ignored_and_per_row_defaults(collection: Collection) -> None:
    toml = (collection.root / "collection.toml").read_text(encoding="utf-8")
    toml = toml.replace("[defaults]", 'ignore = ["*.flac"]\n\n[defaults]\naccept_damaged = "yes"')
    (collection.root / "collection.toml").write_text(toml, encoding="utf-8")
    report = check_collection(collection.root)
    assert [p.message for p in report.problems] == [
        "collection.toml: defaults.accept_damaged cannot be a default; it belongs to one file's row",
        "metadata.csv row 3 (three.flac): the file is left out as matching an ignore pattern of collection.toml; "
        "a listed file cannot be excluded",
    ]


def test_accept_damaged_means_yes_only(collection: Collection) -> None:
    write_flac(collection.root / "three.flac", Tone(22050, 16, 1, 0.25, 550.0), md5="34" * 16)
    collection.header = "file,title,artist,accept_damaged"
    collection.rows = ["one.wav,One,Ann,", "side b/two.wav,Two,Ben,", "three.flac,Three,Cy,true"]
    collection.write_sheet()
    assert [p.code for p in check_collection(collection.root).problems] == ["essence-mismatch"]
    collection.rows[2] = "three.flac,Three,Cy, Yes "
    collection.write_sheet()
    assert check_collection(collection.root).problems == []


def test_low_bitrate_mp3_is_identified_without_hanging(collection: Collection, run_preserve: Run) -> None:
    # fido's PRONOM end-of-file pattern for fmt/134 backtracks for hours on MP3s like this one
    # when run through Python's re (openpreserve/fido#233).
    write_mp3(collection.root / "four.mp3", Tone(44100, 16, 2, 2.0))
    write_mp3(collection.root / "five.mp3", Tone(44100, 16, 2, 2.0), tags={"TIT2": "Five"})
    collection.rows += ["four.mp3,Four,Di", "five.mp3,Five,Ed"]
    collection.write_sheet()
    out = run_preserve("check", "--json", collection.root, timeout=60)
    assert out.returncode == EXIT_OK, out.stderr
    files = {f["source_path"]: f["format"] for f in json.loads(out.stdout)["files"]}
    for name in ("four.mp3", "five.mp3"):
        assert files[name]["puid"] == "fmt/134"
        assert files[name]["tool"] == "fido" and files[name]["method"] == "signature"
        assert files[name]["signature_version"].startswith("PRONOM v")
        assert files[name]["note"] is None

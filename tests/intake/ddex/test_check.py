"""Checking and packaging one DDEX delivery: what the message says, verified against the files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from lxml import etree

from preserve.cli.check_cmd import check as check_cmd
from preserve.cli.package_cmd import package as package_cmd
from preserve.intake import check_collection
from preserve.intake.testaudio import Tone, write_wav

from ..conftest import invoke
from .conftest import ICPN, make_delivery

NS = {"mets": "http://www.loc.gov/METS/", "mods": "http://www.loc.gov/mods/v3", "premis": "http://www.loc.gov/premis/v3"}


def _codes(report: object) -> list[str]:
    return [p.code for p in report.problems]  # type: ignore[attr-defined]


def _edit(message: Path, old: str, new: str, count: int = 1) -> None:
    text = message.read_text(encoding="utf-8")
    assert text.count(old) >= count, f"{old!r} is not in the message"
    message.write_text(text.replace(old, new, count), encoding="utf-8")


def test_a_delivery_is_checked_as_a_sheet_would_be(delivery: Path, version: str) -> None:
    report = check_collection(delivery)
    assert report.ready, [p.message for p in report.problems]
    assert report.sheet == "message.xml" and report.collection.identifier == ICPN
    a1, a2 = sorted(report.collection.tracks, key=lambda t: t.source_path)
    kind = "flac" if version == "4.3" else "wav"
    assert (a1.source_path, a1.title, a1.artists, a1.album, a1.track_number, a1.isrc, a1.upc, a1.label) == \
        (f"resources/A1.{kind}", "Harbour 1", ("The Sample Band",), "Harbour Lights", 1, "QZES72600001", ICPN,
         "Sample Records")
    assert (a2.track_number, a2.composers, a1.date, a1.original_date, a1.p_line, a1.language) == \
        (2, ("Cora Composer",), "2026-03-01", "2025-11-20", "\u2117 2026 Sample Records", "en")
    assert sorted((c.name, c.code, c.label) for c in a1.contributors) == \
        [("Cora Composer", "cmp", "Composer"), ("Pat Producer", "pro", "Producer")]
    assert ("DDEX ResourceReference", "A1") in a1.source_identifiers
    assert ("DDEX MessageSender PartyId", "PADPIDA2026010101S") in report.collection.source_identifiers
    # every HashSum the message carries was verified in the first read
    algs = {"4.3": ["md5", "sha256"], "3.8.2": ["md5", "sha1"]}[version]
    for t in (a1, a2):
        data = (delivery / t.source_path).read_bytes()
        assert [(c.algorithm, c.outcome, c.value) for c in t.producer_checksums] == \
            [(alg, "pass", hashlib.new(alg, data).hexdigest()) for alg in algs]
    roles = {s.source_path: (s.role, [c.outcome for c in s.producer_checksums]) for s in report.collection.submission_files}
    assert roles["message.xml"] == ("sheet", []) and roles["resources/cover.png"] == ("other", ["pass"])
    assert roles["deposit-agreement.txt"][0] == "rights-document"
    assert any("deal(s) are kept in the packaged message" in w for w in report.warnings)


def test_a_referenced_file_that_is_absent_is_a_problem(delivery: Path, version: str) -> None:
    kind = "flac" if version == "4.3" else "wav"
    (delivery / f"resources/A2.{kind}").unlink()
    (delivery / "resources/cover.png").unlink()
    report = check_collection(delivery)
    missing = sorted(p.message for p in report.problems if p.code == "missing-file")
    assert missing == ["message.xml Image A3 (resources/cover.png): no such file in the delivery",
                       f"message.xml SoundRecording A2 (resources/A2.{kind}): no such file in the collection"]
    assert _codes(report).count("missing-file") == len(report.problems)     # no second word on their checksums


def test_audio_the_message_does_not_reference_is_a_problem(delivery: Path) -> None:
    write_wav(delivery / "resources" / "outtake.wav", Tone(22050, 16, 1, 0.1))
    report = check_collection(delivery)
    (problem,) = report.problems
    assert problem.code == "unlisted-audio" and problem.file == "resources/outtake.wav"
    assert "the DDEX message message.xml does not reference" in problem.message


def test_a_wrong_hashsum_is_a_mismatch(delivery: Path, version: str) -> None:
    kind = "flac" if version == "4.3" else "wav"
    good = hashlib.md5((delivery / f"resources/A2.{kind}").read_bytes()).hexdigest()
    _edit(delivery / "message.xml", good, "0" * 32)
    report = check_collection(delivery)
    (problem,) = report.problems
    assert problem.code == "checksum-mismatch" and problem.file == f"resources/A2.{kind}"
    assert (f"md5 does not match the producer's checksum (message.xml SoundRecording A2 HashSum MD5): "
            f"expected {'0' * 32}, found {good}") in problem.message


def test_technical_details_are_cross_checked(delivery: Path, version: str) -> None:
    _edit(delivery / "message.xml", "<BitsPerSample>16</BitsPerSample>", "<BitsPerSample>24</BitsPerSample>")
    if version == "4.3":
        _edit(delivery / "message.xml", '<SamplingRate UnitOfMeasure="Hz">22050<', '<SamplingRate UnitOfMeasure="Hz">48000<')
    else:
        _edit(delivery / "message.xml", "<NumberOfChannels>2<", "<NumberOfChannels>1<")
    report = check_collection(delivery)
    messages = sorted(p.message for p in report.problems if p.code == "technical-mismatch")
    assert len(messages) == len(report.problems) == 2
    assert "the message states BitsPerSample 24, the file has 16" in messages[0]
    assert ("the message states SamplingRate 48000 Hz, the file has 22050 Hz" if version == "4.3" else
            "the message states NumberOfChannels 1, the file has 2") in messages[-1]


def test_the_files_own_tags_are_compared_as_with_a_sheet(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "d", "3.8.2")
    wav = folder / "resources" / "A1.wav"
    old = {alg: hashlib.new(alg, wav.read_bytes()).hexdigest() for alg in ("md5", "sha1")}
    write_wav(wav, Tone(22050, 16, 2, 0.5, 440.0), info={"INAM": "Another Song"})
    for alg, digest in old.items():
        _edit(folder / "message.xml", digest, hashlib.new(alg, wav.read_bytes()).hexdigest())
    report = check_collection(folder)
    assert report.ready
    assert any("the sheet's title 'Harbour 1' differs from the file's embedded title 'Another Song'" in w
               for w in report.warnings)


def test_without_a_deposit_agreement_the_delivery_is_refused(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "d", "4.3", agreement=False)
    report = check_collection(folder)
    assert set(_codes(report)) == {"rights"}
    assert any("message.xml SoundRecording A1 (resources/A1.flac): not cleared: no rights_basis" in p.message
               for p in report.problems)
    (advice,) = [p.message for p in report.problems if p.message.startswith("message.xml: a DDEX message")]
    assert "not that the archive may keep them" in advice and "collection.toml [defaults]" in advice
    out = invoke(package_cmd, folder, tmp_path / "aip", "-q")
    assert out.code == 1 and not (tmp_path / "aip").exists()
    assert "add the label's deposit agreement" in out.stderr.lower()


def test_a_message_listing_no_resources_is_malformed_input(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "d", "4.3")
    text = (folder / "message.xml").read_text(encoding="utf-8")
    (folder / "message.xml").write_text(re.sub(r"<ResourceList>.*</ResourceList>", "<ResourceList/>", text, flags=re.S),
                                        encoding="utf-8")
    out = invoke(check_cmd, folder)
    assert out.code == 3
    assert "message.xml: the ERN message lists no resources" in str(out.exception)


def test_sheet_picks_the_message_and_a_refused_message_is_named(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "d", "4.3")
    (folder / "purge.xml").write_text('<ern:PurgeReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"/>', encoding="utf-8")
    out = invoke(check_cmd, folder)
    assert out.code == 1 and "two DDEX messages, message.xml and purge.xml" in out.stdout
    out = invoke(check_cmd, folder, "--sheet", "message.xml")
    # chosen: the other XML file is then an unknown file, said so
    assert out.code == 1 and "purge.xml: not audio" in out.stdout and "message.xml and purge.xml" not in out.stdout
    assert "1 problem(s) stop packaging" in out.stdout      # the chosen message's files are all accounted for
    out = invoke(check_cmd, folder, "--sheet", "purge.xml")
    assert out.code == 1 and "purge.xml: a PurgeReleaseMessage (ERN 4.3)" in out.stdout


@pytest.mark.parametrize("version", ["4.3", "3.8.2"])
def test_the_aip_says_what_the_message_said(tmp_path: Path, version: str, schemas_dir: Path) -> None:
    folder = make_delivery(tmp_path / "d", version)
    out = invoke(package_cmd, folder, tmp_path / "aip", "-q")
    assert out.code == 0, out.stderr
    bag = tmp_path / "aip"
    submitted = sorted(p.relative_to(bag / "data/submission").as_posix() for p in (bag / "data/submission").rglob("*")
                       if p.is_file())
    assert submitted == ["collection.toml", "deposit-agreement.txt", "message.xml", "resources/cover.png"]
    assert (bag / "data/submission/message.xml").read_bytes() == (folder / "message.xml").read_bytes()
    mets = etree.parse(str(bag / "metadata/mets.xml"))
    premis = etree.parse(str(bag / "metadata/premis.xml"))
    schema = etree.XMLSchema(etree.parse(str(schemas_dir / "mets-premis-mods.xsd")))
    assert schema.validate(mets), schema.error_log
    premis_schema = etree.XMLSchema(etree.parse(str(schemas_dir / "premis-v3-0.xsd")))
    assert premis_schema.validate(premis), premis_schema.error_log
    ids = {(i.get("type"), i.text) for i in mets.iterfind(".//mods:identifier", NS)}
    assert {("isrc", "QZES72600001"), ("ean", ICPN), ("DDEX ResourceReference", "A1"),
            ("DDEX ReleaseReference", "R0"), ("DDEX MessageId", "MSG-0001")} <= ids
    roles = {(n.findtext("mods:namePart", namespaces=NS), n.findtext("mods:role/mods:roleTerm[@type='code']", namespaces=NS))
             for n in mets.iterfind(".//mods:name", NS)}
    assert {("Cora Composer", "cmp"), ("Pat Producer", "pro"), ("The Sample Band", "prf")} <= roles
    assert "\u2117 2026 Sample Records" in {a.text for a in mets.iterfind(".//mods:accessCondition", NS)}
    dates = {d.text for d in mets.iterfind(".//mods:dateOther[@type='original release']", NS)}
    assert dates == {"2025-11-20"}
    premis_ids = {(i.findtext("premis:objectIdentifierType", namespaces=NS), i.findtext("premis:objectIdentifierValue", namespaces=NS))
                  for i in premis.iterfind(".//premis:objectIdentifier", NS)}
    assert {("DDEX MessageId", "MSG-0001"), ("DDEX MessageSender PartyId", "PADPIDA2026010101S"),
            ("DDEX ResourceReference", "A2"), ("ICPN", ICPN)} <= premis_ids
    # the deposit agreement is the one rights statement; the message's deals are not rights
    statements = premis.getroot().findall("premis:rights/premis:rightsStatement", NS)
    # (two statements of it: the recordings' carries the P-line and C-line as copyright notes, the
    # submission files' carries none)
    assert [s.findtext("premis:rightsBasis", namespaces=NS) for s in statements] == ["License", "License"]
    notes = sorted(tuple(n.text for n in s.iterfind(".//premis:copyrightNote", NS)) for s in statements)
    assert notes[0] == () and "\u2117 2026 Sample Records" in notes[1]
    text = (bag / "metadata/premis.xml").read_text(encoding="utf-8")
    assert "SubscriptionModel" not in text and "PayAsYouGoModel" not in text


def test_a_file_outside_the_delivery_and_an_unknown_hashsum(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "d", "4.3")
    _edit(folder / "message.xml", "<URI>resources/A2.flac</URI>", "<URI>https://cdn.example.com/A2.flac</URI>")
    _edit(folder / "message.xml", "<Algorithm>SHA256</Algorithm>", "<Algorithm>CRC32</Algorithm>")
    (folder / "resources" / "A2.flac").unlink()
    report = check_collection(folder)
    (problem,) = report.problems
    assert problem.code == "unsafe-path"
    assert problem.message.startswith("message.xml SoundRecording A2: the file https://cdn.example.com/A2.flac is not "
                                      "a path inside the delivery")
    assert any("message.xml SoundRecording A1: HashSum CRC32 of resources/A1.flac is an algorithm preserve cannot "
               "compute; it is kept in the packaged message but not verified" in w for w in report.warnings)
    (a1,) = report.collection.tracks
    assert [(c.algorithm, c.outcome) for c in a1.producer_checksums] == [("md5", "pass")]


def test_batch_and_sheet_do_not_go_together(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "b" / "r", "4.3")
    out = invoke(package_cmd, "--batch", "--sheet", "message.xml", folder.parent, tmp_path / "aips")
    assert out.code == 2 and "a batch's release folders each have their own message" in str(out.exception)
    assert not (tmp_path / "aips").exists()


def test_a_recording_that_names_no_file_is_a_problem(tmp_path: Path) -> None:
    folder = make_delivery(tmp_path / "d", "3.8.2")
    text = (folder / "message.xml").read_text(encoding="utf-8")
    start = text.index("<File><FileName>A2.wav")
    (folder / "message.xml").write_text(text[:start] + text[text.index("</File>", start) + len("</File>"):],
                                        encoding="utf-8")
    (folder / "resources" / "A2.wav").unlink()
    report = check_collection(folder)
    assert [(p.code, p.message) for p in report.problems] == [
        ("missing-file", "message.xml SoundRecording A2: names no file (no File in its technical details); the "
                         "recording cannot be packaged without its audio")]

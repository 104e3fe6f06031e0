"""Every collection that must not be packaged: the exact problem, exit 1, nothing at DEST."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.cli.check_cmd import check
from preserve.cli.package_cmd import package
from preserve.errors import EXIT_PROBLEMS, CollectionNotReady
from preserve.intake import check_collection
from preserve.intake.testaudio import Tone, truncate, write_flac, write_mp3, write_wav
from preserve.package import package_collection

from .conftest import Collection, invoke

RIGHTS_HEADER = "file,title,artist,rights_basis,rights_holder,copyright_status,permitted_acts,agreement"


def own_rights(c: Collection, row: str) -> None:
    """Give the first row its own rights statement (the others keep the defaults)."""
    c.header = RIGHTS_HEADER
    c.rows = [row, *[r + ",,,,," for r in c.rows[1:]]]
    c.write_sheet()


def uncleared(c: Collection) -> None:
    own_rights(c, "one.wav,One,Ann,copyright,Ann,copyrighted,disseminate,")


def status_unknown(c: Collection) -> None:
    own_rights(c, "one.wav,One,Ann,copyright,Ann,unknown,replicate; migrate,")


def donor_without_agreement(c: Collection) -> None:
    own_rights(c, "one.wav,One,Ann,donor,Ann,copyrighted,replicate,")


def missing_file(c: Collection) -> None:
    c.rows.append("four.wav,Four,Di")
    c.write_sheet()


def unlisted_audio(c: Collection) -> None:
    write_wav(c.root / "side b" / "extra take.wav", Tone(8000, 16, 1, 0.1))


def unlisted_other(c: Collection) -> None:
    (c.root / "notes.docx").write_bytes(b"PK\x03\x04 not really a document")


def agreement_outside(c: Collection) -> None:
    (c.root.parent / "outside.txt").write_text("an agreement kept elsewhere\n", encoding="utf-8")
    own_rights(c, "one.wav,One,Ann,donor,Ann,copyrighted,replicate,../outside.txt")


def md5_mismatch(c: Collection) -> None:
    (c.root / "checksums.md5").write_text(
        f"{'0' * 32}  one.wav\n{c.md5('side b/two.wav')} *side b/two.wav\n", encoding="utf-8")


def flac_altered(c: Collection) -> None:
    # The STREAMINFO MD5 of a different tone: what a file looks like when its audio changed after encoding.
    other = write_flac(c.root.parent / "other.flac", Tone(22050, 16, 1, 0.25, 555.0))
    import mutagen.flac

    digest = f"{mutagen.flac.FLAC(str(other)).info.md5_signature:032x}"
    write_flac(c.root / "three.flac", Tone(22050, 16, 1, 0.25, 550.0), md5=digest)


def bwf_md5_wrong(c: Collection) -> None:
    write_wav(c.root / "one.wav", Tone(22050, 16, 1, 0.25), bext={"Description": "master"}, md5_chunk="ab" * 16)


def flac_truncated(c: Collection) -> None:
    write_flac(c.root / "three.flac", Tone(22050, 16, 1, 2.0, 550.0))
    truncate(c.root / "three.flac", 0.4)


def aiff_truncated(c: Collection) -> None:
    import numpy as np
    import soundfile

    soundfile.write(str(c.root / "four.aiff"), np.zeros((96000, 2)), 48000, format="AIFF", subtype="PCM_16")
    truncate(c.root / "four.aiff", 0.4)
    c.rows.append("four.aiff,Four,Di")
    c.write_sheet()


def mp3_truncated(c: Collection) -> None:
    write_mp3(c.root / "four.mp3", Tone(44100, 16, 2, 2.0))
    truncate(c.root / "four.mp3", 0.4)
    c.rows.append("four.mp3,Four,Di")
    c.write_sheet()


def mp3_cut_on_a_frame_boundary(c: Collection) -> None:
    from mutagen.mp3 import MPEGFrame

    path = write_mp3(c.root / "four.mp3", Tone(44100, 16, 2, 2.0))
    starts, pos = [], 0
    with open(path, "rb") as f:
        while True:
            f.seek(pos)
            try:
                MPEGFrame(f)
            except Exception:
                break
            starts.append(pos)
            pos = f.tell()
    path.write_bytes(path.read_bytes()[:starts[len(starts) // 2]])
    c.rows.append("four.mp3,Four,Di")
    c.write_sheet()


def zero_bytes(c: Collection) -> None:
    (c.root / "one.wav").write_bytes(b"")


def mp3_named_wav(c: Collection) -> None:
    write_mp3(c.root / "one.wav", Tone(22050, 16, 1, 0.25))


def text_named_flac(c: Collection) -> None:
    (c.root / "three.flac").write_text("This is not a FLAC file, just a note.\n", encoding="utf-8")


CASES: list[tuple[Callable[[Collection], None], str, str, int | None]] = [
    (uncleared, "rights",
     "metadata.csv row 1 (one.wav): not cleared: permitted_acts does not include 'replicate'; keeping preservation copies is itself copying", 1),
    (status_unknown, "rights",
     "metadata.csv row 1 (one.wav): not cleared: copyright_status is 'unknown'; establish the status before the archive keeps copies", 1),
    (donor_without_agreement, "rights",
     "metadata.csv row 1 (one.wav): not cleared: rights_basis 'donor' needs the donor agreement document in 'agreement'", 1),
    (missing_file, "missing-file", "metadata.csv row 4 (four.wav): no such file in the collection", 4),
    (unlisted_audio, "unlisted-audio",
     "side b/extra take.wav: audio file with no row in metadata.csv; add a row for it (or an ignore pattern in collection.toml)", None),
    (unlisted_other, "unlisted-file",
     "notes.docx: not audio, not the sheet, not a checksum file and not a rights document named by a row or the defaults; "
     "remove it, name it in 'agreement', or add an ignore pattern in collection.toml", None),
    (agreement_outside, "rights",
     "metadata.csv row 1 (one.wav): not cleared: agreement '../outside.txt' points outside the collection ('..' climbs out of it); rights documents must be delivered inside it", 1),
    (md5_mismatch, "checksum-mismatch",
     "one.wav: md5 does not match the producer's checksum (checksums.md5 line 1): expected 00000000000000000000000000000000, found {md5:one.wav}", 1),
    (flac_altered, "essence-mismatch",
     "three.flac: the decoded audio does not match the FLAC STREAMINFO MD5 (expected {streaminfo:three.flac}, found {decoded:three.flac}); the audio changed after encoding", 3),
    (bwf_md5_wrong, "essence-mismatch",
     "one.wav: the audio does not match the file's own MD5 chunk (expected abababababababababababababababab, found {data:one.wav}); the audio changed after the checksum was written", 1),
    (flac_truncated, "truncated",
     "three.flac: truncated or damaged: STREAMINFO announces 44100 samples per channel, only 16383 could be decoded "
     "(the decoder said: flac decoder lost sync.)", 3),
    (aiff_truncated, "truncated",
     "four.aiff: truncated or damaged: its SSND chunk announces 384008 bytes, the file holds only 153575 of them "
     "(153621 of the 384054 bytes the FORM header announces)", 4),
    (mp3_truncated, "truncated", "four.mp3: truncated or damaged: the MPEG frame at byte ", 4),
    (mp3_cut_on_a_frame_boundary, "truncated",
     "four.mp3: truncated or damaged: its Xing/LAME header announces 13423 bytes of MPEG audio, the file holds ", 4),
    (zero_bytes, "empty", "one.wav: is empty (zero bytes); deliver the file again", 1),
    (mp3_named_wav, "mislabelled",
     "one.wav: named as a WAVE file but its content is an MP3 file (fmt/134); rename it to match its content", 1),
    (text_named_flac, "not-audio", "three.flac: named as a FLAC file but it is not audio: it holds plain text", 3),
]


def _expand(message: str, c: Collection) -> str:
    import hashlib

    import mutagen.flac
    import soundfile

    from preserve.intake import riff

    def value(kind: str, rel: str) -> str:
        path = c.root / rel
        if kind == "md5":
            return c.md5(rel)
        if kind == "streaminfo":
            return f"{mutagen.flac.FLAC(str(path)).info.md5_signature:032x}"
        if kind == "decoded":
            data = soundfile.read(str(path), dtype="int16")[0]
            return hashlib.md5(data.astype("<i2").tobytes()).hexdigest()
        with open(path, "rb") as f:
            r = riff.read_riff(f, path.stat().st_size)
            f.seek(r.data_offset or 0)
            return hashlib.md5(f.read(r.data_size or 0)).hexdigest()

    import re

    return re.sub(r"\{(\w+):([^}]+)\}", lambda m: value(m.group(1), m.group(2)), message)


@pytest.mark.parametrize(("breaker", "code", "message", "row"), CASES, ids=[c[0].__name__ for c in CASES])
def test_refused(collection: Collection, tmp_path: Path, breaker: Callable[[Collection], None], code: str,
                 message: str, row: int | None) -> None:
    breaker(collection)
    expected = _expand(message, collection)
    report = check_collection(collection.root)
    assert not report.ready
    problems = [(p.code, p.message, p.row) for p in report.problems]
    matching = [p for p in problems if p[0] == code and p[1].startswith(expected)]
    assert matching, f"expected {code}: {expected!r}\nfound: {problems}"
    assert all(p[2] == row for p in matching)
    assert len(report.problems) == 1, problems      # nothing else reported: the base collection is clean

    out = invoke(check, collection.root)
    assert out.code == EXIT_PROBLEMS
    assert expected in out.stdout
    assert isinstance(out.exception, CollectionNotReady)

    dest = tmp_path / "out" / "bag"
    out = invoke(package, collection.root, dest, "--no-profile", "--quiet")
    assert out.code == EXIT_PROBLEMS
    assert expected in out.stderr                     # every problem is listed even with --quiet
    assert str(out.exception) == f"{collection.root}: not packaged, {len(report.problems)} problem(s) listed above; nothing was written at {dest}"
    assert not (tmp_path / "out").exists()


def test_every_problem_at_once(collection: Collection, tmp_path: Path) -> None:
    for breaker in (status_unknown, unlisted_other, zero_bytes, missing_file):
        breaker(collection)
    report = check_collection(collection.root)
    assert [p.code for p in report.problems] == ["rights", "missing-file", "unlisted-file", "empty"]
    with pytest.raises(CollectionNotReady) as info:
        package_collection(collection.root, tmp_path / "bag", profile=None)
    assert info.value.exit_code == EXIT_PROBLEMS
    assert info.value.report.problems == report.problems
    assert not (tmp_path / "bag").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["coll"]


def test_refusal_as_a_user_sees_it(collection: Collection, tmp_path: Path, run_preserve: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    status_unknown(collection)
    dest = tmp_path / "out" / "bag"
    checked = run_preserve("check", collection.root)
    assert checked.returncode == EXIT_PROBLEMS
    assert checked.stderr.strip() == f"preserve: error: {collection.root}: the collection is not ready to package (1 problem(s))"
    packaged = run_preserve("package", collection.root, dest)
    assert packaged.returncode == EXIT_PROBLEMS
    assert packaged.stderr.rstrip().endswith(
        "  error: metadata.csv row 1 (one.wav): not cleared: copyright_status is 'unknown'; establish the status before "
        f"the archive keeps copies\npreserve: error: {collection.root}: not packaged, 1 problem(s) listed above; "
        f"nothing was written at {dest}")
    assert not (tmp_path / "out").exists()

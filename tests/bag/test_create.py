"""Creating bags: names kept exactly, the source never touched, atomic and verified output."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from datetime import date
from pathlib import Path

import bagit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preserve.bag.paths import SPLITLINES_BREAKS, nfc, unsafe_reason
from preserve.bag.reader import open_bag
from preserve.bag.validate import validate_bag
from preserve.bag.writer import create_bag, payload_from_directory
from preserve.errors import (
    DestinationExists,
    NameConflict,
    SourceChanged,
    SourceNotFound,
    SymlinkRefused,
    UnsafePath,
    UsageError,
    VerificationFailed,
)

ODD_NAMES = {
    "with space/a file.wav": b"space",
    "new\nline.wav": b"newline",
    "carriage\rreturn.txt": b"cr",
    "ünïcødé/日本語.flac": b"nonascii",
    unicodedata.normalize("NFD", "café-nfd.wav"): b"nfd",
    "zero-bytes.wav": b"",
    "a/b/c/d/e/f/g/h/i/j/k/l/m/n/deep.wav": b"deep",
    "tab\tname.wav": b"tab",
    "~tilde-inside.wav": b"tilde",
    "-leading-dash.wav": b"dash",
    "#hash and 'quotes'.wav": b"quotes",
}


def test_odd_names_are_kept_exactly_and_bagit_python_validates(make_source, snapshot, tmp_path: Path) -> None:
    src = make_source(ODD_NAMES)
    (src / "empty-dir").mkdir()
    (src / "nested" / "empty").mkdir(parents=True)
    before = snapshot(src)
    result = create_bag(tmp_path / "bag", payload_from_directory(src))

    assert snapshot(src) == before, "the source was modified"
    assert result.files == len(ODD_NAMES)
    assert result.empty_dirs == 2
    for rel, data in ODD_NAMES.items():
        assert (tmp_path / "bag" / "data" / rel).read_bytes() == data, rel
    # names are the bytes found on disk: the NFD name stays NFD
    nfd = unicodedata.normalize("NFD", "café-nfd.wav")
    assert nfd in os.listdir(tmp_path / "bag" / "data")
    manifest = (tmp_path / "bag" / "manifest-sha256.txt").read_text(encoding="utf-8")
    assert "data/new%0Aline.wav" in manifest and "data/carriage%0Dreturn.txt" in manifest
    empties = (tmp_path / "bag" / "metadata" / "empty-directories.txt").read_text().split()
    assert sorted(empties) == ["data/empty-dir", "data/nested/empty"]
    assert (tmp_path / "bag" / "data" / "nested" / "empty").is_dir()

    bagit.Bag(str(tmp_path / "bag")).validate()  # the reference validator agrees
    assert validate_bag(tmp_path / "bag").ok


def test_bag_info_and_tag_files(simple_bag: Path) -> None:
    bag = open_bag(simple_bag)
    assert bag.version == "1.0"
    assert bag.info_value("Source-Organization") == "Test Archive"
    assert bag.info_value("Payload-Oxum") == f"{5004 + 3004 + 6}.3"
    assert bag.info_value("Bag-Software-Agent").startswith("preserve ")
    assert bag.info_value("Bagging-Date") == date.today().isoformat()
    assert sorted(bag.payload_manifests) == ["sha256", "sha512"]
    assert sorted(bag.tag_manifests) == ["sha256", "sha512"]
    xxh = (simple_bag / "metadata" / "xxh3-128.txt").read_text().splitlines()
    assert len(xxh) == 3 and all(len(line.split("  ")[0]) == 32 for line in xxh)
    tagm = (simple_bag / "tagmanifest-sha256.txt").read_text()
    for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt", "metadata/xxh3-128.txt"):
        assert f"  {name}\n" in tagm


def test_chosen_algorithms(make_source, tmp_path: Path) -> None:
    src = make_source({"a.wav": b"abc"})
    create_bag(tmp_path / "bag", payload_from_directory(src), algorithms=["md5", "sha1", "blake2b"])
    names = sorted(p.name for p in (tmp_path / "bag").glob("*manifest-*.txt"))
    assert names == ["manifest-blake2b.txt", "manifest-md5.txt", "manifest-sha1.txt",
                     "tagmanifest-blake2b.txt", "tagmanifest-md5.txt", "tagmanifest-sha1.txt"]
    assert "900150983cd24fb0d6963f7d28e17f72  data/a.wav" in (tmp_path / "bag" / "manifest-md5.txt").read_text()
    bagit.Bag(str(tmp_path / "bag")).validate()


def test_percent_in_name_is_encoded_and_warned(make_source, tmp_path: Path) -> None:
    src = make_source({"100% live.wav": b"pct", "a%41.wav": b"x"})
    payload = payload_from_directory(src)
    result = create_bag(tmp_path / "bag", payload)
    manifest = (tmp_path / "bag" / "manifest-sha256.txt").read_text()
    assert "data/100%25 live.wav" in manifest and "data/a%2541.wav" in manifest
    assert any("100% live.wav" in w and "bagit-python" in w for w in result.warnings)
    assert validate_bag(tmp_path / "bag").ok


def test_nfc_nfd_twins_are_refused(make_source, tmp_path: Path) -> None:
    src = make_source({unicodedata.normalize("NFC", "é.wav"): b"1", unicodedata.normalize("NFD", "é.wav"): b"2"})
    with pytest.raises(NameConflict, match="differ only by Unicode normalization"):
        create_bag(tmp_path / "bag", payload_from_directory(src))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"], "a refused run left something beside DEST"


def test_case_only_twins_are_warned(make_source, tmp_path: Path) -> None:
    src = make_source({"Track.wav": b"1", "track.wav": b"2"})
    payload = payload_from_directory(src)
    result = create_bag(tmp_path / "bag", payload)
    assert result.files == 2
    assert any("differ only by case" in w for w in result.warnings)


def test_symlink_refused_unless_followed(make_source, tmp_path: Path) -> None:
    src = make_source({"real.wav": b"real"})
    (src / "link.wav").symlink_to(src / "real.wav")
    with pytest.raises(SymlinkRefused, match=r"link.wav.*--follow-links"):
        create_bag(tmp_path / "bag", payload_from_directory(src))
    assert not (tmp_path / "bag").exists()
    create_bag(tmp_path / "bag2", payload_from_directory(src, follow_links=True), follow_links=True)
    assert (tmp_path / "bag2" / "data" / "link.wav").read_bytes() == b"real"
    assert not (tmp_path / "bag2" / "data" / "link.wav").is_symlink()


def test_destination_that_exists_is_refused(make_source, tmp_path: Path) -> None:
    src = make_source({"a.wav": b"a"})
    (tmp_path / "bag").mkdir()
    with pytest.raises(DestinationExists):
        create_bag(tmp_path / "bag", payload_from_directory(src))
    assert list((tmp_path / "bag").iterdir()) == []


def test_source_changing_during_copy_fails_with_its_name(make_source, tmp_path: Path) -> None:
    src = make_source({"growing.wav": os.urandom(3 * 1024 * 1024)})
    grown = []

    def progress(nbytes: int, nfiles: int) -> None:
        if nbytes and not grown:  # after the first chunk is copied, the producer appends
            with open(src / "growing.wav", "ab") as f:
                f.write(b"more audio")
            grown.append(True)

    with pytest.raises(SourceChanged, match=r"growing.wav.*changed while it was being copied"):
        create_bag(tmp_path / "bag", payload_from_directory(src), progress=progress, workers=1)
    assert not (tmp_path / "bag").exists()


def test_write_that_reads_back_differently_is_caught(make_source, tmp_path: Path) -> None:
    src = make_source({"ok.wav": b"fine" * 1000, "sub/bad.wav": b"good" * 1000})

    def corrupt(staging: Path) -> None:
        target = staging / "data" / "sub" / "bad.wav"
        data = bytearray(target.read_bytes())
        data[100] ^= 0x01
        target.write_bytes(bytes(data))
        os.sync()

    with pytest.raises(VerificationFailed, match=r"data/sub/bad.wav.*reads back differently"):
        create_bag(tmp_path / "bag", payload_from_directory(src), on_staged=corrupt)
    assert not (tmp_path / "bag").exists()
    assert not [p for p in tmp_path.iterdir() if "preserve-staging" in p.name]


def test_no_verify_records_that_nothing_was_verified(make_source, tmp_path: Path) -> None:
    src = make_source({"a.wav": b"a"})
    result = create_bag(tmp_path / "bag", payload_from_directory(src), verify=False)
    assert result.verification.performed is False
    result = create_bag(tmp_path / "bag2", payload_from_directory(src))
    assert result.verification.performed and result.verification.outcome == "pass"
    assert "posix_fadvise" in result.verification.method and result.verification.files == 1


def test_stale_staging_is_removed_by_the_next_run(make_source, tmp_path: Path) -> None:
    # a run killed after its journal listed the staging it made: the next run removes exactly that
    import signal
    import subprocess
    import sys

    src = make_source({"a.wav": b"a"})
    stale = tmp_path / ".bag.preserve-staging-deadbeef"
    killed = subprocess.run([sys.executable, "-c", (
        "import os, sys; from pathlib import Path; from preserve.staging import journaled\n"
        "with journaled(Path(sys.argv[1])) as j:\n"
        "    (j.record(Path(sys.argv[2])) / 'data').mkdir(parents=True)\n"
        "    os.kill(os.getpid(), 9)\n"), str(tmp_path / "bag"), str(stale)])
    assert killed.returncode == -signal.SIGKILL and (stale / "data").is_dir()
    removed: list[Path] = []
    result = create_bag(tmp_path / "bag", payload_from_directory(src), on_removed=removed.append)
    assert not stale.exists()
    assert removed == result.removed == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "src"]


def test_a_folder_only_named_like_staging_is_never_removed(make_source, tmp_path: Path) -> None:
    # no journal lists it: it is someone's folder, whatever its name
    src = make_source({"a.wav": b"a"})
    lookalike = tmp_path / ".bag.preserve-staging-deadbeef"
    (lookalike / "data").mkdir(parents=True)
    result = create_bag(tmp_path / "bag", payload_from_directory(src))
    assert (lookalike / "data").is_dir() and result.removed == []


@pytest.mark.slow
def test_large_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    block = os.urandom(1024 * 1024)
    with open(src / "master.wav", "wb") as f:
        for _ in range(300):
            f.write(block)
    result = create_bag(tmp_path / "bag", payload_from_directory(src))
    assert result.bytes == 300 * 1024 * 1024
    bagit.Bag(str(tmp_path / "bag")).validate(processes=2)


def test_worker_processes_give_the_same_bag(make_source, tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i}.wav": os.urandom(i % 3000) for i in range(600)}
    files["big/master.wav"] = os.urandom(70 * 1024 * 1024)  # stays in this process, hashed on threads
    src = make_source(files)
    (src / "empty").mkdir()
    threads = create_bag(tmp_path / "threads", payload_from_directory(src))
    procs = create_bag(tmp_path / "procs", payload_from_directory(src), processes=2)
    assert (procs.files, procs.bytes, procs.empty_dirs) == (threads.files, threads.bytes, 1)
    assert procs.verification.files == 601 and procs.verification.outcome == "pass"
    for name in ("manifest-sha256.txt", "manifest-sha512.txt", "metadata/xxh3-128.txt", "metadata/empty-directories.txt"):
        assert (tmp_path / "procs" / name).read_text() == (tmp_path / "threads" / name).read_text(), name
    bagit.Bag(str(tmp_path / "procs")).validate(processes=2)


def test_worker_processes_report_errors_by_name(make_source, tmp_path: Path) -> None:
    files = {f"f{i}.wav": b"x" * i for i in range(50)}
    src = make_source(files)
    (src / "f7.wav").chmod(0o000)
    payload = list(payload_from_directory(src))
    os.unlink(src / "f9.wav")  # gone between the walk and the copy
    with pytest.raises(SourceNotFound, match=r"f9.wav: no such file"):
        create_bag(tmp_path / "bag", payload, processes=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def _bagit_python_errors(bag: Path) -> str | None:
    try:
        bagit.Bag(str(bag)).validate()
    except bagit.BagError as exc:
        return f"{exc} {getattr(exc, 'details', '')}"
    return None


def _warns_bagit_python_missing(warnings: list[str]) -> bool:
    return any("bagit-python" in w and "missing" in w for w in warnings)


@pytest.mark.parametrize("name", [f"a{c}b.wav" for c in SPLITLINES_BREAKS] + ["trailing space.wav ", "nbsp.wav\xa0"])
def test_names_bagit_python_cannot_read_are_warned(make_source, tmp_path: Path, name: str) -> None:
    src = make_source({name: b"x", "plain.wav": b"y"})
    payload = payload_from_directory(src)
    scanned = payload.scan().warnings
    result = create_bag(tmp_path / "bag", payload)
    for warnings in (scanned, result.warnings):
        assert len(warnings) == 1 and "bagit-python 1.9 will report it missing" in warnings[0], warnings
        assert "\n" not in warnings[0] and "\u2028" not in warnings[0]  # the name is shown on one line
    manifest = (tmp_path / "bag" / "manifest-sha256.txt").read_text(encoding="utf-8")
    assert f"  data/{name}\n" in manifest  # written as it is: RFC 8493 has no escape for it
    assert validate_bag(tmp_path / "bag").ok  # preserve reads its own manifest correctly
    assert _bagit_python_errors(tmp_path / "bag") is not None  # and bagit-python really fails


_TRICKY = st.sampled_from([*SPLITLINES_BREAKS, "\r", "\n", " ", "\t", "\xa0", "\u3000", "%", "*", "#", "\\", "~", ".",
                           "\u0301", "é", "日"])
_NAME = st.text(alphabet=_TRICKY | st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                min_size=1, max_size=6).filter(lambda n: n not in (".", "..") and unsafe_reason(f"data/{n}") is None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NAME, min_size=1, max_size=4, unique_by=lambda n: nfc(n).casefold()))
def test_preserve_warns_whenever_bagit_python_rejects_its_bag(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for i, name in enumerate(names):
            (src / name).write_bytes(str(i).encode())
        result = create_bag(Path(tmp) / "bag", payload_from_directory(src), verify=False)
        assert validate_bag(Path(tmp) / "bag").ok
        failure = _bagit_python_errors(Path(tmp) / "bag")
        warned = _warns_bagit_python_missing(result.warnings)
        assert warned == (failure is not None), (names, failure, result.warnings)


def test_destination_inside_the_source_is_refused(make_source, tmp_path: Path, snapshot) -> None:
    src = make_source({"a.wav": b"a", "sub/b.wav": b"b"})
    before = snapshot(src)
    for dest in (src / "inner-bag", src / "sub" / "deeper" / "bag", src):
        with pytest.raises(UsageError, match="inside the source"):
            create_bag(dest, payload_from_directory(src))
    (tmp_path / "link-to-src").symlink_to(src)
    with pytest.raises(UsageError, match="inside the source"):
        create_bag(tmp_path / "link-to-src" / "bag", payload_from_directory(src))
    assert snapshot(src) == before
    create_bag(tmp_path / "src-bag", payload_from_directory(src))  # a sibling whose name starts alike is fine


def test_invalid_info_label_is_refused_before_copying(make_source, tmp_path: Path) -> None:
    src = make_source({"a.wav": b"a"})
    copied: list[int] = []
    for label in ("Bad:Key", " Leading", "Two\nLines", "Line\u2028Sep", ""):
        with pytest.raises(UsageError, match="bag-info label"):
            create_bag(tmp_path / "bag", payload_from_directory(src), info=[(label, "v")],
                       progress=lambda b, f: copied.append(b))
    assert copied == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_unsafe_source_names_are_refused_with_the_other_name_problems(make_source, tmp_path: Path) -> None:
    src = make_source({"..\\evil.wav": b"e", "ok.wav": b"o", "sub\\..\\x.wav": b"x"})
    (src / "link.wav").symlink_to("ok.wav")
    summary = payload_from_directory(src).scan()
    kinds = sorted(type(p).__name__ for p in summary.problems)
    assert kinds == ["SymlinkRefused", "UnsafePath", "UnsafePath"]
    assert any("..\\evil.wav" in str(p) and "'..' segment" in str(p) for p in summary.problems)
    copied: list[int] = []
    with pytest.raises((UnsafePath, SymlinkRefused)):
        create_bag(tmp_path / "bag", payload_from_directory(src), progress=lambda b, f: copied.append(b))
    assert copied == [] and sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_given_payload_oxum_and_bag_size_are_replaced_with_a_warning(make_source, tmp_path: Path) -> None:
    src = make_source({"a.wav": b"abc"})
    result = create_bag(tmp_path / "bag", payload_from_directory(src),
                        info=[("Payload-Oxum", "1.1"), ("Bag-Size", "9 TB"), ("Source-Organization", "X")])
    bag = open_bag(tmp_path / "bag")
    assert bag.info_values("Payload-Oxum") == ["3.1"] and bag.info_values("Bag-Size") == ["3 bytes"]
    replaced = [w for w in result.warnings if "replaced by the value computed" in w]
    assert len(replaced) == 2 and "Payload-Oxum: '1.1'" in replaced[0] and "Bag-Size: '9 TB'" in replaced[1]

"""Serialized bags get every check a folder gets: sidecars, the profile's fatal checks first, and
an archive that reads back differently from what was staged never lands at DEST."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from preserve.cli.main import main
from preserve.fixity import Tally
from preserve.package import package_collection
from preserve.profiles import load_profile
from preserve.serialize import archive as archive_mod
from preserve.serialize import content_size, validate_archive, write_archive

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "donated-collection"
ENDINGS = {"tar": ".tar", "tar.gz": ".tar.gz", "zip": ".zip"}
FORMATS = list(ENDINGS)


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def redo_tag_manifests(bag: Path) -> None:
    """Recompute every tag manifest line, as someone covering up an edit would."""
    for manifest in bag.glob("tagmanifest-*.txt"):
        alg = manifest.name.removeprefix("tagmanifest-").removesuffix(".txt")
        lines = []
        for line in manifest.read_text(encoding="utf-8").splitlines():
            _, rel = line.split("  ", 1)
            lines.append(f"{hashlib.new(alg, (bag / rel).read_bytes()).hexdigest()}  {rel}\n")
        manifest.write_text("".join(lines), encoding="utf-8")


def package_with_mets_edit(tmp_path_factory: pytest.TempPathFactory, edit: Callable[[str], str]) -> Path:
    """A package of the example whose METS text is changed by ``edit``, tag manifests redone (as
    someone covering up an edit would)."""
    bag = tmp_path_factory.mktemp("folder") / "pkg"
    package_collection(EXAMPLE, bag)
    mets = bag / "metadata" / "mets.xml"
    text = mets.read_text(encoding="utf-8")
    edited = edit(text)
    assert edited != text
    mets.write_text(edited, encoding="utf-8")
    redo_tag_manifests(bag)
    return bag


def _first(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match is not None
    return match


@pytest.fixture(scope="module")
def broken_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package of the example whose METS gives one file a wrong SHA-256."""
    # the digest's first appearance: the PREMIS fixity embedded in the METS
    return package_with_mets_edit(tmp_path_factory, lambda text: text.replace(
        _first(r'CHECKSUM="([0-9a-f]{64})"', text).group(1), "0" * 64, 1))


def findings(out: str) -> list[dict[str, Any]]:
    return list(json.loads(out)["findings"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_broken_sidecar_is_found_in_an_archive_as_in_the_folder(broken_package: Path, tmp_path: Path, fmt: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    archive = write_archive(broken_package, tmp_path / f"pkg{ENDINGS[fmt]}", fmt)
    code, out, _ = run(capsys, "validate", broken_package, "--json", "-q")
    folder = findings(out)
    assert code == 1
    assert [(f["code"], f["message"], f["found"]) for f in folder if f["severity"] == "error"] == [
        ("sidecar", "metadata/mets.xml: the PREMIS SHA-256 of this file differs from manifest-sha256.txt", "0" * 64)]
    code, out, _ = run(capsys, "validate", archive, "--json", "-q")
    assert code == 1
    assert findings(out) == folder
    # unpack checks the sidecars too: nothing lands at DEST
    code, out, err = run(capsys, "unpack", archive, tmp_path / "unpacked", "-q")
    assert code == 1, err
    assert "error: data/objects/" in out and "the PREMIS SHA-256 of this file differs from manifest-sha256.txt" in out
    assert not (tmp_path / "unpacked").exists()


def test_an_intact_package_archive_passes_the_sidecar_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package_collection(EXAMPLE, tmp_path / "pkg", serialization="zip")
    code, out, _ = run(capsys, "validate", tmp_path / "pkg.zip", "--json", "-q")
    assert code == 0, out
    assert not [f for f in findings(out) if f["code"] == "sidecar" and f["severity"] == "error"]


@pytest.fixture
def old_version_profile(tmp_path: Path) -> Path:
    raw = json.loads(Path(load_profile("preserve-transfer").source).read_text(encoding="utf-8"))
    raw["Accept-BagIt-Version"] = ["0.97"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", [None, *FORMATS])
def test_fatal_profile_checks_come_first_and_nothing_is_hashed(tmp_path: Path, old_version_profile: Path, fmt: str | None,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"RIFF" + bytes(5000))
    extra = ["--serialize", fmt] if fmt else []
    code, _, err = run(capsys, "bag", src, tmp_path / "tapes", "-q", *extra)
    assert code == 0, err
    bag = tmp_path / ("tapes" + (ENDINGS[fmt] if fmt else ""))
    if fmt is None:
        (bag / "data" / "take.wav").write_bytes(b"RIFX" + bytes(5000))  # hashing would report it
    code, out, _ = run(capsys, "validate", bag, "--profile", old_version_profile, "-q")
    assert code == 1
    assert out.splitlines() == [
        "error: bagit.txt: Accept-BagIt-Version: BagIt-Version 1.0 is not accepted; the profile accepts 0.97 (expected 0.97, found 1.0)",
        f"{bag}: INVALID (1 error(s): the profile cannot accept this bag, so nothing was hashed)",
    ]
    code, out, _ = run(capsys, "validate", bag, "--profile", old_version_profile, "--json", "-q")
    assert code == 1 and json.loads(out)["mode"] == "profile"
    if fmt is not None:
        tally = Tally()
        report = validate_archive(bag, profile=load_profile(old_version_profile), progress=tally)
        assert [f.message.split(":")[0] for f in report.findings] == ["Accept-BagIt-Version"]
        assert (tally.bytes, tally.files) == (0, 0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_archive_that_reads_back_differently_never_lands(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    marker = b"RIFF-marker-" + bytes(range(256)) * 64
    (src / "take.wav").write_bytes(marker)

    def flipping(write: Callable[..., None]) -> Callable[..., None]:
        def wrapped(staging: Path, out: IO[bytes], *args: Any, **kw: Any) -> None:
            write(staging, out, *args, **kw)
            out.flush()
            data = Path(out.name).read_bytes()  # type: ignore[arg-type]
            at = data.find(marker) + 100 if fmt != "tar.gz" else len(data) // 2
            os.pwrite(out.fileno(), bytes([data[at] ^ 0xFF]), at)
        return wrapped

    monkeypatch.setattr(archive_mod, "_write_zip", flipping(archive_mod._write_zip))
    monkeypatch.setattr(archive_mod, "_write_tar", flipping(archive_mod._write_tar))
    code, _, err = run(capsys, "bag", src, tmp_path / "tapes", "-q", "--serialize", fmt)
    dest = tmp_path / f"tapes{ENDINGS[fmt]}"
    assert code == 1, err
    assert err.startswith(f"preserve: error: {dest}: the written {fmt} file reads back differently from the staged bag (")
    assert err.rstrip().endswith("the destination disk may be failing; nothing was written")
    if fmt != "tar.gz":
        assert "member 'tapes/data/take.wav': xxh3-128 expected" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no DEST, no partial file, no staging
    shutil.rmtree(src)


@pytest.mark.parametrize("fmt", FORMATS)
def test_progress_totals_count_content_not_compressed_bytes(broken_package: Path, tmp_path: Path, fmt: str) -> None:
    archive = write_archive(broken_package, tmp_path / f"pkg{ENDINGS[fmt]}", fmt)
    content = sum(p.stat().st_size for p in broken_package.rglob("*") if p.is_file())
    total = content_size(archive)
    if fmt == "tar.gz":
        assert total == 0  # unknown without decompressing: the bar shows no total rather than a wrong one
    elif fmt == "zip":
        assert total == content
    else:
        assert content <= total <= content + 2048 * (len(list(broken_package.rglob("*"))) + 4)


@pytest.fixture(scope="module")
def wrong_size_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package of the example whose METS gives one file a wrong SIZE."""
    def edit(text: str) -> str:
        match = _first(r'SIZE="(\d+)"', text)
        return text.replace(match.group(0), f'SIZE="{int(match.group(1)) + 1}"', 1)

    return package_with_mets_edit(tmp_path_factory, edit)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_wrong_size_in_the_mets_is_found_in_an_archive_as_in_the_folder(
        wrong_size_package: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    # the sizes come from the archive's own index, as the folder's come from the files
    archive = write_archive(wrong_size_package, tmp_path / f"pkg{ENDINGS[fmt]}", fmt)
    code, out, _ = run(capsys, "validate", wrong_size_package, "--json", "-q")
    folder = findings(out)
    assert code == 1
    assert [f["code"] for f in folder if f["severity"] == "error"] == ["sidecar"]
    assert "SIZE" in next(f["message"] for f in folder if f["severity"] == "error")
    code, out, _ = run(capsys, "validate", archive, "--json", "-q")
    assert code == 1
    assert findings(out) == folder

"""Hostile archives (tar-slip, zip-slip, links, devices, duplicates): refused, nothing written outside."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from preserve.cli.main import main

BAGIT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
PAYLOAD = b"RIFF good"


def good_members() -> list[tuple[str, bytes]]:
    manifest = f"{hashlib.sha256(PAYLOAD).hexdigest()}  data/good.wav\n".encode()
    return [("bag/bagit.txt", BAGIT), ("bag/manifest-sha256.txt", manifest), ("bag/data/good.wav", PAYLOAD)]


def tar_with(path: Path, bad: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in good_members():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for item in bad:
            info, data = item if isinstance(item, tuple) else (item, b"")
            if data:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, data


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A folder outside DEST that hostile members aim at, holding one file they would overwrite."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"untouched")
    return outside


def state(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def hostile_tars(tmp: Path, outside: Path) -> list[tuple[str, Path, str, str]]:
    """(case, archive, member name as reported, reason)."""
    cases = [
        ("dotdot", [member("bag/../../outside/evil.txt", data=b"evil")], "bag/../../outside/evil.txt",
         "unsafe name ('..' segment escapes the bag)"),
        ("absolute", [member(f"{outside}/evil.txt", data=b"evil")], f"{outside}/evil.txt", "unsafe name (absolute path)"),
        ("symlink", [member("bag/data/link", tarfile.SYMTYPE, str(outside)), member("bag/data/link/evil.txt", data=b"evil")],
         "bag/data/link", f"is a symbolic link (to {str(outside)!r}); bags hold files, not links"),
        ("hardlink", [member("bag/data/hard", tarfile.LNKTYPE, str(outside / "victim.txt"))], "bag/data/hard",
         f"is a hard link (to {str(outside / 'victim.txt')!r}); bags hold files, not links"),
        ("device", [member("bag/data/null", tarfile.CHRTYPE)], "bag/data/null", "is a device; bags hold files and folders only"),
        ("fifo", [member("bag/data/pipe", tarfile.FIFOTYPE)], "bag/data/pipe", "is a fifo; bags hold files and folders only"),
        ("duplicate", [member("bag/data/good.wav", data=b"RIFF evil")], "bag/data/good.wav", "appears twice in the archive"),
        ("outside-top", [member("other/evil.txt", data=b"evil")], "other/evil.txt", "lies outside the bag's one top-level folder 'bag'"),
    ]
    return [(case, tar_with(tmp / f"bag-{case}.tar", bad), name, reason) for case, bad, name, reason in cases]  # type: ignore[arg-type]


def zip_with(path: Path, bad: list[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate we make on purpose
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in good_members():
                zf.writestr(name, data)
            for info, data in bad:
                zf.writestr(info, data)
    return path


def zinfo(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def hostile_zips(tmp: Path, outside: Path) -> list[tuple[str, Path, str, str]]:
    cases = [
        ("dotdot", [(zinfo("bag/../../outside/evil.txt"), b"evil")], "bag/../../outside/evil.txt", "unsafe name ('..' segment escapes the bag)"),
        ("absolute", [(zinfo(f"{outside}/evil.txt"), b"evil")], f"{outside}/evil.txt", "unsafe name (absolute path)"),
        ("symlink", [(zinfo("bag/data/link", stat.S_IFLNK | 0o777), str(outside).encode())], "bag/data/link",
         "is a symbolic link; bags hold files, not links"),
        ("device", [(zinfo("bag/data/null", stat.S_IFCHR | 0o644), b"")], "bag/data/null", "is a device; bags hold files and folders only"),
        ("duplicate", [(zinfo("bag/data/good.wav"), b"RIFF evil")], "bag/data/good.wav", "appears twice in the archive"),
        ("backslash", [(zinfo("bag/..\\..\\outside\\evil.txt"), b"evil")], "bag/..\\..\\outside\\evil.txt", "unsafe name ('..' segment escapes the bag)"),
    ]
    return [(case, zip_with(tmp / f"bag-{case}.zip", bad), name, reason) for case, bad, name, reason in cases]


def all_cases(tmp_path: Path, outside: Path) -> list[tuple[str, Path, str, str]]:
    made = tmp_path / "archives"
    made.mkdir()
    return hostile_tars(made, outside) + hostile_zips(made, outside)


def test_hostile_archives_are_refused_by_unpack_without_writing_outside_dest(tmp_path: Path, world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = all_cases(tmp_path, world)
    assert len(cases) == 14
    before = state(tmp_path)
    for case, archive, name, reason in cases:
        dest_parent = tmp_path / f"dest-{case}-{archive.suffix[1:]}"
        code, _, err = run(capsys, "unpack", archive, dest_parent / "bag", "-q")
        assert code == 3, (case, err)
        assert err.strip() == (f"preserve: error: {archive}: cannot read the serialized bag safely: member {name!r} {reason}; nothing was extracted"), case
        assert not dest_parent.exists(), case  # no DEST, no staging, not even the parent folder made for DEST
    assert state(tmp_path) == before  # nothing anywhere changed: outside/ still holds only victim.txt
    assert state(world) == {"victim.txt": b"untouched"}


def test_hostile_members_are_validation_errors_and_never_read(tmp_path: Path, world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for case, archive, name, reason in all_cases(tmp_path, world):
        code, out, _ = run(capsys, "validate", archive, "-q")
        assert code == 1, case
        lines = out.splitlines()
        assert lines[0] == f"error: {name}: archive member {reason}; it was not read", case
        if case == "duplicate":  # the second copy was not read: the first, listed one validates
            assert "checksum does not match" not in out
    assert state(world) == {"victim.txt": b"untouched"}


def test_tar_with_trailing_garbage_is_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tar_with(tmp_path / "bag.tar", [])
    with open(archive, "ab") as f:
        f.write(b"\x00" * 512 + b"garbage that is not a tar header".ljust(512, b"!"))
    code, _, err = run(capsys, "validate", archive, "-q")
    assert code == 3
    assert err.strip() == f"preserve: error: {archive}: cannot read the serialized bag safely: damaged tar data: unreadable data after 'bag/data/good.wav'"


def test_not_an_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello", encoding="utf-8")
    code, _, err = run(capsys, "validate", other, "-q")
    assert code == 3
    assert err.strip() == f"preserve: error: {other}: cannot read the serialized bag safely: not a tar, tar.gz or zip file"


def test_file_and_folder_of_one_name_clash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tar_with(tmp_path / "bag.tar", [member("bag/data/good.wav/inner.wav", data=b"RIFF inner")])
    code, _, err = run(capsys, "unpack", archive, tmp_path / "out" / "bag", "-q")
    assert code == 3
    assert err.strip() == (f"preserve: error: {archive}: cannot read the serialized bag safely: member "
                           "'bag/data/good.wav/inner.wav' clashes with another member (a file and a folder of one name); nothing was extracted")
    assert not (tmp_path / "out").exists()  # the parent made for DEST is removed again


def test_top_folder_named_unlike_the_archive_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tar_with(tmp_path / "renamed.tar", [])
    code, _, err = run(capsys, "validate", archive)  # -q leaves warnings out
    assert code == 0  # a warning only: the hand-made bag is otherwise valid
    assert "warning: bag: the top-level folder 'bag' is not named like the archive ('renamed'), as RFC 8493 recommends" in err


def test_truncated_tar_is_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tar_with(tmp_path / "bag.tar", [member("bag/data/long.wav", data=b"RIFF" + bytes(5000))])
    raw = archive.read_bytes()
    archive.write_bytes(raw[: raw.find(b"RIFF" + bytes(100)) + 3000])  # cut inside the last member
    code, _, err = run(capsys, "validate", archive, "-q")
    assert code == 3
    assert err.startswith(f"preserve: error: {archive}: cannot read the serialized bag safely: damaged archive data in member 'bag/data/long.wav' (unexpected end of data)")


def test_bag_files_at_the_top_level_are_not_a_serialized_bag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "flat.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in [("./", b""), *((n.replace("bag/", "./"), d) for n, d in good_members())]:
            info = tarfile.TarInfo(name)
            if name == "./":
                info.type = tarfile.DIRTYPE
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    code, _, err = run(capsys, "validate", archive, "-q")
    assert code == 3
    assert err.strip() == (f"preserve: error: {archive}: not a bag: the archive has no top-level folder; a serialized bag holds "
                           "exactly one, named like the bag, with bagit.txt in it")

"""Messages an administrator can live with: each names the file and the fix once, in plain words.

The shared CLI fixtures (``cli``, ``run_preserve`` in tests/conftest.py, and the in-process runners
of tests/intake and tests/replication) check every output the suite produces with
:func:`output_problems`; these tests hold that check itself, and the messages it caught.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.bag.writer import create_bag, payload_from_directory
from preserve.errors import plain_reason
from preserve.intake import check_collection

from .conftest import assert_output_fit_for_people, output_problems
from .intake.conftest import Collection

Run = Callable[..., subprocess.CompletedProcess[str]]


# --- the check every CLI output of the suite goes through ------------------------------------

def test_a_plain_output_passes() -> None:
    out = ("FILE     FORMAT\none.wav  fmt/141 WAVE\n\n\nready to package: 1 audio file(s)\n",
           "warning: one.wav: MP3 is lossy\nerror: two.wav: no such file\n")
    assert output_problems(*out) == []


@pytest.mark.parametrize(("text", "found"), [
    ("preserve: error: PosixPath('/srv/a.wav'): cannot be read\n",
     "a Python repr instead of a path: preserve: error: PosixPath('/srv/a.wav'): cannot be read"),
    ("copied to WindowsPath('C:/x')\n", "a Python repr instead of a path: copied to WindowsPath('C:/x')"),
    ("internal error\nTraceback (most recent call last):\n  File \"x.py\", line 1\n", "a Python traceback"),
    ("one\nnext: preserve validate b\nnext: preserve validate b\n",
     "the same line twice in a row: next: preserve validate b"),
    ("  error: a.wav: no such file\nother\npreserve: error: a.wav: no such file\n",
     "one message printed twice: error: a.wav: no such file / preserve: error: a.wav: no such file"),
])
def test_what_no_one_should_read_is_found(text: str, found: str) -> None:
    assert output_problems(text) == [found]


def test_a_message_repeated_across_stdout_and_stderr_is_found() -> None:
    assert output_problems("warning: a.wav: lossy\n", "warning: a.wav: lossy\n") == [
        "one message printed twice: warning: a.wav: lossy / warning: a.wav: lossy"]


def test_progress_lines_may_repeat() -> None:
    # without a terminal the same progress may be reported at two intervals: that is not a repeated message
    lines = "preserve: packaging: copy: 1.2 MB, running for 0:00\n" * 2 + \
        "preserve: auditing: verify: running for 1:00:05\n" * 2 + \
        "preserve: checking: 50%, 1.0 MB of 2.0 MB, 1.0 MB/s, ETA 0:01\n" * 2
    assert output_problems(lines) == []


def test_the_fixture_check_fails_the_test(request: pytest.FixtureRequest) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"(?s)printed what no one should read.*PosixPath"):
        assert_output_fit_for_people(request, "bag src dest", "", "preserve: error: PosixPath('src'): gone\n")
    with pytest.raises(pytest.fail.Exception, match="a Python traceback"):
        assert_output_fit_for_people(request, "bag src dest", "", "Traceback (most recent call last):\n")


@pytest.mark.internal_error
def test_a_test_expecting_an_internal_error_may_see_its_traceback(request: pytest.FixtureRequest) -> None:
    assert_output_fit_for_people(request, "bag", "", "preserve: internal error (a bug; please report it with this trace):\n"
                                 "Traceback (most recent call last):\n  File \"x.py\", line 1\n")
    with pytest.raises(pytest.fail.Exception, match="Python repr"):
        assert_output_fit_for_people(request, "bag", "PosixPath('x')")


# --- "points outside the collection" is said only of paths that lead out ----------------------

@pytest.fixture
def coll(tmp_path: Path) -> Collection:
    return Collection(tmp_path / "coll")


def unsafe(c: Collection) -> list[str]:
    return [p.message for p in check_collection(c.root).problems if p.code == "unsafe-path"]


def test_paths_inside_the_collection_are_told_how_to_write_them(coll: Collection) -> None:
    coll.rows[0] = f"{coll.root / 'one.wav'},One,Ann"
    coll.rows[1] = "side b/../side b/two.wav,Two,Ben"
    coll.rows.append(f"{coll.root},All,Of them")
    coll.write_sheet()
    assert unsafe(coll) == [
        f"metadata.csv row 1 ({coll.root / 'one.wav'}): the path is an absolute path; write it relative to the "
        "collection folder, as one.wav",
        "metadata.csv row 2 (side b/../side b/two.wav): the path goes through '..'; write it as side b/two.wav",
        f"metadata.csv row 4 ({coll.root}): the path is the collection folder itself; list its files, relative to it",
    ]
    assert not any("outside" in m for m in unsafe(coll))


def test_paths_that_lead_out_point_outside(coll: Collection, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.wav").write_bytes((coll.root / "one.wav").read_bytes())
    os.symlink(tmp_path / "elsewhere", coll.root / "linked")
    coll.rows += ["../elsewhere/x.wav,X,Y", f"{tmp_path / 'elsewhere' / 'x.wav'},X,Y", "linked/x.wav,X,Y", "C:/Music/x.wav,X,Y"]
    coll.write_sheet()
    assert unsafe(coll) == [
        "metadata.csv row 4 (../elsewhere/x.wav): the path points outside the collection ('..' climbs out of it); "
        "list only files inside the collection folder",
        f"metadata.csv row 5 ({tmp_path / 'elsewhere' / 'x.wav'}): the path points outside the collection "
        "(an absolute path); list only files inside the collection folder, relative to it",
        "metadata.csv row 6 (linked/x.wav): the path points outside the collection through the symbolic link "
        "linked; deliver the file itself inside the collection",
        "metadata.csv row 7 (C:/Music/x.wav): the path is a Windows drive path; write it relative to the collection folder",
    ]


def test_a_name_with_a_colon_is_a_file_inside(coll: Collection) -> None:
    # "a:" looks like a Windows drive only to Windows; on this system it is a file of the collection
    (coll.root / "one.wav").rename(coll.root / "a:one.wav")
    coll.rows[0] = "a:one.wav,One,Ann"
    coll.write_sheet()
    report = check_collection(coll.root)
    assert report.ready, [p.message for p in report.problems]


def test_the_outside_wording_reaches_the_user_once(coll: Collection, run_preserve: Run) -> None:
    coll.rows.append("../elsewhere.wav,Out,Side")
    coll.write_sheet()
    r = run_preserve("check", "-q", coll.root)
    assert r.returncode == 1
    line = "metadata.csv row 4 (../elsewhere.wav): the path points outside the collection ('..' climbs out of it)"
    assert (r.stdout + r.stderr).count(line) == 1, r.stdout + r.stderr


# --- names that are not UTF-8 are shown as a person can find them, not as a Python repr -------

def test_a_name_that_is_not_utf8_is_shown_with_its_bytes(tmp_path: Path, run_preserve: Run) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.wav").write_bytes(b"RIFF")
    with open(os.path.join(os.fsencode(src), b"caf\xe9.wav"), "wb") as f:
        f.write(b"RIFF")
    r = run_preserve("bag", src, tmp_path / "bag")
    assert r.returncode == 3, r.stderr
    assert f"{src}/caf\\xe9.wav: the name is not valid UTF-8; BagIt manifests are UTF-8, so rename it before bagging" \
        in r.stderr
    assert "PosixPath" not in r.stderr and "b'" not in r.stderr


# --- an operating-system error is told in words, not as str(OSError) -------------------------

def test_plain_reason_has_no_errno_and_no_quoted_path(tmp_path: Path) -> None:
    try:
        (tmp_path / "missing.toml").read_text()
    except OSError as exc:
        assert str(exc).startswith("[Errno 2]") and plain_reason(exc) == "No such file or directory"
    try:
        b"ok\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        assert plain_reason(exc) == "not valid UTF-8 at byte 2"


def test_an_unreadable_configuration_is_told_in_words(tmp_path: Path, run_preserve: Run) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"RIFF take")
    create_bag(tmp_path / "bag", payload_from_directory(src), algorithms=("sha256",), verify=False)
    config = tmp_path / "preserve.toml"
    config.write_bytes(b"[targets.off]\nurl = \"caf\xe9\"\n")
    r = run_preserve("replicate", tmp_path / "bag", "./copies", "--config", config, cwd=tmp_path)
    assert r.returncode == 3
    assert r.stderr == f"preserve: error: {config}: cannot be read (not valid UTF-8 at byte 24)\n"


def test_an_error_given_a_path_object_names_it_as_text(tmp_path: Path) -> None:
    from preserve.errors import ReplicaConflict

    exc = ReplicaConflict(target=tmp_path / "disk", name=tmp_path / "bag-one", reason="other digests")
    assert "PosixPath" not in str(exc)
    assert str(exc).startswith(f"{tmp_path / 'disk'}: a different bag named '{tmp_path / 'bag-one'}' is already there")


def test_copies_in_undeclared_places_are_counted_not_repeated() -> None:
    from preserve.replication.config import Location
    from preserve.replication.ndsa import Copy, _places

    copies = [Copy(where=w, place=place) for w, place in (("/a", Location()), ("/b", Location()),
                                                           ("s3://x/b", Location(site="Frankfurt")))]
    assert _places(copies) == "location not declared (2 copies); Frankfurt"

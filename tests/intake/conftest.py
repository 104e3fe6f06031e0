"""Building small collections in tmp_path with the same generator the examples use."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from preserve.errors import PreserveError
from preserve.intake.testaudio import Tone, write_flac, write_wav

from ..conftest import output_problems

TONE = Tone(22050, 16, 1, 0.25)
TOML = """\
[collection]
identifier = "test-0001"
organization = "Test Archive"
description = "A collection built by the tests"

[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate", "migrate"]
"""
HEADER = "file,title,artist"


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def invoke(command: object, *args: object) -> Outcome:
    """Run one click command as main() would: a PreserveError becomes its exit code."""
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=True)  # type: ignore[arg-type]
    code = result.exit_code
    said = [result.stdout, result.stderr]
    if isinstance(result.exception, PreserveError):
        code = result.exception.exit_code
        said.append(f"preserve: error: {result.exception}")  # as main() reports it
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    problems = output_problems(*said)
    assert not problems, "\n".join([*problems, "--- output ---", *said])
    return Outcome(code, result.stdout, result.stderr, result.exception)


class Collection:
    """A valid collection (two WAVs and a FLAC, one donor agreement) that a test then breaks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root / "rights").mkdir()
        (root / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
        (root / "collection.toml").write_text(TOML, encoding="utf-8")
        write_wav(root / "one.wav", TONE)
        (root / "side b").mkdir()
        write_wav(root / "side b" / "two.wav", Tone(22050, 16, 2, 0.25, 330.0))
        write_flac(root / "three.flac", Tone(22050, 16, 1, 0.25, 550.0))
        self.rows = ["one.wav,One,Ann", "side b/two.wav,Two,Ben", "three.flac,Three,Cy"]
        self.header = HEADER
        self.write_sheet()

    def write_sheet(self) -> None:
        (self.root / "metadata.csv").write_text("\n".join([self.header, *self.rows]) + "\n", encoding="utf-8")

    def md5(self, rel: str) -> str:
        return hashlib.md5((self.root / rel).read_bytes()).hexdigest()


@pytest.fixture
def collection(tmp_path: Path) -> Collection:
    return Collection(tmp_path / "coll")


@pytest.fixture
def make_collection(tmp_path: Path) -> Callable[[str], Collection]:
    return lambda name: Collection(tmp_path / name)

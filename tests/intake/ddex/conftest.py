"""DDEX deliveries built in tmp_path: the sample writer's tones and hand-written ERN messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from preserve.intake.ddex.sample import SampleRelease, tracks, write_delivery

AGREEMENT_TOML = """\
[collection]
organization = "Sample Records"

[defaults]
rights_basis = "license"
rights_holder = "Sample Records"
copyright_status = "copyrighted"
agreement = "deposit-agreement.txt"
permitted_acts = ["replicate", "migrate"]
"""
ICPN = "5012345678900"


def release(version: str, **kw: object) -> SampleRelease:
    """Two FLACs (4.3) or two WAVs (3.8.2), with a cover, in one album."""
    kind = "flac" if version.startswith("4") else "wav"
    fields: dict[str, object] = {"icpn": ICPN, "title": "Harbour Lights", "tracks": tracks("Harbour", 2, kind=kind)}
    fields.update(kw)
    return SampleRelease(**fields)  # type: ignore[arg-type]


def make_delivery(folder: Path, version: str, *, agreement: bool = True, **kw: object) -> Path:
    """A release folder with its message, audio, cover and (unless told otherwise) the deposit agreement."""
    write_delivery(folder, release(version, **kw), version, message_name="message.xml")
    if agreement:
        (folder / "collection.toml").write_text(AGREEMENT_TOML, encoding="utf-8")
        (folder / "deposit-agreement.txt").write_text("Deposit agreement (sample)\n", encoding="utf-8")
    else:
        (folder / "collection.toml").write_text('[collection]\norganization = "Sample Records"\n', encoding="utf-8")
    return folder


@pytest.fixture(params=["4.3", "3.8.2"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def delivery(tmp_path: Path, version: str) -> Path:
    return make_delivery(tmp_path / "delivery", version)


@pytest.fixture
def message_of() -> Callable[[Path], Path]:
    return lambda folder: folder / "message.xml"

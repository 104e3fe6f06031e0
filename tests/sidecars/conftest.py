"""Fixtures for the sidecar tests: real collections packaged by the real bag writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from preserve.bag.writer import PayloadEntry, StagedBag, create_bag
from preserve.intake.testaudio import Tone, write_aiff, write_flac, write_mp3, write_ogg, write_wav
from preserve.model import (
    AudioTechnical,
    Collection,
    EssenceCheck,
    FormatIdentification,
    PackagingContext,
    ProducerChecksum,
    Rights,
    SubmissionFile,
    Track,
)
from preserve.sidecars import write_sidecars

LICENCE_A = Rights(basis="license", holder="Harbour Records Ltd", license="CC BY-NC 4.0",
                   agreement="data/submission/rights/harbour-licence.pdf",
                   permitted_acts=("replicate", "migrate", "disseminate"))
LICENCE_B = Rights(basis="license", holder="Northern Lights Music", license="CC BY 4.0",
                   agreement="data/submission/rights/northern-licence.pdf",
                   permitted_acts=("replicate", "migrate"), restriction_until="2030-01-01")
FLAC = FormatIdentification(puid="fmt/279", name="FLAC (Free Lossless Audio Codec)", mime="audio/flac",
                            tool="fido", tool_version="1.6.1", signature_version="PRONOM v109", method="signature")


def make_collection(root: Path, n_tracks: int = 6, *, titles: dict[int, str] | None = None,
                    tracks_per_release: int = 3, shuffle: bool = True) -> tuple[Collection, list[PayloadEntry]]:
    """A collection of tiny files on disk: releases of ``tracks_per_release`` tracks, two discs each,
    alternating between two licences, plus a sheet and the two rights documents."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "rights").mkdir(exist_ok=True)
    tracks: list[Track] = []
    payload: list[PayloadEntry] = []
    order = list(range(n_tracks))
    if shuffle:
        # files named so that path order differs from disc/track order
        order = list(reversed(order))
    for i in order:
        rel = i // tracks_per_release
        pos = i % tracks_per_release
        disc = 1 if pos < (tracks_per_release + 1) // 2 else 2
        number = pos + 1 if disc == 1 else pos + 1 - (tracks_per_release + 1) // 2
        name = f"release {rel:03d}/{chr(ord('z') - pos)} track #{i}.flac"
        src = root / name
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(f"audio {i}\n".encode())
        title = (titles or {}).get(i, f"Song {i}")
        tracks.append(Track(
            source_path=name, bag_path=f"data/objects/{name}", row=i + 1, title=title,
            artists=("The Harbour Band",), album=f"Album {rel}", track_number=number, disc_number=disc,
            date="1999-05-01", isrc=f"GBAAA99{i:05d}", upc=f"0000000{rel:05d}", label="Harbour Records",
            composers=("A. Writer",), genre="Folk", language="eng", catalogue_number=f"HR-{rel}",
            rights=LICENCE_A if rel % 2 == 0 else LICENCE_B, format=FLAC,
            technical=AudioTechnical(codec="FLAC", container="FLAC", sample_rate=44100, bit_depth=16,
                                     channels=2, duration=1.5 + i, frames=66150, creating_application="reference libFLAC 1.4.3"),
            essence=EssenceCheck("pass" if i % 3 else "unverifiable", method="FLAC STREAMINFO MD5 of decoded samples"),
            producer_checksums=[ProducerChecksum("md5", "0" * 32, f"metadata.csv row {i + 1}")],
            size=src.stat().st_size))
        payload.append(PayloadEntry(src, f"objects/{name}"))
    subs = []
    for name, role in (("metadata.csv", "sheet"), ("rights/harbour-licence.pdf", "rights-document"),
                       ("rights/northern-licence.pdf", "rights-document")):
        (root / name).write_bytes(b"doc\n")
        subs.append(SubmissionFile(name, f"data/submission/{name}", role, 4))  # type: ignore[arg-type]
        payload.append(PayloadEntry(root / name, f"submission/{name}"))
    col = Collection(root=str(root), identifier="HARBOUR-2024", title="Harbour Collection",
                     organization="Harbour Sound Archive", description="Field recordings",
                     tracks=tracks, submission_files=subs)
    return col, payload


def package(dest: Path, col: Collection, payload: list[PayloadEntry], *, verify: bool = True,
            operator: str | None = "Ada Archivist", algorithms: tuple[str, ...] = ("sha256", "sha512")) -> Path:
    """Package through the real create_bag, with write_sidecars as its extra_tags."""
    ctx = PackagingContext(started="2024-05-01T10:00:00Z", operator=operator,
                           organization=col.organization, software_version="0.1.0")

    def extra(staged: StagedBag) -> None:
        write_sidecars(staged, col, ctx)

    create_bag(dest, payload, algorithms=algorithms, verify=verify, extra_tags=extra,
               info=[("Source-Organization", col.organization or "")])
    return dest


@pytest.fixture(scope="session")
def xsd(schemas_dir: Path) -> Callable[[str], etree.XMLSchema]:
    """Compile an official schema from ../shared/schemas (needs XML_CATALOG_FILES)."""
    if not os.environ.get("XML_CATALOG_FILES"):
        pytest.fail("XML_CATALOG_FILES is not set: run the tests as "
                    "XML_CATALOG_FILES=../shared/schemas/catalog.xml pytest (it must be set before Python starts)")
    cache: dict[str, etree.XMLSchema] = {}

    def get(name: str) -> etree.XMLSchema:
        if name not in cache:
            cache[name] = etree.XMLSchema(etree.parse(str(schemas_dir / name)))
        return cache[name]

    return get


class Kit:
    """The helpers above, for test modules (importlib import mode: tests cannot import conftest)."""

    make_collection = staticmethod(make_collection)
    package = staticmethod(package)
    LICENCE_A = LICENCE_A
    LICENCE_B = LICENCE_B


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


def read_with_metsrw(mets_path: Path) -> object:
    """Parse with metsrw as Archivematica does.

    metsrw refuses a CREATEDATE "more recent than now" by comparing strings with a naive
    ``utcnow().isoformat()``; within the same second ``...:31Z`` sorts after ``...:31.4``. A METS
    written this second is therefore read once the clock has passed that second.
    """
    import datetime as dt
    import time
    import warnings

    import metsrw

    created = etree.parse(str(mets_path)).getroot().find("{http://www.loc.gov/METS/}metsHdr")
    assert created is not None
    stamp = dt.datetime.strptime(created.get("CREATEDATE", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    delay = (stamp + dt.timedelta(seconds=1) - dt.datetime.now(dt.UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)
    with warnings.catch_warnings():
        # metsrw calls datetime.utcnow(), deprecated since Python 3.12; not ours to fix
        warnings.filterwarnings("ignore", "datetime.datetime.utcnow", DeprecationWarning)
        return metsrw.METSDocument.fromfile(str(mets_path))


@pytest.fixture(scope="session")
def metsrw_read() -> object:
    return read_with_metsrw


# -- one bag holding every audio format the suite generates ------------------------------------

FORMATS_TOML = """\
[collection]
identifier = "formats-0001"
organization = "Test Archive"

[defaults]
rights_basis = "donor"
rights_holder = "Dana Donor"
copyright_status = "copyrighted"
agreement = "rights/agreement.txt"
permitted_acts = ["replicate", "migrate"]
"""
BWF_FIELDS = {"Description": "Side A, reel 3", "Originator": "Test Archive", "OriginatorReference": "TA-0001",
              "OriginationDate": "2024-04-30", "OriginationTime": "14:05:00",
              "CodingHistory": "A=ANALOGUE,M=stereo,T=Studer A807\r\nA=PCM,F=48000,W=24,M=stereo,T=RME ADI-2\r\n"}


class AllFormats:
    """The generated audio files, by name, with the tone each was made from; the packaged bag."""

    def __init__(self, root: Path) -> None:
        self.tones = {
            "plain.wav": Tone(44100, 16, 2, 0.5),
            "bwf.wav": Tone(48000, 24, 2, 0.5, 330.0),
            "big.rf64": Tone(48000, 24, 1, 0.25, 550.0),
            "tone.flac": Tone(44100, 16, 2, 0.5, 660.0),
            "tone.mp3": Tone(44100, 16, 2, 2.0, 440.0),
            "tone.aiff": Tone(22050, 24, 1, 0.5, 770.0),
            "tone.ogg": Tone(44100, 16, 2, 0.5, 880.0),
        }
        self.source = root / "formats"
        (self.source / "rights").mkdir(parents=True)
        (self.source / "rights" / "agreement.txt").write_text("Deed of gift (test)\n", encoding="utf-8")
        (self.source / "collection.toml").write_text(FORMATS_TOML, encoding="utf-8")
        t = self.tones
        write_wav(self.source / "plain.wav", t["plain.wav"])
        write_wav(self.source / "bwf.wav", t["bwf.wav"], bext=BWF_FIELDS, md5_chunk=True)
        write_wav(self.source / "big.rf64", t["big.rf64"], rf64=True)
        write_flac(self.source / "tone.flac", t["tone.flac"])
        write_mp3(self.source / "tone.mp3", t["tone.mp3"])
        write_aiff(self.source / "tone.aiff", t["tone.aiff"])
        write_ogg(self.source / "tone.ogg", t["tone.ogg"])
        rows = [f"{name},{name.split('.')[0].title()},Ann" for name in self.tones]
        (self.source / "metadata.csv").write_text("\n".join(["file,title,artist", *rows]) + "\n", encoding="utf-8")
        self.bag = root / "bag"

    def payload(self, name: str) -> Path:
        return self.bag / "data" / "objects" / name


@pytest.fixture(scope="session")
def all_formats(tmp_path_factory: pytest.TempPathFactory) -> AllFormats:
    """Every audio format the suite generates, packaged by `preserve package` as a user runs it."""
    import shutil
    import subprocess
    import sys

    formats = AllFormats(tmp_path_factory.mktemp("all-formats"))
    exe = shutil.which("preserve", path=str(Path(sys.executable).parent))
    assert exe
    proc = subprocess.run([exe, "package", "-q", "--operator", "Ada Archivist", str(formats.source), str(formats.bag)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return formats

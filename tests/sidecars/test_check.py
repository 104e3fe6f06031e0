"""`preserve validate` on the sidecars: consistent with the bag, schema-valid, safe to read."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from lxml import etree

from preserve.errors import UnsafeXML
from preserve.sidecars.check import check_sidecars

SHARED = Path(__file__).resolve().parents[3] / "shared" / "schemas"


@pytest.fixture
def bag(tmp_path: Path, kit: Any) -> Path:
    col, payload = kit.make_collection(tmp_path / "src", 4, tracks_per_release=2)
    return kit.package(tmp_path / "bag", col, payload)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A preserve subprocess does not see the patched limit: those tests run once, as a user runs it.
    if "run_preserve" not in metafunc.fixturenames:
        metafunc.parametrize("reading", ["tree", "stream"], indirect=True)


@pytest.fixture(autouse=True)
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every in-process check runs twice: sidecars parsed whole, and streamed as for bags of
    thousands of tracks."""
    mode = str(getattr(request, "param", "tree"))
    if mode == "stream":
        monkeypatch.setattr("preserve.sidecars.check.TREE_LIMIT", 0)
    return mode


@pytest.fixture(autouse=True)
def no_installed_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # platformdirs follows XDG_DATA_HOME: an empty one means "nothing installed" for every test.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PRESERVE_SCHEMAS", raising=False)


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text("utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), "utf-8")


def test_consistent_bag_validates_against_the_schemas(bag: Path, cli: Callable[..., Result],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESERVE_SCHEMAS", str(SHARED))
    result = cli("validate", "-q", bag)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("valid (7 files, 44 bytes, sha256, sha512, 0 error(s), 0 warning(s), full check)")


def test_without_schemas_a_warning_not_an_error(bag: Path, cli: Callable[..., Result]) -> None:
    result = cli("validate", bag)  # -q leaves warnings out
    assert result.exit_code == 0, result.output
    assert ("warning: the official XML schemas are not installed, so the sidecars were not checked against them; "
            "run `preserve schemas install` (or set PRESERVE_SCHEMAS to a folder of them)") in result.output
    assert "0 error(s), 1 warning(s)" in result.output


def test_altered_mets_checksum_is_reported(bag: Path, cli: Callable[..., Result]) -> None:
    target = "data/objects/release 000/z track #0.flac"
    sha = next(line.split()[0] for line in (bag / "manifest-sha256.txt").read_text().splitlines() if line.endswith(target))
    edit(bag / "metadata" / "mets.xml", f'CHECKSUM="{sha}"', f'CHECKSUM="{"0" * 64}"')
    findings = [f for f in check_sidecars(bag) if f.severity == "error"]
    assert [(f.code, f.path, f.message, f.expected, f.found) for f in findings] == [
        ("sidecar", target, "metadata/mets.xml: the fileSec CHECKSUM (SHA-256) differs from manifest-sha256.txt", sha, "0" * 64)]
    result = cli("validate", "-q", bag)
    assert result.exit_code == 1
    assert (f"error: {target}: metadata/mets.xml: the fileSec CHECKSUM (SHA-256) differs from manifest-sha256.txt "
            f"(expected {sha}, found {'0' * 64})") in result.output
    assert "error: metadata/mets.xml: " in result.output  # the tag manifest also notices the edit


def test_altered_premis_fixity_is_reported(bag: Path) -> None:
    target = "data/objects/release 001/y track #3.flac"
    sha512 = next(line.split()[0] for line in (bag / "manifest-sha512.txt").read_text().splitlines() if line.endswith(target))
    edit(bag / "metadata" / "premis.xml", sha512, "f" * 128)
    errors = [f for f in check_sidecars(bag) if f.severity == "error"]
    assert [(f.path, f.message, f.algorithm, f.expected) for f in errors] == [
        (target, "metadata/premis.xml: the PREMIS SHA-512 of this file differs from manifest-sha512.txt", "sha512", sha512)]


def test_payload_file_missing_from_filesec_and_premis(bag: Path) -> None:
    ns = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3",
          "xlink": "http://www.w3.org/1999/xlink"}
    for rel, xpath in (("mets.xml", "//mets:file[mets:FLocat/@xlink:href='../data/submission/metadata.csv']"),
                       ("premis.xml", "//premis:object[premis:objectIdentifier/premis:objectIdentifierValue='data/submission/metadata.csv']")):
        tree = etree.parse(str(bag / "metadata" / rel))
        [el] = tree.xpath(xpath, namespaces=ns)
        el.getparent().remove(el)
        tree.write(str(bag / "metadata" / rel), xml_declaration=True, encoding="UTF-8")
    errors = {(f.path, f.message) for f in check_sidecars(bag) if f.severity == "error"}
    assert errors == {("data/submission/metadata.csv", "metadata/mets.xml: the fileSec does not list this payload file"),
                      ("data/submission/metadata.csv", "metadata/premis.xml has no file object for this payload file")}


def test_flocat_that_does_not_resolve(bag: Path) -> None:
    edit(bag / "metadata" / "mets.xml", 'xlink:href="../data/submission/metadata.csv"', 'xlink:href="../data/submission/other.csv"')
    errors = {(f.path, f.message) for f in check_sidecars(bag) if f.severity == "error"}
    assert errors == {("data/submission/other.csv", "metadata/mets.xml: the fileSec lists data/submission/other.csv, which is not in the payload manifests"),
                      ("data/submission/metadata.csv", "metadata/mets.xml: the fileSec does not list this payload file")}


def test_schema_invalid_mets_is_reported(bag: Path, reading: str) -> None:
    edit(bag / "metadata" / "mets.xml", "<premis:size>", "<premis:sighs>")
    edit(bag / "metadata" / "mets.xml", "</premis:size>", "</premis:sighs>")
    errors = [f for f in check_sidecars(bag, schemas=SHARED) if f.severity == "error"]
    assert len(errors) == 1
    assert errors[0].path == "metadata/mets.xml"
    # a whole tree gives the line; a stream (libxml2) does not
    assert errors[0].message.startswith("not valid against the official schema (line " if reading == "tree"
                                        else "not valid against the official schema: Element ")
    assert "Element '{http://www.loc.gov/premis/v3}sighs': This element is not expected." in errors[0].message


def test_tampered_schema_folder_is_refused(bag: Path, tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    shutil.copytree(SHARED, folder)
    with open(folder / "premis-v3-0.xsd", "ab") as f:
        f.write(b"<!-- changed -->\n")
    errors = [f for f in check_sidecars(bag, schemas=folder) if f.severity == "error"]
    assert len(errors) == 1
    assert errors[0].message.startswith(f"cannot check the sidecars against the schemas: {folder / 'premis-v3-0.xsd'}: SHA-256 ")
    assert "does not match the pinned 03b8a77a20b32b882ad799e12262671d07ad18210c60233f4e613a1289491cba for premis-v3-0.xsd" in errors[0].message


def _hostile(bag: Path, kind: str, secret: Path) -> None:
    if kind == "xxe":
        body = (f'<?xml version="1.0"?>\n<!DOCTYPE mets [<!ENTITY secret SYSTEM "file://{secret}">]>\n'
                '<mets xmlns="http://www.loc.gov/METS/"><metsHdr>&secret;</metsHdr></mets>\n')
    else:
        lol = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
        body = f'<?xml version="1.0"?>\n<!DOCTYPE mets [{lol}]>\n<mets xmlns="http://www.loc.gov/METS/">&l9;</mets>\n'
    (bag / "metadata" / "mets.xml").write_text(body, "utf-8")


@pytest.mark.parametrize("kind", ["xxe", "bomb"])
def test_hostile_xml_is_refused_without_reading_outside(bag: Path, tmp_path: Path, kind: str,
                                                      run_preserve: Callable[..., Any]) -> None:
    # The entity names a FIFO with no writer: a parser that tried to read it would block, and the
    # subprocess timeout would fail the test. Refusing before parsing returns at once.
    secret = tmp_path / "secret.fifo"
    os.mkfifo(secret)
    _hostile(bag, kind, secret)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    for command in (["validate", "-q", str(bag)], ["show", str(bag)]):
        proc = run_preserve(*command, timeout=60, env=env)
        assert proc.returncode == 1, proc.stderr
        out = proc.stdout + proc.stderr
        assert "metadata/mets.xml: XML refused (it declares entities (a DOCTYPE with <!ENTITY>), which could read local files or expand without bound)" in out


@pytest.mark.parametrize("kind", ["xxe", "bomb"])
def test_hostile_xml_is_refused_in_the_library_too(bag: Path, tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    _hostile(bag, kind, secret)
    findings = check_sidecars(bag, schemas=SHARED)
    mets = [f for f in findings if f.path == "metadata/mets.xml"]
    assert [f.message for f in mets] == [
        "metadata/mets.xml: XML refused (it declares entities (a DOCTYPE with <!ENTITY>), which could read local files "
        "or expand without bound)"]
    assert not any("TOP-SECRET" in str(f) for f in findings)


def _rename_first_track(col: Any, payload: list[Any], name: str) -> None:
    """Give the collection's first track the file name ``name`` (in the source folder and the bag)."""
    import dataclasses

    from preserve.bag.writer import PayloadEntry

    track = col.tracks[0]
    index = next(i for i, p in enumerate(payload) if p.target == track.bag_path.removeprefix("data/"))
    src = Path(col.root) / name
    payload[index].source.rename(src)
    col.tracks[0] = dataclasses.replace(track, source_path=name, bag_path=f"data/objects/{name}")
    payload[index] = PayloadEntry(src, f"objects/{name}")


def test_control_character_in_a_payload_name_round_trips(tmp_path: Path, kit: Any, cli: Callable[..., Result],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    col, payload = kit.make_collection(tmp_path / "src", 2, tracks_per_release=2)
    _rename_first_track(col, payload, "inter\x1bview 100%.flac")
    bag = kit.package(tmp_path / "bag", col, payload)
    assert check_sidecars(bag, schemas=SHARED) == []
    monkeypatch.setenv("PRESERVE_SCHEMAS", str(SHARED))
    result = cli("validate", "-q", bag)
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output
    ns = {"premis": "http://www.loc.gov/premis/v3"}
    premis = etree.parse(str(bag / "metadata" / "premis.xml")).getroot()
    [obj] = premis.xpath("premis:object[premis:objectIdentifier/premis:objectIdentifierType='local, percent-encoded']", namespaces=ns)
    assert obj.findtext("premis:objectIdentifier[premis:objectIdentifierType='local, percent-encoded']/"
                        "premis:objectIdentifierValue", namespaces=ns) == "data/objects/inter%1Bview 100%25.flac"
    original = obj.find("premis:originalName", ns)
    assert original is not None
    assert original.text == "inter[U+001B]view 100%.flac"  # readable
    assert original.get("simpleLink") == "inter%1Bview%20100%25.flac"  # exact
    # and a name without such characters keeps the plain local identifier
    plain = premis.xpath("premis:object[@xsi:type='premis:file'][premis:objectIdentifier/premis:objectIdentifierType='local']",
                         namespaces={**ns, "xsi": "http://www.w3.org/2001/XMLSchema-instance"})
    assert len(plain) == 4


def test_tag_files_alone_are_checked_without_the_payload(bag: Path, tmp_path: Path) -> None:
    """A folder holding only the bag's tag files (as spooled from an archive) checks clean."""
    spool = tmp_path / "spool"
    spool.mkdir()
    for p in bag.iterdir():
        if p.is_file():
            shutil.copy2(p, spool / p.name)
    shutil.copytree(bag / "metadata", spool / "metadata")
    assert check_sidecars(spool, schemas=SHARED) == []
    edit(spool / "metadata" / "premis.xml", "<premis:messageDigestAlgorithm>SHA-512</premis:messageDigestAlgorithm>",
         "<premis:messageDigestAlgorithm>SHA-384</premis:messageDigestAlgorithm>")
    errors = [f for f in check_sidecars(spool) if f.severity == "error"]
    assert [(f.message, f.algorithm) for f in errors] == [
        ("metadata/premis.xml: the PREMIS file object has no SHA-512 fixity, which manifest-sha512.txt gives", "sha512")]


NS = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3", "xlink": "http://www.w3.org/1999/xlink"}
TARGET = "data/objects/release 001/y track #3.flac"
FILE_XPATH = "//mets:fileSec//mets:file[mets:FLocat/@xlink:href='../data/objects/release%20001/y%20track%20%233.flac']"
OBJECT_XPATH = f"//premis:object[premis:objectIdentifier/premis:objectIdentifierValue='{TARGET}']"


def _edit_tree(path: Path, xpath: str, change: Callable[[etree._Element], None]) -> None:
    tree = etree.parse(str(path))
    [el] = tree.xpath(xpath, namespaces=NS)
    change(el)
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")


def _duplicate(el: etree._Element) -> None:
    el.addnext(etree.fromstring(etree.tostring(el)))


def _drop_sha512(obj: etree._Element) -> None:
    [fx] = obj.xpath("premis:objectCharacteristics/premis:fixity[premis:messageDigestAlgorithm='SHA-512']", namespaces=NS)
    fx.getparent().remove(fx)


@pytest.mark.parametrize(("doc", "xpath", "change", "message"), [
    ("mets.xml", FILE_XPATH, lambda f: f.attrib.pop("CHECKSUM"),
     "metadata/mets.xml: the fileSec entry {fid} has no CHECKSUM"),
    ("mets.xml", FILE_XPATH, _duplicate,
     "metadata/mets.xml: the fileSec lists this payload file more than once ({fid})"),
    ("premis.xml", OBJECT_XPATH, _duplicate,
     "metadata/premis.xml has more than one file object for this payload file"),
    ("premis.xml", OBJECT_XPATH, _drop_sha512,
     "metadata/premis.xml: the PREMIS file object has no SHA-512 fixity, which manifest-sha512.txt gives"),
], ids=["mets-no-checksum", "mets-duplicate", "premis-duplicate", "premis-no-fixity"])
def test_absent_checksums_and_duplicates_are_reported(bag: Path, doc: str, xpath: str,
                                                      change: Callable[[etree._Element], None], message: str) -> None:
    [fid] = etree.parse(str(bag / "metadata" / "mets.xml")).xpath(FILE_XPATH + "/@ID", namespaces=NS)
    _edit_tree(bag / "metadata" / doc, xpath, change)
    errors = [f for f in check_sidecars(bag) if f.severity == "error"]
    assert [(f.path, f.message) for f in errors] == [(TARGET, message.format(fid=fid))]


def _pad_with_doctype(mets: Path, doctype: bytes) -> None:
    """Put ``doctype`` after a 70 KB comment, beyond the quick look at the first 64 KiB."""
    decl, rest = mets.read_bytes().split(b"\n", 1)
    mets.write_bytes(decl + b"\n<!-- " + b"x" * 70_000 + b" -->\n" + doctype + b"\n" + rest)


def test_doctype_after_a_long_comment_is_refused(bag: Path) -> None:
    mets = bag / "metadata" / "mets.xml"
    _pad_with_doctype(mets, b"<!DOCTYPE mets>")
    message = "metadata/mets.xml: XML refused (it has a DOCTYPE; preserve reads only XML without DTDs)"
    assert [f.message for f in check_sidecars(bag) if f.path == "metadata/mets.xml"] == [message]


def test_doctype_after_a_long_comment_is_refused_by_show(bag: Path, tmp_path: Path, run_preserve: Callable[..., Any]) -> None:
    mets = bag / "metadata" / "mets.xml"
    _pad_with_doctype(mets, b"<!DOCTYPE mets>")
    proc = run_preserve("show", bag, env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"preserve: error: {mets}: XML refused (it has a DOCTYPE; preserve reads only XML without DTDs)\n"


def test_entities_after_a_long_comment_are_refused(bag: Path) -> None:
    _pad_with_doctype(bag / "metadata" / "mets.xml", b'<!DOCTYPE mets [<!ENTITY e "x">]>')
    from preserve.sidecars.show import summarize

    with pytest.raises(UnsafeXML, match="it declares entities"):
        summarize(bag)
    assert [f.message for f in check_sidecars(bag) if f.path == "metadata/mets.xml"] == [
        "metadata/mets.xml: XML refused (it declares entities (a DOCTYPE with <!ENTITY>), which could read local files "
        "or expand without bound)"]

"""The checks behind every verification: composite checksums (with and without AWS's ``-N``),
HEAD comparisons, the streamed tar round trip, configuration parsing."""

from __future__ import annotations

import base64
import hashlib
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preserve.errors import BadArchive, InputError
from preserve.replication.config import load_config
from preserve.replication.layout import check_info
from preserve.replication.tarstream import extract_tar, tar_chunks
from preserve.stores.base import ObjectInfo, PartPlan, b64_of_hex, composite_sha256, same_composite


def test_composite_checksum_and_suffix() -> None:
    parts = [os.urandom(100), os.urandom(50)]
    digests = [hashlib.sha256(p).hexdigest() for p in parts]
    expected = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()).decode()
    assert composite_sha256(digests) == expected
    plan = PartPlan(100, digests)
    assert plan.composite == f"{expected}-2"
    assert same_composite(expected, plan.composite)  # moto: no suffix
    assert same_composite(f"{expected}-2", plan.composite)  # AWS: with suffix
    assert not same_composite(composite_sha256(digests[:1]), plan.composite)


def test_check_info() -> None:
    sha = hashlib.sha256(b"abc").hexdigest()
    good = ObjectInfo("k", 3, sha256_meta=sha, checksum_sha256=b64_of_hex(sha))
    assert check_info(good, sha, 3, None) is None
    assert check_info(None, sha, 3, None) == "missing"
    assert check_info(good, sha, 4, None) == "size 3, expected 4"
    other = hashlib.sha256(b"abd").hexdigest()
    assert check_info(ObjectInfo("k", 3, sha256_meta=other, checksum_sha256=b64_of_hex(sha)), sha, 3, None) == \
        f"sha256 in object metadata is {other}, expected {sha}"
    assert check_info(ObjectInfo("k", 3, checksum_sha256=b64_of_hex(other)), sha, 3, None) == \
        f"stored checksum {b64_of_hex(other)}, expected {b64_of_hex(sha)}"
    assert check_info(ObjectInfo("k", 3), sha, 3, None) == "no-checksum"
    plan = PartPlan(5, [hashlib.sha256(b"x").hexdigest(), hashlib.sha256(b"y").hexdigest()])
    composite = plan.composite.split("-")[0]
    assert check_info(ObjectInfo("k", 3, sha256_meta=sha, checksum_sha256=composite), sha, 3, plan) is None
    assert check_info(ObjectInfo("k", 3, sha256_meta=sha, checksum_sha256=f"{composite}-2"), sha, 3, plan) is None
    assert check_info(ObjectInfo("k", 3, sha256_meta=sha, checksum_sha256=f"{composite}-2"), sha, 3, None) == "composite-unknown"


names = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00"),
                min_size=1, max_size=20).filter(lambda n: n not in (".", "..") and n.strip() == n and not n.startswith("~"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(names, st.binary(max_size=3000), min_size=1, max_size=5))
def test_tar_stream_round_trip(tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes]) -> None:
    root = tmp_path_factory.mktemp("bag") / "my-bag"
    (root / "data").mkdir(parents=True)
    (root / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    for name, data in files.items():
        (root / "data" / name).write_bytes(data)
    sha = {f"data/{n}": hashlib.sha256(d).hexdigest() for n, d in files.items()}
    blob = b"".join(tar_chunks(root, "my-bag", sha))
    assert len(blob) % tarfile.RECORDSIZE == 0
    dest = tmp_path_factory.mktemp("out")
    assert extract_tar(iter([blob[i:i + 777] for i in range(0, len(blob), 777)]), "my-bag", dest, "test") == len(files) + 1
    for name, data in files.items():
        assert (dest / "data" / name).read_bytes() == data


def test_tar_with_an_escaping_member_is_refused(tmp_path: Path) -> None:
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("my-bag/../../evil.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(BadArchive, match=r"'my-bag/\.\./\.\./evil\.txt': '\.\.' segment escapes the bag"):
        extract_tar(iter([buf.getvalue()]), "my-bag", tmp_path, "s3://b/p/my-bag.tar")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_config_targets_and_refusals(tmp_path: Path) -> None:
    cfg = tmp_path / "preserve.toml"
    cfg.write_text('[origin]\nsite = "A"\n[targets.off]\nurl = "s3://b/p/"\nsite = "B"\nregion = "r"\nthreats = "flood"\n')
    config = load_config(cfg)
    spec = config.resolve("off")
    assert (spec.url, spec.location.site, spec.location.threats) == ("s3://b/p", "B", ("flood",))
    assert config.resolve("s3://b/p/bag-one").location.site == "B"  # a URL under a named target
    assert config.resolve("s3://other/x").location.site is None
    with pytest.raises(Exception, match=r"nowhere: no target of that name in .* and no such folder; give a folder \(./nowhere makes a new one\)"):
        config.resolve("nowhere")
    cfg.write_text("[targets.off\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(cfg)
    with pytest.raises(InputError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml")


def test_tar_parts_are_sized_to_stay_within_the_part_limit(s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replication_helpers import MIB, make_bag

    from preserve.errors import RemoteError
    from preserve.replication.replicate import ReplicateOptions, replicate_bag
    from preserve.replication.tarstream import tar_size
    from preserve.stores import s3
    from preserve.stores.base import PutOptions

    monkeypatch.setattr(s3, "MAX_PARTS", 2)  # S3 allows 10,000; at 5 MiB parts this bag needs 3 or more
    bag = make_bag(tmp_path, big=16 * MIB)
    bucket = s3_server.bucket()
    settings = s3.S3Settings(endpoint_url=s3_server.endpoint, region="us-east-1", path_style=True)
    store = s3.S3Store(f"s3://{bucket}/p", settings)
    put = PutOptions(multipart_threshold=6 * MIB, part_size=5 * MIB)
    result = replicate_bag(bag, store, ReplicateOptions(layout="tar", put=put))
    assert result.complete
    plan = result.parts[""]
    assert len(plan.digests) == 2 and plan.part_size >= -(-tar_size(bag, "bag-one") // 2)
    blob = s3_server.client().get_object(Bucket=bucket, Key="p/bag-one.tar")["Body"].read()
    assert len(blob) == tar_size(bag, "bag-one") == result.bytes
    # a stream longer than announced stops before it would pass the limit, and leaves no upload behind
    chunks = iter([os.urandom(MIB)] * 16)
    with pytest.raises(RemoteError, match=r"p/other\.tar: the stream is longer than expected \(1 bytes\) and would need "
                                          r"more than 2 parts"):
        store.put_stream("other.tar", chunks, put, expected_size=1)
    assert s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert "p/other.tar" not in {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_tar_size_is_the_stream_length(tmp_path: Path) -> None:
    from replication_helpers import make_bag

    from preserve.bag.reader import open_bag
    from preserve.replication.tarstream import tar_size

    bag = make_bag(tmp_path, files={"a.wav": os.urandom(1000), "ü/long name " * 10 + ".flac": os.urandom(513)})
    sha = {line.path: line.digest for line in open_bag(bag).iter_manifest("sha256")}
    assert tar_size(bag, "bag-one") == sum(len(c) for c in tar_chunks(bag, "bag-one", sha))

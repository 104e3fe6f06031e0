"""The store interface, the same contract for an S3-compatible bucket and a directory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from replication_helpers import MIB, S3Server

from preserve.errors import BagInvalid
from preserve.stores import Store, open_store
from preserve.stores.base import PutOptions


@pytest.fixture(params=["s3", "filesystem"])
def store(request: pytest.FixtureRequest, s3_server: S3Server, tmp_path: Path) -> Store:
    if request.param == "s3":
        from preserve.stores.s3 import S3Settings

        return open_store(f"s3://{s3_server.bucket()}/pre/fix", S3Settings(endpoint_url=s3_server.endpoint,
                                                                             region="us-east-1", path_style=True))
    return open_store(str(tmp_path / "disk2"))


_WRITER = """
import sys, time
from preserve.stores.base import PutOptions
from preserve.stores.filesystem import FilesystemStore

def chunks():
    yield b"half"
    print("writing", flush=True)
    time.sleep(600)

FilesystemStore(sys.argv[1]).put_stream(sys.argv[2], chunks(), PutOptions())
"""


def killed_mid_upload(root: Path, key: str) -> None:
    """A real run of a directory store killed (SIGKILL) while it writes ``key``."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(root), key], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _read(store: Store, key: str) -> bytes:
    with store.get(key) as chunks:
        return b"".join(chunks)


def test_put_head_list_get(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "f.wav"
    data = os.urandom(7 * MIB + 3)
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    opts = PutOptions(multipart_threshold=6 * MIB, part_size=5 * MIB)
    put = store.put_file("bag/data/f.wav", src, sha, len(data), opts)
    assert put.sent == len(data)
    if store.kind == "s3":
        assert put.parts is not None and put.parts.part_size == 5 * MIB and len(put.parts.digests) == 2
    store.put_bytes("bag/manifest-sha256.txt", b"x  data/f.wav\n", PutOptions())
    info = store.head("bag/data/f.wav")
    assert info is not None and info.size == len(data)
    if store.kind == "s3":
        assert info.sha256_meta == sha and info.checksum_sha256 is not None
    assert store.head("bag/data/none") is None
    assert [o.key for o in store.list("bag/manifest-")] == ["bag/manifest-sha256.txt"]
    assert sorted(o.key for o in store.list("bag/")) == ["bag/data/f.wav", "bag/manifest-sha256.txt"]
    assert _read(store, "bag/data/f.wav") == data


def test_bytes_not_matching_the_digest_never_become_an_object(store: Store, tmp_path: Path) -> None:
    for size in (1000, 6 * MIB + 1):  # single PUT and multipart alike
        src = tmp_path / f"f{size}"
        src.write_bytes(os.urandom(size))
        with pytest.raises(BagInvalid, match=f"{src}: does not match manifest-sha256.txt"):
            store.put_file(f"bag/{size}", src, "0" * 64, size, PutOptions(multipart_threshold=6 * MIB, part_size=5 * MIB))
        assert store.head(f"bag/{size}") is None
    assert store.abort_own_uploads("bag/") == 0  # nothing unfinished was left behind either


def test_abort_removes_only_unfinished_uploads(store: Store, tmp_path: Path, s3_server: S3Server) -> None:
    store.put_bytes("bag/kept.txt", b"kept", PutOptions())
    if store.kind == "s3":
        client = s3_server.client()
        bucket = store.url[5:].split("/")[0]
        client.create_multipart_upload(Bucket=bucket, Key="pre/fix/bag/half.wav")
    else:
        killed_mid_upload(Path(store.url), "bag/half.wav")
    if store.kind == "s3":  # another bag whose name starts the same is not ours to abort
        client.create_multipart_upload(Bucket=bucket, Key="pre/fix/bag-two/other.wav")
    assert store.abort_own_uploads("bag/") == 1
    assert store.abort_own_uploads("bag/") == 0
    assert _read(store, "bag/kept.txt") == b"kept"
    assert [o.key for o in store.list("bag/")] == ["bag/kept.txt"]
    if store.kind == "s3":
        assert [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["pre/fix/bag-two/other.wav"]

"""preserve.toml refuses every table and key it does not know (exit 2), naming the file, the table,
the key and the closest known key, before any command goes anywhere: a misspelt ``endpoint_url``
left unread would send a target to AWS."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from preserve.bag.writer import create_bag, payload_from_directory
from preserve.configfile import read_config
from preserve.errors import UsageError
from preserve.replication.config import load_config


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it and closes each one."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    srv = Listener()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def user_env(tmp_path: Path, listener: Listener) -> dict[str, str]:
    """A user's environment: dummy AWS credentials, no AWS or preserve configuration of their own,
    and AWS_ENDPOINT_URL at the listener, so that a target that lost its endpoint-url (the key
    ignored) would be seen contacting it instead of AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PRESERVE_"))}
    env.update(AWS_ACCESS_KEY_ID="AKIAPRESERVETESTKEY1", AWS_SECRET_ACCESS_KEY="not-a-real-secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"), AWS_ENDPOINT_URL=listener.url,
               XDG_DATA_HOME=str(tmp_path / "user-data"), XDG_CONFIG_HOME=str(tmp_path / "user-config"))
    return env


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "take.wav").write_bytes(b"RIFF" + os.urandom(2000))
    return create_bag(tmp_path / "bag-one", payload_from_directory(src), algorithms=("sha256",)).path


def _target(listener: Listener, *, key: str = "endpoint-url") -> str:
    return f'[targets.off]\nurl = "s3://bucket/bags"\n{key} = "{listener.url}"\npath-style = true\n'


def _refused(r: subprocess.CompletedProcess[str], listener: Listener, started: float, *messages: str) -> None:
    """Exit 2 with each message on standard error, nothing on standard output, no connection made."""
    out, err, code = r.stdout, r.stderr, r.returncode
    assert code == 2, out + err
    for message in messages:
        assert message in err, err
    assert out == ""
    assert listener.connections == 0, "the endpoint was contacted"
    # refused as the file is read: no attempt at all, let alone five with backoff
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("command", [
    ("replicate", "{bag}", "off", "--retries", "1", "--ledger", "{ledger}"),
    ("restore", "off/bag-one", "{dest}", "--retries", "1"),
    ("audit", "off/bag-one", "--tier", "remote-metadata", "--retries", "1", "--ledger", "{ledger}"),
])
def test_a_misspelt_target_key_is_refused_before_the_endpoint_is_contacted(
        command: tuple[str, ...], tmp_path: Path, bag: Path, listener: Listener, user_env: dict[str, str],
        run_preserve, ledger_url: Path | str) -> None:
    config = tmp_path / "preserve.toml"
    config.write_text(_target(listener, key="endpoint_url"), encoding="utf-8")
    words = [w.format(bag=bag, dest=tmp_path / "restored", ledger=ledger_url) for w in command]
    started = time.monotonic()
    r = run_preserve(*words, cwd=tmp_path, env=user_env, timeout=120)
    _refused(r, listener, started,
             f"preserve: error: {config}: unknown key 'endpoint_url' in [targets.off]; did you mean 'endpoint-url'?\n")
    assert not (tmp_path / "restored").exists()


def test_a_misspelt_origin_key_is_refused(tmp_path: Path, bag: Path, listener: Listener, user_env: dict[str, str],
                                          run_preserve, ledger_url: Path | str) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[origin]\nsite = "Reading room"\nregoin = "uk-north"\n\n' + _target(listener), encoding="utf-8")
    started = time.monotonic()
    r = run_preserve("replicate", bag, "off", "--config", config, "--ledger", ledger_url, "--retries", "1",
                     cwd=tmp_path, env=user_env, timeout=120)
    _refused(r, listener, started, f"{config}: unknown key 'regoin' in [origin]; did you mean 'region'?")


def test_a_misspelt_smtp_key_is_refused_before_the_audit(tmp_path: Path, bag: Path, listener: Listener,
                                                         user_env: dict[str, str], run_preserve,
                                                         ledger_url: Path | str) -> None:
    (bag / "data" / "take.wav").write_bytes(b"altered")  # an audit would find it and mail the listener
    config = tmp_path / "preserve.toml"
    config.write_text(f'[smtp]\nhots = "127.0.0.1"\nport = {listener.port}\nsecurity = "none"\n', encoding="utf-8")
    started = time.monotonic()
    r = run_preserve("audit", bag, "--notify", "mailto:ops@example.org", "--ledger", ledger_url,
                     cwd=tmp_path, env=user_env, timeout=120)
    _refused(r, listener, started, f"{config}: unknown key 'hots' in [smtp]; did you mean 'host'?")
    assert "altered" not in r.stderr  # refused before anything was audited


def test_a_misspelt_top_level_key_is_refused(tmp_path: Path, listener: Listener, user_env: dict[str, str],
                                             run_preserve) -> None:
    # no --ledger: the one in preserve.toml is looked for (and would be missed: the default opened instead)
    config = tmp_path / "user-config" / "preserve" / "preserve.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'leger = "{tmp_path / "ledger.sqlite"}"\n', encoding="utf-8")
    started = time.monotonic()
    r = run_preserve("report", cwd=tmp_path, env=user_env, timeout=120)
    _refused(r, listener, started, f"{config}: unknown key 'leger' at the top level; did you mean 'ledger'?")
    assert not (tmp_path / "user-data").exists() and not (tmp_path / "ledger.sqlite").exists()


def test_an_unknown_table_is_refused(tmp_path: Path, bag: Path, listener: Listener, user_env: dict[str, str],
                                     run_preserve, ledger_url: Path | str) -> None:
    (tmp_path / "preserve.toml").write_text(_target(listener).replace("[targets.off]", "[target.off]"), encoding="utf-8")
    started = time.monotonic()
    r = run_preserve("replicate", bag, "s3://bucket/bags", "--endpoint-url", listener.url, "--ledger", ledger_url,
                     cwd=tmp_path, env=user_env, timeout=120)
    _refused(r, listener, started, "preserve.toml: unknown table [target]; did you mean [targets]?")


def test_every_unknown_key_is_named_one_a_line(tmp_path: Path) -> None:
    config = tmp_path / "preserve.toml"
    config.write_text('[origin]\nurl = "/mnt/bags"\n'
                      '[targets.off]\nurl = "/mnt/copy"\ncolour = "red"\nS3_Region = "eu"\n'
                      '[smtp]\nhost = "mail"\nleger = "x.sqlite"\n', encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_config(config)
    assert str(caught.value).splitlines() == [
        f"{config}: 4 tables or keys preserve does not know:",
        "  unknown key 'url' in [origin]: it belongs in [targets.NAME]",
        "  unknown key 'colour' in [targets.off] (known: url, endpoint-url, s3-region, aws-profile, profile, "
        "path-style, storage-class, checksum-when, site, region, provider, threats)",
        "  unknown key 'S3_Region' in [targets.off]; did you mean 's3-region'?",
        "  unknown key 'leger' in [smtp]; did you mean 'ledger' at the top level (above the first [table])?",
    ]


def test_every_documented_key_is_known(tmp_path: Path) -> None:
    """The examples of docs/replication.md and docs/ledger.md read without a refusal."""
    docs = Path(__file__).resolve().parent.parent / "docs"
    blocks = []
    for name in ("replication.md", "ledger.md"):
        text = (docs / name).read_text(encoding="utf-8")
        blocks += [b.split("```", 1)[0] for b in text.split("```toml\n")[1:]]
    assert len(blocks) >= 2
    config = tmp_path / "preserve.toml"
    config.write_text('ledger = "ledger.sqlite"\n' + "\n".join(blocks), encoding="utf-8")
    data = read_config(config)
    assert {"ledger", "origin", "targets", "smtp"} <= set(data)


"""``preserve audit --notify mailto:...``: the summary mailed through a real local SMTP server
(aiosmtpd), plain and with STARTTLS and a login, the HTML report attached when preserve.toml asks."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from preserve.bag.writer import PayloadEntry, create_bag


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def damaged_archive(tmp_path: Path) -> Path:
    for name in ("good", "bad"):
        src = tmp_path / "src" / name
        src.mkdir(parents=True)
        (src / "a.wav").write_bytes(b"RIFF" + os.urandom(3000))
        create_bag(tmp_path / "archive" / name, [PayloadEntry(src / "a.wav", "objects/a.wav")],
                   info=[("External-Identifier", f"id-{name}")])
    (tmp_path / "archive/bad/data/objects/a.wav").write_bytes(b"altered")
    return tmp_path / "archive"


@pytest.fixture
def plain_smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.mark.slow
def test_a_failed_audit_mails_a_plain_text_summary_with_the_html_report(tmp_path: Path, damaged_archive: Path,
                                                                        plain_smtp, run_preserve) -> None:
    port, inbox = plain_smtp
    config = tmp_path / "preserve.toml"
    config.write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
                      'from = "vault@archive.example.org"\nattach-html = true\n')
    result = run_preserve("audit", damaged_archive, "--tier", "fast", "--ledger", tmp_path / "l.sqlite",
                          "--notify", "mailto:ops@example.org", "--config", config)
    assert result.returncode == 1, result.stderr
    [(sender, rcpts, msg)] = inbox.messages
    assert sender == "vault@archive.example.org" and rcpts == ["ops@example.org"]
    assert msg["Subject"].endswith(": 1 bag(s) with problems")
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "preserve audited 2 bag(s)" in text and "1 ok, 1 with problems" in text
    assert "id-bad (fast audit" in text
    assert "altered: data/objects/a.wav" in text
    assert "preserve repair BAG --from TARGET" in text  # what to do
    assert "id-good" not in text
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "preserve-report.html"
    assert "<html" in attachment.get_content().lower() and "id-bad" in attachment.get_content()


def test_a_clean_audit_sends_nothing(tmp_path: Path, damaged_archive: Path, plain_smtp, run_preserve) -> None:
    port, inbox = plain_smtp
    config = tmp_path / "preserve.toml"
    config.write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n')
    result = run_preserve("audit", damaged_archive / "good", "--tier", "fast", "--ledger", tmp_path / "l.sqlite",
                          "--notify", "mailto:ops@example.org", "--config", config)
    assert result.returncode == 0, result.stderr
    assert inbox.messages == []


@pytest.mark.slow
def test_starttls_and_a_login_with_the_password_from_the_environment(tmp_path: Path, damaged_archive: Path,
                                                                      run_preserve) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            logins.append((data.login, data.password))
            return AuthResult(success=data.password == b"s3cret-smtp")
        return AuthResult(success=False)

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        config = tmp_path / "preserve.toml"
        config.write_text(f'[smtp]\nhost = "localhost"\nport = {controller.port}\nsecurity = "starttls"\n'
                          f'username = "vault"\nca-file = "{cert}"\n')
        env = {**os.environ, "PRESERVE_SMTP_PASSWORD": "s3cret-smtp"}
        result = run_preserve("audit", damaged_archive, "--tier", "fast", "--ledger", tmp_path / "l.sqlite",
                              "--notify", "mailto:ops@example.org", "--config", config, env=env)
        assert result.returncode == 1, result.stderr
        assert logins == [(b"vault", b"s3cret-smtp")]
        [(_, rcpts, msg)] = inbox.messages
        assert rcpts == ["ops@example.org"]
        assert list(msg.iter_attachments()) == []  # not asked for
        # a wrong password: the audit's exit code stays, the failure is a warning naming the server
        env["PRESERVE_SMTP_PASSWORD"] = "Wr0ng-pass-77"
        again = run_preserve("audit", damaged_archive, "--tier", "fast", "--ledger", tmp_path / "l.sqlite",
                             "--notify", "mailto:ops@example.org", "--config", config, env=env)
        assert again.returncode == 1
        assert "the audit found problems, and the e-mail failed too" in again.stderr
        assert "cannot send the audit summary to ops@example.org" in again.stderr
        assert "Wr0ng-pass-77" not in again.stderr + again.stdout
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_a_bad_mailto_is_a_usage_error(tmp_path: Path, damaged_archive: Path, run_preserve) -> None:
    result = run_preserve("audit", damaged_archive, "--ledger", tmp_path / "l.sqlite", "--notify", "mailto:nobody")
    assert result.returncode == 2
    assert "give one address, as mailto:ops@example.org" in result.stderr

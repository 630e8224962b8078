"""Delivery: the outbox folder and a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from smtp_helpers import Behaviour, smtp_server

from publisher.config import SmtpConfig
from publisher.delivery import OutboxTransport, RateLimiter, SmtpTransport, outbox_name
from publisher.errors import DeliveryError, RecipientError
from publisher.messages import Envelope


def envelope(recipient: str, body: str = "Hello") -> Envelope:
    data = (
        f"From: digest@example.org\r\nTo: {recipient}\r\nSubject: test\r\n"
        f"Message-ID: <{recipient}@example.org>\r\n\r\n{body}\r\n"
    ).encode()
    return Envelope("digest@example.org", recipient, data, f"<{recipient}@example.org>")


def settings(port: int, **overrides: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "rate": 0.0,
        "retries": 3,
        "backoff": 0.0,
        "timeout": 10.0,
    }
    values.update(overrides)
    return SmtpConfig(**values)


class Sleeps:
    """Records the delays asked for instead of sleeping (backoff and pacing are checked, not waited)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


ADDRESSES = [f"reader{n}@example.org" for n in range(1, 7)]


def test_one_connection_carries_every_message() -> None:
    with smtp_server() as (server, port):
        transport = SmtpTransport(settings(port), None)
        for address in ADDRESSES:
            transport.send(envelope(address))
        transport.close()
    assert server.recipients() == {a: 1 for a in ADDRESSES}
    assert transport.connections == 1
    assert server.sessions == 1
    assert server.received[0].parse()["Subject"] == "test"


def test_temporary_refusal_is_retried_with_backoff_then_accepted() -> None:
    sleeps = Sleeps()
    with smtp_server(Behaviour(tempfail_once={"reader2@example.org"})) as (server, port):
        transport = SmtpTransport(settings(port, backoff=2.0), None, sleep=sleeps)
        for address in ADDRESSES[:3]:
            transport.send(envelope(address))
        transport.close()
    assert server.recipients() == {a: 1 for a in ADDRESSES[:3]}
    assert server.rcpt_attempts["reader2@example.org"] == 2
    assert sleeps.calls == [2.0]  # one retry, after the configured backoff


def test_backoff_doubles_and_gives_up_as_a_temporary_failure() -> None:
    sleeps = Sleeps()
    with smtp_server(Behaviour(tempfail_always={"reader1@example.org"})) as (server, port):
        transport = SmtpTransport(settings(port, retries=3, backoff=1.5), None, sleep=sleeps)
        with pytest.raises(RecipientError) as caught:
            transport.send(envelope("reader1@example.org"))
        transport.send(envelope("reader2@example.org"))  # the connection is still usable
        transport.close()
    assert not caught.value.permanent
    assert "451" in caught.value.reason
    assert server.rcpt_attempts["reader1@example.org"] == 4
    assert sleeps.calls == [1.5, 3.0, 6.0]
    assert server.recipients() == {"reader2@example.org": 1}


def test_permanent_refusal_is_not_retried() -> None:
    sleeps = Sleeps()
    with smtp_server(Behaviour(reject={"gone@example.org"})) as (server, port):
        transport = SmtpTransport(settings(port), None, sleep=sleeps)
        with pytest.raises(RecipientError) as caught:
            transport.send(envelope("gone@example.org"))
        transport.close()
    assert caught.value.permanent
    assert caught.value.reason.startswith("550")
    assert server.rcpt_attempts["gone@example.org"] == 1
    assert sleeps.calls == []


def test_dropped_connection_reconnects_and_sends_each_message_once() -> None:
    with smtp_server(Behaviour(drop_on_data={3})) as (server, port):
        transport = SmtpTransport(settings(port), None)
        for address in ADDRESSES:
            transport.send(envelope(address))
        transport.close()
    assert server.recipients() == {a: 1 for a in ADDRESSES}
    assert transport.connections == 2


def test_unreachable_server_stops_delivery() -> None:
    with smtp_server() as (_, port):
        pass  # the port is free again: nothing listens there
    sleeps = Sleeps()
    transport = SmtpTransport(settings(port, retries=2, backoff=0.5), None, sleep=sleeps)
    with pytest.raises(DeliveryError) as caught:
        transport.send(envelope("reader1@example.org"))
    assert not isinstance(caught.value, RecipientError)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert sleeps.calls == [0.5, 1.0]


def test_login_uses_the_password_and_never_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    password = "correct horse battery staple"
    caplog.set_level(logging.DEBUG)
    with smtp_server(Behaviour(credentials=("digest", password))) as (server, port):
        transport = SmtpTransport(settings(port, username="digest"), password)
        transport.send(envelope("reader1@example.org"))
        transport.close()
        wrong = SmtpTransport(settings(port, username="digest"), "wrong " + password)
        with pytest.raises(DeliveryError) as caught:
            wrong.send(envelope("reader2@example.org"))
    assert server.auth[0] == ("digest", password)
    assert server.recipients() == {"reader1@example.org": 1}
    assert "PUBLISHER_SMTP_PASSWORD" in str(caught.value)
    assert password not in str(caught.value)
    assert password not in caplog.text


def test_missing_password_is_reported_before_sending() -> None:
    with smtp_server(Behaviour(credentials=("digest", "pw"))) as (server, port):
        transport = SmtpTransport(settings(port, username="digest", password_env="MY_PW"), None)
        with pytest.raises(DeliveryError, match="MY_PW"):
            transport.send(envelope("reader1@example.org"))
    assert not server.received


def test_password_is_never_sent_over_plain_text_to_a_remote_host() -> None:
    transport = SmtpTransport(settings(1, host="mail.example.org", username="u"), "secret")
    with pytest.raises(DeliveryError, match="unencrypted"):
        transport._login(_FakeConnection())


class _FakeConnection:
    def login(self, user: str, password: str) -> None:  # pragma: no cover - must not be reached
        raise AssertionError("login attempted")


def test_starttls_is_required_when_configured() -> None:
    with smtp_server() as (server, port):
        transport = SmtpTransport(settings(port, security="starttls", retries=0), None)
        with pytest.raises(DeliveryError, match="STARTTLS"):
            transport.send(envelope("reader1@example.org"))
    assert not server.received


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.skip("the openssl command is not installed")
    return cert, key


def test_starttls_with_a_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    import ssl

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with smtp_server(tls_context=context, require_starttls=True) as (server, port):
        trusted = SmtpTransport(settings(port, security="starttls", ca_file=cert), None)
        trusted.send(envelope("reader1@example.org"))
        trusted.close()
        untrusted = SmtpTransport(settings(port, security="starttls"), None)
        with pytest.raises(DeliveryError, match="ca_file"):
            untrusted.send(envelope("reader2@example.org"))
    assert server.recipients() == {"reader1@example.org": 1}


def test_rate_limit_spaces_messages() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert sleeps == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10
    limiter.wait()  # after a pause, no waiting
    assert len(sleeps) == 4
    unlimited = RateLimiter(0.0, clock=lambda: 0.0, sleep=sleep)
    unlimited.wait()
    unlimited.wait()
    assert len(sleeps) == 4


def test_smtp_transport_paces_itself() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with smtp_server() as (server, port):
        transport = SmtpTransport(settings(port, rate=2.0), None, sleep=sleep, clock=lambda: now[0])
        for address in ADDRESSES[:3]:
            transport.send(envelope(address))
        transport.close()
    assert len(server.received) == 3
    assert sleeps == [0.5, 0.5]  # two messages a second: half a second apart


def test_outbox_writes_each_message_atomically_once(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "outbox" / "2026-11-24")
    outbox.send(envelope("Reader1@Example.org"))
    outbox.send(envelope("reader2@example.org"))
    outbox.send(envelope("reader2@example.org"))  # a rerun replaces, never duplicates
    files = sorted(p.name for p in (tmp_path / "outbox" / "2026-11-24").iterdir())
    assert files == ["reader1@example.org.eml", "reader2@example.org.eml"]
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_outbox_names_are_safe() -> None:
    names = {
        outbox_name(a)
        for a in ["a/b@example.org", "a_b@example.org", "..x@example.org", "A@example.org"]
    }
    assert len(names) == 4
    for name in names:
        assert "/" not in name and not name.startswith(".") and name.endswith(".eml")


def test_outbox_that_cannot_be_written_stops_delivery(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    transport = OutboxTransport(blocker / "2026-11-24")
    with pytest.raises(DeliveryError, match="outbox"):
        transport.send(envelope("reader1@example.org"))


def test_close_tolerates_a_server_that_left() -> None:
    with smtp_server() as (_, port):
        transport = SmtpTransport(settings(port), None)
        transport.send(envelope("reader1@example.org"))
    transport.close()  # the server is gone; no exception
    assert transport._connection is None

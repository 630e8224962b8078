"""A real SMTP server on loopback (aiosmtpd) whose behaviour the tests choose.

The handler records a message only when it is about to answer 250 to DATA on a live
connection, so "received" means exactly what the client was told was accepted.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One accepted message."""

    sender: str
    recipients: list[str]
    data: bytes

    def parse(self) -> EmailMessage:
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class Behaviour:
    """What the server does; every field is optional."""

    tempfail_once: set[str] = field(default_factory=set)  # 451 at RCPT the first time
    tempfail_always: set[str] = field(default_factory=set)  # 451 at RCPT every time
    reject: set[str] = field(default_factory=set)  # 550 at RCPT
    drop_on_data: set[int] = field(default_factory=set)  # hang up during the n-th DATA (1-based)
    delay: float = 0.0  # seconds to think before accepting a DATA
    credentials: tuple[str, str] | None = None  # (user, password) required when set


class Recorder:
    """The aiosmtpd handler: accepts, refuses or hangs up as its Behaviour says."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[Received] = []
        self.rcpt_attempts: Counter[str] = Counter()
        self.data_started = 0
        self.sessions = 0
        self.data_event: dict[int, threading.Event] = {}
        self.auth: list[tuple[str, str]] = []

    def wait_for_data(self, number: int) -> threading.Event:
        """An event set when the ``number``-th DATA (1-based) begins."""
        return self.data_event.setdefault(number, threading.Event())

    def recipients(self) -> Counter[str]:
        return Counter(r.lower() for message in self.received for r in message.recipients)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        key = address.lower()
        self.rcpt_attempts[key] += 1
        if key in self.behaviour.reject:
            return "550 5.1.1 No such user here"
        if key in self.behaviour.tempfail_always:
            return "451 4.3.0 Mailbox temporarily unavailable"
        if key in self.behaviour.tempfail_once and self.rcpt_attempts[key] == 1:
            return "451 4.3.0 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started += 1
        number = self.data_started
        self.wait_for_data(number).set()
        if number in self.behaviour.drop_on_data:
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        if self.behaviour.delay:
            await asyncio.sleep(self.behaviour.delay)
        if server.transport is None or server.transport.is_closing():
            return "421 4.4.2 Client went away"
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 2.0.0 Accepted"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Authenticator:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.recorder.auth.append((user, password))
        ok = (user, password) == self.recorder.behaviour.credentials
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 235 or 535


@contextmanager
def smtp_server(
    behaviour: Behaviour | None = None, **kwargs: Any
) -> Iterator[tuple[Recorder, int]]:
    """Run a server on 127.0.0.1 for the ``with`` block; yields (recorder, port)."""
    recorder = Recorder(behaviour or Behaviour())
    options: dict[str, Any] = {}
    if recorder.behaviour.credentials:
        options = {
            "authenticator": _Authenticator(recorder),
            "auth_required": False,  # offered, not required: aiosmtpd warns on required AUTH without TLS
            "auth_require_tls": False,
        }
    port = kwargs.pop("port", None) or free_port()
    options.update(kwargs)
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()

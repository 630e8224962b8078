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
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

STEPS = ("banner", "ehlo", "mail", "rcpt", "data", "end-of-data")
"""The steps of the SMTP dialogue a Fault can hit, in order."""
# A temporary refusal at each step; at the banner the server then hangs up, as RFC 5321 says.
REFUSALS = {
    "banner": "421 4.3.2 Service not available, try again later",
    "ehlo": "451 4.3.0 Not now, try again later",
    "mail": "451 4.3.0 Temporary failure, try again later",
    "rcpt": "451 4.3.0 Mailbox temporarily unavailable",
    "data": "451 4.3.0 Cannot take data now",
    "end-of-data": "451 4.3.0 Queue full, try again later",
}


@dataclass
class Fault:
    """What goes wrong at one step: ``refuse`` (a 4xx reply), ``stall`` (say nothing for
    ``stall`` seconds, then hang up) or ``drop`` (hang up); the next ``times`` times."""

    step: str
    mode: str
    times: int = 1
    stall: float = 3.0
    hits: int = 0  # how many times it struck

    def strikes(self, step: str) -> bool:
        if step != self.step or self.times <= 0:
            return False
        self.times -= 1
        self.hits += 1
        return True


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
    fault: Fault | None = None  # a refusal, stall or hang-up at one step of the dialogue


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
        self.connections: set[Any] = set()  # the server's side of each open connection

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
        fault = self.behaviour.fault
        if fault is not None and fault.strikes("end-of-data"):
            if fault.mode == "refuse":
                return REFUSALS["end-of-data"]
            if fault.mode == "stall":
                await asyncio.sleep(fault.stall)  # cancelled if the client hangs up first
            if server.transport is not None:
                server.transport.close()
            return "421 4.4.2 Connection dropped"
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


class _FaultySMTP(SMTP):
    """aiosmtpd's server, with the Behaviour's Fault injected before each step."""

    def __init__(self, handler: Recorder, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.recorder = handler

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.recorder.connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.recorder.connections.discard(self)

    @property
    def closing(self) -> bool:
        return self.transport is not None and self.transport.is_closing()

    async def _fails(self, step: str) -> bool:
        """Act out the fault if it strikes at ``step``; True when the step must not go on."""
        fault = self.recorder.behaviour.fault
        if fault is None or not fault.strikes(step):
            return False
        if fault.mode == "refuse":
            await self.push(REFUSALS[step])
            if step != "banner":
                return True
        elif fault.mode == "stall":
            try:
                await asyncio.sleep(fault.stall)
            except asyncio.CancelledError:  # the client hung up first
                if self.transport is not None:
                    self.transport.close()
                raise
        if self.transport is not None:
            self.transport.close()
        return True

    async def _handle_client(self) -> None:
        if not await self._fails("banner"):
            await super()._handle_client()

    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._fails("ehlo"):
            await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._fails("ehlo"):
            await super().smtp_HELO(hostname)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not await self._fails("mail"):
            await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if not await self._fails("rcpt"):
            await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        if not await self._fails("data"):
            await super().smtp_DATA(arg)


class _FaultyController(Controller):
    def factory(self) -> SMTP:
        return _FaultySMTP(self.handler, **self.SMTP_kwargs)


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
    controller = _FaultyController(recorder, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield recorder, port
    finally:
        # Let the loop finish closing what the server hung up on, or the sockets leak.
        deadline = time.monotonic() + 5
        while any(c.closing for c in list(recorder.connections)) and time.monotonic() < deadline:
            time.sleep(0.01)
        controller.stop()

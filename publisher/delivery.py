"""Getting messages out: ``.eml`` files in an outbox folder, or an SMTP server.

A transport's ``send`` returns once the message is accepted, raises RecipientError for
that one message (``permanent`` for a 5xx reply, which is never retried), or
DeliveryError when nothing can be sent at all (cannot connect, TLS or login refused), so
the run stops and a rerun carries on later. The SMTP transport keeps one connection for
every message, paces itself (``smtp.rate``), and retries temporary failures (4xx
replies, dropped connections, timeouts) with exponential backoff. The password is read
from the environment by the caller and is never logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from publisher.config import SmtpConfig
from publisher.errors import DeliveryError, OutputError, RecipientError
from publisher.messages import Envelope
from publisher.output import OutputFolder

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^a-z0-9._@+-]")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class Transport(Protocol):
    """Where messages go; see the module docstring for what ``send`` promises.

    Messages sent are durable once ``commit`` returns (it raises DeliveryError if they
    cannot be made so); the caller records them only then, at most ``batch`` at a time.
    """

    description: str
    batch: int

    def send(self, envelope: Envelope) -> None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


def outbox_name(address: str) -> str:
    """A safe, distinct file name for one recipient's message."""
    lowered = address.lower()
    name = _UNSAFE.sub("_", lowered).lstrip(".")[:150]
    if name != lowered:
        name += "-" + hashlib.sha256(lowered.encode("utf-8")).hexdigest()[:8]
    return name + ".eml"


class OutboxTransport:
    """Writes each message as ``<folder>/<address>.eml``, atomically: the default delivery.

    Files are synced to disk a batch at a time (``commit``): one sync each plus one of
    the folder, instead of waiting for each file in turn. A message written again after
    a crash lands on the same name, so it is never there twice.
    """

    batch = 200

    def __init__(self, folder: Path) -> None:
        self.folder = OutputFolder(folder)
        self.description = str(folder)
        self._unsynced: list[str] = []

    def send(self, envelope: Envelope) -> None:
        name = outbox_name(envelope.recipient)
        try:
            self.folder.write(name, envelope.data, sync=False)
        except OutputError as exc:
            raise DeliveryError(f"cannot write to the outbox: {exc}") from exc
        self._unsynced.append(name)

    def commit(self) -> None:
        """Sync every message written since the last commit, then the folder."""
        names, self._unsynced = self._unsynced, []
        try:
            self.folder.sync(names)
        except OutputError as exc:
            raise DeliveryError(f"cannot write to the outbox: {exc}") from exc

    def prune(self) -> None:
        """Remove messages an earlier run wrote here and this one did not (dry runs only)."""
        try:
            self.folder.finish()
        except OutputError as exc:
            raise DeliveryError(f"cannot tidy the outbox: {exc}") from exc

    def close(self) -> None:
        """Remove what runs killed while writing a message left (hidden temporary files),
        also beside messages this run had no need to write again."""
        try:
            messages = [name for name in os.listdir(self.folder.root) if name.endswith(".eml")]
        except OSError:
            messages = []
        self.folder.sweep(also=messages)


class RateLimiter:
    """At most ``rate`` calls of ``wait`` per second (0: no limit); time is injected."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class SmtpTransport:
    """One reused SMTP connection; retries with backoff; 5xx replies are final.

    ``batch`` is 1: each recipient is recorded as soon as the server accepted.
    """

    batch = 1

    def __init__(
        self,
        settings: SmtpConfig,
        password: str | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._password = password
        self._sleep = sleep
        self._limiter = RateLimiter(settings.rate, clock, sleep)
        self._connection: smtplib.SMTP | None = None
        self.description = f"{settings.host}:{settings.effective_port}"
        self.connections = 0  # how many times we connected (for the log and the tests)

    def send(self, envelope: Envelope) -> None:
        attempts = self.settings.retries + 1
        reason = ""
        connect_failed = False
        for attempt in range(attempts):
            if attempt:
                delay = self.settings.backoff * 2 ** (attempt - 1)
                log.info("%s: %s; retrying in %.1f s", envelope.recipient, reason, delay)
                self._sleep(delay)
            self._limiter.wait()
            try:
                connection = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                reason, connect_failed = (
                    f"cannot connect to {self.description}: {_describe(exc)}",
                    True,
                )
                self._drop()
                continue
            connect_failed = False
            try:
                connection.sendmail(envelope.sender, [envelope.recipient], envelope.data)
                return
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = exc.recipients.get(envelope.recipient, (0, b"refused"))
                reason = _reply(code, reply)
            except smtplib.SMTPResponseException as exc:
                code, reason = exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error)
            except (OSError, smtplib.SMTPException) as exc:  # dropped connection, timeout
                reason = f"connection lost ({_describe(exc)})"
                self._drop()
                continue
            if code == 421 or not 400 <= code < 600:
                self._drop()  # 421: the server is closing the connection
            else:
                self._reset(connection)
            if 500 <= code < 600:
                raise RecipientError(envelope.recipient, reason, permanent=True)
        if connect_failed:
            raise DeliveryError(f"{reason} (tried {attempts} times)")
        raise RecipientError(
            envelope.recipient, f"{reason} (tried {attempts} times)", permanent=False
        )

    def commit(self) -> None:
        """Nothing to do: a message the server accepted is its to deliver."""

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        settings = self.settings
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        host, port, timeout = settings.host, settings.effective_port, settings.timeout
        try:
            connection: smtplib.SMTP = (
                smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
                if settings.security == "tls"
                else smtplib.SMTP(host, port, timeout=timeout)
            )
        except ssl.SSLCertVerificationError as exc:
            raise _untrusted(self.description, exc) from exc
        try:
            _greet(connection)
            if settings.security == "starttls":
                if not connection.has_extn("starttls"):
                    raise DeliveryError(
                        f"{self.description} does not offer STARTTLS; set smtp.security to tls "
                        "(implicit TLS, usually port 465) or none (only for a local relay)"
                    )
                connection.starttls(context=context)
                _greet(connection)
            if settings.username:
                self._login(connection)
        except ssl.SSLCertVerificationError as exc:
            connection.close()
            raise _untrusted(self.description, exc) from exc
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        self.connections += 1
        log.debug("connected to %s", self.description)
        return connection

    def _login(self, connection: smtplib.SMTP) -> None:
        settings = self.settings
        if not self._password:
            raise DeliveryError(
                f"smtp.username is set but the environment variable {settings.password_env} "
                "(smtp.password_env) is empty; export the password there"
            )
        if settings.security == "none" and settings.host not in _LOOPBACK:
            raise DeliveryError(
                "refusing to send the SMTP password over an unencrypted connection; "
                "set smtp.security to starttls or tls"
            )
        try:
            connection.login(settings.username, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{self.description} refused the login for {settings.username!r} "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); check smtp.username and "
                f"the password in {settings.password_env}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{self.description} does not support login (AUTH)") from exc

    def _reset(self, connection: smtplib.SMTP) -> None:
        """End a refused transaction with RSET, so the connection can carry the next one.

        smtplib sends RSET after most refusals, but not when DATA itself is refused: the
        next MAIL would then be a "nested MAIL command", refused for good.
        """
        try:
            code, _ = connection.rset()
        except (OSError, smtplib.SMTPException):
            code = 0
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def close(self) -> None:
        """Say goodbye politely; a server that already left is fine."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()


def _untrusted(where: str, exc: ssl.SSLCertVerificationError) -> DeliveryError:
    return DeliveryError(
        f"{where}: the server's TLS certificate is not trusted ({exc.verify_message}); "
        "set smtp.ca_file to the CA that signed it"
    )


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}".strip()


def _greet(connection: smtplib.SMTP) -> None:
    """EHLO, else HELO; a server that refuses both (421, 4xx) is one we cannot use now.

    smtplib would go on after a refused EHLO, and the server's "send HELO first" (503)
    would then read as a permanent refusal of the recipient.
    """
    code, reply = connection.ehlo()
    if not 200 <= code <= 299:
        code, reply = connection.helo()
        if not 200 <= code <= 299:
            raise smtplib.SMTPHeloError(code, reply)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__

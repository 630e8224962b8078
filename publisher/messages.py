"""One complete MIME message per subscriber, built with the ``email`` package; no sending.

multipart/alternative with the text part first and the HTML last (clients show the last
part they can display). The same digest and recipient always give the same bytes:
Message-ID and MIME boundary are derived from the content, never random. Unsubscribe
links carry an opaque HMAC token of the address, never the address itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from urllib.parse import quote, urlsplit

from publisher.text import one_line, shorten

MAX_SUBJECT = 200


@dataclass(frozen=True)
class Envelope:
    """Who a message goes from and to at the SMTP level, with its bytes."""

    sender: str
    recipient: str
    data: bytes
    message_id: str


@dataclass(frozen=True)
class Letter:
    """Everything one message says; ``build`` turns it into bytes."""

    sender: Address
    recipient: Address
    subject: str
    date: datetime
    message_id: str
    text: str
    html: str
    unsubscribe_url: str
    unsubscribe_mailto: str = ""
    reply_to: str = ""
    list_id: str = ""


def unsubscribe_token(secret: bytes, address: str) -> str:
    """An opaque, stable token for ``address``: HMAC-SHA256, 128 bits, URL-safe."""
    mac = hmac.new(secret, address.lower().encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode("ascii").rstrip("=")


def personal_url(template: str, site_url: str, token: str) -> str:
    """A per-subscriber link from a template with ``{site_url}`` and ``{token}``."""
    return template.format(site_url=site_url, token=quote(token, safe=""))


def mailto_url(address: str, token: str) -> str:
    """A ``mailto:`` unsubscribe link whose subject carries the token (see ``unsubscribe``)."""
    return f"mailto:{address}?subject={quote('unsubscribe ' + token, safe='')}"


def message_id(period: str, address: str, host: str, *, test: bool = False) -> str:
    """``<hash(period, recipient)@host>``: a resend of the same digest keeps its id, so
    receiving servers and clients can drop a duplicate. Test sends get a different one."""
    seed = f"{period}\x00{address.lower()}" + ("\x00test" if test else "")
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{host or 'localhost'}>"


def site_host(site_url: str) -> str:
    """The host of the site's URL, for Message-IDs and List-Id."""
    return (urlsplit(site_url).hostname or "localhost").lower()


def subject_line(template: str, *, site: str, date: str, headline: str, count: int) -> str:
    """The subject from its template; one line, capped, whatever the headline holds."""
    text = template.format(site=site, date=date, headline=headline, count=count)
    return shorten(one_line(text), MAX_SUBJECT)


def build(letter: Letter) -> bytes:
    """The message as it goes on the wire (CRLF line ends)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = letter.sender
    message["To"] = letter.recipient
    if letter.reply_to:
        message["Reply-To"] = letter.reply_to
    message["Subject"] = letter.subject
    message["Date"] = format_datetime(letter.date)
    message["Message-ID"] = letter.message_id
    if letter.list_id:
        message["List-Id"] = letter.list_id
    links = [f"<{letter.unsubscribe_url}>"] if letter.unsubscribe_url else []
    if letter.unsubscribe_mailto:
        links.append(f"<{letter.unsubscribe_mailto}>")
    if links:
        message["List-Unsubscribe"] = ", ".join(links)
    if letter.unsubscribe_url:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(letter.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(letter.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # Quoted-printable never writes "=_", so this boundary cannot occur inside a part.
    seed = f"{letter.message_id}\x00{letter.text}\x00{letter.html}".encode()
    message.set_boundary("=_" + hashlib.sha256(seed).hexdigest()[:32])
    return message.as_bytes(policy=SMTP)

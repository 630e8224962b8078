"""MIME messages, read back with the ``email`` package as a mail client would."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from publisher.messages import (
    Letter,
    build,
    mailto_url,
    message_id,
    personal_url,
    site_host,
    subject_line,
    unsubscribe_token,
)

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
SECRET = b"s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"


def letter(**overrides: object) -> Letter:
    values: dict[str, object] = {
        "sender": Address("Publisher Digest", addr_spec="digest@feeds.example.org"),
        "recipient": Address("Zoë O'Brien", addr_spec="zoe@example.org"),
        "subject": "Publisher, 24 November 2026: Ünïcode — headline",
        "date": NOW,
        "message_id": message_id("2026-11-24", "zoe@example.org", "feeds.example.org"),
        "text": "Plain text part\nwith a line that is long " + "word " * 40 + "\n",
        "html": "<!DOCTYPE html><html><body><p>HTML part — ünïcode</p>"
        + "<p>x</p>" * 300
        + "</body></html>",
        "unsubscribe_url": "https://feeds.example.org/unsubscribe?token=abc",
        "unsubscribe_mailto": "mailto:leave@example.org?subject=unsubscribe%20abc",
        "reply_to": "editor@example.org",
        "list_id": "<digest.feeds.example.org>",
    }
    values.update(overrides)
    return Letter(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_multipart_alternative_text_first_html_last() -> None:
    message = parse(build(letter()))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # The wire format has CRLF line ends; a client reads them as plain line breaks.
    assert parts[0].get_content().replace("\r\n", "\n") == letter().text
    assert parts[1].get_content().replace("\r\n", "\n") == letter().html + "\n"
    assert message.get_body(("html", "plain")) is parts[1]
    assert not message.defects and not any(p.defects for p in parts)


def test_headers() -> None:
    data = build(letter())
    message = parse(data)
    assert message["From"].addresses[0].addr_spec == "digest@feeds.example.org"
    assert message["From"].addresses[0].display_name == "Publisher Digest"
    assert message["To"].addresses[0].display_name == "Zoë O'Brien"
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    assert message["Subject"] == "Publisher, 24 November 2026: Ünïcode — headline"
    assert parsedate_to_datetime(message["Date"]) == NOW
    assert message["Message-ID"] == message_id("2026-11-24", "zoe@example.org", "feeds.example.org")
    assert message["Reply-To"] == "editor@example.org"
    assert message["List-Id"] == "<digest.feeds.example.org>"
    assert message["List-Unsubscribe"] == (
        "<https://feeds.example.org/unsubscribe?token=abc>, <mailto:leave@example.org?subject=unsubscribe%20abc>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"
    # On the wire: CRLF line ends, ASCII only, no line over 998 characters.
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78


def test_same_input_same_bytes_including_the_boundary() -> None:
    assert build(letter()) == build(letter())
    other = build(letter(recipient=Address("", addr_spec="someone@example.org")))
    assert other != build(letter())


def test_without_an_unsubscribe_url_there_is_no_one_click_header() -> None:
    message = parse(build(letter(unsubscribe_url="", unsubscribe_mailto="")))
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None


def test_message_id_is_deterministic_per_digest_and_recipient() -> None:
    first = message_id("2026-11-24", "Ada@Example.org", "feeds.example.org")
    assert first == message_id("2026-11-24", "ada@example.org", "feeds.example.org")
    assert first != message_id("2026-11-25", "ada@example.org", "feeds.example.org")
    assert first != message_id("2026-11-24", "bob@example.org", "feeds.example.org")
    assert first != message_id("2026-11-24", "ada@example.org", "feeds.example.org", test=True)
    assert first.startswith("<") and first.endswith("@feeds.example.org>")
    assert "ada" not in first.lower()
    assert site_host("https://Feeds.Example.org:8443/news/") == "feeds.example.org"


def test_unsubscribe_token_is_opaque_stable_and_keyed() -> None:
    token = unsubscribe_token(SECRET, "ada@example.org")
    assert token == unsubscribe_token(SECRET, "ADA@example.org")
    assert token != unsubscribe_token(SECRET, "bob@example.org")
    assert token != unsubscribe_token(b"another secret, another token!!!", "ada@example.org")
    assert "ada" not in token and "example" not in token
    assert len(token) == 22 and token.replace("-", "").replace("_", "").isalnum()
    url = personal_url("{site_url}unsubscribe?token={token}", "https://feeds.example.org/", token)
    assert url == f"https://feeds.example.org/unsubscribe?token={token}"
    assert (
        mailto_url("leave@example.org", token)
        == f"mailto:leave@example.org?subject=unsubscribe%20{token}"
    )


def test_subject_line_is_one_capped_line_whatever_the_headline() -> None:
    subject = subject_line(
        "{site}, {date}: {headline} ({count})",
        site="Publisher",
        date="24 November 2026",
        headline="Evil\r\nBcc: everyone@example.org " + "long " * 100,
        count=5,
    )
    assert "\n" not in subject and "\r" not in subject
    assert len(subject) <= 200 and subject.endswith("…")
    message = parse(build(letter(subject=subject)))
    assert message["Bcc"] is None
    assert message["Subject"] == subject


@pytest.mark.parametrize("name", ['Evil "Quote" <x@evil.example>', "Line\nBreak", "Ünïcødé Ñame"])
def test_display_names_cannot_inject_addresses(name: str) -> None:
    clean = " ".join(name.split())
    message = parse(build(letter(recipient=Address(clean, addr_spec="zoe@example.org"))))
    assert [a.addr_spec for a in message["To"].addresses] == ["zoe@example.org"]
    assert message["To"].addresses[0].display_name == clean

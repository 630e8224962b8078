"""MIME messages, read back with the ``email`` package as a mail client would."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import html
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.messages import (
    Letter,
    Mold,
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


# --- the mold: many recipients, the same bytes as build -------------------------------------

MARK = "pubfeedc0ffee"  # placeholders as the digest makes them: a random prefix and a name
GREETING, UNSUBSCRIBE, PREFERENCES = (
    f"{MARK}{n}" for n in ("greeting", "unsubscribe", "preferences")
)
SITE = "https://feeds.example.org/"


def digest_text(lines: list[str]) -> str:
    """A text part shaped like the digest's: a greeting, stories, the personal links."""
    return "\n".join(
        ["Publisher", "", GREETING, "", *lines, "", f"Unsubscribe: {UNSUBSCRIBE}",
         f"Manage preferences: {PREFERENCES}", ""]
    )  # fmt: skip


def digest_html(lines: list[str]) -> str:
    body = "\n".join(f'<p style="margin:0">{line}</p>' for line in lines)
    return (
        f'<!DOCTYPE html>\n<html><body>\n<p style="margin:0 0 8px 0">{GREETING}</p>\n{body}\n'
        f'<p><a href="{UNSUBSCRIBE}" style="color:#5b6270">Unsubscribe</a> · '
        f'<a href="{PREFERENCES}">Manage preferences</a></p>\n</body></html>\n'
    )


class Reader:
    """One recipient as the digest run sees them: what build needs and what fill needs."""

    def __init__(
        self,
        name: str,
        address: str,
        *,
        unsubscribe: str = "{site_url}unsubscribe?token={token}",
        mailto: str = "leave@example.org",
        host: str = "feeds.example.org",
    ) -> None:
        self.name, self.address = name, address
        self.token = unsubscribe_token(SECRET, address)
        self.unsubscribe_url = personal_url(unsubscribe, SITE, self.token) if unsubscribe else ""
        self.mailto = mailto_url(mailto, self.token) if mailto else ""
        self.message_id = message_id("2026-11-24", address, host)
        preferences = personal_url("{site_url}preferences?token={token}", SITE, self.token)
        greeting = f"Hi {name}," if name else "Hello,"
        self.text_values = {
            GREETING: greeting,
            UNSUBSCRIBE: self.unsubscribe_url,
            PREFERENCES: preferences,
        }
        self.html_values = {key: html.escape(value) for key, value in self.text_values.items()}

    def letter(self, text: str, html_part: str, **overrides: object) -> Letter:
        """The letter with its placeholders filled in: what the email package is given."""
        for mark, value in self.text_values.items():
            text = text.replace(mark, value)
        for mark, value in self.html_values.items():
            html_part = html_part.replace(mark, value)
        return letter(
            recipient=Address(self.name, addr_spec=self.address),
            message_id=self.message_id,
            text=text,
            html=html_part,
            unsubscribe_url=self.unsubscribe_url,
            unsubscribe_mailto=self.mailto,
            **overrides,
        )

    def mold(self, text: str, html_part: str, **overrides: object) -> Mold:
        template = dataclasses.replace(self.letter("", "", **overrides), text=text, html=html_part)
        made = Mold.make(template, self.token, self.text_values, self.html_values)
        assert made is not None
        return made

    def fill(self, mold: Mold) -> bytes | None:
        return mold.fill(
            self.name, self.address, self.message_id, self.token, self.text_values, self.html_values
        )


STORIES = ["A story · with a dot", "Another one, café", "https://news.example.com/" + "x" * 90]
VARIED = [
    Reader("Reader 7", "reader7@example.org"),
    Reader("", "plain@example.org"),
    Reader("Zoë O'Brien", "zoe@example.org"),
    Reader('Evil "Quote" <x@evil.example>', "quote@example.org"),
    Reader("山田 太郎", "taro@example.jp"),
    Reader("Ünïcødé " * 12, "long-name@example.org"),
    Reader("Dr. J. Smith, Jr.", "j.smith+digest@example.org"),
    Reader("Reader", "a" * 64 + "@" + ".".join(["sub" + "d" * 55] * 3) + ".example"),
    Reader("=?utf-8?q?forged?=", "o'hara/x=y?z@example.org"),
    Reader("Ann  Two   Spaces", "ann@example.org"),
]


@pytest.mark.parametrize("reader", VARIED, ids=lambda r: r.address[:30])
def test_a_mold_fills_in_exactly_what_build_writes(reader: Reader) -> None:
    text, html_part = digest_text(STORIES), digest_html(STORIES)
    mold = VARIED[0].mold(text, html_part)
    assert reader.fill(mold) == build(reader.letter(text, html_part))


@pytest.mark.parametrize(
    "settings",
    [
        {"unsubscribe": "", "mailto": ""},  # no List-Unsubscribe header at all
        {"mailto": ""},
        {"unsubscribe": "https://feeds.example.org/unsubscribe"},  # no token in the link
        {"unsubscribe": "{site_url}u/{token}/confirm?again={token}"},  # the token twice
        # One word longer than a line: the email package writes it as encoded words.
        {"unsubscribe": "{site_url}" + "u" * 80 + "?token={token}", "mailto": ""},
        {"host": "mail." + "h" * 70 + ".example.org"},  # a Message-ID longer than a line
    ],
)
def test_a_mold_fills_in_every_kind_of_unsubscribe_link_and_message_id(
    settings: dict[str, str],
) -> None:
    text, html_part = digest_text(STORIES), digest_html(STORIES)
    first = Reader("Reader 1", "reader1@example.org", **settings)
    mold = first.mold(text, html_part)
    for reader in (first, Reader("Zoë", "zoe@example.org", **settings)):
        assert reader.fill(mold) == build(reader.letter(text, html_part))


def test_a_mold_without_placeholders_or_optional_headers() -> None:
    first, other = Reader("", "a@example.org"), Reader("Bo", "bo@example.org")
    overrides: dict[str, object] = {"reply_to": "", "list_id": ""}
    for text, html_part in [("", ""), ("one line, no newline", "<p>x</p>")]:
        mold = first.mold(text, html_part, **overrides)
        assert other.fill(mold) == build(other.letter(text, html_part, **overrides))


def test_a_value_with_a_line_break_is_left_to_build() -> None:
    text, html_part = digest_text(STORIES), digest_html(STORIES)
    mold = VARIED[0].mold(text, html_part)
    odd = Reader("Reader 2", "reader2@example.org")
    odd.text_values[GREETING] = "Hi\r\nthere,"
    assert odd.fill(mold) is None


# Quoted-printable's edge cases: lines around 76 characters, "=" and spaces at the soft
# break, non-ASCII whose escape straddles it, CR, LF and CRLF line ends, placeholders
# anywhere in a line.
QP_PIECES = st.sampled_from(
    [" ", "\t", "=", "é", "·", "中", ".", "From ", "x" * 70, "y" * 75, "z" * 76, "w" * 77,
     "-- ", "a", "b c", GREETING, UNSUBSCRIBE, PREFERENCES]
)  # fmt: skip
QP_TEXT = st.lists(
    st.tuples(st.lists(QP_PIECES, max_size=8).map("".join), st.sampled_from(["\n", "\r\n", "\r"])),
    max_size=12,
).map(lambda lines: "".join(line + end for line, end in lines))
NAMES = st.text(
    alphabet=st.sampled_from(list("AbZz09 .,'\"<>@()[]:;\\-=?_éΩ中😀")), max_size=60
).map(lambda name: " ".join(name.split()))
ATOM = st.text(alphabet=st.sampled_from(list("ab09!#$%&'*+/=?^_`{|}~-")), min_size=1, max_size=20)
ADDRESSES = st.builds(
    lambda atoms, labels: ".".join(atoms) + "@" + ".".join(labels) + ".org",
    st.lists(ATOM, min_size=1, max_size=3),
    st.lists(st.text(alphabet="abc123", min_size=1, max_size=63), min_size=1, max_size=3),
).filter(lambda address: len(address.partition("@")[0]) <= 64)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=QP_TEXT, html_part=QP_TEXT, name=NAMES, address=ADDRESSES)
def test_a_mold_gives_what_build_gives_for_any_text_name_and_address(
    text: str, html_part: str, name: str, address: str
) -> None:
    mold = VARIED[0].mold(text, html_part)
    reader = Reader(name, address)
    assert reader.fill(mold) == build(reader.letter(text, html_part))

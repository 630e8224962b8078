"""The email digest end to end: which articles, the rendered parts, delivery exactly once.

Messages are read back with the ``email`` package, HTML with lxml.html, and delivery goes
to a real SMTP server on loopback (aiosmtpd) or to the outbox folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import logging
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
import yaml
from conftest import REPO, SEEDS, SITE_URL, WriteArticle, make_config
from smtp_helpers import Behaviour, smtp_server

from publisher.config import Config, DigestConfig, load_config
from publisher.digest import (
    MAX_HTML_BYTES,
    Masthead,
    compose,
    new_articles,
    render,
    topics_by_article,
)
from publisher.digest_run import DigestResult, run_digest
from publisher.loader import load_folder
from publisher.messages import unsubscribe_token
from publisher.pipeline import build
from publisher.selection import select

DAY1 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
PEOPLE = [
    {"email": "ada@example.org", "name": "Ada Lovelace"},
    {"email": "grace@example.org", "name": "Grace Hopper", "topics": ["Programming"]},
    {"email": "katherine@example.org", "topics": ["Space"]},
    {"email": "hedy@example.org"},
]


# --- fixtures ---------------------------------------------------------------------------


@dataclasses.dataclass
class Desk:
    """A newsroom in a temporary folder: seeds, subscribers, settings, and what went out."""

    root: Path
    seeds: Path
    write: WriteArticle
    sections: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    urls: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.root / "state" / "state.sqlite"

    @property
    def out(self) -> Path:
        return self.root / "feeds"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def config(self) -> Config:
        paths = {
            "seeds": str(self.seeds),
            "output": str(self.out),
            "outbox": str(self.outbox),
            "state": str(self.state),
            "subscribers": str(self.root / "subscribers.yaml"),
        }
        sections = {name: dict(values) for name, values in self.sections.items()}
        sections["paths"] = {**paths, **sections.get("paths", {})}
        return make_config(**sections)

    def config_file(self) -> Path:
        data = {"site": {"url": SITE_URL}, **self.config_dict()}
        path = self.root / "publisher.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    def config_dict(self) -> dict[str, Any]:
        config = self.config()
        data: dict[str, Any] = {
            "paths": {k: str(v) for k, v in dataclasses.asdict(config.paths).items()},
        }
        for name, values in self.sections.items():
            if name != "paths":
                data[name] = values
        return data

    def subscribe(self, people: list[Any]) -> None:
        (self.root / "subscribers.yaml").write_text(
            yaml.safe_dump({"subscribers": people}), encoding="utf-8"
        )

    def article(self, key: str, hours_ago: float, *, now: datetime = DAY1, **fields: Any) -> Path:
        """Write (or rewrite) the article ``key``; its URL, hence its id, stays the same."""
        url = self.urls.setdefault(key, f"https://news.example.com/{key}")
        values: dict[str, Any] = {
            "title": f"Story {key}",
            "webUrl": url,
            "originalUrl": url,
            "publishedDateTime": now - timedelta(hours=hours_ago),
            "topics": ["General"],
        }
        values.update(fields)
        return self.write(f"{key}.txt", **values)

    def run(self, now: datetime = DAY1, **kwargs: Any) -> DigestResult:
        return run_digest(self.config(), now=now, **kwargs)

    def smtp(self, port: int, **overrides: Any) -> None:
        self.sections["smtp"] = {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "rate": 0,
            "retries": 2,
            "backoff": 0,
            "timeout": 10,
            **overrides,
        }

    def mailbox(self, period: str = "2026-11-24", folder: str = "") -> dict[str, EmailMessage]:
        """The messages in the outbox for ``period``, by recipient address."""
        base = self.outbox / folder / period if folder else self.outbox / period
        return {
            path.name.removesuffix(".eml"): parse(path.read_bytes())
            for path in sorted(base.glob("*.eml"))
        }


@pytest.fixture
def desk(
    tmp_path: Path, seeds_dir: Path, write_article: WriteArticle, monkeypatch: pytest.MonkeyPatch
) -> Desk:
    monkeypatch.delenv("PUBLISHER_DIGEST_SECRET", raising=False)
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    result = Desk(root=tmp_path, seeds=seeds_dir, write=write_article)
    result.subscribe(PEOPLE)
    return result


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def titles(message: EmailMessage) -> list[str]:
    """The linked article titles, in order, as a reader sees them."""
    tree = lxml.html.fromstring(html_of(message))
    return [a.text_content() for a in tree.xpath("//p[contains(@class, 'title')]/a")]


def sections(message: EmailMessage) -> list[str]:
    tree = lxml.html.fromstring(html_of(message))
    return [h2.text_content() for h2 in tree.xpath("//h2")]


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


# --- what goes in -----------------------------------------------------------------------


def test_first_digest_takes_the_last_24_hours(desk: Desk) -> None:
    desk.article("fresh", 2)
    desk.article("morning", 20)
    desk.article("yesterday", 30)
    desk.article("old", 24 * 5)
    result = desk.run()
    assert (result.sent, result.skipped, result.failed, result.articles) == (2, 2, 0, 2)
    mail = desk.mailbox()
    assert sorted(mail) == ["ada@example.org", "hedy@example.org"]  # the others chose other topics
    assert sorted(titles(mail["ada@example.org"])) == ["Story fresh", "Story morning"]


def test_first_window_is_configurable(desk: Desk) -> None:
    desk.sections["digest"] = {"first_window_hours": 72}
    desk.article("fresh", 2)
    desk.article("yesterday", 30)
    desk.article("old", 24 * 5)
    assert desk.run().articles == 2


def test_second_run_for_the_same_period_sends_nothing(desk: Desk) -> None:
    desk.article("fresh", 2)
    first = desk.run()
    again = desk.run(DAY1 + timedelta(hours=3))
    assert first.sent == 2
    assert again.sent == 0 and again.skipped == 4
    assert "already sent" in again.summary()
    assert len(desk.mailbox()) == 2


def test_next_digest_has_only_what_arrived_since(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run()
    desk.article("two", 1, now=DAY2)
    result = desk.run(DAY2)
    assert result.sent == 2
    assert titles(desk.mailbox("2026-11-25")["ada@example.org"]) == ["Story two"]


def test_backdated_article_still_reaches_the_next_digest(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run()
    desk.article("backdated", 24 * 6, now=DAY2)  # appears on day 2, dated almost a week ago
    desk.run(DAY2)
    assert titles(desk.mailbox("2026-11-25")["ada@example.org"]) == ["Story backdated"]


def test_article_whose_quality_was_raised_later_is_sent_then(desk: Desk) -> None:
    desk.article("one", 2)
    desk.article("raised", 3, quality=20)  # below the threshold on day 1
    desk.run()
    assert titles(desk.mailbox()["ada@example.org"]) == ["Story one"]
    desk.article("raised", 3, quality=90)
    desk.run(DAY2)
    assert titles(desk.mailbox("2026-11-25")["ada@example.org"]) == ["Story raised"]


def test_edited_article_is_not_sent_again(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run()
    desk.article(
        "one", 2, title="Story one, corrected", excerpt="Now with the right numbers.", heat=99
    )
    result = desk.run(DAY2)
    assert result.sent == 0 and "nothing new" in result.summary()
    assert not (desk.outbox / "2026-11-25").exists()


def test_bulk_backfill_is_capped_by_age(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run()
    desk.article("recent", 24 * 10, now=DAY2)
    desk.article("ancient", 24 * 40, now=DAY2)
    desk.run(DAY2)
    assert titles(desk.mailbox("2026-11-25")["ada@example.org"]) == ["Story recent"]


def test_future_dated_article_waits_for_its_date(desk: Desk) -> None:
    desk.article("one", 2)
    desk.article("embargoed", -12)  # published 12 hours after the first run
    desk.run()
    assert titles(desk.mailbox()["ada@example.org"]) == ["Story one"]
    desk.run(DAY2)
    assert titles(desk.mailbox("2026-11-25")["ada@example.org"]) == ["Story embargoed"]


def test_nothing_new_sends_nothing_and_says_so(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    desk.article("old", 24 * 3)
    result = desk.run()
    assert result.sent == 0 and result.skipped == 4
    assert "nothing new, nothing sent" in result.summary()
    assert "nothing new" in caplog.text
    assert not desk.outbox.exists()
    assert rows(desk.state, "SELECT count(*) FROM digest_runs") == [(0,)]


def test_force_sends_even_with_nothing_new(desk: Desk) -> None:
    result = desk.run(force=True)
    assert result.sent == 2  # the two who take every topic; topic subscribers get nothing
    message = desk.mailbox()["ada@example.org"]
    assert "Nothing new since the last digest." in text_of(message)


def test_minimum_number_of_articles(desk: Desk) -> None:
    desk.sections["digest"] = {"min_articles": 2}
    desk.article("one", 2)
    result = desk.run()
    assert result.sent == 0 and "digest.min_articles" in result.summary()
    desk.article("two", 1, now=DAY2)
    result = desk.run(DAY2)  # the first one waited; now there are two
    assert result.sent == 2
    assert sorted(titles(desk.mailbox("2026-11-25")["ada@example.org"])) == [
        "Story one",
        "Story two",
    ]


def test_per_subscriber_topics(desk: Desk) -> None:
    desk.article("rust", 2, topics=["Programming", "Security"], heat=50)
    desk.article("probe", 3, topics=["Space"], heat=70)
    desk.article("market", 4, topics=["Economy"], heat=90)
    result = desk.run()
    assert (result.sent, result.skipped) == (4, 0)
    mail = desk.mailbox()
    assert sections(mail["ada@example.org"]) == ["Economy", "Programming", "Space"]
    assert sections(mail["grace@example.org"]) == ["Programming"]
    assert titles(mail["grace@example.org"]) == ["Story rust"]
    assert titles(mail["katherine@example.org"]) == ["Story probe"]
    assert "Story probe" in mail["katherine@example.org"]["Subject"]
    assert "Story market" not in text_of(mail["katherine@example.org"])


def test_subscriber_whose_topics_have_nothing_new_gets_nothing(desk: Desk) -> None:
    desk.article("market", 4, topics=["Economy"])
    result = desk.run()
    assert sorted(desk.mailbox()) == ["ada@example.org", "hedy@example.org"]
    assert result.skipped == 2


# --- grouping and ranking (pure) --------------------------------------------------------


def compose_folder(
    desk: Desk, settings: DigestConfig, wanted: frozenset[str] | None = None
) -> list[tuple[str, list[str]]]:
    report = load_folder(desk.seeds, 1 << 20)
    selection = select(report.articles, desk.config().selection)
    digest = compose(
        list(selection.articles), topics_by_article(selection), settings, UTC, wanted=wanted
    )
    return [(s.topic, [e.title for e in s.entries]) for s in digest.sections]


def test_grouped_by_topic_ranked_by_heat_then_quality(desk: Desk) -> None:
    desk.article("a", 1, topics=["AI"], heat=10, quality=90)
    desk.article("b", 1, topics=["AI"], heat=50, quality=60)
    desk.article("c", 1, topics=["AI"], heat=50, quality=80)
    desk.article("d", 1, topics=["Space", "AI"], heat=5)
    desk.article("e", 1, topics=["Space"], heat=1)
    desk.article("f", 1, topics=[])
    assert compose_folder(desk, DigestConfig()) == [
        ("AI", ["Story c", "Story b", "Story a", "Story d"]),  # the topic with most articles first
        ("Space", ["Story e"]),  # d appears once, in its first topic
        ("More stories", ["Story f"]),
    ]
    configured = DigestConfig(topics=("space", "AI"), other_topic="Elsewhere")
    assert compose_folder(desk, configured) == [
        ("Space", ["Story d", "Story e"]),
        ("AI", ["Story c", "Story b", "Story a"]),
        ("Elsewhere", ["Story f"]),
    ]
    assert compose_folder(desk, DigestConfig(), frozenset({"space"})) == [
        ("Space", ["Story d", "Story e"])
    ]


def test_caps_per_topic_and_overall_keep_every_topic(desk: Desk) -> None:
    for n in range(8):
        desk.article(f"ai{n}", 1, topics=["AI"], heat=100 - n)
    for n in range(3):
        desk.article(f"sp{n}", 1, topics=["Space"], heat=50 - n)
    desk.article("cl0", 1, topics=["Climate"])
    layout = compose_folder(desk, DigestConfig(max_items=6, max_per_topic=5))
    assert layout == [
        ("AI", ["Story ai0", "Story ai1", "Story ai2"]),
        ("Space", ["Story sp0", "Story sp1"]),
        ("Climate", ["Story cl0"]),
    ]
    assert [len(t) for _, t in compose_folder(desk, DigestConfig())] == [5, 3, 1]


def test_new_articles_rules() -> None:
    from publisher.models import Article

    def article(key: str, published: datetime) -> Article:
        return Article(
            id=key, title=key, url=f"https://x.example/{key}", published_at=published, quality=80
        )

    tracking = DAY1
    items = [
        article("at-start-recent", DAY1 - timedelta(hours=3)),
        article("at-start-old", DAY1 - timedelta(days=3)),
        article("arrived-later-backdated", DAY1 - timedelta(days=10)),
        article("arrived-later-too-old", DAY1 - timedelta(days=20)),
        article("already-sent", DAY1 + timedelta(hours=1)),
    ]
    seen = {
        "at-start-recent": DAY1,
        "at-start-old": DAY1,
        "arrived-later-backdated": DAY2,
        "arrived-later-too-old": DAY2,
        "already-sent": DAY2,
    }

    def chosen(since: datetime, now: datetime) -> list[str]:
        found = new_articles(
            items, first_seen=seen, tracking_since=tracking, since=since, now=now,
            digested={"already-sent"}, max_age=timedelta(days=14),
        )  # fmt: skip
        return [a.id for a in found]

    assert chosen(DAY1 - timedelta(hours=24), DAY1) == ["at-start-recent"]
    assert chosen(DAY1, DAY2) == ["arrived-later-backdated"]


# --- rendering --------------------------------------------------------------------------


def check_email_html(page: str) -> lxml.html.HtmlElement:
    """What every HTML part must be: small, script-free, images described, styles inlined."""
    assert len(page.encode("utf-8")) < MAX_HTML_BYTES
    tree = lxml.html.fromstring(page)
    assert not tree.xpath("//script") and "<script" not in page.lower()
    assert not tree.xpath("//link[@rel='stylesheet']")
    assert not tree.xpath("//*[@*[starts-with(name(), 'on')]]")  # no event handlers
    for img in tree.xpath("//img"):
        assert img.get("alt") is not None and img.get("width") and img.get("height")
        assert img.get("width").isdigit() and img.get("height").isdigit()
    for link in tree.xpath("//a[@href]"):
        assert link.get("href").startswith(("https://", "http://", "index.html")), link.get("href")
    # Inlined: the article titles carry their style; what stays in <style> is only what
    # cannot be inlined (media queries, dark mode, client hacks).
    for anchor in tree.xpath("//p[contains(@class, 'title')]/a"):
        assert "color" in anchor.get("style", "")
    head_css = " ".join(style.text_content() for style in tree.xpath("//head/style"))
    assert "@media screen and (max-width: 620px)" in head_css
    assert "prefers-color-scheme: dark" in head_css
    assert ".excerpt {" not in head_css and "\n.title a {" not in head_css
    container = tree.xpath("//table[contains(@class, 'container')]")[0]
    assert container.get("width") == "600"
    return tree


def test_every_message_parses_with_both_parts_and_the_right_headers(desk: Desk) -> None:
    desk.sections["digest"] = {
        "postal_address": "1 Example Street, Exampleton",
        "from_name": "The Desk",
    }
    desk.article("one", 2, topics=["Programming"], excerpt="A sentence about it. " * 40)
    desk.article(
        "two",
        3,
        topics=["Space"],
        images=[{"url": "https://img.example.com/2.jpg", "width": 640, "height": 360}],
    )
    desk.run()
    mail = desk.mailbox()
    assert len(mail) == 4
    secret = (desk.state.parent / "digest-secret").read_text().strip().encode()
    message_ids = set()
    for address, message in mail.items():
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["To"].addresses[0].addr_spec == address
        assert message["From"].addresses[0].display_name == "The Desk"
        assert message["From"].addresses[0].addr_spec == "digest@feeds.example.org"
        assert message["Subject"].startswith("Publisher, 24 November 2026: Story")
        assert message["Date"] == "Tue, 24 Nov 2026 07:00:00 +0000"
        assert message["Message-ID"].endswith("@feeds.example.org>")
        message_ids.add(message["Message-ID"])
        token = unsubscribe_token(secret, address)
        unsubscribe = f"{SITE_URL}unsubscribe?token={token}"
        assert message["List-Unsubscribe"].strip() == f"<{unsubscribe}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert address not in message["List-Unsubscribe"]
        tree = check_email_html(html_of(message))
        assert unsubscribe in [a.get("href") for a in tree.xpath("//a")]
        assert f"{SITE_URL}digest/2026-11-24.html" in [a.get("href") for a in tree.xpath("//a")]
        text = text_of(message)
        assert f"Unsubscribe: {unsubscribe}" in text
        assert "View in your browser: https://feeds.example.org/news/digest/2026-11-24.html" in text
        assert "1 Example Street, Exampleton" in text and "1 Example Street, Exampleton" in html_of(
            message
        )
        assert "<" not in text  # the text part is text, not markup
    assert len(message_ids) == 4
    ada = mail["ada@example.org"]
    assert "Hi Ada Lovelace," in text_of(ada) and "Hi Ada Lovelace," in html_of(ada)
    assert "Hello," in text_of(mail["hedy@example.org"])
    text = text_of(ada)
    assert "https://news.example.com/one" in text and "https://news.example.com/two" in text
    assert all(len(line) <= 80 or "://" in line for line in text.splitlines())
    (thumb,) = lxml.html.fromstring(html_of(ada)).xpath(
        "//img[@src='https://img.example.com/2.jpg']"
    )
    assert (thumb.get("width"), thumb.get("height"), thumb.get("alt")) == (
        "120",
        "68",
        "Picture: Example News",
    )  # the headline beside it is not repeated
    preheader = lxml.html.fromstring(html_of(ada)).xpath("//div[contains(@class, 'preheader')]")[0]
    assert preheader.text_content().startswith("Story")
    assert "display:none" in preheader.get("style").replace(" ", "")


def test_html_stays_under_the_limit_whatever_the_input(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    desk.sections["digest"] = {"max_items": 300, "max_per_topic": 300, "excerpt_chars": 5000}
    huge = "Ünïcødé & <b>markup</b> “quoted” " * 400
    for n in range(150):
        desk.article(
            f"big{n}",
            1,
            topics=[f"Topic {n % 7} " + "x" * 300],
            title=f"{n} " + "A very long title with <tags> & entities " * 30,
            excerpt=huge,
            provider={"name": "P" * 500, "domain": "example.com"},
            images=[
                {"url": f"https://img.example.com/{n}.jpg?" + "q=1&" * 400, "alt": '"alt" ' * 200}
            ],
        )
    result = desk.run()
    assert result.sent == 2
    message = desk.mailbox()["ada@example.org"]
    page = html_of(message)
    tree = check_email_html(page)
    kept = len(tree.xpath("//p[contains(@class, 'title')]"))
    assert 0 < kept < 150
    assert "to stay under" in caplog.text
    assert text_of(message).count("https://news.example.com/big") == kept  # both parts agree
    assert "<b>markup</b>" not in page and "&lt;b&gt;markup&lt;/b&gt;" in page


def test_untrusted_text_is_escaped_and_only_web_links_survive(desk: Desk) -> None:
    desk.article(
        "evil",
        1,
        title="<script>alert(1)</script><img src=x onerror=alert(2)>",
        excerpt="</p><a href='javascript:alert(3)'>click</a>",
        provider={"name": '"><style>body{display:none}</style>', "domain": "evil.example"},
        images=[
            {"url": "javascript:alert(4)"},
            {"url": "https://img.example.com/ok.png", "alt": '" onload="x'},
        ],
    )
    desk.subscribe([{"email": "ada@example.org", "name": "<b>Ada</b> & co"}])
    desk.run()
    message = desk.mailbox()["ada@example.org"]
    tree = check_email_html(html_of(message))
    assert titles(message) == ["<script>alert(1)</script><img src=x onerror=alert(2)>"]
    assert [img.get("src") for img in tree.xpath("//img")] == ["https://img.example.com/ok.png"]
    (style,) = tree.xpath("//style")  # ours only: the head rules that cannot be inlined
    assert style.text.lstrip().startswith(":root")
    assert "Hi <b>Ada</b> & co," in tree.text_content()
    assert "Hi <b>Ada</b> & co," in text_of(message)


def test_render_is_once_per_topic_set(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    import publisher.digest as digest_module

    calls: list[int] = []
    original = digest_module.inline_css

    def counting(page: str) -> str:
        calls.append(1)
        return original(page)

    monkeypatch.setattr(digest_module, "inline_css", counting)
    desk.subscribe(
        [
            {"email": f"reader{n}@example.org", "topics": ["Space"] if n % 2 else None}
            for n in range(40)
        ]
    )
    desk.article("probe", 3, topics=["Space"])
    desk.article("market", 4, topics=["Economy"])
    result = desk.run()
    assert result.sent == 40
    assert len(calls) == 3  # everyone, the Space readers, and the web copy


def test_same_input_gives_the_same_bytes(desk: Desk) -> None:
    desk.article("one", 2, topics=["Space"])
    desk.article("two", 3)
    desk.run(dry_run=True)
    first = {p.name: p.read_bytes() for p in (desk.outbox / "dry-run" / "2026-11-24").glob("*.eml")}
    web = (desk.out / "digest" / "2026-11-24.html").read_bytes()
    desk.run(dry_run=True)
    again = {p.name: p.read_bytes() for p in (desk.outbox / "dry-run" / "2026-11-24").glob("*.eml")}
    assert first == again and len(first) == 3
    assert (desk.out / "digest" / "2026-11-24.html").read_bytes() == web


def test_masthead_and_render_of_an_empty_digest() -> None:
    masthead = Masthead(
        "Site & Co",
        "https://x.example/",
        "en",
        "2026-11-24",
        "Tuesday, 24 November 2026",
        "https://x.example/digest/2026-11-24.html",
        "Site & Co",
        "",
    )
    from publisher.digest import Digest

    rendered = render(Digest(()), masthead)
    html, text = rendered.personalise(
        name="",
        unsubscribe_url="https://x.example/u?t=1&a=2",
        preferences_url="https://x.example/p",
    )
    check_email_html(html)
    assert 'href="https://x.example/u?t=1&amp;a=2"' in html
    assert "Unsubscribe: https://x.example/u?t=1&a=2" in text
    assert "Site &amp; Co" in html and "Site & Co" in text


# --- dry run, --to, web copy ------------------------------------------------------------


def test_dry_run_writes_files_and_records_nothing(desk: Desk) -> None:
    desk.article("one", 2)
    result = desk.run(dry_run=True)
    assert (result.sent, result.written) == (0, 2)
    assert "dry run" in result.summary() and "2 messages written to" in result.summary()
    assert sorted(desk.mailbox(folder="dry-run")) == ["ada@example.org", "hedy@example.org"]
    assert (desk.out / "digest" / "2026-11-24.html").is_file()
    assert not desk.state.exists()
    assert not (desk.outbox / "2026-11-24").exists()
    real = desk.run()
    assert real.sent == 2  # nothing was consumed by the dry run


def test_dry_run_leaves_an_existing_state_store_untouched(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run()
    desk.article("two", 1, now=DAY2)
    tables = [
        "first_seen",
        "digest_runs",
        "digest_articles",
        "digest_sends",
        "suppressions",
        "meta",
    ]
    before = {t: rows(desk.state, f"SELECT * FROM {t} ORDER BY 1") for t in tables}
    result = desk.run(DAY2, dry_run=True)
    assert result.written == 2
    assert {t: rows(desk.state, f"SELECT * FROM {t} ORDER BY 1") for t in tables} == before
    assert titles(desk.mailbox("2026-11-25", folder="dry-run")["ada@example.org"]) == ["Story two"]


def test_to_sends_one_test_and_records_nothing(desk: Desk) -> None:
    desk.article("one", 2, topics=["Space"])
    desk.article("two", 3)
    result = desk.run(to="Katherine@Example.org")
    assert (result.recipients, result.sent) == (1, 1)
    (test,) = desk.mailbox(folder="test").values()
    assert titles(test) == ["Story one"]  # a known subscriber keeps their topics
    stranger = desk.run(to="someone@example.net")
    assert stranger.sent == 1
    assert sorted(titles(desk.mailbox(folder="test")["someone@example.net"])) == [
        "Story one",
        "Story two",
    ]
    assert not (desk.out / "digest").exists()
    real = desk.run()
    assert real.sent == 3  # grace's topic has nothing new
    assert desk.mailbox()["katherine@example.org"]["Message-ID"] != test["Message-ID"]


def test_invalid_to_address_is_a_usage_error(desk: Desk, cli: Any) -> None:
    desk.article("one", 2)
    result = cli(
        "digest",
        "--config",
        desk.config_file(),
        "--to",
        "not an address",
        "--now",
        "2026-11-24T07:00:00Z",
    )
    assert result.exit_code == 2
    assert "--to" in result.stderr


def test_web_copy_and_index_survive_feed_builds(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run()
    desk.article("two", 1, now=DAY2)
    desk.run(DAY2)
    digest_folder = desk.out / "digest"
    assert sorted(p.name for p in digest_folder.iterdir()) == [
        "2026-11-24.html",
        "2026-11-25.html",
        "index.html",
        "index.json",
    ]
    index = lxml.html.fromstring((digest_folder / "index.html").read_text())
    assert [a.get("href") for a in index.xpath("//li/a")] == ["2026-11-25.html", "2026-11-24.html"]
    web = lxml.html.fromstring((digest_folder / "2026-11-25.html").read_text())
    assert [a.text_content() for a in web.xpath("//p[contains(@class, 'title')]/a")] == [
        "Story two"
    ]
    assert "unsubscribe" not in (digest_folder / "2026-11-25.html").read_text().lower()
    snapshot = {p.name: p.read_bytes() for p in digest_folder.iterdir()}
    build(desk.config(), seeds=desk.seeds, out=desk.out)
    desk.article("gone", 1, topics=["Vanishing"])
    build(desk.config(), seeds=desk.seeds, out=desk.out)
    desk.seeds.joinpath("gone.txt").unlink()
    summary = build(desk.config(), seeds=desk.seeds, out=desk.out).output
    assert "vanishing.rss.xml" in summary.removed  # the build does prune its own files...
    assert {
        p.name: p.read_bytes() for p in digest_folder.iterdir()
    } == snapshot  # ...never the digest's
    feeds = {p.name: p.read_bytes() for p in desk.out.glob("*.xml")}
    desk.article("three", 1, now=DAY3)
    desk.run(DAY3)
    after = {p.name: p.read_bytes() for p in desk.out.glob("*.xml")}
    assert {name: data for name, data in after.items() if not name.startswith("digest.")} == {
        name: data for name, data in feeds.items() if not name.startswith("digest.")
    }  # and the digest never touches the topic feeds


# --- secrets ----------------------------------------------------------------------------


def test_secret_is_generated_once_kept_private_and_never_shown(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    desk.article("one", 2)
    desk.run()
    secret_file = desk.state.parent / "digest-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert f"created a new unsubscribe secret in {secret_file}" in caplog.text
    assert secret not in caplog.text
    for path in desk.root.rglob("*"):
        if path.is_file() and path != secret_file and path.suffix != ".sqlite":
            assert secret.encode() not in path.read_bytes(), path
    caplog.clear()
    desk.run(DAY2, force=True)
    assert "created a new unsubscribe secret" not in caplog.text  # reused


def test_secret_from_the_environment_is_used(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_DIGEST_SECRET", "from-the-environment-0123456789")
    desk.sections["digest"] = {"secret_env": "MY_DIGEST_SECRET"}
    desk.article("one", 2)
    desk.run()
    token = unsubscribe_token(b"from-the-environment-0123456789", "ada@example.org")
    assert token in desk.mailbox()["ada@example.org"]["List-Unsubscribe"]
    assert not (desk.state.parent / "digest-secret").exists()


def test_smtp_password_never_appears_in_output_or_logs(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, cli: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "hunter2-but-longer-and-unique"
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", password)
    desk.article("one", 2)
    with smtp_server(Behaviour(credentials=("digest", password))) as (server, port):
        desk.smtp(port, username="digest")
        result = cli("digest", "--config", desk.config_file(), "--now", "2026-11-24T07:00:00Z")
        monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", "wrong-" + password)
        desk.article("two", 1, now=DAY2)
        failed = cli("digest", "--config", desk.config_file(), "--now", "2026-11-25T07:00:00Z")
    assert result.exit_code == 0, result.stderr
    assert server.recipients() == {"ada@example.org": 1, "hedy@example.org": 1}
    assert failed.exit_code == 1 and "refused the login" in failed.stderr
    for text in (result.stdout, result.stderr, failed.stdout, failed.stderr, caplog.text):
        assert password not in text
    assert password not in desk.config_file().read_text()


# --- exactly once over SMTP ---------------------------------------------------------------


def readers(count: int) -> list[dict[str, str]]:
    return [{"email": f"reader{n:02d}@example.org", "name": f"Reader {n}"} for n in range(count)]


def test_n_subscribers_get_exactly_n_messages(desk: Desk) -> None:
    desk.subscribe(readers(12))
    desk.article("one", 2)
    with smtp_server() as (server, port):
        desk.smtp(port)
        result = desk.run()
        again = desk.run(DAY1 + timedelta(hours=1))
    assert (result.sent, result.failed, again.sent) == (12, 0, 0)
    assert server.recipients() == {f"reader{n:02d}@example.org": 1 for n in range(12)}
    assert server.sessions == 1  # one connection for every message
    for message in server.received:
        parsed = message.parse()
        assert parsed["To"].addresses[0].addr_spec == message.recipients[0]
        assert titles(parsed) == ["Story one"]
    assert not desk.outbox.exists()


def test_temporary_refusals_then_accepted(desk: Desk) -> None:
    desk.subscribe(readers(5))
    desk.article("one", 2)
    flaky = {"reader01@example.org", "reader03@example.org"}
    with smtp_server(Behaviour(tempfail_once=flaky)) as (server, port):
        desk.smtp(port)
        result = desk.run()
    assert (result.sent, result.failed) == (5, 0)
    assert server.recipients() == {f"reader{n:02d}@example.org": 1 for n in range(5)}
    assert all(server.rcpt_attempts[a] == 2 for a in flaky)
    assert rows(desk.state, "SELECT finished_at IS NOT NULL FROM digest_runs") == [(1,)]


def test_dropped_connection_mid_run(desk: Desk) -> None:
    desk.subscribe(readers(6))
    desk.article("one", 2)
    with smtp_server(Behaviour(drop_on_data={2, 5})) as (server, port):
        desk.smtp(port)
        result = desk.run()
    assert (result.sent, result.failed) == (6, 0)
    assert server.recipients() == {f"reader{n:02d}@example.org": 1 for n in range(6)}
    assert server.sessions == 3


def test_permanent_failure_is_recorded_and_not_retried(desk: Desk, cli: Any) -> None:
    desk.subscribe(readers(4))
    desk.article("one", 2)
    with smtp_server(Behaviour(reject={"reader02@example.org"})) as (server, port):
        desk.smtp(port)
        result = cli("digest", "--config", desk.config_file(), "--now", "2026-11-24T07:00:00Z")
        again = desk.run(DAY1 + timedelta(hours=2))
    assert result.exit_code == 1
    assert "not delivered: reader02@example.org: 550" in result.stderr
    assert "4 recipients, 3 sent, 0 skipped, 1 failed" in result.stdout
    assert server.rcpt_attempts["reader02@example.org"] == 1
    assert again.sent == 0 and "already sent" in again.summary()  # the run finished
    assert rows(
        desk.state, "SELECT recipient, status FROM digest_sends WHERE status = 'failed'"
    ) == [("reader02@example.org", "failed")]


def test_temporary_failure_leaves_the_run_open_for_a_rerun(desk: Desk) -> None:
    desk.subscribe(readers(4))
    desk.article("one", 2)
    behaviour = Behaviour(tempfail_always={"reader01@example.org"})
    with smtp_server(behaviour) as (server, port):
        desk.smtp(port)
        first = desk.run()
        behaviour.tempfail_always.clear()
        second = desk.run(DAY1 + timedelta(hours=1))
        third = desk.run(DAY1 + timedelta(hours=2))
    assert (first.sent, first.failed, first.ok) == (3, 1, False)
    assert (second.sent, second.skipped) == (1, 3)
    assert third.sent == 0 and "already sent" in third.summary()
    assert server.recipients() == {f"reader{n:02d}@example.org": 1 for n in range(4)}


def test_server_down_stops_the_run_and_a_rerun_finishes_it(desk: Desk) -> None:
    desk.subscribe(readers(3))
    desk.article("one", 2)
    with smtp_server() as (_, port):
        pass  # nothing listens on the port any more
    desk.smtp(port, retries=1)
    down = desk.run()
    assert down.error and f"127.0.0.1:{port}" in down.error
    assert (down.sent, down.pending, down.ok) == (0, 3, False)
    assert "3 not sent yet" in down.summary()
    with smtp_server(port=port) as (server, _):
        up = desk.run(DAY1 + timedelta(hours=1))
    assert up.sent == 3
    assert server.recipients() == {f"reader{n:02d}@example.org": 1 for n in range(3)}


def test_interrupted_run_of_an_earlier_day_is_finished_first(desk: Desk) -> None:
    desk.subscribe(readers(3))
    desk.article("one", 2)
    behaviour = Behaviour(tempfail_always={"reader02@example.org"})
    with smtp_server(behaviour) as (server, port):
        desk.smtp(port)
        desk.run()
        behaviour.tempfail_always.clear()
        desk.article("two", 1, now=DAY2)
        result = desk.run(DAY2)
    assert result.resumed == ["2026-11-24 (1 sent, 0 failed)"]
    assert result.sent == 3
    got = [(m.recipients[0], titles(m.parse())) for m in server.received]
    assert got.count(("reader02@example.org", ["Story one"])) == 1
    assert sorted(got).count(("reader00@example.org", ["Story one"])) == 1
    assert [t for r, t in got if r == "reader02@example.org"] == [["Story one"], ["Story two"]]


def test_killed_mid_run_then_rerun_every_subscriber_gets_exactly_one(desk: Desk) -> None:
    people = readers(8)
    desk.subscribe(people)
    desk.article("one", 2)
    behaviour = Behaviour(delay=0.2)
    with smtp_server(behaviour) as (server, port):
        desk.smtp(port)
        config_file = desk.config_file()
        with subprocess.Popen(
            [
                sys.executable,
                "-m",
                "publisher",
                "digest",
                "--config",
                str(config_file),
                "--now",
                "2026-11-24T07:00:00Z",
            ],
            cwd=desk.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as child:
            # While the 4th message is being accepted, the first three are recorded.
            assert server.wait_for_data(4).wait(timeout=60), (
                "the digest never reached the 4th message"
            )
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        assert len(server.received) == 3
        behaviour.delay = 0
        rerun = desk.run(DAY1 + timedelta(minutes=5))
    assert (rerun.sent, rerun.skipped) == (5, 3)
    assert server.recipients() == {p["email"]: 1 for p in people}
    ids = [m.parse()["Message-ID"] for m in server.received]
    assert len(set(ids)) == 8


def outbox_files(folder: Path) -> dict[str, bytes]:
    """The messages in an outbox folder by file name (temporary files left out)."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.endswith(".eml")}


def test_outbox_killed_mid_batch_then_rerun_every_subscriber_gets_exactly_one_file(
    desk: Desk,
) -> None:
    people = readers(1500)  # several of the outbox's batches
    desk.subscribe(people)
    desk.article("one", 2)
    desk.run(dry_run=True)  # the reference: the same messages, byte for byte
    reference = outbox_files(desk.outbox / "dry-run" / "2026-11-24")
    assert len(reference) == len(people)
    command = [sys.executable, "-m", "publisher", "digest", "--config", str(desk.config_file()),
               "--now", "2026-11-24T07:00:00Z"]  # fmt: skip
    box = desk.outbox / "2026-11-24"
    killed_mid_run = 0
    for target in (300, 900):  # kill once this many files are there
        with subprocess.Popen(
            command, cwd=desk.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as child:
            while child.poll() is None and len(outbox_files(box)) < target:
                time.sleep(0.001)
            killed_mid_run += child.poll() is None
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        # Whatever was written is whole, and everyone recorded as sent has their file.
        written = outbox_files(box)
        assert all(data == reference[name] for name, data in written.items())
        recorded = [r for (r,) in rows(desk.state, "SELECT recipient FROM digest_sends")]
        assert {f"{r}.eml" for r in recorded} <= set(written)
    assert killed_mid_run, "the digest always finished before it could be killed"
    rerun = desk.run()  # at the same --now, so its messages are the same bytes
    assert rerun.ok and rerun.sent + rerun.skipped == len(people)
    assert rerun.sent == len(people) - len(recorded)  # only those not recorded yet
    # One file per subscriber, each the message a clean run writes: none twice, none lost.
    assert outbox_files(box) == reference
    assert sorted(p.name for p in box.iterdir()) == sorted(reference)  # no temporary files
    assert rows(desk.state, "SELECT count(*), count(DISTINCT recipient) FROM digest_sends") == [
        (len(people), len(people))
    ]


def test_messages_filled_in_a_mold_are_what_the_email_package_builds(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher import messages

    desk.sections["digest"] = {"unsubscribe_mailto": "leave@example.org", "reply_to": "ed@x.org"}
    desk.subscribe(
        [
            {"email": "ada@example.org", "name": "Ada Lovelace"},
            {"email": "zoe@example.org", "name": "Zoë O'Brien", "topics": ["Space"]},
            {"email": "quote@example.org", "name": 'Evil "Quote" <x@evil.example>'},
            {"email": "taro@example.jp", "name": "山田 太郎", "topics": ["Space"]},
            {"email": "a" * 64 + "@" + "d" * 60 + ".example.org", "name": "Ünïcødé " * 12},
            {"email": "o'hara/x=y?z@example.org", "name": "Dr. J. Smith, Jr."},
            {"email": "plain@example.org"},
        ]
    )
    desk.article("one", 2, title="Café · naïve — " + "long " * 30, topics=["Space"])
    desk.article("two", 3, excerpt="= sign at the end of a line " * 8)
    filled: list[bytes | None] = []
    fill = messages.Mold.fill

    def counting(self: messages.Mold, *args: Any) -> bytes | None:
        filled.append(fill(self, *args))  # counting only: the real fill runs
        return filled[-1]

    monkeypatch.setattr(messages.Mold, "fill", counting)
    molded = desk.run(dry_run=True)
    made = outbox_files(desk.outbox / "dry-run" / "2026-11-24")
    # Every message came from a mold (two topic sets: each mold is checked once when made).
    assert len(filled) == 7 + 2 and None not in filled
    monkeypatch.setattr(messages.Mold, "make", classmethod(lambda *args: None))
    built = desk.run(dry_run=True)  # every message built with the email package
    assert (molded.written, built.written) == (7, 7)
    assert outbox_files(desk.outbox / "dry-run" / "2026-11-24") == made


def test_unsubscribed_addresses_are_skipped_at_send_time(desk: Desk, cli: Any) -> None:
    desk.article("one", 2)
    desk.run()
    link = desk.mailbox()["ada@example.org"]["List-Unsubscribe"]
    token = re.search(r"token=([A-Za-z0-9_-]+)", link)
    assert token is not None
    config_file = desk.config_file()
    result = cli("unsubscribe", "--config", config_file, token.group(1), "hedy@example.org")
    assert result.exit_code == 0, result.stderr
    assert "ada@example.org unsubscribed" in result.stdout
    listed = cli("unsubscribe", "--config", config_file, "--list")
    assert "ada@example.org (since" in listed.stdout and "hedy@example.org (since" in listed.stdout
    unknown = cli("unsubscribe", "--config", config_file, "not-a-real-token")
    assert unknown.exit_code == 1 and "unknown token" in unknown.stderr
    desk.article("two", 1, now=DAY2)
    second = desk.run(DAY2)
    assert (second.sent, second.skipped) == (0, 4)
    cli("unsubscribe", "--config", config_file, "--undo", "hedy@example.org")
    desk.article("three", 1, now=DAY3)
    assert desk.run(DAY3).sent == 1


# --- the command line and the bundled example -----------------------------------------------


def test_cli_dry_run_prints_one_summary_line(desk: Desk, cli: Any) -> None:
    desk.article("one", 2)
    result = cli(
        "digest", "--config", desk.config_file(), "--dry-run", "--now", "2026-11-24T08:00:00+01:00"
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"Digest 2026-11-24 \(dry run\): 4 recipients, 0 sent, 2 skipped, 0 failed; "
        r"2 messages written to .*dry-run/2026-11-24; 1 articles in 1 topics; web copy .*2026-11-24\.html; \d+\.\d\d s",
        lines[0],
    )
    assert "Sending" not in result.stderr  # no progress bar when stderr is not a terminal


def test_cli_now_without_offset_is_read_in_the_schedule_time_zone(desk: Desk, cli: Any) -> None:
    desk.sections["schedule"] = {"timezone": "Pacific/Auckland"}
    desk.article("one", 2)
    result = cli(
        "digest", "--config", desk.config_file(), "--dry-run", "--now", "2026-11-24T20:00:00"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Digest 2026-11-24 (dry run)")
    late = cli(
        "digest", "--config", desk.config_file(), "--dry-run", "--now", "2026-11-24T20:00:00Z"
    )
    assert late.stdout.startswith("Digest 2026-11-25 (dry run)")  # already the 25th in Auckland


def test_missing_subscribers_file_is_a_usage_error(desk: Desk, cli: Any) -> None:
    desk.article("one", 2)
    (desk.root / "subscribers.yaml").unlink()
    result = cli("digest", "--config", desk.config_file(), "--now", "2026-11-24T07:00:00Z")
    assert result.exit_code == 2
    assert "subscribers.yaml: file: not found" in result.stderr
    dry = cli(
        "digest", "--config", desk.config_file(), "--dry-run", "--now", "2026-11-24T07:00:00Z"
    )
    assert dry.exit_code == 0 and "0 recipients" in dry.stdout  # a dry run still shows the web copy


def test_digest_help(cli: Any) -> None:
    result = cli("digest", "--help")
    assert result.exit_code == 0
    for option in (
        "--config",
        "--seeds",
        "--out",
        "--dry-run",
        "--force",
        "--to",
        "--now",
        "--since",
    ):
        assert option in result.stdout
    assert cli("unsubscribe", "--help").exit_code == 0


@pytest.fixture
def bundled(tmp_path: Path) -> Iterator[Config]:
    """The repository's own publisher.yaml and subscribers, with state and outbox moved aside."""
    config = load_config(REPO / "publisher.yaml")
    paths = dataclasses.replace(
        config.paths,
        output=tmp_path / "feeds",
        outbox=tmp_path / "outbox",
        state=tmp_path / "state" / "state.sqlite",
    )
    yield dataclasses.replace(config, paths=paths)


def test_bundled_seeds_dry_run(bundled: Config) -> None:
    assert bundled.paths.seeds.resolve() == SEEDS.resolve()
    result = run_digest(bundled, now=DAY1, since=datetime(2026, 11, 10, tzinfo=UTC), dry_run=True)
    assert result.articles >= 5 and result.written >= 5 and result.ok
    assert not result.problems
    for path in (bundled.paths.outbox / "dry-run" / "2026-11-24").glob("*.eml"):
        check_email_html(html_of(parse(path.read_bytes())))


# --- the digest as a feed ---------------------------------------------------------------


def test_digests_are_published_as_rss_and_atom_feeds(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run()
    desk.article("two", 1, now=DAY2)
    desk.run(DAY2)
    for name in ("digest.rss.xml", "digest.atom.xml"):
        feed = feedparser.parse((desk.out / name).read_bytes())
        assert not feed.bozo, (name, feed.bozo_exception)
        assert [entry.link for entry in feed.entries] == [
            f"{SITE_URL}digest/2026-11-25.html",
            f"{SITE_URL}digest/2026-11-24.html",
        ]
        assert [entry.id for entry in feed.entries] == [e.link for e in feed.entries]
        assert feed.entries[0].summary == "1 story, led by: Story two"
        # The date is the digest's day, not the clock: a rerun gives the same bytes.
        assert feed.entries[0].published_parsed[:3] == (2026, 11, 25)
    before = (desk.out / "digest.atom.xml").read_bytes()
    desk.run(DAY2, dry_run=True)
    assert (desk.out / "digest.atom.xml").read_bytes() == before
    index = lxml.html.fromstring((desk.out / "digest" / "index.html").read_bytes())
    assert sorted(index.xpath("//link[@rel='alternate']/@href")) == [
        f"{SITE_URL}digest.atom.xml",
        f"{SITE_URL}digest.rss.xml",
    ]


def test_digest_feed_keeps_the_newest_twenty(desk: Desk) -> None:
    for day in range(23):
        now = DAY1 + timedelta(days=day)
        desk.article(f"story-{day}", 1, now=now)
        desk.run(now)
    feed = feedparser.parse((desk.out / "digest.rss.xml").read_bytes())
    assert len(feed.entries) == 20
    assert feed.entries[0].link.endswith(f"{(DAY1 + timedelta(days=22)).date()}.html")


def test_a_killed_digest_leaves_no_temporary_files_behind(desk: Desk) -> None:
    desk.article("one", 2)
    desk.run(dry_run=True)
    # What a digest killed between writing and renaming leaves: hidden, unlocked, older.
    stale = [
        desk.out / "digest" / ".2026-11-24.html.abcd1234.tmp",
        desk.out / ".digest.rss.xml.abcd1234.tmp",
    ]
    for path in stale:
        path.write_text("half a file")
        os.utime(path, (0, 0))
    stranger = desk.out / "digest" / ".notes.txt.abcd1234.tmp"  # not a file we publish
    stranger.write_text("someone else's")
    os.utime(stranger, (0, 0))
    desk.run()
    assert not any(path.exists() for path in stale)
    assert stranger.exists()

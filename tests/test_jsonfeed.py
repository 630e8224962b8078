"""JSON Feed 1.1 read back by a real JSON Feed reader (feedparser-rs) and checked against the spec.

feedparser 6.0 (its newest release) reads RSS and Atom only; feedparser-rs is a
feedparser-compatible reader that also reads JSON Feed, so it stands in for a reader here.
The spec's rules (https://jsonfeed.org/version/1.1) are checked field by field as well.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import feedparser_rs
import pytest
from conftest import SECRET, SEEDS, SITE_URL, WriteArticle, make_config, parse_feed

from publisher.config import SiteConfig
from publisher.feeds import render_atom, render_rss
from publisher.jsonfeed import VERSION, render_json_feed
from publisher.loader import load_folder
from publisher.models import Article
from publisher.pipeline import build
from publisher.selection import newest_first
from publisher.specs import FeedSpec

SITE = make_config().site
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.ASCII | re.IGNORECASE
)
HTTP_URL = re.compile(r"https?://[^\s]+")


def articles_in(folder: Path) -> list[Article]:
    report = load_folder(folder, 1 << 20)
    assert not report.rejected, report.rejected
    return newest_first(report.articles)


def spec_of(articles: list[Article], slug: str = "all", hub: str = "") -> FeedSpec:
    return FeedSpec(
        title=f"Example: {slug}",
        description="The latest articles.",
        rss_url=f"{SITE_URL}{slug}.rss.xml",
        atom_url=f"{SITE_URL}{slug}.atom.xml",
        json_url=f"{SITE_URL}{slug}.json",
        page_url=f"{SITE_URL}{slug}.html",
        hub_url=hub,
        articles=articles,
    )


def read(data: bytes) -> Any:
    """The feed as a JSON Feed reader sees it; fails the test on any problem it reports."""
    parsed = feedparser_rs.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "json11"
    return parsed


def check_spec(document: Any) -> None:
    """Every rule of JSON Feed 1.1 that applies to what we publish (MUST and SHOULD)."""
    assert isinstance(document, dict)
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(document["title"], str) and document["title"]
    assert isinstance(document["items"], list)
    for key in ("home_page_url", "feed_url"):  # optional, but SHOULD be there
        assert HTTP_URL.fullmatch(document[key]), key
    for key in ("description", "language"):
        assert isinstance(document.get(key, ""), str)
    for author in document.get("authors", []):
        assert isinstance(author, dict) and isinstance(author["name"], str) and author["name"]
    for hub in document.get("hubs", []):
        assert isinstance(hub["type"], str) and HTTP_URL.fullmatch(hub["url"])
    assert "author" not in document  # 1.0's single author is deprecated in 1.1
    ids = [item["id"] for item in document["items"]]
    assert len(ids) == len(set(ids)), "ids must be unique"
    for item in document["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert "content_text" in item or "content_html" in item  # one of them is required
        for key in ("content_text", "content_html", "summary", "title"):
            assert isinstance(item.get(key, ""), str)
        for key in ("url", "image"):
            if key in item:
                assert HTTP_URL.fullmatch(item[key]), (key, item[key])
        for key in ("date_published", "date_modified"):
            if key in item:
                assert RFC3339.fullmatch(item[key]), (key, item[key])
        assert all(isinstance(tag, str) for tag in item.get("tags", []))
        for author in item.get("authors", []):
            assert isinstance(author, dict) and isinstance(author["name"], str)
        unknown = set(item) - {
            "id", "url", "external_url", "title", "content_html", "content_text", "summary",
            "image", "banner_image", "date_published", "date_modified", "authors", "tags",
            "language", "attachments",
        }  # fmt: skip
        assert all(key.startswith("_") for key in unknown), unknown


@pytest.fixture
def sample(write_article: WriteArticle, seeds_dir: Path) -> list[Article]:
    write_article(
        "plain.txt",
        title="AT&T and “quotes” — ünïcødé 日本語",
        excerpt="Plain text: <b>not markup</b> & an ampersand.",
        publishedDateTime=T0,
        topics=["AI", "Science"],
        provider={"name": "Example <News>", "domain": "example.com"},
    )
    write_article(
        "bare.txt",
        title="No excerpt, no provider, no image",
        excerpt=None,
        provider=None,
        images=None,
        topics=None,
        publishedDateTime=T0 - timedelta(days=1, microseconds=0),
    )
    write_article(
        "offset.txt",
        title="Published with an offset",
        publishedDateTime=datetime.fromisoformat("2026-05-01T12:30:00+02:00"),
    )
    return articles_in(seeds_dir)


def test_a_json_feed_reader_reads_every_item(sample: list[Article]) -> None:
    data = render_json_feed(spec_of(sample), SITE)
    feed = read(data)
    assert feed.feed.title == "Example: all"
    assert [entry.id for entry in feed.entries] == [a.id for a in sample]
    assert [entry.link for entry in feed.entries] == [a.url for a in sample]
    # The reader hands every text out as HTML (as feedparser does): "AT&T" comes as "AT&amp;T".
    assert [html.unescape(entry.title) for entry in feed.entries] == [a.title for a in sample]


def test_the_document_follows_the_spec(sample: list[Article]) -> None:
    document = json.loads(render_json_feed(spec_of(sample), SITE))
    check_spec(document)
    assert document["version"] == VERSION
    assert document["home_page_url"] == f"{SITE_URL}all.html"
    assert document["feed_url"] == f"{SITE_URL}all.json"
    assert document["language"] == "en"


def test_items_carry_every_field_of_the_article(sample: list[Article]) -> None:
    items = {
        item["title"]: item for item in json.loads(render_json_feed(spec_of(sample), SITE))["items"]
    }
    full = items["AT&T and “quotes” — ünïcødé 日本語"]
    assert (
        full["summary"] == "Plain text: <b>not markup</b> & an ampersand."
    )  # plain text, not HTML
    assert full["content_text"] == full["summary"]
    assert full["date_published"] == "2026-05-01T09:00:00Z"
    assert full["tags"] == ["AI", "Science"]
    assert full["authors"] == [{"name": "Example <News>"}]
    assert HTTP_URL.fullmatch(full["image"])
    bare = items["No excerpt, no provider, no image"]
    assert "summary" not in bare and "image" not in bare and "tags" not in bare
    assert "authors" not in bare  # inherits the feed's: the site, as in Atom
    assert bare["content_text"] == bare["title"]
    assert items["Published with an offset"]["date_published"] == "2026-05-01T10:30:00Z"


def test_ids_are_the_rss_guids_and_atom_ids(sample: list[Article]) -> None:
    spec = spec_of(sample)
    rss = feedparser.parse(render_rss(spec, SITE))
    atom = feedparser.parse(render_atom(spec, SITE))
    json_feed = read(render_json_feed(spec, SITE))
    ids = [entry.id for entry in json_feed.entries]
    assert ids == [entry.id for entry in rss.entries] == [entry.id for entry in atom.entries]
    assert [e.link for e in json_feed.entries] == [e.link for e in rss.entries]


def test_same_input_gives_the_same_bytes_in_readable_utf8(sample: list[Article]) -> None:
    first = render_json_feed(spec_of(sample), SITE)
    assert first == render_json_feed(spec_of(list(sample)), SITE)
    assert first.endswith(b"}\n")
    text = first.decode("utf-8")
    assert "日本語" in text and "\\u" not in text  # ensure_ascii=False
    assert list(json.loads(text)) == [
        "version", "title", "home_page_url", "feed_url", "description", "language",
        "authors", "items",
    ]  # fmt: skip


def test_characters_xml_cannot_carry_are_dropped_as_in_rss() -> None:
    article = Article(
        id="urn:example:1",
        title="Bell\x07 and \ud800 surrogate",
        url="https://example.com/1",
        published_at=T0,
        quality=90,
        excerpt="tab\tok",
    )
    data = render_json_feed(spec_of([article]), SITE)
    item = json.loads(data)["items"][0]
    assert item["title"] == "Bell and  surrogate"
    assert item["summary"] == "tab\tok"


def test_an_empty_feed_is_valid() -> None:
    document = json.loads(render_json_feed(spec_of([]), SITE))
    check_spec(document)
    assert document["items"] == []
    assert read(render_json_feed(spec_of([]), SITE)).entries == []


def test_the_hub_is_announced_only_when_configured(sample: list[Article]) -> None:
    plain = json.loads(render_json_feed(spec_of(sample), SITE))
    assert "hubs" not in plain
    pushed = json.loads(render_json_feed(spec_of(sample, hub="https://hub.example.net/"), SITE))
    assert pushed["hubs"] == [{"type": "WebSub", "url": "https://hub.example.net/"}]
    check_spec(pushed)


def test_the_language_is_the_sites(sample: list[Article]) -> None:
    site = SiteConfig(url=SITE_URL, language="fr-CA")
    assert json.loads(render_json_feed(spec_of(sample), site))["language"] == "fr-CA"


# --- the published files (once the pipeline writes them) -----------------------------------


def test_every_feed_has_a_json_twin_with_the_same_items(tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    build(make_config(paths={"state": str(tmp_path / "state.sqlite")}), seeds=SEEDS, out=out)
    rss_files = sorted(out.glob("*.rss.xml"))
    assert len(rss_files) > 10
    for rss_path in rss_files:
        slug = rss_path.name.removesuffix(".rss.xml")
        data = (out / f"{slug}.json").read_bytes()
        assert SECRET.encode() not in data
        document = json.loads(data)
        check_spec(document)
        assert document["feed_url"] == f"{SITE_URL}{slug}.json"
        assert document["home_page_url"] == (
            SITE_URL if slug == "all" else f"{SITE_URL}{slug}.html"
        )
        rss = parse_feed(rss_path)
        atom = parse_feed(out / f"{slug}.atom.xml")
        json_feed = read(data)
        assert [e.id for e in json_feed.entries] == [e.id for e in rss.entries]
        assert [e.id for e in json_feed.entries] == [e.id for e in atom.entries]
        assert [e.link for e in json_feed.entries] == [e.link for e in rss.entries]


def test_rss_and_atom_of_one_feed_are_the_same_made_in_a_row_or_alone() -> None:
    """RSS and Atom of a feed share one generator when made in a row (feeds._shared_generator):
    each sets what differs, so the bytes are those of a generator of its own."""
    import dataclasses
    import threading

    articles = articles_in(SEEDS)[:20]
    specs = [
        dataclasses.replace(  # escaped in RSS only
            spec_of(articles, "all", hub="https://hub.example.org/"), description="A & B <news>"
        ),
        spec_of(articles[5:]),
    ]
    alone: dict[tuple[int, str], bytes] = {}

    def each_alone() -> None:
        for number, spec in enumerate(specs):
            for kind, render in (("rss", render_rss), ("atom", render_atom)):
                worker = threading.Thread(  # a thread of its own: no generator to share
                    target=lambda s=spec, r=render, k=kind, n=number: alone.update(
                        {(n, k): r(s, SITE)}
                    )
                )
                worker.start()
                worker.join()

    each_alone()
    for number, spec in enumerate(specs):  # atom then rss, rss then atom, twice over
        assert render_atom(spec, SITE) == alone[(number, "atom")]
        assert render_rss(spec, SITE) == alone[(number, "rss")]
        assert render_atom(spec, SITE) == alone[(number, "atom")]
        assert b'rel="hub"' in alone[(0, "atom")] and b'rel="hub"' in alone[(0, "rss")]

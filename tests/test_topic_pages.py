"""Topic pages (<slug>.html) and the index's links to them, read back with lxml.html."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from conftest import SECRET, SEEDS, SITE_URL, WriteArticle, make_config, parse_feed

from publisher.loader import load_folder
from publisher.models import Article
from publisher.pages import render_index_html, render_topic_html
from publisher.pipeline import build
from publisher.selection import newest_first
from publisher.specs import FeedLink, FeedSpec

SITE = make_config().site
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
HOSTILE_TITLES = (
    "<script>alert('title')</script>",
    '"><img src=x onerror=alert(1)>',
    "</title><style>body{display:none}</style>",
)


def link_of(name: str, slug: str, articles: list[Article]) -> FeedLink:
    spec = FeedSpec(
        title=f"Example: {name}",
        description=f"Stories about {name}.",
        rss_url=f"{SITE_URL}{slug}.rss.xml",
        atom_url=f"{SITE_URL}{slug}.atom.xml",
        json_url=f"{SITE_URL}{slug}.json",
        page_url=f"{SITE_URL}{slug}.html" if slug != "all" else SITE_URL,
        articles=articles,
    )
    return FeedLink(name=name, slug=slug, spec=spec)


def topic_page(articles: list[Article]) -> bytes:
    return render_topic_html(link_of("Security", "security", articles).spec, SITE, "Security")


def page_of(data: bytes) -> Any:
    return lxml.html.fromstring(data.decode("utf-8"))


def assert_safe(page: Any) -> None:
    """No script, no event handler, every img an alt, every link and picture an http(s) URL
    (or the OPML file beside the page)."""
    assert not page.xpath("//script")
    for element in page.iter():
        if not isinstance(element.tag, str):
            continue  # comments
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), (element.tag, attribute)
    for url in page.xpath("//@href | //@src"):
        assert url.startswith(("https://", "http://")) or url == "index.opml", url
    for image in page.xpath("//img"):
        assert image.get("alt") is not None


@pytest.fixture
def hostile(write_article: WriteArticle, seeds_dir: Path) -> list[Article]:
    for number, title in enumerate(HOSTILE_TITLES):
        write_article(
            title=title,
            excerpt=f"<b>bold?</b> & <a href='javascript:alert({number})'>x</a>",
            provider={"name": "<i>Evil</i> Corp", "domain": "evil.example"},
            publishedDateTime=T0 - timedelta(hours=number),
            topics=["Security"],
            images=[
                {
                    "url": f"https://img.example.com/{number}.jpg",
                    "width": 640,
                    "height": 360,
                    "alt": '" onload="alert(1)',
                }
            ],
        )
    write_article(
        title="A picture without a size or alt",
        topics=["Security"],
        images=[{"url": "https://img.example.com/plain.jpg"}],
        publishedDateTime=T0 - timedelta(days=2),
    )
    write_article(
        title="No picture at all",
        topics=["Security"],
        images=None,
        provider=None,
        publishedDateTime=T0 - timedelta(days=3),
    )
    write_article(
        title="An unsafe picture link",
        topics=["Security"],
        images=[{"url": "javascript:alert(2)", "width": 10, "height": 10}],
        publishedDateTime=T0 - timedelta(days=4),
    )
    report = load_folder(seeds_dir, 1 << 20)
    assert not report.rejected
    return newest_first(report.articles)


def test_hostile_text_comes_out_as_text(hostile: list[Article]) -> None:
    page = page_of(topic_page(hostile))
    assert_safe(page)
    headlines = [h.text_content() for h in page.xpath("//ol//h2")]
    assert headlines[:3] == list(HOSTILE_TITLES)
    assert not page.xpath("//style[contains(., 'display:none')]")
    assert len(page.xpath("//img")) == 4  # three hostile ones and the plain one
    excerpts = page.xpath("//p[@class='excerpt']")
    assert excerpts[0].text_content().startswith("<b>bold?</b> & <a href=")
    assert not page.xpath("//ol//b | //ol//i | //ol//p//a")
    assert "<i>Evil</i> Corp" in page.xpath("//p[@class='meta']")[0].text_content()


def test_every_article_is_listed_newest_first_with_its_fields(hostile: list[Article]) -> None:
    page = page_of(topic_page(hostile))
    items = page.xpath("//ol[@class='articles']/li")
    assert len(items) == len(hostile) == 6
    days = ["1 May 2026"] * 3 + ["29 Apr 2026", "28 Apr 2026", "27 Apr 2026"]
    for item, article, day in zip(items, hostile, days, strict=True):
        link = item.xpath(".//h2/a")[0]
        assert link.get("href") == article.url
        assert link.text_content() == article.title
        stamp = item.xpath(".//time")[0]
        assert datetime.fromisoformat(stamp.get("datetime")) == article.published_at
        assert stamp.text_content() == day
    first = items[0]
    image = first.xpath(".//img")[0]
    assert (image.get("width"), image.get("height")) == ("640", "360")
    assert image.get("alt") == '" onload="alert(1)'  # its own alt, as text
    plain = next(i for i in items if "without a size" in i.text_content()).xpath(".//img")[0]
    assert plain.get("width") is None and plain.get("alt") == ""  # the headline says it all
    bare = next(i for i in items if "No picture" in i.text_content())
    assert not bare.xpath(".//img") and "text-only" in bare.get("class")
    unsafe = next(i for i in items if "unsafe picture" in i.text_content())
    assert not unsafe.xpath(".//img")


def test_autodiscovery_and_the_subscribe_block(hostile: list[Article]) -> None:
    topic = link_of("Security", "security", hostile)
    page = page_of(render_topic_html(topic.spec, SITE, topic.name))
    alternates = {
        link.get("type"): link.get("href") for link in page.xpath("//head/link[@rel='alternate']")
    }
    assert alternates == {
        "application/rss+xml": f"{SITE_URL}security.rss.xml",
        "application/atom+xml": f"{SITE_URL}security.atom.xml",
        "application/feed+json": f"{SITE_URL}security.json",
    }
    assert page.xpath("//head/link[@rel='canonical']/@href") == [f"{SITE_URL}security.html"]
    block = page.xpath("//section[@class='subscribe']")[0]
    hrefs = block.xpath(".//a/@href")
    assert set(alternates.values()) | {f"{SITE_URL}index.opml"} == set(hrefs)
    for url in alternates.values():
        assert url in block.text_content()  # visible, to copy into a reader
    assert SITE_URL in page.xpath("//nav//a/@href")
    assert page.xpath("//meta[@name='viewport']")
    assert page.get("lang") == "en"
    assert page.findtext(".//title") == "Security — Publisher"


def test_the_same_input_gives_the_same_page(hostile: list[Article]) -> None:
    first = topic_page(hostile)
    assert first == topic_page(list(hostile))
    assert first.startswith(b"<!DOCTYPE html>")


def test_index_links_every_topic_page_and_autodiscovers_json(hostile: list[Article]) -> None:
    everything = link_of("all", "all", hostile)
    topics = [link_of("Security", "security", hostile), link_of("C++", "c-plus-plus", hostile)]
    page = page_of(render_index_html(SITE, everything, topics))
    assert_safe(page)
    hrefs = page.xpath("//a/@href")
    assert f"{SITE_URL}security.html" in hrefs and f"{SITE_URL}c-plus-plus.html" in hrefs
    assert page.xpath("//a[@href=$url]/text()", url=f"{SITE_URL}c-plus-plus.html") == ["C++"]
    assert {f"{SITE_URL}{s}.json" for s in ("all", "security", "c-plus-plus")} <= set(hrefs)
    json_links = page.xpath("//head/link[@type='application/feed+json']/@href")
    assert json_links == [f"{SITE_URL}all.json"]


def test_index_without_json_feeds_links_none() -> None:
    spec = FeedSpec("t", "d", f"{SITE_URL}all.rss.xml", f"{SITE_URL}all.atom.xml", SITE_URL, [])
    page = page_of(render_index_html(SITE, FeedLink("all", "all", spec), []))
    assert not page.xpath("//link[@type='application/feed+json']")
    assert "" not in page.xpath("//a/@href")
    assert "JSON" not in page.text_content()


# --- the published pages (once the pipeline writes them) -----------------------------------


def test_every_topic_has_a_page_that_its_feeds_point_at(tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    build(make_config(paths={"state": str(tmp_path / "state.sqlite")}), seeds=SEEDS, out=out)
    index = lxml.html.parse(str(out / "index.html")).getroot()
    index_links = set(index.xpath("//a/@href"))
    slugs = [p.name.removesuffix(".rss.xml") for p in sorted(out.glob("*.rss.xml"))]
    assert len(slugs) > 10
    for slug in slugs:
        rss = parse_feed(out / f"{slug}.rss.xml")
        atom = parse_feed(out / f"{slug}.atom.xml")
        page_url = SITE_URL if slug == "all" else f"{SITE_URL}{slug}.html"
        assert rss.feed.link == page_url
        assert [link.href for link in atom.feed.links if link.rel == "alternate"] == [page_url]
        if slug == "all":
            assert not (out / "all.html").exists()
            continue
        assert page_url in index_links
        data = (out / f"{slug}.html").read_bytes()
        assert SECRET.encode() not in data
        page = page_of(data)
        assert_safe(page)
        links = page.xpath("//ol//h2/a/@href")
        assert links == [entry.link for entry in rss.entries]

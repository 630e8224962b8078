"""Every generated feed read back as a reader would (feedparser), and the raw XML with lxml."""

from __future__ import annotations

import calendar
import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, SITE_URL, Raw, WriteArticle, feed_files, parse_feed
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
RFC822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d (\+0000|GMT|UT|Z)"
)
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def when(parsed: Any) -> datetime:
    """feedparser's struct_time (always UTC) as an aware datetime."""
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def by_link(feed: Any) -> dict[str, Any]:
    return {entry.link: entry for entry in feed.entries}


def both(out: Path, slug: str) -> tuple[Any, Any]:
    return parse_feed(out / f"{slug}.rss.xml"), parse_feed(out / f"{slug}.atom.xml")


@pytest.fixture
def sample(write_article: WriteArticle, run_build: Any, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Five articles over three topics with distinct dates, built once."""
    specs = {
        "alpha": {"days": 0, "topics": ["AI", "Science"], "quality": 90},
        "beta": {"days": 3, "topics": ["AI"], "quality": 60},
        "gamma": {"days": -2, "topics": ["Science"], "quality": 75},
        "delta": {"days": 7, "topics": ["Space", "AI"], "quality": 55},
        "epsilon": {"days": 1, "topics": ["Space"], "quality": 80},
    }
    for name, spec in specs.items():
        spec["url"] = f"https://{name}.example.com/story/{name}?ref=feed&x=1"
        spec["date"] = T0 + timedelta(days=spec["days"], hours=len(name))
        spec["title"] = f"The {name.title()} story — ünïcødé"
        spec["excerpt"] = f"What happened in {name}."
        write_article(
            f"{name}.txt",
            title=spec["title"],
            webUrl=spec["url"],
            originalUrl=spec["url"],
            publishedDateTime=spec["date"],
            quality=spec["quality"],
            topics=spec["topics"],
            excerpt=spec["excerpt"],
            provider={"name": f"{name.title()} Times", "domain": f"{name}.example.com"},
            images=[
                {"url": f"https://img.example.com/{name}.jpg", "width": 800, "height": 450},
                {"url": f"https://img.example.com/{name}-second.jpg"},
            ],
            related=[
                {"title": f"More on {name}", "webUrl": f"https://more.example.org/{name}"},
                {"title": "Unsafe", "webUrl": "javascript:alert(1)"},
            ],
        )
    run_build()
    return specs


def test_every_feed_parses_without_bozo(sample: Any, out_dir: Path) -> None:
    files = feed_files(out_dir)
    assert [f.name for f in files] == sorted(
        f"{slug}.{kind}.xml"
        for slug in ["all", "ai", "science", "space"]
        for kind in ["rss", "atom"]
    )
    for path in files:
        parsed = parse_feed(path)
        assert parsed.version == ("rss20" if path.name.endswith(".rss.xml") else "atom10")
        assert parsed.encoding.lower() == "utf-8"


def test_items_carry_title_link_date_category_summary(sample: Any, out_dir: Path) -> None:
    for feed in both(out_dir, "all"):
        entries = by_link(feed)
        assert set(entries) == {spec["url"] for spec in sample.values()}
        for spec in sample.values():
            entry = entries[spec["url"]]
            assert entry.title == spec["title"]
            assert when(entry.published_parsed) == spec["date"]
            assert [tag.term for tag in entry.tags] == spec["topics"]
            assert entry.summary == spec["excerpt"]
            assert entry.author == spec["title"].split()[1] + " Times"


def test_topic_feeds_hold_their_topics_newest_first(sample: Any, out_dir: Path) -> None:
    for slug, topic in [("ai", "AI"), ("science", "Science"), ("space", "Space")]:
        expected = sorted(
            (spec for spec in sample.values() if topic in spec["topics"]),
            key=lambda spec: spec["date"],
            reverse=True,
        )
        for feed in both(out_dir, slug):
            assert [e.link for e in feed.entries] == [spec["url"] for spec in expected]
            assert topic in feed.feed.title


def test_all_feed_is_newest_first(sample: Any, out_dir: Path) -> None:
    expected = [s["url"] for s in sorted(sample.values(), key=lambda s: s["date"], reverse=True)]
    for feed in both(out_dir, "all"):
        assert [e.link for e in feed.entries] == expected
        dates = [when(e.published_parsed) for e in feed.entries]
        assert dates == sorted(dates, reverse=True)


def test_feed_updated_is_the_newest_item_not_the_clock(sample: Any, out_dir: Path) -> None:
    for slug in ["all", "ai", "science", "space"]:
        for feed in both(out_dir, slug):
            newest = max(when(e.published_parsed) for e in feed.entries)
            assert when(feed.feed.updated_parsed) == newest
            assert newest < datetime(2026, 6, 1, tzinfo=UTC)


def test_old_articles_give_an_old_feed_date(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    write_article(publishedDateTime=datetime(2019, 4, 2, 8, 30, tzinfo=UTC))
    write_article(publishedDateTime=datetime(2018, 1, 1, tzinfo=UTC))
    run_build()
    rss, atom = both(out_dir, "all")
    assert when(rss.feed.updated_parsed) == datetime(2019, 4, 2, 8, 30, tzinfo=UTC)
    assert when(atom.feed.updated_parsed) == datetime(2019, 4, 2, 8, 30, tzinfo=UTC)


def test_rss_guid_equals_atom_id_and_ids_are_unique(sample: Any, out_dir: Path) -> None:
    for slug in ["all", "ai", "science", "space"]:
        rss, atom = both(out_dir, slug)
        rss_ids = {e.link: e.id for e in rss.entries}
        atom_ids = {e.link: e.id for e in atom.entries}
        assert rss_ids == atom_ids
        assert len(set(rss_ids.values())) == len(rss_ids)
        assert all(not e.guidislink for e in rss.entries)  # a permalink guid would be a URL
        assert all(re.fullmatch(r"[a-z][a-z0-9+.-]*:\S+", i) for i in rss_ids.values())


@pytest.mark.parametrize(
    "edit",
    [
        {"title": "A completely new headline"},
        {"publishedDateTime": datetime(2026, 7, 4, 18, 0, tzinfo=UTC)},
        {"quality": 99},
        {"excerpt": "A rewritten excerpt."},
        {"name": "renamed-file.md"},
        {
            "title": "New",
            "quality": 51,
            "excerpt": "",
            "publishedDateTime": Raw("2026-07-04"),
            "name": "x/y.txt",
        },
    ],
    ids=["title", "date", "quality", "excerpt", "file-name", "all-at-once"],
)
def test_ids_survive_edits(
    write_article: WriteArticle,
    run_build: Any,
    seeds_dir: Path,
    out_dir: Path,
    edit: dict[str, Any],
) -> None:
    url = "https://stable.example.com/story/42"
    fields: dict[str, Any] = {
        "webUrl": url,
        "originalUrl": url,
        "title": "Original",
        "quality": 70,
        "excerpt": "Original excerpt.",
    }
    original = write_article("original.txt", **fields)
    write_article("other.txt")
    run_build()
    before = {
        f.name: by_link(parse_feed(f))[url].id
        for f in feed_files(out_dir)
        if url in by_link(parse_feed(f))
    }
    original.unlink()
    edit = dict(edit)
    write_article(edit.pop("name", "original.txt"), **{**fields, **edit})
    run_build()
    after = {
        f.name: by_link(parse_feed(f))[url].id
        for f in feed_files(out_dir)
        if url in by_link(parse_feed(f))
    }
    assert before == after
    assert len(set(before.values())) == 1 and len(before) == 4  # all + General, RSS and Atom


def test_max_items_limits_every_feed(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    for day in range(8):
        write_article(
            publishedDateTime=T0 + timedelta(days=day), topics=["Busy"], title=f"Day {day}"
        )
    write_article(publishedDateTime=T0 - timedelta(days=30), topics=["Quiet"], title="Quiet one")
    run_build(feeds={"max_items": 3})
    for feed in both(out_dir, "all"):
        assert [e.title for e in feed.entries] == ["Day 7", "Day 6", "Day 5"]
    for feed in both(out_dir, "busy"):
        assert [e.title for e in feed.entries] == ["Day 7", "Day 6", "Day 5"]
        assert when(feed.feed.updated_parsed) == T0 + timedelta(days=7)
    for feed in both(out_dir, "quiet"):
        assert [e.title for e in feed.entries] == ["Quiet one"]


def test_default_max_items_is_50(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    for n in range(55):
        write_article(publishedDateTime=T0 + timedelta(hours=n))
    run_build()
    for feed in both(out_dir, "all"):
        assert len(feed.entries) == 50


def test_channel_metadata_and_absolute_self_links(sample: Any, out_dir: Path) -> None:
    for path in feed_files(out_dir):
        feed = parse_feed(path).feed
        rels = {link.rel: link.href for link in feed.links}
        assert rels["self"] == SITE_URL + path.name
        assert rels["alternate"].startswith(("http://", "https://"))
        assert feed.title and feed.subtitle
        assert feed.language == "en"
    assert parse_feed(out_dir / "all.rss.xml").feed.title == "Publisher"


def test_site_settings_reach_every_feed(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    write_article(topics=["AI"])
    run_build(
        site={
            "url": "https://example.org/deep/path",
            "title": "Le Site",
            "description": "Tout.",
            "language": "fr-CA",
        }
    )
    for slug in ["all", "ai"]:
        for feed in both(out_dir, slug):
            rels = {link.rel: link.href for link in feed.feed.links}
            assert rels["self"].startswith("https://example.org/deep/path/")
            assert rels["self"].endswith(
                f"/{slug}.{'rss' if feed.version == 'rss20' else 'atom'}.xml"
            )
            assert feed.feed.title.startswith("Le Site")
            assert feed.feed.language == "fr-CA"


def test_rss_dates_are_rfc_822(sample: Any, out_dir: Path) -> None:
    tree = etree.parse(str(out_dir / "all.rss.xml"))
    dates = tree.xpath("//pubDate/text() | //lastBuildDate/text()")
    assert len(dates) == 6
    assert all(RFC822.fullmatch(d) for d in dates), dates


def test_first_image_is_media_content_and_thumbnail(sample: Any, out_dir: Path) -> None:
    for feed in both(out_dir, "all"):
        for entry in feed.entries:
            name = entry.link.split("/")[-1].split("?")[0]
            (thumbnail,) = entry.media_thumbnail
            (content,) = entry.media_content
            assert thumbnail["url"] == content["url"] == f"https://img.example.com/{name}.jpg"
            assert (content["width"], content["height"]) == ("800", "450")
    tree = etree.parse(str(out_dir / "all.rss.xml"))
    assert not tree.xpath("//media:group", namespaces={"media": MEDIA[1:-1]})


def test_no_image_means_no_media(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    write_article(images=None)
    write_article(images=[{"url": "javascript:alert(1)"}])
    run_build()
    for feed in both(out_dir, "all"):
        assert all("media_thumbnail" not in e and "media_content" not in e for e in feed.entries)


def test_related_links_keep_their_titles(sample: Any, out_dir: Path) -> None:
    for feed in both(out_dir, "all"):
        for entry in feed.entries:
            name = entry.link.split("/")[-1].split("?")[0]
            related = [
                (link.href, link.get("title")) for link in entry.links if link.rel == "related"
            ]
            assert related == [(f"https://more.example.org/{name}", f"More on {name}")]
    assert "javascript:" not in (out_dir / "all.rss.xml").read_text()


def test_every_atom_entry_has_an_author(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    # RFC 4287 4.1.1: a feed without atom:author needs one in every entry.
    write_article(title="With provider")
    write_article(title="Without provider", provider=None)
    run_build()
    root = etree.parse(str(out_dir / "all.atom.xml")).getroot()
    if root.find(f"{ATOM}author") is None:
        missing = [
            e.findtext(f"{ATOM}title")
            for e in root.iter(f"{ATOM}entry")
            if e.find(f"{ATOM}author") is None
        ]
        assert missing == []


def test_items_without_provider_or_excerpt_still_parse(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    write_article(title="Bare", provider=None, excerpt=None, images=None, related=None, topics=None)
    run_build()
    for feed in both(out_dir, "all"):
        (entry,) = feed.entries
        assert entry.title == "Bare"
        assert not entry.get("summary")


HOSTILE_TITLE = '<script>alert("t")</script><b>Bold</b> & <img src=x onerror=alert(1)>'
HOSTILE_EXCERPT = '<p onclick="x()">Para</p><script>alert("e")</script><a href="javascript:alert(2)">link</a> &amp; more'


def test_html_in_titles_and_excerpts_comes_out_as_text(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    write_article(title=HOSTILE_TITLE, excerpt=HOSTILE_EXCERPT, topics=["<i>Topic</i>"])
    run_build()
    for path in feed_files(out_dir):
        feed = parse_feed(path)
        (entry,) = feed.entries
        # A reader shows the title as plain text, markup and all.
        assert entry.title == HOSTILE_TITLE
        assert entry.title_detail.type == "text/plain"
        # The summary is HTML whose rendering is the excerpt's literal text: no live markup.
        assert "<" not in entry.summary
        assert html.unescape(entry.summary) == HOSTILE_EXCERPT
        assert [t.term for t in entry.tags] == ["<i>Topic</i>"]
        # The raw XML holds text nodes, never elements made from the article.
        root = etree.parse(str(path)).getroot()
        for tag in ["title", "description", f"{ATOM}title", f"{ATOM}summary"]:
            for element in root.iter(tag):
                assert len(element) == 0, etree.tostring(element)
        injected = {"script", "b", "img", "p", "a", "i"}
        assert not [
            e
            for e in root.iter()
            if isinstance(e.tag, str) and etree.QName(e).localname in injected
        ]


def test_control_characters_in_a_title_do_not_break_the_build(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    write_article(
        title="Bell\u0007 and\u0000 null\u000b vt\u001f us\ufffe",
        excerpt="Esc\u001b ape",
        topics=["Ctl\u0001"],
    )
    write_article(title="Neighbour")
    run_build()
    for path in feed_files(out_dir):
        for entry in parse_feed(path).entries:
            assert not re.search(
                "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", entry.title + entry.get("summary", "")
            )
        etree.parse(str(path))
    titles = [e.title for e in parse_feed(out_dir / "all.atom.xml").entries]
    assert sorted(titles) == ["Bell and null vt us", "Neighbour"]


def test_a_literal_control_character_in_a_document_never_crashes_the_build(
    seeds_dir: Path, write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    path = write_article(title="Placeholder title")
    path.write_text(path.read_text().replace("Placeholder", "Raw\x01control"), encoding="utf-8")
    write_article(title="Neighbour")
    result = run_build()
    titles = [e.title for e in parse_feed(out_dir / "all.rss.xml").entries]
    assert "Neighbour" in titles
    if result.report.rejected:  # refused as YAML: one line naming the file
        assert [e.path for e in result.report.rejected] == [path]
    else:
        assert "Rawcontrol title" in titles


def test_secured_never_reaches_any_output(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    for n in range(3):
        write_article(body=f"Body {n}", topics=["Secrets"])
    run_build()
    for path in out_dir.rglob("*"):
        data = path.read_bytes()
        assert SECRET.encode() not in data and b"secured" not in data, path.name


def test_non_ascii_round_trips(write_article: WriteArticle, run_build: Any, out_dir: Path) -> None:
    write_article(
        title="Économie: 日本語のタイトル — «citation» 🚀",
        excerpt="Ünïcödé ✓",
        topics=["Économie numérique"],
    )
    run_build()
    for feed in both(out_dir, "economie-numerique"):
        (entry,) = feed.entries
        assert entry.title == "Économie: 日本語のタイトル — «citation» 🚀"
        assert html.unescape(entry.summary) == "Ünïcödé ✓"
        assert "Économie numérique" in feed.feed.title

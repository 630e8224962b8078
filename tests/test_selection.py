"""Selection is pure: published and good enough, per-topic thresholds, each story once."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteArticle, make_config
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.cache import in_reach_of
from publisher.config import SelectionConfig, parse_config
from publisher.loader import load_folder
from publisher.models import Article
from publisher.selection import deduplicate, lowest_threshold, newest_first, select
from publisher.urls import normalize_url

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def article(
    url: str = "", quality: float = 70, days: float = 0, *, name: str = "", **fields: Any
) -> Article:
    """An Article as the loader makes them: the id derives from the normalised URL."""
    url = url or f"https://news.example.com/{uuid.uuid4().hex}"
    values: dict[str, Any] = {
        "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, normalize_url(url))}",
        "title": name or url,
        "url": url,
        "published_at": T0 + timedelta(days=days),
        "quality": quality,
        "published": True,
        "topics": ("General",),
        "source_path": Path(f"seeds/{name or 'doc'}.txt"),
    }
    values.update(fields)
    return Article(**values)


def titles(articles: Any) -> list[str]:
    return [a.title for a in articles]


def test_only_published_articles_are_selected() -> None:
    chosen = select([article(name="yes"), article(name="no", published=False)], SelectionConfig())
    assert titles(chosen.articles) == ["yes"]
    assert titles(chosen.by_topic["General"]) == ["yes"]


@pytest.mark.parametrize(
    ("quality", "selected"),
    [(49.99, False), (50, True), (50.0, True), (100, True), (0, False), (-5, False)],
)
def test_default_quality_threshold_is_50(quality: float, selected: bool) -> None:
    assert SelectionConfig().min_quality == 50
    chosen = select([article(quality=quality)], SelectionConfig())
    assert bool(chosen.articles) is selected


def test_min_quality_comes_from_config() -> None:
    settings = make_config(selection={"min_quality": 80}).selection
    chosen = select([article(quality=79, name="low"), article(quality=80, name="high")], settings)
    assert titles(chosen.articles) == ["high"]


def test_per_topic_thresholds() -> None:
    settings = parse_config(
        {"selection": {"min_quality": 50, "topics": {"Security": 80, "Niche": 30}}}
    ).selection
    strong = article(quality=85, name="strong", topics=("Security", "AI"))
    medium = article(quality=60, name="medium", topics=("Security", "AI"))
    weak = article(quality=40, name="weak", topics=("Niche", "AI"))
    chosen = select([strong, medium, weak], settings)
    assert titles(chosen.by_topic["Security"]) == ["strong"]
    assert sorted(titles(chosen.by_topic["AI"])) == ["medium", "strong"]
    assert titles(chosen.by_topic["Niche"]) == ["weak"]
    # The "all" feed is every topic feed together.
    assert sorted(titles(chosen.articles)) == ["medium", "strong", "weak"]


def test_per_topic_thresholds_in_a_build(write_article: WriteArticle, run_build: Any) -> None:
    write_article(title="Secure enough", quality=90, topics=["Security"])
    write_article(title="Not secure enough", quality=70, topics=["Security"])
    write_article(title="Plain", quality=70, topics=["Other"])
    result = run_build(selection={"topics": {"Security": 80}})
    assert titles(result.selection.by_topic["Security"]) == ["Secure enough"]
    assert titles(result.selection.by_topic["Other"]) == ["Plain"]


def test_articles_without_topics_are_only_in_the_all_feed() -> None:
    chosen = select([article(name="loose", topics=())], SelectionConfig())
    assert titles(chosen.articles) == ["loose"]
    assert chosen.by_topic == {}


def test_all_is_the_union_of_the_topic_feeds_plus_topicless_articles() -> None:
    rng = random.Random(7)
    topics = ["A", "B", "C", "D"]
    articles = [
        article(
            quality=rng.randrange(0, 100),
            days=rng.randrange(0, 30),
            name=f"n{i}",
            published=rng.random() < 0.8,
            topics=tuple(rng.sample(topics, rng.randrange(0, 3))),
        )
        for i in range(60)
    ]
    settings = parse_config({"selection": {"topics": {"A": 20, "B": 90}}}).selection
    chosen = select(articles, settings)
    union = {a.id for group in chosen.by_topic.values() for a in group}
    topicless = {a.id for a in chosen.articles if not a.topics}
    assert {a.id for a in chosen.articles} == union | topicless
    for topic, group in chosen.by_topic.items():
        assert all(
            topic in a.topics and a.published and a.quality >= settings.threshold(topic)
            for a in group
        )


def test_articles_are_newest_first_with_a_fixed_order_for_ties() -> None:
    same_time = [article(name=f"tie{i}", days=1) for i in range(5)]
    older, newer = article(name="older", days=-3), article(name="newer", days=9)
    everything = [older, *same_time, newer]
    orders = {tuple(titles(newest_first(p))) for p in itertools.permutations(everything[:4])}
    assert len(orders) == 1
    ordered = newest_first(everything)
    assert ordered[0] is newer and ordered[-1] is older
    assert [a.published_at for a in ordered] == sorted(
        (a.published_at for a in ordered), reverse=True
    )
    assert titles(select(everything, SelectionConfig()).articles) == titles(ordered)


@pytest.mark.parametrize(
    "twin",
    [
        "https://news.example.com/story",
        "http://news.example.com/story",
        "https://www.news.example.com/story",
        "https://NEWS.example.com/story/",
        "https://news.example.com:443/story",
        "https://news.example.com/story#comments",
        "https://news.example.com/story?utm_source=rss&utm_medium=feed",
    ],
)
def test_the_same_story_after_normalisation_appears_once(twin: str) -> None:
    first = article("https://news.example.com/story", quality=60, name="first")
    second = article(twin, quality=70, name="second")
    assert titles(select([first, second], SelectionConfig()).articles) == ["second"]
    assert titles(select([second, first], SelectionConfig()).articles) == ["second"]


@pytest.mark.parametrize(
    "other",
    [
        "https://news.example.com/story?id=2",
        "https://news.example.com/story-2",
        "https://other.example.com/story",
    ],
)
def test_different_stories_are_both_kept(other: str) -> None:
    chosen = select(
        [article("https://news.example.com/story?id=1"), article(other)], SelectionConfig()
    )
    assert len(chosen.articles) == 2


def test_dedupe_keeps_the_higher_quality_then_the_newer() -> None:
    url = "https://news.example.com/dup"
    low_new = article(url, quality=60, days=5, name="low-new")
    high_old = article(url, quality=80, days=0, name="high-old")
    high_new = article(url, quality=80, days=2, name="high-new")
    for order in itertools.permutations([low_new, high_old, high_new]):
        assert titles(deduplicate(order)) == ["high-new"]
    for order in itertools.permutations([low_new, high_old]):
        assert titles(deduplicate(order)) == ["high-old"]


def test_dedupe_only_among_published_articles() -> None:
    url = "https://news.example.com/draft"
    draft = article(url, quality=95, name="draft", published=False)
    live = article(url, quality=60, name="live")
    assert titles(select([draft, live], SelectionConfig()).articles) == ["live"]


def test_dedupe_winner_is_the_same_whatever_the_document_order() -> None:
    rng = random.Random(11)
    urls = [f"https://news.example.com/s{i}" for i in range(6)]
    articles = [
        article(
            rng.choice(urls) + rng.choice(["", "/", "#x", "?utm_campaign=a"]),
            quality=rng.choice([55, 60, 70]),
            days=rng.choice([0, 1, 2]),
            name=f"doc{i:02d}",
        )
        for i in range(40)
    ]
    expected = sorted(titles(select(articles, SelectionConfig()).articles))
    for _ in range(20):
        rng.shuffle(articles)
        assert sorted(titles(select(articles, SelectionConfig()).articles)) == expected
    assert len(expected) == len({normalize_url(a.url) for a in articles})


def test_duplicate_documents_in_a_build_appear_once(
    write_article: WriteArticle, seeds_dir: Path, run_build: Any
) -> None:
    write_article("a.txt", title="Lower", quality=60, webUrl="https://www.dup.example.com/x/")
    write_article(
        "b.txt", title="Higher", quality=75, webUrl="http://dup.example.com/x?utm_source=y"
    )
    assert len(load_folder(seeds_dir, 10**6).articles) == 2
    result = run_build()
    assert titles(result.selection.articles) == ["Higher"]


def test_a_chain_of_copies_is_settled_the_same_whatever_the_document_order() -> None:
    """A and B share a URL, B and C an id: the best copy wins first, so B goes, and C
    (which shares nothing with A) stays, in every order, cached or parsed."""
    best = article("https://news.example.com/story", quality=90, name="A")
    shared = "tag:example.com,2026:b"
    second = article("https://news.example.com/story?utm_source=x", 80, name="B", id=shared)
    third = article("https://other.example.com/else", quality=70, name="C", id=shared)
    for order in itertools.permutations([best, second, third]):
        assert sorted(titles(deduplicate(order))) == ["A", "C"]
        assert titles(select(order, SelectionConfig()).articles) == ["C", "A"]  # by date, id


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # story URL
            st.integers(0, 5),  # id
            st.integers(0, 100),  # quality
            st.integers(0, 3),  # day
            st.booleans(),  # published
            st.lists(st.sampled_from(["AI", "Space", "Law"]), max_size=2, unique=True),
        ),
        max_size=25,
    ),
    st.integers(0, 100),
    st.dictionaries(st.sampled_from(["AI", "Space"]), st.integers(0, 100), max_size=2),
)
def test_articles_below_every_threshold_change_nothing(
    rows: list[tuple[int, int, int, int, bool, list[str]]],
    min_quality: int,
    topics: dict[str, int],
) -> None:
    """A rebuild passes over the articles the cache knows to be unpublished or below
    ``lowest_threshold``: selecting without them must give the same selection."""
    config = SelectionConfig(min_quality=min_quality, topics=topics)
    articles = [
        article(
            f"https://news.example.com/story-{url}",
            quality=quality,
            days=day,
            name=f"doc{n:02d}",
            id=f"tag:example.com,2026:{id_}",
            published=published,
            topics=tuple(chosen),
        )
        for n, (url, id_, quality, day, published, chosen) in enumerate(rows)
    ]
    floor = lowest_threshold(config)
    within = [a for a in articles if in_reach_of(a.published, a.quality, floor)]
    assert select(within, config) == select(articles, config)

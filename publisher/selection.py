"""Pure selection: which articles are published, under which topics, each story once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from publisher.config import SelectionConfig
from publisher.models import Article
from publisher.urls import normalize_url


@dataclass(frozen=True)
class Selection:
    """The published articles, newest first, overall and per topic."""

    articles: tuple[Article, ...]
    by_topic: dict[str, tuple[Article, ...]]


def newest_first(articles: Iterable[Article]) -> list[Article]:
    """Order for feeds: newest first; the id breaks ties so the order is always the same."""
    return sorted(articles, key=lambda a: (-a.published_at.timestamp(), a.id))


def deduplicate(articles: Iterable[Article]) -> list[Article]:
    """One story twice (same normalised URL, or same id) appears once: higher quality, then newer."""
    best: dict[str, Article] = {}
    for article in articles:
        for key in (normalize_url(article.url), article.id):
            current = best.get(key)
            if current is not None and _rank(current) >= _rank(article):
                break
        else:
            for key in (normalize_url(article.url), article.id):
                loser = best.get(key)
                if loser is not None:
                    best.pop(normalize_url(loser.url), None)
                    best.pop(loser.id, None)
            best[normalize_url(article.url)] = article
            best[article.id] = article
    return list({id(a): a for a in best.values()}.values())


def select(articles: Sequence[Article], settings: SelectionConfig) -> Selection:
    """Published articles above the quality threshold (per topic where configured)."""
    candidates = deduplicate(a for a in articles if a.published)
    by_topic: dict[str, list[Article]] = {}
    chosen: list[Article] = []
    for article in candidates:
        topics = [t for t in article.topics if article.quality >= settings.threshold(t)]
        for topic in topics:
            by_topic.setdefault(topic, []).append(article)
        if topics or (not article.topics and article.quality >= settings.min_quality):
            chosen.append(article)
    return Selection(
        articles=tuple(newest_first(chosen)),
        by_topic={topic: tuple(newest_first(group)) for topic, group in sorted(by_topic.items())},
    )


def _rank(article: Article) -> tuple[float, float, str]:
    # The path makes the choice between two equal copies the same on every run.
    return (article.quality, article.published_at.timestamp(), str(article.source_path))

"""Pure selection: which articles are published, under which topics, each story once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from publisher.config import SelectionConfig
from publisher.urls import normalize_url


class Candidate(Protocol):
    """What selection reads of an article: an ``Article``, or the build cache's summary
    of one (a rebuild then decodes in full only the articles of the feeds it writes again)."""

    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def published_at(self) -> datetime: ...
    @property
    def quality(self) -> float: ...
    @property
    def published(self) -> bool: ...
    @property
    def topics(self) -> tuple[str, ...]: ...
    @property
    def source_path(self) -> Path: ...


A = TypeVar("A", bound=Candidate)


@dataclass(frozen=True)
class Selection(Generic[A]):
    """The published articles, newest first, overall and per topic."""

    articles: tuple[A, ...]
    by_topic: dict[str, tuple[A, ...]]


def newest_first(articles: Iterable[A]) -> list[A]:
    """Order for feeds: newest first; the id breaks ties so the order is always the same."""
    return sorted(articles, key=lambda a: (-a.published_at.timestamp(), a.id))


def deduplicate(articles: Iterable[A]) -> list[A]:
    """One story twice (same normalised URL, or same id) appears once: higher quality, then newer.

    Copies are settled best first, whatever order the documents came in: a copy is dropped
    when a better one that is kept has its URL or its id. (Settled in arrival order, a chain
    of copies, A and B sharing a URL and B and C an id, could keep A and C or A alone.)
    """
    items = list(articles)
    keys: dict[int, tuple[str, str]] = {}
    holders: dict[str, A] = {}
    contested: dict[int, A] = {}  # every article that shares its URL or id with another
    for article in items:
        own = keys[id(article)] = (normalize_url(article.url), article.id)
        for key in own:
            other = holders.setdefault(key, article)
            if other is not article:
                contested[id(article)] = article
                contested[id(other)] = other
    if not contested:
        return items
    taken: set[str] = set()
    dropped: set[int] = set()
    for article in sorted(contested.values(), key=_rank, reverse=True):
        url, id_ = keys[id(article)]
        if url in taken or id_ in taken:
            dropped.add(id(article))
        else:
            taken.update((url, id_))
    return [article for article in items if id(article) not in dropped]


def select(articles: Sequence[A], settings: SelectionConfig) -> Selection[A]:
    """Published articles above the quality threshold (per topic where configured).

    Sorted once, newest first: every list is then filled in that order (a total order, ids
    being unique once copies are settled), so no list needs sorting again."""
    candidates = newest_first(deduplicate(a for a in articles if a.published))
    by_topic: dict[str, list[A]] = {}
    chosen: list[A] = []
    for article in candidates:
        topics = [t for t in article.topics if article.quality >= settings.threshold(t)]
        for topic in topics:
            by_topic.setdefault(topic, []).append(article)
        if topics or (not article.topics and article.quality >= settings.min_quality):
            chosen.append(article)
    return Selection(
        articles=tuple(chosen),
        by_topic={topic: tuple(group) for topic, group in sorted(by_topic.items())},
    )


def lowest_threshold(settings: SelectionConfig) -> float:
    """The lowest quality any topic takes. No article below it is selected, nor decides
    between copies of a story that is: copies are settled best first, quality first."""
    return min([settings.min_quality, *settings.topics.values()])


def _rank(article: Candidate) -> tuple[float, float, str]:
    # The path makes the choice between two equal copies the same on every run.
    return (article.quality, article.published_at.timestamp(), str(article.source_path))

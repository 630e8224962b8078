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
    of one (a rebuild then decodes in full only the articles its feeds list)."""

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
    """One story twice (same normalised URL, or same id) appears once: higher quality, then newer."""
    best: dict[str, A] = {}
    normalized: dict[int, str] = {}
    for article in articles:
        url = normalized[id(article)] = normalize_url(article.url)
        for key in (url, article.id):
            current = best.get(key)
            if current is not None and _rank(current) >= _rank(article):
                break
        else:
            for key in (url, article.id):
                loser = best.get(key)
                if loser is not None:
                    best.pop(normalized[id(loser)], None)
                    best.pop(loser.id, None)
            best[url] = article
            best[article.id] = article
    return list({id(a): a for a in best.values()}.values())


def select(articles: Sequence[A], settings: SelectionConfig) -> Selection[A]:
    """Published articles above the quality threshold (per topic where configured)."""
    candidates = deduplicate(a for a in articles if a.published)
    by_topic: dict[str, list[A]] = {}
    chosen: list[A] = []
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


def _rank(article: Candidate) -> tuple[float, float, str]:
    # The path makes the choice between two equal copies the same on every run.
    return (article.quality, article.published_at.timestamp(), str(article.source_path))

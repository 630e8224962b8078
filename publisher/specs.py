"""What each feed lists and where it is published: plain values, no renderer.

Kept apart from ``feeds`` and ``pages`` so that a build can plan every output file
without loading feedgen, lxml or Jinja, and hand the plan to another process to render.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from publisher.models import Article

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedSpec:
    """One feed to write: its name and addresses, and its articles newest first."""

    title: str
    description: str
    rss_url: str
    atom_url: str
    page_url: str
    articles: Sequence[Article]
    json_url: str = ""  # the JSON Feed's address ("" = no JSON Feed published)
    hub_url: str = ""  # the WebSub hub every copy of the feed names ("" = none)

    @property
    def updated(self) -> datetime:
        """The newest article's date: a rebuild with nothing new leaves the feed unchanged."""
        return max((a.published_at for a in self.articles), default=EPOCH)


@dataclass(frozen=True)
class FeedLink:
    """A published feed: its name, the stem of its file names, and what it lists."""

    name: str
    slug: str
    spec: FeedSpec

    @property
    def count(self) -> int:
        return len(self.spec.articles)

    @property
    def updated(self) -> datetime:
        return self.spec.updated

    def listing(self) -> FeedListing:
        """The feed as the index pages show it, without its articles (which are not sent
        to the process that renders the pages)."""
        spec = dataclasses.replace(self.spec, articles=())
        return FeedListing(self.name, self.slug, spec, self.count, self.updated)


@dataclass(frozen=True)
class FeedListing:
    """A feed as the index pages show it: names, addresses, how many articles and the
    newest one's date (``spec`` lists no articles)."""

    name: str
    slug: str
    spec: FeedSpec
    count: int
    updated: datetime

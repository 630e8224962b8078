"""Article and friends: plain frozen values, no I/O, so every stage can share them safely."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Provider:
    """Who published the story (the article's source, not us)."""

    name: str
    domain: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    """A picture of the article; only http(s) URLs ever get here."""

    url: str
    width: int | None = None
    height: int | None = None
    alt: str = ""


@dataclass(frozen=True, slots=True)
class Related:
    """A link to another coverage of the same story."""

    title: str
    url: str
    provider: str = ""


@dataclass(frozen=True, slots=True)
class Article:
    """One usable article document, already checked and normalised by the loader."""

    id: str
    title: str
    url: str
    published_at: datetime
    quality: float
    excerpt: str = ""
    heat: float = 0.0
    published: bool = False
    provider: Provider | None = None
    topics: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    related: tuple[Related, ...] = ()
    body: str = ""
    source_path: Path = field(default=Path(), compare=False)

    @property
    def image(self) -> Image | None:
        """The first image, used as thumbnail in feeds and the digest."""
        return self.images[0] if self.images else None

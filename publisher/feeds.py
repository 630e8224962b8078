"""Article lists -> RSS 2.0 and Atom 1.0 bytes, written with feedgen; no file I/O here.

feedgen 1.0 is wrapped here alone so it could be replaced. Its traps are handled here:
entries are appended in our order, every date is set from the articles (never the
clock), the RSS ``<link>`` comes from the last ``link()`` call, media items are not put
in a ``media:group``, and Atom entry links lose their ``rel``, so related links are
written by a small extension of our own.
"""

from __future__ import annotations

import html
import threading
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from publisher import __version__
from publisher.config import SiteConfig
from publisher.models import Article
from publisher.specs import FeedSpec
from publisher.text import xml_safe

ATOM_NS = "http://www.w3.org/2005/Atom"


def render_rss(spec: FeedSpec, site: SiteConfig) -> bytes:
    """The feed as RSS 2.0."""
    generator = _shared_generator(spec, site)
    # Readers take an RSS <description> as HTML, and a topic's name (an article's text)
    # is in it: escaped, as the items' descriptions are. (Atom's subtitle is plain text.)
    generator.description(html.escape(xml_safe(spec.description), quote=False))
    generator.link(href=spec.rss_url, rel="self", type="application/rss+xml", replace=True)
    # RSS keeps only feedgen's first rel=self link: the hub goes in through our extension.
    generator.related.hub = spec.hub_url
    generator.link(href=spec.page_url, rel="alternate")  # last: it becomes RSS <link>
    data: bytes = generator.rss_str(pretty=True, encoding="UTF-8")
    return data


def render_atom(spec: FeedSpec, site: SiteConfig) -> bytes:
    """The feed as Atom 1.0."""
    generator = _shared_generator(spec, site)
    generator.description(xml_safe(spec.description))
    generator.link(href=spec.atom_url, rel="self", type="application/atom+xml", replace=True)
    if spec.hub_url:
        generator.link(href=spec.hub_url, rel="hub")
    generator.link(href=spec.page_url, rel="alternate", type="text/html")
    data: bytes = generator.atom_str(pretty=True, encoding="UTF-8")
    return data


def _shared_generator(spec: FeedSpec, site: SiteConfig) -> FeedGenerator:
    """The generator with ``spec``'s entries, made once for its RSS and Atom in a row
    (adding 50 entries costs about a third of writing either). The caller sets what
    differs between the two: the description and the links (the RSS-only hub extension
    is read by the RSS writer alone)."""
    last = getattr(_last_generator, "made", None)
    if last is not None and last[0] is spec and last[1] is site:
        return last[2]
    generator = _generator(spec, site)
    _last_generator.made = (spec, site, generator)  # holds spec: its id is not reused
    return generator


_last_generator = threading.local()  # per thread: builds and digests may run side by side


def _generator(spec: FeedSpec, site: SiteConfig) -> FeedGenerator:
    generator = FeedGenerator()
    generator.load_extension("media", atom=True, rss=True)
    generator.load_extension("dc", atom=False, rss=True)
    generator.register_extension("related", _RelatedLinks, _RelatedEntryLinks)
    generator.id(spec.atom_url)
    generator.title(xml_safe(spec.title))
    generator.description(xml_safe(spec.description))
    generator.language(site.language)
    generator.generator("publisher", version=__version__)
    generator.updated(spec.updated)
    generator.lastBuildDate(spec.updated)
    for article in spec.articles:
        _add_entry(generator, article, site.title)
    return generator


def _add_entry(generator: FeedGenerator, article: Article, site_title: str) -> None:
    # The loader hands over clean text; an Article made elsewhere may not be, and lxml
    # refuses control characters and lone surrogates (a crash, not a feed).
    entry = generator.add_entry(order="append")
    entry.id(xml_safe(article.id))
    entry.guid(xml_safe(article.id), permalink=False)
    entry.title(xml_safe(article.title) or article.url)  # Atom requires a title
    entry.link(href=article.url, rel="alternate")
    entry.published(article.published_at)
    entry.updated(article.published_at)
    excerpt = xml_safe(article.excerpt)
    if excerpt:
        # Escaped, so no reader can take an article's text for markup.
        entry.summary(html.escape(excerpt, quote=False), type="html")
    for topic in filter(None, map(xml_safe, article.topics)):
        entry.category(term=topic, label=topic)
    author = xml_safe(article.provider.name) if article.provider is not None else ""
    if author:
        entry.author(name=author)
        entry.dc.dc_creator(author)
    else:
        entry.author(name=site_title)  # Atom requires an author for every entry
    image = article.image
    if image is not None:
        size = {
            key: str(value)
            for key, value in (("width", image.width), ("height", image.height))
            if value
        }
        entry.media.content(url=image.url, medium="image", group=None, **size)
        entry.media.thumbnail(url=image.url, group=None, **size)
    entry.related.links = [(related.url, xml_safe(related.title)) for related in article.related]


class _RelatedLinks(BaseExtension):  # type: ignore[misc]
    """Feed half of the related-links extension (feedgen's RSS already declares ``atom:``).

    It also writes the RSS channel's ``<atom:link rel="hub">`` (WebSub), right after the
    self link, since feedgen's RSS writer drops every ``atom:link`` but the first self one.
    """

    def __init__(self) -> None:
        self.hub = ""

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        if self.hub and channel is not None:
            hub = xml_elem(f"{{{ATOM_NS}}}link", channel, href=self.hub, rel="hub")
            for position, element in enumerate(channel):
                if element.tag == f"{{{ATOM_NS}}}link" and element.get("rel") == "self":
                    channel.insert(position + 1, hub)  # moves it up from the end
                    break
        return feed


class _RelatedEntryLinks(BaseEntryExtension):  # type: ignore[misc]
    """Writes ``<link rel="related">`` (``atom:link`` in RSS) with its title kept."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []

    def extend_atom(self, entry: Any) -> Any:
        # feedgen writes Atom elements unqualified under a default xmlns attribute.
        return self._add(entry, "link")

    def extend_rss(self, item: Any) -> Any:
        return self._add(item, f"{{{ATOM_NS}}}link")

    def _add(self, parent: Any, tag: str) -> Any:
        for url, title in self.links:
            xml_elem(tag, parent, rel="related", href=url, title=title)
        return parent

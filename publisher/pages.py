"""The feed folder's pages: ``index.html`` and a page per topic (with autodiscovery), and
``index.opml``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from publisher.config import SiteConfig
from publisher.models import Article, Image
from publisher.specs import FeedLink, FeedListing, FeedSpec
from publisher.templating import environment
from publisher.text import one_line, shorten, xml_safe

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EXCERPT_CHARS = 600


def render_index_html(
    site: SiteConfig, all_feeds: FeedLink | FeedListing, topics: Sequence[FeedLink | FeedListing]
) -> bytes:
    """A page listing every topic and its feeds, with ``<link rel="alternate">`` autodiscovery."""
    template = environment().get_template("index.html.j2")
    page = template.render(site=site, all_feeds=all_feeds, topics=topics, updated=all_feeds.updated)
    return xml_safe(page).encode("utf-8")


@dataclass(frozen=True)
class PageEntry:
    """One article as a topic page shows it: display text and checked URLs only."""

    title: str
    url: str
    provider: str
    published_iso: str
    published_label: str
    excerpt: str
    image: Image | None

    @classmethod
    def of(cls, article: Article) -> PageEntry:
        image = article.image
        if image is not None:
            # Without an alt of its own the picture adds nothing to the headline beside it.
            image = Image(image.url, image.width, image.height, one_line(image.alt))
        moment = article.published_at.astimezone(UTC)
        return cls(
            title=one_line(article.title),
            url=article.url,
            provider=one_line(article.provider.name) if article.provider else "",
            published_iso=moment.isoformat(),
            published_label=day_label(moment),
            excerpt=shorten(one_line(article.excerpt), EXCERPT_CHARS),
            image=image,
        )


def day_label(moment: datetime) -> str:
    """``23 Nov 2026`` whatever the process locale (strftime's %b follows it)."""
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def render_topic_html(spec: FeedSpec, site: SiteConfig, name: str) -> bytes:
    """The page of topic ``name``: its feed's articles newest first, autodiscovery of its
    feeds and a subscribe block.

    It depends on nothing but the topic's feed and the site, like the topic's feeds (and
    takes its arguments in their order, so the pipeline renders all three alike).
    """
    template = environment().get_template("topic.html.j2")
    updated = spec.updated.astimezone(UTC)
    page = template.render(
        site=site,
        name=name,
        count=len(spec.articles),
        spec=spec,
        entries=[PageEntry.of(article) for article in spec.articles],
        updated=updated,
        updated_label=day_label(updated),
        home_url=site.url,
        opml_url=f"{site.url}index.opml",
    )
    return xml_safe(page).encode("utf-8")


def render_opml(
    site: SiteConfig, all_feeds: FeedLink | FeedListing, topics: Sequence[FeedLink | FeedListing]
) -> bytes:
    """OPML 2.0 listing every feed, so a reader can subscribe to all of them at once."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = xml_safe(site.title)
    ET.SubElement(head, "dateModified").text = format_datetime(all_feeds.updated, usegmt=True)
    body = ET.SubElement(opml, "body")
    for feed in (all_feeds, *topics):
        for kind, url in (("RSS", feed.spec.rss_url), ("Atom", feed.spec.atom_url)):
            outline = ET.SubElement(
                body,
                "outline",
                type="rss",
                text=xml_safe(f"{feed.spec.title} ({kind})"),
                title=xml_safe(f"{feed.spec.title} ({kind})"),
                xmlUrl=url,
                htmlUrl=feed.spec.page_url,
            )
            if kind == "RSS":  # OPML knows no version value for Atom
                outline.set("version", "RSS2")
    ET.indent(opml)
    data: bytes = ET.tostring(opml, encoding="utf-8", xml_declaration=True)
    return data + b"\n"

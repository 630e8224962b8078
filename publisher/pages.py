"""The feed folder's front door: ``index.html`` (with autodiscovery) and ``index.opml``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime

from publisher.config import SiteConfig
from publisher.feeds import FeedSpec
from publisher.templating import environment
from publisher.text import xml_safe


@dataclass(frozen=True)
class FeedLink:
    """A published feed pair as the index pages list it."""

    name: str
    slug: str
    spec: FeedSpec

    @property
    def count(self) -> int:
        return len(self.spec.articles)


def render_index_html(site: SiteConfig, all_feeds: FeedLink, topics: Sequence[FeedLink]) -> bytes:
    """A page listing every topic and its feeds, with ``<link rel="alternate">`` autodiscovery."""
    template = environment().get_template("index.html.j2")
    page = template.render(
        site=site, all_feeds=all_feeds, topics=topics, updated=all_feeds.spec.updated
    )
    return xml_safe(page).encode("utf-8")


def render_opml(site: SiteConfig, all_feeds: FeedLink, topics: Sequence[FeedLink]) -> bytes:
    """OPML 2.0 listing every feed, so a reader can subscribe to all of them at once."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = xml_safe(site.title)
    ET.SubElement(head, "dateModified").text = format_datetime(all_feeds.spec.updated, usegmt=True)
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

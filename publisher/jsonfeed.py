"""Article lists -> JSON Feed 1.1 bytes (https://jsonfeed.org/version/1.1); no file I/O here.

The same feed as the RSS and Atom copies, item for item: the same ids (a reader that
follows both never sees a story twice), the same order, dates taken from the articles.
Keys come in a fixed order and the text is UTF-8, so the same input gives the same bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from publisher.config import SiteConfig
from publisher.models import Article
from publisher.specs import FeedSpec
from publisher.text import xml_safe

VERSION = "https://jsonfeed.org/version/1.1"
MEDIA_TYPE = "application/feed+json"


def render_json_feed(spec: FeedSpec, site: SiteConfig) -> bytes:
    """The feed as JSON Feed 1.1."""
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": _text(spec.title),
        "home_page_url": spec.page_url,
    }
    if spec.json_url:
        feed["feed_url"] = spec.json_url
    feed["description"] = _text(spec.description)
    feed["language"] = site.language
    # Items without a provider inherit this, as Atom entries get the site as their author.
    feed["authors"] = [{"name": _text(site.title)}]
    if spec.hub_url:
        feed["hubs"] = [{"type": "WebSub", "url": spec.hub_url}]
    feed["items"] = [_item(article) for article in spec.articles]
    text = json.dumps(feed, ensure_ascii=False, indent=2)
    return text.encode("utf-8") + b"\n"


def _item(article: Article) -> dict[str, Any]:
    excerpt = _text(article.excerpt)
    item: dict[str, Any] = {
        "id": article.id,
        "url": article.url,
        "title": _text(article.title),
    }
    if excerpt:
        item["summary"] = excerpt
    # The spec requires content_text or content_html; the feeds publish the excerpt only.
    item["content_text"] = excerpt or item["title"]
    if article.image is not None:
        item["image"] = article.image.url
    item["date_published"] = rfc3339(article.published_at)
    if article.provider is not None:
        item["authors"] = [{"name": _text(article.provider.name)}]
    if article.topics:
        item["tags"] = [_text(topic) for topic in article.topics]
    return item


def rfc3339(moment: datetime) -> str:
    """``2026-11-23T14:05:00Z``: RFC 3339 in UTC, as JSON Feed asks for dates."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(value: str) -> str:
    # Lone surrogates cannot be encoded in UTF-8; the XML copies drop the same characters.
    return xml_safe(value)

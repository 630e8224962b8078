"""Articles -> the digest: which are new, how they are grouped, and the HTML and text parts.

Pure apart from reading the templates: no sending, no state, no file writes. Time is
passed in. The HTML is rendered once per distinct topic set, its CSS inlined with
premailer (the slow step), and only then are the per-recipient parts (greeting,
unsubscribe and preferences links) substituted into unguessable placeholders.
Every field is capped and items are dropped from the end until the HTML part fits under
Gmail's clipping limit, whatever the input.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import jinja2

from publisher.config import DigestConfig
from publisher.errors import DigestError
from publisher.models import Article
from publisher.selection import Selection
from publisher.templating import environment
from publisher.text import one_line, shorten

log = logging.getLogger(__name__)

MAX_HTML_BYTES = 100_000  # Gmail clips at 102 KB; the whole HTML part stays under this
PERSONAL_RESERVE = 4_000  # room kept for a recipient's name and links, substituted later
MAX_TITLE = 200
MAX_PROVIDER = 80
MAX_TOPIC = 80
MAX_ALT = 150
MAX_URL = 2_000
MAX_EXCERPT = 1_000
MAX_NAME = 100  # see subscribers.MAX_NAME
THUMB_WIDTH = 120
PREHEADER_CHARS = 140
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_premailer_lock = threading.Lock()  # premailer (cssutils) is not thread-safe


@dataclass(frozen=True)
class Thumbnail:
    """The article's first image, sized for the digest (width and height always set)."""

    url: str
    width: int
    height: int
    alt: str


@dataclass(frozen=True)
class Entry:
    """One article as the digest shows it; every text already capped."""

    article_id: str
    title: str
    url: str
    provider: str
    date_label: str
    excerpt: str
    thumbnail: Thumbnail | None


@dataclass(frozen=True)
class Section:
    """A topic and its articles, best first."""

    topic: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Digest:
    """The content of one digest (for everyone, or for one set of topics)."""

    sections: tuple[Section, ...]

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(entry for section in self.sections for entry in section.entries)

    @property
    def count(self) -> int:
        return sum(len(section.entries) for section in self.sections)

    @property
    def headline(self) -> str:
        """The top story's title (the first entry), used in the subject line."""
        return self.sections[0].entries[0].title if self.sections else ""

    def preheader(self, limit: int = PREHEADER_CHARS) -> str:
        """The preview text inbox lists show next to the subject: the top headlines."""
        titles = [section.entries[0].title for section in self.sections]
        titles += [entry.title for entry in self.entries if entry.title not in titles]
        return shorten(" · ".join(titles), limit)

    def keep(self, count: int) -> Digest:
        """The first ``count`` entries in reading order (the rest dropped from the end)."""
        sections = []
        for section in self.sections:
            if count <= 0:
                break
            sections.append(replace(section, entries=section.entries[:count]))
            count -= len(sections[-1].entries)
        return Digest(tuple(sections))


@dataclass(frozen=True)
class Masthead:
    """What the header and footer say: who sends it, for which day, where the web copy is."""

    site_title: str
    site_url: str
    language: str
    period: str
    date_label: str
    web_url: str
    sender_name: str
    postal_address: str
    since_label: str = ""


# --- which articles ---------------------------------------------------------------------


def eligible(selection: Selection[Article], now: datetime) -> list[Article]:
    """Selected articles already published at ``now`` (a future date is not news yet).

    An article whose link is too long for a mail client is left out (and logged).
    """
    chosen = []
    for article in selection.articles:
        if article.published_at > now:
            continue
        if len(article.url) > MAX_URL:
            log.warning(
                "%s: link longer than %d characters; not in the digest",
                article.source_path,
                MAX_URL,
            )
            continue
        chosen.append(article)
    return chosen


def new_articles(
    articles: Iterable[Article],
    *,
    first_seen: Mapping[str, datetime],
    tracking_since: datetime,
    since: datetime,
    now: datetime,
    digested: Set[str],
    max_age: timedelta,
) -> list[Article]:
    """The articles that arrived in ``(since, now]``, were never in a digest, and are not too old.

    An article arrives when it is first seen eligible (``first_seen``), not when it says it
    was published: a backdated story, or one whose quality was raised later, still counts
    as new. Those already there when tracking began arrive at their publication date,
    since nothing better is known about them. Anything older than ``max_age`` is left out
    so a bulk backfill cannot flood a digest.
    """
    chosen = []
    for article in articles:
        seen = first_seen.get(article.id, now)
        arrived = article.published_at if seen <= tracking_since else seen
        if article.id in digested or not since < arrived <= now:
            continue
        if article.published_at < now - max_age:
            continue
        chosen.append(article)
    return chosen


def topics_by_article(selection: Selection[Article]) -> dict[str, tuple[str, ...]]:
    """Each selected article's topics, those whose threshold it passed, in its own order."""
    qualified: dict[str, set[str]] = {}
    for topic, articles in selection.by_topic.items():
        for article in articles:
            qualified.setdefault(article.id, set()).add(topic)
    return {
        article.id: tuple(t for t in article.topics if t in qualified.get(article.id, ()))
        for article in selection.articles
    }


def compose(
    articles: Sequence[Article],
    topics_of: Mapping[str, tuple[str, ...]],
    settings: DigestConfig,
    tz: tzinfo,
    *,
    wanted: frozenset[str] | None = None,
) -> Digest:
    """Group by topic, rank, cap: the digest for everyone (``wanted`` None) or some topics.

    Topics come in the configured order, then by number of articles; a story in several
    topics appears once, in the first. Within a topic: heat, then quality. At most
    ``max_per_topic`` per topic; the overall cap ``max_items`` is filled round-robin over
    the topics so every topic keeps its best stories.
    """
    groups: dict[str, list[Article]] = {}
    other: list[Article] = []
    for article in articles:
        topics = topics_of.get(article.id, ())
        if wanted is not None:
            topics = tuple(t for t in topics if t.casefold() in wanted)
            if not topics:
                continue
        if not topics:
            other.append(article)
        for topic in topics:
            groups.setdefault(topic, []).append(article)
    configured = {name.casefold(): index for index, name in enumerate(settings.topics)}
    order = sorted(
        groups,
        key=lambda t: (
            configured.get(t.casefold(), len(configured)),
            -len(groups[t]),
            t.casefold(),
            t,
        ),
    )
    placed: set[str] = set()
    ranked: list[tuple[str, list[Article]]] = []
    for topic in order:
        members = [a for a in groups[topic] if a.id not in placed]
        placed.update(a.id for a in members)
        ranked.append((topic, sorted(members, key=_rank)[: settings.max_per_topic]))
    if other:
        ranked.append((settings.other_topic, sorted(other, key=_rank)[: settings.max_per_topic]))
    kept = _round_robin([members for _, members in ranked], settings.max_items)
    sections = tuple(
        Section(
            shorten(one_line(topic), MAX_TOPIC),
            tuple(_entry(a, settings, tz) for a in members[:count]),
        )
        for (topic, members), count in zip(ranked, kept, strict=True)
        if count
    )
    return Digest(sections)


def _rank(article: Article) -> tuple[float, float, float, str]:
    return (-article.heat, -article.quality, -article.published_at.timestamp(), article.id)


def _round_robin(groups: Sequence[Sequence[Article]], limit: int) -> list[int]:
    """How many of each group to keep: one from each in turn until ``limit``."""
    kept = [0] * len(groups)
    total = 0
    while total < limit and any(k < len(g) for k, g in zip(kept, groups, strict=True)):
        for index, group in enumerate(groups):
            if total < limit and kept[index] < len(group):
                kept[index] += 1
                total += 1
    return kept


def _entry(article: Article, settings: DigestConfig, tz: tzinfo) -> Entry:
    image = article.image
    thumbnail = None
    if image is not None and len(image.url) <= MAX_URL:
        height = 80
        if image.width and image.height:
            height = max(30, min(240, round(THUMB_WIDTH * image.height / image.width)))
        # The headline is right beside the picture: repeating it as alt text is noise for
        # screen readers and fills the box when a mail client blocks pictures.
        source = article.provider.name if article.provider else ""
        alt = image.alt or (f"Picture: {source}" if source else "Picture")
        thumbnail = Thumbnail(image.url, THUMB_WIDTH, height, shorten(one_line(alt), MAX_ALT))
    provider = article.provider.name if article.provider else ""
    return Entry(
        article_id=article.id,
        title=shorten(one_line(article.title), MAX_TITLE),
        url=article.url,
        provider=shorten(one_line(provider), MAX_PROVIDER),
        date_label=short_date(article.published_at.astimezone(tz).date()),
        excerpt=shorten(one_line(article.excerpt), min(settings.excerpt_chars, MAX_EXCERPT)),
        thumbnail=thumbnail,
    )


def long_date(day: date) -> str:
    """``Tuesday, 24 November 2026``: spelt out here, so no locale is ever involved."""
    return f"{WEEKDAYS[day.weekday()]}, {day.day} {MONTHS[day.month - 1]} {day.year}"


def medium_date(day: date) -> str:
    """``24 November 2026``."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def short_date(day: date) -> str:
    """``24 Nov 2026``."""
    return f"{day.day} {MONTHS[day.month - 1][:3]} {day.year}"


# --- rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class Marks:
    """Placeholders for per-recipient parts: random, so article text can never forge one."""

    nonce: str

    @classmethod
    def new(cls) -> Marks:
        return cls("pub" + secrets.token_hex(12))

    @property
    def greeting(self) -> str:
        return f"{self.nonce}greeting"

    @property
    def unsubscribe(self) -> str:
        return f"{self.nonce}unsubscribe"

    @property
    def preferences(self) -> str:
        return f"{self.nonce}preferences"

    def fill(self, text: str, values: Mapping[str, str]) -> str:
        """Replace every placeholder in one pass (a value is never searched again)."""
        pattern = re.compile(re.escape(self.nonce) + "(greeting|unsubscribe|preferences)")
        return pattern.sub(lambda match: values[match.group(1)], text)


@dataclass(frozen=True)
class Rendered:
    """A digest's HTML (CSS inlined) and text parts, with placeholders for the recipient."""

    digest: Digest
    html: str
    text: str
    marks: Marks | None

    def personalise(
        self, *, name: str, unsubscribe_url: str, preferences_url: str
    ) -> tuple[str, str]:
        """The HTML and text parts for one recipient."""
        if self.marks is None:
            return self.html, self.text
        greeting = _greeting(name)
        as_html = {
            "greeting": html_lib.escape(greeting),
            "unsubscribe": html_lib.escape(unsubscribe_url),
            "preferences": html_lib.escape(preferences_url),
        }
        as_text = {
            "greeting": greeting,
            "unsubscribe": unsubscribe_url,
            "preferences": preferences_url,
        }
        return self.marks.fill(self.html, as_html), self.marks.fill(self.text, as_text)

    def values(
        self, *, name: str, unsubscribe_url: str, preferences_url: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """What ``personalise`` puts in place of each placeholder, in the HTML and in the
        text, by placeholder (for ``messages.Mold``, which fills only the lines holding one)."""
        if self.marks is None:
            return {}, {}
        marks, greeting = self.marks, _greeting(name)
        as_text = {
            marks.greeting: greeting,
            marks.unsubscribe: unsubscribe_url,
            marks.preferences: preferences_url,
        }
        return {mark: html_lib.escape(value) for mark, value in as_text.items()}, as_text


def _greeting(name: str) -> str:
    return f"Hi {name}," if name else "Hello,"


def render(
    digest: Digest, masthead: Masthead, *, web: bool = False, reserve: int = PERSONAL_RESERVE
) -> Rendered:
    """Render ``digest``; entries are dropped from the end until the HTML fits the limit.

    ``reserve`` bytes are kept free for what ``personalise`` fills in later. ``web``
    renders the public web copy: no greeting and no personal links (with the same budget,
    so it shows the same articles as the messages).
    """
    marks = None if web else Marks.new()
    budget = MAX_HTML_BYTES - reserve

    def attempt(count: int) -> Rendered:
        kept = digest.keep(count)
        context = {"digest": kept, "masthead": masthead, "web": web, "marks": marks}
        page = inline_css(_render_template("digest.html.j2", context))
        return Rendered(kept, page, _render_template("digest.txt.j2", context), marks)

    best = attempt(digest.count)
    if _size(best) <= budget:
        return best
    low, high = 0, digest.count - 1  # the largest count that fits lies in [low, high]
    fitted = None
    while low <= high:
        middle = (low + high) // 2
        candidate = attempt(middle)
        if _size(candidate) <= budget:
            fitted, low = candidate, middle + 1
        else:
            high = middle - 1
    if fitted is None:
        raise DigestError(f"the digest does not fit in {budget} bytes even with no articles")
    log.warning(
        "digest %s: %d of %d articles kept to stay under %d bytes of HTML",
        masthead.period,
        fitted.digest.count,
        digest.count,
        budget,
    )
    return fitted


def personal_reserve(*urls: str) -> int:
    """Room the per-recipient parts can take in the HTML, at worst (every character escaped)."""
    escaped = 6  # the longest escape, '&quot;', per character
    return escaped * (len("Hi ,") + MAX_NAME + sum(len(url) for url in urls)) + 200


def _size(rendered: Rendered) -> int:
    return len(rendered.html.encode("utf-8"))


def _render_template(name: str, context: Mapping[str, Any]) -> str:
    try:
        return environment().get_template(name).render(**context)
    except jinja2.TemplateError as exc:
        raise DigestError(f"template {name}: {exc}") from exc


def inline_css(page: str) -> str:
    """Move the ``<style>`` rules into ``style`` attributes; the ``data-premailer="ignore"``
    block (media queries, dark mode) stays in the head, as clients need it there."""
    from premailer import Premailer  # slow to import; only the digest needs it

    with _premailer_lock:
        try:
            inlined: str = Premailer(
                page,
                allow_network=False,
                allow_loading_external_files=False,
                remove_classes=False,
                strip_important=False,
                keep_style_tags=False,
                disable_validation=True,
                disable_basic_attributes=[
                    "width",
                    "height",
                ],  # the template sets them; "auto" is no size
                cssutils_logging_level=logging.CRITICAL,
            ).transform()
        except Exception as exc:  # premailer raises assorted errors; all mean "cannot inline"
            raise DigestError(f"cannot inline the digest's CSS: {exc}") from exc
    return inlined


@dataclass(frozen=True)
class IndexItem:
    """One past digest on the web copies' index page."""

    period: str
    file: str
    date_label: str
    headline: str
    count: int


def render_index(items: Sequence[IndexItem], masthead: Masthead) -> bytes:
    """The ``digest/index.html`` page: every web copy, newest first."""
    ordered = sorted(items, key=lambda item: item.period, reverse=True)
    page = _render_template("digest_index.html.j2", {"items": ordered, "masthead": masthead})
    return page.encode("utf-8")

"""Hostile and broken input: whatever the documents and names say, the build and the digest
finish, every output parses with a real client, text survives exactly, nothing from an
article becomes live markup or a link that is not http(s), nothing is read or written
outside the tool's folders, and no secret reaches an output or a log line.

Property tests (hypothesis) are bounded by one settings profile (``hostile-input``):
derandomized when ``CI=true`` so a CI run is reproducible.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import operator
import os
import random
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import lxml.etree
import lxml.html
import pytest
import yaml
from conftest import REPO, SECRET, SITE_URL, Raw, make_config, render_article, run_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smtp_helpers import Behaviour, smtp_server

from publisher import digest as digest_module
from publisher import messages
from publisher.config import Config, DigestConfig, SiteConfig
from publisher.digest_run import run_digest, unsubscribe
from publisher.errors import ArticleError
from publisher.feeds import render_atom, render_rss
from publisher.jsonfeed import render_json_feed
from publisher.loader import load_document, load_documents
from publisher.models import Article, Image, Provider, Related
from publisher.pages import render_index_html, render_opml, render_topic_html
from publisher.pipeline import build
from publisher.specs import FeedLink, FeedSpec
from publisher.text import one_line, shorten, xml_safe
from publisher.urls import check_url

CI = os.environ.get("CI", "").lower() == "true"
settings.register_profile(
    "hostile-input",
    max_examples=50,
    deadline=None,
    derandomize=CI,
    database=None if CI else settings.default.database,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
BOUNDED = settings.get_profile("hostile-input")
MANY = settings(BOUNDED, max_examples=150)  # for the cheap, in-memory properties

MAX = 1024 * 1024
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
PASSWORD = "pw-Zq81-must-never-be-logged"
DIGEST_SECRET = "unsubscribe-secret-7c1e5b0a9d-must-never-leak"


# --- what hostile text looks like ------------------------------------------------------------

NASTY = (
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f", "\r",
    "\r\n", "\n", "\t", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff", "\u00a0", "\u3000",
    "\u202e", "\u202d", "\u200f", "\u200e", "\u061c", "\u2066", "שלום עולם", "مرحبا بالعالم",
    "👩\u200d💻", "🏳️\u200d🌈", "🇫🇷", "e\u0301", "Z\u0324\u0354\u0367\u0311a\u0308\u0316",
    "]]>", "<![CDATA[", "]]]]><![CDATA[>", "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>", "<iframe src=javascript:alert(1)></iframe>",
    "<style>*{display:none}</style>", "<object data=x></object>", "<embed src=x>",
    "\"'><svg onload=alert(1)>", "<a href=\"javascript:alert(1)\">x</a>", "javascript:alert(1)",
    "&amp;", "&lt;b&gt;", "&#0;", "&#x1b;", "&#60;script&#62;", "<!--", "-->", "<?xml ?>",
    "{{ 7*7 }}", "{% raw %}", "{site}", "{0}", "%s%n", "${x}", "\\", "\\u0000", "---", "...",
    "\n---\n", "- ", ": ", "#", "&a", "*a", "!!python/object:os.system", "pub0greeting",
    "=?utf-8?q?x?=", "Bcc: x@example.org",
)  # fmt: skip
SURROGATES = ("\ud800", "\udfff", "\udbff\udc00x", "a\ud83d")
LONG = ("A", "é ", "👩\u200d💻", "<b>&amp;</b> ", "\u202eevil ", "word ")


def texts(*, surrogates: bool = False) -> st.SearchStrategy[str]:
    """Short hostile strings, mostly; sometimes very long ones."""
    characters = st.characters(exclude_categories=() if surrogates else ("Cs",))
    pieces = st.one_of(
        st.sampled_from(NASTY + (SURROGATES if surrogates else ())),
        st.text(characters, max_size=12),
    )
    short = st.lists(pieces, max_size=6).map("".join)
    long = st.builds(operator.mul, st.sampled_from(LONG), st.integers(200, 12_000))
    return st.one_of(short, short, short, short, long)


TEXT = texts()
# Values of every type a YAML document can hold, nested.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    TEXT,
    st.dates(),
    st.datetimes(timezones=st.just(UTC)),
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
HOSTS = ("news.example.com", "EXAMPLE.org", "xn--nxasmq6b.example", "a.b.example:8443", "127.0.0.1")
URL_TAIL = st.text(
    st.sampled_from([*"abz09/-._~?#=&%+;:@!$'()*,", '"', "<", ">", "]", "é", "東", "👩", "|"]),
    max_size=24,
)
GOOD_URLS = st.builds(
    lambda scheme, host, tail: f"{scheme}://{host}/{tail}",
    st.sampled_from(["https", "http", "HTTPS"]),
    st.sampled_from(HOSTS),
    URL_TAIL,
)
BAD_URLS = st.sampled_from(
    [
        "javascript:alert('bad-url-1')", "JaVaScRiPt:alert('bad-url-2')",
        " javascript:alert('bad-url-3')", "java\tscript:alert('bad-url-4')",
        "data:text/html;base64,YmFkLXVybC01", "file:///etc/passwd#bad-url-6", "/bad-url-7",
        "bad-url-8.html", "//evil.example/bad-url-9", "https://", "http://[::1/bad-url-10",
        "http://a.example:99999/bad-url-11", "ftp://a.example/bad-url-12", "mailto:bad-url@13.example",
        "vbscript:msgbox('bad-url-14')", "https://exa mple.com/bad-url-15", "http://\x00.example/", "",
    ]
)  # fmt: skip
URLS = st.one_of(GOOD_URLS, GOOD_URLS, BAD_URLS, JUNK)
NUMBERS = st.one_of(
    st.integers(-5, 200),
    st.floats(),
    st.sampled_from(["85", " 85.5 ", "-1", "1e2", "high", "8_5", "٨٥", "0x55", "1e400", "nan", ""]),
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "title": st.one_of(TEXT, TEXT, JUNK),
    "excerpt": st.one_of(TEXT, TEXT, JUNK),
    "webUrl": URLS,
    "originalUrl": URLS,
    "publishedDateTime": st.one_of(
        st.datetimes(
            min_value=datetime(2026, 11, 20),
            max_value=datetime(2026, 11, 24, 6),
            timezones=st.just(UTC),
        ),
        st.sampled_from(
            ["2026-11-24T05:00:00+02:00", "yesterday", "2026-02-30", "9999-12-31T23:59:59-01:00"]
        ),
        JUNK,
    ),
    "quality": st.one_of(NUMBERS, JUNK),
    "heat": st.one_of(NUMBERS, JUNK),
    "published": st.one_of(st.booleans(), st.sampled_from(["true", "false", "yes", "0"]), JUNK),
    "provider": st.one_of(st.fixed_dictionaries({"name": TEXT, "domain": TEXT}), TEXT, JUNK),
    "topics": st.one_of(TEXT, st.lists(TEXT, max_size=4), JUNK),
    "images": st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {"url": URLS},
                optional={
                    "width": st.one_of(st.integers(-5, 5000), JUNK),
                    "height": st.one_of(st.integers(-5, 5000), JUNK),
                    "alt": st.one_of(TEXT, JUNK),
                },
            ),
            max_size=3,
        ),
        JUNK,
    ),
    "related": st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {"title": st.one_of(TEXT, JUNK), "webUrl": URLS},
                optional={"provider": st.one_of(st.fixed_dictionaries({"name": TEXT}), JUNK)},
            ),
            max_size=3,
        ),
        JUNK,
    ),
    "id": st.one_of(
        st.sampled_from(
            [
                "urn:uuid:0d1b",
                "tag:example.org,2026:1",
                "https://example.org/id/1",
                "javascript:alert('bad-url-id')",
                "data:,bad-url-id",
                "http:no-host",
                "no scheme",
            ]
        ),
        JUNK,
    ),
    "secured": st.builds(lambda text: f"{SECRET}/{text}", TEXT),
}


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    """An article's fields: a valid, recent, published one, with some fields made hostile."""
    number = draw(st.integers(0, 10**6))
    url = f"https://news.example.com/{number}"
    fields: dict[str, Any] = {
        "title": f"Story {number}",
        "webUrl": url,
        "publishedDateTime": NOW - timedelta(hours=1),
        "quality": 90,
        "published": True,
        "topics": ["General"],
        "secured": f"{SECRET}/{number}",
    }
    names = draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), unique=True, max_size=6))
    for name in names:
        fields[name] = draw(FIELD_VALUES[name])
    return fields


def document_text(fields: dict[str, Any], body: str = "") -> str:
    """The fields as front matter (any value PyYAML can write), then a body."""
    front = yaml.dump(fields, Dumper=yaml.SafeDumper, allow_unicode=True, sort_keys=False)
    return f"---\n{front}---\n{body}\n"


# --- reading outputs back as their readers do ---------------------------------------------------

SCHEMES = ("http://", "https://")
LIVE = {"script", "iframe", "object", "embed", "frame", "frameset", "applet", "base", "form"}


def assert_web_link(url: str, *, own: tuple[str, ...] = ()) -> None:
    """Only absolute http(s) links leave us; ``own`` names the site's own relative files."""
    assert url.lower().startswith(SCHEMES) or url in own, url
    if url.lower().startswith(SCHEMES):
        assert check_url(url) == "", url


def assert_inert(page: Any, *, own: tuple[str, ...] = ()) -> None:
    """No element, attribute or link from an article can act: parsed, not string-searched."""
    for element in page.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        tag = element.tag.lower()
        assert tag not in LIVE, tag
        if tag == "style":  # ours only: in the head, never in the body
            assert element.getparent().tag == "head"
        if tag == "meta":
            assert (element.get("http-equiv") or "").lower() != "refresh"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (tag, name)
            if name.lower() in ("href", "src", "action", "formaction", "poster", "background"):
                assert_web_link(value.strip(), own=own)
            if name.lower() == "style":
                assert "expression(" not in value and "url(" not in value.lower(), value
    assert len(page.xpath("//style")) <= 2  # the templates' own, nothing more


def read_html(data: bytes) -> Any:
    return lxml.html.document_fromstring(data.decode("utf-8"))


def read_message(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects, message.defects
    for part in message.walk():
        assert not part.defects, part.defects
    return message


@dataclass
class Outputs:
    """What a folder of outputs holds, each file already parsed and checked."""

    feeds: dict[str, Any]
    trees: dict[str, Any]
    json: dict[str, Any]
    pages: dict[str, Any]
    raw: dict[str, bytes]


def check_outputs(folder: Path) -> Outputs:
    """Parse every file in ``folder`` with the client its kind is made for; check its links."""
    found = Outputs({}, {}, {}, {}, {})
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        data = found.raw[name] = path.read_bytes()
        assert SECRET.encode() not in data, name
        if name.endswith((".rss.xml", ".atom.xml")):
            parsed = feedparser.parse(data)
            assert not parsed.bozo, (name, parsed.get("bozo_exception"))
            found.feeds[name] = parsed
            found.trees[name] = tree = lxml.etree.fromstring(data)
            check_feed(tree)
        elif name.endswith(".opml"):
            tree = lxml.etree.fromstring(data)
            for outline in tree.iter("outline"):
                assert_web_link(outline.get("xmlUrl"))
                assert_web_link(outline.get("htmlUrl"))
        elif name.endswith(".json"):
            document = found.json[name] = json.loads(data.decode("utf-8"))
            if isinstance(document, dict) and "items" in document:
                check_json_feed(document)
        elif name.endswith(".html"):
            page = found.pages[name] = read_html(data)
            assert_inert(page, own=("index.html", "index.opml", *_digest_pages(folder, name)))
        else:
            pytest.fail(f"an output of an unknown kind: {name}")
    return found


def _digest_pages(folder: Path, name: str) -> tuple[str, ...]:
    if not name.startswith("digest/"):
        return ()
    return tuple(p.name for p in (folder / "digest").glob("*.html"))


ATOM = "{http://www.w3.org/2005/Atom}"


def check_feed(tree: Any) -> None:
    """Every link http(s), every id a URI of a harmless scheme, the HTML parts inert text."""
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        local = lxml.etree.QName(element).localname
        for attribute in ("href", "url", "src"):
            if element.get(attribute) is not None:
                assert_web_link(element.get(attribute))
        if local == "link" and element.text and element.text.strip():
            assert_web_link(element.text.strip())  # RSS <link>
        if local in ("id", "guid"):
            scheme = (element.text or "").split(":", 1)[0].lower()
            assert scheme in ("urn", "tag", "http", "https"), element.text
        if local in ("description", "summary", "content") and element.getparent().tag in (
            "item",
            f"{ATOM}entry",
            "channel",
        ):
            # HTML for readers: escaped text, so it parses to text and no element at all.
            fragment = lxml.html.fragment_fromstring(element.text or "", create_parent="div")
            assert [child.tag for child in fragment.iter()] == ["div"], element.text


def check_json_feed(document: dict[str, Any]) -> None:
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    for key in ("home_page_url", "feed_url"):
        if key in document:
            assert_web_link(document[key])
    for hub in document.get("hubs", ()):
        assert_web_link(hub["url"])
    for item in document["items"]:
        for key in ("url", "external_url", "image", "banner_image"):
            if key in item:
                assert_web_link(item[key])
        assert "content_html" not in item  # the excerpt is published as text only


def entries_by_id(parsed: Any) -> dict[str, Any]:
    return {entry.id: entry for entry in parsed.entries}


# --- a newsroom in a temporary folder ---------------------------------------------------------


@dataclass
class Sandbox:
    """Seeds, output, outbox and state folders under one root, and the settings naming them."""

    root: Path
    sections: dict[str, dict[str, Any]] | None = None

    @property
    def seeds(self) -> Path:
        return self.root / "seeds"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def state(self) -> Path:
        return self.root / "state" / "state.sqlite"

    @property
    def subscribers(self) -> Path:
        return self.root / "subscribers.yaml"

    def paths(self) -> dict[str, str]:
        return {
            "seeds": str(self.seeds),
            "output": str(self.out),
            "outbox": str(self.outbox),
            "state": str(self.state),
            "subscribers": str(self.subscribers),
        }

    def config(self) -> Config:
        sections = {key: dict(value) for key, value in (self.sections or {}).items()}
        sections["paths"] = {**self.paths(), **sections.get("paths", {})}
        return make_config(**sections)

    def config_file(self, **extra: Any) -> Path:
        data: dict[str, Any] = {"site": {"url": SITE_URL}, "paths": self.paths()}
        for key, value in {**(self.sections or {}), **extra}.items():
            data[key] = {**data.get(key, {}), **value}
        path = self.root / "publisher.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    def subscribe(self, people: list[Any]) -> None:
        self.subscribers.write_text(yaml.safe_dump({"subscribers": people}), encoding="utf-8")


def sandbox(root: Path) -> Sandbox:
    box = Sandbox(root)
    box.seeds.mkdir(parents=True)
    box.subscribe(["ada@example.org", {"email": "grace@example.org", "topics": ["General"]}])
    return box


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.delenv("PUBLISHER_DIGEST_SECRET", raising=False)
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    return sandbox(tmp_path / "sandbox")


@pytest.fixture(scope="module", autouse=True)
def no_secrets_in_the_environment() -> Iterator[None]:
    """The property tests run many examples in one test: no fixture per example."""
    saved = {
        key: os.environ.pop(key, None)
        for key in ("PUBLISHER_DIGEST_SECRET", "PUBLISHER_SMTP_PASSWORD")
    }
    yield
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value


def outbox_messages(folder: Path) -> dict[str, EmailMessage]:
    return {path.name: read_message(path.read_bytes()) for path in sorted(folder.rglob("*.eml"))}


def html_part(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def text_part(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


# --- the loader alone ----------------------------------------------------------------------------


def expected_text(value: object) -> str | None:
    """What a text field becomes, if the loader takes it: one clean line."""
    return one_line(value) if isinstance(value, str) else None


@MANY
@given(fields=documents(), body=TEXT)
def test_any_document_gives_a_clean_article_or_one_rejection(
    fields: dict[str, Any], body: str
) -> None:
    path = Path("seeds/any.txt")
    try:
        article, warnings = load_document(path, document_text(fields, body))
    except ArticleError as error:
        message = str(error)
        assert message.startswith("seeds/any.txt: ") and "\n" not in message
        assert SECRET not in message
        return
    # Every value is clean, of its type, and what the document said.
    for text in (article.title, article.excerpt, *article.topics, article.body):
        assert xml_safe(text) == text
    for text in (article.title, article.excerpt, *article.topics):
        assert one_line(text) == text
    assert article.title and check_url(article.url) == ""
    assert article.id.split(":", 1)[0].lower() in ("urn", "tag", "http", "https")
    assert all(check_url(image.url) == "" for image in article.images)
    assert all(check_url(related.url) == "" for related in article.related)
    assert isinstance(article.published, bool) and article.published_at.utcoffset() == timedelta(0)
    assert SECRET not in repr(article)
    assert article.title == expected_text(fields["title"])
    if isinstance(fields.get("excerpt"), str):
        assert article.excerpt == one_line(fields["excerpt"])
    topics = fields.get("topics")
    if isinstance(topics, str):
        assert article.topics == ((one_line(topics),) if one_line(topics) else ())
    elif isinstance(topics, list):
        assert article.topics == tuple(dict.fromkeys(t for t in map(one_line, topics) if t))
    quality = fields["quality"]
    if isinstance(quality, str):
        assert article.quality == float(quality)  # only plain decimal text gets this far
    else:
        assert isinstance(quality, int | float) and not isinstance(quality, bool)
    for warning in warnings:
        assert str(warning).startswith("seeds/any.txt: ") and "\n" not in str(warning)


@MANY
@given(data=st.binary(max_size=3000))
def test_random_bytes_are_a_rejection_never_a_crash(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "random.txt")
        path.write_bytes(b"---\n" + data if data[:1] == b"-" else data)
        report = load_documents([path], MAX)
    assert report.documents == 1
    assert len(report.rejected) + len(report.articles) == 1
    for error in report.rejected:
        assert str(error).startswith(f"{path}: ") and "\n" not in str(error)


def test_a_document_cut_at_any_byte_is_the_article_or_a_rejection(tmp_path: Path) -> None:
    whole = render_article(title="Grüße, 東京 👩\u200d💻", body="The body.").encode("utf-8")
    path = tmp_path / "cut.txt"
    outcomes: dict[str, int] = {}
    for end in range(len(whole) + 1):
        path.write_bytes(whole[:end])
        report = load_documents([path], MAX)
        assert len(report.rejected) + len(report.articles) == 1, end
        for error in report.rejected:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
            outcomes[error.field] = outcomes.get(error.field, 0) + 1
        for article in report.articles:  # cut in the body, or just after the front matter
            assert article.title == "Grüße, 東京 👩\u200d💻"
    assert {"file", "front matter"} <= set(outcomes)  # a cut character, a cut document


# --- types: converted without doubt, or rejected with the reason ----------------------------------


TYPE_CASES = [
    ("quality", '"85"', ("quality", 85.0)),
    ("quality", '" 85.5 "', ("quality", 85.5)),
    ("quality", '"1e2"', ("quality", 100.0)),
    ("heat", '"12"', ("heat", 12.0)),
    ("heat", "null", ("heat", 0.0)),
    ("quality", '"high"', "quality: expected a number, got text 'high'"),
    ("quality", '"8_5"', "quality: expected a number, got text '8_5'"),
    ("quality", '"٨٥"', "quality: expected a number, got text '٨٥'"),
    ("quality", '"0x55"', "quality: expected a number, got text '0x55'"),
    ("quality", '"Infinity"', "quality: expected a number, got text 'Infinity'"),
    ("quality", '"1e400"', "quality: expected a number, got text '1e400'"),
    ("quality", "null", "quality: missing"),
    ("quality", "[85]", "quality: expected a number, got a list [85]"),
    ("quality", "{value: 85}", "quality: expected a number, got a mapping {'value': 85}"),
    ("published", '"false"', "published: expected true or false, got text 'false'"),
    ("published", '"true"', "published: expected true or false, got text 'true'"),
    ("published", "1", "published: expected true or false, got int 1"),
    ("published", "null", "published: expected true or false, got nothing (null)"),
    ("topics", "AI", ("topics", ("AI",))),
    ("topics", '"AI"', ("topics", ("AI",))),
    ("topics", "null", ("topics", ())),
    ("topics", "[]", ("topics", ())),
    ("topics", "42", "topics: expected a list of topic names, got int 42"),
    ("topics", "[AI, 42]", "topics[1]: expected a topic name, got int 42"),
    ("topics", "[AI, [Space]]", "topics[1]: expected a topic name, got a list ['Space']"),
    ("topics", "[AI, null]", "topics[1]: expected a topic name, got nothing (null)"),
    ("title", "1984", "title: expected text, got int 1984 (put it in quotes to keep it as text)"),
    ("title", "3.10", "title: expected text, got float 3.1 (put it in quotes to keep it as text)"),
    ("title", "2026-01-01", "title: expected text, got date datetime.date(2026, 1, 1) (put it in quotes to keep it as text)"),
    ("title", "null", "title: missing"),
    ("title", "{a: {b: [1, {c: 2}]}}", "title: expected text, got a mapping {'a': {'b': [...]}}"),
    ("excerpt", "null", ("excerpt", "")),
    ("excerpt", "12", "excerpt: expected text, got int 12 (put it in quotes to keep it as text)"),
    ("provider", '"Reuters"', ("provider", Provider("Reuters"))),
    ("provider", "null", ("provider", None)),
    ("provider", "{name: [x]}", "provider: name and domain must be text"),
    ("publishedDateTime", '"yesterday"', "publishedDateTime: expected an ISO 8601 date and time, got text 'yesterday'"),
    ("publishedDateTime", "[2026]", "publishedDateTime: expected an ISO 8601 date and time, got a list [2026]"),
    ("id", '"javascript:alert(1)"', "id: unsafe URI scheme 'javascript' (ids must be urn:, tag:, http or https)"),
    ("id", '"data:,x"', "id: unsafe URI scheme 'data' (ids must be urn:, tag:, http or https)"),
    ("id", "42", "id: expected a URI such as 'urn:uuid:...', got int 42"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value", "expected"), TYPE_CASES)
def test_a_value_of_the_wrong_type_is_converted_without_doubt_or_rejected_with_its_reason(
    field: str, value: str, expected: object
) -> None:
    path = Path("doc.txt")
    text = render_article(**{field: Raw(value)})
    if isinstance(expected, str):
        with pytest.raises(ArticleError) as caught:
            load_document(path, text)
        assert str(caught.value) == f"doc.txt: {expected}"
    else:
        article, _ = load_document(path, text)
        name, converted = expected  # type: ignore[misc]
        attribute = {"publishedDateTime": "published_at"}.get(name, name)
        got = getattr(article, attribute)
        assert got == converted and type(got) is type(converted)


def test_wrong_types_inside_lists_are_dropped_and_reported_not_guessed() -> None:
    text = render_article(
        images=Raw(
            '[42, {url: "https://img.example.com/a.png", width: "640", height: wide},'
            ' {url: {x: 1}}, {url: "https://img.example.com/b.png", width: -3, height: 1.5}]'
        ),
        related=Raw('[{title: 42, webUrl: "https://r.example.com/1"}, "https://r.example.com/2"]'),
    )
    article, warnings = load_document(Path("doc.txt"), text)
    assert [(i.url, i.width, i.height) for i in article.images] == [
        ("https://img.example.com/a.png", 640, None),
        ("https://img.example.com/b.png", None, None),
    ]
    assert article.related == ()
    assert [str(w).removeprefix("doc.txt: ") for w in warnings] == [
        "images[0]: expected a mapping, got int 42; dropped",
        "images[1].height: expected a whole number of pixels, got text 'wide'; ignored",
        "images[2].url: expected a URL, got a mapping {'x': 1}; dropped",
        "images[3].width: expected a whole number of pixels, got int -3; ignored",
        "images[3].height: expected a whole number of pixels, got float 1.5; ignored",
        "related[0].title: missing or not text; related link dropped",
        "related[1]: expected a mapping, got text 'https://r.example.com/2'; dropped",
    ]


# --- YAML that attacks the parser: rejected with a reason, in bounded time and memory ------------

CHILD_MEMORY = 512 * 1024 * 1024
CHILD_TIMEOUT = 30


def _bomb(levels: int, width: int) -> str:
    lines = ['b0: &b0 "lol"']
    for n in range(1, levels + 1):
        lines.append(f"b{n}: &b{n} [" + ", ".join([f"*b{n - 1}"] * width) + "]")
    return "\n".join(lines)


def _merge_bomb(levels: int, width: int) -> str:
    lines = ["m0: &m0 {k0: 0}"]
    for n in range(1, levels + 1):
        refs = ", ".join([f"*m{n - 1}"] * width)
        lines.append(f"m{n}: &m{n} {{<<: [{refs}], k{n}: {n}}}")
    return "\n".join(lines)


ATTACKS = {
    "bomb-in-an-ignored-field.txt": (_bomb(9, 10) + "\nsentiment: *b9\n", "front matter", "alias bomb"),
    "bomb-in-the-title.txt": (_bomb(12, 10) + "\n", "front matter", "alias bomb"),
    "bomb-of-merge-keys.txt": (_merge_bomb(12, 10) + "\n", "front matter", "alias bomb"),
    "quadratic-aliases.txt": (
        "big: &big [" + ", ".join(["x"] * 2000) + "]\nmany: [" + ", ".join(["*big"] * 2000) + "]\n",
        "front matter",
        "alias bomb",
    ),
    "deep-flow.txt": ("sentiment: " + "[" * 200_000 + "]" * 200_000 + "\n", "front matter", "nesting depth"),
    "deep-block.txt": ("sentiment:\n" + "- " * 5000 + "x\n", "front matter", "nesting depth"),
    "deep-mapping.txt": ("".join(" " * n + f"k{n}:\n" for n in range(1100)), "front matter", "nesting depth"),
    "python-object.txt": ('x: !!python/object/apply:os.system ["touch /tmp/pwned"]\n', "front matter", "is not allowed"),
    "python-name.txt": ("x: !!python/name:os.system\n", "front matter", "is not allowed"),
    "python-new.txt": ("x: !!python/object/new:subprocess.Popen [[touch, /tmp/pwned]]\n", "front matter", "is not allowed"),
    "custom-tag.txt": ("x: !shell rm -rf /\n", "front matter", "is not allowed"),
    "huge-number.txt": ("quality: " + "9" * 100_000 + "\n", "front matter", "a number too long to read"),
}  # fmt: skip
VALID = 'title: "Fine"\nwebUrl: "https://fine.example.com/"\npublishedDateTime: 2026-01-01T00:00:00Z\nquality: 90\npublished: true\n'


def test_yaml_attacks_are_rejected_with_a_reason_in_bounded_time_and_memory(tmp_path: Path) -> None:
    """Every attack at once, in a child process limited to 512 MB and 30 s."""
    folder = tmp_path / "seeds"
    folder.mkdir()
    for name, (front, _, _) in ATTACKS.items():
        head = "" if name == "bomb-in-the-title.txt" else VALID
        tail = (
            'title: *b12\nwebUrl: "https://x.example/"\npublishedDateTime: 2026-01-01\nquality: 9\n'
            if name == "bomb-in-the-title.txt"
            else ""
        )
        (folder / name).write_text(f"---\n{head}{front}{tail}---\n", encoding="utf-8")
    (folder / "just-over-the-limit.txt").write_text(
        render_article(body="x" * (MAX - len(render_article()) + 1)), encoding="utf-8"
    )
    with open(folder / "fifty-mebibytes.txt", "wb") as huge:  # sparse: costs no disk
        huge.write(b"---\n")
        huge.truncate(50 * MAX)
    (folder / "fine.txt").write_text(f"---\n{VALID}---\n", encoding="utf-8")
    code = textwrap.dedent(
        f"""
        import json, resource, sys
        from pathlib import Path
        resource.setrlimit(resource.RLIMIT_AS, ({CHILD_MEMORY}, {CHILD_MEMORY}))
        from publisher.loader import load_folder
        report = load_folder(Path({str(folder)!r}), {MAX})
        for article in report.articles:
            print(json.dumps([article.source_path.name, "article", article.title]))
        for error in report.rejected:
            print(json.dumps([error.path.name, error.field, error.reason]))
        """
    )
    try:
        child = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the loader was still busy after {CHILD_TIMEOUT} s")
    assert child.returncode == 0, child.stderr[-3000:]
    outcomes = {
        name: (field, reason) for name, field, reason in map(json.loads, child.stdout.splitlines())
    }
    assert outcomes.pop("fine.txt") == ("article", "Fine")
    assert outcomes.pop("just-over-the-limit.txt") == (
        "file",
        f"larger than the {MAX}-byte limit (input.max_bytes)",
    )
    assert outcomes.pop("fifty-mebibytes.txt") == (
        "file",
        f"larger than the {MAX}-byte limit (input.max_bytes)",
    )
    for name, (_, field, words) in ATTACKS.items():
        got_field, reason = outcomes.pop(name)
        assert (got_field, words in reason) == (field, True), (name, reason)
        assert len(reason) < 200 and "\n" not in reason
    assert outcomes == {}
    assert not Path("/tmp/pwned").exists()


# --- every output parses; text survives; nothing becomes live -------------------------------------


def _check_articles_in_outputs(found: Outputs, articles: list[Article]) -> None:
    """Each selected article's text, read back from every output, is exactly what it was."""
    by_id = {article.id: article for article in articles}
    for name, parsed in found.feeds.items():
        # RSS says nothing of a title's type and feedparser guesses from its text: Atom's
        # titles are declared plain text, so read them through feedparser, RSS's with lxml.
        atom = name.endswith(".atom.xml")
        for entry_id, entry in entries_by_id(parsed).items():
            article = by_id[entry_id]
            if atom:
                assert entry.title == article.title, name
            if article.excerpt:
                html = entry.summary
                text = lxml.html.fragment_fromstring(html, create_parent="div").text_content()
                assert text == article.excerpt, name
            if article.provider is not None and atom:
                assert entry.author == article.provider.name
    for name, tree in found.trees.items():  # links exactly as given (feedparser rewrites some)
        for entry in tree.iter(f"{ATOM}entry"):
            article = by_id[entry.findtext(f"{ATOM}id")]
            (link,) = [
                e for e in entry.iter(f"{ATOM}link") if e.get("rel", "alternate") == "alternate"
            ]
            assert link.get("href") == article.url, name
        for item in tree.iter("item"):
            article = by_id[item.findtext("guid")]
            assert (item.findtext("link"), item.findtext("title")) == (article.url, article.title)
    for name, document in found.json.items():
        for item in document.get("items", ()) if isinstance(document, dict) else ():
            article = by_id[item["id"]]
            assert item["title"] == article.title and item["url"] == article.url, name
    for name, page in found.pages.items():
        if name.startswith("digest/") or name == "index.html":
            continue
        for link in page.xpath("//ol//h2/a"):
            titles = {a.title for a in articles if a.url == link.get("href")}
            assert link.text_content() in titles, name


@BOUNDED
@given(fields=st.lists(documents(), min_size=1, max_size=3))
def test_any_documents_build_and_digest_into_outputs_that_parse(
    fields: list[dict[str, Any]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        box = sandbox(Path(folder))
        for number, values in enumerate(fields):
            (box.seeds / f"{number}.txt").write_text(document_text(values), encoding="utf-8")
        config = box.config()
        result = build(config)
        assert result.report.documents == len(fields)
        found = check_outputs(box.out)
        articles = list(result.selection.articles)
        _check_articles_in_outputs(found, articles)
        everything = found.feeds["all.atom.xml"]
        assert sorted(entries_by_id(everything)) == sorted(a.id for a in articles)
        feed_titles = {tree.findtext(f"{ATOM}title") for tree in found.trees.values()}
        for article in articles:  # each topic's name survives in its feed's title
            assert {f"Publisher: {topic}" for topic in article.topics} <= feed_titles

        outcome = run_digest(config, now=NOW, force=True)
        assert outcome.ok, outcome.summary()
        mail = outbox_messages(box.outbox)
        assert len(mail) == outcome.sent
        digest_titles = {shorten(one_line(a.title), digest_module.MAX_TITLE) for a in articles}
        for message in mail.values():
            page = read_html(html_part(message).encode("utf-8"))
            assert_inert(page, own=())
            shown = [a.text_content() for a in page.xpath("//p[contains(@class, 'title')]/a")]
            assert set(shown) <= digest_titles
            assert "\n" not in str(message["Subject"])
            text = text_part(message)
            assert xml_safe(text) == text
            assert SECRET not in message.as_string()
        check_outputs(box.out)  # the digest's web copy and index too


def hostile_articles(draw: Any, count: int) -> list[Article]:
    text = texts(surrogates=True)
    articles = []
    for number in range(count):
        articles.append(
            Article(
                id=f"urn:uuid:00000000-0000-0000-0000-{number:012d}",
                title=draw(text),
                url=draw(GOOD_URLS),
                published_at=NOW - timedelta(hours=number + 1),
                quality=90.0,
                excerpt=draw(text),
                heat=float(number),
                published=True,
                provider=draw(st.none() | st.builds(Provider, text, text)),
                topics=tuple(draw(st.lists(text, max_size=3))),
                images=tuple(
                    draw(
                        st.lists(
                            st.builds(Image, GOOD_URLS, st.none(), st.none(), text), max_size=2
                        )
                    )
                ),
                related=tuple(
                    draw(st.lists(st.builds(Related, text, GOOD_URLS, text), max_size=2))
                ),
            )
        )
    return articles


@BOUNDED
@given(data=st.data())
def test_articles_made_in_code_with_any_text_render_into_outputs_that_parse(data: Any) -> None:
    """Lone surrogates cannot come through a UTF-8 file: the model takes them straight to the
    feed writers, the pages and the digest renderer, which must still give valid outputs."""
    articles = hostile_articles(data.draw, data.draw(st.integers(1, 3)))
    site = SiteConfig(url=SITE_URL)
    spec = FeedSpec(  # the feed's own title and description come from settings: never empty
        title=xml_safe(data.draw(texts(surrogates=True))).strip() or "Feed",
        description=xml_safe(data.draw(texts(surrogates=True))).strip() or "About",
        rss_url=f"{SITE_URL}t.rss.xml",
        atom_url=f"{SITE_URL}t.atom.xml",
        page_url=f"{SITE_URL}t.html",
        json_url=f"{SITE_URL}t.json",
        articles=articles,
    )
    feed = FeedLink(name=spec.title, slug="t", spec=spec)
    rss, atom = render_rss(spec, site), render_atom(spec, site)
    for data_bytes in (rss, atom):
        parsed = feedparser.parse(data_bytes)
        assert not parsed.bozo, parsed.get("bozo_exception")
        tree = lxml.etree.fromstring(data_bytes)
        check_feed(tree)
    # Exactly the text, but for what XML cannot carry (read with lxml: feedparser trims).
    titles = [e.findtext(f"{ATOM}title") for e in lxml.etree.fromstring(atom).iter(f"{ATOM}entry")]
    assert titles == [xml_safe(a.title) or a.url for a in articles]
    items = lxml.etree.fromstring(rss).iter("item")
    assert [i.findtext("title") for i in items] == [xml_safe(a.title) or a.url for a in articles]
    document = json.loads(render_json_feed(spec, site))
    check_json_feed(document)
    assert [item["title"] for item in document["items"]] == [xml_safe(a.title) for a in articles]
    for page in (
        render_topic_html(spec, site, feed.name),
        render_index_html(site, feed, [feed]),
    ):
        tree = read_html(page)
        assert_inert(tree, own=("index.opml",))
    topic_page = read_html(render_topic_html(spec, site, feed.name))
    assert [a.text_content() for a in topic_page.xpath("//ol//h2/a")] == [
        one_line(a.title) for a in articles
    ]
    lxml.etree.fromstring(render_opml(site, feed, [feed]))

    topics_of = {a.id: a.topics for a in articles}
    composed = digest_module.compose(articles, topics_of, DigestConfig(), UTC)
    masthead = digest_module.Masthead(
        "Site", SITE_URL, "en", "2026-11-24", "Tuesday, 24 November 2026",
        f"{SITE_URL}digest/2026-11-24.html", "Site", "1 Street",
    )  # fmt: skip
    rendered = digest_module.render(composed, masthead)
    html, text = rendered.personalise(
        name=one_line(data.draw(texts(surrogates=True)))[:100],
        unsubscribe_url=f"{SITE_URL}u?t=1",
        preferences_url=f"{SITE_URL}p?t=1",
    )
    page = read_html(html.encode("utf-8"))
    assert_inert(page)
    shown = [a.text_content() for a in page.xpath("//p[contains(@class, 'title')]/a")]
    assert shown == [entry.title for entry in composed.entries]
    titles = {shorten(one_line(a.title), digest_module.MAX_TITLE) for a in articles}
    assert set(shown) <= titles
    letter = messages.Letter(
        sender=Address("Site", addr_spec="digest@example.org"),
        recipient=Address("Reader", addr_spec="reader@example.org"),
        subject=messages.subject_line(
            "{site}: {headline}", site="Site", date="24 Nov", headline=composed.headline,
            count=composed.count,
        ),
        date=NOW,
        message_id="<x@example.org>",
        text=text,
        html=html,
        unsubscribe_url=f"{SITE_URL}u?t=1",
    )  # fmt: skip
    message = read_message(messages.build(letter))
    assert html_part(message).replace("\r\n", "\n") == html.replace("\r\n", "\n")
    assert text_part(message).replace("\r\n", "\n") == text.replace("\r\n", "\n")


# --- links: only http(s) reaches any output ------------------------------------------------------

BAD_LINKS = [
    "javascript:alert('BADLINK1')",
    "JAVASCRIPT:alert('BADLINK2')",
    "data:text/html;base64,QkFETElOSzM=",
    "file:///etc/passwd?BADLINK4",
    "/relative/BADLINK5",
    "BADLINK6.html",
    "//evil.example/BADLINK7",
    "http://[::1/BADLINK8",
    "https://exa mple.com/BADLINK9",
    "vbscript:BADLINK10",
    "https:BADLINK11",
]


def test_only_web_links_reach_any_output(box: Sandbox) -> None:
    good = "https://news.example.com/good"
    (box.seeds / "good.txt").write_text(
        render_article(
            webUrl=good,
            originalUrl=good,
            publishedDateTime=NOW - timedelta(hours=1),
            images=[{"url": url} for url in BAD_LINKS]
            + [{"url": "https://img.example.com/ok.png"}],
            related=[{"title": f"Related {n}", "webUrl": url} for n, url in enumerate(BAD_LINKS)],
        ),
        encoding="utf-8",
    )
    for number, url in enumerate(BAD_LINKS):
        (box.seeds / f"bad-{number}.txt").write_text(
            render_article(webUrl=url, originalUrl=url, publishedDateTime=NOW - timedelta(hours=1)),
            encoding="utf-8",
        )
    result = build(box.config())
    assert sorted(e.path.name for e in result.report.rejected) == sorted(
        f"bad-{n}.txt" for n in range(len(BAD_LINKS))
    )
    assert all(e.field == "webUrl" for e in result.report.rejected)
    dropped = {w.field for w in result.report.warnings}
    assert dropped == {f"images[{n}].url" for n in range(len(BAD_LINKS))} | {
        f"related[{n}].webUrl" for n in range(len(BAD_LINKS))
    }
    (article,) = result.selection.articles
    assert [i.url for i in article.images] == [
        "https://img.example.com/ok.png"
    ] and not article.related
    outcome = run_digest(box.config(), now=NOW)
    assert outcome.sent == 2
    found = check_outputs(box.out)
    every = list(found.raw.values())
    for message in outbox_messages(box.outbox).values():
        assert_inert(read_html(html_part(message).encode("utf-8")))
        for link in str(message["List-Unsubscribe"]).split(","):
            assert_web_link(link.strip().strip("<>"))
        every.append(message.as_bytes())
    for data in every:
        assert b"BADLINK" not in data


# --- HTML: nothing from an article is live markup --------------------------------------------------

PAYLOADS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    "<object data=x></object><embed src=x>",
    "</title><style>body{display:none}</style>",
    "\"'><svg/onload=alert(1)>",
    '<a href="javascript:alert(1)" onclick="x()">click</a>',
    "]]><script>alert(1)</script><![CDATA[",
    "<!--<script>alert(1)</script>-->",
    '<base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=javascript:x">',
]


def test_markup_in_every_field_stays_text_in_every_page_and_feed(box: Sandbox) -> None:
    for number, payload in enumerate(PAYLOADS):
        url = f"https://news.example.com/xss-{number}"
        (box.seeds / f"xss-{number}.txt").write_text(
            render_article(
                title=f"{payload} title",
                excerpt=f"{payload} excerpt",
                webUrl=url,
                originalUrl=url,
                publishedDateTime=NOW - timedelta(hours=number + 1),
                provider={"name": f"{payload} provider", "domain": "evil.example"},
                topics=[f"{payload} topic", "General"],
                images=[{"url": f"https://img.example.com/{number}.png", "alt": payload}],
                related=[{"title": payload, "webUrl": f"https://r.example.com/{number}"}],
            ),
            encoding="utf-8",
        )
    result = build(box.config())
    assert len(result.selection.articles) == len(PAYLOADS)
    found = check_outputs(box.out)
    _check_articles_in_outputs(found, list(result.selection.articles))
    index = found.pages["index.html"]
    assert {f"{p} topic" for p in PAYLOADS} <= {a.text_content() for a in index.xpath("//a")} | {
        td.text_content() for td in index.xpath("//td")
    }
    box.subscribe([{"email": "ada@example.org", "name": "<b>Ada</b><script>x()</script>"}])
    box.sections = {"digest": {"max_per_topic": 20}}
    outcome = run_digest(box.config(), now=NOW)
    assert outcome.sent == 1
    check_outputs(box.out)
    (message,) = outbox_messages(box.outbox).values()
    page = read_html(html_part(message).encode("utf-8"))
    assert_inert(page)
    shown = [a.text_content() for a in page.xpath("//p[contains(@class, 'title')]/a")]
    assert sorted(shown) == sorted(f"{p} title" for p in PAYLOADS)
    assert "Hi <b>Ada</b><script>x()</script>," in page.text_content()


# --- paths: nothing read or written outside the tool's folders -----------------------------------

HOSTILE_NAMES = [
    "../../escaped", "../../../escaped-further", "/tmp/escaped-absolute", "/etc/passwd", "..",
    ".", "a/b", "a\\b", "x\x00y", "~", "$HOME", "%2e%2e%2fescaped", "CON", ".hidden", "index",
    "all", "digest", "\u202e../escaped", "…/…/escaped", "．．/escaped", "",
]  # fmt: skip


def _every_file(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
    }


def test_no_name_or_setting_makes_the_tool_read_or_write_outside_its_folders(
    tmp_path: Path,
) -> None:
    box = sandbox(tmp_path / "sandbox")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(
        render_article(title="OUTSIDE-MARKER", publishedDateTime=NOW - timedelta(hours=1)),
        encoding="utf-8",
    )
    (box.seeds / "link-out.txt").symlink_to(outside / "secret.txt")
    (box.seeds / "folder-out").symlink_to(outside, target_is_directory=True)
    (box.seeds / "passwd.txt").symlink_to("/etc/passwd")
    for number, name in enumerate(HOSTILE_NAMES):
        (
            box.seeds / f"{number:02d}-{name.replace('/', '_').replace(chr(0), '_') or 'empty'}.txt"
        ).write_text(
            render_article(
                title=f"Topic {name!r}",
                topics=[name, f"{name}/x"],
                publishedDateTime=NOW - timedelta(hours=1),
            ),
            encoding="utf-8",
        )
    for odd in ("...txt", "-rf.txt", " .txt", "%2e%2e.txt", "a\\..\\b.txt"):
        (box.seeds / odd).write_text(
            render_article(publishedDateTime=NOW - timedelta(hours=1)), encoding="utf-8"
        )
    box.subscribe(
        [
            {"email": "a/b@example.org", "name": "../../escaped"},
            {"email": "..@example.org"},
            "../../escaped@example.org",
            {"email": "ok@example.org", "topics": ["../../escaped", "/etc/passwd"]},
        ]
    )
    config = box.config_file(
        site={"title": "../../escaped", "description": "/etc/passwd"},
        digest={
            "subject": "{site}/../../{headline}",
            "topics": ["../../escaped", "/etc/passwd"],
            "other_topic": "../../escaped-other",
            "from_name": "../../escaped",
        },
        selection={"topics": {"../../escaped": 10, "/etc/passwd": 10}},
    )
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    before = _every_file(tmp_path)
    parent_before = {p.name for p in tmp_path.parent.iterdir()}
    passwd = Path("/etc/passwd").read_bytes()
    env = {**os.environ, "HOME": str(home), "PUBLISHER_DIGEST_SECRET": DIGEST_SECRET}
    for args in (
        ["build", "--config", config],
        ["check", "--config", config],
        ["digest", "--config", config, "--now", "2026-11-24T07:00:00Z", "--dry-run"],
        ["digest", "--config", config, "--now", "2026-11-24T07:00:00Z"],
        ["digest", "--config", config, "--now", "2026-11-24T08:00:00Z", "--to", "a/b@example.org"],
        ["unsubscribe", "--config", config, "a/b@example.org"],
    ):
        child = run_module(*args, cwd=work, env=env)
        assert child.returncode in (0, 1), (args, child.stderr)
        assert "Traceback" not in child.stderr, child.stderr
    written = _every_file(tmp_path) - before
    allowed = ("sandbox/out/", "sandbox/outbox/", "sandbox/state/")
    assert written and all(name.startswith(allowed) for name in written), sorted(
        n for n in written if not n.startswith(allowed)
    )
    assert {p.name for p in tmp_path.parent.iterdir()} == parent_before
    assert not any(work.iterdir()) and not any(home.iterdir())
    assert not Path("/tmp/escaped-absolute").exists() and Path("/etc/passwd").read_bytes() == passwd
    for name in written:
        data = (tmp_path / name).read_bytes()
        assert b"OUTSIDE-MARKER" not in data and b"root:x:0:0" not in data, name
    sent = sorted(p.name for p in (box.outbox / "2026-11-24").iterdir())
    assert all("/" not in name and not name.startswith(".") for name in sent)


# --- secrets never leave ---------------------------------------------------------------------------


def _secret_values(box: Sandbox) -> list[str]:
    values = [SECRET, PASSWORD, DIGEST_SECRET]
    generated = box.state.with_name("digest-secret")
    if generated.exists():
        values.append(generated.read_text().strip())
    return values


def _files(*folders: Path) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes()
        for folder in folders
        if folder.exists()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_secrets_never_reach_an_output_a_message_or_a_log_line(
    box: Sandbox, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    for number in range(3):
        (box.seeds / f"{number}.txt").write_text(
            render_article(
                publishedDateTime=NOW - timedelta(hours=number + 1), body=f"Body {number}"
            ),
            encoding="utf-8",
        )
    box.subscribe(["ada@example.org", "grace@example.org"])
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", PASSWORD)
    streams: list[str] = []
    with smtp_server(Behaviour(credentials=("digest", PASSWORD))) as (server, port):
        box.sections = {
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "username": "digest",
                     "rate": 0, "retries": 0, "backoff": 0, "timeout": 10},
        }  # fmt: skip
        # In this process, logging at DEBUG, with the secret generated into the state folder.
        build(box.config())
        assert run_digest(box.config(), now=NOW).sent == 2
        token = messages.unsubscribe_token(
            box.state.with_name("digest-secret").read_text().strip().encode(), "ada@example.org"
        )
        assert unsubscribe(box.config(), [token], now=NOW) == [
            (token, "ada@example.org unsubscribed")
        ]
        monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", PASSWORD + "-wrong")
        refused = run_digest(box.config(), now=NOW + timedelta(days=1), force=True)
        assert refused.error and "refused the login" in refused.error
        streams.append(refused.error)
        # In child processes with -v (DEBUG on stderr), the secret from the environment.
        config = box.config_file()
        env = {
            **os.environ,
            "PUBLISHER_SMTP_PASSWORD": PASSWORD,
            "PUBLISHER_DIGEST_SECRET": DIGEST_SECRET,
        }
        for args in (
            ["-v", "build", "--config", config],
            ["-v", "digest", "--config", config, "--now", "2026-11-26T07:00:00Z", "--force"],
            ["-v", "digest", "--config", config, "--now", "2026-11-26T07:00:00Z", "--dry-run"],
            ["-v", "unsubscribe", "--config", config, "--list"],
        ):
            child = run_module(*args, cwd=box.root, env=env)
            assert child.returncode == 0, child.stderr
            streams += [child.stdout, child.stderr]
        assert "DEBUG" in "".join(streams)
        bad_env = {**env, "PUBLISHER_SMTP_PASSWORD": PASSWORD + "-wrong"}
        child = run_module(
            "-v",
            "digest",
            "--config",
            config,
            "--now",
            "2026-11-27T07:00:00Z",
            "--force",
            cwd=box.root,
            env=bad_env,
        )
        assert child.returncode == 1 and "refused the login" in child.stderr
        streams += [child.stdout, child.stderr]
    assert server.recipients()["ada@example.org"] == 1  # unsubscribed after the first
    assert server.recipients()["grace@example.org"] >= 2
    # Every log line of ours (the SMTP server's own log is the test's, not the tool's).
    lines = [caplog.handler.format(r) for r in caplog.records if not r.name.startswith("mail.log")]
    everything = [
        *(data.decode("utf-8", "replace") for data in _files(box.out, box.outbox).values()),
        *(message.data.decode("utf-8", "replace") for message in server.received),
        *streams,
        *lines,
    ]
    assert any(line.split()[1].startswith("publisher.") for line in lines)
    for secret in _secret_values(box):
        for text in everything:
            assert secret not in text
    cache = box.state.with_name("cache.sqlite")
    for stored in (box.state, cache):
        if stored.exists():
            assert SECRET.encode() not in stored.read_bytes()


# --- the corpus of broken documents -----------------------------------------------------------------


def test_the_corpus_names_a_document_for_every_kind_of_attack() -> None:
    corpus = Path(__file__).parent / "corpus" / "bad"
    names = {p.name for p in corpus.iterdir()}
    for kind in (
        "alias-bomb.txt", "alias-bomb-merge-keys.txt", "deep-nesting.txt", "oversized.txt",
        "python-object-tag.txt", "random-bytes.txt", "truncated.txt", "empty-file.txt",
        "not-utf8.txt", "url-javascript.txt", "id-javascript.txt", "quality-not-decimal.txt",
        "title-number.txt", "published-string-false.txt",
    ):  # fmt: skip
        assert kind in names
    assert (corpus / "oversized.txt").stat().st_size > MAX
    assert (corpus / "empty-file.txt").stat().st_size == 0
    random_bytes = (corpus / "random-bytes.txt").read_bytes()
    assert random_bytes == random.Random(5).randbytes(600)


def test_dates_and_times_of_any_kind_are_one_clean_instant_or_a_rejection() -> None:
    cases = {
        Raw("2026-03-01"): datetime(2026, 3, 1, tzinfo=UTC),
        Raw("2026-03-01 12:30:00.123456789"): None,  # nanoseconds: YAML keeps microseconds
        Raw("0001-01-01T00:00:00+01:00"): "publishedDateTime: out of range: 0001-01-01 00:00:00+01:00",
        Raw("9999-12-31T23:59:59-01:00"): "publishedDateTime: out of range: 9999-12-31 23:59:59-01:00",
        "2026-03-01T12:30:00+14:00": datetime(2026, 2, 28, 22, 30, tzinfo=UTC),
    }  # fmt: skip
    for value, expected in cases.items():
        text = render_article(publishedDateTime=value)
        if isinstance(expected, str):
            with pytest.raises(ArticleError) as caught:
                load_document(Path("d.txt"), text)
            assert str(caught.value) == f"d.txt: {expected}"
            continue
        article, _ = load_document(Path("d.txt"), text)
        assert article.published_at.utcoffset() == timedelta(0)
        if expected is not None:
            assert article.published_at == expected


def test_every_guarantee_in_the_readme_names_a_test_that_exists() -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Guarantees\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    short = {"H": "tests/test_hostile_input.py", "F": "tests/test_faults.py"}
    named = re.findall(r"`(?:([HF])|(tests/\w+\.py))::(\w+)`", section)
    assert len(named) >= 15
    for letter, path, name in named:
        source = (REPO / (short[letter] if letter else path)).read_text(encoding="utf-8")
        assert f"\ndef {name}(" in source, f"README names a test that does not exist: {name}"

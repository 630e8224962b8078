"""Topic names -> file-name slugs: safe, never empty, distinct, deterministic."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteArticle, parse_feed
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.slugs import RESERVED, assign_slugs, slugify

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def assert_safe(slug: str) -> None:
    assert SLUG.fullmatch(slug), slug
    assert "/" not in slug and ".." not in slug and slug


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("AI", "ai"),
        ("AI Hardware", "ai-hardware"),
        ("Open Source", "open-source"),
        ("C", "c"),
        ("C++", "c-plus-plus"),
        ("C#", "c-sharp"),
        ("Économie numérique", "economie-numerique"),
        ("Straße", "strasse"),
    ],
)
def test_readable_slugs(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize(
    "name",
    ["", " ", "...", "..", "/", "../../etc/passwd", "a/b", "\\x", "🚀", "日本", "Café 日本", "Ελληνικά",
     "x" * 500, "-lead-and-trail-", "a\u0000b", "C/C++", "İstanbul", "ﬁ", "①②"],
)  # fmt: skip
def test_hostile_names_give_safe_slugs(name: str) -> None:
    assert_safe(slugify(name))


def test_non_ascii_names_keep_a_distinct_readable_slug() -> None:
    slugs = assign_slugs(["日本", "中国", "Ελληνικά", "Русский"])
    assert len(set(slugs.values())) == 4
    for slug in slugs.values():
        assert_safe(slug)


def test_c_cpp_and_csharp_are_three_feeds() -> None:
    slugs = assign_slugs(["C", "C++", "C#"])
    assert len(set(slugs.values())) == 3


@pytest.mark.parametrize("name", ["all", "All", "ALL", "index", "Index", "digest", "Digest"])
def test_reserved_names_are_never_a_topic_slug(name: str) -> None:
    assert {"all", "index", "digest"} <= RESERVED
    slug = assign_slugs([name])[name]
    assert slug not in RESERVED
    assert_safe(slug)


def test_colliding_names_get_distinct_deterministic_slugs() -> None:
    names = ["Foo Bar", "foo-bar", "foo bar", "FOO_BAR", "Foo  Bar!", "...", "🚀", "!!!"]
    first = assign_slugs(names)
    assert len(set(first.values())) == len(names)
    assert assign_slugs(list(reversed(names))) == first
    assert assign_slugs(names * 2) == first
    for slug in first.values():
        assert_safe(slug)


def test_a_name_spelling_another_names_hashed_slug_does_not_collide() -> None:
    # "a." and "a" both slugify to "a"; the second gets a hashed suffix, which a third
    # topic may already spell out literally.
    spelt = "a-" + hashlib.sha256(b"a.").hexdigest()[:8]
    slugs = assign_slugs(["a", "a.", spelt])
    assert len(set(slugs.values())) == 3, slugs


def test_a_name_spelling_a_reserved_names_hashed_slug_does_not_collide() -> None:
    spelt = "ALL-" + hashlib.sha256(b"All").hexdigest()[:8].upper()
    slugs = assign_slugs(["All", spelt])
    assert len(set(slugs.values())) == 2, slugs
    assert not set(slugs.values()) & RESERVED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=12))
def test_any_names_give_safe_distinct_slugs(names: list[str]) -> None:
    slugs = assign_slugs(names)
    assert set(slugs) == set(names)
    assert len(set(slugs.values())) == len(slugs)
    assert not set(slugs.values()) & RESERVED
    for slug in slugs.values():
        assert_safe(slug)
    assert assign_slugs(sorted(names, reverse=True)) == slugs


def test_feeds_are_written_under_their_slugs_and_keep_the_real_name(
    write_article: WriteArticle, run_build: Any, out_dir: Path
) -> None:
    for topic in ["C", "C++", "C#", "all", "Économie numérique", "../escape"]:
        write_article(title=f"About {topic}", topics=[topic])
    run_build()
    names = sorted(p.name for p in out_dir.iterdir() if p.name.endswith(".rss.xml"))
    assert {
        "c.rss.xml",
        "c-plus-plus.rss.xml",
        "c-sharp.rss.xml",
        "economie-numerique.rss.xml",
    } <= set(names)
    assert len(names) == 7  # six topics and the "all" feed
    assert all(p.parent == out_dir for p in out_dir.rglob("*"))
    titles = [parse_feed(out_dir / n).feed.title for n in names]
    for topic in ["C", "C++", "C#", "all", "Économie numérique", "../escape"]:
        assert sum(t.endswith(topic) for t in titles) == 1, (topic, titles)
    all_feed = parse_feed(out_dir / "all.rss.xml")
    assert len(all_feed.entries) == 6  # the topic "all" did not overwrite the feed of everything

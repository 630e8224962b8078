"""The shortcuts taken for speed give exactly what the general code gives."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher import loader, urls
from publisher.text import _XML_ILLEGAL, one_line, xml_safe

URL_PIECES = st.sampled_from(
    ["http://", "https://", "HTTP://", "ftp://", "javascript:", "//", "www.", "WWW.", "Example",
     ".com", "a", "-", ".", "/", "//", "?", "#", "&", "=", "utm_source=x", ":", ":0", ":80",
     ":8080", "@", "[::1]", "%20", " ", "\t", "\n", "\x00", "\x7f", "\xa0", "é", "東京"]
)  # fmt: skip
URLS = st.lists(URL_PIECES, max_size=10).map("".join)


def reference_check_url(value: str) -> str:
    """check_url as it was before the fast path."""
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in value):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"malformed URL ({exc})"
    scheme = parts.scheme.lower()
    if not scheme:
        return "not an absolute URL"
    if scheme not in urls.SAFE_SCHEMES:
        return f"unsafe URL scheme {scheme!r} (only http and https are published)"
    if not parts.hostname:
        return "URL has no host"
    if port == 0:
        return "URL has port 0"
    return ""


def reference_normalize_url(url: str) -> str:
    """normalize_url as it was before the fast path."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{parts.port}"
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not key.startswith("utm_") and key not in {"fbclid", "gclid", "mc_cid", "mc_eid"}
        ]
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https" if scheme == "http" else scheme, host, path, query, ""))


def outcome(function: Any, value: str) -> Any:
    try:
        return function(value)
    except ValueError as exc:
        return ("ValueError", str(exc))


@settings(max_examples=3000, deadline=None)
@given(URLS)
def test_check_url_agrees_with_the_general_check(value: str) -> None:
    assert urls.check_url(value) == reference_check_url(value)


@settings(max_examples=3000, deadline=None)
@given(URLS)
def test_normalize_url_agrees_with_the_general_form(value: str) -> None:
    assert outcome(urls.normalize_url, value) == outcome(reference_normalize_url, value)


def test_the_whitespace_check_is_str_isspace_for_every_character() -> None:
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    flagged = {ch for ch in everything if urls._UNSAFE_CHARACTERS.match(ch)}
    assert flagged == {ch for ch in everything if ch.isspace() or ord(ch) < 0x20 or ch == "\x7f"}


TEXT_PIECES = st.sampled_from(
    ["word", "Wörd", "東京", " ", "  ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "\x85", "\x9f",
     "\xa0", "\xad", "\u200b", "\u2028", "\u3000", "\ud800", "\udfff", "\ufffe", "\uffff",
     "\ue000", "\U0001f600", "\U000e0001", "\u0378", "-", ".", "é"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(TEXT_PIECES, max_size=8).map("".join) | st.text())
def test_clean_text_is_what_one_line_makes_of_it(value: str) -> None:
    assert loader._text(value) == one_line(value)
    if loader._clean_line(value):
        assert one_line(value) == value


def test_no_character_that_one_line_changes_passes_the_check() -> None:
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if loader._clean_line(f"a{ch}b"):
            assert one_line(f"a{ch}b") == f"a{ch}b", hex(code)


def test_xml_safe_drops_exactly_what_the_pattern_names_for_every_character() -> None:
    # xml_safe leaves a printable text alone: no character it must drop is printable.
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        assert xml_safe(f"a{ch}b") == _XML_ILLEGAL.sub("", f"a{ch}b"), hex(code)


@settings(max_examples=2000, deadline=None)
@given(st.lists(TEXT_PIECES, max_size=8).map("".join) | st.text())
def test_xml_safe_is_the_substitution(value: str) -> None:
    assert xml_safe(value) == _XML_ILLEGAL.sub("", value)


YAML_CASES = [
    "title: plain\nquality: 54\nheat: 8.5\npublished: true\nwhen: 2023-07-07T11:07:00Z",
    "day: 2023-07-07\nnothing: ~\nempty:\nhex: 0x1F\nsexagesimal: 1:30\nbig: 1e400\nno: off",
    "base: &b {x: 1, y: [1, 2]}\ncopy: *b",
    "<<: {inherited: 1}\nown: 2",
    "list: &l [1, *l]",
    "tagged: !!str 123\nset: !!set {a, b}\nbinary: !!binary aGVsbG8=",
    "? [complex, key]\n: value",
    "=: value key",
    "bad: 2023-13-45",
    "worse: 2001-01-01 00:00:00 +99:00",
    "dup: 1\ndup: 2",
    "1: int key\n2.5: float key\ntrue: bool key\n2023-01-01: date key\nnull: null key",
    "nested: " + "[" * 300 + "]" * 300,
    "deep:\n" + "".join("  " * i + "- \n" for i in range(1, 60)),
    "- not\n- a mapping",
    "just a scalar",
    "",
    "a: [unclosed",
    "unicode: \"\\u00e9 \\U0001F600 東京\"\nquoted: 'it''s'",
    "multi: |\n  line one\n  line two\nfolded: >\n  folded\n  text",
    # The shortcuts for dates in UTC, whole numbers and repeated words.
    "at: 2023-07-07T24:00:00Z",
    "at: 2023-02-30T10:00:00Z",
    "at: 0000-01-01T00:00:00Z",
    "at: 2023-07-07T11:07:00Z\nsame: 2023-07-07T11:07:00Z\nspaced: 2023-07-07 11:07:00Z",
    "octal: 0123\nzeros: 00\nzero: 0\nsigned: +12\nunderscored: 1_000\nlong: 123456789012345678",
    "arabic: \u0663\nfullwidth: \uff11\nfirst: yes\nagain: yes\nnull_again: ~",
]


@pytest.mark.parametrize("text", YAML_CASES)
def test_the_document_loader_is_the_safe_loader(text: str) -> None:
    assert load(loader.parse_front_matter, text) == load(loader.SafeLoader, text)


def load(kind: Any, text: str) -> str:
    """What a loader class (or a reading function) makes of ``text``, types included."""
    try:
        return typed(yaml.load(text, Loader=kind) if isinstance(kind, type) else kind(text))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def typed(value: Any, seen: frozenset[int] = frozenset()) -> str:
    """A repr that tells 1 from 1.0 and True, and survives self-reference."""
    if id(value) in seen:
        return "<recursive>"
    if isinstance(value, dict):
        inner = seen | {id(value)}
        return (
            "{" + ", ".join(f"{typed(k, inner)}: {typed(v, inner)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | set | tuple):
        inner = seen | {id(value)}
        return type(value).__name__ + "[" + ", ".join(typed(v, inner) for v in value) + "]"
    return f"{type(value).__name__}:{value!r}"


def test_the_seeds_and_a_generated_corpus_load_the_same_either_way(tmp_path: Path) -> None:
    from test_cache import generate

    generate.generate(tmp_path, 200)
    folders = [tmp_path, Path(__file__).resolve().parent.parent / "seeds"]
    for path in (p for folder in folders for p in loader.find_documents(folder)):
        text = path.read_text(encoding="utf-8-sig").split("\n---", 1)[0].removeprefix("---\n")
        assert load(loader.parse_front_matter, text) == load(loader.SafeLoader, text)


def walk_documents(root: Path) -> list[Path]:
    """find_documents as it was: os.walk, then a sort of the paths."""
    top = root.resolve()
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or not name.endswith((".txt", ".md")):
                continue
            path = Path(folder, name)
            if path.is_symlink() and not path.resolve().is_relative_to(top):
                continue
            found.append(path)
    return sorted(found)


def test_find_documents_walks_and_orders_like_os_walk(tmp_path: Path) -> None:
    root = tmp_path / "seeds"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x")
    for name in ["b.txt", "a-c.txt", "a/b.txt", "a/z.md", "a.b/c.txt", ".hidden/x.txt",
                 "d/.x.txt", "d/e/f/g.txt", "d/notes.rst", "A.txt", "é.txt", "2026-11/x.txt"]:  # fmt: skip
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (root / "inside-link.txt").symlink_to(root / "b.txt")
    (root / "outside-link.txt").symlink_to(outside / "secret.txt")
    (root / "linked-folder").symlink_to(outside, target_is_directory=True)
    (root / "broken-link.txt").symlink_to(root / "missing.txt")
    for spelling in (root, Path(os.path.relpath(root)), Path(f"{root}/")):
        assert loader.find_documents(spelling) == walk_documents(spelling)


KEYS = st.sampled_from(["title", "webUrl", "a", "_x", "on", "yes", "null", "true", "Key1", "n"])
PLAIN = st.sampled_from(
    ["54", "0x1F", "012", "0", "1_000", "1:30", "-5", "+5", "-x", ".inf", ".NaN", "~", "null",
     "yes", "Off", "2023-07-07", "2023-07-07T11:07:00Z", "2023-07-07 11:07:00 +02:00",
     "2023-13-45", "a b", "a  b", "a: b", "a #b", "C#", "x:", "- x", "-", "[a]", "{a}", "*a",
     "&a", "!t", "|", ">", "'q'", "@", "`", "%", "?x", ":x", "a,b", "é", "東京", "http://x/y?z=1"]
)  # fmt: skip
SAFE_QUOTED = st.text(alphabet=st.sampled_from(list("ab :#-,'é東")), max_size=6)
ODD_QUOTED = st.text(
    alphabet=st.sampled_from([*'ab"\\\t', "\x85", "\u2028", "\ufeff", "\x01"]), max_size=3
)
QUOTED = st.one_of(SAFE_QUOTED, SAFE_QUOTED, SAFE_QUOTED, ODD_QUOTED).map(lambda text: f'"{text}"')
SCALARS = st.one_of(PLAIN, QUOTED)
PADDING = st.sampled_from(["", "", "", "", "", "", " ", "  ", "\t", "\r"])


@st.composite
def block_documents(draw: Any, depth: int = 0, indent: int = 0) -> list[str]:
    """Lines of block YAML, mostly well formed, sometimes just off."""
    lines: list[str] = []
    step = draw(st.sampled_from([2, 2, 2, 1, 4]))
    for _ in range(draw(st.integers(1, 4))):
        key = draw(KEYS)
        pad = " " * indent + draw(st.sampled_from(["", "", "", "", " "]))
        kind = draw(st.sampled_from(["scalar", "scalar", "map", "list", "empty"]))
        if kind == "scalar" or depth >= 3:
            lines.append(f"{pad}{key}: {draw(SCALARS)}{draw(PADDING)}")
        elif kind == "empty":
            lines.append(f"{pad}{key}:{draw(PADDING)}")
        elif kind == "map":
            lines.append(f"{pad}{key}:")
            lines += draw(block_documents(depth + 1, indent + step))
        else:
            lines.append(f"{pad}{key}:")
            for _ in range(draw(st.integers(1, 3))):
                dash = " " * (indent + draw(st.sampled_from([step, step, 0]))) + "- "
                if draw(st.booleans()):
                    lines.append(dash + draw(SCALARS))
                else:
                    inner = draw(block_documents(depth + 1, len(dash)))
                    lines.append(dash + inner[0].lstrip(" "))
                    lines += inner[1:]
        if draw(st.integers(0, 29)) == 0:
            lines.append(draw(st.sampled_from(["", "   ", "# comment", "  # note", "---", "..."])))
    return lines


@settings(max_examples=300, deadline=None)
@given(block_documents())
def test_the_document_loader_reads_block_documents_as_the_safe_loader(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert load(loader.parse_front_matter, text) == load(loader.SafeLoader, text)


REFERENCE_CLOSING = re.compile(r"^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.M)
FRONT_PIECES = st.sampled_from(
    ["---", "...", "----", "--- x", " ---", "-- -", "\n", "\r\n", " ", "\t", "a: 1", "#", "..."]
)


def reference_split(text: str) -> tuple[int, int] | None:
    """Where the front matter's closing line starts and ends, as the loader found it first."""
    opening = loader._OPENING.match(text)
    if opening is None:
        return None
    closing = REFERENCE_CLOSING.search(text, opening.end())
    return None if closing is None else closing.span()


def split(text: str) -> tuple[int, int] | None:
    opening = loader._OPENING.match(text)
    if opening is None:
        return None
    closing = loader._CLOSING.search(text, opening.end() - 1)
    return None if closing is None else (closing.start() + 1, closing.end())


@settings(max_examples=500, deadline=None)
@given(st.lists(FRONT_PIECES, max_size=12).map("".join))
def test_the_closing_line_is_found_where_it_always_was(rest: str) -> None:
    for opening in ("---\n", "---  \r\n", "--- \t\n"):
        assert split(opening + rest) == reference_split(opening + rest)

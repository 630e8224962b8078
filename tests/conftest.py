"""Shared fixtures: article documents in the exact seeds format, builds, and feed readers."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner, Result

from publisher.cli import main
from publisher.config import Config, parse_config
from publisher.pipeline import BuildResult, build

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SITE_URL = "https://feeds.example.org/news/"
SECRET = "SECRET-BLOB-must-never-be-published"
# The exact order of keys in seeds/000_22cd2ad8bb3a4915.txt, blank lines included.
FIELD_ORDER = (
    "category", "title", "excerpt", "publishedDateTime", "originalUrl", "webUrl", "type",
    "quality", "heat", "published", "", "provider", "", "topics", "", "images", "",
    "related", "", "secured",
)  # fmt: skip
SUMMARY_PATTERN = (
    r"Done: (?P<read>\d+) documents read, (?P<rejected>\d+) rejected, "
    r"(?P<selected>\d+) selected in (?P<topics>\d+) topics; (?P<written>\d+) files written, "
    r"(?P<unchanged>\d+) unchanged, (?P<removed>\d+) removed; (?P<seconds>\d+\.\d\d) s"
)


@dataclass(frozen=True)
class Raw:
    """A YAML value written verbatim, for documents that are broken on purpose."""

    text: str


QUOTED_KEYS = frozenset({"title", "excerpt", "originalUrl", "webUrl", "url", "secured"})
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9 .\-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def yaml_scalar(value: Any, quote: bool = True) -> str:
    """One value as the seeds write it: text quoted (or plain where the seeds leave it so)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        text = value.isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if (
        isinstance(value, str)
        and not quote
        and _PLAIN.fullmatch(value)
        and value.lower() not in _YAML_WORDS
    ):
        return value
    if isinstance(value, str):
        # A JSON string is a valid YAML double-quoted scalar; YAML also wants the
        # characters it cannot carry raw (U+FFFE, DEL, ...) escaped.
        text = json.dumps(value, ensure_ascii=False)
        return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    raise TypeError(f"no YAML form for {value!r}")


def yaml_block(key: str, value: Any, indent: int = 0) -> list[str]:
    """``key: value`` in the block style of the seeds (two-space indents, ``- `` items)."""
    pad = " " * indent
    if isinstance(value, Mapping):
        lines = [f"{pad}{key}:"]
        for sub_key, sub_value in value.items():
            lines += yaml_block(sub_key, sub_value, indent + 2)
        return lines
    if isinstance(value, list | tuple) and value:
        lines = [f"{pad}{key}:"]
        for item in value:
            if isinstance(item, Mapping):
                item_lines: list[str] = []
                for sub_key, sub_value in item.items():
                    item_lines += yaml_block(sub_key, sub_value, indent + 4)
                first = item_lines[0][indent + 4 :]
                lines.append(f"{pad}  - {first}")
                lines += item_lines[1:]
            else:
                lines.append(f"{pad}  - {yaml_scalar(item, quote=False)}")
        return lines
    if isinstance(value, list | tuple):
        return [f"{pad}{key}: []"]
    return [f"{pad}{key}: {yaml_scalar(value, quote=key in QUOTED_KEYS)}"]


_counter = itertools.count(1)


def default_fields(number: int) -> dict[str, Any]:
    """A complete, valid, published article like the seeds, unique by ``number``."""
    url = f"https://news.example.com/{number:04d}/story-{number}"
    return {
        "category": "news",
        "title": f"Story number {number}",
        "excerpt": f"The excerpt of story {number}, a sentence or two about it.",
        "publishedDateTime": datetime.fromisoformat(f"2026-01-01T{number % 24:02d}:00:00+00:00"),
        "originalUrl": url,
        "webUrl": url,
        "type": "article",
        "quality": 70,
        "heat": 12,
        "published": True,
        "provider": {"name": "Example News", "domain": "example.com"},
        "topics": ["General"],
        "images": [
            {
                "url": f"https://img.example.com/{number}.jpg",
                "width": 640,
                "height": 360,
                "isCached": True,
            }
        ],
        "related": [
            {
                "title": f"Related coverage of story {number}",
                "excerpt": "Another outlet's take.",
                "publishedDateTime": datetime.fromisoformat("2026-01-02T08:00:00+00:00"),
                "webUrl": f"https://other.example.net/related/{number}",
                "type": "article",
                "provider": {"name": "Other Outlet", "domain": "other.example.net"},
                "quality": 55,
            }
        ],
        "secured": f"{SECRET}/{number}+AbCd==;XyZ{number}==",
    }


def render_article(body: str = "", **fields: Any) -> str:
    """A document in the exact seeds format; a field set to None is left out."""
    values = default_fields(next(_counter))
    values.update(fields)
    lines = ["---"]
    for key in FIELD_ORDER:
        if key == "":
            if lines[-1] != "":
                lines.append("")
            continue
        if values.get(key) is not None:
            lines += yaml_block(key, values[key])
    for key, value in values.items():  # fields the seeds do not have (e.g. id)
        if key not in FIELD_ORDER and value is not None:
            lines += yaml_block(key, value)
    lines.append("---")
    text = "\n".join(lines) + "\n"
    return text + ("\n" + body + "\n" if body else "")


WriteArticle = Callable[..., Path]


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    return folder


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "feeds"


@pytest.fixture
def write_article(seeds_dir: Path) -> WriteArticle:
    """``write_article(name=None, *, folder=seeds_dir, body="", **fields) -> Path``."""
    names = itertools.count(1)

    def write(
        name: str | None = None, *, folder: Path | None = None, body: str = "", **fields: Any
    ) -> Path:
        path = (folder or seeds_dir) / (name or f"{next(names):03d}_article.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_article(body=body, **fields), encoding="utf-8")
        return path

    return write


def make_config(**sections: Any) -> Config:
    """Settings as a YAML mapping would give them; the site URL is the tests' own."""
    data: dict[str, Any] = {"site": {"url": SITE_URL}}
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data)


@pytest.fixture
def run_build(seeds_dir: Path, out_dir: Path) -> Callable[..., BuildResult]:
    """Build ``seeds_dir`` into ``out_dir`` through the library, with optional settings."""

    def run(config: Config | None = None, **sections: Any) -> BuildResult:
        return build(config or make_config(**sections), seeds=seeds_dir, out=out_dir)

    return run


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Invoke the real click command in-process; stdout and stderr kept apart."""

    def invoke(*args: str | os.PathLike[str]) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def run_module(
    *args: str | os.PathLike[str], cwd: Path, timeout: float = 60, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``python -m publisher ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "publisher", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def parse_feed(path: Path) -> feedparser.FeedParserDict:
    """Read a feed back as a reader would; fails the test on any ``bozo`` problem."""
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, f"{path.name}: {parsed.get('bozo_exception')!r}"
    return parsed


def feed_files(out: Path) -> list[Path]:
    return sorted([*out.glob("*.rss.xml"), *out.glob("*.atom.xml")])


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``folder`` (hidden ones too): bytes, mtime in ns, inode."""
    result = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            info = path.stat()
            result[str(path.relative_to(folder))] = (
                path.read_bytes(),
                info.st_mtime_ns,
                info.st_ino,
            )
    return result


def differences(actual: Mapping[str, bytes], expected: Mapping[str, bytes]) -> str:
    """What differs between two folders' files, short enough to read in a CI log: the
    names missing, extra and changed, and a diff of the first changed file ("" if none)."""
    import difflib

    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    changed = sorted(n for n in actual.keys() & expected.keys() if actual[n] != expected[n])
    if not (missing or extra or changed):
        return ""
    lines = [f"missing: {missing}", f"extra: {extra}", f"changed: {changed}"]
    if changed:
        name = changed[0]
        diff = difflib.unified_diff(
            expected[name].decode("utf-8", "replace").splitlines(),
            actual[name].decode("utf-8", "replace").splitlines(),
            f"expected/{name}",
            f"actual/{name}",
            lineterm="",
        )
        lines.extend(line[:300] for line in itertools.islice(diff, 60))
    return "\n".join(lines)


@contextlib.contextmanager
def held_exclusively(database: Path) -> Iterator[None]:
    """An SQLite database locked (``BEGIN EXCLUSIVE``) by another process until the block ends."""
    hold = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", hold, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        try:
            yield
        finally:
            holder.stdin.close()

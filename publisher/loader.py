"""Article documents -> ``Article`` values, or a precise rejection naming path, field and reason.

A document is YAML front matter between ``---`` lines, optionally followed by a Markdown
body. Everything in it is untrusted: it is parsed with a safe loader, every field goes
through one converter in ``_FIELDS``, and only http(s) links survive.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from publisher.errors import ArticleError
from publisher.models import Article, Image, Provider, Related
from publisher.text import one_line, xml_safe
from publisher.urls import check_url, normalize_url

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DOCUMENT_SUFFIXES = (".txt", ".md")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_ID_NAMESPACE = uuid.NAMESPACE_URL
_URI = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"]+\Z")


@dataclass
class LoadReport:
    """What a folder of documents gave: the usable articles and every problem, in path order."""

    articles: list[Article] = field(default_factory=list)
    rejected: list[ArticleError] = field(default_factory=list)
    warnings: list[ArticleError] = field(default_factory=list)
    documents: int = 0


def find_documents(root: Path) -> list[Path]:
    """Every ``.txt``/``.md`` file under ``root``, sorted; links leading outside are ignored."""
    top = root.resolve()
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.endswith(DOCUMENT_SUFFIXES):
                continue
            path = Path(folder, name)
            if path.is_symlink() and not path.resolve().is_relative_to(top):
                continue
            found.append(path)
    return sorted(found)


def load_folder(root: Path, max_bytes: int) -> LoadReport:
    """Load every document under ``root``; a broken one is reported, never fatal."""
    return load_documents(find_documents(root), max_bytes)


def load_documents(paths: Iterable[Path], max_bytes: int) -> LoadReport:
    """Load ``paths`` in order; see ``load_document``."""
    report = LoadReport()
    for path in paths:
        report.documents += 1
        try:
            article, warnings = load_document(path, read_document(path, max_bytes))
        except ArticleError as error:
            report.rejected.append(error)
            continue
        report.articles.append(article)
        report.warnings.extend(warnings)
    return report


def read_document(path: Path, max_bytes: int) -> str:
    """The document's text, refusing files too large or not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ArticleError(path, "file", f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ArticleError(
            path, "file", f"larger than the {max_bytes}-byte limit (input.max_bytes)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleError(path, "file", f"not UTF-8 text (byte {exc.start})") from exc


def load_document(path: Path, text: str) -> tuple[Article, list[ArticleError]]:
    """Parse one document; returns the article and the problems that did not stop it."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ArticleError(
            path,
            "front matter",
            "missing: the file must start with a '---' line and close it with another",
        )
    try:
        data = yaml.load(match.group(1), Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise ArticleError(path, "front matter", f"not valid YAML ({_yaml_reason(exc)})") from None
    except RecursionError:
        raise ArticleError(path, "front matter", "nested too deeply") from None
    if not isinstance(data, dict):
        raise ArticleError(
            path, "front matter", f"expected a mapping of fields, got {_describe(data)}"
        )
    fields = _Fields(path, data)
    url = fields.url()
    article = Article(
        id=fields.article_id(url),
        title=fields.required_text("title"),
        url=url,
        published_at=fields.timestamp("publishedDateTime"),
        quality=fields.number("quality", required=True),
        excerpt=fields.optional_text("excerpt"),
        heat=fields.number("heat", required=False),
        published=fields.flag("published"),
        provider=fields.provider("provider"),
        topics=fields.topics("topics"),
        images=fields.images("images"),
        related=fields.related("related"),
        body=xml_safe(text[match.end() :]).strip(),
        source_path=path,
    )
    return article, fields.warnings


class _Fields:
    """Converters for front-matter fields: each returns a clean value or raises ArticleError."""

    def __init__(self, path: Path, data: dict[Any, Any]) -> None:
        self.path = path
        self.data = data
        self.warnings: list[ArticleError] = []

    def fail(self, name: str, reason: str) -> ArticleError:
        return ArticleError(self.path, name, reason)

    def warn(self, name: str, reason: str) -> None:
        self.warnings.append(ArticleError(self.path, name, reason))

    def required_text(self, name: str) -> str:
        value = self.data.get(name)
        if value is None:
            raise self.fail(name, "missing")
        text = _text(value)
        if text is None:
            raise self.fail(name, f"expected text, got {_describe(value)}")
        if not text:
            raise self.fail(name, "empty")
        return text

    def optional_text(self, name: str) -> str:
        value = self.data.get(name)
        if value is None:
            return ""
        text = _text(value)
        if text is None:
            raise self.fail(name, f"expected text, got {_describe(value)}")
        return text

    def url(self) -> str:
        for name in ("webUrl", "originalUrl"):
            value = self.data.get(name)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise self.fail(name, f"expected a URL, got {_describe(value)}")
            reason = check_url(value.strip())
            if reason:
                raise self.fail(name, reason)
            return value.strip()
        raise self.fail("webUrl", "missing (neither webUrl nor originalUrl is set)")

    def article_id(self, url: str) -> str:
        """A stable id: from the story's URL, so edits to title, date or file name keep it."""
        value = self.data.get("id")
        if value is not None:
            if not isinstance(value, str) or not _URI.match(value.strip()):
                raise self.fail(
                    "id", f"expected a URI such as 'urn:uuid:...', got {_describe(value)}"
                )
            return xml_safe(value.strip())
        return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, normalize_url(url))}"

    def timestamp(self, name: str) -> datetime:
        value = self.data.get(name)
        if value is None:
            raise self.fail(name, "missing")
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time())
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(
                    name, f"expected an ISO 8601 date and time, got {_describe(value)}"
                ) from None
        else:
            raise self.fail(name, f"expected an ISO 8601 date and time, got {_describe(value)}")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.fail(name, f"out of range: {value}") from None

    def number(self, name: str, *, required: bool) -> float:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "missing")
            return 0.0
        number = _number(value)
        if number is None:
            raise self.fail(name, f"expected a number, got {_describe(value)}")
        return number

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {_describe(value)}")
        return value

    def provider(self, name: str) -> Provider | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return Provider(one_line(value)) if one_line(value) else None
        if not isinstance(value, dict):
            raise self.fail(
                name, f"expected a mapping with name and domain, got {_describe(value)}"
            )
        provider_name = _text(value.get("name") or "")
        domain = _text(value.get("domain") or "")
        if provider_name is None or domain is None:
            raise self.fail(name, "name and domain must be text")
        if not provider_name and not domain:
            return None
        return Provider(provider_name or domain, domain)

    def topics(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise self.fail(name, f"expected a list of topic names, got {_describe(value)}")
        topics: dict[str, None] = {}
        for index, item in enumerate(items):
            topic = _text(item)
            if topic is None:
                raise self.fail(f"{name}[{index}]", f"expected a topic name, got {_describe(item)}")
            if topic:
                topics[topic] = None
        return tuple(topics)

    def images(self, name: str) -> tuple[Image, ...]:
        images = []
        for index, item in self._entries(name):
            where = f"{name}[{index}]"
            url = self._link(f"{where}.url", item.get("url"))
            if url is None:
                continue
            alt = _text(item.get("alt") or item.get("caption") or "")
            images.append(
                Image(
                    url=url,
                    width=self._dimension(f"{where}.width", item.get("width")),
                    height=self._dimension(f"{where}.height", item.get("height")),
                    alt=alt or "",
                )
            )
        return tuple(images)

    def related(self, name: str) -> tuple[Related, ...]:
        related = []
        for index, item in self._entries(name):
            where = f"{name}[{index}]"
            raw_url = item.get("webUrl") or item.get("originalUrl")
            url = self._link(f"{where}.webUrl", raw_url)
            title = _text(item.get("title"))
            if url is None:
                continue
            if not title:
                self.warn(f"{where}.title", "missing or not text; related link dropped")
                continue
            provider = item.get("provider")
            provider_name = _text(provider.get("name")) if isinstance(provider, dict) else None
            related.append(Related(title=title, url=url, provider=provider_name or ""))
        return tuple(related)

    def _entries(self, name: str) -> Iterator[tuple[int, dict[Any, Any]]]:
        value = self.data.get(name)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list, got {_describe(value)}")
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item
            else:
                self.warn(f"{name}[{index}]", f"expected a mapping, got {_describe(item)}; dropped")

    def _link(self, where: str, value: object) -> str | None:
        if not isinstance(value, str):
            self.warn(where, f"expected a URL, got {_describe(value)}; dropped")
            return None
        reason = check_url(value.strip())
        if reason:
            self.warn(where, f"{reason}; dropped")
            return None
        return value.strip()

    def _dimension(self, where: str, value: object) -> int | None:
        if value is None:
            return None
        number = _number(value)
        if number is None or number != int(number) or not 0 < number <= 100_000:
            self.warn(where, f"expected a whole number of pixels, got {_describe(value)}; ignored")
            return None
        return int(number)


def _text(value: object) -> str | None:
    """Clean one-line text, or None when ``value`` is not text."""
    return one_line(value) if isinstance(value, str) else None


def _number(value: object) -> float | None:
    """A finite number; numeric strings such as "85" are taken, words and booleans are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean"}.get(type(value))
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind or type(value).__name__} {text}"


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 2}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"

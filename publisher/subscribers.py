"""Who gets the digest: a YAML or CSV file of addresses, names and optional topics.

A bad entry never stops a run: it is reported as ``<path>: <line N>: <reason>`` and
skipped. The same address twice (ignoring case) is one subscriber, the first entry wins.
Addresses are checked strictly enough that nothing which could break a mail header
(newlines, angle brackets, quoted local parts) ever reaches one.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from publisher.errors import SubscriberError
from publisher.text import one_line

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_NAME = 100
MAX_FILE_BYTES = 20 * 1024 * 1024
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_FIELDS = ("email", "name", "topics")


@dataclass(frozen=True)
class Subscriber:
    """One recipient; ``topics`` None means every topic."""

    email: str
    name: str = ""
    topics: frozenset[str] | None = None

    @property
    def key(self) -> str:
        """The address as the state store and duplicate check see it."""
        return self.email.lower()

    def wants(self) -> frozenset[str] | None:
        """The topics this subscriber asked for, case-folded, or None for all of them."""
        return None if self.topics is None else frozenset(t.casefold() for t in self.topics)


@dataclass
class SubscriberList:
    """The usable subscribers in file order, and every entry that was skipped (with why)."""

    subscribers: list[Subscriber] = field(default_factory=list)
    problems: list[SubscriberError] = field(default_factory=list)


def check_address(value: str) -> str:
    """The reason ``value`` is not a plain ``local@domain`` address we can send to, or ''."""
    if not value or len(value) > 254:
        return "empty" if not value else "longer than 254 characters"
    if not value.isascii():
        return "non-ASCII addresses are not supported (write the domain in its xn-- form)"
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return "expected an address such as name@example.org"
    if len(local) > 64:
        return "the part before @ is longer than 64 characters"
    if not _LOCAL.fullmatch(local):
        return "the part before @ has characters that are not allowed"
    labels = domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return f"invalid domain {domain!r}"
    return ""


def load_subscribers(path: Path) -> SubscriberList:
    """Read ``path`` (``.yaml``/``.yml`` or ``.csv``); raises SubscriberError if it cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".csv"):
        raise SubscriberError(path, "file", "expected a .yaml, .yml or .csv file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SubscriberError(path, "file", f"larger than {MAX_FILE_BYTES} bytes")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise SubscriberError(
            path, "file", "not found (create it, or point paths.subscribers at your list)"
        ) from None
    except OSError as exc:
        raise SubscriberError(path, "file", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SubscriberError(path, "file", f"not UTF-8 text (byte {exc.start})") from exc
    entries = _csv_entries(path, text) if suffix == ".csv" else _yaml_entries(path, text)
    result = SubscriberList()
    first_line: dict[str, str] = {}
    for where, entry in entries:
        try:
            subscriber = _subscriber(path, where, entry, result.problems)
        except SubscriberError as problem:
            result.problems.append(problem)
            continue
        earlier = first_line.get(subscriber.key)
        if earlier is not None:
            reason = f"duplicate of {subscriber.email} ({earlier}); skipped"
            result.problems.append(SubscriberError(path, where, reason))
            continue
        first_line[subscriber.key] = where
        result.subscribers.append(subscriber)
    return result


def _yaml_entries(path: Path, text: str) -> Iterator[tuple[str, object]]:
    """``(line N, entry)`` for each item of the list (top level, or under ``subscribers:``)."""
    try:
        data = yaml.load(text, Loader=SafeLoader)  # a safe loader
        root = yaml.compose(text, Loader=SafeLoader)  # the same, for line numbers
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SubscriberError(path, where, f"not valid YAML ({problem})") from None
    if data is None:
        return
    node = root
    if isinstance(data, dict) and isinstance(root, yaml.MappingNode):
        if set(data) != {"subscribers"}:
            raise SubscriberError(
                path, "file", "expected a list, or a mapping with only 'subscribers:'"
            )
        data = data["subscribers"]
        node = root.value[0][1]
    if data is None:
        return
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        raise SubscriberError(path, "file", "expected a list of subscribers")
    for item, item_node in zip(data, node.value, strict=True):
        yield f"line {item_node.start_mark.line + 1}", item


def _csv_entries(path: Path, text: str) -> Iterator[tuple[str, object]]:
    """``(line N, row)`` for each data row; the header names the columns (email, name, topics)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or ()]
    if "email" not in header:
        raise SubscriberError(path, "line 1", "the header row must name an 'email' column")
    reader.fieldnames = header
    for row in reader:
        entry: dict[str, Any] = {k: v for k, v in row.items() if k is not None}
        if None in row:
            entry[None] = row[None]  # type: ignore[index]
        topics = entry.get("topics")
        if isinstance(topics, str):
            entry["topics"] = [t for t in (part.strip() for part in topics.split(";")) if t] or None
        if entry.get("name") == "":
            entry.pop("name")
        yield f"line {reader.line_num}", entry


def _subscriber(
    path: Path, where: str, entry: object, problems: list[SubscriberError]
) -> Subscriber:
    if isinstance(entry, str):
        entry = {"email": entry}
    if not isinstance(entry, dict):
        raise SubscriberError(path, where, "expected an address or a mapping with 'email'")
    for key in entry:
        if key not in _FIELDS:
            reason = (
                "more columns than the header names"
                if key is None
                else f"unknown field {key!r} ignored (known: {', '.join(_FIELDS)})"
            )
            problems.append(SubscriberError(path, where, reason))
    email = entry.get("email")
    if not isinstance(email, str):
        raise SubscriberError(
            path, where, "missing 'email'" if email is None else "'email' must be text"
        )
    email = email.strip()
    reason = check_address(email)
    if reason:
        raise SubscriberError(path, where, f"invalid address {email!r}: {reason}; skipped")
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise SubscriberError(path, where, "'name' must be text")
    name = one_line(name)[:MAX_NAME]
    return Subscriber(email=email, name=name, topics=_topics(path, where, entry.get("topics")))


def _topics(path: Path, where: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise SubscriberError(path, where, "'topics' must be a list of topic names")
    topics = frozenset(one_line(item) for item in items if one_line(item))
    return topics or None

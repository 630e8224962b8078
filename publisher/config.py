"""Frozen, typed settings, read once from ``publisher.yaml`` and checked before any work starts.

Every setting has a built-in default, so the tool runs with no config file at all. Each
section is a dataclass; the YAML is converted through the dataclasses' type hints, so a
misspelt key or a value of the wrong kind is reported with its dotted key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from publisher.errors import ConfigError
from publisher.urls import check_url

DEFAULT_CONFIG_NAME = "publisher.yaml"


def _absolute_dir_url(value: str) -> str:
    reason = check_url(value)
    if reason:
        raise ValueError(reason)
    return value if value.endswith("/") else value + "/"


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _quality(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


def _language(value: str) -> str:
    if not value or not all(part.isalnum() and part.isascii() for part in value.split("-")):
        raise ValueError(f"expected a language tag such as 'en' or 'en-GB', got {value!r}")
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (expected an IANA name such as 'Europe/London')"
        ) from None
    return value


def _checked(check: Callable[[Any], Any], **kwargs: Any) -> Any:
    return field(metadata={"check": check}, **kwargs)


@dataclass(frozen=True)
class SiteConfig:
    """Who publishes: used in every feed's channel and in the digest."""

    url: str = _checked(_absolute_dir_url, default="http://localhost:8000/")
    title: str = "Publisher"
    description: str = "The latest articles, by topic."
    language: str = _checked(_language, default="en")


@dataclass(frozen=True)
class PathsConfig:
    """Folders and files; relative paths are taken from the config file's folder."""

    seeds: Path = Path("seeds")
    output: Path = Path("feeds")
    outbox: Path = Path("outbox")
    state: Path = Path(".publisher/state.sqlite")


@dataclass(frozen=True)
class InputConfig:
    """Limits on article documents, which are untrusted."""

    max_bytes: int = _checked(_positive, default=1024 * 1024)


@dataclass(frozen=True)
class SelectionConfig:
    """Which articles are published."""

    min_quality: float = _checked(_quality, default=50.0)
    topics: Mapping[str, float] = field(default_factory=lambda: types.MappingProxyType({}))

    def threshold(self, topic: str) -> float:
        """The quality an article needs to appear under ``topic``."""
        return self.topics.get(topic, self.min_quality)


@dataclass(frozen=True)
class FeedsConfig:
    """Shape of the generated feeds."""

    max_items: int = _checked(_positive, default=50)


@dataclass(frozen=True)
class ScheduleConfig:
    """When the service runs each job; also the time zone in which a digest's day is counted."""

    timezone: str = _checked(_timezone, default="UTC")


@dataclass(frozen=True)
class Config:
    """All settings; each stage is handed only the section it needs."""

    site: SiteConfig = field(default_factory=SiteConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    input: InputConfig = field(default_factory=InputConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    source: Path | None = None


def load_config(path: Path | None) -> Config:
    """Read ``path`` (or ``./publisher.yaml`` if it exists, else the defaults)."""
    if path is None:
        default = Path(DEFAULT_CONFIG_NAME)
        if not default.is_file():
            return Config()
        path = default
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("(file)", f"cannot read config: {exc}", path) from exc
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError("(file)", f"not valid YAML: {exc}", path) from exc
    if data is None:
        data = {}
    return parse_config(data, base_dir=path.parent, source=path)


def parse_config(data: object, base_dir: Path = Path(), source: Path | None = None) -> Config:
    """Turn a YAML mapping into a ``Config``; relative paths are resolved against ``base_dir``."""
    try:
        config = _convert(Config, data, "", base_dir)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.reason, source) from None
    result: Config = dataclasses.replace(config, source=source)
    return result


def _convert(kind: Any, value: object, key: str, base_dir: Path) -> Any:
    """Convert ``value`` to ``kind`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _convert_section(kind, value, key, base_dir)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return None if value is None else _convert(options[0], value, key, base_dir)
    if origin in (Mapping, dict):
        key_kind, value_kind = typing.get_args(kind)
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {_describe(value)}")
        return types.MappingProxyType(
            {
                _convert(key_kind, k, f"{key}.{k}", base_dir): _convert(
                    value_kind, v, f"{key}.{k}", base_dir
                )
                for k, v in value.items()
            }
        )
    if origin is tuple:
        (item_kind, _ellipsis) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {_describe(value)}")
        return tuple(
            _convert(item_kind, item, f"{key}[{i}]", base_dir) for i, item in enumerate(value)
        )
    return _convert_scalar(kind, value, key, base_dir)


def _convert_section(kind: type, value: object, key: str, base_dir: Path) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(key or "(top level)", f"expected a mapping, got {_describe(value)}")
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind) if f.name != "source"}
    for name in value:
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(_join(key, str(name)), f"unknown setting (known here: {known})")
    kwargs = {}
    for name, spec in fields.items():
        if name not in value:
            continue
        sub_key = _join(key, name)
        converted = _convert(hints[name], value[name], sub_key, base_dir)
        check = spec.metadata.get("check")
        if check is not None:
            try:
                converted = check(converted)
            except ValueError as exc:
                raise ConfigError(sub_key, str(exc)) from None
        kwargs[name] = converted
    return kind(**kwargs)


def _convert_scalar(kind: Any, value: object, key: str, base_dir: Path) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {_describe(value)}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected a whole number, got {_describe(value)}")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(key, f"expected a number, got {_describe(value)}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected text, got {_describe(value)}")
    if kind is Path:
        if not isinstance(value, str) or not value or "\x00" in value:
            raise ConfigError(key, f"expected a path, got {_describe(value)}")
        return base_dir / value
    raise TypeError(f"no converter for {kind!r} at {key}")  # a bug in this module, not input


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"

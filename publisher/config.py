"""Frozen, typed settings, read once from ``publisher.yaml`` and checked before any work starts.

Every setting has a built-in default, so the tool runs with no config file at all. Each
section is a dataclass; the YAML is converted through the dataclasses' type hints, so a
misspelt key or a value of the wrong kind is reported with its dotted key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from publisher.errors import ConfigError
from publisher.text import describe, one_line, xml_safe
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
    import zoneinfo  # here: only a config that names a zone needs it (a few ms at start)

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (expected an IANA name such as 'Europe/London')"
        ) from None
    return value


def _non_negative(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be zero or more, got {value}")
    return value


def _positive_number(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be more than zero, got {value}")
    return value


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(
            f"expected a port number from 1 to 65535 (or 0 for the default), got {value}"
        )
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _hub_url(value: str) -> str:
    reason = check_url(value) if value else ""
    if reason:
        raise ValueError(f"{reason}; expected the http(s) URL of a WebSub hub, or '' for none")
    return value


def _optional_address(value: str) -> str:
    from publisher.subscribers import check_address  # here: rarely set, a few ms at start

    reason = check_address(value) if value else ""
    if reason:
        raise ValueError(reason)
    return value


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"expected the name of an environment variable, got {value!r}")
    return value


def _template(fields: tuple[str, ...], *, url: bool = False) -> Callable[[str], str]:
    """A ``str.format`` template that may use only ``fields``; checked once, at load."""

    def check(value: str) -> str:
        if url and not value:
            return value
        if len(value) > 500:
            raise ValueError("longer than 500 characters")
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc})") from None
        for name in names:
            if name not in fields:
                known = ", ".join("{" + f + "}" for f in fields)
                raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
        sample = value.format(
            **{name: "https://example.org/" if name == "site_url" else "x" for name in fields}
        )
        if url:
            reason = check_url(sample)
            if reason:
                raise ValueError(f"does not give a usable link: {reason}")
        return value

    return check


def _crontab(value: str) -> str:
    from publisher.crontab import CrontabError, parse_crontab  # here: see _timezone

    try:
        parse_crontab(value)
    except CrontabError as exc:
        raise ValueError(f"not a valid crontab expression: {exc}") from None
    return value


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``6h``, ``1d`` or combinations such as ``1h30m``, as a timedelta."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise ValueError(f"expected a duration such as 30s, 5m, 6h, 1d or 1h30m, got {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _sender_name(value: str) -> str:
    """Text that becomes the display name in the digest's From header: one line."""
    if _LINE_BREAKS.search(value):
        raise ValueError("must be one line (it is the sender's name in the digest's From header)")
    return value


def _site_title(value: str) -> str:
    return _sender_name(_not_blank(value))


def _checked(check: Callable[[Any], Any], **kwargs: Any) -> Any:
    return field(metadata={"check": check}, **kwargs)


@dataclass(frozen=True)
class SiteConfig:
    """Who publishes: used in every feed's channel and in the digest."""

    url: str = _checked(_absolute_dir_url, default="http://localhost:8000/")
    title: str = _checked(_site_title, default="Publisher")
    description: str = _checked(_not_blank, default="The latest articles, by topic.")
    language: str = _checked(_language, default="en")


@dataclass(frozen=True)
class PathsConfig:
    """Folders and files; relative paths are taken from the config file's folder."""

    seeds: Path = Path("seeds")
    output: Path = Path("feeds")
    outbox: Path = Path("outbox")
    state: Path = Path(".publisher/state.sqlite")
    subscribers: Path = Path("subscribers.yaml")


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
class MisfireGraceConfig:
    """How late a missed run (service down, or busy) may still start; a later one is skipped."""

    feeds: timedelta = _checked(_positive_duration, default=timedelta(minutes=5))  # noqa: RUF009 (a field)
    digest: timedelta = _checked(_positive_duration, default=timedelta(hours=6))  # noqa: RUF009 (a field)


@dataclass(frozen=True)
class ScheduleConfig:
    """When the service runs each job; also the time zone in which a digest's day is counted."""

    timezone: str = _checked(_timezone, default="UTC")
    feeds: str = _checked(_crontab, default="*/15 * * * *")
    digest: str = _checked(_crontab, default="0 7 * * *")
    misfire_grace: MisfireGraceConfig = field(default_factory=MisfireGraceConfig)
    # What a run does when the same job is already running (in this or another process).
    overlap: str = _checked(_one_of("wait", "skip"), default="wait")
    overlap_timeout: timedelta = _checked(_positive_duration, default=timedelta(minutes=10))  # noqa: RUF009 (a field)


URL_FIELDS = ("site_url", "token")
SUBJECT_FIELDS = ("site", "date", "headline", "count")


@dataclass(frozen=True)
class DigestConfig:
    """What the email digest holds, who it comes from, and the links every message carries."""

    from_address: str = _checked(_optional_address, default="")  # "" = digest@<site host>
    from_name: str = _checked(_sender_name, default="")  # "" = site.title
    reply_to: str = _checked(_optional_address, default="")
    subject: str = _checked(_template(SUBJECT_FIELDS), default="{site}, {date}: {headline}")
    postal_address: str = ""
    unsubscribe_url: str = _checked(
        _template(URL_FIELDS, url=True), default="{site_url}unsubscribe?token={token}"
    )
    unsubscribe_mailto: str = _checked(_optional_address, default="")
    preferences_url: str = _checked(
        _template(URL_FIELDS, url=True), default="{site_url}preferences?token={token}"
    )
    secret_env: str = _checked(_env_name, default="PUBLISHER_DIGEST_SECRET")
    topics: tuple[str, ...] = ()
    other_topic: str = "More stories"
    max_items: int = _checked(_positive, default=20)
    max_per_topic: int = _checked(_positive, default=5)
    min_articles: int = _checked(_positive, default=1)
    max_age_days: int = _checked(_positive, default=14)
    first_window_hours: int = _checked(_positive, default=24)
    excerpt_chars: int = _checked(_positive, default=240)


@dataclass(frozen=True)
class SmtpConfig:
    """The mail server; with no host the digest is written to ``paths.outbox`` instead."""

    host: str = ""
    port: int = _checked(_port, default=0)  # 0 = 587 for starttls, 465 for tls, 25 for none
    security: str = _checked(_one_of("starttls", "tls", "none"), default="starttls")
    username: str = ""
    password_env: str = _checked(_env_name, default="PUBLISHER_SMTP_PASSWORD")
    envelope_from: str = _checked(_optional_address, default="")  # "" = digest.from_address
    ca_file: Path | None = None
    timeout: float = _checked(_positive_number, default=30.0)
    rate: float = _checked(_non_negative, default=5.0)  # messages per second; 0 = no limit
    retries: int = _checked(_non_negative, default=3)
    backoff: float = _checked(_non_negative, default=2.0)  # seconds before the first retry

    @property
    def effective_port(self) -> int:
        """The port to connect to: the configured one, else the usual one for ``security``."""
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


@dataclass(frozen=True)
class WebSubConfig:
    """The WebSub hub told about changed feeds, so readers get them pushed instead of polling."""

    hub: str = _checked(_hub_url, default="")  # "" = no hub: no rel="hub", no pings
    timeout: float = _checked(_positive_number, default=10.0)  # seconds per request
    retries: int = _checked(_non_negative, default=2)  # after a failed request, 1 s then doubled


@dataclass(frozen=True)
class Config:
    """All settings; each stage is handed only the section it needs."""

    site: SiteConfig = field(default_factory=SiteConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    input: InputConfig = field(default_factory=InputConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    websub: WebSubConfig = field(default_factory=WebSubConfig)
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
        raise ConfigError("(file)", f"not valid YAML: {one_line(str(exc))}", path) from None
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for values such as 2026-02-30 or !!int abc.
        raise ConfigError(
            "(file)", f"a value YAML cannot read: {one_line(str(exc))}", path
        ) from None
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
            if xml_safe(value) != value:  # no feed, page or mail header can carry them
                raise ConfigError(
                    key, f"contains control characters or lone surrogates: {_describe(value)}"
                )
            return value
        raise ConfigError(key, f"expected text, got {_describe(value)}")
    if kind is timedelta:
        if not isinstance(value, str):
            expected = "expected a duration such as 30s, 5m, 6h or 1d"
            raise ConfigError(key, f"{expected}, got {_describe(value)}")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(key, str(exc)) from None
    if kind is Path:
        if not isinstance(value, str) or not value or "\x00" in value:
            raise ConfigError(key, f"expected a path, got {_describe(value)}")
        return base_dir / value
    raise TypeError(f"no converter for {kind!r} at {key}")  # a bug in this module, not input


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


_describe = describe

"""One exception hierarchy: every error the publisher raises on purpose derives from here."""

from __future__ import annotations

from pathlib import Path


class PublisherError(Exception):
    """Base class for the publisher's own errors."""


class ConfigError(PublisherError):
    """A setting is missing, misspelt or of the wrong kind (exit 2)."""

    def __init__(self, key: str, reason: str, source: Path | None = None) -> None:
        self.key = key
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {reason}")


class ArticleError(PublisherError):
    """An article document cannot be used; it is skipped and the run goes on."""

    def __init__(self, path: Path | str, field: str, reason: str) -> None:
        self.path = Path(path)
        self.field = field
        self.reason = reason
        super().__init__(f"{path}: {field}: {reason}")


class OutputError(PublisherError):
    """A file could not be written or removed in the output folder."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

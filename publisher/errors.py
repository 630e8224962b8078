"""One exception hierarchy: every error the publisher raises on purpose derives from here."""

from __future__ import annotations

from pathlib import Path

from publisher.text import printable


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
        super().__init__(f"{printable(str(path))}: {field}: {printable(reason)}")


class OutputError(PublisherError):
    """A file could not be written or removed in the output folder."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StateError(PublisherError):
    """The state store cannot be used: corrupt, locked, or written by a newer version."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StateLockedError(StateError):
    """Another process holds the state store (or the digest run lock); try again later."""


class SubscriberError(PublisherError):
    """A subscriber entry cannot be used (reported and skipped), or the file cannot be read."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        self.path = path
        self.where = where
        self.reason = reason
        super().__init__(f"{path}: {where}: {reason}")


class DigestError(PublisherError):
    """The digest could not be rendered (a template or CSS-inlining failure)."""


class DeliveryError(PublisherError):
    """Messages cannot be delivered at all (connection, TLS or login failure); the run stops."""


class RecipientError(DeliveryError):
    """One message was not accepted; ``permanent`` (5xx) ones are not retried."""

    def __init__(self, recipient: str, reason: str, *, permanent: bool) -> None:
        self.recipient = recipient
        self.reason = reason
        self.permanent = permanent
        super().__init__(f"{recipient}: {reason}")

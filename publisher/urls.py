"""Which links may be published, and when two links name the same story."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SAFE_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_KEYS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid"})


def check_url(value: str) -> str:
    """Return the reason ``value`` is not a publishable absolute http(s) URL, or ''."""
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
    if scheme not in SAFE_SCHEMES:
        return f"unsafe URL scheme {scheme!r} (only http and https are published)"
    if not parts.hostname:
        return "URL has no host"
    if port == 0:
        return "URL has port 0"
    return ""


def normalize_url(url: str) -> str:
    """Canonical form used to spot one story published twice; never shown to readers."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not key.startswith(_TRACKING_PREFIXES) and key not in _TRACKING_KEYS
        ]
    )
    path = parts.path.rstrip("/") or "/"
    # http and https of the same page are one story.
    return urlunsplit(("https" if scheme == "http" else scheme, host, path, query, ""))

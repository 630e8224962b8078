"""Which links may be published, and when two links name the same story."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SAFE_SCHEMES = frozenset({"http", "https"})
# ``\s`` is exactly ``str.isspace`` (both use Py_UNICODE_ISSPACE); one C scan, not a loop.
_UNSAFE_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f]")
# The common case of ``normalize_url``: a plain http(s) address with a simple host and no
# port, user, query or fragment, whose canonical form needs no URL parsing at all.
_PLAIN_URL = re.compile(r"(https?)://([A-Za-z0-9.-]+)(/[^?#\s\x00-\x1f\x7f]*)?", re.ASCII)
# The common case of ``check_url``: nothing but a host between the scheme and the path.
_SIMPLE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?:[/?#][^\s\x00-\x1f\x7f]*)?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_KEYS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid"})


def check_url(value: str) -> str:
    """Return the reason ``value`` is not a publishable absolute http(s) URL, or ''."""
    if _SIMPLE_URL.fullmatch(value):
        return ""  # no space or control character; an http(s) scheme, a host and no port
    if _UNSAFE_CHARACTERS.search(value):
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
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:  # same result as below, ten times faster (tests/test_fastpaths.py)
        host = plain[2].lower().removeprefix("www.")
        if host:
            return f"https://{host}{(plain[3] or '').rstrip('/') or '/'}"
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

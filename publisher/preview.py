"""``publisher preview``: the output folder over HTTP on 127.0.0.1, as a feed host serves it.

Feeds get their own media types, a strong ETag (a hash of the bytes) and Last-Modified,
and a conditional GET is answered with 304, so a feed reader or ``curl`` sees exactly
what a well-configured web server would send. Only files inside the folder are served:
no ``..``, no hidden files (the manifest, half-written temporary files), no symlink out.
``/digest/latest`` redirects to the newest digest's web copy.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Longest suffix first: "all.rss.xml" is RSS, not any XML.
CONTENT_TYPES = (
    (".rss.xml", "application/rss+xml"),
    (".atom.xml", "application/atom+xml"),
    (".opml", "text/x-opml; charset=utf-8"),
    (".html", "text/html; charset=utf-8"),
    (".xml", "application/xml"),
    (".txt", "text/plain; charset=utf-8"),
    (".css", "text/css; charset=utf-8"),
    (".png", "image/png"),
    (".jpg", "image/jpeg"),
    (".svg", "image/svg+xml"),
)
FEED_JSON = "application/feed+json"  # top-level <slug>.json; other JSON is plain JSON


def content_type(name: str) -> str:
    """The media type the preview (and a production host) should send for ``name``."""
    lowered = name.lower()
    if lowered.endswith(".json"):
        return FEED_JSON if "/" not in name.strip("/") else "application/json"
    for suffix, kind in CONTENT_TYPES:
        if lowered.endswith(suffix):
            return kind
    return "application/octet-stream"


def etag(data: bytes) -> str:
    """A strong entity tag: the same bytes always give the same tag, across restarts."""
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


class _Etags:
    """ETags by file identity, so an unchanged file is hashed once, not on every request."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int, int], str] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, stat: os.stat_result, data: bytes) -> str:
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            tag = self._known.get(key)
            if tag is None:
                if len(self._known) > 4096:
                    self._known.clear()
                tag = self._known[key] = etag(data)
        return tag


class PreviewHandler(SimpleHTTPRequestHandler):
    """Serves one folder: GET and HEAD, validators, 304s, no listings, nothing outside it."""

    server_version = "publisher-preview"

    def __init__(self, *args: Any, directory: str, etags: _Etags, **kwargs: Any) -> None:
        self.root = Path(directory).resolve()
        self.etags = etags
        super().__init__(*args, directory=str(self.root), **kwargs)

    def send_head(self) -> io.BytesIO | None:
        """Headers for GET and HEAD; the body to copy, or None when there is none."""
        target = self._target()
        if target is None:
            self.send_error(HTTPStatus.NOT_FOUND, "Not found")
            return None
        if isinstance(target, str):  # a redirect
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        try:
            data = target.read_bytes()
            stat = target.stat()
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "Not found")
            return None
        tag = self.etags.get(target, stat, data)
        modified = formatdate(stat.st_mtime, usegmt=True)
        if self._not_modified(tag, int(stat.st_mtime)):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self._validators(tag, modified)
            self.end_headers()
            return None
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type(target.relative_to(self.root).as_posix()))
        self.send_header("Content-Length", str(len(data)))
        self._validators(tag, modified)
        self.end_headers()
        return io.BytesIO(data)

    def _validators(self, tag: str, modified: str) -> None:
        self.send_header("ETag", tag)
        self.send_header("Last-Modified", modified)
        # Revalidate every time: a preview shows the latest build, and 304s keep it cheap.
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")

    def _not_modified(self, tag: str, mtime: int) -> bool:
        """RFC 9110 13.1: If-None-Match (weak comparison) wins over If-Modified-Since."""
        match = self.headers.get("If-None-Match")
        if match is not None:
            wanted = {part.strip().removeprefix("W/") for part in match.split(",")}
            return "*" in wanted or tag in wanted
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        return moment.tzinfo is not None and mtime <= moment.timestamp()

    def _target(self) -> Path | str | None:
        """The file a request path names inside the folder, a redirect, or None (404)."""
        raw = self.path
        if "://" in raw.split("?", 1)[0]:  # absolute-form request target: keep its path
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        if not raw.startswith("/"):
            return None
        raw = raw.split("?", 1)[0].split("#", 1)[0]
        try:
            words = [word for word in unquote(raw, errors="strict").split("/") if word]
        except UnicodeDecodeError:
            return None
        for word in words:
            if word.startswith(".") or "\\" in word or "\x00" in word:
                return None  # "..", hidden files, Windows separators
        if words == ["digest", "latest"]:
            return self._latest_digest()
        path = self.root.joinpath(*words)
        if path.is_dir():
            if not raw.endswith("/"):
                return "/" + "".join(quote(word) + "/" for word in words)
            path = path / "index.html"
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_file() or not real.is_relative_to(self.root):
            return None  # a symlink that leads out of the folder
        return real

    def _latest_digest(self) -> str | None:
        pages = sorted(
            (self.root / "digest").glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].html")
        )
        return f"/digest/{pages[-1].name}" if pages else None

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        """No listings: the index page lists what is published."""
        self.send_error(HTTPStatus.NOT_FOUND, "Not found")
        return None

    def log_error(self, format: str, *args: Any) -> None:
        pass  # the access line that follows already has the status

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def make_server(root: Path, port: int = DEFAULT_PORT, host: str = HOST) -> ThreadingHTTPServer:
    """A server for ``root`` bound to ``host:port`` (port 0: any free one); not started yet."""
    handler: Callable[..., PreviewHandler] = functools.partial(
        PreviewHandler, directory=str(root), etags=_Etags()
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def address(server: ThreadingHTTPServer) -> str:
    """``http://127.0.0.1:PORT/`` for a bound server."""
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"

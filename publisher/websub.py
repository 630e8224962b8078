"""WebSub publishing: tell the hub which feeds changed, so subscribers get them pushed.

The hub is a courtesy, not part of the build: a hub that is slow, down or refusing is
logged as a warning and the build goes on (readers still poll the feeds). Each feed is
one ``hub.mode=publish`` POST, retried with backoff on network errors, 5xx and 429.
Once the hub cannot be reached at all, the remaining feeds are not tried, so a dead hub
costs one feed's retries, not every feed's.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from email.message import Message
from typing import IO

from publisher import __version__
from publisher.urls import check_url

log = logging.getLogger(__name__)

USER_AGENT = f"publisher/{__version__} (WebSub publisher)"
MAX_WAIT = 60.0  # seconds: the longest Retry-After honoured, and the cap of the backoff
_REDIRECT_NOTE = " (a redirect, not followed: set websub.hub to the address it names)"


class _Unreachable(Exception):
    """The hub could not be reached at all (refused, timed out, unknown host)."""


class _Refused(Exception):
    """The hub answered with an error status; ``wait`` is its Retry-After, if any."""

    def __init__(self, status: int, wait: float | None = None, note: str = "") -> None:
        super().__init__(f"the hub answered HTTP {status}{note}")
        self.wait = wait


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET and lose the ping: report it instead."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> None:
        return None


def notify_hub(
    hub_url: str,
    feed_urls: Sequence[str],
    timeout: float = 10.0,
    retries: int = 2,
    *,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """POST ``hub.mode=publish`` for each feed URL; returns the URLs the hub did not take.

    Never raises for a network or hub problem: each failure is logged as a warning.
    """
    if not feed_urls:
        return []
    reason = check_url(hub_url)
    if reason:
        log.warning("WebSub hub %r not notified: %s", hub_url, reason)
        return list(feed_urls)
    opener = urllib.request.build_opener(_NoRedirects())
    failed: list[str] = []
    for position, feed_url in enumerate(feed_urls):
        try:
            _publish(opener, hub_url, feed_url, timeout, retries, backoff, sleep)
        except _Unreachable as exc:
            rest = list(feed_urls[position:])
            log.warning(
                "WebSub hub %s unreachable (%s); %d changed feed(s) not announced: %s",
                hub_url,
                exc,
                len(rest),
                ", ".join(rest),
            )
            return failed + rest
        except _Refused as exc:
            log.warning("WebSub hub %s did not take %s: %s", hub_url, feed_url, exc)
            failed.append(feed_url)
        else:
            log.info("WebSub hub %s notified: %s", hub_url, feed_url)
    return failed


def _publish(
    opener: urllib.request.OpenerDirector,
    hub_url: str,
    feed_url: str,
    timeout: float,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> None:
    """One feed, with retries; raises _Unreachable or _Refused once they are used up."""
    body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": feed_url}).encode("ascii")
    delay = backoff
    for attempt in range(retries + 1):
        request = urllib.request.Request(
            hub_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read()
            return
        except urllib.error.HTTPError as exc:  # before URLError: it is one
            exc.close()
            retry = exc.code >= 500 or exc.code in (408, 429)
            note = _REDIRECT_NOTE if 300 <= exc.code < 400 else ""
            failure: _Refused | _Unreachable = _Refused(exc.code, _retry_after(exc.headers), note)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # URLError (refused, unknown host), timeouts, a connection dropped mid-answer.
            failure = _Unreachable(_describe(exc))
            retry = True
        if not retry or attempt == retries:
            raise failure
        wait = failure.wait if isinstance(failure, _Refused) else None
        pause = min(delay if wait is None else wait, MAX_WAIT)
        log.debug("WebSub hub %s: %s; retrying %s in %.1f s", hub_url, failure, feed_url, pause)
        sleep(pause)
        delay = min(delay * 2, MAX_WAIT)


def _retry_after(headers: Message | None) -> float | None:
    """A Retry-After given in seconds; the HTTP-date form is rare from hubs and ignored."""
    value = headers.get("Retry-After", "") if headers is not None else ""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

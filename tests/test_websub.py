"""WebSub: rel="hub" in every feed, and publish pings to a real hub on loopback that records them."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import feedparser
import pytest
from conftest import SITE_URL, WriteArticle, make_config
from lxml import etree

from publisher.config import parse_config
from publisher.errors import ConfigError
from publisher.feeds import render_atom, render_rss
from publisher.models import Article
from publisher.pipeline import build
from publisher.specs import FeedSpec
from publisher.websub import notify_hub

ATOM = "{http://www.w3.org/2005/Atom}"
FEEDS = [f"{SITE_URL}all.rss.xml", f"{SITE_URL}all.atom.xml", f"{SITE_URL}ai.json"]
ARTICLE = Article(
    id="urn:example:1",
    title="One",
    url="https://example.com/1",
    published_at=datetime(2026, 5, 1, tzinfo=UTC),
    quality=90,
)


@dataclass
class Hub:
    """A hub on 127.0.0.1 that records every request and answers from a script of replies."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    # (status, headers) answered in turn; once used up, every request gets 204.
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def published(self) -> list[str]:
        return [r["form"]["hub.url"][0] for r in self.requests]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours proxy variables; loopback requests must not go through one."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def hub() -> Iterator[Hub]:
    lock = threading.Lock()
    recorder = Hub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                recorder.requests.append(
                    {
                        "path": self.path,
                        "type": self.headers.get("Content-Type"),
                        "agent": self.headers.get("User-Agent"),
                        "form": parse_qs(body.decode("ascii"), strict_parsing=True),
                        "body": body,
                    }
                )
                status, headers = recorder.replies.pop(0) if recorder.replies else (204, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/hub"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_one_form_encoded_publish_request_per_feed(hub: Hub) -> None:
    assert notify_hub(hub.url, FEEDS, timeout=5, retries=0) == []
    assert hub.published() == FEEDS
    for request in hub.requests:
        assert request["path"] == "/hub"
        assert request["type"] == "application/x-www-form-urlencoded"
        assert request["form"]["hub.mode"] == ["publish"]
        assert set(request["form"]) == {"hub.mode", "hub.url"}
        assert request["agent"].startswith("publisher/")


def test_a_hub_failing_once_is_retried_after_a_backoff(hub: Hub) -> None:
    hub.replies = [(503, {}), (502, {})]
    pauses: list[float] = []
    assert notify_hub(hub.url, FEEDS[:1], timeout=5, retries=2, sleep=pauses.append) == []
    assert hub.published() == FEEDS[:1] * 3
    assert pauses == [1.0, 2.0]  # doubled each time


def test_retry_after_is_honoured(hub: Hub) -> None:
    hub.replies = [(429, {"Retry-After": "7"})]
    pauses: list[float] = []
    assert notify_hub(hub.url, FEEDS[:1], timeout=5, retries=1, sleep=pauses.append) == []
    assert pauses == [7.0]


def test_a_hub_that_keeps_failing_is_logged_and_the_other_feeds_still_go(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.replies = [(500, {}), (500, {})]
    pauses: list[float] = []
    with caplog.at_level(logging.WARNING, logger="publisher.websub"):
        failed = notify_hub(hub.url, FEEDS, timeout=5, retries=1, sleep=pauses.append)
    assert failed == FEEDS[:1]
    assert hub.published() == [FEEDS[0], FEEDS[0], FEEDS[1], FEEDS[2]]
    assert "HTTP 500" in caplog.text and FEEDS[0] in caplog.text


def test_a_refusal_is_not_retried(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    hub.replies = [(400, {})]
    with caplog.at_level(logging.WARNING, logger="publisher.websub"):
        failed = notify_hub(hub.url, FEEDS[:2], timeout=5, retries=3, sleep=pytest.fail)
    assert failed == FEEDS[:1]
    assert hub.published() == FEEDS[:2]
    assert "HTTP 400" in caplog.text


def test_a_redirect_is_reported_not_followed(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    hub.replies = [(302, {"Location": hub.url + "/elsewhere"})]
    with caplog.at_level(logging.WARNING, logger="publisher.websub"):
        failed = notify_hub(hub.url, FEEDS[:1], timeout=5, retries=2, sleep=pytest.fail)
    assert failed == FEEDS[:1]
    assert len(hub.requests) == 1  # no GET to the new address, no retry
    assert "redirect" in caplog.text


def test_a_hub_that_is_down_is_logged_and_never_raises(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    pauses: list[float] = []
    with caplog.at_level(logging.WARNING, logger="publisher.websub"):
        failed = notify_hub(
            f"http://127.0.0.1:{closed_port}/", FEEDS, timeout=5, retries=2, sleep=pauses.append
        )
    assert failed == FEEDS
    assert pauses == [1.0, 2.0]  # the first feed's retries only: the others are not tried
    assert "unreachable" in caplog.text and "3 changed feed(s) not announced" in caplog.text
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_a_hub_that_never_answers_times_out(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (in the kernel) and never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with caplog.at_level(logging.WARNING, logger="publisher.websub"):
            failed = notify_hub(url, FEEDS[:2], timeout=0.2, retries=0)
    assert failed == FEEDS[:2]
    assert "timed out" in caplog.text


def test_nothing_to_announce_sends_nothing(hub: Hub) -> None:
    assert notify_hub(hub.url, [], timeout=5, retries=0) == []
    assert hub.requests == []


def test_an_unusable_hub_address_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="publisher.websub"):
        assert notify_hub("ftp://hub.example/", FEEDS, timeout=1, retries=0) == FEEDS
    assert "unsafe URL scheme" in caplog.text


# --- rel="hub" in the feeds ------------------------------------------------------------------


def spec(hub_url: str = "") -> FeedSpec:
    return FeedSpec(
        title="Example",
        description="Stories.",
        rss_url=f"{SITE_URL}ai.rss.xml",
        atom_url=f"{SITE_URL}ai.atom.xml",
        page_url=f"{SITE_URL}ai.html",
        json_url=f"{SITE_URL}ai.json",
        hub_url=hub_url,
        articles=[ARTICLE],
    )


def test_every_feed_names_the_hub() -> None:
    site = make_config().site
    hub_url = "https://hub.example.net/"
    for render in (render_rss, render_atom):
        parsed = feedparser.parse(render(spec(hub_url), site))
        assert not parsed.bozo
        links = {(link.rel, link.href) for link in parsed.feed.links}
        assert ("hub", hub_url) in links
        assert ("self", f"{SITE_URL}ai.{'rss' if render is render_rss else 'atom'}.xml") in links
        assert parsed.feed.link == f"{SITE_URL}ai.html"


def test_rss_keeps_its_link_and_one_self_link_beside_the_hub() -> None:
    channel = etree.fromstring(render_rss(spec("https://hub.example.net/"), make_config().site))[0]
    atom_links = [(e.get("rel"), e.get("href")) for e in channel.iter(f"{ATOM}link")]
    assert atom_links == [
        ("self", f"{SITE_URL}ai.rss.xml"),
        ("hub", "https://hub.example.net/"),
    ]
    assert channel.findtext("link") == f"{SITE_URL}ai.html"


def test_without_a_hub_no_feed_names_one() -> None:
    site = make_config().site
    for render in (render_rss, render_atom):
        assert b'rel="hub"' not in render(spec(), site)


def test_the_hub_setting_is_checked() -> None:
    assert parse_config({}).websub.hub == ""
    settings = parse_config({"websub": {"hub": "https://hub.example/", "retries": 0}}).websub
    assert (settings.hub, settings.timeout, settings.retries) == ("https://hub.example/", 10.0, 0)
    for bad, message in (
        ({"hub": "javascript:alert(1)"}, "unsafe URL scheme"),
        ({"hub": "/relative"}, "not an absolute URL"),
        ({"timeout": 0}, "more than zero"),
        ({"retries": -1}, "zero or more"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config({"websub": bad})


# --- a build tells the hub about the feeds it changed (once the pipeline does) ---------------


def test_a_build_announces_only_the_feeds_it_changed(
    hub: Hub, write_article: WriteArticle, seeds_dir: Path, tmp_path: Path
) -> None:
    write_article("ai.txt", topics=["AI"], title="About AI")
    space = write_article("space.txt", topics=["Space"], title="About space")
    config = make_config(websub={"hub": hub.url}, paths={"state": str(tmp_path / "state.sqlite")})
    out = tmp_path / "feeds"
    build(config, seeds=seeds_dir, out=out)
    every = {
        f"{SITE_URL}{slug}.{kind}"
        for slug in ("all", "ai", "space")
        for kind in ("rss.xml", "atom.xml", "json")
    }
    assert set(hub.published()) == every and len(hub.requests) == len(every)
    for path in out.glob("*.xml"):
        assert hub.url.encode() in path.read_bytes()

    hub.requests.clear()
    build(config, seeds=seeds_dir, out=out)
    assert hub.requests == []  # nothing changed, nothing announced

    space.write_text(space.read_text().replace("About space", "About space, revised"))
    build(config, seeds=seeds_dir, out=out)
    assert sorted(hub.published()) == sorted(
        f"{SITE_URL}{slug}.{kind}"
        for slug in ("all", "space")
        for kind in ("rss.xml", "atom.xml", "json")
    )


def test_a_build_succeeds_with_the_hub_down(
    closed_port: int, write_article: WriteArticle, seeds_dir: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    write_article(topics=["AI"])
    config = make_config(
        websub={"hub": f"http://127.0.0.1:{closed_port}/", "retries": 0},
        paths={"state": str(tmp_path / "state.sqlite")},
    )
    with caplog.at_level(logging.WARNING, logger="publisher.websub"):
        result = build(config, seeds=seeds_dir, out=tmp_path / "feeds")
    assert (tmp_path / "feeds" / "ai.rss.xml").is_file()
    assert len(result.output.written) > 0
    assert "unreachable" in caplog.text

"""``publisher preview``: real HTTP requests to the server on loopback, feedparser included."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
from click.testing import Result
from conftest import WriteArticle, make_config

from publisher.output import MANIFEST, write_atomic
from publisher.pipeline import build
from publisher.preview import content_type, make_server

SECRET_TEXT = "TOP-SECRET-outside-the-folder"
Cli = Callable[..., Result]
Request = Callable[..., tuple[int, dict[str, str], bytes]]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """feedparser fetches through urllib, which honours proxy variables: not for loopback."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def site(write_article: WriteArticle, seeds_dir: Path, tmp_path: Path) -> Path:
    """A built output folder, digest web copies, and a secret file and a symlink beside it."""
    write_article(topics=["AI"])
    write_article(topics=["Space"])
    out = tmp_path / "feeds"
    build(make_config(), seeds=seeds_dir, out=out, use_cache=False)
    if not (out / "all.json").exists():  # until the pipeline writes JSON Feeds
        write_atomic(out / "all.json", b'{"version": "https://jsonfeed.org/version/1.1"}\n')
    for day in ("2026-11-23", "2026-11-24"):
        write_atomic(out / "digest" / f"{day}.html", f"<!DOCTYPE html><p>{day}</p>".encode())
    write_atomic(out / "digest" / "index.html", b"<!DOCTYPE html><p>every digest</p>")
    write_atomic(out / "digest" / "index.json", b"[]\n")
    (out / "empty").mkdir()
    (tmp_path / "secret.txt").write_text(SECRET_TEXT)
    (out / "link-out.txt").symlink_to(tmp_path / "secret.txt")
    return out


@pytest.fixture
def server(site: Path) -> Iterator[int]:
    """The preview server for ``site`` on an ephemeral port, in a thread; yields the port."""
    httpd = make_server(site, port=0)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def request_(server: int) -> Request:
    """``request_(path, method="GET", **headers) -> (status, headers, body)``, path sent as is."""

    def send(path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
        try:
            connection.request(
                method, path, headers={k.replace("_", "-"): v for k, v in headers.items()}
            )
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    return send


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/all.rss.xml", "application/rss+xml"),
        ("/ai.atom.xml", "application/atom+xml"),
        ("/all.json", "application/feed+json"),
        ("/index.opml", "text/x-opml; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/digest/2026-11-24.html", "text/html; charset=utf-8"),
        ("/digest/index.json", "application/json"),
    ],
)
def test_each_file_has_its_media_type(
    request_: Request, site: Path, path: str, expected: str
) -> None:
    status, headers, body = request_(path)
    assert status == 200
    assert headers["Content-Type"] == expected
    name = path.strip("/") or "index.html"
    assert body == (site / name).read_bytes()
    assert headers["Content-Length"] == str(len(body))
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_validators_are_strong_and_stable(request_: Request, site: Path) -> None:
    _, first, _ = request_("/all.atom.xml")
    _, second, _ = request_("/all.atom.xml")
    tag = first["ETag"]
    assert tag.startswith('"') and tag.endswith('"') and len(tag) > 10  # strong: no W/
    assert second["ETag"] == tag
    modified = parsedate_to_datetime(first["Last-Modified"])
    assert int(modified.timestamp()) == int((site / "all.atom.xml").stat().st_mtime)
    _, other, _ = request_("/all.rss.xml")
    assert other["ETag"] != tag


def test_conditional_gets_are_answered_with_304(request_: Request) -> None:
    _, headers, _ = request_("/all.rss.xml")
    tag, modified = headers["ETag"], headers["Last-Modified"]
    earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(seconds=5), usegmt=True)
    cases = [
        ({"If-None-Match": tag}, 304),
        ({"If-None-Match": f'"nope", W/{tag}'}, 304),  # If-None-Match compares weakly
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"something-else"'}, 200),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": earlier}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        ({"If-None-Match": '"something-else"', "If-Modified-Since": modified}, 200),  # ETag wins
    ]
    for extra, expected in cases:
        status, answer, body = request_("/all.rss.xml", **extra)
        assert status == expected, extra
        if status == 304:
            assert body == b""
            assert answer["ETag"] == tag and answer["Last-Modified"] == modified


def test_a_changed_file_gets_a_new_etag(request_: Request, site: Path) -> None:
    _, before, _ = request_("/all.rss.xml")
    write_atomic(site / "all.rss.xml", (site / "all.rss.xml").read_bytes() + b"\n")
    status, after, _ = request_("/all.rss.xml", If_None_Match=before["ETag"])
    assert status == 200
    assert after["ETag"] != before["ETag"]


def test_feedparser_polls_with_etag_and_modified(server: int, site: Path) -> None:
    url = f"http://127.0.0.1:{server}/all.rss.xml"
    first = feedparser.parse(url)
    assert first.status == 200 and not first.bozo
    assert len(first.entries) == 2
    assert first.headers["content-type"] == "application/rss+xml"
    assert feedparser.parse(url, etag=first.etag).status == 304
    assert feedparser.parse(url, modified=first.modified).status == 304
    atom = feedparser.parse(f"http://127.0.0.1:{server}/ai.atom.xml")
    assert atom.status == 200 and atom.version == "atom10"


def test_head_sends_the_headers_only(request_: Request, site: Path) -> None:
    status, headers, body = request_("/all.rss.xml", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str((site / "all.rss.xml").stat().st_size)


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/digest/..%2f..%2fsecret.txt",
        "/digest/../../secret.txt",
        "/.%2e/secret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/etc/passwd",
        "http://127.0.0.1/../secret.txt",
        "/link-out.txt",
        "/" + MANIFEST,
        "/%00",
        "/%ff%fe",
        "/empty/",
        "/missing.rss.xml",
        "secret.txt",
    ],
)
def test_nothing_outside_the_folder_or_hidden_is_served(request_: Request, path: str) -> None:
    status, _, body = request_(path)
    assert status in (400, 404), path
    assert SECRET_TEXT.encode() not in body and b"root:" not in body


def test_absolute_paths_of_the_machine_are_not_files_of_the_site(
    request_: Request, tmp_path: Path
) -> None:
    status, _, _ = request_(str(tmp_path / "secret.txt"))
    assert status == 404


def test_the_digest_web_copies(request_: Request) -> None:
    status, headers, body = request_("/digest")
    assert status == 302 and headers["Location"] == "/digest/"
    status, headers, body = request_("/digest/")
    assert status == 200 and b"every digest" in body
    status, headers, _ = request_("/digest/latest")
    assert status == 302 and headers["Location"] == "/digest/2026-11-24.html"
    status, _, body = request_(headers["Location"])
    assert status == 200 and b"2026-11-24" in body


def test_no_digest_yet(request_: Request, site: Path) -> None:
    for page in (site / "digest").glob("2026-*.html"):
        page.unlink()
    status, _, _ = request_("/digest/latest")
    assert status == 404


def test_content_types_of_names() -> None:
    assert content_type("all.rss.xml") == "application/rss+xml"
    assert content_type("c-plus-plus.atom.xml") == "application/atom+xml"
    assert content_type("ai.json") == "application/feed+json"
    assert content_type("digest/index.json") == "application/json"
    assert content_type("feed.xml") == "application/xml"
    assert content_type("index.opml") == "text/x-opml; charset=utf-8"
    assert content_type("README") == "application/octet-stream"


# --- the command -------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_command_serves_until_interrupted(site: Path, tmp_path: Path, stop: int) -> None:
    def as_from_a_terminal() -> None:
        # A test run started in the background (`cmd &` in a script) ignores SIGINT, and so
        # would the child: Ctrl+C reaches a command started from a terminal.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    child = subprocess.Popen(
        [sys.executable, "-m", "publisher", "preview", "--out", str(site), "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=as_from_a_terminal,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith(f"Serving {site} at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].split()[0]
        parsed = feedparser.parse(url + "ai.rss.xml")
        assert parsed.status == 200 and parsed.entries
        child.send_signal(stop)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert "Stopped." in out
    assert "site.url is http://localhost:8000/" in err  # another port than site.url's
    assert "GET /ai.rss.xml" in err  # the access log


def test_a_missing_folder_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("preview", "--out", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "output folder not found" in result.stderr and "publisher build" in result.stderr


def test_a_busy_port_is_reported(cli: Cli, site: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = cli("preview", "--out", site, "--port", port)
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert f"--port {port + 1}" in result.stderr

#!/usr/bin/env python3
"""Screenshots of what the publisher makes, for the README: ``docs/*.png``.

    python scripts/screenshots.py [--docs DIR] [--chromium PATH]

Builds the bundled seeds and a dry-run digest into a temporary folder, as the README's
commands do (nothing in the repository changes but the pictures), then shoots each page
with headless Chromium (Debian: ``apt-get install -y chromium``). Chromium gets no
network at all: images are off, every host name fails to resolve and everything else
goes to a closed port on loopback, so the articles' remote pictures show as the pages'
placeholders. Japanese titles need a Japanese font (``apt-get install -y
fonts-ipafont-gothic``), emoji an emoji font (``fonts-noto-color-emoji``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# The README's digest command: the seeds are dated 2026-10-10 to 2026-11-23.
DIGEST_NOW = "2026-11-24T07:00:00Z"
DIGEST_SINCE = "2026-11-10"
DIGEST_PAGE = "digest/2026-11-24.html"
TOPIC_PAGE = "ai.html"
MAX_BYTES = 300_000


@dataclass(frozen=True)
class Shot:
    """One picture: which page, the window it is seen in, and the colour scheme."""

    name: str
    page: str
    width: int
    height: int
    dark: bool = False


DIGEST_SHOTS = (
    Shot("digest-600-light.png", DIGEST_PAGE, 600, 1370),
    Shot("digest-600-dark.png", DIGEST_PAGE, 600, 1370, dark=True),
    Shot("digest-375-light.png", DIGEST_PAGE, 375, 1300),
    Shot("digest-375-dark.png", DIGEST_PAGE, 375, 1300, dark=True),
)
PAGE_SHOTS = (
    Shot("index.png", "index.html", 1000, 1040),
    Shot("topic-page.png", TOPIC_PAGE, 1000, 1150),
    Shot("topic-page-375-dark.png", TOPIC_PAGE, 375, 1100, dark=True),
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
    "--no-pings",
    "--disable-domain-reliability",
    # No network: no name resolves, and any connection goes to a closed loopback port.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--force-device-scale-factor=1",
    # The articles' pictures are remote: not fetched, so they show as the page's placeholders.
    "--blink-settings=imagesEnabled=false",
)
# Both are needed for every Chromium version we met: the first sets the OS theme, the
# second the page's prefers-color-scheme (0 = dark).
DARK_FLAGS = ("--force-dark-mode", "--blink-settings=preferredColorScheme=0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="where the PNGs go")
    parser.add_argument("--chromium", help="the browser (default: chromium on the PATH)")
    args = parser.parse_args()
    browser = args.chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("chromium not found: install it with `apt-get install -y chromium`", file=sys.stderr)
        return 1
    args.docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="publisher-shots-") as scratch:
        work = Path(scratch)
        config = write_config(work)
        publisher("build", "--config", str(config))
        shots = list(PAGE_SHOTS)
        if digest(config):
            shots = [*DIGEST_SHOTS, *shots]
        for shot in shots:
            target = args.docs / shot.name
            take(browser, work / "feeds" / shot.page, shot, target, work / "profile")
            size = target.stat().st_size
            warning = f"  (over {MAX_BYTES // 1000} KB)" if size > MAX_BYTES else ""
            print(
                f"{target.relative_to(REPO) if target.is_relative_to(REPO) else target}: "
                f"{shot.width}x{shot.height}{' dark' if shot.dark else ''}, "
                f"{size // 1000} KB{warning}"
            )
    return 0


def write_config(work: Path) -> Path:
    """The repository's publisher.yaml with every path moved into ``work``."""
    settings = yaml.safe_load((REPO / "publisher.yaml").read_text(encoding="utf-8")) or {}
    settings["paths"] = {
        "seeds": str(REPO / "seeds"),
        "subscribers": str(REPO / "subscribers.yaml"),
        "output": str(work / "feeds"),
        "outbox": str(work / "outbox"),
        "state": str(work / "state" / "state.sqlite"),
    }
    config = work / "publisher.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return config


def publisher(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m publisher ARGS`` from this checkout; stops the script if it fails."""
    child = subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        sys.exit(f"publisher {' '.join(args)} failed:\n{child.stderr}")
    print(child.stdout.strip().splitlines()[-1] if child.stdout.strip() else "")
    return child


def digest(config: Path) -> bool:
    """A dry-run digest of the bundled seeds; False (with a message) where there is none."""
    child = subprocess.run(
        [sys.executable, "-m", "publisher", "digest", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0 or "--dry-run" not in child.stdout:
        print("publisher digest --dry-run is not available: no digest pictures taken")
        return False
    publisher(
        "digest", "--config", str(config), "--dry-run", "--now", DIGEST_NOW,
        "--since", DIGEST_SINCE,
    )  # fmt: skip
    return True


def take(browser: str, page: Path, shot: Shot, target: Path, profile: Path) -> None:
    """One screenshot of ``page`` into ``target`` with a fresh, throw-away profile."""
    if not page.is_file():
        sys.exit(f"{page} was not written: is the pipeline writing it?")
    shutil.rmtree(profile, ignore_errors=True)
    command = [
        browser,
        *CHROMIUM_FLAGS,
        *(DARK_FLAGS if shot.dark else ()),
        f"--user-data-dir={profile}",
        f"--window-size={shot.width},{shot.height}",
        f"--screenshot={target}",
        page.as_uri(),
    ]
    target.unlink(missing_ok=True)
    child = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if child.returncode != 0 or not target.is_file():
        sys.exit(f"chromium failed for {shot.name}:\n{child.stderr[-2000:]}")


if __name__ == "__main__":
    sys.exit(main())

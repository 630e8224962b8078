"""Importing the package has no side effects and stays light: heavy libraries load on use."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

HEAVY = ("feedgen", "lxml", "premailer", "apscheduler", "feedparser")

PROBE = textwrap.dedent(
    """
    import json, locale, logging, sys, warnings
    before = {
        "locale": locale.setlocale(locale.LC_ALL),
        "filters": len(warnings.filters),
        "level": logging.getLogger().level,
    }
    CODE
    after = {
        "locale": locale.setlocale(locale.LC_ALL),
        "filters": len(warnings.filters),
        "level": logging.getLogger().level,
    }
    print(json.dumps({
        "modules": sorted(sys.modules),
        "root_handlers": len(logging.getLogger().handlers),
        "logger_handlers": {
            name: len(logger.handlers)
            for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger) and logger.handlers
        },
        "before": before,
        "after": after,
    }))
    """
)


def probe(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter and report what it left behind."""
    child = subprocess.run(
        [sys.executable, "-c", PROBE.replace("CODE", textwrap.dedent(code))],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    result: dict[str, object] = json.loads(child.stdout.splitlines()[-1])
    return result


def heavy_modules(report: dict[str, object]) -> list[str]:
    modules = report["modules"]
    assert isinstance(modules, list)
    return [m for m in modules if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize("code", ["import publisher", "import publisher.cli"])
def test_importing_has_no_side_effects(code: str) -> None:
    report = probe(code)
    assert report["root_handlers"] == 0
    assert report["logger_handlers"] == {}
    assert report["before"] == report["after"]
    assert heavy_modules(report) == []


def test_help_does_not_load_the_heavy_libraries() -> None:
    report = probe(
        """
        import sys
        from publisher.cli import main
        for args in (["--help"], ["build", "--help"], ["check", "--help"]):
            try:
                main(args, prog_name="publisher")
            except SystemExit as exit:
                assert exit.code == 0, exit.code
        """
    )
    assert heavy_modules(report) == []


def test_a_feeds_build_does_not_load_the_digest() -> None:
    """A build from cron every few minutes should not pay for the digest's imports."""
    report = probe("import publisher.pipeline")
    modules = report["modules"]
    assert isinstance(modules, list)
    digest_only = {"jinja2", "publisher.digest", "publisher.delivery", "publisher.messages"}
    assert digest_only.isdisjoint(modules)
    assert "email.headerregistry" not in modules


@pytest.mark.parametrize(
    "module",
    [
        "config",
        "errors",
        "models",
        "loader",
        "selection",
        "slugs",
        "feeds",
        "output",
        "pages",
        "pipeline",
        "digest_run",
        "text",
        "urls",
        "templating",
    ],
)
def test_no_module_configures_logging_on_import(module: str) -> None:
    report = probe(f"import publisher.{module}")
    assert report["root_handlers"] == 0
    assert report["logger_handlers"] == {}
    assert report["before"] == report["after"]


def test_building_does_not_change_the_process_locale() -> None:
    report = probe(
        f"""
        import tempfile
        from pathlib import Path
        from publisher.config import Config
        from publisher.pipeline import build
        with tempfile.TemporaryDirectory() as out:
            build(Config(), seeds=Path({str(REPO / "seeds")!r}), out=Path(out))
        """
    )
    assert report["before"] == report["after"]
    assert report["root_handlers"] == 0

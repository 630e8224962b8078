"""Thin command line: parse options -> load settings -> call one function -> print a summary.

Exit codes: 0 success; 1 the work failed (or ``check`` found problems); 2 a usage or
configuration error. Heavy modules are imported inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from publisher import __version__
from publisher.config import Config, load_config
from publisher.errors import ArticleError, ConfigError, PublisherError

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(click.ClickException):
    """A configuration problem: exit code 2, like click's own usage errors."""

    exit_code = 2


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Settings file (default: ./publisher.yaml if present, else built-in defaults).",
    )(function)


def seeds_option(function: F) -> F:
    return click.option(
        "--seeds",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder of article documents (default: paths.seeds, 'seeds').",
    )(function)


def out_option(function: F) -> F:
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        help="Output folder (default: paths.output, 'feeds').",
    )(function)


def read_config(path: Path | None) -> Config:
    """Load settings, turning a config problem into exit code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def report_problems(problems: Iterable[ArticleError]) -> None:
    """One line per problem on stderr: ``<path>: <field>: <reason>``."""
    for problem in problems:
        click.echo(str(problem), err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="publisher")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
def main(verbose: bool) -> None:
    """Publish per-topic RSS and Atom feeds and an HTML email digest from article documents."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.command()
@config_option
@seeds_option
@out_option
def build(config_path: Path | None, seeds: Path | None, out: Path | None) -> None:
    """Write every topic's RSS and Atom feeds, index.opml and index.html."""
    from publisher.pipeline import build as run_build

    config = read_config(config_path)
    try:
        result = run_build(config, seeds=seeds, out=out)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc
    report_problems(sorted(result.report.rejected + result.report.warnings, key=_by_path))
    click.echo(result.summary())


@main.command()
@config_option
@seeds_option
def check(config_path: Path | None, seeds: Path | None) -> None:
    """List every unusable document and config problem; exit 1 if there is any."""
    from publisher.pipeline import load_and_select

    try:
        config = load_config(config_path)
        report, selection = load_and_select(config, seeds)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    problems = sorted(report.rejected + report.warnings, key=_by_path)
    report_problems(problems)
    click.echo(
        f"{report.documents} documents: {len(report.articles)} usable, "
        f"{len(report.rejected)} rejected, {len(report.warnings)} warnings; "
        f"{len(selection.articles)} would be published"
    )
    if problems:
        sys.exit(1)


def _by_path(error: ArticleError) -> str:
    return str(error.path)

"""Thin command line: parse options -> load settings -> call one function -> print a summary.

Exit codes: 0 success; 1 the work failed (or ``check`` found problems); 2 a usage or
configuration error. Heavy modules are imported inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import atexit
import functools
import gc
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
    _skip_the_last_collection()


@functools.cache  # once per process
def _skip_the_last_collection() -> None:
    """At exit, Python's last garbage collection walks every object still alive, to free
    the process's memory just before the process frees all of it (about 15 ms after a
    build of 10,000 documents): what is left then is frozen, out of that walk."""
    atexit.register(gc.freeze)


@main.command()
@config_option
@seeds_option
@out_option
@click.option(
    "--no-cache",
    is_flag=True,
    help="Parse every document and render every file, ignoring and keeping the build cache.",
)
def build(config_path: Path | None, seeds: Path | None, out: Path | None, no_cache: bool) -> None:
    """Write every topic's RSS and Atom feeds, index.opml and index.html.

    Unchanged documents and feeds are taken from the build cache in the state folder;
    the output is the same with or without it.
    """
    from publisher import locks
    from publisher.pipeline import build as run_build
    from publisher.progress import terminal_progress

    config = read_config(config_path)
    # The same lock as `publisher run feeds` and the service: two builds never interleave
    # their manifest and cache records.
    lock = locks.lock_path(config.paths.state.parent, "feeds")
    wait = config.schedule.overlap_timeout.total_seconds()
    try:
        with (
            locks.hold(lock, "feeds", timeout=wait),
            terminal_progress("Reading documents") as progress,
        ):
            result = run_build(
                config, seeds=seeds, out=out, use_cache=not no_cache, progress=progress
            )
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc
    report_problems(result.problems)
    click.echo(result.summary())


@main.command()
@config_option
@seeds_option
def check(config_path: Path | None, seeds: Path | None) -> None:
    """List every unusable document and config problem; exit 1 if there is any."""
    from publisher.pipeline import load_and_select

    try:
        config = load_config(config_path)
        report, selection = load_and_select(config, seeds, write_cache=False)
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


@main.command()
@config_option
def schedule(config_path: Path | None) -> None:
    """Run the feeds and the digest on their schedules until SIGTERM or Ctrl+C."""
    from publisher.scheduler import serve

    config = read_config(config_path)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # Our own lines say when each run starts and ends; APScheduler's repeat them (see -v).
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        serve(config)
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command(name="run")
@click.argument("job", type=click.Choice(["feeds", "digest", "all"]), default="all")
@config_option
def run_now(job: str, config_path: Path | None) -> None:
    """Run JOB once now (default: all), under the service's lock: for cron or a systemd timer.

    Exit 0 when every run succeeded (or was skipped because the same job was already
    running and schedule.overlap is skip), 1 when one failed, 2 for a configuration error.
    """
    from publisher.scheduler import ACTIONS, run_job

    config = read_config(config_path)
    names = list(ACTIONS) if job == "all" else [job]
    failed = [result for result in (run_job(name, config) for name in names) if not result.ok]
    if failed:
        sys.exit(2 if all(isinstance(r.error, ConfigError) for r in failed) else 1)


@main.command()
@config_option
@click.option(
    "--count",
    default=3,
    show_default=True,
    type=click.IntRange(1, 100),
    help="How many next run times to show per job.",
)
def status(config_path: Path | None, count: int) -> None:
    """Show each job's schedule, its next run times and how its last run went."""
    from datetime import UTC, datetime

    from publisher.scheduler import status_lines

    config = read_config(config_path)
    for line in status_lines(config, datetime.now(UTC), count):
        click.echo(line)


class MomentType(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """An ISO 8601 date or time; without an offset it is read in ``schedule.timezone``."""

    name = "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from datetime import datetime

        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f"expected an ISO 8601 date or time such as 2026-11-24T07:00:00Z, got {value!r}",
                param,
                ctx,
            )


def _in_zone(moment: Any, config: Config) -> Any:
    from zoneinfo import ZoneInfo

    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=ZoneInfo(config.schedule.timezone))


@main.command()
@config_option
@seeds_option
@out_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write the web copy and the .eml files (outbox/dry-run/DATE/); send and record nothing.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Send even with fewer than digest.min_articles new articles (or none).",
)
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help="Send a test to this one address only; nothing is recorded.",
)
@click.option(
    "--now",
    type=MomentType(),
    help="Pretend it is this time (default: the clock); no offset = schedule.timezone.",
)
@click.option(
    "--since",
    type=MomentType(),
    help="Take articles that arrived after this time, instead of since the last digest.",
)
def digest(
    config_path: Path | None,
    seeds: Path | None,
    out: Path | None,
    dry_run: bool,
    force: bool,
    to: str | None,
    now: Any,
    since: Any,
) -> None:
    """Send the HTML email digest of what is new since the last one, once to each subscriber.

    Without smtp.host in the config, messages are written as .eml files to the outbox
    folder. The web copy goes to OUT/digest/DATE.html with an index of past digests.
    """
    from publisher.digest_run import run_digest
    from publisher.errors import SubscriberError

    config = read_config(config_path)
    bar: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(
                click.progressbar(length=total, label="Sending", file=sys.stderr).__enter__()
            )
        bar[0].update(done - bar[0].pos)

    try:
        result = run_digest(
            config,
            seeds=seeds,
            out=out,
            now=_in_zone(now, config),
            since=_in_zone(since, config),
            dry_run=dry_run,
            force=force,
            to=to,
            progress=progress if sys.stderr.isatty() else None,
        )
    except (ConfigError, SubscriberError) as exc:
        raise UsageError(str(exc)) from exc
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if bar:
            bar[0].__exit__(None, None, None)
    for problem in result.problems:
        click.echo(str(problem), err=True)
    for failure in result.failures:
        click.echo(f"not delivered: {failure}", err=True)
    if result.error:
        click.echo(f"stopped: {result.error}", err=True)
    click.echo(result.summary())
    if not result.ok:
        sys.exit(1)


@main.command()
@config_option
@click.option("--undo", is_flag=True, help="Take the addresses off the list again (resubscribe).")
@click.option("--list", "show", is_flag=True, help="Show every unsubscribed address.")
@click.argument("entries", nargs=-1, metavar="[ADDRESS|TOKEN]...")
def unsubscribe(config_path: Path | None, undo: bool, show: bool, entries: tuple[str, ...]) -> None:
    """Stop (or with --undo resume) the digest for addresses or unsubscribe-link tokens.

    A token is the opaque value in an unsubscribe link (?token=...); it is matched against
    the subscribers file. The suppression list lives in the state store.
    """
    from publisher.digest_run import suppressed_addresses
    from publisher.digest_run import unsubscribe as run_unsubscribe
    from publisher.errors import SubscriberError

    config = read_config(config_path)
    if not entries and not show:
        raise UsageError("name at least one ADDRESS or TOKEN, or use --list")
    try:
        outcomes = run_unsubscribe(config, entries, undo=undo)
        listing = suppressed_addresses(config) if show else []
    except (ConfigError, SubscriberError) as exc:
        raise UsageError(str(exc)) from exc
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in listing:
        click.echo(line)
    unknown = False
    for entry, outcome in outcomes:
        click.echo(f"{entry}: {outcome}", err=outcome.startswith("unknown"))
        unknown = unknown or outcome.startswith("unknown")
    if unknown:
        sys.exit(1)


@main.command()
@config_option
@out_option
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0: any free port). 8000 matches the default site.url.",
)
def preview(config_path: Path | None, out: Path | None, port: int) -> None:
    """Serve the output folder on http://127.0.0.1:PORT/ until Ctrl+C, as a feed host would.

    Feeds get their media types, ETag and Last-Modified, and conditional requests get
    304. /digest/ lists the digest's web copies; /digest/latest opens the newest.
    """
    import signal
    from urllib.parse import urlsplit

    from publisher.preview import address, make_server

    config = read_config(config_path)
    root = out or config.paths.output
    if not root.is_dir():
        raise UsageError(f"output folder not found: {root} (run `publisher build` first)")
    try:
        server = make_server(root, port)
    except OSError as exc:
        hint = f" (try --port {port + 1})" if port else ""
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}{hint}"
        ) from exc
    url = address(server)
    site = urlsplit(config.site.url)
    if site.hostname not in ("localhost", "127.0.0.1") or (site.port or 80) != port:
        click.echo(
            f"note: site.url is {config.site.url}, so the links in the pages and feeds "
            "point there, not to this preview",
            err=True,
        )
    click.echo(f"Serving {root} at {url} (Ctrl+C to stop)")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it like Ctrl+C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _by_path(error: ArticleError) -> str:
    return str(error.path)

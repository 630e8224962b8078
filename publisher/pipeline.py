"""Wires the stages in order: documents -> articles -> selection -> feeds -> output folder.

The one place that knows every stage; each stage gets only the settings it needs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.cache import (
    BuildCache,
    FolderCache,
    Renders,
    Snapshot,
    cache_path,
    file_identity,
    parser_fingerprint,
    renderer_fingerprint,
    snapshot_key,
)
from publisher.config import Config, FeedsConfig, SiteConfig
from publisher.errors import (
    ArticleError,
    ConfigError,
)
from publisher.loader import (
    LoadReport,
    Scan,
    Summary,
    collector_paused,
    cpu_count,
    load_folder,
    scan,
    unchanged_documents,
)
from publisher.models import Article
from publisher.output import MANIFEST, OutputFolder, WriteSummary
from publisher.selection import Selection, select
from publisher.slugs import assign_slugs

if TYPE_CHECKING:
    from publisher.pages import FeedLink

log = logging.getLogger(__name__)


class BuildResult:
    """Everything a build did, for the summary line and for callers such as the scheduler.

    A build that had nothing to do (the build cache vouched for every document and
    output file) reads no article: ``report`` and ``selection`` are loaded on first use.
    """

    def __init__(
        self,
        report: LoadReport | None,
        selection: Selection[Article] | None,
        output: WriteSummary,
        seconds: float,
        unread: _Unread | None = None,
    ) -> None:
        self._report = report
        self._selection = selection
        self.output = output
        self.seconds = seconds
        self._unread = unread

    @property
    def report(self) -> LoadReport:
        """The documents read: articles, rejections and warnings."""
        return self._loaded()[0]

    @property
    def selection(self) -> Selection[Article]:
        """The published articles, overall and by topic."""
        return self._loaded()[1]

    def _loaded(self) -> tuple[LoadReport, Selection[Article]]:
        if self._report is None or self._selection is None:
            if self._unread is None:  # pragma: no cover (the constructor's callers)
                raise RuntimeError("a build result without articles")
            self._report, self._selection = self._unread.load()
        return self._report, self._selection

    @property
    def problems(self) -> list[ArticleError]:
        """Every rejection and warning, in path order."""
        if self._report is None and self._unread is not None:
            listed = self._unread.rejected + self._unread.warnings
        else:
            listed = self.report.rejected + self.report.warnings
        return sorted(listed, key=lambda error: str(error.path))

    def summary(self) -> str:
        """The one line a build ends with."""
        if self._report is None and self._unread is not None:
            unread = self._unread
            counts = (unread.documents, len(unread.rejected), unread.selected, unread.topics)
        else:
            report, selection = self._loaded()
            counts = (
                report.documents,
                len(report.rejected),
                len(selection.articles),
                len(selection.by_topic),
            )
        return (
            f"Done: {counts[0]} documents read, {counts[1]} rejected, "
            f"{counts[2]} selected in {counts[3]} topics; "
            f"{len(self.output.written)} files written, {len(self.output.unchanged)} unchanged, "
            f"{len(self.output.removed)} removed; {self.seconds:.2f} s"
        )


@dataclass(frozen=True)
class _Unread:
    """What the last build found, when this one had nothing to do, and how to read it."""

    documents: int
    rejected: list[ArticleError]
    warnings: list[ArticleError]
    selected: int
    topics: int
    load: Callable[[], tuple[LoadReport, Selection[Article]]]

    @classmethod
    def recorded(
        cls, last: Snapshot, root: Path, load: Callable[[], tuple[LoadReport, Selection[Article]]]
    ) -> _Unread:
        def errors(items: list[tuple[str, str, str]]) -> list[ArticleError]:
            return [ArticleError(root / name, field, reason) for name, field, reason in items]

        return cls(
            last.documents,
            errors(last.rejected),
            errors(last.warnings),
            last.selected,
            last.topics,
            load,
        )


def load_and_select(
    config: Config,
    seeds: Path | None = None,
    *,
    use_cache: bool = True,
    write_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[LoadReport, Selection[Article]]:
    """Read the documents and pick the published ones: shared by the feeds and the digest.

    ``write_cache=False`` still takes what the build cache knows, but writes nothing.
    """
    root = seeds or config.paths.seeds
    with _build_cache(config, use_cache, read_only=not write_cache) as cache:
        known = None if cache is None else cache.folder(_seeds_folder(config, root))
        report = _load(config, root, cache, known, progress)
    return report, select(report.articles, config.selection)


def build(
    config: Config,
    seeds: Path | None = None,
    out: Path | None = None,
    *,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> BuildResult:
    """Publish every feed, the OPML list and the index page into the output folder.

    With the build cache (the default), unchanged documents are not parsed again and
    files whose inputs did not change are not rendered again; the output is the same.
    """
    started = time.perf_counter()
    root = seeds or config.paths.seeds
    target = out or config.paths.output
    reload = functools.partial(load_and_select, config, seeds)
    with _build_cache(config, use_cache) as cache, collector_paused():
        found = known = None
        salt = b""
        if cache is not None:
            # Every setting counts (site, feeds, selection, and whatever shapes a file).
            salt = renderer_fingerprint(cache.parser, dataclasses.replace(config, source=None))
            found = scan(_seeds_folder(config, root))
            known = cache.folder(root)
            last = _nothing_to_do(cache, found, known, target, salt)
            if last is not None:
                output = WriteSummary(unchanged=sorted(set(last.outputs) - {MANIFEST}))
                unread = _Unread.recorded(last, root, reload)
                return BuildResult(None, None, output, time.perf_counter() - started, unread)
        chosen = _choose(config, root, cache, known, progress, found)
        report = chosen.report
        folder = OutputFolder(target)
        renders = Renders(cache, folder, salt, defer=True)
        write_feeds(
            folder,
            chosen.listed,
            config.site,
            config.feeds,
            renders,
            report.fingerprints,
            hub=config.websub.hub,
        )
        renders.flush(render_all)
        summary = folder.finish()
        renders.save()
        if cache is not None and chosen.known is not None:
            snapshot = _snapshot(salt, root, chosen.known, report, chosen.counts, folder)
            cache.save_snapshot(root, target, snapshot)
    announce_changed_feeds(config, summary)
    seconds = time.perf_counter() - started
    if chosen.selection is not None:
        return BuildResult(report, chosen.selection, summary, seconds)
    unread = _Unread(report.documents, report.rejected, report.warnings, *chosen.counts, reload)
    return BuildResult(None, None, summary, seconds, unread)


@dataclass
class _Chosen:
    """The articles a build publishes, and what it read to choose them."""

    report: LoadReport
    known: FolderCache | None
    listed: Selection[Article]  # what the feeds list: the first feeds.max_items of each
    selection: Selection[Article] | None  # the whole selection, if every article was read
    counts: tuple[int, int]  # articles selected, topics


def _choose(
    config: Config,
    root: Path,
    cache: BuildCache | None,
    known: FolderCache | None,
    progress: Callable[[int, int], None] | None,
    found: Scan | None,
) -> _Chosen:
    """Load and select. Articles the cache knows are selected by their summaries, and
    only those the feeds list are read in full: after one edit, a few hundred, not all."""
    report = _load(config, root, cache, known, progress, found, summaries=True)
    if cache is not None and known is not None and report.summaries:
        candidates: list[Article | Summary] = [*report.articles, *report.summaries]
        chosen = select(candidates, config.selection)
        counts = (len(chosen.articles), len(chosen.by_topic))
        listed = _read_listed(chosen, config.feeds.max_items, known, report.fingerprints)
        if listed is not None:
            return _Chosen(report, known, listed, None, counts)
        # A cached record that does not read back in full: read every article again
        # (that document is parsed).
        known = cache.folder(root)
        report = _load(config, root, cache, known, progress, found)
    selection = select(report.articles, config.selection)
    counts = (len(selection.articles), len(selection.by_topic))
    return _Chosen(report, known, selection, selection, counts)


def _read_listed(
    chosen: Selection[Article | Summary],
    limit: int,
    known: FolderCache,
    fingerprints: dict[Path, bytes],
) -> Selection[Article] | None:
    """The first ``limit`` articles of every list, read in full; None if one cannot be.

    Adds each one's fingerprint: the feeds' inputs (see ``write_feeds``)."""
    read: dict[int, Article] = {}
    lists = (chosen.articles, *chosen.by_topic.values())
    known.read_records(c.hash for items in lists for c in items[:limit] if isinstance(c, Summary))

    def full(candidate: Article | Summary) -> Article:
        if isinstance(candidate, Article):
            return candidate
        article = read.get(id(candidate))
        if article is None:
            decoded = known.by_content(candidate.hash, candidate.source_path)
            if decoded is None or not isinstance(decoded[0], Article):
                raise _Unreadable
            read[id(candidate)] = article = decoded[0]
            fingerprints[article.source_path] = candidate.hash
        return article

    try:
        return Selection(
            articles=tuple(full(a) for a in chosen.articles[:limit]),
            by_topic={t: tuple(full(a) for a in v[:limit]) for t, v in chosen.by_topic.items()},
        )
    except _Unreadable:
        return None


class _Unreadable(Exception):
    """A cached record that does not decode in full (damaged)."""


FEED_SUFFIXES = (".rss.xml", ".atom.xml", ".json")


def announce_changed_feeds(config: Config, summary: WriteSummary) -> list[str]:
    """Tell the WebSub hub (if any) about the feeds this build rewrote; returns the refused.

    Called once every file is in place; a hub problem is logged and never fails the build.
    """
    changed = [f"{config.site.url}{n}" for n in summary.written if n.endswith(FEED_SUFFIXES)]
    if not config.websub.hub or not changed:
        return []
    from publisher.websub import notify_hub

    return notify_hub(config.websub.hub, changed, config.websub.timeout, config.websub.retries)


def render_all(jobs: list[Callable[[], bytes]]) -> list[bytes]:
    """Each job's bytes, in order: in two processes when there are many (a cold build)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    if len(jobs) < RENDER_PARALLEL_MIN or cpu_count() < 2 or "fork" not in methods:
        return [job() for job in jobs]
    if threading.active_count() > 1:  # fork is unsafe beside other threads (the scheduler's)
        return [job() for job in jobs]
    # Forked workers share the jobs' memory: nothing but indices and bytes is pickled.
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(
            2, mp_context=context, initializer=_adopt_jobs, initargs=(jobs,)
        ) as pool:
            return list(pool.map(_run_job, range(len(jobs)), chunksize=4))
    except (OSError, RuntimeError) as exc:  # BrokenProcessPool is a RuntimeError
        log.warning("rendering in worker processes failed (%s); going on in this one", exc)
        return [job() for job in jobs]


RENDER_PARALLEL_MIN = 24
_adopted: list[Callable[[], bytes]] = []


def _adopt_jobs(jobs: list[Callable[[], bytes]]) -> None:
    """In a forked render worker: the jobs it was forked with."""
    _adopted[:] = jobs


def _run_job(index: int) -> bytes:
    return _adopted[index]()


def _nothing_to_do(
    cache: BuildCache, found: Scan, known: FolderCache, target: Path, salt: bytes
) -> Snapshot | None:
    """The last build's record, if no document, setting or output changed since."""
    last = cache.snapshot(found.root, target)
    if last is None:
        return None
    states = unchanged_documents(found, known)
    if states is None or snapshot_key(salt, states) != last.key:
        return None
    return last if last.intact(target) else None


def _snapshot(
    salt: bytes,
    root: Path,
    known: FolderCache,
    report: LoadReport,
    counts: tuple[int, int],
    folder: OutputFolder,
) -> Snapshot | None:
    """What the next build needs to see that it has nothing to do."""
    states = known.states()
    if states is None:
        return None
    outputs = {}
    for name in (*folder.summary.written, *folder.summary.unchanged, MANIFEST):
        identity = file_identity(folder.path(name))
        if identity is None:
            return None
        outputs[name] = identity

    def problems(errors: list[ArticleError]) -> list[tuple[str, str, str]]:
        return [(e.path.relative_to(root).as_posix(), e.field, e.reason) for e in errors]

    return Snapshot(
        key=snapshot_key(salt, states),
        documents=report.documents,
        rejected=problems(report.rejected),
        warnings=problems(report.warnings),
        selected=counts[0],
        topics=counts[1],
        outputs=outputs,
    )


@contextlib.contextmanager
def _build_cache(
    config: Config, enabled: bool, *, read_only: bool = False
) -> Iterator[BuildCache | None]:
    """The build cache in the state folder, or None (disabled, or unusable: logged)."""
    if not enabled:
        yield None
        return
    parser = parser_fingerprint(config.input.max_bytes)
    cache = BuildCache.open(cache_path(config.paths.state), parser, read_only=read_only)
    try:
        yield cache
    finally:
        if cache is not None:
            cache.close()


def _seeds_folder(config: Config, root: Path) -> Path:
    if not root.is_dir():
        raise ConfigError("paths.seeds", f"folder not found: {root}", config.source)
    return root


def _load(
    config: Config,
    root: Path,
    cache: BuildCache | None,
    known: FolderCache | None,
    progress: Callable[[int, int], None] | None,
    found: Scan | None = None,
    *,
    summaries: bool = False,
) -> LoadReport:
    _seeds_folder(config, root)
    report = load_folder(
        root,
        config.input.max_bytes,
        cache=known,
        progress=progress,
        found=found,
        summaries=summaries,
    )
    if cache is not None and known is not None:
        cache.save_folder(known)
    return report


def feed_links(
    selection: Selection[Article], site: SiteConfig, settings: FeedsConfig, hub: str = ""
) -> tuple[FeedLink, list[FeedLink]]:
    """The ``all`` feed and one feed per topic, with their public names and addresses."""
    from publisher.feeds import FeedSpec
    from publisher.pages import FeedLink

    def link(name: str, slug: str, title: str, description: str, articles: tuple) -> FeedLink:  # type: ignore[type-arg]
        spec = FeedSpec(
            title=title,
            description=description,
            rss_url=f"{site.url}{slug}.rss.xml",
            atom_url=f"{site.url}{slug}.atom.xml",
            json_url=f"{site.url}{slug}.json",
            # The index page is the `all` feed's page; every topic has its own.
            page_url=site.url if slug == "all" else f"{site.url}{slug}.html",
            hub_url=hub,
            articles=articles[: settings.max_items],
        )
        return FeedLink(name=name, slug=slug, spec=spec)

    everything = link("all", "all", site.title, site.description, selection.articles)
    slugs = assign_slugs(selection.by_topic)
    topics = [
        link(
            topic,
            slugs[topic],
            f"{site.title}: {topic}",
            f"{site.description} Topic: {topic}.",
            articles,
        )
        for topic, articles in sorted(
            selection.by_topic.items(), key=lambda item: item[0].casefold()
        )
    ]
    return everything, topics


def write_feeds(
    folder: OutputFolder,
    selection: Selection[Article],
    site: SiteConfig,
    settings: FeedsConfig,
    renders: Renders | None = None,
    fingerprints: Mapping[Path, bytes] | None = None,
    hub: str = "",
) -> None:
    """Render every feed and the two index files into ``folder``.

    With ``renders`` and the articles' ``fingerprints`` (from the build cache), a file
    whose inputs did not change since the last build is not rendered again.
    """
    # Imported here: feedgen, lxml and Jinja are not needed by a build with nothing to do.
    from publisher.feeds import render_atom, render_rss
    from publisher.jsonfeed import render_json_feed
    from publisher.pages import render_index_html, render_opml, render_topic_html

    everything, topics = feed_links(selection, site, settings, hub)
    renders = renders or Renders(None, folder, b"")
    prints = fingerprints or {}
    for feed in (everything, *topics):
        inputs = _feed_inputs(feed, prints)
        rss = functools.partial(render_rss, feed.spec, site)
        atom = functools.partial(render_atom, feed.spec, site)
        renders.write(f"{feed.slug}.rss.xml", inputs, rss)
        renders.write(f"{feed.slug}.atom.xml", inputs, atom)
        renders.write(
            f"{feed.slug}.json", inputs, functools.partial(render_json_feed, feed.spec, site)
        )
        if feed is not everything:
            page = functools.partial(render_topic_html, feed.spec, site, feed.name)
            renders.write(f"{feed.slug}.html", inputs, page)
    index = [repr(_listed(feed)).encode() for feed in (everything, *topics)]
    renders.write("index.opml", index, functools.partial(render_opml, site, everything, topics))
    renders.write(
        "index.html", index, functools.partial(render_index_html, site, everything, topics)
    )


def _feed_inputs(feed: FeedLink, fingerprints: Mapping[Path, bytes]) -> list[bytes] | None:
    """What a feed's bytes depend on besides the settings; None if an article's is unknown."""
    inputs = [repr(_listed(feed)).encode()]
    for article in feed.spec.articles:
        fingerprint = fingerprints.get(article.source_path)
        if fingerprint is None:
            return None
        inputs.append(fingerprint)
    return inputs


def _listed(feed: FeedLink) -> tuple[object, ...]:
    spec = feed.spec
    return (
        feed.name,
        feed.slug,
        spec.title,
        spec.description,
        spec.rss_url,
        spec.atom_url,
        spec.json_url,
        spec.hub_url,
        spec.page_url,
        feed.count,
        spec.updated.isoformat(),
    )

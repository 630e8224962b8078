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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from publisher.helper import Helper, helper_process
from publisher.loader import (
    LoadReport,
    Scan,
    Summary,
    assumed_key,
    collector_paused,
    cpu_count,
    exit_with_parent,
    load_folder,
    match_files,
    scan,
    unchanged_documents,
    vouch_matched,
)
from publisher.models import Article
from publisher.output import MANIFEST, OutputFolder, WriteSummary
from publisher.selection import A, Selection, lowest_threshold, select
from publisher.slugs import assign_slugs
from publisher.specs import FeedLink, FeedSpec

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
    floor = lowest_threshold(config.selection)
    with (
        _build_cache(config, use_cache) as cache,
        collector_paused(),
        contextlib.ExitStack() as stack,
    ):
        found = known = helper = templates = None
        salt = b""
        if cache is not None:
            # Every setting counts (site, feeds, selection, and whatever shapes a file).
            salt = renderer_fingerprint(cache.parser, dataclasses.replace(config, source=None))
            found = scan(_seeds_folder(config, root))
            known = cache.folder(root)
            templates = cache.path.parent / "templates"
            helper = stack.enter_context(_helper(found, known, templates))
            last = _nothing_to_do(cache, found, known, target, salt, helper, floor)
            if last is not None:
                output = WriteSummary(unchanged=sorted(set(last.outputs) - {MANIFEST}))
                unread = _Unread.recorded(last, root, reload)
                return BuildResult(None, None, output, time.perf_counter() - started, unread)
        chosen = _choose(config, root, cache, known, progress, found)
        folder = OutputFolder(target)
        renders = Renders(cache, folder, salt, defer=True)
        try:
            _write_chosen(config, chosen, folder, renders)
        except _Unreadable:
            # A cached record that does not read back in full (damaged): read every
            # article again; that document is parsed. Nothing was written yet; what the
            # first attempt learnt is kept, so that it is not read again.
            assert cache is not None and chosen.known is not None  # (summaries come from it)
            cache.save_folder(chosen.known)
            chosen = _choose(config, root, cache, cache.folder(root), progress, found, heads=False)
            renders = Renders(cache, folder, salt, defer=True)  # decided afresh
            _write_chosen(config, chosen, folder, renders)
        report = chosen.report
        settle = _Settle(cache, chosen.known, salt)
        try:
            renders.flush(_renderer(helper, templates, settle))
        finally:
            settle()  # if nothing was rendered, or rendering failed: what was learnt is kept
        summary = folder.finish()
        renders.save()
        if cache is not None and chosen.known is not None:
            snapshot = _snapshot(settle.key, root, report, chosen.counts, folder)
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
    # What the feeds list: the first feeds.max_items of each (summaries after a rebuild).
    listed: Selection[Article] | Selection[Article | Summary]
    selection: Selection[Article] | None  # the whole selection, if every article was read
    counts: tuple[int, int]  # articles selected, topics


class _Settle:
    """Saves what the build learnt of the documents to the cache (and checkpoints it), and
    works out the key of their states for the snapshot: once, while the files render (the
    other core is busy then, and this process mostly waits), or after, if nothing was."""

    def __init__(self, cache: BuildCache | None, known: FolderCache | None, salt: bytes) -> None:
        self._cache = cache
        self._known = known
        self._salt = salt
        self._done = False
        self.key: str | None = None

    def __call__(self) -> None:
        if self._done or self._cache is None or self._known is None:
            return
        self._done = True
        self._cache.save_folder(self._known)
        self._cache.checkpoint()
        states = self._known.states()
        self.key = None if states is None else snapshot_key(self._salt, states)


def _choose(
    config: Config,
    root: Path,
    cache: BuildCache | None,
    known: FolderCache | None,
    progress: Callable[[int, int], None] | None,
    found: Scan | None,
    *,
    heads: bool = True,
) -> _Chosen:
    """Load and select. Articles the cache knows are selected by their summaries; only
    those in a feed that must be written again are read in full (see ``write_feeds``)."""
    report = _load(
        config,
        root,
        cache,
        known,
        progress,
        found,
        summaries=heads,
        meanwhile=_import_renderers,
        save=False,
    )
    if cache is not None and known is not None and (report.summaries or report.out_of_reach):
        candidates: list[Article | Summary] = [*report.articles, *report.summaries]
        chosen = select(candidates, config.selection)
        counts = (len(chosen.articles), len(chosen.by_topic))
        return _Chosen(report, known, _first(chosen, config.feeds.max_items), None, counts)
    selection = select(report.articles, config.selection)
    counts = (len(selection.articles), len(selection.by_topic))
    listed = _first(selection, config.feeds.max_items)
    return _Chosen(report, known, listed, selection, counts)


def _first(selection: Selection[A], limit: int) -> Selection[A]:
    """The first ``limit`` articles of every list: what the feeds list (and all that is
    kept of a selection made from summaries)."""
    return Selection(
        articles=selection.articles[:limit],
        by_topic={topic: items[:limit] for topic, items in selection.by_topic.items()},
    )


def _write_chosen(config: Config, chosen: _Chosen, folder: OutputFolder, renders: Renders) -> None:
    """Write the feeds of ``chosen``, reading summaries from its folder's cache records."""
    known = chosen.known
    write_feeds(
        folder,
        chosen.listed,
        config.site,
        config.feeds,
        renders,
        chosen.report.fingerprints,
        hub=config.websub.hub,
        read=None if known is None else functools.partial(_read_in_full, known),
    )


def _read_in_full(known: FolderCache, candidates: list[Summary]) -> dict[int, Article]:
    """These summarised articles read in full from their cached records, by ``id()``;
    ``_Unreadable`` if one does not read back."""
    known.read_records(candidate.hash for candidate in candidates)
    read: dict[int, Article] = {}
    for candidate in candidates:
        decoded = known.by_content(candidate.hash, candidate.source_path)
        if decoded is None or not isinstance(decoded[0], Article):
            raise _Unreadable
        read[id(candidate)] = decoded[0]
    return read


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


def render_all(
    jobs: list[Callable[[], bytes]],
    templates: Path | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Iterator[bytes]:
    """Each job's bytes, in order, as they come: in two processes when there are many (a
    cold build), so that the files already rendered are written while the rest render.
    ``templates``: where Jinja keeps its compiled templates (the build cache's folder);
    ``meanwhile`` is called once the worker processes have their work (or first)."""
    if jobs:
        _prepare_renderers(templates)
    done = 0
    if len(jobs) >= RENDER_PARALLEL_MIN and _can_fork():
        try:
            for data in _render_in_workers(jobs, meanwhile):
                done += 1
                yield data
            return
        except (OSError, RuntimeError) as exc:  # BrokenProcessPool is a RuntimeError
            log.warning("rendering in worker processes failed (%s); going on in this one", exc)
    if meanwhile is not None:
        meanwhile()
    for job in jobs[done:]:
        yield job()


def _renderer(
    helper: Helper | None, templates: Path | None, meanwhile: Callable[[], object]
) -> Callable[[list[Callable[[], bytes]]], Iterable[bytes]]:
    """How a build renders its files: a few in the helper process (which has the renderers
    imported by then), many in two worker processes, else in this one; ``meanwhile`` runs
    while they render."""
    here = functools.partial(render_all, templates=templates)
    if helper is None:
        return functools.partial(here, meanwhile=meanwhile)

    def rendered(jobs: list[Callable[[], bytes]]) -> Iterable[bytes]:
        if len(jobs) >= RENDER_PARALLEL_MIN:
            return here(jobs, meanwhile=meanwhile)
        return helper.render_all(jobs, here, meanwhile)

    return rendered


def _can_fork() -> bool:
    """Two cores, and fork is safe: not beside other threads (the scheduler's)."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return cpu_count() >= 2 and "fork" in methods and threading.active_count() == 1


def _render_in_workers(
    jobs: list[Callable[[], bytes]], meanwhile: Callable[[], object] | None
) -> Iterator[bytes]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Forked workers share the jobs' memory: nothing but indices and bytes is pickled.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        2, mp_context=context, initializer=_adopt_jobs, initargs=(jobs,)
    ) as pool:
        rendered = pool.map(_run_job, range(len(jobs)), chunksize=4)
        if meanwhile is not None:
            meanwhile()
        yield from rendered


RENDER_PARALLEL_MIN = 24
_adopted: list[Callable[[], bytes]] = []


def _adopt_jobs(jobs: list[Callable[[], bytes]]) -> None:
    """In a forked render worker: the jobs it was forked with (and an end with the build)."""
    exit_with_parent()
    _adopted[:] = jobs


def _run_job(index: int) -> bytes:
    return _adopted[index]()


def _helper(
    found: Scan, known: FolderCache, templates: Path
) -> contextlib.AbstractContextManager[Helper | None]:
    """A helper process for a rebuild (not for a first build: there is nothing to check):
    it checks every document's file against the cache while this process reads what the
    cache knows of them, then prepares the renderers."""
    return helper_process(
        functools.partial(match_files, found.documents, known.files),
        functools.partial(_prepare_renderers, templates),
        wanted=bool(known.files),
    )


def _nothing_to_do(
    cache: BuildCache,
    found: Scan,
    known: FolderCache,
    target: Path,
    salt: bytes,
    helper: Helper | None,
    floor: float,
) -> Snapshot | None:
    """The last build's record, if no document, setting or output changed since."""
    last = cache.snapshot(found.root, target)
    if helper is not None:
        # While the helper checks the files: the key they give if none changed, then the
        # heads that a rebuild reads next.
        assumed = None if last is None else assumed_key(salt, found, known)
        known.read_heads(floor, until=helper.answered)
        matches = helper.check()
        if matches is not None:
            unchanged = b"\0" not in matches and last is not None and assumed == last.key
            if unchanged and last is not None and last.intact(target):
                return last
            vouch_matched(found, known, matches)
            return None
    if last is None:
        return None
    states = unchanged_documents(found, known)
    if states is None or snapshot_key(salt, states) != last.key:
        return None
    return last if last.intact(target) else None


def _snapshot(
    key: str | None,
    root: Path,
    report: LoadReport,
    counts: tuple[int, int],
    folder: OutputFolder,
) -> Snapshot | None:
    """What the next build needs to see that it has nothing to do (``key``: ``_Settle``'s)."""
    if key is None:
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
        key=key,
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
    meanwhile: Callable[[], object] | None = None,
    save: bool = True,
) -> LoadReport:
    """Load the documents; with ``save``, write what the cache learnt at once (a build
    leaves that to ``_Settle``, while its files render)."""
    _seeds_folder(config, root)
    report = load_folder(
        root,
        config.input.max_bytes,
        cache=known,
        progress=progress,
        found=found,
        summaries=summaries,
        floor=lowest_threshold(config.selection),
        meanwhile=meanwhile,
    )
    if save and cache is not None and known is not None:
        cache.save_folder(known)
    return report


def _import_renderers() -> None:
    """Import what writing the files takes (feedgen, lxml, Jinja: about 35 ms) while worker
    processes parse the first documents, rather than after the last one."""
    import publisher.feeds
    import publisher.jsonfeed
    import publisher.pages
    import publisher.templating  # noqa: F401


def _prepare_renderers(templates: Path | None) -> None:
    """Import the renderers; keep Jinja's compiled templates in ``templates``, if given."""
    _import_renderers()
    if templates is not None:
        from publisher.templating import keep_compiled_templates

        keep_compiled_templates(templates)


def feed_links(
    selection: Selection[Article] | Selection[Article | Summary],
    site: SiteConfig,
    settings: FeedsConfig,
    hub: str = "",
) -> tuple[FeedLink, list[FeedLink]]:
    """The ``all`` feed and one feed per topic, with their public names and addresses."""

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
    selection: Selection[Article] | Selection[Article | Summary],
    site: SiteConfig,
    settings: FeedsConfig,
    renders: Renders | None = None,
    fingerprints: Mapping[Path, bytes] | None = None,
    hub: str = "",
    read: Callable[[list[Summary]], Mapping[int, Article]] | None = None,
) -> None:
    """Render every feed and the two index files into ``folder``.

    With ``renders`` and the articles' ``fingerprints`` (from the build cache), a file
    whose inputs did not change since the last build is not rendered again. The build
    cache's summaries in ``selection`` are read in full with ``read``, and only for the
    feeds that are written again (after one edit, a few of the forty). ``read`` runs
    before anything is written or kept: if it raises, the caller can start again.
    """
    everything, topics = feed_links(selection, site, settings, hub)
    renders = renders or Renders(None, folder, b"")
    prints = fingerprints or {}
    feeds = [(feed, _feed_inputs(feed, prints)) for feed in (everything, *topics)]
    summaries = _summaries_to_read(feeds, renders, everything)
    full = read(summaries) if read is not None and summaries else {}
    for feed, inputs in feeds:
        spec = _read_spec(feed.spec, full) if full else feed.spec
        rss, atom, json, *page = _files(feed, everything)
        # JSON first: with the `all` feed's three files, every feed's RSS and Atom then fall
        # in one chunk of four render jobs, and share their entries (feeds._shared_generator).
        renders.write(json, inputs, functools.partial(render, "json", spec, site))
        renders.write(rss, inputs, functools.partial(render, "rss", spec, site))
        renders.write(atom, inputs, functools.partial(render, "atom", spec, site))
        for name in page:
            renders.write(name, inputs, functools.partial(render, "topic", spec, site, feed.name))
    index = [repr(_listed(feed)).encode() for feed in (everything, *topics)]
    listings = (everything.listing(), [topic.listing() for topic in topics])
    renders.write("index.opml", index, functools.partial(render, "opml", site, *listings))
    renders.write("index.html", index, functools.partial(render, "index", site, *listings))


def render(kind: str, *args: Any) -> bytes:
    """One output file's bytes, made by the renderer of its ``kind``. A render job names its
    renderer so that the jobs can be planned (and sent to a helper process) without
    importing feedgen, lxml and Jinja here; they are imported on first use."""
    from publisher import feeds, jsonfeed, pages

    renderers: dict[str, Callable[..., bytes]] = {
        "json": jsonfeed.render_json_feed,
        "rss": feeds.render_rss,
        "atom": feeds.render_atom,
        "topic": pages.render_topic_html,
        "opml": pages.render_opml,
        "index": pages.render_index_html,
    }
    return renderers[kind](*args)


def _read_spec(spec: FeedSpec, full: Mapping[int, Article]) -> FeedSpec:
    """``spec`` with the summaries read in full put back as articles (a feed that is not
    written again keeps its summaries: only its names, counts and dates are used)."""
    return dataclasses.replace(spec, articles=tuple(full.get(id(a), a) for a in spec.articles))


def _summaries_to_read(
    feeds: list[tuple[FeedLink, list[bytes] | None]], renders: Renders, everything: FeedLink
) -> list[Summary]:
    """The build cache's summaries listed by a feed that is written again, each once."""
    wanted: dict[int, Summary] = {}
    for feed, inputs in feeds:
        if any(renders.stale(name, inputs) for name in _files(feed, everything)):
            listed: Sequence[Article | Summary] = feed.spec.articles
            wanted.update((id(a), a) for a in listed if isinstance(a, Summary))
    return list(wanted.values())


def _files(feed: FeedLink, everything: FeedLink) -> tuple[str, ...]:
    """The files of one feed: its RSS, Atom and JSON Feed, and a topic's page."""
    names = (f"{feed.slug}.rss.xml", f"{feed.slug}.atom.xml", f"{feed.slug}.json")
    return names if feed is everything else (*names, f"{feed.slug}.html")


def _feed_inputs(feed: FeedLink, fingerprints: Mapping[Path, bytes]) -> list[bytes] | None:
    """What a feed's bytes depend on besides the settings; None if an article's is unknown.
    (An article's fingerprint is the hash of its document's bytes, as a summary's is.)"""
    inputs = [repr(_listed(feed)).encode()]
    for article in feed.spec.articles:
        fingerprint = (
            article.hash if isinstance(article, Summary) else fingerprints.get(article.source_path)
        )
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

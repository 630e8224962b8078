"""Wires the stages in order: documents -> articles -> selection -> feeds -> output folder.

The one place that knows every stage; each stage gets only the settings it needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from publisher.config import Config, FeedsConfig, SiteConfig
from publisher.errors import ConfigError
from publisher.feeds import FeedSpec, render_atom, render_rss
from publisher.loader import LoadReport, load_folder
from publisher.output import OutputFolder, WriteSummary
from publisher.pages import FeedLink, render_index_html, render_opml
from publisher.selection import Selection, select
from publisher.slugs import assign_slugs


@dataclass(frozen=True)
class BuildResult:
    """Everything a build did, for the summary line and for callers such as the scheduler."""

    report: LoadReport
    selection: Selection
    output: WriteSummary
    seconds: float

    def summary(self) -> str:
        """The one line a build ends with."""
        return (
            f"Done: {self.report.documents} documents read, {len(self.report.rejected)} rejected, "
            f"{len(self.selection.articles)} selected in {len(self.selection.by_topic)} topics; "
            f"{len(self.output.written)} files written, {len(self.output.unchanged)} unchanged, "
            f"{len(self.output.removed)} removed; {self.seconds:.2f} s"
        )


def load_and_select(config: Config, seeds: Path | None = None) -> tuple[LoadReport, Selection]:
    """Read the documents and pick the published ones: shared by the feeds and the digest."""
    folder = seeds or config.paths.seeds
    if not folder.is_dir():
        raise ConfigError("paths.seeds", f"folder not found: {folder}", config.source)
    report = load_folder(folder, config.input.max_bytes)
    return report, select(report.articles, config.selection)


def build(config: Config, seeds: Path | None = None, out: Path | None = None) -> BuildResult:
    """Publish every feed, the OPML list and the index page into the output folder."""
    started = time.perf_counter()
    report, selection = load_and_select(config, seeds)
    folder = OutputFolder(out or config.paths.output)
    write_feeds(folder, selection, config.site, config.feeds)
    summary = folder.finish()
    return BuildResult(report, selection, summary, time.perf_counter() - started)


def feed_links(
    selection: Selection, site: SiteConfig, settings: FeedsConfig
) -> tuple[FeedLink, list[FeedLink]]:
    """The ``all`` feed and one feed per topic, with their public names and addresses."""

    def link(name: str, slug: str, title: str, description: str, articles: tuple) -> FeedLink:  # type: ignore[type-arg]
        spec = FeedSpec(
            title=title,
            description=description,
            rss_url=f"{site.url}{slug}.rss.xml",
            atom_url=f"{site.url}{slug}.atom.xml",
            page_url=site.url,
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
    folder: OutputFolder, selection: Selection, site: SiteConfig, settings: FeedsConfig
) -> None:
    """Render every feed and the two index files into ``folder``."""
    everything, topics = feed_links(selection, site, settings)
    for feed in (everything, *topics):
        folder.write(f"{feed.slug}.rss.xml", render_rss(feed.spec, site))
        folder.write(f"{feed.slug}.atom.xml", render_atom(feed.spec, site))
    folder.write("index.opml", render_opml(site, everything, topics))
    folder.write("index.html", render_index_html(site, everything, topics))

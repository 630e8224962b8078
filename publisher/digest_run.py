"""Runs the email digest: picks the period's articles, sends them, records what went out.

Kept apart from the feeds build so a build never imports the digest's modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.headerregistry import Address
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher import delivery, digest, messages
from publisher.config import Config
from publisher.errors import (
    ConfigError,
    DeliveryError,
    RecipientError,
    SubscriberError,
)
from publisher.loader import (
    LoadReport,
)
from publisher.models import Article
from publisher.output import OutputFolder
from publisher.pipeline import announce_changed_feeds, load_and_select
from publisher.selection import Selection
from publisher.state import SECRET_FILE, DigestRun, StateStore, load_secret, run_lock
from publisher.subscribers import Subscriber, SubscriberList, check_address, load_subscribers

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each recipient (the CLI draws a bar with it)."""


@dataclass
class DigestResult:
    """What a digest run did: the counts of its summary line, for the CLI and the scheduler."""

    period: str
    dry_run: bool = False
    note: str = ""
    articles: int = 0
    topics: int = 0
    recipients: int = 0
    sent: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int = 0
    failures: list[RecipientError] = field(default_factory=list)
    problems: list[SubscriberError] = field(default_factory=list)
    report: LoadReport | None = None
    web_copy: Path | None = None
    outbox: Path | None = None
    resumed: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every recipient handled and none failed (the CLI exits 1 otherwise)."""
        return not self.error and not self.failed and not self.pending

    def summary(self) -> str:
        """The one line a digest run ends with."""
        counts = f"{self.recipients} recipients, {self.sent} sent, {self.skipped} skipped, {self.failed} failed"
        if self.pending:
            counts += f", {self.pending} not sent yet (run again to send to them)"
        parts = [self.note] if self.note else []
        parts.append(counts)
        if self.written:
            parts.append(f"{self.written} messages written to {self.outbox}")
        if self.articles:
            parts.append(f"{self.articles} articles in {self.topics} topics")
        if self.web_copy:
            parts.append(f"web copy {self.web_copy}")
        if self.resumed:
            parts.append("finished the interrupted digest of " + ", ".join(self.resumed))
        head = f"Digest {self.period}" + (" (dry run)" if self.dry_run else "")
        return f"{head}: " + "; ".join(parts) + f"; {self.seconds:.2f} s"


def period_key(now: datetime, timezone: str) -> str:
    """A digest run's key: its date in the schedule's time zone (one digest a day)."""
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def run_digest(
    config: Config,
    *,
    seeds: Path | None = None,
    out: Path | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    force: bool = False,
    to: str | None = None,
    since: datetime | None = None,
    progress: Progress | None = None,
) -> DigestResult:
    """Send what is new since the last digest to every subscriber, each exactly once.

    The run for today's period is recorded (with its frozen list of articles) before the
    first message goes out, and each recipient the moment the server accepted; a rerun
    after a crash sends only to those left, and interrupted runs of earlier days are
    finished first. ``dry_run`` writes the web copy and the ``.eml`` files but sends and
    records nothing; ``to`` sends a test to one address and records nothing; ``force``
    sends even when there is less than ``digest.min_articles`` (or nothing) new; ``since``
    replaces the watermark (for a first digest that should reach further back).
    """
    started = time.perf_counter()
    moment = _aware(now, "now") if now is not None else datetime.now(UTC)
    period = period_key(moment, config.schedule.timezone)
    result = DigestResult(period=period, dry_run=dry_run)
    recording = not dry_run and to is None
    report, selection = load_and_select(config, seeds)
    result.report = report
    audience = _audience(config, to, required=recording)
    result.problems = audience.problems
    job = _DigestJob(
        config=config,
        selection=selection,
        now=moment,
        out=out or config.paths.output,
        secret=_secret(config),
        dry_run=dry_run,
        force=force,
        test_to=to,
        progress=progress,
        subscribers=audience.subscribers,
    )
    state_path = config.paths.state
    store = (
        StateStore.open(state_path)
        if recording or state_path.exists()
        else StateStore.scratch(state_path)
    )
    with store, run_lock(state_path) if recording else contextlib.nullcontext():
        transport = _transport(config, period, dry_run=dry_run, test=to is not None)
        try:
            if recording:
                for run in store.unfinished_runs():
                    if run.period < period and not result.error:
                        job.resume(store, transport, run, result)
            if not result.error:
                job.current(store, transport, _aware(since, "since") if since else None, result)
        finally:
            transport.close()
        if dry_run and isinstance(transport, delivery.OutboxTransport) and result.written:
            transport.prune()  # a dry run's folder holds exactly this run's messages
    result.seconds = time.perf_counter() - started
    return result


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(name, f"needs a time zone, got {moment.isoformat()} (add Z or an offset)")
    return moment


def _audience(config: Config, to: str | None, *, required: bool) -> SubscriberList:
    """The subscribers; ``--to`` narrows them to one address (a stranger gets every topic)."""
    path = config.paths.subscribers
    try:
        audience = load_subscribers(path)
    except SubscriberError as exc:
        if required or path.exists():
            raise
        log.warning("%s; no subscribers", exc)
        audience = SubscriberList()
    if to is not None:
        reason = check_address(to)
        if reason:
            raise ConfigError("--to", f"invalid address {to!r}: {reason}")
        known = [s for s in audience.subscribers if s.key == to.lower()]
        audience = SubscriberList(known or [Subscriber(email=to)], audience.problems)
    return audience


def _secret(config: Config) -> bytes:
    """The unsubscribe-token secret: from the environment, else generated once and kept."""
    value = os.environ.get(config.digest.secret_env, "")
    if value:
        return value.encode("utf-8")
    secret, created = load_secret(config.paths.state)
    if created:
        log.info(
            "created a new unsubscribe secret in %s (mode 0600); set %s to use your own",
            config.paths.state.with_name(SECRET_FILE),
            config.digest.secret_env,
        )
    return secret


def _transport(config: Config, period: str, *, dry_run: bool, test: bool) -> delivery.Transport:
    """Dry runs and tests never share a folder with real outbox deliveries."""
    if dry_run:
        return delivery.OutboxTransport(config.paths.outbox / "dry-run" / period)
    if config.smtp.host:
        password = os.environ.get(config.smtp.password_env) or None
        return delivery.SmtpTransport(config.smtp, password)
    return delivery.OutboxTransport(
        config.paths.outbox / "test" / period if test else config.paths.outbox / period
    )


@dataclass
class _DigestJob:
    """One ``run_digest`` call: what every period it handles shares."""

    config: Config
    selection: Selection[Article]
    now: datetime
    out: Path
    secret: bytes
    dry_run: bool
    force: bool
    test_to: str | None
    progress: Progress | None
    subscribers: Sequence[Subscriber]

    @property
    def recording(self) -> bool:
        return not self.dry_run and self.test_to is None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.schedule.timezone)

    def current(
        self,
        state: StateStore,
        transport: delivery.Transport,
        since: datetime | None,
        result: DigestResult,
    ) -> None:
        """Today's period: report it done, resume it, or choose its articles and send."""
        settings = self.config.digest
        run = state.run(result.period)
        if run is not None and run.finished and self.test_to is None:
            result.note = "already sent for this period, nothing to do (--to ADDRESS sends a test)"
            result.recipients = result.skipped = len(self.subscribers)
            return
        if run is not None:
            articles = self._frozen(run)
        else:
            articles = self._new(state, since)
            count = digest.compose(
                articles, digest.topics_by_article(self.selection), settings, self.tz
            ).count
            if count < settings.min_articles and not self.force:
                what = (
                    "nothing new"
                    if not count
                    else f"only {count} new (digest.min_articles: {settings.min_articles})"
                )
                result.note = f"{what}, nothing sent (--force sends anyway)"
                result.recipients = result.skipped = len(self.subscribers)
                log.info("digest %s: %s", result.period, what)
                return
            if self.recording:
                run = state.create_run(
                    result.period, self.now, [a.id for a in articles], now=self.now
                )
        self._deliver(state, transport, run, result.period, articles, result)

    def resume(
        self, state: StateStore, transport: delivery.Transport, run: DigestRun, result: DigestResult
    ) -> None:
        """Finish an interrupted run of an earlier period, unless it is too old to matter."""
        if run.cutoff < self.now - timedelta(days=self.config.digest.max_age_days):
            log.warning("the digest of %s was interrupted long ago; not finishing it", run.period)
            state.finish_run(run.id, at=self.now)
            return
        log.info("finishing the interrupted digest of %s first", run.period)
        earlier = DigestResult(period=run.period)
        self._deliver(state, transport, run, run.period, self._frozen(run), earlier)
        result.resumed.append(f"{run.period} ({earlier.sent} sent, {earlier.failed} failed)")
        result.failures += earlier.failures
        result.failed += earlier.failed
        result.pending += earlier.pending
        result.error = earlier.error

    def _frozen(self, run: DigestRun) -> list[Article]:
        """A recorded run's articles as they read now (one no longer published is left out)."""
        current = {article.id: article for article in self.selection.articles}
        return [current[i] for i in run.article_ids if i in current]

    def _new(self, state: StateStore, since: datetime | None) -> list[Article]:
        """Articles that arrived after the watermark; records first sightings (real runs only)."""
        settings = self.config.digest
        candidates = digest.eligible(self.selection, self.now)
        known = state.first_seen()
        tracking_since = state.tracking_since() or self.now
        if since is None:
            since = state.watermark() or tracking_since - timedelta(
                hours=settings.first_window_hours
            )
        first_seen = {a.id: known.get(a.id, self.now) for a in candidates}
        if self.recording:
            unseen = {i: t for i, t in first_seen.items() if i not in known}
            state.record_first_seen(unseen, initial=tracking_since)
        return digest.new_articles(
            candidates,
            first_seen=first_seen,
            tracking_since=tracking_since,
            since=since,
            now=self.now,
            digested=state.digested_ids(),
            max_age=timedelta(days=settings.max_age_days),
        )

    def _deliver(
        self,
        state: StateStore,
        transport: delivery.Transport,
        run: DigestRun | None,
        period: str,
        articles: Sequence[Article],
        result: DigestResult,
    ) -> None:
        """Write the web copy, then send to everyone not yet handled, rendering per topic set.

        A recipient is recorded once the transport has made their message durable: at
        once over SMTP, per batch for the outbox (its files are synced together). A crash
        before the record only means the rerun writes the same files again.
        """
        topics_of = digest.topics_by_article(self.selection)
        masthead = self._masthead(period)
        everyone = digest.compose(articles, topics_of, self.config.digest, self.tz)
        result.articles, result.topics = everyone.count, len(everyone.sections)
        if self.test_to is None:
            result.web_copy = self._write_web_copy(everyone, masthead, self._reserve())
        if isinstance(transport, delivery.OutboxTransport):
            result.outbox = Path(transport.description)
        reserve = self._reserve()
        head = self._letterhead()
        editions: dict[frozenset[str] | None, _Edition] = {}
        handled = state.sends(run.id) if run is not None else {}
        suppressed = state.suppressed()
        total = result.recipients = len(self.subscribers)
        batch = _Batch(state, transport, run, self.now, result, dry_run=self.dry_run)
        for done, subscriber in enumerate(self.subscribers, start=1):
            wanted = subscriber.wants()
            if subscriber.key in suppressed or subscriber.key in handled:
                result.skipped += 1  # unsubscribed, or handled before an interruption
            else:
                if wanted not in editions:
                    chosen = everyone
                    if wanted is not None:
                        chosen = digest.compose(
                            articles, topics_of, self.config.digest, self.tz, wanted=wanted
                        )
                    page = digest.render(chosen, masthead, reserve=reserve)
                    editions[wanted] = _Edition(page, self._subject(page, period))
                edition = editions[wanted]
                if not edition.page.digest.count and (wanted is not None or not self.force):
                    result.skipped += 1  # nothing new in their topics
                else:
                    envelope = self._envelope(edition, head, subscriber, period)
                    try:
                        transport.send(envelope)
                    except RecipientError as failure:
                        log.warning("%s", failure)
                        result.failed += 1
                        result.failures.append(failure)
                        if failure.permanent:
                            batch.add(subscriber.key, "failed", failure.reason)
                        batch.incomplete = batch.incomplete or not failure.permanent
                    except DeliveryError as exc:
                        log.error("digest %s stopped: %s", period, exc)
                        result.error = str(exc)
                        result.pending = total - done + 1
                        batch.settle()  # those before it went out: record them
                        return
                    else:
                        batch.add(subscriber.key, "sent")
                    if batch.full and not batch.settle():
                        result.pending += total - done
                        return
            if self.progress is not None:
                self.progress(done, total)
        if batch.settle() and run is not None and not batch.incomplete:
            state.finish_run(run.id, at=self.now)

    def _masthead(self, period: str) -> digest.Masthead:
        site = self.config.site
        return digest.Masthead(
            site_title=site.title,
            site_url=site.url,
            language=site.language,
            period=period,
            date_label=digest.long_date(date.fromisoformat(period)),
            web_url=f"{site.url}digest/{period}.html",
            sender_name=self.config.digest.from_name or site.title,
            postal_address=self.config.digest.postal_address,
        )

    def _letterhead(self) -> _Letterhead:
        """What every message of a run shares, worked out once."""
        settings, site, smtp = self.config.digest, self.config.site, self.config.smtp
        host = messages.site_host(site.url)
        from_address = settings.from_address or f"digest@{host}"
        return _Letterhead(
            sender=Address(settings.from_name or site.title, addr_spec=from_address),
            envelope_from=smtp.envelope_from or from_address,
            host=host,
            list_id=f"<digest.{host}>",
        )

    def _subject(self, page: digest.Rendered, period: str) -> str:
        return messages.subject_line(
            self.config.digest.subject,
            site=self.config.site.title,
            date=digest.medium_date(date.fromisoformat(period)),
            headline=page.digest.headline,
            count=page.digest.count,
        )

    def _envelope(
        self, edition: _Edition, head: _Letterhead, subscriber: Subscriber, period: str
    ) -> messages.Envelope:
        """One subscriber's message: the edition's mold filled in, which gives the bytes
        the email package would (``Mold.make`` checks that on the edition's first)."""
        settings, site = self.config.digest, self.config.site
        token = messages.unsubscribe_token(self.secret, subscriber.email)
        unsubscribe = messages.personal_url(settings.unsubscribe_url, site.url, token)
        preferences = messages.personal_url(settings.preferences_url, site.url, token)
        message_id = messages.message_id(
            period, subscriber.email, head.host, test=self.test_to is not None
        )
        page = edition.page
        html_values, text_values = page.values(
            name=subscriber.name, unsubscribe_url=unsubscribe, preferences_url=preferences
        )
        if not edition.molded:
            edition.molded = True
            template = self._letter(
                edition, head, subscriber, message_id, token, unsubscribe, page.text, page.html
            )
            edition.mold = messages.Mold.make(template, token, text_values, html_values)
            if edition.mold is None:
                log.info("digest %s: building every message of one topic set in full", period)
        data = None
        if edition.mold is not None:
            data = edition.mold.fill(
                subscriber.name, subscriber.email, message_id, token, text_values, html_values
            )
        if data is None:
            html, text = page.personalise(
                name=subscriber.name, unsubscribe_url=unsubscribe, preferences_url=preferences
            )
            letter = self._letter(
                edition, head, subscriber, message_id, token, unsubscribe, text, html
            )
            data = messages.build(letter)
        return messages.Envelope(head.envelope_from, subscriber.email, data, message_id)

    def _letter(
        self,
        edition: _Edition,
        head: _Letterhead,
        subscriber: Subscriber,
        message_id: str,
        token: str,
        unsubscribe: str,
        text: str,
        html: str,
    ) -> messages.Letter:
        """Everything one subscriber's message says, for ``messages.build``."""
        settings = self.config.digest
        mailto = (
            messages.mailto_url(settings.unsubscribe_mailto, token)
            if settings.unsubscribe_mailto
            else ""
        )
        return messages.Letter(
            sender=head.sender,
            recipient=Address(subscriber.name, addr_spec=subscriber.email),
            subject=edition.subject,
            date=self.now,
            message_id=message_id,
            text=text,
            html=html,
            unsubscribe_url=unsubscribe,
            unsubscribe_mailto=mailto,
            reply_to=settings.reply_to,
            list_id=head.list_id,
        )

    def _reserve(self) -> int:
        """The HTML budget kept for a recipient's name and links (their longest possible form)."""
        settings, site = self.config.digest, self.config.site
        token = "x" * 24
        return digest.personal_reserve(
            messages.personal_url(settings.unsubscribe_url, site.url, token),
            messages.personal_url(settings.preferences_url, site.url, token),
        )

    def _write_web_copy(
        self, everyone: digest.Digest, masthead: digest.Masthead, reserve: int
    ) -> Path:
        """``<out>/digest/<date>.html`` and its index; outside the feeds' manifest, never pruned."""
        folder = OutputFolder(self.out / "digest")  # finish() is never called on it
        page = digest.render(everyone, masthead, web=True, reserve=reserve)
        name = f"{masthead.period}.html"
        folder.write(name, page.html.encode("utf-8"))
        items = _read_index(folder.path("index.json"))
        items[masthead.period] = digest.IndexItem(
            masthead.period, name, masthead.date_label, page.digest.headline, page.digest.count
        )
        listed = sorted(
            (item for item in items.values() if folder.path(item.file).is_file()),
            key=lambda item: item.period,
            reverse=True,
        )
        index = [dataclasses.asdict(item) for item in listed]
        folder.write(
            "index.json", json.dumps(index, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
        )
        folder.write("index.html", digest.render_index(listed, masthead))
        folder.sweep()  # temporaries of a digest killed mid-write
        self._write_digest_feeds(listed)
        return folder.path(name)

    def _write_digest_feeds(self, listed: Sequence[digest.IndexItem]) -> None:
        """``digest.rss.xml`` and ``digest.atom.xml``: the web copies, for RSS readers."""
        from publisher.feeds import render_atom, render_rss
        from publisher.specs import FeedSpec

        site, zone = self.config.site, ZoneInfo(self.config.schedule.timezone)
        issues = [
            Article(
                id=f"{site.url}digest/{item.file}",
                title=f"{site.title}: {item.date_label}",
                url=f"{site.url}digest/{item.file}",
                # Midnight of the digest's day where it was sent: never the clock.
                published_at=datetime.combine(
                    date.fromisoformat(item.period), datetime.min.time(), zone
                ).astimezone(UTC),
                quality=0.0,
                excerpt=_issue_summary(item),
            )
            for item in listed[:DIGEST_FEED_ITEMS]
        ]
        spec = FeedSpec(
            title=f"{site.title}: the digest",
            description=f"Every digest of {site.title}, as sent to subscribers.",
            rss_url=f"{site.url}digest.rss.xml",
            atom_url=f"{site.url}digest.atom.xml",
            page_url=f"{site.url}digest/index.html",
            hub_url=self.config.websub.hub,
            articles=issues,
        )
        folder = OutputFolder(self.out)  # outside the build's manifest: never pruned by it
        folder.write("digest.rss.xml", render_rss(spec, site))
        folder.write("digest.atom.xml", render_atom(spec, site))
        folder.sweep()
        announce_changed_feeds(self.config, folder.summary)


DIGEST_FEED_ITEMS = 20


@dataclass(frozen=True)
class _Letterhead:
    """The parts of a message that are the same for every recipient of a run."""

    sender: Address
    envelope_from: str
    host: str
    list_id: str


@dataclass
class _Edition:
    """One topic set's rendered digest; its mold is made from its first message."""

    page: digest.Rendered
    subject: str
    mold: messages.Mold | None = None
    molded: bool = False


@dataclass
class _Batch:
    """Recipients whose messages went out but are not recorded yet.

    ``settle`` asks the transport to make them durable (the outbox syncs its files),
    then records them in one transaction: never recorded before they are durable, so a
    crash in between only means the rerun sends them again (for the outbox: writes the
    same files again, as their names come from the address).
    """

    state: StateStore
    transport: delivery.Transport
    run: DigestRun | None
    now: datetime
    result: DigestResult
    dry_run: bool
    incomplete: bool = False  # a temporary failure: the run is not finished
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, recipient: str, status: str, detail: str = "") -> None:
        self.rows.append((recipient, status, detail))

    @property
    def full(self) -> bool:
        return len(self.rows) >= self.transport.batch

    def settle(self) -> bool:
        """Commit the transport, then record the batch. False when the transport cannot
        commit: the run stops with the error, and the batch is left for the rerun."""
        rows, self.rows = self.rows, []
        sent = sum(1 for _, status, _ in rows if status == "sent")
        try:
            self.transport.commit()
        except DeliveryError as exc:
            log.error("digest stopped, %d messages not recorded: %s", len(rows), exc)
            self.result.error = self.result.error or str(exc)
            self.result.pending += sent
            return False
        if self.run is not None and rows:
            self.state.record_sends(self.run.id, rows, at=self.now)
        if self.dry_run:
            self.result.written += sent
        else:
            self.result.sent += sent
        return True


def _issue_summary(item: digest.IndexItem) -> str:
    stories = f"{item.count} stories" if item.count != 1 else "1 story"
    return f"{stories}, led by: {item.headline}" if item.headline else stories


def _read_index(path: Path) -> dict[str, digest.IndexItem]:
    """The web copies listed so far; a missing or damaged list is rebuilt from the files."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {
            str(item["period"]): digest.IndexItem(
                period=str(item["period"]),
                file=str(item["file"]),
                date_label=str(item["date_label"]),
                headline=str(item["headline"]),
                count=int(item["count"]),
            )
            for item in raw
        }
    except (OSError, ValueError, TypeError, KeyError):
        items = {}
        for page in sorted(path.parent.glob("????-??-??.html")):
            with contextlib.suppress(ValueError):
                day = date.fromisoformat(page.stem)
                items[page.stem] = digest.IndexItem(
                    page.stem, page.name, digest.long_date(day), "", 0
                )
        return items


def unsubscribe(
    config: Config, entries: Sequence[str], *, undo: bool = False, now: datetime | None = None
) -> list[tuple[str, str]]:
    """Put addresses on the suppression list (or take them off with ``undo``).

    An entry without ``@`` is taken as the token of an unsubscribe link and matched
    against the subscribers file. Returns ``(entry, what happened)`` for each.
    """
    moment = now or datetime.now(UTC)
    tokens: dict[str, str] = {}
    if any("@" not in entry for entry in entries):
        secret = _secret(config)
        for subscriber in load_subscribers(config.paths.subscribers).subscribers:
            tokens[messages.unsubscribe_token(secret, subscriber.email)] = subscriber.email
    outcomes = []
    with StateStore.open(config.paths.state) as state:
        for entry in entries:
            address = entry.strip() if "@" in entry else tokens.get(entry.strip(), "")
            reason = check_address(address) if address else "unknown token: no subscriber has it"
            if reason:
                outcomes.append((entry, reason if not address else f"unknown address ({reason})"))
            elif undo:
                changed = state.unsuppress(address)
                outcomes.append(
                    (
                        entry,
                        f"{address} resubscribed" if changed else f"{address} was not unsubscribed",
                    )
                )
            else:
                changed = state.suppress(address, at=moment, reason="publisher unsubscribe")
                outcomes.append(
                    (
                        entry,
                        f"{address} unsubscribed"
                        if changed
                        else f"{address} was already unsubscribed",
                    )
                )
    return outcomes


def suppressed_addresses(config: Config) -> list[str]:
    """The suppression list, one ``address (since ...)`` line each, sorted."""
    if not config.paths.state.exists():
        return []
    with StateStore.open(config.paths.state) as state:
        return [
            f"{address} (since {at:%Y-%m-%d %H:%M} UTC)" for address, at in state.suppressions()
        ]

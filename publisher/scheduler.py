"""APScheduler wiring: the long-running service and the one-shot runs share one entry point.

* ``run_job`` is one run of a job under its file lock, logged and recorded in the run
  history; ``publisher run`` calls it directly, the service through ``run_scheduled``.
* The service is a BlockingScheduler whose jobs live in a SQLite job store
  (``jobs.sqlite`` in the state folder), so a run that fell due while the service was down
  is caught up once at the next start if it is within its grace time, and skipped (and
  logged) if not. Jobs have fixed ids and are re-added at every start from the settings,
  so a changed schedule takes effect then, never as a second copy.
* Jobs run one at a time in a single worker thread: feedgen's date formatting changes the
  process locale and premailer is not thread-safe, so the feeds and the digest never run
  side by side inside the service.
* SIGTERM/SIGINT: the run in progress finishes, a run still waiting for its lock gives up,
  the scheduler shuts down, exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_STARTED,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import URL

from publisher import locks, runlog
from publisher.config import Config, load_config
from publisher.errors import ConfigError, PublisherError
from publisher.schedule import CrontabTrigger

log = logging.getLogger(__name__)

JOB_STORE_NAME = "jobs.sqlite"

# Set while the service stops, so that a run still waiting for its lock (or queued behind
# another job) gives up. A module global because jobs must be plain module-level functions
# with picklable arguments: the job store keeps a reference to them, not an object.
_stopping = threading.Event()


@dataclass(frozen=True)
class JobPlan:
    """One job as the settings define it."""

    name: str
    trigger: CrontabTrigger
    grace: timedelta


@dataclass(frozen=True)
class RunResult:
    """How one run went: ``outcome`` is ok, failed or skipped; ``detail`` is the summary or error."""

    job: str
    outcome: str
    detail: str
    seconds: float
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


def plans(config: Config) -> list[JobPlan]:
    """Every job with its trigger (in the configured zone) and grace time, in run order."""
    schedule = config.schedule
    zone = ZoneInfo(schedule.timezone)
    return [
        JobPlan("feeds", CrontabTrigger(schedule.feeds, zone), schedule.misfire_grace.feeds),
        JobPlan("digest", CrontabTrigger(schedule.digest, zone), schedule.misfire_grace.digest),
    ]


def state_folder(config: Config) -> Path:
    """The folder holding the state store, the job store and the lock files."""
    return config.paths.state.parent


# -- one run -------------------------------------------------------------------------------


def _run_feeds(config: Config) -> str:
    from publisher.pipeline import build

    return build(config).summary()


def _run_digest(config: Config) -> str:
    from publisher.digest_run import run_digest

    result = run_digest(config)
    summary: str = result.summary()
    if not result.ok:
        # Failed or pending recipients make the run a failure in the history and exit code.
        raise PublisherError(summary)
    return summary


ACTIONS: dict[str, Callable[[Config], str]] = {"feeds": _run_feeds, "digest": _run_digest}


def run_job(name: str, config: Config, *, origin: str = "manual") -> RunResult:
    """One run of job ``name`` now, holding its lock; a failed run is reported, never raised."""
    action = ACTIONS[name]
    if origin == "schedule" and _stopping.is_set():
        log.info("%s run not started: the service is stopping", name)
        return RunResult(name, "skipped", "the service is stopping", 0.0)
    skip = config.schedule.overlap == "skip"
    timeout = 0.0 if skip else config.schedule.overlap_timeout.total_seconds()
    asked = datetime.now(UTC)
    lock = locks.lock_path(state_folder(config), name)
    try:
        with locks.hold(lock, name, timeout=timeout, stop=_stopping):
            return _run_locked(name, action, config, origin)
    except locks.LockBusyError as exc:
        if skip or exc.stopped:
            log.info("%s", exc)
            outcome, error = "skipped", None
        else:
            log.error("%s (schedule.overlap_timeout)", exc)
            outcome, error = "failed", exc
        _record(runlog.record_event, config, name, origin, asked, outcome, str(exc))
        return RunResult(name, outcome, str(exc), 0.0, error)


def _run_locked(
    name: str, action: Callable[[Config], str], config: Config, origin: str
) -> RunResult:
    """Run ``action``; the history is written before the log line, so status never lags the log."""
    run_id = _record(runlog.record_start, config, name, origin, datetime.now(UTC))
    log.info("%s run started (%s)", name, origin)
    started = time.monotonic()
    try:
        detail = action(config)
    except Exception as exc:
        seconds = time.monotonic() - started
        if run_id is not None:
            _record(
                runlog.record_end, config, run_id, datetime.now(UTC), seconds, "failed", str(exc)
            )
        log.exception("%s run failed after %.2f s: %s", name, seconds, exc)
        return RunResult(name, "failed", str(exc), seconds, exc)
    seconds = time.monotonic() - started
    if run_id is not None:
        _record(runlog.record_end, config, run_id, datetime.now(UTC), seconds, "ok", detail)
    log.info("%s run finished in %.2f s: %s", name, seconds, detail)
    return RunResult(name, "ok", detail, seconds)


def _record(function: Callable[..., Any], config: Config, *args: Any) -> Any:
    """Write to the run history; a broken state store must not fail the run itself."""
    try:
        return function(config.paths.state, *args)
    except Exception as exc:  # sqlite3.Error, OSError: reported, the work goes on
        log.warning("could not update the run history in %s: %s", config.paths.state, exc)
        return None


def run_scheduled(job: str, config_path: str | None) -> None:
    """What the job store calls: read the settings afresh (as ``publisher run`` does), then run."""
    try:
        config = load_config(Path(config_path) if config_path else None)
    except ConfigError as exc:
        log.error("%s run not started: %s", job, exc)
        return
    run_job(job, config, origin="schedule")


# -- the scheduler -------------------------------------------------------------------------


def create_scheduler(config: Config, scheduler_class: type[BaseScheduler] | None = None) -> Any:
    """A scheduler on the persistent job store; the jobs are (re)installed as it starts.

    ``scheduler_class`` defaults to the service's BlockingScheduler; tests pass
    BackgroundScheduler to drive the same set-up from a thread.
    """
    folder = state_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    url = URL.create("sqlite", database=str((folder / JOB_STORE_NAME).resolve()))
    scheduler = (scheduler_class or _Service)(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=ZoneInfo(config.schedule.timezone),
    )
    config_path = str(config.source.resolve()) if config.source else None

    def on_start(_event: SchedulerEvent) -> None:
        try:
            install_jobs(scheduler, config, config_path)
        except Exception:
            log.exception("could not set up the jobs; stopping")
            scheduler.shutdown(wait=False)

    def on_not_run(event: JobExecutionEvent | JobSubmissionEvent) -> None:
        _report_not_run(config, event)

    scheduler.add_listener(on_start, EVENT_SCHEDULER_STARTED)
    scheduler.add_listener(on_not_run, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def install_jobs(scheduler: Any, config: Config, config_path: str | None) -> None:
    """Add every job under its fixed id, catching up (or skipping) a run missed while down.

    APScheduler's ``replace_existing`` would recompute the next run time from now and so
    forget a missed run; we read the stored one first and carry it over when it is due.
    """
    now = datetime.now(UTC)
    wanted = plans(config)
    for plan in wanted:
        options: dict[str, Any] = {}
        stored = _stored_next_run(scheduler, plan.name)
        if stored is not None and stored <= now:
            due = _due_within_grace(plan, stored, now)
            if due is not None:
                options["next_run_time"] = due
                log.info(
                    "%s: the run due at %s was missed while the service was down; running it now "
                    "(schedule.misfire_grace.%s is %s; several missed runs count as one)",
                    plan.name,
                    _local(due, plan),
                    plan.name,
                    _span(plan.grace),
                )
            else:
                detail = (
                    f"missed the run due at {_local(stored, plan)} while the service was down; "
                    f"more than {_span(plan.grace)} late (schedule.misfire_grace.{plan.name}), "
                    "so it is skipped"
                )
                log.warning("%s: %s", plan.name, detail)
                _record(runlog.record_event, config, plan.name, "schedule", now, "missed", detail)
        scheduler.add_job(
            run_scheduled,
            trigger=plan.trigger,
            args=(plan.name, config_path),
            id=plan.name,
            name=plan.name,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(plan.grace.total_seconds())),
            **options,
        )
    names = {plan.name for plan in wanted}
    for job in scheduler.get_jobs():
        if job.id not in names:
            log.info("removing job %r from the job store: no longer defined", job.id)
            scheduler.remove_job(job.id)
        else:
            log.info("%s: %s, next run at %s", job.id, job.trigger, job.next_run_time.isoformat())


def _stored_next_run(scheduler: Any, name: str) -> datetime | None:
    """The next run time the previous service left in the job store, if any."""
    try:
        job = scheduler.get_job(name)
    except Exception as exc:  # a stored job this version cannot read back
        log.warning("%s: discarding the stored job, it cannot be read: %s", name, exc)
        scheduler.remove_job(name)
        return None
    return None if job is None else job.next_run_time


def _due_within_grace(plan: JobPlan, stored: datetime, now: datetime) -> datetime | None:
    """The first missed fire time still within the grace window, or None if all are too late.

    Only the window is walked: a service down for a year on a one-minute schedule must not
    replay half a million fire times to learn that they are all too late. The scheduler then
    coalesces the fire times from this one up to now into a single run.
    """
    window = max(stored.astimezone(UTC), now - plan.grace)
    due = stored if stored >= window else plan.trigger.get_next_fire_time(None, window)
    return due if due is not None and due <= now else None


def _report_not_run(config: Config, event: JobExecutionEvent | JobSubmissionEvent) -> None:
    """A run the scheduler did not start: too late (beyond grace), or the last one still going."""
    if event.code == EVENT_JOB_MISSED:
        outcome = "missed"
        detail = (
            f"the run due at {event.scheduled_run_time.isoformat()} could not start within "
            f"schedule.misfire_grace.{event.job_id} (busy, or the machine was asleep); skipped"
        )
    else:
        outcome = "skipped"
        detail = "the previous run was still going; skipped"
    log.warning("%s: %s", event.job_id, detail)
    _record(
        runlog.record_event, config, event.job_id, "schedule", datetime.now(UTC), outcome, detail
    )


def _local(moment: datetime, plan: JobPlan) -> str:
    return moment.astimezone(plan.trigger.timezone).isoformat()


def _span(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- status ------------------------------------------------------------------------------


def status_lines(config: Config, now: datetime, count: int = 3) -> list[str]:
    """What ``publisher status`` prints: the service, then each job's schedule and runs."""
    from publisher.schedule import next_fire_times

    folder = state_folder(config)
    service = locks.holder(locks.lock_path(folder, "service"))
    lines = [f"service: running, pid {service}" if service else "service: not running"]
    for plan in plans(config):
        zone = plan.trigger.timezone
        lines.append(
            f"{plan.name}: {plan.trigger.expression!r} in {zone.key}, "
            f"misfire grace {_span(plan.grace)}"
        )
        times = [t.isoformat(timespec="seconds") for t in next_fire_times(plan.trigger, now, count)]
        for index, moment in enumerate(times or ["none"]):
            lines.append(f"  {'next runs:' if index == 0 else '':<10} {moment}")
        lines.append(f"  {'last run:':<10} {_describe_last(config, plan.name, zone)}")
    return lines


def _describe_last(config: Config, name: str, zone: ZoneInfo) -> str:
    try:
        records = runlog.history(config.paths.state, name)
    except Exception as exc:  # sqlite3.Error: show it, status must not crash
        return f"unknown ({config.paths.state}: {exc})"
    if not records:
        return "never"
    last = records[0]
    when = last.started.astimezone(zone).isoformat(timespec="seconds")
    outcome = last.outcome
    if outcome == "running":
        holder = locks.holder(locks.lock_path(state_folder(config), name))
        outcome = (
            f"running, pid {last.pid}"
            if holder == last.pid
            else "interrupted (the process ended before recording an outcome)"
        )
    elif last.seconds:
        outcome = f"{outcome} in {last.seconds:.2f} s"
    detail = f": {last.detail}" if last.detail else ""
    return f"{when}, {outcome} ({last.origin}){detail}"


# -- the service ---------------------------------------------------------------------------


class _StopRequested(Exception):
    """Raised in the main thread by the signal handler to leave the scheduler's loop."""


class _Service(BlockingScheduler):  # type: ignore[misc]  # APScheduler ships no type hints
    """A BlockingScheduler that leaves its loop on a signal only between two passes.

    A signal that arrives while the loop is reading the job store (or before its first
    pass) is held until that pass ends, so a job is never left half submitted.
    """

    _busy = True
    _stop_requested = False

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler (main thread): ask the loop to stop."""
        name = signal.Signals(signum).name
        if self._stop_requested:
            log.info("%s again: still waiting for the current run to finish", name)
            return
        self._stop_requested = True
        log.info("%s received: stopping once the current run (if any) has finished", name)
        if not self._busy:
            raise _StopRequested

    def _process_jobs(self) -> float | None:
        self._busy = True
        try:
            wait: float | None = super()._process_jobs()
        finally:
            self._busy = False
        if self._stop_requested:
            raise _StopRequested
        return wait


def serve(config: Config) -> None:
    """Run the schedule in the foreground until SIGTERM or SIGINT, then return."""
    folder = state_folder(config)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(
                locks.hold(locks.lock_path(folder, "service"), "publisher schedule")
            )
        except locks.LockBusyError as exc:
            raise PublisherError(
                f"another 'publisher schedule' (pid {exc.holder or '?'}) already uses {folder}; "
                "stop it first, or give this one its own paths.state"
            ) from exc
        _stopping.clear()
        stack.callback(_stopping.set)
        scheduler = create_scheduler(config)
        for sig in (signal.SIGTERM, signal.SIGINT):
            stack.callback(signal.signal, sig, signal.signal(sig, scheduler.request_stop))
        log.info("scheduler starting (pid %d, time zone %s)", os.getpid(), config.schedule.timezone)
        try:
            scheduler.start()  # returns only if the set-up failed and shut it down
        except _StopRequested:
            _stopping.set()
            scheduler.shutdown(wait=True)
            log.info("scheduler stopped")
            return
        raise PublisherError("the jobs could not be set up (see the log above)")

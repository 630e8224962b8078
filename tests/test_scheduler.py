"""The real APScheduler on the real SQLite job store, driven from a background thread.

To look as if the service had been down, a test starts the scheduler, moves a job's next
run time into the past through the scheduler's own API, and stops it; the next start then
finds that state in ``jobs.sqlite``. Nothing sleeps waiting for the clock.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler
from schedule_helpers import left_down, make_project, stored_jobs, write_config

from publisher import runlog
from publisher.config import Config, load_config
from publisher.scheduler import create_scheduler

WAIT = 60  # an upper bound for a run to be reported, never a timing assertion


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


@contextmanager
def running(config: Config) -> Iterator[tuple[Any, queue.Queue[JobExecutionEvent]]]:
    """A started BackgroundScheduler set up exactly as the service's, and its job events."""
    scheduler = create_scheduler(config, BackgroundScheduler)
    events: queue.Queue[JobExecutionEvent] = queue.Queue()
    scheduler.add_listener(events.put, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start()
    try:
        yield scheduler, events
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def next_event(events: queue.Queue[JobExecutionEvent], job: str) -> JobExecutionEvent:
    while True:
        event = events.get(timeout=WAIT)
        if event.job_id == job:
            return event


def daily_at(moment: datetime) -> str:
    """A crontab firing every day at ``moment``'s time of day (UTC, to the minute)."""
    return f"{moment.minute} {moment.hour} * * *"


def test_a_job_fires_and_publishes(project: Path) -> None:
    config = load_config(project)
    with running(config) as (scheduler, events):
        assert {job.id for job in scheduler.get_jobs()} == {"feeds", "digest"}
        scheduler.modify_job("feeds", next_run_time=datetime.now(UTC))
        event = next_event(events, "feeds")
        assert event.code == EVENT_JOB_EXECUTED
    assert (project.parent / "feeds" / "all.rss.xml").is_file()
    [record] = runlog.history(config.paths.state, "feeds")
    assert (record.outcome, record.origin) == ("ok", "schedule")
    assert record.detail.startswith("Done: 3 documents read")


def test_jobs_are_stored_with_fixed_ids_and_a_restart_does_not_duplicate_them(
    project: Path,
) -> None:
    config = load_config(project)
    for _ in range(3):
        with running(config):
            pass
    assert [job_id for job_id, _ in stored_jobs(config)] == ["digest", "feeds"]


def test_a_changed_schedule_replaces_the_job_at_the_next_start(project: Path) -> None:
    with running(load_config(project)) as (scheduler, _):
        assert scheduler.get_job("feeds").trigger.expression == "*/15 * * * *"
    changed = load_config(write_config(project.parent, feeds="7 * * * *"))
    with running(changed) as (scheduler, _):
        job = scheduler.get_job("feeds")
        assert job.trigger.expression == "7 * * * *"
        assert job.next_run_time.minute == 7
    assert [job_id for job_id, _ in stored_jobs(changed)] == ["digest", "feeds"]


def test_job_options_are_explicit(project: Path) -> None:
    with running(load_config(project)) as (scheduler, _):
        feeds, digest = scheduler.get_job("feeds"), scheduler.get_job("digest")
    assert (feeds.misfire_grace_time, digest.misfire_grace_time) == (300, 21600)
    assert feeds.coalesce and feeds.max_instances == 1
    assert feeds.func_ref == "publisher.scheduler:run_scheduled"
    assert feeds.args == ("feeds", str(project.resolve()))


def test_a_run_missed_while_down_is_caught_up_once(project: Path) -> None:
    """Thirty one-minute runs were missed; the ones within the grace time coalesce into one run."""
    config = load_config(
        write_config(project.parent, feeds="* * * * *", misfire_grace={"feeds": "5m"})
    )
    started = datetime.now(UTC)
    left_down(config, "feeds", started - timedelta(minutes=30))
    with running(config) as (scheduler, events):
        first = next_event(events, "feeds")
        scheduler.shutdown(wait=True)
    assert first.code == EVENT_JOB_EXECUTED
    assert started - timedelta(minutes=5) <= first.scheduled_run_time <= started
    later = [event for event in iter_events(events) if event.scheduled_run_time <= started]
    assert later == []  # coalesced: no second run for the other missed times
    assert (project.parent / "feeds" / "index.html").is_file()


def iter_events(events: queue.Queue[JobExecutionEvent]) -> list[JobExecutionEvent]:
    found = []
    while not events.empty():
        found.append(events.get_nowait())
    return found


def test_a_daily_run_missed_within_its_grace_time_runs(project: Path) -> None:
    due = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    config = load_config(
        write_config(project.parent, feeds=daily_at(due), misfire_grace={"feeds": "1h"})
    )
    left_down(config, "feeds", due)
    with running(config) as (_, events):
        event = next_event(events, "feeds")
    assert (event.code, event.scheduled_run_time) == (EVENT_JOB_EXECUTED, due)
    assert (project.parent / "feeds" / "index.html").is_file()


def test_a_run_missed_beyond_its_grace_time_is_skipped_and_logged(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    due = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    config = load_config(
        write_config(project.parent, feeds=daily_at(due), misfire_grace={"feeds": "5m"})
    )
    left_down(config, "feeds", due)
    caplog.set_level(logging.INFO, logger="publisher")
    with running(config) as (scheduler, events):
        next_run = scheduler.get_job("feeds").next_run_time
    assert next_run == due + timedelta(days=1)
    assert iter_events(events) == []
    assert not (project.parent / "feeds").exists()
    assert (
        f"feeds: missed the run due at {due.isoformat()} while the service was down" in caplog.text
    )
    [record] = runlog.history(config.paths.state, "feeds")
    assert record.outcome == "missed" and "more than 5m late" in record.detail


def test_a_failing_run_is_logged_and_the_next_run_tries_again(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seeds = project.parent / "seeds"
    hidden = seeds.rename(project.parent / "elsewhere")
    config = load_config(project)
    caplog.set_level(logging.INFO, logger="publisher")
    with running(config) as (scheduler, events):
        scheduler.modify_job("feeds", next_run_time=datetime.now(UTC))
        assert (
            next_event(events, "feeds").code == EVENT_JOB_EXECUTED
        )  # the job reported, not raised
        assert scheduler.running
        hidden.rename(seeds)
        scheduler.modify_job("feeds", next_run_time=datetime.now(UTC))
        next_event(events, "feeds")
    [failure] = [r for r in caplog.records if r.message.startswith("feeds run failed")]
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert "paths.seeds: folder not found" in failure.message
    latest, earlier = runlog.history(config.paths.state, "feeds", limit=2)
    assert (earlier.outcome, latest.outcome) == ("failed", "ok")
    assert (project.parent / "feeds" / "index.html").is_file()


def test_each_run_logs_one_line_at_start_and_one_at_end(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="publisher")
    with running(load_config(project)) as (scheduler, events):
        scheduler.modify_job("feeds", next_run_time=datetime.now(UTC))
        next_event(events, "feeds")
    lines = [r.message for r in caplog.records if r.message.startswith("feeds run")]
    assert len(lines) == 2
    assert lines[0] == "feeds run started (schedule)"
    assert lines[1].startswith("feeds run finished in ")
    assert "Done: 3 documents read, 0 rejected" in lines[1]

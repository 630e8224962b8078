"""The per-job file lock, alone and between real processes (`publisher run` against another holder)."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

import pytest
from schedule_helpers import PUBLISHER, Child, hold_lock, make_project, release

from publisher import locks, runlog


def test_a_held_lock_is_busy_for_everyone_else(tmp_path: Path) -> None:
    path = locks.lock_path(tmp_path, "feeds")
    with locks.hold(path, "feeds"):
        assert path.read_text() == f"{os.getpid()}\n"
        assert locks.holder(path) == os.getpid()
        with (
            pytest.raises(
                locks.LockBusyError, match=f"feeds: already running in pid {os.getpid()}"
            ),
            locks.hold(path, "feeds"),
        ):
            pass  # pragma: no cover - never entered
    assert locks.holder(path) is None
    with locks.hold(path, "feeds"):  # free again once released
        pass


def test_a_bounded_wait_gives_up(tmp_path: Path) -> None:
    path = locks.lock_path(tmp_path, "feeds")
    with (
        locks.hold(path, "feeds"),
        pytest.raises(locks.LockBusyError, match="gave up after waiting") as caught,
        locks.hold(path, "feeds", timeout=0.2),
    ):
        pass  # pragma: no cover - never entered
    assert caught.value.waited >= 0.2
    assert not caught.value.stopped


def test_a_wait_ends_when_told_to_stop(tmp_path: Path) -> None:
    path = locks.lock_path(tmp_path, "feeds")
    stop = threading.Event()
    outcome: list[BaseException] = []

    def waiter() -> None:
        try:
            with locks.hold(path, "feeds", timeout=3600, stop=stop):
                pass  # pragma: no cover
        except locks.LockBusyError as exc:
            outcome.append(exc)

    with locks.hold(path, "feeds"):
        thread = threading.Thread(target=waiter)
        thread.start()
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], locks.LockBusyError)
    assert outcome[0].stopped


def test_the_lock_is_freed_when_its_holder_dies(tmp_path: Path) -> None:
    path = locks.lock_path(tmp_path, "feeds")
    holder = hold_lock(path, tmp_path)
    holder.process.kill()
    holder.finish()
    with locks.hold(path, "feeds"):  # no stale lock after a crash
        pass


# -- two processes ------------------------------------------------------------------------------


def test_run_skips_while_another_process_runs_the_job(tmp_path: Path) -> None:
    config = make_project(tmp_path, overlap="skip")
    holder = hold_lock(tmp_path / "state" / "locks" / "feeds.lock", tmp_path)
    try:
        run = Child([*PUBLISHER, "run", "feeds", "--config", config], tmp_path)
        assert run.finish() == 0, run.stderr
    finally:
        release(holder)
    assert f"feeds: already running in pid {holder.process.pid}; this run is skipped" in run.stderr
    assert not (tmp_path / "feeds").exists()
    [record] = runlog.history(tmp_path / "state" / "state.sqlite", "feeds")
    assert record.outcome == "skipped"


def test_run_gives_up_after_the_overlap_timeout(tmp_path: Path) -> None:
    config = make_project(tmp_path, overlap="wait", overlap_timeout="1s")
    holder = hold_lock(tmp_path / "state" / "locks" / "feeds.lock", tmp_path)
    try:
        run = Child([*PUBLISHER, "run", "feeds", "--config", config], tmp_path)
        assert run.finish() == 1
    finally:
        release(holder)
    assert "gave up after waiting 1 s" in run.stderr
    assert not (tmp_path / "feeds").exists()


def test_two_runs_of_the_same_job_never_overlap(tmp_path: Path) -> None:
    """Two `publisher run feeds` wait behind a third holder, then run one after the other."""
    config = make_project(tmp_path, overlap="wait", overlap_timeout="2m")
    lock = tmp_path / "state" / "locks" / "feeds.lock"
    holder = hold_lock(lock, tmp_path)
    try:
        runs = [Child([*PUBLISHER, "run", "feeds", "--config", config], tmp_path) for _ in range(2)]
        for run in runs:
            run.wait_for(f"feeds: waiting up to 120 s for the run in pid {holder.process.pid}")
        assert not (tmp_path / "feeds").exists()  # both are blocked
        released = datetime.now().astimezone()
    finally:
        release(holder)
    for run in runs:
        assert run.finish() == 0, run.stderr
        assert "feeds run finished" in run.stderr
    records = runlog.history(tmp_path / "state" / "state.sqlite", "feeds", limit=10)
    assert [record.outcome for record in records] == ["ok", "ok"]
    later, earlier = records
    assert earlier.finished is not None and earlier.started >= released
    assert later.started >= earlier.finished  # one after the other, never together
    assert {earlier.pid, later.pid} == {run.process.pid for run in runs}
    assert (tmp_path / "feeds" / "index.opml").is_file()


def test_the_digest_lock_does_not_block_the_feeds(tmp_path: Path) -> None:
    config = make_project(tmp_path, overlap="skip")
    holder = hold_lock(tmp_path / "state" / "locks" / "digest.lock", tmp_path)
    try:
        run = Child([*PUBLISHER, "run", "feeds", "--config", config], tmp_path)
        assert run.finish() == 0, run.stderr
    finally:
        release(holder)
    assert "feeds run finished" in run.stderr

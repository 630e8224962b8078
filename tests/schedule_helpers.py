"""Helpers for the scheduler tests: a project folder on disk and child processes we can watch."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from apscheduler.schedulers.base import BaseScheduler
from conftest import SITE_URL, render_article

from publisher.config import Config
from publisher.scheduler import create_scheduler

PUBLISHER = (sys.executable, "-m", "publisher")


def make_project(root: Path, articles: int = 3, **schedule: Any) -> Path:
    """A seeds folder with a few articles and a publisher.yaml; returns the config path."""
    seeds = root / "seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    for number in range(articles):
        (seeds / f"{number:03d}.txt").write_text(render_article(), encoding="utf-8")
    return write_config(root, **schedule)


def write_config(root: Path, **schedule: Any) -> Path:
    """(Re)write ``root/publisher.yaml``; the digest is set to a time the tests never reach."""
    settings = {"timezone": "UTC", "feeds": "*/15 * * * *", "digest": "0 0 1 1 *", **schedule}
    data = {
        "site": {"url": SITE_URL},
        "paths": {"seeds": "seeds", "output": "feeds", "state": "state/state.sqlite"},
        "schedule": settings,
    }
    path = root / "publisher.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class StoreEditor(BaseScheduler):  # type: ignore[misc]
    """A scheduler that opens the job store and never runs a job: for editing stored jobs.

    (A paused BackgroundScheduler will not do: its loop makes one last pass over the job
    store after ``shutdown``, which would run the job we just made due and move it on.)
    """

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def wakeup(self) -> None:
        pass


def left_down(config: Config, job: str, next_run_time: datetime) -> None:
    """Leave the job store as a service stopped with ``job`` due at ``next_run_time`` would.

    The jobs are installed as by a normal start, then ``job`` is moved through the
    scheduler's own API.
    """
    editor = create_scheduler(config, StoreEditor)
    editor.start()
    editor.modify_job(job, next_run_time=next_run_time)
    editor.shutdown()
    assert dict(stored_jobs(config))[job] == next_run_time.timestamp()


def stored_jobs(config: Config) -> list[tuple[str, float]]:
    """The rows of APScheduler's table, read with plain sqlite3."""
    path = config.paths.state.parent / "jobs.sqlite"
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT id, next_run_time FROM apscheduler_jobs ORDER BY id"
        ).fetchall()
    finally:
        connection.close()


class Child:
    """A child process whose stderr is read line by line in the background."""

    def __init__(
        self, args: Sequence[str | os.PathLike[str]], cwd: Path, *, stdin: bool = False
    ) -> None:
        self.process = subprocess.Popen(
            [str(arg) for arg in args],
            cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stdout = ""
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """The first stderr line matching ``pattern``; fails if the child ends or hangs first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                if not self._readers[0].is_alive():
                    raise AssertionError(
                        f"exited ({self.process.poll()}) before {pattern!r}:\n{self.stderr}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout} s:\n{self.stderr}"
                    )
                self._changed.wait(remaining)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the child to exit; returns its exit code, with all output collected."""
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        for reader in self._readers:
            reader.join(timeout)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code


HOLD_LOCK = """
import sys
from pathlib import Path
from publisher import locks
with locks.hold(Path(sys.argv[1]), "holder"):
    print("held", flush=True, file=sys.stderr)
    sys.stdin.read()
print("released", flush=True, file=sys.stderr)
"""


def hold_lock(path: Path, cwd: Path) -> Child:
    """A separate process holding the lock at ``path`` until its stdin is closed."""
    child = Child([sys.executable, "-c", HOLD_LOCK, path], cwd, stdin=True)
    child.wait_for("^held$")
    return child


def release(child: Child) -> None:
    assert child.process.stdin is not None
    child.process.stdin.close()
    assert child.finish() == 0

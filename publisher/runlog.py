"""The job run history that ``publisher status`` shows: one row per run, in the state store.

Our own table in the digest's SQLite file, opened through ``publisher.state.connect`` (WAL,
busy timeout, the file's schema version), so there is one state file to back up.

Each run is recorded when it starts (outcome ``running``) and updated when it ends, so a
run killed half-way shows up as interrupted rather than vanishing. Only the newest
``KEEP`` rows per job are kept.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from publisher import state

KEEP = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    origin TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    seconds REAL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (job, id);
"""


@dataclass(frozen=True)
class RunRecord:
    """One run of a job as recorded: ``outcome`` is running, ok, failed, skipped or missed."""

    job: str
    origin: str
    started: datetime
    finished: datetime | None
    seconds: float | None
    outcome: str
    detail: str
    pid: int


def record_start(path: Path, job: str, origin: str, now: datetime) -> int:
    """Record a run that has just started; returns its id for ``record_end``."""
    with _writing(path) as connection:
        cursor = connection.execute(
            "INSERT INTO job_runs (job, origin, started, outcome, pid) VALUES (?, ?, ?, 'running', ?)",
            (job, origin, _text(now), _pid()),
        )
        run_id = cursor.lastrowid
        _prune(connection, job)
    assert run_id is not None
    return run_id


def record_end(
    path: Path, run_id: int, now: datetime, seconds: float, outcome: str, detail: str
) -> None:
    """Record how the run ``run_id`` ended."""
    with _writing(path) as connection:
        connection.execute(
            "UPDATE job_runs SET finished = ?, seconds = ?, outcome = ?, detail = ? WHERE id = ?",
            (_text(now), seconds, outcome, detail, run_id),
        )


def record_event(
    path: Path, job: str, origin: str, now: datetime, outcome: str, detail: str
) -> None:
    """Record a run that did not happen (skipped or missed), so status can say why."""
    with _writing(path) as connection:
        connection.execute(
            "INSERT INTO job_runs (job, origin, started, finished, seconds, outcome, detail, pid) "
            "VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
            (job, origin, _text(now), _text(now), outcome, detail, _pid()),
        )
        _prune(connection, job)


def history(path: Path, job: str, limit: int = 1) -> list[RunRecord]:
    """The newest ``limit`` records of ``job``, newest first; none if there is no store yet."""
    if not path.is_file():
        return []
    with closing(sqlite3.connect(path, timeout=30)) as connection:  # a read: no schema work
        try:
            rows = connection.execute(
                "SELECT job, origin, started, finished, seconds, outcome, detail, pid FROM job_runs "
                "WHERE job = ? ORDER BY id DESC LIMIT ?",
                (job, limit),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
    return [
        RunRecord(
            job=row[0],
            origin=row[1],
            started=datetime.fromisoformat(row[2]),
            finished=datetime.fromisoformat(row[3]) if row[3] else None,
            seconds=row[4],
            outcome=row[5],
            detail=row[6],
            pid=row[7],
        )
        for row in rows
    ]


@contextmanager
def _writing(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in one transaction, with our table in place."""
    with closing(state.connect(path)) as connection, state.transaction(connection):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        yield connection


def _prune(connection: sqlite3.Connection, job: str) -> None:
    connection.execute(
        "DELETE FROM job_runs WHERE job = ? AND id NOT IN "
        "(SELECT id FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT ?)",
        (job, job, KEEP),
    )


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _pid() -> int:
    return os.getpid()

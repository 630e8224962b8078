"""The state store: schema, WAL, clear errors for corrupt/locked/newer files, the run lock, the secret."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import held_exclusively

from publisher import state
from publisher.errors import StateError, StateLockedError
from publisher.state import SCHEMA_VERSION, StateStore, connect, load_secret, run_lock, transaction

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def test_connect_creates_the_schema_with_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.sqlite"
    with closing(connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == state.BUSY_TIMEOUT_MS
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert {
        "first_seen",
        "digest_runs",
        "digest_articles",
        "digest_sends",
        "suppressions",
    } <= tables


def test_other_stages_can_keep_their_own_tables(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with closing(connect(path)) as conn, transaction(conn):
        conn.execute("CREATE TABLE job_runs (id INTEGER PRIMARY KEY, job TEXT)")
        conn.execute("INSERT INTO job_runs (job) VALUES ('digest')")
    with closing(connect(path)) as conn:  # reopening keeps them, schema untouched
        assert conn.execute("SELECT job FROM job_runs").fetchall() == [("digest",)]


def test_a_file_that_is_not_a_database_is_an_error_never_a_reset(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    garbage = b"this is not SQLite at all\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(StateError) as caught:
        connect(path)
    message = str(caught.value)
    assert str(path) in message
    assert "move it aside" in message
    assert path.read_bytes() == garbage


def test_a_damaged_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore.open(path) as store:
        store.create_run("2026-11-24", NOW, [f"urn:x:{n}" for n in range(2000)], now=NOW)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    for offset in range(4096 * 2, len(data), 97):  # scribble over pages, keep the header
        data[offset] = 0xA5
    path.write_bytes(bytes(data))
    with pytest.raises(StateError) as caught:
        connect(path)
    assert str(path) in str(caught.value)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer version of publisher"):
        connect(path)


def test_a_locked_database_is_reported_as_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.sqlite"
    connect(path).close()
    monkeypatch.setattr(state, "BUSY_TIMEOUT_MS", 50)
    with (
        held_exclusively(path),
        pytest.raises(StateLockedError) as caught,
        StateStore.open(path) as store,
    ):
        store.record_first_seen({"urn:x:1": NOW}, initial=NOW)
    assert str(path) in str(caught.value)
    assert "another process" in str(caught.value)


def test_runs_sends_and_the_watermark(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        assert store.watermark() is None and store.tracking_since() is None
        store.record_first_seen({"urn:a": NOW, "urn:b": NOW}, initial=NOW)
        store.record_first_seen({"urn:a": NOW + timedelta(days=1)}, initial=NOW + timedelta(days=1))
        assert store.first_seen() == {"urn:a": NOW, "urn:b": NOW}  # the first sighting stays
        assert store.tracking_since() == NOW
        run = store.create_run("2026-11-24", NOW, ["urn:b", "urn:a"], now=NOW)
        assert run.article_ids == ("urn:b", "urn:a") and not run.finished
        assert store.digested_ids() == {"urn:a", "urn:b"}
        store.record_sends(run.id, [("Ada@Example.org", "sent", "")], at=NOW)
        store.record_sends(run.id, [("bob@example.org", "failed", "550 no such user")], at=NOW)
        assert store.sends(run.id) == {"ada@example.org": "sent", "bob@example.org": "failed"}
        assert store.watermark() is None  # not finished yet
        assert [r.period for r in store.unfinished_runs()] == ["2026-11-24"]
        store.finish_run(run.id, at=NOW)
        assert store.watermark() == NOW
        assert store.unfinished_runs() == []
        with pytest.raises(StateLockedError):
            store.create_run("2026-11-24", NOW, [], now=NOW)  # one run per period


def test_suppression_list(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        assert store.suppress("Ada@Example.org", at=NOW)
        assert not store.suppress("ada@example.org", at=NOW)
        assert store.suppressed() == {"ada@example.org"}
        assert store.unsuppress("ADA@example.org")
        assert not store.unsuppress("ada@example.org")
        assert store.suppressed() == set()


def test_scratch_store_writes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore.scratch(path) as store:
        store.record_first_seen({"urn:a": NOW}, initial=NOW)
    assert not path.exists()


def test_run_lock_admits_one_run_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with (
        run_lock(path),
        pytest.raises(StateLockedError, match="already in progress"),
        run_lock(path),
    ):
        pass  # pragma: no cover
    with run_lock(path):  # released afterwards
        pass


def test_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.sqlite"
    secret, created = load_secret(path)
    again, created_again = load_secret(path)
    assert created and not created_again
    assert secret == again and len(secret) >= 32
    mode = stat.S_IMODE((path.parent / "digest-secret").stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["digest-secret"]


def test_a_truncated_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / "digest-secret").write_text("short\n")
    with pytest.raises(StateError, match="too short"):
        load_secret(tmp_path / "state.sqlite")


def test_a_batch_of_sends_is_recorded_in_one_transaction(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        run = store.create_run("2026-11-24", NOW, ["urn:a"], now=NOW)
        store.record_sends(
            run.id,
            [(f"Reader{n}@Example.org", "sent", "") for n in range(500)]
            + [("bob@example.org", "failed", "550 no such user")],
            at=NOW,
        )
        sends = store.sends(run.id)
        assert len(sends) == 501 and sends["reader7@example.org"] == "sent"
        assert sends["bob@example.org"] == "failed"
        # A row that cannot be stored takes its whole batch with it: all or nothing.
        with pytest.raises(StateError):
            store.record_sends(
                run.id, [("carol@example.org", "sent", ""), ("dan@example.org", "lost", "")], at=NOW
            )
        assert "carol@example.org" not in store.sends(run.id)

"""The state store: what the digest has seen and sent, in one SQLite file.

It is what makes delivery exactly-once: each digest run is keyed by its period and
carries the frozen list of its articles, each (run, recipient) is recorded the moment the
server accepted the message, and the watermark is the cutoff of the last finished run.
A corrupt, locked or too-new database is an error that names the file and what to do;
it is never silently reset, since that would send every digest again.

``connect`` is the one place that opens the database (WAL, busy timeout, schema), so
other stages (the scheduler's job history) can keep their own tables in the same file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from publisher.errors import StateError, StateLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
SECRET_FILE = "digest-secret"
_RECOVER = (
    "restore it from a backup, or move it aside (the digest then forgets what it sent and "
    "who unsubscribed) and give the next digest --since the time of the last one; see "
    "'Guarantees' in the README"
)
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE first_seen (
    article_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE TABLE digest_runs (
    id INTEGER PRIMARY KEY,
    period TEXT NOT NULL UNIQUE,
    cutoff TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE digest_articles (
    run_id INTEGER NOT NULL REFERENCES digest_runs(id),
    position INTEGER NOT NULL,
    article_id TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX digest_articles_by_article ON digest_articles(article_id);
CREATE TABLE digest_sends (
    run_id INTEGER NOT NULL REFERENCES digest_runs(id),
    recipient TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sent', 'failed')),
    detail TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, recipient)
);
CREATE TABLE suppressions (
    address TEXT PRIMARY KEY,
    added_at TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the state database: WAL, busy timeout, our schema up to date.

    The connection is in autocommit mode: use ``with transaction(conn):`` to group writes.
    Raises StateError (StateLockedError when another process keeps it busy).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(path, f"cannot create its folder: {exc.strerror or exc}") from exc
    _create(path)
    try:
        if path.stat().st_size == 0:
            # SQLite would take it for a new database: a silent reset, every digest sent again.
            raise StateError(path, f"the file is empty (0 bytes), probably truncated; {_RECOVER}")
        uri = f"{path.resolve().as_uri()}?mode=rw"  # never create it here: see _create
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except OSError as exc:
        raise StateError(path, f"cannot use the database: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise _state_error(path, exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a send recorded just before a power cut must still be there afterwards.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        status = conn.execute("PRAGMA quick_check").fetchone()[0]
        if status != "ok":
            raise StateError(path, f"the database is damaged ({status}); {_RECOVER}")
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise _state_error(path, exc) from exc
    except StateError:
        conn.close()
        raise
    return conn


def _create(path: Path) -> None:
    """A new database with our schema, made under a temporary name and linked into place.

    So ``path`` never exists half made (SQLite would create it empty at first): an empty
    file there is damage, never a fresh start. Two processes creating it at once agree.
    """
    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        conn = sqlite3.connect(temporary, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, path)
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(temporary, path)
    except OSError as exc:
        raise StateError(path, f"cannot create the database: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise _state_error(path, exc) from exc
    finally:
        for leftover in ("", "-wal", "-shm", "-journal"):
            Path(f"{temporary}{leftover}").unlink(missing_ok=True)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StateError(
            path,
            f"written by a newer version of publisher (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade publisher",
        )
    with transaction(conn):
        # Another process may have created the schema while we waited for the lock.
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _state_error(path: Path, exc: sqlite3.Error) -> StateError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StateLockedError(
            path,
            f"the database is locked by another process ({text}); wait for it to finish, "
            "or stop it, then run again",
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return StateError(path, f"not a usable SQLite database ({text}); {_RECOVER}")
    hint = ""
    if any(word in text for word in ("disk", "unable to open", "readonly")):  # EIO, ENOSPC, EROFS
        hint = "; check that its folder can be written and the disk is not full"
    return StateError(path, f"cannot use the database: {text}{hint}")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class DigestRun:
    """One recorded digest: its period, its cutoff (the watermark once finished), its articles."""

    id: int
    period: str
    cutoff: datetime
    article_ids: tuple[str, ...]
    finished: bool


class StateStore:
    """The digest's reads and writes on the state database; every write commits at once."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> StateStore:
        """The store at ``path``, created if missing."""
        return cls(connect(path), path)

    @classmethod
    def scratch(cls, path: Path) -> StateStore:
        """An empty in-memory store: a dry run with no state file yet, which must not create one."""
        conn = sqlite3.connect(":memory:", isolation_level=None)
        _migrate(conn, path)
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _state_error(self.path, exc) from exc

    def meta(self, key: str) -> str | None:
        rows = self._run("SELECT value FROM meta WHERE key = ?", key)
        return str(rows[0][0]) if rows else None

    def first_seen(self) -> dict[str, datetime]:
        """When each article id was first seen eligible for a digest."""
        return {
            str(i): _moment(str(t))
            for i, t in self._run("SELECT article_id, seen_at FROM first_seen")
        }

    def record_first_seen(self, seen: Mapping[str, datetime], *, initial: datetime) -> None:
        """Remember newly eligible ids; the first call also stamps when tracking started."""
        try:
            with transaction(self.conn):
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('tracking_since', ?)",
                    (_stamp(initial),),
                )
                self.conn.executemany(
                    "INSERT OR IGNORE INTO first_seen (article_id, seen_at) VALUES (?, ?)",
                    [(article_id, _stamp(moment)) for article_id, moment in sorted(seen.items())],
                )
        except sqlite3.Error as exc:
            raise _state_error(self.path, exc) from exc

    def tracking_since(self) -> datetime | None:
        """When the first digest run recorded what it saw (None before any real run)."""
        value = self.meta("tracking_since")
        return _moment(value) if value else None

    def watermark(self) -> datetime | None:
        """The cutoff of the latest finished run: articles seen after it are new."""
        rows = self._run("SELECT cutoff FROM digest_runs WHERE finished_at IS NOT NULL")
        return max((_moment(str(row[0])) for row in rows), default=None)

    def run(self, period: str) -> DigestRun | None:
        rows = self._run("SELECT id FROM digest_runs WHERE period = ?", period)
        return self._load_run(int(str(rows[0][0]))) if rows else None

    def unfinished_runs(self) -> list[DigestRun]:
        """Runs interrupted before every recipient was handled, oldest period first."""
        rows = self._run("SELECT id FROM digest_runs WHERE finished_at IS NULL ORDER BY period")
        return [self._load_run(int(str(row[0]))) for row in rows]

    def _load_run(self, run_id: int) -> DigestRun:
        ((period, cutoff, finished_at),) = self._run(
            "SELECT period, cutoff, finished_at FROM digest_runs WHERE id = ?", run_id
        )
        ids = self._run(
            "SELECT article_id FROM digest_articles WHERE run_id = ? ORDER BY position", run_id
        )
        return DigestRun(
            id=run_id,
            period=str(period),
            cutoff=_moment(str(cutoff)),
            article_ids=tuple(str(row[0]) for row in ids),
            finished=finished_at is not None,
        )

    def digested_ids(self) -> set[str]:
        """Every article id carried by any earlier digest run."""
        return {str(row[0]) for row in self._run("SELECT DISTINCT article_id FROM digest_articles")}

    def create_run(
        self, period: str, cutoff: datetime, article_ids: Iterable[str], *, now: datetime
    ) -> DigestRun:
        """Freeze a period's articles, so a rerun after a crash sends the same content."""
        try:
            with transaction(self.conn):
                cursor = self.conn.execute(
                    "INSERT INTO digest_runs (period, cutoff, created_at) VALUES (?, ?, ?)",
                    (period, _stamp(cutoff), _stamp(now)),
                )
                run_id = int(cursor.lastrowid or 0)
                self.conn.executemany(
                    "INSERT INTO digest_articles (run_id, position, article_id) VALUES (?, ?, ?)",
                    [
                        (run_id, position, article_id)
                        for position, article_id in enumerate(article_ids)
                    ],
                )
        except sqlite3.IntegrityError as exc:
            raise StateLockedError(
                self.path,
                f"another process recorded the digest for {period} at the same time ({exc})",
            ) from exc
        except sqlite3.Error as exc:
            raise _state_error(self.path, exc) from exc
        return self._load_run(run_id)

    def sends(self, run_id: int) -> dict[str, str]:
        """Recipient (lower case) -> 'sent' or 'failed' for a run."""
        rows = self._run("SELECT recipient, status FROM digest_sends WHERE run_id = ?", run_id)
        return {str(recipient): str(status) for recipient, status in rows}

    def record_sends(
        self, run_id: int, rows: Iterable[tuple[str, str, str]], *, at: datetime
    ) -> None:
        """Record ``(recipient, status, detail)`` rows as handled, in one transaction: one
        commit (one sync of the database) for a whole batch of the outbox's messages."""
        try:
            with transaction(self.conn):
                self.conn.executemany(
                    "INSERT OR REPLACE INTO digest_sends (run_id, recipient, status, detail, at) VALUES (?, ?, ?, ?, ?)",
                    [
                        (run_id, recipient.lower(), status, detail, _stamp(at))
                        for recipient, status, detail in rows
                    ],
                )
        except sqlite3.Error as exc:
            raise _state_error(self.path, exc) from exc

    def finish_run(self, run_id: int, *, at: datetime) -> None:
        """Mark a run complete: its cutoff becomes the watermark."""
        self._run("UPDATE digest_runs SET finished_at = ? WHERE id = ?", _stamp(at), run_id)

    def suppressed(self) -> set[str]:
        """Unsubscribed addresses (lower case), honoured at send time."""
        return {str(row[0]) for row in self._run("SELECT address FROM suppressions")}

    def suppressions(self) -> list[tuple[str, datetime]]:
        """The suppression list with when each address was added, by address."""
        rows = self._run("SELECT address, added_at FROM suppressions ORDER BY address")
        return [(str(address), _moment(str(at))) for address, at in rows]

    def suppress(self, address: str, *, at: datetime, reason: str = "") -> bool:
        """Add ``address`` to the suppression list; False if it was already there."""
        before = self.conn.total_changes
        self._run(
            "INSERT OR IGNORE INTO suppressions (address, added_at, reason) VALUES (?, ?, ?)",
            address.lower(),
            _stamp(at),
            reason,
        )
        return self.conn.total_changes > before

    def unsuppress(self, address: str) -> bool:
        """Take ``address`` off the suppression list; False if it was not on it."""
        before = self.conn.total_changes
        self._run("DELETE FROM suppressions WHERE address = ?", address.lower())
        return self.conn.total_changes > before


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold ``<state>.digest-lock`` so two digest runs never send at once; freed if we die."""
    lock_path = path.with_name(path.name + ".digest-lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = lock_path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise StateError(lock_path, f"cannot create the run lock: {exc.strerror or exc}") from exc
    with handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise StateError(lock_path, f"cannot lock: {exc.strerror or exc}") from exc
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise StateLockedError(
                    lock_path,
                    f"a digest run is already in progress ({holder}); wait for it to finish",
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
        yield


def load_secret(state_path: Path) -> tuple[bytes, bool]:
    """The unsubscribe-token secret kept next to the state file, created (mode 0600) if missing.

    Returns the secret and whether it was just created. Created with O_EXCL through a
    hard link, so two processes starting at once still agree on one secret.
    """
    path = state_path.with_name(SECRET_FILE)
    try:
        data = path.read_text(encoding="ascii").strip()
        if len(data) >= 32:
            return data.encode("ascii"), False
        raise StateError(
            path, f"the secret is too short; delete the file to create a new one ({_TOKENS})"
        )
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(path, f"cannot read the secret: {exc}") from exc
    value = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(value + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_secret(state_path)[0], False
    except OSError as exc:
        raise StateError(path, f"cannot create the secret: {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return value.encode("ascii"), True


_TOKENS = "every unsubscribe link sent so far then stops matching"

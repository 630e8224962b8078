"""OS file locks (``flock``) that keep two runs of the same job apart, across processes.

The kernel drops a ``flock`` when its holder exits, however it exits, so a crash never
leaves a stale lock behind. The lock files themselves are never deleted (deleting a lock
file while someone waits on it lets two holders in); they hold the holder's pid, for
messages and ``publisher status`` only.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from publisher.errors import PublisherError

log = logging.getLogger(__name__)

_FIRST_POLL = 0.05  # seconds between attempts while waiting; doubles up to _LAST_POLL
_LAST_POLL = 1.0


class LockBusyError(PublisherError):
    """The lock is held elsewhere and we did not (or could no longer) wait for it."""

    def __init__(
        self, name: str, holder: int | None, waited: float, *, stopped: bool = False
    ) -> None:
        self.name = name
        self.holder = holder
        self.waited = waited
        self.stopped = stopped
        who = f"pid {holder}" if holder else "another process"
        if stopped:
            message = f"{name}: not started, stopping while {who} still held its lock"
        elif waited:
            message = f"{name}: gave up after waiting {waited:.0f} s for the run in {who} to finish"
        else:
            message = f"{name}: already running in {who}; this run is skipped"
        super().__init__(message)


def lock_path(folder: Path, name: str) -> Path:
    """Where the lock called ``name`` lives inside the state folder."""
    return folder / "locks" / f"{name}.lock"


@contextmanager
def hold(
    path: Path, name: str, *, timeout: float = 0.0, stop: threading.Event | None = None
) -> Iterator[None]:
    """Hold the exclusive lock at ``path`` for the block.

    With ``timeout`` 0 a busy lock raises LockBusyError at once; otherwise we wait up to
    ``timeout`` seconds, or until ``stop`` is set, then raise it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(descriptor, path, name, timeout, stop)
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.ftruncate(descriptor, 0)  # an empty file: nobody holds it
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def holder(path: Path) -> int | None:
    """The pid written by the lock's current (or crashed) holder, if that process is alive."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, owned by someone else
    return pid


def _acquire(
    descriptor: int, path: Path, name: str, timeout: float, stop: threading.Event | None
) -> None:
    started = time.monotonic()
    poll = _FIRST_POLL
    announced = False
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - started
        if stop is not None and stop.is_set():
            raise LockBusyError(name, holder(path), waited, stopped=True)
        if waited >= timeout:
            raise LockBusyError(name, holder(path), waited if timeout else 0.0)
        if not announced:
            who = holder(path)
            log.info(
                "%s: waiting up to %.0f s for the run in %s to finish",
                name,
                timeout,
                f"pid {who}" if who else "another process",
            )
            announced = True
        pause = min(poll, timeout - waited)
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)
        poll = min(poll * 2, _LAST_POLL)

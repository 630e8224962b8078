"""A second process for a rebuild, so that both cores work on it.

While the build reads what the cache knows, the helper checks every document's file
against the cache (a ``stat`` each), then imports the renderers (feedgen, lxml, Jinja)
and renders the files the build hands it. It is forked: it starts with the build's
documents and cached states in memory and sends back only bytes.

The helper writes nothing and holds nothing the build needs: if it cannot start, dies, or
sends something unreadable, the build does the rest in its own process, with the same
result. It is never started beside other threads (fork would copy their locks held).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import threading
from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">Q")


class HelperGone(Exception):
    """The helper process stopped answering (it died, or sent a broken message)."""


class Helper:
    """The build's end of a forked helper process (see the module docstring)."""

    def __init__(self, pid: int, inbox: int, outbox: int) -> None:
        self.pid = pid
        self._to_helper = outbox
        self._from_helper = inbox
        self._answered: bytes | None = None
        self._waiting = select.poll()
        self._waiting.register(inbox, select.POLLIN)
        self.alive = True
        self.lost: str | None = None  # why the build went on without it, if it did

    @classmethod
    def start(cls, check: Callable[[], bytes], prepare: Callable[[], object]) -> Helper | None:
        """Fork a helper that sends ``check()``, calls ``prepare()``, then renders jobs.
        None where forking is not safe (other threads) or not possible."""
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        try:
            job_read, job_write = os.pipe()
            result_read, result_write = os.pipe()
        except OSError as exc:
            log.debug("no helper process (%s)", exc)
            return None
        # Ctrl+C is held back over the fork: the child ignores it before it could raise in
        # the child, in the middle of the build's own stack (closing its database, its locks).
        interrupts = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        build = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, interrupts)
            log.debug("no helper process (%s)", exc)
            for descriptor in (job_read, job_write, result_read, result_write):
                os.close(descriptor)
            return None
        if pid == 0:  # pragma: no cover (the child; coverage does not follow forks)
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, interrupts)
                os.close(job_write)
                os.close(result_read)
                _serve(job_read, result_write, build, check, prepare)
            finally:
                os._exit(1)  # never back into the build's stack
        signal.pthread_sigmask(signal.SIG_SETMASK, interrupts)
        os.close(job_read)
        os.close(result_write)
        return cls(pid, result_read, job_write)

    def answered(self) -> bool:
        """Whether ``check()``'s answer is waiting to be read (never blocks)."""
        if self._answered is not None or not self.alive:
            return True
        return bool(self._waiting.poll(0))

    def check(self) -> bytes | None:
        """What ``check()`` gave in the helper; None if the helper failed before sending it."""
        if self._answered is None and self.alive:
            try:
                self._answered = _receive(self._from_helper)
            except HelperGone as exc:
                self._lost(exc)
        return self._answered

    def render_all(
        self,
        jobs: list[Callable[[], bytes]],
        here: Callable[[list[Callable[[], bytes]]], Iterable[bytes]],
        meanwhile: Callable[[], object] = lambda: None,
    ) -> Iterator[bytes]:
        """Each job's bytes, in order, as the helper renders them; the jobs it could not
        render are rendered with ``here``, in this process. ``meanwhile`` is called once
        the helper has the jobs."""
        done = 0
        if jobs and self.alive and self.check() is not None and self._hand_over(jobs):
            meanwhile()
            try:
                while done < len(jobs):
                    data = _receive(self._from_helper)
                    done += 1
                    yield data
            except HelperGone as exc:
                self._lost(exc)
        if done < len(jobs):
            yield from here(jobs[done:])

    def _hand_over(self, jobs: list[Callable[[], bytes]]) -> bool:
        """Send the helper ``jobs``; False if they cannot be sent (then it is stopped)."""
        try:
            _send(self._to_helper, pickle.dumps(jobs, pickle.HIGHEST_PROTOCOL))
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            self._lost(exc)
            return False
        return True

    def close(self) -> None:
        """Stop the helper (it holds nothing to save) and reap it; once."""
        if not self.alive:
            return
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for descriptor in (self._to_helper, self._from_helper):
            with contextlib.suppress(OSError):
                os.close(descriptor)
        self.alive = False

    def _lost(self, exc: BaseException) -> None:
        log.debug("helper process lost (%s); going on in this one", exc)
        self.lost = str(exc) or type(exc).__name__
        self.close()


@contextlib.contextmanager
def helper_process(
    check: Callable[[], bytes], prepare: Callable[[], object], *, wanted: bool = True
) -> Iterator[Helper | None]:
    """A helper for the length of a ``with`` block (None if not ``wanted`` or not possible)."""
    helper = Helper.start(check, prepare) if wanted else None
    try:
        yield helper
    finally:
        if helper is not None:
            helper.close()


def _serve(
    inbox: int,
    outbox: int,
    build: int,
    check: Callable[[], bytes],
    prepare: Callable[[], object],
) -> None:  # pragma: no cover (runs in the forked child)
    """The helper's life: answer, prepare, then render each batch of jobs the ``build``
    process sends."""
    status = 0
    try:
        _send(outbox, check())
        prepare()
        while _work_to_come(inbox, build):
            try:
                message = _receive(inbox)
            except HelperGone:
                break  # the build closed its end: done
            jobs: list[Callable[[], bytes]] = pickle.loads(message)
            for job in jobs:
                _send(outbox, job())
    except BaseException:  # the build renders what is left itself; nothing to report here
        status = 1
    finally:
        os._exit(status)  # no cleanup: the build's files and database are not the helper's


def _work_to_come(inbox: int, build: int) -> bool:  # pragma: no cover (in the child)
    """Wait for the build's next message (or its end of the pipe closing); False if the
    build is gone: killed, its end may still be held open by its own worker processes."""
    waiting = select.poll()
    waiting.register(inbox, select.POLLIN)
    while not waiting.poll(1000):
        if os.getppid() != build:
            return False
    return True


def _send(descriptor: int, data: bytes) -> None:
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _receive(descriptor: int) -> bytes:
    (length,) = _LENGTH.unpack(_read_exactly(descriptor, _LENGTH.size))
    return _read_exactly(descriptor, length)


def _read_exactly(descriptor: int, length: int) -> bytes:
    parts: list[bytes] = []
    left = length
    while left:
        try:
            chunk = os.read(descriptor, min(left, 1 << 20))
        except OSError as exc:
            raise HelperGone(str(exc)) from exc
        if not chunk:
            raise HelperGone("closed")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)

"""A progress bar for long work on a terminal: count, rate and time left, on stderr.

In a pipe, from cron or under the scheduler nothing is drawn: the caller's one summary
line is all the output. Small jobs (under ``minimum`` items) draw nothing either.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

MINIMUM = 2000


class TerminalProgress:
    """A ``progress(done, total)`` callback drawing a bar once there is enough to do."""

    def __init__(self, label: str, stream: TextIO | None = None, minimum: int = MINIMUM) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.minimum = minimum
        self._bar: Any = None
        self._started = 0.0
        self._first = 0

    @property
    def drawing(self) -> bool:
        """Whether a bar is on the screen."""
        return self._bar is not None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if total < self.minimum or not _is_terminal(self.stream):
                return
            self._started = time.monotonic()
            self._bar = click.progressbar(
                length=total,
                label=self.label,
                file=self.stream,
                show_pos=True,
                show_eta=True,
                item_show_func=_rate,
            ).__enter__()
            self._first = done
        elapsed = time.monotonic() - self._started
        rate = (done - self._first) / elapsed if elapsed > 0 else None
        self._bar.update(max(done - self._bar.pos, 0), current_item=rate)

    def close(self) -> None:
        """Finish the bar's line, if one was drawn."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@contextmanager
def terminal_progress(label: str, minimum: int = MINIMUM) -> Iterator[TerminalProgress]:
    """A ``TerminalProgress`` on stderr, closed (its line ended) when the work is done."""
    progress = TerminalProgress(label, minimum=minimum)
    try:
        yield progress
    finally:
        progress.close()


def _rate(rate: float | None) -> str:
    return f"{rate:,.0f}/s" if rate else ""


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

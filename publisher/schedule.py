"""Crontab expressions as APScheduler triggers, with cron's meaning; fire times are pure functions of ``now``.

APScheduler's own ``CronTrigger.from_crontab`` differs from cron in three ways that matter
here, so ``CrontabTrigger`` wraps plain ``CronTrigger`` objects built from our own parse
(``publisher.crontab``):

* Day-of-week numbers: cron's 0 and 7 are Sunday (APScheduler's 0 is Monday). We pass
  APScheduler day names, never numbers.
* Day of month and day of week: when both are restricted (neither field starts with
  ``*``), cron fires on a day matching EITHER; APScheduler requires both. We then ask two
  CronTriggers (one per field) and take the earlier time.
* Daylight saving, as cron(8) documents it: when the clock goes forward, a fixed-time job
  whose time falls in the skipped hour runs once, at the change; when the clock goes back,
  a fixed-time job runs only once in the repeated hour. "Wildcard" jobs (minute or hour
  starting with ``*``) simply follow the clock: nothing in the skipped hour, both passes
  of the repeated hour. (APScheduler alone would run ``30 1 * * *`` twice on the
  fall-back day.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from publisher.crontab import WEEKDAYS, Crontab, parse_crontab

_TICK = timedelta(microseconds=1)
_APS_WEEKDAYS = {day: name for day, name in enumerate(WEEKDAYS)}  # cron number -> name
_MAX_STEPS = 10_000  # a bound on the search loop; a valid crontab needs a handful


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler ships no type hints
    """A crontab line in a time zone, firing exactly when cron would.

    Pickled as its expression and zone name only, so a job store written by an older
    version of this class still loads.
    """

    __slots__ = ("_triggers", "crontab", "timezone")

    def __init__(self, expression: str, timezone: str | ZoneInfo = "UTC") -> None:
        self.crontab: Crontab = parse_crontab(expression)
        self.timezone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self._triggers = _cron_triggers(self.crontab, self.timezone)

    @property
    def expression(self) -> str:
        return self.crontab.expression

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire time after ``previous_fire_time`` (if given) and not before ``now``.

        Like APScheduler's CronTrigger, with a previous fire time the answer may lie before
        ``now``: the scheduler walks missed run times that way.
        """
        start = now.astimezone(UTC)
        after = None
        if previous_fire_time is not None:
            after = previous_fire_time.astimezone(UTC)
            start = min(start, after + _TICK)
        return self._first_from(start, after)

    def _first_from(self, start: datetime, after: datetime | None) -> datetime | None:
        for _ in range(_MAX_STEPS):
            local_start = start.astimezone(self.timezone)
            candidates = [t.get_next_fire_time(None, local_start) for t in self._triggers]
            found = [c for c in candidates if c is not None]
            if not found:
                return None
            candidate = min(found, key=lambda moment: moment.astimezone(UTC))
            fire, resume = self._apply_clock_changes(candidate)
            if fire is not None and fire >= start and (after is None or fire > after):
                return fire.astimezone(self.timezone)
            start = max(resume, start + _TICK)
        raise RuntimeError(f"no fire time found for {self}")  # a bug here, not bad input

    def _apply_clock_changes(self, candidate: datetime) -> tuple[datetime | None, datetime]:
        """(the instant to fire or None to skip, where to resume the search) for one candidate."""
        wall = candidate.replace(tzinfo=None)
        real = candidate.astimezone(UTC).astimezone(self.timezone)
        if real.replace(tzinfo=None, fold=0) != wall.replace(fold=0):
            # The wall time does not exist: the clock jumped over it.
            change = _clock_change(wall, self.timezone)
            return (None if self.crontab.wildcard else change), change
        if real.fold == 1 and not self.crontab.wildcard:
            # The second pass through a repeated hour: a fixed-time job already ran in the first.
            return None, candidate.astimezone(UTC) + _TICK
        return candidate.astimezone(UTC), candidate.astimezone(UTC) + _TICK

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "expression": self.crontab.expression, "timezone": self.timezone.key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version") != 1:
            raise ValueError(
                f"cannot restore a CrontabTrigger from state version {state.get('version')}"
            )
        self.__init__(state["expression"], state["timezone"])  # type: ignore[misc]

    def __str__(self) -> str:
        return f"crontab[{self.crontab.expression!r} {self.timezone.key}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.crontab.expression!r}, timezone={self.timezone.key!r})>"


def next_fire_times(trigger: CrontabTrigger, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times at or after ``now``, in the trigger's time zone."""
    times: list[datetime] = []
    previous: datetime | None = None
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous = now = fire
    return times


def _cron_triggers(crontab: Crontab, zone: ZoneInfo) -> tuple[CronTrigger, ...]:
    """One CronTrigger, or two when cron's either-day rule applies."""
    common = {
        "minute": _listed(crontab.minutes, range(60)),
        "hour": _listed(crontab.hours, range(24)),
        "month": _listed(crontab.months, range(1, 13)),
        "timezone": zone,
    }
    days = _listed(crontab.days, range(1, 32))
    weekdays = (
        "*"
        if crontab.weekdays == frozenset(range(7))
        else ",".join(_APS_WEEKDAYS[day] for day in sorted(crontab.weekdays))
    )
    if crontab.days_either:
        return (
            CronTrigger(day=days, day_of_week="*", **common),
            CronTrigger(day="*", day_of_week=weekdays, **common),
        )
    return (CronTrigger(day=days, day_of_week=weekdays, **common),)


def _listed(values: frozenset[int], full: Iterable[int]) -> str:
    return "*" if values == frozenset(full) else ",".join(str(v) for v in sorted(values))


def _clock_change(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which the clock jumped over the non-existent local time ``wall``."""
    early = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # read with the later offset
    late = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # read with the earlier offset
    low, high = min(early, late), max(early, late)
    after_offset = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high

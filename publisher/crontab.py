"""Crontab expressions parsed exactly as cron (Vixie cron / cronie) reads them; pure, no I/O.

Five fields: minute, hour, day of month, month, day of week. Each is ``*``, a number, a
name (``jan``-``dec``, ``sun``-``sat``), a range ``a-b``, any of those with a step
(``*/15``, ``1-30/2``), or a comma list of them. Day of week 0 and 7 are both Sunday.
``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``
are accepted as their five-field equivalents.

Kept apart from the APScheduler trigger (``publisher.schedule``) so that validating the
settings never imports the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February as in a leap year


class CrontabError(ValueError):
    """A crontab expression cron would refuse (or that could never fire)."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0  # the number of the first name: jan = 1, sun = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day-of-week", 0, 7, WEEKDAYS, 0),
)


@dataclass(frozen=True)
class Crontab:
    """A parsed crontab expression: the matching values of each field, and cron's star flags.

    ``weekdays`` uses cron's numbering, 0 = Sunday ... 6 = Saturday (a 7 is stored as 0).
    A field whose text starts with ``*`` is "starred": cron uses that, not the values, to
    decide how day of month and day of week combine (see ``days_either``) and which jobs
    are "wildcard" jobs for daylight-saving changes (see ``wildcard``).
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    minute_starred: bool
    hour_starred: bool
    day_starred: bool
    weekday_starred: bool

    @property
    def days_either(self) -> bool:
        """True when a day matching the day of month OR the day of week fires (both restricted)."""
        return not self.day_starred and not self.weekday_starred

    @property
    def wildcard(self) -> bool:
        """Cron's "wildcard" job (minute or hour starred): it follows the clock across DST changes."""
        return self.minute_starred or self.hour_starred


def parse_crontab(expression: str) -> Crontab:
    """Parse a five-field crontab expression, or raise CrontabError saying which field and why."""
    text = expression.strip()
    if text.startswith("@"):
        nickname = text.lower()
        if nickname not in _NICKNAMES:
            known = ", ".join(_NICKNAMES)
            raise CrontabError(f"unknown nickname {text!r} (known: {known})")
        text = _NICKNAMES[nickname]
    parts = text.split()
    if len(parts) != 5:
        hint = ""
        if len(parts) > 5:
            hint = "; seconds, years, a user or a command do not belong here"
        raise CrontabError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)} in {expression!r}{hint}"
        )
    values = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(day % 7 for day in values[4])
    crontab = Crontab(
        expression=expression.strip(),
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        minute_starred=parts[0].startswith("*"),
        hour_starred=parts[1].startswith("*"),
        day_starred=parts[2].startswith("*"),
        weekday_starred=parts[4].startswith("*"),
    )
    _check_can_fire(crontab)
    return crontab


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    found: set[int] = set()
    for item in text.split(","):
        found.update(_parse_item(item, spec))
    return frozenset(found)


def _parse_item(item: str, spec: _Field) -> range:
    where = f"{spec.name} {item!r}" if item else f"{spec.name}: an empty list item"
    if not item:
        raise CrontabError(where)
    body, _, step_text = item.partition("/")
    step = 1
    if step_text or item.endswith("/"):
        if not step_text.isdigit() or int(step_text) < 1:
            raise CrontabError(f"{where}: the step after '/' must be a whole number of at least 1")
        step = int(step_text)
    if body == "*":
        return range(spec.low, spec.high + 1, step)
    first_text, dash, last_text = body.partition("-")
    first = _value(first_text, spec, where)
    if not dash:
        if step_text:
            raise CrontabError(
                f"{where}: a step needs a range or '*' (write {first}-{spec.high}/{step})"
            )
        return range(first, first + 1)
    last = _value(last_text, spec, where)
    if last < first:
        raise CrontabError(
            f"{where}: the range runs backwards ({first} > {last}); "
            "cron ranges do not wrap around, split it in two"
        )
    return range(first, last + 1, step)


def _value(text: str, spec: _Field, where: str) -> int:
    if text.isdigit():
        number = int(text)
        if not spec.low <= number <= spec.high:
            raise CrontabError(f"{where}: {number} is outside {spec.low}-{spec.high}")
        return number
    if spec.names and text.lower() in spec.names:
        return spec.names.index(text.lower()) + spec.name_base
    expected = f"a number {spec.low}-{spec.high}"
    if spec.names:
        expected += f" or a name {spec.names[0]}-{spec.names[-1]}"
    raise CrontabError(f"{where}: {text!r} is not {expected}")


def _check_can_fire(crontab: Crontab) -> None:
    """Refuse a date that never exists (``0 0 31 2 *``): cron would silently never run it."""
    if crontab.days_either:
        return
    longest = max(_DAYS_IN_MONTH[month - 1] for month in crontab.months)
    if min(crontab.days) > longest:
        months = ", ".join(_MONTH_NAMES[month - 1] for month in sorted(crontab.months))
        raise CrontabError(
            f"day-of-month: never fires, {months} has no day {min(crontab.days)}"
            if len(crontab.months) == 1
            else f"day-of-month: never fires, none of {months} has a day {min(crontab.days)}"
        )

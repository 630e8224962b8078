"""Crontab parsing and the trigger, as pure functions of time: no scheduler, no sleeping."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.config import parse_config, parse_duration
from publisher.crontab import CrontabError, parse_crontab
from publisher.errors import ConfigError
from publisher.schedule import CrontabTrigger, next_fire_times

LONDON = ZoneInfo("Europe/London")


def fires(expression: str, start: datetime, count: int, zone: str = "Europe/London") -> list[str]:
    trigger = CrontabTrigger(expression, zone)
    return [moment.isoformat() for moment in next_fire_times(trigger, start, count)]


# -- parsing ---------------------------------------------------------------------------------


def test_fields_parse_to_the_values_cron_uses() -> None:
    crontab = parse_crontab("*/15 9-17/4 1,15 jan-mar,DEC mon-fri")
    assert crontab.minutes == {0, 15, 30, 45}
    assert crontab.hours == {9, 13, 17}
    assert crontab.days == {1, 15}
    assert crontab.months == {1, 2, 3, 12}
    assert crontab.weekdays == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("field", "weekdays"),
    [
        ("0", {0}),
        ("7", {0}),
        ("sun", {0}),
        ("1", {1}),
        ("mon", {1}),
        ("5-7", {5, 6, 0}),
        ("0-7", {0, 1, 2, 3, 4, 5, 6}),
        ("sat,sun", {6, 0}),
        ("*/2", {0, 2, 4, 6}),
    ],
)
def test_day_of_week_numbers_are_crons(field: str, weekdays: set[int]) -> None:
    assert parse_crontab(f"0 0 * * {field}").weekdays == weekdays


@pytest.mark.parametrize(
    ("nickname", "expression"),
    [
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@yearly", "0 0 1 1 *"),
    ],
)
def test_nicknames_mean_their_five_fields(nickname: str, expression: str) -> None:
    start = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert fires(nickname, start, 4, "UTC") == fires(expression, start, 4, "UTC")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("0 * * * * *", "seconds, years, a user or a command"),
        ("60 * * * *", "minute '60': 60 is outside 0-59"),
        ("0 24 * * *", "hour '24': 24 is outside 0-23"),
        ("0 0 0 * *", "day-of-month '0': 0 is outside 1-31"),
        ("0 0 * 13 *", "month '13': 13 is outside 1-12"),
        ("0 0 * * 8", "day-of-week '8': 8 is outside 0-7"),
        ("0 0 * * fri-mon", "the range runs backwards"),
        ("0 0 * * funday", "'funday' is not a number 0-7 or a name sun-sat"),
        ("0 0 * foo *", "not a number 1-12 or a name jan-dec"),
        ("mon 0 * * *", "minute 'mon'"),
        ("5/10 * * * *", "a step needs a range or '*' (write 5-59/10)"),
        ("*/0 * * * *", "the step after '/' must be a whole number of at least 1"),
        ("0 0 1,,2 * *", "day-of-month: an empty list item"),
        ("0 0 31 2 *", "never fires, February has no day 31"),
        ("0 0 31 4,6 *", "never fires, none of April, June has a day 31"),
        ("@reboot", "unknown nickname"),
    ],
)
def test_bad_expressions_say_which_field_and_why(expression: str, message: str) -> None:
    with pytest.raises(
        CrontabError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
    ):
        parse_crontab(expression)


def test_february_29_is_a_real_date() -> None:
    assert fires("0 0 29 2 *", datetime(2026, 1, 1, tzinfo=UTC), 1, "UTC") == [
        "2028-02-29T00:00:00+00:00"
    ]


# -- settings ----------------------------------------------------------------------------------


def test_schedule_settings_have_documented_defaults() -> None:
    schedule = parse_config({}).schedule
    assert (schedule.timezone, schedule.feeds, schedule.digest) == (
        "UTC",
        "*/15 * * * *",
        "0 7 * * *",
    )
    assert schedule.misfire_grace.feeds == timedelta(minutes=5)
    assert schedule.misfire_grace.digest == timedelta(hours=6)
    assert (schedule.overlap, schedule.overlap_timeout) == ("wait", timedelta(minutes=10))


@pytest.mark.parametrize(
    ("schedule", "key", "reason"),
    [
        (
            {"feeds": "*/15 * * *"},
            "schedule.feeds",
            "not a valid crontab expression: expected 5 fields",
        ),
        ({"digest": "0 7 * * 8"}, "schedule.digest", "day-of-week '8': 8 is outside 0-7"),
        ({"timezone": "Europe/Londres"}, "schedule.timezone", "unknown time zone 'Europe/Londres'"),
        ({"misfire_grace": {"feeds": 300}}, "schedule.misfire_grace.feeds", "expected a duration"),
        (
            {"misfire_grace": {"digest": "6 hours"}},
            "schedule.misfire_grace.digest",
            "expected a duration",
        ),
        ({"misfire_grace": {"digest": "0s"}}, "schedule.misfire_grace.digest", "longer than zero"),
        ({"misfire_grace": {"build": "5m"}}, "schedule.misfire_grace.build", "unknown setting"),
        ({"overlap": "queue"}, "schedule.overlap", "expected one of wait, skip"),
    ],
)
def test_bad_schedule_settings_name_the_key(
    schedule: dict[str, object], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"schedule": schedule})
    assert caught.value.key == key
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("6h", 21600), ("1d", 86400), ("1h30m", 5400), ("2D", 172800)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


# -- fire times --------------------------------------------------------------------------------


def test_next_fire_times_are_a_function_of_now() -> None:
    now = datetime(2026, 6, 1, 10, 7, 30, tzinfo=UTC)
    assert fires("*/15 * * * *", now, 3, "UTC") == [
        "2026-06-01T10:15:00+00:00",
        "2026-06-01T10:30:00+00:00",
        "2026-06-01T10:45:00+00:00",
    ]
    on_the_dot = datetime(2026, 6, 1, 10, 15, tzinfo=UTC)
    assert fires("*/15 * * * *", on_the_dot, 1, "UTC") == ["2026-06-01T10:15:00+00:00"]


def test_times_are_in_the_configured_zone() -> None:
    now = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)  # 06:00 in London (BST)
    assert fires("0 7 * * *", now, 1) == ["2026-06-01T07:00:00+01:00"]
    assert fires("0 7 * * *", now, 1, "America/New_York") == ["2026-06-01T07:00:00-04:00"]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_sunday_is_0_and_7_as_in_cron(sunday: str) -> None:
    # 2026-06-01 is a Monday; APScheduler's own from_crontab would read 0 as Monday.
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert fires(f"0 9 * * {sunday}", now, 2, "UTC") == [
        "2026-06-07T09:00:00+00:00",
        "2026-06-14T09:00:00+00:00",
    ]


def test_weekdays_by_name_and_number_agree() -> None:
    now = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)  # a Friday
    expected = ["2026-06-08T07:00:00+01:00", "2026-06-09T07:00:00+01:00"]
    assert fires("0 7 * * mon-fri", now, 2) == expected
    assert fires("0 7 * * 1-5", now, 2) == expected


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # Cron: "the 13th, and every Friday". 2026-03-13 is a Friday, 2026-04-13 a Monday.
    now = datetime(2026, 3, 31, 0, 0, tzinfo=UTC)
    assert fires("0 0 13 * fri", now, 4, "UTC") == [
        "2026-04-03T00:00:00+00:00",
        "2026-04-10T00:00:00+00:00",
        "2026-04-13T00:00:00+00:00",
        "2026-04-17T00:00:00+00:00",
    ]


def test_a_starred_day_field_means_both_must_match() -> None:
    # "*/2" starts with '*', so cron ANDs: odd days of the month that are Fridays.
    now = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    assert fires("0 0 */2 * fri", now, 3, "UTC") == [
        "2026-04-03T00:00:00+00:00",
        "2026-04-17T00:00:00+00:00",
        "2026-05-01T00:00:00+00:00",
    ]


def test_the_trigger_walks_missed_times_from_a_previous_fire_time() -> None:
    trigger = CrontabTrigger("*/15 * * * *", "UTC")
    previous = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    now = datetime(2026, 6, 1, 11, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(previous, now) == datetime(2026, 6, 1, 10, 15, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, now) == now


def test_the_trigger_pickles_as_its_expression() -> None:
    trigger = CrontabTrigger("0 7 13 * fri", LONDON)
    restored = pickle.loads(pickle.dumps(trigger))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert (restored.expression, restored.timezone) == ("0 7 13 * fri", LONDON)
    assert next_fire_times(restored, now, 5) == next_fire_times(trigger, now, 5)
    assert str(trigger) == "crontab['0 7 13 * fri' Europe/London]"


# -- daylight saving (Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST, 2026-10-25 02:00 BST -> 01:00 GMT)


def test_spring_forward_fixed_time_in_the_gap_runs_once_at_the_change() -> None:
    start = datetime(2026, 3, 28, 12, 0, tzinfo=LONDON)
    assert fires("30 1 * * *", start, 3) == [
        "2026-03-29T02:00:00+01:00",
        "2026-03-30T01:30:00+01:00",
        "2026-03-31T01:30:00+01:00",
    ]
    # Two skipped times still make one run.
    assert fires("0,30 1 * * *", start, 2) == [
        "2026-03-29T02:00:00+01:00",
        "2026-03-30T01:00:00+01:00",
    ]


def test_spring_forward_wildcard_jobs_follow_the_clock() -> None:
    start = datetime(2026, 3, 29, 0, 20, tzinfo=LONDON)
    assert fires("*/20 * * * *", start, 4) == [
        "2026-03-29T00:20:00+00:00",
        "2026-03-29T00:40:00+00:00",
        "2026-03-29T02:00:00+01:00",
        "2026-03-29T02:20:00+01:00",
    ]
    assert fires("30 * * * *", start, 2) == [
        "2026-03-29T00:30:00+00:00",
        "2026-03-29T02:30:00+01:00",
    ]


def test_fall_back_fixed_time_in_the_repeated_hour_runs_once() -> None:
    start = datetime(2026, 10, 24, 12, 0, tzinfo=LONDON)
    assert fires("30 1 * * *", start, 3) == [
        "2026-10-25T01:30:00+01:00",
        "2026-10-26T01:30:00+00:00",
        "2026-10-27T01:30:00+00:00",
    ]


def test_fall_back_wildcard_jobs_run_in_both_passes() -> None:
    start = datetime(2026, 10, 25, 0, 50, tzinfo=LONDON)
    assert fires("*/30 * * * *", start, 6) == [
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T01:30:00+01:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T01:30:00+00:00",
        "2026-10-25T02:00:00+00:00",
        "2026-10-25T02:30:00+00:00",
    ]


def test_a_daily_digest_keeps_its_local_time_across_both_changes() -> None:
    spring = fires("0 7 * * *", datetime(2026, 3, 28, 8, 0, tzinfo=LONDON), 2)
    autumn = fires("0 7 * * *", datetime(2026, 10, 24, 8, 0, tzinfo=LONDON), 2)
    assert spring == ["2026-03-29T07:00:00+01:00", "2026-03-30T07:00:00+01:00"]
    assert autumn == ["2026-10-25T07:00:00+00:00", "2026-10-26T07:00:00+00:00"]


# -- against a reference: cron's matching rule applied day by day, in UTC ---------------------


def reference_fires(expression: str, start: datetime, count: int) -> list[datetime]:
    """What cron would run, by brute force over days (no DST in UTC)."""
    crontab = parse_crontab(expression)
    found: list[datetime] = []
    day = start.date()
    while len(found) < count and day < date(2040, 1, 1):
        weekday = (day.weekday() + 1) % 7  # cron: 0 = Sunday
        in_month = day.month in crontab.months
        by_day, by_weekday = day.day in crontab.days, weekday in crontab.weekdays
        matches = (by_day or by_weekday) if crontab.days_either else (by_day and by_weekday)
        if in_month and matches:
            for hour in sorted(crontab.hours):
                for minute in sorted(crontab.minutes):
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if moment >= start and len(found) < count:
                        found.append(moment)
        day += timedelta(days=1)
    return found


def _field(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=3).map(",".join)


def _items(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    value = number.map(str) | (st.sampled_from(names) if names else number.map(str))
    ranges = st.tuples(number, number).map(lambda pair: f"{min(pair)}-{max(pair)}")
    stepped = st.tuples(ranges | st.just("*"), st.integers(1, 9)).map(
        lambda pair: f"{pair[0]}/{pair[1]}"
    )
    return st.just("*") | value | ranges | stepped


EXPRESSIONS = st.tuples(
    _field(_items(0, 59)),
    _field(_items(0, 23)),
    _field(_items(1, 28)),
    _field(_items(1, 12, ("jan", "jun", "dec"))),
    _field(_items(0, 7, ("sun", "mon", "sat"))),
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(expression=EXPRESSIONS, offset=st.integers(0, 3 * 365 * 24 * 60))
def test_fire_times_match_crons_rule(expression: str, offset: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=offset)
    trigger = CrontabTrigger(expression, "UTC")
    assert next_fire_times(trigger, start, 3) == reference_fires(expression, start, 3)

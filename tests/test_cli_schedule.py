"""`publisher schedule`, `publisher run` and `publisher status` as an operator uses them."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from schedule_helpers import PUBLISHER, Child, hold_lock, left_down, make_project, release

from publisher import runlog
from publisher.config import load_config
from publisher.schedule import CrontabTrigger, next_fire_times
from publisher.scheduler import status_lines

Cli = Callable[..., Result]
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


# -- status -------------------------------------------------------------------------------------


def test_status_shows_next_run_times_in_the_configured_zone(tmp_path: Path, cli: Cli) -> None:
    config = make_project(
        tmp_path, timezone="Europe/London", feeds="0 7 * * mon-fri", digest="30 6 * * 0"
    )
    result = cli("status", "--config", config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "service: not running"
    assert lines[1] == "feeds: '0 7 * * mon-fri' in Europe/London, misfire grace 5m"
    assert lines[2].startswith("  next runs: ") and all(
        line.startswith(" " * 13) for line in lines[3:5]
    )
    shown = [datetime.fromisoformat(line.split()[-1]) for line in lines[2:5]]
    london = CrontabTrigger("0 7 * * mon-fri", "Europe/London").timezone
    for moment in shown:
        assert re.fullmatch(ISO, moment.isoformat())
        assert moment.utcoffset() == moment.astimezone(london).utcoffset()  # London's offset
        assert (moment.astimezone(london).hour, moment.astimezone(london).minute) == (7, 0)
        assert moment.astimezone(london).weekday() < 5
    assert shown == sorted(shown) and len(set(shown)) == 3
    assert lines[5] == "  last run:  never"
    assert lines[6] == "digest: '30 6 * * 0' in Europe/London, misfire grace 6h"


def test_status_is_a_pure_function_of_now_and_the_state(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path, timezone="Europe/London", feeds="*/15 * * * *"))
    now = datetime(
        2026, 10, 25, 0, 40, tzinfo=UTC
    )  # 01:40 BST, 20 minutes before the clocks go back
    lines = status_lines(config, now, count=4)
    assert lines[2:6] == [
        "  next runs: 2026-10-25T01:45:00+01:00",
        "             2026-10-25T01:00:00+00:00",
        "             2026-10-25T01:15:00+00:00",
        "             2026-10-25T01:30:00+00:00",
    ]
    trigger = CrontabTrigger("*/15 * * * *", "Europe/London")
    assert [line.split()[-1] for line in lines[2:6]] == [
        t.isoformat() for t in next_fire_times(trigger, now, 4)
    ]


def test_status_shows_the_last_run_and_its_outcome(tmp_path: Path, cli: Cli) -> None:
    config = make_project(tmp_path, timezone="Asia/Kolkata")
    assert cli("run", "feeds", "--config", config).exit_code == 0
    lines = cli("status", "--config", config).stdout.splitlines()
    [last] = [line for line in lines if line.startswith("  last run:")][:1]
    match = re.fullmatch(
        rf"  last run:  ({ISO}), ok in \d+\.\d\d s \(manual\): Done: 3 documents read.*", last
    )
    assert match, last
    assert match.group(1).endswith("+05:30")
    assert datetime.fromisoformat(match.group(1)) <= datetime.now(UTC)


# -- run ----------------------------------------------------------------------------------------


def test_run_feeds_publishes_and_exits_0(tmp_path: Path, cli: Cli) -> None:
    result = cli("run", "feeds", "--config", make_project(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "feeds" / "index.opml").is_file()


def test_run_exits_non_zero_when_the_run_fails(tmp_path: Path, cli: Cli) -> None:
    config = make_project(tmp_path)
    (tmp_path / "feeds").write_text("a file where the output folder should be")
    result = cli("run", "feeds", "--config", config)
    assert result.exit_code == 1
    [record] = runlog.history(tmp_path / "state" / "state.sqlite", "feeds")
    assert record.outcome == "failed"


def test_run_exits_2_for_a_configuration_problem_met_during_the_run(
    tmp_path: Path, cli: Cli
) -> None:
    config = make_project(tmp_path)
    (tmp_path / "seeds").rename(tmp_path / "elsewhere")
    assert cli("run", "feeds", "--config", config).exit_code == 2


def test_run_all_runs_the_feeds_then_the_digest_and_reports_a_failure(tmp_path: Path) -> None:
    config = make_project(tmp_path)  # no subscribers file: the digest fails, the feeds do not
    run = Child([*PUBLISHER, "run", "all", "--config", config], tmp_path)
    assert run.finish() == 1
    order = [
        line.split(": ", 1)[1] for line in run.lines if re.search(r": (feeds|digest) run \w+", line)
    ]
    assert order[0] == "feeds run started (manual)"
    assert order[1].startswith("feeds run finished in ")
    assert order[2] == "digest run started (manual)"
    assert order[3].startswith("digest run failed after ")
    assert "Traceback (most recent call last)" in run.stderr
    assert (tmp_path / "feeds" / "index.opml").is_file()


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            {"feeds": "*/15 * * * 8"},
            "schedule.feeds: not a valid crontab expression: day-of-week '8': 8 is outside 0-7",
        ),
        (
            {"digest": "0 7 * *"},
            "schedule.digest: not a valid crontab expression: expected 5 fields",
        ),
        ({"timezone": "Europe/Paris "}, "schedule.timezone: unknown time zone 'Europe/Paris '"),
    ],
)
@pytest.mark.parametrize("command", ["schedule", "run", "status"])
def test_bad_schedule_settings_stop_every_command_with_exit_2(
    tmp_path: Path, cli: Cli, command: str, schedule: dict[str, str], message: str
) -> None:
    config = make_project(tmp_path, **schedule)
    result = cli(command, "--config", config)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "state").exists()


# -- the service ---------------------------------------------------------------------------------


def serve(config: Path, cwd: Path) -> Child:
    child = Child([*PUBLISHER, "schedule", "--config", config], cwd)
    child.wait_for(r"digest: crontab\[.*\], next run at ")
    return child


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_service_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    service = serve(make_project(tmp_path), tmp_path)
    service.process.send_signal(signum)
    assert service.finish() == 0, service.stderr
    assert f"{signum.name} received: stopping" in service.stderr
    assert service.lines[-1].endswith("publisher.scheduler: scheduler stopped")
    assert "Traceback" not in service.stderr


def test_the_service_catches_up_a_missed_run_then_stops_on_sigterm(
    tmp_path: Path, cli: Cli
) -> None:
    config_path = make_project(tmp_path)
    left_down(load_config(config_path), "feeds", datetime.now(UTC) - timedelta(minutes=1))
    service = Child([*PUBLISHER, "schedule", "--config", config_path], tmp_path)
    service.wait_for(
        "feeds: the run due at .* was missed while the service was down; running it now"
    )
    service.wait_for("feeds run finished in")
    status = cli("status", "--config", config_path).stdout
    assert f"service: running, pid {service.process.pid}" in status
    service.process.send_signal(signal.SIGTERM)
    assert service.finish() == 0, service.stderr
    assert "(schedule): Done: 3 documents read" in status
    assert (tmp_path / "feeds" / "index.opml").is_file()
    # One line when the run starts and one when it ends; APScheduler's own stay quiet.
    assert [
        line for line in service.lines if "Running job" in line or "executed successfully" in line
    ] == []


def test_a_second_service_on_the_same_state_refuses_to_start(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    first = serve(config, tmp_path)
    try:
        second = Child([*PUBLISHER, "schedule", "--config", config], tmp_path)
        assert second.finish() == 1
        assert (
            f"another 'publisher schedule' (pid {first.process.pid}) already uses" in second.stderr
        )
    finally:
        first.process.send_signal(signal.SIGTERM)
        assert first.finish() == 0


HELD_RUN = """
import sys, time
from pathlib import Path
from publisher import scheduler
from publisher.cli import main

release = Path(sys.argv[1])

def held_feeds(config):
    # Stands in for a long build, so the signal surely arrives mid-run.
    while not release.exists():
        time.sleep(0.01)
    return "the held run is done"

scheduler.ACTIONS["feeds"] = held_feeds
main(["schedule", "--config", sys.argv[2]])
"""


def test_sigterm_lets_the_current_run_finish(tmp_path: Path) -> None:
    config_path = make_project(tmp_path)
    left_down(load_config(config_path), "feeds", datetime.now(UTC))
    release_file = tmp_path / "release"
    service = Child([sys.executable, "-c", HELD_RUN, release_file, config_path], tmp_path)
    service.wait_for("feeds run started")
    service.process.send_signal(signal.SIGTERM)
    service.wait_for("SIGTERM received: stopping once the current run")
    assert service.process.poll() is None  # still running: the run holds the shutdown
    service.process.send_signal(signal.SIGTERM)
    service.wait_for("SIGTERM again: still waiting for the current run to finish")
    release_file.touch()
    assert service.finish() == 0, service.stderr
    finished = next(i for i, line in enumerate(service.lines) if "feeds run finished" in line)
    stopped = next(i for i, line in enumerate(service.lines) if line.endswith("scheduler stopped"))
    assert finished < stopped
    assert "the held run is done" in service.lines[finished]


def test_sigterm_abandons_a_run_still_waiting_for_its_lock(tmp_path: Path) -> None:
    config_path = make_project(tmp_path, overlap_timeout="1h")
    left_down(load_config(config_path), "feeds", datetime.now(UTC))
    holder = hold_lock(tmp_path / "state" / "locks" / "feeds.lock", tmp_path)
    try:
        service = Child([*PUBLISHER, "schedule", "--config", config_path], tmp_path)
        service.wait_for(f"feeds: waiting up to 3600 s for the run in pid {holder.process.pid}")
        service.process.send_signal(signal.SIGTERM)
        assert service.finish() == 0, service.stderr
    finally:
        release(holder)
    assert (
        f"feeds: not started, stopping while pid {holder.process.pid} still held its lock"
        in service.stderr
    )
    assert not (tmp_path / "feeds").exists()


def test_every_new_command_has_help(cli: Cli) -> None:
    for command in ("schedule", "run", "status"):
        result = cli(command, "--help")
        assert result.exit_code == 0
        assert "--config" in result.stdout

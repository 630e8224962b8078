"""Faults: a build killed at any moment, a full or read-only disk, a mail server failing at
every step of the dialogue, a damaged or locked state database, two processes at once.

Every fault here is real: SIGKILL, RLIMIT_FSIZE, a file where a folder should be, a tiny
tmpfs (mounted only where the tests may mount: skipped otherwise), an aiosmtpd server on
loopback that refuses, stalls or hangs up. Nothing is mocked.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from click.testing import CliRunner
from conftest import SITE_URL, differences, held_exclusively, render_article, run_module
from smtp_helpers import STEPS, Behaviour, Fault, smtp_server
from test_cache import generate
from test_hostile_input import Sandbox, check_outputs, outbox_messages, sandbox

from publisher import state as state_module
from publisher.cli import main
from publisher.config import load_config
from publisher.digest_run import DigestResult, run_digest
from publisher.output import MANIFEST, OutputFolder
from publisher.pipeline import build

DAY1 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
PEOPLE = ["ada@example.org", "grace@example.org", "hedy@example.org"]
# mkstemp's temporary names in output.write_atomic: ".<name>.XXXXXXXX.tmp".
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
T = TypeVar("T")


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too), by relative name."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if TEMPORARY.fullmatch(p.name)]


def bounded(work: Callable[[], T], seconds: float = 90) -> T:
    """``work()``, or a failure if it has not returned after ``seconds`` (a hang, not slowness)."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(work).result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"still running after {seconds} s: a timeout is missing")
    finally:
        pool.shutdown(wait=False)


def cli(*args: object) -> Any:
    """The real click command in this process (stdout and stderr kept apart)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write_news(box: Sandbox, key: str, when: datetime, **fields: Any) -> None:
    url = f"https://news.example.com/{key}"
    (box.seeds / f"{key}.txt").write_text(
        render_article(
            title=f"Story {key}",
            webUrl=url,
            originalUrl=url,
            publishedDateTime=when - timedelta(hours=1),
            topics=["General"],
            **fields,
        ),
        encoding="utf-8",
    )


def sends(box: Sandbox) -> Counter[tuple[str, str]]:
    """(period, recipient) -> how many times the state store says it was sent."""
    with closing(sqlite3.connect(box.state)) as conn:
        rows = conn.execute(
            "SELECT r.period, s.recipient FROM digest_sends s JOIN digest_runs r ON r.id = s.run_id "
            "WHERE s.status = 'sent'"
        ).fetchall()
    return Counter((str(period), str(recipient)) for period, recipient in rows)


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.delenv("PUBLISHER_DIGEST_SECRET", raising=False)
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    result = sandbox(tmp_path / "sandbox")
    result.subscribe(PEOPLE)
    return result


# --- SIGKILL at any moment of a build -----------------------------------------------------------

DOCUMENTS = 200
KILLS = 20


def write_corpus(folder: Path, revision: int) -> None:
    """The same few hundred stories; revision 1 edits every title, excerpt and quality."""
    for index in range(DOCUMENTS):
        generate.write_article(folder, index, revision=revision)


def test_a_build_killed_at_any_moment_leaves_whole_files_and_the_next_build_repairs_all(
    tmp_path: Path,
) -> None:
    seeds, out = tmp_path / "seeds", tmp_path / "out"
    settings: dict[str, Any] = {"site": {"url": SITE_URL}, "feeds": {"max_items": 15}}

    def config_file(name: str, output: Path) -> Path:
        state = str(tmp_path / name / "state.sqlite")
        path = tmp_path / f"{name}.yaml"
        paths = {"seeds": str(seeds), "output": str(output), "state": state}
        path.write_text(yaml.safe_dump({**settings, "paths": paths}), encoding="utf-8")
        return path

    # A clean build of each version, in a fresh folder without a cache: the valid files.
    versions: list[dict[str, bytes]] = []
    for revision in (0, 1):
        write_corpus(seeds, revision)
        reference = tmp_path / f"reference-{revision}"
        clean = config_file(f"clean-{revision}", reference)
        assert run_module("build", "--no-cache", "--config", clean, cwd=tmp_path).returncode == 0
        check_outputs(reference)
        versions.append(files(reference))
    assert len(versions[0]) > 100 and versions[0] != versions[1]
    config = config_file("state", out)
    command = [sys.executable, "-m", "publisher", "build", "--config", str(config)]
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL) as child:
        writing = wait_for_writing(out, child, time.time_ns())
        assert child.wait(timeout=60) == 0
    ended = time.perf_counter()
    assert not differences(files(out), versions[1])
    assert writing is not None, "the build was never seen replacing files"
    duration, writes = ended - started, ended - writing  # a whole build; its writing phase
    rng = random.Random(20261124)
    killed_while_writing = kill = 0
    # On a loaded machine a build can outrun its kill: go on (a bounded number of times,
    # killing only while files are replaced) until enough kills landed then.
    while kill < KILLS or (killed_while_writing < KILLS // 4 and kill < 3 * KILLS):
        kill += 1
        old, new = kill % 2, (kill + 1) % 2
        write_corpus(seeds, new)
        with subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its render workers die with it
        ) as child:  # fmt: skip
            began = None
            if kill % 2 and kill <= KILLS:  # any moment, start-up included
                time.sleep(rng.uniform(0.0, duration))
            else:  # while files are being replaced
                began = wait_for_writing(out, child, time.time_ns())
                time.sleep(rng.uniform(0.0, writes) if began is not None else 0)
            killed_while_writing += began is not None and child.poll() is None
            with contextlib.suppress(ProcessLookupError):  # it may have finished just now
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        # Whatever the moment, each file is a whole old or new version (so it parses: the
        # versions were checked above); temporary files are hidden, and in no manifest.
        for name, data in files(out).items():
            leftover = TEMPORARY.fullmatch(Path(name).name)
            if leftover is not None:
                assert leftover["name"] in {*versions[old], *versions[new]}, name
                continue
            assert data in (versions[old].get(name), versions[new].get(name)), (
                f"kill {kill}: {name} is not a whole version"
            )
            if name == MANIFEST:
                assert not [n for n in json.loads(data) if TEMPORARY.fullmatch(n)]
        # The next build repairs everything: byte for byte a clean build, no debris.
        result = build(load_config(config))
        assert not (found := differences(files(out), versions[new])), f"after kill {kill}:\n{found}"
        assert result.report.documents == DOCUMENTS
    assert killed_while_writing >= KILLS // 4, "too few kills landed while files were written"


def _children(pid: int) -> list[int]:
    try:
        return [int(n) for n in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_the_workers_of_a_build_killed_alone_leave_with_it_and_free_its_lock(
    tmp_path: Path,
) -> None:
    # SIGKILL (or the OOM killer) takes the build alone, not its process group: its parse
    # workers must not wait for work for ever, holding the lock they inherited.
    seeds = tmp_path / "seeds"
    generate.generate(seeds, 4000)  # over PARALLEL_MIN: parsed in worker processes
    config = tmp_path / "publisher.yaml"
    paths = {"seeds": str(seeds), "output": str(tmp_path / "out"), "state": "state/s.sqlite"}
    config.write_text(yaml.safe_dump({"site": {"url": SITE_URL}, "paths": paths}))
    command = [sys.executable, "-m", "publisher", "build", "--config", str(config)]
    child = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        workers: list[int] = []
        while child.poll() is None and len(workers) < 2:
            workers = _children(child.pid)
            time.sleep(0.002)
        assert len(workers) >= 2, "the build ended before its workers were seen"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_running, workers)), "workers outlived the build"
        # Its lock is free: the next build runs at once (it would wait up to 10 minutes).
        again = run_module("build", "--config", config, cwd=tmp_path, timeout=60)
        assert again.returncode == 0, again.stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)


def test_leftover_temporary_files_go_but_never_a_live_writers_or_a_strangers(
    tmp_path: Path,
) -> None:
    past = time.time() - 60
    names = {
        "dead": ".all.rss.xml.k1ll3d00.tmp",  # its writer was killed
        "manifest": f".{MANIFEST}.k1ll3d00.tmp",  # killed while writing the manifest itself
        "live": ".all.atom.xml.wr1t1ng0.tmp",  # its writer (another process) is writing it
        "stranger": ".notes.txt.abcdefgh.tmp",  # not a file we publish
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (past, past))
    with open(tmp_path / names["live"], "rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        folder = OutputFolder(tmp_path)
        folder.write("all.rss.xml", b"<rss/>")
        folder.write("all.atom.xml", b"<feed/>")
        folder.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [MANIFEST, "all.atom.xml", "all.rss.xml", names["live"], names["stranger"]]
    )


def _render_or_die(number: int, parent: int) -> bytes:
    """A render job whose worker process dies at job 30 (in the parent, it just renders)."""
    if number == 30 and os.getpid() != parent:
        os._exit(3)
    return f"file {number}".encode()


def test_render_workers_dying_midway_leave_the_rest_to_this_process_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import functools
    import multiprocessing

    from publisher import pipeline

    assert pipeline._can_fork(), "a thread left by another test keeps the workers from forking"
    jobs = [functools.partial(_render_or_die, n, os.getpid()) for n in range(60)]
    assert list(pipeline.render_all(jobs)) == [f"file {n}".encode() for n in range(60)]
    assert "rendering in worker processes failed" in caplog.text
    # A writer that stops midway (a full disk) closes the workers too.
    rendered = pipeline.render_all([functools.partial(_render_or_die, n, -1) for n in range(29)])
    assert [next(rendered) for _ in range(5)] == [f"file {n}".encode() for n in range(5)]
    rendered.close()
    assert not multiprocessing.active_children()


def wait_for_writing(folder: Path, child: subprocess.Popen[bytes], since_ns: int) -> float | None:
    """When the build in ``child`` starts replacing files in ``folder`` (None: it never did)."""
    while child.poll() is None:
        if any_written(folder, since_ns):
            return time.perf_counter()
        time.sleep(0.0005)
    return None


def any_written(folder: Path, since_ns: int) -> bool:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if TEMPORARY.fullmatch(entry.name) or entry.stat().st_mtime_ns > since_ns:
                    return True
    except OSError:
        pass
    return False


# --- a full, read-only or misshapen disk -------------------------------------------------------------


@pytest.fixture
def mount_tmpfs() -> Iterator[Callable[[Path, int], None]]:
    """Mount a tiny tmpfs on a folder (root only; the test is skipped where mounting is denied)."""
    mounted: list[Path] = []

    def mount(folder: Path, size: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None or os.geteuid() != 0:
            pytest.skip("a full or read-only disk needs a tmpfs, which only root can mount")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(folder)

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` until only about ``leave`` bytes are free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    filler = folder / "filler"
    with open(filler, "wb") as stream:
        stream.write(b"\0" * max(free - leave, 0))
    return filler


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True, capture_output=True)


def first_digest(box: Sandbox) -> None:
    """Day 1 goes out to everyone; day 2's story is waiting."""
    write_news(box, "day1", DAY1)
    build(box.config())
    assert run_digest(box.config(), now=DAY1).sent == len(PEOPLE)
    write_news(box, "day2", DAY2, excerpt="A longer excerpt. " * 30)


def assert_day2_sent_once(box: Sandbox) -> None:
    result = run_digest(box.config(), now=DAY2 + timedelta(hours=1))
    assert result.ok, result.summary()
    assert sends(box) == Counter(
        {("2026-11-24", p): 1 for p in PEOPLE} | {("2026-11-25", p): 1 for p in PEOPLE}
    )
    assert sorted(outbox_messages(box.outbox / "2026-11-25")) == [f"{p}.eml" for p in PEOPLE]
    assert integrity(box.state) == "ok"


FOLDER_FAULTS = [
    ("output", "file-in-the-way"),
    ("output", "full"),
    ("output", "read-only"),
    ("outbox", "file-in-the-way"),
    ("outbox", "full"),
    ("outbox", "read-only"),
    ("state", "file-in-the-way"),
    ("state", "file-size-limit"),
    ("state", "full"),
    ("state", "read-only"),
]


def inject(box: Sandbox, where: str, fault: str, folder: Path) -> tuple[Path, Callable[[], None]]:
    """Break ``folder`` in the way ``fault`` says; returns what to blame and how to mend it."""
    if fault == "full":
        filler = fill(folder, leave=2048)
        return folder, filler.unlink
    if fault == "read-only":
        remount(folder, "ro")
        return folder, lambda: remount(folder, "rw")
    if fault == "file-size-limit":
        return folder, lambda: None  # set on the child process alone
    # A file where a folder should be (a folder where the lock file should be, for the state).
    if where == "state":
        culprit = box.state.with_name("state.sqlite.digest-lock")
        culprit.unlink(missing_ok=True)
        culprit.mkdir()
        return culprit, culprit.rmdir
    culprit = box.out / "digest" if where == "output" else box.outbox / "2026-11-25"
    shutil.rmtree(culprit, ignore_errors=True)
    culprit.write_text("in the way", encoding="utf-8")
    return culprit, culprit.unlink


def limit_file_size() -> None:
    """In the child: any write past 4 KB fails with EFBIG (instead of a SIGXFSZ kill)."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize(("where", "fault"), FOLDER_FAULTS)
def test_a_folder_that_cannot_be_written_fails_the_run_cleanly_and_loses_nothing(
    box: Sandbox,
    mount_tmpfs: Callable[[Path, int], None],
    tmp_path: Path,
    where: str,
    fault: str,
) -> None:
    folder = {"output": box.out, "outbox": box.outbox, "state": box.state.parent}[where]
    if fault in ("full", "read-only"):
        mount_tmpfs(folder, 1024 * 1024)
    first_digest(box)
    config = box.config_file()
    # The feeds live in the output folder: a build meets its fault; else the digest does.
    building = where == "output" and fault in ("full", "read-only")
    if building:
        write_news(box, "day2b", DAY2, excerpt="Another long excerpt. " * 60)
        arguments: list[object] = ["build", "--config", config]
    else:
        arguments = ["digest", "--config", config, "--now", "2026-11-25T07:00:00Z"]
    outputs, outbox = files(box.out), files(box.outbox)
    culprit, mend = inject(box, where, fault, folder)
    if fault == "file-size-limit":
        child = run_module(*arguments, cwd=box.root, preexec_fn=limit_file_size)
        exit_code, stderr = child.returncode, child.stderr
    else:
        result = cli(*arguments)
        exit_code, stderr = result.exit_code, result.stderr
    # A clear error naming what could not be written: no traceback, a non-zero exit.
    assert exit_code == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert str(culprit) in last, last
    # No partial file: no temporary file left, every output whole (old, or a new version).
    assert not temporaries(box.root)
    mend()
    check_outputs(box.out)
    if where != "output":
        feeds = {name: data for name, data in outputs.items() if not name.startswith("digest")}
        assert {name: files(box.out)[name] for name in feeds} == feeds
    assert files(box.outbox) == outbox  # no message half written, none sent for day 2
    # Nothing lost: what the state recorded is all still there, and the file is sound.
    assert integrity(box.state) == "ok"
    assert sends(box) == Counter({("2026-11-24", p): 1 for p in PEOPLE})
    # The next runs finish the job: the feeds as a clean build writes them, and each
    # reader gets day 2's digest once.
    if building:
        assert cli(*arguments).exit_code == 0
        clean = tmp_path / "clean"
        build(box.config(), out=clean, use_cache=False)
        now = files(box.out)
        assert {name: now[name] for name in now if not name.startswith("digest")} == files(clean)
    assert_day2_sent_once(box)


# --- the mail server fails at every step of the dialogue --------------------------------------------

STALL = 1.5  # the server says nothing this long: longer than the client's timeout
MODES = ("refuse", "stall", "drop")


def delivered(server: Any) -> Counter[tuple[str, str]]:
    """(recipient, day in the subject) -> messages the server accepted."""
    got: Counter[tuple[str, str]] = Counter()
    for message in server.received:
        day = re.search(r"\d+ November 2026", str(message.parse()["Subject"]))
        assert day is not None
        got[(message.recipients[0].lower(), day.group())] += 1
    return got


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("step", STEPS)
def test_a_mail_server_failing_at_any_step_never_loses_or_doubles_a_message(
    box: Sandbox, step: str, mode: str
) -> None:
    people = PEOPLE[:2]
    box.subscribe(people)
    write_news(box, "day1", DAY1)
    behaviour = Behaviour()
    with smtp_server(behaviour) as (server, port):
        box.sections = {
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "rate": 0,
                     "retries": 1, "backoff": 0, "timeout": 0.4},
        }  # fmt: skip
        # Once: the retry (on a new connection if need be) delivers, within the run.
        behaviour.fault = once = Fault(step, mode, times=1, stall=STALL)
        first: DigestResult = bounded(lambda: run_digest(box.config(), now=DAY1))
        assert once.hits == 1 and first.ok, first.summary()
        # For as long as it lasts: the run stops or gives up, says so, and sends nothing twice.
        write_news(box, "day2", DAY2)
        behaviour.fault = lasting = Fault(step, mode, times=10**6, stall=STALL)
        second: DigestResult = bounded(lambda: run_digest(box.config(), now=DAY2))
        assert lasting.hits >= 2 and not second.ok
        assert second.error or second.failed == len(people), second.summary()
        behaviour.fault = None
        # Once it is over, a rerun sends what is left, once.
        third: DigestResult = bounded(
            lambda: run_digest(box.config(), now=DAY2 + timedelta(hours=1))
        )
        assert third.ok and third.sent == len(people), third.summary()
    assert delivered(server) == Counter(
        {(p, day): 1 for p in people for day in ("24 November 2026", "25 November 2026")}
    )


# --- a damaged or locked state database -----------------------------------------------------------


def _garbage(data: bytes) -> bytes:
    return random.Random(7).randbytes(len(data))


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "garbage": _garbage,
    "truncated-in-half": lambda data: data[: len(data) // 2],
    "header-only": lambda data: data[:100],
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_state_database_stops_the_digest_and_is_never_reset(
    box: Sandbox, damage: str
) -> None:
    write_news(box, "day1", DAY1)
    assert run_digest(box.config(), now=DAY1).sent == len(PEOPLE)
    with closing(sqlite3.connect(box.state)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damaged = DAMAGE[damage](box.state.read_bytes())
    box.state.write_bytes(damaged)
    write_news(box, "day2", DAY2)
    config = box.config_file()
    result = cli("digest", "--config", config, "--now", "2026-11-25T07:00:00Z")
    assert result.exit_code == 1
    message = result.stderr.strip().splitlines()[-1]
    assert str(box.state) in message and "move it aside" in message and "--since" in message
    assert box.state.read_bytes() == damaged  # never reset, never "repaired" behind our back
    assert not (box.outbox / "2026-11-25").exists()
    # The documented recovery: move it aside, then start from the last digest's time.
    box.state.rename(box.state.with_name("state.sqlite.damaged"))
    again = cli(
        "digest",
        "--config",
        config,
        "--now",
        "2026-11-25T07:00:00Z",
        "--since",
        "2026-11-24T07:00:00Z",
    )
    assert again.exit_code == 0, again.stderr
    mail = outbox_messages(box.outbox / "2026-11-25")
    assert len(mail) == len(PEOPLE)
    for message_ in mail.values():
        assert "Story day2" in str(message_["Subject"]) or "Story day2" in message_.as_string()
        assert "Story day1" not in message_.as_string()  # what went out before is not resent


def test_a_locked_state_database_stops_the_digest_and_the_next_run_sends_once(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_news(box, "day1", DAY1)
    assert run_digest(box.config(), now=DAY1).sent == len(PEOPLE)
    write_news(box, "day2", DAY2)
    monkeypatch.setattr(state_module, "BUSY_TIMEOUT_MS", 100)
    config = box.config_file()
    with held_exclusively(box.state):
        locked = cli("digest", "--config", config, "--now", "2026-11-25T07:00:00Z")
    assert locked.exit_code == 1
    message = locked.stderr.strip().splitlines()[-1]
    assert str(box.state) in message and "locked by another process" in message
    assert (
        not outbox_messages(box.outbox / "2026-11-25")
        if (box.outbox / "2026-11-25").exists()
        else True
    )
    assert_day2_sent_once(box)


# --- two processes at the same moment -----------------------------------------------------------------


def start_together(
    command: list[str], cwd: Path, count: int = 2
) -> list[subprocess.CompletedProcess[str]]:
    """Start ``count`` copies of ``command`` at once; wait for all of them."""
    children = [
        subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    results = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(command, child.returncode, stdout, stderr))
    return results


def test_two_builds_started_together_write_whole_files_and_agree(tmp_path: Path) -> None:
    box = sandbox(tmp_path / "sandbox")
    reference = tmp_path / "reference"
    config = box.config_file()
    for revision in (0, 1):
        write_corpus(box.seeds, revision)
        build(box.config(), out=reference / str(revision), use_cache=False)
        for child in start_together(
            [sys.executable, "-m", "publisher", "build", "--config", str(config)], box.root
        ):
            assert child.returncode == 0, child.stderr
            assert child.stdout.startswith("Done: ")
        assert not differences(files(box.out), files(reference / str(revision)))
        assert not temporaries(box.out)
    check_outputs(box.out)


def test_two_digests_started_together_send_each_message_once(box: Sandbox) -> None:
    people = [f"reader{n}@example.org" for n in range(6)]
    box.subscribe(people)
    write_news(box, "day1", DAY1)
    build(box.config())
    with smtp_server(Behaviour(delay=0.05)) as (server, port):
        box.sections = {
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "rate": 0,
                     "retries": 1, "backoff": 0, "timeout": 10},
        }  # fmt: skip
        config = box.config_file()
        command = [sys.executable, "-m", "publisher", "digest", "--config", str(config),
                   "--now", "2026-11-24T07:00:00Z"]  # fmt: skip
        children = start_together(command, box.root)
    codes = sorted(child.returncode for child in children)
    assert codes in ([0, 0], [0, 1]), [c.stderr for c in children]
    for child in children:
        assert "Traceback" not in child.stderr
        if child.returncode:
            assert "a digest run is already in progress" in child.stderr
        else:
            assert "6 recipients" in child.stdout
    assert server.recipients() == {p: 1 for p in people}
    assert sends(box) == Counter({("2026-11-24", p): 1 for p in people})

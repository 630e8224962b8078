"""The rebuild's helper process changes how long a rebuild takes, never what it writes."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import differences
from test_cache import NEWS, Builds, age, files, generate, make_config, write_corpus

from publisher import cache as build_cache
from publisher import helper as helper_module
from publisher import pipeline
from publisher.helper import Helper, helper_process
from publisher.pipeline import build

REPO = Path(__file__).resolve().parent.parent


def reaped(helper: Helper) -> bool:
    """Whether the helper process is gone and waited for (no zombie left)."""
    try:
        os.waitpid(helper.pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _job(number: int, parent: int, die_at: int = -1) -> bytes:
    """A render job; in a process other than ``parent`` it dies at job ``die_at``."""
    if number == die_at and os.getpid() != parent:
        os._exit(3)
    return f"file {number} from {'this' if os.getpid() == parent else 'helper'}".encode()


def render_here(jobs: list[Callable[[], bytes]]) -> list[bytes]:
    return [job() for job in jobs]


def test_the_helper_answers_then_renders_in_another_process() -> None:
    parent = os.getpid()
    with helper_process(lambda: b"\x01\x00\x01", lambda: None) as helper:
        assert helper is not None
        assert helper.check() == b"\x01\x00\x01"
        jobs = [functools.partial(_job, n, parent) for n in range(5)]
        rendered = list(helper.render_all(jobs, render_here))
        # A second batch, to the same process.
        again = list(helper.render_all(jobs[:2], render_here))
    assert rendered == [f"file {n} from helper".encode() for n in range(5)]
    assert again == rendered[:2]
    assert reaped(helper)


@pytest.mark.parametrize("die_at", [0, 3, 6])
def test_a_helper_dying_midway_leaves_the_rest_to_this_process_in_order(die_at: int) -> None:
    parent = os.getpid()
    with helper_process(lambda: b"", lambda: None) as helper:
        assert helper is not None
        jobs = [functools.partial(_job, n, parent, die_at) for n in range(7)]
        rendered = list(helper.render_all(jobs, render_here))
        assert not helper.alive
    expected = [f"file {n} from {'helper' if n < die_at else 'this'}".encode() for n in range(7)]
    assert rendered == expected
    assert reaped(helper)


def _die() -> bytes:
    os._exit(4)


def test_a_helper_dying_before_it_answers_answers_nothing_and_renders_nothing() -> None:
    parent = os.getpid()
    with helper_process(_die, lambda: None) as helper:
        assert helper is not None
        assert helper.check() is None
        assert helper.answered()
        jobs = [functools.partial(_job, n, parent) for n in range(3)]
        assert list(helper.render_all(jobs, render_here)) == [
            f"file {n} from this".encode() for n in range(3)
        ]
    assert reaped(helper)


def test_jobs_that_cannot_be_sent_are_rendered_here() -> None:
    parent = os.getpid()
    unsendable = threading.Lock()  # not picklable
    jobs = [
        functools.partial(_job, 0, parent),
        functools.partial(lambda _lock: b"lock", unsendable),
    ]
    with helper_process(lambda: b"", lambda: None) as helper:
        assert helper is not None
        assert list(helper.render_all(jobs, render_here)) == [b"file 0 from this", b"lock"]
    assert reaped(helper)


def test_no_helper_beside_other_threads() -> None:
    # Forking a threaded process (the scheduler's) can leave the child a lock held forever.
    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait)
    bystander.start()
    try:
        assert Helper.start(lambda: b"", lambda: None) is None
    finally:
        stop.set()
        bystander.join()


def test_a_rebuild_renders_in_the_helper_and_loads_no_renderer_itself(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_corpus(seeds, 80)
    age(seeds)
    state = tmp_path / "state" / "state.sqlite"
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from publisher.config import parse_config
        from publisher.pipeline import build
        config = parse_config({{"site": {{"url": "https://feeds.example.org/", "title": "Cache test"}},
                               "paths": {{"state": {str(state)!r}}}}})
        result = build(config, seeds=Path({str(seeds)!r}), out=Path({str(tmp_path / "out")!r}))
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("feedgen", "lxml", "jinja2"))
        print(json.dumps({{"written": result.output.written, "heavy": heavy}}))
        """
    )

    def run() -> dict[str, list[str]]:
        child = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
        )
        assert child.returncode == 0, child.stderr
        result: dict[str, list[str]] = json.loads(child.stdout.splitlines()[-1])
        return result

    assert run()["written"]  # cold: rendered here and in worker processes
    (seeds / "news.txt").write_text(NEWS, encoding="utf-8")
    age(seeds)
    rebuilt = run()
    assert rebuilt["written"], "the edit changed no file: the test proves nothing"
    assert rebuilt["heavy"] == []
    fresh = build(make_config(tmp_path), seeds=seeds, out=tmp_path / "fresh", use_cache=False)
    assert fresh.output.written
    assert not differences(files(tmp_path / "out"), files(tmp_path / "fresh"))


_dying: dict[str, Any] = {}


def _render_dying(kind: str, *args: object) -> bytes:
    """``pipeline.render``, but the helper process dies at its third file."""
    if os.getpid() != _dying["parent"]:
        _dying["calls"] += 1
        if _dying["calls"] == 3:
            os._exit(5)
    data: bytes = _dying["real"](kind, *args)
    return data


@pytest.mark.parametrize("where", ["checking", "preparing", "rendering"])
def test_a_rebuild_whose_helper_dies_writes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    parent = os.getpid()

    def in_helper(real: Callable[..., object], *args: object) -> object:
        if os.getpid() != parent:
            os._exit(5)
        return real(*args)

    if where == "checking":
        monkeypatch.setattr(
            pipeline, "match_files", functools.partial(in_helper, pipeline.match_files)
        )
    elif where == "preparing":
        real_prepare = pipeline._prepare_renderers
        monkeypatch.setattr(
            pipeline, "_prepare_renderers", functools.partial(in_helper, real_prepare)
        )
    else:
        # A module-level function: the jobs that name it are pickled to the helper.
        _dying.update(parent=parent, calls=0, real=pipeline.render)
        monkeypatch.setattr(pipeline, "render", _render_dying)
    started: list[Helper | None] = []
    real_start = helper_module.Helper.start

    def start(*args: Callable[[], object]) -> Helper | None:
        started.append(real_start(*args))  # type: ignore[arg-type]
        return started[-1]

    monkeypatch.setattr(helper_module.Helper, "start", start)
    builds = Builds(tmp_path)
    builds.aged = True
    builds.check()  # cold: no helper (nothing to check)
    assert started == []
    generate.write_article(builds.seeds, 3, revision=1)
    (builds.seeds / "news.txt").write_text(NEWS, encoding="utf-8")
    builds.check()
    assert started and started[0] is not None and started[0].lost is not None
    assert reaped(started[0])


def test_a_helper_lost_is_closed_once(tmp_path: Path) -> None:
    with helper_process(_die, lambda: None) as helper:
        assert helper is not None and helper.check() is None and helper.lost
        # Descriptors opened now may take the numbers the helper's pipes had.
        others = [(tmp_path / f"{n}").open("w") for n in range(4)]
    for other in others:  # leaving the block did not close them behind their owner's back
        assert os.fstat(other.fileno())
        other.close()


class _InterruptedClose:
    """``os`` for helper.py, where closing a descriptor in the child raises Ctrl+C's
    exception: as if the interrupt came in the instant after the fork."""

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def close(self, descriptor: int) -> None:
        os.close(descriptor)
        if os.getpid() != self.parent:
            raise KeyboardInterrupt


def test_ctrl_c_in_the_helper_as_it_starts_never_reaches_the_build_s_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = Builds(tmp_path)
    builds.aged = True
    builds.check()
    parent = os.getpid()
    closes = tmp_path / "closes"  # a file: the helper's memory is its own
    real_close = build_cache.BuildCache.close

    def close(self: build_cache.BuildCache) -> None:
        with closes.open("a") as record:
            record.write(f"{os.getpid()}\n")
        real_close(self)

    monkeypatch.setattr(build_cache.BuildCache, "close", close)
    monkeypatch.setattr(helper_module, "os", _InterruptedClose(parent))
    (builds.seeds / "news.txt").write_text(NEWS, encoding="utf-8")
    builds.check()  # the same bytes: the helper died at once, the build did its work
    # Only the build closed its database (the helper never ran the build's code).
    assert set(closes.read_text().split()) == {str(parent)}

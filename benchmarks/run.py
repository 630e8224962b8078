"""Run the performance scenarios and print one table, side by side with Hugo (and Pelican).

Every measurement is a fresh process (so its peak memory is its own) and every figure
is the median of several runs. The corpus comes from ``generate.py`` (deterministic) and
is kept in ``benchmarks/corpus/`` (git-ignored) for the next run.

    python benchmarks/run.py                        # 1k and 10k documents, digest, Hugo
    python benchmarks/run.py --sizes 1000,10000,100000
    python benchmarks/run.py --quick                # 1k only, 3 runs: a smoke test
"""

from __future__ import annotations

import argparse
import compileall
import csv
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402  (beside this file)

from publisher.cache import RACY_NS  # noqa: E402

SITE_URL = "https://feeds.example.org/"
DIGEST_NOW = "2026-12-01T07:00:00+00:00"  # the corpus ends the evening before
HUGO_CONFIG = """\
baseURL: "https://feeds.example.org/hugo/"
title: Publisher
languageCode: en
disableKinds: [section, taxonomy, sitemap, robotsTXT, "404"]
ignoreErrors: [error-disable-taxonomy]
taxonomies:
  topic: topics
outputs:
  home: [RSS]
  term: [RSS]
  page: []
rssLimit: 50
frontmatter:
  date: [publishedDateTime, ":default"]
cascade:
  - _build: {render: never, list: always}
    _target: {kind: page}
"""
# The same selection as ours (published, quality >= 50, newest first, 50 items);
# Hugo itself drops `published: false` pages (it reads `published` as "not a draft").
HUGO_RSS = """\
{{- $pages := where .Pages "Params.quality" "ge" 50 -}}
{{- printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\" standalone=\\"yes\\"?>" | safeHTML }}
<rss version="2.0"><channel><title>{{ .Site.Title }}{{ with .Title }}: {{ . }}{{ end }}</title>
<link>{{ .Permalink }}</link>
{{- range first 50 $pages }}
<item><title>{{ .Title }}</title><link>{{ .Params.weburl }}</link>
<pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" }}</pubDate>
<guid isPermaLink="false">{{ .Params.weburl }}</guid><description>{{ .Params.excerpt }}</description>
{{- range .Params.topics }}<category>{{ . }}</category>{{ end }}</item>
{{- end }}
</channel></rss>
"""


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    items: int
    seconds: list[float]
    peak_mb: float
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Bench:
    """Where the corpora and scratch folders live, and how many runs to take."""

    corpus: Path
    work: Path
    runs: int
    big_runs: int
    digest_runs: int = 1
    rows: list[Row] = field(default_factory=list)
    ratios: list[str] = field(default_factory=list)

    def runs_for(self, size: int) -> int:
        return self.big_runs if size >= 50_000 else self.runs


@dataclass
class Measured:
    seconds: float
    peak_mb: float
    stdout: str
    stderr: str
    timed: bool = True  # False: the run that sampled memory (its time is not counted)


CHILD_ENV: dict[str, str] = dict(os.environ)


def freeze_code(work: Path) -> None:
    """Run the children on a copy of the package taken now: others may be editing the
    tree, and an edit mid-run would change what is measured (and the cache's keys)."""
    code = work / "code"
    shutil.copytree(
        HERE.parent / "publisher", code / "publisher", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(HERE.parent / "templates", code / "templates")
    # Byte-compiled, as pip leaves an installed package (even where the environment sets
    # PYTHONDONTWRITEBYTECODE, which would otherwise compile every module on every run).
    compileall.compile_dir(code / "publisher", quiet=1)
    CHILD_ENV["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(code), os.environ.get("PYTHONPATH")])
    )


def measure(
    command: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    *,
    memory: bool = True,
) -> Measured:
    """Run ``command``; wall time, and the peak memory of its process tree: the sum of
    the processes' PSS sampled every 10 ms (with ``memory``), or the largest one's
    ru_maxrss if higher.

    Sampling costs CPU, and more for a tree of three processes than for one: a scenario
    samples in one extra run whose time it does not count.

    Every run starts with nothing left to write to disk (``os.sync``, not timed): a build
    that flushes its files (ours) would otherwise also pay for the files the run before
    it left unflushed (Hugo's), as ext4 writes them out together."""
    os.sync()
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env=env or CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], _tree_rss_kb(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    if memory:
        sampler.start()
    stdout, stderr = _communicate(child)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    if memory:
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{stderr[-2000:]}")
    return Measured(seconds, max(peak[0], usage.ru_maxrss) / 1024, stdout, stderr, not memory)


def _communicate(child: subprocess.Popen[str]) -> tuple[str, str]:
    """Read both pipes to the end without reaping the child (``os.wait4`` does that)."""
    assert child.stdout is not None and child.stderr is not None
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(child.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    out = child.stdout.read()
    reader.join()
    return out, errors[0] if errors else ""


def _tree_rss_kb(pid: int) -> int:
    """Memory of a process and its children now: their proportional set sizes (PSS), so
    pages a forked worker shares with its parent are counted once, not twice."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as usage:
                for line in usage:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending.extend(int(p) for p in children.read().split())
        except (OSError, ValueError):
            continue
    return total


def publisher(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "publisher", *map(str, args)]


def ensure_corpus(bench: Bench, size: int) -> Path:
    """The corpus of ``size`` documents, generated once and kept."""
    folder = bench.corpus / str(size)
    stamp = folder / ".generated"
    fingerprint = f"{size} seed=1 generator={_file_hash(HERE / 'generate.py')}"
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating {size} documents in {folder} ...", file=sys.stderr)
    generate.generate(folder, size)
    stamp.write_text(fingerprint)
    # Files written just now are re-checked by content until they are 2 s old (the
    # cache's guard against same-tick edits); a benchmark measures the usual case.
    time.sleep(RACY_SECONDS)
    return folder


RACY_SECONDS = RACY_NS / 1e9 + 0.1  # a file this old is trusted by its identity


def _file_hash(path: Path) -> str:
    import hashlib

    return hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()


def config_file(folder: Path, size: int, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"publisher-{size}.yaml"
    path.write_text(
        f'site:\n  url: "{SITE_URL}"\n  title: Publisher\n'
        f"paths:\n  state: state-{size}/state.sqlite\n  outbox: outbox-{size}\n"
        f"  subscribers: subscribers-{size}.csv\n{extra}"
    )
    return path


def bench_builds(bench: Bench, size: int, hugo: str | None) -> None:
    corpus = ensure_corpus(bench, size)
    runs = bench.runs_for(size)
    config = config_file(bench.work, size)
    out = bench.work / f"out-{size}"
    state = bench.work / f"state-{size}"
    build = publisher("build", "--config", config, "--seeds", corpus, "--out", out)
    site = hugo_site(bench.work / f"hugo-{size}", corpus) if hugo else None
    # Edits and additions where they cost most: the newest articles, in the feeds.
    touched = _listed(generate.newest(size, (runs + 1) * 4))[: runs + 1]
    news = _news(runs + 1)
    cold: list[Measured] = []
    warm: list[Measured] = []
    edited: list[Measured] = []
    added: list[Measured] = []
    timed: list[Measured] = []
    # In rounds of every scenario and one Hugo build, each round on the generated corpus:
    # a shared VM's speed drifts over minutes, and scenarios measured minutes apart from
    # Hugo's builds would carry that drift into the ratios. The first round samples
    # memory; its times are not counted (see ``measure``).
    restored = 0.0
    for index in range(runs + 1):
        memory = index == 0
        # As for a new corpus (ensure_corpus): the file put back a moment ago is old enough
        # not to be re-checked by content, as in the usual case.
        time.sleep(max(0.0, restored + RACY_SECONDS - time.monotonic()))
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
        cold.append(measure(build, memory=memory))
        warm.append(measure(build, memory=memory))
        generate.write_article(corpus, touched[index], revision=1)
        edited.append(measure(build, memory=memory))
        new_file = generate.write_article(corpus, news[index])
        # (The article edited a moment ago is checked by content here too: one read and one
        # hash, well under a millisecond.)
        added.append(measure(build, memory=memory))
        for measured in edited[-1], added[-1]:
            if _summary(measured).startswith("0 files written"):
                raise SystemExit(f"{size}: an edit or an addition changed no feed")
        generate.write_article(corpus, touched[index])  # back to the generated corpus
        new_file.unlink()
        restored = time.monotonic()
        if hugo and site is not None:
            shutil.rmtree(site / "public", ignore_errors=True)
            shutil.rmtree(site / "resources", ignore_errors=True)
            command = [hugo, "--quiet", "--source", str(site)]
            timed.append(measure(command, memory=memory))
    _row(bench, "cold build", size, cold, _summary(cold[-1]))
    _row(bench, "warm build, nothing changed", size, warm, _summary(warm[-1]))
    _row(bench, "one article edited", size, edited, _summary(edited[-1]))
    _row(bench, "one article added", size, added, _summary(added[-1]))
    if timed and site is not None:
        feeds = len(list((site / "public").rglob("index.xml")))
        _row(bench, "Hugo, RSS per topic", size, timed, f"{feeds} feeds")
        base = _median(timed)
        for name, measured in (
            ("cold build", cold),
            ("warm build", warm),
            ("one edited", edited),
            ("one added", added),
        ):
            bench.ratios.append(f"{size:>7} {name:<12} {_median(measured) / base:6.3f} x Hugo")
    pelican = pelican_command()
    if pelican:
        site = pelican_site(bench.work / f"pelican-{size}", corpus)
        timed = []
        for _ in range(min(runs, 3)):
            shutil.rmtree(site / "output", ignore_errors=True)
            timed.append(
                measure(
                    [
                        *pelican,
                        str(site / "content"),
                        "-s",
                        str(site / "pelicanconf.py"),
                        "-o",
                        str(site / "output"),
                        "-q",
                    ]
                )
            )
        _row(bench, "Pelican, Atom+RSS per category and tag", size, timed)
        base = statistics.median(m.seconds for m in timed)
        ours = _median(cold)
        bench.ratios.append(f"{size:>7} {'cold build':<12} {ours / base:6.3f} x Pelican")


def _news(count: int) -> list[int]:
    """Numbers of new documents, newer than the corpus, that will be published."""
    found: list[int] = []
    index = generate.FRESH
    while len(found) < count:
        found += _listed([index])
        index += 1
    return found


def _listed(indices: list[int]) -> list[int]:
    """Those of these documents the feeds list (published, of quality 60 or more): editing
    one writes the feeds that list it again."""
    found = []
    for index in indices:
        text = generate.article_text(index)
        quality = re.search(r"^quality: (\d+)$", text, re.M)
        if "\npublished: true\n" in text and quality and int(quality[1]) >= 60:
            found.append(index)
    return found


def _summary(measured: Measured) -> str:
    line = measured.stdout.strip().splitlines()[-1] if measured.stdout.strip() else ""
    return line.split("; ")[1] if "; " in line else ""


def _median(measured: list[Measured]) -> float:
    return statistics.median(_times(measured))


def _times(measured: list[Measured]) -> list[float]:
    """The timed runs' seconds (all of them, if none was set apart to sample memory)."""
    return [m.seconds for m in measured if m.timed] or [m.seconds for m in measured]


def _row(bench: Bench, scenario: str, items: int, series: list[Measured], note: str = "") -> None:
    row = Row(scenario, items, _times(series), max(m.peak_mb for m in series), note)
    bench.rows.append(row)
    print(_format(row), flush=True)


def hugo_site(site: Path, corpus: Path) -> Path:
    """The corpus as a Hugo site: the same files (hard links named .md), topics as a
    taxonomy, an RSS feed per term and for the home page, no HTML pages."""
    content = site / "content"
    if site.is_dir():
        shutil.rmtree(site)
    (site / "layouts" / "_default").mkdir(parents=True)
    content.mkdir()
    (site / "config.yaml").write_text(HUGO_CONFIG)
    (site / "layouts" / "_default" / "rss.xml").write_text(HUGO_RSS)
    for path in sorted(corpus.rglob("*.txt")):
        target = content / f"{path.stem}.md"
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return site


def pelican_command() -> list[str] | None:
    if importlib.util.find_spec("pelican") is not None:
        return [sys.executable, "-m", "pelican"]
    found = shutil.which("pelican")
    return [found] if found else None


def pelican_site(site: Path, corpus: Path) -> Path:
    """The corpus as Pelican Markdown articles: topics as category and tags, feeds only."""
    import yaml

    if site.is_dir():
        shutil.rmtree(site)
    content = site / "content"
    content.mkdir(parents=True)
    for path in sorted(corpus.rglob("*.txt")):
        text = path.read_text(encoding="utf-8")
        head, _, body = text[4:].partition("\n---\n")
        data = yaml.load(head, Loader=yaml.CSafeLoader)
        if not data.get("published") or float(data.get("quality", 0)) < 50:
            status = "draft"
        else:
            status = "published"
        topics = [str(t).replace(",", " ") for t in data.get("topics") or ["misc"]]
        lines = [
            f"Title: {data['title']}",
            f"Date: {data['publishedDateTime']:%Y-%m-%d %H:%M}",
            f"Category: {topics[0]}",
            f"Tags: {', '.join(topics)}",
            f"Slug: {path.stem}",
            f"Status: {status}",
            f"Summary: {data.get('excerpt', '')}",
            "",
            body,
        ]
        (content / f"{path.stem}.md").write_text("\n".join(lines), encoding="utf-8")
    (site / "pelicanconf.py").write_text(
        textwrap.dedent(
            f"""\
            SITENAME = "Publisher"
            SITEURL = "{SITE_URL}pelican"
            TIMEZONE = "UTC"
            FEED_MAX_ITEMS = 50
            FEED_ALL_ATOM = "feeds/all.atom.xml"
            FEED_ALL_RSS = "feeds/all.rss.xml"
            CATEGORY_FEED_ATOM = "feeds/{{slug}}.atom.xml"
            CATEGORY_FEED_RSS = "feeds/{{slug}}.rss.xml"
            TAG_FEED_ATOM = "feeds/tag-{{slug}}.atom.xml"
            TAG_FEED_RSS = "feeds/tag-{{slug}}.rss.xml"
            ARTICLE_SAVE_AS = ""
            PAGE_SAVE_AS = ""
            CATEGORY_SAVE_AS = ""
            TAG_SAVE_AS = ""
            AUTHOR_SAVE_AS = ""
            DIRECT_TEMPLATES = []
            LOAD_CONTENT_CACHE = False
            """
        )
    )
    return site


# --- the digest --------------------------------------------------------------------------


def digest_available() -> bool:
    probe = "import publisher.digest_run as p; print(hasattr(p, 'run_digest'))"
    found = subprocess.run(
        [sys.executable, "-c", probe], env=CHILD_ENV, capture_output=True, text=True
    )
    return found.stdout.strip() == "True"


def subscribers_file(path: Path, count: int, sets: int = 50) -> None:
    """``count`` subscribers spread over ``sets`` distinct topic sets (one is "everything"),
    drawn from the twelve busiest topics so that nearly everyone has news."""
    rng = random.Random(5)
    choices: list[str] = [""]
    seen = {""}
    while len(choices) < sets:
        picked = ";".join(sorted(rng.sample(generate.TOPICS[:12], rng.randint(1, 3))))
        if picked not in seen:
            seen.add(picked)
            choices.append(picked)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "topics"])
        for number in range(count):
            writer.writerow(
                [f"reader{number}@example.org", f"Reader {number}", choices[number % sets]]
            )


def bench_digest(bench: Bench, corpus_size: int, subscribers: int, smtp_subscribers: int) -> None:
    if not digest_available():
        print("digest: skipped: digest not available (publisher.digest_run.run_digest)")
        return
    corpus = ensure_corpus(bench, corpus_size)
    folder = bench.work / "digest"
    shutil.rmtree(folder, ignore_errors=True)
    # A first digest covering the last two weeks: every topic set has stories to send.
    window = "digest:\n  first_window_hours: 336\n"
    config = config_file(folder, subscribers, window)
    subscribers_file(folder / f"subscribers-{subscribers}.csv", subscribers)
    # Warm the document cache once: the digest's own cost is what is measured.
    measure(publisher("build", "--config", config, "--seeds", corpus, "--out", folder / "out"))
    series = []
    for _run in range(bench.digest_runs):
        shutil.rmtree(folder / f"outbox-{subscribers}", ignore_errors=True)
        shutil.rmtree(folder / f"state-{subscribers}", ignore_errors=True)
        measured = measure(_digest_child(config, corpus, folder / "out"), env=_digest_env())
        series.append(measured)
    result = json.loads(series[-1].stdout.strip().splitlines()[-1])
    note = f"premailer ran {result['premailer']} times; {result['summary']}"
    _row(bench, "digest to outbox", subscribers, series, note)

    from aiosmtpd.controller import Controller

    class Counter:
        received = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Counter.received += 1
            return "250 OK"

    port = _free_port()
    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = config_file(
            folder,
            smtp_subscribers,
            f"{window}smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  rate: 0\n",
        )
        subscribers_file(folder / f"subscribers-{smtp_subscribers}.csv", smtp_subscribers)
        series = []
        for _ in range(bench.runs):
            shutil.rmtree(folder / f"state-{smtp_subscribers}", ignore_errors=True)
            series.append(measure(_digest_child(config, corpus, folder / "out"), env=_digest_env()))
    finally:
        controller.stop()
    result = json.loads(series[-1].stdout.strip().splitlines()[-1])
    sending = statistics.median(
        json.loads(m.stdout.strip().splitlines()[-1])["send_seconds"] for m in series
    )
    received = Counter.received // len(series)
    note = (
        f"{received} received per run; "
        f"{received / sending:.0f} messages/s while sending; premailer ran {result['premailer']} times"
    )
    _row(bench, "digest over SMTP (loopback, 1 connection)", smtp_subscribers, series, note)


def _digest_env() -> dict[str, str]:
    return {**CHILD_ENV, "PUBLISHER_DIGEST_SECRET": "benchmark-secret"}


def _digest_child(config: Path, corpus: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__)),
        "--digest-child",
        str(config),
        str(corpus),
        str(out),
    ]


def digest_child(config_path: Path, corpus: Path, out: Path) -> None:
    """In a child process: one digest run; prints its counts as JSON on the last line."""
    from datetime import datetime

    import premailer

    from publisher import digest_run
    from publisher.config import load_config

    calls = [0]
    transform = premailer.Premailer.transform

    def counted(self: object, *args: object, **kwargs: object) -> object:
        calls[0] += 1  # counting only: the real transform runs
        return transform(self, *args, **kwargs)

    premailer.Premailer.transform = counted  # type: ignore[method-assign]
    config = load_config(config_path)
    started = time.perf_counter()
    sending: list[float] = []

    def progress(done: int, total: int) -> None:
        if not sending:
            sending.append(time.perf_counter())

    result = digest_run.run_digest(
        config, seeds=corpus, out=out, now=datetime.fromisoformat(DIGEST_NOW), progress=progress
    )
    finished = time.perf_counter()
    send_seconds = finished - (sending[0] if sending else started)
    print(
        json.dumps(
            {"premailer": calls[0], "summary": result.summary(), "send_seconds": send_seconds}
        )
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- output ------------------------------------------------------------------------------


def _format(row: Row) -> str:
    rate = row.items / row.median if row.median else 0
    runs = len(row.seconds)
    return (
        f"| {row.scenario:<42} | {row.items:>7,} | {row.median:8.3f} | {rate:>10,.0f} | "
        f"{row.peak_mb:7.0f} | {runs} | {row.note} |"
    )


HEADER = (
    f"| {'scenario':<42} | {'items':>7} | {'median s':>8} | {'items/s':>10} | {'peak MB':>7} | runs | notes |\n"
    f"|{'-' * 44}|{'-' * 9}:|{'-' * 9}:|{'-' * 11}:|{'-' * 8}:|-----:|-------|"
)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except OSError:
        memory = 0
    hugo = shutil.which("hugo")
    hugo_version = (
        subprocess.run([hugo, "version"], capture_output=True, text=True).stdout.strip()
        if hugo
        else "not installed"
    )
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory:.1f} GiB RAM, {platform.platform()}\n"
        f"Python {platform.python_version()}; hugo: {hugo_version}\n"
        f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--quick", action="store_true", help="1,000 documents, 3 runs, no digest")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (median)")
    parser.add_argument("--big-runs", type=int, default=3, help="runs at 50,000 documents and more")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--smtp-subscribers", type=int, default=3_000)
    parser.add_argument("--digest-runs", type=int, default=1, help="runs of the big digest")
    parser.add_argument("--no-digest", action="store_true")
    parser.add_argument("--no-hugo", action="store_true")
    parser.add_argument("--corpus", type=Path, default=HERE / "corpus")
    parser.add_argument("--digest-child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.digest_child:
        digest_child(*args.digest_child)
        return 0
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    runs = 3 if args.quick else args.runs
    hugo = None if args.no_hugo else shutil.which("hugo")
    print(machine())
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as work:
        freeze_code(Path(work))
        help_runs = [measure(publisher("--help")) for _ in range(max(runs, 5))]
        print(
            _format(
                Row(
                    "publisher --help",
                    1,
                    [m.seconds for m in help_runs],
                    max(m.peak_mb for m in help_runs),
                )
            ),
            flush=True,
        )
        bench = Bench(
            corpus=args.corpus,
            work=Path(work),
            runs=runs,
            big_runs=min(runs, args.big_runs),
            digest_runs=args.digest_runs,
        )
        for size in sizes:
            bench_builds(bench, size, hugo)
        if not (args.quick or args.no_digest):
            bench_digest(
                bench,
                10_000 if 10_000 in sizes else sizes[-1],
                args.subscribers,
                args.smtp_subscribers,
            )
    if not hugo:
        print("\nHugo: skipped (not on PATH; apt-get install hugo)")
    if not pelican_command():
        print("Pelican: skipped (not installed)")
    if bench.ratios:
        print("\nratios (median / median, same run):")
        print("\n".join(bench.ratios))
    load = os.getloadavg()
    print(f"\nload average after the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    cold = [r for r in bench.rows if r.scenario == "cold build"]
    if len(cold) > 1:
        print("\ncold build, cost per document:")
        for row in cold:
            print(f"{row.items:>7,} documents: {row.median / row.items * 1e6:6.0f} µs each")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The build cache changes how long a build takes, never what it writes."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import differences, run_module

from publisher import cache as build_cache
from publisher import loader
from publisher.config import Config, parse_config
from publisher.pipeline import build
from publisher.progress import TerminalProgress
from publisher.selection import lowest_threshold

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("generate", REPO / "benchmarks" / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
sys.modules["generate"] = generate
_spec.loader.exec_module(generate)

BROKEN = {
    "broken/not-yaml.txt": "---\ntitle: [unclosed\n---\n",
    "broken/no-front-matter.md": "just text\n",
    "broken/bad-date.txt": (
        "---\ntitle: Bad date\nwebUrl: https://example.org/bad\n"
        "publishedDateTime: 2026-02-30T10:00:00Z\nquality: 80\npublished: true\n---\n"
    ),
    "broken/warning.txt": (
        "---\ntitle: With a bad image\nwebUrl: https://example.org/warn\n"
        "publishedDateTime: 2026-11-02T10:00:00Z\nquality: 80\npublished: true\n"
        "topics: [AI]\nimages:\n  - url: javascript:alert(1)\n---\n"
    ),
    "broken/latin1.txt": b"---\ntitle: caf\xe9\n---\n",
}


NEWS = (
    "---\ntitle: Newer than every other\nwebUrl: https://example.org/news\n"
    "publishedDateTime: 2031-01-01T10:00:00Z\nquality: 90\npublished: true\n"
    "topics: [AI]\n---\n"
)


def write_corpus(folder: Path, count: int = 60) -> None:
    generate.generate(folder, count)
    for name, text in BROKEN.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")


def make_config(tmp_path: Path, **sections: object) -> Config:
    data: dict[str, object] = {
        "site": {"url": "https://feeds.example.org/", "title": "Cache test"},
        "paths": {"state": str(tmp_path / "state" / "state.sqlite")},
    }
    data.update(sections)
    return parse_config(data)


def files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".publisher-manifest.json.")
    }


class Builds:
    """Builds the same seeds twice: into a folder kept with the cache, and from scratch."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.seeds = tmp_path / "seeds"
        self.cached = tmp_path / "cached"
        self.config = make_config(tmp_path)
        write_corpus(self.seeds)
        self.rounds = 0
        self.aged = False

    def check(self, config: Config | None = None) -> None:
        """A cached build and an uncached one into a new folder give the same bytes."""
        config = config or self.config
        self.rounds += 1
        if self.aged:
            age(self.seeds)
        cached = build(config, seeds=self.seeds, out=self.cached)
        fresh_out = self.tmp / f"fresh-{self.rounds}"
        fresh = build(config, seeds=self.seeds, out=fresh_out, use_cache=False)
        assert not differences(files(self.cached), files(fresh_out))
        assert [str(p) for p in cached.problems] == [str(p) for p in fresh.problems]
        assert cached.summary().split("; ")[0] == fresh.summary().split("; ")[0]
        assert cached.report.articles == fresh.report.articles
        assert [a.source_path for a in cached.report.articles] == [
            a.source_path for a in fresh.report.articles
        ]
        assert cached.selection == fresh.selection


@pytest.fixture
def builds(tmp_path: Path) -> Builds:
    return Builds(tmp_path)


def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / build_cache.CACHE_NAME


def age(folder: Path) -> None:
    """Date files written in the last minute an hour back: the cache then trusts their
    identity (a file modified around its last read is checked by content, see RACY_NS)."""
    recent = time.time_ns() - 60 * 10**9
    for path in folder.rglob("*"):
        stat = path.stat()
        if path.is_file() and stat.st_mtime_ns > recent:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 3600 * 10**9))


@pytest.mark.parametrize("aged", [False, True], ids=["just-written", "aged"])
def test_cached_builds_write_the_same_bytes_through_every_kind_of_change(
    builds: Builds, aged: bool
) -> None:
    builds.aged = aged
    seeds = builds.seeds
    builds.check()  # cold
    builds.check()  # nothing changed
    first = sorted(seeds.rglob("*.txt"))
    # An edit that changes what is published: new title, excerpt and quality.
    generate.write_article(seeds, 3, revision=1)
    builds.check()
    # An edit keeping the size, with the mtime set back: caught by the changed mtime.
    path = first[5]
    text = path.read_text(encoding="utf-8")
    stat = path.stat()
    path.write_text(text.replace("quality: ", "quality:\t", 1).replace("\t", " ", 1))
    edited = text.replace('title: "', 'title: "X', 1).replace("category: news", "category: new", 1)
    path.write_text(edited if len(edited) == len(text) else text.replace("e", "E", 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 5_000_000_000))
    builds.check()
    # A rename, a copy, a deletion, a new article and a touched one.
    first[7].rename(first[7].with_name("renamed-" + first[7].name))
    shutil.copyfile(first[8], seeds / "copy-of-eight.txt")
    first[9].unlink()
    generate.write_article(seeds, 500)
    os.utime(first[10])
    builds.check()
    # A document turning bad, and a bad one turning good.
    first[11].write_text("---\ntitle: [broken\n---\n")
    (seeds / "broken" / "not-yaml.txt").write_text(generate.article_text(600))
    builds.check()
    # Every topic of one article removed: its feeds disappear from both.
    builds.check()


@pytest.mark.parametrize(
    "sections",
    [
        {"feeds": {"max_items": 3}},
        {"site": {"url": "https://other.example.org/", "title": "Renamed"}},
        {"selection": {"min_quality": 70, "topics": {"AI": 30}}},
        {"input": {"max_bytes": 3500}},
    ],
)
def test_a_settings_change_is_seen(builds: Builds, sections: dict[str, object]) -> None:
    builds.check()
    changed = make_config(builds.tmp, **sections)
    builds.check(changed)
    builds.check(changed)
    builds.check()  # and back


def test_an_output_file_changed_by_hand_is_written_again(builds: Builds) -> None:
    builds.check()
    (builds.cached / "all.rss.xml").write_text("tampered")
    (builds.cached / "index.html").unlink()
    builds.check()


def test_a_corrupt_cache_file_is_ignored_and_rebuilt(builds: Builds, tmp_path: Path) -> None:
    builds.check()
    path = cache_file(tmp_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    builds.check()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM documents").fetchone()[0] > 0


def test_a_damaged_record_is_parsed_again(builds: Builds, tmp_path: Path) -> None:
    builds.check()
    with sqlite3.connect(cache_file(tmp_path)) as db:
        rows = db.execute("SELECT hash, record FROM documents").fetchall()
        # A flipped byte (checksum no longer matches), then a record of the wrong shape
        # with a matching checksum: both are ignored, never used.
        hash_, record = rows[0]
        db.execute("UPDATE documents SET record = ? WHERE hash = ?", (record[:-3] + "]]]", hash_))
        for hash_, record in rows[1:]:
            bad = record.replace('"https://', '"javascript://', 1).replace("true", '"yes"', 1)
            bad = '{"not": "a record"}' if bad == record else bad
            db.execute(
                "UPDATE documents SET record = ?, crc = ? WHERE hash = ?",
                (bad, build_cache._crc(bad), hash_),
            )
        # The files look changed, so every document is looked up by its content.
        db.execute("UPDATE files SET mtime_ns = mtime_ns - 1")
    builds.check()


def test_a_rebuild_after_an_edit_reads_in_full_only_the_articles_of_feeds_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds, out = tmp_path / "seeds", tmp_path / "out"
    write_corpus(seeds, 300)
    age(seeds)
    config = make_config(tmp_path, feeds={"max_items": 2})
    build(config, seeds=seeds, out=out)
    for index in generate.newest(300, 5):  # listed in the feeds: the newest
        generate.write_article(seeds, index, revision=1)
    age(seeds)
    decoded: list[Path] = []
    real_decode = build_cache.decode

    def counting_decode(text: str, path: Path, *, fresh: bool = False) -> build_cache.Outcome:
        decoded.append(path)
        return real_decode(text, path, fresh=fresh)

    heads: list[str] = []
    real_head = build_cache.decode_head

    def counting_head(text: str) -> build_cache.Head:
        heads.append(text)
        return real_head(text)

    monkeypatch.setattr(build_cache, "decode", counting_decode)
    monkeypatch.setattr(build_cache, "decode_head", counting_head)
    result = build(config, seeds=seeds, out=out)
    topics = int(result.summary().split(" topics")[0].rsplit(" ", 1)[1])
    rewritten = {name.split(".")[0] for name in result.output.written} - {"index"}
    assert 0 < len(rewritten) < topics / 2  # the feeds that list the edited article
    # Only the feeds written again are read in full, 2 articles each; the broken
    # documents' records hold their problems.
    assert 0 < len(decoded) <= len(rewritten) * 2 + len(BROKEN)
    monkeypatch.setattr(build_cache, "decode", real_decode)
    fresh = build(config, seeds=seeds, out=tmp_path / "fresh", use_cache=False)
    assert not differences(files(out), files(tmp_path / "fresh"))
    assert result.summary().split("; ")[0] == fresh.summary().split("; ")[0]
    assert [str(p) for p in result.problems] == [str(p) for p in fresh.problems]
    # Unpublished articles and those below every threshold are passed over, not decoded.
    floor = lowest_threshold(config.selection)
    within = [
        a for a in fresh.report.articles if build_cache.in_reach_of(a.published, a.quality, floor)
    ]
    assert len(within) < len(fresh.report.articles) * 0.7
    assert 0 < len(heads) <= len(within)


def test_a_build_parsed_in_worker_processes_writes_the_same_bytes(
    builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers send back records and heads; the build reads in full only what it lists."""
    monkeypatch.setattr(loader, "PARALLEL_MIN", 10)
    monkeypatch.setattr(loader, "CHUNK", 7)
    builds.check()  # cold, in two worker processes
    generate.write_article(builds.seeds, 3, revision=1)
    shutil.rmtree(builds.tmp / "state")
    builds.check()  # cold again, one article changed
    builds.aged = True
    generate.write_article(builds.seeds, 4, revision=1)
    builds.check()  # a rebuild


def test_after_a_record_that_does_not_read_back_only_that_document_is_read_again(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build starts again from the documents when a listed record is damaged; the files
    the cache vouched for the first time need no second look."""
    builds.aged = True
    builds.check()
    # The two newest articles the `all` feed lists: one edited, the other damaged.
    report = loader.load_folder(builds.seeds, 1 << 20)
    warned = {warning.path for warning in report.warnings}  # read in full anyway
    floor = lowest_threshold(builds.config.selection)
    listed = [
        a
        for a in report.articles
        if build_cache.in_reach_of(a.published, a.quality, floor) and a.source_path not in warned
    ]
    listed.sort(key=lambda a: a.published_at, reverse=True)
    edited, damaged_name = (a.source_path.relative_to(builds.seeds).as_posix() for a in listed[:2])
    with sqlite3.connect(cache_file(tmp_path)) as db:
        (hash_,) = db.execute("SELECT hash FROM files WHERE path = ?", (damaged_name,)).fetchone()
        (record,) = db.execute("SELECT record FROM documents WHERE hash = ?", (hash_,)).fetchone()
        data = json.loads(record)
        data[1] = "a title the checksum still vouches for"
        data[10] = [["javascript:alert(1)", None, None, ""]]  # no longer reads back
        bad = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        db.execute(
            "UPDATE documents SET record = ?, crc = ? WHERE hash = ?",
            (bad, build_cache._crc(bad), hash_),
        )
    edited_path = builds.seeds / edited
    edited_path.write_text(
        edited_path.read_text(encoding="utf-8").replace("title: ", "title: Edited: ", 1),
        encoding="utf-8",
    )
    age(builds.seeds)
    read: list[Path] = []
    real_read = loader._read_file

    def counting_read(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
        read.append(Path(path))
        return real_read(path, max_bytes)

    monkeypatch.setattr(loader, "_read_file", counting_read)
    cached = build(builds.config, seeds=builds.seeds, out=builds.cached)
    assert {path.relative_to(builds.seeds).as_posix() for path in read} == {edited, damaged_name}
    # Each at most twice (hashed, then parsed): the second attempt keeps what the first learnt.
    assert max(Counter(read).values()) <= 2, Counter(read)
    monkeypatch.setattr(loader, "_read_file", real_read)
    fresh = build(builds.config, seeds=builds.seeds, out=tmp_path / "fresh", use_cache=False)
    assert not differences(files(builds.cached), files(tmp_path / "fresh"))
    assert cached.summary().split("; ")[0] == fresh.summary().split("; ")[0]


def test_a_record_that_selects_but_does_not_read_back_is_parsed_again(
    builds: Builds, tmp_path: Path
) -> None:
    builds.aged = True
    builds.check()
    with sqlite3.connect(cache_file(tmp_path)) as db:
        # Damaged past the fields selection reads, checksum matching: an image link
        # that is no longer safe. Only reading the whole record finds it.
        for hash_, record in db.execute("SELECT hash, record FROM documents").fetchall():
            data = json.loads(record)
            if len(data) == 14 and data[10]:
                data[10][0][0] = "javascript:alert(1)"
                bad = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
                db.execute(
                    "UPDATE documents SET record = ?, crc = ? WHERE hash = ?",
                    (bad, build_cache._crc(bad), hash_),
                )
    # The newest article, edited: the feeds that list it are written again and read
    # their articles in full, damaged ones among them.
    generate.write_article(builds.seeds, generate.newest(60, 1)[0], revision=1)
    builds.check()
    assert not any(b"javascript:" in data for data in files(builds.cached).values())
    with sqlite3.connect(cache_file(tmp_path)) as db:  # every document was parsed again
        damaged = db.execute("SELECT count(*) FROM documents WHERE record LIKE '%javascript:%'")
        assert damaged.fetchone()[0] == 0


def test_a_record_refused_once_is_not_read_later_as_one_this_build_made(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A record this build made is decoded without a second check of links (fresh); the
    # damaged copy it replaced, read before, must not pass for it once the new one is
    # stored (here after every record: FLUSH_RECORDS = 1, as past 2,000 in a big build).
    monkeypatch.setattr(build_cache, "FLUSH_RECORDS", 1)
    monkeypatch.setattr(loader, "PARALLEL_MIN", 2)
    monkeypatch.setattr(loader, "CHUNK", 1)
    builds.aged = True
    builds.check()
    newest = build(builds.config, seeds=builds.seeds, out=tmp_path / "x")
    document = newest.selection.articles[0].source_path
    hash_ = build_cache.content_hash(document.read_bytes())
    with sqlite3.connect(cache_file(tmp_path)) as db:
        (record,) = db.execute("SELECT record FROM documents WHERE hash = ?", (hash_,)).fetchone()
        data = json.loads(record)
        data[2] = "javascript:alert(1)"
        bad = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        db.execute(
            "UPDATE documents SET record = ?, crc = ? WHERE hash = ?",
            (bad, build_cache._crc(bad), hash_),
        )
    stat = document.stat()  # touched: found again by its content, refused, parsed again
    os.utime(document, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
    # A new article, newest of all: the feeds listing the touched one are written again.
    (builds.seeds / "news.txt").write_text(NEWS, encoding="utf-8")
    builds.check()
    assert not any(b"javascript:" in data for data in files(builds.cached).values())


def test_a_build_whose_rendering_fails_keeps_what_it_learnt(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher import pipeline

    def broken(templates: Path | None) -> None:
        raise RuntimeError("a renderer broke")

    # Before any file is rendered (in this process or in workers): the renderers' imports.
    monkeypatch.setattr(pipeline, "_prepare_renderers", broken)
    with pytest.raises(RuntimeError, match="a renderer broke"):
        build(builds.config, seeds=builds.seeds, out=builds.cached)
    parser = build_cache.parser_fingerprint(builds.config.input.max_bytes)
    cache = build_cache.BuildCache.open(cache_file(tmp_path), parser)
    assert cache is not None
    try:  # every document's state is kept: the next build parses none of them again
        assert len(cache.folder(builds.seeds).files) == len(loader.find_documents(builds.seeds))
    finally:
        cache.close()


def test_a_new_version_empties_the_cache(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds.check()
    with sqlite3.connect(cache_file(tmp_path)) as db:
        db.execute('UPDATE documents SET record = \'["!", "title", "stale"]\'')
        db.execute("UPDATE documents SET crc = ?", (build_cache._crc('["!", "title", "stale"]'),))
    monkeypatch.setattr(build_cache, "__version__", "99.0")
    builds.check()
    with sqlite3.connect(cache_file(tmp_path)) as db:
        stale = db.execute("SELECT count(*) FROM documents WHERE record LIKE '%stale%'")
        assert stale.fetchone()[0] == 0


def test_a_build_with_nothing_to_do_reports_what_the_last_one_did(builds: Builds) -> None:
    first = build(builds.config, seeds=builds.seeds, out=builds.cached)
    again = build(builds.config, seeds=builds.seeds, out=builds.cached)
    assert again.output.written == [] and again.output.removed == []
    assert sorted(again.output.unchanged) == sorted(first.output.written)
    assert [str(p) for p in again.problems] == [str(p) for p in first.problems]
    assert again.summary().split("; ")[0] == first.summary().split("; ")[0]
    assert again.report.articles == first.report.articles  # read when asked for
    assert again.selection == first.selection


def test_an_unusable_cache_folder_only_costs_time(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_corpus(seeds, 10)
    (tmp_path / "state").write_text("a file where the state folder should be")
    config = make_config(tmp_path)
    build(config, seeds=seeds, out=tmp_path / "a")
    build(config, seeds=seeds, out=tmp_path / "b", use_cache=False)
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_parallel_parsing_gives_the_same_report_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds"
    write_corpus(seeds, 90)
    (seeds / "unreadable.txt").mkdir()  # a folder named like a document: skipped by both
    monkeypatch.setattr(loader, "PARALLEL_MIN", 10)
    monkeypatch.setattr(loader, "CHUNK", 7)
    serial = loader.load_folder(seeds, 1 << 20, jobs=1)
    parallel = loader.load_folder(seeds, 1 << 20, jobs=2)
    assert parallel.articles == serial.articles
    assert [a.source_path for a in parallel.articles] == [a.source_path for a in serial.articles]
    assert [str(e) for e in parallel.rejected] == [str(e) for e in serial.rejected]
    assert [str(e) for e in parallel.warnings] == [str(e) for e in serial.warnings]
    assert len(serial.rejected) == 4 and len(serial.warnings) == 1
    reference = loader.load_documents(loader.find_documents(seeds), 1 << 20)
    assert reference.articles == serial.articles
    assert [str(e) for e in reference.rejected] == [str(e) for e in serial.rejected]


def test_records_round_trip_every_field(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_corpus(seeds, 40)
    report = loader.load_folder(seeds, 1 << 20, jobs=1)
    for article in report.articles:
        again, warnings = build_cache.decode(build_cache.encode(article, []), article.source_path)
        assert again == article and warnings == []
        assert again.published_at.utcoffset() == article.published_at.utcoffset()
    for error in report.rejected:
        again, _ = build_cache.decode(build_cache.encode(error, []), error.path)
        assert str(again) == str(error)


def test_the_cli_builds_the_same_with_and_without_the_cache(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from publisher.cli import main

    seeds = tmp_path / "seeds"
    write_corpus(seeds, 30)
    config = tmp_path / "publisher.yaml"
    config.write_text(
        'site:\n  url: "https://feeds.example.org/"\npaths:\n  state: state/s.sqlite\n'
    )
    runner = CliRunner()
    args = ["build", "--config", str(config), "--seeds", str(seeds)]
    first = runner.invoke(main, [*args, "--out", str(tmp_path / "a")])
    second = runner.invoke(main, [*args, "--out", str(tmp_path / "a")])
    plain = runner.invoke(main, [*args, "--out", str(tmp_path / "b"), "--no-cache"])
    assert first.exit_code == second.exit_code == plain.exit_code == 0
    assert files(tmp_path / "a") == files(tmp_path / "b")
    # In a pipe: the problems and one summary line, no progress bar.
    assert first.stderr == second.stderr == plain.stderr
    assert len(first.stderr.splitlines()) == 5
    assert first.stdout.startswith("Done: 35 documents read, 4 rejected")
    assert second.stdout.split("; ")[1].startswith("0 files written, ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only_for_big_jobs() -> None:
    screen = Terminal()
    bar = TerminalProgress("Reading documents", stream=screen, minimum=100)
    bar(0, 50)
    assert not bar.drawing
    bar = TerminalProgress("Reading documents", stream=screen, minimum=100)
    for done in range(0, 5001, 500):
        bar(done, 5000)
    bar.close()
    assert "Reading documents" in screen.getvalue()
    assert "5000/5000" in screen.getvalue()
    assert "/s" in screen.getvalue()
    piped = io.StringIO()
    bar = TerminalProgress("Reading documents", stream=piped, minimum=1)
    bar(10, 5000)
    bar.close()
    assert piped.getvalue() == ""


def test_parsing_beside_other_threads_does_not_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scheduler builds from a thread; forking a threaded process can deadlock the child.
    import threading

    seeds = tmp_path / "seeds"
    write_corpus(seeds, 30)
    monkeypatch.setattr(loader, "PARALLEL_MIN", 10)
    monkeypatch.setattr(loader, "CHUNK", 8)
    results: list[loader.LoadReport] = []
    worker = threading.Thread(
        target=lambda: results.append(loader.load_folder(seeds, 1 << 20, jobs=2))
    )
    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait)
    bystander.start()
    try:
        worker.start()
        worker.join(timeout=60)
    finally:
        stop.set()
        bystander.join()
    serial = loader.load_folder(seeds, 1 << 20, jobs=1)
    assert results and results[0].articles == serial.articles
    assert [str(e) for e in results[0].rejected] == [str(e) for e in serial.rejected]


def test_copies_chained_by_url_and_id_are_settled_the_same_cached_or_not(
    builds: Builds,
) -> None:
    """A rebuild selects the articles it parsed before those it knew: the order must not
    matter. A and B share a URL, B and C an id; path order is C, B, A."""

    def story(name: str, url: str, id_: str, quality: int, title: str) -> None:
        (builds.seeds / name).write_text(
            f'---\ntitle: "{title}"\nwebUrl: "{url}"\nid: "{id_}"\nquality: {quality}\n'
            "publishedDateTime: 2026-11-20T10:00:00Z\npublished: true\ntopics: [Chains]\n---\n",
            encoding="utf-8",
        )

    shared = "tag:example.org,2026:b"
    story("chain-1.txt", "https://example.org/c", shared, 70, "C")
    story("chain-2.txt", "https://example.org/a?utm_source=x", shared, 80, "B")
    story("chain-3.txt", "https://example.org/a", "tag:example.org,2026:a", 90, "A")
    builds.aged = True
    builds.check()
    story("chain-3.txt", "https://example.org/a", "tag:example.org,2026:a", 90, "A, edited")
    builds.check()
    feed = files(builds.cached)["chains.rss.xml"]
    assert b"<title>A, edited</title>" in feed and b"<title>C</title>" in feed
    assert b"<title>B</title>" not in feed


def test_the_cache_keeps_the_records_of_the_documents_there_are_and_no_others(
    builds: Builds, tmp_path: Path
) -> None:
    """Edits, deletions and renames leave no record behind: the cache does not grow."""

    def unused() -> tuple[int, int]:
        with sqlite3.connect(cache_file(tmp_path)) as db:
            records = db.execute("SELECT count(*) FROM documents").fetchone()[0]
            held = db.execute("SELECT count(DISTINCT hash) FROM files").fetchone()[0]
        return records, held

    builds.check()
    records, held = unused()
    assert records == held > 50
    first = sorted(builds.seeds.rglob("*.txt"))
    generate.write_article(builds.seeds, 3, revision=1)  # one edit
    first[4].unlink()  # one deletion
    first[5].rename(first[5].with_name("renamed.txt"))  # a rename keeps its record
    builds.check()
    assert unused() == (held - 1, held - 1)
    # Two files with the same bytes share a record: one edited, the other keeps it.
    shutil.copyfile(first[6], builds.seeds / "copy.txt")
    builds.check()
    first[6].write_text(first[6].read_text(encoding="utf-8") + "\nedited\n", encoding="utf-8")
    builds.check()
    records, held = unused()
    assert records == held
    # Two files swapping their bytes keep both records.
    one, two = first[7].read_bytes(), first[8].read_bytes()
    first[7].write_bytes(two)
    first[8].write_bytes(one)
    builds.check()
    assert unused() == (records, held)
    # Records a killed build stored and no file holds are swept by a later build.
    with sqlite3.connect(cache_file(tmp_path)) as db:
        db.executemany(
            "INSERT INTO documents VALUES (?, 0, 'left over', NULL, NULL)",
            ((bytes([n]) * 16,) for n in range(100)),
        )
    generate.write_article(builds.seeds, 3, revision=2)
    builds.check()
    assert unused() == (records, held)
    for path in first[10:80]:  # many deletions at once
        path.unlink(missing_ok=True)
    builds.check()
    records, held = unused()
    assert records == held


def test_outputs_touched_while_a_rebuild_reads_its_articles_do_not_break_it(
    builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which files a rebuild writes again is decided once, before it reads those feeds'
    articles: another program touching the others in between cannot make it render a feed
    whose articles it did not read."""
    from publisher import pipeline

    builds.aged = True
    few = make_config(builds.tmp, feeds={"max_items": 2})  # most feeds keep unread summaries
    builds.check(few)
    real_read = pipeline._read_in_full

    touched: list[int] = []

    def read_while_touched(known: build_cache.FolderCache, candidates: list) -> dict:  # type: ignore[type-arg]
        touched.append(len(candidates))
        for path in builds.cached.iterdir():
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
        return real_read(known, candidates)

    monkeypatch.setattr(pipeline, "_read_in_full", read_while_touched)
    generate.write_article(builds.seeds, generate.newest(60, 1)[0], revision=1)
    builds.check(few)
    assert touched and touched[0] > 0
    monkeypatch.setattr(pipeline, "_read_in_full", real_read)
    builds.check(few)  # the touched files are checked again: same bytes


def test_compiled_templates_are_kept_and_a_damaged_one_is_compiled_again(tmp_path: Path) -> None:
    """The build cache's folder keeps Jinja's compiled templates for the next process; a
    damaged one is compiled again, and the pages come out the same."""
    seeds = tmp_path / "seeds"
    write_corpus(seeds, 30)
    config = tmp_path / "publisher.yaml"
    state = tmp_path / "state" / "state.sqlite"
    config.write_text(
        f'site: {{url: "https://feeds.example.org/"}}\npaths: {{state: "{state}"}}\n',
        encoding="utf-8",
    )

    def build_in_a_process(out: str, *options: str) -> None:
        done = run_module("build", "--config", config, "--seeds", seeds, "--out", out, *options,
                          cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr

    build_in_a_process("out")
    kept = sorted((tmp_path / "state" / "templates").iterdir())
    assert len(kept) == 2  # the index page and the topic page
    kept[0].write_bytes(b"not a compiled template")
    kept[1].write_bytes(kept[1].read_bytes()[:40])  # cut short
    generate.write_article(seeds, generate.newest(30, 1)[0], revision=1)
    build_in_a_process("out")
    build_in_a_process("fresh", "--no-cache")
    assert not differences(files(tmp_path / "out"), files(tmp_path / "fresh"))


def test_a_head_without_its_prefix_or_with_a_false_one_is_not_trusted_blindly(
    builds: Builds, tmp_path: Path
) -> None:
    """Heads stored by an older layout (no prefix) are read in full; the prefix is under the
    checksum, so a flipped one is caught like any damage."""
    builds.aged = True
    builds.check()
    with sqlite3.connect(cache_file(tmp_path)) as db:
        rows = db.execute("SELECT hash, head FROM documents WHERE head IS NOT NULL").fetchall()
        assert rows and all(head[0] in "01" and "|" in head[:40] for _, head in rows)
        floor = lowest_threshold(builds.config.selection)
        # Flipped to "unpublished": trusted, this listed article would leave the feeds.
        flipped = next(row for row in rows if build_cache.in_reach(row[1], floor))
        old = next(row for row in rows if row is not flipped)
        bare = old[1].split("|", 1)[1]
        db.execute(
            "UPDATE documents SET head = ?, head_crc = ? WHERE hash = ?",
            (bare, build_cache._crc(bare), old[0]),
        )
        db.execute(
            "UPDATE documents SET head = ? WHERE hash = ?", ("0" + flipped[1][1:], flipped[0])
        )
    generate.write_article(builds.seeds, generate.newest(60, 1)[0], revision=1)
    builds.check()

"""End to end: the real CLI (in-process with CliRunner, and as ``python -m publisher``)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from click.testing import Result
from conftest import (
    REPO,
    SECRET,
    SEEDS,
    SITE_URL,
    SUMMARY_PATTERN,
    WriteArticle,
    feed_files,
    parse_feed,
    run_module,
    snapshot,
)
from lxml import etree

from publisher.output import MANIFEST

CORPUS = Path(__file__).parent / "corpus" / "bad"
Cli = Callable[..., Result]


def summary(text: str) -> dict[str, str]:
    """The counts of the one summary line, which must be the last line of stdout."""
    last = text.strip().splitlines()[-1]
    match = re.fullmatch(SUMMARY_PATTERN, last)
    assert match, f"not a summary line: {last!r}"
    return match.groupdict()


def config_file(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "publisher.yaml"
    path.write_text(f'site:\n  url: "{SITE_URL}"\n' + text, encoding="utf-8")
    return path


def age(folder: Path) -> None:
    """Move every mtime far into the past, so a rewrite in the same clock tick still shows."""
    for path in folder.rglob("*"):
        os.utime(path, ns=(1_000_000_000, 1_000_000_000), follow_symlinks=False)


# --- the bundled seeds -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``python -m publisher build`` from the repository root, as the README runs it."""
    out = tmp_path_factory.mktemp("readme") / "feeds"
    return out, run_module("build", "--out", out, cwd=REPO)


def test_bundled_seeds_build_cleanly(bundled: tuple[Path, Any]) -> None:
    out, child = bundled
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    assert len(child.stdout.splitlines()) == 1
    counts = summary(child.stdout)
    assert counts["rejected"] == "0"
    assert int(counts["read"]) >= 41
    assert int(counts["topics"]) >= 10
    assert 0 < int(counts["selected"]) < int(counts["read"])
    assert int(counts["written"]) == len(list(out.iterdir())) - 1  # all but the manifest
    assert counts["unchanged"] == counts["removed"] == "0"


def test_bundled_seeds_write_the_layout(bundled: tuple[Path, Any]) -> None:
    out, _ = bundled
    names = {p.name for p in out.iterdir()}
    assert {"all.rss.xml", "all.atom.xml", "index.opml", "index.html"} <= names
    rss = {n.removesuffix(".rss.xml") for n in names if n.endswith(".rss.xml")}
    atom = {n.removesuffix(".atom.xml") for n in names if n.endswith(".atom.xml")}
    assert rss == atom
    assert {"c", "c-plus-plus", "c-sharp", "economie-numerique"} <= rss
    assert names == {f"{s}.{k}.xml" for s in rss for k in ("rss", "atom")} | {
        f"{s}.json" for s in rss
    } | {f"{s}.html" for s in rss - {"all"}} | {"index.opml", "index.html", MANIFEST}
    for path in feed_files(out):
        feed = parse_feed(path)
        assert feed.entries, path.name
        assert all(e.link.startswith(("http://", "https://")) for e in feed.entries)


def test_bundled_seeds_never_leak_secured(bundled: tuple[Path, Any]) -> None:
    out, _ = bundled
    blobs = re.findall(
        r'^secured: "([^"]{20})',
        "".join(p.read_text() for p in SEEDS.rglob("*") if p.suffix in (".txt", ".md")),
        re.M,
    )
    assert blobs
    for path in out.iterdir():
        data = path.read_text(encoding="utf-8")
        assert "secured" not in data
        assert not any(blob in data for blob in blobs), path.name


def test_bundled_seeds_second_build_rewrites_nothing(bundled: tuple[Path, Any]) -> None:
    out, _ = bundled
    age(out)
    before = snapshot(out)
    child = run_module("build", "--out", out, cwd=REPO)
    assert child.returncode == 0, child.stderr
    counts = summary(child.stdout)
    assert counts["written"] == counts["removed"] == "0"
    assert int(counts["unchanged"]) == len(before) - 1
    assert snapshot(out) == before


def test_the_bundled_reference_seed_is_the_shared_one() -> None:
    shared = REPO.parent / "shared" / "seeds" / "000_22cd2ad8bb3a4915.txt"
    if not shared.exists():
        pytest.skip("no shared/ folder beside this checkout")
    assert (SEEDS / shared.name).read_bytes() == shared.read_bytes()


# --- determinism -------------------------------------------------------------------------


def test_builds_are_byte_identical_wherever_and_whenever_they_run(tmp_path: Path) -> None:
    elsewhere = tmp_path / "copy" / "of" / "seeds"
    shutil.copytree(SEEDS, elsewhere)
    config = config_file(tmp_path)
    first = run_module(
        "build", "--config", config, "--seeds", SEEDS, "--out", tmp_path / "one", cwd=tmp_path
    )
    env = {**os.environ, "TZ": "Pacific/Kiritimati", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    second = run_module(
        "build",
        "--config",
        config,
        "--seeds",
        elsewhere,
        "--out",
        tmp_path / "two",
        cwd=tmp_path,
        env=env,
    )
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr

    def contents(folder: Path) -> dict[str, bytes]:
        return {k: v[0] for k, v in snapshot(folder).items()}

    assert contents(tmp_path / "one") == contents(tmp_path / "two")


def test_second_build_in_process_is_identical_and_untouched(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    for n in range(6):
        write_article(topics=[["AI", "Space", "C++"][n % 3]])
    config = config_file(tmp_path)
    first = cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    assert first.exit_code == 0, first.output
    # 4 feeds x 3 formats (RSS, Atom, JSON) + 3 topic pages + OPML + index
    assert summary(first.stdout)["written"] == "17"
    age(out_dir)
    before = snapshot(out_dir)
    second = cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    assert second.exit_code == 0
    assert summary(second.stdout) | {"seconds": ""} == {
        "read": "6", "rejected": "0", "selected": "6", "topics": "3",
        "written": "0", "unchanged": "17", "removed": "0", "seconds": "",
    }  # fmt: skip
    assert snapshot(out_dir) == before


def test_only_the_changed_files_are_rewritten(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    write_article(topics=["AI"])
    write_article(topics=["Space"])
    config = config_file(tmp_path)
    cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    age(out_dir)
    before = snapshot(out_dir)
    write_article(topics=["Space"], title="A new space story")
    result = cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    after = snapshot(out_dir)
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert "ai.rss.xml" not in changed and "ai.atom.xml" not in changed
    assert {"space.rss.xml", "space.atom.xml", "all.rss.xml", "all.atom.xml"} <= set(changed)
    assert int(summary(result.stdout)["written"]) == len([c for c in changed if c != MANIFEST])


# --- broken documents --------------------------------------------------------------------


def test_check_lists_every_broken_document_exactly(cli: Cli) -> None:
    expected = (CORPUS / "expected.stderr").read_text(encoding="utf-8")
    child = run_module("check", "--seeds", ".", cwd=CORPUS)
    assert child.returncode == 1
    assert child.stderr == expected
    assert child.stdout.strip() == (
        f"{len(expected.splitlines())} documents: 0 usable, {len(expected.splitlines())} rejected, "
        "0 warnings; 0 would be published"
    )


def test_a_build_of_mixed_documents_publishes_the_good_ones(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    good = {
        "https://good.example.com/1": ("Good one", ["Corpus"]),
        "https://good.example.com/2": ("Good two", ["Other"]),
        "https://good.example.com/3": ("Good three", []),
    }
    for url, (title, topics) in good.items():
        write_article(f"zz-{title}.txt", webUrl=url, originalUrl=url, title=title, topics=topics)
    for broken in CORPUS.iterdir():
        if broken.name != "expected.stderr":
            shutil.copy2(broken, seeds_dir / broken.name, follow_symlinks=False)
    result = cli("build", "--config", config_file(tmp_path), "--seeds", seeds_dir, "--out", out_dir)
    assert result.exit_code == 0
    expected = [
        f"{seeds_dir}/{line}" for line in (CORPUS / "expected.stderr").read_text().splitlines()
    ]
    assert result.stderr.splitlines() == expected
    counts = summary(result.stdout)
    assert (counts["read"], counts["rejected"], counts["selected"]) == (
        str(len(expected) + 3),
        str(len(expected)),
        "3",
    )
    assert {e.link for e in parse_feed(out_dir / "all.atom.xml").entries} == set(good)
    assert [e.title for e in parse_feed(out_dir / "corpus.rss.xml").entries] == ["Good one"]
    assert [e.title for e in parse_feed(out_dir / "other.rss.xml").entries] == ["Good two"]


def test_a_document_too_large_is_named_and_skipped(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    big = write_article("big.txt", body="words " * 2000)
    write_article("small.txt", title="Small")
    config = config_file(tmp_path, "input:\n  max_bytes: 4000\n")
    result = cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    assert result.exit_code == 0
    assert result.stderr == f"{big}: file: larger than the 4000-byte limit (input.max_bytes)\n"
    assert [e.title for e in parse_feed(out_dir / "all.rss.xml").entries] == ["Small"]


def test_a_document_yaml_cannot_construct_does_not_stop_the_build(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    # The seeds write dates unquoted; an impossible one must be one line, not a traceback.
    path = write_article("impossible.txt")
    path.write_text(
        re.sub(
            r"publishedDateTime: \S+",
            "publishedDateTime: 2026-02-30T10:00:00Z",
            path.read_text(),
            count=1,
        )
    )
    write_article("fine.txt", title="Fine")
    child = run_module(
        "build",
        "--config",
        config_file(tmp_path),
        "--seeds",
        seeds_dir,
        "--out",
        out_dir,
        cwd=tmp_path,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    (line,) = child.stderr.splitlines()
    assert line.startswith(f"{path}: ")
    assert [e.title for e in parse_feed(out_dir / "all.rss.xml").entries] == ["Fine"]


def test_secured_never_reaches_output_via_the_cli(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    for n in range(4):
        write_article(topics=["Leaky"], body=f"Body {n}")
    result = cli("build", "--config", config_file(tmp_path), "--seeds", seeds_dir, "--out", out_dir)
    assert result.exit_code == 0
    assert SECRET not in result.output
    for path in out_dir.iterdir():
        assert SECRET.encode() not in path.read_bytes()


# --- stale feeds and failures --------------------------------------------------------------


def test_feeds_of_topics_without_articles_are_removed(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    keep = write_article(topics=["Stays"])
    gone = write_article(topics=["Goes"])
    config = config_file(tmp_path)
    cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    assert (out_dir / "goes.rss.xml").exists()
    (out_dir / "hand-made.rss.xml").write_text("<rss/>")
    (out_dir / "README.txt").write_text("not ours")
    gone.unlink()
    result = cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    assert summary(result.stdout)["removed"] == "4"  # RSS, Atom, JSON Feed and page
    names = {p.name for p in out_dir.iterdir()}
    assert not {"goes.rss.xml", "goes.atom.xml", "goes.json", "goes.html"} & names
    assert {"stays.rss.xml", "stays.atom.xml", "hand-made.rss.xml", "README.txt"} <= names
    opml = (out_dir / "index.opml").read_text()
    assert "goes." not in opml and "stays.rss.xml" in opml
    keep.write_text(keep.read_text().replace("published: true", "published: false"))
    cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [
            MANIFEST,
            "all.atom.xml",
            "all.json",
            "all.rss.xml",
            "index.html",
            "index.opml",
            "hand-made.rss.xml",
            "README.txt",
        ]
    )
    assert parse_feed(out_dir / "all.rss.xml").entries == []


def test_a_directory_in_place_of_a_feed_fails_the_build_cleanly(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    write_article()
    config = config_file(tmp_path)
    cli("build", "--config", config, "--seeds", seeds_dir, "--out", out_dir)
    (out_dir / "all.rss.xml").unlink()
    (out_dir / "all.rss.xml").mkdir()
    (out_dir / "all.rss.xml" / "keep").write_text("keep")
    write_article(title="Another")
    child = run_module(
        "build", "--config", config, "--seeds", seeds_dir, "--out", out_dir, cwd=tmp_path
    )
    assert child.returncode == 1
    assert "Traceback" not in child.stderr
    assert "all.rss.xml" in child.stderr.strip().splitlines()[-1]
    assert (out_dir / "all.rss.xml" / "keep").read_text() == "keep"
    assert not [p for p in out_dir.rglob("*") if ".tmp" in p.name]


def test_a_failing_write_leaves_the_old_feed_intact(
    write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    """A real fault: RLIMIT_FSIZE makes writing the grown feed fail with EFBIG."""
    write_article(topics=["Small"])
    config = config_file(tmp_path)
    assert (
        run_module(
            "build", "--config", config, "--seeds", seeds_dir, "--out", out_dir, cwd=tmp_path
        ).returncode
        == 0
    )
    names = ("all.json", "all.rss.xml", "all.atom.xml")
    old = {name: (out_dir / name).read_bytes() for name in names}
    assert all(len(data) < 8000 for data in old.values())
    for n in range(30):
        write_article(topics=["Big"], excerpt=f"A long excerpt {n} " + "lorem ipsum " * 40)

    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))

    child = run_module(
        "build", "--config", config, "--seeds", seeds_dir, "--out", out_dir, cwd=tmp_path,
        preexec_fn=limit, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert child.returncode == 1
    assert "Traceback" not in child.stderr
    # The first feed file that grew past the limit is named (the JSON Feed is written first).
    assert "all.json: cannot write" in child.stderr
    assert {name: (out_dir / name).read_bytes() for name in names} == old
    parse_feed(out_dir / "all.rss.xml")
    assert not [p for p in out_dir.rglob("*") if ".tmp" in p.name]


def test_an_output_folder_under_a_file_fails_cleanly(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, tmp_path: Path
) -> None:
    write_article()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    result = cli(
        "build", "--config", config_file(tmp_path), "--seeds", seeds_dir, "--out", blocker / "feeds"
    )
    assert result.exit_code == 1
    assert "blocker" in result.stderr
    assert blocker.read_text() == "a file"


def test_an_empty_seeds_folder_gives_empty_valid_feeds(
    cli: Cli, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    result = cli("build", "--config", config_file(tmp_path), "--seeds", seeds_dir, "--out", out_dir)
    assert result.exit_code == 0
    assert summary(result.stdout)["read"] == "0"
    for path in feed_files(out_dir):
        assert parse_feed(path).entries == []


# --- OPML and the index page ---------------------------------------------------------------


@pytest.fixture
def topics_build(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path, tmp_path: Path
) -> Path:
    for topic in ["AI", "C++", "C#", "<b>Bold</b> & co", "Économie numérique"]:
        write_article(topics=[topic], title=f"About {topic}")
    result = cli("build", "--config", config_file(tmp_path), "--seeds", seeds_dir, "--out", out_dir)
    assert result.exit_code == 0
    return out_dir


def test_opml_lists_every_feed(topics_build: Path) -> None:
    root = etree.parse(str(topics_build / "index.opml")).getroot()
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title")
    outlines = root.findall("body//outline")
    urls = {o.get("xmlUrl") for o in outlines}
    assert urls == {SITE_URL + p.name for p in feed_files(topics_build)}
    assert len(outlines) == len(urls)
    for outline in outlines:
        assert outline.get("type") == "rss"
        assert outline.get("text")
    assert any("<b>Bold</b> & co" in (o.get("text") or "") for o in outlines)


def test_index_html_autodiscovers_the_all_feeds_and_lists_every_topic(topics_build: Path) -> None:
    page = lxml.html.parse(str(topics_build / "index.html")).getroot()
    alternates = {
        (link.get("type"), link.get("href")) for link in page.xpath("//head/link[@rel='alternate']")
    }
    assert ("application/rss+xml", SITE_URL + "all.rss.xml") in alternates
    assert ("application/atom+xml", SITE_URL + "all.atom.xml") in alternates
    hrefs = set(page.xpath("//a/@href"))
    assert {SITE_URL + p.name for p in feed_files(topics_build)} <= hrefs
    text = page.text_content()
    for topic in ["AI", "C++", "C#", "<b>Bold</b> & co", "Économie numérique"]:
        assert topic in text
    assert not page.xpath("//body//b[contains(., 'Bold')]")  # the topic's markup is text


# --- configuration through the CLI ----------------------------------------------------------


def test_paths_in_a_config_file_are_relative_to_it(
    write_article: WriteArticle, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    write_article("one.txt", folder=project / "articles", topics=["Solo"])
    config = project / "conf" / "publisher.yaml"
    config.parent.mkdir()
    config.write_text("paths:\n  seeds: ../articles\n  output: ../public\n")
    child = run_module("build", "--config", config, cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    assert (project / "public" / "solo.rss.xml").exists()


def test_publisher_yaml_in_the_working_folder_is_used(
    write_article: WriteArticle, seeds_dir: Path, tmp_path: Path
) -> None:
    write_article(topics=["Here"])
    (tmp_path / "publisher.yaml").write_text(
        'site:\n  url: "https://cwd.example.net/"\npaths:\n  output: site\n'
    )
    child = run_module("build", cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    feed = parse_feed(tmp_path / "site" / "here.atom.xml")
    assert {link.rel: link.href for link in feed.feed.links}[
        "self"
    ] == "https://cwd.example.net/here.atom.xml"


def test_no_config_file_at_all_uses_the_defaults(
    write_article: WriteArticle, seeds_dir: Path, tmp_path: Path
) -> None:
    write_article(topics=["Default"])
    child = run_module("build", cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    assert (tmp_path / "feeds" / "default.rss.xml").exists()
    assert {
        link.rel: link.href for link in parse_feed(tmp_path / "feeds" / "all.rss.xml").feed.links
    }["self"] == "http://localhost:8000/all.rss.xml"

"""Documents -> Article values, or one precise ``<path>: <field>: <reason>`` rejection."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import FIELD_ORDER, REPO, SECRET, SEEDS, Raw, WriteArticle, render_article

from publisher import loader
from publisher.errors import ArticleError
from publisher.loader import (
    _read_bytes,
    find_documents,
    load_document,
    load_documents,
    load_folder,
)
from publisher.models import Article

CORPUS = Path(__file__).parent / "corpus" / "bad"
MAX = 1024 * 1024
LOADER_TIMEOUT = 10


def load_one(path: Path) -> Article:
    report = load_documents([path], MAX)
    assert not report.rejected, [str(e) for e in report.rejected]
    assert len(report.articles) == 1
    return report.articles[0]


def reject_one(path: Path) -> str:
    report = load_documents([path], MAX)
    assert not report.articles
    assert len(report.rejected) == 1
    return str(report.rejected[0])


def test_factory_writes_the_seed_format(write_article: WriteArticle) -> None:
    seed = yaml.safe_load((SEEDS / "000_22cd2ad8bb3a4915.txt").read_text().split("---")[1])
    ours = yaml.safe_load(write_article().read_text().split("---")[1])
    assert list(ours) == list(seed) == [key for key in FIELD_ORDER if key]
    assert list(ours["images"][0]) == list(seed["images"][0])
    assert set(ours["related"][0]) <= set(seed["related"][0])


def test_the_reference_seed_loads_with_every_field() -> None:
    article = load_one(SEEDS / "000_22cd2ad8bb3a4915.txt")
    assert (
        article.title == "Chinese firms advance in AI chips amid possible looming US restrictions"
    )
    assert article.url == "https://www.globaltimes.cn/page/202307/1293938.shtml"
    assert article.published_at == datetime(2023, 7, 7, 11, 7, tzinfo=UTC)
    assert article.published_at.utcoffset() is not None
    assert (article.quality, article.heat, article.published) == (54, 84, True)
    assert article.provider is not None
    assert (article.provider.name, article.provider.domain) == ("Global Times", "globaltimes.cn")
    assert article.topics == ("AI Hardware", "AI")
    assert article.excerpt.startswith("Chinese companies showcased")
    assert article.image is not None and article.image.url.endswith("_s.jpeg")
    assert (article.image.width, article.image.height) == (500, 300)
    assert [r.provider for r in article.related] == ["Nikkei Asia", "Digi Times", "Pakistan Today"]
    assert article.related[0].url.startswith("https://asia.nikkei.com/")
    assert article.id.startswith("urn:")


def test_secured_is_never_kept_on_the_model(write_article: WriteArticle) -> None:
    article = load_one(write_article(body="Body text."))
    assert "secured" not in {f.name for f in dataclasses.fields(Article)}
    assert SECRET not in repr(article)
    assert article.body == "Body text."


def test_unknown_fields_are_ignored(write_article: WriteArticle) -> None:
    article = load_one(write_article(isCached=True, sentiment={"score": 0.3}, category="blog"))
    assert article.title.startswith("Story number")


def test_url_is_web_url_else_original_url(write_article: WriteArticle) -> None:
    both = write_article(
        webUrl="https://web.example.com/a", originalUrl="https://orig.example.com/a"
    )
    only_original = write_article(webUrl=None, originalUrl="https://orig.example.com/b")
    empty_web = write_article(webUrl="", originalUrl="https://orig.example.com/c")
    assert load_one(both).url == "https://web.example.com/a"
    assert load_one(only_original).url == "https://orig.example.com/b"
    assert load_one(empty_web).url == "https://orig.example.com/c"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Raw("2026-03-01T12:30:00Z"), datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        (Raw("2026-03-01T12:30:00+02:00"), datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
        (Raw("2026-03-01T12:30:00-05:30"), datetime(2026, 3, 1, 18, 0, tzinfo=UTC)),
        (Raw("2026-03-01T12:30:00"), datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        (Raw("2026-03-01 12:30:00"), datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        (Raw("2026-03-01"), datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T12:30:00Z", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00+01:00", datetime(2026, 3, 1, 11, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_dates_become_timezone_aware_utc(
    write_article: WriteArticle, value: object, expected: datetime
) -> None:
    moment = load_one(write_article(publishedDateTime=value)).published_at
    assert moment == expected
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (None, False), (Raw("yes"), True)],
)
def test_published_is_a_real_boolean(
    write_article: WriteArticle, value: object, expected: bool
) -> None:
    assert load_one(write_article(published=value)).published is expected


@pytest.mark.parametrize("value", ["false", "true", "no", Raw("1"), Raw("0")])
def test_published_that_is_not_a_boolean_is_never_true(
    write_article: WriteArticle, value: object
) -> None:
    path = write_article(published=value)
    report = load_documents([path], MAX)
    assert not any(a.published for a in report.articles)
    assert [e.field for e in report.rejected] == ["published"]


def test_topics_are_clean_unique_names(write_article: WriteArticle) -> None:
    article = load_one(write_article(topics=["  AI  ", "AI", "Machine\n  Learning", "", "C++"]))
    assert article.topics == ("AI", "Machine Learning", "C++")
    assert load_one(write_article(topics="Space")).topics == ("Space",)
    assert load_one(write_article(topics=None)).topics == ()


def test_only_http_links_survive_in_images_and_related(write_article: WriteArticle) -> None:
    path = write_article(
        images=[
            {"url": "javascript:alert(1)"},
            {"url": "https://img.example.com/ok.png"},
            {"url": "data:image/png;base64,AAAA"},
        ],
        related=[
            {"title": "Bad", "webUrl": "javascript:alert(1)"},
            {"title": "Good", "webUrl": "http://good.example.com/r"},
            {"title": "Also bad", "webUrl": "file:///etc/passwd"},
        ],
    )
    report = load_documents([path], MAX)
    (article,) = report.articles
    assert [i.url for i in article.images] == ["https://img.example.com/ok.png"]
    assert [(r.title, r.url) for r in article.related] == [("Good", "http://good.example.com/r")]
    assert {w.field for w in report.warnings} == {
        "images[0].url",
        "images[2].url",
        "related[0].webUrl",
        "related[2].webUrl",
    }
    assert all("\n" not in str(w) and str(w).startswith(f"{path}: ") for w in report.warnings)


def test_control_characters_are_removed_from_text(write_article: WriteArticle) -> None:
    article = load_one(
        write_article(
            title="Null\u0000 bell\u0007 vt\u000b esc\u001b end\ufffe",
            excerpt="Form\u000cfeed and \u0001 start",
            provider={"name": "Bad\u0002Name", "domain": "bad.example.com"},
            topics=["To\u0003pic"],
        )
    )
    assert article.title == "Null bell vt esc end"
    assert article.excerpt == "Formfeed and start"
    assert article.provider is not None and article.provider.name == "BadName"
    assert article.topics == ("Topic",)


def test_html_in_text_is_kept_as_text_on_the_model(write_article: WriteArticle) -> None:
    article = load_one(write_article(title="<b>Bold</b> & <script>x()</script>"))
    assert article.title == "<b>Bold</b> & <script>x()</script>"


def test_crlf_and_byte_order_mark_documents_load(seeds_dir: Path) -> None:
    text = render_article(title="Windows line ends").replace("\n", "\r\n")
    path = seeds_dir / "crlf.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_one(path).title == "Windows line ends"


def test_documents_are_found_recursively_in_path_order(
    seeds_dir: Path, write_article: WriteArticle
) -> None:
    write_article("b.txt")
    write_article("a.md")
    write_article("2026-11/c.txt")
    write_article("notes.markdown")
    write_article("image.png")
    write_article(".hidden.txt")
    write_article(".drafts/d.txt")
    found = [p.relative_to(seeds_dir).as_posix() for p in find_documents(seeds_dir)]
    assert found == ["2026-11/c.txt", "a.md", "b.txt"]


def test_links_leading_outside_the_seeds_are_ignored(
    tmp_path: Path, seeds_dir: Path, write_article: WriteArticle
) -> None:
    outside = write_article("outside.txt", folder=tmp_path / "elsewhere")
    os.symlink(outside, seeds_dir / "link.txt")
    assert find_documents(seeds_dir) == []


def test_a_document_over_the_size_limit_is_rejected(write_article: WriteArticle) -> None:
    path = write_article(body="x" * 5000)
    report = load_documents([path], 2000)
    assert [str(e) for e in report.rejected] == [
        f"{path}: file: larger than the 2000-byte limit (input.max_bytes)"
    ]


def test_a_document_of_exactly_the_size_limit_is_read_whole(write_article: WriteArticle) -> None:
    path = write_article(body="x" * 5000)
    size = path.stat().st_size
    assert load_documents([path], size).articles[0].body.endswith("x" * 5000)
    assert len(load_documents([path], size - 1).rejected) == 1


def test_a_document_is_read_whole_and_the_limit_holds(write_article: WriteArticle) -> None:
    """The read asks for the file's size (see _read_bytes), whatever the limit is."""
    path = write_article(body="short")
    text = path.read_text(encoding="utf-8")
    assert _read_bytes(path, 10**6) == text.encode()
    with path.open("a", encoding="utf-8") as handle:
        handle.write("y" * 70_000)  # more than one read of 64 KiB past the first
    assert _read_bytes(path, 10**6) == (text + "y" * 70_000).encode()
    with pytest.raises(ArticleError, match="larger than the 50000-byte limit"):
        _read_bytes(path, 50_000)


def test_every_kind_of_broken_document_gives_its_exact_message() -> None:
    expected = (CORPUS / "expected.stderr").read_text(encoding="utf-8").splitlines()
    report = load_folder(CORPUS, MAX)
    assert report.articles == []
    assert report.documents == len(expected) == len(report.rejected)
    messages = sorted(str(e) for e in report.rejected)
    assert messages == [f"{CORPUS}/{line}" for line in expected]


def test_the_corpus_has_one_document_per_expected_message() -> None:
    documents = sorted(p.name for p in CORPUS.iterdir() if p.name != "expected.stderr")
    named = sorted(
        line.split(": ", 1)[0] for line in (CORPUS / "expected.stderr").read_text().splitlines()
    )
    assert documents == named


def test_broken_documents_do_not_stop_the_others(
    seeds_dir: Path, write_article: WriteArticle
) -> None:
    good = [write_article(f"{n}-good.txt") for n in range(3)]
    for broken in CORPUS.iterdir():
        if broken.name != "expected.stderr":
            shutil.copy2(broken, seeds_dir / broken.name, follow_symlinks=False)
    report = load_folder(seeds_dir, MAX)
    assert sorted(a.source_path for a in report.articles) == good
    assert len(report.rejected) == len(list(CORPUS.iterdir())) - 1


# Values that PyYAML's constructors turn into Python exceptions other than YAMLError:
# each must still give one line naming the document, never stop the build.
@pytest.mark.parametrize(
    "fields",
    [
        {"publishedDateTime": Raw("2026-02-30T10:00:00Z")},
        {"publishedDateTime": Raw("2026-13-01")},
        {"publishedDateTime": Raw("2026-01-01T25:00:00Z")},
        {"quality": Raw('!!int "abc"')},
        {"heat": Raw('!!float "abc"')},
        {"publishedDateTime": Raw('!!timestamp "abc"')},
    ],
    ids=["feb-30", "month-13", "hour-25", "int-tag", "float-tag", "timestamp-tag"],
)
def test_values_yaml_cannot_construct_are_one_rejection(
    write_article: WriteArticle, fields: dict[str, object]
) -> None:
    bad = write_article("bad.txt", **fields)
    good = write_article("good.txt")
    report = load_documents([bad, good], MAX)
    assert [a.source_path for a in report.articles] == [good]
    assert len(report.rejected) == 1
    message = str(report.rejected[0])
    assert message.startswith(f"{bad}: ") and "\n" not in message


def test_deeply_nested_front_matter_is_rejected(write_article: WriteArticle) -> None:
    path = write_article(title=Raw("[" * 100_000 + "]" * 100_000))
    message = reject_one(path)
    assert message.startswith(f"{path}: front matter: ") and "\n" not in message


def _run_loader_child(
    folder: Path, memory_bytes: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Load ``folder`` in a child process, with a time limit and optionally a memory limit."""
    code = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        if {memory_bytes!r}:
            resource.setrlimit(resource.RLIMIT_AS, ({memory_bytes!r}, {memory_bytes!r}))
        from publisher.loader import load_folder
        report = load_folder(Path({str(folder)!r}), 1024 * 1024)
        for article in report.articles:
            print("article", article.source_path.name)
        for error in report.rejected:
            print("rejected", error)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=LOADER_TIMEOUT,
        check=False,
        cwd=REPO,
    )


def test_alias_expansion_bomb_is_rejected_quickly(
    seeds_dir: Path, write_article: WriteArticle
) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    bomb = (
        "---\n"
        + "\n".join(levels)
        + textwrap.dedent(
            """
        title: *i
        webUrl: "https://bomb.example.com/"
        publishedDateTime: 2026-01-01T00:00:00Z
        quality: 90
        published: true
        ---
        """
        )
    )
    (seeds_dir / "bomb.txt").write_text(bomb, encoding="utf-8")
    write_article("ok.txt")
    try:
        child = _run_loader_child(seeds_dir, memory_bytes=1024**3)
    except subprocess.TimeoutExpired:
        pytest.fail(f"an alias bomb kept the loader busy for over {LOADER_TIMEOUT} s")
    assert child.returncode == 0, child.stderr[-2000:]
    lines = child.stdout.splitlines()
    assert "article ok.txt" in lines
    assert [line[:40] for line in lines if line.startswith("rejected")] == [
        f"rejected {seeds_dir}/bomb.txt: title: "[:40]
    ]


def test_a_fifo_named_like_a_document_does_not_hang_the_loader(
    seeds_dir: Path, write_article: WriteArticle
) -> None:
    os.mkfifo(seeds_dir / "pipe.txt")
    write_article("ok.txt")
    try:
        child = _run_loader_child(seeds_dir)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading a FIFO named pipe.txt blocked the loader for over {LOADER_TIMEOUT} s")
    assert child.returncode == 0, child.stderr[-2000:]
    assert "article ok.txt" in child.stdout.splitlines()


def test_load_document_parses_text_without_touching_the_disk() -> None:
    article, warnings = load_document(Path("virtual/doc.txt"), render_article(title="In memory"))
    assert article.title == "In memory" and warnings == []
    with pytest.raises(ArticleError) as caught:
        load_document(Path("virtual/doc.txt"), "no front matter at all")
    assert (caught.value.field, str(caught.value.path)) == ("front matter", "virtual/doc.txt")


@pytest.mark.parametrize("count", [0, 1, 7, 199, 200, 1000, 2001, 10_000])
def test_documents_are_handed_to_the_workers_in_order_with_smaller_chunks_last(count: int) -> None:
    paths = [f"{n}.txt" for n in range(count)]
    chunks = loader._chunks(paths)
    assert [path for chunk in chunks for path in chunk] == paths
    assert all(chunks) and all(len(chunk) <= loader.CHUNK for chunk in chunks)
    if count >= 10 * loader.CHUNK:
        assert len(chunks[-1]) == loader.CHUNK // 4 and len(chunks[0]) == loader.CHUNK

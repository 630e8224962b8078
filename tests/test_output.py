"""The only writer of files: atomic, unchanged files untouched, names kept inside the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

from publisher.errors import OutputError
from publisher.output import MANIFEST, OutputFolder, safe_name, write_atomic


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write left behind."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_write_atomic_creates_then_skips_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "feed.xml"
    assert write_atomic(target, b"<a/>") is True
    assert target.read_bytes() == b"<a/>"
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    inode = target.stat().st_ino
    assert write_atomic(target, b"<a/>") is False
    assert target.stat().st_mtime_ns == 1_000_000_000
    assert target.stat().st_ino == inode
    assert leftovers(tmp_path) == []


def test_write_atomic_replaces_by_rename(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    target.write_bytes(b"old")
    inode = target.stat().st_ino
    with target.open("rb") as reader:  # a reader holding the old file keeps the old bytes
        assert write_atomic(target, b"new") is True
        assert reader.read() == b"old"
    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != inode
    assert leftovers(tmp_path) == []


def test_a_batch_written_without_sync_then_synced_together(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "outbox")
    names = [f"reader{n}@example.org.eml" for n in range(5)]
    for name in names:
        folder.write(name, name.encode(), sync=False)
    (tmp_path / "outbox" / names[0]).unlink()  # taken away by a reader of the folder already
    folder.sync(names)  # the others flushed, the folder too; the missing one is not an error
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == names[1:]
    assert all((tmp_path / "outbox" / n).read_bytes() == n.encode() for n in names[1:])
    assert folder.summary.written == names
    assert leftovers(tmp_path) == []
    with pytest.raises(OutputError) as caught:
        OutputFolder(tmp_path / "gone").sync(["a.eml"])  # nowhere to sync: the folder is gone
    assert "gone" in str(caught.value)


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    write_atomic(target, b"x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_a_directory_in_place_of_the_target_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(OutputError) as caught:
        write_atomic(target, b"<feed/>")
    assert str(target) in str(caught.value)
    assert (target / "keep.txt").read_text() == "precious"
    assert leftovers(tmp_path) == []


def test_a_parent_that_is_a_file_fails_cleanly(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OutputError):
        write_atomic(blocker / "feed.xml", b"<feed/>")
    assert blocker.read_text() == "a file, not a folder"


def test_a_write_that_fails_midway_leaves_the_old_file_intact(tmp_path: Path) -> None:
    """A real fault: the file-size limit (RLIMIT_FSIZE) makes the write fail with EFBIG."""
    target = tmp_path / "feed.xml"
    target.write_bytes(b"old content")
    code = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from publisher.errors import OutputError
        from publisher.output import write_atomic
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_atomic(Path({str(target)!r}), b"x" * 100_000)
        except OutputError as exc:
            print("OutputError", exc)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith(f"OutputError {target}: cannot write")
    assert target.read_bytes() == b"old content"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "name",
    ["", "..", "../x", "a/../../x", "/etc/passwd", "a//b", "./x", "a\\b", "a\x00b", "x/.."],
)
def test_unsafe_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(OutputError):
        safe_name(name)
    with pytest.raises(OutputError):
        OutputFolder(tmp_path).path(name)


@pytest.mark.parametrize("name", ["all.rss.xml", "index.html", "sub/feed.atom.xml", ".hidden"])
def test_safe_names_stay_inside(name: str, tmp_path: Path) -> None:
    path = OutputFolder(tmp_path).path(name)
    assert path.resolve().is_relative_to(tmp_path.resolve())


def test_finish_removes_only_what_an_earlier_run_wrote(tmp_path: Path) -> None:
    first = OutputFolder(tmp_path)
    for name in ["a.rss.xml", "b.rss.xml", "index.html"]:
        first.write(name, name.encode())
    first.finish()
    (tmp_path / "mine.rss.xml").write_text("written by hand")
    (tmp_path / "notes.txt").write_text("not ours")

    second = OutputFolder(tmp_path)
    second.write("a.rss.xml", b"a.rss.xml")
    second.write("index.html", b"changed")
    summary = second.finish()
    assert summary.written == ["index.html"]
    assert summary.unchanged == ["a.rss.xml"]
    assert summary.removed == ["b.rss.xml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        MANIFEST,
        "a.rss.xml",
        "index.html",
        "mine.rss.xml",
        "notes.txt",
    ]
    assert leftovers(tmp_path) == []


def test_a_tampered_manifest_never_deletes_outside_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    names = ["../victim.txt", str(victim), "sub/../../victim.txt", "", 42, None]
    (out / MANIFEST).write_text(json.dumps(names))
    folder = OutputFolder(out)
    folder.write("all.rss.xml", b"x")
    folder.finish()
    assert victim.read_text() == "keep me"


def test_a_corrupt_manifest_is_ignored(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text("{not json")
    (tmp_path / "old.rss.xml").write_text("unknown origin")
    folder = OutputFolder(tmp_path)
    folder.write("all.rss.xml", b"x")
    assert folder.finish().removed == []
    assert (tmp_path / "old.rss.xml").exists()
    assert json.loads((tmp_path / MANIFEST).read_text()) == ["all.rss.xml"]


def test_a_symlink_in_the_output_folder_is_replaced_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    (out / "all.rss.xml").symlink_to(outside)
    folder = OutputFolder(out)
    folder.write("all.rss.xml", b"<rss/>")
    folder.finish()
    assert outside.read_text() == "outside"
    assert not (out / "all.rss.xml").is_symlink()
    assert (out / "all.rss.xml").read_bytes() == b"<rss/>"

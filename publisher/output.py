"""The only writer of files: safe names, atomic replacement, unchanged files left alone.

A reader (or a crash) never sees half a file: data goes to a temporary file in the same
folder, is flushed to disk, then renamed over the old one. A file whose bytes did not
change is not touched, so its mtime, ETag and caches stay valid. A manifest of what we
wrote lets the next run remove what is no longer produced, and nothing else.

A run killed mid-write leaves its temporary file behind (hidden, never in the manifest);
the next run that finishes the folder removes it. A writer holds an exclusive ``flock`` on
its temporary file until the rename, so a file still being written is never taken for one
left behind, even by another process publishing into the same folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from publisher.errors import OutputError

log = logging.getLogger(__name__)

MANIFEST = ".publisher-manifest.json"
# ``tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")``: eight random characters.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@dataclass
class WriteSummary:
    """What a run did to the output folder."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def safe_name(name: str) -> PurePosixPath:
    """``name`` as a relative path that cannot leave its folder, or OutputError."""
    path = PurePosixPath(name)
    if (
        not name
        or "\x00" in name
        or "\\" in name
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise OutputError(Path(name), "refusing a file name that could leave the output folder")
    return path


def write_atomic(path: Path, data: bytes, mode: int | None = None, *, sync: bool = True) -> bool:
    """Replace ``path`` with ``data`` atomically; returns False when it already held them.

    ``sync=False`` skips flushing the data to disk before the rename, for a writer that
    calls ``sync_files`` on a batch afterwards (until then a power cut may leave the
    file empty; a killed process still leaves it whole).
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except (NotADirectoryError, FileExistsError):
        raise OutputError(path, _in_the_way(path)) from None
    except OSError as exc:
        raise OutputError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except (NotADirectoryError, FileExistsError):
        raise OutputError(path, _in_the_way(path)) from None
    except OSError as exc:
        raise OutputError(path, f"cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            # Held until the rename: ``sweep`` never removes a file still being written.
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
            stream.write(data)
            stream.flush()
            if sync:
                os.fsync(stream.fileno())
            elif hasattr(os, "posix_fadvise"):
                # Linux starts writing the data out now, so the batch's sync later finds
                # it mostly on disk already (about twice as fast as syncing it all then).
                os.posix_fadvise(stream.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            os.fchmod(stream.fileno(), 0o666 & ~_current_umask() if mode is None else mode)
            os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(path, f"cannot write: {exc.strerror or exc}") from exc
    return True


def sync_files(paths: Iterable[Path]) -> None:
    """Flush files written with ``sync=False`` to disk, then their folders (the renames)."""
    folders = set()
    for path in paths:
        folders.add(path.parent)
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # already taken away (by whoever reads the folder): nothing to sync
        except OSError as exc:
            raise OutputError(path, f"cannot sync: {exc.strerror or exc}") from exc
        try:
            os.fsync(descriptor)
        except OSError as exc:
            raise OutputError(path, f"cannot sync: {exc.strerror or exc}") from exc
        finally:
            os.close(descriptor)
    for folder in sorted(folders):
        try:
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise OutputError(folder, f"cannot sync: {exc.strerror or exc}") from exc


def _in_the_way(path: Path) -> str:
    """Why ``path`` cannot be written when one of its folders is a file."""
    for folder in reversed(path.parents):
        if folder.exists() and not folder.is_dir():
            return f"cannot write: {folder} is a file where a folder should be"
    return "cannot write: a file is where a folder should be"


class OutputFolder:
    """A folder we publish into; every name is checked to stay inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.summary = WriteSummary()
        self._produced: set[str] = set()
        self._started_ns = time.time_ns()

    def path(self, name: str) -> Path:
        """Where ``name`` lives; refuses names that would leave the folder."""
        return self.root.joinpath(*safe_name(name).parts)

    def write(self, name: str, data: bytes, *, sync: bool = True) -> None:
        """Write ``name`` if its content changed; remember it as produced by this run.

        ``sync=False``: see ``write_atomic``; call ``sync`` before relying on the file.
        """
        self._produced.add(name)
        if write_atomic(self.path(name), data, sync=sync):
            self.summary.written.append(name)
        else:
            self.summary.unchanged.append(name)

    def sync(self, names: Iterable[str]) -> None:
        """Make files written with ``sync=False`` durable, and their folders."""
        sync_files(self.path(name) for name in names)

    def keep(self, name: str) -> None:
        """Count ``name`` as produced by this run and unchanged, without touching it (the
        build cache knows its inputs did not change)."""
        self.path(name)
        self._produced.add(name)
        self.summary.unchanged.append(name)

    def finish(self, keep: Iterable[str] = ()) -> WriteSummary:
        """Remove files an earlier run produced and this one did not; record the manifest."""
        produced = self._produced | set(keep)
        self.sweep()
        for name in sorted(self._previous() - produced):
            try:
                self.path(name).unlink()
            except (OutputError, FileNotFoundError):
                continue  # already gone, or a tampered manifest naming a path outside the folder
            except OSError as exc:
                raise OutputError(self.path(name), f"cannot remove: {exc.strerror or exc}") from exc
            self.summary.removed.append(name)
        manifest = json.dumps(sorted(produced), indent=0).encode() + b"\n"
        write_atomic(self.root / MANIFEST, manifest)
        return self.summary

    def sweep(self, also: Iterable[str] = ()) -> list[str]:
        """Remove the temporary files that killed writers left for the files we publish.

        Only the temporary files of names this run or the last one produced (or ``also``
        names, or the manifest, which lists every name but its own), older than this run,
        that nobody holds locked: a writer in another process keeps its file locked until
        it is renamed into place.
        """
        known = set()
        for name in self._produced | self._previous() | set(also) | {MANIFEST}:
            with contextlib.suppress(OutputError):  # a tampered manifest's name: not ours
                known.add(self.path(name))
        removed = []
        for folder in sorted({self.root} | {path.parent for path in known}):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                temporary = _TEMPORARY.fullmatch(entry.name)
                if temporary is None or folder / temporary["name"] not in known:
                    continue
                if self._abandoned(entry):
                    removed.append(entry.path)
        if removed:
            log.info("removed %d temporary files left by an interrupted run", len(removed))
        return removed

    def _abandoned(self, entry: os.DirEntry[str]) -> bool:
        """Remove ``entry`` if it is a temporary file whose writer is gone; say if it was."""
        try:
            if not entry.is_file(follow_symlinks=False):
                return False
            if entry.stat(follow_symlinks=False).st_mtime_ns >= self._started_ns:
                return False  # a writer may have created it and not locked it yet
            descriptor = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
        except OSError:
            return False  # still being written, or already gone
        finally:
            os.close(descriptor)
        return True

    def _previous(self) -> set[str]:
        try:
            names = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()

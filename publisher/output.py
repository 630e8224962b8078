"""The only writer of files: safe names, atomic replacement, unchanged files left alone.

A reader (or a crash) never sees half a file: data goes to a temporary file in the same
folder, is flushed to disk, then renamed over the old one. A file whose bytes did not
change is not touched, so its mtime, ETag and caches stay valid. A manifest of what we
wrote lets the next run remove what is no longer produced, and nothing else.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from publisher.errors import OutputError

MANIFEST = ".publisher-manifest.json"


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


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> bool:
    """Replace ``path`` with ``data`` atomically; returns False when it already held them."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise OutputError(path, f"cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_current_umask() if mode is None else mode)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(path, f"cannot write: {exc.strerror or exc}") from exc
    return True


class OutputFolder:
    """A folder we publish into; every name is checked to stay inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.summary = WriteSummary()
        self._produced: set[str] = set()

    def path(self, name: str) -> Path:
        """Where ``name`` lives; refuses names that would leave the folder."""
        return self.root.joinpath(*safe_name(name).parts)

    def write(self, name: str, data: bytes) -> None:
        """Write ``name`` if its content changed; remember it as produced by this run."""
        self._produced.add(name)
        if write_atomic(self.path(name), data):
            self.summary.written.append(name)
        else:
            self.summary.unchanged.append(name)

    def keep(self, name: str) -> None:
        """Count ``name`` as produced by this run and unchanged, without touching it (the
        build cache knows its inputs did not change)."""
        self.path(name)
        self._produced.add(name)
        self.summary.unchanged.append(name)

    def finish(self, keep: Iterable[str] = ()) -> WriteSummary:
        """Remove files an earlier run produced and this one did not; record the manifest."""
        produced = self._produced | set(keep)
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

    def _previous(self) -> set[str]:
        try:
            names = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()

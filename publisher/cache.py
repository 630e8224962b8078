"""The build cache: what each document parsed to, and what each output file was made from.

A cold build spends most of its time in YAML parsing, and a rebuild usually changes
nothing. So this SQLite file in the state folder keeps, for every document, the checked
``Article`` fields it gave (or the reason it was rejected), addressed by a hash of the
document's bytes, and for every file name the identity (size, mtime, inode) it had when
its bytes were hashed. For every output file it keeps a digest of everything the file was
rendered from, so an output whose inputs did not change is not rendered again.

The cache never changes output, only the time taken to produce it:

- Records are JSON (never pickles) and are checked field by field on the way out; a
  record that fails the checks or its checksum is treated as missing and parsed again.
- A file whose size, mtime or inode changed is hashed again; a file modified less than
  ``RACY_NS`` before it was read is re-checked by content next time (git's "racy clean").
- A new version of the tool, a change to the parsing code or libraries, or a new
  ``input.max_bytes`` empties the cache; a file SQLite cannot read is deleted and rebuilt.
- Any error of the cache itself is logged and the build goes on without it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import sqlite3
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from publisher import __version__
from publisher.errors import ArticleError
from publisher.models import Article, Image, Provider, Related
from publisher.output import OutputFolder
from publisher.urls import check_url

log = logging.getLogger(__name__)

FORMAT = 2
CACHE_NAME = "cache.sqlite"
RACY_NS = 2_000_000_000  # mtime granularity we allow for (FAT has 2 s)
FLUSH_RECORDS = 2000
# Modules whose code decides what a document parses to, or what an output contains.
_PARSER_MODULES = ("loader.py", "models.py", "text.py", "urls.py", "cache.py")
_RENDER_LIBRARIES = ("feedgen", "lxml", "jinja2")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
    hash BLOB PRIMARY KEY, crc INTEGER NOT NULL, record TEXT NOT NULL,
    head TEXT, head_crc INTEGER);
CREATE TABLE IF NOT EXISTS files (
    root TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL, checked_ns INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (root, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outputs (
    folder TEXT NOT NULL, name TEXT NOT NULL, digest BLOB NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, PRIMARY KEY (folder, name)) WITHOUT ROWID;
"""

Outcome = tuple[Article | ArticleError, list[ArticleError]]
# One encoder for every record and head (json.dumps with options makes one per call), and
# no check for circular references: they are lists of plain values.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
# What json.dumps(ensure_ascii=False) makes of the characters XML 1.0 forbids.
_XML_ILLEGAL_ESCAPED = re.compile(r"\\(?:u00(?:0[0-8bcefBCEF]|1[0-9a-fA-F])|[bf])")


class RecordError(ValueError):
    """A cached record is not one this version wrote: treat it as missing."""


def content_hash(data: bytes) -> bytes:
    """The identity of a document's bytes."""
    return hashlib.blake2b(data, digest_size=16).digest()


def _source_hash(names: Iterable[str]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    folder = Path(__file__).resolve().parent
    for name in names:
        try:
            digest.update(folder.joinpath(name).read_bytes())
        except OSError:
            digest.update(b"missing " + name.encode())
    return digest.hexdigest()


def parser_fingerprint(max_bytes: int) -> str:
    """Everything besides a document's bytes that decides what it parses to."""
    parts = (
        FORMAT,
        __version__,
        _source_hash(_PARSER_MODULES),
        yaml.__version__,
        getattr(yaml, "__with_libyaml__", False),
        sys.version_info[:2],
        max_bytes,
    )
    return repr(parts)


def renderer_fingerprint(parser: str, *settings: object) -> bytes:
    """Everything besides the articles that decides an output file's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(parser.encode())
    # All of the package's code and templates: any of them may shape an output file.
    package = Path(__file__).resolve().parent
    digest.update(_source_hash(sorted(path.name for path in package.glob("*.py"))).encode())
    for folder in (package.parent / "templates", package / "templates"):  # checkout, installed
        for template in sorted(folder.glob("*.j2")):
            digest.update(template.name.encode() + b"\0" + template.read_bytes())
    for library in _RENDER_LIBRARIES:
        # The installed file's identity stands for its version, without importing it.
        spec = importlib.util.find_spec(library)
        origin = spec.origin if spec is not None and spec.origin else ""
        try:
            stat = os.stat(origin) if origin else None
        except OSError:
            stat = None
        identity = (origin, stat.st_size, stat.st_mtime_ns) if stat else (origin,)
        digest.update(repr(identity).encode())
    digest.update(repr(settings).encode())
    return digest.digest()


# --- records: Article fields as JSON, checked on the way back ---------------------------


def encode(outcome: Article | ArticleError, warnings: Iterable[ArticleError]) -> str:
    """A document's parse result as compact JSON; its path is not part of it."""
    if isinstance(outcome, ArticleError):
        return json.dumps(["!", outcome.field, outcome.reason], ensure_ascii=False)
    a = outcome
    provider = [a.provider.name, a.provider.domain] if a.provider is not None else None
    fields = [
        a.id,
        a.title,
        a.url,
        a.published_at.isoformat(),
        a.quality,
        a.excerpt,
        a.heat,
        a.published,
        provider,
        list(a.topics),
        [[i.url, i.width, i.height, i.alt] for i in a.images],
        [[r.title, r.url, r.provider] for r in a.related],
        a.body,
        [[w.field, w.reason] for w in warnings],
    ]
    return _COMPACT.encode(fields)


def decode(text: str, path: Path, *, fresh: bool = False) -> Outcome:
    """The parse result ``encode`` stored, for the document now at ``path``; or RecordError.

    Not trusted blindly: besides the type of every field, the promises the loader makes
    are checked again (only http(s) links, only characters XML can carry), except for
    a ``fresh`` record, made moments ago by this build's own worker processes.
    """
    if not fresh and (
        "\ufffe" in text or "\uffff" in text or ("\\" in text and _XML_ILLEGAL_ESCAPED.search(text))
    ):
        raise RecordError("holds characters XML cannot carry")
    link = _same if fresh else _link
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    if type(data) is not list:
        raise RecordError("not a list")
    if len(data) == 3 and data[0] == "!":
        _, name, reason = data
        if type(name) is not str or type(reason) is not str:
            raise RecordError("a rejection of the wrong shape")
        return ArticleError(path, name, reason), []
    if len(data) != 14:
        raise RecordError("a record of the wrong length")
    (id_, title, url, moment, quality, excerpt, heat, published, provider) = data[:9]
    (topics, images, related, body, warnings) = data[9:]
    head = _head(id_, url, moment, quality, published, topics)
    if not (
        type(title) is str
        and type(excerpt) is str
        and type(heat) is float
        and type(images) is list
        and type(related) is list
        and type(body) is str
        and type(warnings) is list
    ):
        raise RecordError("a field of the wrong type")
    article = Article(
        id=head.id,
        title=title,
        url=link(head.url),
        published_at=head.published_at,
        quality=head.quality,
        excerpt=excerpt,
        heat=heat,
        published=head.published,
        provider=None if provider is None else _provider(*_strings(provider, 2)),
        topics=head.topics,
        images=tuple(_image(item, link) for item in images),
        related=tuple(Related(*_strings(item, 3)) for item in related),
        body=body,
        source_path=path,
    )
    for item in related:
        link(item[1])
    problems = [ArticleError(path, *_strings(item, 2)) for item in warnings]
    return article, problems


class Head(NamedTuple):
    """What selection reads of a stored article record."""

    id: str
    url: str
    published_at: datetime
    quality: float
    published: bool
    topics: tuple[str, ...]


def head_of(outcome: Article | ArticleError, warnings: Sequence[ArticleError]) -> Head | None:
    """The fields selection reads; None for a rejection or an article with warnings (read
    in full, so that their problems are reported)."""
    if isinstance(outcome, ArticleError) or warnings:
        return None
    a = outcome
    return Head(a.id, a.url, a.published_at, a.quality, a.published, a.topics)


def encode_head(head: Head | None) -> str | None:
    """``head`` as stored beside the record (``decode_head`` reads it back), after a prefix
    saying whether it is published and its quality ("187.0|[...]"), so that a rebuild can
    pass over what no selection would pick without decoding it (``in_reach``)."""
    if head is None:
        return None
    id_, url, moment, quality, published, topics = head
    fields = [id_, url, moment.isoformat(), quality, published, list(topics)]
    body = _COMPACT.encode(fields)
    return f"{int(published)}{quality!r}|{body}"


def in_reach(text: str, floor: float) -> bool:
    """Whether the stored head ``text`` is of a published article of quality ``floor`` or
    more (read from its prefix); RecordError if it has none."""
    end = text.find("|", 0, 40)
    try:
        quality = float(text[1:end]) if end > 1 else None
    except ValueError:
        quality = None
    if quality is None:
        raise RecordError("a head without its prefix")
    return in_reach_of(text[0] == "1", quality, floor)


def in_reach_of(published: bool, quality: float, floor: float) -> bool:
    """Whether some selection could pick such an article: ``floor`` is the lowest quality
    any topic takes (``selection.lowest_threshold``)."""
    return published and quality >= floor


class Unreachable:
    """What ``FolderCache.head`` gives for an article no selection would pick."""


UNREACHABLE = Unreachable()


def decode_head(text: str) -> Head:
    """A stored head, checked as ``decode`` checks those fields; RecordError if damaged.
    The rest of the record is checked by ``decode`` if a feed written again lists it."""
    try:
        data = json.loads(text[text.index("|") + 1 :])
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    if type(data) is not list or len(data) != 6:
        raise RecordError("a head of the wrong length")
    return _head(*data)


def _head(id_: Any, url: Any, moment: Any, quality: Any, published: Any, topics: Any) -> Head:
    """The fields selection reads, checked: in a record and in a head alike."""
    if not (
        type(id_) is str
        and type(url) is str
        and type(moment) is str
        and type(quality) is float
        and type(published) is bool
        and type(topics) is list
        and all(type(topic) is str for topic in topics)
    ):
        raise RecordError("a field of the wrong type")
    try:
        published_at = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    if published_at.utcoffset() != timedelta(0):
        raise RecordError("published_at is not in UTC")
    return Head(id_, url, published_at, quality, published, tuple(topics))


def _strings(value: Any, count: int) -> list[str]:
    if type(value) is not list or len(value) != count or any(type(v) is not str for v in value):
        raise RecordError(f"expected {count} texts")
    return value


def _same(url: str) -> str:
    return url


def _link(url: str) -> str:
    if check_url(url):
        raise RecordError(f"unsafe link {url!r}")
    return url


@functools.lru_cache(maxsize=1024)
def _provider(name: str, domain: str) -> Provider:
    """Providers repeat across thousands of articles; one frozen value each is enough."""
    return Provider(name, domain)


def _image(item: Any, link: Callable[[str], str]) -> Image:
    if type(item) is not list or len(item) != 4:
        raise RecordError("an image of the wrong shape")
    url, width, height, alt = item
    if not (
        type(url) is str
        and type(alt) is str
        and (width is None or type(width) is int)
        and (height is None or type(height) is int)
    ):
        raise RecordError("an image field of the wrong type")
    return Image(url=link(url), width=width, height=height, alt=alt)


# --- the SQLite file --------------------------------------------------------------------


# A file's (size, mtime_ns, inode): with the time it was read, what the cache keys it on.
Identity = tuple[int, int, int]


def identity_of(stat: os.stat_result) -> Identity:
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


class FileState(NamedTuple):
    """What a document file was when its bytes were last hashed (a tuple: there are
    100,000 of them, made and compared on every build)."""

    size: int
    mtime_ns: int
    ino: int
    checked_ns: int
    hash: bytes

    def matches(self, stat: os.stat_result) -> bool:
        """Same identity, and not modified so close to the check that a change could hide."""
        return (
            stat.st_size == self.size
            and stat.st_mtime_ns == self.mtime_ns
            and stat.st_ino == self.ino
            and stat.st_mtime_ns + RACY_NS < self.checked_ns
        )


class OutputState(NamedTuple):
    """An output file as it was written, and the digest of what it was rendered from."""

    digest: bytes
    size: int
    mtime_ns: int
    ino: int


class BuildCache:
    """One open cache file; every method turns a SQLite failure into 'no cache'."""

    def __init__(self, path: Path, connection: sqlite3.Connection, parser: str) -> None:
        self.path = path
        self.parser = parser
        self._db: sqlite3.Connection | None = connection
        self._outputs_read: dict[Path, dict[str, OutputState]] = {}
        self.read_only = False

    @classmethod
    def open(cls, path: Path, parser: str, *, read_only: bool = False) -> BuildCache | None:
        """Open (or create, or rebuild) the cache at ``path``; None when it cannot be used.

        ``read_only`` uses an existing cache made with the same ``parser`` fingerprint and
        never writes anything (``publisher check`` writes nothing)."""
        if read_only:
            return cls._open_read_only(path, parser)
        for attempt in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(path, timeout=10, isolation_level=None)
            except (OSError, sqlite3.Error) as exc:
                log.warning("%s: cache unavailable, building without it (%s)", path, exc)
                return None
            try:
                cls._prepare(connection, parser)
                return cls(path, connection, parser)
            except sqlite3.Error as exc:
                connection.close()
                if attempt:
                    log.warning("%s: cache unavailable, building without it (%s)", path, exc)
                    return None
                log.warning("%s: cache unreadable (%s); rebuilding it", path, exc)
                _remove(path)
        return None  # pragma: no cover (the loop returns)

    @classmethod
    def _open_read_only(cls, path: Path, parser: str) -> BuildCache | None:
        if not path.is_file():
            return None
        try:
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            found = connection.execute("SELECT value FROM meta WHERE key = 'parser'").fetchone()
        except (OSError, sqlite3.Error) as exc:
            log.debug("%s: cache not used (%s)", path, exc)
            return None
        if found is None or found[0] != parser:
            connection.close()
            return None
        cache = cls(path, connection, parser)
        cache.read_only = True
        return cache

    @staticmethod
    def _prepare(db: sqlite3.Connection, parser: str) -> None:
        # Records are about 1.5 KB: 16 KB pages store 10,000 of them about a third faster
        # than the default 4 KB (only a new, empty file takes the setting).
        db.execute("PRAGMA page_size=16384")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("parser") != parser:
            if meta:
                log.debug("cache made by another version or settings; starting afresh")
            with _transaction(db):
                for table in ("meta", "documents", "files", "outputs"):
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('parser', ?)", (parser,))

    def close(self) -> None:
        """Close the file; the cache object is unusable afterwards."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _fail(self, exc: sqlite3.Error) -> None:
        log.warning("%s: cache error, going on without it (%s)", self.path, exc)
        self.close()

    # -- documents --

    def folder(self, root: Path) -> FolderCache:
        """The cached state of every document under ``root``."""
        key = str(root.resolve())
        files: dict[str, FileState] = {}
        if self._db is not None:
            try:
                rows = self._db.execute(
                    "SELECT path, size, mtime_ns, ino, checked_ns, hash FROM files WHERE root = ?",
                    (key,),
                ).fetchall()
            except sqlite3.Error as exc:
                self._fail(exc)
                rows = []
            for path, *state in rows:
                files[path] = FileState(*state)
        return FolderCache(self, key, files)

    def records(self) -> dict[bytes, tuple[str, int]]:
        """Every stored parse result, by the hash of the document's bytes."""
        if self._db is None:
            return {}
        try:
            rows = self._db.execute("SELECT hash, record, crc FROM documents").fetchall()
        except sqlite3.Error as exc:
            self._fail(exc)
            return {}
        return {hash_: (record, crc) for hash_, record, crc in rows}

    def heads(self) -> dict[bytes, tuple[str, int]]:
        """Every stored head (see ``encode_head``), by the hash of the document's bytes."""
        if self._db is None:
            return {}
        try:
            rows = self._db.execute(
                "SELECT hash, head, head_crc FROM documents WHERE head IS NOT NULL"
            ).fetchall()
        except sqlite3.Error as exc:
            self._fail(exc)
            return {}
        return {hash_: (head, crc) for hash_, head, crc in rows}

    def some_records(self, hashes: list[bytes]) -> dict[bytes, tuple[str, int]]:
        """The stored parse results of these documents (those there are)."""
        found: dict[bytes, tuple[str, int]] = {}
        for start in range(0, len(hashes), 500):  # SQLite takes 999 parameters at most
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            if self._db is None:
                break
            try:
                rows = self._db.execute(
                    f"SELECT hash, record, crc FROM documents WHERE hash IN ({marks})", chunk
                ).fetchall()
            except sqlite3.Error as exc:
                self._fail(exc)
                break
            found.update((hash_, (record, crc)) for hash_, record, crc in rows)
        return found

    def store_records(self, records: dict[bytes, tuple[str, str | None]]) -> None:
        """Store parse results now (by content, so harmless if the build stops later)."""
        if self._db is None or self.read_only:
            return
        try:
            with _transaction(self._db):
                self._db.executemany(
                    "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?)", _rows(records)
                )
        except sqlite3.Error as exc:
            self._fail(exc)

    def save_folder(self, folder: FolderCache) -> None:
        """Write what this build learnt about ``folder`` in one transaction."""
        db = self._db
        if db is None or self.read_only or not (folder.changed or folder.records or folder.gone):
            return
        try:
            with _transaction(db):
                db.executemany(
                    "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?)",
                    _rows(folder.records),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        (folder.key, path, s.size, s.mtime_ns, s.ino, s.checked_ns, s.hash)
                        for path, s in folder.changed.items()
                    ),
                )
                db.executemany(
                    "DELETE FROM files WHERE root = ? AND path = ?",
                    ((folder.key, path) for path in folder.gone),
                )
                _forget_unused(db, [*folder.replaced, *(folder.files[p].hash for p in folder.gone)])
        except sqlite3.Error as exc:
            self._fail(exc)

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the file now, as closing would: a build
        calls it while its files render, not in its last moments."""
        if self._db is None or self.read_only:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            self._fail(exc)

    # -- the last build --

    def snapshot(self, root: Path, out: Path) -> Snapshot | None:
        """What the last build from ``root`` into ``out`` recorded, if it was recorded."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT value FROM meta WHERE key = ?", (_snapshot_name(root, out),)
            ).fetchone()
        except sqlite3.Error as exc:
            self._fail(exc)
            return None
        if row is None:
            return None
        try:
            return Snapshot.from_json(row[0])
        except (ValueError, TypeError, KeyError) as exc:
            log.debug("last build's record ignored (%s)", exc)
            return None

    def save_snapshot(self, root: Path, out: Path, snapshot: Snapshot | None) -> None:
        """Record (or, with None, forget) the build that just finished."""
        if self._db is None:
            return
        name = _snapshot_name(root, out)
        try:
            with _transaction(self._db):
                if snapshot is None:
                    self._db.execute("DELETE FROM meta WHERE key = ?", (name,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, snapshot.to_json())
                    )
        except sqlite3.Error as exc:
            self._fail(exc)

    # -- outputs --

    def outputs(self, folder: Path) -> dict[str, OutputState]:
        """What the last build recorded about each file in the output ``folder``."""
        if self._db is None:
            return {}
        try:
            rows = self._db.execute(
                "SELECT name, digest, size, mtime_ns, ino FROM outputs WHERE folder = ?",
                (str(folder.resolve()),),
            ).fetchall()
        except sqlite3.Error as exc:
            self._fail(exc)
            return {}
        states = {name: OutputState(*rest) for name, *rest in rows}
        self._outputs_read[folder] = dict(states)
        return states

    def save_outputs(self, folder: Path, states: dict[str, OutputState]) -> None:
        """Replace the record of the output ``folder`` with ``states``."""
        db = self._db
        if db is None or states == self._outputs_read.get(folder):
            return
        key = str(folder.resolve())
        try:
            with _transaction(db):
                db.execute("DELETE FROM outputs WHERE folder = ?", (key,))
                db.executemany(
                    "INSERT INTO outputs VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        (key, name, s.digest, s.size, s.mtime_ns, s.ino)
                        for name, s in sorted(states.items())
                    ),
                )
        except sqlite3.Error as exc:
            self._fail(exc)


@dataclass
class FolderCache:
    """The cache's view of one documents folder during a build, and what changed in it."""

    cache: BuildCache
    key: str
    files: dict[str, FileState]
    changed: dict[str, FileState] = field(default_factory=dict)
    records: dict[bytes, tuple[str, str | None]] = field(default_factory=dict)
    replaced: list[bytes] = field(default_factory=list)  # hashes of files since changed
    complete: bool = True  # every document was seen and hashed
    _order: list[str] = field(default_factory=list)
    _final: dict[str, FileState] = field(default_factory=dict)
    _stored: dict[bytes, tuple[str, int]] | None = None
    _heads: dict[bytes, tuple[str, int]] | None = None
    _decoded_heads: dict[bytes, Head | Unreachable | None] = field(default_factory=dict)
    _heads_floor: float = math.nan
    _fetched: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    _made: set[bytes] = field(default_factory=set)  # the records this build made

    @property
    def gone(self) -> list[str]:
        """Documents the cache knows under this folder that this build did not find."""
        return sorted(self.files.keys() - set(self._order))

    def states(self) -> list[tuple[str, FileState]] | None:
        """Every document in path order with its state after this build, if all are known."""
        if not self.complete or len(self._final) != len(self._order):
            return None
        return [(name, self._final[name]) for name in self._order]

    def known_hash(self, name: str, stat: os.stat_result | None) -> bytes | None:
        """The content hash of ``name`` if the file is provably the one that was parsed;
        ``head`` or ``decoded`` then reads its record. ``stat`` None: the file was already
        found matching this folder's state of it (``vouches_for``)."""
        self._order.append(name)
        state = self.files.get(name)
        if state is None or (stat is not None and not state.matches(stat)):
            return None
        return state.hash

    def vouches_for(self, name: str, state: FileState | None) -> bool:
        """Whether ``state`` is this folder's own state of ``name`` (``known_hash``)."""
        return state is not None and self.files.get(name) is state

    def found(self, names: Iterable[str]) -> None:
        """Count these documents as found, where the folder knows none (``known_hash``
        would find no state to check)."""
        self._order.extend(names)

    def head(self, name: str, hash_: bytes, floor: float = -math.inf) -> Head | Unreachable | None:
        """The head of the record of ``name`` (after ``known_hash``); ``UNREACHABLE`` if it
        is unpublished or of a quality below ``floor``; None: read the record in full."""
        head = self._head(hash_, floor)
        if head is not None:
            self._final[name] = self.files[name]
        return head

    def read_heads(self, floor: float, until: Callable[[], bool]) -> None:
        """Decode the heads of the files this folder knows, ahead of ``head``, until
        ``until()`` (asked every few hundred): for a build with time to spare while
        another process checks the files."""
        for count, state in enumerate(self.files.values()):
            if count % 256 == 0 and until():
                return
            self._head(state.hash, floor)

    def _head(self, hash_: bytes, floor: float) -> Head | Unreachable | None:
        if self._heads is None:
            self._heads = self.cache.heads()
        if self._heads_floor != floor:
            self._heads_floor, self._decoded_heads = floor, {}
        if hash_ in self._decoded_heads:
            return self._decoded_heads[hash_]
        stored = self._heads.get(hash_)
        head: Head | Unreachable | None = None
        if stored is not None and stored[1] == _crc(stored[0]):
            try:
                head = decode_head(stored[0]) if in_reach(stored[0], floor) else UNREACHABLE
            except RecordError as exc:
                log.debug("cached head ignored (%s)", exc)
        self._decoded_heads[hash_] = head
        return head

    def decoded(self, name: str, hash_: bytes, path: Path) -> Outcome | None:
        """The parse result of ``name`` (after ``known_hash``), or None: parse it again."""
        outcome = self._decode(hash_, path)
        if outcome is not None:
            self._final[name] = self.files[name]
        return outcome

    def by_content(self, hash_: bytes, path: Path) -> Outcome | None:
        """The parse result of a document with these bytes, wherever it was seen."""
        return self._decode(hash_, path)

    def read_records(self, hashes: Iterable[bytes]) -> None:
        """Fetch these records in a few queries, before ``by_content`` asks for each one
        (when selecting by heads, only the records of feeds written again are read)."""
        wanted = [hash_ for hash_ in hashes if hash_ not in self._fetched]
        self._fetched.update(self.cache.some_records(wanted))

    def _record(self, hash_: bytes) -> str | None:
        pending = self.records.get(hash_)
        if pending is not None:  # made by this build, not stored yet (see save_folder)
            return pending[0]
        # Selecting by heads, a few are read; and a record this build stored is read back
        # from the table, not from a copy read before it was made.
        if self._heads is not None or self._fetched or hash_ in self._made:
            if hash_ not in self._fetched:
                self.read_records([hash_])
            stored = self._fetched.get(hash_)
        else:
            if self._stored is None:
                self._stored = self.cache.records()
            stored = self._stored.get(hash_)
        if stored is None or stored[1] != _crc(stored[0]):
            return None
        return stored[0]

    def _decode(self, hash_: bytes, path: Path) -> Outcome | None:
        stored = self._record(hash_)
        if stored is None:
            return None
        try:
            # A record this build made (and stored moments ago) needs no second check of
            # what the loader promises; its checksum was checked all the same.
            return decode(stored, path, fresh=hash_ in self._made)
        except RecordError as exc:
            log.debug("%s: cached record ignored (%s)", path, exc)
            return None

    def remember(
        self,
        name: str,
        identity: Identity,
        checked_ns: int,
        hash_: bytes,
        record: str | None,
        head: str | None = None,
    ) -> None:
        """Record that ``name`` (of this size, mtime and inode when read, after
        ``checked_ns``) holds ``hash_``, parsed into ``record`` and ``head`` (see ``encode``
        and ``encode_head``)."""
        state = FileState(*identity, checked_ns, hash_)
        self._final[name] = state
        known = self.files.get(name)
        if known is not None and known.hash != hash_:
            self.replaced.append(known.hash)
        if known != state:
            self.changed[name] = state
        if record is not None and not self.cache.read_only:
            self._made.add(hash_)
            self._fetched.pop(hash_, None)  # a copy read before (damaged, or refused)
            self.records[hash_] = (record, head)
            if len(self.records) >= FLUSH_RECORDS:
                self.cache.store_records(self.records)  # memory stays flat at 100,000
                self.records = {}


def _forget_unused(db: sqlite3.Connection, hashes: list[bytes]) -> None:
    """Delete the records of these documents if no file holds them any more: one by one
    after an edit or two, in one sweep of the table after many, or when far more records
    than files are kept (left by builds killed after storing records)."""
    if len(hashes) <= _FORGET_ONE_BY_ONE:
        db.executemany(
            "DELETE FROM documents WHERE hash = ?1 AND NOT EXISTS "
            "(SELECT 1 FROM files WHERE files.hash = ?1)",
            ((hash_,) for hash_ in hashes),
        )
        records = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        files = db.execute("SELECT count(*) FROM files").fetchone()[0]
        if records <= files + _FORGET_ONE_BY_ONE:
            return
    db.execute("DELETE FROM documents WHERE hash NOT IN (SELECT hash FROM files)")


_FORGET_ONE_BY_ONE = 64


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def _rows(
    records: dict[bytes, tuple[str, str | None]],
) -> Iterator[tuple[bytes, int, str, str | None, int | None]]:
    for hash_, (record, head) in records.items():
        yield hash_, _crc(record), record, head, None if head is None else _crc(head)


class _transaction:
    """``BEGIN`` ... ``COMMIT``, or ``ROLLBACK`` on error (the connection is in autocommit)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        except OSError as exc:
            log.warning("%s%s: cannot remove (%s)", path, suffix, exc)


def cache_path(state: Path) -> Path:
    """The cache lives beside the state store, in the state folder."""
    return state.parent / CACHE_NAME


@dataclass(frozen=True)
class Snapshot:
    """What a build found and wrote: enough to report the next one if it has nothing to do."""

    key: str
    documents: int
    rejected: list[tuple[str, str, str]]  # (name under the folder, field, reason)
    warnings: list[tuple[str, str, str]]
    selected: int
    topics: int
    outputs: dict[str, tuple[int, int, int]]  # every file produced, with its identity

    def to_json(self) -> str:
        """The snapshot as JSON for the meta table."""
        return json.dumps(
            {
                "key": self.key,
                "documents": self.documents,
                "rejected": self.rejected,
                "warnings": self.warnings,
                "selected": self.selected,
                "topics": self.topics,
                "outputs": self.outputs,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        """The snapshot ``to_json`` wrote; ValueError/TypeError/KeyError if it is not one."""
        data = json.loads(text)

        def problems(items: Any) -> list[tuple[str, str, str]]:
            return [(_str(a), _str(b), _str(c)) for a, b, c in _list(items)]

        outputs = data["outputs"]
        if type(outputs) is not dict:
            raise TypeError("outputs")
        return cls(
            key=_str(data["key"]),
            documents=_count(data["documents"]),
            rejected=problems(data["rejected"]),
            warnings=problems(data["warnings"]),
            selected=_count(data["selected"]),
            topics=_count(data["topics"]),
            outputs={
                _str(name): (_count(a), _count(b), _count(c)) for name, (a, b, c) in outputs.items()
            },
        )

    def intact(self, folder: Path) -> bool:
        """Whether every file the build produced is still there, as it was written."""
        for name, identity in self.outputs.items():
            try:
                stat = (folder / name).stat()
            except OSError:
                return False
            if (stat.st_size, stat.st_mtime_ns, stat.st_ino) != tuple(identity):
                return False
        return True


def snapshot_key(salt: bytes, states: Iterable[tuple[str, FileState]]) -> str:
    """A digest of the settings and of every document's name, identity and content."""
    digest = hashlib.blake2b(salt, digest_size=16)
    for name, state in states:
        digest.update(
            f"{name}\0{state.size}\0{state.mtime_ns}\0{state.ino}\0".encode(
                "utf-8", "surrogatepass"
            )
        )
        digest.update(state.hash)
    return digest.hexdigest()


def file_identity(path: Path) -> Identity | None:
    """(size, mtime_ns, inode) of ``path``, or None."""
    try:
        return identity_of(path.stat())
    except OSError:
        return None


def _snapshot_name(root: Path, out: Path) -> str:
    return f"build\0{root.resolve()}\0{out.resolve()}"


def _str(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _count(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected a whole number, got {type(value).__name__}")
    return value


class Renders:
    """Writes output files, skipping any whose inputs have the digest the last build
    recorded for it and whose file is still the one that build wrote."""

    def __init__(
        self, cache: BuildCache | None, folder: OutputFolder, salt: bytes, *, defer: bool = False
    ) -> None:
        self._cache = cache
        self._folder = folder
        self._salt = salt
        self._known = cache.outputs(folder.root) if cache is not None else {}
        self._states: dict[str, OutputState] = {}
        self._defer = defer
        self._pending: list[tuple[str, bytes | None, Callable[[], bytes]]] = []
        self._decided: dict[str, tuple[bytes | None, bool]] = {}

    def write(self, name: str, inputs: Iterable[bytes] | None, render: Callable[[], bytes]) -> None:
        """Write ``name`` from ``render()``; ``inputs`` (None: unknown) is all it depends on.

        Deferred, the rendering waits for ``flush``, which can render many files at once.
        """
        digest, unchanged = self._decide(name, inputs)
        known = self._known.get(name)
        if unchanged and known is not None:
            self._folder.keep(name)
            self._states[name] = known
            return
        if self._defer:
            self._pending.append((name, digest, render))
        else:
            self._put(name, digest, render())

    def stale(self, name: str, inputs: Iterable[bytes] | None) -> bool:
        """Whether ``write`` will render ``name`` again: decided once, so a file changed on
        disk in between cannot make ``write`` render what its caller did not prepare."""
        return not self._decide(name, inputs)[1]

    def _decide(self, name: str, inputs: Iterable[bytes] | None) -> tuple[bytes | None, bool]:
        """The digest of ``name``'s inputs, and whether the file can be kept as it is."""
        decided = self._decided.get(name)
        if decided is None:
            digest = self._digest(name, inputs)
            decided = (digest, digest is not None and self._unchanged(name, digest))
            self._decided[name] = decided
        return decided

    def _digest(self, name: str, inputs: Iterable[bytes] | None) -> bytes | None:
        if self._cache is None or inputs is None:
            return None
        hasher = hashlib.blake2b(self._salt, digest_size=16)
        hasher.update(name.encode())
        for part in inputs:
            hasher.update(len(part).to_bytes(4, "big"))
            hasher.update(part)
        return hasher.digest()

    def _unchanged(self, name: str, digest: bytes) -> bool:
        """The last build wrote ``name`` from inputs with this digest, and it is intact."""
        known = self._known.get(name)
        return known is not None and known.digest == digest and self._intact(name, known)

    def flush(self, render_all: Callable[[list[Callable[[], bytes]]], Iterable[bytes]]) -> None:
        """Render what ``write`` deferred, with ``render_all``, and write it in order."""
        pending, self._pending = self._pending, []
        for (name, digest, _), data in zip(
            pending, render_all([render for _, _, render in pending]), strict=True
        ):
            self._put(name, digest, data)

    def _put(self, name: str, digest: bytes | None, data: bytes) -> None:
        self._folder.write(name, data)
        if digest is not None:
            try:
                stat = self._folder.path(name).stat()
            except OSError:
                return
            self._states[name] = OutputState(digest, stat.st_size, stat.st_mtime_ns, stat.st_ino)

    def _intact(self, name: str, known: OutputState) -> bool:
        try:
            stat = self._folder.path(name).stat()
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (
            known.size,
            known.mtime_ns,
            known.ino,
        )

    def save(self) -> None:
        """Record what was written or kept, for the next build."""
        if self._cache is not None:
            self._cache.save_outputs(self._folder.root, self._states)

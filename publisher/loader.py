"""Article documents -> ``Article`` values, or a precise rejection naming path, field and reason.

A document is YAML front matter between ``---`` lines, optionally followed by a Markdown
body. Everything in it is untrusted: it is parsed with a safe loader, every field goes
through one converter in ``_FIELDS``, and only http(s) links survive.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import operator
import os
import re
import reprlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as day_start
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.cache import (
    UNREACHABLE,
    Head,
    Identity,
    Outcome,
    Unreachable,
    content_hash,
    decode,
    encode,
    encode_head,
    head_of,
    identity_of,
    in_reach_of,
    snapshot_key,
)
from publisher.errors import ArticleError
from publisher.models import Article, Image, Provider, Related
from publisher.text import one_line, xml_safe
from publisher.urls import check_url, normalize_url

if TYPE_CHECKING:
    from publisher.cache import FileState, FolderCache

log = logging.getLogger(__name__)

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DOCUMENT_SUFFIXES = (".txt", ".md")
_OPENING = re.compile(r"---[ \t]*\r?\n")
# The closing line, with the line break before it (a literal to scan for is much quicker
# than trying "^" at every position); searched from the opening's own line break.
_CLOSING = re.compile(r"\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)")
_ID_NAMESPACE = uuid.NAMESPACE_URL
_URI = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"]+\Z")
_ID_SCHEMES = frozenset({"urn", "tag", "http", "https"})
# A number written as text: plain ASCII decimal notation only ("85", "-1.5", "2e3"), not
# what float() also takes ("1_000", Arabic-Indic digits, "infinity").
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Worker processes pay for themselves from about a thousand documents (benchmarks/).
PARALLEL_MIN = 1000
CHUNK = 200

Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as documents are loaded."""


@dataclass
class LoadReport:
    """What a folder of documents gave: the usable articles and every problem, in path order."""

    articles: list[Article] = field(default_factory=list)
    rejected: list[ArticleError] = field(default_factory=list)
    warnings: list[ArticleError] = field(default_factory=list)
    documents: int = 0
    # With the build cache: the hash of each article's document. An output file whose
    # articles all kept theirs need not be rendered again.
    fingerprints: dict[Path, bytes] = field(default_factory=dict)
    # With ``summaries=True``: the articles the cache knows (or a worker process parsed),
    # not read in full, and how many more no selection would pick (unpublished, or below
    # ``floor``: only counted).
    summaries: list[Summary] = field(default_factory=list)
    out_of_reach: int = 0


class _Document:
    """A document file found by ``_scan``; its Path is made only when needed (it costs)."""

    __slots__ = ("_path", "file", "name", "vouched")

    def __init__(self, file: str, name: str) -> None:
        self.file = file  # the path as a string: what os.stat and the parse workers take
        self.name = name  # relative to the root, with '/': the key in the build cache
        self._path: Path | None = None
        # The cached state that ``unchanged_documents`` found matching this file's stat.
        self.vouched: FileState | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(self.file)
        return self._path


class Summary(NamedTuple):
    """An article as selection sees it (``cache.Head``), unchanged or parsed by a worker
    process, with what it takes to read it in full (``FolderCache.by_content``) if a feed
    written again lists it. (A tuple: a rebuild makes thousands, and a frozen dataclass
    takes three times as long to make.)"""

    id: str
    url: str
    published_at: datetime
    quality: float
    published: bool
    topics: tuple[str, ...]
    hash: bytes
    document: _Document

    @property
    def source_path(self) -> Path:
        return self.document.path


@dataclass(frozen=True)
class Scan:
    """The documents found under a folder (and, once asked for, each file's identity)."""

    root: Path
    documents: list[_Document]


def scan(root: Path) -> Scan:
    """Find the documents under ``root``, for ``load_folder`` or ``unchanged_documents``."""
    return Scan(root, _scan(root))


def find_documents(root: Path) -> list[Path]:
    """Every ``.txt``/``.md`` file under ``root``, sorted; links leading outside are ignored."""
    return [document.path for document in _scan(root)]


def _scan(root: Path) -> list[_Document]:
    """The walk of ``os.walk`` (symlinked folders are not entered, unreadable ones skipped),
    in the order of sorted paths: each folder's entries sorted by name, a folder's contents
    taken where its name sorts (which is how paths compare, part by part)."""
    top = root.resolve()
    found: list[_Document] = []
    start = os.fspath(root)
    # (folder, its name below the root with a trailing '/', its entries not yet visited)
    stack: list[tuple[str, str, Iterator[os.DirEntry[str]]]] = [(start, "", _entries(start))]
    while stack:
        folder, prefix, entries = stack[-1]
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not name.startswith(".") and not entry.is_symlink():
                    stack.append((entry.path, f"{prefix}{name}/", _entries(entry.path)))
                    break  # into it; this folder's iterator goes on from here afterwards
                continue
            if name.startswith(".") or not name.endswith(DOCUMENT_SUFFIXES):
                continue
            if entry.is_symlink() and not Path(folder, name).resolve().is_relative_to(top):
                continue
            found.append(_Document(entry.path, prefix + name))
        else:
            stack.pop()
    return found


def _entries(folder: str) -> Iterator[os.DirEntry[str]]:
    """A folder's entries sorted by name (none if it cannot be read)."""
    try:
        with os.scandir(folder) as entries:
            return iter(sorted(entries, key=_NAME))
    except OSError:
        return iter(())


_NAME = operator.attrgetter("name")


def load_folder(
    root: Path,
    max_bytes: int,
    *,
    cache: FolderCache | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    found: Scan | None = None,
    summaries: bool = False,
    floor: float = -math.inf,
    meanwhile: Callable[[], object] | None = None,
) -> LoadReport:
    """Load every document under ``root``; a broken one is reported, never fatal.

    With ``cache``, a document whose file did not change, or whose bytes were seen
    before, is not parsed again; with ``summaries`` too, an unchanged article (or one a
    worker process parsed) is not even decoded, but listed in ``report.summaries``, or
    only counted if it is unpublished or of a quality below ``floor``. Many documents are
    parsed in ``jobs`` processes (default: one per CPU); ``meanwhile`` is then called once
    they have their work (not at all when they are not used). The report is the same, in
    the same order, either way.
    """
    checked_ns = time.time_ns()  # before any read: see cache.FileState.matches
    documents = found.documents if found is not None and found.root == root else _scan(root)
    total = len(documents)
    outcomes: list[Outcome | Summary | Unreachable | None] = [None] * total
    hashes: list[bytes | None] = [None] * total
    with collector_paused():
        if cache is None:
            todo = list(range(total))
        else:
            floor_or_none = floor if summaries else None
            todo = _from_cache(
                documents, cache, max_bytes, outcomes, hashes, checked_ns, floor_or_none
            )
        if progress is not None:
            progress(total - len(todo), total)
        parsed = _parse_all(
            [documents[i] for i in todo],
            max_bytes,
            hashed=cache is not None,
            progress=None if progress is None else _offset(progress, total - len(todo), total),
            jobs=jobs,
            heads=summaries and cache is not None,
            meanwhile=meanwhile,
        )
        for index, (hash_, outcome, record, head, identity) in zip(todo, parsed, strict=True):
            document = documents[index]
            if isinstance(outcome, Head):  # hash_ is set: the cache will have its record
                if in_reach_of(outcome.published, outcome.quality, floor):
                    outcomes[index] = Summary(*outcome, cast(bytes, hash_), document)
                else:
                    outcomes[index] = UNREACHABLE  # as for an unchanged one (_from_cache)
            else:
                outcomes[index] = outcome
            hashes[index] = hash_
            if cache is not None and hash_ is not None and identity is not None:
                cache.remember(document.name, identity, checked_ns, hash_, record, head)
    report = LoadReport(documents=total)
    for document, done, digest in zip(documents, outcomes, hashes, strict=True):
        if done is None:  # pragma: no cover (every position was filled above)
            raise RuntimeError(f"{document.path}: not loaded")
        if isinstance(done, Summary):
            report.summaries.append(done)
            continue
        if isinstance(done, Unreachable):
            report.out_of_reach += 1
            continue
        result, warnings = done
        if isinstance(result, ArticleError):
            report.rejected.append(result)
            continue
        report.articles.append(result)
        report.warnings.extend(warnings)
        if digest is not None:
            report.fingerprints[document.path] = digest
    return report


def _from_cache(
    documents: list[_Document],
    cache: FolderCache,
    max_bytes: int,
    outcomes: list[Outcome | Summary | Unreachable | None],
    hashes: list[bytes | None],
    checked_ns: int,
    floor: float | None,
) -> list[int]:
    """Fill in what the cache knows; returns the positions still to parse. With a
    ``floor``, an unchanged article is summarised (see ``load_folder``)."""
    if not cache.files:
        # A folder the cache knows nothing of: every document is parsed, its file's identity
        # taken as it is read (no stat of each file first).
        cache.found(document.name for document in documents)
        return list(range(len(documents)))
    todo = []
    for index, document in enumerate(documents):
        # A file the nothing-to-do check found matching this cache's state of it needs no
        # second look (a build that starts again reads the cache afresh: it looks again).
        stat = None
        if not cache.vouches_for(document.name, document.vouched):
            stat = _stat(document)
            if stat is None:
                cache.complete = False
                todo.append(index)  # parsing says why it cannot be read
                continue
        hit: tuple[bytes, Outcome | Summary | Unreachable] | None = None
        known_hash = cache.known_hash(document.name, stat)
        if known_hash is not None:
            head = None if floor is None else cache.head(document.name, known_hash, floor)
            if isinstance(head, Head):
                hit = (known_hash, Summary(*head, known_hash, document))
            elif head is not None:
                hit = (known_hash, head)  # unpublished, or below every threshold
            else:
                decoded = cache.decoded(document.name, known_hash, document.path)
                hit = None if decoded is None else (known_hash, decoded)
        if hit is None and stat is None:
            stat = _stat(document)
        if hit is None and stat is not None and stat.st_size <= max_bytes:
            # Touched, renamed or copied: the same bytes need not be parsed again.
            try:
                hash_ = content_hash(_read_bytes(document.path, max_bytes))
            except ArticleError:
                hash_ = None
            by_content = None if hash_ is None else cache.by_content(hash_, document.path)
            if hash_ is not None and by_content is not None:
                cache.remember(document.name, identity_of(stat), checked_ns, hash_, None)
                hit = (hash_, by_content)
        if hit is None:
            todo.append(index)
        else:
            hashes[index], outcomes[index] = hit
    return todo


def unchanged_documents(found: Scan, cache: FolderCache) -> list[tuple[str, FileState]] | None:
    """Every document found with its cached state, if each one is provably the file the
    cache parsed (same identity, not modified around that time); else None."""
    states = []
    files = cache.files
    for document in found.documents:
        stat = _stat(document)
        if stat is None:
            return None
        known = files.get(document.name)
        if known is None or not known.matches(stat):
            return None
        document.vouched = known  # the load that follows need not check it again
        states.append((document.name, known))
    return states


def vouch_matched(found: Scan, cache: FolderCache, matches: bytes) -> None:
    """Vouch for the documents ``match_files`` matched (in a helper process): the load
    that follows need not check them again."""
    files = cache.files
    for document, matched in zip(found.documents, matches, strict=True):
        if matched:
            document.vouched = files.get(document.name)


def assumed_key(salt: bytes, found: Scan, cache: FolderCache) -> str | None:
    """The ``snapshot_key`` of the documents found if none changed since the cache saw
    them (None if it knows not every one), worked out before that is known."""
    files = cache.files
    try:
        return snapshot_key(salt, [(d.name, files[d.name]) for d in found.documents])
    except KeyError:
        return None


def match_files(documents: list[_Document], files: dict[str, FileState]) -> bytes:
    """One byte a document: 1 if its file is provably the one the cache parsed (see
    ``unchanged_documents``), else 0."""
    matched = bytearray(len(documents))
    for index, document in enumerate(documents):
        known = files.get(document.name)
        stat = None if known is None else _stat(document)
        if stat is not None and known is not None and known.matches(stat):
            matched[index] = 1
    return bytes(matched)


def _stat(document: _Document) -> os.stat_result | None:
    """The status of a document's file, or None if it cannot be had. Not ``DirEntry.stat``,
    which would keep all 10,000 of them (15 objects each) alive until the build ends."""
    try:
        return os.stat(document.file)
    except OSError:
        return None


def _offset(progress: Progress, done: int, total: int) -> Callable[[int], None]:
    return lambda count: progress(done + count, total)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Loading allocates millions of short-lived containers and no cycles; the cyclic
    collector would walk every article loaded so far again and again (about 10 %)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # What is still alive now is long-lived: into the oldest generation at once
            # (freeze and unfreeze move whole lists), or the first collection after the
            # build would walk all of it (about 10 ms at 10,000 documents).
            gc.freeze()
            gc.unfreeze()
            gc.enable()


# (content hash, outcome or just its head, record and head for the cache, the identity
# of the file read)
Parsed = tuple[bytes | None, Outcome | Head, str | None, str | None, Identity | None]


def _parse_all(
    documents: list[_Document],
    max_bytes: int,
    *,
    hashed: bool,
    progress: Callable[[int], None] | None,
    jobs: int | None,
    heads: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> Iterator[Parsed]:
    """Parse ``documents``, yielding each one's ``Parsed`` in order; one at a time, so that a
    hundred thousand records never wait in memory together. With ``heads``, an article
    parsed in a worker process comes back as its head only (see ``Summary``)."""
    workers = min(jobs or cpu_count(), max(len(documents) // CHUNK, 1))
    done = 0
    if workers > 1 and len(documents) >= PARALLEL_MIN:
        try:
            # Workers only open the files: their directory entries' paths will do.
            names = [document.file for document in documents]
            for chunk in _parse_in_workers(names, max_bytes, workers, meanwhile):
                for digest, text, head, stored_head, identity in chunk:
                    if heads and head is not None:
                        yield digest, head, text, stored_head, identity
                    else:
                        decoded = decode(text, documents[done].path, fresh=True)
                        yield digest, decoded, text, stored_head, identity
                    done += 1
                if progress is not None:
                    progress(done)
        except (OSError, RuntimeError) as exc:  # BrokenProcessPool is a RuntimeError
            log.warning("parsing in worker processes failed (%s); going on in this one", exc)
    for document in documents[done:]:
        hash_, outcome, warnings, identity = _parse_one(document.path, max_bytes, hashed=hashed)
        record = stored_head = None
        if hash_ is not None:
            record = encode(outcome, warnings)
            stored_head = encode_head(head_of(outcome, warnings))
        yield hash_, (outcome, warnings), record, stored_head, identity
        done += 1
        if progress is not None and done % CHUNK == 0:
            progress(done)
    if progress is not None:
        progress(done)


def _parse_in_workers(
    paths: list[str], max_bytes: int, workers: int, meanwhile: Callable[[], object] | None
) -> Iterator[list[_Parsed]]:
    """Chunks of ``paths`` parsed by a pool of processes, in order; ``meanwhile`` is called
    once they all are handed out (the first takes tens of milliseconds)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork is the cheapest start, but unsafe once other threads exist (the scheduler's).
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        method = "fork"
    else:
        method = "forkserver" if "forkserver" in methods else "spawn"
    chunks = _chunks(paths)
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=exit_with_parent) as pool:
        parsed = pool.map(_parse_chunk, chunks, [max_bytes] * len(chunks))
        if meanwhile is not None:
            meanwhile()
        yield from parsed


def _chunks(paths: list[str]) -> list[list[str]]:
    """``paths`` in chunks of ``CHUNK``, the last tenth (two chunks' worth at most) in
    quarter chunks: a worker left without work at the end then waits for a quarter of a
    chunk, not a whole one."""
    tail = min(len(paths) // 10, 2 * CHUNK)
    head = len(paths) - tail
    small = max(CHUNK // 4, 1)
    chunks = [paths[i : min(i + CHUNK, head)] for i in range(0, head, CHUNK)]
    return chunks + [paths[i : i + small] for i in range(head, len(paths), small)]


# What a worker sends back for one document: its hash, its record, its head (if it has
# one; the parent selects by it without decoding anything), the head as stored, and the
# identity of the file it read.
_Parsed = tuple[bytes | None, str, Head | None, str | None, Identity | None]


def _parse_chunk(paths: list[str], max_bytes: int) -> list[_Parsed]:
    """In a worker process: parse a few hundred documents into cache records and heads."""
    with collector_paused():
        results = []
        for name in paths:
            hash_, outcome, warnings, identity = _parse_one(Path(name), max_bytes, hashed=True)
            head = head_of(outcome, warnings)
            record = encode(outcome, warnings)
            results.append((hash_, record, head, encode_head(head), identity))
        return results


def exit_with_parent() -> None:
    """In a worker process: leave as soon as the process that started it is gone. A build
    killed outright (SIGKILL, the OOM killer) would otherwise leave its workers waiting for
    work for ever, holding its lock (the next build would wait for it in vain)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_documents(paths: Iterable[Path], max_bytes: int) -> LoadReport:
    """Load ``paths`` in order, in this process and without the cache; see ``load_document``."""
    report = LoadReport()
    for path in paths:
        report.documents += 1
        _, outcome, warnings, _ = _parse_one(path, max_bytes, hashed=False)
        if isinstance(outcome, ArticleError):
            report.rejected.append(outcome)
            continue
        report.articles.append(outcome)
        report.warnings.extend(warnings)
    return report


def _parse_one(
    path: Path, max_bytes: int, *, hashed: bool
) -> tuple[bytes | None, Article | ArticleError, list[ArticleError], Identity | None]:
    """One document's outcome, the hash of its bytes when ``hashed`` (for the cache), and
    the identity of the file they were read from."""
    try:
        data, info = _read_file(path, max_bytes)
    except ArticleError as error:
        return None, error, [], None
    hash_ = content_hash(data) if hashed else None
    identity = identity_of(info)
    try:
        article, warnings = load_document(path, _decode_text(path, data))
    except ArticleError as error:
        return hash_, error, [], identity
    return hash_, article, warnings, identity


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, up to ``max_bytes`` (see ``_read_file``)."""
    return _read_file(path, max_bytes)[0]


def _read_file(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The file's bytes, up to ``max_bytes``, and its status as opened; asks for the size
    it has, not for the limit (a read of a megabyte maps and unmaps a megabyte of memory,
    for every document)."""
    try:
        # Non-blocking, so a FIFO named like a document cannot hang the build.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(descriptor)
            if not S_ISREG(info.st_mode):
                raise ArticleError(path, "file", "not a regular file")
            data = b""
            want = min(info.st_size, max_bytes) + 1
            while len(data) <= max_bytes:  # until the end (or the file grew past the limit)
                chunk = os.read(descriptor, want)
                if not chunk:
                    break
                data += chunk
                want = min(max_bytes + 1 - len(data), 1 << 16)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise ArticleError(path, "file", f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ArticleError(
            path, "file", f"larger than the {max_bytes}-byte limit (input.max_bytes)"
        )
    return data, info


def _decode_text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleError(path, "file", f"not UTF-8 text (byte {exc.start})") from exc


def load_document(path: Path, text: str) -> tuple[Article, list[ArticleError]]:
    """Parse one document; returns the article and the problems that did not stop it."""
    opening = _OPENING.match(text)
    closing = None if opening is None else _CLOSING.search(text, opening.end() - 1)
    if opening is not None and closing is None:
        raise ArticleError(
            path,
            "front matter",
            "not closed: no '---' line after the fields (is the file truncated?)",
        )
    if opening is None or closing is None:
        raise ArticleError(
            path,
            "front matter",
            "missing: the file must start with a '---' line and close it with another",
        )
    front = text[opening.end() : closing.start() + 1]
    try:
        data = parse_front_matter(front)
    except _Refused as refused:
        raise ArticleError(path, "front matter", str(refused)) from None
    except yaml.YAMLError as exc:
        raise ArticleError(path, "front matter", _yaml_reason(exc)) from None
    except RecursionError:
        raise ArticleError(path, "front matter", "nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # an impossible date such as 2023-13-45
        if "integer string conversion" in str(exc):  # Python's guard against huge numbers
            raise ArticleError(path, "front matter", "a number too long to read") from None
        raise ArticleError(path, "front matter", f"not valid YAML ({exc})") from None
    except Exception as exc:  # PyYAML's constructors fail in other ways too (!!timestamp "x")
        reason = f"not valid YAML ({type(exc).__name__}: {exc})"
        raise ArticleError(path, "front matter", reason) from None
    if not isinstance(data, dict):
        raise ArticleError(
            path, "front matter", f"expected a mapping of fields, got {_describe(data)}"
        )
    fields = _Fields(path, data)
    url = fields.url()
    article = Article(
        id=fields.article_id(url),
        title=fields.required_text("title"),
        url=url,
        published_at=fields.timestamp("publishedDateTime"),
        quality=fields.number("quality", required=True),
        excerpt=fields.optional_text("excerpt"),
        heat=fields.number("heat", required=False),
        published=fields.flag("published"),
        provider=fields.provider("provider"),
        topics=fields.topics("topics"),
        images=fields.images("images"),
        related=fields.related("related"),
        body=xml_safe(text[closing.end() :]).strip(),
        source_path=path,
    )
    return article, fields.warnings


_PLAIN = "?plain"  # a plain scalar's tag until _plain resolves it
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_SCALARS = {
    f"tag:yaml.org,2002:{name}": SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("null", "bool", "int", "float", "timestamp")
}


class _NotPlain(Exception):
    """The document uses aliases, merge keys, explicit tags or complex keys."""


@functools.lru_cache(maxsize=4096)
def _implicit_tag(value: str) -> str:
    """The tag of a plain scalar: depends on its text alone (keys and words repeat a lot)."""
    tag: str = _RESOLVER.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag


_RESOLVER = yaml.resolver.Resolver()
_RESOLVER.yaml_implicit_resolvers = SafeLoader.yaml_implicit_resolvers


class _DocumentLoader(SafeLoader):  # type: ignore[valid-type,misc]
    """The safe loader, quicker on plain documents (trees of mappings, lists and scalars).

    The C parser asks for every node's tag as it builds it; here a plain scalar is only
    marked, and ``_plain`` resolves it while constructing, remembering the tags of words
    that repeat (keys). Anything but a plain tree raises ``_NotPlain``, and
    ``parse_front_matter`` reads the text again with the safe loader's own code, so the
    result is always exactly its own.
    """

    # The C parser calls these two for every node, to serve path resolvers; PyYAML's
    # safe loader has none, so they are C built-ins that take the arguments and do nothing.
    descend_resolver = operator.is_
    ascend_resolver = tuple

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _MAP if kind is MappingNode else _SEQ

    def construct_document(self, node: Node) -> Any:
        return _plain(self, node, set())


class _CheckedLoader(SafeLoader):  # type: ignore[valid-type,misc]
    """The safe loader itself, for what ``_DocumentLoader`` leaves: refuses alias bombs."""

    def construct_document(self, node: Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def parse_front_matter(front: str) -> Any:
    """The front matter as PyYAML's C safe loader reads it (``CSafeLoader``)."""
    try:
        return yaml.load(front, Loader=_DocumentLoader)
    except _NotPlain:
        return yaml.load(front, Loader=_CheckedLoader)


MAX_ALIAS_EXPANSION = 100_000
"""How many values aliases (``*name``, merge keys) may add to a document once expanded."""


class _Refused(Exception):
    """YAML the loader will not read, though it is valid (an alias bomb); says why."""


def _check_expansion(root: Node) -> None:
    """Refuse a node graph whose aliases expand to far more values than it holds.

    The safe loader shares aliased objects, but merge keys copy them, and every consumer
    that walks the values would expand them: ten aliases of ten aliases, nine levels
    deep, is a billion values from a few hundred bytes. Counted on the graph, without
    expanding it; a self-referencing node (a cycle) counts once, as the loader builds it.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in children)
            on_path.discard(key)
            continue
        if key in sizes or key in on_path:
            continue
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    distinct = len(sizes)
    if sizes[id(root)] - distinct > MAX_ALIAS_EXPANSION:
        raise _Refused(
            f"its aliases would expand it to over {MAX_ALIAS_EXPANSION} values "
            "(an alias bomb?); write the values out instead"
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _plain(loader: Any, node: Node, seen: set[int]) -> Any:
    """The value of a plain tree of mappings, lists and scalars; else ``_NotPlain``."""
    kind = node.__class__
    if kind is ScalarNode:
        return _scalar(loader, node)
    if id(node) in seen:  # an alias: the safe loader shares the object (and stops bombs)
        raise _NotPlain
    seen.add(id(node))
    if kind is MappingNode and node.tag == _MAP:
        mapping = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                raise _NotPlain
            mapping[_scalar(loader, key_node)] = (
                _scalar(loader, value_node)
                if value_node.__class__ is ScalarNode
                else _plain(loader, value_node, seen)
            )
        return mapping
    if kind is SequenceNode and node.tag == _SEQ:
        return [
            _scalar(loader, item) if item.__class__ is ScalarNode else _plain(loader, item, seen)
            for item in node.value
        ]
    raise _NotPlain


def _scalar(loader: Any, node: Node) -> Any:
    """A scalar's value as the safe loader constructs it, with shortcuts for what repeats
    (keys, flags, small numbers) and for dates in the documents' usual form."""
    tag = node.tag
    value = node.value
    if tag is _PLAIN:
        known = _REPEATED.get(value, _UNKNOWN)
        if known is not _UNKNOWN:
            return known
        if _UTC_MOMENT.fullmatch(value):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass  # such as 2023-13-45: the safe loader's own error follows
        tag = _implicit_tag(value)
        if tag == _INT and value.isascii() and value.isdigit() and value[0] != "0":
            result: Any = int(value)
        elif tag == _STR:
            result = value
        else:
            construct = _SCALARS.get(tag)
            if construct is None:
                raise _NotPlain
            result = construct(loader, node)
        if len(value) <= 16 and len(_REPEATED) < 10_000:
            _REPEATED[value] = result
        return result
    if tag == _STR:
        return value
    construct = _SCALARS.get(tag)
    if construct is None:
        raise _NotPlain
    return construct(loader, node)


# Plain scalars already constructed: their values are immutable (str, int, float, bool,
# None, date), so sharing one object is what the safe loader's own results look like.
_REPEATED: dict[str, Any] = {}
_UNKNOWN = object()
# "2023-07-07T11:07:00Z": YAML resolves it as a timestamp, the same moment in UTC.
_UTC_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


class _Fields:
    """Converters for front-matter fields: each returns a clean value or raises ArticleError."""

    def __init__(self, path: Path, data: dict[Any, Any]) -> None:
        self.path = path
        self.data = data
        self.warnings: list[ArticleError] = []

    def fail(self, name: str, reason: str) -> ArticleError:
        return ArticleError(self.path, name, reason)

    def warn(self, name: str, reason: str) -> None:
        self.warnings.append(ArticleError(self.path, name, reason))

    def required_text(self, name: str) -> str:
        value = self.data.get(name)
        if value is None:
            raise self.fail(name, "missing")
        text = _text(value)
        if text is None:
            raise self.fail(name, f"expected text, got {_describe(value)}{_quote_hint(value)}")
        if not text:
            raise self.fail(name, "empty")
        return text

    def optional_text(self, name: str) -> str:
        value = self.data.get(name)
        if value is None:
            return ""
        text = _text(value)
        if text is None:
            raise self.fail(name, f"expected text, got {_describe(value)}{_quote_hint(value)}")
        return text

    def url(self) -> str:
        for name in ("webUrl", "originalUrl"):
            value = self.data.get(name)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise self.fail(name, f"expected a URL, got {_describe(value)}")
            reason = check_url(value.strip())
            if reason:
                raise self.fail(name, reason)
            return value.strip()
        raise self.fail("webUrl", "missing (neither webUrl nor originalUrl is set)")

    def article_id(self, url: str) -> str:
        """A stable id: from the story's URL, so edits to title, date or file name keep it."""
        value = self.data.get("id")
        if value is not None:
            if not isinstance(value, str) or not _URI.match(value.strip()):
                raise self.fail(
                    "id", f"expected a URI such as 'urn:uuid:...', got {_describe(value)}"
                )
            # Readers may follow an id as a link: only schemes that are no action.
            scheme = value.strip().split(":", 1)[0].lower()
            if scheme not in _ID_SCHEMES:
                raise self.fail(
                    "id", f"unsafe URI scheme {scheme!r} (ids must be urn:, tag:, http or https)"
                )
            if scheme in ("http", "https") and check_url(value.strip()):
                raise self.fail("id", check_url(value.strip()))
            return xml_safe(value.strip())
        return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, normalize_url(url))}"

    def timestamp(self, name: str) -> datetime:
        value = self.data.get(name)
        if value is None:
            raise self.fail(name, "missing")
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, day_start())
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(
                    name, f"expected an ISO 8601 date and time, got {_describe(value)}"
                ) from None
        else:
            raise self.fail(name, f"expected an ISO 8601 date and time, got {_describe(value)}")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.fail(name, f"out of range: {value}") from None

    def number(self, name: str, *, required: bool) -> float:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "missing")
            return 0.0
        number = _number(value)
        if number is None:
            raise self.fail(name, f"expected a number, got {_describe(value)}")
        return number

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {_describe(value)}")
        return value

    def provider(self, name: str) -> Provider | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return Provider(one_line(value)) if one_line(value) else None
        if not isinstance(value, dict):
            raise self.fail(
                name, f"expected a mapping with name and domain, got {_describe(value)}"
            )
        provider_name = _text(value.get("name") or "")
        domain = _text(value.get("domain") or "")
        if provider_name is None or domain is None:
            raise self.fail(name, "name and domain must be text")
        if not provider_name and not domain:
            return None
        return Provider(provider_name or domain, domain)

    def topics(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise self.fail(name, f"expected a list of topic names, got {_describe(value)}")
        topics: dict[str, None] = {}
        for index, item in enumerate(items):
            topic = _text(item)
            if topic is None:
                raise self.fail(f"{name}[{index}]", f"expected a topic name, got {_describe(item)}")
            if topic:
                topics[topic] = None
        return tuple(topics)

    def images(self, name: str) -> tuple[Image, ...]:
        images = []
        for index, item in self._entries(name):
            where = f"{name}[{index}]"
            url = self._link(f"{where}.url", item.get("url"))
            if url is None:
                continue
            alt = _text(item.get("alt") or item.get("caption") or "")
            images.append(
                Image(
                    url=url,
                    width=self._dimension(f"{where}.width", item.get("width")),
                    height=self._dimension(f"{where}.height", item.get("height")),
                    alt=alt or "",
                )
            )
        return tuple(images)

    def related(self, name: str) -> tuple[Related, ...]:
        related = []
        for index, item in self._entries(name):
            where = f"{name}[{index}]"
            raw_url = item.get("webUrl") or item.get("originalUrl")
            url = self._link(f"{where}.webUrl", raw_url)
            title = _text(item.get("title"))
            if url is None:
                continue
            if not title:
                self.warn(f"{where}.title", "missing or not text; related link dropped")
                continue
            provider = item.get("provider")
            provider_name = _text(provider.get("name")) if isinstance(provider, dict) else None
            related.append(Related(title=title, url=url, provider=provider_name or ""))
        return tuple(related)

    def _entries(self, name: str) -> Iterator[tuple[int, dict[Any, Any]]]:
        value = self.data.get(name)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list, got {_describe(value)}")
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item
            else:
                self.warn(f"{name}[{index}]", f"expected a mapping, got {_describe(item)}; dropped")

    def _link(self, where: str, value: object) -> str | None:
        if not isinstance(value, str):
            self.warn(where, f"expected a URL, got {_describe(value)}; dropped")
            return None
        reason = check_url(value.strip())
        if reason:
            self.warn(where, f"{reason}; dropped")
            return None
        return value.strip()

    def _dimension(self, where: str, value: object) -> int | None:
        if value is None:
            return None
        number = _number(value)
        if number is None or number != int(number) or not 0 < number <= 100_000:
            self.warn(where, f"expected a whole number of pixels, got {_describe(value)}; ignored")
            return None
        return int(number)


def _quote_hint(value: object) -> str:
    """For a scalar YAML read as something else (``title: 1984``): how to keep it as text.

    Not converted silently: ``3.10`` reads as 3.1 and ``0o17`` as 15, so only the author
    knows what was meant."""
    if isinstance(value, bool | int | float | date):
        return " (put it in quotes to keep it as text)"
    return ""


def _text(value: object) -> str | None:
    """Clean one-line text, or None when ``value`` is not text."""
    if not isinstance(value, str):
        return None
    return value if _clean_line(value) else one_line(value)


def _clean_line(text: str) -> bool:
    """Whether ``one_line`` would leave ``text`` as it is (most titles and excerpts:
    checking is cheaper than cleaning). A printable string holds no whitespace but the
    space and none of the characters ``xml_safe`` drops (all are controls, surrogates or
    unassigned); what else is not printable (such as U+00A0) is cleaned, to the same text."""
    return text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "


def _number(value: object) -> float | None:
    """A finite number; numeric strings such as "85" are taken, words and booleans are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        if not _NUMBER.fullmatch(value.strip()):
            return None
        number = float(value.strip())
    else:
        return None
    return number if math.isfinite(number) else None


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring = 2, 4, 4, 40


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean"}.get(type(value))
    text = _SHORT.repr(value) if isinstance(value, list | dict) else repr(value)  # alias bombs
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind or type(value).__name__} {text}"


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 2}, column {mark.column + 1}: " if mark is not None else ""
    unknown = _UNKNOWN_TAG.fullmatch(problem)
    if unknown is not None:  # !!python/object and friends: what the safe loader refuses
        tag = unknown[1].replace("tag:yaml.org,2002:", "!!")
        return f"{where}the tag {tag} is not allowed (only plain YAML values are read)"
    return f"not valid YAML ({where}{problem})"


_UNKNOWN_TAG = re.compile(r"could not determine a constructor for the tag '([^']*)'")

"""Topic names -> file-name slugs: lowercase ASCII, digits and hyphens, never empty, never clashing.

Slugs are a public contract (readers subscribe to ``<slug>.rss.xml``), so a topic's slug
depends only on its own name wherever possible: symbols are spelt out (C++ -> c-plus-plus,
C# -> c-sharp), accents are folded, other scripts are Punycode-encoded. Only when two
names still give the same slug do the later ones (in sorted order) get a short hash of
their exact name appended.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

RESERVED = frozenset({"all", "index", "digest"})
MAX_LENGTH = 60
_SYMBOLS = {"+": " plus ", "#": " sharp ", "&": " and ", "@": " at ", "%": " percent "}
# Letters that accent folding would lose although they have a usual Latin spelling.
_LETTERS = {
    "ß": "ss",
    "æ": "ae",
    "Æ": "AE",
    "ø": "o",
    "Ø": "O",
    "œ": "oe",
    "Œ": "OE",
    "đ": "d",
    "Đ": "D",
    "ł": "l",
    "Ł": "L",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """The base slug of one topic name; may clash with another name's, see ``assign_slugs``."""
    text = "".join(
        _SYMBOLS.get(ch) or _LETTERS.get(ch) or ch for ch in unicodedata.normalize("NFKC", name)
    )
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", folded.lower()).strip("-")
    rest = "".join(ch for ch in text if not ch.isascii() and ch.isalnum() and not _folds(ch))
    if rest:
        encoded = rest.lower().encode("punycode").decode("ascii")
        slug = "-".join(part for part in (slug, "xn", _NOT_SLUG.sub("-", encoded)) if part)
    slug = slug.strip("-") or "topic"
    if len(slug) > MAX_LENGTH:
        slug = slug[:MAX_LENGTH].rstrip("-")
    return slug


def assign_slugs(names: Iterable[str]) -> dict[str, str]:
    """A distinct, deterministic slug for every topic name."""
    taken: set[str] = set(RESERVED)
    slugs: dict[str, str] = {}
    for name in sorted(set(names)):
        base = slug = slugify(name)
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        while slug in taken:
            # A hash of the exact name; rehashed in the (astronomically rare) case it is taken.
            slug = f"{base}-{digest[:8]}"
            digest = hashlib.sha256(digest.encode()).hexdigest()
        taken.add(slug)
        slugs[name] = slug
    return slugs


def _folds(ch: str) -> bool:
    """Whether accent folding keeps something of ``ch`` (é -> e); CJK and the like do not."""
    return bool(unicodedata.normalize("NFKD", ch).encode("ascii", "ignore"))

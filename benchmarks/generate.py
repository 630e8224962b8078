"""Deterministic synthetic article documents in the exact format of ``seeds/*.txt``.

Each article is a pure function of ``(seed, index)``, so a corpus of 1,000 is the first
1,000 documents of a corpus of 100,000, and one article can be regenerated (or edited)
on its own. Sizes, topics, dates, quality, images, related entries, non-ASCII text and
the ``secured`` blob follow the real documents: 3-5 KB each, ~40 topics.

    python benchmarks/generate.py benchmarks/corpus/10000 --count 10000
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

# ~40 topics with a long tail, including names that need slug care and non-ASCII ones.
TOPICS = [
    "AI", "Security", "Science", "Programming", "Economy", "AI Hardware", "Sports",
    "Space", "Open Source", "Health", "Climate", "C", "C++", "C#", "Économie numérique",
    "Politics", "Energy", "Mobile", "Cloud", "Databases", "Rust", "Python", "Go",
    "Linux", "Privacy", "Robotics", "Semiconductors", "Startups", "Education", "Biotech",
    "Transport", "Gaming", "Retail", "Media", "Finance", "Quantum", "Networking",
    "人工知能", "Santé publique", "Astronomy",
]  # fmt: skip
PROVIDERS = [
    ("Ars Technica", "arstechnica.com"), ("Reuters", "reuters.com"),
    ("The Guardian", "theguardian.com"), ("Le Monde", "lemonde.fr"),
    ("Nikkei Asia", "nikkei.com"), ("Global Times", "globaltimes.cn"),
    ("Space.com", "space.com"), ("Hackaday", "hackaday.com"), ("BBC", "bbc.co.uk"),
    ("Der Spiegel", "spiegel.de"), ("El País", "elpais.com"), ("NASA", "nasa.gov"),
    ("Digi Times", "digitimes.com"), ("The Verge", "theverge.com"), ("Wired", "wired.com"),
    ("Heise", "heise.de"), ("LWN", "lwn.net"), ("Nature", "nature.com"),
    ("Süddeutsche Zeitung", "sueddeutsche.de"), ("Asahi Shimbun", "asahi.com"),
    ("Pakistan Today", "pakistantoday.com.pk"), ("TechCrunch", "techcrunch.com"),
    ("Financial Times", "ft.com"), ("Bloomberg", "bloomberg.com"),
]  # fmt: skip
WORDS = [
    "chip",
    "market",
    "launch",
    "model",
    "data",
    "network",
    "energy",
    "policy",
    "study",
    "report",
    "update",
    "release",
    "court",
    "ruling",
    "vote",
    "budget",
    "growth",
    "risk",
    "deal",
    "team",
    "season",
    "record",
    "mission",
    "orbit",
    "test",
    "patch",
    "kernel",
    "compiler",
    "language",
    "cloud",
    "storage",
    "privacy",
    "breach",
    "flaw",
    "fix",
    "agency",
    "plan",
    "global",
    "local",
    "rival",
    "record",
    "new",
    "first",
    "major",
    "early",
    "late",
    "fast",
    "slow",
    "open",
    "closed",
    "public",
    "private",
    "research",
    "lab",
    "engineers",
    "users",
    "developers",
    "investors",
    "regulators",
    "officials",
    "sales",
    "profit",
    "loss",
    "shares",
    "rally",
    "slump",
    "rules",
    "limits",
    "goals",
    "targets",
    "trial",
    "results",
]
ACCENTED = [
    "café",
    "Zürich",
    "naïve",
    "São",
    "Paulo",
    "Kraków",
    "Malmö",
    "Ærø",
    "façade",
    "déjà-vu",
    "Łódź",
]
CJK = ["東京", "人工知能", "半導体", "北京", "量子"]
END = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
SPAN_MINUTES = 2 * 365 * 24 * 60


def _topic_weights() -> list[float]:
    return [1 / (rank + 1) ** 0.8 for rank in range(len(TOPICS))]


_WEIGHTS = _topic_weights()


def _sentence(rng: random.Random, low: int, high: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(low, high))
    if rng.random() < 0.08:
        words.insert(rng.randrange(len(words)), rng.choice(ACCENTED))
    if rng.random() < 0.02:
        words.insert(rng.randrange(len(words)), rng.choice(CJK))
    text = " ".join(words)
    return text[0].upper() + text[1:]


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (our text never holds control characters)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _slug(text: str) -> str:
    return "-".join(text.lower().split()[:8]).encode("ascii", "ignore").decode() or "story"


def _image(rng: random.Random, domain: str, key: str, indent: str) -> list[str]:
    width = rng.choice([500, 640, 800, 1200, 1260])
    return [
        f'{indent}- url: "https://cdn.{domain}/images/2026/{key}-{rng.randrange(10**6)}.jpg"',
        f"{indent}  width: {width}",
        f"{indent}  height: {width * 9 // 16}",
        f"{indent}  isCached: {rng.choice(['true', 'false'])}",
    ]


def article_name(index: int, seed: int = 1) -> str:
    """The document's file name, under a year-month folder like the real seeds."""
    rng = random.Random(f"name:{seed}:{index}")
    moment = _moment(seed, index)
    return f"{moment:%Y-%m}/{index:06d}_{rng.getrandbits(64):016x}.txt"


FRESH = 10_000_000  # documents numbered from here on are news: newer than the whole corpus


def _moment(seed: int, index: int) -> datetime:
    if index >= FRESH:
        return END + timedelta(minutes=index - FRESH + 1)
    rng = random.Random(f"date:{seed}:{index}")
    return END - timedelta(minutes=rng.randrange(SPAN_MINUTES))


def newest(count: int, how_many: int, seed: int = 1) -> list[int]:
    """The numbers of the ``how_many`` newest documents of a corpus of ``count``."""
    return sorted(range(count), key=lambda index: _moment(seed, index), reverse=True)[:how_many]


def _story(seed: int, index: int) -> tuple[str, str, str]:
    """Provider name, domain and URL of a story: the story's identity, kept across edits."""
    rng = random.Random(f"story:{seed}:{index}")
    name, domain = rng.choice(PROVIDERS)
    moment = _moment(seed, index)
    slug = "-".join(rng.choices(WORDS, k=rng.randint(4, 8)))
    return name, domain, f"https://www.{domain}/{moment:%Y/%m}/{slug}-{index}.html"


def article_text(index: int, seed: int = 1, revision: int = 0) -> str:
    """One document; ``revision`` > 0 gives an edited version (title, excerpt, quality)."""
    rng = random.Random(f"article:{seed}:{index}")
    edit = random.Random(f"edit:{seed}:{index}:{revision}")
    moment = _moment(seed, index)
    name, domain, url = _story(seed, index)
    if index and rng.random() < 0.01:  # one story twice (tracking parameter): selection dedupes
        name, domain, url = _story(seed, index - 1)
        url += "?utm_source=rss"
    title = _sentence(rng, 6, 12)
    excerpt = " ".join(_sentence(rng, 10, 18) + "." for _ in range(2))
    if revision:
        title = f"{title} (updated {revision})"
        excerpt = _sentence(edit, 12, 20) + ". " + excerpt
    topics = list(dict.fromkeys(rng.choices(TOPICS, weights=_WEIGHTS, k=rng.randint(1, 3))))
    quality = rng.randint(15, 99)
    if revision:  # drawn from its own stream: the rest of the document stays as it was
        quality = edit.randint(15, 99)
    lines = [
        "---",
        f"category: {rng.choice(['news', 'news', 'news', 'blog'])}",
        f"title: {_quoted(title)}",
        f"excerpt: {_quoted(excerpt)}",
        f"publishedDateTime: {_stamp(moment)}",
        f'originalUrl: "{url}"',
        f'webUrl: "{url}"',
        "type: article",
        f"quality: {quality}",
        f"heat: {rng.randint(0, 100)}",
        f"published: {'true' if rng.random() < 0.85 else 'false'}",
        "",
        "provider:",
        f"  name: {name}",
        f"  domain: {domain}",
        "",
        "topics:",
        *(f"  - {_quoted(topic)}" for topic in topics),
        "",
    ]
    if rng.random() < 0.9:
        lines.append("images:")
        for number in range(rng.choice([1, 1, 1, 2])):
            lines += _image(rng, domain, f"{index}-{number}", "  ")
        lines.append("")
    lines.append("related:")
    for number in range(rng.randint(2, 4)):
        other_name, other_domain = rng.choice(PROVIDERS)
        other_title = _sentence(rng, 6, 12)
        when = moment + timedelta(minutes=rng.randint(-3000, 3000))
        lines += [
            f"  - title: {_quoted(other_title)}",
            f"    excerpt: {_quoted(_sentence(rng, 18, 34) + '.')}",
            f"    publishedDateTime: {_stamp(when)}",
            f'    webUrl: "https://{other_domain}/{when:%Y/%m}/{_slug(other_title)}-{index}-{number}"',
            "    type: article",
            "    provider:",
            f"      name: {other_name}",
            f"      domain: {other_domain}",
            f"    quality: {rng.randint(20, 90)}",
        ]
        if rng.random() < 0.5:
            lines.append("    images:")
            lines += _image(rng, other_domain, f"{index}-r{number}", "      ")
    secret = base64.b64encode(rng.randbytes(rng.randint(380, 520))).decode()
    salt = base64.b64encode(rng.randbytes(16)).decode()
    lines += ["", f'secured: "{secret};{salt}"', "---", ""]
    if rng.random() < 0.3:
        for _ in range(rng.randint(1, 3)):
            lines += [" ".join(_sentence(rng, 12, 24) + "." for _ in range(3)), ""]
    return "\n".join(lines)


def write_article(folder: Path, index: int, seed: int = 1, revision: int = 0) -> Path:
    """Write (or rewrite) one document; returns its path."""
    path = folder / article_name(index, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(article_text(index, seed, revision), encoding="utf-8")
    return path


def generate(folder: Path, count: int, seed: int = 1) -> int:
    """Write documents 0..count-1 into ``folder``; returns the bytes written."""
    total = 0
    for index in range(count):
        total += write_article(folder, index, seed).stat().st_size
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    size = generate(args.folder, args.count, args.seed)
    print(f"{args.count} documents, {size / args.count:.0f} bytes on average, in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

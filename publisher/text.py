"""Text that every output format can carry: XML 1.0 and e-mail refuse some characters."""

from __future__ import annotations

import re
import reprlib

# XML 1.0 allows tab, LF, CR and everything from U+0020 except surrogates, U+FFFE and U+FFFF.
# DEL and the C1 controls (but NEL, a line break) go too: HTML refuses them, and its parsers
# turn them into other characters (U+0091 into a quotation mark), so no text would survive.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def xml_safe(text: str) -> str:
    """Drop the characters XML 1.0 and HTML cannot carry (control characters, lone surrogates)."""
    # Every such character is one str.isprintable refuses (a control, a surrogate or
    # unassigned), and most texts are one printable line: checking is quicker than a
    # substitution that finds nothing.
    return text if text.isprintable() else _XML_ILLEGAL.sub("", text)


def one_line(text: str) -> str:
    """Collapse all whitespace to single spaces: titles and excerpts are one line."""
    return _SPACES.sub(" ", xml_safe(text)).strip()


def shorten(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut ``text`` to at most ``limit`` characters at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ellipsis), 0)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + ellipsis


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 2
_SHORT_REPR.maxstring = 40
_SHORT_REPR.maxother = 40
_SHORT_REPR.maxlist = _SHORT_REPR.maxdict = _SHORT_REPR.maxtuple = 4


def describe(value: object) -> str:
    """A short description of an untrusted value for an error message.

    Bounded in time and size whatever the value: an alias bomb is never expanded.
    """
    if value is None:
        return "nothing (null)"
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean"}.get(type(value))
    return f"{kind or type(value).__name__} {one_line(_SHORT_REPR.repr(value))}"


def printable(text: str) -> str:
    """``text`` with control characters escaped, so a message stays on one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)

"""Elasticsearch's matching semantics per field type, shared by the Lucene, EQL and ES|QL runners.

A document here is what the index holds for one event: field -> list of values,
each converted the way its mapping indexes it (``keyword`` and ``wildcard`` keep
the string as is and match case-sensitively; ``text`` / ``match_only_text`` are
split into lower-cased tokens by the standard analyser; ``long``/``ip``/
``boolean`` are parsed, and a value that does not parse is not indexed). A query
form a type does not accept (a wildcard on an ``ip`` field, a word on a ``long``)
raises :class:`Rejected`: Elasticsearch refuses the whole query, so the rule
never fires there.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from typing import Any

from translator.engine.sigma_eval import NotEvaluable
from translator.events.elastic import NUMBERS, STRINGS, TEXTS, Doc, FieldType, index_value, number_of

__all__ = ["NUMBERS", "STRINGS", "TEXTS", "Doc", "FieldType", "Rejected", "index_value"]


class Rejected(Exception):
    """Elasticsearch refuses the query on these mappings (it returns an error, not hits)."""


# how a text field's analyser splits values into words (then lower-cased): the standard analyser,
# near enough for matching (Unicode word runs joined across a single '.', ':' or "'" between word
# characters, UAX #29's mid-letter rules), and the Windows integration's script-block analyser (a
# pattern analyser splitting at every character that is neither an ASCII word character nor '-')
TOKENIZERS = {
    "standard": re.compile(r"\w+(?:[.:'’]\w+)*"),
    "powershell_script": re.compile(r"[A-Za-z0-9_-]+"),
}


@cache
def tokens(text: str, analyzer: str = "standard") -> tuple[str, ...]:
    """``text`` as the field's analyser indexes it."""
    return tuple(t.lower() for t in TOKENIZERS[analyzer].findall(text))


@cache
def wildcard_regex(pattern: str, escapes: bool = True, flags: int = 0) -> re.Pattern[str]:
    """A ``*``/``?`` wildcard pattern (``\\`` escaping the next character when ``escapes``) as a
    regex matched against the whole value."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\" and escapes:
            out.append(re.escape(next(chars, "\\")))
        elif c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL | flags)


@cache
def unescape(text: str) -> str:
    """A query-string term without its backslash escapes."""
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


@cache
def has_wildcard(term: str) -> bool:
    """Whether an (escaped) query-string term holds an unescaped ``*`` or ``?``."""
    return re.search(r"(?<!\\)(?:\\\\)*[*?]", term) is not None


_CLASS_ESCAPES = set("dDsSwW")


@cache
def lucene_regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Lucene's regular expression syntax (ES ``regexp``, query-string ``/.../``, EQL ``regex``,
    ES|QL ``rlike``) as a Python regex for ``fullmatch``.

    Lucene has no anchors (``^`` and ``$`` are plain characters), no ``(?...)`` groups and no
    lazy quantifiers; ``@`` is any string, ``#`` the empty language and ``"..."`` a literal. The
    ``~``, ``&`` and ``<n-m>`` operators are not modelled (NotEvaluable).
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1] if i + 1 < n else "\\"
            out.append("\\" + nxt if nxt in _CLASS_ESCAPES else re.escape(nxt))
            i += 2
            continue
        if c == "[":
            end, body = _lucene_class(pattern, i)
            out.append(body)
            i = end
            continue
        if c == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                raise Rejected(f"unterminated string in regex /{pattern}/")
            out.append(re.escape(pattern[i + 1 : end]))
            i = end + 1
            continue
        if c == "(" and pattern.startswith("(?", i):
            raise Rejected(f"Lucene regex has no (?...) groups: /{pattern}/")
        if c in "*+?" and (not out or out[-1] in ("(", "|")):
            raise Rejected(f"nothing to repeat in regex /{pattern}/")
        if c in "*+?" and i + 1 < n and pattern[i + 1] in "?+" and c != "?":
            raise Rejected(f"Lucene regex has no lazy or possessive quantifiers: /{pattern}/")
        if c == "{":
            end = pattern.find("}", i)
            if end < 0 or not re.fullmatch(r"\d+(,\d*)?", pattern[i + 1 : end]):
                raise Rejected(f"bad repeat in regex /{pattern}/")
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        if c in ".*+?|()":
            out.append(c)
        elif c == "@":
            out.append(".*")
        elif c == "#":
            out.append("(?!)")
        elif c in "~&<":
            raise NotEvaluable(f"Lucene regex operator {c!r} is not modelled: /{pattern}/")
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out), re.DOTALL | flags)
    except re.error as exc:
        raise Rejected(f"bad regex /{pattern}/: {exc}") from None


def _lucene_class(pattern: str, start: int) -> tuple[int, str]:
    """A ``[...]`` class starting at ``start``: (index after it, Python class)."""
    i, out = start + 1, ["["]
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            out.append("]")
            return i + 1, "".join(out)
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\" + nxt if nxt in _CLASS_ESCAPES else re.escape(nxt))
            i += 2
        else:
            out.append(c if c == "-" else re.escape(c))
            i += 1
        first = False
    raise Rejected(f"unterminated character class in regex /{pattern}/")


def in_network(value: Any, network: str) -> bool:
    """Whether an indexed ip value lies in ``network`` (CIDR or a single address)."""
    try:
        net = ipaddress.ip_network(network, strict=False)
    except ValueError:
        raise Rejected(f"not an IP network: {network!r}") from None
    return (
        isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address)
        and value.version == net.version
        and value in net
    )


def as_number(term: str, name: str) -> int | float:
    """A query term for a numeric field; Elasticsearch refuses one that is not a number."""
    number = number_of(term)
    if number is None:
        raise Rejected(f"{name} is numeric and {term!r} is not a number")
    return number

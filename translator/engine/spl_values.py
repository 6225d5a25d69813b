"""Splunk's value semantics, shared by the search and eval halves of the SPL executor.

Search terms (``f=v`` in ``search`` and ``tstats where``) compare
case-insensitively with ``*`` wildcards; eval comparisons (``where f=="v"``) are
case-sensitive; both treat text that reads as a number as a number. A field
holding a list is multivalued: a test holds when it holds for one value.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

from translator.engine.regexes import SafeRegex, compile_safe
from translator.sigma.detection import CIDR, splunk_match
from translator.spl.values import as_number


def values_of(value: Any) -> list[Any]:
    """The values of a field: [] when absent, the list for a multivalue field."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if v is not None]
    return [value]


def text(value: Any) -> str:
    """A value as Splunk prints it (integral floats without ``.0``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@lru_cache(maxsize=1024)
def _network(pattern: str) -> Any:
    return ipaddress.ip_network(pattern, strict=False)


def search_equals(value: Any, pattern: str) -> bool:
    """``f=pattern`` in a search, for one value of ``f`` (a CIDR pattern matches the IPs in it)."""
    if CIDR.match(pattern):
        try:
            return ipaddress.ip_address(text(value).strip()) in _network(pattern)
        except ValueError:
            return False
    if "*" not in pattern:
        a, b = as_number(value), as_number(pattern)
        if a is not None and b is not None:
            return a == b
        return text(value).lower() == pattern.lower()
    return splunk_match(text(value), pattern)


def search_compare(value: Any, op: str, pattern: str) -> bool:
    """``f<v``-style search comparisons: numeric when both sides are numbers, else by text."""
    a, b = as_number(value), as_number(pattern)
    if a is not None and b is not None:
        return _ORDER[op](a, b)
    return _ORDER[op](text(value).lower(), pattern.lower())


_ORDER = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def eval_compare(left: Any, op: str, right: Any) -> bool | None:
    """An eval comparison (``== != < > <= >=``); None when a side is null. Case-sensitive text."""
    if left is None or right is None:
        return None
    a, b = as_number(left), as_number(right)
    if a is not None and b is not None:
        x: Any = a
        y: Any = b
    else:
        x, y = text(left), text(right)
    if op in ("=", "=="):
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    return bool(_ORDER[op](x, y))


@lru_cache(maxsize=4096)
def pcre(pattern: str) -> SafeRegex:
    """A PCRE pattern as Python's ``re`` syntax reads it: ``(?<n>`` is ``(?P<n>``, ``\\x{202E}`` is
    ``\\u202e``; compiled so that no match can hang (see :mod:`translator.engine.regexes`).

    Raises ValueError for what cannot be read.
    """
    python = re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)
    python = re.sub(r"\\x\{([0-9A-Fa-f]{1,8})\}", lambda m: f"\\U{int(m.group(1), 16):08x}", python)
    try:
        return compile_safe(python)
    except ValueError:
        raise ValueError(f"regular expression {pattern!r} is not valid") from None

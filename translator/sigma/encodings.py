"""Tests on a field the search decodes from hex (auditd's PROCTITLE), said on the encoded field.

auditd writes a process title as hex when it holds separators (NUL bytes between arguments).
ESCU's macro decodes it: where the field is all hex digits, NUL pairs become spaces (``replace``
"000" -> "020", then "00" -> "20") and the pairs are URL-decoded; otherwise the field is used as
it is (:class:`translator.sigma.lineage.HexText`). A test on the decoded text — contains, starts or
ends with, equals, with or without case — is exactly: the field is not all hex and passes the test
as it is, or it is all hex and its byte pairs, counted from the start, hold the value's bytes (a
space as 20 or 00). Sigma says the second with a regular expression over the hex. Values of
printable ASCII only; where the replacement steps could change the value's bytes (a last byte
ending in 0 next to a control byte) the regular expression excludes those neighbours, and a value
with a space at either end or two spaces in a row (NUL runs are not all turned into spaces) is not
rewritten. A property test checks all of this against the SPL executor on generated titles.
"""

from __future__ import annotations

from translator.sigma.detection import Item, Node, make_and, make_not, make_or, sigma_escape
from translator.sigma.lineage import HexText

ALL_HEX = "^[0-9A-F]+$"
_PAIRS = "(?:[0-9A-F]{2})*"
_SHAPES = ("equals", "contains", "startswith", "endswith")


def decoded_test(sigma_field: str, text: HexText, shape: str, value: str, cased: bool) -> Node | None:
    """The events whose decoded ``text`` passes ``shape`` with ``value`` (None: not said exactly)."""
    if shape not in _SHAPES or not text.decoded or not value or not all(" " <= c <= "~" for c in value):
        return None
    if text.spaces and ("  " in value or value[0] == " "):
        return None  # runs of NULs, and a NUL before the value, are not always spaces
    if text.spaces and value[-1] == " " and (len(value) < 2 or ord(value[-2]) % 16 == 0):
        return None  # a last NUL after a byte ending in 0 may join a run
    if value[-1] == "0" and len(value) > 1 and ord(value[-2]) % 16 == 0:
        return None  # an odd last digit 0 after a byte ending in 0 may join a run
    mods = (() if shape == "equals" else (shape,)) + (("cased",) if cased else ())
    plain = make_and(
        [make_not(Item(sigma_field, ("re",), (ALL_HEX,))), Item(sigma_field, mods, (sigma_escape(value),))]
    )
    return make_or([plain, *(Item(sigma_field, ("re",), (r,)) for r in _hex_patterns(text, shape, value, cased))])


def _hex_patterns(text: HexText, shape: str, value: str, cased: bool) -> list[str]:
    """Regexes over the raw hex: the value's pairs at an even offset (an odd final digit is the
    decoded text's last character as it is)."""
    head = "^" if shape in ("equals", "startswith") else "^" + _PAIRS
    # a last byte ending in 0 (p, space, @, ...) next to a pair 0X would be changed by "00" -> "20"
    zero_end = ord(value[-1]) % 16 == 0
    rest = "(?:(?:00|[1-9A-F][0-9A-F])[0-9A-F]*|[1-9A-F])?$" if zero_end else "[0-9A-F]*$"
    if value[-1] == " " and text.spaces:
        # a last space: 20, or a NUL that no further 0 digit follows (a longer run is garbled)
        prior = "".join(_byte(c, text.spaces, cased) for c in value[:-1])
        end = "(?:20|00)$" if shape in ("equals", "endswith") else "(?:20" + rest[:-1] + "|00(?:[1-9A-F][0-9A-F]*)?)$"
        return [head + prior + end]
    body = "".join(_byte(c, text.spaces, cased) for c in value)
    tail = "$" if shape in ("equals", "endswith") else rest
    out = [head + body + tail]
    last = value[-1]
    if last in "0123456789ABCDEF" or (not cased and last in "abcdef"):
        # an odd number of digits: the last one is not a pair and stays a character
        final = f"[{last.upper()}]" if not cased else last
        prior = "".join(_byte(c, text.spaces, cased) for c in value[:-1])
        if shape in ("equals", "startswith"):
            out.append("^" + prior + final + "$")
        else:
            out.append("^" + _PAIRS + prior + final + "$")
    return out


def _byte(c: str, spaces: bool, cased: bool) -> str:
    if c == " " and spaces:
        return "(?:20|00)"
    if c.isalpha() and not cased:
        return f"(?:{ord(c.upper()):02X}|{ord(c.lower()):02X})"
    return f"{ord(c):02X}"


def like_shape(pattern: str) -> tuple[str, str] | None:
    """A ``like`` pattern as (shape, value): ``%v%`` contains, ``v%`` startswith, ``%v``, ``v``."""
    return _shape(pattern, "%", "_")


def search_shape(pattern: str) -> tuple[str, str] | None:
    """A search value as (shape, value): ``*v*``, ``v*``, ``*v``, ``v``."""
    return _shape(pattern, "*", "?")


def _shape(pattern: str, many: str, one: str) -> tuple[str, str] | None:
    lead, trail = pattern.startswith(many), pattern.endswith(many) and len(pattern) > 1
    inner = pattern[1 if lead else 0 : len(pattern) - (1 if trail else 0)]
    if not inner or many in inner or one in inner or "\\" in inner:
        return None
    shape = "contains" if lead and trail else "startswith" if trail else "endswith" if lead else "equals"
    return shape, inner

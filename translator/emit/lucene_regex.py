"""Sigma's string and PCRE values as Lucene regular expressions (used by Lucene, EQL and ES|QL).

Elasticsearch's regular expressions match the whole value, have no ``(?i)``, ``(?:``,
anchors or lazy quantifiers, and read a few characters as operators; Sigma's are PCRE,
searched anywhere in the value, and its plain values compare without case. These
functions write one as the other from Python's parse of the pattern; what Lucene
cannot say (look-arounds, word boundaries, back-references) raises ``ValueError``.
"""

from __future__ import annotations

import re
import re._constants as sre_c  # the parse tree of Python's own regex parser
import re._parser as sre_parse
from typing import Any

from sigma.types import SigmaString

from translator.sigma.rule import render

LUCENE_RESERVED = set('.?+*|{}[]()"\\#@&<>~')


def _letter(c: str) -> str:
    if c.lower() != c.upper() and len(c.lower()) == 1 and len(c.upper()) == 1:
        return f"[{c.lower()}{c.upper()}]"
    return _lit(c)


def _lit(c: str) -> str:
    return "\\" + c if c in LUCENE_RESERVED else c


def caseless_regex(value: SigmaString, cased: bool = False) -> str:
    """A Sigma string (``*``/``?`` wildcards) as a whole-value Lucene regex that ignores case
    (``cased``: that keeps it)."""
    char = _lit if cased else _letter
    return render(value.s, ".*", ".", lambda text: "".join(map(char, text)))


# ---- PCRE (Sigma |re) -> Lucene regular expressions ----

# Lucene (8.6 on) reads Perl's class escapes itself, inside classes too
_CATEGORIES = {sre_c.CATEGORY_DIGIT: r"\d", sre_c.CATEGORY_WORD: r"\w", sre_c.CATEGORY_SPACE: r"\s"}
_NOT_CATEGORIES = {sre_c.CATEGORY_NOT_DIGIT: r"\D", sre_c.CATEGORY_NOT_WORD: r"\W", sre_c.CATEGORY_NOT_SPACE: r"\S"}


def lucene_regex(pattern: str, nocase: bool = False) -> str:
    """A Sigma regular expression (searched anywhere in the value) as the Lucene regex that matches
    the same whole values. ValueError when Lucene cannot express it."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise ValueError(f"the regular expression does not parse: {exc}") from None
    flags = tree.state.flags
    nocase = nocase or bool(flags & re.IGNORECASE)
    if flags & re.MULTILINE:
        raise ValueError("a multi-line regular expression cannot be written for Lucene")
    return _search(list(tree), True, True, nocase)


def _is_group(item: Any) -> bool:
    return item[0] is sre_c.BRANCH or item[0] is sre_c.SUBPATTERN


def _search(items: list[Any], lead: bool, trail: bool, nocase: bool) -> str:
    """``items`` searched for: a leading ``.*`` unless a ``^`` anchors them (``lead``), a trailing
    one unless a ``$`` does (``trail``); anchors at the edges of a group are pushed into it."""
    if items and items[0] == (sre_c.AT, sre_c.AT_BEGINNING):
        lead, items = False, items[1:]
    if items and items[-1][0] is sre_c.AT and items[-1][1] in (sre_c.AT_END, sre_c.AT_END_STRING):
        trail, items = False, items[:-1]
    if not items:
        return ".*" if lead or trail else "()"
    if len(items) == 1 and items[0][0] is sre_c.BRANCH:
        return "(" + "|".join(_search(list(b), lead, trail, nocase) for b in items[0][1][1]) + ")"
    if len(items) == 1 and items[0][0] is sre_c.SUBPATTERN:
        _group, add, remove, sub = items[0][1]
        nocase = (nocase or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
        return "(" + _search(list(sub), lead, trail, nocase) + ")"
    out = ""
    if _is_group(items[0]):
        out, items = _search(items[:1], lead, False, nocase), items[1:]
    elif lead:
        out = ".*"
    if items and _is_group(items[-1]) and len(items) > 1:
        return out + _seq(items[:-1], nocase) + _search(items[-1:], False, trail, nocase)
    if items and _is_group(items[-1]) and not out:
        return _search(items, False, trail, nocase)
    return out + _seq(items, nocase) + (".*" if trail else "")


def _seq(items: Any, nocase: bool) -> str:
    return "".join(_node(op, av, nocase) for op, av in items)


def _node(op: Any, av: Any, nocase: bool) -> str:
    if op is sre_c.LITERAL:
        c = chr(av)
        return _letter(c) if nocase else _lit(c)
    if op is sre_c.NOT_LITERAL:
        return "[^" + _class_chars([(sre_c.LITERAL, av)], nocase) + "]"
    if op is sre_c.ANY:
        return "."
    if op is sre_c.IN:
        negate = bool(av) and av[0][0] is sre_c.NEGATE
        body = av[1:] if negate else av
        if len(body) == 1 and body[0][0] is sre_c.CATEGORY and not negate:
            return _CATEGORIES.get(body[0][1]) or _NOT_CATEGORIES[body[0][1]]
        return ("[^" if negate else "[") + _class_chars(body, nocase) + "]"
    if op is sre_c.BRANCH:
        return "(" + "|".join(_seq(b, nocase) for b in av[1]) + ")"
    if op is sre_c.SUBPATTERN:
        _group, add, remove, sub = av
        if add & re.IGNORECASE:
            nocase = True
        if remove & re.IGNORECASE:
            nocase = False
        return "(" + _seq(sub, nocase) + ")"
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        lo, hi, sub = av  # lazy or greedy: the same values match
        inner = _seq(sub, nocase)
        atoms = (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.ANY, sre_c.IN, sre_c.CATEGORY, sre_c.SUBPATTERN)
        if not (len(sub) == 1 and sub[0][0] in atoms):
            inner = f"({inner})"
        if (lo, hi) == (0, sre_c.MAXREPEAT):
            return inner + "*"
        if (lo, hi) == (1, sre_c.MAXREPEAT):
            return inner + "+"
        if (lo, hi) == (0, 1):
            return inner + "?"
        return (
            inner + "{" + str(lo) + ("," if hi != lo else "") + ("" if hi in (lo, sre_c.MAXREPEAT) else str(hi)) + "}"
        )
    if op is sre_c.CATEGORY and (av in _CATEGORIES or av in _NOT_CATEGORIES):
        return _CATEGORIES.get(av) or _NOT_CATEGORIES[av]
    if op is sre_c.AT:
        raise ValueError("an anchor or word boundary inside the pattern cannot be written for Lucene")
    if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
        raise ValueError("Lucene regular expressions have no look-around")
    if op is sre_c.GROUPREF:
        raise ValueError("Lucene regular expressions have no back-references")
    raise ValueError(f"regex construct {op} cannot be written for Lucene")


def _class_chars(items: Any, nocase: bool) -> str:
    out = []
    for op, av in items:
        if op is sre_c.LITERAL:
            c = chr(av)
            out.append(_class_lit(c))
            if nocase and c.lower() != c.upper():
                out.append(_class_lit(c.swapcase()))
        elif op is sre_c.RANGE:
            lo, hi = chr(av[0]), chr(av[1])
            out.append(f"{_class_lit(lo)}-{_class_lit(hi)}")
            if nocase:
                for a, b in (("a", "z"), ("A", "Z")):
                    if lo <= b and hi >= a:  # the letters inside, in the other case
                        s, e = max(lo, a), min(hi, b)
                        out.append(f"{s.swapcase()}-{e.swapcase()}")
        elif op is sre_c.CATEGORY and (av in _CATEGORIES or av in _NOT_CATEGORIES):
            out.append(_CATEGORIES.get(av) or _NOT_CATEGORIES[av])
        else:
            raise ValueError(f"character class item {op} cannot be written for Lucene")
    return "".join(out)


def _class_lit(c: str) -> str:
    return "\\" + c if c in '[]\\^-"' else c

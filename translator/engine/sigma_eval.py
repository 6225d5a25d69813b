"""Sigma rules evaluated on flat events, with Sigma's matching semantics.

pySigma parses the rule and resolves its condition (selections, ``1 of``,
``all of``, ``|all``, modifiers) into one tree of AND / OR / NOT over
``field = value`` leaves; each leaf's value is already the modified Sigma type
(``|contains`` a wildcard string, ``|base64offset`` an expansion, ``|cidr`` a
network ...). This module compiles that tree once per rule into Python
closures and runs them per event.

Semantics: strings compare case-insensitively (``|cased`` is exact), ``*`` and
``?`` are wildcards, a multivalue field matches when any value does, ``null``
means absent (an empty value is present), ``|re`` searches (flags i, m, s), numbers compare as
numbers. Anything the compiler does not know raises :class:`NotEvaluable`, so a
rule never silently matches nothing.
"""

from __future__ import annotations

import ipaddress
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from translator.engine.regexes import compile_safe
from translator.sigma.rule import keyword_pattern, render

Flat = dict[str, Any]
Predicate = Callable[[Flat], bool]


class NotEvaluable(Exception):
    """The rule uses something this evaluator does not implement (reported for that rule)."""


@dataclass(frozen=True)
class CompiledRule:
    rule: SigmaRule
    matches: Predicate
    # necessary conditions, used to skip events the rule cannot match (None: no such condition)
    needs: frozenset[str] | None = None  # one of these fields must be present
    event_ids: frozenset[int] | None = None  # EventID must be one of these
    anchors: frozenset[Anchor] | None = None  # one of these must hold (see needed_anchors)


# a rule's condition tree built when it was read (evaluate._parse), so a cached rule needs no parse
TREE = "_translator_condition_tree"


def compile_rule(rule: SigmaRule) -> CompiledRule:
    conditions = rule.detection.parsed_condition
    if len(conditions) != 1:
        raise NotEvaluable("rules with several conditions are not evaluated")
    tree = rule.__dict__.get(TREE) or conditions[0].parse()
    return CompiledRule(rule, _compile(tree), needed_fields(tree), needed_event_ids(tree), needed_anchors(tree))


# an anchor: (field, "exact" | "basename", lower-cased text); it holds for an event when some value
# of the field, lower-cased, equals the text ("exact") or has it as its last \-separated part ("basename")
Anchor = tuple[str, str, str]


def anchor_keys(value: Any, kind: str) -> list[str]:
    """The texts an event value offers to anchors of ``kind`` (see :data:`Anchor`)."""
    values = value if type(value) is list else (value,)
    out = []
    for v in values:
        if v is None:
            continue
        t = (v if type(v) is str else _text(v)).lower()
        out.append(t.rpartition("\\")[2] if kind == "basename" else t)
    return out


def needed_anchors(node: Any) -> frozenset[Anchor] | None:
    """Anchors of which at least one must hold for ``node`` to hold (None: none can be named).

    Case-insensitive plain values give ``exact`` anchors; ``|endswith`` values holding a
    backslash (``\\cmd.exe``) give ``basename`` anchors. AND takes the child with the
    fewest anchors, OR the union of all children's (or None if one has none).
    """
    return _necessary(node, _anchor_leaf, _fewest)


def _anchor_leaf(node: ConditionFieldEqualsValueExpression) -> frozenset[Anchor] | None:
    value = node.value
    if not isinstance(value, SigmaString) or isinstance(value, SigmaCasedString):
        return None
    shape = string_shape(value)
    if shape is None:
        return None
    kind, text = shape
    if kind == "exact":
        return frozenset(((node.field, "exact", text.lower()),))
    if kind == "suffix" and "\\" in text:
        return frozenset(((node.field, "basename", text.rpartition("\\")[2].lower()),))
    return None


# -- necessary conditions ---------------------------------------------------------------------


def needed_fields(node: Any) -> frozenset[str] | None:
    """Fields of which at least one must be present for ``node`` to hold (None: no such set).

    A positive value test needs its field; AND needs what any one child needs (the
    smallest set is the sharpest filter); OR needs the union; NOT, null, keyword and
    field-reference tests need nothing that can be said cheaply.
    """
    return _necessary(node, _field_leaf, _fewest)


def _field_leaf(node: ConditionFieldEqualsValueExpression) -> frozenset[str] | None:
    if isinstance(node.value, SigmaNull | SigmaFieldReference):
        return None
    if isinstance(node.value, SigmaExists) and not node.value.exists:
        return None
    return frozenset((node.field,))


def needed_event_ids(node: Any) -> frozenset[int] | None:
    """The EventID values ``node`` can hold for, when its logic pins them (None: any).

    AND holds only for ids every pinning child allows (the intersection)."""
    return _necessary(node, _event_id_leaf, lambda sets: frozenset.intersection(*sets))


def _event_id_leaf(node: ConditionFieldEqualsValueExpression) -> frozenset[int] | None:
    if node.field == "EventID" and isinstance(node.value, SigmaNumber) and isinstance(node.value.number, int):
        return frozenset((node.value.number,))
    return None


def needed_values(node: Any, field: str) -> frozenset[str] | None:
    """The plain values of ``field`` (lower-cased) one of which ``node`` needs, when its logic pins
    them (None: any). The Elastic pipelines read a data stream's routing field this way."""

    def leaf(item: ConditionFieldEqualsValueExpression) -> frozenset[str] | None:
        value = item.value
        if item.field == field and isinstance(value, SigmaString) and not value.contains_special():
            return frozenset((value.to_plain().lower(),))
        return None

    return _necessary(node, leaf, lambda sets: frozenset.intersection(*sets))


def _fewest(sets: list[frozenset[Any]]) -> frozenset[Any]:
    return min(sets, key=len)


def _necessary(
    node: Any,
    leaf: Callable[[ConditionFieldEqualsValueExpression], frozenset[Any] | None],
    conjoin: Callable[[list[frozenset[Any]]], frozenset[Any]],
) -> frozenset[Any] | None:
    """A set one of whose members must hold for ``node`` to hold, or None when none can be named.

    ``leaf`` names it for one field test; AND combines the sets its children name with
    ``conjoin``; OR needs every child to name one and takes their union; NOT names nothing.
    """
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return leaf(node)
    if isinstance(node, ConditionAND):
        sets = [s for s in (_necessary(a, leaf, conjoin) for a in node.args) if s is not None]
        return conjoin(sets) if sets else None
    if isinstance(node, ConditionOR):
        union: set[Any] = set()
        for a in node.args:
            s = _necessary(a, leaf, conjoin)
            if s is None:
                return None
            union |= s
        return frozenset(union)
    return None


def _compile(node: Any) -> Predicate:
    if isinstance(node, ConditionAND):
        # cheap tests first: AND has no side effects, and a failed string test spares a regex
        parts = [_compile(a) for a in sorted(node.args, key=_cost)]
        return lambda e: all(p(e) for p in parts)
    if isinstance(node, ConditionOR):
        parts = _compile_or(node.args)
        if len(parts) == 1:
            return parts[0]
        return lambda e: any(p(e) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = _compile(node.args[0])
        return lambda e: not inner(e)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_test(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return _keyword_test(node.value)
    raise NotEvaluable(f"condition element {type(node).__name__} is not evaluated")


def _cost(node: Any) -> int:
    """A rough cost of testing ``node``, to order AND's children."""
    if isinstance(node, ConditionAND | ConditionOR):
        return sum(_cost(a) for a in node.args)
    if isinstance(node, ConditionNOT):
        return _cost(node.args[0])
    if isinstance(node, ConditionValueExpression):
        return 50  # a keyword looks at every field
    value = getattr(node, "value", None)
    if isinstance(value, SigmaRegularExpression):
        return 10
    if isinstance(value, SigmaString):
        return 1 if string_shape(value) is not None else 3
    return 2


def _compile_or(args: list[Any]) -> list[Predicate]:
    """ORed children; plain string tests on one field (``Image|endswith: [a, b, c]``) become one test."""
    groups: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    rest: list[Predicate] = []
    for a in args:
        shape = _leaf_shape(a)
        if shape is None:
            rest.append(_compile(a))
        else:
            field_name, cased, kind, text = shape
            groups.setdefault((field_name, cased), []).append((kind, text))
    tests = [_field_predicate(name, _shapes_matcher(shapes, cased)) for (name, cased), shapes in groups.items()]
    return tests + rest


def _leaf_shape(node: Any) -> tuple[str, bool, str, str] | None:
    if not isinstance(node, ConditionFieldEqualsValueExpression) or not isinstance(node.value, SigmaString):
        return None
    cased = isinstance(node.value, SigmaCasedString)
    shape = string_shape(node.value)
    if shape is None:
        return None
    kind, text = shape
    return node.field, cased, kind, text if cased else text.lower()


# -- field tests ------------------------------------------------------------------------------


def _field_test(name: str, value: Any) -> Predicate:
    if isinstance(value, SigmaExpansion):
        parts = [_field_test(name, v) for v in value.values]
        return lambda e: any(p(e) for p in parts)
    if isinstance(value, SigmaNull):
        return lambda e: _absent(e.get(name))
    if isinstance(value, SigmaExists):
        want = value.exists
        return lambda e: (not _absent(e.get(name))) == want
    if isinstance(value, SigmaFieldReference):
        return _fieldref_test(name, value)
    return _field_predicate(name, value_matcher(value))


def _field_predicate(name: str, match: Callable[[Any], bool]) -> Predicate:
    def test(e: Flat) -> bool:
        v = e.get(name)
        if v is None:
            return False
        if type(v) is list:
            return any(match(x) for x in v if x is not None)
        return match(v)

    return test


def _keyword_test(value: Any) -> Predicate:
    """A keyword (no field): some value of some field holds it (:func:`keyword_pattern`)."""
    if isinstance(value, SigmaExpansion):
        parts = [_keyword_test(v) for v in value.values]
        return lambda e: any(p(e) for p in parts)
    if isinstance(value, SigmaString):
        value = keyword_pattern(value)
        shape = string_shape(value)
        if shape is not None and shape[0] == "contains" and "\0" not in shape[1]:  # one search in the text
            cased = isinstance(value, SigmaCasedString)
            text = shape[1] if cased else shape[1].lower()
            return lambda e: text in _event_text(e, cased)
    match = value_matcher(value)
    return lambda e: any(_any_value(v, match) for v in e.values())


_last_text: list[Any] = [None, None, None]  # (event, cased text, lower-cased text) of the last event asked


def _event_text(e: Flat, cased: bool) -> str:
    """Every value of the event, joined with NUL (which no keyword holds, so a match stays within one
    value), for the keyword rules that test it one after the other; kept for the last event."""
    if _last_text[0] is not e:
        values = (x for v in e.values() for x in (v if isinstance(v, list) else (v,)) if x is not None)
        joined = "\0".join(x if type(x) is str else _text(x) for x in values)
        _last_text[:] = [e, joined, None]
    if cased:
        return _last_text[1]
    if _last_text[2] is None:
        _last_text[2] = _last_text[1].lower()
    return _last_text[2]


def _fieldref_test(name: str, ref: SigmaFieldReference) -> Predicate:
    def test(e: Flat) -> bool:
        left, right = e.get(name), e.get(ref.field)
        if _absent(left) or _absent(right):
            return False
        lv, rv = str(left).lower(), str(right).lower()
        if ref.starts_with:
            return lv.startswith(rv)
        if ref.ends_with:
            return lv.endswith(rv)
        return lv == rv

    return test


def _absent(value: Any) -> bool:
    """Sigma's ``null`` and ``|exists: false``: the field is absent (an empty value is present, as in the backends)."""
    return value is None or value == []


def _any_value(value: Any, match: Callable[[Any], bool]) -> bool:
    if value is None:
        return False
    if isinstance(value, list):
        return any(match(v) for v in value if v is not None)
    return match(value)


_COMPARE = {"LT": operator.lt, "LTE": operator.le, "GT": operator.gt, "GTE": operator.ge}


def value_matcher(value: Any) -> Callable[[Any], bool]:
    """One Sigma value -> a test on one event value."""
    if isinstance(value, SigmaString):  # SigmaCasedString too
        cased = isinstance(value, SigmaCasedString)
        shape = string_shape(value)
        if shape is not None:
            return _shapes_matcher([(shape[0], shape[1] if cased else shape[1].lower())], cased)
        regex = _string_regex(value, cased)
        if isinstance(regex, str):  # no wildcard: plain (case-folded) equality
            plain = regex
            if isinstance(value, SigmaCasedString):
                return lambda v: _text(v) == plain
            return lambda v: _text(v).lower() == plain
        return lambda v: regex.fullmatch(_text(v)) is not None
    if isinstance(value, SigmaNumber):
        number = value.number
        return lambda v: _number(v) == number or _text(v) == str(number)
    if isinstance(value, SigmaBool):
        want = "true" if value.boolean else "false"
        return lambda v: _text(v).lower() == want
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= _RE_FLAGS[flag]
        try:
            compiled = compile_safe(_search_pattern(str(value.regexp)), flags)
        except ValueError as exc:
            raise NotEvaluable(str(exc)) from exc
        return lambda v: compiled.search(_text(v)) is not None
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        return lambda v: _in_network(v, network)
    if isinstance(value, SigmaCompareExpression):
        op = _COMPARE[value.op.name]
        bound = value.number.number
        return lambda v: (n := _number(v)) is not None and op(n, bound)
    raise NotEvaluable(f"values of type {type(value).__name__} are not evaluated")


_LEADING_ANY = re.compile(r"^(\(\?[a-zA-Z]+\))?\.\*\??(?![*+?{])")


def _search_pattern(pattern: str) -> str:
    """``pattern`` without a leading ``.*``: under ``search`` it changes nothing but the time taken.

    ``search`` tries every start position, so ``.*X`` finds a match exactly when ``X`` does;
    the leading ``.*`` only makes each attempt re-scan the rest of the text.
    """
    m = _LEADING_ANY.match(pattern)
    if m is None:
        return pattern
    return (m.group(1) or "") + pattern[m.end() :]


_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def string_shape(value: SigmaString) -> tuple[str, str] | None:
    """``(kind, text)`` for a string that is plain text with at most a leading and a trailing ``*``.

    kind is ``exact``, ``prefix``, ``suffix`` or ``contains``; these are tested with string
    operations instead of a regular expression. None for anything else (``?``, inner ``*``).
    """
    parts = list(value.s)
    lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
    if lead:
        parts = parts[1:]
    trail = bool(parts) and parts[-1] is SpecialChars.WILDCARD_MULTI
    if trail:
        parts = parts[:-1]
    if len(parts) > 1 or any(not isinstance(p, str) for p in parts):
        return None
    text = parts[0] if parts else ""
    if not text and (lead or trail):
        return None  # "*" alone: the regex path keeps its meaning (any value)
    kind = "contains" if lead and trail else "suffix" if lead else "prefix" if trail else "exact"
    return kind, text


def _shapes_matcher(shapes: list[tuple[str, str]], cased: bool) -> Callable[[Any], bool]:
    """One test for several plain-string shapes (texts already lower-cased unless ``cased``)."""
    exact = frozenset(t for k, t in shapes if k == "exact")
    prefixes = tuple(t for k, t in shapes if k == "prefix")
    suffixes = tuple(t for k, t in shapes if k == "suffix")
    contains = tuple(t for k, t in shapes if k == "contains")

    def match(v: Any) -> bool:
        t = v if type(v) is str else _text(v)
        if not cased:
            t = t.lower()
        return (
            t in exact
            or (bool(suffixes) and t.endswith(suffixes))
            or (bool(prefixes) and t.startswith(prefixes))
            or any(c in t for c in contains)
        )

    return match


def _string_regex(value: SigmaString, cased: bool) -> re.Pattern[str] | str:
    """A wildcard-free string as the plain text to compare, else an anchored regex."""
    for p in value.s:
        if not isinstance(p, str | SpecialChars):
            raise NotEvaluable(f"string part {p!r} is not evaluated (placeholders need a pipeline)")
    if not value.contains_special():
        text = "".join(p for p in value.s if isinstance(p, str))
        return text if cased else text.lower()
    return _regex(render(value.s, ".*", ".", re.escape), cased)


@lru_cache(maxsize=4096)
def _regex(pattern: str, cased: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL if cased else re.DOTALL | re.IGNORECASE)


def _text(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


def event_id_of(v: Any) -> int | None:
    """An event's EventID as the integer rules compare it with (None when it is not one)."""
    if isinstance(v, int):
        return v
    n = _number(v)
    return int(n) if n is not None and math.isfinite(n) and n == int(n) else None


def _number(v: Any) -> float | int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return v
    try:
        text = str(v).strip()
        return int(text, 16) if text.lower().startswith("0x") else float(text)
    except ValueError:
        return None


def _in_network(v: Any, network: Any) -> bool:
    try:
        return ipaddress.ip_address(_text(v).strip()) in network
    except ValueError:
        return False

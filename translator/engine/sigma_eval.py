"""Sigma rules evaluated on flat events, with Sigma's matching semantics.

pySigma parses the rule and resolves its condition (selections, ``1 of``,
``all of``, ``|all``, modifiers) into one tree of AND / OR / NOT over
``field = value`` leaves; each leaf's value is already the modified Sigma type
(``|contains`` a wildcard string, ``|base64offset`` an expansion, ``|cidr`` a
network ...). This module compiles that tree once per rule into Python
closures and runs them per event.

Semantics: strings compare case-insensitively (``|cased`` is exact), ``*`` and
``?`` are wildcards, a multivalue field matches when any value does, ``null``
means absent or empty, ``|re`` searches (flags i, m, s), numbers compare as
numbers. Anything the compiler does not know raises :class:`NotEvaluable`, so a
rule never silently matches nothing.
"""

from __future__ import annotations

import ipaddress
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

Flat = dict[str, Any]
Predicate = Callable[[Flat], bool]


class NotEvaluable(Exception):
    """The rule uses something this evaluator does not implement (reported for that rule)."""


@dataclass(frozen=True)
class CompiledRule:
    rule: SigmaRule
    matches: Predicate


def compile_rule(rule: SigmaRule) -> CompiledRule:
    conditions = rule.detection.parsed_condition
    if len(conditions) != 1:
        raise NotEvaluable("rules with several conditions are not evaluated")
    tree = conditions[0].parse()
    return CompiledRule(rule, _compile(tree))


def _compile(node: Any) -> Predicate:
    if isinstance(node, ConditionAND):
        parts = [_compile(a) for a in node.args]
        return lambda e: all(p(e) for p in parts)
    if isinstance(node, ConditionOR):
        parts = [_compile(a) for a in node.args]
        return lambda e: any(p(e) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = _compile(node.args[0])
        return lambda e: not inner(e)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_test(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return _keyword_test(node.value)
    raise NotEvaluable(f"condition element {type(node).__name__} is not evaluated")


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
    match = value_matcher(value)
    return lambda e: _any_value(e.get(name), match)


def _keyword_test(value: Any) -> Predicate:
    """A keyword (no field): some value of some field matches."""
    if isinstance(value, SigmaExpansion):
        parts = [_keyword_test(v) for v in value.values]
        return lambda e: any(p(e) for p in parts)
    match = value_matcher(value)
    return lambda e: any(_any_value(v, match) for v in e.values())


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
    return value is None or value == "" or value == []


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
        regex = _string_regex(value, cased=isinstance(value, SigmaCasedString))
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
            compiled = re.compile(str(value.regexp), flags)
        except re.error as exc:
            raise NotEvaluable(f"regular expression {str(value.regexp)!r}: {exc}") from exc
        return lambda v: compiled.search(_text(v)) is not None
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        return lambda v: _in_network(v, network)
    if isinstance(value, SigmaCompareExpression):
        op = _COMPARE[value.op.name]
        bound = value.number.number
        return lambda v: (n := _number(v)) is not None and op(n, bound)
    raise NotEvaluable(f"values of type {type(value).__name__} are not evaluated")


_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def _string_regex(value: SigmaString, cased: bool) -> re.Pattern[str] | str:
    """A wildcard-free string as the plain text to compare, else an anchored regex."""
    for p in value.s:
        if not isinstance(p, str | SpecialChars):
            raise NotEvaluable(f"string part {p!r} is not evaluated (placeholders need a pipeline)")
    if not value.contains_special():
        text = "".join(p for p in value.s if isinstance(p, str))
        return text if cased else text.lower()
    parts = []
    for p in value.s:
        if p is SpecialChars.WILDCARD_MULTI:
            parts.append(".*")
        elif p is SpecialChars.WILDCARD_SINGLE:
            parts.append(".")
        else:
            parts.append(re.escape(p))
    return _regex("".join(parts), cased)


@lru_cache(maxsize=4096)
def _regex(pattern: str, cased: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL if cased else re.DOTALL | re.IGNORECASE)


def _text(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


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

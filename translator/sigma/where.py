"""``| where`` expressions (the eval language) -> the Sigma detection IR.

Splunk evaluates ``where`` with three-valued logic: a comparison on a missing
field is null, and null is neither true nor false (``NOT x == "a"`` drops
events without ``x``). Each atom is therefore lowered twice: to the events
where it is TRUE and to those where it is FALSE; ``NOT`` swaps the two, ``AND``
and ``OR`` combine them as Kleene logic does.

Comparisons in ``where`` are case-sensitive (``|cased``); ``like`` uses ``%``
and ``_``; ``match`` is a regular expression. A field that a fill
(``fillnull`` or tstats' ``fillnull_value``) may have set is handled by
evaluating the atom on the fill value for events that lack the field.

Anything else raises :class:`Unfoldable`, and the caller leaves the conjunct
out (the rule gets broader) with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from translator.sigma.detection import FALSE, TRUE, Item, Node, make_and, make_not, make_or, order_node, sigma_escape
from translator.spl import ast
from translator.spl.printer import print_expr

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class Unfoldable(Exception):
    """The expression cannot be expressed over event fields."""


@dataclass(frozen=True)
class Target:
    """How one event field appears in the Sigma rule."""

    sigma: str  # the Sigma field name
    basename: str | None = None  # path separator, when the event field is the last component of ``sigma``
    fill: str | None = None  # value a fill gives the field when an event lacks it


# resolves a field name of the pipeline to its Sigma target (None: not an event field)
Resolver = Callable[[str], Target | None]


# an atom on values the search computed -> (events where it is TRUE, where it is FALSE), or None
Computed = Callable[[ast.Expr], tuple[Node, Node] | None]


def lower_where(expr: ast.Expr, resolve: Resolver, computed: Computed | None = None) -> Node:
    """Events for which ``expr`` is TRUE (``computed`` lowers atoms on computed values)."""
    return _lower(expr, resolve, computed)[0]


def _lower(expr: ast.Expr, resolve: Resolver, computed: Computed | None = None) -> tuple[Node, Node]:
    """(events where ``expr`` is TRUE, events where it is FALSE)."""
    if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
        lt, lf = _lower(expr.left, resolve, computed)
        rt, rf = _lower(expr.right, resolve, computed)
        if expr.op == "and":
            return make_and([lt, rt]), make_or([lf, rf])
        return make_or([lt, rt]), make_and([lf, rf])
    if isinstance(expr, ast.Unary) and expr.op == "not":
        t, f = _lower(expr.operand, resolve, computed)
        return f, t
    if isinstance(expr, ast.Bool):
        return (TRUE, FALSE) if expr.value else (FALSE, TRUE)
    if computed is not None and (pair := computed(expr)) is not None:
        return pair
    if isinstance(expr, ast.Binary) and expr.op == "!=":
        t, f = _lower(ast.Binary("==", expr.left, expr.right), resolve, computed)
        return f, t
    if isinstance(expr, ast.Call) and expr.name in ("isnull", "isnotnull") and len(expr.args) == 1:
        target = _field(expr.args[0], resolve)
        absent = Item(target.sigma, (), (None,))
        present = Item(target.sigma, ("exists",), (True,))
        if target.fill is not None:
            absent, present = FALSE, TRUE  # a filled field is never null
        return (absent, present) if expr.name == "isnull" else (present, absent)
    atom = _atom(expr, resolve)
    return _with_fill(*atom)


def _with_fill(target: Target, item: Node, on_fill: Callable[[str], bool]) -> tuple[Node, Node]:
    present = Item(target.sigma, ("exists",), (True,))
    true, false = item, make_and([present, make_not(item)])
    if target.fill is not None:
        absent = Item(target.sigma, (), (None,))
        if on_fill(target.fill):
            true = make_or([true, absent])
        else:
            false = make_or([false, absent])
    return true, false


def _field(expr: ast.Expr, resolve: Resolver) -> Target:
    if not isinstance(expr, ast.Field):
        raise Unfoldable(f"`{print_expr(expr)}` is not a field")
    target = resolve(expr.name)
    if target is None:
        raise Unfoldable(f"{expr.name} is computed by the search, not an event field")
    return target


def _literal(expr: ast.Expr) -> str:
    if isinstance(expr, ast.Str):
        return expr.value
    if isinstance(expr, ast.Num):
        return expr.text
    raise Unfoldable(f"`{print_expr(expr)}` is not a literal")


def _atom(expr: ast.Expr, resolve: Resolver) -> tuple[Target, Node, Callable[[str], bool]]:
    """(target, items where the atom holds, the atom evaluated on a fill value)."""
    if isinstance(expr, ast.Call) and expr.name == "like" and len(expr.args) == 2:
        target, pattern = _field(expr.args[0], resolve), _literal(expr.args[1])
        regex = like_regex(pattern)
        return target, like_item(target, pattern), lambda v: regex.fullmatch(v) is not None
    if isinstance(expr, ast.Binary) and expr.op == "like":
        return _atom(ast.Call("like", (expr.left, expr.right)), resolve)
    if isinstance(expr, ast.Call) and expr.name == "match" and len(expr.args) == 2:
        target, pattern = _field(expr.args[0], resolve), _literal(expr.args[1])
        if target.basename is not None:
            raise Unfoldable(
                f"a regular expression on {print_expr(expr.args[0])} (a file name) has no exact Sigma form"
            )
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise Unfoldable(f"regular expression {pattern!r}: {exc}") from exc
        return target, Item(target.sigma, ("re",), (pattern,)), lambda v: compiled.search(v) is not None
    if isinstance(expr, ast.InExpr):
        target = _field(expr.operand, resolve)
        values = [_literal(v) for v in expr.values]
        return target, make_or([equals_item(target, v) for v in values]), lambda x: x in values
    if isinstance(expr, ast.Binary) and expr.op in ("=", "==", "<", "<=", ">", ">="):
        left, right, op = expr.left, expr.right, expr.op
        if not isinstance(left, ast.Field | ast.Call) and isinstance(right, ast.Field | ast.Call):
            left, right = right, left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        if isinstance(left, ast.Call) and left.name in ("lower", "upper") and len(left.args) == 1:
            return _case_folded(left, right, op, resolve)
        target, value = _field(left, resolve), _literal(right)
        if op in ("=", "=="):
            return target, equals_item(target, value), lambda v: v == value
        node = order_node(target.sigma, op, value) if _NUMBER.match(value) and target.basename is None else None
        if node is None:
            raise Unfoldable(f"`{print_expr(expr)}` compares text by order")
        return target, node, lambda v: _ordered(v, op, value)
    raise Unfoldable(f"`{print_expr(expr)}` has no Sigma form yet")


def _case_folded(
    call: ast.Call, right: ast.Expr, op: str, resolve: Resolver
) -> tuple[Target, Node, Callable[[str], bool]]:
    if op not in ("=", "=="):
        raise Unfoldable(f"`{print_expr(call)}` compared by order")
    target, value = _field(call.args[0], resolve), _literal(right)
    fold = str.lower if call.name == "lower" else str.upper
    if fold(value) != value:
        return target, FALSE, lambda v: False  # lower(x) never equals a value with upper-case letters
    item = equals_item(target, value, cased=False)
    return target, item, lambda v: fold(v) == value


def _ordered(v: str, op: str, literal: str) -> bool:
    """``v op literal`` as an eval comparison: numeric when both are numbers, else as text."""
    try:
        x: float | str = float(v)
        y: float | str = float(literal)
    except ValueError:
        x, y = v, literal
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]  # type: ignore[operator]


def equals_item(target: Target, value: str, cased: bool = True) -> Item:
    """Exact (by default case-sensitive) equality; ``*`` is not a wildcard in ``where``."""
    case = ("cased",) if cased and not _NUMBER.match(value) else ()
    if target.basename is not None:
        return Item(target.sigma, ("endswith", *case), (target.basename + sigma_escape(value),))
    if _NUMBER.match(value) and len(value) < 16 and "." not in value:
        return Item(target.sigma, (), (int(value),))
    return Item(target.sigma, case, (sigma_escape(value),))


@lru_cache(maxsize=4096)
def like_regex(pattern: str) -> re.Pattern[str]:
    """A ``like`` pattern as a Python regex (full match): ``%`` any run, ``_`` one character."""
    return re.compile("".join(r"[\s\S]*" if c == "%" else r"[\s\S]" if c == "_" else re.escape(c) for c in pattern))


def like_item(target: Target, pattern: str, cased: bool = True) -> Item:
    """``like(F, pattern)``: ``%`` any run, ``_`` one character; with case unless ``cased`` is False
    (a test on ``lower(F)``)."""
    case = ("cased",) if cased else ()
    flags = "" if cased else "(?i)"
    if target.basename is not None:
        sep = re.escape(target.basename)
        body = "".join(f"[^{sep}]*" if c == "%" else f"[^{sep}]" if c == "_" else re.escape(c) for c in pattern)
        return Item(target.sigma, ("re",), (f"{flags}(?:^|{sep}){body}$",))
    if "_" in pattern:
        return Item(target.sigma, ("re",), (flags + "^" + like_regex(pattern).pattern + "$",))
    inner = pattern.strip("%")
    if inner and "%" not in inner:
        lead, trail = pattern.startswith("%"), pattern.endswith("%")
        mod = ("contains",) if lead and trail else ("startswith",) if trail else ("endswith",) if lead else ()
        return Item(target.sigma, (*mod, *case), (sigma_escape(inner),))
    if not inner:
        return Item(target.sigma, ("exists",), (True,))
    return Item(target.sigma, case, ("*".join(sigma_escape(p) for p in pattern.split("%")),))

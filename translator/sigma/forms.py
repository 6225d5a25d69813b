"""Computed values said on the event fields they come from, so a test on one can be carried into Sigma.

A later ``where``/``search`` on a name that ``eval`` or ``rex`` computed reads no event field, yet
for some computations the test has an exact equivalent on the inputs:

- ``lower(F)`` / ``upper(F)`` (:class:`Folded`): ``== "abc"`` is F equal to abc in any case, and a
  value with letters of the other case is never equal;
- ``coalesce(A, B, ...)`` (:class:`First`): the test on A where A has a value, else on B, ...;
- ``mvfind(F, RE)`` and ``if(mvfind(F, RE) >= 0, mvfind(F, RE), D)`` (:class:`FoundAt`): an index
  compared with a number holds for every index or none, so it is ``F|re`` (or its negation);
- a ``rex`` capture (:class:`Captured`) whose pattern fixes where the capture starts and ends (see
  :func:`translator.spl.patterns.capture_shape`): the value tested in the capture's place, in a
  regex that also says the match is the first one, as Splunk takes it.

Each form answers :func:`present` (when the value is not null) and :func:`test` (when a test on it is
true), both as conditions on event fields in the language of :mod:`translator.sigma.lineage`'s
``Presence``; anything else gives None and the caller keeps the test out with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from translator.spl import ast
from translator.spl.patterns import (
    CaptureShape,
    captured_regex,
    class_sample,
    digits_only,
    numeric,
    other_run,
    plain_regex,
    regex_example,
    sample,
)
from translator.spl.values import as_number

# A condition on event fields: True/False, ("field", F) present, ("eq", (F, v)) equal with case,
# ("ieq", (F, v)) equal in any case, ("search", (F, p)) a search-language pattern (any case, ``*``),
# ("like", (F, p, cased)) a like pattern, ("match", (F, RE)) a regex found in F, ("order", (F, op, n))
# a numeric comparison, ("not", C), ("all", (...)), ("any", (...)).
Cond = bool | tuple[str, object]


@dataclass(frozen=True)
class Plain:
    """An event field as it is (an argument of ``coalesce``)."""

    field: str


@dataclass(frozen=True)
class Folded:
    """``lower(F)`` or ``upper(F)``."""

    field: str
    upper: bool


@dataclass(frozen=True)
class First:
    """``coalesce(...)``: the first argument with a value."""

    options: tuple[Plain | Folded, ...]


@dataclass(frozen=True)
class FoundAt:
    """The index of the first value of F that RE is found in; ``missing`` where there is none
    (None: null, as ``mvfind`` gives; a literal when an ``if`` supplies one)."""

    field: str
    pattern: str
    missing: str | None = None


@dataclass(frozen=True)
class Captured:
    """A named group of ``rex field=F`` (one match per value)."""

    field: str
    shape: CaptureShape


Form = Plain | Folded | First | FoundAt | Captured
Resolve = Callable[[str], str | None]  # a pipeline name -> the event field it holds (None: computed)
Forms = Mapping[str, Form]  # computed names -> their forms


# -- building forms from eval expressions ------------------------------------------------------


def form_of(expr: ast.Expr, resolve: Resolve, forms: Forms) -> Form | None:
    """The form of an eval expression, over event fields (``resolve`` names them), or None."""
    if isinstance(expr, ast.Field):
        if expr.name in forms:
            return forms[expr.name]
        event_field = resolve(expr.name)
        return Plain(event_field) if event_field is not None else None
    if not isinstance(expr, ast.Call):
        return None
    name, args = expr.name.lower(), expr.args
    builder = _BUILDERS.get(name)
    return builder(args, resolve, forms) if builder is not None else None


def _folded(upper: bool) -> Callable[..., Form | None]:
    def build(args: tuple[ast.Expr, ...], resolve: Resolve, forms: Forms) -> Form | None:
        inner = form_of(args[0], resolve, forms) if len(args) == 1 else None
        return Folded(inner.field, upper) if isinstance(inner, Plain | Folded) else None  # the last fold wins

    return build


def _coalesce(args: tuple[ast.Expr, ...], resolve: Resolve, forms: Forms) -> Form | None:
    options: list[Plain | Folded] = []
    for a in args:
        f = form_of(a, resolve, forms)
        if isinstance(f, First):
            options.extend(f.options)
        elif isinstance(f, Plain | Folded):
            options.append(f)
        else:
            return None
    return First(tuple(options)) if options else None


def _mvfind(args: tuple[ast.Expr, ...], resolve: Resolve, forms: Forms) -> Form | None:
    if len(args) != 2 or not isinstance(args[1], ast.Str):
        return None
    inner = form_of(args[0], resolve, forms)
    if not isinstance(inner, Plain) or not _compiles(args[1].value):
        return None
    return FoundAt(inner.field, args[1].value)


def _if(args: tuple[ast.Expr, ...], resolve: Resolve, forms: Forms) -> Form | None:
    """``if(mvfind(F, RE) >= 0, mvfind(F, RE), D)`` (or ``isnotnull(...)``): the index, else D."""
    missing = literal(args[2]) if len(args) == 3 else None
    if missing is None:
        return None
    found = form_of(args[1], resolve, forms)
    if not isinstance(found, FoundAt) or found.missing is not None:
        return None
    test = args[0]
    tested = (
        test.left
        if isinstance(test, ast.Binary) and test.op == ">=" and test.right == ast.Num("0")
        else test.args[0]
        if isinstance(test, ast.Call) and test.name.lower() == "isnotnull" and len(test.args) == 1
        else None
    )
    if tested != args[1]:
        return None
    return FoundAt(found.field, found.pattern, missing)


def literal(expr: ast.Expr) -> str | None:
    """A literal's text (a negative number is ``-`` before one)."""
    if isinstance(expr, ast.Str):
        return expr.value
    if isinstance(expr, ast.Num):
        return expr.text
    if isinstance(expr, ast.Unary) and expr.op == "-" and isinstance(expr.operand, ast.Num):
        return "-" + expr.operand.text
    return None


# eval function -> how its value is said on event fields (one entry per rewrite kind)
_BUILDERS: dict[str, Callable[..., Form | None]] = {
    "lower": _folded(False),
    "upper": _folded(True),
    "coalesce": _coalesce,
    "mvfind": _mvfind,
    "if": _if,
}


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


# -- presence and tests ------------------------------------------------------------------------


def present(form: Form) -> Cond:
    """When the value is not null."""
    if isinstance(form, Plain | Folded):
        return ("field", form.field)
    if isinstance(form, First):
        return any_of([present(o) for o in form.options])
    if isinstance(form, FoundAt):
        return True if form.missing is not None else ("match", (form.field, form.pattern))
    return ("match", (form.field, form.shape.pattern))


def test(form: Form, op: str, value: str, mode: str) -> Cond | None:
    """When ``value op literal`` is true. ``mode``: "where" (``=``/``==`` with case; ``<`` and the
    like numeric), "search" (``=`` in any case, ``*`` a wildcard), "like" (a like pattern, with case).
    ``!=`` is not asked here: the caller says it as present and not equal."""
    if isinstance(form, First):
        out, earlier = [], []
        for option in form.options:
            t = test(option, op, value, mode)
            if t is None:
                return None
            out.append(all_of([*(negate(e) for e in earlier), t]))
            earlier.append(present(option))
        return any_of(out)
    if isinstance(form, FoundAt):
        return _found_test(form, op, value) if mode != "like" else None  # a number: search compares as where
    if op not in ("=", "=="):
        if isinstance(form, Plain) and mode == "where" and as_number(value) is not None:
            return ("order", (form.field, op, value))
        return None
    if isinstance(form, Captured):
        if numeric(value, mode) is not None and not digits_only(form.shape.cls):
            return None  # "1.0" and " 1" read as 1 too: not said
        kind = "eq" if mode == "where" else mode
        regex = captured_regex(form.shape, value, kind)
        return False if regex is None else ("match", (form.field, regex))
    if isinstance(form, Folded):
        fold = str.upper if form.upper else str.lower
        if mode == "search":
            return ("search", (form.field, value))
        if fold(value) != value:
            return False  # lower(x) never holds an upper-case letter
        return ("ieq", (form.field, value)) if mode == "where" else ("like", (form.field, value, False))
    if mode == "where":
        return ("eq", (form.field, value))
    return ("search", (form.field, value)) if mode == "search" else ("like", (form.field, value, True))


def _found_test(form: FoundAt, op: str, value: str) -> Cond | None:
    """An index (some k >= 0 where F has a value RE is found in, else ``missing``) against a number:
    known only when the comparison holds for every k >= 0 or for none."""
    n = as_number(value)
    every = _every_index(op, n) if n is not None else None
    if n is None or every is None:
        return None
    if form.missing is None:
        on_missing = False  # null: the comparison is not true
    elif (m := as_number(form.missing)) is not None:
        on_missing = _ORDER[op](m, n)
    else:
        return None
    found: Cond = ("match", (form.field, form.pattern))
    return any_of([found if every else False, all_of([negate(found), on_missing])])


def _every_index(op: str, n: float) -> bool | None:
    """Whether ``k op n`` holds for every index k >= 0 (True), for none (False), or depends on k (None)."""
    if op not in _ORDER:
        return None
    if {">=": n <= 0, ">": n < 0}.get(op, False):
        return True
    whole = n >= 0 and n.is_integer()
    return False if {"<": n <= 0, "<=": n < 0}.get(op, op in ("=", "==") and not whole) else None


_ORDER: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
}


def _combine(kind: str, parts: list[Cond | None]) -> Cond | None:
    """``all`` or ``any`` of conditions: one that decides alone (False for all, True for any) wins, an
    unknown one (None) makes the whole unknown, the neutral ones drop out, nested ones flatten."""
    decisive = kind == "any"
    if any(p is decisive for p in parts):
        return decisive
    if any(p is None for p in parts):
        return None
    flat: list[Cond] = []
    for p in parts:
        flat.extend(p[1] if isinstance(p, tuple) and p[0] == kind else [p])  # type: ignore[arg-type]
    kept = list(dict.fromkeys(p for p in flat if p is not (not decisive)))
    return (not decisive) if not kept else kept[0] if len(kept) == 1 else (kind, tuple(kept))


def all_of(parts: list[Cond | None]) -> Cond | None:
    return _combine("all", parts)


def any_of(parts: list[Cond | None]) -> Cond | None:
    return _combine("any", parts)


def negate(c: Cond) -> Cond:
    if isinstance(c, bool):
        return not c
    return c[1] if c[0] == "not" else ("not", c)  # type: ignore[return-value]


# -- events for a test (the generator's side) --------------------------------------------------


def source_terms(form: Form, op: str, value: str) -> tuple[ast.SearchExpr, ast.SearchExpr] | None:
    """For generating events: search terms on the source field, (hit, miss), such that events fitting
    ``hit`` make ``form op value`` true and events fitting ``miss`` make it false while the value is
    there (None when no such terms are known). ``op`` is ``=`` (a search-language value: ``*`` a
    wildcard) or an order comparison."""
    if isinstance(form, First):
        return source_terms(form.options[0], op, value)
    if isinstance(form, FoundAt):
        text = plain_regex(form.pattern)
        if _found_test(form, op, value) is None or text is None:
            return None
        found: ast.SearchExpr = ast.Compare(form.field, "=", ast.Value("*" + text + "*"))
        every = _every_index(op, float(value))  # a number with an answer: _found_test said so
        return (found, ast.Not(found)) if every else (ast.Not(found), found)
    if op not in ("=", "=="):
        return None
    if isinstance(form, Plain | Folded):
        term = ast.Compare(form.field, "=", ast.Value(value))
        return term, ast.Not(term)
    shape = form.shape
    before, after = sample(shape.before), sample(shape.after)
    other = other_run(shape.cls, value)
    if before is None or after is None or other is None or captured_regex(shape, value, "search") is None:
        return None
    hit = ast.Compare(form.field, "=", ast.Value(before + value + after))
    return hit, ast.Compare(form.field, "=", ast.Value(before + other + after, True))


def near_values(form: Form, value: str) -> list[tuple[str, str]]:
    """For generating events: (event field, value) pairs that come close to giving ``form`` the
    ``value`` but do not: for a capture, the same text after an earlier match, and the capture's run
    one character longer (where its class allows one)."""
    if not isinstance(form, Captured) or "*" in value:
        return []
    shape = form.shape
    before, after = sample(shape.before), sample(shape.after)
    other = other_run(shape.cls, value)
    if before is None or after is None or other is None:
        return []
    out = [] if shape.anchored else [(form.field, before + other + after + before + value + after)]
    extra = class_sample(shape.cls)
    if extra is not None:
        out.append((form.field, before + value + extra + after))
    return out


def cond_terms(cond: Cond) -> ast.SearchExpr | None:
    """A condition on event fields as search terms an event can be generated from (None: not known;
    a regex gives one text it is found in, see :func:`regex_example`)."""
    if cond is True:
        return ast.Term(ast.Value("*"))
    if not isinstance(cond, tuple):
        return None
    kind, arg = cond
    if kind in ("all", "any"):
        parts = [cond_terms(c) for c in arg if c is not True]  # type: ignore[attr-defined]
        if any(p is None for p in parts) or not parts:
            return None
        return parts[0] if len(parts) == 1 else (ast.And if kind == "all" else ast.Or)(tuple(parts))  # type: ignore[arg-type]
    if kind == "not":
        inner = cond_terms(arg)  # type: ignore[arg-type]
        return None if inner is None else ast.Not(inner)
    if kind == "field":
        return ast.Compare(str(arg), "=", ast.Value("*"))
    name, *rest = arg  # type: ignore[misc]
    if kind in ("eq", "ieq"):
        return ast.Compare(name, "=", ast.Value(str(rest[0]), True))
    if kind == "search":
        return ast.Compare(name, "=", ast.Value(str(rest[0])))
    if kind == "order":
        return ast.Compare(name, str(rest[0]), ast.Value(str(rest[1]), True))
    if kind == "like" and "_" not in str(rest[0]):
        return ast.Compare(name, "=", ast.Value(str(rest[0]).replace("%", "*")))
    if kind == "match" and (text := regex_example(str(rest[0]))) is not None:
        return ast.Compare(name, "=", ast.Value(text, True))
    return None

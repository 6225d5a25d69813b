"""Conditions on a CSV lookup's output, inlined as conditions on the lookup's inputs.

``| lookup T f AS x OUTPUT o AS a | search a=true`` keeps the events whose ``x``
matches a row of ``T`` whose ``o`` is ``true``. The table ships with the
content, so the Sigma rule can name those rows: ``x`` in the ``f`` values of
the selected rows.

Every atom on ``a`` (``a=v``, ``a IN (...)``, ``isnotnull(a)``, ...) holds when
*some* matching row's ``o`` satisfies it (a field fed by several rows is
multivalued, and Splunk matches any value), so an atom becomes the OR of the
selected rows' input conditions; NOT, AND and OR are kept around the atoms. A
``default_match`` value stands for the events no row matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from translator.content.loader import Lookup
from translator.sigma.cim import basename_item
from translator.sigma.detection import TRUE, Item, Node, make_and, make_not, make_or, splunk_match, wildcard_value
from translator.sigma.where import Target, Unfoldable, like_regex
from translator.sigma.where import equals_item as exact_item
from translator.spl import ast

MAX_ROWS = 2000  # beyond this the rule would be unreadable: left out instead


@dataclass(frozen=True)
class Binding:
    """One lookup output, as a later stage names it."""

    lookup: Lookup
    inputs: tuple[tuple[str, Target], ...]  # (table column, the event field's Sigma target)
    column: str  # the output column
    rows: tuple[dict[str, str], ...]
    default: str | None = None  # the value events no row matches get (default_match, or a later fillnull)

    def matches_value(self, column: str, value: str) -> bool:
        """Could ``value`` in the event match some row's ``column``? (wildcards and case as the lookup says)"""
        wild = column in self.lookup.wildcard_fields
        for row in self.rows:
            key = row.get(column) or ""
            if wild and "*" in key:
                if splunk_match(value, key):
                    return True
            elif key == value or (not self.lookup.case_sensitive and key.lower() == value.lower()):
                return True
        return False


def bind(lookup: Lookup, inputs: tuple[tuple[str, Target], ...], column: str) -> Binding:
    rows = tuple(lookup.rows())
    if len(rows) > MAX_ROWS:
        raise Unfoldable(f"lookup {lookup.name} has {len(rows)} rows, too many to inline")
    if rows and column not in rows[0]:
        raise Unfoldable(f"lookup {lookup.name} has no column {column}")
    return Binding(lookup, inputs, column, rows, lookup.default)


def _row_node(b: Binding, row: dict[str, str]) -> Node | None:
    """Events whose input fields match ``row`` (None: the row cannot match, e.g. an empty key)."""
    parts: list[Node] = []
    for col, target in b.inputs:
        value = row.get(col) or ""
        if not value:
            return None
        if col in b.lookup.wildcard_fields and "*" in value:
            if target.basename is not None:
                if b.lookup.case_sensitive:
                    raise Unfoldable(f"a case-sensitive pattern on a file name ({col}) has no exact Sigma form")
                parts.append(basename_item(target.sigma, value, target.basename))
                continue
            mods, sigma_value = wildcard_value(value)
            parts.append(Item(target.sigma, (*mods, *(("cased",) if b.lookup.case_sensitive else ())), (sigma_value,)))
        else:
            parts.append(exact_item(target, value, cased=b.lookup.case_sensitive))
    return make_and(parts)


def _rows_where(b: Binding, test: Callable[[str], bool]) -> Node:
    """Events that match some row whose output value passes ``test``."""
    nodes = []
    for row in b.rows:
        out = row.get(b.column) or ""
        if out and test(out):
            node = _row_node(b, row)
            if node is not None:
                nodes.append(node)
    return make_or(nodes)


def _atom(b: Binding, test: Callable[[str], bool]) -> Node:
    """Events for which the output field has a value passing ``test`` (the default counts for no match)."""
    node = _rows_where(b, test)
    if b.default is not None and test(b.default):
        node = make_or([node, make_not(_rows_where(b, lambda _v: True))])
    return node


def inline_search(expr: ast.SearchExpr, name: str, b: Binding) -> Node:
    """A search-language condition on output ``name`` -> a condition on the inputs."""
    if isinstance(expr, ast.And):
        return make_and([inline_search(x, name, b) for x in expr.operands])
    if isinstance(expr, ast.Or):
        return make_or([inline_search(x, name, b) for x in expr.operands])
    if isinstance(expr, ast.Not):
        return make_not(inline_search(expr.operand, name, b))
    if isinstance(expr, ast.Compare) and expr.field == name and expr.op in ("=", "!="):
        text = expr.value.text
        equal = _atom(b, lambda v: splunk_match(v, text))
        if expr.op == "=":
            return equal
        return make_and([_atom(b, lambda _v: True), make_not(equal)])  # present, and no value equals
    if isinstance(expr, ast.InList) and expr.field == name:
        texts = [v.text for v in expr.values]
        return _atom(b, lambda v: any(splunk_match(v, t) for t in texts))
    raise Unfoldable(f"this condition on {name} has no inlined form")


def inline_where(expr: ast.Expr, name: str, b: Binding) -> Node:
    """A where condition on output ``name`` -> a condition on the inputs (true where the condition is)."""
    if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
        parts = [inline_where(expr.left, name, b), inline_where(expr.right, name, b)]
        return make_and(parts) if expr.op == "and" else make_or(parts)
    if isinstance(expr, ast.Unary) and expr.op == "not":
        inner = expr.operand
        # three-valued: NOT of a comparison needs the field present; isnull/isnotnull are never null
        present = TRUE if _is_null_test(inner) else _atom(b, lambda _v: True)
        return make_and([present, make_not(inline_where(inner, name, b))])
    if isinstance(expr, ast.Call) and expr.name in ("isnull", "isnotnull") and _is_field(expr.args, name):
        present = _atom(b, lambda _v: True)
        return present if expr.name == "isnotnull" else make_not(present)
    if isinstance(expr, ast.Call) and expr.name == "like" and _is_field(expr.args[:1], name) and len(expr.args) == 2:
        regex = like_regex(_literal(expr.args[1]))
        return _atom(b, lambda v: regex.fullmatch(v) is not None)
    if isinstance(expr, ast.Call) and expr.name == "match" and _is_field(expr.args[:1], name) and len(expr.args) == 2:
        pattern = re.compile(_literal(expr.args[1]))
        return _atom(b, lambda v: pattern.search(v) is not None)
    if isinstance(expr, ast.Binary) and expr.op in ("=", "==", "!=") and _is_field((expr.left,), name):
        value = _literal(expr.right)
        equal = _atom(b, lambda v: v == value)
        return equal if expr.op != "!=" else make_and([_atom(b, lambda v: v != value)])
    raise Unfoldable(f"this condition on {name} has no inlined form")


def _is_null_test(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Call) and expr.name in ("isnull", "isnotnull")


def _is_field(args: tuple[ast.Expr, ...], name: str) -> bool:
    return len(args) == 1 and isinstance(args[0], ast.Field) and args[0].name == name


def _literal(expr: ast.Expr) -> str:
    if isinstance(expr, ast.Str):
        return expr.value
    if isinstance(expr, ast.Num):
        return expr.text
    raise Unfoldable("not a literal")

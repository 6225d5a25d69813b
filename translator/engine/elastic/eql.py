"""EQL queries run on indexed documents as Elasticsearch's EQL search runs them.

The query is parsed by Elastic's ``eql`` package (its Elasticsearch syntax). Its
own Python engine does not fit: it compares strings without case everywhere,
while Elasticsearch's ``==`` and ``in`` are case-sensitive and only ``:``,
``like~``, ``regex~`` and ``in~`` ignore case. The package's tree drops the
``~``, so the parse tokens say which form a query uses; a query mixing both
forms of one operator is not evaluated. ``<category> where`` selects documents
whose ``event.category`` holds the category; ``any where`` every document.
Conditions are pushed down as Query DSL filters, so a ``not`` keeps documents
that lack the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

import eql
from eql import ast
from eql.parser import elasticsearch_syntax, lark_parser

from translator.engine.elastic.fields import (
    NUMBERS,
    STRINGS,
    TEXTS,
    Doc,
    Rejected,
    in_network,
    index_value,
    lucene_regex,
    wildcard_regex,
)
from translator.engine.sigma_eval import NotEvaluable


class _Query:
    def __init__(self, text: str) -> None:
        try:
            with elasticsearch_syntax:
                piped = eql.parse_query(text)
            toks = [
                str(t)
                for t in lark_parser.parse(text + "\n", start="piped_query").scan_values(
                    lambda v: hasattr(v, "type") and v.type in ("STRING_PREDICATE", "IN")
                )
            ]
        except eql.EqlError as exc:
            raise Rejected(f"EQL does not parse: {str(exc).splitlines()[0]}") from None
        if piped.pipes:
            raise NotEvaluable("EQL pipes are not modelled")
        first = piped.first
        if not isinstance(first, ast.EventQuery):
            raise NotEvaluable(f"EQL {type(first).__name__} is not modelled")
        self.category = first.event_type
        self.where = first.query
        self.like_nocase = _one_form(toks, {":", "like~"}, {"like"}, "like")
        self.regex_nocase = _one_form(toks, {"regex~"}, {"regex"}, "regex")
        self.in_nocase = _one_form(toks, {"in~"}, {"in"}, "in")


def _one_form(toks: list[str], nocase: set[str], cased: set[str], what: str) -> bool:
    used = set(toks)
    if used & nocase and used & cased:
        raise NotEvaluable(f"the query mixes {what} with and without case; the parse tree cannot tell them apart")
    return not (used & cased)


@cache
def _query(text: str) -> _Query:
    return _Query(text)


def matches(query: str, docs: list[Doc]) -> set[str]:
    """Refs of the documents the query selects."""
    q = _query(query)
    out = set()
    for d in docs:
        if q.category != "any" and q.category not in (d.values.get("event.category") or []):
            continue
        if _eval(q.where, d, q):
            out.add(d.ref)
    return out


def _eval(node: Any, doc: Doc, q: _Query) -> Any:
    handler = _NODES.get(type(node))
    if handler is None:
        raise NotEvaluable(f"EQL {type(node).__name__} is not modelled: {node}")
    return handler(node, doc, q)


def _name(node: Any) -> str:
    if not isinstance(node, ast.Field):
        raise NotEvaluable(f"only fields are compared here, not {node}")
    return ".".join([node.base, *map(str, node.path)])


def _field_values(node: Any, doc: Doc) -> tuple[str, list[Any]]:
    name = _name(node)
    if doc.type_of(name).keyed:  # EQL's string comparisons are wildcard queries there
        raise Rejected(f"EQL on flattened field {name}: wildcard queries are refused on its keys")
    return name, doc.values.get(name) or []


def _literal(node: Any) -> Any:
    if isinstance(node, ast.Literal):
        return node.value
    raise NotEvaluable(f"only literals are compared with fields here, not {node}")


def _str_field(name: str, doc: Doc, op: str) -> None:
    kind = doc.type_of(name).kind
    if kind in TEXTS:
        raise Rejected(f"EQL cannot search text field {name} with {op}")
    if kind not in STRINGS:
        raise Rejected(f"{op} needs a string field; {name} is {kind}")


def _function(node: ast.FunctionCall, doc: Doc, q: _Query) -> bool:
    name, values = _field_values(node.arguments[0], doc)
    args = [_literal(a) for a in node.arguments[1:]]
    if node.name == "wildcard":
        _str_field(name, doc, "a wildcard")
        flags = re.IGNORECASE if q.like_nocase else 0
        return any(wildcard_regex(p, False, flags).fullmatch(v) for p in args for v in values)  # no escapes in EQL
    if node.name == "match":
        _str_field(name, doc, "regex")
        flags = re.IGNORECASE if q.regex_nocase else 0
        return any(lucene_regex(p, flags).fullmatch(v) for p in args for v in values)
    if node.name == "cidrMatch":
        if doc.type_of(name).kind != "ip":
            raise Rejected(f"cidrMatch needs an ip field; {name} is {doc.type_of(name).kind}")
        return any(in_network(v, p) for p in args for v in values)
    if node.name in ("startsWith", "endsWith", "stringContains"):
        _str_field(name, doc, node.name)
        test = {"startsWith": str.startswith, "endsWith": str.endswith, "stringContains": str.__contains__}[node.name]
        return any(test(v, args[0]) for v in values)
    raise NotEvaluable(f"EQL function {node.name} is not modelled")


def _typed(name: str, doc: Doc, value: Any) -> Any:
    kind = doc.type_of(name)
    if kind.kind in NUMBERS and isinstance(value, str):
        raise Rejected(f"{name} is {kind.kind}; compared with the string {value!r}")
    if kind.kind == "ip" and isinstance(value, str):
        raise Rejected(f"{name} is an ip field; compared with the string {value!r} (use cidrMatch)")
    if kind.kind in TEXTS:
        raise Rejected(f"EQL cannot search text field {name}")
    return index_value(kind, value)  # as the term query sees it (a normalizer lower-cases it)


def _comparison(node: ast.Comparison, doc: Doc, _q: _Query) -> bool:
    if isinstance(node.right, ast.Null) or isinstance(node.left, ast.Null):
        field = node.left if isinstance(node.right, ast.Null) else node.right
        present = bool(_field_values(field, doc)[1])
        return present if node.comparator == "!=" else not present
    name, values = _field_values(node.left, doc)
    want = _typed(name, doc, _literal(node.right))
    op = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[node.comparator]
    try:
        return any(op(v, want) for v in values)
    except TypeError:
        return False


def _in(node: ast.InSet, doc: Doc, q: _Query) -> bool:
    name, values = _field_values(node.expression, doc)
    wants = [_typed(name, doc, _literal(c)) for c in node.container]
    if q.in_nocase:
        lowered = {str(w).lower() for w in wants}
        return any(str(v).lower() in lowered for v in values)
    return any(v in wants for v in values)


def _is_null(node: Any, doc: Doc, _q: _Query) -> bool:
    return not _field_values(node.expr, doc)[1]


def _is_not_null(node: Any, doc: Doc, _q: _Query) -> bool:
    return bool(_field_values(node.expr, doc)[1])


_NODES: dict[type, Callable[[Any, Doc, _Query], Any]] = {
    ast.And: lambda n, d, q: all(_eval(t, d, q) for t in n.terms),
    ast.Or: lambda n, d, q: any(_eval(t, d, q) for t in n.terms),
    ast.Not: lambda n, d, q: not _eval(n.term, d, q),
    ast.FunctionCall: _function,
    ast.Comparison: _comparison,
    ast.InSet: _in,
    ast.IsNull: _is_null,
    ast.IsNotNull: _is_not_null,
    ast.Boolean: lambda n, d, q: n.value,
}


def fields(query: str) -> set[str] | None:
    """The fields the query reads (with event.category when it names a category)."""
    q = _query(query)
    out = _fields_of(q.where)
    return out | {"event.category"} if q.category != "any" else out


def conjuncts(query: str) -> list[tuple[set[str] | None, bool]]:
    """Per top-level AND term: the fields it reads and whether a document without them passes it."""
    q = _query(query)
    terms = q.where.terms if isinstance(q.where, ast.And) else [q.where]
    out: list[tuple[set[str] | None, bool]] = [({"event.category"}, False)] if q.category != "any" else []
    for term in terms:
        try:
            empty = bool(_eval(term, Doc("", {}), q))
        except Rejected:
            empty = True
        out.append((_fields_of(term), empty))
    return out


def _fields_of(node: Any) -> set[str]:
    return {_name(n) for n in node if isinstance(n, ast.Field)}

"""Lucene ``query_string`` queries run on indexed documents, parsed with ``luqum``.

Semantics are those of Elasticsearch's ``query_string`` with its defaults: the
default operator is OR, ``NOT`` / ``-`` exclude (a document without the field
is not excluded by it), ``field:*`` is an exists test, a term without a field
searches every field leniently. How a term matches depends on the field's type
(:mod:`translator.engine.elastic.fields`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

from translator.engine.elastic.fields import (
    NUMBERS,
    STRINGS,
    TEXTS,
    Doc,
    FieldType,
    Rejected,
    as_number,
    has_wildcard,
    in_network,
    index_value,
    lucene_regex,
    tokens,
    unescape,
    wildcard_regex,
)
from translator.engine.sigma_eval import NotEvaluable


@cache
def parse(query: str) -> tree.Item:
    """The query's tree; NotEvaluable when luqum cannot read it."""
    try:
        return parser.parse(query)
    except (ParseError, Exception) as exc:  # luqum raises plain exceptions for some inputs
        raise NotEvaluable(f"luqum cannot parse the Lucene query: {exc}") from None


def matches(query: str, docs: list[Doc]) -> set[str]:
    """Refs of the documents the query selects."""
    node = parse(query)
    return {d.ref for d in docs if _eval(node, d, None)}


def _eval(node: tree.Item, doc: Doc, name: str | None) -> bool:
    handler = _NODES.get(type(node))
    if handler is None:
        raise NotEvaluable(f"Lucene {type(node).__name__} is not modelled: {node}")
    return handler(node, doc, name)


def _field(node: tree.SearchField, doc: Doc, _name: str | None) -> bool:
    name = unescape(node.name)
    if name == "_exists_":
        return bool(doc.values.get(unescape(str(node.expr))))
    if "*" in name or "?" in name:
        raise NotEvaluable(f"field-name patterns are not modelled: {name}")
    return _eval(node.expr, doc, name)


def _term(node: tree.Term, doc: Doc, name: str | None) -> bool:
    if name is not None:
        return _test(node, doc.values.get(name) or [], doc.type_of(name), name)
    for field, values in doc.values.items():  # no field: every field, leniently
        try:
            if _test(node, values, doc.type_of(field), field):
                return True
        except Rejected:
            continue
    return False


def _validate(node: tree.Term, kind: FieldType, name: str) -> None:
    """Raise Rejected when the field's mapping refuses the term (whether or not a document has it)."""
    if kind.keyed:  # a flattened field's key: term, prefix and exists only
        raw = str(node.value)
        if isinstance(node, tree.Regex) or (raw != "*" and has_wildcard(raw.removesuffix("*"))):
            raise Rejected(f"wildcard or regexp query on flattened field {name}")
    if kind.kind not in STRINGS and kind.kind not in TEXTS:  # strings and texts take any term
        _check(type(node), str(node.value), kind, name)


@cache
def _check(node_type: type, raw: str, kind: FieldType, name: str) -> None:
    node = node_type(raw)
    if isinstance(node, tree.Regex) and kind.kind not in STRINGS and kind.kind not in TEXTS:
        raise Rejected(f"regex on {kind.kind} field {name}")
    if isinstance(node, tree.Word) and raw != "*" and has_wildcard(raw):
        if kind.kind not in STRINGS and kind.kind not in TEXTS:
            raise Rejected(f"wildcard on {kind.kind} field {name}")
    elif kind.kind in NUMBERS and not isinstance(node, tree.Regex):
        as_number(unescape(raw.strip('"')), name)
    elif kind.kind == "ip" and not isinstance(node, tree.Regex) and raw != "*":
        term = unescape(raw.strip('"'))
        if "/" in term:
            in_network(None, term)
        elif index_value(kind, term) is None:
            raise Rejected(f"{name} is an ip field and {term!r} is not an address")


def _test(node: tree.Term, values: list[Any], kind: FieldType, name: str) -> bool:
    _validate(node, kind, name)
    if not values:
        return False
    if isinstance(node, tree.Regex):
        pattern = lucene_regex(node.value[1:-1])
        if kind.kind in STRINGS:
            return any(pattern.fullmatch(v) for v in values)
        if kind.kind in TEXTS:
            return any(pattern.fullmatch(t) for v in values for t in tokens(v, kind.analyzer))
        raise Rejected(f"regex on {kind.kind} field {name}")
    if isinstance(node, tree.Phrase):
        phrase = unescape(node.value[1:-1])
        return _equals(phrase.lower() if kind.normalizer else phrase, values, kind, name, phrase=True)
    raw = str(node.value).lower() if kind.normalizer else str(node.value)
    if raw == "*":
        return True
    if has_wildcard(raw):
        if kind.kind in STRINGS:
            pattern = wildcard_regex(raw)
            return any(pattern.fullmatch(v) for v in values)
        if kind.kind in TEXTS:
            pattern = wildcard_regex(raw.lower())
            return any(pattern.fullmatch(t) for v in values for t in tokens(v, kind.analyzer))
        raise Rejected(f"wildcard on {kind.kind} field {name}")
    return _equals(unescape(raw), values, kind, name)


def _equals(term: str, values: list[Any], kind: FieldType, name: str, phrase: bool = False) -> bool:
    if kind.kind in STRINGS:
        return term in values
    if kind.kind in TEXTS:
        want = tokens(term, kind.analyzer)
        if not want:
            return False
        for v in values:
            have = tokens(v, kind.analyzer)
            if phrase:
                if any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1)):
                    return True
            elif set(want) & set(have):  # the words of an unquoted term are OR'ed (default operator)
                return True
        return False
    if kind.kind in NUMBERS:
        number = as_number(term, name)
        return number in values
    if kind.kind == "ip":
        if "/" in term:
            return any(in_network(v, term) for v in values)
        want = index_value(kind, term)
        if want is None:
            raise Rejected(f"{name} is an ip field and {term!r} is not an address")
        return want in values
    return index_value(kind, term) in values


def _bound(word: tree.Item) -> str:
    return unescape(str(word))


def _compare(
    values: list[Any], kind: FieldType, name: str, low: str | None, high: str | None, incl_low: bool, incl_high: bool
) -> bool:
    def conv(x: str) -> Any:
        if kind.kind in NUMBERS:
            return as_number(x, name)
        if kind.kind == "ip":
            return index_value(kind, x)
        return x

    lo = None if low in (None, "*") else conv(low)
    hi = None if high in (None, "*") else conv(high)
    for v in values:
        if type(v) is str and kind.kind in NUMBERS:
            continue
        try:
            if lo is not None and not (v >= lo if incl_low else v > lo):
                continue
            if hi is not None and not (v <= hi if incl_high else v < hi):
                continue
        except TypeError:
            continue
        return True
    return False


def _range(node: tree.Range, doc: Doc, name: str | None) -> bool:
    if name is None:
        raise NotEvaluable("a range without a field is not modelled")
    return _compare(
        doc.values.get(name) or [],
        doc.type_of(name),
        name,
        _bound(node.low),
        _bound(node.high),
        node.include_low,
        node.include_high,
    )


def _from(node: tree.From, doc: Doc, name: str | None) -> bool:
    if name is None:
        raise NotEvaluable("a range without a field is not modelled")
    return _compare(doc.values.get(name) or [], doc.type_of(name), name, _bound(node.a), None, node.include, False)


def _to(node: tree.To, doc: Doc, name: str | None) -> bool:
    if name is None:
        raise NotEvaluable("a range without a field is not modelled")
    return _compare(doc.values.get(name) or [], doc.type_of(name), name, None, _bound(node.a), False, node.include)


def _all(node: tree.Item, doc: Doc, name: str | None) -> bool:
    return all(_eval(c, doc, name) for c in node.children)


def _any(node: tree.Item, doc: Doc, name: str | None) -> bool:
    return any(_eval(c, doc, name) for c in node.children)


def _not(node: tree.Item, doc: Doc, name: str | None) -> bool:
    return not _eval(node.a, doc, name)


def _inner(node: tree.Item, doc: Doc, name: str | None) -> bool:
    return _eval(node.expr if hasattr(node, "expr") else node.a, doc, name)


_NODES: dict[type, Callable[[Any, Doc, str | None], bool]] = {
    tree.SearchField: _field,
    tree.Word: _term,
    tree.Phrase: _term,
    tree.Regex: _term,
    tree.Range: _range,
    tree.From: _from,
    tree.To: _to,
    tree.AndOperation: _all,
    tree.OrOperation: _any,
    tree.UnknownOperation: _any,  # the default operator, OR
    tree.Not: _not,
    tree.Prohibit: _not,
    tree.Plus: _inner,
    tree.Group: _inner,
    tree.FieldGroup: _inner,
}


def fields(query: str) -> set[str] | None:
    """The fields the query reads; None when a term without a field searches them all."""
    return _fields_of(parse(query))


def conjuncts(query: str) -> list[tuple[set[str] | None, bool]]:
    """Per top-level AND term: the fields it reads and whether a document without them passes it."""
    node = parse(query)
    while isinstance(node, tree.Group):
        node = node.expr
    terms = node.children if isinstance(node, tree.AndOperation) else [node]
    out = []
    for term in terms:
        try:
            empty = _eval(term, Doc("", {}), None)
        except Rejected:
            empty = True  # unknown here: the term cannot narrow the documents
        out.append((_fields_of(term), empty))
    return out


def _fields_of(root: tree.Item) -> set[str] | None:
    out: set[str] = set()

    def walk(node: tree.Item, name: str | None) -> bool:
        if isinstance(node, tree.SearchField):
            field = unescape(node.name)
            if field == "_exists_":
                out.add(unescape(str(node.expr)))
                return True
            return walk(node.expr, field)
        if isinstance(node, tree.Term | tree.Range | tree.From | tree.To):
            if name is None:
                return False
            out.add(name)
            return True
        return all(walk(c, name) for c in node.children)

    return out if walk(root, None) else None

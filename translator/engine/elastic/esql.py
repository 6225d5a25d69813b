"""ES|QL queries run on indexed documents: the ``from ... | where ...`` subset pySigma's backend writes.

A small grammar of our own (no ES|QL parser exists for Python): boolean
``and``/``or``/``not``, comparisons, ``like``/``rlike`` (with ``not``), ``in``,
``is [not] null``, and the functions the backends emit (``starts_with``,
``ends_with``, ``cidr_match``, ``to_lower``, ``to_upper``, ``coalesce``). ES|QL's semantics
differ from Lucene's: logic has three values (a comparison on a missing field is
null, ``not null`` is null, and a row whose condition is null is dropped), a
function or comparison on a multivalued field is null, string matching is
case-sensitive, and keyword values over ``ignore_above`` read as null.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

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

_TOKEN = re.compile(
    r'\s*(?:(?P<str3>"""(?:.|\n)*?""")|(?P<str>"(?:\\.|[^"\\])*")|(?P<quoted>`(?:``|[^`])*`)'
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<=|>=|<|>|\(|\)|,|\|)|(?P<name>[A-Za-z_@][\w.@]*))"
)
_KEYWORDS = {"and", "or", "not", "like", "rlike", "in", "is", "null", "true", "false", "where", "from"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str


@dataclass(frozen=True)
class Node:
    """One expression: ``op`` names its evaluation, ``args`` its operands."""

    op: str
    args: tuple[Any, ...]


def _tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise NotEvaluable(f"ES|QL text not modelled at {text[pos : pos + 30]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        out.append(Tok(kind, value))
        pos = m.end()
    return out


def _string(tok: Tok) -> str:
    if tok.kind == "str3":
        return tok.text[3:-3]
    body = tok.text[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), "\\" + m.group(1)), body)


class _Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks, self.i = toks, 0

    def peek(self, offset: int = 0) -> Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self, text: str | None = None) -> Tok:
        tok = self.peek()
        if tok is None or (text is not None and tok.text != text):
            raise NotEvaluable(f"ES|QL: expected {text or 'more'} at token {self.i}")
        self.i += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.text == text

    def expr(self) -> Node:
        items = [self.conj()]
        while self.at("or"):
            self.take()
            items.append(self.conj())
        return items[0] if len(items) == 1 else Node("or", tuple(items))

    def conj(self) -> Node:
        items = [self.neg()]
        while self.at("and"):
            self.take()
            items.append(self.neg())
        return items[0] if len(items) == 1 else Node("and", tuple(items))

    def neg(self) -> Node:
        if self.at("not"):
            self.take()
            return Node("not", (self.neg(),))
        return self.predicate()

    def predicate(self) -> Node:
        if self.at("("):
            self.take()
            node = self.expr()
            self.take(")")
            return node
        left = self.operand()
        negate = False
        if self.at("not") and self.peek(1) is not None and self.peek(1).text in ("like", "rlike", "in"):  # type: ignore[union-attr]
            self.take()
            negate = True
        tok = self.peek()
        if tok is None or tok.text in (")", ",", "and", "or"):
            node = Node("bool", (left,))
        elif tok.text in ("like", "rlike"):
            self.take()
            node = Node(tok.text, (left, self.operand()))
        elif tok.text == "in":
            self.take()
            self.take("(")
            items = [self.operand()]
            while self.at(","):
                self.take()
                items.append(self.operand())
            self.take(")")
            node = Node("in", (left, tuple(items)))
        elif tok.text == "is":
            self.take()
            null = Node("is_null", (left,))
            if self.at("not"):
                self.take()
                null = Node("is_not_null", (left,))
            self.take("null")
            return null
        elif tok.kind == "op" and tok.text in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            node = Node("cmp", (tok.text, left, self.operand()))
        else:
            raise NotEvaluable(f"ES|QL operator {tok.text!r} is not modelled")
        return Node("not", (node,)) if negate else node

    def argument(self) -> Any:
        """A function argument: any expression (``coalesce(x like "a", false)``)."""
        node = self.expr()
        return node.args[0] if node.op == "bool" else node

    def operand(self) -> Any:
        tok = self.take()
        if tok.kind in ("str", "str3"):
            return Node("lit", (_string(tok),))
        if tok.kind == "num":
            return Node("lit", (float(tok.text) if "." in tok.text else int(tok.text),))
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return Node("lit", (tok.text == "true",))
        if tok.kind == "kw" and tok.text == "null":
            return Node("lit", (None,))
        if tok.kind == "quoted":
            return Node("field", (tok.text[1:-1].replace("``", "`"),))
        if tok.kind == "name":
            if self.at("("):
                self.take()
                args = [] if self.at(")") else [self.argument()]
                while self.at(","):
                    self.take()
                    args.append(self.argument())
                self.take(")")
                return Node("call", (tok.text.lower(), tuple(args)))
            return Node("field", (tok.text,))
        raise NotEvaluable(f"ES|QL operand {tok.text!r} is not modelled")


@cache
def parse(query: str) -> Node:
    """The ``where`` condition of ``from <indices> [metadata ...] | where <condition>``."""
    parts = [p.strip() for p in _split_pipes(query)]
    if not parts or not parts[0].lower().startswith("from "):
        raise NotEvaluable("an ES|QL query starts with from")
    wheres = [p for p in parts[1:]]
    if len(wheres) != 1 or not wheres[0].lower().startswith("where "):
        raise NotEvaluable("only `from ... | where ...` is modelled (one where, no other commands)")
    parser = _Parser(_tokens(wheres[0][len("where ") :]))
    node = parser.expr()
    if parser.peek() is not None:
        raise NotEvaluable(f"ES|QL: unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    return node


def _split_pipes(query: str) -> list[str]:
    """Split on ``|`` outside string literals."""
    out, start = [], 0
    for m in re.finditer(r'"""(?:.|\n)*?"""|"(?:\\.|[^"\\])*"|`(?:``|[^`])*`|\|', query):
        if m.group(0) == "|":
            out.append(query[start : m.start()])
            start = m.end()
    out.append(query[start:])
    return out


def matches(query: str, docs: list[Doc]) -> set[str]:
    """Refs of the documents the query keeps (its condition true, not false or null)."""
    node = parse(query)
    return {d.ref for d in docs if _eval(node, d) is True}


def _eval(node: Node, doc: Doc) -> Any:
    return _OPS[node.op](node, doc)


def _field(node: Node, doc: Doc) -> Any:
    name = node.args[0]
    kind = doc.type_of(name)
    if kind.keyed:
        raise Rejected(f"ES|QL does not read flattened field {name}")
    values = doc.values.get(name) or []
    if kind.kind in TEXTS:
        values = doc.source.get(name.removesuffix(".text")) or []
        values = [str(v) for v in values]
    if len(values) != 1:
        return None  # missing, or multivalued (ES|QL's single-value functions give null)
    return values[0]


def _string_arg(node: Node, doc: Doc, what: str) -> Any:
    if node.op == "field":
        kind = doc.type_of(node.args[0]).kind
        if kind not in STRINGS and kind not in TEXTS:
            raise Rejected(f"{what} needs a string; {node.args[0]} is {kind}")
    return _eval(node, doc)


def _like(node: Node, doc: Doc) -> Any:
    value = _string_arg(node.args[0], doc, node.op)
    pattern = _eval(node.args[1], doc)
    if value is None or pattern is None:
        return None
    regex = wildcard_regex(pattern) if node.op == "like" else lucene_regex(pattern)
    return regex.fullmatch(value) is not None


def _literal_for(field: Node, value: Any, doc: Doc) -> Any:
    """A literal compared with a field, as ES|QL casts it for the field's type."""
    if field.op != "field" or value is None:
        return value
    kind = doc.type_of(field.args[0])
    if kind.kind in NUMBERS:
        if isinstance(value, str):
            raise Rejected(f"{field.args[0]} is {kind.kind}; compared with the string {value!r}")
        return value
    if kind.kind == "ip":
        cast = index_value(kind, value)
        if cast is None:
            raise Rejected(f"{field.args[0]} is an ip field; {value!r} is not an address")
        return cast
    if kind.kind == "boolean":
        return value if isinstance(value, bool) else index_value(kind, value)
    if isinstance(value, bool | int | float):
        raise Rejected(f"{field.args[0]} is {kind.kind}; compared with {value!r}")
    return value


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _cmp(node: Node, doc: Doc) -> Any:
    op, left, right = node.args
    a = _eval(left, doc)
    b = _literal_for(left, _eval(right, doc), doc) if right.op == "lit" else _eval(right, doc)
    if a is None or b is None:
        return None
    try:
        return _CMP[op](a, b)
    except TypeError:
        raise Rejected(f"ES|QL cannot compare {a!r} with {b!r}") from None


def _in(node: Node, doc: Doc) -> Any:
    left, items = node.args
    a = _eval(left, doc)
    if a is None:
        return None
    wants = [_literal_for(left, _eval(i, doc), doc) for i in items]
    if a in wants:
        return True
    return None if None in wants else False


def _call(node: Node, doc: Doc) -> Any:
    name, args = node.args
    if name in ("starts_with", "ends_with"):
        value = _string_arg(args[0], doc, name)
        part = _eval(args[1], doc)
        if value is None or part is None:
            return None
        return value.startswith(part) if name == "starts_with" else value.endswith(part)
    if name in ("to_lower", "to_upper"):
        value = _string_arg(args[0], doc, name)
        if value is None:
            return None
        return value.lower() if name == "to_lower" else value.upper()
    if name == "coalesce":
        for arg in args:
            value = _eval(arg, doc)
            if value is not None:
                return value
        return None
    if name == "cidr_match":
        field = args[0]
        if field.op == "field" and doc.type_of(field.args[0]).kind != "ip":
            raise Rejected(f"cidr_match needs an ip field; {field.args[0]} is {doc.type_of(field.args[0]).kind}")
        value = _eval(field, doc)
        if value is None:
            return None
        return any(in_network(value, _eval(a, doc)) for a in args[1:])
    raise NotEvaluable(f"ES|QL function {name} is not modelled")


def _junction(node: Node, doc: Doc, decisive: bool) -> Any:
    """``and`` (``decisive`` False) or ``or`` (True) with three values: one decisive operand settles it,
    else a null operand makes it null."""
    unknown = False
    for x in node.args:
        value = _eval(x, doc)
        if value is decisive:
            return decisive
        unknown = unknown or value is None
    return None if unknown else not decisive


def _not(node: Node, doc: Doc) -> Any:
    a = _eval(node.args[0], doc)
    return None if a is None else not a


def _bool(node: Node, doc: Doc) -> Any:
    value = _eval(node.args[0], doc)
    return value if value is None or isinstance(value, bool) else bool(value)


_OPS: dict[str, Callable[[Node, Doc], Any]] = {
    "or": lambda n, d: _junction(n, d, True),
    "and": lambda n, d: _junction(n, d, False),
    "not": _not,
    "bool": _bool,
    "like": _like,
    "rlike": _like,
    "in": _in,
    "is_null": lambda n, d: _eval(n.args[0], d) is None and not (d.values.get(n.args[0].args[0]) or [])[1:],
    "is_not_null": lambda n, d: _eval(n.args[0], d) is not None or bool((d.values.get(n.args[0].args[0]) or [])[1:]),
    "cmp": _cmp,
    "call": _call,
    "lit": lambda n, d: n.args[0],
    "field": _field,
}


def fields(query: str) -> set[str] | None:
    """The fields the condition reads (a ``.text`` field is read from its parent's source)."""
    return _fields_of(parse(query))


def conjuncts(query: str) -> list[tuple[set[str] | None, bool]]:
    """Per top-level AND term: the fields it reads and whether a row without them is kept by it."""
    node = parse(query)
    terms = node.args if node.op == "and" else (node,)
    out = []
    for term in terms:
        try:
            empty = _eval(term, Doc("", {})) is True
        except Rejected:
            empty = True
        out.append((_fields_of(term), empty))
    return out


def _fields_of(root: Node) -> set[str]:
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Node):
            if node.op == "field":
                out.update({node.args[0], node.args[0].removesuffix(".text")})
            for a in node.args:
                walk(a)
        elif isinstance(node, tuple):
            for a in node:
                walk(a)

    walk(root)
    return out

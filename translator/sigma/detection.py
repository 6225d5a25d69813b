"""Search expression -> Sigma detection (named selections and a condition).

Two steps, each a pure function:
1. ``lower`` turns the SPL search tree into a small boolean IR of Sigma
   detection items, applying Splunk's semantics (``!=`` needs the field,
   wildcards become contains/startswith/endswith, numeric comparisons become
   gt/gte/lt/lte). A term that cannot be expressed is replaced by the constant
   that makes the rule *broader* given its polarity (TRUE outside a NOT, FALSE
   inside one), and a reason is recorded.
2. ``emit`` groups items into selections the way a person writes Sigma: ANDed
   items share one map, ORed values of one field share one list, and
   same-field ANDed values become ``|all``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from translator.spl import ast
from translator.spl.printer import print_search

# --------------------------------------------------------------------------
# IR


@dataclass(frozen=True)
class Item:
    """One detection item: ``field|mods: values`` (values ORed unless ``all``)."""

    field: str | None  # None: a keyword (full-text) item
    modifiers: tuple[str, ...]
    values: tuple[Any, ...]

    @property
    def key(self) -> str:
        return "|".join((self.field or "", *self.modifiers))


@dataclass(frozen=True)
class SAnd:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class SOr:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class SNot:
    child: Node


@dataclass(frozen=True)
class Const:
    value: bool


TRUE, FALSE = Const(True), Const(False)
Node = Item | SAnd | SOr | SNot | Const

# fields that describe where an event was stored, not what it says
# (Splunk field names are case-sensitive: Okta's eventType is an event field, eventtype is Splunk's)
STORAGE_FIELDS = {"index", "source", "sourcetype", "eventtype", "splunk_server"}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_INT = re.compile(r"^(0|-?[1-9]\d*)$")


# --------------------------------------------------------------------------
# values


def sigma_escape(text: str) -> str:
    """Escape a literal for a Sigma string: ``*`` and ``?`` are wildcards there,
    and a backslash before a wildcard or another backslash is an escape."""
    out: list[str] = []
    for i, c in enumerate(text):
        if c in "*?":
            out.append("\\" + c)
        elif c == "\\" and (i + 1 == len(text) or text[i + 1] in "*?\\"):
            out.append("\\\\")
        else:
            out.append(c)
    return "".join(out)


def sigma_pattern(text: str) -> str:
    """SPL text with ``*`` wildcards -> Sigma string keeping those wildcards."""
    return "*".join(sigma_escape(part) for part in text.split("*"))


CIDR = re.compile(  # a network in a search value: 10.0.0.0/8, fe80::/10
    r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$|^[0-9A-Fa-f:]+:[0-9A-Fa-f:]*/\d{1,3}$"
)


def search_value(text: str) -> tuple[tuple[str, ...], Any]:
    """A search term's value: ``10.0.0.0/8`` is a network (Splunk's search matches IPs in it), else wildcards."""
    if CIDR.match(text):
        return ("cidr",), text
    return wildcard_value(text)


def wildcard_value(text: str) -> tuple[tuple[str, ...], Any]:
    """SPL value (``*`` = any run of characters) -> (modifiers, Sigma value).

    Leading and trailing ``*`` become contains/startswith/endswith (SigmaHQ's
    style); wildcards inside stay Sigma wildcards.
    """
    if _INT.match(text) and len(text) < 16:
        return (), int(text)
    inner = text.strip("*")
    if not inner:
        return (), sigma_pattern(text)
    lead, trail = text.startswith("*"), text.endswith("*")
    mods = ("contains",) if lead and trail else ("startswith",) if trail else ("endswith",) if lead else ()
    return mods, sigma_pattern(inner)


# --------------------------------------------------------------------------
# lowering


@dataclass
class Lowering:
    """Context for :func:`lower`: field naming and the reasons collected.

    ``field_name`` returns None for a field with no Sigma counterpart; a term on
    it is then left out, broadening the rule.
    """

    field_name: Callable[[str], str | None] = lambda f: f
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was folded in by a rewrite (for the report)

    def unmapped(self, name: str) -> str:
        """Why a field has no Sigma counterpart (for the report)."""
        return f"{name} has no Sigma field in this logsource"

    def equals(self, name: str, text: str) -> Node | None:
        """``name=text`` as a Sigma item (None: the field cannot be expressed)."""
        sigma = self.field_name(name)
        return None if sigma is None else _equals(sigma, text)

    def not_equals(self, name: str, equals: Node) -> Node:
        """``name!=text`` given ``name=text``: Splunk's ``!=`` needs the field present, unlike ``NOT``."""
        sigma = self.field_name(name)
        assert sigma is not None
        return make_and([Item(sigma, ("exists",), (True,)), make_not(equals)])

    def computed(self, expr: ast.Compare | ast.InList) -> Node | None:
        """A test on a field the search computes, when its values are known (None: they are not)."""
        return None

    def drop(self, expr: ast.SearchExpr, negated: bool, why: str) -> Const:
        self.reasons.append(f"`{print_search(expr)}` not carried over: {why}; the rule is broader")
        return FALSE if negated else TRUE


def lower(expr: ast.SearchExpr, ctx: Lowering, negated: bool = False) -> Node:
    if isinstance(expr, ast.And):
        return make_and([lower(x, ctx, negated) for x in expr.operands])
    if isinstance(expr, ast.Or):
        return make_or([lower(x, ctx, negated) for x in expr.operands])
    if isinstance(expr, ast.Not):
        return make_not(lower(expr.operand, ctx, not negated))
    if isinstance(expr, ast.Compare | ast.InList) and expr.field in STORAGE_FIELDS:
        return ctx.drop(expr, negated, f"Sigma events have no {expr.field.lower()}")
    if isinstance(expr, ast.Compare | ast.InList) and (known := ctx.computed(expr)) is not None:
        return known
    if isinstance(expr, ast.Compare | ast.InList) and ctx.field_name(expr.field) is None:
        return ctx.drop(expr, negated, ctx.unmapped(expr.field))
    if isinstance(expr, ast.Compare):
        return _lower_compare(expr, ctx, negated)
    if isinstance(expr, ast.InList):
        items = [ctx.equals(expr.field, v.text) for v in expr.values]
        if any(i is None for i in items):
            return ctx.drop(expr, negated, f"values of {expr.field} have no Sigma form")
        return make_or(items)  # type: ignore[arg-type]
    if isinstance(expr, ast.Term):
        if expr.value.text and set(expr.value.text) == {"*"}:
            return TRUE
        ctx.reasons.append(
            f"keyword `{print_search(expr)}` becomes a full-text substring match "
            "(Splunk matches whole terms), which is broader"
        )
        return Item(None, (), (sigma_pattern(f"*{expr.value.text.strip('*')}*"),))
    if isinstance(expr, ast.Subsearch):
        return ctx.drop(expr, negated, "subsearch results are not known when converting")
    raise TypeError(f"not a search expression: {expr!r}")


def splunk_match(value: str, pattern: str) -> bool:
    """Splunk search-language matching of one value: case-insensitive, ``*`` any run."""
    return _wildcard_regex(pattern).fullmatch(value) is not None


@lru_cache(maxsize=8192)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.IGNORECASE | re.DOTALL)


def _equals(field_name: str, text: str) -> Item:
    mods, value = search_value(text)
    return Item(field_name, mods, (value,))


def _lower_compare(expr: ast.Compare, ctx: Lowering, negated: bool) -> Node:
    name = ctx.field_name(expr.field)
    assert name is not None  # lower() drops unmapped fields first
    if expr.op in ("=", "!="):
        equals = ctx.equals(expr.field, expr.value.text)
        if equals is None:
            return ctx.drop(expr, negated, f"values of {expr.field} have no Sigma form")
        return equals if expr.op == "=" else ctx.not_equals(expr.field, equals)
    mod = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[expr.op]
    if _NUMBER.match(expr.value.text):
        exact = order_node(name, expr.op, expr.value.text)
        if exact is not None:
            return exact
        num = float(expr.value.text) if "." in expr.value.text else int(expr.value.text)
        # Splunk compares a value that is not a number with the literal as text; Sigma's lt/gt/... never
        # match one. Keeping every such value (or, negated, leaving them to the NOT) is broader.
        ctx.reasons.append(
            f"`{expr.field}{expr.op}{expr.value.text}`: Splunk compares values of {expr.field} that are not "
            "numbers as text, which the rule cannot; it keeps all of them, which is broader"
        )
        compare = Item(name, (mod,), (num,))
        return compare if negated else make_or([compare, Item(name, ("re",), (NOT_A_NUMBER,))])
    return ctx.drop(expr, negated, "Sigma compares only numbers with < and >")


# a value Splunk does not read as a number (it then compares it with < and > as text)
_NUMERIC = r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$"
NOT_A_NUMBER = rf"^(?!{_NUMERIC})"
_ORDER_MODS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_TEXT_ORDERABLE = re.compile(r"^[0-9.+-]+$")


def text_order_regex(op: str, literal: str) -> str | None:
    """A regular expression for the values that are not numbers and compare ``op literal`` as text, as
    Splunk compares them; None when the literal holds characters whose order case could change."""
    if not _TEXT_ORDERABLE.match(literal):
        return None
    above = op in (">", ">=")
    alts = []
    for i, c in enumerate(literal):  # the first character that differs decides
        if above:
            alts.append(f"{re.escape(literal[:i])}[^\\x00-\\x{ord(c):02x}]")
        elif ord(c) > 0:
            alts.append(f"{re.escape(literal[:i])}[\\x00-\\x{ord(c) - 1:02x}]")
    if above:  # the literal and more (>), or from the literal on (>=)
        alts.append(re.escape(literal) + ("[\\s\\S]" if op == ">" else ""))
    else:  # a proper prefix of the literal sorts before it; the literal itself for <=
        prefixes = [re.escape(literal[:i]) for i in range(len(literal) + (op == "<="))]
        alts.append("(?:" + "|".join(prefixes) + ")$")
    return f"^(?!{_NUMERIC})(?:" + "|".join(alts) + ")"


def order_node(field: str, op: str, literal: str) -> Node | None:
    """``field op literal`` (a number) as Splunk decides it: numerically for numbers, as text for other
    values. None when the text half has no exact form (see :func:`text_order_regex`)."""
    regex = text_order_regex(op, literal)
    if regex is None:
        return None
    num = float(literal) if "." in literal else int(literal)
    return make_or([Item(field, (_ORDER_MODS[op],), (num,)), Item(field, ("re",), (regex,))])


def make_and(children: list[Node]) -> Node:
    flat: list[Node] = []
    for c in children:
        if c == TRUE:
            continue
        if c == FALSE:
            return FALSE
        flat.extend(c.children if isinstance(c, SAnd) else [c])
    if not flat:
        return TRUE
    return flat[0] if len(flat) == 1 else SAnd(tuple(flat))


def make_or(children: list[Node]) -> Node:
    flat: list[Node] = []
    for c in children:
        if c == FALSE:
            continue
        if c == TRUE:
            return TRUE
        flat.extend(c.children if isinstance(c, SOr) else [c])
    if not flat:
        return FALSE
    return flat[0] if len(flat) == 1 else SOr(tuple(flat))


def make_not(child: Node) -> Node:
    if isinstance(child, Const):
        return Const(not child.value)
    if isinstance(child, SNot):
        return child.child
    return SNot(child)


# --------------------------------------------------------------------------
# emission


@dataclass
class Emitter:
    detection: dict[str, Any] = field(default_factory=dict)

    def _new(self, body: Any, negated: bool, keyword: bool) -> str:
        base = "keywords" if keyword else ("filter" if negated else "selection")
        name, n = base, 1
        while name in self.detection:
            n += 1
            name = f"{base}_{n}"
        self.detection[name] = body
        return name

    def condition(self, node: Node, negated: bool = False) -> tuple[str, int]:
        """(condition text, precedence: 1 or, 2 and, 3 not/atom)."""
        if isinstance(node, Item) and node.field is None:
            return self.keywords(node, negated), 3
        if isinstance(node, SNot):
            text, prec = self.condition(node.child, not negated)
            return f"not {text if prec == 3 else f'({text})'}", 3
        if isinstance(node, Item | SAnd):
            children = node.children if isinstance(node, SAnd) else (node,)
            items = [c for c in children if _field_item(c)]
            parts = self._selections_for_and(items, negated) if items else []
            for c in children:
                if not _field_item(c):
                    text, prec = self.condition(c, negated)
                    parts.append(text if prec >= 2 else f"({text})")
            return " and ".join(parts), 2 if len(parts) > 1 else 3
        if isinstance(node, SOr):
            items = [c for c in node.children if _field_item(c)]
            parts = [self._selection_for_or(items, negated)] if items else []
            parts += [self.condition(c, negated)[0] for c in node.children if not _field_item(c)]
            return " or ".join(parts), 1 if len(parts) > 1 else 3
        raise TypeError(f"cannot emit {node!r}")

    def _selections_for_and(self, items: list[Item], negated: bool) -> list[str]:
        """ANDed field items: one map per group of keys that can share it."""
        maps: list[dict[str, Any]] = []
        for item in items:
            if not any(_merge_and(m, item) for m in maps):
                maps.append({})
                _merge_and(maps[-1], item)
        return [self._new(m, negated, keyword=False) for m in maps]

    def _selection_for_or(self, items: list[Item], negated: bool) -> str:
        """ORed field items: same key -> one value list; different keys -> a list of maps."""
        groups: dict[str, list[Any]] = {}
        seen: dict[str, set[Any]] = {}
        for item in items:
            values = groups.setdefault(item.key, [])
            keys = seen.setdefault(item.key, set())
            folds = _folds_case(item.key)
            for v in item.values:
                k = v.lower() if folds and isinstance(v, str) else v
                if k not in keys:
                    keys.add(k)
                    values.append(v)
        entries = [{key: values[0] if len(values) == 1 else values} for key, values in groups.items()]
        return self._new(entries[0] if len(entries) == 1 else entries, negated, keyword=False)

    def keywords(self, item: Item, negated: bool) -> str:
        return self._new(list(item.values), negated, keyword=True)


def _folds_case(key: str) -> bool:
    """Do values under ``key`` compare case-insensitively (so ``A`` repeats ``a``)?

    Plain Sigma values do; ``|cased`` values and regular expressions without ``|i`` do not.
    """
    modifiers = key.split("|")[1:]
    return "cased" not in modifiers and ("re" not in modifiers or "i" in modifiers)


def _field_item(node: Node) -> bool:
    return isinstance(node, Item) and node.field is not None


_NO_ALL = ("exists", "gt", "gte", "lt", "lte")


def _merge_and(m: dict[str, Any], item: Item) -> bool:
    """Add ``item`` to map ``m`` if it can share it; same-key single values become ``|all``."""
    key, all_key = item.key, f"{item.key}|all"
    if key not in m and all_key not in m:
        m[key] = item.values[0] if len(item.values) == 1 else list(item.values)
        return True
    if len(item.values) != 1 or (item.modifiers and item.modifiers[-1] in _NO_ALL):
        return False
    if all_key in m:
        m[all_key].append(item.values[0])
        return True
    if isinstance(m[key], list):
        return False
    m[all_key] = [m.pop(key), item.values[0]]
    return True


def build_detection(node: Node) -> dict[str, Any]:
    """IR -> Sigma ``detection`` mapping with its ``condition``."""
    if isinstance(node, Const):
        raise ValueError("a constant condition has no Sigma detection")
    em = Emitter()
    text, _ = em.condition(node)
    em.detection["condition"] = text
    return em.detection

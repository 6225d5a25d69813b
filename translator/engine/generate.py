"""Events synthesized from an original search, so parity can check detections the samples never trigger.

From the first command's filter (a raw search, or a ``tstats ... where`` over a
data model) this builds one event that satisfies it (a *positive*) and, for
each term, an event that breaks only that term (a *near miss*). Values are
chosen to fit each wildcard, comparison and negation; data-model fields are
turned back into raw fields through ``data/cim.yml`` (the converter's table,
read the other way); source terms become the event's channel. Generation
reads only the original's AST, never the Sigma rule, so it cannot hide a
translation mistake.

The positive also carries the fields a later ``stats ... by`` groups on, since
Splunk drops events lacking one. A later test on a value ``eval`` or ``rex``
computes is written on the fields it comes from, through the lineage's analysis
of the original (:mod:`translator.sigma.forms`), with near values for captures;
the SPL executor still decides what the original selects. Windows searches (source terms naming a
channel, or a Windows data-model feed) give event-log records, kept as
XmlWinEventLog lines; searches of other products' sourcetypes (cloud, SaaS,
network) give JSON documents carrying that ``sourcetype``, kept as JSON lines.
Both files sit beside the report so a failure can be replayed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from translator.content.loader import Lookup
from translator.data import load_table, logsource_table
from translator.engine.logsources import selector
from translator.engine.spl_exec import compile_search
from translator.engine.spl_values import as_number, search_compare, search_equals
from translator.errors import ContentError
from translator.sigma import forms as fm
from translator.sigma.cim import raw_feed, select_feed
from translator.sigma.detection import CIDR
from translator.sigma.lineage import Cases, FieldScope, aggregate_outputs
from translator.sigma.logsource import windows_channel
from translator.spl import ast
from translator.spl.patterns import REX_GROUP

Flat = dict[str, Any]
MISS = "zz_no_match"


@dataclass
class Want:
    """What one field must look like."""

    match: list[str] = field(default_factory=list)  # search patterns it must match
    avoid: list[str] = field(default_factory=list)  # patterns it must not match
    compare: list[tuple[str, str]] = field(default_factory=list)  # (op, value) comparisons
    present: bool = False  # f!=v and f=* need the field
    absent: bool = False


Wants = dict[str, Want]


def _merge(a: Wants, b: Wants) -> Wants:
    out = {k: Want(list(v.match), list(v.avoid), list(v.compare), v.present, v.absent) for k, v in a.items()}
    for k, w in b.items():
        o = out.setdefault(k, Want())
        o.match += w.match
        o.avoid += w.avoid
        o.compare += w.compare
        o.present |= w.present
        o.absent |= w.absent
    return out


def solve(expr: ast.SearchExpr, negated: bool = False) -> Wants | None:
    """Constraints that make ``expr`` true (false when ``negated``); the first feasible OR branch."""
    if isinstance(expr, ast.Not):
        return solve(expr.operand, not negated)
    if isinstance(expr, ast.And | ast.Or):
        conjunctive = isinstance(expr, ast.And) != negated
        if conjunctive:
            out: Wants = {}
            for e in expr.operands:
                part = solve(e, negated)
                if part is None:
                    return None
                out = _merge(out, part)
            return out if all(value_for(w) is not None for w in out.values()) else None
        for e in expr.operands:
            part = solve(e, negated)
            if part is not None and all(value_for(w) is not None for w in part.values()):
                return part
        return None
    if isinstance(expr, ast.InList):
        return solve(ast.Or(tuple(ast.Compare(expr.field, "=", v) for v in expr.values)), negated)
    if isinstance(expr, ast.Compare):
        op, v = expr.op, expr.value.text
        if op == "=":
            if v == "*":
                return {expr.field: Want(absent=True)} if negated else {expr.field: Want(present=True)}
            return {expr.field: Want(avoid=[v])} if negated else {expr.field: Want(match=[v])}
        if op == "!=":
            return {expr.field: Want(match=[v])} if negated else {expr.field: Want(avoid=[v], present=True)}
        flip = {"<": ">=", ">": "<=", "<=": ">", ">=": "<"}
        return {expr.field: Want(compare=[(flip[op] if negated else op, v)], present=True)}
    if isinstance(expr, ast.Term) and expr.value.text == "*":
        return None if negated else {}
    return None  # keyword terms, subsearches: not generated


def value_for(w: Want) -> str | None:
    """A value meeting every constraint (None: none found; "" never stands for absent)."""
    if w.absent:
        return None if (w.match or w.present or w.compare) else ""
    candidates: list[str] = []
    exact = [p for p in w.match if "*" not in p and not CIDR.match(p)]
    if exact:
        candidates = [exact[0]]
    elif networks := [p for p in w.match if CIDR.match(p)]:
        net = ipaddress.ip_network(networks[0], strict=False)
        candidates = [str(net.network_address + (1 if net.num_addresses > 1 else 0))]
    elif w.match:
        prefix = max((p.split("*")[0] for p in w.match), key=len)
        suffix = max((p.split("*")[-1] for p in w.match), key=len)
        middle = [seg for p in w.match for seg in p.split("*")[1:-1] if seg]
        candidates = [prefix + "".join(m + " " for m in middle) + suffix, prefix + " ".join(middle) + " " + suffix]
    elif w.compare:
        op, v = w.compare[0]
        n = as_number(v)
        if n is None:
            candidates = [v + "z" if ">" in op else " "]
        else:
            step = {"<": -1, "<=": 0, ">": 1, ">=": 0}[op]
            candidates = [str(int(n) + step) if n.is_integer() else str(n + step)]
    else:
        candidates = [MISS if w.avoid else "x"]
    for c in candidates + [c + "_" + MISS for c in candidates]:
        if _fits(c, w):
            return c
    return None


def _fits(value: str, w: Want) -> bool:
    return (
        all(search_equals(value, p) for p in w.match)
        and not any(search_equals(value, p) for p in w.avoid)
        and all(search_compare(value, op, v) for op, v in w.compare)
    )


# -- which fields the rest of the search needs ------------------------------------------------------

_SOURCE_TERMS = ("source", "sourcetype", "eventtype", "index")


@dataclass
class Rest:
    """What the commands after the first ask of an event, in the first command's field names."""

    kept: list[str] = field(default_factory=list)  # fields a group-by or dedup drops events without
    terms: list[ast.SearchExpr] = field(default_factory=list)  # later filters on event fields
    hex: set[str] = field(default_factory=set)  # event fields the search reads hex-decoded (auditd titles)
    # a term said on a computed value's source field -> terms that come close without passing it
    near: list[tuple[ast.SearchExpr, ast.SearchExpr]] = field(default_factory=list)
    # when a computed group-by field has a value: kept where the other terms leave room for it
    soft: list[ast.SearchExpr] = field(default_factory=list)


def read_rest(
    commands: tuple[ast.Command, ...],
    grouped: tuple[str, ...] | None = None,
    lookups: Mapping[str, Lookup] | None = None,
) -> Rest:
    """Follow the commands after the first: group-by fields an event must carry (Splunk drops an
    event lacking one) and later ``search``/``where`` filters on the event's own fields, read back
    through renames; fields an earlier command makes (eval, rex, lookup outputs, aggregates) are
    left alone. ``grouped``: the first command already aggregated (tstats) by these fields.
    A filter on what a CSV lookup of ``lookups`` outputs picks the first row that passes it and
    asks the event for that row's input values instead."""
    out = Rest()
    scope = FieldScope()  # which computed names are an event field hex-decoded (lineage.hex_text)
    formed: set[str] = set()  # event fields a term on a computed value was said on (named as the event has them)
    looked_up: dict[str, ast.LookupCommand] = {}  # output name -> the lookup that set it
    made: set[str] = set()
    renames: list[tuple[str, str]] = []  # (old, new) in order; patterns may hold one "*"
    rows = grouped is not None  # after an aggregation only its by-fields are an event's values
    by: set[str] = set(grouped or ())
    if grouped is not None:
        scope.aggregate(grouped, [])  # tstats: its by-fields are the event fields left

    def origin(name: str) -> str:
        text = scope.hex.get(name)
        if text is not None and text.decoded:
            out.hex.add(text.field)
            return text.field  # a filter on the decoded text: its plain form on the field (hex variants follow)
        return _origin(renames, name)

    def usable(name: str) -> bool:
        decoded = name in scope.hex and scope.hex[name].decoded and not rows
        return decoded or (name not in made and (not rows or origin(name) in by))

    def need(names: tuple[str, ...] | list[str]) -> None:
        out.kept.extend(n for n in (origin(f) for f in names if f not in made) if n not in out.kept)

    def keep_filter(expr: ast.SearchExpr | None) -> None:
        if expr is None:
            return
        names = _fields_of(expr)
        sources = {id(looked_up[f]): looked_up[f] for f in names if f in looked_up}
        if len(sources) == 1 and all(f in looked_up for f in names):
            expr = _lookup_row(next(iter(sources.values())), expr, lookups or {})
            if expr is None or not all(usable(f) for f in _fields_of(expr)):
                return
        else:
            if any(f in scope.forms or f in scope.cases for f in names):
                said = _formed(expr, scope, out)
                expr = said[0] if said is not None else None
                formed.update(said[1] if said is not None else ())
            if expr is None or not all(usable(f) for f in _fields_of(expr) if f not in formed):
                return
        for term in _conjuncts(_renamed(expr, lambda n: n if n in formed else origin(n))):
            if solve(term) is not None and solve(ast.Not(term)) is not None:
                out.terms.append(term)

    for cmd in commands:
        if not isinstance(cmd, ast.StatsCommand):
            scope.apply(cmd)
        if isinstance(cmd, ast.EvalCommand):
            made.update(a.field for a in cmd.assignments)
        elif isinstance(cmd, ast.RenameCommand):
            for old, new in cmd.pairs:
                renames.append((old, new))
                if "*" not in new:
                    (made.add if old in made else made.discard)(new)
        elif isinstance(cmd, ast.FillnullCommand):
            if not cmd.fields:
                break  # every later field is filled
            made.update(cmd.fields)
        elif isinstance(cmd, ast.LookupCommand):
            outputs = [o.alias or o.field for o in cmd.outputs]
            made.update(outputs)
            looked_up.update(dict.fromkeys(outputs, cmd))
        elif isinstance(cmd, ast.ArgsCommand) and cmd.name == "rex":
            made.update(g for a in cmd.args for g in REX_GROUP.findall(a.text))
        elif isinstance(cmd, ast.ArgsCommand) and cmd.name == "dedup" and not rows:
            if (cmd.option("keepempty") or "false").lower() != "true":
                need([a.text for a in cmd.args])
        elif isinstance(cmd, ast.SearchCommand):
            keep_filter(cmd.expr)
        elif isinstance(cmd, ast.WhereCommand):
            keep_filter(where_as_search(cmd.expr))
        elif isinstance(cmd, ast.RegexCommand) and cmd.field and (pattern := _regex_as_pattern(cmd.pattern)):
            term = ast.Compare(cmd.field, "=", ast.Value(pattern, True))
            keep_filter(ast.Not(term) if cmd.negated else term)
        elif isinstance(cmd, ast.StatsCommand):
            if rows:
                break  # a second aggregation: its rows are groups of groups
            need(cmd.by)
            for name in (f for f in cmd.by if f in made and not rows):  # computed: present when its inputs are
                when = scope.presence.get(name, fm.present(scope.forms[name]) if name in scope.forms else None)
                term = fm.cond_terms(when) if when is not None and when is not True else None
                if term is not None and solve(term) is not None and solve(ast.Not(term)) is not None:
                    out.soft.append(term)
            made.update(aggregate_outputs(cmd.aggregations))
            if cmd.name != "eventstats":
                rows, by = True, {origin(f) for f in cmd.by}
        elif isinstance(cmd, ast.SubpipelineCommand):
            break  # join / append: rows from elsewhere
    return out


def _formed(expr: ast.SearchExpr, scope: FieldScope, out: Rest) -> tuple[ast.SearchExpr, set[str]] | None:
    """Terms on a computed value with a form (:mod:`translator.sigma.forms`) said on its source field:
    a pattern whose events give the value the term asks for (the SPL executor then decides whether the
    original selects them); near values go to ``out.near``. None when a term cannot be said."""
    fields: set[str] = set()

    def said(term: ast.SearchExpr, negated: bool = False) -> ast.SearchExpr | None:
        if isinstance(term, ast.And | ast.Or):
            parts = [said(t, negated) for t in term.operands]
            return None if any(p is None for p in parts) else type(term)(tuple(parts))  # type: ignore[arg-type]
        if isinstance(term, ast.Not):
            inner = said(term.operand, not negated)
            return None if inner is None else ast.Not(inner)
        if isinstance(term, ast.InList) and term.field in scope.forms:
            return said(ast.Or(tuple(ast.Compare(term.field, "=", v) for v in term.values)), negated)
        form = scope.forms.get(term.field) if isinstance(term, ast.Compare) else None
        cases = scope.cases.get(term.field) if isinstance(term, ast.Compare) else None
        if form is None and cases is None:
            return None if any(f in scope.forms or f in scope.cases for f in _fields_of(term)) else term
        assert isinstance(term, ast.Compare)
        if form is None:
            terms = _case_terms(cases, term.value.text) if cases is not None and term.op in ("=", "!=") else None
        else:
            terms = fm.source_terms(form, "=" if term.op == "!=" else term.op, term.value.text)
        if terms is None:
            return None
        hit, miss = terms if term.op != "!=" else terms[::-1]  # != holds where = fails with a value
        fields.update([*_fields_of(hit), *_fields_of(miss)])
        if not negated and isinstance(hit, ast.Compare):
            close = fm.near_values(form, term.value.text) if term.op != "!=" else []
            out.near.extend((hit, ast.Compare(f, "=", ast.Value(v, True))) for f, v in close)
        return hit if not negated else ast.Not(miss)  # the Not above turns it back into the miss

    result = said(expr)
    return None if result is None else (result, fields)


def _case_terms(cases: Cases, value: str) -> tuple[ast.SearchExpr, ast.SearchExpr] | None:
    """(hit, miss) for ``X = value`` on a value an ``if``/``case`` picks among literals: the conditions
    of the cases giving a value that matches, and of those giving another (see :data:`Cases`)."""
    picked = [fm.cond_terms(c) for c, v in cases if search_equals(v, value)]
    others = [fm.cond_terms(c) for c, v in cases if not search_equals(v, value)]
    if not picked or not others or any(t is None for t in (*picked, *others)):
        return None
    hit, miss = (ast.Or(tuple(ts)) if len(ts) > 1 else ts[0] for ts in (picked, others))  # type: ignore[arg-type]
    return hit, miss


def _origin(renames: list[tuple[str, str]], name: str) -> str:
    """The name a field had before ``renames`` (in order; patterns may hold one ``*``)."""
    for old, new in reversed(renames):
        if "*" in new and "*" in old:
            head, _, tail = new.partition("*")
            if name.startswith(head) and name.endswith(tail) and len(name) >= len(head) + len(tail):
                name = old.replace("*", name[len(head) : len(name) - len(tail)], 1)
        elif name == new:
            name = old
    return name


def _lookup_row(cmd: ast.LookupCommand, expr: ast.SearchExpr, lookups: Mapping[str, Lookup]) -> ast.SearchExpr | None:
    """``expr`` tests only what ``cmd`` outputs: the inputs of the first row of the table that passes it."""
    table = lookups.get(cmd.table)
    if table is None or not cmd.inputs:
        return None
    test = compile_search(expr)
    columns = {o.alias or o.field: o.field for o in cmd.outputs}
    try:
        rows = table.rows()
    except ContentError:
        return None
    for row in rows:
        inputs = [(i.alias or i.field, row.get(i.field, "")) for i in cmd.inputs]
        if all(v for _n, v in inputs) and test({name: row.get(col) or None for name, col in columns.items()}):
            return ast.And(tuple(ast.Compare(name, "=", ast.Value(value, True)) for name, value in inputs))
    return None


def kept_fields(commands: tuple[ast.Command, ...]) -> list[str]:
    """The group-by fields an event must carry (see :func:`read_rest`)."""
    return read_rest(commands).kept


def _fields_of(expr: ast.SearchExpr) -> list[str]:
    if isinstance(expr, ast.And | ast.Or):
        return [f for e in expr.operands for f in _fields_of(e)]
    if isinstance(expr, ast.Not):
        return _fields_of(expr.operand)
    if isinstance(expr, ast.Compare | ast.InList):
        return [expr.field]
    return []


def _renamed(expr: ast.SearchExpr, origin: Callable[[str], str]) -> ast.SearchExpr:
    if isinstance(expr, ast.And):
        return ast.And(tuple(_renamed(e, origin) for e in expr.operands))
    if isinstance(expr, ast.Or):
        return ast.Or(tuple(_renamed(e, origin) for e in expr.operands))
    if isinstance(expr, ast.Not):
        return ast.Not(_renamed(expr.operand, origin))
    if isinstance(expr, ast.Compare):
        return ast.Compare(origin(expr.field), expr.op, expr.value)
    if isinstance(expr, ast.InList):
        return ast.InList(origin(expr.field), expr.values)
    return expr


_WHERE_OPS = {"=": "=", "==": "=", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


def where_as_search(expr: ast.Expr) -> ast.SearchExpr | None:
    """A ``where`` expression in the search language, when it only compares fields with literals
    (``f="x"``, ``like(f, "%x%")``, ``isnotnull(f)``, ``f IN (...)``, and/or/not of those) or two
    fields (``a=b``: both get one value); None otherwise. For generating values only: a literal
    that fits is an exact value on both sides."""
    if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
        left, right = where_as_search(expr.left), where_as_search(expr.right)
        if left is None or right is None:
            return None
        return ast.And((left, right)) if expr.op == "and" else ast.Or((left, right))
    if isinstance(expr, ast.Unary) and expr.op == "not":
        inner = where_as_search(expr.operand)
        return ast.Not(inner) if inner is not None else None
    if (
        isinstance(expr, ast.Binary)
        and expr.op in ("=", "==", "!=")
        and isinstance(expr.left, ast.Field)
        and isinstance(expr.right, ast.Field)
    ):
        # two fields: equal (or not) values for both; the term stands for the comparison when generating
        other = "gen_same" if expr.op != "!=" else "gen_other"
        return ast.And(
            (
                ast.Compare(expr.left.name, "=", ast.Value("gen_same", True)),
                ast.Compare(expr.right.name, "=", ast.Value(other, True)),
            )
        )
    if isinstance(expr, ast.Binary) and expr.op in _WHERE_OPS and isinstance(expr.left, ast.Field):
        value = _literal(expr.right)
        if value is None or "*" in value:
            return None
        return ast.Compare(expr.left.name, _WHERE_OPS[expr.op], ast.Value(value, True))
    if isinstance(expr, ast.InExpr) and isinstance(expr.operand, ast.Field):
        values = [_literal(v) for v in expr.values]
        if any(v is None or "*" in v for v in values):
            return None
        return ast.InList(expr.operand.name, tuple(ast.Value(v, True) for v in values if v is not None))
    if isinstance(expr, ast.Call) and expr.args and isinstance(expr.args[0], ast.Field):
        name, target = expr.name.lower(), expr.args[0].name
        if name == "isnotnull" and len(expr.args) == 1:
            return ast.Compare(target, "=", ast.Value("*"))
        if name == "isnull" and len(expr.args) == 1:
            return ast.Not(ast.Compare(target, "=", ast.Value("*")))
        if name == "like" and len(expr.args) == 2:
            pattern = _literal(expr.args[1])
            if pattern is None or "_" in pattern or "*" in pattern or "\\" in pattern:
                return None
            return ast.Compare(target, "=", ast.Value(pattern.replace("%", "*"), True))
    return None


_REGEX_SPECIAL = set("\\.^$*+?()[]{}|")


def _regex_as_pattern(regex: str) -> str | None:
    """A regular expression that is a plain text, perhaps anchored, as a search pattern (``^ab`` -> ``ab*``)."""
    body = regex[1:] if regex.startswith("^") else regex
    body = body[:-1] if body.endswith("$") else body
    if not body or any(c in _REGEX_SPECIAL for c in body):
        return None
    return ("" if regex.startswith("^") else "*") + body + ("" if regex.endswith("$") else "*")


def _literal(expr: ast.Expr) -> str | None:
    if isinstance(expr, ast.Str):
        return expr.value
    if isinstance(expr, ast.Num):
        return expr.text
    return None


_MAX_COPIES = 100  # a threshold above this is not generated for (the files would balloon)


def copies_needed(commands: tuple[ast.Command, ...]) -> int:
    """How many copies of an event a ``stats count ... | where count > N`` after the first command
    needs to pass (1 without such a threshold; 0 when it is over :data:`_MAX_COPIES`)."""
    return _thresholds(commands)[0]


def distinct_needed(commands: tuple[ast.Command, ...]) -> tuple[str, int] | None:
    """For ``stats dc(F) as n ... | where n > N``: F (as the first command names it) and how many
    distinct values it needs (0 when over :data:`_MAX_COPIES`); None without such a threshold."""
    return _thresholds(commands)[1]


def _thresholds(commands: tuple[ast.Command, ...]) -> tuple[int, tuple[str, int] | None]:
    renames: list[tuple[str, str]] = []
    outputs: dict[str, str | None] = {}  # threshold-able output -> None (count) or the dc field
    need: dict[str | None, int] = {}
    for cmd in commands:
        if isinstance(cmd, ast.RenameCommand) and not outputs:
            renames.extend(cmd.pairs)
        elif isinstance(cmd, ast.StatsCommand) and not outputs:
            if cmd.name != "stats":
                continue
            for a in cmd.aggregations:
                if a.func == "count" and a.arg is None:
                    outputs[a.alias or "count"] = None
                elif a.func in ("dc", "distinct_count") and isinstance(a.arg, ast.Field) and a.arg.name != "_raw":
                    outputs[a.alias or f"{a.func}({a.arg.name})"] = _origin(renames, a.arg.name)
            if not outputs:
                break
        elif outputs and isinstance(cmd, ast.WhereCommand):
            for op, name, value in _comparisons(cmd.expr, set(outputs)):
                need[outputs[name]] = max(need.get(outputs[name], 1), _threshold(op, value))
        elif outputs and isinstance(cmd, ast.SearchCommand) and cmd.expr is not None:
            for term in _conjuncts(cmd.expr):
                if isinstance(term, ast.Compare) and term.field in outputs:
                    key = outputs[term.field]
                    need[key] = max(need.get(key, 1), _threshold(term.op, term.value.text))
        elif outputs and isinstance(cmd, ast.StatsCommand):
            break  # a second aggregation: its thresholds count groups, not events
    copies = need.get(None, 1)
    distinct = [(f, n) for f, n in need.items() if f is not None and n > 1]
    if len(distinct) > 1:
        return 0, None  # distinct values of two fields at once: not generated for
    dc = (distinct[0][0], distinct[0][1] if distinct[0][1] <= _MAX_COPIES else 0) if distinct else None
    return (copies if copies <= _MAX_COPIES else 0), dc


def _comparisons(expr: ast.Expr, names: set[str]) -> list[tuple[str, str, str]]:
    """``name OP number`` comparisons joined by AND in a where expression."""
    if isinstance(expr, ast.Binary) and expr.op == "and":
        return _comparisons(expr.left, names) + _comparisons(expr.right, names)
    if (
        isinstance(expr, ast.Binary)
        and isinstance(expr.left, ast.Field)
        and expr.left.name in names
        and isinstance(expr.right, ast.Num)
    ):
        return [(expr.op, expr.left.name, expr.right.text)]
    return []


def _threshold(op: str, value: str) -> int:
    n = as_number(value)
    if n is None:
        return 1
    return {">": int(n) + 1, ">=": int(-(-n // 1)), "=": int(n), "==": int(n)}.get(op, 1)


# -- from constraints to an event -------------------------------------------------------------------


@dataclass
class Generated:
    label: str  # "positive" or "near miss: term N"
    fields: Flat
    kind: str = "windows"  # "windows": an event-log record (XML line); "json": a JSON document

    def line(self, record: int) -> str:
        """The event as one line of its replay file."""
        return xml_line(self.fields, record) if self.kind == "windows" else json_line(self.fields)


ToEvent = Callable[[Wants], "tuple[str, Flat] | None"]


def generate(
    pipeline: ast.Pipeline, data_sources: tuple[str, ...] = (), lookups: Mapping[str, Lookup] | None = None
) -> list[Generated]:
    """A positive and near misses for ``pipeline``'s first command ([] when it cannot be generated for).

    The positive also carries every field a later ``stats ... by`` groups on (see :func:`kept_fields`);
    each of those is a term too, so a near miss lacks it. Behind a count threshold each event comes
    as many times as the threshold needs (see :func:`copies_needed`), behind a distinct-count one in
    as many variants of that field (:func:`distinct_needed`), so a near miss is rejected for its
    broken term, not for the count. Later ``search``/``where`` filters on event fields are terms too.
    """
    first = pipeline.commands[0] if pipeline.commands else None
    to_event: ToEvent
    if isinstance(first, ast.SearchCommand) and first.expr is not None:
        rest = read_rest(pipeline.commands[1:], None, lookups)
        expr, kept, to_event = first.expr, rest.kept, _raw_event
    elif isinstance(first, ast.TstatsCommand) and first.datamodel:
        feed = select_feed(first.datamodel, data_sources)
        if feed is None:
            return []
        expr = first.where if first.where is not None else ast.Term(ast.Value("*"))
        filled = any(o.key.lower() == "fillnull_value" for o in first.options)  # no row is dropped then
        rest = read_rest(pipeline.commands[1:], first.by, lookups)
        kept, to_event = ([] if filled else list(first.by)), _datamodel_event(feed)
        aggregation = ast.StatsCommand("stats", (), first.aggregations, first.by)  # thresholds read its outputs
    else:
        return []
    later = pipeline.commands[1:] if isinstance(first, ast.SearchCommand) else (aggregation, *pipeline.commands[1:])
    terms = _conjuncts(expr) + rest.terms
    for term in rest.soft:  # a by-field's presence, unless a filter on the same fields rules it out
        if solve(ast.And((*terms, term))) is not None:
            terms.append(term)
    terms += [ast.Compare(f, "=", ast.Value("*")) for f in kept if f != "_time"]
    copies, distinct = _thresholds(later)
    if copies == 0 or (distinct is not None and distinct[1] == 0):
        return []

    def repeated(label: str, chosen: list[ast.SearchExpr]) -> list[Generated]:
        """``copies`` of the event ``chosen`` gives, each in as many variants as a dc threshold needs."""
        if distinct is None:
            wanted = solve(ast.And(tuple(chosen)))
            made = to_event(wanted) if wanted is not None else None
            return [Generated(label, made[1], made[0])] * copies if made else []
        name, n = distinct
        base = solve(ast.And(tuple(chosen)))
        start = value_for(base[name]) if base is not None and name in base else "v"
        out = []
        for k in range(n):  # n different values of the dc field, each fitting the search
            variant = ast.Compare(name, "=", ast.Value(f"{start}{k}" if start else str(k), True))
            wanted = solve(ast.And((*chosen, variant)))
            made = to_event(wanted) if wanted is not None else None
            if made is None:
                return []
            out += [Generated(label, made[1], made[0])] * copies
        return out

    out = repeated("positive", terms)
    if not out:
        return []
    first_positive = out[0].fields
    for i in range(len(terms)):
        misses = repeated(f"near miss: term {i + 1}", [t if j != i else ast.Not(t) for j, t in enumerate(terms)])
        if misses and misses[0].fields != first_positive:
            out += misses
    for said, close in rest.near:  # a computed value's near values: its source field written close to the term
        if said in terms:
            i = terms.index(said)
            out += repeated(f"near value: term {i + 1}", [t if j != i else close for j, t in enumerate(terms)])
    return out + _hex_variants(out, rest.hex)


def _hex_variants(events: list[Generated], fields: set[str]) -> list[Generated]:
    """Each event again with the fields the search hex-decodes written as auditd writes a title with
    separators: uppercase hex, spaces as NUL bytes."""
    out = []
    for g in events:
        values = {f: g.fields[f] for f in sorted(fields) if isinstance(g.fields.get(f), str) and g.fields[f]}
        if values:
            encoded = {f: v.encode("utf-8").replace(b" ", b"\0").hex().upper() for f, v in values.items()}
            out.append(Generated(f"{g.label} (hex)", {**g.fields, **encoded}, g.kind))
    return out


def _conjuncts(expr: ast.SearchExpr) -> list[ast.SearchExpr]:
    return list(expr.operands) if isinstance(expr, ast.And) else [expr]


def _source_channel(value: str) -> str | None:
    """The one channel a Windows ``source``/``sourcetype`` value names (None for a pattern)."""
    channel = windows_channel(value.lstrip("*"))
    return channel if channel is not None and "*" not in channel else None


def _is_windows_source(value: str) -> bool:
    v = value.lower().lstrip("*")
    return any(v.startswith(p.lower().rstrip(":")) for p in logsource_table()["windows_source_prefixes"])


def _other_channel(w: Want) -> str | None:
    """A channel from the table that no rendering of the avoided source values names."""
    prefixes = logsource_table()["windows_source_prefixes"]
    for channel in logsource_table()["windows_channels"]:
        if all(_fits(prefix + channel, w) for prefix in prefixes):
            return str(channel)
    return None


def _other_sourcetype(w: Want) -> str | None:
    """For a near miss on a source term: a sourcetype of another logsource in the table, so the
    event is of a different product rather than of an unknown one (two sourcetypes of one
    logsource are one to a Sigma rule)."""
    table = logsource_table()["sourcetypes"]
    avoided = [dict(ls) for name, ls in table.items() if any(search_equals(name, p) for p in w.avoid)]
    for name, ls in table.items():
        if not _is_windows_source(str(name)) and dict(ls) not in avoided and _fits(str(name), w):
            return str(name)
    return value_for(w)


def _sourcetype_for(spec: dict[str, Any]) -> str | None:
    """A sourcetype the table says carries the logsource ``spec`` (for eventtypes of other products)."""
    want = {k: spec[k] for k in ("product", "category", "service") if spec.get(k)}
    for name, ls in logsource_table()["sourcetypes"].items():
        if dict(ls) == want:
            return str(name)
    return None


def _raw_event(wants: Wants) -> tuple[str, Flat] | None:
    """Constraints of a raw search -> a Windows record (source terms name its channel) or, for a
    sourcetype of another product, a JSON document carrying that sourcetype."""
    channel: str | None = None
    named: dict[str, str] = {}  # source / sourcetype values of a non-Windows event
    for name in ("source", "sourcetype"):
        w = wants.get(name)
        if w is None:
            continue
        for p in w.match:
            channel = channel or _source_channel(p)
        if w.avoid and not w.match and any(_source_channel(p) for p in w.avoid):
            channel = channel or _other_channel(w)  # a near miss on a Windows source: another channel
            continue
        if w.avoid and not w.match:  # a near miss on another product's source: all of another product's
            terms = [wants[n] for n in ("source", "sourcetype") if n in wants]
            other = _other_sourcetype(Want(avoid=[p for t in terms for p in t.avoid + t.match]))
            if other is None:
                return None
            named = {"sourcetype": other, "source": other}
            break
        value = value_for(w)
        if value is None or w.absent:
            return None
        if not _is_windows_source(value):
            named[name] = value
    if "eventtype" in wants:
        w = wants["eventtype"]
        spec = logsource_table().get("eventtypes", {}).get(w.match[0] if w.match else "", {})
        sel = selector(spec.get("product"), spec.get("category"), spec.get("service"))
        if sel.sources:
            channel = sorted(sel.sources[0].channels)[0]
        elif (sourcetype := _sourcetype_for(spec)) is not None:
            named.setdefault("sourcetype", sourcetype)
    rest = {k: v for k, v in wants.items() if k not in _SOURCE_TERMS}
    if channel is not None:
        return _windows_record(rest, channel)
    if named:
        values = _values(rest, set(), "/", _ALWAYS_ANY)
        if values is None:
            return None
        document: Flat = {"timestamp": TIME, "host": "gen-host.example", **named}
        document.setdefault("source", named.get("sourcetype", ""))
        return "json", {**document, **values}
    return None


TIME = "2024-05-01T12:00:00.000Z"
_ALWAYS_ANY = frozenset(logsource_table()["always_present"]["*"])
_SHAPES = {name: shape for shape, names in logsource_table()["value_shapes"].items() for name in names}


@cache
def _windows_aliases() -> dict[str, str]:
    """Splunk's names for raw Windows fields (host -> Computer, dest -> Computer, EventCode -> EventID)."""
    table = load_table("splunk_events")
    out = {k: str(v) for k, v in table["windows_aliases"].items()}
    for name, templates in table["windows"].items():
        if len(templates) == 1 and re.fullmatch(r"\{\w+\}", templates[0]):
            out[name] = templates[0][1:-1]
    return out


def _windows_record(wants: Wants, channel: str) -> tuple[str, Flat] | None:
    aliases = _windows_aliases()
    wants = _rename(wants, aliases)
    event_id: int | None = None
    ids = wants.pop("EventID", None)
    if ids is not None and (ids.match or ids.compare or ids.avoid or ids.absent):
        n = as_number(value_for(ids))
        if n is None or ids.absent:
            return None
        event_id = int(n)
    # CIM names the add-on extracts (process_name, ...) go back to the raw fields they come from
    service = (logsource_table()["windows_channels"].get(channel) or {}).get("service")
    if event_id is None:
        event_id = _free_event_id(service)  # every record has one; unconstrained, it pins no category
    source, feed = _raw_source(service, event_id)
    lowered = _lower(wants, feed, strict=False)
    if lowered is None:
        return None  # a CIM value no raw value stands for: no record can carry it
    raw, paths = lowered
    if source is not None and source.renames:
        raw = _rename(raw, {dst: src for src, dst in source.renames})
    present = logsource_table()["always_present"]
    always = _ALWAYS_ANY | set(present["windows"]) | set(aliases)
    category = _category(service, event_id)
    values = _values(raw, paths, "\\", always, tuple(present.get(f"windows/{category}", ())))
    if values is None:
        return None
    return "windows", _windows_event(values, channel, event_id)


def _free_event_id(service: str | None) -> int:
    """The smallest event id no category row of ``service`` names."""
    used = {int(c) for row in logsource_table()["categories"] if row["service"] == service for c in row["event_codes"]}
    return next(n for n in range(1, 70000) if n not in used)


def _category(service: str | None, event_id: int | None) -> str | None:
    """The Sigma category a (service, event id) pins (Sysmon 1 -> process_creation), if any."""
    for row in logsource_table()["categories"]:
        if row["service"] == service and row["event_codes"] == [event_id]:
            return str(row["category"])
    return None


def _raw_source(service: str | None, event_id: int | None) -> tuple[Any, Any]:
    """(the evaluator's source, the CIM feed) of the category a (service, event id) pins, if any."""
    category = _category(service, event_id)
    if category is None or event_id is None:
        return None, None
    sel = selector("windows", category, None)
    source = next((s for s in sel.sources if event_id in s.event_ids), None)
    return source, raw_feed({"product": "windows", "category": category})


def _rename(wants: Wants, names: dict[str, str]) -> Wants:
    out: Wants = {}
    for name, w in wants.items():
        out = _merge(out, {names.get(name, name): w})
    return out


def _windows_event(values: dict[str, str], channel: str, event_id: int | None) -> Flat:
    fields: Flat = {
        "Provider_Name": "Microsoft-Windows-Sysmon" if "Sysmon" in channel else channel.split("/")[0],
        "Channel": channel,
        "Computer": values.pop("Computer", "gen-host.example"),
        "TimeCreated": TIME,
        "ProcessID": 4,
        "ThreadID": 8,
    }
    if event_id is not None:
        fields["EventID"] = event_id
    fields.update(values)
    return fields


def _lower(wants: Wants, feed: Any, prefix: str = "", strict: bool = True) -> tuple[Wants, set[str]] | None:
    """CIM-named constraints -> constraints on the feed's Sigma (raw) fields, through ``data/cim.yml``.

    ``strict``: every name must be a CIM field of the feed (a data model row has no others);
    otherwise names the feed does not list pass through as raw names.
    """
    raw: Wants = {}
    paths: set[str] = set()
    sep = feed.separator if feed is not None else "\\"
    for name, w in wants.items():
        cim = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        rule = feed.fields.get(cim) if feed is not None else None
        if rule is None and feed is not None and cim in feed.always:
            if w.absent or w.match or w.avoid or w.compare:
                return None  # the add-on decides its value: no record can be made to hold another
            continue  # present on every event of the feed
        if rule is None:
            if strict and name not in _ALWAYS_ANY:
                return None  # no raw field carries it: not generated
            raw = _merge(raw, {name: w})
            continue
        if rule.value == "basename":
            if w.compare:
                return None
            # a file name pattern is a pattern on the path's last part
            part = Want(
                [_in_path(p, sep) for p in w.match], [_in_path(p, sep) for p in w.avoid], [], w.present, w.absent
            )
            paths.add(rule.sigma)
        elif rule.value == "values":
            # the first CIM value the constraints allow (any, when only presence is asked), as its raw value
            picked = [sigma[0] for c, sigma in rule.values if sigma and _fits(c, w)]
            if not picked or w.absent:
                return None
            part = Want(match=[picked[0]])
        elif rule.value in ("derived", "parent"):
            if w.match or w.avoid or w.compare:
                return None  # values computed from the raw field: not generated for
            part = Want(present=w.present, absent=w.absent)
        else:
            part = w
        raw = _merge(raw, {rule.sigma: part})
    return raw, paths


def _values(
    raw: Wants | None,
    paths: set[str],
    sep: str,
    always: frozenset[str] | set[str],
    required: tuple[str, ...] = (),
) -> Flat | None:
    """One value per constrained field. A field the record itself always carries (``always``:
    Computer, EventID, ...) needs no value when only its presence is asked; one every event of
    the category carries (``required``: a 4104's ScriptBlockText and UserID, in the table's order,
    so the replay files come out the same in every run) gets one anyway.
    Neither can be made absent."""
    if raw is None:
        return None
    raw = _merge({name: Want(present=True) for name in required}, raw)
    values: Flat = {}
    for name, w in raw.items():
        if (name in always or name in required) and w.absent:
            return None
        if name in always and not (w.match or w.avoid or w.compare):
            continue
        value = value_for(w)
        if value is None:
            return None
        if w.absent:
            continue
        if name in paths and not value.startswith(("C:", "/")):
            base = "/usr/bin" if sep == "/" else "C:\\Windows\\System32"
            full = base + value if value.startswith(sep) else base + sep + value
            value = full if _fits(full, w) else value
        values[name] = next((v for v in _shaped(name, value) if _fits(v, w)), value)
    return values


def _shaped(name: str, value: str) -> list[str]:
    """``value`` in the shape its source gives the field (``value_shapes`` in the logsource table):
    candidates, the first that still meets the constraints is taken."""
    shape = _SHAPES.get(name)
    if shape == "number" and not value.isdigit():
        return ["4242", "7"]
    if shape == "yes_no" and value not in ("yes", "no"):
        return ["yes", "no"]
    if shape == "hex_number" and not value.startswith("0x"):
        return ["0x1092"]
    if shape == "account" and "\\" not in value:
        return ["GEN\\" + value]
    if shape == "address":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return ["10.20.30.40", "203.0.113.7", "192.168.7.9", "172.16.5.4"]  # private, then public
    return []


def _datamodel_event(feed: Any) -> ToEvent:
    """Constraints on a data model's fields -> the raw record its feed builds the row from."""
    prefix = feed.prefix + "."
    sel = selector(feed.logsource.get("product"), feed.logsource.get("category"), feed.logsource.get("service"))
    source = next((s for s in sel.sources if not s.renames), None)

    def to_event(wants: Wants) -> tuple[str, Flat] | None:
        lowered = _lower({k: v for k, v in wants.items() if k not in _SOURCE_TERMS}, feed, prefix)
        if lowered is None:
            return None
        raw, paths = lowered
        if source is not None:  # a Windows feed: an event-log record of the feed's channel
            present = logsource_table()["always_present"]
            always = _ALWAYS_ANY | set(present["windows"])
            required = tuple(present.get(f"windows/{feed.logsource.get('category')}", ()))
            values = _values(raw, paths, feed.separator, always, required)
            if values is None:
                return None
            event_id = min(source.event_ids) if source.event_ids else None
            return "windows", _windows_event(values, sorted(source.channels)[0], event_id)
        if sel.windows:
            return None
        values = _values(raw, paths, feed.separator, _ALWAYS_ANY)
        if values is None:
            return None
        # a feed of one product names its sourcetype; a generic one (any proxy) gets the one Splunk gives
        # JSON it has no sourcetype for, which the table does not know, so any product may read it
        sourcetype = _sourcetype_for(feed.logsource) or "_json"
        named = {"sourcetype": sourcetype, "source": sourcetype}
        return "json", {"timestamp": TIME, "host": "gen-host.example", **named, **values}

    return to_event


def _in_path(pattern: str, sep: str) -> str:
    """A file-name pattern as a pattern on the whole path."""
    return pattern if pattern.startswith("*") else f"*{sep}{pattern}"


# -- replay files -----------------------------------------------------------------------------------


def xml_line(fields: Flat, record: int) -> str:
    """A flat Windows event as one XmlWinEventLog line (what the XML reader takes back)."""
    system = {"Provider_Name", "Channel", "Computer", "TimeCreated", "EventID", "ProcessID", "ThreadID", "UserID"}
    data = "".join(
        f"<Data Name={quoteattr(str(k))}>{escape(str(v))}</Data>" for k, v in fields.items() if k not in system
    )
    execution = (
        f"<Execution ProcessID='{fields['ProcessID']}' ThreadID='{fields['ThreadID']}'/>"
        if "ProcessID" in fields and "ThreadID" in fields
        else ""
    )
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name={quoteattr(str(fields['Provider_Name']))}/>"
        + (f"<EventID>{fields['EventID']}</EventID>" if "EventID" in fields else "")
        + f"<TimeCreated SystemTime='{fields['TimeCreated']}'/><EventRecordID>{record}</EventRecordID>"
        + execution
        + f"<Channel>{escape(str(fields['Channel']))}</Channel><Computer>{escape(str(fields['Computer']))}</Computer>"
        + (f"<Security UserID={quoteattr(str(fields['UserID']))}/>" if "UserID" in fields else "")
        + "</System><EventData>"
        + data
        + "</EventData></Event>"
    )


def json_path(xml_path: Path) -> Path:
    """Where the JSON lines of the other products' events go, beside the XML file."""
    return xml_path.with_suffix(".jsonl")


def json_line(fields: Flat) -> str:
    """Splunk-style flat names (``a.b``, ``a{}.b``) back into one nested JSON document."""
    return json.dumps(nest(fields), ensure_ascii=False, sort_keys=False)


def nest(fields: Flat) -> dict[str, Any]:
    """The document whose flattening (:func:`translator.events.flatten.flatten_json`) gives ``fields``."""
    doc: dict[str, Any] = {}
    for name, value in fields.items():
        if not _place(doc, name.split("."), value):
            doc[name] = value  # a path that clashes with another field's: kept flat, it flattens the same
    return doc


def _place(node: dict[str, Any], parts: list[str], value: Any) -> bool:
    key, rest = parts[0], parts[1:]
    array = key.endswith("{}") and len(key) > 2
    key = key[:-2] if array else key
    if not rest:
        if key in node:
            return False
        node[key] = [value] if array else value
        return True
    if array:
        holder = node.setdefault(key, [{}])
        if not (isinstance(holder, list) and holder and isinstance(holder[0], dict)):
            return False
        child = holder[0]
    else:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return False
    return _place(child, rest, value)

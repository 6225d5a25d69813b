"""Run an ESCU search (its parsed, macro-expanded pipeline) on flat events, keeping lineage.

Each result row carries the references of the events it came from; a stats row
the union of its group's. Parity compares those events with the ones the Sigma
rule matched. Commands run with Splunk's semantics as far as the flat events
allow; anything not modelled (keyword terms that need the raw text, joins,
subsearches, ML) raises :class:`NotEvaluable` naming it, never a guess.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from translator.content import Content
from translator.data import load_table
from translator.engine.logsources import selector
from translator.engine.sigma_eval import NotEvaluable
from translator.engine.spl_values import (
    as_number,
    eval_compare,
    pcre,
    search_compare,
    search_equals,
    text,
    values_of,
)
from translator.events.splunk import dataset_row, feed_key, has_dataset, splunk_view
from translator.sigma.cim import select_feed
from translator.sigma.where import like_regex  # one ``like`` for the converter and the executor
from translator.spl import ast

Flat = dict[str, Any]


@dataclass
class Row:
    fields: Flat
    refs: frozenset[str]


@dataclass
class EventSet:
    """The events a search runs on, in Splunk's view, built once and shared by every detection."""

    refs: list[str]
    views: list[Flat]
    _datasets: dict[str, list[tuple[str, Flat]]] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Iterable[tuple[str, Flat]]) -> EventSet:
        refs, views = [], []
        for ref, fields in events:
            refs.append(ref)
            views.append(splunk_view(fields))
        return cls(refs, views)

    def dataset(self, name: str, feed: tuple[str, ...] | None) -> list[tuple[str, Flat]]:
        """The rows of data-model dataset ``name`` built from these events (one feed, or every feed)."""
        key = f"{name}|{feed}"
        rows = self._datasets.get(key)
        if rows is None:
            rows = []
            for ref, view in zip(self.refs, self.views, strict=True):
                row = dataset_row(name, view, feed)
                if row is not None:
                    rows.append((ref, row))
            self._datasets[key] = rows
        return rows


def run(pipeline: ast.Pipeline, events: EventSet, content: Content, data_sources: tuple[str, ...] = ()) -> list[Row]:
    """The result rows of ``pipeline`` over ``events``. Raises NotEvaluable.

    ``data_sources`` (the detection's) pick which feed builds a data model, as in the converter.
    """
    try:
        return _run(pipeline, events, content, data_sources)
    except ValueError as exc:  # a regular expression Python cannot read, a bad number
        raise NotEvaluable(str(exc)) from None


def _run(pipeline: ast.Pipeline, events: EventSet, content: Content, data_sources: tuple[str, ...]) -> list[Row]:
    rows: list[Row] = []
    commands = pipeline.commands
    if (
        commands
        and ast.command_name(commands[0]) in load_table("stages")["per_event"]
        and not (isinstance(commands[0], ast.SearchCommand) and not commands[0].explicit)
    ):  # `| rex ...` first reads every event, as if after `search *` (as the converter reads it)
        commands = (ast.SearchCommand(None, explicit=False), *commands)
    for i, command in enumerate(commands):
        if i == 0:
            rows = _first(command, events, data_sources)
            continue
        if isinstance(command, ast.FillnullCommand):
            rows = _fillnull(command, rows, _later_by_fields(commands[i + 1 :]))
            continue
        handler = _HANDLERS.get(type(command))
        if handler is None:
            name = ast.command_name(command)
            handler = _ARGS_HANDLERS.get(name) if isinstance(command, ast.ArgsCommand) else None
            if handler is None:
                raise NotEvaluable(f"`{name}` is not modelled by the SPL executor")
        rows = handler(command, rows, content)
    return rows


# -- the first command -------------------------------------------------------------------------


def _first(command: ast.Command, events: EventSet, data_sources: tuple[str, ...]) -> list[Row]:
    if isinstance(command, ast.SearchCommand):
        expr = command.expr
        test = compile_search(expr) if expr is not None else (lambda _f: True)
        return [
            Row(dict(view), frozenset((ref,)))
            for ref, view in zip(events.refs, events.views, strict=True)
            if test(view)
        ]
    if isinstance(command, ast.TstatsCommand):
        return _tstats(command, events, data_sources)
    raise NotEvaluable(f"a search starting with `{ast.command_name(command)}` does not read these events")


def _tstats(command: ast.TstatsCommand, events: EventSet, data_sources: tuple[str, ...]) -> list[Row]:
    if command.datamodel is None or not has_dataset(command.datamodel):
        raise NotEvaluable(f"data model {command.datamodel} is not built from raw events yet")
    chosen = select_feed(command.datamodel, data_sources)
    feed = feed_key(chosen.logsource) if chosen is not None else None
    options = {o.key: o.value.text for o in command.options}
    test = compile_search(command.where) if command.where is not None else (lambda _f: True)
    rows = [Row(dict(row), frozenset((ref,))) for ref, row in events.dataset(command.datamodel, feed) if test(row)]
    fill = options.get("fillnull_value")
    span = next((o.value.text for o in command.by_options if o.key == "span"), None)
    if span is not None:
        rows = _bin_rows(rows, "_time", span)
    return _aggregate(command.aggregations, command.by, rows, fill)


# -- search expressions ------------------------------------------------------------------------


def compile_search(expr: ast.SearchExpr) -> Callable[[Flat], bool]:
    """A search expression as a test on one row (case-insensitive values, ``*`` wildcards)."""
    if isinstance(expr, ast.And):
        parts = [compile_search(e) for e in expr.operands]
        return lambda f: all(p(f) for p in parts)
    if isinstance(expr, ast.Or):
        parts = [compile_search(e) for e in expr.operands]
        return lambda f: any(p(f) for p in parts)
    if isinstance(expr, ast.Not):
        inner = compile_search(expr.operand)
        return lambda f: not inner(f)
    if isinstance(expr, ast.Compare):
        return _compare(expr.field, expr.op, expr.value.text)
    if isinstance(expr, ast.InList):
        parts = [_compare(expr.field, "=", v.text) for v in expr.values]
        return lambda f: any(p(f) for p in parts)
    if isinstance(expr, ast.Term):
        if expr.value.text == "*":
            return lambda _f: True
        raise NotEvaluable(f"keyword term {expr.value.text!r} needs the raw event text (_raw)")
    raise NotEvaluable("subsearches are not run by the SPL executor")


def _compare(name: str, op: str, value: str) -> Callable[[Flat], bool]:
    if name == "index":
        return lambda _f: True  # the samples have no index: every event is in the one searched
    if name == "eventtype":
        return _eventtype(value, op)
    if op == "=":
        if value == "*":
            return lambda f: bool(values_of(f.get(name)))
        return lambda f: any(search_equals(v, value) for v in values_of(f.get(name)))
    if op == "!=":
        return lambda f: bool(vs := values_of(f.get(name))) and not any(search_equals(v, value) for v in vs)
    return lambda f: any(search_compare(v, op, value) for v in values_of(f.get(name)))


def _eventtype(name: str, op: str) -> Callable[[Flat], bool]:
    """``eventtype=X`` through the logsource table's eventtypes (the same data the converter reads)."""
    from translator.data import logsource_table

    spec = logsource_table().get("eventtypes", {}).get(name)
    if spec is None:
        raise NotEvaluable(f"eventtype {name!r} is not defined in data/logsources.yml")
    sel = selector(spec.get("product"), spec.get("category"), spec.get("service"))
    if op == "=":
        return lambda f: sel.view(f) is not None
    return lambda f: sel.view(f) is None


# -- eval expressions --------------------------------------------------------------------------


def evaluate(expr: ast.Expr, row: Flat) -> Any:
    """An eval expression's value on one row (None is null)."""
    if isinstance(expr, ast.Field):
        return row.get(expr.name)
    if isinstance(expr, ast.Str):
        return expr.value
    if isinstance(expr, ast.Num):
        n = float(expr.text)
        return int(n) if n.is_integer() and "." not in expr.text else n
    if isinstance(expr, ast.Bool):
        return expr.value
    if isinstance(expr, ast.Null):
        return None
    if isinstance(expr, ast.Unary):
        v = evaluate(expr.operand, row)
        if expr.op == "not":
            t = truth(v)
            return None if t is None else not t
        n = as_number(v)
        return None if n is None else -n
    if isinstance(expr, ast.InExpr):
        left = evaluate(expr.operand, row)
        if left is None:
            return None
        return any(eval_compare(left, "==", evaluate(v, row)) for v in expr.values)
    if isinstance(expr, ast.Binary):
        return _binary(expr, row)
    if isinstance(expr, ast.Call):
        fn = _FUNCTIONS.get(expr.name.lower())
        if fn is None:
            raise NotEvaluable(f"eval function {expr.name}() is not modelled")
        return fn(expr.args, row)
    raise NotEvaluable(f"expression {type(expr).__name__} is not modelled")


def truth(v: Any) -> bool | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, list):
        return bool(v)
    raise NotEvaluable(f"{v!r} used as a condition (only booleans are)")


def _binary(expr: ast.Binary, row: Flat) -> Any:
    op = expr.op
    if op in ("and", "or", "xor"):
        a = truth(evaluate(expr.left, row))
        if op == "and" and a is False:
            return False
        if op == "or" and a is True:
            return True
        b = truth(evaluate(expr.right, row))
        if op == "and":
            return False if b is False else (None if a is None or b is None else True)
        if op == "or":
            return True if b is True else (None if a is None or b is None else False)
        return None if a is None or b is None else a != b
    left, right = evaluate(expr.left, row), evaluate(expr.right, row)
    if op == "like":
        return _like(left, right)
    if op in ("=", "==", "!=", "<", ">", "<=", ">="):
        if isinstance(left, list):
            results = [eval_compare(v, op, right) for v in left]
            return True if any(results) else (None if not left else False)
        return eval_compare(left, op, right)
    if op == ".":
        return None if left is None or right is None else text(left) + text(right)
    a, b = as_number(left), as_number(right)
    if op == "+" and (a is None or b is None):
        return None if left is None or right is None else text(left) + text(right)
    if a is None or b is None:
        return None
    if op == "+":
        return _num(a + b)
    if op == "-":
        return _num(a - b)
    if op == "*":
        return _num(a * b)
    if op == "/":
        return None if b == 0 else _num(a / b)
    if op == "%":
        return None if b == 0 else _num(math.fmod(a, b))
    raise NotEvaluable(f"operator {op!r} is not modelled")


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _like(value: Any, pattern: Any) -> bool | None:
    if value is None or pattern is None:
        return None
    regex = like_regex(text(pattern))
    return any(regex.fullmatch(text(v)) is not None for v in values_of(value))


def _arg(args: tuple[ast.Expr, ...], i: int, row: Flat) -> Any:
    return evaluate(args[i], row) if i < len(args) else None


def _f_if(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    return _arg(args, 1, row) if truth(_arg(args, 0, row)) else _arg(args, 2, row)


def _f_case(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    for i in range(0, len(args) - 1, 2):
        if truth(evaluate(args[i], row)):
            return evaluate(args[i + 1], row)
    return None


def _f_match(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    value, pattern = _arg(args, 0, row), _arg(args, 1, row)
    if value is None or pattern is None:
        return None
    regex = pcre(text(pattern))
    return any(regex.search(text(v)) is not None for v in values_of(value))


def _first_value(v: Any) -> Any:
    return v[0] if isinstance(v, list) and v else (None if isinstance(v, list) else v)


def _str_fn(fn: Callable[[str], Any]) -> Callable[[tuple[ast.Expr, ...], Flat], Any]:
    def call(args: tuple[ast.Expr, ...], row: Flat) -> Any:
        v = _arg(args, 0, row)
        if v is None:
            return None
        if isinstance(v, list):
            return [fn(text(x)) for x in v]
        return fn(text(v))

    return call


def _f_coalesce(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    for a in args:
        v = evaluate(a, row)
        if v is not None:
            return v
    return None


def _f_mvindex(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    vs = values_of(_arg(args, 0, row))
    start = as_number(_arg(args, 1, row))
    if not vs or start is None:
        return None
    s = int(start)
    end = as_number(_arg(args, 2, row)) if len(args) > 2 else None
    if end is None:
        return vs[s] if -len(vs) <= s < len(vs) else None
    e = int(end)
    picked = vs[s : (e + 1 if e != -1 else None)]
    return picked if len(picked) > 1 else (picked[0] if picked else None)


def _f_split(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    v, sep = _arg(args, 0, row), _arg(args, 1, row)
    if v is None or sep is None:
        return None
    parts = text(v).split(text(sep)) if text(sep) else list(text(v))
    return parts if len(parts) > 1 else parts[0]


def _f_replace(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    v, pattern, repl = _arg(args, 0, row), _arg(args, 1, row), _arg(args, 2, row)
    if v is None or pattern is None or repl is None:
        return None
    python_repl = re.sub(r"\\(\d)", r"\\g<\1>", text(repl))
    return pcre(text(pattern)).sub(python_repl, text(v))


def _f_substr(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    v, start = _arg(args, 0, row), as_number(_arg(args, 1, row))
    if v is None or start is None:
        return None
    s = text(v)
    i = int(start) - 1 if start > 0 else len(s) + int(start)
    length = as_number(_arg(args, 2, row)) if len(args) > 2 else None
    return s[max(i, 0) :] if length is None else s[max(i, 0) : max(i, 0) + int(length)]


def _f_cidrmatch(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    import ipaddress

    cidr, ip = _arg(args, 0, row), _arg(args, 1, row)
    if cidr is None or ip is None:
        return None
    try:
        net = ipaddress.ip_network(text(cidr), strict=False)
        return any(ipaddress.ip_address(text(x)) in net for x in values_of(ip))
    except ValueError:
        return False


def _f_tonumber(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    v = _arg(args, 0, row)
    if v is None:
        return None
    base = as_number(_arg(args, 1, row)) if len(args) > 1 else None
    try:
        return int(text(v), int(base)) if base else _num(float(text(v)))
    except ValueError:
        return None


def _f_mvfind(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    """The index of the first value the regex is found in (null when none is)."""
    v, pattern = _arg(args, 0, row), _arg(args, 1, row)
    if v is None or pattern is None:
        return None
    regex = pcre(text(pattern))
    return next((i for i, x in enumerate(values_of(v)) if regex.search(text(x)) is not None), None)


def _f_mvfilter(args: tuple[ast.Expr, ...], row: Flat) -> Any:
    names = _fields_in(args[0])
    if len(names) != 1:
        raise NotEvaluable("mvfilter() over several fields is not modelled")
    (name,) = names
    kept = [v for v in values_of(row.get(name)) if truth(evaluate(args[0], {**row, name: v}))]
    return kept if len(kept) > 1 else (kept[0] if kept else None)


def _fields_in(expr: ast.Expr) -> set[str]:
    if isinstance(expr, ast.Field):
        return {expr.name}
    out: set[str] = set()
    for child in getattr(expr, "args", ()) or ():
        out |= _fields_in(child)
    for attr in ("left", "right", "operand"):
        child = getattr(expr, attr, None)
        if child is not None:
            out |= _fields_in(child)
    return out


_FUNCTIONS: dict[str, Callable[[tuple[ast.Expr, ...], Flat], Any]] = {
    "if": _f_if,
    "case": _f_case,
    "match": _f_match,
    "like": lambda a, r: _like(_arg(a, 0, r), _arg(a, 1, r)),
    "lower": _str_fn(str.lower),
    "upper": _str_fn(str.upper),
    "len": lambda a, r: None if (v := _first_value(_arg(a, 0, r))) is None else len(text(v)),
    "coalesce": _f_coalesce,
    "isnull": lambda a, r: _arg(a, 0, r) is None,
    "isnotnull": lambda a, r: _arg(a, 0, r) is not None,
    "null": lambda a, r: None,
    "true": lambda a, r: True,
    "false": lambda a, r: False,
    "mvcount": lambda a, r: len(values_of(_arg(a, 0, r))) or None,
    "mvindex": _f_mvindex,
    "mvfilter": _f_mvfilter,
    "mvfind": _f_mvfind,
    "mvjoin": lambda a, r: (
        None if (v := _arg(a, 0, r)) is None else text(_arg(a, 1, r) or "").join(text(x) for x in values_of(v))
    ),
    "split": _f_split,
    "replace": _f_replace,
    "substr": _f_substr,
    "tonumber": _f_tonumber,
    "tostring": lambda a, r: None if (v := _arg(a, 0, r)) is None else text(v),
    "cidrmatch": _f_cidrmatch,
    "trim": _str_fn(str.strip),
    "ltrim": _str_fn(str.lstrip),
    "rtrim": _str_fn(str.rstrip),
    "urldecode": _str_fn(lambda s: __import__("urllib.parse").parse.unquote(s)),
    "abs": lambda a, r: None if (n := as_number(_arg(a, 0, r))) is None else _num(abs(n)),
    "round": lambda a, r: (
        None if (n := as_number(_arg(a, 0, r))) is None else _num(round(n, int(as_number(_arg(a, 1, r)) or 0)))
    ),
    "floor": lambda a, r: None if (n := as_number(_arg(a, 0, r))) is None else math.floor(n),
    "now": lambda a, r: time.time(),
}


# -- commands after the first ------------------------------------------------------------------


def _search(cmd: ast.SearchCommand, rows: list[Row], _c: Content) -> list[Row]:
    if cmd.expr is None:
        return rows
    test = compile_search(cmd.expr)
    return [r for r in rows if test(r.fields)]


def _where(cmd: ast.WhereCommand, rows: list[Row], _c: Content) -> list[Row]:
    return [r for r in rows if truth(evaluate(cmd.expr, r.fields)) is True]


def _eval(cmd: ast.EvalCommand, rows: list[Row], _c: Content) -> list[Row]:
    for r in rows:
        for a in cmd.assignments:
            value = evaluate(a.expr, r.fields)
            if value is None:
                r.fields.pop(a.field, None)
            else:
                r.fields[a.field] = value
    return rows


def _rename(cmd: ast.RenameCommand, rows: list[Row], _c: Content) -> list[Row]:
    for r in rows:
        for old, new in cmd.pairs:
            if "*" in old:
                regex = re.compile("^" + "(.*)".join(re.escape(p) for p in old.split("*")) + "$")
                for name in [n for n in r.fields if regex.match(n)]:
                    parts = regex.match(name).groups()  # type: ignore[union-attr]
                    target = new
                    for p in parts:
                        target = target.replace("*", p, 1)
                    r.fields[target] = r.fields.pop(name)
            elif old in r.fields:
                r.fields[new] = r.fields.pop(old)
            else:
                r.fields.pop(new, None)
    return rows


def _later_by_fields(commands: tuple[ast.Command, ...]) -> list[str]:
    return [name for c in commands if isinstance(c, ast.StatsCommand) for name in c.by]


def _fillnull(cmd: ast.FillnullCommand, rows: list[Row], grouped_later: list[str]) -> list[Row]:
    """``fillnull``: the fields it names; without names, every field of the results and the
    fields a later stats groups by.

    Splunk fills the fields its results have; the Windows add-on's automatic lookups give
    every event fields (``signature``, ``vendor_product``, ...) these flat events lack, so the
    group-by fields a later stats reads are taken to be among them (the converter assumes the same).
    """
    value = cmd.value.text if cmd.value is not None else "0"
    names = list(cmd.fields) or sorted({n for r in rows for n in r.fields} | set(grouped_later))
    for r in rows:
        for n in names:
            if r.fields.get(n) is None:
                r.fields[n] = value
    return rows


def _fieldlist(cmd: ast.FieldListCommand, rows: list[Row], _c: Content) -> list[Row]:
    patterns = cmd.fields
    remove = cmd.mode == "-"
    for r in rows:
        keep = {n: v for n, v in r.fields.items() if any(fnmatchcase(n, p) for p in patterns) != remove}
        if not remove:
            keep.update({n: r.fields[n] for n in ("_time",) if n in r.fields and cmd.name == "fields"})
        r.fields = keep
    return rows


def _convert(cmd: ast.ConvertCommand, rows: list[Row], _c: Content) -> list[Row]:
    options = {o.key: o.value.text for o in cmd.options}
    fmt = options.get("timeformat", "%m/%d/%Y %H:%M:%S")
    for r in rows:
        for conv in cmd.conversions:
            v = as_number(r.fields.get(conv.field))
            if conv.func == "ctime" and v is not None:
                r.fields[conv.alias or conv.field] = time.strftime(fmt, time.gmtime(v))
            elif conv.func not in ("ctime",):
                raise NotEvaluable(f"convert {conv.func}() is not modelled")
    return rows


def _regex(cmd: ast.RegexCommand, rows: list[Row], _c: Content) -> list[Row]:
    name = cmd.field or "_raw"
    if name == "_raw":
        raise NotEvaluable("`| regex` on _raw needs the raw event text")
    regex = pcre(cmd.pattern)

    def hit(r: Row) -> bool:
        return any(regex.search(text(v)) for v in values_of(r.fields.get(name)))

    return [r for r in rows if hit(r) != cmd.negated]


def _stats(cmd: ast.StatsCommand, rows: list[Row], _c: Content) -> list[Row]:
    if cmd.name == "stats":
        return _aggregate(cmd.aggregations, cmd.by, rows, None)
    if cmd.name == "eventstats":
        groups = _aggregate(cmd.aggregations, cmd.by, rows, None, keep_groups=True)
        for _key, members, agg in groups:  # type: ignore[misc]
            for r in members:
                r.fields.update(agg)
        return rows
    raise NotEvaluable(f"`{cmd.name}` is not modelled by the SPL executor")


def _sort(cmd: ast.SortCommand, rows: list[Row], _c: Content) -> list[Row]:
    for key in reversed(cmd.keys):
        rows = sorted(rows, key=lambda r, k=key: _sort_key(r.fields.get(k.field)), reverse=key.descending)
    return rows[: cmd.limit] if cmd.limit else rows


def _sort_key(v: Any) -> tuple[int, Any]:
    first = _first_value(v)
    n = as_number(first)
    return (0, n) if n is not None else (1, text(first) if first is not None else "")


def _lookup(cmd: ast.LookupCommand, rows: list[Row], content: Content) -> list[Row]:
    table = content.lookups.get(cmd.table)
    if table is None:
        raise NotEvaluable(f"lookup {cmd.table!r} is not a CSV lookup of the content (KV store or missing)")
    table_rows = table.rows()
    outputs = [(f.field, f.alias or f.field) for f in cmd.outputs] or [
        (c, c) for c in (table_rows[0] if table_rows else {}) if c not in {i.field for i in cmd.inputs}
    ]
    for r in rows:
        matched = [
            t
            for t in table_rows
            if all(_lookup_match(table, i.field, t.get(i.field), r.fields.get(i.alias or i.field)) for i in cmd.inputs)
        ]
        for column, target in outputs:
            if cmd.output_mode == "OUTPUTNEW" and r.fields.get(target) is not None:
                continue
            values = [t[column] for t in matched if t.get(column) not in (None, "")]
            if not values and table.default is not None and not matched:
                values = [table.default]
            if values:
                r.fields[target] = values[0] if len(values) == 1 else values
            elif cmd.output_mode != "OUTPUTNEW":
                r.fields.pop(target, None)
    return rows


def _lookup_match(table: Any, column: str, cell: str | None, value: Any) -> bool:
    if cell is None or value is None:
        return False
    for v in values_of(value):
        t = text(v)
        if column in table.wildcard_fields:
            regex = re.compile(
                ".*".join(re.escape(p) for p in cell.split("*")), 0 if table.case_sensitive else re.IGNORECASE
            )
            if regex.fullmatch(t):
                return True
        elif (t == cell) if table.case_sensitive else (t.lower() == cell.lower()):
            return True
    return False


def _args_command(name: str) -> Callable[[ast.ArgsCommand, list[Row], Content], list[Row]]:
    def handler(cmd: ast.ArgsCommand, rows: list[Row], _c: Content) -> list[Row]:
        options = {o.key: o.value.text for o in cmd.options}
        if name == "rex":
            return _rex(options, cmd.args[0].text if cmd.args else "", rows)
        if name == "dedup":
            return _dedup([a.text for a in cmd.args], options, rows)
        if name in ("bin", "bucket"):
            return _bin_rows(rows, cmd.args[0].text if cmd.args else "_time", options.get("span", "1h"))
        if name == "head":
            n = int(cmd.args[0].text) if cmd.args else int(options.get("limit", "10"))
            return rows[:n]
        raise NotEvaluable(f"`{name}` is not modelled by the SPL executor")

    return handler


def _rex(options: dict[str, str], pattern: str, rows: list[Row]) -> list[Row]:
    name = options.get("field", "_raw")
    if name == "_raw":
        raise NotEvaluable("`| rex` on _raw needs the raw event text")
    if "mode" in options:
        raise NotEvaluable("rex mode=sed is not modelled")
    regex = pcre(pattern)
    many = options.get("max_match", "1") != "1"
    for r in rows:
        found: dict[str, list[str]] = {}
        for v in values_of(r.fields.get(name)):
            for m in regex.finditer(text(v)) if many else [regex.search(text(v))]:
                if m is None:
                    continue
                for group, value in m.groupdict().items():
                    if value is not None:
                        found.setdefault(group, []).append(value)
        for group, vals in found.items():
            r.fields[group] = vals[0] if len(vals) == 1 else vals
    return rows


def _dedup(names: list[str], options: dict[str, str], rows: list[Row]) -> list[Row]:
    keep_empty = options.get("keepempty", "false").lower() == "true"
    seen: set[tuple[str, ...]] = set()
    out = []
    for r in rows:
        key = tuple(text(_first_value(r.fields.get(n))) if r.fields.get(n) is not None else "\0" for n in names)
        if "\0" in key and not keep_empty:
            continue
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


_SPAN = re.compile(r"^(\d+)\s*([smhd]|min|mins|minute|minutes|sec|secs|hr|hrs|hour|hours|day|days)?$", re.IGNORECASE)
_UNIT = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600,
         "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}  # fmt: skip


def _bin_rows(rows: list[Row], name: str, span: str) -> list[Row]:
    m = _SPAN.match(span.strip())
    if not m:
        raise NotEvaluable(f"span {span!r} is not modelled")
    seconds = int(m.group(1)) * _UNIT[(m.group(2) or "s").lower()]
    for r in rows:
        t = as_number(r.fields.get(name))
        if t is not None:
            r.fields[name] = math.floor(t / seconds) * seconds
    return rows


# -- aggregation -------------------------------------------------------------------------------


def _aggregate(
    aggregations: tuple[ast.Aggregation, ...],
    by: tuple[str, ...],
    rows: list[Row],
    fill: str | None,
    keep_groups: bool = False,
) -> Any:
    """stats/tstats: one row per group of the by-fields (rows lacking one are dropped unless filled)."""
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        key = []
        for name in by:
            v = r.fields.get(name)
            if v is None:
                if fill is None:
                    break
                v = fill
            key.append(tuple(values_of(v)) if isinstance(v, list) else v)
        else:
            groups.setdefault(tuple(key), []).append(r)
    if not by and not groups and not keep_groups:
        groups[()] = []  # stats without by over nothing still gives one row (count=0)
    out = []
    for key, members in groups.items():
        agg = {_agg_name(a): _agg_value(a, members) for a in aggregations}
        agg = {k: v for k, v in agg.items() if v is not None}
        if keep_groups:
            out.append((key, members, agg))
            continue
        fields = dict(zip(by, (list(k) if isinstance(k, tuple) else k for k in key), strict=True))
        fields.update(agg)
        out.append(Row(fields, frozenset().union(*(m.refs for m in members)) if members else frozenset()))
    return out


def _agg_name(a: ast.Aggregation) -> str:
    if a.alias:
        return a.alias
    if a.arg is None:
        return a.func
    inner = a.arg.name if isinstance(a.arg, ast.Field) else "..."
    return f"{a.func}({inner})"


def _agg_value(a: ast.Aggregation, members: list[Row]) -> Any:
    func = a.func.lower()
    if a.arg is None:
        if func == "count":
            return len(members)
        raise NotEvaluable(f"{func} without a field is not modelled")
    if not isinstance(a.arg, ast.Field):
        raise NotEvaluable(f"{func}(eval(...)) is not modelled")
    name = a.arg.name
    values = [v for m in members for v in values_of(m.fields.get(name))]
    if func == "count":
        return len(values)
    if func in ("dc", "distinct_count"):
        return len({text(v) for v in values})
    if func == "values":
        vs = sorted({text(v) for v in values})
        return vs if len(vs) > 1 else (vs[0] if vs else None)
    if func == "list":
        return values or None
    numbers = [n for n in (as_number(v) for v in values) if n is not None]
    if func in ("min", "max"):
        if numbers and len(numbers) == len(values):
            return _num(min(numbers) if func == "min" else max(numbers))
        texts = [text(v) for v in values]
        return (min(texts) if func == "min" else max(texts)) if texts else None
    if func == "sum":
        return _num(sum(numbers)) if numbers else None
    if func in ("avg", "mean"):
        return sum(numbers) / len(numbers) if numbers else None
    if func in ("earliest", "first"):
        return _by_time(members, name, first=True)
    if func in ("latest", "last"):
        return _by_time(members, name, first=False)
    raise NotEvaluable(f"aggregation {func}() is not modelled")


def _by_time(members: list[Row], name: str, first: bool) -> Any:
    timed = [
        (as_number(m.fields.get("_time")) or 0.0, m.fields.get(name)) for m in members if m.fields.get(name) is not None
    ]
    if not timed:
        return None
    return (min(timed, key=lambda x: x[0]) if first else max(timed, key=lambda x: x[0]))[1]


_HANDLERS: dict[type, Callable[[Any, list[Row], Content], list[Row]]] = {
    ast.SearchCommand: _search,
    ast.WhereCommand: _where,
    ast.EvalCommand: _eval,
    ast.RenameCommand: _rename,
    ast.FieldListCommand: _fieldlist,
    ast.ConvertCommand: _convert,
    ast.RegexCommand: _regex,
    ast.StatsCommand: _stats,
    ast.SortCommand: _sort,
    ast.LookupCommand: _lookup,
}
_ARGS_HANDLERS = {name: _args_command(name) for name in ("rex", "dedup", "bin", "bucket", "head")}

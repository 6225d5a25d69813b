"""The commands after the first one: fold what selects events, account for the rest.

``| where`` and ``| search`` conjuncts that read only event fields (see
:mod:`translator.sigma.lineage`) are ANDed into the detection; the rest are
left out, which makes the rule broader, and a reason says so. Every other
command is classified by ``data/stages.yml``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from translator.content.loader import Lookup
from translator.data import load_table
from translator.errors import ContentError
from translator.sigma import forms as fm
from translator.sigma.detection import (
    FALSE,
    TRUE,
    Item,
    Lowering,
    Node,
    lower,
    make_and,
    make_not,
    make_or,
    order_node,
    splunk_match,
)
from translator.sigma.encodings import decoded_test, like_shape, search_shape
from translator.sigma.forms import all_of as _all_of
from translator.sigma.forms import any_of as _any_of
from translator.sigma.forms import negate
from translator.sigma.lineage import FieldScope, Presence, aggregate_outputs, comparison, literal_text
from translator.sigma.lookups import Binding, bind, inline_search, inline_where
from translator.sigma.where import Target, Unfoldable, equals_item, like_item, lower_where
from translator.spl import ast
from translator.spl.printer import print_command, print_expr, print_search

UNSUPPORTED = "unsupported"


_THRESHOLD_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "eq", "==": "eq"}
_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
# aggregation -> Sigma correlation type (and whether it takes a field)
_CORRELATION_TYPES = {
    "count": "event_count",
    "dc": "value_count",
    "distinct_count": "value_count",
    "sum": "value_sum",
    "avg": "value_avg",
    "mean": "value_avg",
}
DEFAULT_TIMESPAN = "60m"
_MAX_CASES = 8  # base rules a correlation over group-by fields past a wildcard rename may take


@dataclass
class Aggregation:
    """The first aggregation of the pipeline, for thresholds on its outputs."""

    by: tuple[str, ...]  # event fields (None-free), _time excluded
    outputs: dict[str, tuple[str, str | None]]  # output name -> (function, event field of its argument)
    span: str | None  # time bucket, when the aggregation groups by _time
    time_unbucketed: bool = False  # grouped by exact _time: no Sigma timespan fits
    blocked: dict[str, str] = field(default_factory=dict)  # output name -> why no threshold on it is said
    # group-by names past a wildcard rename -> the event fields each may hold, first present first
    moved: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # outputs whose argument is such a name -> (the name, its fields)
    moved_args: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def block(self, why: str, names: list[str] | None = None) -> None:
        """No threshold on these outputs (all, by default) becomes a correlation, for ``why``."""
        for n in list(self.outputs) if names is None else names:
            if n in self.outputs:
                self.outputs.pop(n)
                self.blocked[n] = why


@dataclass
class StageResult:
    node: Node = TRUE  # what the folded stages add (ANDed with the base detection)
    correlation: dict[str, Any] | None = None  # a Sigma correlation over the base rule
    required: list[str] = field(default_factory=list)  # event fields a `by` needs present
    dropped_by: list[str] = field(default_factory=list)  # computed `by` fields that may be null: not carried
    # `by` fields named past a wildcard rename: (the name, the event fields one of which it holds)
    required_any: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    # computed `by` fields: (the name, the Sigma condition under which it has a value)
    required_when: list[tuple[str, Node]] = field(default_factory=list)
    by_fields: list[str] = field(default_factory=list)  # event fields of the first aggregation's `by`
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unsupported: bool = False


@dataclass
class StageWalker:
    """Walks the later commands with a field scope.

    ``target`` maps an event field (as the first command names it) to its Sigma
    form; ``base_ctx`` builds the search-language lowering of the first command,
    which ``| search`` stages reuse through the scope.
    """

    scope: FieldScope
    target: Callable[[str], Target | None]
    base_ctx: Callable[[], Lowering]
    aggregated: bool = False
    result: StageResult = field(default_factory=StageResult)
    first_aggregation: Aggregation | None = None
    span: str | None = None  # from `bin _time span=...` before an aggregation
    lookups: Mapping[str, Lookup] = field(default_factory=dict)  # the content's CSV lookups
    constants: frozenset[str] = frozenset()  # event fields with one value on every event (add-on constants)
    window: tuple[str, str] | None = None  # (Sigma timespan, where it comes from): the schedule's window
    threshold_why: str | None = None  # why the last test on an aggregate output is no correlation
    present: frozenset[str] = frozenset()  # Sigma fields the base selection requires present
    bindings: dict[str, Binding] = field(default_factory=dict)  # lookup outputs a later stage may test

    def resolve(self, name: str) -> Target | None:
        event_field = self.scope.resolve(name)
        if event_field is None:
            return None
        if self.scope.fill_all and not self.aggregated:
            return None  # which fields a bare fillnull touches depends on the data
        t = self.target(event_field)
        if t is None:
            return None
        fill = self.scope.fill_of(event_field)
        return Target(t.sigma, t.basename, fill) if fill is not None else t

    def walk(self, commands: tuple[ast.Command, ...]) -> StageResult:
        stages = load_table("stages")
        res = self.result
        for cmd in commands:
            name = ast.command_name(cmd)
            pending: tuple[tuple[str, Target], ...] | None = None
            if isinstance(cmd, ast.SearchCommand):
                if cmd.expr is not None and cmd.expr != ast.Term(ast.Value("*")):
                    self._fold_search(cmd.expr)
            elif isinstance(cmd, ast.WhereCommand):
                self._fold_where(cmd.expr)
            elif isinstance(cmd, ast.StatsCommand) and name in ("stats", "timechart"):
                self._aggregate(cmd)
            elif isinstance(cmd, ast.RegexCommand):
                self._fold_regex(cmd)
            elif isinstance(cmd, ast.LookupCommand):
                lookup = self.lookups.get(cmd.table)
                if lookup is not None and not lookup.path.is_file():
                    raise ContentError(f"lookup {cmd.table}: its table {lookup.path} is missing")
                pending = self._lookup_inputs(cmd)
            elif name in stages["unsupported"]:
                res.unsupported = True
                res.reasons.append(f"`| {name}` {stages['unsupported'][name]}")
            elif isinstance(cmd, ast.SubpipelineCommand) and _keeps_every_row(cmd):
                res.notes.append(f"`| {_short(cmd)}` keeps every row (an outer join only adds fields)")
            elif name in stages["filter"]:
                res.reasons.append(f"`| {_short(cmd)}` not carried over; the rule is broader")
            elif not (isinstance(cmd, ast.StatsCommand) or name in stages["neutral"]):
                res.unsupported = True
                res.reasons.append(f"unknown command `| {name}`: its effect on the selection is not known")
            if isinstance(cmd, ast.ArgsCommand) and name in ("bin", "bucket") and cmd.args[0].text == "_time":
                self.span = cmd.option("span") or self.span
            if not (isinstance(cmd, ast.StatsCommand) and name in ("stats", "timechart")):
                self.scope.apply(cmd)
                if self.first_aggregation is not None:  # a rewritten aggregate is no longer a threshold's input
                    why = f"`{_short(cmd)}` rewrites it after the aggregation"
                    self.first_aggregation.block(why, list(self.scope.written))
                self._update_bindings(cmd)
            if isinstance(cmd, ast.LookupCommand) and pending is not None:
                self._bind_lookup(cmd, pending)
        return res

    def start_aggregation(self, by: tuple[str, ...], aggs: tuple[ast.Aggregation, ...], span: str | None) -> None:
        """Record the first aggregation (tstats, or the first stats) for thresholds on its outputs."""
        outputs: dict[str, tuple[str, str | None]] = {}
        for a, out in zip(aggs, aggregate_outputs(aggs), strict=True):
            arg = self.scope.resolve(a.arg.name) if isinstance(a.arg, ast.Field) else None
            outputs[out] = (a.func, arg)
        events_by = tuple(t for b in by if b != "_time" and (t := self.scope.resolve(b)) is not None)
        unbucketed = "_time" in by and span is None
        self.first_aggregation = Aggregation(events_by, outputs, span if "_time" in by else None, unbucketed)
        unnamed = [b for b in by if b != "_time" and self.scope.resolve(b) is None]
        moved = {b: tuple(c) for b in unnamed if len(c := self.scope.candidates(b)) > 1}
        self.first_aggregation.moved = moved
        for a, out in zip(aggs, aggregate_outputs(aggs), strict=True):  # dc(x) of a name past a wildcard rename
            fields = self.scope.candidates(a.arg.name) if isinstance(a.arg, ast.Field) else []
            if isinstance(a.arg, ast.Field) and self.scope.resolve(a.arg.name) is None and len(fields) > 1:
                self.first_aggregation.moved_args[out] = (a.arg.name, tuple(fields))
        if [b for b in unnamed if b not in moved]:
            self.first_aggregation.block(
                f"a correlation groups by event fields, and `by {' '.join(b for b in unnamed if b not in moved)}` "
                "is computed by the search"
            )

    def _aggregate(self, cmd: ast.StatsCommand) -> None:
        res = self.result
        if self.first_aggregation is None and not self.aggregated:
            self.start_aggregation(cmd.by, cmd.aggregations, self.span if "_time" in cmd.by else None)
        elif self.first_aggregation is not None:  # a second aggregation: thresholds read other rows
            self.first_aggregation.block(f"`{_short(cmd)}` aggregates the aggregation's rows again")
        if not self.aggregated:
            res.by_fields = [t for b in cmd.by if (t := self.scope.resolve(b)) is not None]
            for b in cmd.by:
                event_field = self.scope.resolve(b)
                if b == "_time" or self.scope.fill_all:
                    continue
                if event_field is None:
                    if b in self.bindings and self._inline({b}, _present_through_lookup, f"by {b}"):
                        continue  # a lookup output: present exactly when the inputs match a row giving it
                    if b in self.scope.never_null:
                        continue
                    when = self._presence_node(self.scope.presence.get(b))
                    if when is not None:  # computed, and present exactly when some event fields are
                        res.required_when.append((b, when))
                        continue
                    if candidates := self.scope.candidates(b):
                        res.required_any.append((b, tuple(candidates)))
                    elif b not in self.scope.never_null:
                        res.dropped_by.append(b)
                    continue
                if self.scope.fill_of(event_field) is not None:
                    continue
                res.required.append(event_field)
        self.aggregated = True
        self.scope.aggregate(cmd.by, aggregate_outputs(cmd.aggregations))
        # a group-by value is the value of every event in the group
        self.bindings = {k: v for k, v in self.bindings.items() if k in cmd.by}

    def _presence_test(self, expr: ast.Expr) -> Node | None:
        """``isnotnull(X)``, ``isnull(X)`` or their negation, X computed with a known presence condition."""
        negated = isinstance(expr, ast.Unary) and expr.op == "not"
        test = expr.operand if isinstance(expr, ast.Unary) and negated else expr
        if not (isinstance(test, ast.Call) and test.name in ("isnull", "isnotnull") and len(test.args) == 1):
            return None
        arg = test.args[0]
        if not isinstance(arg, ast.Field) or self.scope.resolve(arg.name) is not None:
            return None
        present = TRUE if arg.name in self.scope.never_null else self._presence_node(self.scope.presence.get(arg.name))
        if present is None:
            return None
        return present if (test.name == "isnotnull") != negated else make_not(present)

    def _presence_node(self, cond: Presence | None) -> Node | None:
        """A presence condition on event fields as a Sigma condition (None when a field has no Sigma name)."""
        if cond is None or isinstance(cond, bool):
            return None if cond is None else (TRUE if cond else FALSE)
        kind, arg = cond
        if kind == "field":
            t = self.target(str(arg))
            if t is None:
                return None
            if self.scope.fill_of(str(arg)) is not None:
                return TRUE  # filled: never null
            return Item(t.sigma, ("exists",), (True,))
        if kind == "not":
            inner = self._presence_node(arg)  # type: ignore[arg-type]
            return None if inner is None else make_not(inner)
        if kind in _FIELD_TESTS:
            event_field, *rest = arg  # type: ignore[misc]
            t = self.target(str(event_field))
            return None if t is None or t.fill is not None else _FIELD_TESTS[kind](self, t, str(event_field), *rest)
        parts = [self._presence_node(c) for c in arg]  # type: ignore[attr-defined]
        if any(p is None for p in parts):
            return None
        return make_and(parts) if kind == "all" else make_or(parts)  # type: ignore[arg-type]

    def _computed_atom(self, expr: ast.Expr) -> tuple[Node, Node] | None:
        """A ``where`` atom reading a computed value whose form is known: (TRUE, FALSE) as Sigma nodes."""
        names = _expr_fields(expr)
        if not names or all(self.resolve(n) is not None for n in names):
            return None  # event fields only: where.py lowers it
        if _null_call(expr) is not None:
            true = self._presence_test(expr)
            return None if true is None else (true, make_not(true))
        atom = comparison(expr, self.scope)
        if atom is None:
            return None
        when, holds = atom
        true, false = self._presence_node(holds), self._presence_node(_all_of([when, negate(holds)]))
        if true is None or false is None:
            return None
        return true, false

    def _formed_search(self, expr: ast.Compare | ast.InList) -> Node | None:
        """``X=v`` (any case, ``*``), ``X!=v``, ``X IN (...)``, ``X>=n`` on a computed X with a form."""
        form = self.scope.form_view.get(expr.field) if self.scope.resolve(expr.field) is None else None
        if form is None:
            return None
        if isinstance(expr, ast.InList):
            holds = _any_of([fm.test(form, "=", v.text, "search") for v in expr.values])
        elif expr.op in ("=", "!="):
            holds = fm.test(form, "=", expr.value.text, "search")
        else:
            holds = fm.test(form, expr.op, expr.value.text, "where")
        if holds is None:
            return None
        if isinstance(expr, ast.Compare) and expr.op == "!=":
            holds = _all_of([fm.present(form), negate(holds)])  # != needs a value
        return self._presence_node(holds)

    def _field_compare(self, expr: ast.Expr) -> Node | None:
        """``where A=B`` / ``A!=B`` between two event fields as ``A|fieldref: B`` (``where`` is false when
        either is null, so ``!=`` needs both present)."""
        if not (isinstance(expr, ast.Binary) and expr.op in ("=", "==", "!=")):
            return None
        if not (isinstance(expr.left, ast.Field) and isinstance(expr.right, ast.Field)):
            return None
        left, right = self.resolve(expr.left.name), self.resolve(expr.right.name)
        if left is None or right is None or any(t.basename is not None or t.fill is not None for t in (left, right)):
            return None
        same = Item(left.sigma, ("fieldref",), (right.sigma,))
        if expr.op != "!=":
            return same
        present = [Item(t.sigma, ("exists",), (True,)) for t in (left, right)]
        return make_and([*present, make_not(same)])

    def _decoded(self, name: str, shape: tuple[str, str] | None, cased: bool) -> Node | None:
        """A test on a computed ``name`` read through the hex decoding, on the encoded event field."""
        text = self.scope.hex.get(name) if self.scope.resolve(name) is None else None
        target = self.target(text.field) if text is not None else None
        if text is None or shape is None or target is None or target.basename is not None or target.fill:
            return None
        return decoded_test(target.sigma, text, shape[0], shape[1], cased)

    def _decoded_where(self, expr: ast.Expr) -> Node | None:
        """``like(X, p)``, ``X == "v"``, ``X != "v"`` (or NOT of one) on a hex-decoded X: true only
        where X has a value, as ``where`` is."""
        if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
            parts = [self._decoded_where(expr.left), self._decoded_where(expr.right)]
            if any(p is None for p in parts):
                return None
            return (make_and if expr.op == "and" else make_or)(parts)  # type: ignore[arg-type]
        negated = isinstance(expr, ast.Unary) and expr.op == "not"
        test = expr.operand if isinstance(expr, ast.Unary) and negated else expr
        if isinstance(test, ast.Binary) and test.op == "like":
            test = ast.Call("like", (test.left, test.right))
        if isinstance(test, ast.Call) and test.name.lower() == "like" and len(test.args) == 2:
            name, literal, shape = test.args[0], test.args[1], like_shape
        elif isinstance(test, ast.Binary) and test.op in ("=", "==", "!="):
            name, literal, shape = test.left, test.right, lambda v: ("equals", v)
            negated = negated != (test.op == "!=")
        else:
            return None
        if not (isinstance(name, ast.Field) and isinstance(literal, ast.Str)):
            return None
        node = self._decoded(name.name, shape(literal.value), cased=True)
        present = self._presence_node(self.scope.presence.get(name.name))
        if node is None or present is None:
            return None
        return make_and([present, make_not(node)]) if negated else node

    def _value_cases(self, name: str) -> list[tuple[Node, str]] | None:
        """The literal values a computed ``name`` takes, each with its condition as a Sigma node."""
        cases = self.scope.cases.get(name) if self.scope.resolve(name) is None else None
        if cases is None:
            return None
        out = [(self._presence_node(cond), value) for cond, value in cases]
        return None if any(n is None for n, _v in out) else out  # type: ignore[return-value]

    def _value_test(self, expr: ast.Expr) -> Node | None:
        """``where X="v"`` / ``X!="v"`` on a computed X that takes literal values (compared as text,
        case-sensitively, as ``where`` does): the conditions of the values that pass."""
        if not (isinstance(expr, ast.Binary) and expr.op in ("=", "==", "!=")):
            return None
        left, right = expr.left, expr.right
        if isinstance(left, ast.Str | ast.Num) and isinstance(right, ast.Field):
            left, right = right, left
        if not (isinstance(left, ast.Field) and isinstance(right, ast.Str | ast.Num)):
            return None
        cases = self._value_cases(left.name)
        if cases is None:
            return None
        same = expr.op != "!="
        return make_or([node for node, value in cases if (value == literal_text(right)) == same])

    def _update_bindings(self, cmd: ast.Command) -> None:
        """A fill sets a bound output's value for events no row matches; any other write unbinds it."""
        if isinstance(cmd, ast.FillnullCommand):
            value = cmd.value.text if cmd.value is not None else "0"
            for n in list(self.bindings):
                if not cmd.fields or n in cmd.fields:
                    self.bindings[n] = replace(self.bindings[n], default=value)
            return
        if self.scope.closed_by_last:
            self.bindings.clear()
        for n in self.scope.written:
            self.bindings.pop(n, None)

    def _lookup_inputs(self, cmd: ast.LookupCommand) -> tuple[tuple[str, Target], ...] | None:
        """The Sigma targets of a lookup's input fields, read before the lookup writes its outputs."""
        if cmd.table not in self.lookups or cmd.output_mode != "OUTPUT":
            return None
        inputs = []
        for fa in cmd.inputs:
            target = self.resolve(fa.alias or fa.field)
            if target is None:
                return None
            inputs.append((fa.field, target))
        return tuple(inputs)

    def _bind_lookup(self, cmd: ast.LookupCommand, inputs: tuple[tuple[str, Target], ...]) -> None:
        """Remember the outputs of a content CSV lookup whose inputs are event fields (OUTPUT only)."""
        lookup = self.lookups[cmd.table]
        for out in cmd.outputs:
            try:
                binding = bind(lookup, tuple(inputs), out.field)
            except (Unfoldable, ContentError):
                continue
            # a filled input (tstats' "null") must match no row, so that it behaves as absent
            if all(t.fill is None or not binding.matches_value(col, t.fill) for col, t in inputs):
                self.bindings[out.alias or out.field] = binding

    def _inline(self, names: set[str], make: Callable[[str, Binding], Node], text: str) -> bool:
        """Fold a condition on one lookup output as a condition on the lookup's inputs."""
        if len(names) != 1 or next(iter(names)) not in self.bindings:
            return False
        name = next(iter(names))
        binding = self.bindings[name]
        try:
            node = make(name, binding)
        except Unfoldable:
            return False
        self.result.node = make_and([self.result.node, node])
        self.result.notes.append(f"`{text}` folded in through lookup {binding.lookup.name} ({len(binding.rows)} rows)")
        return True

    def _fold_where(self, expr: ast.Expr) -> None:
        for conj in _conjuncts(expr):
            text = f"where {print_expr(conj)}"
            if self._inline(_expr_fields(conj), lambda n, b, c=conj: inline_where(c, n, b), text):
                continue
            try:
                node = lower_where(conj, self.resolve, self._computed_atom)
            except Unfoldable as why:
                if self._threshold(conj):
                    continue
                when = self._presence_test(conj)
                if when is not None:  # isnull/isnotnull of a computed value: a condition on its inputs
                    self.result.node = make_and([self.result.node, when])
                    self.result.notes.append(f"`{text}` folded in as the presence of what it is computed from")
                    continue
                when = self._field_compare(conj)
                if when is not None:  # two event fields compared: a field reference
                    self.result.node = make_and([self.result.node, when])
                    self.result.reasons.append(
                        f"`{text}` compares the two values as they are written (and numbers as numbers); the "
                        "rule's field reference compares them as text without case: values that differ only in "
                        "case also match, which is broader, and numbers written differently (1 and 01) do not"
                    )
                    continue
                when = self._decoded_where(conj)
                if when is not None:  # a hex-decoded value: the test said on the encoded field
                    self.result.node = make_and([self.result.node, when])
                    self.result.notes.append(f"`{text}` folded in on the hex-encoded field it decodes")
                    continue
                when = self._value_test(conj)
                if when is not None:  # a computed value compared with a literal: the cases giving it
                    self.result.node = make_and([self.result.node, when])
                    self.result.notes.append(f"`{text}` folded in through the values it is computed as")
                    continue
                why = self.threshold_why or why
                self.result.reasons.append(f"`where {print_expr(conj)}` not carried over: {why}; the rule is broader")
                continue
            self.result.node = make_and([self.result.node, node])
            self.result.notes.append(f"`where {print_expr(conj)}` folded into the detection")

    def _threshold(self, conj: ast.Expr) -> bool:
        """``where count > N`` on the first aggregation's output -> a Sigma correlation. When the test is
        on an output but cannot be one, ``threshold_why`` says why."""
        self.threshold_why = None
        agg = self.first_aggregation
        if agg is None or not (isinstance(conj, ast.Binary) and conj.op in _THRESHOLD_OPS):
            return False
        left, right, op = conj.left, conj.right, conj.op
        if isinstance(left, ast.Num) and isinstance(right, ast.Field):
            left, right, op = right, left, _FLIPPED.get(op, op)
        if not isinstance(left, ast.Field) or left.name not in (*agg.outputs, *agg.blocked):
            return False
        self.threshold_why = agg.blocked.get(left.name) or _threshold_block(agg, self.result.correlation, right)
        if self.threshold_why is not None:
            return False
        func, arg = agg.outputs[left.name]
        if func in ("dc", "distinct_count") and arg == "_raw":
            func, arg = "count", None  # distinct raw events: each event once, as a correlation counts them
            self.result.notes.append(f"`{left.name}` counts distinct raw events: an event_count correlation")
        kind = _CORRELATION_TYPES.get(func)
        if kind is None:
            self.threshold_why = f"Sigma correlations count, count distinct values, sum or average; not {func}()"
            return False
        moved_arg = agg.moved_args.get(left.name) if arg is None and kind != "event_count" else None
        if (kind != "event_count") != (arg is not None or moved_arg is not None):
            self.threshold_why = f"{func}() reads a value the search computes; a correlation reads event fields"
            return False
        group_by, constant = [], []
        for ev in agg.by:
            if ev in self.constants:
                constant.append(ev)
                continue
            t = self.target(ev)
            if t is None or t.basename is not None:
                self.threshold_why = (
                    f"the correlation would group by {ev}, which has no Sigma field here"
                    if t is None
                    else f"the correlation would group by {ev}, which Sigma names as a path's last part: grouping "
                    "by the whole path splits the groups"
                )
                return False
            group_by.append(t.sigma)
        aliases: dict[str, list[str]] = {}
        for name, fields in agg.moved.items():  # one base rule per field the name holds, aliased to it
            targets = [self.target(f) for f in fields]
            if any(t is None or t.basename is not None for t in targets):
                self.threshold_why = f"`by {name}` holds one of several fields, one of which has no Sigma field here"
                return False
            aliases[name] = [t.sigma for t in targets]  # type: ignore[union-attr]
            group_by.append(name)
        if moved_arg is not None:  # the counted name too: aliased in each base rule
            counted_targets = [self.target(f) for f in moved_arg[1]]
            if self.scope.fill_all or any(t is None or t.basename is not None for t in counted_targets):
                self.threshold_why = f"{func}({moved_arg[0]}) reads one of several fields, not all of them in Sigma"
                return False
            aliases.setdefault(moved_arg[0], [t.sigma for t in counted_targets])  # type: ignore[union-attr]
        if math.prod(len(fields) for fields in aliases.values()) > _MAX_CASES:
            self.threshold_why = (
                f"`by {' '.join(aliases)}` past a wildcard rename needs one base rule per combination of the fields "
                f"they hold: more than {_MAX_CASES}"
            )
            return False
        value = float(right.text) if "." in right.text else int(right.text)
        counted = self.target(arg) if kind == "value_count" and arg is not None else None
        filled = (self.scope.fill_all or self.scope.fill_of(arg) is not None) if arg is not None else False
        if counted is not None and filled and counted.sigma not in self.present:
            # a fill before dc(x) makes events without x count as one more value, which a value_count does
            # not see: lowering the threshold by one keeps the rule from being narrower
            if op in ("=", "=="):
                return False
            if op in (">", ">="):
                value -= 1
            self.result.reasons.append(
                f"`{left.name}` counts distinct {arg} after a fillnull: events without {arg} add the fill value, "
                f"which the correlation cannot count; its threshold is {op} {value}, one lower where it matters, "
                "so the rule is broader"
            )
        condition: dict[str, Any] = {_THRESHOLD_OPS[op]: value}
        if moved_arg is not None:
            condition["field"] = moved_arg[0]
        elif arg is not None:
            t = self.target(arg)
            if t is None or t.basename is not None:
                return False
            condition["field"] = t.sigma
        timespan = _sigma_timespan(agg.span) if agg.span else None
        if agg.span and timespan is None:
            return False
        if timespan is None and self.window is not None:
            timespan = self.window[0]
            self.result.notes.append(
                f"the search aggregates over its dispatch window: {timespan}, from {self.window[1]}"
            )
        elif timespan is None:
            timespan = DEFAULT_TIMESPAN
            self.result.reasons.append(
                "the search aggregates over its whole time range and no schedule in the content states it: "
                f"the correlation's {DEFAULT_TIMESPAN} is a guess; set it to the schedule's window"
            )
        if constant:
            self.result.notes.append(
                f"`by {' '.join(constant)}` left out of the correlation's group-by: the add-on sets one value "
                "on every event of the logsource"
            )
        self.result.correlation = {"type": kind, "group-by": group_by, "timespan": timespan, "condition": condition}
        if aliases:
            self.result.correlation["aliases"] = aliases
            self.result.notes.append(
                f"`by {' '.join(aliases)}` holds the first of several fields an event has (a wildcard rename): one "
                "base rule per case, aliased in the correlation"
            )
        self.result.notes.append(f"`where {print_expr(conj)}` became a {kind} correlation over {timespan}")
        return True

    def _fold_regex(self, cmd: ast.RegexCommand) -> None:
        text = print_command(cmd)
        if cmd.field is None:
            self.result.reasons.append(
                f"`| {text}` matches the raw event text, which Sigma cannot; the rule is broader"
            )
            return
        call = ast.Call("match", (ast.Field(cmd.field), ast.Str(cmd.pattern)))
        try:
            node = lower_where(call, self.resolve)
        except Unfoldable as why:
            self.result.reasons.append(f"`| {text}` not carried over: {why}; the rule is broader")
            return
        # `regex f!=p` keeps the events whose f does not match, those without f included
        self.result.node = make_and([self.result.node, make_not(node) if cmd.negated else node])
        self.result.notes.append(f"`| {text}` folded into the detection")

    def _event_field(self, name: str) -> str | None:
        """For ``| search``: the event field ``name`` holds, if it has a Sigma form."""
        return None if self.resolve(name) is None else self.scope.resolve(name)

    def _fill(self, name: str) -> str | None:
        t = self.resolve(name)
        return None if t is None else t.fill

    def _fold_search(self, expr: ast.SearchExpr) -> None:
        for conj in list(expr.operands) if isinstance(expr, ast.And) else [expr]:
            text = f"search {print_search(conj)}"
            if self._inline(_search_fields(conj), lambda n, b, c=conj: inline_search(c, n, b), text):
                continue
            ctx = ScopedLowering(
                base=self.base_ctx(),
                event_field=self._event_field,
                fill=self._fill,
                cases=self._value_cases,
                decoded=lambda n, p: self._decoded(n, search_shape(p), cased=False),
                present=lambda n: self._presence_node(self.scope.presence.get(n)),
                formed=self._formed_search,
            )
            node = lower(conj, ctx)
            if ctx.reasons:
                self.result.reasons.extend(ctx.reasons)
            self.result.notes.extend(ctx.notes)
            if node != TRUE:
                self.result.node = make_and([self.result.node, node])
                self.result.notes.append(f"`search {print_search(conj)}` folded into the detection")


@dataclass
class ScopedLowering(Lowering):
    """Search-language lowering of a later ``| search``: names go through the field scope first."""

    base: Lowering = field(default_factory=Lowering)
    event_field: Callable[[str], str | None] = lambda name: name
    fill: Callable[[str], str | None] = lambda name: None  # the value a fill gave rows lacking the field
    # a computed name's literal values, each with its condition (see StageWalker._value_cases)
    cases: Callable[[str], list[tuple[Node, str]] | None] = lambda name: None
    # a search value tested on a hex-decoded computed name, said on its encoded field
    decoded: Callable[[str, str], Node | None] = lambda name, pattern: None
    present: Callable[[str], Node | None] = lambda name: None  # when a computed name has a value
    # a test on a computed name said through its form (see StageWalker._formed_search)
    formed: Callable[[ast.Compare | ast.InList], Node | None] = lambda expr: None

    def __post_init__(self) -> None:
        self.field_name = self._sigma_name

    def computed(self, expr: ast.Compare | ast.InList) -> Node | None:
        """``X=v``, ``X!=v``, ``X IN (...)`` on a computed X that takes literal values: the conditions
        of the values the search value matches (as the search language matches: any case, wildcards)."""
        cases = self.cases(expr.field) if self.event_field(expr.field) is None else None
        if cases is None:
            node = self._decoded_search(expr)
            if node is None and (node := self.formed(expr)) is not None:
                self.notes.append(f"`{print_search(expr)}` folded in on the event fields it is computed from")
            return node
        if isinstance(expr, ast.InList):
            patterns, same = [v.text for v in expr.values], True
        elif expr.op in ("=", "!="):
            patterns, same = [expr.value.text], expr.op == "="
        else:
            return None
        hits = [node for node, value in cases if any(splunk_match(value, p) for p in patterns) == same]
        self.notes.append(f"`{print_search(expr)}` folded in through the values it is computed as")
        return make_or(hits)

    def _sigma_name(self, name: str) -> str | None:
        ev = self.event_field(name)
        return None if ev is None else self.base.field_name(ev)

    def equals(self, name: str, text: str) -> Node | None:
        ev = self.event_field(name)
        node = None if ev is None else self.base.equals(ev, text)
        fill = self.fill(name)
        if node is not None and fill is not None and splunk_match(fill, text):
            node = make_or([node, Item(self._sigma_name(name), (), (None,))])  # rows without it hold the fill
        return node

    def not_equals(self, name: str, equals: Node) -> Node:
        if self.fill(name) is not None:
            return make_not(equals)  # a filled field is always present
        return super().not_equals(name, equals)

    def _decoded_search(self, expr: ast.Compare | ast.InList) -> Node | None:
        """``X=v`` / ``X!=v`` / ``X IN (...)`` on a hex-decoded X (any case, ``*`` at the ends)."""
        if self.event_field(expr.field) is not None:
            return None
        values = [v.text for v in expr.values] if isinstance(expr, ast.InList) else [expr.value.text]
        if isinstance(expr, ast.Compare) and expr.op not in ("=", "!="):
            return None
        nodes = [self.decoded(expr.field, v) for v in values]
        present = self.present(expr.field)
        if any(n is None for n in nodes) or present is None:
            return None
        node = make_or(nodes)  # type: ignore[arg-type]
        self.notes.append(f"`{print_search(expr)}` folded in on the hex-encoded field it decodes")
        if isinstance(expr, ast.Compare) and expr.op == "!=":
            return make_and([present, make_not(node)])  # != needs a value
        return node

    def unmapped(self, name: str) -> str:
        if self.event_field(name) is None:
            return f"{name} is computed by the search (or filled), not an event field"
        return self.base.unmapped(name)


def _threshold_block(agg: Aggregation, correlation: dict[str, Any] | None, right: ast.Expr) -> str | None:
    """Why a test on an output of the first aggregation is no correlation, whatever the output."""
    if correlation is not None:
        return "another test on the aggregation is the correlation already: a Sigma correlation has one condition"
    if agg.time_unbucketed:
        return "the aggregation groups by each exact _time (no span): no Sigma timespan groups events that way"
    if not isinstance(right, ast.Num):
        return f"`{print_expr(right)}` is not a number: a correlation's threshold is one"
    return None


def _regex_test(walker: StageWalker, t: Target, _f: str, pattern: str) -> Node | None:
    return None if t.basename is not None else Item(t.sigma, ("re",), (pattern,))


def _search_test(walker: StageWalker, _t: Target, event_field: str, pattern: str) -> Node | None:
    return walker.base_ctx().equals(event_field, pattern)


def _order_test(walker: StageWalker, t: Target, _f: str, op: str, value: str) -> Node | None:
    return None if t.basename is not None else order_node(t.sigma, op, value)


# condition kinds on one event field (translator.sigma.forms.Cond) -> its Sigma form (None: none exact)
_FIELD_TESTS: dict[str, Callable[..., Node | None]] = {
    "match": _regex_test,
    "eq": lambda w, t, f, value: equals_item(t, str(value)),
    "ieq": lambda w, t, f, value: equals_item(t, str(value), cased=False),
    "search": _search_test,
    "like": lambda w, t, f, pattern, cased: like_item(t, str(pattern), cased),
    "order": _order_test,
}

_SPAN = re.compile(r"^(\d+)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days)$")


def _sigma_timespan(span: str) -> str | None:
    """An SPL span (``5m``, ``1hr``, ``30s``) as a Sigma timespan, or None."""
    m = _SPAN.match(span.strip().lower())
    if m is None:
        return None
    return m.group(1) + m.group(2)[0]


def _present_through_lookup(name: str, binding: Binding) -> Node:
    return inline_where(ast.Call("isnotnull", (ast.Field(name),)), name, binding)


def _keeps_every_row(cmd: ast.SubpipelineCommand) -> bool:
    """``join type=outer|left`` keeps each row of the main search, matched or not."""
    kind = next((o.value.text.lower() for o in cmd.options if o.key.lower() == "type"), "inner")
    return cmd.name == "join" and kind in ("outer", "left")


def _search_fields(expr: ast.SearchExpr) -> set[str]:
    if isinstance(expr, ast.Compare | ast.InList):
        return {expr.field}
    if isinstance(expr, ast.Not):
        return _search_fields(expr.operand)
    if isinstance(expr, ast.And | ast.Or):
        return set().union(*(_search_fields(x) for x in expr.operands))
    return {"<keyword>"}  # a bare term reads the raw event


def _expr_fields(expr: ast.Expr) -> set[str]:
    if isinstance(expr, ast.Field):
        return {expr.name}
    if isinstance(expr, ast.Binary):
        return _expr_fields(expr.left) | _expr_fields(expr.right)
    if isinstance(expr, ast.Unary):
        return _expr_fields(expr.operand)
    if isinstance(expr, ast.Call):
        return set().union(*(_expr_fields(a) for a in expr.args))
    if isinstance(expr, ast.InExpr):
        return _expr_fields(expr.operand).union(*(_expr_fields(v) for v in expr.values))
    return set()


def _null_call(expr: ast.Expr) -> ast.Call | None:
    if isinstance(expr, ast.Call) and expr.name in ("isnull", "isnotnull") and len(expr.args) == 1:
        return expr
    return None


def _conjuncts(expr: ast.Expr) -> list[ast.Expr]:
    if isinstance(expr, ast.Binary) and expr.op == "and":
        return _conjuncts(expr.left) + _conjuncts(expr.right)
    return [expr]


def _short(cmd: ast.Command) -> str:
    text = print_command(cmd)
    return text if len(text) <= 120 else text[:117] + "..."

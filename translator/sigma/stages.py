"""The commands after the first one: fold what selects events, account for the rest.

``| where`` and ``| search`` conjuncts that read only event fields (see
:mod:`translator.sigma.lineage`) are ANDed into the detection; the rest are
left out, which makes the rule broader, and a reason says so. Every other
command is classified by ``data/stages.yml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from translator.data import load_table
from translator.sigma.detection import TRUE, Lowering, Node, lower, make_and
from translator.sigma.lineage import FieldScope, aggregate_outputs
from translator.sigma.where import Target, Unfoldable, lower_where
from translator.spl import ast
from translator.spl.printer import print_command, print_expr, print_search

UNSUPPORTED = "unsupported"


@dataclass
class StageResult:
    node: Node = TRUE  # what the folded stages add (ANDed with the base detection)
    required: list[str] = field(default_factory=list)  # event fields a `by` needs present
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
            if isinstance(cmd, ast.SearchCommand):
                if cmd.expr is not None and cmd.expr != ast.Term(ast.Value("*")):
                    self._fold_search(cmd.expr)
            elif isinstance(cmd, ast.WhereCommand):
                self._fold_where(cmd.expr)
            elif isinstance(cmd, ast.StatsCommand) and name in ("stats", "timechart"):
                self._aggregate(cmd)
            elif name in stages["unsupported"]:
                res.unsupported = True
                res.reasons.append(f"`| {name}` {stages['unsupported'][name]}")
            elif name in stages["filter"]:
                res.reasons.append(f"`| {_short(cmd)}` not carried over; the rule is broader")
            elif not (isinstance(cmd, ast.StatsCommand) or name in stages["neutral"]):
                res.unsupported = True
                res.reasons.append(f"unknown command `| {name}`: its effect on the selection is not known")
            if not (isinstance(cmd, ast.StatsCommand) and name in ("stats", "timechart")):
                self.scope.apply(cmd)
        return res

    def _aggregate(self, cmd: ast.StatsCommand) -> None:
        res = self.result
        if not self.aggregated:
            res.by_fields = [t for b in cmd.by if (t := self.scope.resolve(b)) is not None]
            for b in cmd.by:
                event_field = self.scope.resolve(b)
                if b == "_time" or event_field is None:
                    continue
                if self.scope.fill_all or self.scope.fill_of(event_field) is not None:
                    continue
                res.required.append(event_field)
        self.aggregated = True
        self.scope.aggregate(cmd.by, aggregate_outputs(cmd.aggregations))

    def _fold_where(self, expr: ast.Expr) -> None:
        for conj in _conjuncts(expr):
            try:
                node = lower_where(conj, self.resolve)
            except Unfoldable as why:
                self.result.reasons.append(f"`where {print_expr(conj)}` not carried over: {why}; the rule is broader")
                continue
            self.result.node = make_and([self.result.node, node])
            self.result.notes.append(f"`where {print_expr(conj)}` folded into the detection")

    def _event_field(self, name: str) -> str | None:
        """For ``| search``: the event field ``name`` holds, unless a fill may have set it."""
        t = self.resolve(name)
        return None if t is None or t.fill is not None else self.scope.resolve(name)

    def _fold_search(self, expr: ast.SearchExpr) -> None:
        for conj in list(expr.operands) if isinstance(expr, ast.And) else [expr]:
            ctx = ScopedLowering(base=self.base_ctx(), event_field=self._event_field)
            node = lower(conj, ctx)
            if ctx.reasons:
                self.result.reasons.extend(ctx.reasons)
            if node != TRUE:
                self.result.node = make_and([self.result.node, node])
                self.result.notes.append(f"`search {print_search(conj)}` folded into the detection")


@dataclass
class ScopedLowering(Lowering):
    """Search-language lowering of a later ``| search``: names go through the field scope first."""

    base: Lowering = field(default_factory=Lowering)
    event_field: Callable[[str], str | None] = lambda name: name

    def __post_init__(self) -> None:
        self.field_name = self._sigma_name

    def _sigma_name(self, name: str) -> str | None:
        ev = self.event_field(name)
        return None if ev is None else self.base.field_name(ev)

    def equals(self, name: str, text: str) -> Node | None:
        ev = self.event_field(name)
        return None if ev is None else self.base.equals(ev, text)

    def unmapped(self, name: str) -> str:
        if self.event_field(name) is None:
            return f"{name} is computed by the search (or filled), not an event field"
        return self.base.unmapped(name)


def _conjuncts(expr: ast.Expr) -> list[ast.Expr]:
    if isinstance(expr, ast.Binary) and expr.op == "and":
        return _conjuncts(expr.left) + _conjuncts(expr.right)
    return [expr]


def _short(cmd: ast.Command) -> str:
    text = print_command(cmd)
    return text if len(text) <= 120 else text[:117] + "..."

"""SPL pipeline -> Sigma rule, with a fidelity status and reasons.

The first command selects events; it becomes the Sigma ``logsource`` and
``detection``. Every later command is classified by ``data/stages.yml``:
neutral ones change nothing about which events count, filters that cannot be
folded in are left out (the rule gets broader and a reason says so), and a few
commands make a faithful rule impossible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from translator.data import load_table
from translator.sigma import cim
from translator.sigma import logsource as ls
from translator.sigma.detection import (
    FALSE,
    TRUE,
    Item,
    Lowering,
    Node,
    SAnd,
    build_detection,
    lower,
    make_and,
)
from translator.spl import ast
from translator.spl.printer import print_command

EXACT, PARTIAL, UNSUPPORTED, ERROR = "exact", "partial", "unsupported", "error"


@dataclass
class RuleDraft:
    """What conversion produced: the rule body (no metadata) and its fidelity."""

    status: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logsource: dict[str, str] = field(default_factory=dict)
    detection: dict[str, Any] | None = None
    fields: list[str] = field(default_factory=list)


@cache
def _field_map(product: str) -> dict[str, str]:
    return dict(load_table("fields")["raw_to_sigma"].get(product, {}))


def sigma_field(product: str, name: str) -> str:
    return _field_map(product).get(name, name)


def convert_pipeline(pipeline: ast.Pipeline, data_sources: tuple[str, ...] | list[str] = ()) -> RuleDraft:
    """Convert one parsed search; ``data_sources`` (the detection's) pick the logsource of a data model."""
    if not pipeline.commands:
        return RuleDraft(UNSUPPORTED, ["empty search"])
    first = pipeline.commands[0]
    if isinstance(first, ast.TstatsCommand):
        return _convert_tstats(first, pipeline.commands[1:], data_sources)
    if not isinstance(first, ast.SearchCommand) or first.explicit:
        name = getattr(first, "name", "search")
        why = load_table("stages")["unsupported"].get(name, "does not search raw events")
        return RuleDraft(UNSUPPORTED, [f"the search starts with `| {name}`, which {why}"])
    return _convert_raw(first.expr, pipeline.commands[1:], tuple(data_sources))


def _convert_raw(base: ast.SearchExpr | None, rest: tuple[ast.Command, ...], data_sources: tuple[str, ...]) -> RuleDraft:
    inferred = ls.infer(base, data_sources)
    draft = RuleDraft(EXACT, list(inferred.reasons), list(inferred.notes), inferred.logsource)
    if not inferred.logsource:
        draft.status = UNSUPPORTED
        draft.reasons.append("no Sigma logsource could be inferred from the search's source terms")
        return draft
    product = inferred.logsource.get("product", "")
    ctx = Lowering(field_name=lambda f: sigma_field(product, f))
    node = lower(ast.And(tuple(inferred.remaining)), ctx) if inferred.remaining else TRUE
    draft.reasons.extend(ctx.reasons)

    required, by_fields = _later_stages(rest, draft)
    if by_fields:
        draft.fields = [sigma_field(product, f) for f in by_fields]
    present = ls.always_present(inferred.logsource) | _positive_fields(node)
    for f in required:
        name = sigma_field(product, f)
        if f not in present and name not in present:
            node = make_and([node, Item(name, ("exists",), (True,))])
            draft.notes.append(f"`by {f}` drops events without {f}: made explicit with {name}|exists")

    return _finish_detection(draft, node)


def _convert_tstats(cmd: ast.TstatsCommand, rest: tuple[ast.Command, ...], data_sources: Any) -> RuleDraft:
    if cmd.datamodel is None:
        return RuleDraft(UNSUPPORTED, ["`| tstats` without `from datamodel=` reads index-time fields, not events"])
    feed = cim.select_feed(cmd.datamodel, data_sources)
    if feed is None:
        known = cim.dataset_name(cmd.datamodel) in load_table("cim")["datasets"]
        why = "no Sigma logsource for its data sources" if known else "not in the CIM mapping table yet"
        return RuleDraft(UNSUPPORTED, [f"data model {cmd.datamodel}: {why}"])
    draft = RuleDraft(EXACT, logsource=dict(feed.logsource))
    draft.notes.append(f"data model {feed.dataset} read as {_logsource_text(feed.logsource)} ({feed.chosen_by})")
    ctx = cim.CimLowering(feed=feed)
    node = lower(cmd.where, ctx) if cmd.where is not None else TRUE
    draft.reasons.extend(ctx.reasons)

    fills = any(o.key.lower() == "fillnull_value" for o in cmd.options)
    for f in cmd.by:
        name = ctx.field_name(f)
        if name is not None and name not in draft.fields:
            draft.fields.append(name)
        if fills or f == "_time":
            continue
        if name is None:
            draft.reasons.append(f"`by {f}` drops events without {f}, which has no Sigma field; the rule is broader")
        elif name not in _positive_fields(node):
            node = make_and([node, Item(name, ("exists",), (True,))])
            draft.notes.append(f"`by {f}` drops events without it: made explicit with {name}|exists")
    _later_stages(rest, draft, aggregated=True)
    return _finish_detection(draft, node)


def _logsource_text(logsource: dict[str, str]) -> str:
    return "/".join(logsource[k] for k in ("product", "category", "service") if k in logsource)


def _finish_detection(draft: RuleDraft, node: Node) -> RuleDraft:
    if node == TRUE:
        draft.status = UNSUPPORTED
        draft.reasons.append("the search selects every event of its logsource; Sigma needs a condition")
        return draft
    if node == FALSE:
        draft.status = UNSUPPORTED
        draft.reasons.append("the search can never match")
        return draft
    draft.detection = build_detection(node)
    if draft.status == EXACT and draft.reasons:
        draft.status = PARTIAL
    return draft


def _positive_fields(node: Node) -> set[str]:
    """Fields the top level of ``node`` already requires to be present."""
    children = node.children if isinstance(node, SAnd) else (node,)
    return {c.field for c in children if isinstance(c, Item) and c.field}


def _later_stages(
    commands: tuple[ast.Command, ...], draft: RuleDraft, aggregated: bool = False
) -> tuple[list[str], list[str]]:
    """Walk the commands after the base search.

    Returns (fields a ``by`` clause requires, the first stats' ``by`` fields).
    Appends reasons to ``draft`` and sets UNSUPPORTED where needed.
    """
    stages = load_table("stages")
    filled_all = False
    filled: set[str] = set()
    required: list[str] = []
    by_fields: list[str] = []
    for cmd in commands:
        name = ast.command_name(cmd)
        if isinstance(cmd, ast.SearchCommand):
            if cmd.expr is None or cmd.expr == ast.Term(ast.Value("*")):
                continue
            draft.reasons.append(f"`{print_command(cmd)}` not carried over yet; the rule is broader")
            continue
        if isinstance(cmd, ast.WhereCommand):
            draft.reasons.append(f"`{print_command(cmd)}` not carried over yet; the rule is broader")
            continue
        if isinstance(cmd, ast.FillnullCommand):
            if not aggregated:
                if cmd.fields:
                    filled.update(cmd.fields)
                else:
                    filled_all = True
            continue
        if isinstance(cmd, ast.StatsCommand) and cmd.name == "stats":
            if not aggregated:
                by_fields = list(cmd.by)
                if not filled_all:
                    required.extend(f for f in cmd.by if f not in filled and f != "_time")
            aggregated = True
            continue
        if isinstance(cmd, ast.StatsCommand | ast.RenameCommand | ast.ConvertCommand | ast.FieldListCommand):
            continue
        if isinstance(cmd, ast.EvalCommand) or name in stages["neutral"]:
            continue
        if name in stages["unsupported"]:
            draft.status = UNSUPPORTED
            draft.reasons.append(f"`| {name}` {stages['unsupported'][name]}")
            continue
        if name in stages["filter"]:
            draft.reasons.append(f"`| {print_command(cmd)}` not carried over; the rule is broader")
            continue
        draft.status = UNSUPPORTED
        draft.reasons.append(f"unknown command `| {name}`: its effect on the selection is not known")
    return required, by_fields

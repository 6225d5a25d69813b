"""SPL pipeline -> Sigma rule, with a fidelity status and reasons.

The first command selects events; it becomes the Sigma ``logsource`` and
``detection``. Every later command is classified by ``data/stages.yml``:
neutral ones change nothing about which events count, filters that cannot be
folded in are left out (the rule gets broader and a reason says so), and a few
commands make a faithful rule impossible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from translator.content.loader import DataSource, Lookup
from translator.data import load_table
from translator.sigma import cim
from translator.sigma import logsource as ls
from translator.sigma.detection import (
    FALSE,
    STORAGE_FIELDS,
    TRUE,
    Item,
    Lowering,
    Node,
    SAnd,
    SOr,
    build_detection,
    lower,
    make_and,
    make_or,
)
from translator.sigma.lineage import FieldScope, aggregate_outputs
from translator.sigma.stages import DEFAULT_TIMESPAN, StageResult, StageWalker
from translator.sigma.where import Target
from translator.spl import ast

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
    correlation: dict[str, Any] | None = None  # type, group-by, timespan, condition


@cache
def _field_map(product: str) -> dict[str, str]:
    return dict(load_table("fields")["raw_to_sigma"].get(product, {}))


def sigma_field(product: str, name: str) -> str:
    return _field_map(product).get(name, name)


def convert_pipeline(
    pipeline: ast.Pipeline,
    data_sources: tuple[str, ...] | list[str] = (),
    lookups: Mapping[str, Lookup] | None = None,
    described: Mapping[str, DataSource] | None = None,
    window: tuple[str, str] | None = None,
    alert: tuple[str, str] | None = None,
    logsource: dict[str, str] | None = None,
) -> RuleDraft:
    """Convert one parsed search.

    ``data_sources`` (the detection's) pick the logsource of a data model; ``lookups`` (the content's CSV
    lookups) let conditions on a lookup's output be folded in as conditions on its inputs; ``described``
    (the content's data source files by name) say where each data source's events come from; ``window``
    (timespan, where it comes from) is the schedule's dispatch window, the timespan of a threshold over
    the whole search; ``alert`` a saved search's alert condition on its number of results; ``logsource``
    the Sigma logsource of a search that names no source (the user's word for where its events are).
    """
    context = Context(lookups or {}, described or {}, window, alert, logsource)
    draft = _convert(pipeline, tuple(data_sources), context)
    for token in ast.tokens(pipeline):
        draft.notes.append(
            f"{token} is a Splunk token (dashboards and alert actions fill it in); the search runs it as "
            "literal text, and so does the rule"
        )
    return draft


@dataclass(frozen=True)
class Context:
    """What the content says beyond the search: its lookups, data sources and schedule."""

    lookups: Mapping[str, Lookup]
    described: Mapping[str, DataSource]
    window: tuple[str, str] | None = None
    alert: tuple[str, str] | None = None  # a saved search's alert condition: (relation, number of results)
    logsource: dict[str, str] | None = None  # the user's logsource for a search that names no source


def _convert(pipeline: ast.Pipeline, data_sources: tuple[str, ...], context: Context) -> RuleDraft:
    if not pipeline.commands:
        return RuleDraft(UNSUPPORTED, ["empty search"])
    first = pipeline.commands[0]
    if isinstance(first, ast.TstatsCommand):
        return _convert_tstats(first, pipeline.commands[1:], data_sources, context)
    if isinstance(first, ast.SearchCommand) and not first.explicit:
        return _convert_raw(first.expr, pipeline.commands[1:], data_sources, context)
    name = ast.command_name(first)
    if name in load_table("stages")["per_event"]:  # `| rex ...` first: it reads every event
        draft = _convert_raw(None, pipeline.commands, data_sources, context)
        draft.notes.append(f"the search starts with `| {name}`: read as following a search of every event")
        return draft
    why = load_table("stages")["unsupported"].get(name, "does not search raw events")
    return RuleDraft(UNSUPPORTED, [f"the search starts with `| {name}`, which {why}"])


def _convert_raw(
    base: ast.SearchExpr | None,
    rest: tuple[ast.Command, ...],
    data_sources: tuple[str, ...],
    context: Context,
) -> RuleDraft:
    inferred = ls.infer(base, data_sources, context.described)
    if not inferred.logsource and context.logsource:
        inferred.logsource = dict(context.logsource)
        inferred.notes.append(f"logsource {_logsource_text(context.logsource)} as given (the search names no source)")
    draft = RuleDraft(EXACT, list(inferred.reasons), list(inferred.notes), inferred.logsource)
    if not inferred.logsource:
        draft.status = UNSUPPORTED
        draft.reasons.append("no Sigma logsource could be inferred from the search's source terms")
        return draft
    product = ls.record_product(inferred.logsource)
    feed = cim.raw_feed(inferred.logsource)

    def make_ctx() -> Lowering:
        if feed is None:
            return Lowering(field_name=lambda f: sigma_field(product, f))
        return cim.RawLowering(feed=feed, fallback=lambda f: sigma_field(product, f))

    ctx = make_ctx()
    node = lower(ast.And(tuple(inferred.remaining)), ctx) if inferred.remaining else TRUE
    draft.reasons.extend(ctx.reasons)

    def name_of(event_field: str) -> str:
        return ctx.field_name(event_field) or event_field

    def target(event_field: str) -> Target | None:
        if event_field in STORAGE_FIELDS or event_field in ("_raw", "_time"):
            return None
        rule = feed.fields.get(event_field) if feed is not None else None
        if rule is None or feed is None:
            return Target(sigma_field(product, event_field))
        return cim.target_of(rule, feed)

    walker = StageWalker(
        FieldScope(),
        target,
        make_ctx,
        lookups=context.lookups,
        constants=frozenset(ls.constant_fields(inferred.logsource)),
        window=context.window,
        present=frozenset(required_fields(node)),
    )
    staged = _apply_stages(walker, rest, draft)
    _alert_condition(draft, walker.aggregated, context)
    node = core = make_and([node, staged.node])
    required, by_fields = staged.required, staged.by_fields
    if by_fields:
        draft.fields = [name_of(f) for f in by_fields]
    present = ls.always_present(inferred.logsource) | _positive_fields(node) | (feed.always if feed else set())
    for b in staged.dropped_by:
        if b not in present and b not in STORAGE_FIELDS:
            draft.reasons.append(
                f"`by {b}` drops events where {b} is null, and {b} is computed by the search (or named "
                "past a wildcard rename); that drop is not carried over, the rule is broader"
            )
    for f in required:
        name = name_of(f)
        if f not in present and name not in present:
            node = make_and([node, Item(name, ("exists",), (True,))])
            draft.notes.append(f"`by {f}` drops events without {f}: made explicit with {name}|exists")
    for by, when in staged.required_when:
        when = _known_present(when, present)
        if when != TRUE:
            node = make_and([node, when])
            draft.notes.append(f"`by {by}` drops events where {by}, computed by the search, is null: made explicit")
    for by, names in staged.required_any:
        sigma_names = [name_of(f) for f in names]
        if not present.intersection(names) and not present.intersection(sigma_names):
            node = make_and([node, make_or([Item(n, ("exists",), (True,)) for n in sigma_names])])
            draft.notes.append(
                f"`by {by}` drops events without it: made explicit as "
                + " or ".join(f"{n}|exists" for n in sigma_names)
            )
    if node == TRUE and inferred.implied:
        # every event of the category: Sigma needs a condition, and the event codes that chose the
        # category say exactly that (the category holds no other events)
        node = core = lower(ast.And(tuple(inferred.implied)), make_ctx())
        draft.notes.append("the event code the category implies is kept: the rule needs a condition")
    if inferred.channel:  # part of the logsource, not a condition of the search's own
        node = make_and([lower(ast.And(tuple(inferred.channel)), make_ctx()), node])

    return _finish_detection(draft, node, core)


def _convert_tstats(
    cmd: ast.TstatsCommand, rest: tuple[ast.Command, ...], data_sources: Any, context: Context
) -> RuleDraft:
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

    def target(event_field: str) -> Target | None:
        return cim.target_of(ctx.rule(event_field), feed)

    scope = FieldScope()
    constants = frozenset(f"{feed.prefix}.{c}" for c in feed.always & ls.constant_fields(feed.logsource))
    walker = StageWalker(
        scope,
        target,
        lambda: cim.CimLowering(feed=feed),
        aggregated=True,
        lookups=context.lookups,
        constants=constants,
        window=context.window,
        present=frozenset(required_fields(node)),
    )
    span = next((o.value.text for o in cmd.by_options if o.key.lower() == "span"), None)
    walker.start_aggregation(cmd.by, cmd.aggregations, span)  # before the scope closes: arguments resolve
    scope.aggregate(cmd.by, aggregate_outputs(cmd.aggregations))
    fill = next((o.value.text for o in cmd.options if o.key.lower() == "fillnull_value"), None)
    if fill is not None:
        scope.fills = {b: fill for b in cmd.by}
    node = core = make_and([node, _apply_stages(walker, rest, draft).node])
    _alert_condition(draft, True, context)
    fills = any(o.key.lower() == "fillnull_value" for o in cmd.options)
    for f in cmd.by:
        name = ctx.field_name(f)
        if name is not None and name not in draft.fields:
            draft.fields.append(name)
        if fills or f == "_time" or f in STORAGE_FIELDS | {"host"}:
            continue  # filled, or a field every event has
        if name is None and ctx.cim_field(f) in feed.always:
            continue  # the add-ons set it on every event of the feed
        if name is None:
            draft.reasons.append(f"`by {f}` drops events without {f}, which has no Sigma field; the rule is broader")
        elif name not in _positive_fields(node):
            node = make_and([node, Item(name, ("exists",), (True,))])
            draft.notes.append(f"`by {f}` drops events without it: made explicit with {name}|exists")

    return _finish_detection(draft, node, core)


def _apply_stages(walker: StageWalker, rest: tuple[ast.Command, ...], draft: RuleDraft) -> StageResult:
    result = walker.walk(rest)
    draft.correlation = result.correlation
    draft.reasons.extend(result.reasons)
    draft.notes.extend(result.notes)
    if result.unsupported:
        draft.status = UNSUPPORTED
    return result


_ALERT_OPS = {">": "gt", ">=": "gte"}


def _alert_condition(draft: RuleDraft, aggregated: bool, context: Context) -> None:
    """A saved search's alert condition (``counttype = number of events``, ``relation``, ``quantity``):
    over a search whose results are its events, an event_count correlation over the dispatch window."""
    if context.alert is None:
        return
    op, quantity = context.alert
    said = f"the alert fires when the search returns {op} {quantity} results"
    if op == ">" and int(quantity) == 0:
        draft.notes.append(f"{said}: on any result, as the rule does")
        return
    if op not in _ALERT_OPS:
        draft.status = UNSUPPORTED
        draft.reasons.append(f"{said}; a rule fires on the events it matches, never on their absence")
        return
    if aggregated or draft.correlation is not None:
        draft.reasons.append(f"{said}, and its results are groups, not events: not carried over, the rule is broader")
        return
    if context.window is not None:
        timespan = context.window[0]
        draft.notes.append(f"{said}: an event_count correlation over the dispatch window, {context.window[1]}")
    else:
        timespan = DEFAULT_TIMESPAN
        draft.reasons.append(f"{said}; no schedule states the window: the correlation's {timespan} is a guess")
    draft.correlation = {"type": "event_count", "group-by": [], "timespan": timespan,
                         "condition": {_ALERT_OPS[op]: int(quantity)}}  # fmt: skip


def _logsource_text(logsource: dict[str, str]) -> str:
    return "/".join(logsource[k] for k in ("product", "category", "service") if k in logsource)


def _finish_detection(draft: RuleDraft, node: Node, core: Node) -> RuleDraft:
    """``core`` is the selection without the by-field presence conditions."""
    if core == TRUE and draft.correlation is None and node != TRUE:
        draft.status = UNSUPPORTED
        draft.reasons.append(
            "what is left selects every event of its logsource (only by-field presence remains): "
            "the original's filtering lies in stages that cannot be carried over"
        )
        return draft
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


def _known_present(node: Node, present: set[str]) -> Node:
    """``node`` with ``F|exists`` items on fields known present replaced by TRUE."""
    if isinstance(node, Item):
        return TRUE if node.modifiers == ("exists",) and node.values == (True,) and node.field in present else node
    if isinstance(node, SAnd):
        return make_and([_known_present(c, present) for c in node.children])
    if isinstance(node, SOr):
        return make_or([_known_present(c, present) for c in node.children])
    return node


def required_fields(node: Node) -> set[str]:
    """Fields every event ``node`` selects has: a top-level item matching values (not absence), or an OR
    whose every branch requires the field."""
    children = node.children if isinstance(node, SAnd) else (node,)
    out: set[str] = set()
    for c in children:
        if isinstance(c, Item) and c.field and None not in c.values and c.values != (False,):
            out.add(c.field)
        elif isinstance(c, SOr) and c.children:
            out |= set.intersection(*(required_fields(x) for x in c.children))
    return out


def _positive_fields(node: Node) -> set[str]:
    """Fields the top level of ``node`` already requires to be present."""
    children = node.children if isinstance(node, SAnd) else (node,)
    return {c.field for c in children if isinstance(c, Item) and c.field}

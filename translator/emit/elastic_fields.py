"""Where Elastic's integrations put a rule's fields: the ``elastic_fields`` pipeline.

Each field is renamed to where the integrations put it for every source the rule reads
(an event log and event code, or a JSON data stream), found by probing
:mod:`translator.events.elastic` with a marker value, so the view and the pipeline read
one table. A Splunk add-on's alias of a raw field is written on that field (a coalesce as
a test per path); an account the integration splits is tested on its parts; what no
document holds as written fails the rule for the target, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sigma.conditions import ConditionAND, ConditionOR
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaTransformationError
from sigma.modifiers import SigmaExistsModifier
from sigma.processing.conditions import RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaCasedString,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    SpecialChars,
)

from translator.data import logsource_table
from translator.engine.sigma_eval import needed_values
from translator.events.elastic import (
    Base,
    alias_definition,
    channel_base,
    coalesced,
    has_view,
    parsed_away,
    shared_with,
    source_names,
    split_account,
    stream_base,
    stream_route,
    streams_for,
    unnamed_data,
)
from translator.sigma.logsource import channels_by_service


def elastic_fields() -> ProcessingPipeline:
    """The rule's field names as Elastic's integrations write them (for Windows before
    ``ecs_windows``, which leaves alone a name that already has its ECS or ``winlog`` form)."""
    return ProcessingPipeline(
        name="translator: field names as Elastic's integrations write them",
        priority=15,
        items=[
            ProcessingItem(
                identifier="translator_elastic_fields",
                transformation=ElasticFieldNames(),
                rule_conditions=[ElasticView()],
            )
        ],
    )


@dataclass
class ElasticView(RuleProcessingCondition):
    """A rule whose events Elastic's integrations are known to index: any Windows rule (what our
    table does not place, ``ecs_windows`` names), or a rule of another product whose every source
    has a data stream in ``data/elastic.yml``. Rules of other sources keep their field names."""

    def match(self, rule: Any) -> bool:
        if isinstance(rule, SigmaCorrelationRule):
            return any(self.match(r.rule) for r in rule.referenced_rules if hasattr(r, "rule"))
        return rule.logsource.product == "windows" or bool(rule_sources(rule))


@dataclass
class ElasticFieldNames(DetectionItemTransformation):
    """Each field renamed to where the integrations put it for every source (event log and code) the
    rule reads — a field they all share, ECS first (see :func:`translator.events.elastic.source_names`).
    Windows leaves to ``ecs_windows`` a field they share none of; elsewhere nothing follows, so that
    fails the rule. A field an integration parses into parts (Sysmon's ``Hashes``) fails it too: no
    Elastic field holds the value as written."""

    _sources: list[tuple[Base, dict[str, str]]] = field(default_factory=list)
    _windows: bool = True

    def apply(self, rule: Any) -> None:
        if isinstance(rule, SigmaCorrelationRule):  # its group-by and counted fields, from its rules'
            refs = [r.rule for r in rule.rules if isinstance(getattr(r, "rule", None), SigmaRule)]
            self._sources = [s for r in refs for s in rule_sources(r)]
            self._windows = not refs or any(r.logsource.product == "windows" for r in refs)
            if self._sources and not self._windows:  # Windows: ecs_windows names them
                rule.group_by = [self._place(f, in_group=True) for f in rule.group_by or []]
                ref = rule.condition.fieldref
                if isinstance(ref, str):
                    rule.condition.fieldref = self._place(ref, in_group=True)
                elif isinstance(ref, list):
                    rule.condition.fieldref = [self._place(f, in_group=True) for f in ref]
        else:
            self._sources = rule_sources(rule)
            self._windows = rule.logsource.product == "windows"
        super().apply(rule)

    def _place(self, name: str, in_group: bool = False) -> str:
        """Where the field is in every source's documents (ECS first), or ``name`` for Windows to
        leave to ``ecs_windows``; raises when no field holds it as written."""
        self._refuse(name)
        if in_group and any(coalesced(base, name) for base, _raw in self._sources):
            raise SigmaTransformationError(f"{name} is the first present of several fields: it cannot be grouped by")
        found = [source_names(base, raw.get(name, name)) for base, raw in self._sources]
        common = [f for f in found[0] if all(f in other for other in found[1:])]  # ECS fields first
        if common:
            return common[0]
        if not self._windows:
            raise SigmaTransformationError(
                f"{name}: no field of the documents Elastic's integration writes for these events holds it"
            )
        return name

    def _refuse(self, name: str) -> None:
        for base, raw in self._sources:
            if (definition := alias_definition(base, name)) is not None:
                raise SigmaTransformationError(
                    f"{name} is computed by the Splunk add-on ({definition}): no Elastic field holds it"
                )
            if (prefix := parsed_away(str(dict(base).get("Channel")), raw.get(name, name))) is not None:
                raise SigmaTransformationError(
                    f"Elastic's integration parses {name} into {prefix}.<algorithm>: the field as written is gone"
                )
            if (prefix := unnamed_data(base, raw.get(name, name))) is not None:
                raise SigmaTransformationError(
                    f"Elastic's Windows integration names unnamed Data elements {prefix}1, {prefix}2, ...: "
                    f"no one field holds {name}"
                )
            if (shared := shared_with(base, raw.get(name, name))) is not None:
                raise SigmaTransformationError(
                    f"Elastic's integration writes {name} and {', '.join(shared[1])} to {shared[0]}: "
                    "neither value is kept apart"
                )

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetection | None:
        name = detection_item.field
        if name is None or not self._sources or (self._windows and "." in name):
            return None
        self._refuse(name)
        paths = {tuple(coalesced(base, name)) for base, _raw in self._sources}
        if len(paths) == 1 and (chain := next(iter(paths))):
            return self._coalesce(detection_item, list(chain))
        splits = {split_account(base, raw.get(name, name)) for base, raw in self._sources}
        if len(splits) == 1 and (pair := next(iter(splits))):
            return self._split(detection_item, *pair)
        if len(splits) > 1:  # split in some event logs, whole in others: each said on its own
            return self._per_source(detection_item)
        placed = self._place(name)
        for value in detection_item.value:  # `a|fieldref: b` names a field on the other side too
            if isinstance(value, SigmaFieldReference) and not (self._windows and "." in value.field):
                value.field = self._place(value.field)
        if placed != name:
            detection_item.field = placed
            self.processing_item_applied(detection_item)
        return None

    def _per_source(self, item: SigmaDetectionItem) -> SigmaDetection:
        """The test said per event log and code (``winlog.channel`` and ``event.code`` with it), for a
        field the integrations keep differently across the rule's sources."""
        said: list[tuple[Base, SigmaDetectionItem | SigmaDetection]] = []
        everything = self._sources
        try:
            for base, raw in everything:
                self._sources = [(base, raw)]
                copy = _item(str(item.field), list(item.value), item.modifiers)
                said.append((base, self.apply_detection_item(copy) or copy))
        finally:
            self._sources = everything
        if len({_shape(test) for _base, test in said}) == 1:  # said alike everywhere (presence)
            return SigmaDetection([said[0][1]], item_linking=ConditionAND)
        branches: list[SigmaDetectionItem | SigmaDetection] = []
        for base, test in said:
            fields = dict(base)
            where = [
                SigmaDetectionItem("winlog.channel", [], [SigmaString(str(fields["Channel"]))]),
                SigmaDetectionItem("event.code", [], [SigmaString(str(fields["EventID"]))]),
            ]
            branches.append(SigmaDetection([*where, test], item_linking=ConditionAND))
        return SigmaDetection(branches, item_linking=ConditionOR)

    def _split(self, item: SigmaDetectionItem, domain: str, user: str) -> SigmaDetection:
        """A test on ``DOMAIN\\name`` the integration keeps as two fields, said on them: a value
        with one backslash on both (``*D\\N*``: the domain ends with D, the name starts with N),
        one without on the part it can fall in (``*x*`` in either, ``x*`` the domain, ``*x`` the
        name); presence on the name. A whole value with no domain is one the integration does
        not keep: said as a name without a domain, which no document has. Anything else
        (regular expressions, several backslashes, inner wildcards) fails the rule."""

        kept = [m for m in item.modifiers if m is SigmaExistsModifier]  # the others shaped the values

        def on(name: str, value: Any) -> SigmaDetectionItem:
            return _item(name, [value], kept)

        branches: list[SigmaDetectionItem | SigmaDetection] = []
        for value in item.value:
            if isinstance(value, SigmaExists | SigmaNull):
                branches.append(on(user, value))
                continue
            spans = f"{item.field}: Elastic keeps it as {domain} and {user}; this test spans both"
            if not isinstance(value, SigmaString) or isinstance(value, SigmaCasedString):
                raise SigmaTransformationError(spans)
            parts = list(value.s)
            dropped = not value.contains_special() and value.to_plain() == "-"
            if parts in ([SpecialChars.WILDCARD_MULTI], []) or dropped:
                branches.append(on(user, value))  # any value; or one the integration drops (absent there)
                continue
            lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
            trail = len(parts) > 1 and parts[-1] is SpecialChars.WILDCARD_MULTI
            body = parts[int(lead) : len(parts) - int(trail)]
            if len(body) != 1 or not isinstance(body[0], str) or body[0].count("\\") > 1:
                raise SigmaTransformationError(spans)
            text = body[0]
            star = SpecialChars.WILDCARD_MULTI
            if "\\" in text:
                left, right = text.split("\\")
                pair = [
                    on(domain, string_of_parts([star] * lead + [left])),
                    on(user, string_of_parts([right] + [star] * trail)),
                ]
                branches.append(SigmaDetection(pair, item_linking=ConditionAND))
            elif lead and trail:
                branches.append(SigmaDetection([on(domain, value), on(user, value)], item_linking=ConditionOR))
            elif trail:
                branches.append(on(domain, value))
            elif lead:
                branches.append(on(user, value))
            else:  # a whole account without a domain: the integration keeps no such value, so no
                # document has it (a name with no domain beside it never exists there)
                branches.append(SigmaDetection([on(domain, SigmaNull()), on(user, value)], item_linking=ConditionAND))
        return SigmaDetection(branches, item_linking=ConditionOR)

    def _coalesce(self, item: SigmaDetectionItem, paths: list[str]) -> SigmaDetection:
        """A test on the first present of ``paths`` (an add-on's coalesce): the test on each path
        where every earlier one is absent, or all absent for a null test."""

        def on(path: str, values: list[Any]) -> SigmaDetectionItem:
            new = _item(path, values, item.modifiers)
            if self.apply_detection_item(new) is not None:
                raise SigmaTransformationError(f"{path}: a coalesced path is itself an alias")
            return new

        absent = [SigmaExists(False) if isinstance(v, SigmaExists) else SigmaNull() for v in item.value[:1]]
        nulls = [v for v in item.value if isinstance(v, SigmaNull) or (isinstance(v, SigmaExists) and not v.exists)]
        if nulls and len(nulls) != len(item.value):
            raise SigmaTransformationError(f"{item.field}: a null test beside values on a coalesced field")
        if nulls:
            return SigmaDetection([on(p, list(nulls)) for p in paths], item_linking=ConditionAND)
        branches: list[SigmaDetectionItem | SigmaDetection] = []
        for i, path in enumerate(paths):
            tests = [on(p, list(absent)) for p in paths[:i]] + [on(path, list(item.value))]
            branches.append(tests[0] if len(tests) == 1 else SigmaDetection(tests, item_linking=ConditionAND))
        return SigmaDetection(branches, item_linking=ConditionOR)


def _shape(node: SigmaDetectionItem | SigmaDetection) -> Any:
    """What a detection tests, comparable: a detection of one child is that child."""
    if isinstance(node, SigmaDetection):
        if len(node.detection_items) == 1:
            return _shape(node.detection_items[0])
        return (getattr(node.item_linking, "__name__", ""), tuple(_shape(c) for c in node.detection_items))
    return (node.field, tuple(repr(v) for v in node.value))


def _item(name: str, values: list[Any], modifiers: list[Any]) -> SigmaDetectionItem:
    """A detection item on ``name`` whose values the modifiers already shaped (kept for the backend)."""
    new = SigmaDetectionItem(name, [], values)  # no modifier is applied again
    new.modifiers = list(modifiers)
    return new


def string_of_parts(parts: list[Any]) -> SigmaString:
    """A Sigma string of these parts (text and wildcards)."""
    out = SigmaString()
    out.s = tuple(p for p in parts if p != "")
    return out


EVENT_LOG_PRODUCTS = ("windows", "linux")  # products with Windows-style event logs (Sysmon for Linux)


_SOURCES = "_translator_elastic_sources"  # the sources as read from the rule's own field names


def rule_sources(rule: Any) -> list[tuple[Base, dict[str, str]]]:
    """(identifying fields, Sigma name -> the event's own name) for each source the rule reads; for
    products other than Windows, [] when any of its sources has no Elastic view. Read once, from
    the rule's own field names (the routing field's Elastic name no longer routes), then kept."""
    if (kept := rule.__dict__.get(_SOURCES)) is not None:
        return list(kept)
    sources = _read_sources(rule)
    rule.__dict__[_SOURCES] = sources
    return list(sources)


def _read_sources(rule: Any) -> list[tuple[Base, dict[str, str]]]:
    ls = rule.logsource
    table = logsource_table()
    codes = _event_ids(rule)
    product = ls.product or ""
    streams = streams_for(f"{product}/{ls.service}") if ls.service and not ls.category else []
    if streams:
        return [(stream_base(s), {}) for s in streams if _routed_here(rule, s)]
    if ls.service and not ls.category:
        chans = channels_by_service().get((product, ls.service), [])
        out = [(channel_base(ch, code), {}) for ch in chans for code in (codes or [None])]
    else:
        out = []
        for row in table["categories"]:
            if row["category"] != ls.category:
                continue
            renamed = table.get("event_field_maps", {}).get(f"{row['service']}/{row['category']}", {})
            inverse = {sigma: raw for raw, sigma in renamed.items()}
            for ch in channels_by_service().get((product, row["service"]), []):
                out += [
                    (channel_base(ch, int(code)), inverse)
                    for code in row["event_codes"]
                    if not codes or int(code) in codes
                ]
    if product == "windows":  # any event log: the Windows integration keeps what it does not map
        return out
    return out if out and all(has_view(base) for base, _raw in out) else []


def _routed_here(rule: Any, stream: str) -> bool:
    """Whether the rule can match events routed to ``stream``: not when its logic needs a value of
    the routing field (Entra ID's ``category``) that sends events elsewhere."""
    conditions = rule.detection.parsed_condition
    if len(conditions) != 1:
        return True
    try:
        tree = conditions[0].parse()
    except Exception:  # the backend reports a condition it cannot parse; nothing is narrowed here
        return True
    for key, values in stream_route(stream).items():
        needed = needed_values(tree, key)
        if needed is not None and not needed & {v.lower() for v in values}:
            return False
    return True


def _event_ids(rule: Any) -> list[int]:
    """The EventID values the rule's detections name (any of them), or [] when none does."""
    ids: list[int] = []

    def walk(node: Any) -> None:
        for item in getattr(node, "detection_items", []):
            if isinstance(item, SigmaDetectionItem):
                if item.field == "EventID":
                    ids.extend(int(v.number) for v in item.value if isinstance(v, SigmaNumber))
            else:
                walk(item)

    for detection in rule.detection.detections.values():
        walk(detection)
    return sorted(set(ids))

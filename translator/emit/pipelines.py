"""Processing pipelines of our own, built from the logsource table (``data/logsources.yml``).

pySigma's ``splunk_windows`` pipeline restricts Windows *services* to their event
log (``source=...``) but leaves *categories* open: a ``ps_script`` rule becomes a
search over every event with a ``ScriptBlockText`` field, 4103 events included.
``windows_categories`` adds, for each category the table knows, the event log
and event codes that category means, so the emitted query selects what the Sigma
rule selects. Sources whose events the rule reads under other names (Security
4688 for process_creation: ``NewProcessName``, not ``Image``) are left out: the
query could not test them with the rule's field names.

``splunk_sourcetypes`` does the same for logsources read from other products'
logs (cloud, SaaS, network): pySigma's Splunk backend has no pipeline for them
and would search every sourcetype. Each logsource gets the sourcetypes the
table names for it (``aws/cloudtrail`` -> ``sourcetype IN ("aws:cloudtrail",
"aws:cloudtrail:lake")``), the same table the converter read them from.

``splunk_custom_sources`` maps custom logsources (names no table knows, see
:mod:`translator.sigma.splunk_source`) back to the Splunk source terms their
``definition`` records, so the query reads exactly the events the original did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sigma.conditions import SigmaCondition
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.conditions import LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.processing.transformations.base import ConditionTransformation, DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaCasedString, SigmaRegularExpression, SpecialChars

from translator.data import logsource_table
from translator.sigma.logsource import channels_by_service
from translator.sigma.rule import render
from translator.sigma.splunk_source import SplunkSource


def category_sources(renamed: bool, product: str = "windows") -> dict[str, tuple[list[str], list[int]]]:
    """Category -> (its event-log channels, its event codes) for a product with event logs, from the
    logsource table. ``renamed``: also the sources whose events the evaluator reads under other names
    (Security 4688 as process_creation)."""
    table = logsource_table()
    channels = {service: chs for (prod, service), chs in channels_by_service().items() if prod == product}
    skip = set() if renamed else set(table.get("event_field_maps", {}))
    out: dict[str, tuple[list[str], list[int]]] = {}
    for row in table["categories"]:
        if f"{row['service']}/{row['category']}" in skip:
            continue
        if not channels.get(row["service"]):
            continue  # the product has no event log of that service (Linux has no Security log)
        chans, codes = out.setdefault(row["category"], ([], []))
        chans += [c for c in channels.get(row["service"], []) if c not in chans]
        codes += [int(c) for c in row["event_codes"] if int(c) not in codes]
    return out


def windows_categories() -> ProcessingPipeline:
    items = [
        ProcessingItem(
            identifier=f"translator_windows_{category}",
            transformation=AddConditionTransformation(
                {
                    "source": [f"{kind}:{ch}" for ch in chans for kind in ("WinEventLog", "XmlWinEventLog")],
                    "EventID": sorted(codes),
                }
            ),
            rule_conditions=[LogsourceCondition(product="windows", category=category)],
        )
        for category, (chans, codes) in sorted(category_sources(renamed=False).items())
        if chans and codes
    ]
    return ProcessingPipeline(
        name="translator: Windows categories to event logs and event codes", priority=10, items=items
    )


@dataclass
class WithoutSplunkTerms(RuleProcessingCondition):
    """A rule whose logsource definition holds no Splunk source terms (those that do get the terms
    themselves, from ``splunk_custom_sources``)."""

    def match(self, rule: SigmaRule | SigmaCorrelationRule) -> bool:
        rules = [ref.rule for ref in rule.rules] if isinstance(rule, SigmaCorrelationRule) else [rule]
        return not any(isinstance(r, SigmaRule) and SplunkSource.from_definition(r.logsource.definition) for r in rules)


def splunk_sourcetypes() -> ProcessingPipeline:
    by_logsource: dict[tuple[str, str, str], list[str]] = {}
    for name, ls in logsource_table()["sourcetypes"].items():
        key = (ls.get("product", ""), ls.get("category", ""), ls.get("service", ""))
        if key[0] == "windows" and not key[1] and not key[2]:
            continue  # Windows event logs: windows_categories and splunk_windows name them by source
        by_logsource.setdefault(key, []).append(str(name))
    items = [
        ProcessingItem(
            identifier=f"translator_sourcetype_{'_'.join(k for k in key if k)}",
            transformation=AddConditionTransformation({"sourcetype": names}),
            rule_conditions=[
                LogsourceCondition(product=key[0] or None, category=key[1] or None, service=key[2] or None),
                WithoutSplunkTerms(),
            ],
        )
        for key, names in sorted(by_logsource.items())
    ]
    return ProcessingPipeline(name="translator: logsources to their Splunk sourcetypes", priority=10, items=items)


@dataclass
class DefinedSourceTransformation(ConditionTransformation):
    """ANDs the Splunk source terms of a custom logsource's ``definition`` into the rule's condition
    (one detection per group of terms); rules without such a definition are left alone."""

    prefix: str = "_splunk_source"

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        self._names: list[str] = []
        if isinstance(rule, SigmaRule):
            source = SplunkSource.from_definition(rule.logsource.definition)
            if source is not None:
                for i, definition in enumerate(source.detections()):
                    name = f"{self.prefix}{i}"
                    rule.detection.detections[name] = SigmaDetection.from_definition(definition)
                    self.processing_item_applied(rule.detection.detections[name])
                    self._names.append(name)
        super().apply(rule)

    def apply_condition(self, cond: SigmaCondition) -> None:
        if self._names:
            added = " and ".join(self._names)
            cond.condition = f"{added} and ({cond.condition})" if cond.condition else added


def splunk_custom_sources() -> ProcessingPipeline:
    return ProcessingPipeline(
        name="translator: custom logsources to the Splunk source terms their definition records",
        priority=10,
        items=[ProcessingItem(identifier="translator_custom_sources", transformation=DefinedSourceTransformation())],
    )


@dataclass
class CasedAsRegexTransformation(DetectionItemTransformation):
    """``|cased`` values as the case-sensitive regular expressions they are (``*`` any run, ``?`` one
    character, anchored unless a wildcard ends it), for backends that refuse ``|cased`` but search
    with regular expressions (Splunk's ``| regex``, case-sensitive and unanchored)."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        if detection_item.value and all(isinstance(v, SigmaCasedString) for v in detection_item.value):
            detection_item.value = [SigmaRegularExpression(cased_regex(v)) for v in detection_item.value]
            self.processing_item_applied(detection_item)


def cased_regex(value: SigmaCasedString) -> str:
    parts = list(value.s)
    head = not (parts and parts[0] is SpecialChars.WILDCARD_MULTI)
    tail = not (parts and parts[-1] is SpecialChars.WILDCARD_MULTI)
    parts = parts[(0 if head else 1) : len(parts) - (0 if tail else 1)]
    body = render(parts, r"[\s\S]*", r"[\s\S]", re.escape)
    return ("^" if head else "") + body + ("$" if tail else "")


def cased_as_regex() -> ProcessingPipeline:
    return ProcessingPipeline(
        name="translator: |cased values as case-sensitive regular expressions",
        priority=10,
        items=[ProcessingItem(identifier="translator_cased_as_regex", transformation=CasedAsRegexTransformation())],
    )

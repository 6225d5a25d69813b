"""Sigma correlation rules over the events their base rules matched.

Windows are tumbling, aligned on multiples of the timespan since the epoch, as
Splunk's ``bin _time span=`` aligns them (the searches these rules come from
bucket that way). A group is the window plus the group-by values; an event
lacking a group-by field is in no group. The matches of a correlation are the
events of the groups that satisfy its condition.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sigma.correlations import SigmaCorrelationRule

from translator.engine.sigma_eval import NotEvaluable

Flat = dict[str, Any]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "LT": operator.lt,
    "LTE": operator.le,
    "GT": operator.gt,
    "GTE": operator.ge,
    "EQ": operator.eq,
    "NEQ": operator.ne,
}
TIME_FIELDS = ("TimeCreated", "_time", "@timestamp", "timestamp", "eventTime", "time")


@dataclass
class Hit:
    ref: str
    rule: str  # the base rule's reference (name or id)
    time: float
    event: Flat


@dataclass
class Correlator:
    """Collects base-rule hits for one correlation rule and evaluates it at the end."""

    rule: SigmaCorrelationRule
    references: dict[int, str] = field(default_factory=dict)  # id(base SigmaRule) -> its reference
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        kind = self.rule.type.name.lower()
        if kind not in ("event_count", "value_count", "value_sum", "value_avg", "temporal", "temporal_ordered"):
            raise NotEvaluable(f"correlation type {kind} is not evaluated")
        if self.rule.condition is not None and self.rule.condition.percentile is not None:
            raise NotEvaluable("percentile conditions are not evaluated")
        for ref in self.rule.rules:
            self.references[id(ref.rule)] = str(ref.reference)

    def offer(self, base: Any, ref: str, event: Flat) -> None:
        """Record that ``base`` (a base rule of this correlation) matched ``event``."""
        name = self.references.get(id(base))
        if name is None:
            return
        when = event_time(event)
        if when is None:
            raise NotEvaluable(f"{ref}: the event has no time ({', '.join(TIME_FIELDS)})")
        self.hits.append(Hit(ref, name, when, event))

    def matches(self) -> list[str]:
        span = float(self.rule.timespan.seconds)
        groups: dict[tuple[Any, ...], list[Hit]] = defaultdict(list)
        for hit in self.hits:
            key = self._group(hit.event)
            if key is not None:
                groups[(int(hit.time // span), *key)].append(hit)
        kind = self.rule.type.name.lower()
        out: list[str] = []
        for hits in groups.values():
            if self._satisfied(kind, hits):
                out.extend(h.ref for h in hits)
        order = {h.ref: i for i, h in enumerate(self.hits)}
        return sorted(set(out), key=order.__getitem__)

    def _group(self, event: Flat) -> tuple[Any, ...] | None:
        values = []
        for name in self.rule.group_by or []:
            value = event.get(self._alias(name, event))
            if value in (None, ""):
                return None
            values.append(str(value).lower())
        return tuple(values)

    def _alias(self, name: str, event: Flat) -> str:
        alias = self.rule.aliases.aliases.get(name) if self.rule.aliases else None
        if alias is None:
            return name
        for mapped in alias.mapping.values():  # the field name in whichever base rule's events
            if mapped in event:
                return str(mapped)
        return name

    def _satisfied(self, kind: str, hits: list[Hit]) -> bool:
        if kind in ("temporal", "temporal_ordered"):
            wanted = [str(r.reference) for r in self.rule.rules]
            if kind == "temporal":
                return set(wanted) <= {h.rule for h in hits}
            ordered = sorted(hits, key=lambda h: h.time)
            position = 0
            for h in ordered:  # the rules' first matches appear in the listed order
                if position < len(wanted) and h.rule == wanted[position]:
                    position += 1
            return position == len(wanted)
        cond = self.rule.condition
        assert cond is not None
        if kind == "event_count":
            measure: float = len(hits)
        else:
            values = [h.event.get(self._alias(cond.fieldref, h.event)) for h in hits if cond.fieldref]
            present = [v for v in values if v not in (None, "")]
            if kind == "value_count":
                measure = len({str(v).lower() for v in present})
            else:
                numbers = [n for n in (_number(v) for v in present) if n is not None]
                if not numbers:
                    return False
                measure = sum(numbers) if kind == "value_sum" else sum(numbers) / len(numbers)
        return _OPS[cond.op.name](measure, cond.count)


def event_time(event: Flat) -> float | None:
    for name in TIME_FIELDS:
        value = event.get(name)
        if value in (None, ""):
            continue
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().replace(" UTC", "").replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # event logs without a zone are in UTC
        return parsed.timestamp()
    return None


def _number(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

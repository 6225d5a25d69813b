"""Assemble, serialise and validate Sigma rules with pySigma."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import SigmaString, SpecialChars
from sigma.validators.base import SigmaRuleValidator

from translator.data import load_table

# key order of a hand-written Sigma rule
_ORDER = (
    "title",
    "id",
    "name",
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "logsource",
    "detection",
    "correlation",
    "falsepositives",
    "level",
)


def keyword_pattern(value: SigmaString) -> SigmaString:
    """What a Sigma keyword matches: the value anywhere in the event (the specification: keywords are
    searched across the entire event, the full log message), so in any field's value: ``kw`` is
    ``*kw*``. Wildcards already at an end stay as they are."""
    w = SpecialChars.WILDCARD_MULTI
    head = value if value.startswith(w) else w + value
    return head if head.endswith(w) else head + w


def render(parts: Iterable[Any], multi: str, single: str, text: Callable[[str], str]) -> str:
    """A Sigma string's parts (``value.s``) in another pattern language: ``*`` as ``multi``, ``?`` as
    ``single``, each run of plain text through ``text`` (its escaping)."""
    return "".join(
        multi if p is SpecialChars.WILDCARD_MULTI else single if p is SpecialChars.WILDCARD_SINGLE else text(str(p))
        for p in parts
    )


def assemble(meta: dict[str, Any], logsource: dict[str, str], detection: dict[str, Any]) -> dict:
    """A rule in Sigma's key order. No ``fields``: Sigma 2 deprecates it (the report lists them instead)."""
    parts: dict[str, Any] = {**meta, "logsource": logsource, "detection": detection}
    return {k: parts[k] for k in _ORDER if k in parts}


def rule_name(stem: str) -> str:
    """A Sigma rule ``name`` (how a correlation refers to it) from a detection's file name."""
    return "".join(c if c.isalnum() else "_" for c in stem.lower()).strip("_") or "rule"


# metadata a correlation rule repeats from its base rule
_CORRELATION_META = (
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "falsepositives",
    "level",
)


def assemble_correlation(
    base: dict[str, Any], correlation: dict[str, Any], cases: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The correlation rule over ``base`` (which must have a ``name``): same metadata, its own id. With
    ``cases`` (see :func:`alias_cases`), over those base rules, its aliases naming each one's field."""
    parts: dict[str, Any] = {k: base[k] for k in _CORRELATION_META if k in base}
    parts["title"] = f"{base['title']} (threshold)"
    if "id" in base:
        parts["id"] = str(uuid.uuid5(uuid.UUID(base["id"]), "correlation"))
    rules = [c["name"] for c in cases] if cases else [base["name"]]
    aliases = {
        alias: {c["name"]: c["aliases"][alias] for c in cases} for alias in (correlation.get("aliases") or {})
    } if cases else {}  # fmt: skip
    parts["correlation"] = {
        "type": correlation["type"],
        "rules": rules,
        **({"group-by": correlation["group-by"]} if correlation.get("group-by") else {}),
        **({"aliases": aliases} if aliases else {}),
        "timespan": correlation["timespan"],
        "condition": correlation["condition"],
    }
    return {k: parts[k] for k in _ORDER if k in parts}


def alias_cases(base: dict[str, Any], aliases: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Base rules for a correlation grouping by names that hold the first of several fields an event has
    (``aliases``: name -> the fields, first present first): one rule per combination, each selecting the
    events where those fields are the first present (the last case: where no earlier one is, so an event
    lacking a counted field still counts in its group), named and identified after ``base``; each carries
    ``aliases`` (name -> its field), which :func:`assemble_correlation` reads and drops."""
    out = []
    names = list(aliases)
    for k, choice in enumerate(itertools.product(*(range(len(aliases[n])) for n in names))):
        detection = {key: value for key, value in base["detection"].items() if key != "condition"}
        terms = []
        for alias, i in zip(names, choice, strict=True):
            last = i == len(aliases[alias]) - 1  # the last field: where no earlier one is (present or not)
            for j, field in enumerate(aliases[alias][: i if last else i + 1]):
                key = f"case_{alias}_{j}".replace(".", "_")
                detection[key] = {f"{field}|exists": True}
                terms.append(key if j == i else f"not {key}")
        detection["condition"] = f"({base['detection']['condition']}) and " + " and ".join(terms)
        picked = {alias: aliases[alias][i] for alias, i in zip(names, choice, strict=True)}
        rule = {**base, "name": f"{base['name']}_{k + 1}", "detection": detection, "aliases": picked}
        rule["title"] = f"{base['title']} ({', '.join(f'{a} as {f}' for a, f in picked.items())})"
        if "id" in base:
            rule["id"] = str(uuid.uuid5(uuid.UUID(base["id"]), f"case {k + 1}"))
        out.append(rule)
    return out


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml when present
    """Block style, readable multi-line strings, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(*rules: dict[str, Any]) -> str:
    """One rule, or a rule and its correlation as YAML documents separated by ``---``."""
    return "---\n".join(
        yaml.dump(r, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000, default_flow_style=False)
        for r in rules
    )


def collection_of(rule: str | list[dict[str, Any]]) -> SigmaCollection:
    """A fresh pySigma collection from YAML text or from the rule's documents (no YAML round trip)."""
    if isinstance(rule, str):
        return SigmaCollection.from_yaml(rule)
    # pySigma reads the dicts without changing them (checked over the corpus), so no copy is needed
    return SigmaCollection.from_dicts(rule)


def load_rule(rule: str | list[dict[str, Any]]) -> SigmaRule:
    """Parse a rule (and its correlation, if any) with pySigma; returns the base rule.

    Raises SigmaError when pySigma rejects either document.
    """
    collection = collection_of(rule)
    if collection.errors:
        raise collection.errors[0]
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    correlations = [r for r in collection.rules if isinstance(r, SigmaCorrelationRule)]
    if not rules or len(correlations) > 1 or (len(rules) > 1 and not correlations):
        raise SigmaError(
            f"expected one Sigma rule (several under a correlation) and at most one correlation, "
            f"found {len(collection.rules)}"
        )
    if correlations:
        collection.resolve_rule_references()
    return rules[0]


@cache
def _validator_classes() -> tuple[type[SigmaRuleValidator], ...]:
    from sigma.plugins import InstalledSigmaPlugins

    plugins = InstalledSigmaPlugins.autodiscover()
    network = load_table("validators")["network"]  # they download data: never run (offline)
    return tuple(cls for name, cls in sorted(plugins.validators.items()) if name not in network)


@cache
def _shared_validators() -> tuple[SigmaRuleValidator, ...]:
    """One instance of each validator that keeps no state between rules (it has no ``finalize`` of its own)."""
    return tuple(cls() for cls in _validator_classes() if cls.finalize is SigmaRuleValidator.finalize)


def validate(rule: SigmaRule) -> list[str]:
    """Issues pySigma's offline validators find, as readable lines.

    Validators that collect state across rules (duplicate ids, titles, ...) are
    fresh per rule, so one rule's result never depends on another. A validator
    that crashes on a rule is reported as such; it does not stop the others.
    """
    stateful = (cls() for cls in _validator_classes() if cls.finalize is not SigmaRuleValidator.finalize)
    issues: list[str] = []
    for validator in (*_shared_validators(), *stateful):
        try:
            found = [*validator.validate(rule), *validator.finalize()]
        except Exception as exc:  # third-party checks: a crash is their finding, not ours to raise
            issues.append(f"{type(validator).__name__} could not check this rule: {type(exc).__name__}: {exc}")
            continue
        issues.extend(f"{type(i).__name__}: {i.description}" for i in found)
    return issues


def detection_items(rule: Any) -> list[Any]:
    """Every detection item of a pySigma rule's detection, in order (none for a correlation)."""
    detection = getattr(rule, "detection", None)
    if detection is None:
        return []
    out = []
    stack = [item for det in detection.detections.values() for item in reversed(det.detection_items)]
    while stack:
        item = stack.pop()
        if hasattr(item, "detection_items"):
            stack.extend(reversed(item.detection_items))
        else:
            out.append(item)
    return out


def detection_fields(rule: Any) -> list[str]:
    """Every field a pySigma rule's detection tests, in first-seen order (none for a correlation)."""
    return list(dict.fromkeys(item.field for item in detection_items(rule) if item.field))

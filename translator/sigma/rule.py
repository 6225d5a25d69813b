"""Assemble, serialise and validate Sigma rules with pySigma."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.validators.base import SigmaRuleValidator

# validators that download ATT&CK / D3FEND data at run time: never used (offline)
NETWORK_VALIDATORS = frozenset({"attacktag", "d3_fendtag"})
# key order of a hand-written Sigma rule
_ORDER = (
    "title",
    "id",
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "logsource",
    "detection",
    "fields",
    "falsepositives",
    "level",
)


def assemble(meta: dict[str, Any], logsource: dict[str, str], detection: dict[str, Any], fields: list[str]) -> dict:
    parts: dict[str, Any] = {**meta, "logsource": logsource, "detection": detection}
    if fields:
        parts["fields"] = fields
    return {k: parts[k] for k in _ORDER if k in parts}


class _Dumper(yaml.SafeDumper):
    """Block style, readable multi-line strings, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(rule: dict[str, Any]) -> str:
    return yaml.dump(rule, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000, default_flow_style=False)


def load_rule(text: str) -> SigmaRule:
    """Parse one rule with pySigma; raises SigmaError on an invalid rule."""
    collection = SigmaCollection.from_yaml(text)
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    if collection.errors:
        raise collection.errors[0]
    if len(rules) != 1:
        raise SigmaError(f"expected one Sigma rule, found {len(rules)}")
    return rules[0]


@cache
def _validator_classes() -> tuple[type[SigmaRuleValidator], ...]:
    from sigma.plugins import InstalledSigmaPlugins

    plugins = InstalledSigmaPlugins.autodiscover()
    return tuple(cls for name, cls in sorted(plugins.validators.items()) if name not in NETWORK_VALIDATORS)


def validate(rule: SigmaRule) -> list[str]:
    """Issues pySigma's offline validators find, as readable lines (fresh validators: no state across rules)."""
    issues: list[str] = []
    for validator in (cls() for cls in _validator_classes()):
        for issue in validator.validate(rule):
            issues.append(f"{type(issue).__name__}: {issue.description}")
        issues.extend(f"{type(i).__name__}: {i.description}" for i in validator.finalize())
    return issues

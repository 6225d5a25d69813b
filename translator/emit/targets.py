"""pySigma backends as output targets: discovery, aliases, default pipelines.

Backends and pipelines are found through pySigma's plugin mechanism, so any
installed ``pysigma-backend-*`` package is a target. ``data/targets.yml`` adds
what the plugins do not say: file extension and default pipelines per product.
"""

from __future__ import annotations

import importlib
import json
import re
import re._constants as sre_c  # the parse tree of Python's own regex parser
import re._parser as sre_parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.conversion.base import Backend
from sigma.correlations import SigmaCorrelationRule
from sigma.plugins import InstalledSigmaPlugins
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.types import SigmaRegularExpression

from translator.data import load_table
from translator.emit import attack_data
from translator.errors import TranslatorError
from translator.sigma.rule import collection_of, detection_items


class TargetError(TranslatorError):
    """Unknown target, pipeline or format."""


class ConversionFailed(Exception):
    """A rule that neither a target's pipelines nor its fallback could convert (both reasons)."""


# rule attributes a pipeline and a correlation writer share: the fields to resolve beyond the
# detection (the correlation's group-by and counted field), and the column each became
COLUMNS, EXTRA_COLUMNS = "translator_columns", "translator_columns_extra"


@cache
def plugins() -> InstalledSigmaPlugins:
    found = InstalledSigmaPlugins.autodiscover()
    for name, spec in load_table("targets").get("extra_pipelines", {}).items():
        module, _, func = spec.partition(":")
        found.pipelines.setdefault(name, getattr(importlib.import_module(module), func))
    for name, spec in load_table("targets").get("backend_overrides", {}).items():
        module, _, cls = spec.partition(":")
        found.backends[name] = getattr(importlib.import_module(module), cls)
    for name, spec in load_table("targets").get("extra_backends", {}).items():
        module, _, cls = spec.partition(":")
        try:
            found.backends.setdefault(name, getattr(importlib.import_module(module), cls))
        except (ImportError, AttributeError):
            continue  # not installed: not a target
    return found


def backend_names() -> list[str]:
    return sorted(plugins().backends)


def resolve_targets(names: list[str]) -> list[str]:
    """Expand aliases (``elastic``, ``all``), keep order, drop repeats; unknown names raise."""
    aliases = load_table("targets")["aliases"]
    out: list[str] = []
    for name in names:
        low = name.lower()
        expanded = backend_names() if low == "all" else aliases.get(low, [low])
        for t in expanded:
            if t not in plugins().backends:
                known = ", ".join([*backend_names(), *aliases, "all"])
                raise TargetError(f"unknown target {name!r}; known targets: {known}")
            if t not in out:
                out.append(t)
    return out


def extension(target: str, fmt: str = "default") -> str:
    """The output file's extension: the format's (``siem_rule_ndjson`` -> ``ndjson``), else the target's."""
    table = load_table("targets")
    by_format = table.get("format_extensions", {})
    if fmt in by_format:
        return str(by_format[fmt])
    return str(table["targets"].get(target, {}).get("extension", table["default_extension"]))


def default_pipelines(target: str, product: str) -> list[str]:
    spec: dict[str, Any] = load_table("targets")["targets"].get(target, {}).get("pipelines", {})
    return list(spec.get(product, spec.get("*", [])))


def default_target(name: str, product: str, fmt: str = "default", pipelines: tuple[str, ...] = ()) -> Target:
    """A target as the tables configure it for a product: its pipelines, or ``pipelines`` when the user
    chose them (then no fallback: the user's choice is not second-guessed)."""
    if pipelines:
        return Target(name, pipelines, fmt)
    fallback = tuple(_spec(name).get("fallback", ()))
    return Target(name, tuple(default_pipelines(name, product)), fmt, fallback)


def formats(name: str) -> list[str]:
    """A target's output formats: its backend's, then ours that wrap its queries (``sentinel_rule``)."""
    return [*plugins().backends[name].formats, *_spec(name).get("formats", {})]


@dataclass(frozen=True)
class Target:
    name: str
    pipelines: tuple[str, ...]
    format: str
    fallback: tuple[str, ...] = ()  # pipelines to try when these fail a rule (data/targets.yml)

    def backend(self) -> Backend:
        """The configured backend (one instance per target, pipelines and format, reused across rules)."""
        return _backend(self)

    def build(self) -> Backend:
        blocked = load_table("targets").get("blocked_formats", {}).get(self.format)
        if blocked:
            raise TargetError(f"format {self.format!r} is not available: {blocked}")
        pipeline = ProcessingPipeline()
        for pname in self.pipelines:
            factory = plugins().pipelines.get(pname)
            if factory is None:
                raise TargetError(f"unknown pipeline {pname!r}; known: {', '.join(sorted(plugins().pipelines))}")
            pipeline = pipeline + factory()
        cls = plugins().backends[self.name]
        if self.format not in formats(self.name):
            known = ", ".join(formats(self.name))
            raise TargetError(f"target {self.name} has no format {self.format!r}; known: {known}")
        if self.format not in cls.formats:  # ours: the backend writes its default and we wrap it
            return replace(self, format="default", fallback=()).build()
        if self.format in load_table("targets").get("attack_formats", ()):
            attack_data.install()  # the format looks ATT&CK up: from our tables, never downloaded
        return cls(processing_pipeline=pipeline)


@cache
def _backend(target: Target) -> Backend:
    return target.build()


def convert(rule: str | list[dict[str, Any]], target: Target, schedule: Mapping[str, str] | None = None) -> str:
    """Run one target on a fresh copy of the rule (backends mutate rules they convert).

    When the target's pipelines fail the rule and the table names a fallback, the fallback's query
    is the answer; a format of ours (``formats`` in targets.yml) wraps the backend's default output.
    """
    wrap = _spec(target.name).get("formats", {}).get(target.format)
    inner = replace(target, format="default") if wrap else target
    flavor = _spec(target.name).get("regex")
    if flavor in ("re2", "lucene") and "|re" in (rule if isinstance(rule, str) else json.dumps(rule)):
        _refuse_what_the_engine_lacks(collection_of(rule), target.name, "RE2" if flavor == "re2" else "Lucene")
    try:
        text = _convert(rule, inner)
    except Exception as first:
        if not target.fallback or isinstance(first, TargetError):
            raise
        try:
            text = _convert(rule, replace(inner, pipelines=target.fallback, fallback=()))
        except Exception as second:
            raise ConversionFailed(f"{first}; with {', '.join(target.fallback)}: {second}") from second
    if wrap:
        text = _function(str(wrap))(text, _first_doc(rule), schedule)
    return text


def _first_doc(rule: str | list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(rule, str):
        docs = [d for d in yaml.safe_load_all(rule) if isinstance(d, dict)]
        return docs[0] if docs else {}
    return rule[0] if rule else {}


def _convert(rule: str | list[dict[str, Any]], target: Target) -> str:
    if isinstance(rule, list) and _spec(target.name).get("exists_as_wildcard"):
        rule = [_exists_as_wildcard(doc) for doc in rule]
    collection = collection_of(rule)
    correlate = _spec(target.name).get("correlations")
    if correlate and any(isinstance(r, SigmaCorrelationRule) for r in collection.rules):
        text = _correlated(collection, replace(target, pipelines=tuple(correlate["pipelines"])), correlate["write"])
        return _steady(text, target.name, rule)
    result = target.backend().convert(collection, target.format)
    text = "\n".join(_text(q) for q in result) if isinstance(result, list) else _text(result)
    return _steady(text, target.name, rule)


def _refuse_what_the_engine_lacks(collection: SigmaCollection, target: str, flavor: str) -> None:
    """A target whose engine runs RE2 or Lucene regular expressions (``regex: re2`` / ``lucene`` in
    targets.yml) rejects look-arounds and back-references at query time: fail the rule here, with the
    pattern, rather than write a query that cannot run."""
    for rule in collection.rules:
        if not isinstance(rule, SigmaRule):
            continue
        for item in detection_items(rule):
            for value in item.value:
                if isinstance(value, SigmaRegularExpression) and beyond_re2(value.regexp.to_plain()):
                    raise ConversionFailed(
                        f"{target} runs {flavor} regular expressions, which have no look-around or back-reference: "
                        f"{value.regexp.to_plain()!r} ({item.field})"
                    )


def beyond_re2(pattern: str) -> bool:
    """Whether a (PCRE) pattern uses what RE2 lacks: look-arounds and back-references."""
    try:
        parsed = sre_parse.parse(re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern))
    except re.error:
        return False  # not Python's syntax either: the backend's own check decides
    stack: list[Any] = [parsed]
    while stack:
        for op, av in stack.pop():
            if op in (sre_c.ASSERT, sre_c.ASSERT_NOT, sre_c.GROUPREF, sre_c.GROUPREF_EXISTS):
                return True
            stack.extend(a for a in (av if isinstance(av, tuple | list) else ()) if isinstance(a, sre_parse.SubPattern))
            if op is sre_c.BRANCH:
                stack.extend(av[1])
    return False


def _correlated(collection: SigmaCollection, target: Target, write: str) -> str:
    """A correlation for a backend that refuses them: its base rule through the backend, with the
    fields the correlation reads resolved by the same pipeline, then the target's own aggregation."""
    correlations = [r for r in collection.rules if isinstance(r, SigmaCorrelationRule)]
    bases = [r for r in collection.rules if isinstance(r, SigmaRule)]
    if len(correlations) != 1 or len(bases) != 1:
        raise NotImplementedError(f"{target.name}: only a correlation over one rule is written")
    corr, base = correlations[0], bases[0]
    needed = [*(corr.group_by or []), *([corr.condition.fieldref] if corr.condition.fieldref else [])]
    base.custom_attributes[EXTRA_COLUMNS] = needed
    base._backreferences, base._output = [], True  # converted on its own, as a whole query
    queries = target.backend().convert_rule(base)
    columns = base.custom_attributes.get(COLUMNS, {})
    return _function(write)(str(queries[0]), corr, columns)


def _function(spec: str) -> Any:
    """``module:function`` from targets.yml."""
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def _text(query: Any) -> str:
    """A backend's output as text: JSON for the structured formats (rules to import), as is otherwise."""
    if isinstance(query, dict):
        _tactic_names(query)
    return json.dumps(query, ensure_ascii=False) if isinstance(query, dict | list) else str(query)


def _tactic_names(rule: dict[str, Any]) -> None:
    """ATT&CK's spelling of tactic names in a rule's threat section (``Command and Control``, not the
    ``Command-And-Control`` the backend makes of Sigma's tag)."""
    for threat in rule.get("threat") or []:
        tactic = threat.get("tactic") if isinstance(threat, dict) else None
        if isinstance(tactic, dict) and isinstance(tactic.get("name"), str):
            words = tactic["name"].replace("-", " ").replace("_", " ").split()
            tactic["name"] = " ".join(w.lower() if w.lower() == "and" else w.capitalize() for w in words)


def _steady(text: str, target: str, rule: str | list[dict[str, Any]]) -> str:
    """Replace what a backend stamps from the clock (``volatile`` in targets.yml) with the rule's date.

    The same rule must give the same bytes on every run, whatever the time or --jobs.
    """
    volatile = _spec(target).get("volatile")
    if not volatile:
        return text
    doc = rule[0] if isinstance(rule, list) and rule else {}
    date = str(doc.get("modified") or doc.get("date") or "1970-01-01").replace("/", "-")
    for pattern, replacement in volatile.items():
        text = re.sub(pattern, replacement.replace("{date}", date), text)
    return text


def _spec(target: str) -> dict[str, Any]:
    return dict(load_table("targets")["targets"].get(target, {}))


def _exists_as_wildcard(doc: dict[str, Any]) -> dict[str, Any]:
    """``field|exists: true`` as ``field: '*'`` (the same events in Sigma), for backends without exists."""
    detection = doc.get("detection")
    if not isinstance(detection, dict):
        return doc

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(x) for x in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("|exists") and value is True:
                out[key[: -len("|exists")]] = "*"
            else:
                out[key] = rewrite(value)
        return out

    return {**doc, "detection": {k: v if k == "condition" else rewrite(v) for k, v in detection.items()}}

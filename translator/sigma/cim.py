"""CIM data-model fields -> Sigma fields, driven by ``data/cim.yml``.

A ``| tstats ... from datamodel=Endpoint.Processes where Processes.process_name=x``
search reads normalised fields. Each dataset stands for one Sigma logsource per
platform (chosen from the detection's data sources), and each CIM field for a
Sigma field, either with the same value or as the last path component of it
(``process_name`` is the file name of ``Image``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from translator.data import load_table
from translator.sigma.detection import FALSE, Item, Lowering, Node, search_value, sigma_escape, splunk_match
from translator.sigma.where import Target


@dataclass(frozen=True)
class FieldRule:
    sigma: str
    value: str = "equal"  # or "basename", "parent", "values", "derived"
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()  # for "values": CIM value -> Sigma values


@dataclass(frozen=True)
class Feed:
    """One dataset as seen from one platform: its Sigma logsource and path separator."""

    dataset: str
    prefix: str
    logsource: dict[str, str]
    separator: str
    fields: dict[str, FieldRule]
    chosen_by: str  # why this feed: for the report
    always: frozenset[str] = frozenset()  # CIM fields the add-ons set on every event (no Sigma form)


def dataset_name(datamodel: str) -> str:
    """``Network_Traffic`` -> ``Network_Traffic.All_Traffic``; full names pass through."""
    return str(load_table("cim")["aliases"].get(datamodel, datamodel))


def select_feed(datamodel: str, data_sources: tuple[str, ...] | list[str]) -> Feed | None:
    """The feed of ``datamodel`` that the detection's data sources name, or None if the table has none."""
    name = dataset_name(datamodel)
    spec = load_table("cim")["datasets"].get(name)
    if spec is None:
        return None
    feeds: list[dict[str, Any]] = spec["feeds"]
    sources = [s.lower() for s in data_sources]
    chosen, why = None, ""
    if sources:
        for feed in feeds:
            patterns = [p.lower() for p in feed["data_sources"]]
            if all(any(fnmatchcase(s, p) for p in patterns) for s in sources):
                chosen, why = feed, f"data_source {', '.join(data_sources)}"
                break
    if chosen is None:
        chosen = next((f for f in feeds if f.get("default")), None)
        if chosen is None:
            return None
        why = "the default for this data model (no data_source names another feed)"
    return _feed(name, spec, chosen, why)


def _feed(name: str, spec: dict[str, Any], chosen: dict[str, Any], why: str) -> Feed:
    field_spec = chosen.get("fields", spec.get("fields", {}))
    rules = {
        k: FieldRule(
            v["sigma"],
            v.get("value", "equal"),
            tuple((str(cim), tuple(str(x) for x in sig)) for cim, sig in v.get("values", {}).items()),
        )
        for k, v in field_spec.items()
    }
    always = frozenset(chosen.get("always", ()))
    return Feed(name, spec["prefix"], dict(chosen["logsource"]), chosen["separator"], rules, why, always)


def target_of(rule: FieldRule | None, feed: Feed) -> Target | None:
    """How a mapped CIM field appears to later stages (None: unmapped, or only its presence carries over)."""
    if rule is None or rule.value in ("derived", "parent", "values"):
        return None
    return Target(rule.sigma, feed.separator if rule.value == "basename" else None)


@dataclass
class CimLowering(Lowering):
    """Lowering for a tstats ``where``: CIM names in, Sigma items out."""

    feed: Feed | None = None
    unmapped_fields: set[str] = field(default_factory=set)

    def cim_field(self, name: str) -> str:
        """``Processes.process_name`` -> ``process_name`` (the prefix is matched case-insensitively)."""
        assert self.feed is not None
        head, dot, rest = name.partition(".")
        return rest if dot and head.lower() == self.feed.prefix.lower() else name

    def rule(self, name: str) -> FieldRule | None:
        assert self.feed is not None
        return self.feed.fields.get(self.cim_field(name))

    def __post_init__(self) -> None:
        self.field_name = self._sigma_field

    def _sigma_field(self, name: str) -> str | None:
        rule = self.rule(name)
        if rule is None:
            self.unmapped_fields.add(name)
            return None
        return rule.sigma

    def equals(self, name: str, text: str) -> Node | None:
        rule = self.rule(name)
        if rule is None:
            self.unmapped_fields.add(name)
            return None
        if rule.value == "basename":
            assert self.feed is not None
            return basename_item(rule.sigma, text, self.feed.separator)
        if rule.value in ("derived", "parent"):
            return None  # only its presence carries over
        if rule.value == "values":
            picked = [v for cim, sigma in rule.values if splunk_match(cim, text) for v in sigma]
            return Item(rule.sigma, (), tuple(picked)) if picked else FALSE
        mods, value = search_value(text)
        return Item(rule.sigma, mods, (value,))


def basename_item(sigma_field: str, text: str, sep: str) -> Node:
    """``name=text`` where ``name`` is the last path component of ``sigma_field``.

    The Sigma field is taken to hold a full path (Image, TargetFilename and
    TargetObject always do): a plain name is ``endswith sep+name``; a name that
    only starts with ``*`` is a suffix of the path too; other wildcard shapes
    need a regular expression anchored at the last separator.
    """
    if text and set(text) == {"*"}:
        return Item(sigma_field, ("exists",), (True,))
    if "*" not in text:
        return Item(sigma_field, ("endswith",), (sep + sigma_escape(text),))
    inner = text[1:]
    if text.startswith("*") and "*" not in inner and sep not in inner:
        return Item(sigma_field, ("endswith",), (sigma_escape(inner),))
    seps = re.escape(sep)
    body = f"[^{seps}]*".join(re.escape(part) for part in text.split("*"))
    return Item(sigma_field, ("re", "i"), (f"(?:^|{seps}){body}$",))


def raw_feed(logsource: dict[str, str]) -> Feed | None:
    """The CIM dataset whose feed is this raw logsource, so CIM names the add-ons extract map too."""
    table = load_table("cim")
    dataset = table.get("raw_categories", {}).get(logsource.get("category", ""))
    if dataset is None:
        return None
    spec = table["datasets"][dataset]
    for feed in spec["feeds"]:
        if feed["logsource"].get("product") == logsource.get("product"):
            return _feed(dataset, spec, feed, "the raw logsource")
    return None


@dataclass
class RawLowering(CimLowering):
    """A raw search: native field names pass through (``fallback``), CIM names the add-on extracts map."""

    fallback: Callable[[str], str] = lambda name: name

    def rule(self, name: str) -> FieldRule | None:
        return self.feed.fields.get(name) if self.feed is not None else None

    def _sigma_field(self, name: str) -> str | None:
        rule = self.rule(name)
        return self.fallback(name) if rule is None else rule.sigma

    def equals(self, name: str, text: str) -> Node | None:
        if self.rule(name) is None:
            mods, value = search_value(text)
            return Item(self.fallback(name), mods, (value,))
        return super().equals(name, text)

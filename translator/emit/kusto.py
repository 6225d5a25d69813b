"""Kusto for Microsoft Sentinel: a table for every logsource, thresholds, and analytic rules.

pySigma's Kusto backend writes the ``where`` clause; which table a rule reads, and under which
columns, is the pipeline's job. Its own pipelines cover Defender XDR's tables for Sysmon-like
categories and fail every other logsource ("Unable to determine table name"). ``sentinel_tables``
places the rest where Sentinel keeps them (``data/sentinel.yml``): the Security log in
``SecurityEvent``, every other Windows channel (Sysmon, PowerShell, System, ...) in ``Event``
with its EventData XML parsed into one property per Data Name, cloud sources in their tables
(``AWSCloudTrail``, ``AuditLogs``/``SigninLogs``, ``AzureActivity``, ``OfficeActivity``), and a
source with no table in a custom ``<name>_CL`` table, said in a comment on the query.

Every field the rule reads becomes a plain column name in the ``where`` clause (the backend
quotes anything else as a string); a field under a dynamic column gets an ``extend``, and a
field inside an array (``a{}.b``, any element as in Splunk) an ``mv-expand``, allowed only where
the condition does not negate it (one expanded row per element cannot say "no element").

The backend refuses correlations; :func:`correlate` writes them as ``summarize`` over the base
query, and :func:`sentinel_rule` wraps a query as an analytic rule (Sentinel content YAML).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from sigma.backends.kusto import KustoBackend
from sigma.conditions import ConditionIdentifier, ConditionItem, ConditionNOT, ConditionSelector
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaTransformationError
from sigma.pipelines.azuremonitor.tables import AZURE_MONITOR_TABLES
from sigma.pipelines.kusto_common.postprocessing import create_prepend_query_table_item
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import PreprocessingTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaNull, SigmaString

from translator.data import load_table, logsource_table
from translator.emit.targets import COLUMNS, EXTRA_COLUMNS
from translator.sigma.logsource import channels_by_service, windows_channel
from translator.sigma.rule import keyword_pattern
from translator.sigma.splunk_source import SplunkSource

_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Source:
    """One place a logsource's events sit in Sentinel."""

    table: str
    where: str = ""  # KQL selecting the logsource's events in the table
    columns: Mapping[str, str] = field(default_factory=dict)  # field path -> column (path)
    string_json: frozenset[str] = frozenset()  # columns holding JSON as text
    event_data: str = ""  # path of the Data elements in the EventData XML: other fields are Data Names
    unprefixed: tuple[str, ...] = ()  # prefixes Splunk searches strip (``rename properties.* as *``)
    custom: bool = False  # a table we name: every field is a column by its own name

    def schema(self) -> frozenset[str]:
        return _schema(self.table)


@cache
def _schema(table: str) -> frozenset[str]:
    """A Log Analytics table's columns, as pySigma's Kusto backend ships them (read once per table)."""
    return frozenset(AZURE_MONITOR_TABLES.get(table, {}))


@dataclass(frozen=True)
class Column:
    alias: str  # the plain name the where clause uses
    expr: str | None = None  # KQL to extend the alias from (None: a column of the table)
    expands: tuple[str, ...] = ()  # mv-expand steps (``_aN = expr``) the expression needs first


def _table() -> dict[str, Any]:
    return load_table("sentinel")


def sources(product: str, category: str, service: str, definition: str | None = None) -> list[Source]:
    """Where a logsource's events are, in the order to try (Windows by channel, others by table).
    ``definition``: a custom logsource's Splunk source terms, whose channels pick the Event rows."""
    if product == "windows":
        return [_windows_source(category, service, definition)]
    spec = _table()["tables"]
    for key in (f"{product}/{service}", f"{product}/{category}"):
        if key in spec:
            return [
                Source(
                    s["table"],
                    s.get("where", ""),
                    s.get("columns") or {},
                    frozenset(s.get("string_json", ())),
                    unprefixed=tuple(s.get("unprefixed", ())),
                )
                for s in spec[key]
            ]
    name = "_".join(re.sub(r"\W+", "_", p) for p in (product, service or category) if p) or "logs"
    return [Source(_table()["custom_table"].format(name=name), custom=True)]


def _windows_source(category: str, service: str, definition: str | None = None) -> Source:
    """The table of a Windows logsource and the filter that picks its events (channel, event id)."""
    spec = _table()["windows"]
    channels = channels_by_service()
    table = logsource_table()
    renamed = set(table.get("event_field_maps", {}))
    rows = [r for r in table["categories"] if r["category"] == category and f"{r['service']}/{category}" not in renamed]
    services = sorted({r["service"] for r in rows}) if category else [service]
    kinds = {s: spec.get(s, spec["*"]) for s in services}
    if len({k["table"] for k in kinds.values()}) > 1:
        raise SigmaTransformationError(f"windows/{category or service} spans tables {sorted(kinds)}")
    kind = next(iter(kinds.values()), spec["*"])
    terms = []
    names = [ch for s in services for ch in channels.get(("windows", s), [])] or _defined_channels(definition)
    if names and kind["table"] == "Event":
        terms.append(f"{kind['channel_column']} in ({', '.join(_quote(n) for n in names)})")
    codes = sorted({int(c) for r in rows for c in r["event_codes"]})
    if codes:
        terms.append(f"EventID in ({', '.join(map(str, codes))})")
    system = _table()["windows_system"][kind["table"]]
    return Source(kind["table"], " and ".join(terms), system, event_data=kind.get("event_data", ""))


def _defined_channels(definition: str | None) -> list[str]:
    """The channels a custom logsource's Splunk terms name, when one group of them names only
    channels, each exactly (a wildcard leaves the table unfiltered: broader, never narrower)."""
    source = SplunkSource.from_definition(definition)
    for group in source.groups if source is not None else ():
        names = [windows_channel(v) for f, v in group if f in ("source", "sourcetype")]
        if names and len(names) == len(group) and all(n and "*" not in n for n in names):
            return list(dict.fromkeys(str(n) for n in names))
    return []


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _segments(path: str) -> list[str]:
    return [s for s in re.split(r"\.(?![^{]*})", path) if s]


def resolve(source: Source, name: str, counter: Iterator[int]) -> Column | None:
    """The column a Sigma field is in this source, or None when it has none."""
    if name == TEXT:
        return Column(TEXT, "tostring(pack_all())")
    if source.custom:
        return _path_column(name, _segments(name), set(), counter)
    for full in (name, *(p + name for p in source.unprefixed if not name.startswith(p))):
        found = _mapped(source, full, counter)
        if found is not None:
            return found
    if source.event_data and _WORD.match(name) and name not in source.schema():
        return Column(name, f'tostring(_ed["{name}"])')
    if name in source.schema() and _WORD.match(name):
        return Column(name)
    return None


def _mapped(source: Source, name: str, counter: Iterator[int]) -> Column | None:
    """A field the table's ``columns`` name, itself or under a mapped prefix."""
    if name in source.columns:
        target = source.columns[name]
        return _path_column(name, _segments(target), source.string_json, counter)
    for prefix in sorted(source.columns, key=len, reverse=True):
        if name.startswith(prefix + ".") or name.startswith(prefix + "{}"):
            rest = name[len(prefix) :]
            head = source.columns[prefix]
            if rest.startswith("{}"):
                head, rest = head + "{}", rest[2:]
            return _path_column(name, [*_segments(head), *_segments(rest.lstrip("."))], source.string_json, counter)
    return None


def _path_column(name: str, segs: list[str], string_json: frozenset[str] | set[str], counter: Iterator[int]) -> Column:
    if len(segs) == 1 and _WORD.match(segs[0]) and segs[0] not in string_json:
        return Column(segs[0])
    root = segs[0].removesuffix("{}")
    expr = f"todynamic({root})" if root in string_json else root
    expands: list[str] = []
    if segs[0].endswith("{}"):
        var = f"_a{next(counter)}"
        expands.append(f"{var} = {expr}")
        expr = var
    for seg in segs[1:]:
        array = seg.endswith("{}")
        expr += f"[{_quote(seg.removesuffix('{}'))}]"
        if array:
            var = f"_a{next(counter)}"
            expands.append(f"{var} = {expr}")
            expr = var
    alias = "_" + re.sub(r"\W+", "_", name).strip("_")
    return Column(alias, f"tostring({expr})", tuple(expands))


def _negated(rule: SigmaRule) -> set[str]:
    """Detections the condition tests under a NOT (by name; patterns expand against the rule)."""
    out: set[str] = set()

    def walk(node: Any, under: bool) -> None:
        if isinstance(node, ConditionIdentifier) and under:
            out.add(node.identifier)
        elif isinstance(node, ConditionSelector) and under:
            out.update(n for n in rule.detection.detections if re.fullmatch(node.pattern.replace("*", ".*"), n))
        elif isinstance(node, ConditionItem):
            for arg in node.args:
                walk(arg, under or isinstance(node, ConditionNOT))

    for cond in rule.detection.parsed_condition:
        walk(cond.parse(postprocess=False), False)
    return out


def _items(node: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for item in node.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _items(item)
        else:
            yield item


@dataclass
class SentinelTablesTransformation(PreprocessingTransformation):
    """Picks the table, renames every field to its column, and leaves the query's head (table,
    filters, parsing, extends) in the pipeline state for the backend's prepend step."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        extra = [str(f) for f in rule.custom_attributes.get(EXTRA_COLUMNS, [])]
        keywords = [i for d in rule.detection.detections.values() for i in _items(d) if i.field is None]
        for item in keywords:
            _as_text_search(item)
        names = sorted({i.field for d in rule.detection.detections.values() for i in _items(d) if i.field} | set(extra))
        negated = _negated(rule)
        tried: list[str] = []
        ls = rule.logsource
        for source in sources(ls.product or "", ls.category or "", ls.service or "", ls.definition):
            counter = iter(range(1, 10_000))
            columns = {n: resolve(source, n, counter) for n in names}
            missing = sorted(n for n, c in columns.items() if c is None)
            if missing:
                tried.append(f"{source.table} has no column for {', '.join(missing)}")
                continue
            resolved = {n: c for n, c in columns.items() if c is not None}
            for name, det in rule.detection.detections.items():
                for item in _items(det):
                    col = resolved[str(item.field)]
                    if col.expands and (name in negated or any(isinstance(v, SigmaNull) for v in item.value)):
                        raise SigmaTransformationError(
                            f"{item.field} is inside an array and the rule tests it under NOT or for null; "
                            "testing expanded elements one by one would select other events"
                        )
                    item.field = col.alias
            rule.custom_attributes[COLUMNS] = {n: c.alias for n, c in resolved.items()}
            self._pipeline.state["query_table"] = head(source, list(resolved.values()))
            return
        raise SigmaTransformationError("; ".join(tried))


TEXT = "_text"  # the column keywords search: every column's value as JSON text


def _as_text_search(item: SigmaDetectionItem) -> None:
    """A keyword searches the whole event (Sigma: the full log message), here the JSON text of every
    column: a value found there is found, and a key or a span across values may also match (broader,
    said in the query). Characters JSON or XML would escape cannot be searched for in that text."""
    values: list[SigmaString] = []
    for v in item.value:
        if not isinstance(v, SigmaString) or any(c in str(v) for c in "\\\"&<>'"):
            raise SigmaTransformationError(f"keyword {v} cannot be searched for in Kusto's text of a record")
        values.append(keyword_pattern(v))
    item.field, item.value = TEXT, values


def head(source: Source, columns: list[Column]) -> str:
    """The lines before ``| where``: table, logsource filter, EventData parsing, expansions, extends."""
    lines = [f"// {source.table}: a custom table named after the logsource; use yours"] if source.custom else []
    if any(c.alias == TEXT for c in columns):
        lines.append("// keywords: searched in the text of every column, which may match more events than the rule")
    lines.append(source.table)
    if source.where:
        lines.append(f"| where {source.where}")
    parse = any(c.expr and "_ed[" in c.expr for c in columns) or any(c.alias == TEXT for c in columns)
    if source.event_data and parse:
        lines.append(f"| extend _d = parse_xml(EventData).{source.event_data}")
        lines.append(
            "| mv-apply _e = iff(isnull(array_length(_d)), pack_array(_d), _d) on "
            '(summarize _ed = make_bag(bag_pack(tostring(_e["@Name"]), tostring(_e["#text"]))))'
        )
    seen: set[str] = set()
    for col in sorted(columns, key=lambda c: c.alias == TEXT):  # the text last: it packs the others
        for step in col.expands:
            lines.append(f"| mv-expand {step}")
        if col.expr and col.alias not in seen:
            seen.add(col.alias)
            lines.append(f"| extend {col.alias} = {col.expr}")
    return "\n".join(lines)


def sentinel_tables() -> ProcessingPipeline:
    return ProcessingPipeline(
        name="translator: logsources to Microsoft Sentinel tables and columns",
        priority=10,
        items=[ProcessingItem(identifier="translator_sentinel_tables", transformation=SentinelTablesTransformation())],
        allowed_backends=frozenset(["kusto"]),
        postprocessing_items=[create_prepend_query_table_item()],
    )


_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=="}


def correlate(base_query: str, correlation: SigmaCorrelationRule, columns: Mapping[str, str]) -> str:
    """A Sigma event_count / value_count correlation as ``summarize`` over the base query: count per
    group in tumbling windows of the timespan; groups with a null field are dropped, as Splunk's
    ``stats ... by`` drops them."""
    kind = correlation.type.name.lower()
    groups = [columns[g] for g in correlation.group_by or []]
    cond = correlation.condition
    op = _OPS.get(cond.op.name.lower()) if hasattr(cond.op, "name") else None
    if op is None:
        raise SigmaTransformationError(f"correlation condition {cond.op} has no Kusto comparison")
    if kind == "event_count":
        agg = "_count = count()"
    elif kind == "value_count" and cond.fieldref:
        value = columns[cond.fieldref]
        agg = f"_count = count_distinctif({value}, isnotempty({value}))"
    else:
        raise SigmaTransformationError(f"{kind} correlations are not written for Kusto")
    span = correlation.timespan.spec
    lines = [base_query]
    if groups:
        lines.append("| where " + " and ".join(f"isnotempty({g})" for g in groups))
    lines.append(f"| summarize {agg} by {', '.join([f'bin(TimeGenerated, {span})', *groups])}")
    lines.append(f"| where _count {op} {cond.count}")
    return "\n".join(lines)


_TACTIC_WORDS = {"and": "And", "of": "Of"}


def sentinel_rule(query: str, doc: Mapping[str, Any], schedule: Mapping[str, str] | None = None) -> str:
    """The query as a Sentinel scheduled analytic rule (YAML as Sentinel's content repository keeps it)."""
    spec = _table()["rule"]
    tags = [str(t) for t in doc.get("tags") or []]
    tactics = sorted(
        {
            "".join(_TACTIC_WORDS.get(w, w.capitalize()) for w in t[len("attack.") :].split("-"))
            for t in tags
            if t.startswith("attack.") and not re.match(r"attack\.[gst]\d{4}", t)
        }
    )
    techniques = sorted({t[len("attack.") :].upper() for t in tags if re.match(r"attack\.t\d{4}(\.\d{3})?$", t)})
    period = (schedule or {}).get("period") or _table()["rule"]["default_frequency"]
    frequency = (schedule or {}).get("frequency") or period
    tables = re.findall(r"^(?:\| )?([A-Za-z_][A-Za-z0-9_]*)\s*$", query, re.M)[:1]
    out_columns = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\b", query))
    entities: dict[str, list[dict[str, str]]] = {}
    for column, (entity, identifier) in spec["entities"].items():
        if column in out_columns and entity not in entities and "| summarize" not in query:
            entities[entity] = [{"identifier": identifier, "columnName": column}]
    rule = {
        "id": str(doc.get("id", "")),
        "name": str(doc.get("title", "")),
        "description": str(doc.get("description", "")).strip() or str(doc.get("title", "")),
        "severity": spec["severity"].get(str(doc.get("level", "medium")), "Medium"),
        "requiredDataConnectors": [
            {"connectorId": c, "dataTypes": [t]} for t in tables for c in spec["connectors"].get(t, [])
        ],
        "queryFrequency": frequency,
        "queryPeriod": period,
        "triggerOperator": "gt",
        "triggerThreshold": 0,
        "tactics": tactics,
        "relevantTechniques": techniques,
        "query": query,
        "entityMappings": [{"entityType": e, "fieldMappings": m} for e, m in entities.items()] or None,
        "version": "1.0.0",
        "kind": "Scheduled",
    }
    rule = {k: v for k, v in rule.items() if v is not None}
    return yaml.dump(rule, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000).rstrip()


class _Dumper(yaml.SafeDumper):
    pass


def _text_block(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _text_block)


class SentinelKustoBackend(KustoBackend):
    """pySigma's Kusto backend with Kusto's case-sensitive operators for ``|cased`` (the backend
    refuses the modifier): ``==`` is exact, ``*_cs`` operators keep case, a pattern with inner
    wildcards is a case-sensitive anchored regex."""

    case_sensitive_match_expression = '{field} matches regex "^{regex}$"'
    case_sensitive_startswith_expression = "{field} startswith_cs {value}"
    case_sensitive_endswith_expression = "{field} endswith_cs {value}"
    case_sensitive_contains_expression = "{field} contains_cs {value}"

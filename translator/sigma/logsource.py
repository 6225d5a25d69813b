"""Logsource inference for raw-event searches, driven by ``data/logsources.yml``.

The leading search's top-level conjuncts are read for ``source``,
``sourcetype``, ``eventtype`` and ``index`` terms (as the data-source macros
expand to) and for ``EventCode``. Terms that the inferred logsource implies are
consumed, so the detection does not repeat them. A name no table knows gets a
custom logsource (:mod:`translator.sigma.splunk_source`) whose ``definition``
carries the terms, so the selection is kept exactly; a known Windows service
named only in part (one of its two PowerShell channels) keeps a ``Channel``
condition for the part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from translator.content.loader import DataSource
from translator.data import logsource_table
from translator.sigma.splunk_source import SplunkSource, Term, custom_logsource
from translator.spl import ast

SOURCE_FIELDS = ("source", "sourcetype", "eventtype", "Channel")  # field names are case-sensitive
EVENT_CODE_FIELDS = ("EventCode", "EventID")


@dataclass
class LogsourceResult:
    logsource: dict[str, str]  # product/category/service, and definition for a custom one
    remaining: list[ast.SearchExpr]  # conjuncts left for the detection
    implied: list[ast.SearchExpr] = field(default_factory=list)  # EventCode terms the category implies
    channel: list[ast.SearchExpr] = field(default_factory=list)  # the event logs named, when not all of the logsource's
    reasons: list[str] = field(default_factory=list)  # what was dropped and why (broader)
    notes: list[str] = field(default_factory=list)  # how it was inferred (no loss)
    custom: bool = False  # a logsource derived from names no table knows


def conjuncts(expr: ast.SearchExpr | None) -> list[ast.SearchExpr]:
    if expr is None:
        return []
    return list(expr.operands) if isinstance(expr, ast.And) else [expr]


def _alternatives(expr: ast.SearchExpr, fields: tuple[str, ...]) -> list[tuple[str, str]] | None:
    """(field, value) pairs when ``expr`` is an OR of ``field=value`` terms on ``fields``."""
    if isinstance(expr, ast.Compare) and expr.op == "=" and expr.field in fields:
        return [(expr.field, expr.value.text)]
    if isinstance(expr, ast.InList) and expr.field in fields:
        return [(expr.field, v.text) for v in expr.values]
    if isinstance(expr, ast.Or):
        out: list[tuple[str, str]] = []
        for op in expr.operands:
            alts = _alternatives(op, fields)
            if alts is None:
                return None
            out.extend(alts)
        return out
    return None


def source_logsource(field_name: str, value: str) -> dict[str, str] | None:
    """The logsource one ``source=``/``sourcetype=``/``eventtype=``/``Channel=`` value names, if the table knows it."""
    table = logsource_table()
    low = value.lower()
    field_name = field_name.lower()
    if field_name == "eventtype":
        found = _lower_keys(table["eventtypes"]).get(low)
        return dict(found) if found else None
    if field_name == "channel":
        return _channel(low)
    channel = windows_channel(value)
    if channel is not None:
        return _channel(channel.lower())
    found = _lower_keys(table["sourcetypes"]).get(low)
    return dict(found) if found else None


def windows_channel(value: str) -> str | None:
    """The channel a ``WinEventLog:``/``XmlWinEventLog:`` source or sourcetype names (a pattern), if any."""
    for prefix in logsource_table()["windows_source_prefixes"]:
        if value.lower().startswith(prefix.lower()) and len(value) > len(prefix):
            return value[len(prefix) :]
    return None


def _channel(pattern: str) -> dict[str, str] | None:
    """The logsource of a Windows channel name (a Splunk pattern: * allowed), if all matches agree."""
    matches = [ls for name, ls in logsource_table()["windows_channels"].items() if fnmatchcase(name.lower(), pattern)]
    return dict(matches[0]) if matches and _same(matches) else None


def channels_by_service() -> dict[tuple[str, str], list[str]]:
    """(product, service) -> the event-log channels the table gives it (``windows_channels``, then
    ``extra_channels``), in table order: the converter, the evaluator and the pipelines read this."""
    table = logsource_table()
    out: dict[tuple[str, str], list[str]] = {}
    for channel, ls in table["windows_channels"].items():
        out.setdefault((ls["product"], ls["service"]), []).append(channel)
    for key, channels in table.get("extra_channels", {}).items():
        product, service = key.split("/")
        out.setdefault((product, service), []).extend(channels)
    return out


def service_channels(product: str, service: str) -> list[str]:
    """The channels the table gives a Windows-style service (event logs), in table order."""
    return channels_by_service().get((product, service), [])


def _lower_keys(table: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in table.items()}


def _pick_by_data_source(
    options: list[dict[str, str]], data_sources: tuple[str, ...], described: Mapping[str, DataSource]
) -> tuple[dict[str, str], str] | None:
    """Among logsources of different products, the one the detection's data sources name: first by
    what the content's ``data_sources/`` files state (their source and sourcetype), else by the
    data source names (the table's ``data_source_products`` patterns). Returns (logsource, how)."""
    stated = [
        resolved
        for name in data_sources
        if (ds := described.get(name)) is not None
        for f, v in ds.terms()
        if (resolved := source_logsource(f, v)) is not None
    ]
    products = {ls.get("product") for ls in stated}
    kept = [o for o in options if o.get("product") in products]
    if kept and _same(kept):
        return kept[0], "the data_sources files' source terms"
    prefs = logsource_table()["data_source_products"]
    wanted = {
        product
        for product, patterns in prefs.items()
        for ds_name in data_sources
        if any(fnmatchcase(ds_name.lower(), p) for p in patterns)
    }
    kept = [o for o in options if o.get("product") in wanted]
    return (kept[0], "the data source names") if kept and _same(kept) else None


def _event_codes(expr: ast.SearchExpr) -> list[int] | None:
    alts = _alternatives(expr, EVENT_CODE_FIELDS)
    if alts is None or not all(v.isdigit() for _, v in alts):
        return None
    return sorted({int(v) for _, v in alts})


def category_for(service: str, codes: list[int]) -> str | None:
    for row in logsource_table()["categories"]:
        if row["service"] == service and sorted(row["event_codes"]) == codes:
            return str(row["category"])
    return None


def _named_channels(alts: list[tuple[str, str]]) -> list[str] | None:
    """The channel patterns source terms name; None when one of them names every channel (a bare
    ``sourcetype=XmlWinEventLog``, an eventtype)."""
    out: list[str] = []
    for f, v in alts:
        channel = v if f == "Channel" else windows_channel(v)
        if channel is None:
            return None
        out.append(channel)
    return out


def term_logsource(f: str, v: str) -> dict[str, str]:
    """The logsource one source term names: the table's, else the custom one derived from it."""
    known = source_logsource(f, v)
    if known is not None:
        return known
    channel = windows_channel(v) if f in ("source", "sourcetype") else None
    return custom_logsource("Channel", channel) if channel is not None else custom_logsource(f, v)


def _custom(groups: list[list[Term]]) -> dict[str, str]:
    """The logsource for a set of source terms some of which no table knows: what the terms'
    logsources (the table's or the derived ones) agree on, generic sourcetypes (``_json``,
    ``httpevent``) aside; the first term's when they disagree."""
    generic = {str(g).lower() for g in logsource_table().get("generic_sourcetypes", [])}
    terms = [(f, v) for group in groups for f, v in group]
    derived = [term_logsource(f, v) for f, v in terms if v.lower() not in generic] or [
        term_logsource(f, v) for f, v in terms
    ]
    products = {d.get("product", "") for d in derived}
    if len(products) != 1:
        return {k: v for k, v in derived[0].items() if k in ("product", "service")}
    out = {"product": products.pop()}
    services = {d.get("service") for d in derived}
    if len(services) == 1 and None not in services:
        out["service"] = str(services.pop())
    return out


def infer(
    expr: ast.SearchExpr | None,
    data_sources: tuple[str, ...] = (),
    described: Mapping[str, DataSource] | None = None,
) -> LogsourceResult:
    """The logsource a search's source terms name. ``data_sources``: the detection's data source
    names; ``described``: the content's data source files by name (the content's own statement of
    where each data source's events come from)."""
    described = described or {}
    result = LogsourceResult({}, [])
    found: list[dict[str, str]] = []
    rest: list[ast.SearchExpr] = []
    index_terms: list[Term] = []
    groups: list[list[Term]] = []  # every source term group, for a custom logsource's definition
    unknown = False  # a term no table knows: the logsource is custom
    channel_terms: list[tuple[dict[str, str], list[str] | None]] = []  # (logsource, the channels named)
    for c in conjuncts(expr):
        if isinstance(c, ast.Compare) and c.field.lower() == "index" and c.op == "=":
            if c.value.text != "*":
                index_terms.append(("index", c.value.text))
            continue
        alts = _alternatives(c, SOURCE_FIELDS)
        if alts is None:
            rest.append(c)
            continue
        groups.append(list(alts))
        resolved = [source_logsource(f, v) for f, v in alts]
        values = ", ".join(f"{f}={v}" for f, v in alts)
        if any(r is None for r in resolved):
            unknown = True
            continue
        options: list[dict[str, str]] = resolved  # type: ignore[assignment]
        if _same(options):
            found.append(options[0])
            channel_terms.append((options[0], _named_channels(alts)))
            result.notes.append(f"logsource from {values}")
            continue
        picked = _pick_by_data_source(options, data_sources, described)
        if picked is None:
            result.reasons.append(
                f"data source term(s) not carried over ({values} name several platforms and no data_source "
                "picks one): the rule is not restricted to that source"
            )
            continue
        found.append(picked[0])
        mine = [a for a, r in zip(alts, options, strict=True) if r == picked[0]]
        channel_terms.append((picked[0], _named_channels(mine)))
        result.notes.append(
            f"the source terms ({values}) name several platforms; data_source {', '.join(data_sources)} "
            f"picks {picked[0].get('product')} ({picked[1]})"
        )
    if unknown or (not groups and index_terms):
        return _custom_result(groups, index_terms, rest)  # the notes and reasons above no longer apply
    for t in index_terms:
        result.reasons.append(f"index={t[1]} not carried over: Sigma has no index (the rule matches any index)")
    logsource: dict[str, str] = {}
    for ls in found:
        logsource.update({k: v for k, v in ls.items() if k not in logsource})
    service = logsource.get("service")
    if service:
        for i, c in enumerate(rest):
            codes = _event_codes(c)
            if codes is None:
                continue
            category = category_for(service, codes)
            if category:
                logsource = {"product": logsource["product"], "category": category}
                result.notes.append(f"category {category} from {service} event code(s) {codes}")
                result.implied.append(rest.pop(i))
                break
    prefixes = tuple(p.lower() for p in logsource_table()["windows_source_prefixes"])
    values = [(f.lower(), v.lower()) for g in groups for f, v in g]
    by_source = any(f == "source" for f, _ in values)
    if logsource and by_source and not any(v.startswith(prefixes) for _, v in values):  # no event log channel
        # the table names the logsource, but the search reads it by `source`, which the table does not
        # tell from a sourcetype: the definition keeps the terms, so the Splunk target writes them back
        logsource["definition"] = SplunkSource(tuple(tuple(g) for g in groups)).definition()
        result.notes.append(f"the search names its events by source: the definition keeps {logsource['definition']}")
    result.logsource = logsource
    result.remaining = rest
    result.channel = _channel_condition(logsource, service, channel_terms, result)
    return result


def _channel_condition(
    logsource: dict[str, str],
    service: str | None,
    named: list[tuple[dict[str, str], list[str] | None]],
    result: LogsourceResult,
) -> list[ast.SearchExpr]:
    """A ``Channel`` condition when the source terms name only some of the event logs the logsource
    reads: the old ``powershell`` macro names one of the two PowerShell channels; a Sysmon search for
    EventCode=1 is ``process_creation``, which Security 4688 records feed too. [] when they name all."""
    product = logsource.get("product", "")
    channels = [ch for s in sorted(services_of(logsource)) for ch in service_channels(product, s)]
    mine = [pats for ls, pats in named if ls.get("service") == service]
    if not channels or not mine or any(pats is None for pats in mine):
        return []  # no channels known, or a term naming every channel of the service
    # each term is a conjunct: a channel is kept when every term names it
    kept = [ch for ch in channels if all(any(fnmatchcase(ch.lower(), p.lower()) for p in pats) for pats in mine)]
    if len(kept) == len(channels) or not kept:
        return []
    what = logsource.get("category") or service
    result.notes.append(
        f"the source terms name {', '.join(kept)} of the event logs {what} reads ({', '.join(channels)}): "
        "the rule keeps a Channel condition"
    )
    values = tuple(ast.Value(ch, quoted=True) for ch in kept)
    return [ast.InList("Channel", values) if len(values) > 1 else ast.Compare("Channel", "=", values[0])]


def _custom_result(
    source_groups: list[list[Term]], index_terms: list[Term], rest: list[ast.SearchExpr]
) -> LogsourceResult:
    """A custom logsource from source terms some of which no table knows; its definition carries
    every source term and the index, so the selection is kept exactly."""
    groups = [*source_groups, *([[t] for t in index_terms])]
    source = SplunkSource(tuple(tuple(g) for g in groups))
    logsource = _custom(groups)
    logsource["definition"] = source.definition()
    names = " ".join(" OR ".join(f"{f}={v}" for f, v in g) for g in groups)
    note = (
        f"custom logsource {'/'.join(v for k, v in logsource.items() if k != 'definition')} for {names} "
        "(no table names it): its definition keeps the Splunk terms; the Splunk target maps it back to them, "
        "other targets need a pipeline entry for it"
    )
    return LogsourceResult(logsource, rest, notes=[note], custom=True)


def _same(items: list[Any]) -> bool:
    return all(x == items[0] for x in items)


def _event_log(logsource: dict[str, str]) -> bool:
    """Whether a Windows logsource is read from event logs (the table names its channel or event
    codes, or its definition names a channel); IIS, AD monitoring or Exchange management logs are
    not, and lack the record's fields."""
    table = logsource_table()
    defined = SplunkSource.from_definition(logsource.get("definition"))
    if defined is not None:
        return any(f == "Channel" or windows_channel(v) is not None for g in defined.groups for f, v in g)
    if "service" in logsource:
        return any(
            ls.get("service") == logsource["service"] for ls in table["windows_channels"].values()
        ) or f"windows/{logsource['service']}" in table.get("extra_channels", {})
    if "category" in logsource:
        return any(row["category"] == logsource["category"] for row in table["categories"])
    return True


def record_product(logsource: dict[str, str]) -> str:
    """The product whose record fields and field names (``data/fields.yml``) apply: "" for a
    Windows log that is not an event log (it has no Computer, EventID, ... of its own)."""
    product = logsource.get("product", "")
    return product if product != "windows" or _event_log(logsource) else ""


def always_present(logsource: dict[str, str]) -> set[str]:
    """Fields every event of ``logsource`` has (see ``always_present`` in the table; the Windows
    record's own fields only for logsources read from event logs)."""
    table = logsource_table()["always_present"]
    product = logsource.get("product", "")
    keys = ["*", record_product(logsource)]
    for k in ("service", "category"):
        if k in logsource:
            keys.append(f"{product}/{logsource[k]}")
    out: set[str] = set()
    for k in keys:
        out.update(table.get(k, []))
    return out


def is_custom(logsource: Mapping[str, Any]) -> bool:
    """A logsource no table names (its definition holds the Splunk terms that select its events); a
    table's logsource may hold a definition too, when the search names it by ``source``."""
    if not logsource.get("definition"):
        return False
    key = (logsource.get("product"), logsource.get("category"), logsource.get("service"))
    known = logsource_table()["sourcetypes"].values()
    return not any((v.get("product"), v.get("category"), v.get("service")) == key for v in known)


def services_of(logsource: dict[str, str]) -> set[str]:
    """The event-log services a logsource's events come from (a category: the services its rows name)."""
    if is_custom(logsource):
        return set()  # a custom logsource: its sources are the definition's, not the table's
    if "service" in logsource:
        return {logsource["service"]}
    category = logsource.get("category")
    return {row["service"] for row in logsource_table()["categories"] if row["category"] == category}


def constant_fields(logsource: dict[str, str]) -> set[str]:
    """Fields with one value on every event of ``logsource`` (``addon_constants`` in the table), when
    its events all come from one service; empty otherwise."""
    if len(services_of(logsource)) != 1:
        return set()
    return set(logsource_table().get("addon_constants", {}).get(logsource.get("product", ""), []))

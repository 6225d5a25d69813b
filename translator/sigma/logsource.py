"""Logsource inference for raw-event searches, driven by ``data/logsources.yml``.

The leading search's top-level conjuncts are read for ``source``,
``sourcetype``, ``eventtype`` and ``index`` terms (as the data-source macros
expand to) and for ``EventCode``. Terms that the inferred logsource implies are
consumed, so the detection does not repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from translator.data import load_table
from translator.spl import ast

SOURCE_FIELDS = ("source", "sourcetype", "eventtype", "Channel")  # field names are case-sensitive
EVENT_CODE_FIELDS = ("EventCode", "EventID")


@dataclass
class LogsourceResult:
    logsource: dict[str, str]
    remaining: list[ast.SearchExpr]  # conjuncts left for the detection
    implied: list[ast.SearchExpr] = field(default_factory=list)  # EventCode terms the category implies
    reasons: list[str] = field(default_factory=list)  # what was dropped and why (broader)
    notes: list[str] = field(default_factory=list)  # how it was inferred (no loss)


def conjuncts(expr: ast.SearchExpr | None) -> list[ast.SearchExpr]:
    if expr is None:
        return []
    return list(expr.operands) if isinstance(expr, ast.And) else [expr]


def _alternatives(expr: ast.SearchExpr, fields: tuple[str, ...]) -> list[tuple[str, str]] | None:
    """(field, value) pairs when ``expr`` is an OR of ``field=value`` terms on ``fields``."""
    if isinstance(expr, ast.Compare) and expr.op == "=" and expr.field in fields:
        return [(expr.field.lower(), expr.value.text)]
    if isinstance(expr, ast.InList) and expr.field in fields:
        return [(expr.field.lower(), v.text) for v in expr.values]
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
    table = load_table("logsources")
    low = value.lower()
    if field_name == "eventtype":
        found = _lower_keys(table["eventtypes"]).get(low)
        return dict(found) if found else None
    if field_name == "channel":
        return _channel(low)
    for prefix in table["windows_source_prefixes"]:
        if low.startswith(prefix.lower()):
            return _channel(low[len(prefix) :])
    found = _lower_keys(table["sourcetypes"]).get(low)
    return dict(found) if found else None


def _channel(pattern: str) -> dict[str, str] | None:
    """The logsource of a Windows channel name (a Splunk pattern: * allowed), if all matches agree."""
    channels = load_table("logsources")["windows_channels"]
    matches = [ls for name, ls in channels.items() if fnmatchcase(name.lower(), pattern)]
    return dict(matches[0]) if matches and _same(matches) else None


def _lower_keys(table: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in table.items()}


def _pick_by_data_source(options: list[dict[str, str]], data_sources: tuple[str, ...]) -> dict[str, str] | None:
    """Among logsources of different products, the one whose product the data sources name."""
    prefs = load_table("logsources")["data_source_products"]
    wanted = {
        product
        for product, patterns in prefs.items()
        for ds in data_sources
        if any(fnmatchcase(ds.lower(), p) for p in patterns)
    }
    kept = [o for o in options if o.get("product") in wanted]
    return kept[0] if kept and _same(kept) else None


def _event_codes(expr: ast.SearchExpr) -> list[int] | None:
    alts = _alternatives(expr, EVENT_CODE_FIELDS)
    if alts is None or not all(v.isdigit() for _, v in alts):
        return None
    return sorted({int(v) for _, v in alts})


def category_for(service: str, codes: list[int]) -> str | None:
    for row in load_table("logsources")["categories"]:
        if row["service"] == service and sorted(row["event_codes"]) == codes:
            return str(row["category"])
    return None


def infer(expr: ast.SearchExpr | None, data_sources: tuple[str, ...] = ()) -> LogsourceResult:
    result = LogsourceResult({}, [])
    found: list[dict[str, str]] = []
    rest: list[ast.SearchExpr] = []
    for c in conjuncts(expr):
        if isinstance(c, ast.Compare) and c.field.lower() == "index" and c.op == "=":
            if c.value.text != "*":
                result.reasons.append(
                    f"index={c.value.text} not carried over: Sigma has no index (the rule matches any index)"
                )
            continue
        alts = _alternatives(c, SOURCE_FIELDS)
        if alts is None:
            rest.append(c)
            continue
        resolved = [source_logsource(f, v) for f, v in alts]
        values = ", ".join(f"{f}={v}" for f, v in alts)
        picked = None
        if all(r is not None for r in resolved) and not _same(resolved):
            picked = _pick_by_data_source(resolved, data_sources)  # type: ignore[arg-type]
        if all(r is not None for r in resolved) and _same(resolved):
            found.append(resolved[0])  # type: ignore[arg-type]
            result.notes.append(f"logsource from {values}")
        elif picked is not None:
            found.append(picked)
            result.notes.append(
                f"the source terms ({values}) name several platforms; data_source {', '.join(data_sources)} "
                f"picks {picked.get('product')}"
            )
        else:
            unknown = ", ".join(f"{f}={v}" for (f, v), r in zip(alts, resolved, strict=True) if r is None)
            why = unknown or f"{values} name several platforms and no data_source picks one"
            result.reasons.append(
                f"data source term(s) not carried over ({why}): the rule is not restricted to that source"
            )
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
    result.logsource = logsource
    result.remaining = rest
    return result


def _same(items: list[Any]) -> bool:
    return all(x == items[0] for x in items)


def _event_log(logsource: dict[str, str]) -> bool:
    """Whether a Windows logsource is read from event logs (the table names its channel or event
    codes); IIS, AD monitoring or Exchange management logs are not, and lack the record's fields."""
    table = load_table("logsources")
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
    table = load_table("logsources")["always_present"]
    product = logsource.get("product", "")
    keys = ["*", record_product(logsource)]
    for k in ("service", "category"):
        if k in logsource:
            keys.append(f"{product}/{logsource[k]}")
    out: set[str] = set()
    for k in keys:
        out.update(table.get(k, []))
    return out

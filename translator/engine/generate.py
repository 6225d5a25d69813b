"""Events synthesized from an original search, so parity can check detections the samples never trigger.

From the first command's filter (a raw search, or a ``tstats ... where`` over a
data model) this builds one event that satisfies it (a *positive*) and, for
each term, an event that breaks only that term (a *near miss*). Values are
chosen to fit each wildcard, comparison and negation; data-model fields are
turned back into raw fields through ``data/cim.yml`` (the converter's table,
read the other way); source terms become the event's channel. Generation
reads only the original's AST, never the Sigma rule, so it cannot hide a
translation mistake. Only Windows event-log searches are generated for: the
readers take them back as XmlWinEventLog lines, kept beside the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from translator.data import load_table
from translator.engine.logsources import selector
from translator.engine.spl_values import as_number, search_compare, search_equals
from translator.sigma.cim import dataset_name, select_feed
from translator.spl import ast

Flat = dict[str, Any]
MISS = "zz_no_match"


@dataclass
class Want:
    """What one field must look like."""

    match: list[str] = field(default_factory=list)  # search patterns it must match
    avoid: list[str] = field(default_factory=list)  # patterns it must not match
    compare: list[tuple[str, str]] = field(default_factory=list)  # (op, value) comparisons
    present: bool = False  # f!=v and f=* need the field
    absent: bool = False


Wants = dict[str, Want]


def _merge(a: Wants, b: Wants) -> Wants:
    out = {k: Want(list(v.match), list(v.avoid), list(v.compare), v.present, v.absent) for k, v in a.items()}
    for k, w in b.items():
        o = out.setdefault(k, Want())
        o.match += w.match
        o.avoid += w.avoid
        o.compare += w.compare
        o.present |= w.present
        o.absent |= w.absent
    return out


def solve(expr: ast.SearchExpr, negated: bool = False) -> Wants | None:
    """Constraints that make ``expr`` true (false when ``negated``); the first feasible OR branch."""
    if isinstance(expr, ast.Not):
        return solve(expr.operand, not negated)
    if isinstance(expr, ast.And | ast.Or):
        conjunctive = isinstance(expr, ast.And) != negated
        if conjunctive:
            out: Wants = {}
            for e in expr.operands:
                part = solve(e, negated)
                if part is None:
                    return None
                out = _merge(out, part)
            return out if all(value_for(w) is not None for w in out.values()) else None
        for e in expr.operands:
            part = solve(e, negated)
            if part is not None and all(value_for(w) is not None for w in part.values()):
                return part
        return None
    if isinstance(expr, ast.InList):
        return solve(ast.Or(tuple(ast.Compare(expr.field, "=", v) for v in expr.values)), negated)
    if isinstance(expr, ast.Compare):
        op, v = expr.op, expr.value.text
        if op == "=":
            if v == "*":
                return {expr.field: Want(absent=True)} if negated else {expr.field: Want(present=True)}
            return {expr.field: Want(avoid=[v])} if negated else {expr.field: Want(match=[v])}
        if op == "!=":
            return {expr.field: Want(match=[v])} if negated else {expr.field: Want(avoid=[v], present=True)}
        flip = {"<": ">=", ">": "<=", "<=": ">", ">=": "<"}
        return {expr.field: Want(compare=[(flip[op] if negated else op, v)], present=True)}
    if isinstance(expr, ast.Term) and expr.value.text == "*":
        return None if negated else {}
    return None  # keyword terms, subsearches: not generated


def value_for(w: Want) -> str | None:
    """A value meeting every constraint (None: none found; "" never stands for absent)."""
    if w.absent:
        return None if (w.match or w.present or w.compare) else ""
    candidates: list[str] = []
    exact = [p for p in w.match if "*" not in p]
    if exact:
        candidates = [exact[0]]
    elif w.match:
        prefix = max((p.split("*")[0] for p in w.match), key=len)
        suffix = max((p.split("*")[-1] for p in w.match), key=len)
        middle = [seg for p in w.match for seg in p.split("*")[1:-1] if seg]
        candidates = [prefix + "".join(m + " " for m in middle) + suffix, prefix + " ".join(middle) + " " + suffix]
    elif w.compare:
        op, v = w.compare[0]
        n = as_number(v)
        if n is None:
            candidates = [v + "z" if ">" in op else " "]
        else:
            step = {"<": -1, "<=": 0, ">": 1, ">=": 0}[op]
            candidates = [str(int(n) + step) if n.is_integer() else str(n + step)]
    else:
        candidates = [MISS if w.avoid else "x"]
    for c in candidates + [c + "_" + MISS for c in candidates]:
        if _fits(c, w):
            return c
    return None


def _fits(value: str, w: Want) -> bool:
    return (
        all(search_equals(value, p) for p in w.match)
        and not any(search_equals(value, p) for p in w.avoid)
        and all(search_compare(value, op, v) for op, v in w.compare)
    )


# -- from constraints to a Windows event ------------------------------------------------------------


@dataclass
class Generated:
    label: str  # "positive" or "near miss: <term>"
    fields: Flat


def generate(pipeline: ast.Pipeline, data_sources: tuple[str, ...] = ()) -> list[Generated]:
    """A positive and near misses for ``pipeline``'s first command ([] when it cannot be generated for)."""
    first = pipeline.commands[0] if pipeline.commands else None
    if isinstance(first, ast.SearchCommand) and first.expr is not None:
        expr, to_raw = first.expr, _raw_fields
    elif isinstance(first, ast.TstatsCommand) and first.datamodel and first.where is not None:
        feed = select_feed(first.datamodel, data_sources)
        if feed is None:
            return []
        expr, to_raw = first.where, _datamodel_fields(first.datamodel, feed)
    else:
        return []
    wants = solve(expr)
    if wants is None:
        return []
    positive = to_raw(wants)
    if positive is None:
        return []
    out = [Generated("positive", positive)]
    terms = _conjuncts(expr)
    for i in range(len(terms)):
        broken = solve(ast.And(tuple(t if j != i else ast.Not(t) for j, t in enumerate(terms))))
        event = to_raw(broken) if broken is not None else None
        if event is not None and event != positive:
            out.append(Generated(f"near miss: term {i + 1}", event))
    return out


def _conjuncts(expr: ast.SearchExpr) -> list[ast.SearchExpr]:
    return list(expr.operands) if isinstance(expr, ast.And) else [expr]


def _source_channel(value: str) -> str | None:
    """The channel a Windows ``source``/``sourcetype`` value names (prefixes from the logsource table)."""
    for prefix in load_table("logsources")["windows_source_prefixes"]:
        if value.lower().startswith(prefix.lower()) and len(value) > len(prefix):
            return value[len(prefix) :]
    return None


def _windows_event(values: dict[str, str], channel: str | None, event_id: int | None) -> Flat | None:
    if channel is None:
        return None
    fields: Flat = {
        "Provider_Name": "Microsoft-Windows-Sysmon" if "Sysmon" in channel else channel.split("/")[0],
        "Channel": channel,
        "Computer": values.pop("Computer", "gen-host.example"),
        "TimeCreated": "2024-05-01T12:00:00.000Z",
    }
    if event_id is not None:
        fields["EventID"] = event_id
    fields.update(values)
    return fields


def _raw_fields(wants: Wants) -> Flat | None:
    """Constraints of a raw search -> a Windows event (source terms pick the channel)."""
    channel: str | None = None
    event_id: int | None = None
    values: dict[str, str] = {}
    for name, w in wants.items():
        if name in ("source", "sourcetype"):
            for p in w.match:
                found = _source_channel(p) if "*" not in p else None
                if found:
                    channel = found
            continue
        if name == "eventtype":
            spec = load_table("logsources").get("eventtypes", {}).get(w.match[0] if w.match else "", {})
            sel = selector(spec.get("product"), spec.get("category"), spec.get("service"))
            if sel.sources:
                channel = sorted(sel.sources[0].channels)[0]
            continue
        if name == "index":
            continue
        value = value_for(w)
        if value is None:
            return None
        if w.absent:
            continue
        if name in ("EventCode", "EventID"):
            n = as_number(value)
            if n is None:
                return None
            event_id = int(n)
            continue
        if name in ("host", "dest", "dvc", "ComputerName"):
            name = "Computer"
        values[name] = value
    if channel is None:
        return None
    return _windows_event(values, channel, event_id)


def _datamodel_fields(datamodel: str, feed: Any) -> Any:
    spec = load_table("cim")["datasets"][dataset_name(datamodel)]
    prefix = spec["prefix"] + "."
    sel = selector(feed.logsource.get("product"), feed.logsource.get("category"), feed.logsource.get("service"))
    source = next((s for s in sel.sources if not s.renames), None)

    def to_raw(wants: Wants) -> Flat | None:
        if source is None:
            return None
        sep = feed.separator
        raw: Wants = {}
        paths: set[str] = set()
        for name, w in wants.items():
            cim = name[len(prefix) :] if name.startswith(prefix) else name
            rule = feed.fields.get(cim)
            if rule is None:
                return None  # no raw field carries it: not generated
            if rule.value == "basename":
                if w.compare:
                    return None
                # a file name pattern is a pattern on the path's last part
                part = Want(
                    [_in_path(p, sep) for p in w.match], [_in_path(p, sep) for p in w.avoid], [], w.present, w.absent
                )
                paths.add(rule.sigma)
            elif rule.value == "values":
                value = value_for(w)
                picked = [s for c, sigma in rule.values if value and search_equals(c, value) for s in sigma]
                if not picked:
                    return None
                part = Want(match=[picked[0]])
            elif rule.value == "derived":
                return None
            else:
                part = w
            raw = _merge(raw, {rule.sigma: part})
        values: dict[str, str] = {}
        for name, w in raw.items():
            value = value_for(w)
            if value is None:
                return None
            if w.absent:
                continue
            if name in paths and not value.startswith(("C:", "/")):
                base = "/usr/bin" if sep == "/" else "C:\\Windows\\System32"
                full = base + value if value.startswith(sep) else base + sep + value
                value = full if _fits(full, w) else value
            values[name] = value
        event_id = min(source.event_ids) if source.event_ids else None
        return _windows_event(values, sorted(source.channels)[0], event_id)

    return to_raw


def _in_path(pattern: str, sep: str) -> str:
    """A file-name pattern as a pattern on the whole path."""
    return pattern if pattern.startswith("*") else f"*{sep}{pattern}"


def xml_line(fields: Flat, record: int) -> str:
    """A flat Windows event as one XmlWinEventLog line (what the XML reader takes back)."""
    system = {"Provider_Name", "Channel", "Computer", "TimeCreated", "EventID"}
    data = "".join(
        f"<Data Name={quoteattr(str(k))}>{escape(str(v))}</Data>" for k, v in fields.items() if k not in system
    )
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name={quoteattr(str(fields['Provider_Name']))}/>"
        + (f"<EventID>{fields['EventID']}</EventID>" if "EventID" in fields else "")
        + f"<TimeCreated SystemTime='{fields['TimeCreated']}'/><EventRecordID>{record}</EventRecordID>"
        f"<Channel>{escape(str(fields['Channel']))}</Channel><Computer>{escape(str(fields['Computer']))}</Computer>"
        f"</System><EventData>{data}</EventData></Event>"
    )

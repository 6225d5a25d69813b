"""Flat events as a Splunk search sees them: source, sourcetype, EventCode, _time, CIM names, data models.

The SPL executor runs the original search on the same flat events the Sigma
evaluator reads. Splunk adds fields of its own (``source``, ``sourcetype``,
``host``, ``_time``), the Windows add-on renames a few (``EventCode``,
``dest``), and its CIM extractions name Sysmon fields the data-model way
(``process_name`` is the file name of ``Image``). How Windows events are named
lives in ``data/splunk_events.yml``; the CIM names come from ``data/cim.yml``
read raw -> CIM, the other direction from the converter, so the two cannot
disagree about a field.

Data-model datasets (``| tstats ... from datamodel=Endpoint.Processes``) are
built the same way: every event a dataset's feed selects (by the Sigma
logsource the feed names, through the evaluator's logsource table) becomes one
row whose fields carry the dataset prefix (``Processes.process_name``).
"""

from __future__ import annotations

import string
from functools import cache
from typing import Any

from translator.data import load_table
from translator.engine.correlate import event_time  # the time correlations read: both sides bin alike
from translator.engine.logsources import Selector, selector
from translator.sigma.cim import FieldRule, dataset_name

Flat = dict[str, Any]


@cache
def _table() -> dict[str, Any]:
    return dict(load_table("splunk_events"))


def splunk_view(fields: Flat) -> Flat:
    """``fields`` plus what Splunk and its add-ons would show for the event."""
    out = dict(fields)
    table = _table()
    channel = fields.get("Channel")
    if channel is not None and "Provider_Name" in fields:  # a Windows event-log record
        for name, templates in table["windows"].items():
            values = [_render(t, fields) for t in templates if _has(t, fields)]
            if values:
                out.setdefault(name, values[0] if len(values) == 1 else values)
        for cim, raw in table["windows_aliases"].items():
            if raw in fields and cim not in out:
                out[cim] = fields[raw]
        _raw_cim_names(fields, out)
    when = event_time(fields)
    if when is not None:
        out["_time"] = when
    return out


def _has(template: str, fields: Flat) -> bool:
    return all(name in fields for _, name, _, _ in string.Formatter().parse(template) if name)


def _render(template: str, fields: Flat) -> str:
    return template.format_map({k: v for k, v in fields.items() if isinstance(k, str) and k.isidentifier()})


def _raw_cim_names(fields: Flat, out: Flat) -> None:
    """Sysmon events also carry the CIM names the add-on extracts (no dataset prefix)."""
    for category, dataset in load_table("cim")["raw_categories"].items():
        sel = selector("windows", category, None)
        view = sel.view(fields)
        if view is None:
            continue
        for name, value in cim_fields(dataset, view, "\\").items():
            out.setdefault(name, value)
        for name in _always(dataset, category):  # set by the add-ons on every event of the feed
            out.setdefault(name, "unknown")
        return


def _always(dataset: str, category: str) -> tuple[str, ...]:
    """The CIM fields the add-ons set on every event of the Windows feed of ``dataset`` for ``category``."""
    return next((always for key, *_, always in _feeds(dataset) if key == ("windows", category, "")), ())


def cim_fields(dataset: str, view: Flat, separator: str, spec_fields: dict[str, Any] | None = None) -> Flat:
    """CIM field -> value for one event of ``dataset`` (``view`` has the feed's Sigma names)."""
    spec = load_table("cim")["datasets"][dataset_name(dataset)]
    out: Flat = {}
    for cim, raw in (spec_fields or spec["fields"]).items():
        rule = FieldRule(raw["sigma"], raw.get("value", "equal"))
        value = view.get(rule.sigma)
        if value is None:
            continue
        if rule.value == "basename":
            out[cim] = _basename(value, separator)
        elif rule.value == "parent":
            out[cim] = _parent(value, separator)
        elif rule.value == "values":
            reverse = {str(s).lower(): c for c, sigma_values in raw.get("values", {}).items() for s in sigma_values}
            mapped = reverse.get(str(value).lower())
            if mapped is not None:
                out[cim] = mapped
        elif rule.value == "derived":
            if cim.endswith("_length"):
                out[cim] = len(str(value))
        else:
            out[cim] = value
    return out


def _parent(value: Any, separator: str) -> Any:
    if isinstance(value, list):
        return [_parent(v, separator) for v in value]
    return str(value).rsplit(separator, 1)[0]


def _basename(value: Any, separator: str) -> Any:
    if isinstance(value, list):
        return [_basename(v, separator) for v in value]
    return str(value).rsplit(separator, 1)[-1]


_FeedSpec = tuple[tuple[str, ...], Selector, str, tuple[tuple[str, Any], ...] | None, tuple[str, ...]]


@cache
def _feeds(dataset: str) -> tuple[_FeedSpec, ...]:
    spec = load_table("cim")["datasets"].get(dataset_name(dataset))
    if spec is None:
        return ()
    out = []
    for feed in spec["feeds"]:
        ls = feed["logsource"]
        key = (ls.get("product", ""), ls.get("category", ""), ls.get("service", ""))
        sel = selector(ls.get("product"), ls.get("category"), ls.get("service"))
        fields = tuple(feed["fields"].items()) if "fields" in feed else None
        out.append((key, sel, feed.get("separator", "\\"), fields, tuple(feed.get("always", ()))))
    return tuple(out)


def has_dataset(dataset: str) -> bool:
    return bool(_feeds(dataset))


def feed_key(logsource: dict[str, str]) -> tuple[str, ...]:
    return (logsource.get("product", ""), logsource.get("category", ""), logsource.get("service", ""))


def dataset_row(dataset: str, fields: Flat, feed: tuple[str, ...] | None = None) -> Flat | None:
    """The data-model row ``fields`` (one raw event) contributes to ``dataset``, or None.

    ``feed`` (a logsource key, see :func:`feed_key`) restricts the dataset to the events of
    one feed: the one the detection's data sources name, as the converter chose it.
    """
    spec = load_table("cim")["datasets"].get(dataset_name(dataset))
    if spec is None:
        return None
    prefix = spec["prefix"]
    for key, sel, separator, feed_fields, always in _feeds(dataset):
        if feed is not None and key != feed:
            continue
        view = sel.view(fields)
        if view is None:
            continue
        values = cim_fields(dataset, view, separator, dict(feed_fields) if feed_fields else None)
        row: Flat = {f"{prefix}.{k}": v for k, v in values.items()}
        if always:  # set by the add-ons on every event: the value Splunk shows, else CIM's "unknown"
            shown = splunk_view(fields)
            for name in always:
                row.setdefault(f"{prefix}.{name}", shown.get(name, "unknown"))
        for name in ("_time", "host", "source", "sourcetype"):
            if name in fields:
                row[name] = fields[name]
        return row
    return None

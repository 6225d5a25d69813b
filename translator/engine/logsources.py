"""Sigma logsource -> which events it means, read backwards from ``data/logsources.yml``.

A Windows service names channels; a category names (service, event ids) pairs,
and for some pairs a field renaming (Security 4688 calls Image NewProcessName).
A logsource the table has no channel for selects every event of its kind:
for Windows, every event-log record; for other products (cloud, SaaS, network
devices, whose JSON carries no channel), every record that is not a Windows one,
unless the record names its ``sourcetype`` (Splunk exports do): then the
``sourcetypes`` table says which logsource it is of, as it does for the converter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from translator.data import logsource_table, set_logsource_overrides
from translator.engine.spl_values import values_of
from translator.sigma.logsource import channels_by_service
from translator.sigma.splunk_source import SplunkSource

Flat = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """One (channel set, event ids, renaming) that a logsource stands for."""

    channels: frozenset[str]
    event_ids: frozenset[int] = frozenset()  # empty: any
    renames: tuple[tuple[str, str], ...] = ()

    def view(self, event: Flat) -> Flat | None:
        """The event with this source's renames applied, or None when it is not from this source."""
        if event.get("Channel") not in self.channels:
            return None
        if self.event_ids and _int(event.get("EventID")) not in self.event_ids:
            return None
        if not self.renames:
            return event
        out = dict(event)
        for src, dst in self.renames:
            if src in event:
                out[dst] = event[src]
            elif dst in out and src != dst:
                del out[dst]  # the renamed field is absent: so is its Sigma name
        return out


@dataclass(frozen=True)
class Named:
    """A logsource without channels, checked on records that are not Windows event-log records:
    one naming a sourcetype (or source) the table knows is of that logsource only; one naming
    none the table knows may be of any non-Windows logsource (cloud JSON rarely says)."""

    product: str = ""
    category: str = ""
    service: str = ""

    def view(self, event: Flat) -> Flat | None:
        names, named = record_logsource(event)
        if not names:
            return None if self.product == "windows" else event
        if named is None:
            return None  # a source no table knows: only a custom logsource's definition reads it
        mine = (("product", self.product), ("category", self.category), ("service", self.service))
        return event if all(not v or named.get(k) == v for k, v in mine) else None


@dataclass(frozen=True)
class Defined:
    """A custom logsource: the records its definition's Splunk source terms select, as Splunk shows
    them (a Windows record's ``source`` is ``XmlWinEventLog:<channel>``, and so on)."""

    source: SplunkSource

    def view(self, event: Flat) -> Flat | None:
        shown = _shown(event)
        return event if self.source.matches(lambda f: values_of(shown.get(f))) else None


_last_shown: list[Any] = [None, None]  # (event, its Splunk view): every custom logsource checks the same event


def _shown(event: Flat) -> Flat:
    """The event as Splunk shows it, computed once for the run of rules that check it in a row."""
    if _last_shown[0] is not event:
        from translator.events.splunk import splunk_view  # events.splunk reads this module's selectors

        _last_shown[0], _last_shown[1] = event, splunk_view(event)
    return _last_shown[1]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Selector:
    sources: tuple[Source, ...] = field(default_factory=tuple)
    everything: bool = False  # no channel in the table: every event of the right kind is a candidate
    windows: bool = False  # with ``everything``: Windows event-log records too (else none of them)
    named: Named | None = None  # with ``everything``: the check on records of other kinds (JSON, CSV)
    defined: Defined | None = None  # a custom logsource: its definition decides, for records of every kind

    def view(self, event: Flat) -> Flat | None:
        """The event as the rule should see it, or None when it is not of this logsource."""
        if self.defined is not None:
            return self.defined.view(event)
        if self.everything:
            # a Windows event-log record always names its provider; JSON from other products never does
            if "Provider_Name" in event:
                return event if self.windows else None
            return self.named.view(event) if self.named is not None else None
        for s in self.sources:
            view = s.view(event)
            if view is not None:
                return view
        return None


def set_overrides(data: dict[str, Any]) -> None:
    """Merge a user's table over the built-in one (see :func:`translator.data.set_logsource_overrides`)."""
    set_logsource_overrides(data)
    _service_channels.cache_clear()
    _sourcetypes.cache_clear()
    _generic.cache_clear()
    selector.cache_clear()


@cache
def _service_channels() -> dict[tuple[str, str], frozenset[str]]:
    return {k: frozenset(v) for k, v in channels_by_service().items()}


@cache
def selector(product: str | None, category: str | None, service: str | None) -> Selector:
    table = logsource_table()
    services = _service_channels()
    product = product or ""
    named = Named(product, category or "", service or "")
    fallback = Selector(everything=True, windows=product == "windows", named=named)
    if service:
        channels = services.get((product, service))
        return Selector((Source(channels),)) if channels else fallback
    if category:
        sources = []
        for row in table["categories"]:
            if row["category"] != category:
                continue
            channels = services.get((product, row["service"]))
            if not channels:
                continue
            renames = table.get("event_field_maps", {}).get(f"{row['service']}/{category}", {})
            sources.append(Source(channels, frozenset(row["event_codes"]), tuple(renames.items())))
        if sources:
            return Selector(tuple(sources))
    return fallback


@cache
def _sourcetypes() -> dict[str, dict[str, str]]:
    return {str(k).lower(): dict(v) for k, v in logsource_table()["sourcetypes"].items()}


@cache
def _generic() -> frozenset[str]:
    return frozenset(str(x).lower() for x in logsource_table().get("generic_sourcetypes", []))


def sourcetype_logsource(value: Any) -> dict[str, str] | None:
    """The logsource a ``sourcetype`` value names (compared case-insensitively), or None."""
    return _sourcetypes().get(value.lower()) if isinstance(value, str) else None


def record_logsource(event: Flat) -> tuple[bool, dict[str, str] | None]:
    """(whether the record names its source, the logsource the table gives that name or None).

    A record's ``sourcetype`` (else its ``source``) says what it is, unless it is a generic one
    (``_json``): such a record, or one naming nothing, may be of any non-Windows logsource.
    """
    for key in ("sourcetype", "source"):
        value = event.get(key)
        if isinstance(value, str) and value and value.lower() not in _generic():
            return True, sourcetype_logsource(value)
    return False, None


def selector_for(rule: Any) -> Selector:
    ls = rule.logsource
    defined = SplunkSource.from_definition(getattr(ls, "definition", None))
    if defined is not None:
        return Selector(everything=True, windows=True, defined=Defined(defined))
    return selector(ls.product, ls.category, ls.service)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = [
    "Defined",
    "Named",
    "Selector",
    "Source",
    "record_logsource",
    "selector",
    "selector_for",
    "sourcetype_logsource",
]

"""Which rules an event can concern, found by dictionary look-ups instead of offering it to every rule.

A rule is filed under the (channel, event id) pairs its logsource and its own
``EventID`` condition allow; a logsource without channels is filed under "any
Windows record" or "any other record". Within such a bucket, a rule that names
anchors (values one of which must be there: ``Image`` ends with ``\\cmd.exe``,
``OriginalFileName`` is ``Cmd.Exe``) is filed under each anchor, so an event
reaches it only when one of its own values is that anchor. An event then looks
up at most four buckets and, in each, its values for the anchored fields.
Candidates are checked against the fields the rule cannot match without, then
run. Views (the event with a logsource's renames) are computed once per event
and source. None of this changes a result: every filter is a necessary
condition of the rule or of its logsource.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from translator.engine.logsources import Defined, Flat, Named, Selector, Source
from translator.engine.sigma_eval import Anchor, CompiledRule, anchor_keys, event_id_of

T = TypeVar("T")

WINDOWS, OTHER = "\0windows", "\0other"  # buckets for logsources without channels


@dataclass
class _Group(Generic[T]):
    """The rules of one bucket that see events through one source (None: the event as it is)."""

    source: Source | Named | Defined | None
    plain: list[tuple[T, CompiledRule]] = field(default_factory=list)
    anchored: dict[Anchor, list[tuple[T, CompiledRule]]] = field(default_factory=dict)
    probes: set[tuple[str, str]] = field(default_factory=set)  # (field, kind) pairs worth looking up


@dataclass
class Dispatch(Generic[T]):
    """Rules (each with a payload ``T``, e.g. its index) filed by where their events can come from."""

    _buckets: dict[tuple[str, int | None], dict[Source | Named | Defined | None, _Group[T]]] = field(
        default_factory=dict
    )

    def add(self, payload: T, compiled: CompiledRule, selector: Selector) -> None:
        ids = compiled.event_ids
        if selector.defined is not None:  # a custom logsource: its definition checks records of both kinds
            self._file(WINDOWS, ids, selector.defined, payload, compiled)
            self._file(OTHER, ids, selector.defined, payload, compiled)
            return
        if selector.everything:
            if selector.windows:  # event-log records as they are
                self._file(WINDOWS, ids, None, payload, compiled)
            self._file(OTHER, ids, selector.named, payload, compiled)  # others by their sourcetype
            return
        for source in selector.sources:
            allowed: frozenset[int] | None = source.event_ids or None
            if ids is not None:
                allowed = ids if allowed is None else allowed & ids
                if not allowed:
                    continue  # this source never holds one of the rule's event ids
            for channel in source.channels:
                self._file(channel, allowed, source, payload, compiled)

    def _file(
        self,
        channel: str,
        ids: frozenset[int] | None,
        source: Source | Named | Defined | None,
        payload: T,
        compiled: CompiledRule,
    ) -> None:
        for eid in ids if ids is not None else (None,):
            groups = self._buckets.setdefault((channel, eid), {})
            group = groups.get(source)
            if group is None:
                group = groups[source] = _Group(source)
            if compiled.anchors is None:
                group.plain.append((payload, compiled))
                continue
            for anchor in compiled.anchors:
                group.anchored.setdefault(anchor, []).append((payload, compiled))
                group.probes.add(anchor[:2])

    def candidates(self, event: Flat) -> Iterator[tuple[T, CompiledRule, Flat]]:
        """(payload, rule, the event as the rule sees it) for every rule the event may match."""
        eid = event_id_of(event.get("EventID"))
        channel = event.get("Channel")
        kind = WINDOWS if "Provider_Name" in event else OTHER
        seen: set[int] = set()  # a rule filed in two places is offered once
        buckets = self._buckets
        for key in ((channel, eid), (channel, None), (kind, eid), (kind, None)):
            groups = buckets.get(key)  # type: ignore[arg-type]
            if not groups:
                continue
            for source, group in groups.items():
                view = event if source is None else source.view(event)
                if view is None:
                    continue
                for payload, compiled in _reached(group, view):
                    if id(compiled) in seen:
                        continue
                    needs = compiled.needs
                    if needs is not None and not any(f in view for f in needs):
                        continue
                    seen.add(id(compiled))
                    yield payload, compiled, view


def _reached(group: _Group[T], view: Flat) -> Iterator[tuple[T, CompiledRule]]:
    yield from group.plain
    anchored = group.anchored
    for name, kind in group.probes:
        value = view.get(name)
        if value is None:
            continue
        for text in anchor_keys(value, kind):
            entries = anchored.get((name, kind, text))
            if entries:
                yield from entries

"""Flat events as Elastic's integrations index them: ECS fields, the integration's own, and the types.

What the Windows, System and Sysmon for Linux integrations do to an event log record
lives in ``data/elastic.yml`` (per channel and event id: which EventData names move to
ECS fields, which stay under ``winlog.event_data``, categories and types), and so does
what the AWS, Microsoft 365, Azure and Auditd Logs integrations do to a JSON or
audit.log event (per data stream, found by sourcetype and a routing field). The
mappings Elasticsearch gives those fields are there too. The result is a
:class:`~translator.engine.elastic.fields.Doc` the Lucene, EQL and ES|QL runners read.
Events no integration here takes have no view: :func:`elastic_doc` returns None.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from translator.data import AddonAlias, addon_aliases, load_table

Flat = dict[str, Any]

STRINGS = ("keyword", "wildcard", "constant_keyword")
TEXTS = ("text", "match_only_text")
NUMBERS = ("long", "integer", "short", "byte", "double", "float", "scaled_float", "unsigned_long")


@dataclass(frozen=True)
class FieldType:
    """One field's mapping: its type, ``ignore_above`` for keywords, and a ``.text`` multi-field."""

    kind: str = "keyword"
    ignore_above: int | None = None
    text: bool = False
    normalizer: bool = False  # a lower-casing normalizer (the `.caseless` multi-fields)
    analyzer: str = "standard"  # text fields: how values are split into words (TOKENIZERS)
    keyed: bool = False  # a flattened field's key: term, prefix and exists queries only


@dataclass
class Doc:
    """One indexed event: ECS field -> values (already in the type's form), with the types used."""

    ref: str
    values: dict[str, list[Any]]
    types: dict[str, FieldType] = field(default_factory=dict)
    source: dict[str, list[Any]] = field(default_factory=dict)  # the unconverted strings (ES|QL reads these)

    def type_of(self, name: str) -> FieldType:
        """The field's mapping: as indexed here, else as declared (the mapping exists without the value)."""
        return self.types.get(name) or field_type(name, None)


def index_value(kind: FieldType, value: Any) -> Any | None:
    """``value`` as the field indexes it, or None when the mapping would not index it."""
    if kind.kind in STRINGS:
        text = _as_text(value)
        if kind.ignore_above is not None and len(text) > kind.ignore_above:
            return None
        return text.lower() if kind.normalizer else text
    if kind.kind in TEXTS:
        return _as_text(value)
    if kind.kind in NUMBERS:
        return number_of(value)
    if kind.kind == "ip":
        try:
            return ipaddress.ip_address(str(value).strip())
        except ValueError:
            return None
    if kind.kind == "boolean":
        text = _as_text(value).lower()
        return {"true": True, "false": False}.get(text)
    return _as_text(value)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def number_of(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


@cache
def _windows() -> dict[str, Any]:
    return dict(load_table("elastic")["windows"])


@cache
def _types() -> tuple[dict[str, FieldType], int]:
    table = load_table("elastic")["types"]
    limit = int(table["keyword_ignore_above"])
    out: dict[str, FieldType] = {}
    for name, spec in table["fields"].items():
        kind = spec["type"]
        out[name] = FieldType(
            kind,
            limit if kind == "keyword" else None,
            bool(spec.get("text")),
            analyzer=spec.get("analyzer", "standard"),
        )
        if spec.get("text"):
            out[f"{name}.text"] = FieldType("match_only_text")
        if spec.get("caseless"):
            out[f"{name}.caseless"] = FieldType("keyword", limit, normalizer=True)
    return out, limit


@cache
def _prefix_types() -> tuple[tuple[str, FieldType], ...]:
    table = load_table("elastic")["types"].get("prefixes") or {}
    return tuple((prefix, FieldType(spec["type"], keyed=bool(spec.get("keyed")))) for prefix, spec in table.items())


def field_type(name: str, value: Any) -> FieldType:
    """The mapping of ``name``: declared, else a flattened field's key, else what the dynamic
    templates give a value like ``value``."""
    declared, limit = _types()
    kind = declared.get(name)
    if kind is not None:
        return kind
    for prefix, kind in _prefix_types():
        if name.startswith(prefix):
            return kind
    if isinstance(value, bool):
        return FieldType("boolean")
    if isinstance(value, int) and not name.startswith("winlog.event_data."):
        return FieldType("long")
    return FieldType("keyword", limit)


def is_windows(fields: Flat) -> bool:
    return "EventID" in fields and "Channel" in fields


def elastic_doc(ref: str, fields: Flat) -> Doc | None:
    """The indexed document for a flat event, or None for events no integration here indexes."""
    if not is_windows(fields) and _stream_of(fields) is None:
        return None
    return index(ref, elastic_source(fields))


def index(ref: str, source: dict[str, list[Any]]) -> Doc:
    """A document from its source fields: each value converted by its field's mapping, multi-fields added."""
    declared, _limit = _types()
    doc = Doc(ref, {}, {}, source)
    for name, values in source.items():
        kind = field_type(name, values[0] if values else None)
        _put(doc, name, kind, values)
        for sub in ("text", "caseless"):
            if f"{name}.{sub}" in declared:
                _put(doc, f"{name}.{sub}", declared[f"{name}.{sub}"], values)
    return doc


def _put(doc: Doc, name: str, kind: FieldType, values: list[Any]) -> None:
    doc.types[name] = kind
    indexed = [v for v in (index_value(kind, x) for x in values) if v is not None]
    if indexed:
        doc.values[name] = indexed


@cache
def _streams() -> dict[str, dict[str, Any]]:
    return dict(load_table("elastic").get("json") or {})


@cache
def _by_sourcetype() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, spec in _streams().items():
        for st in spec["sourcetypes"]:
            out.setdefault(st.lower(), []).append(name)
    return out


def _stream_of(fields: Flat) -> str | None:
    """The data stream that indexes the event: by sourcetype, then by the stream's ``route`` (a
    field whose value picks the stream, Entra ID's ``category``); None when none takes it."""
    sourcetype = fields.get("sourcetype")
    if not isinstance(sourcetype, str):
        return None
    for name in _by_sourcetype().get(sourcetype.lower(), ()):
        route = _streams()[name].get("route") or {}
        if all(str(fields.get(key)) in values for key, values in route.items()):
            return name
    return None


def stream_name(base: Base) -> str | None:
    """The data stream of a source's identifying fields, None for event logs."""
    return _stream_of(dict(base))


def streams_for(logsource: str) -> list[str]:
    """The JSON data streams whose documents hold a Sigma logsource's events ("product/service")."""
    return [name for name, spec in _streams().items() if logsource in spec.get("logsources", ())]


def stream_route(stream: str) -> dict[str, list[str]]:
    """The field values that send an event of the stream's sourcetype to it ({} for any)."""
    return {k: list(v) for k, v in (_streams()[stream].get("route") or {}).items()}


def json_logsources() -> dict[str, list[str]]:
    """ "product/service" -> the JSON data streams holding its events."""
    out: dict[str, list[str]] = {}
    for name, spec in _streams().items():
        for ls in spec.get("logsources", ()):
            out.setdefault(ls, []).append(name)
    return out


def stream_base(stream: str) -> Base:
    """The identifying fields of an event of that JSON data stream (its first sourcetype, and the
    first value of each field that routes events to it)."""
    route = tuple((key, values[0]) for key, values in stream_route(stream).items())
    return (("sourcetype", _streams()[stream]["sourcetypes"][0]), *route)


def _alias(base: Base, name: str) -> AddonAlias | None:
    sourcetype = dict(base).get("sourcetype")
    return addon_aliases(sourcetype).get(name) if isinstance(sourcetype, str) else None


def alias_definition(base: Base, name: str) -> str | None:
    """For a field the source's Splunk add-on computes (an eval or lookup): its definition."""
    alias = _alias(base, name)
    return alias.computed if alias else None


def coalesced(base: Base, name: str) -> list[str]:
    """The raw paths of a field the source's Splunk add-on takes from the first present of several."""
    alias = _alias(base, name)
    return list(alias.paths) if alias and len(alias.paths) > 1 else []


def conditional(base: Base, target: str) -> str | None:
    """Why a field of the source's documents does not hold one raw field's value on every event."""
    stream = stream_name(base)
    return (_streams()[stream].get("conditional") or {}).get(target) if stream else None


def dropped_values(base: Base | None) -> frozenset[str]:
    """The values the source's integration removes before indexing (the field is then absent)."""
    stream = stream_name(base) if base else None
    spec = _streams()[stream] if stream else _windows()
    return frozenset(spec["drop_values"])


def json_source(stream: str, fields: Flat) -> dict[str, list[Any]]:
    """The document an integration's ingest pipeline writes for a flat JSON event: the add-on's
    aliases read back to the raw paths, dropped values removed, values it rewrites rewritten,
    reshaped objects left out, each known path moved to its fields, objects copied into their
    flattened field, and the rest kept as written under the stream's ``rest`` prefix (or not
    indexed when it has none)."""
    spec = _streams()[stream]
    drop = set(spec.get("drop_values") or ())
    raw: dict[str, list[Any]] = {}
    for name, value in fields.items():
        values = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
        values = [v for v in values if not (isinstance(v, str) and v in drop)]
        if values:
            raw[name] = values
    for name, alias in addon_aliases(str(fields.get("sourcetype", ""))).items():
        if name not in raw or name in spec["fields"]:
            continue  # a raw path of its own (errorCode) keeps its value
        value = raw.pop(name)
        if alias.paths and not any(p in raw for p in alias.paths):
            raw[alias.paths[0]] = value  # an event written with the add-on's name: its raw field had it
    out: dict[str, list[Any]] = {}
    conditional_fields = spec.get("conditional") or {}
    for path, replaced in (spec.get("values") or {}).items():
        if path in raw:
            raw[path] = [replaced.get(str(v).lower(), v) for v in raw[path]]
    for path in spec.get("drop_paths") or ():
        for name in [n for n in raw if _under(n, path)]:
            del raw[name]
    for path, targets in spec["fields"].items():
        if path in raw:
            value = raw.pop(path)
            for target in targets:
                if target not in out or target not in conditional_fields:
                    out[target] = list(value)
    for field_name, ip_field in (spec.get("ip") or {}).items():
        addresses = [v for v in out.get(field_name, []) if _is_ip(v)]
        if addresses:
            out[ip_field] = addresses
    for path, target in (spec.get("objects") or {}).items():
        for name in [n for n in raw if _under(n, path)]:
            key = name[len(path) :].replace("{}", "")
            if key.startswith("."):
                out.setdefault(target + key, []).extend(raw.pop(name))
    for name in spec.get("number") or ():
        if name in out:
            out[name] = [n for n in (number_of(v) for v in out[name]) if n is not None]
            if not out[name]:
                del out[name]
    if rest := spec.get("rest"):
        renames = spec.get("rename_prefixes") or {}
        for name, value in raw.items():
            if name in SPLUNK_METADATA:
                continue
            for old, new in renames.items():
                if _under(name, old):
                    name = new + name[len(old) :]
                    break
            name = name.replace("{}", "")
            if spec.get("snake_case"):
                name = ".".join(_snake(part) for part in name.split("."))
            out.setdefault(f"{rest}.{name}", []).extend(value)
    for name, value in (spec.get("set") or {}).items():
        out[name] = [value]
    for name in ("event.dataset", "data_stream.dataset"):
        out[name] = [stream]
    out["event.module"] = [spec["module"]]
    return out


def _under(name: str, path: str) -> bool:
    """Whether a flat name is the path itself or inside it (``path.x``, ``path{}.x``)."""
    return name == path or name.startswith((f"{path}.", f"{path}{{}}"))


def _snake(key: str) -> str:
    """A key as the Azure sign-in pipeline writes it: ``_`` at each lower-to-upper boundary, lower-cased."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", key).lower()


SPLUNK_METADATA = frozenset({"_time", "_raw", "host", "source", "sourcetype", "index", "timestamp"})


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value).strip())
    except ValueError:
        return False
    return True


def elastic_source(fields: Flat) -> dict[str, list[Any]]:
    """The document Elastic's integrations write for the event (field -> values), before mapping."""
    stream = None if is_windows(fields) else _stream_of(fields)
    if stream is not None:
        return json_source(stream, fields)
    table = _windows()
    out: dict[str, list[Any]] = {}
    system = table["system"]
    drop = set(table["drop_values"])
    data = {k: v for k, v in fields.items() if k not in system and not (isinstance(v, str) and v in drop)}
    unnamed = table.get("unnamed_data") or {}
    if unnamed.get("field") in data:  # unnamed <Data> elements: param1, param2, ... in order
        values = data.pop(unnamed["field"])
        for i, value in enumerate(values if isinstance(values, list) else [values], 1):
            if value is not None and not (isinstance(value, str) and value in drop):
                data[f"{unnamed['prefix']}{i}"] = value
    for name, targets in system.items():
        if name in fields and fields[name] not in (None, ""):
            for target in targets:
                value = fields[name]
                _add(
                    out,
                    target,
                    str(value) if target in ("event.code", "winlog.event_id", "winlog.record_id") else value,
                )
    channel = table["channels"].get(str(fields.get("Channel")))
    if channel is not None:
        _set(out, "event.dataset", channel["dataset"])
        _set(out, "data_stream.dataset", channel["dataset"])
        _set(out, "event.module", channel["module"])
        _set(out, "event.kind", "event")
        specs = _specs(channel, fields.get("EventID"), table["groups"])
        for spec in specs:
            _apply(spec, data, out, table["tables"])
        for spec in specs:  # derived once every spec has moved its fields
            _derive(spec, out)
    prefix = table["event_data"]
    for name, value in data.items():
        if value is not None:
            _add(out, f"{prefix}.{name}", value)
    return out


def _specs(channel: dict[str, Any], event_id: Any, groups: dict[str, Any]) -> list[dict[str, Any]]:
    """The mappings for one event of the channel, in order: the channel's, the groups the event
    uses, the event's own."""
    events = channel.get("events") or {}
    own = events.get(event_id) or events.get(str(event_id)) or events.get("*") or {}
    specs = [channel.get("all") or {}]
    specs += [groups[g] for g in own.get("uses", [])]
    specs.append(own)
    return specs


def _apply(spec: dict[str, Any], data: Flat, out: dict[str, list[Any]], tables: dict[str, Any]) -> None:
    for key in ("category", "type"):
        if key in spec:
            out[f"event.{key}"] = list(spec[key])
    if "action" in spec:
        _set(out, "event.action", spec["action"])
    for name, target in (spec.get("copy") or {}).items():
        if name in data:
            _set(out, target, data[name])
    for name, target in (spec.get("rename") or {}).items():
        if name in data:
            value = data.pop(name)
            _set(out, target, (spec.get("values") or {}).get(name, {}).get(str(value).lower(), value))
    for name in spec.get("drop") or []:
        data.pop(name, None)
    for name, (domain, user) in (spec.get("user") or {}).items():
        value = data.pop(name, None)
        parts = str(value).split("\\") if value is not None else []
        if len(parts) == 2:
            _set(out, domain, parts[0])
            _set(out, user, parts[1])
    for name, prefix in (spec.get("hashes") or {}).items():
        value = data.pop(name, None)
        if value is not None:
            _hashes(str(value), prefix, out)
    for name, (target, table) in (spec.get("describe") or {}).items():
        if name in data and str(data[name]) in tables[table]:
            _set(out, target, tables[table][str(data[name])])
    for target, value in (spec.get("set") or {}).items():
        _set(out, target, value)


def _derive(spec: dict[str, Any], out: dict[str, list[Any]]) -> None:
    """File names of paths, and numbers parsed (``0x..`` or decimal; a value that is neither is not
    indexed: Elastic's logs templates ignore malformed values)."""
    for target, source in (spec.get("basename") or {}).items():
        if out.get(source):
            _set(out, target, str(out[source][0]).rsplit("\\", 1)[-1])
    for target in spec.get("number") or []:
        if out.get(target):
            number = index_value(FieldType("long"), out[target][0])
            if number is None:
                del out[target]
            else:
                out[target] = [number]


def _hashes(text: str, prefix: str, out: dict[str, list[Any]]) -> None:
    parent = prefix.rsplit(".", 1)[0]
    for part in text.split(","):
        algo, _, value = part.partition("=")
        if not value or set(value) == {"0"}:
            continue
        if algo.strip().upper() == "IMPHASH":
            _set(out, f"{parent}.pe.imphash", value.strip().lower())
        else:
            _set(out, f"{prefix}.{algo.strip().lower()}", value.strip().lower())


def _set(out: dict[str, list[Any]], name: str, value: Any) -> None:
    out[name] = [value]


def _add(out: dict[str, list[Any]], name: str, value: Any) -> None:
    out.setdefault(name, []).append(value)


_PROBE = "\x00probe\x00"
_PROBE_NUMBER = "0x7a69"  # 31337 once a pipeline converts it to a number


Base = tuple[tuple[str, Any], ...]  # the flat fields that say which source an event comes from


def channel_base(channel: str, event_id: int | None) -> Base:
    """The identifying fields of an event-log record of that channel and event id."""
    return (("Channel", channel), ("EventID", event_id if event_id is not None else -1))


def has_view(base: Base) -> bool:
    """Whether Elastic's integrations know events of that source (an event log or JSON source with
    a data stream here)."""
    fields = dict(base)
    return str(fields.get("Channel")) in _windows()["channels"] or _stream_of(fields) is not None


@cache
def source_names(base: Base, name: str) -> tuple[str, ...]:
    """Where Elastic's integrations put the field ``name`` of an event from ``base`` with its value
    unchanged (or only parsed as a number), ECS fields first: found by building the document of an
    event holding a marker in that field. Empty when the value does not survive as such (split,
    parsed into parts, described, dropped)."""
    stream = stream_name(base)  # a JSON source keeps its data stream whatever the probed field holds
    for probe, found in ((_PROBE, _PROBE), (_PROBE_NUMBER, 31337)):
        event = {**dict(base), name: probe}
        source = json_source(stream, event) if stream else elastic_source(event)
        hits = [
            k
            for k, vs in source.items()
            if found in vs and k not in ("event.code", "winlog.event_id") and not conditional(base, k)
        ]
        if hits:
            return tuple(sorted(hits, key=lambda k: k.startswith("winlog.event_data.")))
    return ()


def elastic_names(channel: str, event_id: int | None, name: str) -> tuple[str, ...]:
    """:func:`source_names` for an event-log record of that channel and event id."""
    return source_names(channel_base(channel, event_id), name)


def elastic_name(channel: str, event_id: int | None, name: str) -> str | None:
    """The first of :func:`elastic_names`, or None."""
    names = elastic_names(channel, event_id, name)
    return names[0] if names else None


@cache
def parsed_away(channel: str, name: str) -> str | None:
    """The field an integration parses into parts for that channel (Sysmon's ``Hashes`` into
    ``<prefix>.<algorithm>``), as the prefix; None for others."""
    spec = _windows()["channels"].get(channel) or {}
    for event in [spec.get("all") or {}, *(spec.get("events") or {}).values()]:
        if name in (event.get("hashes") or {}):
            return str(event["hashes"][name])
    return None


def unnamed_data(base: Base, name: str) -> str | None:
    """The prefix the agent names unnamed Data elements with, when ``name`` is the flat field that
    holds them for an event-log source (None otherwise)."""
    unnamed = _windows().get("unnamed_data") or {}
    return str(unnamed["prefix"]) if "Channel" in dict(base) and name == unnamed.get("field") else None


@cache
def split_account(base: Base, name: str) -> tuple[str, str] | None:
    """(domain field, name field) when the integration splits ``name`` (``DOMAIN\\user``) into two
    fields for the source's events, keeping neither the whole value nor a value without a domain."""
    fields = dict(base)
    channel = _windows()["channels"].get(str(fields.get("Channel")))
    if channel is None:
        return None
    for spec in _specs(channel, fields.get("EventID"), _windows()["groups"]):
        if name in (spec.get("user") or {}):
            domain, user = spec["user"][name]
            return str(domain), str(user)
    return None


@cache
def shared_with(base: Base, name: str) -> tuple[str, tuple[str, ...]] | None:
    """(target, the other names) when one mapping of an event moves ``name`` and another of its
    fields to one field (Sysmon 3's SourcePortName and DestinationPortName to network.protocol):
    the value there is either's and neither stays under ``winlog.event_data``. None otherwise."""
    fields = dict(base)
    channel = _windows()["channels"].get(str(fields.get("Channel")))
    if channel is None:
        return None
    for spec in _specs(channel, fields.get("EventID"), _windows()["groups"]):
        renames = spec.get("rename") or {}
        if name in renames:
            others = tuple(sorted(raw for raw, target in renames.items() if target == renames[name] and raw != name))
            if others:
                return str(renames[name]), others
    return None


@cache
def value_maps() -> dict[str, dict[str, str]]:
    """ECS field -> {event value, lower-cased: the value the integration stores} for fields whose
    values an integration replaces (Sysmon's ``Initiated: true`` -> ``network.direction: egress``)."""
    out: dict[str, dict[str, str]] = {}
    for stream in _streams().values():
        for path, mapping in (stream.get("values") or {}).items():
            rest = [f"{stream['rest']}.{path}"] if stream.get("rest") else []
            for target in stream["fields"].get(path, rest):
                out.setdefault(target, {}).update({str(k).lower(): str(v) for k, v in mapping.items()})
    for channel in _windows()["channels"].values():
        for spec in [channel.get("all") or {}, *(channel.get("events") or {}).values()]:
            for name, mapping in (spec.get("values") or {}).items():
                target = (spec.get("rename") or {}).get(name) or (spec.get("copy") or {}).get(name)
                if target:
                    out.setdefault(target, {}).update({str(k).lower(): str(v) for k, v in mapping.items()})
    return out

"""Nested event shapes -> one flat dict of field -> value.

Windows events arrive as the ``{"Event": {"System": ..., "EventData": ...}}``
tree the ``evtx`` parser (and our XML reader) produce, or as winlogbeat/ECS
JSON; other JSON is flattened the way Splunk names fields (``a.b`` for nested
objects, ``a{}.b`` inside arrays), so the same names work on both sides of a
parity check.
"""

from __future__ import annotations

from typing import Any

Flat = dict[str, Any]

ATTRS = "#attributes"
TEXT = "#text"


def flatten_windows(event: dict[str, Any]) -> Flat:
    """An ``Event`` tree -> flat fields with Sigma's Windows names (EventID, Channel, Provider_Name, ...)."""
    out: Flat = {}
    system = event.get("System") or {}
    provider = _attrs(system.get("Provider"))
    if "Name" in provider:
        out["Provider_Name"] = provider["Name"]
    if "Guid" in provider:
        out["Provider_Guid"] = provider["Guid"]
    event_id = system.get("EventID")
    if isinstance(event_id, dict):  # {"#attributes": {"Qualifiers": 16384}, "#text": 7045}
        qualifiers = _attrs(event_id).get("Qualifiers")
        if qualifiers not in (None, ""):
            out["Qualifiers"] = qualifiers
        event_id = event_id.get(TEXT)
    if event_id is not None:
        out["EventID"] = _int(event_id)
    for key in ("Version", "Level", "Task", "Opcode", "Keywords", "EventRecordID", "Channel", "Computer"):
        value = system.get(key)
        if value is not None and not isinstance(value, dict):
            out[key] = value
    created = _attrs(system.get("TimeCreated")).get("SystemTime")
    if created:
        out["TimeCreated"] = created
    execution = _attrs(system.get("Execution"))
    for key in ("ProcessID", "ThreadID"):
        if key in execution:
            out[f"Execution_{key}"] = execution[key]
    correlation = _attrs(system.get("Correlation"))
    if correlation.get("ActivityID"):
        out["ActivityID"] = correlation["ActivityID"]
    user = _attrs(system.get("Security")).get("UserID")
    event_data = event.get("EventData")
    if isinstance(event_data, dict):
        _event_data(event_data, out)
    elif event_data not in (None, ""):
        out["Data"] = event_data
    user_data = event.get("UserData")
    if isinstance(user_data, dict):
        for inner in user_data.values():  # one wrapper element named after the event
            if isinstance(inner, dict):
                _leaves(inner, out)
    if user and "UserID" not in out:
        out["UserID"] = user
    return out


def _event_data(data: dict[str, Any], out: Flat) -> None:
    for key, value in data.items():
        if key == ATTRS:
            continue
        if key == "Data":  # unnamed <Data> elements: one value or a list
            if isinstance(value, list):
                out["Data"] = [_text(v) for v in value]
            elif value is not None:
                out["Data"] = _text(value)
            continue
        if key == "Binary" and value is None:
            continue
        out[key] = _text(value) if value is not None else ""


def _leaves(node: dict[str, Any], out: Flat) -> None:
    for key, value in node.items():
        if key == ATTRS:
            continue
        if isinstance(value, dict) and TEXT not in value:
            _leaves(value, out)
        elif key not in out:
            out[key] = _text(value) if value is not None else ""


def flatten_winlogbeat(doc: dict[str, Any]) -> Flat:
    """A winlogbeat / ECS document -> the same flat Windows names as :func:`flatten_windows`."""
    winlog = doc.get("winlog") or {}
    out: Flat = {}
    for key, value in (winlog.get("event_data") or {}).items():
        out[key] = value
    for key, value in (winlog.get("user_data") or {}).items():
        out.setdefault(key, value)
    mapping = {
        "event_id": "EventID",
        "channel": "Channel",
        "computer_name": "Computer",
        "provider_name": "Provider_Name",
        "provider_guid": "Provider_Guid",
        "record_id": "EventRecordID",
        "task": "Task",
        "opcode": "Opcode",
        "version": "Version",
    }
    for src, dst in mapping.items():
        if winlog.get(src) is not None:
            out[dst] = _int(winlog[src]) if dst == "EventID" else winlog[src]
    user = (winlog.get("user") or {}).get("identifier")
    if user and "UserID" not in out:
        out["UserID"] = user
    if doc.get("@timestamp"):
        out["TimeCreated"] = doc["@timestamp"]
    return out


def flatten_json(doc: Any, prefix: str = "", out: Flat | None = None) -> Flat:
    """Generic JSON -> Splunk-style names: ``a.b`` for objects, ``a{}.b`` (multivalue) inside arrays."""
    out = {} if out is None else out
    if isinstance(doc, dict):
        for key, value in doc.items():
            flatten_json(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(doc, list):
        for item in doc:
            if isinstance(item, dict | list):
                flatten_json(item, prefix + "{}", out)
            else:
                _add(out, prefix + "{}", item)
    elif prefix:
        _add(out, prefix, doc)
    return out


def _add(out: Flat, key: str, value: Any) -> None:
    """Set ``key``, turning a second value into a multivalue list (as Splunk does)."""
    if key not in out:
        out[key] = value
    elif isinstance(out[key], list):
        out[key].append(value)
    else:
        out[key] = [out[key], value]


def _attrs(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        attrs = node.get(ATTRS)
        return attrs if isinstance(attrs, dict) else {}
    return {}


def _text(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get(TEXT, "")
    return value


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value

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


_SYSTEM_SCALARS = ("Version", "Level", "Task", "Opcode", "Keywords", "EventRecordID", "Channel", "Computer")


def flatten_windows(event: dict[str, Any]) -> Flat:
    """An ``Event`` tree -> flat fields with Sigma's Windows names (EventID, Channel, Provider_Name, ...).

    Written for speed (it runs once per record): attribute dicts are read inline.
    """
    out: Flat = {}
    system = event.get("System") or {}
    get = system.get
    provider = get("Provider")
    if type(provider) is dict and (attrs := provider.get(ATTRS)):
        if "Name" in attrs:
            out["Provider_Name"] = attrs["Name"]
        if "Guid" in attrs:
            out["Provider_Guid"] = attrs["Guid"]
    event_id = get("EventID")
    if type(event_id) is dict:  # {"#attributes": {"Qualifiers": 16384}, "#text": 7045}
        qualifiers = _attrs(event_id).get("Qualifiers")
        if qualifiers not in (None, ""):
            out["Qualifiers"] = qualifiers
        event_id = event_id.get(TEXT)
    if event_id is not None:
        out["EventID"] = event_id if type(event_id) is int else _int(event_id)
    for key in _SYSTEM_SCALARS:
        value = get(key)
        if value is not None and type(value) is not dict:
            out[key] = value
    created = get("TimeCreated")
    if type(created) is dict and (attrs := created.get(ATTRS)) and attrs.get("SystemTime"):
        out["TimeCreated"] = attrs["SystemTime"]
    execution = get("Execution")
    if type(execution) is dict and (attrs := execution.get(ATTRS)):
        # Splunk's names for the System/Execution attributes (Sysmon's own ProcessId differs in case)
        if "ProcessID" in attrs:
            out["ProcessID"] = attrs["ProcessID"]
        if "ThreadID" in attrs:
            out["ThreadID"] = attrs["ThreadID"]
    correlation = get("Correlation")
    if type(correlation) is dict and (attrs := correlation.get(ATTRS)) and attrs.get("ActivityID"):
        out["ActivityID"] = attrs["ActivityID"]
    security = get("Security")
    user = security.get(ATTRS, {}).get("UserID") if type(security) is dict else None
    event_data = event.get("EventData")
    if type(event_data) is dict:
        _event_data(event_data, out)
    elif event_data not in (None, ""):
        out["Data"] = event_data
    user_data = event.get("UserData")
    if type(user_data) is dict:
        for inner in user_data.values():  # one wrapper element named after the event
            if type(inner) is dict:
                _leaves(inner, out)
    if user and "UserID" not in out:
        out["UserID"] = user
    return out


def _event_data(data: dict[str, Any], out: Flat) -> None:
    for key, value in data.items():
        kind = type(value)
        if kind is str or kind is int:  # the common case: a named <Data> with text
            out[key] = value
        elif key == ATTRS:
            continue
        elif key == "Data":  # unnamed <Data> elements: one value or a list
            if kind is list:
                out["Data"] = [_text(v) for v in value]
            elif value is not None:
                out["Data"] = _text(value)
        elif value is None:
            if key != "Binary":
                out[key] = ""
        else:
            out[key] = _text(value)


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

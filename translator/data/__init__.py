"""Mapping tables as data (YAML), read through :func:`load_table`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load_table(name: str) -> dict[str, Any]:
    """Load ``translator/data/<name>.yml`` once per process."""
    text = resources.files(__package__).joinpath(f"{name}.yml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"data table {name}.yml must be a mapping")
    return data


@dataclass(frozen=True)
class AddonAlias:
    """A field a Splunk add-on names for raw JSON paths: the first present of ``paths`` (one path: a
    FIELDALIAS), or, when ``computed`` says how, an eval or lookup no path list expresses."""

    name: str
    paths: tuple[str, ...] = ()
    computed: str | None = None


@cache
def addon_aliases(sourcetype: str) -> dict[str, AddonAlias]:
    """The add-on fields of a JSON sourcetype's events (``data/splunk_events.yml``, json_aliases)."""
    table = (load_table("splunk_events").get("json_aliases") or {}).get(sourcetype.lower()) or {}
    out: dict[str, AddonAlias] = {}
    for name, spec in table.items():
        if isinstance(spec, str):
            out[name] = AddonAlias(name, (spec,))
        elif "coalesce" in spec:
            out[name] = AddonAlias(name, tuple(spec["coalesce"]))
        else:
            out[name] = AddonAlias(name, (), str(spec["computed"]))
    return out


# Keys of data/logsources.yml a user's mapping file may set (``--logsources FILE``): mappings add to or
# replace the built-in entries of the same name; ``categories`` rows replace every built-in row of
# their category.
LOGSOURCE_MAPPING_KEYS = ("sourcetypes", "eventtypes", "windows_channels", "event_field_maps", "extra_channels")
LOGSOURCE_OVERRIDE_KEYS = (*LOGSOURCE_MAPPING_KEYS, "categories")

_logsource_overrides: dict[str, Any] = {}
_merged: dict[str, Any] | None = None


def set_logsource_overrides(data: dict[str, Any]) -> None:
    """Merge a user's logsource mappings over the built-in table (``data/logsources.yml``'s keys).

    Raises ValueError naming what is wrong, for the CLI to report as bad usage.
    """
    global _merged
    if not isinstance(data, dict):
        raise ValueError("a logsource mapping file must be a YAML mapping")
    unknown = set(data) - set(LOGSOURCE_OVERRIDE_KEYS)
    if unknown:
        raise ValueError(
            f"unknown logsource table keys: {', '.join(sorted(unknown))} (known: {', '.join(LOGSOURCE_OVERRIDE_KEYS)})"
        )
    for key in LOGSOURCE_MAPPING_KEYS:
        if not isinstance(data.get(key, {}), dict):
            raise ValueError(f"logsource mapping {key!r} must be a mapping")
        for name, ls in data.get(key, {}).items():
            if key in ("sourcetypes", "eventtypes", "windows_channels") and not (
                isinstance(ls, dict) and ls and set(ls) <= {"product", "category", "service"}
            ):
                raise ValueError(f"{key}: {name!r} must map to a Sigma logsource (product, category, service)")
    if not isinstance(data.get("categories", []), list):
        raise ValueError("logsource mapping 'categories' must be a list of rows")
    _logsource_overrides.clear()
    _logsource_overrides.update(data)
    _merged = None


def logsource_overrides() -> dict[str, Any]:
    """The user's mappings in force (handed to worker processes)."""
    return dict(_logsource_overrides)


def logsource_table() -> dict[str, Any]:
    """``data/logsources.yml`` with the user's mappings merged in: the one view every reader uses."""
    global _merged
    if _merged is None:
        base = load_table("logsources")
        table = dict(base)
        for key in LOGSOURCE_MAPPING_KEYS:
            table[key] = {**base.get(key, {}), **_logsource_overrides.get(key, {})}
        mine = list(_logsource_overrides.get("categories", []))
        replaced = {row.get("category") for row in mine if isinstance(row, dict)}
        table["categories"] = mine + [row for row in base["categories"] if row["category"] not in replaced]
        _merged = table
    return _merged

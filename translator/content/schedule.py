"""When a detection runs and over which time range: the window a threshold counts in.

A scheduled search counts over its dispatch window (``earliest_time`` to ``latest_time``): the
Sigma correlation's timespan. The content states it in one of several shapes, read in this order:
the detection's own keys (``deployment.scheduling``, ``scheduling``, top-level
``earliest_time``/``latest_time``, or a saved search's ``dispatch.earliest_time``); the content's
``deployments/*.yml`` for the detection's type; for a contentctl project that ships no deployments,
contentctl's built-in defaults per type (``data/schedules.yml``). Without any, there is no window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from translator.data import load_table

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ALIASES = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s", "min": "m", "mins": "m", "minute": "m",
    "minutes": "m", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "day": "d", "days": "d",
    "week": "w", "weeks": "w",
}  # fmt: skip
_RELATIVE = re.compile(r"^(?:([+-]\d*)\s*([a-z]+))?(?:@([a-z]+))?$")


@dataclass(frozen=True)
class Schedule:
    earliest: str
    latest: str = "now"
    cron: str = ""
    origin: str = ""  # where it was read, for the report

    def window(self) -> str | None:
        """The dispatch window as a Sigma timespan (``60m``), or None when it has no fixed length."""
        start, end = _offset(self.earliest), _offset(self.latest)
        if start is None or end is None or start[1] != end[1] or end[0] <= start[0]:
            return None  # unreadable, snapped to different units, or empty
        seconds = end[0] - start[0]
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"

    def every(self) -> str | None:
        """How often the cron schedule runs, as a timespan (``*/5 * * * *`` -> ``5m``, ``0 * * * *`` ->
        ``1h``, ``0 3 * * *`` -> ``1d``), or None when it does not run at a fixed interval."""
        parts = self.cron.split()
        if len(parts) != 5 or parts[2:] != ["*", "*", "*"]:
            return None
        minute, hour = parts[:2]
        step = re.fullmatch(r"(?:\*|0)/(\d+)", minute)
        if step and hour == "*":
            return f"{int(step.group(1))}m" if 60 % int(step.group(1)) == 0 else None
        if minute.isdigit():
            if hour == "*":
                return "1h"
            hstep = re.fullmatch(r"(?:\*|0)/(\d+)", hour)
            if hstep:
                return f"{int(hstep.group(1))}h" if 24 % int(hstep.group(1)) == 0 else None
            if hour.isdigit():
                return "1d"
        return None


def _offset(text: str) -> tuple[int, str] | None:
    """(seconds relative to now, snap unit) of a Splunk relative time: ``-70m@m``, ``-1d@d``, ``now``."""
    t = str(text).strip().lower()
    if t in ("now", "", "0"):
        return 0, ""
    m = _RELATIVE.match(t)
    if m is None:
        return None
    amount, unit, snap = m.groups()
    seconds = 0
    if unit is not None:
        unit = _ALIASES.get(unit, unit)
        if unit not in _UNITS:
            return None
        n = amount[1:] if amount else ""
        count = int(n) if n else 1
        seconds = (count if amount and amount[0] == "+" else -count) * _UNITS[unit]
    snap_unit = _ALIASES.get(snap, snap) if snap else ""
    if snap_unit and snap_unit not in _UNITS:
        return None
    return seconds, snap_unit


def detection_schedule(raw: Mapping[str, Any], origin: str = "the detection") -> Schedule | None:
    """The schedule a detection (or saved search) states itself, in any of the shapes it takes."""
    candidates: list[Any] = [raw]
    for path in (("deployment", "scheduling"), ("scheduling",), ("deployment",), ("schedule",)):
        node: Any = raw
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        candidates.append(node)
    for node in candidates:
        if not isinstance(node, Mapping):
            continue
        earliest = node.get("earliest_time", node.get("dispatch.earliest_time"))
        if isinstance(earliest, str | int) and str(earliest).strip():
            latest = node.get("latest_time", node.get("dispatch.latest_time", "now"))
            cron = node.get("cron_schedule", "")
            return Schedule(str(earliest), str(latest or "now"), str(cron or ""), origin)
    return None


def deployment_schedules(root: Path | None, files: Mapping[Path, Any]) -> dict[str, Schedule]:
    """Per detection type (lower case), the scheduling the content's ``deployments/*.yml`` give;
    for a contentctl project without them, contentctl's defaults. ``files``: path -> parsed YAML."""
    out: dict[str, Schedule] = {}
    for path, data in sorted(files.items()):
        if not isinstance(data, Mapping):
            continue
        kind = str(data.get("type") or "").strip().lower()
        found = detection_schedule(data, f"{path.name} (deployment for type {data.get('type')})")
        if kind and found is not None:
            out.setdefault(kind, found)
    if not out and root is not None and (root / "contentctl.yml").is_file():
        for kind, spec in load_table("schedules")["contentctl_defaults"].items():
            out[kind.lower()] = Schedule(
                spec["earliest_time"], spec["latest_time"], spec.get("cron_schedule", ""),
                f"contentctl's default deployment for type {kind}",
            )  # fmt: skip
    return out


def schedule_for(raw: Mapping[str, Any], by_type: Mapping[str, Schedule]) -> Schedule | None:
    """A detection's schedule: its own, else its type's deployment."""
    own = detection_schedule(raw)
    if own is not None:
        return own
    return by_type.get(str(raw.get("type") or "").strip().lower())

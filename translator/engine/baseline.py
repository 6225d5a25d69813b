"""Accepted parity results, so a CI gate fails only when something gets worse.

A baseline file lists, per detection (its id, or its file when it has none), the parity status,
the conversion status and the number of events only the original selected that a team accepted,
with the reason they accepted it. Against it a run is judged per ``--fail-on`` category:

- ``differ``: a detection differs that did not (``equal`` -> ``differ``);
- ``only_original``: more events only the original selects (the rule misses what it caught);
- ``partial`` / ``unsupported``: the conversion fell to that status (``exact`` -> ``partial``);
- ``error``: a step failed on a detection where none did.

A detection the baseline does not list is judged on its own status. Results better than the
baseline, and entries no detection of the run matches, are listed as "can be tightened".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from translator.errors import TranslatorError

CATEGORIES = ("differ", "only_original", "partial", "unsupported", "error")
DEFAULT_FAIL_ON = ("differ", "error")
_PARITY_RANK = {"equal": 0, "untested": 1, "not_evaluable": 2, "differ": 3, "error": 4}
_CONVERSION_RANK = {"exact": 0, "partial": 1, "unsupported": 2, "error": 3, "": 0}


class BaselineError(TranslatorError):
    """A baseline file that cannot be read."""


@dataclass(frozen=True)
class Entry:
    status: str
    conversion: str = ""
    only_original: int = 0
    reason: str = ""


@dataclass
class Verdict:
    worse: list[str] = field(default_factory=list)  # what fails the run, one line each
    tighter: list[str] = field(default_factory=list)  # better than accepted: the baseline can be tightened
    stale: list[str] = field(default_factory=list)  # accepted entries no detection of the run matches

    def to_json(self) -> dict[str, list[str]]:
        return {"worse": self.worse, "can_be_tightened": self.tighter, "stale": self.stale}


def key(result: Any) -> str:
    """How a detection is named in a baseline: its id, else its file."""
    return str(result.id or result.file)


def observed(result: Any) -> Entry:
    return Entry(result.status, result.conversion, len(result.only_original))


def load(path: Path) -> dict[str, Entry]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc}") from exc
    detections = data.get("detections") if isinstance(data, dict) else None
    if not isinstance(detections, dict):
        raise BaselineError(f"{path}: a baseline needs a `detections` mapping (write one with --write-baseline)")
    out = {}
    for name, spec in detections.items():
        if not isinstance(spec, dict) or spec.get("status") not in _PARITY_RANK:
            raise BaselineError(f"{path}: detection {name!r} needs a parity `status` ({', '.join(_PARITY_RANK)})")
        try:
            count = int(spec.get("only_original", 0))
        except (TypeError, ValueError):
            raise BaselineError(f"{path}: detection {name!r}: `only_original` is a number of events") from None
        out[str(name)] = Entry(str(spec["status"]), str(spec.get("conversion", "")), count, str(spec.get("reason", "")))
    return out


def dump(results: Iterable[Any], path: Path) -> str:
    """The run's results as a baseline (YAML, or JSON for a ``.json`` path); reasons say what was seen."""
    detections: dict[str, dict[str, Any]] = {}
    for r in results:
        seen = observed(r)
        reason = "; ".join(r.reasons[:1]) or f"{seen.status} when the baseline was written"
        detections[key(r)] = {
            "name": r.name,
            "status": seen.status,
            "conversion": seen.conversion,
            "only_original": seen.only_original,
            "reason": reason,
        }
    data = {"version": 1, "detections": detections}
    if path.suffix == ".json":
        return json.dumps(data, indent=2) + "\n"
    head = "# translate parity baseline: accepted results per detection (edit `reason` to say why)\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def failures(seen: Entry, fail_on: Iterable[str], accepted: Entry | None = None) -> list[str]:
    """The ``fail_on`` categories a result falls in: on its own, or (with ``accepted``) newly."""
    base = accepted or Entry("equal", "exact", 0)
    out = []
    for category in fail_on:
        if category == "differ":
            hit = seen.status == "differ" and _PARITY_RANK[base.status] < _PARITY_RANK["differ"]
        elif category == "only_original":
            hit = seen.only_original > base.only_original
        elif category in ("partial", "unsupported"):
            hit = seen.conversion == category and _CONVERSION_RANK[base.conversion] < _CONVERSION_RANK[category]
        else:  # error
            hit = "error" in (seen.status, seen.conversion) and "error" not in (base.status, base.conversion)
        if hit:
            out.append(category)
    return out


def judge(results: Iterable[Any], accepted: Mapping[str, Entry] | None, fail_on: Iterable[str]) -> Verdict:
    fail_on = tuple(fail_on)
    verdict = Verdict()
    matched: set[str] = set()
    for r in results:
        name, seen = key(r), observed(r)
        entry = accepted.get(name) if accepted is not None else None
        if entry is not None:
            matched.add(name)
        for category in failures(seen, fail_on, entry):
            was = f" (accepted: {_describe(entry)})" if entry else ""
            verdict.worse.append(f"{r.name or r.file}: {category}: {_describe(seen)}{was}")
        if entry is not None and _better(seen, entry):
            verdict.tighter.append(f"{r.name or r.file}: now {_describe(seen)} (accepted: {_describe(entry)})")
    if accepted is not None:
        verdict.stale = [f"{name}: no such detection in this run" for name in accepted if name not in matched]
    return verdict


def _better(seen: Entry, entry: Entry) -> bool:
    return (
        _PARITY_RANK[seen.status] < _PARITY_RANK[entry.status]
        or _CONVERSION_RANK.get(seen.conversion, 0) < _CONVERSION_RANK.get(entry.conversion, 0)
        or seen.only_original < entry.only_original
    )


def _describe(e: Entry) -> str:
    extra = f", {e.only_original} only in the original" if e.only_original else ""
    return f"{e.status}, {e.conversion or 'no conversion'}{extra}"


def parse_fail_on(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown or not names:
        raise BaselineError(f"--fail-on takes a comma-separated list of {', '.join(CATEGORIES)}")
    return names

"""ESCU detection metadata -> Sigma rule metadata, driven by data tables."""

from __future__ import annotations

import re
import uuid
from typing import Any

from translator.content import Detection
from translator.data import load_table

_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$", re.IGNORECASE)


def attack_tags(technique_ids: list[str]) -> list[str]:
    """Sigma ATT&CK tags: tactics first (from the local table), then techniques."""
    table = load_table("attack")["techniques"]
    tactics: list[str] = []
    techniques: list[str] = []
    for raw in technique_ids:
        tid = str(raw).strip().upper()
        if not _TECHNIQUE.match(tid):
            continue
        for tactic in table.get(tid.split(".")[0], []):
            if f"attack.{tactic}" not in tactics:
                tactics.append(f"attack.{tactic}")
        tag = f"attack.{tid.lower()}"
        if tag not in techniques:
            techniques.append(tag)
    return tactics + techniques


def risk_score(det: Detection) -> float | None:
    tags = det.tags
    if isinstance(tags.get("risk_score"), int | float):
        return float(tags["risk_score"])
    rba = det.raw.get("rba")
    if isinstance(rba, dict):
        scores = [o.get("score") for o in rba.get("risk_objects") or [] if isinstance(o, dict)]
        nums = [float(s) for s in scores if isinstance(s, int | float)]
        if nums:
            return max(nums)
    impact, confidence = tags.get("impact"), tags.get("confidence")
    if isinstance(impact, int | float) and isinstance(confidence, int | float):
        return impact * confidence / 100
    return None


def level(det: Detection) -> str:
    table = load_table("metadata")
    score = risk_score(det)
    if score is None:
        return str(table["default_level"])
    for row in table["levels"]:
        if score >= row["min"]:
            return str(row["level"])
    return str(table["default_level"])


# words SigmaHQ leaves in lower case inside a title
_SMALL_WORDS = frozenset(load_table("metadata")["title_small_words"])


def sigma_title(name: str) -> str:
    """ESCU name -> Sigma title in SigmaHQ's style: no leading "Detect(s)", words capitalised."""
    words = name.split(" ")
    if len(words) > 1 and words[0] in ("Detect", "Detects"):
        words = words[1:]
    out = []
    for i, w in enumerate(words):
        plain = w.islower() and not ({".", "/", "_"} & set(w)) and not w[:1].isdigit()
        out.append(w[0].upper() + w[1:] if plain and (i == 0 or w not in _SMALL_WORDS) else w)
    return " ".join(out)


def sigma_metadata(det: Detection) -> tuple[dict[str, Any], list[str]]:
    """(metadata keys in Sigma's conventional order, notes on anything left out)."""
    raw = det.raw
    notes: list[str] = []
    meta: dict[str, Any] = {"title": sigma_title(det.name)}
    try:
        meta["id"] = str(uuid.UUID(det.id))
    except ValueError:
        if det.id:  # a saved search's app/stanza: the same UUID on every run
            meta["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"splunk-search:{det.id}"))
            notes.append(f"id {meta['id']} derived from {det.id!r} (not a UUID)")
        else:
            notes.append("the detection has no id; the Sigma rule has none")
    status = load_table("metadata")["status"].get(det.status)
    if status:
        meta["status"] = status
    if isinstance(raw.get("description"), str):
        meta["description"] = raw["description"].strip()
    refs = raw.get("references")
    if isinstance(refs, list) and refs:
        # ATT&CK pages are carried by the tags; SigmaHQ keeps them out of references
        kept = list(dict.fromkeys(str(r) for r in refs if "attack.mitre.org" not in str(r)))
        if kept:
            meta["references"] = kept
    if isinstance(raw.get("author"), str):
        meta["author"] = raw["author"]
    created = raw.get("date") or raw.get("creation_date")
    if created:
        meta["date"] = str(created).replace("/", "-")
    modified = raw.get("modification_date")
    if modified and str(modified) != str(created):
        meta["modified"] = str(modified).replace("/", "-")
    ids = det.tag("mitre_attack_id")
    tags = attack_tags([str(i) for i in ids] if isinstance(ids, list) else [])
    if tags:
        meta["tags"] = tags
    fps = raw.get("known_false_positives")
    if isinstance(fps, str) and fps.strip():
        text = fps.strip()
        meta["falsepositives"] = [text[0].upper() + text[1:]]
    meta["level"] = level(det)
    return meta, notes

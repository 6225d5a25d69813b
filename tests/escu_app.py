"""Build a Splunk app from an ESCU content tree, the way the ESCU app ships detections (a test helper).

``savedsearches.conf`` gets a stanza ``ESCU - NAME - Rule`` per detection (search with backslash
line continuations, description, the hourly schedule, ATT&CK ids in the correlation-search
annotations, the data sources in ``action.escu.data_source``, disabled as ESCU ships them);
``macros.conf`` a stanza per macro (``name(N)`` with ``args``); ``transforms.conf`` a stanza per CSV
lookup, with the CSV copied into ``lookups/``. Usage: ``python tests/escu_app.py ESCU_ROOT APP_DIR``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from translator.content import iter_detection_files, load_content, load_detection


def conf_value(text: str) -> str:
    """A value written over several lines: each line but the last ends with a backslash."""
    return " \\\n".join(text.strip().splitlines())


def build_app(root: Path, app: Path) -> dict[str, Path]:
    """Write the app; returns stanza name -> the detection file it came from."""
    default = app / "default"
    default.mkdir(parents=True, exist_ok=True)
    (app / "lookups").mkdir(exist_ok=True)
    stanzas: dict[str, Path] = {}
    saved: list[str] = ["# built from an ESCU content tree by tests/escu_app.py\n"]
    for path in iter_detection_files(root):
        det = load_detection(path)
        name = f"ESCU - {det.name} - Rule"
        stanzas[name] = path
        tags = det.tags
        annotations = {"mitre_attack": list(tags.get("mitre_attack_id") or [])}
        saved += [
            f"[{name}]",
            f"search = {conf_value(det.search)}",
            f"description = {conf_value(str(det.raw.get('description', '')))}",
            "cron_schedule = 0 * * * *",
            "dispatch.earliest_time = -70m@m",
            "dispatch.latest_time = -10m@m",
            f"action.correlationsearch.annotations = {json.dumps(annotations)}",
            f"action.escu.data_source = {json.dumps(det.data_sources)}",
            "disabled = true",
            "",
        ]
    (default / "savedsearches.conf").write_text("\n".join(saved), encoding="utf-8")
    content = load_content(root)
    macros = []
    for (mname, arity), macro in sorted(content.macros.items()):
        stanza = f"{mname}({arity})" if arity else mname
        macros.append(f"[{stanza}]")
        if macro.arguments:
            macros.append(f"args = {', '.join(macro.arguments)}")
        macros += [f"definition = {conf_value(macro.definition)}", ""]
    (default / "macros.conf").write_text("\n".join(macros), encoding="utf-8")
    transforms = []
    for name, lookup in sorted(content.lookups.items()):
        if not lookup.path.is_file():
            continue
        shutil.copy(lookup.path, app / "lookups" / lookup.path.name)
        transforms += [f"[{name}]", f"filename = {lookup.path.name}"]
        if lookup.wildcard_fields:
            transforms.append("match_type = " + ", ".join(f"WILDCARD({f})" for f in sorted(lookup.wildcard_fields)))
        transforms.append(f"case_sensitive_match = {str(lookup.case_sensitive).lower()}")
        if lookup.default is not None:
            transforms += [f"default_match = {lookup.default}", "min_matches = 1"]
        transforms.append("")
    (default / "transforms.conf").write_text("\n".join(transforms), encoding="utf-8")
    return stanzas


if __name__ == "__main__":
    build_app(Path(sys.argv[1]), Path(sys.argv[2]))

"""ATT&CK data for backends that look it up (Elastic's rule formats build a rule's ``threat``
section from it), made from the project's own tables so that nothing is downloaded.

pySigma loads ATT&CK on first use from a STIX bundle it would fetch from GitHub; it also reads a
local file (``set_url``). We write a minimal bundle there: the tactics of ``data/attack.yml``, each
technique it names with its tactics, and technique names from the ATT&CK name list the Databricks
backend (a dependency) ships; a technique without a name there is named by its id.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from translator.data import load_table
from translator.emit.writer import write_atomic


def _technique_names() -> dict[str, str]:
    try:
        text = resources.files("sigma.backends.databricks").joinpath("mitre_techniques.json").read_text("utf-8")
        names = json.loads(text)
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError):
        return {}
    return {str(k).upper(): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


def stix_bundle() -> dict[str, Any]:
    """The ATT&CK objects pySigma reads, as a STIX bundle."""
    table = load_table("attack")
    names = _technique_names()
    objects: list[dict[str, Any]] = [{"type": "x-mitre-collection", "x_mitre_version": "translator tables"}]
    for shortname, tactic_id in table["tactic_ids"].items():
        objects.append({
            "type": "x-mitre-tactic",
            "x_mitre_shortname": shortname,
            "external_references": [{"source_name": "mitre-attack", "external_id": tactic_id}],
        })  # fmt: skip
    phases = {str(t).upper(): tactics for t, tactics in table["techniques"].items()}
    for technique in sorted(set(names) | set(phases)):
        tactics = phases.get(technique) or phases.get(technique.split(".")[0], [])
        objects.append({
            "type": "attack-pattern",
            "name": names.get(technique, technique),
            "external_references": [{"source_name": "mitre-attack", "external_id": technique}],
            "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": t} for t in tactics],
        })  # fmt: skip
    return {"type": "bundle", "objects": objects}


@cache
def install() -> Path:
    """Point pySigma's ATT&CK loader at a bundle of ours (written once per content) and a private cache."""
    from sigma.data import mitre_attack

    text = json.dumps(stix_bundle(), sort_keys=True)
    folder = Path(tempfile.gettempdir()) / f"translator-attack-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    bundle = folder / "enterprise-attack.json"
    if not bundle.is_file():
        write_atomic(bundle, text)  # worker processes may race here: each renames its own temporary file
    mitre_attack.set_cache_dir(str(folder / "cache"))
    mitre_attack.set_url(str(bundle))
    return bundle

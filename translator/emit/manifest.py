"""What a convert run wrote, so the next run into the same folder leaves it matching its results.

Each output folder (``--rules-out``, ``--out``) keeps ``.translate-manifest.json``: the inputs the
run was given and, per detection (its output path without suffix) and per kind of output (``sigma``
or a target's name), the files written, relative to the folder. A later run removes, for each kind
it produces, the files an earlier run wrote for a detection it converts again but no longer
produces (a rule that became unsupported, a target that now fails) and, when it is given the same
inputs, those of detections that are gone. Other kinds are left alone (a run `--to kusto` keeps
an earlier run's Splunk queries), and so is every file no manifest lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from translator.emit.writer import write_atomic

NAME = ".translate-manifest.json"
Written = Mapping[str, Mapping[str, Iterable[Path]]]  # detection -> kind -> files


def sync(
    root: Path, inputs: Iterable[str], written: Written, converted: Iterable[str], kinds: Iterable[str]
) -> list[Path]:
    """Record what this run wrote under ``root`` and remove what it replaces; returns the files removed.

    ``converted``: every detection of this run, with or without files; ``kinds``: the kinds of
    output this run produces into ``root``.
    """
    inputs, kinds = sorted(str(i) for i in inputs), set(kinds)
    old = _read(root / NAME)
    same_inputs = old.get("inputs") == inputs
    covered = set(converted)
    now = {
        key: {kind: sorted(_relative(root, p) for p in files) for kind, files in by_kind.items() if files}
        for key, by_kind in written.items()
    }
    removed: list[Path] = []
    merged: dict[str, dict[str, list[str]]] = {}
    for key, by_kind in (old.get("files") or {}).items():
        for kind, files in (by_kind or {}).items():
            if kind in kinds and (key in covered or same_inputs):
                for rel in set(files) - set(now.get(key, {}).get(kind, [])):
                    removed.extend(_remove(root, rel))
            else:
                merged.setdefault(key, {})[kind] = files  # not this run's to judge
    for key, by_kind in now.items():
        merged.setdefault(key, {}).update(by_kind)
    merged = {k: dict(sorted(v.items())) for k, v in sorted(merged.items()) if v}
    if merged or (root / NAME).exists():
        write_atomic(root / NAME, json.dumps({"inputs": inputs, "files": merged}, indent=1) + "\n")
    return removed


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _relative(root: Path, path: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def _remove(root: Path, rel: str) -> list[Path]:
    """Remove one listed file (never outside ``root``) and the folders it leaves empty."""
    base = root.resolve()
    path = (base / rel).resolve()
    if base not in path.parents or not path.is_file():
        return []
    path.unlink()
    parent = path.parent
    while parent != base and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return [path]

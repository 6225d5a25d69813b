"""What a convert run wrote, so the next run into the same folder leaves it matching its results.

Each output folder (``--rules-out``, ``--out``) keeps ``.translate-manifest.json``: the inputs the
run was given and, per detection (its output path without suffix), the files written for it,
relative to the folder. The next run removes the files an earlier run wrote for a detection it
converts again but no longer produces (a rule that became unsupported, a target that now fails),
and, when it is given the same inputs, those of detections that are gone. Only files a manifest
lists are ever removed: nothing the user put there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from translator.emit.writer import write_atomic

NAME = ".translate-manifest.json"


def sync(
    root: Path, inputs: Iterable[str], written: Mapping[str, Iterable[Path]], converted: Iterable[str]
) -> list[Path]:
    """Record ``written`` (detection -> files under ``root``) and remove stale files; returns those removed.

    ``converted``: every detection of this run, with or without files.
    """
    inputs = sorted(str(i) for i in inputs)
    old = _read(root / NAME)
    now = {key: sorted(_relative(root, p) for p in files) for key, files in written.items()}
    now = {k: v for k, v in now.items() if v}
    covered = set(converted)
    same_inputs = old.get("inputs") == inputs
    removed: list[Path] = []
    kept: dict[str, list[str]] = {}
    for key, files in (old.get("files") or {}).items():
        if key in covered or same_inputs:
            for rel in set(files) - set(now.get(key, [])):
                removed.extend(_remove(root, rel))
        else:
            kept[key] = files  # another run's detections: theirs to keep
    if now or kept or (root / NAME).exists():
        data = {"inputs": inputs, "files": dict(sorted({**kept, **now}.items()))}
        write_atomic(root / NAME, json.dumps(data, indent=1, sort_keys=False) + "\n")
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

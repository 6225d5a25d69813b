"""Load an ESCU content tree: detections, macros and data sources.

The layout is splunk/security_content's: ``detections/**/*.yml``,
``macros/*.yml`` and ``data_sources/*.yml`` under one root. A detection path is
resolved to its root by walking up to the folder that holds ``macros/``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from translator.errors import ContentError, Location
from translator.spl.macros import Macro

# libyaml's loader is ~10x faster on the 1,600-file corpus; fall back to pure Python.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Detection:
    """One ESCU detection as read from YAML; ``raw`` keeps every key."""

    path: Path
    name: str
    id: str
    search: str
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def status(self) -> str:
        return str(self.raw.get("status", ""))

    @property
    def tags(self) -> dict[str, Any]:
        tags = self.raw.get("tags")
        return tags if isinstance(tags, dict) else {}

    @property
    def data_sources(self) -> list[str]:
        ds = self.raw.get("data_source") or []
        return [str(x) for x in ds] if isinstance(ds, list) else [str(ds)]


@dataclass
class Lookup:
    """A CSV lookup as its ``lookups/<name>.yml`` describes it (Splunk's transforms.conf settings)."""

    name: str
    path: Path  # the CSV file
    wildcard_fields: frozenset[str] = frozenset()  # match_type WILDCARD(field): that column holds * patterns
    case_sensitive: bool = True  # Splunk's default
    default: str | None = None  # default_match, given when no row matches (with min_matches >= 1)
    _rows: tuple[dict[str, str], ...] | None = field(default=None, repr=False, compare=False)

    def rows(self) -> tuple[dict[str, str], ...]:
        """The table's rows, read once (callers must not change them). Raises ContentError."""
        if self._rows is None:
            try:
                with self.path.open(encoding="utf-8", newline="") as f:
                    self._rows = tuple(dict(r) for r in csv.DictReader(f))
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise ContentError(f"{self.path}: cannot read lookup {self.name}: {exc}") from None
        return self._rows


@dataclass
class Content:
    """Macros, data sources and lookups of one content root (any may be empty)."""

    root: Path | None
    macros: dict[tuple[str, int], Macro] = field(default_factory=dict)
    data_sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    lookups: dict[str, Lookup] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # unreadable macro files etc.


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; errors name the file and, where YAML gives one, the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ContentError(f"{path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise ContentError(f"{path}: not valid UTF-8 (byte offset {exc.start})") from None
    except OSError as exc:
        raise ContentError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(mark.line + 1, mark.column + 1, str(path)) if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise ContentError(f"invalid YAML: {reason}", loc) from None
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: invalid YAML: {exc}") from None


def load_detection(path: Path) -> Detection:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ContentError(f"{path}: not a detection (expected a YAML mapping at the top)")
    search = data.get("search")
    if not isinstance(search, str) or not search.strip():
        raise ContentError(f"{path}: detection has no 'search'")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ContentError(f"{path}: detection has no 'name'")
    return Detection(path=path, name=name.strip(), id=str(data.get("id", "")), search=search, raw=data)


def find_content_root(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that holds ``macros/``."""
    here = path.resolve()
    if here.is_file():
        here = here.parent
    for candidate in (here, *here.parents):
        if (candidate / "macros").is_dir():
            return candidate
    return None


def load_content(root: Path | None) -> Content:
    content = Content(root)
    if root is None:
        return content
    for path in sorted((root / "macros").glob("*.yml")):
        try:
            data = read_yaml(path)
            macro = _macro_from_yaml(data, path)
        except ContentError as exc:
            content.problems.append(str(exc))
            continue
        content.macros[macro.key] = macro
    ds_dir = root / "data_sources"
    if ds_dir.is_dir():
        for path in sorted(ds_dir.glob("*.yml")):
            try:
                data = read_yaml(path)
            except ContentError as exc:
                content.problems.append(str(exc))
                continue
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                content.data_sources[data["name"]] = data
    lookup_dir = root / "lookups"
    if lookup_dir.is_dir():
        for path in sorted(lookup_dir.glob("*.yml")):
            try:
                lookup = _lookup_from_yaml(read_yaml(path), path)
            except ContentError as exc:
                content.problems.append(str(exc))
                continue
            if lookup is not None:
                content.lookups[lookup.name] = lookup
    return content


_WILDCARD = re.compile(r"WILDCARD\(\s*([^)\s]+)\s*\)", re.IGNORECASE)


def _lookup_from_yaml(data: Any, path: Path) -> Lookup | None:
    """A CSV lookup definition, or None for other kinds (KV store, ML models)."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ContentError(f"{path}: lookup file has no 'name'")
    filename = data.get("filename")
    if not isinstance(filename, str) or not filename.endswith(".csv"):
        return None
    wildcards = frozenset(_WILDCARD.findall(str(data.get("match_type", ""))))
    case = str(data.get("case_sensitive_match", "true")).strip().lower() not in ("false", "0", "f", "no")
    default = data.get("default_match")
    min_matches = int(str(data.get("min_matches", 0)) or 0)
    return Lookup(
        data["name"],
        path.parent / filename,
        wildcards,
        case,
        str(default) if default is not None and min_matches >= 1 else None,
    )


def _macro_from_yaml(data: Any, path: Path) -> Macro:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ContentError(f"{path}: macro file has no 'name'")
    definition = data.get("definition")
    if not isinstance(definition, str):
        definition = "" if definition is None else str(definition)
    args = data.get("arguments") or []
    if not isinstance(args, list):
        raise ContentError(f"{path}: macro 'arguments' must be a list")
    name = data["name"]
    # macros.conf style names carry the arity: "name(2)"
    if name.endswith(")") and "(" in name:
        name = name[: name.index("(")]
    return Macro(name, definition, tuple(str(a) for a in args), str(path))


def iter_detection_files(path: Path) -> Iterator[Path]:
    """Detection files for a CLI path: a file, a folder of them, or a content root.

    Walking a folder skips ``deprecated`` sub-folders (they are not shipped);
    a file named explicitly is always used.
    """
    if path.is_file():
        yield path
        return
    base = path / "detections" if (path / "detections").is_dir() else path
    for p in sorted(base.rglob("*.yml")):
        rel = p.relative_to(base)
        if "deprecated" in rel.parts[:-1]:
            continue
        yield p

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
from typing import Any, ClassVar

import yaml

from translator.content import apps
from translator.content.conf import conf_bool
from translator.content.schedule import Schedule, deployment_schedules, schedule_for
from translator.errors import ContentError, Location
from translator.spl.macros import Macro

# libyaml's loader is ~10x faster on the 1,600-file corpus; fall back to pure Python.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SafeLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loading with dates kept as text: content dates are labels (``date: 2025-22-10`` occurs in
    released content and must not stop a run), and YAML would build date objects from them."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


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

    def tag(self, key: str) -> Any:
        """A tag, where either shape keeps it: under ``tags:`` (2024) or at the top level (newer releases)."""
        value = self.tags.get(key)
        return value if value is not None else self.raw.get(key)

    @property
    def data_sources(self) -> list[str]:
        ds = self.raw.get("data_source") or []
        return [str(x) for x in ds] if isinstance(ds, list) else [str(ds)]


@dataclass(frozen=True)
class DataSource:
    """One ``data_sources/*.yml``: where a detection's events come from, in the content's own words."""

    name: str
    source: str = ""  # e.g. XmlWinEventLog:Microsoft-Windows-Sysmon/Operational
    sourcetype: str = ""  # e.g. xmlwineventlog, aws:cloudtrail
    separator: str = ""  # the field that tells its event types apart (EventCode, eventName, ...)
    separator_value: str = ""  # that field's value for this data source, when the file gives it

    def terms(self) -> list[tuple[str, str]]:
        """The (field, value) source terms it states: its source, then its sourcetype."""
        return [(f, v) for f, v in (("source", self.source), ("sourcetype", self.sourcetype)) if v]


def _data_source_from_yaml(data: Any) -> DataSource | None:
    """Read by shape: keys any release may lack are empty; unknown keys are ignored."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None

    def text(key: str) -> str:
        value = data.get(key)
        return str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""

    return DataSource(
        data["name"].strip(), text("source"), text("sourcetype"), text("separator"), text("separator_value")
    )


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
    data_sources: dict[str, DataSource] = field(default_factory=dict)  # by name
    lookups: dict[str, Lookup] = field(default_factory=dict)
    eventtypes: dict[str, str] = field(default_factory=dict)  # an app's eventtypes.conf: name -> search
    parsed: dict[str, Any] = field(default_factory=dict, repr=False)  # what readers parse once (eventtypes)
    schedules: dict[str, Schedule] = field(default_factory=dict)  # per detection type (lower case)
    problems: list[str] = field(default_factory=list)  # unreadable macro files etc.

    def schedule(self, det: Detection) -> Schedule | None:
        """When ``det`` runs: its own scheduling, else its type's deployment."""
        return schedule_for(det.raw, self.schedules)


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
    except (ValueError, TypeError, RecursionError) as exc:  # a value YAML cannot build
        raise ContentError(f"{path}: invalid YAML value: {exc}") from None


def load_detection(path: Path) -> Detection:
    """A detection from ESCU YAML, a saved search of an app (``savedsearches.conf#stanza``) or a
    search of a .spl file (the file, or ``file.spl#N``)."""
    located = apps.split_ref(path)
    if located is not None and located[0].suffix == ".conf":
        name, ident, search, raw = apps.load_saved_search(path)
        return Detection(path=path, name=name, id=ident, search=search, raw=raw)
    if located is not None or path.suffix == ".spl":
        return _spl_detection(path, located)
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


def _spl_detection(path: Path, located: tuple[Path, str] | None) -> Detection:
    container, key = located if located is not None else (path, "1")
    searches = apps.spl_searches(container)
    if not key.isdigit() or not 1 <= int(key) <= len(searches):
        raise ContentError(f"{container}: no search #{key} (it holds {len(searches)})")
    search = searches[int(key) - 1]
    if not search:
        raise ContentError(f"{container}: search #{key} is empty")
    name = container.stem if located is None else f"{container.stem} #{key}"
    return Detection(path=path, name=name, id="", search=search, raw={"name": name, "search": search})


def find_content_root(path: Path) -> Path | None:
    """The content a detection reads: its app (for a saved search), else the nearest folder at or
    above it that holds ``macros/`` (ESCU) or ``macros.conf`` (conf files beside plain searches)."""
    located = apps.split_ref(path)
    container = located[0] if located is not None else path
    app = apps.app_of(container) if container.suffix == ".conf" else None
    if app is not None:
        return app.resolve()
    here = container.resolve()
    if here.is_file() or located is not None:
        here = here.parent
    for candidate in (here, *here.parents):
        if is_content_root(candidate):
            return candidate
    return None


def is_content_root(path: Path) -> bool:
    """An ESCU root (``macros/``), a folder with a ``macros.conf``, or a Splunk app."""
    return (path / "macros").is_dir() or (path / "macros.conf").is_file() or apps.is_app(path)


def load_content(root: Path | None) -> Content:
    content = Content(root)
    if root is None:
        return content
    if apps.is_app(root) or (root / "macros.conf").is_file():
        return _app_content(root)
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
            ds = _data_source_from_yaml(data)
            if ds is not None:
                content.data_sources[ds.name] = ds
    deployments: dict[Path, Any] = {}
    for path in sorted((root / "deployments").glob("**/*.yml")) if (root / "deployments").is_dir() else []:
        try:
            deployments[path] = read_yaml(path)
        except ContentError as exc:
            content.problems.append(str(exc))
    content.schedules = deployment_schedules(root, deployments)
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


def _app_content(root: Path) -> Content:
    """An app's content (or a folder of conf files): its macros, lookups and eventtypes first, then
    those of the apps beside it in ASCII order of name (Splunk shares them across apps)."""
    content = Content(root)
    siblings = [a for a in apps.apps_under(root.parent) if a.resolve() != root.resolve()] if apps.is_app(root) else []
    for app in [root, *siblings]:
        try:
            macros, problems = apps.app_macros(app)
            content.problems.extend(problems)
            for key, macro in macros.items():
                content.macros.setdefault(key, macro)
            for name, csv_path, settings in apps.app_lookup_specs(app):
                content.lookups.setdefault(name, _lookup_from_settings(name, csv_path, settings))
            for name, search in apps.app_eventtypes(app).items():
                content.eventtypes.setdefault(name, search)
        except ContentError as exc:
            content.problems.append(str(exc))
    return content


def _lookup_from_settings(name: str, csv_path: Path, settings: dict[str, str]) -> Lookup:
    """A transforms.conf lookup stanza, read as the lookup YAML is."""
    return _lookup(
        name,
        csv_path,
        settings.get("match_type", ""),
        settings.get("case_sensitive_match"),
        settings.get("default_match"),
        settings.get("min_matches"),
    )


def _lookup(name: str, csv_path: Path, match_type: str, case_sensitive: Any, default: Any, min_matches: Any) -> Lookup:
    """A Lookup from Splunk's settings, however the file wrote them (text or YAML scalars)."""
    return Lookup(
        name,
        csv_path,
        frozenset(_WILDCARD.findall(match_type)),
        conf_bool(case_sensitive, default=True),
        _scalar(default) if default is not None and _count(min_matches) >= 1 else None,
    )


_WILDCARD = re.compile(r"WILDCARD\(\s*([^)\s]+)\s*\)", re.IGNORECASE)
_NOT_CSV = frozenset({"kvstore", "mlmodel", "geo", "external"})


def _lookup_from_yaml(data: Any, path: Path) -> Lookup | None:
    """A CSV lookup definition, or None for other kinds (KV store, ML models).

    Read by shape, not by one release: the 2024 schema names the CSV in ``filename`` and writes
    settings as strings (``'false'``); newer ones say ``lookup_type: csv`` with the CSV beside the
    YAML as ``<name>.csv``, write ``match_type`` as a list and booleans as booleans. Keys not used
    here are ignored.
    """
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ContentError(f"{path}: lookup file has no 'name'")
    name = data["name"]
    kind = str(data.get("lookup_type") or "").strip().lower()
    filename = data.get("filename")
    if kind in _NOT_CSV or data.get("collection"):
        return None
    if not isinstance(filename, str) or not filename.strip():
        if kind != "csv" and not (path.parent / f"{name}.csv").is_file():
            return None  # no table file named or beside it: a model or store we do not read
        filename = f"{name}.csv"
    if not filename.lower().endswith(".csv"):
        return None
    match_type = data.get("match_type") or ""
    match_text = ",".join(str(m) for m in match_type) if isinstance(match_type, list) else str(match_type)
    return _lookup(
        name,
        path.parent / filename.strip(),
        match_text,
        data.get("case_sensitive_match"),
        data.get("default_match"),
        data.get("min_matches"),
    )


def _count(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def _scalar(value: Any) -> str:
    """A lookup value as Splunk writes it (YAML may have made ``false`` a boolean)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


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


_RETIRED = frozenset({"deprecated", "removed"})


def iter_detection_files(path: Path) -> Iterator[Path]:
    """Detection files for a CLI path: a file, a folder of them, or a content root.

    Walking a folder skips ``deprecated`` and ``removed`` sub-folders (they are not shipped);
    a file named explicitly is always used.
    """
    if path.is_file():
        yield path
        return
    base = path / "detections" if (path / "detections").is_dir() else path
    for p in sorted(base.rglob("*.yml")):
        rel = p.relative_to(base)
        if _RETIRED.intersection(part.lower() for part in rel.parts[:-1]):
            continue
        yield p

"""Splunk apps as content: each saved search is a detection; macros, lookups and eventtypes are what
its search reads.

An app is a folder with ``default/`` and/or ``local/`` conf files (``local/`` wins key by key);
``$SPLUNK_HOME/etc/apps`` holds several. From ``savedsearches.conf`` each stanza with a ``search``
becomes a detection whose id is ``app/stanza``; its description, schedule (``cron_schedule``,
``dispatch.earliest_time``/``latest_time``), Enterprise Security metadata
(``action.correlationsearch.annotations`` with ATT&CK ids, ``action.notable.param.severity``,
``action.risk.param._risk_score``) and alert condition (``counttype``, ``relation``, ``quantity``)
are kept in the detection's ``raw`` dict in the shape the ESCU YAML has, so one pipeline reads both.
``macros.conf`` (``args``, ``definition``), ``transforms.conf`` CSV lookups with ``lookups/*.csv``
and ``eventtypes.conf`` make its content. Macros, lookups and eventtypes of the other apps beside
it are visible too (Splunk shares them globally when exported); its own win, then the others' in
ASCII order of app name, as Splunk's global precedence orders app folders.

A saved search is addressed by a path: the conf file, ``#`` and the stanza name quoted
(``app/default/savedsearches.conf#ESCU%20-%20X%20-%20Rule``), so it flows through every command
that takes detection files. Plain SPL files (``*.spl``: one search, or several separated by a line
holding only ``---``) are addressed the same way (``rules.spl#2``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from translator.content.conf import ConfFile, Stanza, merged, read_conf, read_text
from translator.errors import ContentError
from translator.spl.macros import Macro

SAVED_SEARCHES = "savedsearches.conf"
SPL_SEPARATOR = "---"


def is_app(path: Path) -> bool:
    """A folder holding ``default/`` or ``local/`` with at least one .conf file."""
    return path.is_dir() and any(
        (path / layer).is_dir() and any((path / layer).glob("*.conf")) for layer in ("default", "local")
    )


def apps_under(path: Path) -> list[Path]:
    """The apps ``path`` is or holds (``etc/apps``), in ASCII order of name."""
    if is_app(path):
        return [path]
    if path.is_dir():
        return [p for p in sorted(path.iterdir(), key=lambda p: p.name) if is_app(p)]
    return []


def app_conf(app: Path, name: str) -> ConfFile:
    """``default/NAME`` with ``local/NAME`` over it (either may be missing); in a plain folder of conf
    files (beside .spl files), ``NAME`` itself."""
    layered = (app / "default").is_dir() or (app / "local").is_dir()
    files = [app / layer / name for layer in ("default", "local")] if layered else [app / name]
    return merged(read_conf(f) for f in files if f.is_file())


# -- addresses of detections inside files ------------------------------------------------------


def ref(container: Path, key: str) -> Path:
    """The path addressing ``key`` (a stanza name, or a search's number) inside ``container``."""
    return container.with_name(f"{container.name}#{quote(key, safe=' -_.,()[]')}")


def split_ref(path: Path) -> tuple[Path, str] | None:
    """(the container file, the key) of a path made by :func:`ref`; None for a plain file."""
    name, sep, key = path.name.partition("#")
    if not sep or not name.endswith((".conf", ".spl")):
        return None
    return path.with_name(name), unquote(key)


def app_of(conf: Path) -> Path | None:
    """The app a conf file belongs to (``APP/default/x.conf``), if it is in one."""
    return conf.parent.parent if conf.parent.name in ("default", "local") else None


@dataclass(frozen=True)
class SavedSearchRef:
    path: Path  # the address (see :func:`ref`)
    rel: Path  # where its outputs go, relative to the output folders
    disabled: bool


def saved_searches(path: Path) -> list[SavedSearchRef]:
    """The saved searches in an app, in ``etc/apps`` (each app's), or in one savedsearches.conf."""
    if path.is_file():  # listed from the same layers the searches load from (local/ over default/)
        return _refs(_saved_conf(path), path, Path(path.parent.name))
    out: list[SavedSearchRef] = []
    for app in apps_under(path):
        conf = app_conf(app, SAVED_SEARCHES)
        out.extend(_refs(conf, app / "default" / SAVED_SEARCHES, Path(app.name)))
    return out


def _refs(conf: ConfFile, anchor: Path, folder: Path) -> list[SavedSearchRef]:
    return [
        SavedSearchRef(ref(anchor, name), folder / f"{_slug(name)}.yml", stanza.flag("disabled"))
        for name, stanza in conf.stanzas.items()
        if name != "default"  # every other stanza is a saved search (one without a search reports it)
    ]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "search"


@cache
def _saved_conf(anchor: Path) -> ConfFile:
    app = app_of(anchor)
    return (
        app_conf(app, SAVED_SEARCHES)
        if app is not None and anchor.name == SAVED_SEARCHES
        else merged([read_conf(anchor)])
    )


def load_saved_search(path: Path) -> tuple[str, str, str, dict[str, Any]]:
    """(name, id, search, raw) of the saved search ``path`` addresses. Raises ContentError naming the place."""
    located = split_ref(path)
    if located is None:
        raise ContentError(f"{path}: not a saved search address")
    anchor, name = located
    conf = _saved_conf(anchor)
    stanza = conf.stanzas.get(name)
    if stanza is None:
        raise ContentError(f"{anchor}: no stanza [{name}]")
    if stanza.problems:  # a malformed line may have been part of its search
        raise ContentError(f"saved search [{name}]: {stanza.problems[0]}")
    search = stanza.get("search")
    if not search.strip():
        raise ContentError(f"saved search [{name}] has no search", stanza.where())
    app = app_of(anchor)
    ident = f"{(app or anchor.parent).name}/{name}"
    return name, ident, search, saved_search_raw(stanza, ident)


def saved_search_raw(stanza: Stanza, ident: str) -> dict[str, Any]:
    """A saved search's settings in the ESCU YAML shape the rest of the pipeline reads."""
    v = stanza.values
    raw: dict[str, Any] = {"name": stanza.name, "id": ident, "search": v.get("search", "")}
    for key in ("description", "cron_schedule", "dispatch.earliest_time", "dispatch.latest_time"):
        if v.get(key):
            raw[key] = v[key]
    raw["status"] = "experimental" if stanza.flag("disabled") else "production"
    annotations = _json(v.get("action.correlationsearch.annotations", ""))
    annotations = annotations if isinstance(annotations, dict) else {}
    attack = annotations.get("mitre_attack")
    if isinstance(attack, list):
        raw["tags"] = {"mitre_attack_id": [str(t) for t in attack]}
    # the data sources (they pick a data model's feed), where an app states them
    sources = _json(v.get("action.escu.data_source", "")) or annotations.get("data_source")
    if isinstance(sources, list):
        raw["data_source"] = [str(x) for x in sources]
    score = v.get("action.risk.param._risk_score") or v.get("action.notable.param.severity")
    if score:
        raw.setdefault("tags", {})["risk_score"] = _score(score)
    alert = _alert_condition(stanza)
    if alert is not None:
        raw["alert_condition"] = alert
    return raw


_SEVERITY_SCORES = {"informational": 10, "low": 30, "medium": 50, "high": 70, "critical": 90}


def _score(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float(_SEVERITY_SCORES.get(text.strip().lower(), 50))


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


_RELATIONS = {"greater than": ">", "less than": "<", "equal to": "=", "not equal to": "!=",
              "rises by": None, "drops by": None}  # fmt: skip


def _alert_condition(stanza: Stanza) -> tuple[str, str] | None:
    """An alert's ``counttype = number of events`` threshold as (op, quantity) on the result count."""
    kind = stanza.get("counttype").strip().lower()
    relation = _RELATIONS.get(stanza.get("relation").strip().lower())
    quantity = stanza.get("quantity").strip()
    if kind in ("number of events", "number of results") and relation and quantity.isdigit():
        return relation, quantity
    return None


# -- content ---------------------------------------------------------------------------------------


def app_macros(app: Path) -> tuple[dict[tuple[str, int], Macro], list[str]]:
    return macros_from(app_conf(app, "macros.conf"))


def macros_from(conf: ConfFile) -> tuple[dict[tuple[str, int], Macro], list[str]]:
    """A macros.conf's macros (``name(N)`` stanzas with ``args``); eval macros are listed as problems."""
    macros: dict[tuple[str, int], Macro] = {}
    problems = list(conf.problems)
    for name, stanza in conf.stanzas.items():
        if name == "default":
            continue
        base = name[: name.index("(")] if name.endswith(")") and "(" in name else name
        args = tuple(a.strip() for a in stanza.get("args").split(",") if a.strip())
        if stanza.flag("iseval"):
            problems.append(f"{stanza.where()}: macro [{name}] is computed by eval (iseval); not expanded")
            continue
        macro = Macro(base, stanza.get("definition"), args, str(stanza.where("definition")))
        macros[macro.key] = macro
    return macros, problems


def app_lookup_specs(app: Path) -> list[tuple[str, Path, dict[str, str]]]:
    """(name, CSV path, settings) of the app's CSV lookups (transforms.conf stanzas with a filename)."""
    conf = app_conf(app, "transforms.conf")
    out = []
    for name, stanza in conf.stanzas.items():
        filename = stanza.get("filename").strip()
        if name != "default" and filename.lower().endswith(".csv"):
            out.append((name, app / "lookups" / filename, dict(stanza.values)))
    return out


def app_eventtypes(app: Path) -> dict[str, str]:
    conf = app_conf(app, "eventtypes.conf")
    return {n: s.get("search") for n, s in conf.stanzas.items() if n != "default" and s.get("search")}


# -- plain SPL files ---------------------------------------------------------------------------------


def spl_searches(path: Path) -> list[str]:
    """The searches of a .spl file: the whole file, or its parts between lines holding only ``---``."""
    parts, current = [], []
    for line in read_text(path).splitlines():
        if line.strip() == SPL_SEPARATOR:
            parts.append("\n".join(current))
            current = []
        else:
            current.append(line)
    parts.append("\n".join(current))
    return [p.strip() for p in parts]


def spl_refs(path: Path) -> list[tuple[Path, str]]:
    """(address, name) of each search in a .spl file: the file itself when it holds one."""
    searches = spl_searches(path)
    if len(searches) == 1:
        return [(path, path.stem)]
    return [(ref(path, str(i)), f"{path.stem} #{i}") for i in range(1, len(searches) + 1) if searches[i - 1]]

"""Which detections a change touches: for ``translate parity --changed-since GIT_REF``.

A detection is checked again when its own file changed, or something it reads did: a macro it
expands (at any depth), a lookup its search names (the lookup's definition or CSV), a data source
it lists, or a conf file of its app other than the saved searches (macros, transforms,
eventtypes and tags are read as a whole). The changed files are what ``git diff --name-only REF``
lists (working tree included) plus untracked files. When a detection cannot be read or expanded,
it is checked: the filter may only check more, never fewer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from translator.content import apps
from translator.content.loader import Content, load_detection, read_yaml
from translator.errors import TranslatorError
from translator.spl import MacroExpander, ast, parse

_APP_WIDE = {"macros.conf", "transforms.conf", "eventtypes.conf", "tags.conf"}


class ChangesError(TranslatorError):
    """Git could not say what changed."""


def _git(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ChangesError(f"--changed-since needs git: {exc}") from exc
    if done.returncode != 0:
        raise ChangesError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def changed_files(ref: str, where: Path) -> set[Path]:
    """Files that differ from ``ref`` in the git work tree holding ``where`` (untracked ones too)."""
    start = where if where.is_dir() else where.parent
    top = Path(_git(["rev-parse", "--show-toplevel"], start).strip())
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    names = _git(["diff", "--name-only", "--no-renames", ref, "--"], top).splitlines()
    names += _git(["ls-files", "--others", "--exclude-standard"], top).splitlines()
    return {(top / n).resolve() for n in names if n}


def _container(path: Path) -> Path:
    located = apps.split_ref(path)
    return (located[0] if located else path).resolve()


def changed_items(
    items: list[tuple[Path, Path]], ref: str, content_for: Callable[[Path], Content]
) -> list[tuple[Path, Path]]:
    """The items (detection, output path) a change since ``ref`` touches, in their order."""
    if not items:
        return []
    changed = changed_files(ref, _container(items[0][0]))
    return [item for item in items if _touched(item[0], changed, content_for)]


def _touched(path: Path, changed: set[Path], content_for: Callable[[Path], Content]) -> bool:
    if _container(path) in changed:
        return True
    try:
        content = content_for(path)
        det = load_detection(path)
    except TranslatorError:
        return True
    if content.root is not None and any(p.name in _APP_WIDE and content.root.resolve() in p.parents for p in changed):
        return True
    try:
        expansion = MacroExpander(content.macros).expand(det.search, path.name)
        tree = parse(expansion.text, path.name, expansion.location)
    except TranslatorError:
        return True
    used = set(expansion.macros_used)
    for macro in content.macros.values():
        if macro.name in used and _source_file(macro.source) in changed:
            return True
    for node in ast.walk(tree):
        table = getattr(node, "table", None)
        if isinstance(node, ast.LookupCommand | ast.InputlookupCommand) and table in content.lookups:
            lookup = content.lookups[table]
            files = {lookup.path.resolve(), *(p for p in changed if p.stem in (lookup.name, lookup.path.stem))}
            if files & changed:
                return True
    wanted = set(det.data_sources)
    return any(_data_source_name(p) in wanted for p in changed if p.parent.name == "data_sources")


def _source_file(source: str) -> Path:
    """The file a macro's ``source`` names (``path`` or ``path:line``)."""
    head, _, line = source.rpartition(":")
    return Path(head if head and line.isdigit() else source).resolve()


def _data_source_name(path: Path) -> str | None:
    """The ``name`` a data source file declares (its stem when the file is gone or unreadable)."""
    try:
        data = read_yaml(path)
    except TranslatorError:
        return path.stem
    name = data.get("name") if isinstance(data, dict) else None
    return str(name) if name else path.stem

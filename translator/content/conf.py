"""Splunk's .conf format: stanzas of ``key = value``, layered the way Splunk merges them.

- ``[stanza]`` starts a stanza; keys before the first one belong to ``[default]``.
- ``key = value`` (spaces around ``=`` are optional and trimmed); a value ending in ``\\`` continues
  on the next line, the line break kept (multi-line searches).
- A line whose first non-blank character is ``#`` is a comment; blank lines are ignored.
- ``[default]`` gives every other stanza of the same file the keys it does not set itself.
- In an app, ``local/`` overrides ``default/`` key by key, stanza by stanza.

A line that is none of these is a problem naming the file and line; the rest of the file is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from translator.errors import ContentError, Location


@dataclass
class Stanza:
    """One stanza: its keys with the line each was set on (for messages)."""

    name: str
    path: str  # the file that defined it last
    line: int
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # lines in it that are not `key = value`

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def flag(self, key: str, default: bool = False) -> bool:
        return conf_bool(self.values.get(key), default)

    def where(self, key: str = "") -> Location:
        """The place a key (or the stanza) was written, for an error."""
        return Location(self.lines.get(key, self.line), 1, self.path)


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def conf_bool(value: object, default: bool) -> bool:
    """A conf boolean, written as text (``true``, ``1``, ``no``, ...) or, in YAML, as a boolean;
    anything else (missing, empty, unreadable) is ``default``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return True if text in _TRUE else False if text in _FALSE else default


@dataclass
class ConfFile:
    stanzas: dict[str, Stanza] = field(default_factory=dict)  # in file order
    problems: list[str] = field(default_factory=list)


def parse_conf(text: str, path: str = "") -> ConfFile:
    """Parse one .conf file's text (``[default]`` not yet applied: see :func:`merged`)."""
    out = ConfFile()
    current = out.stanzas.setdefault("default", Stanza("default", path, 0))
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number, raw = i + 1, lines[i]
        i += 1
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip()
            current = out.stanzas.setdefault(name, Stanza(name, path, number))
            continue
        key, eq, value = raw.partition("=")
        if not eq or not key.strip():
            problem = f"{path}: line {number}: not a stanza, a `key = value` or a comment: {line[:60]!r}"
            out.problems.append(problem)
            current.problems.append(problem)
            continue
        parts = [value]
        while parts[-1].rstrip().endswith("\\") and i < len(lines):  # a continued value: keep the line break
            parts[-1] = parts[-1].rstrip()[:-1]
            parts.append(lines[i])
            i += 1
        if parts[-1].rstrip().endswith("\\"):  # continued past the end of the file
            parts[-1] = parts[-1].rstrip()[:-1]
        current.values[key.strip()] = "\n".join(parts).strip()
        current.lines[key.strip()] = number
    return out


def read_text(path: Path) -> str:
    """A text file of content (a byte-order mark dropped); ContentError naming it when unreadable."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContentError(f"{path}: not valid UTF-8 (byte offset {exc.start})") from None
    except OSError as exc:
        raise ContentError(f"{path}: cannot read ({exc.strerror})") from None


def read_conf(path: Path) -> ConfFile:
    return parse_conf(read_text(path), str(path))


def merged(layers: Iterable[ConfFile]) -> ConfFile:
    """Layers from lowest to highest precedence (``default/`` then ``local/``), merged key by key,
    then each layer's ``[default]`` keys given to every stanza that does not set them."""
    out = ConfFile()
    for layer in layers:
        out.problems.extend(layer.problems)
        for name, stanza in layer.stanzas.items():
            mine = out.stanzas.get(name)
            if mine is None:
                mine = out.stanzas[name] = Stanza(name, stanza.path, stanza.line)
            elif stanza.values:
                mine.path = stanza.path
            mine.values.update(stanza.values)
            mine.lines.update(stanza.lines)
            mine.problems.extend(stanza.problems)
    defaults = out.stanzas.get("default")
    if defaults is not None:
        for name, stanza in out.stanzas.items():
            if name == "default":
                continue
            for key, value in defaults.values.items():
                if key not in stanza.values:
                    stanza.values[key] = value
                    stanza.lines[key] = defaults.lines.get(key, 0)
    return out

"""Splunk source terms that define a logsource, and custom logsources for names no table knows.

A search picks its events with source terms: ``sourcetype=cisco:sfw:estreamer``,
``source="XmlWinEventLog:Microsoft-Windows-AppXDeploymentServer/Operational"``, ``index=zoom``.
When the logsource table knows the name, the rule gets the table's Sigma logsource. When it does
not, the rule gets a *custom* logsource derived from the name (:func:`custom_logsource`), and the
terms themselves go into the logsource's ``definition`` (``Splunk: sourcetype="cisco:sfw:estreamer"``),
so the rule states exactly which events it reads: the Splunk target puts the terms back into the
query, the evaluator checks them on each event, and the other targets are told they need a
pipeline entry for the new logsource.

The derivation (documented in docs/coverage.md, "Content newer than the corpus"):
- a Windows event log the table does not know: ``product: windows``, ``service``: the channel in
  lower case, ``Microsoft-Windows-`` dropped, other characters than letters and digits as ``-``
  (``Microsoft-Windows-AppXDeploymentServer/Operational`` -> ``appxdeploymentserver-operational``);
- a sourcetype or source: its ``:``-separated parts, the first the ``product`` and the rest, joined
  with ``_``, the ``service`` (``cisco:sfw:estreamer`` -> ``cisco`` / ``sfw_estreamer``; ``auditd``
  -> ``auditd``); wildcard parts are left out (``cisco:duo:*`` -> ``cisco`` / ``duo``);
- an index or an eventtype alone: its name is the ``product``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from translator.sigma.detection import splunk_match

PREFIX = "Splunk: "

Term = tuple[str, str]  # (field, Splunk pattern)


@dataclass(frozen=True)
class SplunkSource:
    """Source terms as a conjunction of alternatives: ``(source=a OR source=b) index=c``."""

    groups: tuple[tuple[Term, ...], ...]

    def definition(self) -> str:
        """The logsource ``definition`` text; :meth:`from_definition` reads it back."""
        parts = []
        for group in self.groups:
            text = " OR ".join(f"{f}={_quote(v)}" for f, v in group)
            parts.append(f"({text})" if len(group) > 1 and len(self.groups) > 1 else text)
        return PREFIX + " ".join(parts)

    @classmethod
    def from_definition(cls, text: str | None) -> SplunkSource | None:
        """The terms a ``definition`` written by :meth:`definition` holds; None for any other text."""
        if not text or not text.startswith(PREFIX):
            return None
        groups: list[tuple[Term, ...]] = []
        for chunk in _GROUP.findall(text[len(PREFIX) :]):
            group = tuple((f, _unquote(v)) for f, v in _TERM.findall(chunk))
            if not group:
                return None
            groups.append(group)
        return cls(tuple(groups)) if groups else None

    def matches(self, values: Callable[[str], list[Any]]) -> bool:
        """Whether an event whose field values ``values`` gives meets every group (Splunk's matching:
        case-insensitive, ``*`` wildcards, any value of a multivalue field)."""
        return all(
            any(splunk_match(str(v), pattern) for f, pattern in group for v in values(f)) for group in self.groups
        )

    def detections(self) -> list[dict[str, list[str]] | list[dict[str, list[str]]]]:
        """One Sigma detection per group, for the rule's condition to AND: a map when the group names
        one field (an OR of its values), else a list of maps (an OR of fields)."""
        out: list[dict[str, list[str]] | list[dict[str, list[str]]]] = []
        for group in self.groups:
            fields = list(dict.fromkeys(f for f, _ in group))
            if len(fields) == 1:
                out.append({fields[0]: [v for _, v in group]})
            else:
                out.append([{f: [v for g, v in group if g == f]} for f in fields])
        return out


_TERM_TEXT = r'[A-Za-z_]+=(?:"(?:[^"\\]|\\.)*"|[^\s()"]+)'
# a group: (a OR b), or a OR b, or one term
_GROUP = re.compile(rf'\((?:[^()"]|"(?:[^"\\]|\\.)*")*\)|{_TERM_TEXT}(?:\s+OR\s+{_TERM_TEXT})*')
_TERM = re.compile(r'([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|[^\s()"]+)')


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _slug(text: str, sep: str) -> str:
    return _NOT_WORD.sub(sep, text.lower()).strip(sep)


def windows_service(channel: str) -> str:
    """The custom ``service`` of a Windows event log the table does not know."""
    name = re.sub(r"^microsoft-windows-", "", channel.strip(), flags=re.IGNORECASE)
    return _slug(name, "-") or "eventlog"


def custom_logsource(field: str, value: str) -> dict[str, str]:
    """The custom Sigma logsource for one source term the tables do not know (see the module doc)."""
    if field == "Channel":
        return {"product": "windows", "service": windows_service(value)}
    if field in ("index", "eventtype"):
        return {"product": _slug(value.replace("*", ""), "_") or "splunk"}
    parts = [_slug(p, "_") for p in value.split(":") if "*" not in p]
    parts = [p for p in parts if p]
    if not parts:
        return {"product": "splunk"}
    out = {"product": parts[0]}
    if len(parts) > 1:
        out["service"] = "_".join(parts[1:])
    return out

"""The SQL the sqlite backend emits for a rule, run in SQLite on the same events, against the rule's matches.

pySigma's SQL backends write a ``WHERE`` clause over one table and leave the
logsource to the table: whoever runs the query points it at the table holding
that log. So each logsource gets a table here, filled with the events the
evaluator's logsource table selects for it (with its field renames, e.g.
Security 4688 as process_creation), one column per field the rules of that
logsource read. Columns are ``NUMERIC COLLATE NOCASE``: numbers compare as
numbers and text without case, as Sigma means. A multivalue field is stored as
its JSON text, which the backend's SQL cannot look into: such rules show up as
``differ`` rather than being hidden.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from typing import Any

import orjson
from sigma.rule import SigmaRule

from translator.engine.logsources import Flat, Selector, selector_for
from translator.sigma.rule import detection_fields

TARGET = "sqlite"


class SqliteTables:
    """One in-memory SQLite table per logsource, built when a rule first needs it."""

    def __init__(self, events: list[tuple[str, Flat]]) -> None:
        self.events = events
        self.db = sqlite3.connect(":memory:")
        self.db.create_function("regexp", 2, _regexp, deterministic=True)
        self.columns: dict[Selector, dict[str, str]] = {}  # selector -> lower-cased name -> name
        self.tables: dict[Selector, str] = {}

    def plan(self, rules: list[SigmaRule]) -> None:
        """Collect the columns each logsource's table needs (every rule's fields), before any is built."""
        for rule in rules:
            names = self.columns.setdefault(selector_for(rule), {})
            for name in detection_fields(rule):
                names.setdefault(name.lower(), name)

    def matches(self, rule: SigmaRule, where: str) -> set[str]:
        """Refs of the events of ``rule``'s logsource that ``where`` (the backend's clause) selects.

        Raises ValueError when the rule's fields cannot be columns (two names differing only in case).
        """
        sel = selector_for(rule)
        known = self.columns.setdefault(sel, {})
        for name in detection_fields(rule):
            if known.setdefault(name.lower(), name) != name:
                raise ValueError(f"fields {known[name.lower()]!r} and {name!r} differ only in case: one SQL column")
        table = self.tables.get(sel) or self._build(sel)
        return {ref for (ref,) in self.db.execute(f"SELECT ref FROM {table} WHERE {where}")}

    def _build(self, sel: Selector) -> str:
        table = f"logsource_{len(self.tables)}"
        columns = sorted(self.columns[sel].values())
        cols_sql = ", ".join(f'"{c}" NUMERIC COLLATE NOCASE' for c in columns)
        self.db.execute(f"CREATE TABLE {table} (ref TEXT{', ' if columns else ''}{cols_sql})")
        rows = []
        for ref, fields in self.events:
            view = sel.view(fields)
            if view is not None:
                rows.append([ref, *(_cell(view.get(c)) for c in columns)])
        self.db.executemany(f"INSERT INTO {table} VALUES (?{', ?' * len(columns)})", rows)
        self.tables[sel] = table
        return table


_FROM_WHERE = re.compile(r"\bFROM\s+\S+\s+WHERE\s+", re.IGNORECASE)


def where_clause(query: str) -> str:
    """The condition of a ``SELECT ... FROM <table> WHERE <condition>`` query."""
    m = _FROM_WHERE.search(query)
    if m is None:
        raise ValueError(f"not a SELECT ... WHERE query: {query[:80]}")
    return query[m.end() :].rstrip().rstrip(";")


def _cell(v: Any) -> Any:
    if isinstance(v, list | dict):
        return orjson.dumps(v).decode()
    return v


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, value: Any) -> bool | None:
    if value is None:
        return None
    return _compiled(pattern).search(str(value)) is not None

"""The SQL the sqlite and duckdb backends emit for a rule, run in SQLite and DuckDB on the same events.

pySigma's SQL backends write a ``WHERE`` clause over one table and leave the
logsource to the table: whoever runs the query points it at the table holding
that log. So each logsource gets a table here, filled with the events the
evaluator's logsource table selects for it (with its field renames, e.g.
Security 4688 as process_creation), one column per field the rules of that
logsource read. In SQLite the columns are ``NUMERIC COLLATE NOCASE`` (numbers
compare as numbers, text without case, as Sigma means); in DuckDB a column is
BIGINT, DOUBLE or VARCHAR by its values, and case is whatever the backend's SQL
says (``ILIKE`` or ``=``). A multivalue field is stored as its JSON text, which
the SQL cannot look into: such rules show up as ``differ`` rather than hidden.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import orjson
from sigma.rule import SigmaRule

from translator.engine.logsources import Flat, Selector, selector_for
from translator.sigma.rule import detection_fields


class SqliteTables:
    """One in-memory SQLite table per logsource, built when a rule first needs it."""

    target = "sqlite"

    def __init__(self, events: list[tuple[str, Flat]]) -> None:
        self.events = events
        self.db: Any = self._connect()
        self.columns: dict[Selector, dict[str, str]] = {}  # selector -> lower-cased name -> name
        self.tables: dict[Selector, str] = {}

    def _connect(self) -> Any:
        return sqlite_db()

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
        return {ref for (ref,) in self.db.execute(f"SELECT ref FROM {table} WHERE {where}").fetchall()}

    def _build(self, sel: Selector) -> str:
        table = f"logsource_{len(self.tables)}"
        columns = sorted(self.columns[sel].values())
        rows = []
        for ref, fields in self.events:
            view = sel.view(fields)
            if view is not None:
                rows.append([ref, *(cell(view.get(c)) for c in columns)])
        self._create(table, columns, rows)
        self.tables[sel] = table
        return table

    def _create(self, table: str, columns: list[str], rows: list[list[Any]]) -> None:
        cols_sql = "".join(f', "{c}" NUMERIC COLLATE NOCASE' for c in columns)
        self.db.execute(f"CREATE TABLE {table} (ref TEXT{cols_sql})")
        self.db.executemany(f"INSERT INTO {table} VALUES (?{', ?' * len(columns)})", rows)


class DuckDbTables(SqliteTables):
    """The same tables in an in-memory DuckDB database, for the duckdb backend's SQL."""

    target = "duckdb"

    def _connect(self) -> Any:
        return duckdb.connect(":memory:")

    def _create(self, table: str, columns: list[str], rows: list[list[Any]]) -> None:
        types = [_duck_type([r[i + 1] for r in rows]) for i in range(len(columns))]
        cols_sql = "".join(f', "{c}" {t}' for c, t in zip(columns, types, strict=True))
        self.db.execute(f"CREATE TABLE {table} (ref VARCHAR{cols_sql})")
        if not rows:
            return
        # one file load instead of row inserts (DuckDB's executemany is slow); the file goes with the run
        with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
            for r in rows:
                f.write(orjson.dumps(dict(zip(["ref", *columns], r, strict=True))) + b"\n")
        try:
            spec = ", ".join(f"'{n}': '{t}'" for n, t in zip(["ref", *columns], ["VARCHAR", *types], strict=True))
            self.db.execute(
                f"INSERT INTO {table} SELECT * FROM read_json('{f.name}', format='newline_delimited', "
                f"columns={{{spec}}})"
            )
        finally:
            Path(f.name).unlink(missing_ok=True)


def _duck_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) or (isinstance(v, str) and _INT.match(v)) for v in present):
        return "BIGINT"
    if present and all(isinstance(v, int | float) or (isinstance(v, str) and _FLOAT.match(v)) for v in present):
        return "DOUBLE"
    return "VARCHAR"


_INT = re.compile(r"-?\d{1,18}\Z")
_FLOAT = re.compile(r"-?\d+(\.\d+)?\Z")


_FROM_WHERE = re.compile(r"\bFROM\s+\S+\s+WHERE\s+", re.IGNORECASE)


def where_clause(query: str) -> str:
    """The condition of a ``SELECT ... FROM <table> WHERE <condition>`` query."""
    m = _FROM_WHERE.search(query)
    if m is None:
        raise ValueError(f"not a SELECT ... WHERE query: {query[:80]}")
    return query[m.end() :].rstrip().rstrip(";")


def sqlite_db() -> sqlite3.Connection:
    """An in-memory SQLite database with the ``regexp`` function the sqlite backend's ``REGEXP`` calls."""
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, _regexp, deterministic=True)
    return db


def cell(v: Any) -> Any:
    """A field value as one SQL cell: a multivalue field (or an object) as its JSON text."""
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

"""The SPL syntax tree: small frozen dataclasses.

Three families of nodes:
- search expressions (``search`` and ``tstats ... where``): Splunk's
  search-language terms, compared case-insensitively with ``*`` wildcards;
- eval expressions (``eval`` and ``where``): an ordinary expression language;
- commands, one node per modelled command, and ``GenericCommand`` holding the
  verbatim arguments of any other command so nothing is ever dropped.

Nodes are frozen and use tuples, so two parses of the same text compare equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

# --------------------------------------------------------------------------
# search expressions


@dataclass(frozen=True)
class Value:
    """A literal in a search: its text (escapes decoded) and whether it was quoted."""

    text: str
    quoted: bool = False

    @property
    def token(self) -> str | None:
        """The name in ``$name$`` when the value is a whole Splunk token (kept as literal text)."""
        return token_name(self.text)


@dataclass(frozen=True)
class Term:
    """A bare keyword or phrase matched against the raw event."""

    value: Value


@dataclass(frozen=True)
class Compare:
    """``field OP value`` with OP one of ``= != < > <= >=``."""

    field: str
    op: str
    value: Value


@dataclass(frozen=True)
class InList:
    """``field IN (v1, v2, ...)``: an OR of ``field=v`` terms."""

    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Not:
    operand: SearchExpr


@dataclass(frozen=True)
class And:
    operands: tuple[SearchExpr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[SearchExpr, ...]


@dataclass(frozen=True)
class Subsearch:
    """``[ ... ]``: a nested pipeline whose results become search terms."""

    pipeline: Pipeline


SearchExpr = Term | Compare | InList | Not | And | Or | Subsearch

# --------------------------------------------------------------------------
# eval expressions


@dataclass(frozen=True)
class Field:
    name: str
    quoted: bool = False  # written as 'name'


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class TokenRef(Str):
    """``$name$`` in an expression: a token dashboards and alert actions fill in. A search runs it
    as the literal text (``value`` keeps the dollars), so every consumer may treat it as a string."""

    @property
    def name(self) -> str:
        return self.value[1:-1]


@dataclass(frozen=True)
class Num:
    text: str  # kept as written so printing is exact


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class Null:
    pass


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Binary:
    """Binary operator; logical ops are lower-case words (``and``, ``or``, ``xor``, ``like``)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Unary:
    op: str  # "not" or "-"
    operand: Expr


@dataclass(frozen=True)
class InExpr:
    operand: Expr
    values: tuple[Expr, ...]


Expr = Field | Str | TokenRef | Num | Bool | Null | Call | Binary | Unary | InExpr

# --------------------------------------------------------------------------
# commands


@dataclass(frozen=True)
class Option:
    """``key=value`` command option."""

    key: str
    value: Value


@dataclass(frozen=True)
class Aggregation:
    """``func(arg) as alias``; ``arg`` is a field, an ``eval(...)`` call, or absent."""

    func: str
    arg: Field | Call | None = None
    alias: str | None = None


@dataclass(frozen=True)
class SearchCommand:
    """The leading search or an explicit ``| search``."""

    keyword: ClassVar[str] = "search"

    expr: SearchExpr | None
    explicit: bool = True  # False for the implicit search that starts a query


@dataclass(frozen=True)
class WhereCommand:
    keyword: ClassVar[str] = "where"

    expr: Expr


@dataclass(frozen=True)
class Assignment:
    field: str
    expr: Expr


@dataclass(frozen=True)
class EvalCommand:
    keyword: ClassVar[str] = "eval"

    assignments: tuple[Assignment, ...]


@dataclass(frozen=True)
class StatsCommand:
    """stats, eventstats and streamstats share one shape."""

    name: str
    options: tuple[Option, ...]
    aggregations: tuple[Aggregation, ...]
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class TstatsCommand:
    keyword: ClassVar[str] = "tstats"

    options: tuple[Option, ...]
    aggregations: tuple[Aggregation, ...]
    datamodel: str | None = None  # e.g. "Endpoint.Processes"
    where: SearchExpr | None = None
    by: tuple[str, ...] = ()
    by_options: tuple[Option, ...] = ()  # e.g. span=1h after the by fields


@dataclass(frozen=True)
class RenameCommand:
    keyword: ClassVar[str] = "rename"

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FillnullCommand:
    keyword: ClassVar[str] = "fillnull"

    value: Value | None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conversion:
    func: str
    field: str
    alias: str | None = None


@dataclass(frozen=True)
class ConvertCommand:
    keyword: ClassVar[str] = "convert"

    options: tuple[Option, ...]
    conversions: tuple[Conversion, ...]


@dataclass(frozen=True)
class FieldListCommand:
    """``table`` and ``fields``; ``mode`` is "+" or "-" for ``fields``."""

    name: str
    fields: tuple[str, ...]
    mode: str = ""


@dataclass(frozen=True)
class MstatsCommand:
    """``mstats`` over metric indexes: tstats' shape without a data model."""

    keyword: ClassVar[str] = "mstats"

    options: tuple[Option, ...]
    aggregations: tuple[Aggregation, ...]
    where: SearchExpr | None = None
    by: tuple[str, ...] = ()
    by_options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class ArgsCommand:
    """A command made of ``key=value`` options and positional words (rex, bin, dedup, ...).

    Which options and how many words each command takes is the table
    ``data/commands.yml``; order between options and words carries no meaning.
    """

    name: str
    options: tuple[Option, ...]
    args: tuple[Value, ...] = ()

    def option(self, key: str) -> str | None:
        for opt in self.options:
            if opt.key.lower() == key:
                return opt.value.text
        return None


@dataclass(frozen=True)
class InputlookupCommand:
    """``inputlookup [options] TABLE [WHERE search]``: rows of a lookup table, filtered by a search."""

    keyword: ClassVar[str] = "inputlookup"

    options: tuple[Option, ...]
    table: str
    where: SearchExpr | None = None


@dataclass(frozen=True)
class RegexCommand:
    """``regex [field=|field!=]"pattern"``; no field means ``_raw``."""

    keyword: ClassVar[str] = "regex"

    pattern: str
    field: str | None = None
    negated: bool = False


@dataclass(frozen=True)
class FieldAs:
    """``field [AS alias]`` in lookup input and output lists."""

    field: str
    alias: str | None = None


@dataclass(frozen=True)
class LookupCommand:
    keyword: ClassVar[str] = "lookup"

    options: tuple[Option, ...]
    table: str
    inputs: tuple[FieldAs, ...]
    output_mode: str | None = None  # "OUTPUT" or "OUTPUTNEW"; None means every table column
    outputs: tuple[FieldAs, ...] = ()


@dataclass(frozen=True)
class SubpipelineCommand:
    """join / append / appendpipe: options, join fields, and the ``[...]`` pipeline."""

    name: str
    options: tuple[Option, ...]
    fields: tuple[str, ...]
    pipeline: Pipeline


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False
    func: str | None = None  # auto, str, ip, num


@dataclass(frozen=True)
class SortCommand:
    keyword: ClassVar[str] = "sort"

    keys: tuple[SortKey, ...]
    limit: int | None = None


@dataclass(frozen=True)
class TransactionCommand:
    """``transaction fields... startswith=(search) endswith=(search) maxspan=...``."""

    keyword: ClassVar[str] = "transaction"

    fields: tuple[str, ...]
    options: tuple[Option, ...]
    starts_with: SearchExpr | None = None
    ends_with: SearchExpr | None = None


@dataclass(frozen=True)
class ForeachCommand:
    """``foreach fields [template]``; the template holds <<FIELD>> tokens, so it stays text."""

    keyword: ClassVar[str] = "foreach"

    fields: tuple[str, ...]
    options: tuple[Option, ...]
    template: str


@dataclass(frozen=True)
class ReplaceCommand:
    """``replace old WITH new, ... IN fields``."""

    keyword: ClassVar[str] = "replace"

    pairs: tuple[tuple[Value, Value], ...]
    fields: tuple[str, ...]


@dataclass(frozen=True)
class GenericCommand:
    """Any command not modelled yet: its arguments kept verbatim."""

    name: str
    args: str


Command = (
    SearchCommand
    | WhereCommand
    | EvalCommand
    | StatsCommand
    | TstatsCommand
    | RenameCommand
    | FillnullCommand
    | ConvertCommand
    | FieldListCommand
    | MstatsCommand
    | ArgsCommand
    | InputlookupCommand
    | RegexCommand
    | LookupCommand
    | SubpipelineCommand
    | SortCommand
    | TransactionCommand
    | ForeachCommand
    | ReplaceCommand
    | GenericCommand
)


def command_name(cmd: Command) -> str:
    """The SPL name of a command node (``stats``, ``rex``, ``lookup``, ...)."""
    name = getattr(cmd, "name", None)
    return name if isinstance(name, str) else type(cmd).keyword  # type: ignore[union-attr]


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------


_TOKEN = re.compile(r"\$[A-Za-z0-9_.:{}@-]+\$")


def token_name(text: str) -> str | None:
    """``name`` when ``text`` is exactly ``$name$``."""
    return text[1:-1] if _TOKEN.fullmatch(text) else None


def walk(node: Any) -> Iterator[Any]:
    """Every node under ``node`` (itself included), depth first; subsearches too."""
    yield node
    if is_dataclass(node) and not isinstance(node, type):
        for f in fields(node):
            yield from walk(getattr(node, f.name))
    elif isinstance(node, tuple | list):
        for x in node:
            yield from walk(x)


def tokens(node: Any) -> list[str]:
    """The ``$name$`` tokens a search uses, as written, in order of first use."""
    found: dict[str, None] = {}
    for n in walk(node):
        if isinstance(n, TokenRef):
            found[n.value] = None
        elif isinstance(n, Value) and n.token is not None:
            found[n.text] = None
    return list(found)


def to_json(node: Any) -> Any:
    """A JSON-ready view of a node: ``{"type": ClassName, field: ...}``."""
    if is_dataclass(node) and not isinstance(node, type):
        out: dict[str, Any] = {"type": type(node).__name__}
        for f in fields(node):
            out[f.name] = to_json(getattr(node, f.name))
        return out
    if isinstance(node, tuple | list):
        return [to_json(x) for x in node]
    return node

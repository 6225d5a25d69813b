"""AST -> SPL text.

The output re-parses to an equal AST (tests check this over the corpus).
Parentheses are added only where the target grammar's precedence needs them;
in the search language an OR inside an AND is parenthesised for readability
even though Splunk's precedence would not require it.
"""

from __future__ import annotations

from functools import singledispatch

from translator.errors import SPLSyntaxError
from translator.spl import ast
from translator.spl.tokens import Kind, Lexer, Mode, encode_string, escape

_SEARCH_KEYWORDS = {"AND", "OR", "NOT", "IN"}


def print_pipeline(p: ast.Pipeline) -> str:
    texts = [print_command(c) for c in p.commands]
    first = p.commands[0] if p.commands else None
    if isinstance(first, ast.SearchCommand) and not first.explicit:
        return " | ".join(texts)
    return "| " + " | ".join(texts) if texts else ""


# -- search language -------------------------------------------------------------


def word(text: str) -> str:
    """A search-language word (field name, term), quoted when it would not re-read as itself."""
    return escape(text) if _relexes(text, Mode.SEARCH) and text not in _SEARCH_KEYWORDS else encode_string(text)


def field_word(name: str) -> str:
    """A field name before an operator: a trailing ``!`` would join the ``=`` that follows (``y!=``)."""
    return encode_string(name) if name.endswith("!") else word(name)


def value(v: ast.Value, term: bool = False) -> str:
    """A value as it was written: quoted, or as an unquoted word with escapes.

    AND/OR/NOT/IN are operators only where a term starts (``term=True``); after
    ``=`` or inside ``IN (...)`` they are plain values.
    """
    mode = Mode.SEARCH if term else Mode.VALUE
    if v.quoted or not _relexes(v.text, mode) or (term and v.text in _SEARCH_KEYWORDS):
        return encode_string(v.text)
    return escape(v.text)


def _relexes(text: str, mode: int) -> bool:
    """True when ``text`` printed unquoted reads back as exactly one word equal to it.

    The printer asks the tokenizer rather than keeping its own list of special
    characters, so the two cannot drift apart.
    """
    candidate = escape(text)
    if not candidate or candidate[0] == "(":
        return False
    try:
        tok = Lexer(candidate).next(mode)
    except SPLSyntaxError:
        return False
    return tok.kind is Kind.WORD and tok.start == 0 and tok.end == len(candidate) and tok.value == text


def print_search(e: ast.SearchExpr) -> str:
    if isinstance(e, ast.Term):
        return value(e.value, term=True)
    if isinstance(e, ast.Compare):
        return f"{field_word(e.field)}{e.op}{value(e.value)}"
    if isinstance(e, ast.InList):
        return f"{field_word(e.field)} IN ({', '.join(value(v) for v in e.values)})"
    if isinstance(e, ast.Not):
        inner = print_search(e.operand)
        return f"NOT {inner}" if _search_atomic(e.operand) else f"NOT ({inner})"
    if isinstance(e, ast.Or):
        return " OR ".join(
            print_search(x) if _search_atomic(x) or isinstance(x, ast.Not) else f"({print_search(x)})"
            for x in e.operands
        )
    if isinstance(e, ast.And):
        return " ".join(
            f"({print_search(x)})" if isinstance(x, ast.Or | ast.And) else print_search(x) for x in e.operands
        )
    if isinstance(e, ast.Subsearch):
        return f"[{print_pipeline(e.pipeline)}]"
    raise TypeError(f"not a search expression: {e!r}")


def _search_atomic(e: ast.SearchExpr) -> bool:
    return isinstance(e, ast.Term | ast.Compare | ast.InList | ast.Subsearch)


# -- eval language -----------------------------------------------------------------

_PRECEDENCE = {
    "or": 1,
    "xor": 2,
    "and": 3,
    # 4: unary not
    "=": 5,
    "==": 5,
    "!=": 5,
    "<": 5,
    ">": 5,
    "<=": 5,
    ">=": 5,
    "like": 5,
    "+": 6,
    "-": 6,
    ".": 6,
    "*": 7,
    "/": 7,
    "%": 7,
}


def _expr_prec(e: ast.Expr) -> int:
    if isinstance(e, ast.Binary):
        return _PRECEDENCE[e.op]
    if isinstance(e, ast.InExpr):
        return 5
    if isinstance(e, ast.Unary):
        return 4 if e.op == "not" else 8
    return 9


def print_expr(e: ast.Expr) -> str:
    if isinstance(e, ast.Field):
        return encode_string(e.name, "'") if e.quoted else e.name
    if isinstance(e, ast.TokenRef):
        return e.value
    if isinstance(e, ast.Str):
        return encode_string(e.value)
    if isinstance(e, ast.Num):
        return e.text
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Null):
        return "null"
    if isinstance(e, ast.Call):
        return f"{e.name}({', '.join(print_expr(a) for a in e.args)})"
    if isinstance(e, ast.Unary):
        inner = _wrap(e.operand, _expr_prec(e), right=True)
        return f"NOT {inner}" if e.op == "not" else f"-{inner}"
    if isinstance(e, ast.InExpr):
        return f"{_wrap(e.operand, 6)} IN ({', '.join(print_expr(v) for v in e.values)})"
    if isinstance(e, ast.Binary):
        prec = _PRECEDENCE[e.op]
        op = e.op.upper() if e.op.isalpha() else e.op
        left = _wrap(e.left, prec if prec != 5 else 6)
        right = _wrap(e.right, prec + 1)
        return f"{left} {op} {right}"
    raise TypeError(f"not an expression: {e!r}")


def _wrap(e: ast.Expr, min_prec: int, right: bool = False) -> str:
    text = print_expr(e)
    if _expr_prec(e) < min_prec:
        return f"({text})"
    return text


# -- commands -----------------------------------------------------------------------


def _options(opts: tuple[ast.Option, ...]) -> list[str]:
    return [f"{o.key}={value(o.value)}" for o in opts]


def _aggregation(a: ast.Aggregation) -> str:
    text = a.func
    if isinstance(a.arg, ast.Field):
        text += f"({encode_string(a.arg.name) if a.arg.quoted else word(a.arg.name)})"
    elif isinstance(a.arg, ast.Call):
        text += f"(eval({print_expr(a.arg.args[0])}))"
    if a.alias is not None:
        text += f" as {value(ast.Value(a.alias))}"
    return text


@singledispatch
def print_command(cmd: object) -> str:
    raise TypeError(f"not a command: {cmd!r}")


@print_command.register
def _(cmd: ast.SearchCommand) -> str:
    body = "" if cmd.expr is None else print_search(cmd.expr)
    return f"search {body}".rstrip() if cmd.explicit else body


@print_command.register
def _(cmd: ast.WhereCommand) -> str:
    return f"where {print_expr(cmd.expr)}"


@print_command.register
def _(cmd: ast.EvalCommand) -> str:
    parts = []
    for a in cmd.assignments:
        plain = _relexes(a.field, Mode.SEARCH) and "'" not in a.field and a.field not in _SEARCH_KEYWORDS
        target = a.field if plain else encode_string(a.field, "'")
        parts.append(f"{target}={print_expr(a.expr)}")
    return "eval " + ", ".join(parts)


@print_command.register
def _(cmd: ast.StatsCommand) -> str:
    parts = [cmd.name, *_options(cmd.options), *(_aggregation(a) for a in cmd.aggregations)]
    if cmd.by:
        parts += ["by", *(word(f) for f in cmd.by)]
    return " ".join(parts)


@print_command.register(ast.TstatsCommand)
@print_command.register(ast.MstatsCommand)
def _(cmd: ast.TstatsCommand | ast.MstatsCommand) -> str:
    is_tstats = isinstance(cmd, ast.TstatsCommand)
    parts = ["tstats" if is_tstats else "mstats", *_options(cmd.options), *(_aggregation(a) for a in cmd.aggregations)]
    if isinstance(cmd, ast.TstatsCommand) and cmd.datamodel is not None:
        parts.append(f"from datamodel={word(cmd.datamodel)}")
    if cmd.where is not None:
        parts += ["where", print_search(cmd.where)]
    if cmd.by:
        parts += ["by", *(word(f) for f in cmd.by), *_options(cmd.by_options)]
    return " ".join(parts)


@print_command.register
def _(cmd: ast.RenameCommand) -> str:
    return "rename " + ", ".join(f"{word(a)} as {word(b)}" for a, b in cmd.pairs)


@print_command.register
def _(cmd: ast.FillnullCommand) -> str:
    parts = ["fillnull"]
    if cmd.value is not None:
        parts.append(f"value={value(cmd.value)}")
    parts += [word(f) for f in cmd.fields]
    return " ".join(parts)


@print_command.register
def _(cmd: ast.ConvertCommand) -> str:
    parts = ["convert", *_options(cmd.options)]
    for c in cmd.conversions:
        parts.append(f"{c.func}({word(c.field)})" + (f" as {word(c.alias)}" if c.alias else ""))
    return " ".join(parts)


@print_command.register
def _(cmd: ast.FieldListCommand) -> str:
    parts = [cmd.name] + ([cmd.mode] if cmd.mode else []) + [word(f) for f in cmd.fields]
    return " ".join(parts)


@print_command.register
def _(cmd: ast.InputlookupCommand) -> str:
    parts = ["inputlookup", *_options(cmd.options), word(cmd.table)]
    if cmd.where is not None:
        parts += ["where", print_search(cmd.where)]
    return " ".join(parts)


@print_command.register
def _(cmd: ast.ArgsCommand) -> str:
    return " ".join([cmd.name, *_options(cmd.options), *(value(a, term=True) for a in cmd.args)])


@print_command.register
def _(cmd: ast.RegexCommand) -> str:
    pattern = encode_string(cmd.pattern)
    if cmd.field is None:
        return f"regex {pattern}"
    return f"regex {word(cmd.field)}{'!=' if cmd.negated else '='}{pattern}"


def _field_as(items: tuple[ast.FieldAs, ...]) -> str:
    return ", ".join(word(i.field) + (f" as {word(i.alias)}" if i.alias is not None else "") for i in items)


@print_command.register
def _(cmd: ast.LookupCommand) -> str:
    parts = ["lookup", *_options(cmd.options), word(cmd.table), _field_as(cmd.inputs)]
    if cmd.output_mode is not None:
        parts += [cmd.output_mode, _field_as(cmd.outputs)]
    return " ".join(parts)


@print_command.register
def _(cmd: ast.SubpipelineCommand) -> str:
    parts = [cmd.name, *_options(cmd.options), *(word(f) for f in cmd.fields)]
    return " ".join(parts) + f" [{print_pipeline(cmd.pipeline)}]"


@print_command.register
def _(cmd: ast.SortCommand) -> str:
    keys = []
    for k in cmd.keys:
        name = word(k.field) if k.field[:1] not in ("+", "-") else encode_string(k.field)
        keys.append(("-" if k.descending else "") + (f"{k.func}({name})" if k.func else name))
    return " ".join(["sort", *([str(cmd.limit)] if cmd.limit is not None else []), ", ".join(keys)])


@print_command.register
def _(cmd: ast.TransactionCommand) -> str:
    parts = ["transaction", *(word(f) for f in cmd.fields), *_options(cmd.options)]
    if cmd.starts_with is not None:
        parts.append(f"startswith=({print_search(cmd.starts_with)})")
    if cmd.ends_with is not None:
        parts.append(f"endswith=({print_search(cmd.ends_with)})")
    return " ".join(parts)


@print_command.register
def _(cmd: ast.ForeachCommand) -> str:
    return " ".join(["foreach", *(word(f) for f in cmd.fields), *_options(cmd.options), f"[{cmd.template}]"])


@print_command.register
def _(cmd: ast.ReplaceCommand) -> str:
    pairs = ", ".join(f"{value(old, term=True)} with {value(new, term=True)}" for old, new in cmd.pairs)
    return f"replace {pairs}" + (f" in {', '.join(word(f) for f in cmd.fields)}" if cmd.fields else "")


@print_command.register
def _(cmd: ast.GenericCommand) -> str:
    return f"{cmd.name} {cmd.args}".rstrip()

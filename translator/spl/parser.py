"""Recursive-descent parser: expanded SPL text -> :class:`Pipeline`.

Two expression grammars live here, because Splunk has two:
- the search language (``search``, ``tstats ... where``): NOT binds tightest,
  then OR, then AND (explicit or implicit), so ``a OR b c`` is ``(a OR b) c``;
- the eval language (``eval``, ``where``): NOT, then AND, then OR, as usual.

Commands are parsed by the functions in ``_COMMANDS``; a command without an
entry becomes a :class:`GenericCommand` with its arguments kept verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from translator.data import load_table
from translator.errors import Location, SPLSyntaxError
from translator.spl import ast
from translator.spl.tokens import Kind, Lexer, Mode, Token

_T = TypeVar("_T")
_COMMAND_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STATS_LIKE = ("stats", "eventstats", "streamstats", "timechart")
MAX_DEPTH = 50  # nesting a query may use (real searches stay far below); deeper is an error, not a stack overflow
_TABLE = load_table("commands")
_OPTIONS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in _TABLE["command_options"].items()}
_ARGS_COMMANDS: dict[str, dict] = _TABLE["args_commands"]
_COMPARE_OPS = ("=", "!=", "<", ">", "<=", ">=", "==")


class Parser:
    def __init__(self, text: str, origin: str = "", locate: Callable[[int], Location] | None = None) -> None:
        self.lx = Lexer(text, origin, locate)
        self.depth = 0  # parentheses and subsearches open around the current position
        # the lexer's methods directly: these two run once per token or more
        self.peek: Callable[..., Token] = self.lx.peek
        self.next: Callable[..., Token] = self.lx.next

    # -- helpers -----------------------------------------------------------
    def peek2(self, mode: int = Mode.SEARCH) -> Token:
        """The token after the next one."""
        saved = self.lx.pos
        self.lx.next(mode)
        tok = self.lx.peek(mode)
        self.lx.pos = saved
        return tok

    def error(self, message: str, tok: Token) -> SPLSyntaxError:
        return self.lx.error(message, tok.start)

    def expect(self, kind: Kind, mode: int = Mode.SEARCH, what: str = "") -> Token:
        tok = self.next(mode)
        if tok.kind is not kind:
            raise self.error(f"expected {what or kind.value}, found {describe(tok)}", tok)
        return tok

    def at_end_of_command(self, mode: int = Mode.SEARCH) -> bool:
        return self.peek(mode).kind in (Kind.PIPE, Kind.RBRACKET, Kind.EOF)

    def name(self, what: str = "a field name", mode: int = Mode.SEARCH) -> str:
        """A field name: an unquoted word or a quoted string."""
        tok = self.next(mode)
        if tok.kind in (Kind.WORD, Kind.STRING):
            return tok.value
        raise self.error(f"expected {what}, found {describe(tok)}", tok)

    # -- pipeline ------------------------------------------------------------
    def parse(self) -> ast.Pipeline:
        pipeline = self.pipeline()
        tok = self.peek()
        if tok.kind is not Kind.EOF:
            raise self.error(f"unexpected {describe(tok)}", tok)
        return pipeline

    def pipeline(self) -> ast.Pipeline:
        commands: list[ast.Command] = []
        first = self.peek()
        if first.kind is Kind.PIPE:
            pass
        elif first.kind in (Kind.EOF, Kind.RBRACKET):
            raise self.error("empty search", first)
        else:
            commands.append(ast.SearchCommand(self.search_expr(), explicit=False))
        while self.peek().kind is Kind.PIPE:
            self.next()
            commands.append(self.command())
        return ast.Pipeline(tuple(commands))

    def command(self) -> ast.Command:
        tok = self.next()
        if tok.kind is not Kind.WORD or not _COMMAND_NAME.fullmatch(tok.value):
            raise self.error(f"expected a command name after '|', found {describe(tok)}", tok)
        name = tok.value.lower()
        parse = _COMMANDS.get(name)
        if parse is None:
            args, _ = self.lx.raw_until_pipe()
            return ast.GenericCommand(name, args)
        return parse(self, name)

    # -- search language ------------------------------------------------------
    def search_expr(self, stop: tuple[str, ...] = ()) -> ast.SearchExpr:
        """AND level (lowest): explicit AND or juxtaposition."""
        operands = [self.search_or(stop)]
        while True:
            tok = self.peek()
            if tok.kind in (Kind.PIPE, Kind.RPAREN, Kind.RBRACKET, Kind.EOF):
                break
            if tok.kind is Kind.WORD and tok.value.lower() in stop:
                break
            if tok.kind is Kind.WORD and tok.value == "AND":
                self.next()
                if self._search_operand_ends(stop):
                    raise self.error("dangling AND: nothing follows it", tok)
            operands.append(self.search_or(stop))
        return operands[0] if len(operands) == 1 else ast.And(tuple(_flatten(ast.And, operands)))

    def _search_operand_ends(self, stop: tuple[str, ...]) -> bool:
        tok = self.peek()
        return tok.kind in (Kind.PIPE, Kind.RPAREN, Kind.RBRACKET, Kind.EOF) or (
            tok.kind is Kind.WORD and tok.value.lower() in stop
        )

    def search_or(self, stop: tuple[str, ...]) -> ast.SearchExpr:
        operands = [self.search_not(stop)]
        while self.peek().kind is Kind.WORD and self.peek().value == "OR":
            tok = self.next()
            if self._search_operand_ends(stop):
                raise self.error("dangling OR: nothing follows it", tok)
            operands.append(self.search_not(stop))
        return operands[0] if len(operands) == 1 else ast.Or(tuple(_flatten(ast.Or, operands)))

    def search_not(self, stop: tuple[str, ...]) -> ast.SearchExpr:
        tok = self.peek()
        if tok.kind is Kind.WORD and tok.value == "NOT":
            self.next()
            if self._search_operand_ends(stop):
                raise self.error("dangling NOT: nothing follows it", tok)
            inner = self.nested(tok, lambda: self.search_not(stop))
            return ast.Not(inner)
        return self.search_primary(stop)

    def nested(self, tok: Token, parse: Callable[[], _T]) -> _T:
        """``parse()`` one level deeper (a parenthesis, subsearch or prefix operator at ``tok``): past
        MAX_DEPTH, an error at it instead of a stack overflow."""
        if self.depth >= MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} parentheses or subsearches", tok)
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def search_primary(self, stop: tuple[str, ...]) -> ast.SearchExpr:
        tok = self.peek()
        if tok.kind is Kind.LPAREN:
            self.next()
            if self.peek().kind is Kind.RPAREN:
                raise self.error("empty parentheses", tok)
            inner = self.nested(tok, lambda: self.search_expr(stop=()))
            close = self.next()
            if close.kind is not Kind.RPAREN:
                raise self.error("unbalanced '(': no matching ')'", tok)
            return inner
        if tok.kind is Kind.LBRACKET:
            self.next()
            inner_pipeline = self.nested(tok, self.pipeline)
            close = self.next()
            if close.kind is not Kind.RBRACKET:
                raise self.error("unbalanced '[': no matching ']'", tok)
            return ast.Subsearch(inner_pipeline)
        if tok.kind is Kind.WORD and tok.value in ("AND", "OR", "IN"):
            raise self.error(f"{tok.value} has no term before it", tok)
        if tok.kind in (Kind.WORD, Kind.STRING):
            self.next()
            after = self.peek()
            if after.kind is Kind.OP:
                return self.comparison(tok)
            if after.kind is Kind.WORD and after.value == "IN" and self.peek2().kind is Kind.LPAREN:
                self.next()
                return ast.InList(tok.value, self.value_list())
            return ast.Term(ast.Value(tok.value, tok.kind is Kind.STRING))
        if tok.kind is Kind.OP:
            raise self.error(f"operator {tok.value!r} has no field before it", tok)
        if tok.kind is Kind.RPAREN:
            raise self.error("unbalanced ')': no matching '('", tok)
        raise self.error(f"unexpected {describe(tok)}", tok)

    def comparison(self, field_tok: Token) -> ast.Compare:
        op = self.next()
        if op.value not in _COMPARE_OPS:
            raise self.error(f"unknown operator {op.value!r}", op)
        val = self.next(Mode.VALUE)
        if val.kind not in (Kind.WORD, Kind.STRING):
            raise self.error(f"dangling operator {op.value!r}: no value after it", op)
        opname = "=" if op.value == "==" else op.value
        return ast.Compare(field_tok.value, opname, ast.Value(val.value, val.kind is Kind.STRING))

    def value_list(self) -> tuple[ast.Value, ...]:
        open_tok = self.expect(Kind.LPAREN, what="'('")
        values: list[ast.Value] = []
        while True:
            tok = self.next()
            if tok.kind is Kind.RPAREN:
                break
            if tok.kind is Kind.COMMA:
                continue
            if tok.kind not in (Kind.WORD, Kind.STRING):
                raise self.error("unbalanced '(' in IN list", open_tok)
            values.append(ast.Value(tok.value, tok.kind is Kind.STRING))
        if not values:
            raise self.error("empty IN list", open_tok)
        return tuple(values)

    # -- eval language --------------------------------------------------------
    def expr(self) -> ast.Expr:
        left = self.expr_xor()
        while self.peek(Mode.EXPR).is_word("or"):
            self.next(Mode.EXPR)
            left = ast.Binary("or", left, self.expr_xor())
        return left

    def expr_xor(self) -> ast.Expr:
        left = self.expr_and()
        while self.peek(Mode.EXPR).is_word("xor"):
            self.next(Mode.EXPR)
            left = ast.Binary("xor", left, self.expr_and())
        return left

    def expr_and(self) -> ast.Expr:
        left = self.expr_not()
        while self.peek(Mode.EXPR).is_word("and"):
            self.next(Mode.EXPR)
            left = ast.Binary("and", left, self.expr_not())
        return left

    def expr_not(self) -> ast.Expr:
        tok = self.peek(Mode.EXPR)
        if tok.is_word("not") or (tok.kind is Kind.OP and tok.value == "!"):
            self.next(Mode.EXPR)
            inner = self.nested(tok, self.expr_not)
            return ast.Unary("not", inner)
        return self.expr_compare()

    def expr_compare(self) -> ast.Expr:
        left = self.expr_additive()
        tok = self.peek(Mode.EXPR)
        if tok.kind is Kind.OP and tok.value in _COMPARE_OPS:
            self.next(Mode.EXPR)
            return ast.Binary(tok.value, left, self.expr_additive())
        if tok.is_word("like"):
            self.next(Mode.EXPR)
            return ast.Binary("like", left, self.expr_additive())
        if tok.is_word("in"):
            self.next(Mode.EXPR)
            return ast.InExpr(left, self.expr_args())
        return left

    def expr_additive(self) -> ast.Expr:
        left = self.expr_multiplicative()
        while True:
            tok = self.peek(Mode.EXPR)
            if tok.kind is Kind.OP and tok.value in ("+", "-", "."):
                self.next(Mode.EXPR)
                left = ast.Binary(tok.value, left, self.expr_multiplicative())
            else:
                return left

    def expr_multiplicative(self) -> ast.Expr:
        left = self.expr_unary()
        while True:
            tok = self.peek(Mode.EXPR)
            if tok.kind is Kind.OP and tok.value in ("*", "/", "%"):
                self.next(Mode.EXPR)
                left = ast.Binary(tok.value, left, self.expr_unary())
            else:
                return left

    def expr_unary(self) -> ast.Expr:
        tok = self.peek(Mode.EXPR)
        if tok.kind is Kind.OP and tok.value == "-":
            self.next(Mode.EXPR)
            inner = self.nested(tok, self.expr_unary)
            return ast.Unary("-", inner)
        return self.expr_primary()

    def expr_primary(self) -> ast.Expr:
        tok = self.next(Mode.EXPR)
        if tok.kind is Kind.NUMBER:
            return ast.Num(tok.value)
        if tok.kind is Kind.STRING:
            return ast.Str(tok.value)
        if tok.kind is Kind.TOKEN:
            return ast.TokenRef(f"${tok.value}$")
        if tok.kind is Kind.FIELDQ:
            return ast.Field(tok.value, quoted=True)
        if tok.kind is Kind.LPAREN:
            inner = self.nested(tok, self.expr)
            if self.next(Mode.EXPR).kind is not Kind.RPAREN:
                raise self.error("unbalanced '(': no matching ')'", tok)
            return inner
        if tok.kind is Kind.IDENT:
            if self.peek(Mode.EXPR).kind is Kind.LPAREN:
                return ast.Call(tok.value.lower(), self.expr_args())
            low = tok.value.lower()
            if low in ("true", "false"):
                return ast.Bool(low == "true")
            if low == "null":
                return ast.Null()
            return ast.Field(tok.value)
        if tok.kind in (Kind.EOF, Kind.PIPE, Kind.RPAREN, Kind.COMMA):
            raise self.error("incomplete expression: a value is missing", tok)
        raise self.error(f"unexpected {describe(tok)} in expression", tok)

    def expr_args(self) -> tuple[ast.Expr, ...]:
        open_tok = self.expect(Kind.LPAREN, Mode.EXPR, "'('")
        args: list[ast.Expr] = []
        if self.peek(Mode.EXPR).kind is Kind.RPAREN:
            self.next(Mode.EXPR)
            return ()
        return self.nested(open_tok, lambda: self._args(open_tok, args))

    def _args(self, open_tok: Token, args: list[ast.Expr]) -> tuple[ast.Expr, ...]:
        while True:
            args.append(self.expr())
            tok = self.next(Mode.EXPR)
            if tok.kind is Kind.RPAREN:
                return tuple(args)
            if tok.kind is not Kind.COMMA:
                raise self.error("unbalanced '(': expected ',' or ')'", open_tok)

    # -- shared command pieces -------------------------------------------------
    def at_option(self) -> bool:
        """True when the next tokens are ``key=``."""
        return self.peek().kind is Kind.WORD and self.peek2().kind is Kind.OP and self.peek2().value == "="

    def option(self, command: str) -> ast.Option:
        """One ``key=value`` option, checked against the command's table of options."""
        key_tok = self.next()
        key = key_tok.value
        allowed = _OPTIONS.get(command) or frozenset(_ARGS_COMMANDS.get(command, {}).get("options", ()))
        if key.lower() not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise self.error(f"unknown {command} option {key!r} (known: {known})", key_tok)
        self.next()
        val = self.next(Mode.VALUE)
        if val.kind not in (Kind.WORD, Kind.STRING):
            raise self.error(f"option {key!r} has no value", val)
        return ast.Option(key, ast.Value(val.value, val.kind is Kind.STRING))

    def options(self, command: str) -> tuple[ast.Option, ...]:
        """Leading ``key=value`` options of ``command``."""
        opts: list[ast.Option] = []
        while self.at_option():
            opts.append(self.option(command))
        return tuple(opts)

    def subpipeline(self) -> ast.Pipeline:
        """``[ ... ]``: a nested pipeline."""
        open_tok = self.expect(Kind.LBRACKET, what="'['")
        if self.peek().kind is Kind.RBRACKET:
            raise self.error("empty subsearch", open_tok)
        inner = self.pipeline()
        if self.next().kind is not Kind.RBRACKET:
            raise self.error("unbalanced '[': no matching ']'", open_tok)
        return inner

    def field_as_list(self, stop: tuple[str, ...] = ()) -> tuple[ast.FieldAs, ...]:
        """``field [AS alias], ...`` as in lookup."""

        def item() -> ast.FieldAs:
            name = self.name(mode=Mode.VALUE)
            alias = None
            if self.peek().is_word("as"):
                self.next()
                alias = self.name("a field name after 'as'", Mode.VALUE)
            return ast.FieldAs(name, alias)

        return self.items(item, stop)

    def items(self, item: Callable[[], _T], stop: tuple[str, ...]) -> tuple[_T, ...]:
        """Items up to the end of the command or a ``stop`` word; commas between them are optional."""
        out: list[_T] = []
        while not self.at_end_of_command():
            tok = self.peek()
            if tok.kind is Kind.COMMA:
                self.next()
                continue
            if tok.kind is Kind.WORD and tok.value.lower() in stop:
                break
            out.append(item())
        return tuple(out)

    def aggregations(self, stop: tuple[str, ...]) -> tuple[ast.Aggregation, ...]:
        return self.items(self.aggregation, stop)

    def aggregation(self) -> ast.Aggregation:
        tok = self.next()
        if tok.kind is not Kind.WORD:
            raise self.error(f"expected an aggregate function, found {describe(tok)}", tok)
        func = tok.value
        arg: ast.Field | ast.Call | None = None
        if self.peek().kind is Kind.LPAREN and not self.peek().space_before:
            open_tok = self.next()
            if self.peek().is_word("eval") and self.peek2().kind is Kind.LPAREN:
                self.next()
                args = self.expr_args()
                if len(args) != 1:
                    raise self.error("eval() in an aggregation takes one expression", open_tok)
                arg = ast.Call("eval", args)
            else:
                name = self.next()
                if name.kind not in (Kind.WORD, Kind.STRING):
                    raise self.error(f"expected a field in {func}(), found {describe(name)}", name)
                arg = ast.Field(name.value, quoted=name.kind is Kind.STRING)
            if self.next().kind is not Kind.RPAREN:
                raise self.error(f"unbalanced '(' in {func}()", open_tok)
        alias = None
        if self.peek().is_word("as"):
            self.next()
            alias = self.name("an alias after 'as'", Mode.VALUE)
        return ast.Aggregation(func.lower(), arg, alias)

    def field_list(self, stop: tuple[str, ...] = ()) -> tuple[str, ...]:
        names: list[str] = []
        while not self.at_end_of_command():
            tok = self.peek()
            if tok.kind is Kind.COMMA:
                self.next()
                continue
            if tok.kind is Kind.WORD and tok.value.lower() in stop:
                break
            if tok.kind is Kind.WORD and self.peek2().kind is Kind.OP:
                break  # an option such as span=1h
            names.append(self.name(mode=Mode.VALUE))
        return tuple(names)


# -- command parsers -----------------------------------------------------------


def _search(p: Parser, name: str) -> ast.SearchCommand:
    if p.at_end_of_command():
        return ast.SearchCommand(None)
    return ast.SearchCommand(p.search_expr())


def _where(p: Parser, name: str) -> ast.WhereCommand:
    if p.at_end_of_command(Mode.EXPR):
        raise p.error("where needs an expression", p.peek(Mode.EXPR))
    expr = p.expr()
    _end_of_expr_command(p, name)
    return ast.WhereCommand(expr)


def _eval(p: Parser, name: str) -> ast.EvalCommand:
    assignments: list[ast.Assignment] = []
    while True:
        # the target is everything up to '=': field names like a_-b are allowed here
        tok = p.peek(Mode.EXPR)
        tok = p.next(Mode.EXPR) if tok.kind in (Kind.FIELDQ, Kind.STRING) else p.next(Mode.SEARCH)
        if tok.kind not in (Kind.WORD, Kind.FIELDQ, Kind.STRING):
            raise p.error(f"eval expects 'field=expression', found {describe(tok)}", tok)
        eq = p.next(Mode.EXPR)
        if eq.kind is not Kind.OP or eq.value != "=":
            raise p.error(f"eval expects '=' after {tok.value!r}", eq)
        assignments.append(ast.Assignment(tok.value, p.expr()))
        if p.peek(Mode.EXPR).kind is Kind.COMMA:
            p.next(Mode.EXPR)
            continue
        break
    _end_of_expr_command(p, name)
    return ast.EvalCommand(tuple(assignments))


def _end_of_expr_command(p: Parser, name: str) -> None:
    tok = p.peek(Mode.EXPR)
    if tok.kind not in (Kind.PIPE, Kind.RBRACKET, Kind.EOF):
        raise p.error(f"unexpected {describe(tok)} in {name}", tok)


def _stats(p: Parser, name: str) -> ast.StatsCommand:
    options = p.options(name)
    aggs = p.aggregations(stop=("by",))
    if not aggs:
        raise p.error(f"{name} needs at least one aggregate function", p.peek())
    by: tuple[str, ...] = ()
    if p.peek().is_word("by"):
        kw = p.next()
        by = p.field_list()
        if not by:
            raise p.error(f"'by' in {name} has no fields", kw)
    _end_of_command(p, name)
    return ast.StatsCommand(name, options, aggs, by)


def _tstats(p: Parser, name: str) -> ast.TstatsCommand | ast.MstatsCommand:
    """tstats and mstats: options, aggregations, then ``from``, ``where`` and ``by`` in any order."""
    options = p.options(name)
    aggs = p.aggregations(stop=("from", "where", "by", "groupby"))
    datamodel = None
    where = None
    by: tuple[str, ...] = ()
    by_options: tuple[ast.Option, ...] = ()
    while not p.at_end_of_command():
        kw = p.next()
        low = kw.value.lower() if kw.kind is Kind.WORD else ""
        if low == "from" and datamodel is None and name == "tstats":
            key = p.next()
            if not key.is_word("datamodel"):
                raise p.error("tstats expects 'from datamodel=NAME'", key)
            if p.peek().kind is Kind.OP and p.peek().value == "=":
                p.next()
            datamodel = p.name("a data model name")
        elif low == "where" and where is None:
            where = p.search_expr(stop=("by", "groupby", "from"))
        elif low in ("by", "groupby") and not by:
            names: list[str] = []
            opts: list[ast.Option] = []
            while not p.at_end_of_command():
                before = p.lx.pos
                opts.extend(p.options(f"{name} by"))
                names.extend(p.field_list())
                if p.lx.pos == before:
                    raise p.error(f"unexpected {describe(p.peek())} in {name} 'by'", p.peek())
            by, by_options = tuple(names), tuple(opts)
            if not by:
                raise p.error(f"'by' in {name} has no fields", kw)
        else:
            raise p.error(f"unexpected {describe(kw)} in {name}", kw)
    if name == "mstats":
        return ast.MstatsCommand(options, aggs, where, by, by_options)
    return ast.TstatsCommand(options, aggs, datamodel, where, by, by_options)


def _rename(p: Parser, name: str) -> ast.RenameCommand:
    pairs: list[tuple[str, str]] = []
    while not p.at_end_of_command():
        if p.peek().kind is Kind.COMMA:
            p.next()
            continue
        old = p.name(mode=Mode.VALUE)
        kw = p.next()
        if not kw.is_word("as"):
            raise p.error(f"rename expects 'as' after {old!r}", kw)
        pairs.append((old, p.name("a new field name after 'as'", Mode.VALUE)))
    if not pairs:
        raise p.error("rename needs 'field AS newname'", p.peek())
    return ast.RenameCommand(tuple(pairs))


def _fillnull(p: Parser, name: str) -> ast.FillnullCommand:
    """``fillnull [value=V] [field ...]``; Splunk also takes ``value=`` after the fields."""
    value = None
    fields: list[str] = []
    while not p.at_end_of_command():
        if p.at_option():
            value = p.option(name).value
        elif p.peek().kind is Kind.COMMA:
            p.next()
        else:
            fields.append(p.name(mode=Mode.VALUE))
    return ast.FillnullCommand(value, tuple(fields))


def _inputlookup(p: Parser, name: str) -> ast.InputlookupCommand:
    """``inputlookup [options] TABLE [WHERE search]``: the where clause is in the search language."""
    options = list(p.options(name))
    table = p.name("a lookup table name", Mode.VALUE)
    options += p.options(name)  # Splunk also takes them after the table
    where = None
    if p.peek().is_word("where"):
        kw = p.next()
        if p.at_end_of_command():
            raise p.error("inputlookup WHERE needs a search", kw)
        where = p.search_expr()
    _end_of_command(p, name)
    return ast.InputlookupCommand(tuple(options), table, where)


def _convert(p: Parser, name: str) -> ast.ConvertCommand:
    options = p.options(name)
    conversions: list[ast.Conversion] = []
    while not p.at_end_of_command():
        if p.peek().kind is Kind.COMMA:
            p.next()
            continue
        func = p.expect(Kind.WORD, what="a conversion function")
        open_tok = p.expect(Kind.LPAREN, what="'(' after the conversion function")
        fld = p.name()
        if p.next().kind is not Kind.RPAREN:
            raise p.error(f"unbalanced '(' in {func.value}()", open_tok)
        alias = None
        if p.peek().is_word("as"):
            p.next()
            alias = p.name("an alias after 'as'")
        conversions.append(ast.Conversion(func.value.lower(), fld, alias))
    return ast.ConvertCommand(options, tuple(conversions))


def _field_list_command(p: Parser, name: str) -> ast.FieldListCommand:
    mode = ""
    tok = p.peek()
    if name == "fields" and tok.kind is Kind.WORD and tok.value in ("+", "-"):
        mode = p.next().value
    fields = p.field_list()
    _end_of_command(p, name)
    return ast.FieldListCommand(name, fields, mode)


def _args_command(p: Parser, name: str) -> ast.ArgsCommand:
    """Commands described by ``data/commands.yml``: options and positional words."""
    spec = _ARGS_COMMANDS[name]
    options: list[ast.Option] = []
    args: list[ast.Value] = []
    start = p.peek()
    while not p.at_end_of_command():
        tok = p.peek()
        if tok.kind is Kind.COMMA:
            p.next()
        elif p.at_option():
            options.append(p.option(name))
        elif tok.kind in (Kind.WORD, Kind.STRING):
            p.next()
            args.append(ast.Value(tok.value, tok.kind is Kind.STRING))
        else:
            raise p.error(f"unexpected {describe(tok)} in {name}", tok)
    low, high = spec["args"]
    if len(args) < low:
        raise p.error(f"{name} needs {low} argument{'s' if low > 1 else ''}, found {len(args)}", start)
    if high is not None and len(args) > high:
        raise p.error(f"{name} takes at most {high} argument{'s' if high != 1 else ''}, found {len(args)}", start)
    return ast.ArgsCommand(name, tuple(options), tuple(args))


def _regex(p: Parser, name: str) -> ast.RegexCommand:
    tok = p.next()
    if tok.kind not in (Kind.WORD, Kind.STRING):
        raise p.error(f"regex expects a pattern, found {describe(tok)}", tok)
    field, negated, pattern = None, False, tok.value
    op = p.peek()
    if tok.kind is Kind.WORD and op.kind is Kind.OP:
        if op.value not in ("=", "!="):
            raise p.error(f"regex expects '=' or '!=', found {op.value!r}", op)
        p.next()
        pat = p.next(Mode.VALUE)
        if pat.kind not in (Kind.WORD, Kind.STRING):
            raise p.error(f"regex {tok.value}{op.value} has no pattern", op)
        field, negated, pattern = tok.value, op.value == "!=", pat.value
    _end_of_command(p, name)
    return ast.RegexCommand(pattern, field, negated)


def _lookup(p: Parser, name: str) -> ast.LookupCommand:
    options = p.options(name)
    table = p.name("a lookup table name")
    inputs = p.field_as_list(stop=("output", "outputnew"))
    if not inputs:
        raise p.error(f"lookup {table} names no input field", p.peek())
    mode = None
    outputs: tuple[ast.FieldAs, ...] = ()
    if p.peek().is_word("output", "outputnew"):
        kw = p.next()
        mode = kw.value.upper()
        outputs = p.field_as_list()
        if not outputs:
            raise p.error(f"{kw.value} in lookup names no field", kw)
    _end_of_command(p, name)
    return ast.LookupCommand(options, table, inputs, mode, outputs)


def _subpipeline_command(p: Parser, name: str) -> ast.SubpipelineCommand:
    options: list[ast.Option] = []
    fields: list[str] = []
    while p.peek().kind is not Kind.LBRACKET:
        tok = p.peek()
        if p.at_end_of_command():
            raise p.error(f"{name} needs a [subsearch]", tok)
        if tok.kind is Kind.COMMA:
            p.next()
        elif p.at_option():
            options.append(p.option(name))
        elif name == "join":
            fields.append(p.name(mode=Mode.VALUE))
        else:
            raise p.error(f"{name} expects options and a [subsearch], found {describe(tok)}", tok)
    pipeline = p.subpipeline()
    _end_of_command(p, name)
    return ast.SubpipelineCommand(name, tuple(options), tuple(fields), pipeline)


_SORT_FUNCS = ("auto", "str", "ip", "num")


def _sort(p: Parser, name: str) -> ast.SortCommand:
    limit = None
    tok = p.peek()
    if tok.kind is Kind.WORD and tok.value.isdigit():
        limit = int(p.next().value)
    keys: list[ast.SortKey] = []
    sign = ""
    while not p.at_end_of_command():
        if p.at_option():
            opt = p.option(name)
            if not opt.value.text.isdigit():
                raise p.error(f"sort limit must be a number, found {opt.value.text!r}", tok)
            limit = int(opt.value.text)
            continue
        tok = p.next()
        if tok.kind is Kind.COMMA:
            continue
        if tok.kind is Kind.WORD and tok.value in ("+", "-"):
            sign = tok.value
            continue
        if tok.kind not in (Kind.WORD, Kind.STRING):
            raise p.error(f"unexpected {describe(tok)} in sort", tok)
        text = tok.value
        if tok.kind is Kind.WORD and text[0] in "+-":
            sign, text = text[0], text[1:]
        func = None
        nxt = p.peek()
        if tok.kind is Kind.WORD and text.lower() in _SORT_FUNCS and nxt.kind is Kind.LPAREN and not nxt.space_before:
            p.next()
            func, text = text.lower(), p.name()
            p.expect(Kind.RPAREN, what=f"')' closing {func}(")
        keys.append(ast.SortKey(text, sign == "-", func))
        sign = ""
    if not keys:
        raise p.error("sort needs at least one field", p.peek())
    return ast.SortCommand(tuple(keys), limit)


def _transaction(p: Parser, name: str) -> ast.TransactionCommand:
    fields: list[str] = []
    options: list[ast.Option] = []
    bounds: dict[str, ast.SearchExpr] = {}
    while not p.at_end_of_command():
        tok = p.peek()
        if tok.kind is Kind.COMMA:
            p.next()
        elif p.at_option():
            key = tok.value.lower()
            if key in ("startswith", "endswith") and p.lx.text.startswith("(", p.peek2().end):
                p.next()
                p.next()
                open_tok = p.next()
                bounds[key] = p.search_expr()
                if p.next().kind is not Kind.RPAREN:
                    raise p.error(f"unbalanced '(' in {tok.value}=", open_tok)
            else:
                options.append(p.option(name))
        else:
            fields.append(p.name(mode=Mode.VALUE))
    return ast.TransactionCommand(tuple(fields), tuple(options), bounds.get("startswith"), bounds.get("endswith"))


def _foreach(p: Parser, name: str) -> ast.ForeachCommand:
    fields: list[str] = []
    options: list[ast.Option] = []
    while p.peek().kind is not Kind.LBRACKET:
        tok = p.peek()
        if p.at_end_of_command():
            raise p.error("foreach needs a [template]", tok)
        if tok.kind is Kind.COMMA:
            p.next()
        elif p.at_option():
            options.append(p.option(name))
        else:
            fields.append(p.name(mode=Mode.VALUE))
    template = p.lx.raw_bracket()
    _end_of_command(p, name)
    return ast.ForeachCommand(tuple(fields), tuple(options), template)


def _replace(p: Parser, name: str) -> ast.ReplaceCommand:
    pairs: list[tuple[ast.Value, ast.Value]] = []
    fields: tuple[str, ...] = ()
    while not p.at_end_of_command():
        old = p.next(Mode.VALUE)
        if old.kind is Kind.COMMA:
            continue
        if old.is_word("in") and pairs:
            fields = p.field_list()
            break
        kw = p.next()
        if old.kind not in (Kind.WORD, Kind.STRING) or not kw.is_word("with"):
            raise p.error("replace expects 'OLD with NEW'", old)
        new = p.next(Mode.VALUE)
        if new.kind not in (Kind.WORD, Kind.STRING):
            raise p.error("replace: no value after 'with'", kw)
        pairs.append((ast.Value(old.value, old.kind is Kind.STRING), ast.Value(new.value, new.kind is Kind.STRING)))
    if not pairs:
        raise p.error("replace expects 'OLD with NEW'", p.peek())
    _end_of_command(p, name)
    return ast.ReplaceCommand(tuple(pairs), fields)


def _end_of_command(p: Parser, name: str) -> None:
    if not p.at_end_of_command():
        tok = p.peek()
        raise p.error(f"unexpected {describe(tok)} in {name}", tok)


_COMMANDS: dict[str, Callable[[Parser, str], ast.Command]] = {
    "search": _search,
    "where": _where,
    "eval": _eval,
    "tstats": _tstats,
    "mstats": _tstats,
    "regex": _regex,
    "lookup": _lookup,
    "inputlookup": _inputlookup,
    "join": _subpipeline_command,
    "append": _subpipeline_command,
    "appendpipe": _subpipeline_command,
    "sort": _sort,
    "transaction": _transaction,
    "foreach": _foreach,
    "replace": _replace,
    **{n: _args_command for n in _ARGS_COMMANDS},
    "rename": _rename,
    "fillnull": _fillnull,
    "convert": _convert,
    "table": _field_list_command,
    "fields": _field_list_command,
    **{n: _stats for n in STATS_LIKE},
}


def _flatten(cls: type, operands: list[ast.SearchExpr]) -> list[ast.SearchExpr]:
    out: list[ast.SearchExpr] = []
    for op in operands:
        if isinstance(op, cls):
            out.extend(op.operands)  # type: ignore[attr-defined]
        else:
            out.append(op)
    return out


def describe(tok: Token) -> str:
    if tok.kind is Kind.EOF:
        return "end of query"
    if tok.kind is Kind.STRING:
        return f"string {tok.value!r}"
    return repr(tok.value)


def parse(text: str, origin: str = "", locate: Callable[[int], Location] | None = None) -> ast.Pipeline:
    """Parse an already macro-expanded SPL query.

    ``locate`` maps an offset in ``text`` to a place in the user's input (see
    :class:`translator.spl.macros.Expansion`), so errors point at what they wrote.
    """
    return Parser(text, origin, locate).parse()

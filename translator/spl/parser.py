"""Recursive-descent parser: expanded SPL text -> :class:`Pipeline`.

Two expression grammars live here, because Splunk has two:
- the search language (``search``, ``tstats ... where``): NOT binds tightest,
  then OR, then AND (explicit or implicit), so ``a OR b c`` is ``(a OR b) c``;
- the eval language (``eval``, ``where``): NOT, then AND, then OR, as usual.

Commands are parsed by the functions in ``_COMMANDS``; a command without an
entry becomes a :class:`GenericCommand` with its arguments kept verbatim.
"""

from __future__ import annotations

from collections.abc import Callable

from translator.errors import Location, SPLSyntaxError
from translator.spl import ast
from translator.spl.tokens import Kind, Lexer, Mode, Token

STATS_LIKE = ("stats", "eventstats", "streamstats")
_COMPARE_OPS = ("=", "!=", "<", ">", "<=", ">=", "==")


class Parser:
    def __init__(self, text: str, origin: str = "", locate: Callable[[int], Location] | None = None) -> None:
        self.lx = Lexer(text, origin, locate)

    # -- helpers -----------------------------------------------------------
    def peek(self, mode: Mode = Mode.SEARCH) -> Token:
        return self.lx.peek(mode)

    def next(self, mode: Mode = Mode.SEARCH) -> Token:
        return self.lx.next(mode)

    def peek2(self, mode: Mode = Mode.SEARCH) -> Token:
        """The token after the next one."""
        saved = self.lx.pos
        self.lx.next(mode)
        tok = self.lx.peek(mode)
        self.lx.pos = saved
        return tok

    def error(self, message: str, tok: Token) -> SPLSyntaxError:
        return self.lx.error(message, tok.start)

    def expect(self, kind: Kind, mode: Mode = Mode.SEARCH, what: str = "") -> Token:
        tok = self.next(mode)
        if tok.kind is not kind:
            raise self.error(f"expected {what or kind.value}, found {describe(tok)}", tok)
        return tok

    def at_end_of_command(self, mode: Mode = Mode.SEARCH) -> bool:
        return self.peek(mode).kind in (Kind.PIPE, Kind.RBRACKET, Kind.EOF)

    def name(self, what: str = "a field name", mode: Mode = Mode.SEARCH) -> str:
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
        if tok.kind is not Kind.WORD:
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
            return ast.Not(self.search_not(stop))
        return self.search_primary(stop)

    def search_primary(self, stop: tuple[str, ...]) -> ast.SearchExpr:
        tok = self.peek()
        if tok.kind is Kind.LPAREN:
            self.next()
            if self.peek().kind is Kind.RPAREN:
                raise self.error("empty parentheses", tok)
            inner = self.search_expr(stop=())
            close = self.next()
            if close.kind is not Kind.RPAREN:
                raise self.error("unbalanced '(': no matching ')'", tok)
            return inner
        if tok.kind is Kind.LBRACKET:
            self.next()
            inner_pipeline = self.pipeline()
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
        if self.peek(Mode.EXPR).is_word("not"):
            self.next(Mode.EXPR)
            return ast.Unary("not", self.expr_not())
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
            return ast.Unary("-", self.expr_unary())
        return self.expr_primary()

    def expr_primary(self) -> ast.Expr:
        tok = self.next(Mode.EXPR)
        if tok.kind is Kind.NUMBER:
            return ast.Num(tok.value)
        if tok.kind is Kind.STRING:
            return ast.Str(tok.value)
        if tok.kind is Kind.FIELDQ:
            return ast.Field(tok.value, quoted=True)
        if tok.kind is Kind.LPAREN:
            inner = self.expr()
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
        while True:
            args.append(self.expr())
            tok = self.next(Mode.EXPR)
            if tok.kind is Kind.RPAREN:
                return tuple(args)
            if tok.kind is not Kind.COMMA:
                raise self.error("unbalanced '(': expected ',' or ')'", open_tok)

    # -- shared command pieces -------------------------------------------------
    def options(self) -> tuple[ast.Option, ...]:
        """Leading ``key=value`` options."""
        opts: list[ast.Option] = []
        while self.peek().kind is Kind.WORD and self.peek2().kind is Kind.OP and self.peek2().value == "=":
            key = self.next().value
            self.next()
            val = self.next()
            if val.kind not in (Kind.WORD, Kind.STRING):
                raise self.error(f"option {key!r} has no value", val)
            opts.append(ast.Option(key, ast.Value(val.value, val.kind is Kind.STRING)))
        return tuple(opts)

    def aggregations(self, stop: tuple[str, ...]) -> tuple[ast.Aggregation, ...]:
        aggs: list[ast.Aggregation] = []
        while not self.at_end_of_command():
            tok = self.peek()
            if tok.kind is Kind.COMMA:
                self.next()
                continue
            if tok.kind is Kind.WORD and tok.value.lower() in stop:
                break
            aggs.append(self.aggregation())
        return tuple(aggs)

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
    options = p.options()
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


def _tstats(p: Parser, name: str) -> ast.TstatsCommand:
    options = p.options()
    aggs = p.aggregations(stop=("from", "where", "by", "groupby"))
    datamodel = None
    where = None
    by: tuple[str, ...] = ()
    by_options: tuple[ast.Option, ...] = ()
    while not p.at_end_of_command():
        kw = p.next()
        low = kw.value.lower() if kw.kind is Kind.WORD else ""
        if low == "from" and datamodel is None:
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
                opts.extend(p.options())
                names.extend(p.field_list())
                if p.lx.pos == before:
                    raise p.error(f"unexpected {describe(p.peek())} in tstats 'by'", p.peek())
            by, by_options = tuple(names), tuple(opts)
            if not by:
                raise p.error("'by' in tstats has no fields", kw)
        else:
            raise p.error(f"unexpected {describe(kw)} in tstats", kw)
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
    value = None
    for opt in p.options():
        if opt.key.lower() != "value":
            raise p.error(f"unknown fillnull option {opt.key!r}", p.peek())
        value = opt.value
    fields = p.field_list()
    _end_of_command(p, name)
    return ast.FillnullCommand(value, fields)


def _convert(p: Parser, name: str) -> ast.ConvertCommand:
    options = p.options()
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


def _end_of_command(p: Parser, name: str) -> None:
    if not p.at_end_of_command():
        tok = p.peek()
        raise p.error(f"unexpected {describe(tok)} in {name}", tok)


_COMMANDS: dict[str, Callable[[Parser, str], ast.Command]] = {
    "search": _search,
    "where": _where,
    "eval": _eval,
    "tstats": _tstats,
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

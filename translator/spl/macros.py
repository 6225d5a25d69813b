"""Search macro expansion.

Splunk expands macros textually before parsing, so this works on text: a
backtick call `` `name` `` or `` `name(a, b)` `` is replaced by the macro's
definition with ``$arg$`` substituted, then expanded again (nested macros).
Backticks inside double-quoted strings are literal; triple-backtick comments are
removed. The result carries a source map so a parse error in expanded text is
reported at the macro call the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from translator.errors import Location, MacroError, line_col
from translator.spl import ast

MAX_DEPTH = 30
_ARG_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\$")


@dataclass(frozen=True)
class Macro:
    name: str
    definition: str
    arguments: tuple[str, ...] = ()
    source: str = ""  # where it was defined, for messages

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, len(self.arguments))


# Built-ins from DESIGN.md, used only when the content does not define them.
BUILTINS: dict[tuple[str, int], Macro] = {
    m.key: m
    for m in (
        Macro("drop_dm_object_name", "rename $name$.* as *", ("name",), "built-in"),
        Macro(
            "security_content_ctime",
            'convert timeformat="%Y-%m-%dT%H:%M:%S" ctime($field$)',
            ("field",),
            "built-in",
        ),
    )
}
FILTER_SUFFIX = "_filter"
FILTER_DEFAULT = "search *"


@dataclass
class Expansion:
    """Expanded text plus a map from its offsets back to the original query."""

    text: str
    original: str
    origin: str = ""
    # (expanded start, original start, length, macro name or None)
    segments: list[tuple[int, int, int, str | None]] = field(default_factory=list)
    macros_used: list[str] = field(default_factory=list)

    def location(self, offset: int) -> Location:
        for exp_start, orig_start, length, macro in self.segments:
            if exp_start <= offset < exp_start + length or (offset == exp_start + length and macro is None):
                if macro is None:
                    line, col = line_col(self.original, orig_start + offset - exp_start)
                    return Location(line, col, self.origin)
                line, col = line_col(self.original, orig_start)
                where = f"{self.origin}: " if self.origin else ""
                return Location(line, col, f"{where}in macro `{macro}`")
        line, col = line_col(self.original, len(self.original))
        return Location(line, col, self.origin)


class MacroExpander:
    def __init__(self, macros: Mapping[tuple[str, int], Macro], generate_filters: bool = True) -> None:
        self.macros = dict(BUILTINS)
        self.macros.update(macros)
        self.generate_filters = generate_filters

    def lookup(self, name: str, nargs: int) -> Macro | None:
        macro = self.macros.get((name, nargs))
        if macro is None and nargs == 0 and self.generate_filters and name.endswith(FILTER_SUFFIX):
            macro = Macro(name, FILTER_DEFAULT, (), "generated")
        return macro

    def expand(self, text: str, origin: str = "") -> Expansion:
        exp = Expansion("", text, origin)
        pieces: list[str] = []
        self._expand(text, 0, exp, pieces, stack=(), top=True)
        exp.text = "".join(pieces)
        return exp

    # -- internals --------------------------------------------------------------
    def _expand(
        self,
        text: str,
        base: int,
        exp: Expansion,
        out: list[str],
        stack: tuple[str, ...],
        top: bool,
        call_offset: int = 0,
    ) -> None:
        """Append the expansion of ``text`` to ``out``; offsets are recorded only at top level."""

        def where(i: int) -> Location:
            line, col = line_col(exp.original, base + i if top else call_offset)
            suffix = "" if top else f"in macro `{stack[-1]}`"
            return Location(line, col, ": ".join(x for x in (exp.origin, suffix) if x))

        def emit(chunk: str, orig_start: int, macro: str | None) -> None:
            if not chunk:
                return
            if top:  # top-level chunks are contiguous: the next starts where the last ended
                last = exp.segments[-1] if exp.segments else (0, 0, 0, None)
                start = last[0] + last[2]
                exp.segments.append((start, orig_start, len(chunk), macro))
            out.append(chunk)

        i, n, chunk_start = 0, len(text), 0
        in_string = False
        while i < n:
            # jump to the next character that matters: a quote, a backslash, or (outside strings) a backtick
            m = (_IN_STRING if in_string else _OUTSIDE).search(text, i)
            if m is None:
                break
            i = m.start()
            c = text[i]
            if in_string:
                if c == "\\":
                    i += 2
                    continue
                in_string = False
                i += 1
                continue
            if c == "\\":
                # an escaped quote in a search word (*\"privileged\"*) opens no string
                i += 2 if i + 1 < n and text[i + 1] == '"' else 1
                continue
            if c == '"':
                in_string = True
                i += 1
                continue
            emit(text[chunk_start:i], base + chunk_start, None)
            if text.startswith("```", i):
                end = text.find("```", i + 3)
                if end < 0:
                    raise MacroError("unclosed ``` comment", "```", where(i))
                i = chunk_start = end + 3
                continue
            end = text.find("`", i + 1)
            if end < 0:
                raise MacroError("unbalanced backtick: macro call is never closed", "", where(i))
            call = text[i + 1 : end]
            name, args = parse_call(call, lambda msg, c=call, at=i: MacroError(msg, c, where(at)))
            macro = self.lookup(name, len(args))
            if macro is None:
                known = sorted(k[1] for k in self.macros if k[0] == name)
                hint = f" (defined with {', '.join(map(str, known))} argument(s))" if known else ""
                raise MacroError(f"unknown macro `{name}` with {len(args)} argument(s){hint}", name, where(i))
            if name in stack or len(stack) >= MAX_DEPTH:
                chain = " -> ".join((*stack, name))
                raise MacroError(f"recursive macro expansion: {chain}", name, where(i))
            exp.macros_used.append(name)
            body = substitute(macro, args)
            sub: list[str] = []
            self._expand(body, 0, exp, sub, (*stack, name), top=False, call_offset=base + i if top else call_offset)
            emit("".join(sub), base + i, name)
            i = chunk_start = end + 1
        emit(text[chunk_start:], base + chunk_start, None)


_IN_STRING = re.compile(r'[\\"]')
_OUTSIDE = re.compile(r'[\\"`]')


def parse_call(call: str, fail: Callable[[str], MacroError]) -> tuple[str, tuple[str, ...]]:
    """Split ``name(a, "b,c")`` into its name and arguments."""
    call = call.strip()
    paren = call.find("(")
    if paren < 0:
        if not call:
            raise fail("empty macro call ``")
        return call, ()
    if not call.endswith(")"):
        raise fail(f"macro call `{call}` has an unbalanced '('")
    name = call[:paren].strip()
    body = call[paren + 1 : -1]
    args: list[str] = []
    depth, start, i, in_string = 0, 0, 0, False
    while i < len(body):
        c = body[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(body[start:i].strip())
            start = i + 1
        i += 1
    if body.strip() or args:
        args.append(body[start:].strip())
    return name, tuple(args)


def substitute(macro: Macro, args: tuple[str, ...]) -> str:
    values = dict(zip(macro.arguments, args, strict=True))
    if macro.source == "built-in":
        values = {k: _unquote(v) for k, v in values.items()}
    return _ARG_REF.sub(lambda m: values.get(m.group(1), m.group(0)), macro.definition)


def _unquote(v: str) -> str:
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v


def expand_eventtypes(pipeline: ast.Pipeline, searches: Mapping[str, ast.SearchExpr]) -> ast.Pipeline:
    """``eventtype=NAME`` terms replaced by NAME's own search (an app's eventtypes.conf), as Splunk
    matches them: an event is of the eventtype when its search selects it. Names not given stay."""
    if not searches:
        return pipeline

    def rewrite(expr: ast.SearchExpr, seen: frozenset[str]) -> ast.SearchExpr:
        if isinstance(expr, ast.Compare) and expr.field == "eventtype" and expr.op == "=":
            name = expr.value.text
            return rewrite(searches[name], seen | {name}) if name in searches and name not in seen else expr
        if isinstance(expr, ast.InList) and expr.field == "eventtype" and any(v.text in searches for v in expr.values):
            return rewrite(ast.Or(tuple(ast.Compare("eventtype", "=", v) for v in expr.values)), seen)
        if isinstance(expr, ast.And | ast.Or):
            parts: list[ast.SearchExpr] = []
            for x in expr.operands:
                done = rewrite(x, seen)
                parts.extend(done.operands if isinstance(done, type(expr)) else (done,))  # flat, as the parser makes it
            return type(expr)(tuple(parts))
        if isinstance(expr, ast.Not):
            return ast.Not(rewrite(expr.operand, seen))
        return expr

    commands = tuple(
        ast.SearchCommand(rewrite(c.expr, frozenset()), c.explicit)
        if isinstance(c, ast.SearchCommand) and c.expr is not None
        else c
        for c in pipeline.commands
    )
    return ast.Pipeline(commands)

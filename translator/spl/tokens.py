"""SPL tokenizer.

SPL is context-sensitive: in a search, ``a-b*.exe`` is one word, while in an
``eval`` expression it is a subtraction and a product. The lexer therefore has
two modes and the parser, which knows the grammar it is in, asks for the next
token in the right one. Tokens keep their offsets so errors can name a line and
column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from translator.errors import Location, SPLSyntaxError, line_col


class Mode(Enum):
    SEARCH = "search"  # search terms and command arguments
    VALUE = "value"  # like SEARCH, but a word may hold balanced parentheses: *GetCurrent()*
    EXPR = "expr"  # eval / where expressions


class Kind(Enum):
    WORD = "word"  # unquoted search-mode word (may contain * wildcards)
    STRING = "string"  # double-quoted string, escapes decoded
    IDENT = "ident"  # expression-mode identifier (field or function name)
    FIELDQ = "fieldq"  # expression-mode 'single quoted' field name
    NUMBER = "number"
    OP = "op"  # comparison and arithmetic operators
    PIPE = "|"
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    EOF = "eof"


@dataclass(frozen=True)
class Token:
    kind: Kind
    value: str  # decoded value (quotes and escapes removed for strings)
    start: int
    end: int
    space_before: bool = False

    def is_word(self, *words: str) -> bool:
        """True for an unquoted word/identifier equal (case-insensitively) to one of ``words``."""
        return self.kind in (Kind.WORD, Kind.IDENT) and self.value.lower() in words


_PUNCT = {
    "|": Kind.PIPE,
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "[": Kind.LBRACKET,
    "]": Kind.RBRACKET,
    ",": Kind.COMMA,
}
_SEARCH_OPS = ("!=", "<=", ">=", "==", "=", "<", ">")
_EXPR_OPS = ("==", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", ".")
# characters that end an unquoted search word
_SEARCH_STOP = set(' \t\r\n|()[],"=<>')
_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_@")
_IDENT_CHARS = _IDENT_START | set("0123456789.{}:")
_DIGITS = set("0123456789")


class Lexer:
    """On-demand tokenizer over one SPL text; see the module docstring."""

    def __init__(self, text: str, origin: str = "", locate: Callable[[int], Location] | None = None) -> None:
        self.text = text
        self.origin = origin
        self.locate = locate
        self.pos = 0
        self._cache: dict[tuple[int, Mode], Token] = {}

    # -- public API -----------------------------------------------------
    def location(self, offset: int) -> Location:
        if self.locate is not None:
            return self.locate(offset)
        line, col = line_col(self.text, offset)
        return Location(line, col, self.origin)

    def error(self, message: str, offset: int) -> SPLSyntaxError:
        return SPLSyntaxError(message, self.location(offset))

    def peek(self, mode: Mode = Mode.SEARCH) -> Token:
        key = (self.pos, mode)
        tok = self._cache.get(key)
        if tok is None:
            tok = self._scan(self.pos, mode)
            self._cache[key] = tok
        return tok

    def next(self, mode: Mode = Mode.SEARCH) -> Token:
        tok = self.peek(mode)
        self.pos = tok.end
        return tok

    def raw_until_pipe(self) -> tuple[str, int]:
        """Consume raw text up to the next top-level ``|`` or closing ``]``.

        Used for commands kept verbatim. Quotes and nested brackets are
        respected so a subsearch inside the arguments stays whole.
        """
        text, i, depth = self.text, self.pos, 0
        start = i
        while i < len(text):
            ch = text[i]
            if ch == '"':
                i = self._skip_string(i, '"')
                continue
            if ch in "[(":
                depth += 1
            elif ch in "])":
                if depth == 0:
                    if ch == "]":
                        break
                    raise self.error("unbalanced ')'", i)
                depth -= 1
            elif ch == "|" and depth == 0:
                break
            i += 1
        if depth:
            raise self.error("unclosed bracket or parenthesis", start)
        self.pos = i
        return text[start:i].strip(), start

    # -- scanning --------------------------------------------------------
    def _skip_string(self, i: int, quote: str) -> int:
        """Offset just past the string starting at ``i`` (which holds ``quote``)."""
        text = self.text
        j = i + 1
        while j < len(text):
            if text[j] == "\\" and j + 1 < len(text):
                j += 2
                continue
            if text[j] == quote:
                return j + 1
            j += 1
        raise self.error(f"unbalanced quote: {quote} is never closed", i)

    def _string(self, i: int, quote: str, kind: Kind, space: bool) -> Token:
        end = self._skip_string(i, quote)
        return Token(kind, decode_escapes(self.text[i + 1 : end - 1], quote), i, end, space)

    def _scan(self, pos: int, mode: Mode) -> Token:
        text = self.text
        i = pos
        while i < len(text) and text[i].isspace():
            i += 1
        space = i > pos or pos == 0
        if i >= len(text):
            return Token(Kind.EOF, "", i, i, space)
        ch = text[i]
        if ch == '"':
            return self._string(i, '"', Kind.STRING, space)
        if mode is Mode.EXPR:
            return self._scan_expr(i, space)
        if ch in _PUNCT:
            return Token(_PUNCT[ch], ch, i, i + 1, space)
        for op in _SEARCH_OPS:
            if text.startswith(op, i):
                return Token(Kind.OP, op, i, i + len(op), space)
        j = i
        while j < len(text):
            c = text[j]
            if c == "\\" and j + 1 < len(text) and not text[j + 1].isspace():
                j += 2  # an escaped character stays in the word: \" or \\
                continue
            if c == "(" and mode is Mode.VALUE and j > i:
                close = _balanced_close(text, j)
                if close > 0:
                    j = close + 1
                    continue
            if c in _SEARCH_STOP or c.isspace() or (c == "!" and text.startswith("!=", j)):
                break
            j += 1
        return Token(Kind.WORD, decode_escapes(text[i:j], '"'), i, j, space)

    def _scan_expr(self, i: int, space: bool) -> Token:
        text = self.text
        ch = text[i]
        if ch == "'":
            return self._string(i, "'", Kind.FIELDQ, space)
        if ch in _PUNCT:
            return Token(_PUNCT[ch], ch, i, i + 1, space)
        if ch in _DIGITS or (ch == "." and i + 1 < len(text) and text[i + 1] in _DIGITS):
            j = i
            while j < len(text) and text[j] in _DIGITS:
                j += 1
            if j < len(text) and text[j] == "." and j + 1 < len(text) and text[j + 1] in _DIGITS:
                j += 1
                while j < len(text) and text[j] in _DIGITS:
                    j += 1
            if j < len(text) and text[j] in "eE":
                k = j + 1
                if k < len(text) and text[k] in "+-":
                    k += 1
                if k < len(text) and text[k] in _DIGITS:
                    j = k
                    while j < len(text) and text[j] in _DIGITS:
                        j += 1
            if j < len(text) and text[j] in _IDENT_START:
                return self._ident(i, space)  # e.g. 4624_count is a field name
            return Token(Kind.NUMBER, text[i:j], i, j, space)
        if ch in _IDENT_START:
            return self._ident(i, space)
        for op in _EXPR_OPS:
            if text.startswith(op, i):
                return Token(Kind.OP, op, i, i + len(op), space)
        raise self.error(f"unexpected character {ch!r}", i)

    def _ident(self, i: int, space: bool) -> Token:
        text = self.text
        j = i
        while j < len(text) and text[j] in _IDENT_CHARS:
            j += 1
        while j > i + 1 and text[j - 1] == ".":  # a trailing dot is the concat operator
            j -= 1
        return Token(Kind.IDENT, text[i:j], i, j, space)


def _balanced_close(text: str, i: int) -> int:
    """Offset of the ')' closing the '(' at ``i`` within one word, or -1."""
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
        elif c.isspace() or c in '|[]"':
            return -1
    return -1


def decode_escapes(body: str, quote: str) -> str:
    """Decode SPL string escapes: ``\\\\`` and an escaped quote; other backslashes stay literal."""
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in ("\\", quote):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def encode_string(value: str, quote: str = '"') -> str:
    """Inverse of :func:`decode_escapes`, with the surrounding quotes."""
    return quote + escape(value, quote) + quote


def escape(value: str, quote: str = '"') -> str:
    """Escape ``value`` so :func:`decode_escapes` gives it back (no quotes added)."""
    out: list[str] = []
    for i, c in enumerate(value):
        if c == quote:
            out.append("\\" + c)
        elif c == "\\" and (i + 1 == len(value) or value[i + 1] in ("\\", quote)):
            out.append("\\\\")
        else:
            out.append(c)
    return "".join(out)

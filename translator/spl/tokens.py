"""SPL tokenizer.

SPL is context-sensitive: in a search, ``a-b*.exe`` is one word, while in an
``eval`` expression it is a subtraction and a product. The lexer therefore has
two modes and the parser, which knows the grammar it is in, asks for the next
token in the right one. Tokens keep their offsets so errors can name a line and
column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

from translator.errors import Location, SPLSyntaxError, line_col


class Mode:
    """Lexer modes; plain ints because the token cache is keyed on them (enum hashing is slow)."""

    SEARCH = 0  # search terms and command arguments
    VALUE = 1  # like SEARCH, but a word may hold balanced parentheses: *GetCurrent()*
    EXPR = 2  # eval / where expressions


class Kind(Enum):
    WORD = "word"  # unquoted search-mode word (may contain * wildcards)
    STRING = "string"  # double-quoted string, escapes decoded
    IDENT = "ident"  # expression-mode identifier (field or function name)
    FIELDQ = "fieldq"  # expression-mode 'single quoted' field name
    TOKEN = "token"  # expression-mode $name$: a token Splunk fills in (dashboards, alert actions), else literal
    NUMBER = "number"
    OP = "op"  # comparison and arithmetic operators
    PIPE = "|"
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    EOF = "eof"


class Token(NamedTuple):
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
_EXPR_OPS = re.compile(r"==|!=|<=|>=|=|<|>|!|\+|-|\*|/|%|\.")  # a lone "!" is NOT
# An unquoted search word runs up to whitespace or one of |()[],"=<>; a backslash
# keeps the next character in the word (\" or \\), and "!" ends it only before "=".
_SEARCH_WORD = re.compile(r'(?:[^\s|()\[\],"=<>!\\]|\\\S?|!(?!=))*')
# one search-mode token: (space)(punctuation|operator|word); the word may be empty (at a quote or the end)
_SEARCH_TOKEN = re.compile(r"(\s*)(?:([|()\[\],])|(!=|<=|>=|==|=|<|>)|(" + _SEARCH_WORD.pattern + "))")
_NUMBER = re.compile(r"(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z0-9_@.{}:]+")  # callers check the first character
_TOKEN_REF = re.compile(r"\$([A-Za-z0-9_.:{}@-]+)\$")  # $result.user$, $dest$
_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_@")
_DIGITS = set("0123456789")


class Lexer:
    """On-demand tokenizer over one SPL text; see the module docstring."""

    def __init__(self, text: str, origin: str = "", locate: Callable[[int], Location] | None = None) -> None:
        self.text = text
        self.origin = origin
        self.locate = locate
        self.pos = 0
        self._cache: dict[int, Token] = {}

    # -- public API -----------------------------------------------------
    def location(self, offset: int) -> Location:
        if self.locate is not None:
            return self.locate(offset)
        line, col = line_col(self.text, offset)
        return Location(line, col, self.origin)

    def error(self, message: str, offset: int) -> SPLSyntaxError:
        return SPLSyntaxError(message, self.location(offset))

    def peek(self, mode: int = Mode.SEARCH) -> Token:
        key = self.pos * 3 + mode
        tok = self._cache.get(key)
        if tok is None:
            tok = self._scan(self.pos, mode)
            self._cache[key] = tok
        return tok

    def next(self, mode: int = Mode.SEARCH) -> Token:
        # peek's body repeated: one call fewer per token on the parser's hottest path
        key = self.pos * 3 + mode
        tok = self._cache.get(key)
        if tok is None:
            tok = self._scan(self.pos, mode)
            self._cache[key] = tok
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

    def raw_bracket(self) -> str:
        """Consume ``[ ... ]`` (nesting and quotes respected) and return what is inside, stripped."""
        text = self.text
        i = self.pos
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text) or text[i] != "[":
            raise self.error("expected '['", i)
        start, depth = i, 0
        while i < len(text):
            ch = text[i]
            if ch == '"':
                i = self._skip_string(i, '"')
                continue
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return text[start + 1 : i].strip()
            i += 1
        raise self.error("unbalanced '[': no matching ']'", start)

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

    def _scan(self, pos: int, mode: int) -> Token:
        text = self.text
        if mode == Mode.VALUE:  # the search-mode token is the same unless a word runs into "("
            tok = self._cache.get(pos * 3 + Mode.SEARCH)
            if tok is not None and (tok.kind is not Kind.WORD or not text.startswith("(", tok.end)):
                return tok
        m = _SEARCH_TOKEN.match(text, pos)  # always matches: the word group may be empty
        i = m.end(1)  # type: ignore[union-attr]  # after the leading space
        j = m.end()  # type: ignore[union-attr]
        space = i > pos or pos == 0
        if mode == Mode.EXPR:
            if i < j or (i < len(text) and text[i] != '"'):
                return self._scan_expr(i, space)
        elif m.lastindex == 4:  # type: ignore[union-attr]  # a word
            if i < j:
                while mode == Mode.VALUE and j < len(text) and text[j] == "(":
                    close = _balanced_close(text, j)
                    if close < 0:
                        break
                    j = _SEARCH_WORD.match(text, close + 1).end()  # type: ignore[union-attr]
                return Token(Kind.WORD, decode_escapes(text[i:j], '"'), i, j, space)
        elif m.lastindex == 3:  # type: ignore[union-attr]
            return Token(Kind.OP, text[i:j], i, j, space)
        else:
            return Token(_PUNCT[text[i]], text[i], i, j, space)
        if i >= len(text):
            return Token(Kind.EOF, "", i, i, space)
        return self._string(i, '"', Kind.STRING, space)  # the empty word stops only at a quote or the end

    def _scan_expr(self, i: int, space: bool) -> Token:
        text = self.text
        ch = text[i]
        if ch == "'":
            return self._string(i, "'", Kind.FIELDQ, space)
        kind = _PUNCT.get(ch)
        if kind is not None:
            return Token(kind, ch, i, i + 1, space)
        if ch in _DIGITS or (ch == "." and i + 1 < len(text) and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            j = m.end() if m else i
            if j < len(text) and text[j] in _IDENT_START:
                return self._ident(i, space)  # e.g. 4624_count is a field name
            return Token(Kind.NUMBER, text[i:j], i, j, space)
        if ch in _IDENT_START:
            return self._ident(i, space)
        if ch == "$":
            t = _TOKEN_REF.match(text, i)
            if t:
                return Token(Kind.TOKEN, t.group(1), i, t.end(), space)
        m = _EXPR_OPS.match(text, i)
        if m:
            return Token(Kind.OP, m.group(), i, m.end(), space)
        raise self.error(f"unexpected character {ch!r}", i)

    def _ident(self, i: int, space: bool) -> Token:
        text = self.text
        j = _IDENT.match(text, i).end()  # type: ignore[union-attr]  # ch is an identifier start
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

"""The structure of a ``rex`` pattern (PCRE): its named groups, which of them every match fills, the
pattern in the syntax Python's ``re`` reads, and for a capture whose pattern fixes where it starts and
ends (:func:`capture_shape`), the regex that says what it captured on the field it reads; plus
texts a pattern is found in, for generating events."""

from __future__ import annotations

import re
from dataclasses import dataclass

from translator.spl.values import as_number

REX_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")  # a rex pattern's named groups: its outputs


def mandatory_groups(pattern: str) -> list[str]:
    """Named groups that take part in every match of ``pattern``: neither they nor a group around them
    is optional or holds an alternation. Conservative: a pattern it cannot scan gives none."""
    frames: list[dict[str, object]] = [{"name": None, "start": -1, "alt": False}]
    closed: list[tuple[int, int, object, bool, bool]] = []  # (start, end, name, alternation, optional)
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            m = REX_GROUP.match(pattern, i)
            # a negative lookaround or a conditional may leave what it holds out of a match
            unsure = pattern.startswith(("(?!", "(?<!", "(?("), i)
            frames.append({"name": m.group(1) if m else None, "start": i, "alt": unsure})
        elif c == "|":
            frames[-1]["alt"] = True
        elif c == ")":
            if len(frames) == 1:
                return []
            frame = frames.pop()
            after = pattern[i + 1 : i + 3]
            optional = after[:1] in ("?", "*") or after.startswith(("{0", "{,"))
            closed.append((int(frame["start"]), i, frame["name"], bool(frame["alt"]), optional))  # type: ignore[call-overload]
        i += 1
    if len(frames) != 1 or in_class or frames[0]["alt"]:
        return []
    out = []
    for start, end, name, _alt, optional in closed:
        if not name or optional:
            continue
        around = [g for g in closed if g[0] < start and g[1] > end]
        if not any(g[3] or g[4] for g in around):
            out.append(str(name))
    return out


def python_groups(pattern: str) -> str:
    """A rex pattern with PCRE's ``(?<name>`` groups spelled ``(?P<name>`` (Python and Sigma read both
    as named groups; Python's re refuses the first)."""
    return re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)


def unwrapped(pattern: str) -> str:
    """``(?P<m>RE)`` as ``RE`` when that one group is the whole pattern (it matches where RE does)."""
    m = re.fullmatch(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>(.*)\)", pattern, re.S)
    if m is None or "(?P=" in pattern or "\\g<" in pattern:
        return pattern
    inner, depth, i = m.group(1), 0, 0
    while i < len(inner):  # the group's own parenthesis must close at the very end
        c = inner[i]
        if c == "\\":
            i += 2
            continue
        depth += (c == "(") - (c == ")")
        if depth < 0:
            return pattern
        i += 1
    return inner if depth == 0 else pattern


@dataclass(frozen=True)
class CaptureShape:
    """A rex pattern ``BEFORE (?<g>C+) AFTER`` whose capture is the whole run of C at a place the
    pattern fixes (see :func:`capture_shape`)."""

    pattern: str  # the whole pattern, groups unnamed: where it first matches
    anchored: bool  # the pattern starts with ^
    before: str  # regex source before the group (without ^)
    cls: str  # the group's character class
    plus: bool  # C+ (else C*)
    after: str  # regex source after the group


_CLASS_RE = re.compile(r"\[\^?\]?(?:\\.|[^\]\\])*\]|\\[dDwWsS]|\.")
_META = set(".^$*+?()[]{}|\\")


def _tokens(pattern: str) -> list[tuple[str, str, str]] | None:
    """A pattern as (kind, source, extra) tokens: ("lit", src, char), ("cls", src, quantifier),
    ("group", class src, name + quantifier), ("end", "$", ""); None for anything else (alternation,
    other groups, lazy or counted quantifiers, inline flags, backreferences)."""
    out: list[tuple[str, str, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "$" and i == len(pattern) - 1:
            out.append(("end", "$", ""))
            i += 1
            continue
        if (m := REX_GROUP.match(pattern, i)) is not None:
            inner = _CLASS_RE.match(pattern, m.end())
            if inner is None or "[:" in inner.group(0):
                return None
            j = inner.end()
            quant = pattern[j : j + 1]
            if quant not in ("+", "*") or pattern[j + 1 : j + 2] != ")":
                return None
            out.append(("group", inner.group(0), m.group(1) + quant))
            i = j + 2
            continue
        if (m := _CLASS_RE.match(pattern, i)) is not None:
            if "[:" in m.group(0):
                return None  # a POSIX class: PCRE and Python read it differently
            j = m.end()
            quant = pattern[j : j + 1] if pattern[j : j + 1] in ("+", "*") else ""
            if pattern[j + len(quant) : j + len(quant) + 1] in ("?", "{", "+", "*"):
                return None  # lazy, optional, counted or possessive
            out.append(("cls", m.group(0), quant))
            i = j + len(quant)
            continue
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt or nxt.isalnum():
                return None  # \b, \1, \x.. and the like
            char, i = nxt, i + 2
        elif c in _META:
            return None
        else:
            char, i = c, i + 1
        if pattern[i : i + 1] in ("?", "*", "+", "{"):
            return None
        out.append(("lit", _escape(char), char))
    return out


def _escape(text: str) -> str:
    """Regex source for literal text, escaping only what a regex reads as syntax."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def in_class(cls: str, char: str) -> bool:
    return re.fullmatch(cls, char) is not None


def capture_shape(pattern: str, group: str) -> CaptureShape | None:
    """The shape of ``group`` in a rex ``pattern`` when its capture is fixed by where the pattern first
    matches: the pattern is literals, character classes (``[^@]``, ``\\d``, ``.``) and runs of one
    (``C+``, ``C*``), and every run is followed by a literal outside its class, the end ``$``, or
    nothing, so each run is as long as it can be and the first match has one reading (None otherwise:
    the capture could not be said exactly)."""
    anchored = pattern.startswith("^")
    tokens = _tokens(pattern[1:] if anchored else pattern)
    if tokens is None or [t[2][:-1] for t in tokens if t[0] == "group"].count(group) != 1:
        return None
    for k, (kind, src, extra) in enumerate(tokens):
        quantified = kind == "group" or (kind == "cls" and extra)
        if not quantified:
            continue
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if nxt is not None and nxt[0] == "end":
            continue
        if nxt is None and kind == "group":
            continue  # the last run: followed by a character outside it, or the end (said below)
        if nxt is None or nxt[0] != "lit" or in_class(src, nxt[2]):
            return None
    at = next(k for k, t in enumerate(tokens) if t[0] == "group" and t[2][:-1] == group)
    cls, quant = tokens[at][1], tokens[at][2][-1]
    before = "".join(_plain_source(t) for t in tokens[:at])
    after = "".join(_plain_source(t) for t in tokens[at + 1 :]) or f"(?!{cls})"
    whole = ("^" if anchored else "") + "".join(_plain_source(t) for t in tokens)
    return CaptureShape(whole, anchored, before, cls, quant == "+", after)


def _plain_source(token: tuple[str, str, str]) -> str:
    kind, src, extra = token
    if kind == "group":
        return src + extra[-1]
    if kind == "cls":
        return src + extra
    return src


def captured_regex(shape: CaptureShape, value: str, mode: str) -> str | None:
    """A regex on the rex field that holds exactly where the first match's capture passes the test:
    ``mode`` "eq" (the value, with case), "search" (a search pattern: any case, ``*``) or "like"
    (``%`` and ``_``, with case). None: no capture can pass (the caller says False)."""
    cls = shape.cls
    number = numeric(value, mode)
    if number is not None:  # compared as numbers: the capture must read as the same one
        return _numeric_regex(shape, number)
    parts: list[str] = []
    wild = {"eq": "", "search": "*", "like": "%"}[mode]
    for ch in value:
        if wild and ch == wild:
            parts.append(cls + "*")
        elif mode == "like" and ch == "_":
            parts.append(cls)
        else:
            variants = {ch.lower(), ch.upper(), ch} if mode == "search" else {ch}
            kept = sorted(v for v in variants if len(v) == 1 and in_class(cls, v))
            if not kept:
                return None  # a character the run cannot hold
            parts.append(_escape(kept[0]) if len(kept) == 1 else "[" + "".join(_escape(v) for v in kept) + "]")
    return _around(shape, "".join(parts), bool(parts))


def numeric(value: str, mode: str) -> float | None:
    """The number a tested value is compared as (eval and search compare text that reads as a number
    as a number), or None."""
    return as_number(value) if mode != "like" and "*" not in value else None


def digits_only(cls: str) -> bool:
    """Whether a class holds the digits and nothing else a number could be written with."""
    return all(in_class(cls, c) == c.isdigit() for c in "0123456789+-. eE\t")


def _numeric_regex(shape: CaptureShape, number: float) -> str | None:
    """A capture of digits (see :func:`digits_only`) reads as ``number`` when it is that whole number
    with leading zeros (None: digits never read as it)."""
    if number < 0 or not number.is_integer():
        return None  # digits never read as it
    k = int(number)
    return _around(shape, "0+" if k == 0 else "0*" + str(k), True)


def _around(shape: CaptureShape, body: str, nonempty: bool) -> str | None:
    """The capture's ``body`` in place: after no earlier match, between what the pattern puts
    before and after it."""
    cls = shape.cls
    if shape.plus and not nonempty:
        return None  # C+ is never empty
    if shape.plus and body.replace(cls + "*", "") == "":
        body = f"(?={cls})" + body  # C+ holds at least one character
    start = "^" if shape.anchored else r"^(?:(?!" + shape.pattern + r")[\s\S])*?"
    return start + shape.before + body + shape.after


_SAMPLES = "a0Ax_- ./:"


def sample(source: str) -> str | None:
    """One text a regex source of :func:`capture_shape`'s kind matches whole (None: cannot say)."""
    if source.startswith("(?!"):
        return ""  # the end of the capture's run: nothing to write
    tokens = _tokens(source)
    if tokens is None:
        return None
    out = []
    for kind, src, extra in tokens:
        if kind == "lit":
            out.append(extra)
        elif kind in ("cls", "group") and not extra.endswith("*"):
            char = next((c for c in _SAMPLES if in_class(src, c)), None)
            if char is None:
                return None
            out.append(char)
    return "".join(out)


def class_sample(cls: str) -> str | None:
    """One character the class holds (from a few plain ones)."""
    return next((c for c in _SAMPLES if in_class(cls, c)), None)


def other_run(cls: str, value: str) -> str | None:
    """A run of the class that a search value does not match."""
    return next((c * 3 for c in _SAMPLES if in_class(cls, c) and not _wild_match(c * 3, value)), None)


def _wild_match(text: str, pattern: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), text, re.I | re.S) is not None


def plain_regex(pattern: str) -> str | None:
    """A regex that is plain text, as the text (None when it holds regex syntax)."""
    return None if any(c in _META for c in pattern) else pattern


def regex_example(pattern: str) -> str | None:
    """A short text ``pattern`` is found in: each repeat at its least, the first branch, one character
    of each class (None when that text does not match after all, or the pattern does not parse)."""
    try:
        import re._parser as sre_parse

        text = _example(sre_parse.parse(pattern))
    except (re.error, ValueError, TypeError):
        return None
    return text if text is not None and re.search(pattern, text) is not None else None


def _example(items: object) -> str | None:
    import re._constants as c

    out = []
    for op, av in items:  # type: ignore[attr-defined]
        if op is c.LITERAL:
            part: str | None = chr(av)
        elif op is c.NOT_LITERAL:
            part = "a" if chr(av) != "a" else "b"
        elif op is c.ANY:
            part = "a"
        elif op is c.IN:
            part = next((ch for ch in _SAMPLES + "bcz9" if _in_set(av, ch)), None)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            sub = _example(av[2])
            part = None if sub is None else sub * av[0]
        elif op is c.SUBPATTERN:
            part = _example(av[3])
        elif op is c.BRANCH:
            part = _example(av[1][0])
        elif op in (c.AT, c.ASSERT_NOT):
            part = ""
        else:
            return None
        if part is None:
            return None
        out.append(part)
    return "".join(out)


def _in_set(items: object, ch: str) -> bool:
    """Whether a parsed character class holds ``ch``."""
    import re._constants as c

    negate, hit = False, False
    for op, av in items:  # type: ignore[attr-defined]
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            hit = hit or chr(av) == ch
        elif op is c.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op is c.CATEGORY:
            hit = hit or re.fullmatch(_CATEGORIES.get(str(av), "(?!)"), ch) is not None
    return hit != negate


_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}

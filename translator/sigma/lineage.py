"""Which field names, at some point of a pipeline, still hold an event's own field.

A later ``| where`` or ``| search`` can be folded into the Sigma detection only
when every field it reads is an event field (possibly renamed, or a group-by
field of an aggregation, whose value is the same for every event of the group).
Fields computed by eval, lookup, rex, aggregations and the like are not.

The scope is conservative: when a command may create fields whose names we
cannot list (``spath`` without ``output=``, ``lookup`` without ``OUTPUT``,
``xmlkv``, ...), names not already known stop counting as event fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from translator.sigma import forms as fm
from translator.sigma.forms import Captured, Cond, Form, form_of, negate
from translator.sigma.forms import all_of as _all
from translator.sigma.forms import any_of as _any
from translator.spl import ast
from translator.spl.patterns import REX_GROUP, capture_shape, mandatory_groups, python_groups, unwrapped

# commands that add fields whose names depend on the data
_OPAQUE_OUTPUTS = {"xmlkv", "fromjson", "extract", "multikv", "foreach", "spath", "addtotals", "anomalydetection"}
# commands that never change fields
_NO_FIELD_CHANGE = {"sort", "dedup", "head", "tail", "bin", "bucket", "regex", "where", "search", "makeresults"}


@dataclass
class FieldScope:
    mapping: dict[str, str] = field(default_factory=dict)  # current name -> event field
    derived: set[str] = field(default_factory=set)  # computed, or gone
    open: bool = True  # a name not listed is an event field of the same name
    fills: dict[str, str] = field(default_factory=dict)  # event field -> value that fills its absence
    fill_all: bool = False  # fillnull without a field list ran: any field may be filled
    written: set[str] = field(default_factory=set)  # names the last command set or removed
    closed_by_last: bool = False  # the last command may have written names we cannot list
    never_null: set[str] = field(default_factory=lambda: {"_time"})  # computed names that always have a value
    # computed names -> when they have a value, as a condition on event fields (see :func:`presence`)
    presence: dict[str, Presence] = field(default_factory=dict)
    # computed names -> the literal values they take and when (see :func:`value_cases`)
    cases: dict[str, Cases] = field(default_factory=dict)
    # computed names -> an event field read through a hex decoding (see :func:`hex_text`)
    hex: dict[str, HexText] = field(default_factory=dict)
    # computed names -> their value said on event fields, for tests on them (see translator.sigma.forms)
    forms: dict[str, Form] = field(default_factory=dict)
    wild: list[tuple[str, str]] = field(default_factory=list)  # wildcard renames of an open scope, in order
    moved: dict[str, list[str]] = field(default_factory=dict)  # renamed from a name known only by candidates

    def resolve(self, name: str) -> str | None:
        """The event field ``name`` holds now, or None if it is not one."""
        if name in self.derived:
            return None
        if name in self.mapping:
            return self.mapping[name]
        return name if self.open else None

    def fill_of(self, event_field: str) -> str | None:
        return self.fills.get(event_field)

    def _set(self, name: str, event_field: str | None) -> None:
        self.written.add(name)
        self.moved.pop(name, None)
        self.presence.pop(name, None)
        self.cases.pop(name, None)
        self.hex.pop(name, None)
        self.forms.pop(name, None)
        if event_field is None:
            self.mapping.pop(name, None)
            self.derived.add(name)
        else:
            self.derived.discard(name)
            self.mapping[name] = event_field

    def derive(self, *names: str) -> None:
        for n in names:
            self._set(n, None)

    def close(self) -> None:
        """Unknown names stop counting as event fields (a command added fields we cannot name)."""
        self.open = False
        self.closed_by_last = True
        self.wild = []
        self.moved = {}

    @property
    def form_view(self) -> Mapping[str, Form]:
        """The forms of computed names, and of names past a wildcard rename (see :class:`_FormView`)."""
        return _FormView(self)

    def candidates(self, name: str) -> list[str]:
        """The event fields an unknown ``name`` may hold after wildcard renames of an open scope
        (``rename properties.* as *``: ``user`` is ``properties.user`` if the event had one, else
        its own ``user``); [] when it cannot be said."""
        if name in self.moved:
            return self.moved[name]
        if name in self.derived or name in self.mapping or not self.wild:
            return []
        out = [name]
        for old, new in reversed(self.wild):
            pattern = re.compile(re.escape(new).replace(r"\*", "(.*)") + r"\Z")
            found = [f for n in out if (m := pattern.match(n)) for f in [_fill(old, m.groups())]]
            out = [*found, *out]
        return list(dict.fromkeys(out))

    # -- command effects --------------------------------------------------
    def rename(self, pairs: tuple[tuple[str, str], ...]) -> None:
        for old, new in pairs:
            if "*" not in old:
                target = self.resolve(old)
                moved = self.candidates(old) if target is None else []
                known, always = self.presence.get(old), old in self.never_null
                values, text, form = self.cases.get(old), self.hex.get(old), self.forms.get(old)
                self._set(old, None)
                self._set(new, target)
                if moved:
                    self.moved[new] = moved
                if target is None and known is not None:  # a computed value keeps its presence condition
                    self.presence[new] = known
                if target is None and values is not None:
                    self.cases[new] = values
                if target is None and text is not None:
                    self.hex[new] = text
                if target is None and form is not None:
                    self.forms[new] = form
                if target is None and always:
                    self.never_null.add(new)
                continue
            # wildcard rename: known names move; unknown ones cannot be followed
            pattern = re.compile(re.escape(old).replace(r"\*", "(.*)") + r"\Z")
            for name in [n for n in self.mapping if pattern.match(n)]:
                parts = pattern.match(name).groups()  # type: ignore[union-attr]
                renamed = new
                for p in parts:
                    renamed = renamed.replace("*", p, 1)
                target = self.mapping.pop(name)
                self._set(renamed, target)
            wild = [*self.wild, (old, new)] if self.open and new.count("*") == old.count("*") else []
            self.close()
            self.wild = wild

    def aggregate(self, by: tuple[str, ...], outputs: list[str]) -> None:
        """stats/tstats: only group-by fields survive, plus the aggregates (derived)."""
        self.mapping = {b: t for b in by if (t := self.resolve(b)) is not None}
        self.derived = set(outputs) - set(self.mapping)
        self.presence = {b: c for b, c in self.presence.items() if b in by}  # a group's value is its events'
        self.cases = {b: c for b, c in self.cases.items() if b in by}
        self.hex = {b: c for b, c in self.hex.items() if b in by}
        self.forms = {b: f for b, f in self.forms.items() if b in by}
        self.open = False

    def apply(self, cmd: ast.Command) -> None:
        """Update the scope for a command that does not aggregate (``written`` says what it touched)."""
        self.written, self.closed_by_last = set(), False
        name = ast.command_name(cmd)
        if name in _NO_FIELD_CHANGE:
            return
        if isinstance(cmd, ast.RenameCommand):
            self.rename(cmd.pairs)
        elif isinstance(cmd, ast.EvalCommand):
            for a in cmd.assignments:
                src = self.resolve(a.expr.name) if isinstance(a.expr, ast.Field) else None
                when = presence(a.expr, self)  # before the assignment: it reads the old values
                values = value_cases(a.expr, self)
                text = hex_text(a.expr, self) if not isinstance(a.expr, ast.Field) else None
                form = form_of(a.expr, self.resolve, self.form_view) if src is None else None
                if when is None and form is not None:
                    when = fm.present(form)
                (self.never_null.add if never_null(a.expr, self.never_null) else self.never_null.discard)(a.field)
                self._set(a.field, src)
                if src is None and when is not None:
                    self.presence[a.field] = when
                if src is None and values is not None:
                    self.cases[a.field] = values
                if src is None and text is not None:
                    self.hex[a.field] = text
                    self.presence[a.field] = text.when
                if form is not None:
                    self.forms[a.field] = form
        elif isinstance(cmd, ast.FillnullCommand):
            value = cmd.value.text if cmd.value is not None else "0"
            if not cmd.fields:
                self.fill_all = True
            for f in cmd.fields:
                target = self.resolve(f)
                if target is not None:
                    self.fills[target] = value
                else:  # a computed name that is filled always has a value
                    self.never_null.add(f)
                    self.presence.pop(f, None)
                self.written.add(f)
        elif isinstance(cmd, ast.StatsCommand):  # eventstats / streamstats: rows stay, fields are added
            self.derive(*aggregate_outputs(cmd.aggregations))
        elif isinstance(cmd, ast.LookupCommand):
            if cmd.output_mode is None:
                self.close()
            self.derive(*(o.alias or o.field for o in cmd.outputs))
        elif isinstance(cmd, ast.ConvertCommand):
            self.derive(*(c.alias or c.field for c in cmd.conversions))
        elif isinstance(cmd, ast.FieldListCommand):
            self._field_list(cmd)
        elif isinstance(cmd, ast.ReplaceCommand):
            self.derive(*cmd.fields)
            if not cmd.fields:
                self.close()
        elif isinstance(cmd, ast.ArgsCommand):
            self._args_command(cmd)
        elif isinstance(cmd, ast.InputlookupCommand):
            pass  # rows from a table: no field of the events changes
        elif name == "addinfo":  # the search's own time range and id, the same on every row
            self.derive("info_min_time", "info_max_time", "info_search_time", "info_sid")
        else:
            self.close()

    def _field_list(self, cmd: ast.FieldListCommand) -> None:
        if cmd.mode == "-":
            for f in cmd.fields:
                for name in [n for n in self.mapping if fnmatchcase(n, f)] + ([f] if "*" not in f else []):
                    self._set(name, None)
            return
        keep = {n: t for n, t in self.mapping.items() if any(fnmatchcase(n, f) for f in cmd.fields)}
        if self.open:
            keep.update({f: f for f in cmd.fields if "*" not in f and f not in self.derived})
        self.mapping, self.open = keep, False

    def _args_command(self, cmd: ast.ArgsCommand) -> None:
        name = cmd.name
        if name == "rex":
            target = cmd.option("field") or "_raw"
            if (cmd.option("mode") or "").lower() == "sed":
                self.derive(target)
            else:
                pattern = cmd.args[0].text if cmd.args else ""
                source = self.resolve(target)
                self.derive(*REX_GROUP.findall(pattern))
                if source is not None and source not in self.fills and not self.fill_all:
                    # a group every match fills has a value exactly when the pattern matches the field
                    for group in mandatory_groups(pattern):
                        self.presence[group] = ("match", (source, unwrapped(python_groups(pattern))))
                    if (cmd.option("max_match") or "1") == "1":  # one match per value: the first
                        for group in REX_GROUP.findall(pattern):
                            if (shape := capture_shape(pattern, group)) is not None:
                                self.forms[group] = Captured(source, shape)
        elif name == "spath" and cmd.option("output"):
            self.derive(cmd.option("output") or "")
        elif name == "iplocation":
            prefix = cmd.option("prefix") or ""
            self.derive(*(prefix + f for f in ("City", "Country", "Region", "lat", "lon", "MetroCode", "Timezone")))
        elif name in ("makemv", "mvexpand"):
            self.derive(*(a.text for a in cmd.args))
        elif name in _OPAQUE_OUTPUTS or name != "outputlookup":
            self.close()


class _FormView(Mapping[str, Form]):
    """A scope's forms, plus a name past a wildcard rename of an open scope as the first of its
    candidates the event has (``rename properties.* as *``: ``user`` is ``coalesce(properties.user,
    user)``), so a test on it is said on both."""

    def __init__(self, scope: FieldScope) -> None:
        self.scope = scope

    def __getitem__(self, name: str) -> Form:
        if name in self.scope.forms:
            return self.scope.forms[name]
        found = self.scope.candidates(name) if self.scope.resolve(name) is None else []
        if len(found) > 1:
            return fm.First(tuple(fm.Plain(c) for c in found))
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.scope.forms)

    def __len__(self) -> int:
        return len(self.scope.forms)


def _fill(pattern: str, parts: tuple[str, ...]) -> str:
    for p in parts:
        pattern = pattern.replace("*", p, 1)
    return pattern


_CONSTANT_CALLS = {"now", "time", "true", "false", "random", "relative_time", "strftime"}
_NULL_IF_ARG_NULL = {"lower", "upper", "len", "tostring", "trim", "ltrim", "rtrim", "substr", "replace", "urldecode"}


# When a computed value is present, as a condition on event fields: True (always), False (never), or
# ("field", F) / ("all", (...)) / ("any", (...)) over the presence of event fields, ("match", (F, RE))
# for "the regex RE matches event field F" (a rex capture), ("eq", (F, V)) for "F is V" (as eval's
# == compares: with case), ("not", P) for the negation.
Presence = Cond
# The literal values a computed field takes: (condition, value) pairs whose conditions exclude each
# other; where none holds the field is null.
Cases = tuple[tuple[Presence, str], ...]

# calls with a value exactly when their first argument has one
_PRESENT_IF_ALL = _NULL_IF_ARG_NULL | {"split", "mvjoin", "mvdedup", "mvsort", "mvcount", "md5", "sha1", "sha256",
                                       "sha512", "base64decode", "base64encode"}  # fmt: skip


def presence(expr: ast.Expr, scope: FieldScope) -> Presence | None:
    """When an eval expression has a value, in terms of the event fields it reads (None: not known).

    ``lower(x)``, ``x . y`` and the like have one when their inputs do; ``coalesce`` when any
    argument does; a literal always; ``if``/``case`` when every branch's value has one under the
    same condition. Used for a later ``by`` on the result: Splunk drops the events where it is null.
    """
    if isinstance(expr, ast.Str | ast.Num | ast.Bool):
        return True
    if isinstance(expr, ast.Null):
        return False
    if isinstance(expr, ast.Field):
        if expr.name in scope.presence:
            return scope.presence[expr.name]
        if expr.name in scope.never_null:
            return True
        event_field = scope.resolve(expr.name)
        return ("field", event_field) if event_field is not None else None
    if isinstance(expr, ast.Binary) and expr.op in (".", "+"):  # + adds numbers, joins any other text
        return _all([presence(expr.left, scope), presence(expr.right, scope)])
    if not isinstance(expr, ast.Call):
        return None
    name, args = expr.name.lower(), expr.args
    if name in _CONSTANT_CALLS and name != "strftime":
        return True
    if name in _PRESENT_IF_ALL and args:
        return presence(args[0], scope)
    if name == "mvindex" and len(args) >= 2 and args[1] in (ast.Num("0"), ast.Unary("-", ast.Num("1"))):
        return presence(args[0], scope)  # the first or last value: there is one when there is any
    if name in ("coalesce", "mvappend"):
        return _any([presence(a, scope) for a in args])
    if name in ("if", "case"):
        return _chosen_presence(name, args, scope)
    return None


def _chosen_presence(name: str, args: tuple[ast.Expr, ...], scope: FieldScope) -> Presence | None:
    """``if``/``case``: when every branch has a value under the same condition, that condition; else
    the branch that is taken and has a value, said through each test's truth."""
    simple = _same_presence(name, args, scope)
    shaped = len(args) == 3 if name == "if" else len(args) >= 2 and len(args) % 2 == 0
    if simple is not None or not shaped:
        return simple
    pairs = (
        [(args[0], args[1]), (ast.Call("true", ()), args[2])]
        if name == "if"
        else list(zip(args[::2], args[1::2], strict=True))
    )
    out: list[Presence | None] = []
    earlier: list[Presence] = []  # a branch is taken when its test is TRUE and no earlier one was
    for test, value in pairs:
        holds = True if _always_true(test) else _truth(test, scope)
        if holds is None:
            return None
        out.append(_all([*(negate(e) for e in earlier), holds, presence(value, scope)]))
        earlier.append(holds)
    return _any(out)


def _same_presence(name: str, args: tuple[ast.Expr, ...], scope: FieldScope) -> Presence | None:
    if name == "case" and len(args) == 4 and _always_true(args[2]):
        name, args = "if", (args[0], args[1], args[3])  # case(c, x, true(), y) is if(c, x, y)
    if name == "if" and len(args) == 3:
        chosen = _null_test(args[0])
        if chosen is not None:  # if(isnotnull(a), a, b) is coalesce(a, b); if(isnull(a), b, a) too
            tested, when_present = chosen
            picked, other = (args[1], args[2]) if when_present else (args[2], args[1])
            if picked == tested:
                return _any([presence(tested, scope), presence(other, scope)])
        return _same_branches([presence(args[1], scope), presence(args[2], scope)])
    if name == "case" and len(args) >= 2 and len(args) % 2 == 0:
        exhaustive = _always_true(args[-2])
        branches = [presence(v, scope) for v in args[1::2]]
        if exhaustive:
            return _same_branches(branches)
        return False if all(b is False for b in branches) else None
    return None


def value_cases(expr: ast.Expr, scope: FieldScope) -> Cases | None:
    """The literal values an eval expression takes, each with the condition on event fields under which
    it does (None when it is not a choice between literals under null tests). ``if(isnotnull(m), "true",
    "false")`` over a rex capture ``m`` is "true" exactly when the rex pattern matches its field."""
    if isinstance(expr, ast.Str | ast.Num):
        return ((True, literal_text(expr)),)
    if not isinstance(expr, ast.Call):
        return None
    name, args = expr.name.lower(), list(expr.args)
    if name == "if" and len(args) == 3:
        args = [args[0], args[1], ast.Call("true", ()), args[2]]
    elif name != "case" or len(args) % 2:
        return None
    out: list[tuple[Presence, str]] = []
    earlier: list[Presence] = []  # a branch holds when its test does and no earlier one did
    for test, value in zip(args[::2], args[1::2], strict=True):
        if not isinstance(value, ast.Str | ast.Num):
            return None
        holds = True if _always_true(test) else _truth(test, scope)
        if holds is None:
            return None
        out.append((_all([*(negate(e) for e in earlier), holds]), literal_text(value)))  # type: ignore[list-item]
        earlier.append(holds)
    return tuple((c, v) for c, v in out if c is not False)


HEX_DIGITS = "^[0-9A-F]+$"
# the replace steps, in order, that turn hex NUL bytes (00) into spaces (20) in auditd's decoding
NUL_AS_SPACE = (("000", "020"), ("00", "20"))
PAIRS_AS_ESCAPES = ("([0-9A-F]{2})", "%\\1")  # replace(x, ...) then urldecode: hex pairs to bytes


@dataclass(frozen=True)
class HexText:
    """An event field read through auditd's hex decoding: where the field is all hex digits, its byte
    pairs (after ``steps`` of NUL-to-space replacement) decoded; otherwise the field as it is."""

    field: str  # the event field
    when: Presence  # when the value exists
    steps: tuple[tuple[str, str], ...] = ()  # NUL-as-space replacements applied to the hex, in order
    decoded: bool = False  # the pairs are decoded (else the value is the hex itself, or the plain field)

    @property
    def spaces(self) -> bool:
        """NUL bytes read as spaces (both replacement steps, in the documented order)."""
        return self.steps == NUL_AS_SPACE


def hex_text(expr: ast.Expr, scope: FieldScope) -> HexText | None:
    """``expr`` as an event field read through the hex decoding, when it is one (None otherwise):
    ``if(match(F, "^[0-9A-F]+$"), replace(F, "000", "020"), F)`` and the like, under guards
    (``if(type=="PROCTITLE" AND isnotnull(F), ..., null())``), then
    ``if(match(N, ...), urldecode(replace(N, "([0-9A-F]{2})", "%\\1")), N)``."""
    if isinstance(expr, ast.Field):
        if expr.name in scope.hex:
            return scope.hex[expr.name]
        event_field = scope.resolve(expr.name)
        return HexText(event_field, ("field", event_field)) if event_field is not None else None
    if not (isinstance(expr, ast.Call) and expr.name.lower() == "if" and len(expr.args) == 3):
        return None
    test, then, other = expr.args
    if isinstance(other, ast.Null) or (isinstance(other, ast.Call) and other.name.lower() == "null"):
        guard, inner = _truth(test, scope), hex_text(then, scope)
        return None if guard is None or inner is None else replace(inner, when=_all([guard, inner.when]))
    if not (_call(test, "match", 2) and test.args[0] == other and _str(test.args[1]) == HEX_DIGITS):
        return None
    base = hex_text(other, scope)
    if base is None or base.decoded:
        return None
    if _call(then, "replace", 3) and then.args[0] == other:
        step = (_str(then.args[1]), _str(then.args[2]))
        steps = (*base.steps, step)
        return replace(base, steps=steps) if NUL_AS_SPACE[: len(steps)] == steps else None
    if _call(then, "urldecode", 1) and _call(then.args[0], "replace", 3):
        inner = then.args[0]
        pairs = (_str(inner.args[1]), _str(inner.args[2]))  # type: ignore[union-attr]
        if inner.args[0] == other and pairs == PAIRS_AS_ESCAPES and base.steps in ((), NUL_AS_SPACE):  # type: ignore[union-attr]
            return replace(base, decoded=True)
    return None


def _call(expr: ast.Expr, name: str, arity: int) -> bool:
    return isinstance(expr, ast.Call) and expr.name.lower() == name and len(expr.args) == arity


def _str(expr: ast.Expr) -> str | None:
    return expr.value if isinstance(expr, ast.Str) else None


def _truth(test: ast.Expr, scope: FieldScope) -> Presence | None:
    """When an eval test is TRUE (not false, not null), as a condition on event fields: null tests,
    comparisons with a literal, ``like``, ``match`` and ``mvfind`` on event fields or on computed
    values with a form (:mod:`translator.sigma.forms`), under AND, OR and NOT (three-valued: NOT
    holds where its operand is FALSE, not where it is null)."""
    if isinstance(test, ast.Binary) and test.op in ("and", "or"):
        parts = [_truth(test.left, scope), _truth(test.right, scope)]
        return _all(parts) if test.op == "and" else _any(parts)
    if isinstance(test, ast.Unary) and test.op == "not":
        return _falsity(test.operand, scope)
    if _null_test(test) is not None:
        return _test_presence(test, scope)
    atom = comparison(test, scope)
    return None if atom is None else atom[1]


def _falsity(test: ast.Expr, scope: FieldScope) -> Presence | None:
    """When an eval test is FALSE (see :func:`_truth`)."""
    if isinstance(test, ast.Binary) and test.op in ("and", "or"):
        parts = [_falsity(test.left, scope), _falsity(test.right, scope)]
        return _any(parts) if test.op == "and" else _all(parts)
    if isinstance(test, ast.Unary) and test.op == "not":
        return _truth(test.operand, scope)
    if _null_test(test) is not None:  # a null test is never null
        holds = _test_presence(test, scope)
        return None if holds is None else negate(holds)
    atom = comparison(test, scope)
    return None if atom is None else _all([atom[0], negate(atom[1])])


def comparison(test: ast.Expr, scope: FieldScope) -> tuple[Presence, Presence] | None:
    """(when the compared value is not null, when the comparison is TRUE) for ``X op literal``,
    ``like(X, p)`` and ``match(X, re)``."""
    if isinstance(test, ast.Binary) and test.op == "like":
        test = ast.Call("like", (test.left, test.right))
    if isinstance(test, ast.Call) and test.name.lower() in ("like", "match") and len(test.args) == 2:
        subject, other, op = test.args[0], test.args[1], test.name.lower()
    elif isinstance(test, ast.Binary) and test.op in ("=", "==", "!=", "<", "<=", ">", ">="):
        subject, other, op = test.left, test.right, test.op
        if fm.literal(subject) is not None and fm.literal(other) is None:
            subject, other, op = other, subject, _FLIP.get(op, op)
    else:
        return None
    form = form_of(subject, scope.resolve, scope.form_view)
    value = fm.literal(other)
    if form is None or value is None:
        return None
    when = fm.present(form)
    if op == "match":
        return (when, ("match", (form.field, value))) if isinstance(form, fm.Plain) else None
    if op == "!=":
        same = fm.test(form, "==", value, "where")
        return None if same is None else (when, _all([when, negate(same)]))
    holds = fm.test(form, "=", value, "like") if op == "like" else fm.test(form, op, value, "where")
    return None if holds is None else (when, holds)


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def literal_text(expr: ast.Str | ast.Num) -> str:
    return expr.value if isinstance(expr, ast.Str) else expr.text


def _test_presence(test: ast.Expr, scope: FieldScope) -> Presence | None:
    """``isnotnull(x)`` / ``isnull(x)`` as a presence condition on event fields."""
    null_test = _null_test(test)
    if null_test is None:
        return None
    when = presence(null_test[0], scope)
    return None if when is None else when if null_test[1] else negate(when)


def _always_true(cond: ast.Expr) -> bool:
    """``true()`` or ``1=1``: a catch-all branch of ``case``."""
    return (isinstance(cond, ast.Call) and cond.name.lower() == "true") or (
        isinstance(cond, ast.Binary) and cond.op in ("=", "==") and cond.left == cond.right
    )


def _null_test(cond: ast.Expr) -> tuple[ast.Expr, bool] | None:
    """(the tested expression, True for isnotnull) when ``cond`` is ``isnotnull(a)`` or ``isnull(a)``."""
    if isinstance(cond, ast.Call) and cond.name.lower() in ("isnull", "isnotnull") and len(cond.args) == 1:
        return cond.args[0], cond.name.lower() == "isnotnull"
    return None


def _same_branches(parts: list[Presence | None]) -> Presence | None:
    """Branches chosen by a condition: known when every branch has a value under the same condition."""
    if any(p is None for p in parts) or not parts:
        return None
    return parts[0] if all(p == parts[0] for p in parts) else None


def never_null(expr: ast.Expr, known: set[str]) -> bool:
    """Whether an eval expression has a value on every event (so a later ``by`` on it drops none).

    Conservative: literals, fields already known to, ``if`` with both branches, ``case`` ending
    in a ``true()`` branch, ``coalesce`` with one such argument, and string functions of them.
    """
    if isinstance(expr, ast.Str | ast.Num | ast.Bool):
        return True
    if isinstance(expr, ast.Field):
        return expr.name in known
    if isinstance(expr, ast.Binary) and expr.op in (".", "+"):
        return never_null(expr.left, known) and never_null(expr.right, known)
    if not isinstance(expr, ast.Call):
        return False
    name, args = expr.name.lower(), expr.args
    if name in _CONSTANT_CALLS:
        return name != "strftime" or (bool(args) and never_null(args[0], known))
    if name == "if" and len(args) == 3:
        return never_null(args[1], known) and never_null(args[2], known)
    if name == "case" and len(args) >= 2 and len(args) % 2 == 0:
        last = args[-2]
        always = (isinstance(last, ast.Call) and last.name.lower() == "true") or (
            isinstance(last, ast.Binary) and last.op in ("=", "==") and last.left == last.right
        )
        return always and all(never_null(v, known) for v in args[1::2])
    if name == "coalesce":
        return any(never_null(a, known) for a in args)
    if name in _NULL_IF_ARG_NULL and args:
        return never_null(args[0], known)
    return False


def aggregate_outputs(aggs: tuple[ast.Aggregation, ...]) -> list[str]:
    """The field names aggregations write: the alias, or ``func(arg)`` as Splunk names it."""
    out = []
    for a in aggs:
        if a.alias:
            out.append(a.alias)
        elif isinstance(a.arg, ast.Field):
            out.append(f"{a.func}({a.arg.name})")
        else:
            out.append(a.func)
    return out

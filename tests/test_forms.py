"""Tests on computed values carried into Sigma through their forms (translator.sigma.forms).

Each rewrite kind is checked three ways: the form's own answers, the shape analysis that admits it,
and the converted rule against the original search on hand-made events (positives, near misses, a
missing field), where the SPL executor and the Sigma evaluator must select the same events.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

from translator.content import Content
from translator.engine.sigma_eval import compile_rule
from translator.engine.spl_exec import EventSet, run
from translator.sigma import forms as fm
from translator.sigma.convert import convert_pipeline
from translator.spl import ast, parse
from translator.spl.patterns import capture_shape
from translator.workflow import build_rule

# -- the forms --------------------------------------------------------------------------------


def form(expr: str, forms: dict[str, fm.Form] | None = None) -> fm.Form | None:
    """The form of an eval expression over event fields (every plain name is an event field)."""
    assignment = parse(f"| makeresults | eval x={expr}").commands[1]
    assert isinstance(assignment, ast.EvalCommand)
    return fm.form_of(assignment.assignments[0].expr, lambda n: n, forms or {})


def test_forms_of_eval_calls() -> None:
    assert form("lower(User)") == fm.Folded("User", upper=False)
    assert form("upper(lower(User))") == fm.Folded("User", upper=True)
    assert form("coalesce(a, lower(b))") == fm.First((fm.Plain("a"), fm.Folded("b", upper=False)))
    assert form('mvfind(names, "Fwd")') == fm.FoundAt("names", "Fwd")
    assert form('if(mvfind(n, "F") >= 0, mvfind(n, "F"), -1)') == fm.FoundAt("n", "F", "-1")
    # no form: the value is not said on event fields exactly
    assert form("len(User)") is None
    assert form('mvfind(names, "(")') is None  # a pattern that does not compile
    assert form('if(mvfind(n, "F") >= 1, mvfind(n, "F"), -1)') is None


def test_folded_values_compare_in_any_case_and_never_hold_the_other_case() -> None:
    lowered = fm.Folded("User", upper=False)
    assert fm.test(lowered, "==", "admin", "where") == ("ieq", ("User", "admin"))
    assert fm.test(lowered, "==", "Admin", "where") is False
    assert fm.test(lowered, "=", "ADM*", "search") == ("search", ("User", "ADM*"))
    assert fm.present(lowered) == ("field", "User")


def test_first_option_with_a_value_decides() -> None:
    first = fm.First((fm.Plain("a"), fm.Plain("b")))
    assert fm.present(first) == ("any", (("field", "a"), ("field", "b")))
    assert fm.test(first, "=", "x", "where") == (
        "any",
        (("eq", ("a", "x")), ("all", (("not", ("field", "a")), ("eq", ("b", "x"))))),
    )


@pytest.mark.parametrize(
    ("op", "value", "missing", "expected"),
    [
        (">=", "0", None, ("match", ("n", "F"))),
        (">", "-1", None, ("match", ("n", "F"))),
        ("<", "0", None, False),
        ("==", "-1", "-1", ("not", ("match", ("n", "F")))),
        (">=", "0", "-1", ("match", ("n", "F"))),
        ("==", "2", None, None),  # holds for one index only: not said
        (">=", "2.5", None, None),  # holds from index 3 on: not said
        ("==", "2.5", "-1", False),  # no index is 2.5, and the missing -1 is not either
        (">", "3", "-1", None),
    ],
)
def test_found_index_compared_with_a_number(op: str, value: str, missing: str | None, expected: Any) -> None:
    assert fm.test(fm.FoundAt("n", "F", missing), op, value, "where") == expected


def test_conditions_become_terms_to_generate_from() -> None:
    cond = ("all", (("field", "a"), ("not", ("eq", ("b", "x"))), ("match", ("c", "^ab$"))))
    assert fm.cond_terms(cond) == ast.And(
        (
            ast.Compare("a", "=", ast.Value("*")),
            ast.Not(ast.Compare("b", "=", ast.Value("x", True))),
            ast.Compare("c", "=", ast.Value("ab", True)),
        )
    )
    assert fm.cond_terms(("match", ("c", r"(a)\1"))) is None


def first_capture(pattern: str, text: str) -> str | None:
    m = re.search(pattern.replace("(?<", "(?P<"), text)
    return m.group("d") if m else None


def test_near_values_of_a_capture_miss_it() -> None:
    captured = fm.Captured("email", capture_shape(r"[^@]+@(?<d>[^@]+)", "d"))  # type: ignore[arg-type]
    near = fm.near_values(captured, "corp.com")
    assert near and all(first_capture(r"[^@]+@(?<d>[^@]+)", v) != "corp.com" for _f, v in near)
    hit, miss = fm.source_terms(captured, "=", "corp.com")  # type: ignore[misc]
    assert first_capture(r"[^@]+@(?<d>[^@]+)", hit.value.text) == "corp.com"  # type: ignore[union-attr]
    assert first_capture(r"[^@]+@(?<d>[^@]+)", miss.value.text) not in (None, "corp.com")  # type: ignore[union-attr]


# -- the converted rule against the original search --------------------------------------------


def selected_by_both(query: str, events: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(events the original search selects, events the converted rule selects); the conversion must
    be exact."""
    draft = convert_pipeline(parse(query), ())
    assert draft.detection is not None and not draft.reasons, draft.reasons
    meta = {"title": "T", "id": "a4e8f3a4-48b2-11ec-bcfc-3e22fbd008af", "level": "low"}
    rule = next(r for r in SigmaCollection.from_yaml(build_rule(draft, meta, "t")).rules if isinstance(r, SigmaRule))
    refs = [(f"e{i}", {"sourcetype": "acme:json", **e}) for i, e in enumerate(events)]
    rows = run(parse(query), EventSet.of(refs), Content(None))
    original = set().union(*(r.refs for r in rows)) if rows else set()
    matches = compile_rule(rule).matches
    return original, {ref for ref, fields in refs if matches(fields)}


def test_lower_then_where_equals() -> None:
    query = 'sourcetype="acme:json" | eval u=lower(User) | where u="admin" | stats count by u'
    events = [{"User": "ADMIN"}, {"User": "admin"}, {"User": "bob"}, {}]
    original, sigma = selected_by_both(query, events)
    assert original == sigma == {"e0", "e1"}


def test_coalesce_then_search_and_not_equal() -> None:
    events = [{"a": "foo"}, {"a": "bar", "b": "foo"}, {"b": "FOO"}, {}]
    original, sigma = selected_by_both('sourcetype="acme:json" | eval x=coalesce(a, b) | search x=foo', events)
    assert original == sigma == {"e0", "e2"}
    original, sigma = selected_by_both('sourcetype="acme:json" | eval x=coalesce(a, b) | search x!=foo', events)
    assert original == sigma == {"e1"}


def test_mvfind_index_compared_with_numbers() -> None:
    events = [{"names": ["x", "Fwd1"]}, {"names": ["x"]}, {}, {"names": "fwd"}]
    query = 'sourcetype="acme:json" | eval m=mvfind(names, "Fwd") | where m >= 0 AND m > -1'
    original, sigma = selected_by_both(query, events)
    assert original == sigma == {"e0"}
    query = 'sourcetype="acme:json" | eval i=if(mvfind(names, "Fwd") >= 0, mvfind(names, "Fwd"), -1) | search i=-1'
    original, sigma = selected_by_both(query, events)
    assert original == sigma == {"e1", "e2", "e3"}  # not found, including no field at all


def test_rex_capture_compared_with_a_value() -> None:
    events = [
        {"email": "a@corp.com"},
        {"email": "a@corp.com.evil"},
        {"email": "a@x@corp.com"},  # the first match captures x
        {"email": "@corp.com"},  # no match: null
        {"email": "b@CORP.com"},
        {},
    ]
    rex = 'sourcetype="acme:json" | rex field=email "[^@]+@(?<d>[^@]+)"'
    original, sigma = selected_by_both(rex + ' | where d="corp.com"', events)
    assert original == sigma == {"e0"}
    original, sigma = selected_by_both(rex + " | search d=corp.com", events)
    assert original == sigma == {"e0", "e4"}  # search compares in any case
    original, sigma = selected_by_both(rex + ' | where NOT d="corp.com"', events)
    assert original == sigma == {"e1", "e2", "e4"}  # NOT needs a value


def test_if_match_picks_a_literal_and_case_presence_under_a_capture() -> None:
    events = [{"AccessRights": "Owner"}, {"AccessRights": "Owners"}, {}]
    query = 'sourcetype="acme:json" | eval r=if(match(AccessRights, "^(Read|Owner)$"), "true", "false") | search r=true'
    original, sigma = selected_by_both(query, events)
    assert original == sigma == {"e0"}
    events = [{"k": 1, "v": v} for v in ("k = 0x0", "k = 0x00", "k = 0x1", "0x0 ")] + [{"k": 1}]
    query = (
        'sourcetype="acme:json" k=1 | rex field=v "0x(?<n>\\d+)$" | eval s=case(n=="0", "Disabled", n=="1", "Block") '
        "| stats count by s"
    )
    original, sigma = selected_by_both(query, events)
    assert original == sigma == {"e0", "e1", "e2"}  # a case holds; "00" reads as the number 0
    original, sigma = selected_by_both(query.replace("| stats count by s", '| search s="Disabled"'), events)
    assert original == sigma == {"e0", "e1"}


def test_a_sum_or_join_has_a_value_where_both_sides_do() -> None:
    events = [{"k": 1, "a": "Gi", "b": "1/0"}, {"k": 1, "a": "2", "b": "3"}, {"k": 1, "a": "Gi"}, {"k": 1}]
    query = 'sourcetype="acme:json" k=1 | eval port=a+b | stats count by port'
    original, sigma = selected_by_both(query, events)
    assert original == sigma == {"e0", "e1"}

"""SPL that pySigma's Splunk backend writes reads back to the same rule.

Each Sigma rule goes to Splunk through pySigma, the SPL comes back through ``convert --spl`` with
the rule's logsource, and both rules are run by the Sigma evaluator on events made to hit and miss
every item: they must select the same events. Also the pieces this rests on: rex groups that take
part in every match, literal values of computed fields, and field references.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline

from translator.content import Content
from translator.engine.sigma_eval import compile_rule
from translator.sigma.lineage import FieldScope, value_cases
from translator.spl import parse
from translator.spl.patterns import mandatory_groups
from translator.workflow import ConvertOptions, convert_query

LOGSOURCE = {"product": "windows", "category": "process_creation"}


def sigma(detection: str) -> str:
    return f"title: t\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n{detection}"


def splunk(rule: str) -> str:
    return SplunkBackend(processing_pipeline=ProcessingPipeline()).convert(SigmaCollection.from_yaml(rule))[0]


def read_back(spl: str) -> tuple[str, str, dict[str, Any]]:
    res = convert_query(spl, Content(None), ConvertOptions(write=False), logsource=dict(LOGSOURCE))
    assert res.rule_yaml is not None, res.reasons
    return res.status, res.rule_yaml, yaml.safe_load(res.rule_yaml)["detection"]


EVENTS = [
    dict(zip(("CommandLine", "Image", "ParentImage", "User"), values, strict=True))
    for values in itertools.product(
        ["xaqqb", "AB", "zzz", None],
        ["C:\\x.exe", "C:\\y.exe", None],
        ["C:\\x.exe", "c:\\X.EXE", None],
        ["admin", "bob", None],
    )
]


def same_events(first: str, second: str) -> None:
    a = compile_rule(SigmaCollection.from_yaml(first).rules[0])
    b = compile_rule(SigmaCollection.from_yaml(second).rules[0])
    for e in EVENTS:
        event = {k: v for k, v in e.items() if v is not None}
        assert a.matches(event) == b.matches(event), event


@pytest.mark.parametrize(
    "detection",
    [
        # a regex in an OR: pySigma writes the rex / eval / search idiom
        "  sel:\n    CommandLine|re: 'a.*b'\n  sel2:\n    Image|endswith: '\\x.exe'\n  condition: sel or sel2",
        # a regex under NOT, inside an OR
        "  sel:\n    CommandLine|re: 'a.*b'\n  sel2:\n    Image|endswith: '\\x.exe'\n  condition: not sel or sel2",
        # a plain AND: pySigma writes a trailing | regex
        "  sel:\n    CommandLine|re: '^x'\n    Image|endswith: '\\x.exe'\n  condition: sel",
        # two regexes in one OR
        "  a:\n    CommandLine|re: 'q+b$'\n  b:\n    User|re: '^adm'\n  condition: a or b",
    ],
)
def test_regex_idioms_read_back_to_the_same_rule(detection: str) -> None:
    rule = sigma(detection)
    status, back, det = read_back(splunk(rule))
    assert status == "exact"
    assert "re" in yaml.safe_dump(det)  # the regex came back as a regex item, not a computed field
    same_events(rule, back)


def test_field_reference_reads_back_and_says_how_it_differs() -> None:
    rule = sigma("  sel:\n    ParentImage|fieldref: Image\n  condition: sel")
    spl = splunk(rule)
    assert "where 'ParentImage'='Image'" in spl.replace(" ", "").replace("where'", "where '")
    res = convert_query(spl, Content(None), ConvertOptions(write=False), logsource=dict(LOGSOURCE))
    assert res.rule_yaml is not None
    assert yaml.safe_load(res.rule_yaml)["detection"]["selection"] == {"ParentImage|fieldref": "Image"}
    assert res.status == "partial" and any("without case" in r for r in res.reasons)
    same_events(rule, res.rule_yaml)


def test_not_equal_fields_need_both_present() -> None:
    spl = "source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=1 | where ParentImage!=Image"
    res = convert_query(spl, Content(None), ConvertOptions(write=False))
    assert res.rule_yaml is not None
    rule = SigmaCollection.from_yaml(res.rule_yaml).rules[0]
    matcher = compile_rule(rule)
    base = {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"}
    assert matcher.matches({**base, "ParentImage": "a", "Image": "b"})
    assert not matcher.matches({**base, "ParentImage": "a", "Image": "A"})  # same but for case: broader side
    assert not matcher.matches({**base, "ParentImage": "a"})  # where is false when a side is null


@pytest.mark.parametrize(
    ("pattern", "groups"),
    [
        ("(?<m>a.*b)", ["m"]),
        ("k=(?<v>[^|]+)\\|(?<w>z)*", ["v"]),  # w may repeat zero times
        ("x(?<a>\\d+)?y", []),
        ("(?<a>x)|(?<b>y)", []),
        ("(?:(?<a>x)|y)", []),
        ("(?<a>x(?<b>y)?)", ["a"]),
        ("(?<a>(x|y))", ["a"]),  # an alternation inside the group: it still takes part
        ("(?!(?<a>x))y", []),  # inside a negative lookahead it never does
        ("((?<a>x)", []),  # unbalanced: nothing is claimed
    ],
)
def test_mandatory_rex_groups(pattern: str, groups: list[str]) -> None:
    assert mandatory_groups(pattern) == groups


def test_value_cases_of_if_and_case_over_null_tests() -> None:
    scope = FieldScope()
    scope.apply(parse('search x | rex field=CommandLine "(?<m>a.*b)"').commands[1])
    expr = parse('search x | eval c=if(isnotnull(m), "true", "false")').commands[1].assignments[0].expr  # type: ignore[attr-defined]
    match = ("match", ("CommandLine", "a.*b"))
    assert value_cases(expr, scope) == ((match, "true"), (("not", match), "false"))
    expr = parse('search x | eval c=case(isnull(User), "none", isnotnull(m), "hit")').commands[1].assignments[0].expr  # type: ignore[attr-defined]
    user = ("field", "User")
    assert value_cases(expr, scope) == ((("not", user), "none"), (("all", (user, match)), "hit"))
    expr = parse('search x | eval c=if(isnotnull(m), CommandLine, "false")').commands[1].assignments[0].expr  # type: ignore[attr-defined]
    assert value_cases(expr, scope) is None  # a branch that is not a literal: unknown


def test_a_search_on_computed_literals_folds_with_search_matching() -> None:
    spl = (
        "source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=1"
        ' | eval kind=if(isnull(ParentImage), "orphan", "child") | search kind=ORPH*'
    )
    res = convert_query(spl, Content(None), ConvertOptions(write=False))
    assert res.status == "exact", res.reasons
    rule = SigmaCollection.from_yaml(res.rule_yaml).rules[0]  # type: ignore[arg-type]
    base = {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"}
    assert compile_rule(rule).matches(base)
    assert not compile_rule(rule).matches({**base, "ParentImage": "p"})

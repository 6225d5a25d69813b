"""The Sigma evaluator: each modifier with events that must and must not match, logsources, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED
from sigma.collection import SigmaCollection

from translator.cli import main
from translator.engine.evaluate import evaluate
from translator.engine.logsources import selector
from translator.engine.sigma_eval import NotEvaluable, compile_rule
from translator.events import Event, read_events


def rule(detection: str, logsource: str = "{product: windows, category: process_creation}") -> Any:
    text = f"title: t\nlogsource: {logsource}\ndetection:\n{detection}\nlevel: low\n"
    collection = SigmaCollection.from_yaml(text)
    assert not collection.errors, collection.errors
    return collection.rules[0]


def matches(detection: str, event: dict[str, Any]) -> bool:
    return compile_rule(rule(detection)).matches(event)


@pytest.mark.parametrize(
    ("detection", "hit", "miss"),
    [
        (
            "  s:\n    Image: 'C:\\Windows\\cmd.exe'\n  condition: s",
            {"Image": "c:\\windows\\CMD.EXE"},
            {"Image": "cmd.exe"},
        ),
        (
            "  s:\n    Image|endswith: '\\cmd.exe'\n  condition: s",
            {"Image": "C:\\x\\Cmd.exe"},
            {"Image": "C:\\x\\cmd.exe.bak"},
        ),
        (
            "  s:\n    CommandLine|startswith: 'net '\n  condition: s",
            {"CommandLine": "NET user"},
            {"CommandLine": " net user"},
        ),
        (
            "  s:\n    CommandLine|contains: whoami\n  condition: s",
            {"CommandLine": "x WhoAmI y"},
            {"CommandLine": "who ami"},
        ),
        (
            "  s:\n    CommandLine|contains|all: [a1, b2]\n  condition: s",
            {"CommandLine": "b2 a1"},
            {"CommandLine": "a1 only"},
        ),
        ("  s:\n    CommandLine: 'a*b?c'\n  condition: s", {"CommandLine": "aXXbYc"}, {"CommandLine": "abc"}),
        ("  s:\n    CommandLine: 'a\\*b'\n  condition: s", {"CommandLine": "a*b"}, {"CommandLine": "axb"}),
        ("  s:\n    CommandLine|cased: AbC\n  condition: s", {"CommandLine": "AbC"}, {"CommandLine": "abc"}),
        ("  s:\n    CommandLine|re: '^a.+z$'\n  condition: s", {"CommandLine": "abcz"}, {"CommandLine": "ABCZ"}),
        ("  s:\n    CommandLine|re|i: '^a.+z$'\n  condition: s", {"CommandLine": "ABCZ"}, {"CommandLine": "ab\nz"}),
        ("  s:\n    CommandLine|re|s: '^a.+z$'\n  condition: s", {"CommandLine": "ab\nz"}, {"CommandLine": "ab\nZ"}),
        ("  s:\n    CommandLine|re|m: '^z$'\n  condition: s", {"CommandLine": "a\nz"}, {"CommandLine": "a z"}),
        (
            "  s:\n    DestinationIp|cidr: 10.0.0.0/8\n  condition: s",
            {"DestinationIp": "10.1.2.3"},
            {"DestinationIp": "11.0.0.1"},
        ),
        ("  s:\n    DestinationPort|gt: 1024\n  condition: s", {"DestinationPort": "8080"}, {"DestinationPort": 80}),
        ("  s:\n    DestinationPort|gte: 80\n  condition: s", {"DestinationPort": 80}, {"DestinationPort": 79}),
        ("  s:\n    DestinationPort|lt: 80\n  condition: s", {"DestinationPort": 79}, {"DestinationPort": "x"}),
        ("  s:\n    DestinationPort|lte: 80\n  condition: s", {"DestinationPort": "80"}, {"DestinationPort": 81}),
        ("  s:\n    EventID: 4104\n  condition: s", {"EventID": "4104"}, {"EventID": 4103}),
        (
            "  s:\n    CommandLine|base64|contains: 'abc'\n  condition: s",
            {"CommandLine": "x YWJj y"},
            {"CommandLine": "abc"},
        ),
        (
            "  s:\n    CommandLine|base64offset|contains: 'abc'\n  condition: s",
            {"CommandLine": "..FiY.."},
            {"CommandLine": "abc"},
        ),
        (
            "  s:\n    CommandLine|wide|base64offset|contains: 'ab'\n  condition: s",
            {"CommandLine": "YQBiA"},
            {"CommandLine": "YWJ"},
        ),
        (
            "  s:\n    CommandLine|windash|contains: ' -enc '\n  condition: s",
            {"CommandLine": "ps /enc x"},
            {"CommandLine": "ps enc x"},
        ),
        ("  s:\n    User|exists: true\n  condition: s", {"User": ""}, {"Image": "a"}),  # empty is present
        ("  s:\n    User|exists: false\n  condition: s", {"Image": "a"}, {"User": ""}),
        ("  s:\n    User: null\n  condition: s", {"Image": "a"}, {"User": ""}),  # null: absent, not empty
        (
            "  s:\n    ParentImage|fieldref: Image\n  condition: s",
            {"Image": "A", "ParentImage": "a"},
            {"Image": "A", "ParentImage": "b"},
        ),
        ("  s:\n    - evil\n    - '*bad*'\n  condition: s", {"X": "very BAD thing"}, {"X": "ev il"}),
        # a keyword is found anywhere in a value (the specification: searched across the entire event)
        ("  s:\n    - evil\n  condition: s", {"X": "an EVILish value", "Y": "x"}, {"X": "e-v-i-l", "Y": 1}),
        ("  s:\n    - evil\n  condition: s", {"X": ["a", "evil"]}, {"X": "ev", "Y": "il"}),  # not across values
        ("  s:\n    - 'ev*il'\n  condition: s", {"X": "the evil"}, {"X": "ev", "Y": "il"}),
        ("  a:\n    Image|endswith: x\n  b:\n    User: u\n  condition: 1 of a* or b", {"Image": "ax"}, {"User": "v"}),
        (
            "  s1:\n    Image: a\n  s2:\n    User: u\n  condition: all of s*",
            {"Image": "a", "User": "u"},
            {"Image": "a"},
        ),
        (
            "  s:\n    Image: a\n  f:\n    User: u\n  condition: s and not f",
            {"Image": "a"},
            {"Image": "a", "User": "u"},
        ),
        ("  s:\n    Tags: x\n  condition: s", {"Tags": ["y", "X"]}, {"Tags": ["y", "z"]}),
    ],
)
def test_modifier_semantics(detection: str, hit: dict[str, Any], miss: dict[str, Any]) -> None:
    assert matches(detection, hit)
    assert not matches(detection, miss)


def test_unimplemented_features_fail_loudly() -> None:
    with pytest.raises(NotEvaluable):
        compile_rule(rule("  s:\n    CommandLine|expand: '%admins%'\n  condition: s"))


def test_process_creation_covers_sysmon_1_and_security_4688_with_its_names() -> None:
    sel = selector("windows", "process_creation", None)
    sysmon = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\a.exe"}
    security = {"Channel": "Security", "EventID": 4688, "NewProcessName": "C:\\a.exe", "ProcessId": "0x10"}
    assert sel.view(sysmon) == sysmon
    view = sel.view(security)
    assert view is not None and view["Image"] == "C:\\a.exe" and view["ParentProcessId"] == "0x10"
    assert "ProcessId" not in view  # 4688's ProcessId is the parent's; the new one has no NewProcessId here
    assert sel.view({"Channel": "Security", "EventID": 4624}) is None
    assert selector("windows", None, "system").view({"Channel": "System", "EventID": 1}) is not None
    cloud = selector("aws", None, "cloudtrail")  # no channel to select by: every non-Windows record
    assert cloud.view({"eventName": "x"}) is not None
    assert cloud.view({"Provider_Name": "Microsoft-Windows-Sysmon", "EventID": 1}) is None


def test_eval_reports_bad_rules_and_keeps_going(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yml").write_text(
        "title: good\nlogsource: {product: windows, service: system}\n"
        "detection:\n  s:\n    ServiceName: spool*\n  condition: s\nlevel: low\n"
    )
    (rules / "broken.yml").write_text("title: broken\nlogsource: {product: windows}\ndetection:\n  condition: s\n")
    (rules / "corr.yml").write_text(
        "title: c\ncorrelation:\n  type: event_count\n  rules: [x]\n  timespan: 5m\n  condition: {gte: 2}\n"
    )
    events = tmp_path / "e.jsonl"
    rows = [
        {"Event": {"System": {"Channel": "System", "EventID": 7045}, "EventData": {"ServiceName": "spoolfool"}}},
        {"Event": {"System": {"Channel": "Security", "EventID": 7045}, "EventData": {"ServiceName": "spoolfool"}}},
    ]
    events.write_text("\n".join(json.dumps(r) for r in rows) + "\n{bad\n")
    run = evaluate([rules], [events])
    by_title = {r.title: r for r in run.rules}
    assert by_title["good"].matches == [f"{events}#1"]  # the Security one is not of logsource system
    assert by_title["broken.yml"].error and "not found" in (by_title["corr.yml"].error or "")
    assert run.events == 2 and len(run.problems) == 1 and run.problems[0].ref == f"{events}#3"


def test_eval_cli_json_on_the_evtx_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = SHARED / "corpus" / "evtx-attack-samples"
    if not samples.is_dir():
        pytest.skip(f"EVTX samples not found at {samples}")
    rule_file = tmp_path / "svc.yml"
    rule_file.write_text(
        "title: service install\nlogsource: {product: windows, service: system}\n"
        "detection:\n  s:\n    EventID: 7045\n  condition: s\nlevel: low\n"
    )
    assert main(["eval", str(rule_file), "--events", str(samples), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # what the rule says, computed independently of the evaluator
    expected = [
        e.ref
        for e in read_events([samples])
        if isinstance(e, Event) and e.fields.get("Channel") == "System" and str(e.fields.get("EventID")) == "7045"
    ]
    assert expected and out["rules"][0]["matches"] == expected
    assert out["rules"][0]["count"] == len(expected) and out["summary"]["events"] == 8255


# -- correlations ---------------------------------------------------------------------------

BASES = """title: login
name: login
logsource: {product: aws, service: cloudtrail}
detection:
  s:
    eventName: ConsoleLogin
  condition: s
level: low
---
title: key
name: key
logsource: {product: aws, service: cloudtrail}
detection:
  s:
    eventName: CreateAccessKey
  condition: s
level: low
"""


def run_correlation(tmp_path: Path, correlation: str, rows: list[tuple[str, str, str, str, int]]) -> list[str]:
    """rows: (time, eventName, user, src, bytes) -> the refs the correlation matches."""
    (tmp_path / "rule.yml").write_text(BASES + "---\ntitle: corr\n" + correlation)
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps({"eventTime": t, "eventName": n, "user": u, "src": s, "bytes": b}) + "\n"
            for t, n, u, s, b in rows
        )
    )
    run = evaluate([tmp_path / "rule.yml"], [events])
    [corr] = [r for r in run.rules if r.title == "corr"]
    assert corr.error is None, corr.error
    return [ref.rsplit("#", 1)[1] for ref in corr.matches]


def test_event_count_per_group_and_window(tmp_path: Path) -> None:
    corr = (
        "correlation:\n  type: event_count\n  rules: [login]\n  group-by: [user]\n  timespan: 10m\n"
        "  condition: {gte: 3}\n"
    )
    rows = [
        ("2024-01-01T10:00:00Z", "ConsoleLogin", "alice", "1.1.1.1", 1),
        ("2024-01-01T10:01:00Z", "ConsoleLogin", "alice", "1.1.1.2", 1),
        ("2024-01-01T10:09:59Z", "ConsoleLogin", "alice", "1.1.1.3", 1),
        ("2024-01-01T10:02:00Z", "ConsoleLogin", "bob", "1.1.1.1", 1),
        ("2024-01-01T10:03:00Z", "ConsoleLogin", "bob", "1.1.1.1", 1),
        ("2024-01-01T10:10:01Z", "ConsoleLogin", "bob", "1.1.1.1", 1),  # next window
        ("2024-01-01T10:04:00Z", "CreateAccessKey", "bob", "1.1.1.1", 1),  # another rule
    ]
    assert run_correlation(tmp_path, corr, rows) == ["1", "2", "3"]


def test_value_count_sum_and_avg(tmp_path: Path) -> None:
    rows = [
        ("2024-01-01T10:00:00Z", "ConsoleLogin", "alice", "1.1.1.1", 10),
        ("2024-01-01T10:01:00Z", "ConsoleLogin", "alice", "1.1.1.1", 20),
        ("2024-01-01T10:02:00Z", "ConsoleLogin", "alice", "2.2.2.2", 30),
        ("2024-01-01T10:03:00Z", "ConsoleLogin", "bob", "1.1.1.1", 5),
        ("2024-01-01T10:04:00Z", "ConsoleLogin", "bob", "1.1.1.1", 5),
    ]
    base = "rules: [login]\n  group-by: [user]\n  timespan: 1h\n"
    vc = f"correlation:\n  type: value_count\n  {base}  condition: {{gt: 1, field: src}}\n"
    assert run_correlation(tmp_path, vc, rows) == ["1", "2", "3"]
    vs = f"correlation:\n  type: value_sum\n  {base}  condition: {{lt: 20, field: bytes}}\n"
    assert run_correlation(tmp_path, vs, rows) == ["4", "5"]
    va = f"correlation:\n  type: value_avg\n  {base}  condition: {{eq: 20, field: bytes}}\n"
    assert run_correlation(tmp_path, va, rows) == ["1", "2", "3"]


def test_temporal_and_temporal_ordered(tmp_path: Path) -> None:
    rows = [
        ("2024-01-01T10:00:00Z", "CreateAccessKey", "alice", "x", 0),
        ("2024-01-01T10:01:00Z", "ConsoleLogin", "alice", "x", 0),
        ("2024-01-01T10:02:00Z", "ConsoleLogin", "bob", "x", 0),
        ("2024-01-01T10:03:00Z", "CreateAccessKey", "bob", "x", 0),
        ("2024-01-01T10:04:00Z", "ConsoleLogin", "carol", "x", 0),
    ]
    base = "rules: [login, key]\n  group-by: [user]\n  timespan: 1h\n"
    both = run_correlation(tmp_path, f"correlation:\n  type: temporal\n  {base}", rows)
    assert both == ["1", "2", "3", "4"]  # carol never creates a key
    ordered = run_correlation(tmp_path, f"correlation:\n  type: temporal_ordered\n  {base}", rows)
    assert ordered == ["3", "4"]  # only bob logs in first, then creates a key


def test_correlation_without_event_times_is_reported(tmp_path: Path) -> None:
    (tmp_path / "rule.yml").write_text(
        BASES + "---\ntitle: corr\ncorrelation:\n  type: event_count\n  rules: [login]\n  timespan: 1h\n"
        "  condition: {gte: 1}\n"
    )
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps({"eventName": "ConsoleLogin"}) + "\n")
    run = evaluate([tmp_path / "rule.yml"], [events])
    [corr] = [r for r in run.rules if r.title == "corr"]
    assert corr.error is not None and "no time" in corr.error


def test_user_logsource_table_overrides_the_built_in_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rule_file = tmp_path / "r.yml"
    rule_file.write_text(
        "title: custom\nlogsource: {product: windows, service: mysvc}\n"
        "detection:\n  s:\n    EventID: 1\n  condition: s\nlevel: low\n"
    )
    events = tmp_path / "e.jsonl"
    rows = [
        {"Event": {"System": {"Provider": {"#attributes": {"Name": "P"}}, "Channel": "My/Log", "EventID": 1}}},
        {"Event": {"System": {"Provider": {"#attributes": {"Name": "P"}}, "Channel": "Other", "EventID": 1}}},
    ]
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = tmp_path / "ls.yml"
    table.write_text("windows_channels:\n  My/Log: {product: windows, service: mysvc}\n")
    try:
        assert main(["eval", str(rule_file), "--events", str(events), "--json", "--logsources", str(table)]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["rules"][0]["matches"] == [f"{events}#1"]
    finally:
        from translator.engine.logsources import set_overrides

        set_overrides({})
    bad = tmp_path / "bad.yml"
    bad.write_text("channels: {}\n")
    assert main(["eval", str(rule_file), "--events", str(events), "--logsources", str(bad)]) == 2


def test_a_rule_whose_pattern_backtracks_for_ever_is_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    import time

    rules = tmp_path / "r.yml"
    rules.write_text(
        "title: Slow\nlogsource: {product: aws, service: cloudtrail}\n"
        "detection: {sel: {eventName|re: '(a|aa)+$'}, condition: sel}\n---\n"
        "title: Fine\nlogsource: {product: aws, service: cloudtrail}\n"
        "detection: {sel: {eventName: bbb}, condition: sel}\n",
        encoding="utf-8",
    )
    events = tmp_path / "e.jsonl"
    lines = [json.dumps({"sourcetype": "aws:cloudtrail", "eventName": "a" * 60 + "!"})] * 20
    events.write_text("\n".join([*lines, json.dumps({"sourcetype": "aws:cloudtrail", "eventName": "bbb"})]) + "\n")
    start = time.monotonic()
    run = evaluate([rules], [events])
    assert time.monotonic() - start < 5  # the slow rule stops at its first event, not at every one
    slow, fine = run.rules
    assert slow.error is not None and "ran longer than" in slow.error and slow.matches == []
    assert fine.error is None and [Path(m).name for m in fine.matches] == ["e.jsonl#21"]

"""The SPL executor's semantics on small hand-made events (DESIGN.md's list of easy-to-get-wrong rules)."""

from __future__ import annotations

import pytest

from translator.content import Content
from translator.engine.sigma_eval import NotEvaluable
from translator.engine.spl_exec import EventSet, run
from translator.spl import parse

EVENTS = [
    ("e#1", {"Image": "C:\\Windows\\System32\\CMD.exe", "User": "ann", "SourceIp": "10.1.2.3", "n": "7"}),
    ("e#2", {"Image": "C:\\Tools\\psexec.exe", "User": "bob", "SourceIp": "8.8.8.8", "n": "12"}),
    ("e#3", {"Image": "C:\\Windows\\System32\\cmd.exe", "SourceIp": "192.168.0.9"}),
]


def refs(query: str) -> list[str]:
    rows = run(parse(query, "test"), EventSet.of(EVENTS), Content(None))
    return sorted(set().union(*(r.refs for r in rows))) if rows else []


def test_or_binds_tighter_than_and() -> None:
    # `a OR b c` is `(a OR b) AND c`
    assert refs('User=bob OR User=ann Image="*cmd.exe"') == ["e#1"]


def test_values_are_case_insensitive_with_wildcards() -> None:
    assert refs('Image="*\\\\cmd.exe"') == ["e#1", "e#3"]


def test_not_equal_needs_the_field_but_not_does_not() -> None:
    assert refs("User!=ann") == ["e#2"]
    assert refs("NOT User=ann") == ["e#2", "e#3"]


def test_cidr_values_and_numeric_comparisons() -> None:
    assert refs("SourceIp=10.0.0.0/8 OR SourceIp=192.168.0.0/16") == ["e#1", "e#3"]
    assert refs("n>10") == ["e#2"]  # numeric, not text order ("12" < "7" as text)


def test_where_is_case_sensitive_and_null_is_not_true() -> None:
    assert refs('Image=* | where Image=="C:\\\\Windows\\\\System32\\\\cmd.exe"') == ["e#3"]
    assert refs('Image=* | where like(Image, "%CMD%")') == ["e#1"]
    assert refs('Image=* | where NOT User=="ann"') == ["e#2"]  # e#3 has no User: null, not true


def test_stats_by_drops_events_missing_a_by_field_unless_filled() -> None:
    assert refs("Image=* | stats count by User") == ["e#1", "e#2"]
    assert refs("Image=* | fillnull value=x User | stats count by User") == ["e#1", "e#2", "e#3"]


def test_threshold_keeps_only_the_groups_that_pass() -> None:
    assert refs('Image="*cmd.exe" | eval exe=lower(Image) | stats count by exe | where count > 1') == ["e#1", "e#3"]


def test_rex_rename_and_eval_functions() -> None:
    q = 'Image=* | rex field=Image "(?<dir>.*)\\\\\\\\(?<file>[^\\\\\\\\]+)$" | rename file as f | where f="psexec.exe"'
    assert refs(q) == ["e#2"]
    q = 'Image=* | eval parts=mvcount(split(Image, "\\\\")) | where parts=4'
    assert refs(q) == ["e#1", "e#3"]


def test_unmodelled_things_are_not_evaluable() -> None:
    for query in ("cmd.exe", "Image=* | join User [search User=*]", 'Image=* | eval x=searchmatch("a")'):
        with pytest.raises(NotEvaluable):
            refs(query)


def test_a_pattern_that_backtracks_for_ever_is_not_evaluable_in_bounded_time() -> None:
    import time

    events = EventSet.of([("e#1", {"x": "a" * 60 + "!"})])
    start = time.monotonic()
    with pytest.raises(NotEvaluable, match="ran longer than"):
        run(parse('x=* | where match(x, "(a|aa)+$")', "t"), events, Content(None))
    assert time.monotonic() - start < 5

"""Tests on rex patterns (translator.spl.patterns): which captures a pattern fixes, the regex that says
what a capture holds, and texts a pattern is found in."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.sigma import forms as fm
from translator.spl.patterns import capture_shape, digits_only, regex_example
from translator.spl.values import as_number


@pytest.mark.parametrize(
    "pattern",
    [r"[^@]+@(?<d>[^@]+)", r"0x(?<d>\d+)$", r"Scope: (?<d>[^,]+)", r"^(?<d>\w+)-", r"k=(?<d>\d*)x"],
)
def test_capture_shapes_whose_run_is_fixed_are_admitted(pattern: str) -> None:
    assert capture_shape(pattern, "d") is not None


@pytest.mark.parametrize(
    "pattern",
    [
        r"\((?P<d>.*?)\)",  # lazy
        r"(?<d>[a-z]+)[a-z0-9]",  # a run followed by a class that overlaps it
        r"a(?<d>[a-z]+)a",  # followed by a character of its own class
        r"(?<d>a|b)",  # alternation
        r"(?i)x(?<d>\w+)",  # inline flags
        r"x(?<d>\w{2,})",  # counted
        r"(?<d>\w+)\1",  # back-reference
        r"Rules\\(?<d>[A-F0-9\-]+)\s*=",  # a run followed by an optional class
        r"x(?<d>[[:alpha:]]+)",  # a POSIX class
    ],
)
def test_capture_shapes_with_several_readings_are_refused(pattern: str) -> None:
    assert capture_shape(pattern, "d") is None


SHAPES = [
    (r"[^@]+@(?<d>[^@]+)", "a@.b"),
    (r"0x(?<d>\d+)$", "0x19a"),
    (r"C: (?<d>[^,]+)", "C: ,a"),
    (r"^(?<d>\w+)-", "ab-_"),
    (r"(?<x>[a-z]+)\.(?<d>[a-z]*)", "ab."),
]


def first_capture(pattern: str, text: str) -> str | None:
    m = re.search(pattern.replace("(?<", "(?P<"), text)
    return m.group("d") if m else None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SHAPES), st.data())
def test_capture_regex_holds_exactly_where_the_first_match_captures_the_value(
    shape: tuple[str, str], data: st.DataObject
) -> None:
    """The regex said on the rex field agrees with Python's first match on random texts, for equality,
    a search pattern (any case, ``*``) and a like pattern."""
    pattern, alphabet = shape
    text = data.draw(st.text(alphabet, max_size=9))
    value = data.draw(st.text(alphabet + "*%_", max_size=4))
    captured = fm.Captured("F", capture_shape(pattern, "d"))  # type: ignore[arg-type]
    cap = first_capture(pattern, text)
    number = as_number(value) if "*" not in value else None
    same_number = number is not None and cap is not None and as_number(cap) == number
    for mode, wanted in (
        ("where", same_number if number is not None else cap == value),
        ("search", same_number if number is not None else cap is not None and _search_match(value, cap)),
        ("like", cap is not None and re.fullmatch("(?s)" + "".join(_like(c) for c in value), cap)),
    ):
        said = fm.test(captured, "=", value, mode)
        if said is None:  # refused: only a number against a capture that may write it otherwise
            assert number is not None and mode != "like" and not digits_only(captured.shape.cls)
            continue
        got = said is not False and re.search(said[1][1], text) is not None  # type: ignore[index]
        assert got == bool(wanted), (pattern, text, mode, value, said)


def _search_match(pattern: str, text: str) -> bool:
    return re.fullmatch("(?is)" + ".*".join(map(re.escape, pattern.split("*"))), text) is not None


def _like(c: str) -> str:
    return ".*" if c == "%" else "." if c == "_" else re.escape(c)


def test_regex_examples_are_found_by_their_pattern() -> None:
    for pattern in (r"^(ReadItems|Author)$", r"0x\d+$", r"^(?:(?![^@]+@[^@]+)[\s\S])*?[^@]+@corp\.com(?![^@])"):
        example = regex_example(pattern)
        assert example is not None and re.search(pattern, example)
    assert regex_example(r"(a)\1") is None  # back-references: no example

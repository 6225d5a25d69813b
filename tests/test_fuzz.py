"""Property tests: whatever the input, only the project's own error types escape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from translator.errors import TranslatorError
from translator.spl import Macro, MacroExpander, parse, print_pipeline

SAMPLES = [
    '`powershell` EventCode=4104 (ScriptBlockText="*Enter-PSSession*" AND ScriptBlockText="*-ComputerName*") '
    "| stats count min(_time) as firstTime by EventCode Computer | rename Computer as dest",
    '| tstats count from datamodel=Endpoint.Processes where Processes.process_name IN (a.exe, "b.exe") '
    "by _time span=1h Processes.dest | `drop_dm_object_name(Processes)` | where count > 5",
    '| eval x=if(match(a, "^x"), "y", null()) | search NOT x=1 OR y!=2 | table a b',
]
ALPHABET = st.sampled_from([*list("ab=!<>()[]|,\"'`*\\ \n.-+%"), "AND", "OR", "NOT", "IN", "by", "stats", "where"])
EXPANDER = MacroExpander({("powershell", 0): Macro("powershell", "source=x")})


def run(text: str) -> None:
    try:
        exp = EXPANDER.expand(text)
        tree = parse(exp.text, "fuzz", exp.location)
    except TranslatorError:
        return
    assert parse(print_pipeline(tree)) == tree


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_random_token_soup(text: str) -> None:
    run(text)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES), st.integers(0, 400), st.integers(0, 6), st.text(max_size=3))
def test_mutated_searches(sample: str, at: int, cut: int, insert: str) -> None:
    at %= len(sample) + 1
    run(sample[:at] + insert + sample[at + cut :])

"""eval's cache of parsed rule files: the same answers, a changed file read again, a bad entry ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REFERENCE_EXAMPLE

from translator.cli import main
from translator.engine import rule_cache
from translator.engine.evaluate import _parse, load_rules

RULE = """title: Whoami
id: 0f1e2d3c-0000-4000-8000-00000000000{n}
logsource: {{product: windows, category: process_creation}}
detection:
  s:
    Image|endswith: '\\\\{exe}'
  condition: s
"""


def test_a_cached_file_gives_the_same_rules_and_a_changed_one_is_read_again(tmp_path: Path) -> None:
    rule, cache = tmp_path / "r.yml", tmp_path / "cache"
    rule.write_text(RULE.format(n=1, exe="whoami.exe"))
    calls: list[bytes] = []

    def counting(data: bytes):  # type: ignore[no-untyped-def]
        calls.append(data)
        return _parse(data)

    first = rule_cache.load(rule, cache, counting)
    again = rule_cache.load(rule, cache, counting)
    assert len(calls) == 1 and len(list(cache.rglob("*.pickle"))) == 1
    assert again.rules[0].title == first.rules[0].title and str(again.rules[0].id) == str(first.rules[0].id)
    rule.write_text(RULE.format(n=2, exe="net.exe"))
    changed = rule_cache.load(rule, cache, counting)
    assert len(calls) == 2 and str(changed.rules[0].id).endswith("2")


def test_an_unreadable_entry_is_parsed_again(tmp_path: Path) -> None:
    rule, cache = tmp_path / "r.yml", tmp_path / "cache"
    rule.write_text(RULE.format(n=1, exe="whoami.exe"))
    rule_cache.load(rule, cache, _parse)
    for entry in cache.rglob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    assert rule_cache.load(rule, cache, _parse).rules[0].title == "Whoami"
    assert len(load_rules([rule], cache).runnable) == 1


@pytest.mark.parametrize("flags", [[], ["--no-cache"]])
def test_eval_with_and_without_the_cache(tmp_path: Path, flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    assert main([str(REFERENCE_EXAMPLE), "--rules-out", str(rules), "-q"]) == 0
    capsys.readouterr()
    events = tmp_path / "e.json"
    events.write_text('{"EventID": 4104, "Channel": "Microsoft-Windows-PowerShell/Operational",'
                      ' "ScriptBlockText": "Enter-PSSession -ComputerName dc1"}\n')  # fmt: skip
    outs = []
    for _ in range(2):
        assert main(["eval", str(rules), "--events", str(events), "--json", *flags]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and '"matches"' in outs[0]
    cached = list((tmp_path / ".cache" / "translator" / "rules").rglob("*.pickle"))
    assert (len(cached) == 1) == (not flags)  # --no-cache keeps nothing

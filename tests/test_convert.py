"""ESCU -> Sigma on the reference detection and on small cases of each rule.

Rules are inspected through pySigma's own objects, not by comparing YAML text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REFERENCE_CORPUS, REFERENCE_EXAMPLE
from sigma.modifiers import SigmaAllModifier, SigmaContainsModifier
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaString, SpecialChars

from translator.content import find_content_root, load_content, load_detection
from translator.sigma.detection import sigma_escape, wildcard_value
from translator.sigma.rule import load_rule, validate
from translator.spl import Macro
from translator.workflow import ConvertOptions, DetectionResult, convert_detection, convert_query

NO_WRITE = ConvertOptions(write=False)
# the current (2025) form of ESCU's macro: both PowerShell channels, Windows PowerShell's and PowerShell 7's
PS = Macro(
    "powershell",
    "(source=WinEventLog:Microsoft-Windows-PowerShell/Operational"
    ' OR source="XmlWinEventLog:Microsoft-Windows-PowerShell/Operational"'
    " OR source=WinEventLog:PowerShellCore/Operational"
    ' OR source="XmlWinEventLog:PowerShellCore/Operational")',
)
# the 2024 form: Windows PowerShell's channel only
PS_2024 = Macro(
    "powershell",
    "(source=WinEventLog:Microsoft-Windows-PowerShell/Operational"
    ' OR source="XmlWinEventLog:Microsoft-Windows-PowerShell/Operational")',
)


def convert_path(path: Path, targets: list[str] | None = None) -> DetectionResult:
    content = load_content(find_content_root(path))
    opts = ConvertOptions(targets=targets or [], write=False)
    return convert_detection(load_detection(path), content, Path(path.name), opts)


def rule_of(res: DetectionResult) -> SigmaRule:
    assert res.rule_yaml is not None, res.reasons
    return load_rule(res.rule_yaml)


def single_item(rule: SigmaRule, besides: tuple[str, ...] = ()) -> SigmaDetectionItem:
    """The one item of the rule's one selection, apart from items on the fields ``besides``."""
    assert rule.detection.condition == ["selection"]
    sel = rule.detection.detections["selection"]
    assert isinstance(sel, SigmaDetection)
    items = [i for i in sel.detection_items if getattr(i, "field", None) not in besides]
    assert len(items) == 1, items
    item = items[0]
    assert isinstance(item, SigmaDetectionItem)
    return item


def channel_values(rule: SigmaRule) -> list[str] | None:
    """The values of the selection's Channel item, None without one."""
    for item in rule.detection.detections["selection"].detection_items:
        if getattr(item, "field", None) == "Channel":
            return [v.to_plain() for v in item.original_value]
    return None


def check_reference(rule: SigmaRule, channels: list[str] | None = None) -> None:
    """``channels``: the Channel condition a macro naming part of the service's channels leaves."""
    assert rule.logsource.product == "windows"
    assert rule.logsource.category == "ps_script"
    assert rule.logsource.service is None
    assert channel_values(rule) == channels
    item = single_item(rule, besides=("Channel",))
    assert item.field == "ScriptBlockText"
    assert item.modifiers == [SigmaContainsModifier, SigmaAllModifier]
    assert [v.to_plain() for v in item.original_value] == ["Enter-PSSession", "-ComputerName"]
    assert str(rule.id) == "a4e8f3a4-48b2-11ec-bcfc-3e22fbd008af"
    assert rule.title == "Interactive Session on Remote Endpoint with PowerShell"
    assert "attack.t1021.006" in [str(t) for t in rule.tags]
    assert "attack.lateral-movement" in [str(t) for t in rule.tags]
    assert rule.level is not None and rule.level.name.lower() == "medium"
    assert rule.falsepositives and "Enter-PSSession" in rule.falsepositives[0]
    assert rule.author == "Mauricio Velazco, Splunk"
    assert validate(rule) == []


def test_bundled_example_is_exact() -> None:
    res = convert_path(REFERENCE_EXAMPLE)
    assert res.status == "exact", res.reasons
    rule = rule_of(res)
    check_reference(rule)
    # the newer search: fillnull before stats, so no by-field can drop an event
    assert res.fields[:3] == ["Computer", "signature", "EventID"]  # the add-on copies, as Sigma names
    assert "ScriptBlockText" in res.fields
    assert not rule.fields  # Sigma 2 deprecates `fields`; the report carries them
    assert str(rule.status) == "stable" or rule.status.name.lower() == "stable"
    assert str(rule.date) == "2026-03-10"


def test_corpus_reference_is_exact(corpus: Path) -> None:
    res = convert_path(REFERENCE_CORPUS)
    assert res.status == "exact", res.reasons
    rule = rule_of(res)
    # the corpus's 2024 `powershell` macro names Windows PowerShell's channel only; ps_script also
    # covers PowerShell 7's, so the rule keeps the narrower channel to select the same events
    check_reference(rule, channels=["Microsoft-Windows-PowerShell/Operational"])
    assert res.fields == ["EventID", "ScriptBlockText", "Computer", "UserID"]
    assert "attack.t1021" in [str(t) for t in rule.tags]


def spl(query: str) -> DetectionResult:
    from translator.content import Content

    return convert_query(query, Content(None, {PS.key: PS}), NO_WRITE)


PS_BASE = "`powershell` EventCode=4104 "


def test_by_field_not_always_present_is_made_explicit() -> None:
    res = spl(PS_BASE + 'ScriptBlockText="*x*" | stats count by Path')
    assert res.status == "exact"
    rule = rule_of(res)
    items = rule.detection.detections["selection"].detection_items
    assert {(i.field, tuple(m.__name__ for m in i.modifiers)) for i in items} == {
        ("ScriptBlockText", ("SigmaContainsModifier",)),
        ("Path", ("SigmaExistsModifier",)),
    }


def test_not_equal_requires_the_field_but_not_does_not() -> None:
    ne = rule_of(spl(PS_BASE + "ScriptBlockText=*a* UserID!=S-1-5-18"))
    assert ne.detection.condition == ["selection and not filter"]
    sel = {i.field: i for i in ne.detection.detections["selection"].detection_items}
    assert "UserID" in sel and sel["UserID"].modifiers[0].__name__ == "SigmaExistsModifier"
    no = rule_of(spl(PS_BASE + "ScriptBlockText=*a* NOT UserID=S-1-5-18"))
    assert no.detection.condition == ["selection and not filter"]
    assert [i.field for i in no.detection.detections["selection"].detection_items] == ["ScriptBlockText"]


def test_or_before_and_is_kept() -> None:
    rule = rule_of(spl(PS_BASE + "ScriptBlockText=*a* OR ScriptBlockText=*b* Path=*c*"))
    det = rule.detection.detections
    assert rule.detection.condition == ["selection and selection_2"]
    values = {tuple(v.to_plain() for v in i.original_value) for d in det.values() for i in d.detection_items}
    assert values == {("a", "b"), ("c",)}


def test_unknown_source_is_partial_and_says_why() -> None:
    res = spl(PS_BASE + "index=win ScriptBlockText=*a*")
    assert res.status == "partial"
    assert any("index=win" in r for r in res.reasons)


def test_dropped_where_is_partial_and_broader() -> None:
    res = spl(PS_BASE + "ScriptBlockText=*a* | where len(ScriptBlockText) > 10")
    assert res.status == "partial"
    assert any("where" in r and "broader" in r for r in res.reasons)


@pytest.mark.parametrize("command", ["apply model", "append [search x=1]", "inputlookup t.csv"])
def test_unsupported_stages(command: str) -> None:
    res = spl(PS_BASE + f"ScriptBlockText=*a* | {command}")
    assert res.status == "unsupported"
    assert res.reasons


def test_no_source_term_is_unsupported() -> None:
    res = spl("action=blocked user=admin")
    assert res.status == "unsupported"
    assert any("logsource" in r for r in res.reasons)


@pytest.mark.parametrize(
    ("spl_value", "modifiers", "plain"),
    [
        ("*\\Windows\\*", ("contains",), "\\Windows\\"),
        ("C:\\Temp\\*", ("startswith",), "C:\\Temp\\"),
        ("*what?.exe", ("endswith",), "what?.exe"),
        ("a*b\\*c", (), None),
        ("\\\\server\\share", (), "\\\\server\\share"),
        ("4104", (), None),
    ],
)
def test_values_survive_sigma_escaping(spl_value: str, modifiers: tuple[str, ...], plain: str | None) -> None:
    mods, value = wildcard_value(spl_value)
    assert mods == modifiers
    if isinstance(value, int):
        assert value == 4104
        return
    parsed = SigmaString(value)
    if plain is not None:
        assert not parsed.contains_special()
        assert "".join(str(p) for p in parsed.s) == plain
    else:  # SPL has no escaped '*': both asterisks stay wildcards, the backslash stays literal
        assert list(parsed.s) == ["a", SpecialChars.WILDCARD_MULTI, "b\\", SpecialChars.WILDCARD_MULTI, "c"]


def test_sigma_escape_escapes_only_what_sigma_treats_specially() -> None:
    assert sigma_escape("a?b") == "a\\?b"
    assert sigma_escape("C:\\x") == "C:\\x"
    assert sigma_escape("end\\") == "end\\\\"


def test_metadata_of_the_newer_detection_shape(tmp_path: Path) -> None:
    """Newer releases put ATT&CK ids and stories at the top level and split the date in two."""
    path = tmp_path / "detections" / "d.yml"
    path.parent.mkdir(parents=True)
    (tmp_path / "macros").mkdir()
    path.write_text(
        "name: Newer Shape\nid: 01d29b48-ff6f-11eb-b81e-acde48001123\nversion: 9\ncreation_date: '2021-08-17'\n"
        "modification_date: '2026-05-13'\nauthor: A\nstatus: production\ntype: TTP\nmitre_attack_id:\n- T1560.001\n"
        "analytic_story: [S]\nsearch: sourcetype=aws:cloudtrail eventName=X\n",
        encoding="utf-8",
    )
    res = convert_path(path)
    assert res.status == "exact", res.reasons
    rule = rule_of(res)
    assert "attack.t1560.001" in [str(t) for t in rule.tags] and "attack.collection" in [str(t) for t in rule.tags]
    assert str(rule.date) == "2021-08-17" and str(rule.modified) == "2026-05-13"


def test_alias_cases_split_the_base_rule_by_the_first_field_present() -> None:
    from translator.sigma.rule import alias_cases

    base = {"title": "T", "id": "a4e8f3a4-48b2-11ec-bcfc-3e22fbd008af", "name": "t",
            "detection": {"sel": {"a": 1}, "condition": "sel"}}  # fmt: skip
    cases = alias_cases(base, {"user": ["p.user", "user"]})
    assert [c["name"] for c in cases] == ["t_1", "t_2"] and len({c["id"] for c in cases}) == 2
    assert cases[0]["detection"]["condition"] == "(sel) and case_user_0"
    # the last case: where no earlier field is (its own may be missing: a counted field then adds no value)
    assert cases[1]["detection"]["condition"] == "(sel) and not case_user_0"
    assert [c["aliases"] for c in cases] == [{"user": "p.user"}, {"user": "user"}]

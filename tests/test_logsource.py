"""Logsources from source terms: the table, PowerShell's two channels, custom logsources for names no
table knows (their definition, the Splunk round trip, the evaluator), data source files, user mappings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REFERENCE_EXAMPLE

from translator.content import Content, DataSource
from translator.data import logsource_overrides, logsource_table, set_logsource_overrides
from translator.emit import targets as tg
from translator.engine.evaluate import evaluate
from translator.engine.logsources import Defined, record_logsource, selector_for, set_overrides
from translator.sigma import logsource as ls
from translator.sigma.rule import load_rule
from translator.sigma.splunk_source import SplunkSource, custom_logsource, windows_service
from translator.spl import Macro, parse
from translator.workflow import ConvertOptions, DetectionResult, convert_query

PS_2025 = (
    "(source=WinEventLog:Microsoft-Windows-PowerShell/Operational"
    ' OR source="XmlWinEventLog:Microsoft-Windows-PowerShell/Operational"'
    " OR source=WinEventLog:PowerShellCore/Operational"
    ' OR source="XmlWinEventLog:PowerShellCore/Operational")'
)
PS_2024 = (
    "(source=WinEventLog:Microsoft-Windows-PowerShell/Operational"
    ' OR source="XmlWinEventLog:Microsoft-Windows-PowerShell/Operational")'
)


def infer(query: str, data_sources: tuple[str, ...] = (), described: dict[str, DataSource] | None = None):
    first = parse(query).commands[0]
    return ls.infer(first.expr, data_sources, described)  # type: ignore[union-attr]


def convert(query: str, macros: dict[str, str] | None = None, targets: list[str] | None = None) -> DetectionResult:
    content = Content(None, {(n, 0): Macro(n, d) for n, d in (macros or {}).items()})
    return convert_query(query, content, ConvertOptions(targets=targets or [], write=False))


@pytest.fixture
def user_mappings() -> Iterator[None]:
    """Restore the built-in table after a test that sets user mappings."""
    before = logsource_overrides()
    yield
    set_overrides(before)


# -- the table ------------------------------------------------------------------------------------


def test_both_powershell_channels_are_the_powershell_service() -> None:
    assert ls.service_channels("windows", "powershell") == [
        "Microsoft-Windows-PowerShell/Operational",
        "PowerShellCore/Operational",
    ]
    res = infer(f"{PS_2025} EventCode=4104 ScriptBlockText=*x*")
    assert res.logsource == {"product": "windows", "category": "ps_script"} and not res.reasons
    assert res.channel == []


def test_a_macro_naming_one_of_the_channels_keeps_a_channel_condition() -> None:
    res = infer(f"{PS_2024} EventCode=4104 ScriptBlockText=*x*")
    assert res.logsource == {"product": "windows", "category": "ps_script"}
    channel = res.channel
    assert len(channel) == 1 and channel[0].value.text == "Microsoft-Windows-PowerShell/Operational"  # type: ignore[union-attr]
    # a pattern naming every channel of the service needs none
    res = infer("source=XmlWinEventLog:*PowerShell*/Operational EventCode=4103")
    assert res.logsource == {"product": "windows", "category": "ps_module"}
    assert res.channel == []


def test_reference_detection_v13_with_the_2025_macro_is_exact_on_both_channels() -> None:
    import yaml

    search = yaml.safe_load(REFERENCE_EXAMPLE.read_text())["search"]
    res = convert(
        search, {"powershell": PS_2025, "security_content_ctime": "convert timeformat=x ctime($field$)"}, ["splunk"]
    )
    assert res.status == "exact", res.reasons
    rule = load_rule(res.rule_yaml)  # type: ignore[arg-type]
    assert rule.logsource.category == "ps_script" and rule.logsource.definition is None
    fields = {i.field for i in rule.detection.detections["selection"].detection_items}  # type: ignore[union-attr]
    assert "Channel" not in fields
    query = res.queries["splunk"]
    for channel in ("Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"):
        assert f'"XmlWinEventLog:{channel}"' in query and f'"WinEventLog:{channel}"' in query


def test_current_add_on_names_are_known() -> None:
    assert infer("sourcetype=auditd type=EXECVE").logsource == {"product": "linux", "service": "auditd"}
    appx = infer('source="XmlWinEventLog:Microsoft-Windows-AppXDeploymentServer/Operational" EventCode=400')
    assert appx.logsource == {"product": "windows", "service": "appxdeployment-server"} and not appx.custom


# -- custom logsources ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("sourcetype", "cisco:sfw:estreamer", {"product": "cisco", "service": "sfw_estreamer"}),
        ("sourcetype", "aws:asl", {"product": "aws", "service": "asl"}),
        ("sourcetype", "vmw-syslog", {"product": "vmw_syslog"}),
        ("sourcetype", "cisco:duo:*", {"product": "cisco", "service": "duo"}),
        ("index", "zoom", {"product": "zoom"}),
        ("Channel", "Microsoft-Windows-Foo Bar/Operational", {"product": "windows", "service": "foo-bar-operational"}),
    ],
)
def test_custom_logsource_scheme(field: str, value: str, expected: dict[str, str]) -> None:
    assert custom_logsource(field, value) == expected


def test_windows_service_slug() -> None:
    assert windows_service("Microsoft-Windows-AppXDeployment/Operational") == "appxdeployment-operational"
    assert windows_service("OpenSSH/Admin") == "openssh-admin"


@pytest.mark.parametrize(
    "groups",
    [
        ((("sourcetype", "cisco:sfw:estreamer"),),),
        ((("sourcetype", "a:b"), ("sourcetype", "a:c*")),),
        ((("source", 'we"ird \\ value'), ("sourcetype", "x y")), (("index", "main"),)),
    ],
)
def test_definition_round_trip(groups: tuple[tuple[tuple[str, str], ...], ...]) -> None:
    source = SplunkSource(groups)
    assert SplunkSource.from_definition(source.definition()) == source
    assert SplunkSource.from_definition("Requirements: Sysmon config with rule X") is None  # SigmaHQ's prose


def test_unknown_sourcetype_gets_a_custom_logsource_that_keeps_the_selection() -> None:
    res = infer('sourcetype="cisco:sfw:estreamer" EventType=ConnectionEvent index=netfw')
    assert res.custom and not res.reasons
    assert res.logsource["product"] == "cisco" and res.logsource["service"] == "sfw_estreamer"
    source = SplunkSource.from_definition(res.logsource["definition"])
    assert source == SplunkSource(((("sourcetype", "cisco:sfw:estreamer"),), (("index", "netfw"),)))
    assert [c.field for c in res.remaining] == ["EventType"]  # type: ignore[union-attr]
    assert any("pipeline entry" in n for n in res.notes)


def test_index_alone_is_a_custom_logsource_and_known_sources_drop_the_index_broader() -> None:
    alone = infer("index=zoom event=meeting.started")
    assert alone.logsource["product"] == "zoom" and "index=" in alone.logsource["definition"]
    known = infer("index=main sourcetype=aws:cloudtrail eventName=X")
    assert known.logsource == {"product": "aws", "service": "cloudtrail"}
    assert any("index=main not carried over" in r for r in known.reasons)


def test_custom_logsource_round_trips_to_splunk_and_is_noted_for_others() -> None:
    res = convert(
        '`fw` EventType=ConnectionEvent action IN ("Block", "Block with reset")',
        {"fw": 'sourcetype="cisco:sfw:estreamer" OR sourcetype="cisco:sfw:estreamer2"'},
        ["splunk", "lucene"],
    )
    assert res.status == "exact", res.reasons
    assert (
        res.queries["splunk"].startswith('sourcetype IN ("cisco:sfw:estreamer", "cisco:sfw:estreamer2")')
        or 'sourcetype="cisco:sfw:estreamer"' in res.queries["splunk"]
    )
    assert "EventType" in res.queries["lucene"] and "cisco" not in res.queries["lucene"]
    assert any("other targets need a pipeline entry" in n for n in res.notes)


def test_custom_windows_channel_to_splunk_source() -> None:
    res = convert('source="XmlWinEventLog:Microsoft-Windows-Custom/Operational" EventCode=7', targets=["splunk"])
    assert res.status == "exact", res.reasons
    rule = load_rule(res.rule_yaml)  # type: ignore[arg-type]
    assert rule.logsource.product == "windows" and rule.logsource.service == "custom-operational"
    assert 'source="XmlWinEventLog:Microsoft-Windows-Custom/Operational"' in res.queries["splunk"]
    assert "EventCode=7" in res.queries["splunk"]


def test_evaluator_reads_a_custom_logsource_by_its_definition(tmp_path: Path) -> None:
    res = convert('sourcetype="cisco:sfw:estreamer" EventType=ConnectionEvent')
    rule_file = tmp_path / "r.yml"
    rule_file.write_text(res.rule_yaml or "", encoding="utf-8")
    events = tmp_path / "e.jsonl"
    lines = [
        {"sourcetype": "cisco:sfw:estreamer", "EventType": "ConnectionEvent"},  # 1: yes
        {"sourcetype": "CISCO:SFW:ESTREAMER", "EventType": "ConnectionEvent"},  # 2: sourcetypes ignore case
        {"sourcetype": "cisco:asa", "EventType": "ConnectionEvent"},  # 3: another product
        {"EventType": "ConnectionEvent"},  # 4: names no source: not this one
    ]
    events.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    out = evaluate([rule_file], [events])
    assert [Path(m).name for m in out.rules[0].matches] == ["e.jsonl#1", "e.jsonl#2"]
    selector = selector_for(load_rule(res.rule_yaml))  # type: ignore[arg-type]
    assert isinstance(selector.defined, Defined)


def test_records_naming_an_unknown_source_are_not_of_a_table_logsource() -> None:
    assert record_logsource({"sourcetype": "aws:cloudtrail"}) == (True, {"product": "aws", "service": "cloudtrail"})
    assert record_logsource({"sourcetype": "cisco:thing"}) == (True, None)
    assert record_logsource({"sourcetype": "_json"}) == (False, None)  # generic: any non-Windows logsource
    assert record_logsource({}) == (False, None)


# -- the content's data sources and the user's mappings ------------------------------------------


def test_data_source_files_pick_the_platform_of_a_macro_naming_two() -> None:
    query = (
        "(source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational OR source=Syslog:Linux-Sysmon/Operational) "
        "EventCode=1 Image=*x*"
    )
    assert "name several platforms" in infer(query, ("Odd Name",)).reasons[0]
    linux = {"Odd Name": DataSource("Odd Name", source="Syslog:Linux-Sysmon/Operational", sourcetype="sysmon:linux")}
    res = infer(query, ("Odd Name",), linux)
    assert res.logsource == {"product": "linux", "category": "process_creation"} and not res.reasons
    assert any("data_sources files" in n for n in res.notes)


def test_user_mappings_name_a_sourcetype_for_every_reader(user_mappings: None) -> None:
    assert infer("sourcetype=acme:edr action=x").custom
    set_overrides({"sourcetypes": {"acme:edr": {"product": "acme", "service": "edr"}}})
    res = infer("sourcetype=acme:edr action=x")
    assert res.logsource == {"product": "acme", "service": "edr"} and not res.custom
    assert "acme:edr" in logsource_table()["sourcetypes"]
    assert record_logsource({"sourcetype": "ACME:EDR"}) == (True, {"product": "acme", "service": "edr"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bogus": {}}, "unknown logsource table keys"),
        ({"sourcetypes": {"x": {"vendor": "y"}}}, "must map to a Sigma logsource"),
        ({"sourcetypes": ["x"]}, "must be a mapping"),
        ({"categories": {"a": 1}}, "list of rows"),
    ],
)
def test_bad_user_mappings_are_refused_with_the_reason(data: dict, message: str, user_mappings: None) -> None:
    with pytest.raises(ValueError, match=message):
        set_logsource_overrides(data)


def test_a_table_logsource_named_by_source_keeps_its_terms_for_splunk() -> None:
    """ESCU names PingID, Kubernetes and zscaler events by ``source``; the table does not tell a source
    from a sourcetype, so the definition keeps the search's terms and the Splunk query says ``source``."""
    res = convert("source=PINGID result.status=SUCCESS | stats count by user", targets=["splunk"])
    rule = load_rule(res.rule_yaml)  # type: ignore[arg-type]
    assert (rule.logsource.product, rule.logsource.service) == ("pingid", "audit")
    assert rule.logsource.definition == 'Splunk: source="PINGID"' and not ls.is_custom(rule.logsource.to_dict())
    query = res.queries["splunk"]
    assert query.startswith('source="PINGID"') and "sourcetype" not in query
    by_sourcetype = convert("sourcetype=pingid result.status=SUCCESS | stats count by user", targets=["splunk"])
    assert load_rule(by_sourcetype.rule_yaml).logsource.definition is None  # type: ignore[arg-type]
    assert by_sourcetype.queries["splunk"].startswith('sourcetype="pingid"')
    channel = convert('source="XmlWinEventLog:Security" EventCode=4720')
    assert load_rule(channel.rule_yaml).logsource.definition is None  # type: ignore[arg-type]


def test_splunk_target_has_the_custom_sources_pipeline() -> None:
    assert "splunk_custom_sources" in tg.default_pipelines("splunk", "cisco")
    assert "splunk_custom_sources" in tg.default_pipelines("splunk", "windows")


def test_a_category_fed_by_several_event_logs_keeps_the_one_the_search_names(tmp_path: Path) -> None:
    """Sysmon EventCode=1 is process_creation, which Security 4688 records feed too (renamed): the rule
    keeps the Sysmon channel, so a 4688 record of the same program is not selected."""
    res = convert('source="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational" EventCode=1 Image="*\\\\whoami.exe"')
    assert res.status == "exact", res.reasons
    rule = load_rule(res.rule_yaml)  # type: ignore[arg-type]
    assert rule.logsource.category == "process_creation"
    items = {
        i.field: [v.to_plain() for v in i.original_value]
        for i in rule.detection.detections["selection"].detection_items
    }  # type: ignore[union-attr]
    assert items["Channel"] == ["Microsoft-Windows-Sysmon/Operational"]
    rule_file = tmp_path / "r.yml"
    rule_file.write_text(res.rule_yaml or "", encoding="utf-8")
    record = (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        "<Provider Name='Microsoft-Windows-Security-Auditing'/><EventID>4688</EventID>"
        "<TimeCreated SystemTime='2024-04-23T08:48:30.449Z'/><EventRecordID>1</EventRecordID><Channel>{}</Channel>"
        "<Computer>h</Computer></System><EventData>"
        "<Data Name='{}'>C:\\Windows\\System32\\whoami.exe</Data></EventData></Event>"
    )
    events = tmp_path / "e.xml"
    events.write_text(
        record.format("Security", "NewProcessName")
        + "\n"
        + record.format("Microsoft-Windows-Sysmon/Operational", "Image").replace("4688", "1")
        + "\n",
        encoding="utf-8",
    )
    out = evaluate([rule_file], [events])
    assert [Path(m).name for m in out.rules[0].matches] == ["e.xml#2"]

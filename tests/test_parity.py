"""Parity: the original SPL and the Sigma rule on the same events (written here), and deliberately wrong rules."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLES, REFERENCE_EXAMPLE, detection_yaml

from translator.cli import main
from translator.emit.reports import parity_html, parity_junit
from translator.engine.parity import parity
from translator.workflow import content_loader

PS = "Microsoft-Windows-PowerShell/Operational"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
NET = "C:\\Windows\\System32\\net.exe"
# the summary of a run over one detection whose two sides match the same events
ONE_EQUAL = {"total": 1, "equal": 1, "differ": 0, "untested": 0, "not_evaluable": 0, "error": 0, "original_fired": 1}


def event(channel: str, event_id: int, data: dict[str, str], when: str = "2024-03-01T10:00:00.000Z",
          computer: str = "ws1.corp") -> str:  # fmt: skip
    """One XmlWinEventLog line, as Splunk's Windows input writes it."""
    provider = "Microsoft-Windows-PowerShell" if channel == PS else "Microsoft-Windows-Sysmon"
    fields = "".join(f"<Data Name='{k}'>{v}</Data>" for k, v in data.items())
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name='{provider}' Guid='{{A0C1853B-5C40-4B15-8766-3CF1C58F985A}}'/><EventID>{event_id}</EventID>"
        f"<Version>1</Version><Level>5</Level><Task>2</Task><Opcode>15</Opcode><Keywords>0x0</Keywords>"
        f"<TimeCreated SystemTime='{when}'/><EventRecordID>1</EventRecordID>"
        f"<Execution ProcessID='5336' ThreadID='2228'/><Channel>{channel}</Channel><Computer>{computer}</Computer>"
        f"<Security UserID='S-1-5-18'/></System><EventData>{fields}</EventData></Event>"
    )


def script(text: str) -> dict[str, str]:
    return {"MessageNumber": "1", "MessageTotal": "1", "ScriptBlockText": text, "ScriptBlockId": "b1", "Path": ""}


@pytest.fixture
def ps_events(tmp_path: Path) -> Path:
    lines = [
        event(PS, 4104, script("Enter-PSSession -ComputerName dc01")),  # line 1: matches
        event(PS, 4104, script("enter-pssession -computername DC02")),  # line 2: matches (case-insensitive)
        event(PS, 4104, script("Enter-PSSession -Session $s")),  # line 3: one value only
        event(PS, 4103, script("Enter-PSSession -ComputerName dc01")),  # line 4: not a script block event
        event(SYSMON, 1, {"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "Enter-PSSession -ComputerName"}),
    ]
    path = tmp_path / "events.xml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_parity(detections: Path, events: Path, sigma: Path | None = None):  # type: ignore[no-untyped-def]
    items = (
        [(p, p.relative_to(detections)) for p in sorted(detections.rglob("*.yml"))]
        if detections.is_dir()
        else [(detections, Path(detections.name))]
    )
    return parity(items, content_loader(None), [events], sigma_dir=sigma)


def test_reference_detection_agrees_on_written_events(ps_events: Path) -> None:
    run = run_parity(REFERENCE_EXAMPLE, ps_events)
    (r,) = run.results
    assert r.status == "equal", r
    assert r.original_matches == r.sigma_matches == 2
    assert run.summary() == ONE_EQUAL
    # the query the Splunk backend emits, run through the executor, selects the same two events
    assert r.targets["splunk"]["status"] == "equal" and r.targets["splunk"]["matches"] == 2
    # and so do the sqlite and duckdb backends' SQL, run in SQLite and DuckDB over the logsource's events
    assert r.targets["sqlite"]["status"] == "equal" and r.targets["sqlite"]["matches"] == 2
    assert r.targets["duckdb"]["status"] == "equal" and r.targets["duckdb"]["matches"] == 2
    # and the Elastic queries, on the documents Elastic Agent writes for these events
    for target in ("lucene", "opensearch_lucene", "esql"):
        assert r.targets[target]["status"] == "equal" and r.targets[target]["matches"] == 2, target
    assert "EQL cannot search text field" in r.targets["eql"]["reason"]  # not written, and not run
    junit = parity_junit(run)
    assert "target esql: equal" in junit and "target eql: not_evaluable" in junit
    assert "Emitted queries run on the same events" in parity_html(run)


def _converted(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    assert main([str(REFERENCE_EXAMPLE), "--rules-out", str(rules), "-q"]) == 0
    return rules


def test_a_narrower_sigma_rule_differs_with_exactly_the_missed_events(ps_events: Path, tmp_path: Path) -> None:
    rules = _converted(tmp_path)
    rule = rules / REFERENCE_EXAMPLE.name
    rule.write_text(rule.read_text().replace("- -ComputerName", "- -ComputerName dc01"))  # misses line 2
    (r,) = run_parity(REFERENCE_EXAMPLE, ps_events, sigma=rules).results
    assert r.status == "differ"
    assert r.only_original == [f"{ps_events}#2"] and r.only_sigma == []
    assert r.explain[f"{ps_events}#2"]["ScriptBlockText"] == "enter-pssession -computername DC02"


def test_a_broader_sigma_rule_differs_with_exactly_the_extra_events(ps_events: Path, tmp_path: Path) -> None:
    rules = _converted(tmp_path)
    rule = rules / REFERENCE_EXAMPLE.name
    rule.write_text(rule.read_text().replace("    - -ComputerName\n", ""))  # also matches line 3
    (r,) = run_parity(REFERENCE_EXAMPLE, ps_events, sigma=rules).results
    assert r.status == "differ"
    assert r.only_sigma == [f"{ps_events}#3"] and r.only_original == []


def test_a_wrong_logsource_differs(ps_events: Path, tmp_path: Path) -> None:
    rules = _converted(tmp_path)
    rule = rules / REFERENCE_EXAMPLE.name
    rule.write_text(rule.read_text().replace("category: ps_script", "category: ps_module"))  # 4103 instead of 4104
    (r,) = run_parity(REFERENCE_EXAMPLE, ps_events, sigma=rules).results
    assert r.status == "differ"
    assert r.only_original == [f"{ps_events}#1", f"{ps_events}#2"]
    assert r.only_sigma == [f"{ps_events}#4"]


@pytest.fixture
def sysmon_content(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "content"
    shutil.copytree(EXAMPLES, root)
    (root / "macros" / "sysmon.yml").write_text(
        "name: sysmon\ndefinition: source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational\n"
    )
    (root / "macros" / "security_content_summariesonly.yml").write_text(
        "name: security_content_summariesonly\n"
        "definition: summariesonly=false allow_old_summaries=true fillnull_value=null\n"
    )
    (root / "macros" / "drop_dm_object_name.yml").write_text(
        "name: drop_dm_object_name(1)\nargs:\n- name\ndefinition: rename $name$.* as *\n"
    )
    searches = {
        "tstats_cmd": "| tstats `security_content_summariesonly` count from datamodel=Endpoint.Processes where "
        'Processes.process_name=cmd.exe Processes.process="*whoami*" by Processes.dest Processes.user '
        "| `drop_dm_object_name(Processes)` | `tstats_cmd_filter`",
        "raw_where": '`sysmon` EventCode=1 Image="*\\\\rundll32.exe" | where like(CommandLine, "%,#1%") '
        "| `raw_where_filter`",
        "threshold": '`sysmon` EventCode=1 Image="*\\\\net.exe" | bucket _time span=1h '
        "| stats count by Computer _time | where count > 2 | `threshold_filter`",
    }
    folder = root / "detections" / "endpoint"
    for n, (name, search) in enumerate(searches.items()):
        (folder / f"{name}.yml").write_text(detection_yaml(name, n, search))
    proc = lambda image, cmd, host="ws1.corp", when="2024-03-01T10:00:00.000Z": event(  # noqa: E731
        SYSMON, 1, {"Image": image, "CommandLine": cmd, "User": "CORP\\ann", "ProcessId": "42"}, when, host
    )
    lines = [
        proc("C:\\Windows\\System32\\cmd.exe", "cmd /c whoami /all"),  # 1: tstats_cmd
        proc("C:\\Windows\\System32\\CMD.EXE", "cmd /c WHOAMI"),  # 2: tstats_cmd (case-insensitive)
        proc("C:\\Windows\\System32\\cmd.exe", "cmd /c dir"),  # 3: no
        proc("C:\\Windows\\System32\\rundll32.exe", "rundll32 x.dll,#1"),  # 4: raw_where
        proc("C:\\Windows\\System32\\rundll32.exe", "rundll32 x.dll,#2"),  # 5: no
        *(proc(NET, f"net user {i}", "srv9", f"2024-03-01T11:0{i}:00.000Z") for i in range(3)),
        *(proc(NET, f"net user {i}", "ws1.corp", f"2024-03-01T11:0{i}:00.000Z") for i in range(2)),
    ]  # fmt: skip
    events = tmp_path / "sysmon.xml"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder, events


def test_tstats_raw_where_and_threshold_agree(sysmon_content: tuple[Path, Path]) -> None:
    folder, events = sysmon_content
    run = parity([(p, p.relative_to(folder)) for p in sorted(folder.glob("*.yml"))], content_loader(None), [events])
    got = {r.name: r for r in run.results if r.name in ("tstats_cmd", "raw_where", "threshold")}
    assert {n: r.status for n, r in got.items()} == {"tstats_cmd": "equal", "raw_where": "equal", "threshold": "equal"}
    assert got["tstats_cmd"].original_matches == 2
    assert got["raw_where"].original_matches == 1
    assert got["threshold"].original_matches == 3  # the three srv9 events; ws1.corp has only two


def test_parity_cli_reports_and_exit_code(ps_events: Path, tmp_path: Path) -> None:
    rules = _converted(tmp_path)
    report, junit, page = tmp_path / "p.json", tmp_path / "p.xml", tmp_path / "p.html"
    args = [str(REFERENCE_EXAMPLE), "--events", str(ps_events), "--report", str(report), "--junit", str(junit),
            "--html", str(page)]  # fmt: skip
    assert main(["parity", *args]) == 0
    data = json.loads(report.read_text())
    assert data["summary"] == ONE_EQUAL
    det = data["detections"][0]
    assert {
        "file",
        "id",
        "status",
        "original_matches",
        "sigma_matches",
        "only_original",
        "only_sigma",
        "reasons",
    } <= set(det)
    rule = rules / REFERENCE_EXAMPLE.name
    rule.write_text(rule.read_text().replace("    - -ComputerName\n", ""))
    assert main(["parity", *args, "--sigma", str(rules)]) == 1  # a differ fails CI
    case = ET.parse(junit).getroot().find("testcase")
    assert case is not None and case.find("failure") is not None
    assert f"{ps_events}#3" in (case.find("failure").text or "")  # type: ignore[union-attr]
    assert "only the Sigma rule" in page.read_text()


def test_generated_events_check_a_detection_without_samples(tmp_path: Path) -> None:
    """--generate: a positive the original selects and near misses it rejects; never reads the Sigma rule."""
    from translator.engine.generate import generate
    from translator.spl import parse

    query = (
        "| tstats count from datamodel=Endpoint.Processes where Processes.process_name=cmd.exe "
        'Processes.process="*whoami*" NOT Processes.parent_process_name=explorer.exe by Processes.dest'
    )
    made = generate(parse(query, "t"), ("Sysmon EventID 1",))
    assert made[0].label == "positive"
    pos = made[0].fields
    assert pos["Channel"] == SYSMON and pos["EventID"] == 1
    assert pos["Image"].lower().endswith("\\cmd.exe") and "whoami" in pos["CommandLine"]
    assert len(made) == 4  # one near miss per term
    assert not made[1].fields["Image"].lower().endswith("\\cmd.exe")
    assert made[3].fields["ParentImage"].lower().endswith("\\explorer.exe")

    report = tmp_path / "p.json"
    empty = tmp_path / "none.xml"
    empty.write_text("")
    assert main(["parity", str(REFERENCE_EXAMPLE), "--events", str(empty), "--generate", "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["generated"] == {"with_events": 1, "checked": 1, "equal": 1}
    det = data["detections"][0]
    assert det["original_matches"] == det["sigma_matches"] == 1 and det["status"] == "equal"
    # the positive, a near miss per script-block term, and one on another channel (the source term)
    lines = Path(det["generated"][0].split("#")[0]).read_text().splitlines()
    assert len(lines) == len(det["generated"]) == 4
    assert sum(f"<Channel>{PS}</Channel>" in line for line in lines) == 3


def test_sql_tables_hold_one_logsource_and_compare_without_case() -> None:
    """The sqlite query runs over the rule's logsource only, case-insensitively; a multivalue field is
    one JSON text to SQL, so the query misses an event the rule matches (parity reports it as differ)."""
    from translator.engine.sql_targets import SqliteTables, where_clause
    from translator.sigma.rule import collection_of

    events = [
        ("e#1", {"sourcetype": "aws:cloudtrail", "eventName": "PutBucketPolicy", "Tags{}": ["a", "public"]}),
        ("e#2", {"sourcetype": "aws:cloudtrail", "eventName": "PutBucketPolicy", "Tags{}": "public"}),
        ("e#3", {"sourcetype": "o365:management:activity", "eventName": "PutBucketPolicy", "Tags{}": "public"}),
    ]
    doc = {
        "title": "t",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": {"sel": {"eventName": "putbucketpolicy", "Tags{}": "public"}, "condition": "sel"},
    }
    rule = collection_of([doc]).rules[0]
    tables = SqliteTables(events)
    tables.plan([rule])
    from translator.emit import targets as tg

    query = tg.convert([doc], tg.Target("sqlite", tuple(tg.default_pipelines("sqlite", "aws")), "default"))
    # e#3 is another product's record; e#1 holds the value in a list the SQL text comparison cannot see
    assert tables.matches(rule, where_clause(query)) == {"e#2"}


def test_duckdb_tables_type_columns_and_keep_the_backends_case_rules() -> None:
    """DuckDB columns take their type from the values (numbers compare as numbers); the duckdb
    backend writes plain equality, which DuckDB compares with case: parity reports the miss."""
    from translator.emit import targets as tg
    from translator.engine.sql_targets import DuckDbTables, SqliteTables, where_clause
    from translator.sigma.rule import collection_of

    events = [
        ("e#1", {"sourcetype": "aws:cloudtrail", "eventName": "PutBucketPolicy", "n": "5"}),
        ("e#2", {"sourcetype": "aws:cloudtrail", "eventName": "PutBucketPolicy", "n": "7"}),
        ("e#3", {"sourcetype": "aws:cloudtrail", "eventName": "putbucketpolicy", "n": "70"}),
    ]
    doc = {
        "title": "t",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": {"sel": {"eventName": "putbucketpolicy", "n|gt": 6}, "condition": "sel"},
    }
    rule = collection_of([doc]).rules[0]
    found = {}
    for tables in (SqliteTables(events), DuckDbTables(events)):
        tables.plan([rule])
        query = tg.convert([doc], tg.Target(tables.target, (), "default"))
        found[tables.target] = tables.matches(rule, where_clause(query))
    assert found == {"sqlite": {"e#2", "e#3"}, "duckdb": {"e#3"}}  # "70" > 6 as a number, not as text


def test_a_step_failing_on_a_bug_is_that_detections_error_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generation, conversion, execution and evaluation each fail for one detection: it reports `error`
    naming the step and the exception; the others are checked; the report is written; the exit code says so."""
    import dataclasses

    import translator.engine.evaluate as eval_module
    import translator.engine.generate as gen_module
    import translator.engine.parity as parity_module

    root = tmp_path / "content"
    folder = root / "detections"
    folder.mkdir(parents=True)
    (root / "macros").mkdir()
    for n, name in enumerate(("good", "bad_generate", "bad_convert", "bad_execute", "bad_evaluate")):
        search = f'source=XmlWinEventLog:{SYSMON} EventCode=1 Image="*\\\\{name}.exe"'
        (folder / f"{name}.yml").write_text(detection_yaml(name, n, search), encoding="utf-8")

    real_generate, real_convert, real_run = gen_module.generate, parity_module.convert_detection, parity_module.run
    real_compile = eval_module.compile_rule

    def compile_rule(rule):  # type: ignore[no-untyped-def]
        compiled = real_compile(rule)
        if "bad_evaluate" not in (rule.title or "").lower():
            return compiled

        def matches(_event):  # type: ignore[no-untyped-def]
            raise IndexError("list index out of range")

        return dataclasses.replace(compiled, matches=matches)

    def generate(pipeline, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "bad_generate" in str(pipeline):
            raise TypeError("cannot unpack non-iterable NoneType object")
        return real_generate(pipeline, *args, **kwargs)

    def convert(det, *args, **kwargs):  # type: ignore[no-untyped-def]
        if det.name == "bad_convert":
            raise KeyError("boom")
        return real_convert(det, *args, **kwargs)

    def run(pipeline, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "bad_execute" in str(pipeline):
            raise ZeroDivisionError("division by zero")
        return real_run(pipeline, *args, **kwargs)

    monkeypatch.setattr(parity_module, "generate", generate)
    monkeypatch.setattr(parity_module, "convert_detection", convert)
    monkeypatch.setattr(parity_module, "run", run)
    monkeypatch.setattr(eval_module, "compile_rule", compile_rule)
    report = tmp_path / "p.json"
    empty = tmp_path / "none.xml"
    empty.write_text("")
    code = main(["parity", str(folder), "--events", str(empty), "--generate", "--report", str(report), "-q"])
    assert code == 1
    data = json.loads(report.read_text())
    by_name = {Path(d["file"]).stem: d for d in data["detections"]}
    assert by_name["good"]["status"] == "equal" and by_name["good"]["generated_check"] == "equal"
    assert data["summary"]["error"] == 4
    expected = {
        "bad_evaluate": "the Sigma evaluator on",
        "bad_generate": "the event generator (TypeError",
        "bad_convert": "the conversion (KeyError",
        "bad_execute": "the SPL executor (ZeroDivisionError",
    }
    for name, text in expected.items():
        assert by_name[name]["status"] == "error"
        assert text in by_name[name]["reasons"][0], by_name[name]["reasons"]


def test_generation_for_a_registry_search_grouped_by_a_cim_value_field(tmp_path: Path) -> None:
    """A raw Sysmon registry search grouped by ``action`` (a CIM field the add-on derives from EventType)
    stopped every --generate run; it now gets events, and the rule agrees with the original on them."""
    root = tmp_path / "content"
    folder = root / "detections"
    folder.mkdir(parents=True)
    (root / "macros").mkdir()
    search = (
        f'source=XmlWinEventLog:{SYSMON} EventCode=13 TargetObject="*\\\\Control Panel\\\\Desktop\\\\Wallpaper" '
        'Image!="*\\\\explorer.exe" | stats count by Image TargetObject Computer action'
    )
    (folder / "wallpaper.yml").write_text(detection_yaml("wallpaper", 1, search), encoding="utf-8")
    empty = tmp_path / "none.xml"
    empty.write_text("")
    run = parity(
        [(folder / "wallpaper.yml", Path("wallpaper.yml"))],
        content_loader(root),
        [empty],
        generate_to=tmp_path / "g.xml",
    )
    res = run.results[0]
    assert res.generated and res.status == "equal" and res.generated_check == "equal", res.reasons


def test_neither_side_matching_is_untested_not_equal(tmp_path: Path) -> None:
    """No event either side matched is no evidence: `untested`, counted apart, skipped in JUnit."""
    quiet = tmp_path / "quiet.xml"
    quiet.write_text(event(PS, 4104, script("Get-Date")) + "\n", encoding="utf-8")
    run = run_parity(REFERENCE_EXAMPLE, quiet)
    (r,) = run.results
    assert r.status == "untested" and r.original_matches == r.sigma_matches == 0
    assert run.summary()["untested"] == 1 and run.summary()["equal"] == 0
    from translator.emit.reports import parity_junit

    case = ET.fromstring(parity_junit(run)).find("testcase")
    assert case is not None and case.find("skipped") is not None
    assert main(["parity", str(REFERENCE_EXAMPLE), "--events", str(quiet), "-q"]) == 0  # no difference: no failure


def test_threshold_grouped_past_a_wildcard_rename_is_an_aliased_correlation(tmp_path: Path) -> None:
    """``rename properties.* as *`` then ``dc(user) by src_ip``: each name holds ``properties.X`` where the
    event has it, else its own ``X``; the rule has one base rule per case, aliased in the correlation,
    and selects what the search does on events of every case, including ones lacking the counted field."""
    root = tmp_path / "content"
    det = root / "detections" / "cloud" / "spray.yml"
    det.parent.mkdir(parents=True)
    search = (
        "sourcetype=azure:monitor:aad category=SignInLogs | rename properties.* as * | bin _time span=1h "
        "| stats dc(user) as users by src_ip _time | where users > 2"
    )
    det.write_text(detection_yaml("Spray", 7, search).replace("Sysmon EventID 1", "Azure Active Directory"), "utf-8")
    rows = [
        {"properties": {"src_ip": "1.1.1.1", "user": "a"}, "src_ip": "9.9.9.9"},  # properties.* wins
        {"src_ip": "1.1.1.1", "user": "b"},
        {"properties": {"src_ip": "1.1.1.1"}, "user": "c"},
        {"properties": {"src_ip": "1.1.1.1"}},  # no user: in the group, no value
        {"src_ip": "9.9.9.9", "user": "a"},
        {"src_ip": "9.9.9.9", "properties": {"user": "b"}},  # only two users from 9.9.9.9
    ]
    events = tmp_path / "aad.jsonl"
    head = {"sourcetype": "azure:monitor:aad", "category": "SignInLogs"}
    lines = [json.dumps({**head, "time": f"2024-05-01T12:0{i}:00Z", **r}) for i, r in enumerate(rows)]
    events.write_text("\n".join(lines) + "\n")
    run = parity([(det, det.relative_to(root))], content_loader(root), [events])
    res = run.results[0]
    assert res.conversion == "exact", res.reasons
    assert res.status == "equal" and res.original_matches == 4, (res.status, res.reasons)

"""Generated events: what the original's later commands need, Splunk's names back to raw fields,
other products' events as JSON, and the sourcetype a JSON record names."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import detection_yaml

from translator.engine.generate import copies_needed, distinct_needed, generate, kept_fields, nest, read_rest
from translator.engine.logsources import selector
from translator.engine.parity import parity
from translator.events.flatten import flatten_json
from translator.spl import ast, parse
from translator.workflow import content_loader

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def test_kept_fields_follow_renames_and_skip_made_fields() -> None:
    query = (
        'a=1 | eval score=1 | rex field=CommandLine "(?<tool>\\w+)" | rename Computer as dest, UserID as user '
        "| stats count by dest user score tool Image | where count > 1 | stats count by other"
    )
    assert kept_fields(parse(query, "t").commands[1:]) == ["Computer", "UserID", "Image"]
    # fillnull without names fills every later field; dedup drops events lacking its fields
    assert kept_fields(parse("a=1 | fillnull | stats count by x", "t").commands[1:]) == []
    assert kept_fields(parse("a=1 | dedup x | eventstats count by y | stats count by z", "t").commands[1:]) == [
        "x",
        "y",
        "z",
    ]
    assert kept_fields(parse("a=1 | dedup keepempty=true x", "t").commands[1:]) == []


def test_by_fields_are_on_the_positive_and_missing_from_a_near_miss() -> None:
    query = (
        "source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=7 ImageLoaded=*\\\\evil.dll "
        "| stats count by dest Signed ProcessId"
    )
    made = generate(parse(query, "t"))
    positive = made[0].fields
    assert positive["Channel"] == SYSMON and positive["EventID"] == 7
    assert positive["ImageLoaded"].endswith("\\evil.dll") and "Signed" in positive and "ProcessId" in positive
    assert "dest" not in positive  # dest is Splunk's name for Computer, which every record has
    misses = [g.fields for g in made[1:]]
    assert any("Signed" not in m and m.get("ImageLoaded") == positive["ImageLoaded"] for m in misses)
    assert any("ProcessId" not in m for m in misses)


def test_cim_names_of_a_raw_search_become_the_raw_fields_they_come_from() -> None:
    query = "source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=1 process_name=cmd.exe"
    sysmon = generate(parse(query + " parent_process_name=w3wp.exe", "t"))
    pos = sysmon[0].fields
    assert pos["Image"].lower().endswith("\\cmd.exe") and pos["ParentImage"].lower().endswith("\\w3wp.exe")
    assert "process_name" not in pos
    # Security 4688 names the image NewProcessName
    security = generate(parse("source=XmlWinEventLog:Security EventCode=4688 process_name=cmd.exe", "t"))
    pos = security[0].fields
    assert pos["Channel"] == "Security" and pos["NewProcessName"].lower().endswith("\\cmd.exe")


def test_other_products_give_json_with_their_sourcetype() -> None:
    query = "sourcetype=aws:cloudtrail eventName=DeleteTrail userIdentity.type!=Root | stats count by src"
    made = generate(parse(query, "t"))
    assert {g.kind for g in made} == {"json"}
    pos = made[0].fields
    assert pos["sourcetype"] == "aws:cloudtrail" and pos["eventName"] == "DeleteTrail" and "src" in pos
    assert pos["userIdentity.type"] != "Root"
    doc = json.loads(made[0].line(1))
    assert doc["userIdentity"] == {"type": pos["userIdentity.type"]}
    # the near miss on the sourcetype names another product's, not an unknown one
    other = [g.fields["sourcetype"] for g in made[1:] if g.fields["sourcetype"] != "aws:cloudtrail"]
    assert other and all(selector("aws", None, "cloudtrail").view({"sourcetype": st}) is None for st in other)


def test_nested_documents_flatten_back_to_the_same_names() -> None:
    flat = {"a.b": "1", "c{}.d": "x", "c{}.e": "y", "t{}": "v", "a.f.g": "z", "plain": "p"}
    assert flatten_json(nest(flat)) == flat
    clash = {"a": "1", "a.b": "2"}  # "a" cannot be both a value and an object: kept flat
    assert flatten_json(nest(clash)) == clash


def test_a_record_naming_its_sourcetype_is_of_that_logsource_only() -> None:
    cloudtrail = selector("aws", None, "cloudtrail")
    assert cloudtrail.view({"sourcetype": "aws:cloudtrail", "eventName": "x"}) is not None
    assert cloudtrail.view({"sourcetype": "o365:management:activity", "eventName": "x"}) is None
    assert cloudtrail.view({"eventName": "x"}) is not None  # names none: may be of any
    assert cloudtrail.view({"Provider_Name": "p", "Channel": "Security"}) is None
    iis = selector("windows", "webserver", None)  # a Windows logsource without a channel: JSON naming it counts
    assert iis.view({"sourcetype": "mswindows:iis", "cs_uri_query": "x"}) is not None
    assert iis.view({"cs_uri_query": "x"}) is None


def test_json_detection_checked_on_its_generated_events(tmp_path: Path) -> None:
    """End to end: a cloud detection with no samples is checked on its own JSON events, and a
    hand-broadened Sigma rule is caught on the near miss it should have rejected."""
    root = tmp_path / "content"
    det = root / "detections" / "cloud" / "trail.yml"
    det.parent.mkdir(parents=True)
    search = "sourcetype=aws:cloudtrail eventName=DeleteTrail errorCode=success | stats count by src"
    text = detection_yaml("AWS Trail Deleted", 1, search).replace("Sysmon EventID 1", "AWS CloudTrail DeleteTrail")
    det.write_text(text, encoding="utf-8")
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    items = [(det, det.relative_to(root))]
    run = parity(items, content_loader(root), [empty], generate_to=tmp_path / "gen.xml")
    res = run.results[0]
    assert res.generated_check == "equal" and res.status == "equal" and res.original_matches == 1
    assert all(ref.startswith(str(tmp_path / "gen.jsonl")) for ref in res.generated)

    rules = tmp_path / "sigma" / "detections" / "cloud"
    rules.mkdir(parents=True)
    (rules / "trail.yml").write_text(
        "title: broad\nlogsource: {product: aws, service: cloudtrail}\n"
        "detection:\n  sel: {eventName: DeleteTrail, src|exists: true}\n  condition: sel\n",
        encoding="utf-8",
    )
    run = parity(items, content_loader(root), [empty], sigma_dir=tmp_path / "sigma", generate_to=tmp_path / "g2.xml")
    res = run.results[0]
    assert res.generated_check == "differ" and res.status == "differ"
    (only,) = res.only_sigma  # the near miss with another errorCode
    assert json.loads((tmp_path / "g2.jsonl").read_text().splitlines()[int(only.split("#")[1]) - 1])["errorCode"] != (
        "success"
    )


def test_count_thresholds_repeat_every_generated_event() -> None:
    def copies(query: str) -> int:
        return copies_needed(parse(query, "t").commands[1:])

    assert copies("a=1 | stats count by y | where count >= 10") == 10
    assert copies("a=1 | stats count as c by y | where c > 5 AND y=1") == 6
    assert copies("a=1 | stats count by y | search count > 3") == 4
    assert copies("a=1 | stats dc(x) as n by y | where n > 2") == 1  # distinct values, not copies
    assert copies("a=1 | stats count by y | stats count by z | where count > 3") == 1  # counts groups
    assert copies("a=1 | stats count by y | where count > 1000") == 0  # not generated for

    query = (
        "source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=1 process_name=net.exe "
        "| stats count by dest user | where count > 2"
    )
    made = generate(parse(query, "t"))
    assert [g.label for g in made[:3]] == ["positive"] * 3 and made[3].label != "positive"
    assert len(made) % 3 == 0  # every near miss comes three times too


def test_threshold_detection_is_checked_on_its_repeated_events(tmp_path: Path) -> None:
    root = tmp_path / "content"
    det = root / "detections" / "endpoint" / "many_net.yml"
    det.parent.mkdir(parents=True)
    search = (
        "source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=1 process_name=net.exe "
        "| stats count by dest user | where count > 2"
    )
    det.write_text(detection_yaml("Many Net", 2, search), encoding="utf-8")
    (root / "contentctl.yml").write_text("path: .\n", encoding="utf-8")  # contentctl's hourly schedule applies
    empty = tmp_path / "none.xml"
    empty.write_text("")
    run = parity([(det, det.relative_to(root))], content_loader(root), [empty], generate_to=tmp_path / "gen.xml")
    res = run.results[0]
    assert res.conversion == "exact"  # the threshold became a Sigma correlation
    assert res.generated_check == "equal" and res.status == "equal"
    assert res.original_matches == res.sigma_matches == 3  # the three copies of the positive


def test_later_filters_on_event_fields_join_the_positive() -> None:
    query = (
        'sourcetype=azure:monitor:aad category=X | rename properties.* as * | where riskLevel="high" '
        'AND like(operation, "%Add%") | eval n=1 | where n=1 | stats count by user | search user="adm*" | '
        "where count > 0 | search filtered=*"
    )
    rest = read_rest(parse(query, "t").commands[1:])
    assert rest.kept == ["properties.user"]
    shown = [(t.field, t.op, t.value.text) for t in rest.terms if isinstance(t, ast.Compare)]
    # the computed n and the aggregate count are left alone; filters after stats only on its by-fields
    assert shown == [
        ("properties.riskLevel", "=", "high"),
        ("properties.operation", "=", "*Add*"),
        ("properties.user", "=", "adm*"),
    ]
    made = generate(parse(query, "t"))
    pos = made[0].fields
    assert pos["properties.riskLevel"] == "high" and "Add" in pos["properties.operation"]
    assert pos["properties.user"].startswith("adm")
    assert json.loads(made[0].line(1))["properties"]["riskLevel"] == "high"


def test_distinct_count_thresholds_vary_the_counted_field() -> None:
    def distinct(query: str) -> tuple[str, int] | None:
        return distinct_needed(parse(query, "t").commands[1:])

    assert distinct("a=1 | rename src_ip as ip | stats dc(ip) as n by user | where n > 2") == ("src_ip", 3)
    assert distinct("a=1 | stats dc(x) as n by y | search n >= 4") == ("x", 4)
    assert distinct("a=1 | stats count by y | where count > 2") is None

    query = (
        "sourcetype=aws:cloudtrail eventName=ConsoleLogin src_ip=10.* | stats dc(src_ip) as ips by user | where ips > 2"
    )
    made = generate(parse(query, "t"))
    positives = [g.fields for g in made if g.label == "positive"]
    assert len({p["src_ip"] for p in positives}) == 3 and all(p["src_ip"].startswith("10.") for p in positives)
    assert all(len({g.fields["src_ip"] for g in made if g.label == label}) == 3 for label in {g.label for g in made})


def test_a_filter_on_a_lookup_output_asks_for_a_row_that_passes(tmp_path: Path) -> None:
    from translator.content.loader import Lookup

    table = tmp_path / "tools.csv"
    table.write_text("tool_name,description,flag\nnc.exe,,false\nmimikatz.exe,credential dumper,true\n")
    lookups = {"tools": Lookup("tools", table)}
    query = (
        "source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=1 "
        "| lookup tools tool_name AS process_name OUTPUT description flag | search flag=true description=*"
    )
    made = generate(parse(query, "t"), (), lookups)
    assert made[0].fields["Image"].lower().endswith("\\mimikatz.exe")  # the only row passing the filter
    assert any(g.fields.get("Image", "").endswith("\\zz_no_match") for g in made[1:])  # breaks the row's input
    # without the table, nothing says which tool: the filter is not generated for
    assert "mimikatz" not in generate(parse(query, "t"))[0].fields.get("Image", "")


def test_regex_on_plain_text_and_field_comparisons_join_the_positive() -> None:
    query = (
        'sourcetype=o365:management:activity Operation=MailItemsAccessed | regex ClientInfoString="^Client=EWS" '
        "| where user=src_user | stats count by user"
    )
    made = generate(parse(query, "t"))
    pos = made[0].fields
    assert pos["ClientInfoString"].startswith("Client=EWS") and pos["user"] == pos["src_user"]
    assert any(not g.fields.get("ClientInfoString", "").startswith("Client=EWS") for g in made[1:])
    # a real regular expression is not generated for (the filter is left to the original)
    rest = read_rest(parse('a=1 | regex CommandLine="\\w+\\.exe"', "t").commands[1:])
    assert rest.terms == []


def test_generated_events_do_not_depend_on_the_hash_seed() -> None:
    """Replay files must come out the same in every run (set order varies with PYTHONHASHSEED)."""
    import os
    import subprocess
    import sys

    code = (
        "from translator.engine.generate import generate; from translator.spl import parse; "
        "q='source=XmlWinEventLog:Microsoft-Windows-PowerShell/Operational EventCode=4104 "
        "ScriptBlockText=*Invoke-Mimikatz* | stats count by Computer UserID'; "
        "print([g.line(1) for g in generate(parse(q, 't'))])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1 and "Invoke-Mimikatz" in outputs.pop()


def test_tests_on_computed_values_are_written_on_the_fields_they_come_from() -> None:
    """A rex capture compared with a value, an mvfind index and an if() over match(): the positive
    gets source values that give the computed value the test asks for; a capture also gets near values
    (an earlier match, a longer run) that the original must reject."""
    from translator.content import Content
    from translator.engine.spl_exec import EventSet, run

    query = (
        'sourcetype=acme:json kind=share | rex field=owner "[^@]+@(?<dom>[^@]+)" | where dom="corp.com" '
        '| eval m=mvfind(names, "Fwd") | where m >= 0 '
        '| eval r=if(match(rights, "^(Read|Owner)$"), "yes", "no") | search r=yes | stats count by dom'
    )
    pipeline = parse(query, "t")
    made = generate(pipeline)
    selected = {g.label for g in made if run(pipeline, EventSet.of([(g.kind, g.fields)]), Content(None))}
    assert selected == {"positive"}
    positive = made[0].fields
    assert positive["owner"].endswith("@corp.com") and "Fwd" in positive["names"] and positive["rights"] == "Read"
    near = [g.fields["owner"] for g in made if g.label.startswith("near value")]
    assert len(near) == 2 and all("corp.com" in v for v in near)  # close to the value, yet not captured as it

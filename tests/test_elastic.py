"""Elastic targets: the Elastic view of events, Elasticsearch's matching per field type, the Lucene /
EQL / ES|QL runners, and our pipelines for the Elastic targets (each layer on hand-written data)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from translator.emit import targets as tg
from translator.emit.lucene_regex import caseless_regex, lucene_regex
from translator.engine.elastic import DocSet, eql, esql, lucene
from translator.engine.elastic.fields import Rejected, tokens, wildcard_regex
from translator.engine.elastic.fields import lucene_regex as run_regex
from translator.events.elastic import Doc, elastic_doc, elastic_name, elastic_source, index

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def sysmon1(ref: str = "e#1", **data: Any) -> dict[str, Any]:
    fields = {
        "EventID": 1,
        "Channel": SYSMON,
        "Computer": "pc1",
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": "cmd.exe /c whoami",
        "User": "CORP\\alice",
        "ProcessId": 42,
    }
    fields.update(data)
    return fields


def doc(ref: str = "e#1", **data: Any) -> Doc:
    made = elastic_doc(ref, sysmon1(**data))
    assert made is not None
    return made


# ---- the Elastic view of events ----


def test_sysmon_process_create_as_the_windows_integration_writes_it() -> None:
    src = elastic_source(sysmon1(Hashes="SHA1=AB12,MD5=00000000,IMPHASH=FF"))
    assert src["process.executable"] == ["C:\\Windows\\System32\\cmd.exe"]
    assert src["process.name"] == ["cmd.exe"]
    assert src["process.command_line"] == ["cmd.exe /c whoami"]
    assert (src["user.domain"], src["user.name"]) == (["CORP"], ["alice"])
    assert src["event.category"] == ["process"] and src["event.type"] == ["start"]
    assert src["event.code"] == ["1"] and src["winlog.channel"] == [SYSMON]
    assert src["process.hash.sha1"] == ["ab12"] and "process.hash.md5" not in src  # all-zero dropped
    assert src["process.pe.imphash"] == ["ff"]
    # renamed fields leave winlog.event_data; fields nobody maps stay there
    assert "winlog.event_data.Image" not in src and "winlog.event_data.User" not in src


def test_security_4688_copies_the_command_line_and_renames_the_process() -> None:
    fields = {
        "EventID": 4688,
        "Channel": "Security",
        "NewProcessName": "C:\\x\\a.exe",
        "NewProcessId": "0x1a4",
        "CommandLine": "a.exe -k",
        "SubjectUserName": "bob",
        "ParentProcessName": "C:\\x\\p.exe",
    }
    src = elastic_source(fields)
    assert src["process.pid"] == [420]  # hex -> long
    assert src["process.executable"] == ["C:\\x\\a.exe"] and "winlog.event_data.NewProcessName" not in src
    assert src["process.command_line"] == ["a.exe -k"] and src["winlog.event_data.CommandLine"] == ["a.exe -k"]
    assert src["process.parent.name"] == ["p.exe"] and src["user.name"] == ["bob"]


def test_empty_and_dash_values_are_dropped_before_mapping() -> None:
    src = elastic_source(
        {
            "EventID": 4624,
            "Channel": "Security",
            "IpAddress": "-",
            "WorkstationName": "",
            "LogonType": "3",
            "TargetUserName": "carol",
        }
    )
    assert "source.ip" not in src and "source.domain" not in src
    assert src["winlog.logon.type"] == ["Network"] and src["winlog.event_data.LogonType"] == ["3"]
    assert src["user.name"] == ["carol"]


def test_other_channels_keep_their_data_under_winlog_event_data() -> None:
    src = elastic_source({"EventID": 7045, "Channel": "System", "ServiceName": "evil", "AccountName": "LocalSystem"})
    assert src["winlog.event_data.ServiceName"] == ["evil"] and "service.name" not in src
    assert elastic_doc("x", {"eventName": "CreateUser"}) is None  # not a Windows event: no view yet


def test_elastic_name_finds_where_a_field_lands() -> None:
    assert elastic_name(SYSMON, 1, "Image") == "process.executable"
    assert elastic_name("Security", 4688, "NewProcessId") == "process.pid"
    assert elastic_name("Security", 4663, "ProcessName") == "winlog.event_data.ProcessName"  # not an auth event
    assert elastic_name("System", 7045, "UserID") == "winlog.user.identifier"  # the record's System part
    assert elastic_name(SYSMON, 1, "User") is None  # split into domain and name: the value does not survive


# ---- Elasticsearch's semantics per field type ----


def test_keyword_and_wildcard_fields_match_with_case_text_fields_by_lowercased_words() -> None:
    text = ["Invoke-Mimikatz -x"]
    d = index(
        "d", {"process.command_line": ["CMD.exe /c WhoAmI"], "message": text, "powershell.file.script_block_text": text}
    )
    assert lucene.matches("process.command_line:*WhoAmI*", [d]) == {"d"}
    assert lucene.matches("process.command_line:*whoami*", [d]) == set()  # wildcard type: case-sensitive
    assert lucene.matches("message:*mimikatz*", [d]) == {"d"}  # a token, lower-cased
    assert lucene.matches("message:*invoke\\-mimikatz*", [d]) == set()  # the standard analyser splits at '-'
    assert lucene.matches('message:"invoke mimikatz"', [d]) == {"d"}  # a phrase
    # the script-block analyser keeps '-' inside words
    assert lucene.matches("powershell.file.script_block_text:*invoke\\-mimikatz*", [d]) == {"d"}
    assert lucene.matches("powershell.file.script_block_text:*\\-x*", [d]) == {"d"}
    assert tokens("C:\\Windows\\cmd.exe -k") == ("c", "windows", "cmd.exe", "k")
    assert tokens("Enter-PSSession -ComputerName x.y", "powershell_script") == (
        "enter-pssession",
        "-computername",
        "x",
        "y",
    )


def test_escapes_and_whole_value_wildcards() -> None:
    d = index("d", {"file.path": ["C:\\Temp\\a*b.txt"]})
    assert lucene.matches("file.path:C\\:\\\\Temp\\\\a\\*b.txt", [d]) == {"d"}
    assert lucene.matches("file.path:*\\\\a\\*b*", [d]) == {"d"}
    assert lucene.matches("file.path:a*", [d]) == set()  # whole value, not a search
    assert wildcard_regex("a\\*b").fullmatch("a*b") and not wildcard_regex("a\\*b").fullmatch("axb")


def test_ip_fields_take_addresses_and_networks_and_refuse_wildcards() -> None:
    d = index("d", {"source.ip": ["10.1.2.3"]})
    assert lucene.matches("source.ip:10.0.0.0\\/8", [d]) == {"d"}
    assert lucene.matches("source.ip:10.1.2.3", [d]) == {"d"}
    assert lucene.matches("source.ip:[10.0.0.0 TO 10.255.255.255]", [d]) == {"d"}
    with pytest.raises(Rejected):
        lucene.matches("source.ip:10.*", [d])
    with pytest.raises(Rejected):
        esql.matches('from * | where source.ip like "10.*"', [d])
    assert eql.matches('any where cidrMatch(source.ip, "10.0.0.0/8")', [d]) == {"d"}


def test_numbers_exists_and_ignore_above() -> None:
    d = index("d", {"process.pid": [42], "winlog.event_data.Long": ["x" * 2000]})
    assert lucene.matches("process.pid:42 AND process.pid:>=40", [d]) == {"d"}
    with pytest.raises(Rejected):
        lucene.matches("process.pid:4*", [d])
    assert lucene.matches("_exists_:process.pid AND NOT _exists_:user.name", [d]) == {"d"}
    # a keyword longer than ignore_above is not indexed: no query finds it, not even exists
    assert lucene.matches("winlog.event_data.Long:x*", [d]) == set()
    assert lucene.matches("_exists_:winlog.event_data.Long", [d]) == set()


def test_lucene_regex_is_whole_value_without_anchors() -> None:
    assert run_regex("ab.*").fullmatch("abc") and not run_regex("b.*").fullmatch("abc")
    assert run_regex("^a").fullmatch("^a")  # '^' is a plain character in Lucene
    with pytest.raises(Rejected):
        run_regex("(?i)a")


# ---- the query languages ----


def test_eql_colon_ignores_case_double_equals_does_not_and_category_selects() -> None:
    d = doc(CommandLine="CMD /C WHOAMI")
    assert eql.matches('process where process.command_line : "*whoami*"', [d]) == {"e#1"}
    assert eql.matches('process where process.command_line == "cmd /c whoami"', [d]) == set()
    assert eql.matches('file where process.command_line : "*whoami*"', [d]) == set()  # category is process
    assert eql.matches('any where process.name like~ ("CMD.EXE", "x")', [d]) == {"e#1"}
    with pytest.raises(Rejected):  # EQL cannot search a text field
        eql.matches(
            'any where powershell.file.script_block_text : "*x*"',
            [index("p", {"powershell.file.script_block_text": ["x"]})],
        )


def test_esql_three_valued_logic_multivalue_and_case() -> None:
    d = doc()
    assert esql.matches('from * | where process.command_line like "*whoami*"', [d]) == {"e#1"}
    assert esql.matches('from * | where process.command_line like "*WHOAMI*"', [d]) == set()
    assert esql.matches('from * | where to_lower(process.executable) like "*\\\\cmd.exe"', [d]) == {"e#1"}
    # not (comparison on a missing field) is null: the row is dropped (Sigma and Lucene keep it)
    assert esql.matches('from * | where not file.path == "x"', [d]) == set()
    assert lucene.matches("NOT file.path:x", [d]) == {"e#1"}
    many = index("m", {"event.type": ["start", "connection"]})
    assert esql.matches('from * | where event.type == "start"', [many]) == set()  # multivalued: null
    assert esql.matches("from * | where event.type is null", [many]) == set()


def test_docset_answers_documents_without_the_fields_once() -> None:
    docs = DocSet([doc("a"), index("b", {"file.path": ["x"]})])
    assert docs.run("lucene", "NOT process.name:cmd.exe") == {"b"}
    assert docs.run("esql", 'from * | where process.name == "cmd.exe"') == {"a"}
    # narrowed to the documents holding a field of a term that fails without it: the same answer
    for target, query in [
        ("lucene", "event.code:1 AND NOT process.name:x"),
        ("lucene", "NOT event.code:1 AND NOT file.path:y"),
        ("eql", 'process where not process.name : "x"'),
        ("esql", 'from * | where event.code == "1" and not file.path == "x"'),
    ]:
        assert docs.run(target, query) == {"lucene": lucene, "eql": eql, "esql": esql}[target].matches(query, docs.docs)


# ---- our pipelines for the Elastic targets ----


@pytest.mark.parametrize(
    ("pattern", "lucene", "value", "matches"),
    [
        (r"(?i)whoami", ".*[wW][hH][oO][aA][mM][iI].*", "C:\\WHOAMI.EXE", True),
        (r"^cmd\.exe$", "cmd\\.exe", "cmd.exe", True),
        (r"(?:^|\\)cmd\.exe$", "(()|.*\\\\)cmd\\.exe", "C:\\cmd.exe", True),
        (r"(?:^|\\)cmd\.exe$", "(()|.*\\\\)cmd\\.exe", "xcmd.exe", False),
        (r"a\d{2,}?b", ".*a\\d{2,}b.*", "xa123b", True),
        (r"[^a-c]x", ".*[^a-c]x.*", "ax", False),
    ],
)
def test_pcre_to_lucene_regex(pattern: str, lucene: str, value: str, matches: bool) -> None:
    out = lucene_regex(pattern)
    assert out == lucene
    assert bool(run_regex(out).fullmatch(value)) is matches
    assert bool(re.search(pattern, value)) is matches  # the same answer as the Sigma rule's search


@pytest.mark.parametrize("pattern", [r"\bcmd\b", r"(?<=a)b", r"(a)\1", r"a$|b(?m)"])
def test_pcre_that_lucene_cannot_say_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        lucene_regex(pattern)


def test_caseless_regex_escapes_lucene_operators() -> None:
    from sigma.types import SigmaString

    assert caseless_regex(SigmaString("*\\\\a.b?*")) == ".*\\\\[aA]\\.[bB]..*"  # ? is one character


RULE = """
title: whoami
logsource: {product: windows, category: process_creation}
detection:
  selection: {CommandLine|contains: whoami}
  condition: selection
"""


def _events() -> list[Doc]:
    return [
        doc("upper", CommandLine="CMD /C WHOAMI"),  # Sigma matches regardless of case
        index("other", {"process.command_line": ["whoami"], "event.code": ["4104"], "winlog.channel": ["x"]}),
    ]


@pytest.mark.parametrize("target", ["lucene", "esql", "eql"])
def test_a_rule_wrong_with_the_backend_pipeline_is_equal_with_ours(target: str) -> None:
    rule = [yaml.safe_load(RULE)]
    before = tg.convert(rule, tg.Target(target, ("ecs_windows",), "default"))
    after = tg.convert(rule, tg.default_target(target, "windows"))
    docs = DocSet(_events())
    assert docs.run(target, after) == {"upper"}  # the process event, whatever its case; not the other one
    assert docs.run(target, before) != {"upper"}  # no category restriction (and, but EQL, case-sensitive)


def test_text_fields_that_lucene_cannot_search_fail_the_rule_with_the_reason() -> None:
    rule = yaml.safe_load(RULE.replace("process_creation", "ps_script").replace("CommandLine", "ScriptBlockText"))
    assert "whoami" in tg.convert([rule], tg.default_target("lucene", "windows"))  # one word: its token
    rule["detection"]["selection"] = {"ScriptBlockText|contains": "Invoke-Mimikatz"}  # one word there too
    assert "Invoke\\-Mimikatz" in tg.convert([rule], tg.default_target("lucene", "windows"))
    rule["detection"]["selection"] = {"ScriptBlockText|contains": "Invoke-Mimikatz -Dump"}  # two words
    with pytest.raises(Exception, match="by words"):
        tg.convert([rule], tg.default_target("lucene", "windows"))
    with pytest.raises(Exception, match="EQL cannot search text field"):
        tg.convert([rule], tg.default_target("eql", "windows"))
    esql_query = tg.convert([rule], tg.default_target("esql", "windows"))  # ES|QL reads the whole value
    assert 'to_lower(powershell.file.script_block_text) like "*invoke-mimikatz -dump*"' in esql_query


def test_ip_prefixes_become_networks() -> None:
    rule = yaml.safe_load(RULE.replace("process_creation", "network_connection"))
    rule["detection"]["selection"] = {"DestinationIp|startswith": ["10.", "192.168."]}
    query = tg.convert([rule], tg.default_target("lucene", "windows"))
    assert "10.0.0.0\\/8" in query and "192.168.0.0\\/16" in query


def test_esql_negation_keeps_events_without_the_field_as_sigma_does() -> None:
    rule = yaml.safe_load(RULE)
    rule["detection"] = {
        "sel": {"Image|endswith": "\\cmd.exe"},
        "parent": {"ParentImage|endswith": "\\explorer.exe"},
        "condition": "sel and not parent",
    }
    query = tg.convert([rule], tg.default_target("esql", "windows"))
    assert "not coalesce(" in query and r'like "*\\\\cmd.exe"' in query  # LIKE's escaped backslash, in a string
    orphan = doc("orphan")  # no ParentImage at all: Sigma's `not` keeps it; a bare ES|QL `not` would drop it
    child = doc("child", ParentImage="C:\\Windows\\explorer.exe")
    assert DocSet([orphan, child]).run("esql", query) == {"orphan"}


def test_values_the_integration_drops_are_tested_as_absent() -> None:
    rule = yaml.safe_load(RULE.replace("process_creation", "process_creation"))
    rule["detection"] = {
        "sel": {"Image|endswith": "\\cmd.exe"},
        "empty": {"User": ["", "-"]},
        "condition": "sel and not empty",
    }
    docs = DocSet([doc("with_user"), doc("no_user", User="-")])  # "-" is dropped: no user.name in Elastic
    for target in ("lucene", "esql", "eql"):
        assert docs.run(target, tg.convert([rule], tg.default_target(target, "windows"))) == {"with_user"}, target


def test_correlation_rules_pass_through_the_elastic_pipelines() -> None:
    base = yaml.safe_load(RULE) | {"name": "base", "id": "00000000-0000-0000-0000-000000000001"}
    corr = {
        "title": "many",
        "correlation": {
            "type": "event_count",
            "rules": ["base"],
            "group-by": ["User"],
            "timespan": "5m",
            "condition": {"gte": 3},
        },
    }
    query = tg.convert([base, corr], tg.default_target("esql", "windows"))
    assert "stats" in query and "whoami" in query


def test_cased_values_keep_their_case_in_lucene() -> None:
    rule = yaml.safe_load(RULE)
    rule["detection"]["selection"] = {"CommandLine|contains|cased": "WhoAmI"}
    query = tg.convert([rule], tg.default_target("lucene", "windows"))
    assert "process.command_line:/.*WhoAmI.*/" in query
    docs = DocSet([doc("same", CommandLine="x WhoAmI"), doc("other", CommandLine="x whoami")])
    assert docs.run("lucene", query) == {"same"}


def test_values_the_integration_replaces_are_written_as_stored() -> None:
    rule = yaml.safe_load(RULE.replace("process_creation", "network_connection"))
    rule["detection"]["selection"] = {"Initiated": "true", "Image|endswith": "\\certutil.exe"}
    event = {"EventID": 3, "Channel": SYSMON, "Image": "C:\\Windows\\certutil.exe", "Initiated": "true"}
    made = elastic_doc("out", event)
    assert made is not None and made.values["network.direction"] == ["egress"]
    for target in ("lucene", "esql", "eql"):
        assert DocSet([made]).run(target, tg.convert([rule], tg.default_target(target, "windows"))) == {"out"}, target


# ---- Sysmon for Linux and JSON sources (AWS CloudTrail) ----

LINUX = "Linux-Sysmon/Operational"


def linux1(**data: Any) -> dict[str, Any]:
    return {"EventID": 1, "Channel": LINUX, "Image": "/usr/bin/curl", "CommandLine": "curl -F a", "User": "root"} | data


def test_sysmon_for_linux_keeps_the_windows_pipelines_assumptions() -> None:
    src = elastic_source(linux1())
    assert src["event.dataset"] == ["sysmon_linux.log"] and src["event.code"] == ["1"]
    assert src["process.executable"] == ["/usr/bin/curl"] and src["process.command_line"] == ["curl -F a"]
    assert src["process.name"] == ["sysmon"]  # the syslog program, not the image's file name
    assert "user.name" not in src and "winlog.event_data.User" not in src  # "root" has no domain part: lost


LINUX_RULE = """
title: curl upload
logsource: {product: linux, category: process_creation}
detection:
  selection: {Image|endswith: /curl, CommandLine|contains: ' -F '}
  condition: selection
"""


@pytest.mark.parametrize("target", ["lucene", "esql", "eql"])
def test_a_linux_sysmon_rule_reads_its_event_log_only(target: str) -> None:
    query = tg.convert([yaml.safe_load(LINUX_RULE)], tg.default_target(target, "linux"))
    assert "4688" not in query and "process.executable" in query  # Linux has no Security log
    hit = elastic_doc("hit", linux1(CommandLine="CURL -F x http://h"))
    miss = elastic_doc("windows", sysmon1(Image="C:\\curl", CommandLine="curl -F x"))  # another event log
    assert hit is not None and miss is not None
    assert DocSet([hit, miss]).run(target, query) == {"hit"}


def test_linux_fields_the_integration_does_not_keep_as_written() -> None:
    rule = yaml.safe_load(LINUX_RULE)
    rule["detection"]["selection"] = {"Hashes|contains": "SHA256="}  # parsed into process.hash.*
    with pytest.raises(Exception, match="parses Hashes"):
        tg.convert([rule], tg.default_target("lucene", "linux"))
    rule["detection"]["selection"] = {"User": "root"}  # DOMAIN\name accounts only: no document holds it
    query = tg.convert([rule], tg.default_target("lucene", "linux"))
    root = elastic_doc("root", linux1())
    assert root is not None and DocSet([root]).run("lucene", query) == set()


@pytest.mark.parametrize("target", ["lucene", "esql", "eql"])
def test_an_account_the_integration_splits_is_tested_on_its_parts(target: str) -> None:
    rule = yaml.safe_load(RULE.replace("process_creation", "process_access"))  # Sysmon 10 only
    rule["detection"]["selection"] = {"User|contains": ["AUTHORI", "AUTORI"]}
    docs = DocSet([doc("system", EventID=10, User="NT AUTHORITY\\SYSTEM"), doc("alice", EventID=10)])
    assert docs.run(target, tg.convert([rule], tg.default_target(target, "windows"))) == {"system"}
    rule["detection"]["selection"] = {"User": "nt authority\\system"}  # both parts, without case
    assert docs.run(target, tg.convert([rule], tg.default_target(target, "windows"))) == {"system"}
    rule["detection"]["selection"] = {"User|endswith": "\\alice"}
    assert docs.run(target, tg.convert([rule], tg.default_target(target, "windows"))) == {"alice"}
    rule["detection"]["selection"] = {"User|re": "SYSTEM$"}
    with pytest.raises(Exception, match="spans both"):
        tg.convert([rule], tg.default_target(target, "windows"))


def json_doc(ref: str, base: dict[str, Any], data: dict[str, Any]) -> Doc:
    """The Elastic document of a JSON event: ``base`` (its sourcetype, ...) with ``data`` over it."""
    made = elastic_doc(ref, base | data)
    assert made is not None
    return made


def trail(ref: str = "t#1", **data: Any) -> Doc:
    return json_doc(ref, {"sourcetype": "aws:cloudtrail", "eventName": "ConsoleLogin"}, data)


def test_cloudtrail_as_the_aws_integration_indexes_it() -> None:
    src = elastic_source(
        {
            "sourcetype": "aws:cloudtrail",
            "eventName": "PutBucketPolicy",
            "src": "10.1.2.3",  # the add-on's name for sourceIPAddress
            "requestParameters.items{}.userId": ["a", "b"],
            "errorCode": "-",
            "userIdentity.type": "none",
        }
    )
    assert src["event.action"] == ["PutBucketPolicy"] and src["event.dataset"] == ["aws.cloudtrail"]
    assert src["source.address"] == ["10.1.2.3"] and src["source.ip"] == ["10.1.2.3"]
    assert src["aws.cloudtrail.flattened.request_parameters.items.userId"] == ["a", "b"]
    assert "aws.cloudtrail.error_code" not in src and "aws.cloudtrail.user_identity.type" not in src  # dropped
    assert "source.ip" not in elastic_source({"sourcetype": "aws:cloudtrail", "sourceIPAddress": "ec2.amazonaws.com"})


AWS_RULE = """
title: rds password reset
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: ModifyDBInstance, user_arn|exists: true}
  condition: selection
"""


def test_cloudtrail_rules_name_the_data_stream_and_the_integrations_fields() -> None:
    query = tg.convert([yaml.safe_load(AWS_RULE)], tg.default_target("lucene", "aws"))
    assert query.startswith("event.dataset:aws.cloudtrail AND") and "event.action:" in query
    # user_arn is the first present of userIdentity.arn and requestParameters.roleArn
    assert "NOT _exists_:aws.cloudtrail.user_identity.arn" in query
    docs = [
        trail("arn", eventName="modifydbinstance", **{"userIdentity.arn": "arn:x"}),
        trail("role", eventName="ModifyDBInstance", **{"requestParameters.roleArn": "arn:r"}),
        trail("none", eventName="ModifyDBInstance"),
        trail("other", eventName="DeleteDBInstance", **{"userIdentity.arn": "arn:x"}),
    ]
    assert DocSet(docs).run("lucene", query) == {"arn", "role"}


def test_fields_the_add_on_computes_or_the_integration_fills_conditionally_fail_the_rule() -> None:
    rule = yaml.safe_load(AWS_RULE)
    rule["detection"]["selection"] = {"aws_account_id|exists": True}
    with pytest.raises(Exception, match="computed by the Splunk add-on"):
        tg.convert([rule], tg.default_target("lucene", "aws"))
    rule["detection"]["selection"] = {"userIdentity.userName": "bob"}  # user.name: the role's, for roles
    with pytest.raises(Exception, match="no field of the documents"):
        tg.convert([rule], tg.default_target("esql", "aws"))


def test_flattened_keys_take_terms_and_prefixes_with_case_only() -> None:
    rule = yaml.safe_load(AWS_RULE)
    rule["detection"]["selection"] = {"requestParameters.fromPort": "22", "requestParameters.cidrIp|startswith": "0."}
    query = tg.convert([rule], tg.default_target("lucene", "aws"))
    assert "aws.cloudtrail.flattened.request_parameters.fromPort:22" in query
    docs = [trail("open", **{"requestParameters.fromPort": 22, "requestParameters.cidrIp": "0.0.0.0/0"})]
    assert DocSet(docs).run("lucene", query) == {"open"}
    rule["detection"]["selection"] = {"requestParameters.bucketName": "Secret"}  # letters: case decides
    with pytest.raises(Exception, match="with case"):
        tg.convert([rule], tg.default_target("lucene", "aws"))
    for target, reason in (("esql", "ES|QL does not read"), ("eql", "EQL matches flattened")):
        flattened = yaml.safe_load(AWS_RULE.replace("user_arn", "requestParameters.x"))
        with pytest.raises(Exception, match=re.escape(reason)):
            tg.convert([flattened], tg.default_target(target, "aws"))
    with pytest.raises(Rejected, match="flattened"):  # Elasticsearch refuses wildcards and regexps on keys
        lucene.matches("aws.cloudtrail.flattened.request_parameters.bucketName:*ecre*", docs)
    with pytest.raises(Rejected, match="flattened"):
        esql.matches("from * | where aws.cloudtrail.flattened.request_parameters.x is not null", docs)


def o365(ref: str = "o#1", **data: Any) -> Doc:
    return json_doc(ref, {"sourcetype": "o365:management:activity", "Workload": "Exchange"}, data)


def test_office_365_records_keep_their_keys_under_o365_audit() -> None:
    src = elastic_source(
        {
            "sourcetype": "o365:management:activity",
            "Operation": "Add user.",
            "UserId": "bob@corp.example",
            "ErrorNumber": "50126",
            "Target{}.ID": ["a", "b"],
            "Parameters{}.Name": ["Identity"],  # becomes an object keyed by each Name: the path is gone
            "user": "bob",  # the add-on's CIM field: not in the record
            "host": "splunk-host",
        }
    )
    assert src["event.action"] == ["added-user-account"]  # the integration rewrites a few operations
    assert src["o365.audit.UserId"] == ["bob@corp.example"] and src["user.id"] == ["bob@corp.example"]
    assert src["o365.audit.ErrorNumber"] == ["50126"] and src["o365.audit.Target.ID"] == ["a", "b"]
    assert not [k for k in src if "Parameters" in k or k.endswith((".user", ".host"))]


M365_RULE = """
title: failed logins
logsource: {product: m365, service: audit}
detection:
  selection: {Workload: AzureActiveDirectory, Operation: UserLoginFailed, ErrorNumber: 50126}
  condition: selection
"""


@pytest.mark.parametrize("target", ["lucene", "esql", "eql"])
def test_an_office_365_rule_reads_the_o365_audit_data_stream(target: str) -> None:
    query = tg.convert([yaml.safe_load(M365_RULE)], tg.default_target(target, "m365"))
    assert "o365.audit" in query and "event.action" in query
    docs = [
        o365("hit", Workload="azureactivedirectory", Operation="UserLoginFailed", ErrorNumber="50126"),
        o365("miss", Workload="AzureActiveDirectory", Operation="UserLoginFailed", ErrorNumber="50053"),
        trail("trail", eventName="UserLoginFailed"),  # another data stream
    ]
    assert DocSet(docs).run(target, query) == {"hit"}


def test_office_365_fields_without_a_known_definition_fail_the_rule() -> None:
    rule = yaml.safe_load(M365_RULE)
    rule["detection"]["selection"]["user|exists"] = True
    with pytest.raises(Exception, match="Microsoft Office 365 is not at hand"):
        tg.convert([rule], tg.default_target("lucene", "m365"))
    rule = yaml.safe_load(M365_RULE)
    rule["detection"]["selection"]["ClientIP"] = "10.0.0.1"  # moved to client.address without its port
    with pytest.raises(Exception, match="no field of the documents"):
        tg.convert([rule], tg.default_target("lucene", "m365"))


def audit(ref: str = "a#1", **data: Any) -> Doc:
    return json_doc(ref, {"sourcetype": "linux:audit", "type": "SYSCALL"}, data)


def test_auditd_lines_as_the_auditd_integration_indexes_them() -> None:
    src = elastic_source(
        {"sourcetype": "linux:audit", "type": "SYSCALL", "pid": "3538", "comm": "cat", "success": "yes", "key": "?"}
    )
    assert src["auditd.log.record_type"] == ["SYSCALL"] and src["process.name"] == ["cat"]
    assert src["process.pid"] == [3538] and src["auditd.log.success"] == ["true"]
    assert "auditd.log.key" not in src  # "?" is dropped
    assert audit(pid="x").values.get("process.pid") is None  # not a number: not indexed
    assert audit(success="yes").values["auditd.log.success"] == [True]


AUDIT_RULE = """
title: crontab edit
logsource: {product: linux, service: auditd}
detection:
  selection: {type: SYSCALL, success: 'yes', pid|exists: true}
  tool: [{comm: crontab}, {exe|endswith: /crontab}]
  condition: selection and tool
"""


@pytest.mark.parametrize("target", ["lucene", "esql", "eql"])
def test_an_auditd_rule_reads_booleans_and_numbers_as_indexed(target: str) -> None:
    query = tg.convert([yaml.safe_load(AUDIT_RULE)], tg.default_target(target, "linux"))
    assert "auditd.log.success" in query and "process.pid" in query
    docs = [
        audit("hit", comm="CronTab", success="yes", pid="12"),
        audit("failed", comm="crontab", success="no", pid="12"),
        audit("no_pid", exe="/usr/bin/crontab", success="yes"),
    ]
    assert DocSet(docs).run(target, query) == {"hit"}
    rule = yaml.safe_load(AUDIT_RULE)
    rule["detection"]["selection"]["proctitle|contains"] = "cron"  # hex-decoded only sometimes
    with pytest.raises(Exception, match="no field of the documents"):
        tg.convert([rule], tg.default_target(target, "linux"))


def aad(ref: str, category: str, **data: Any) -> Doc:
    return json_doc(ref, {"sourcetype": "azure:monitor:aad", "category": category}, data)


def test_entra_id_records_go_to_the_data_stream_their_category_names() -> None:
    audit_src = elastic_source(
        {
            "sourcetype": "azure:monitor:aad",
            "category": "AuditLogs",
            "operationName": "Add member to role",
            "properties.initiatedBy.user.userPrincipalName": "a@corp.example",
            "properties.targetResources{}.type": ["User"],  # re-keyed "0", "1", ...: gone as written
        }
    )
    assert audit_src["event.dataset"] == ["azure.auditlogs"] and audit_src["event.action"] == ["Add member to role"]
    assert audit_src["azure.auditlogs.properties.initiated_by.user.userPrincipalName"] == ["a@corp.example"]
    assert not [k for k in audit_src if "target" in k.lower()]
    signin = elastic_source(
        {"sourcetype": "azure:monitor:aad", "category": "SignInLogs", "properties.status.errorCode": "50126"}
    )
    assert signin["event.dataset"] == ["azure.signinlogs"]
    assert signin["azure.signinlogs.properties.status.error_code"] == ["50126"]  # every key snake-cased
    assert elastic_doc("none", {"sourcetype": "azure:monitor:aad", "operationName": "x"}) is None  # no category


AAD_RULE = """
title: failed sign-ins
logsource: {product: azure, service: auditlogs}
detection:
  selection: {category: SignInLogs, properties.status.errorCode: 50126}
  condition: selection
"""


@pytest.mark.parametrize("target", ["lucene", "esql", "eql"])
def test_an_entra_id_rule_reads_the_data_streams_its_logic_allows(target: str) -> None:
    query = tg.convert([yaml.safe_load(AAD_RULE)], tg.default_target(target, "azure"))
    assert "azure.signinlogs.properties.status.error_code" in query and "azure.auditlogs" not in query
    docs = [
        aad("hit", "SignInLogs", **{"properties.status.errorCode": "50126"}),
        aad("audit", "AuditLogs", **{"properties.status.errorCode": "50126"}),
        aad("other", "SignInLogs", **{"properties.status.errorCode": "0"}),
    ]
    assert DocSet(docs).run(target, query) == {"hit"}
    either = yaml.safe_load(AAD_RULE)
    either["detection"]["selection"] = {"operationName": "Add member to role"}  # no category: both streams
    query = tg.convert([either], tg.default_target(target, "azure"))
    assert "azure.auditlogs" in query and "azure.signinlogs" in query
    either["detection"]["selection"] = {"category": "SignInLogs", "user|exists": True}
    with pytest.raises(Exception, match="computed by the Splunk add-on"):
        tg.convert([either], tg.default_target(target, "azure"))


def test_a_correlation_groups_by_the_fields_elastic_holds() -> None:
    base = yaml.safe_load(AUDIT_RULE) | {"name": "base", "id": "00000000-0000-0000-0000-000000000002"}
    corr = {
        "title": "many",
        "correlation": {"type": "event_count", "rules": ["base"], "group-by": ["comm", "host"],
                        "timespan": "1h", "condition": {"gte": 4}},
    }  # fmt: skip
    query = tg.convert([base, corr], tg.default_target("eql", "linux"))
    assert "sequence by process.name, host.name" in query and " comm" not in query
    corr["correlation"]["group-by"] = ["proctitle"]  # hex-decoded only sometimes there
    with pytest.raises(Exception, match="no field of the documents"):
        tg.convert([base, corr], tg.default_target("eql", "linux"))


def test_a_windows_service_ecs_windows_leaves_open_is_restricted_to_its_event_log() -> None:
    rule = yaml.safe_load(RULE)
    rule["logsource"] = {"product": "windows", "service": "terminalservices-remoteconnectionmanager"}
    rule["detection"] = {"selection": {"EventID": 1149}, "condition": "selection"}
    query = tg.convert([rule], tg.default_target("lucene", "windows"))
    rdp = "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational"
    docs = [
        index("rdp", {"event.code": ["1149"], "winlog.channel": [rdp]}),
        index("other", {"event.code": ["1149"], "winlog.channel": ["Microsoft-Windows-PowerShell/Operational"]}),
    ]
    assert DocSet(docs).run("lucene", query) == {"rdp"}


def test_two_fields_the_integration_moves_to_one_fail_the_rule() -> None:
    rule = yaml.safe_load(RULE.replace("process_creation", "network_connection"))
    rule["detection"]["selection"] = {"DestinationPortName": "ftp"}  # SourcePortName lands there too
    for target in ("lucene", "esql", "eql"):
        with pytest.raises(Exception, match="neither value is kept apart"):
            tg.convert([rule], tg.default_target(target, "windows"))
    rule["detection"]["selection"] = {"DestinationPort": 21}
    assert "destination.port" in tg.convert([rule], tg.default_target("lucene", "windows"))


def test_unnamed_data_elements_are_numbered_params_and_a_test_on_them_fails_the_rule() -> None:
    src = elastic_source({"Channel": "Application", "EventID": 1040, "Data": ["C:\\x.msi", "-", "b"]})
    assert src["winlog.event_data.param1"] == ["C:\\x.msi"] and src["winlog.event_data.param3"] == ["b"]
    assert "winlog.event_data.Data" not in src and "winlog.event_data.param2" not in src  # "-" dropped
    rule = yaml.safe_load(RULE)
    rule["logsource"] = {"product": "windows", "service": "application"}
    rule["detection"] = {"selection": {"EventID": 1040, "Data|contains": "\\Temp\\"}, "condition": "selection"}
    with pytest.raises(Exception, match="param1, param2"):
        tg.convert([rule], tg.default_target("lucene", "windows"))

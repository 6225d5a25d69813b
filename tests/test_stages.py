"""Data-model searches, later stages folded into the rule, and thresholds as correlations.

Each case is a search written in the corpus's shape; the produced rule is
checked through pySigma's objects (fields, modifiers, values, condition).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaDetectionItem, SigmaRule

from translator.content import load_content
from translator.content.loader import Lookup
from translator.sigma.convert import RuleDraft, convert_pipeline
from translator.spl import parse
from translator.workflow import build_rule

# the shortest keyword per modifier class ("i" rather than "ignorecase")
MODIFIER_NAMES = {cls: name for name, cls in sorted(modifier_mapping.items(), key=lambda kv: -len(kv[0]))}
SUMMARIES = "summariesonly=false allow_old_summaries=true fillnull_value=null"
SYSMON = ("Sysmon EventID 1",)


def draft(query: str, data_sources: tuple[str, ...] = SYSMON) -> RuleDraft:
    return convert_pipeline(parse(query), data_sources)


def rules(d: RuleDraft) -> tuple[SigmaRule, SigmaCorrelationRule | None]:
    assert d.detection is not None, d.reasons
    meta = {"title": "Test", "id": "a4e8f3a4-48b2-11ec-bcfc-3e22fbd008af", "level": "low"}
    collection = SigmaCollection.from_yaml(build_rule(d, meta, "test_rule"))
    assert not collection.errors
    base = [r for r in collection.rules if isinstance(r, SigmaRule)]
    corr = [r for r in collection.rules if isinstance(r, SigmaCorrelationRule)]
    return base[0], corr[0] if corr else None


def items(rule: SigmaRule) -> dict[str, list[tuple[str, tuple[str, ...], list[Any]]]]:
    """selection name -> [(field, modifier names, plain values)], nested maps flattened."""

    def flat(det: Any) -> list[SigmaDetectionItem]:
        if isinstance(det, SigmaDetectionItem):
            return [det]
        return [i for d in det.detection_items for i in flat(d)]

    out: dict[str, list[tuple[str, tuple[str, ...], list[Any]]]] = {}
    for name, det in rule.detection.detections.items():
        rows = []
        for i in flat(det):
            mods = tuple(MODIFIER_NAMES[m] for m in i.modifiers)
            values = [v.to_plain() if hasattr(v, "to_plain") else v for v in i.original_value]
            rows.append((i.field, mods, values))
        out[name] = rows
    return out


def all_items(rule: SigmaRule) -> list[tuple[str, tuple[str, ...], list[Any]]]:
    """Every detection item of the rule, whichever selection holds it."""
    return [r for rs in items(rule).values() for r in rs]


def tstats(where: str, by: str = "Processes.dest Processes.process_name", model: str = "Endpoint.Processes") -> str:
    return (
        f"| tstats {SUMMARIES} count min(_time) as firstTime from datamodel={model} where {where} by {by}"
        f" | rename {model.split('.')[-1]}.* as *"
    )


# -- data models ---------------------------------------------------------------------


def test_process_name_is_the_file_name_of_image() -> None:
    d = draft(tstats('Processes.process_name=rundll32.exe Processes.process="*javascript:*"'))
    assert d.status == "exact", d.reasons
    assert d.logsource == {"product": "windows", "category": "process_creation"}
    rule, _ = rules(d)
    assert sorted(items(rule)["selection"]) == [
        ("CommandLine", ("contains",), ["javascript:"]),
        ("Image", ("endswith",), ["\\rundll32.exe"]),
    ]


def test_file_name_wildcards_that_need_a_regex() -> None:
    d = draft(tstats("Processes.process_name=psexe*"))
    rule, _ = rules(d)
    [(field, mods, _)] = items(rule)["selection"]
    assert (field, mods) == ("Image", ("re", "i"))
    [item] = rule.detection.detections["selection"].detection_items
    regex = str(item.value[0].regexp)  # type: ignore[union-attr]
    assert regex == "(?:^|\\\\)psexe[^\\\\]*$"  # the file name starts after the last backslash
    assert re.search(regex, "C:\\Tools\\PsExec64.exe", re.I)
    assert not re.search(regex, "C:\\psexec\\other.exe", re.I)


def test_linux_data_source_picks_linux_and_slash() -> None:
    d = draft(tstats("Processes.process_name=curl"), ("Sysmon for Linux EventID 1",))
    assert d.logsource == {"product": "linux", "category": "process_creation"}
    rule, _ = rules(d)
    assert items(rule)["selection"] == [("Image", ("endswith",), ["/curl"])]
    assert any("Sysmon for Linux" in n for n in d.notes)


def test_registry_and_filesystem_models() -> None:
    reg = draft(
        tstats(
            'Registry.registry_path="*\\\\Run\\\\*" Registry.registry_value_data=1',
            "Registry.dest",
            "Endpoint.Registry",
        ),
        ("Sysmon EventID 13",),
    )
    assert reg.logsource["category"] == "registry_event"
    rule, _ = rules(reg)
    assert sorted(f for f, _, _ in items(rule)["selection"]) == ["Details", "TargetObject"]
    fs = draft(tstats("Filesystem.file_name=*.lnk", "Filesystem.dest", "Endpoint.Filesystem"), ("Sysmon EventID 11",))
    rule, _ = rules(fs)
    assert items(rule)["selection"] == [("TargetFilename", ("endswith",), [".lnk"])]


def test_unmapped_cim_field_is_dropped_broader() -> None:
    d = draft(tstats('Processes.process_name=a.exe Processes.vendor_product="x"'))
    assert d.status == "partial"
    assert any("vendor_product" in r and "broader" in r for r in d.reasons)
    rule, _ = rules(d)
    assert [f for f, _, _ in items(rule)["selection"]] == ["Image"]


def test_unknown_data_model_is_unsupported() -> None:
    d = draft("| tstats count from datamodel=Splunk_Audit.Search_Activity by user")
    assert d.status == "unsupported"
    assert any("Splunk_Audit" in r for r in d.reasons)


# -- where / search / regex after the first command ------------------------------------


def test_where_on_a_group_by_field_is_folded() -> None:
    d = draft(tstats("Processes.process_name=cmd.exe") + ' | where like(dest, "WS-%")')
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    rows = all_items(rule)
    assert ("Computer", ("startswith", "cased"), ["WS-"]) in rows


def test_where_not_needs_the_field_but_fill_value_counts() -> None:
    # without a fill: NOT x == "a" drops events lacking x (null is not false)
    raw = draft('sourcetype=aws:cloudtrail eventName=X | where NOT userName == "root"')
    rule, _ = rules(raw)
    assert rule.detection.condition == ["selection and not filter"]
    rows = items(rule)
    assert ("userName", ("exists",), [True]) in rows["selection"]
    assert rows["filter"] == [("userName", ("cased",), ["root"])]
    # after tstats fillnull_value=null a missing by-field holds "null": isnotnull is always true
    d = draft(tstats("Processes.process_name=a.exe", "Processes.dest Processes.user") + " | where isnotnull(user)")
    assert d.status == "exact"
    rule, _ = rules(d)
    assert [f for rs in items(rule).values() for f, _, _ in rs] == ["Image"]


def test_where_on_a_computed_field_is_dropped_broader() -> None:
    d = draft(tstats("Processes.process_name=a.exe") + " | eval x=len(process_name) | where x > 5")
    assert d.status == "partial"
    assert any("x is computed by the search" in r for r in d.reasons)


def test_search_after_rename_is_folded() -> None:
    d = draft("sourcetype=aws:cloudtrail eventName=X | rename userIdentity.arn as arn | search arn=*admin*")
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    rows = all_items(rule)
    assert ("userIdentity.arn", ("contains",), ["admin"]) in rows


def test_regex_is_folded_and_negated_regex_keeps_missing_fields() -> None:
    d = draft('sourcetype=aws:cloudtrail eventName=X | regex userAgent="^aws-cli" | regex src!="^10\\."')
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    assert rule.detection.condition == ["selection and not filter"]
    rows = items(rule)
    assert ("userAgent", ("re",), ["^aws-cli"]) in rows["selection"]
    assert rows["filter"] == [("src", ("re",), ["^10\\."])]


@pytest.mark.parametrize(
    "stage",
    ["join user [search sourcetype=aws:cloudtrail y=1]", "dedup user", "transaction user maxspan=5m"],
)
def test_dropped_filter_stages_leave_the_base_selection(stage: str) -> None:
    base = draft("sourcetype=aws:cloudtrail eventName=X userName=*")
    staged = draft(f"sourcetype=aws:cloudtrail eventName=X userName=* | {stage}")
    assert staged.status == "partial"
    assert staged.detection == base.detection  # exactly the base: a superset of what the stage keeps


# -- thresholds ------------------------------------------------------------------------


def test_count_threshold_becomes_event_count() -> None:
    d = draft(
        "sourcetype=aws:cloudtrail eventName=ConsoleLogin | bucket span=10m _time"
        " | stats count by _time user src | where count > 20"
    )
    assert d.status == "exact", d.reasons
    base, corr = rules(d)
    assert corr is not None and base.name == "test_rule"
    assert corr.type.name.lower() == "event_count"
    assert corr.group_by == ["user", "src"]
    assert corr.timespan.spec == "10m"
    assert corr.condition.op.name.lower() == "gt" and corr.condition.count == 20
    assert [r.reference for r in corr.rules] == ["test_rule"]


def test_distinct_count_threshold_becomes_value_count_with_default_window() -> None:
    d = draft(
        "sourcetype=aws:cloudtrail eventName=ConsoleLogin | stats dc(src) as ips by user | where ips >= 3"
        " | where user!=root"
    )
    _, corr = rules(d)
    assert corr is not None and corr.type.name.lower() == "value_count"
    assert corr.condition.fieldref == "src" and corr.timespan.spec == "60m"
    assert any("60m" in n for n in d.notes)


def test_threshold_grouped_by_file_name_is_not_a_correlation() -> None:
    d = draft(tstats("Processes.process_name=net.exe") + " | where count >= 4")
    assert d.correlation is None
    assert d.status == "partial"
    assert any("path's last part" in r for r in d.reasons)


@pytest.mark.parametrize(
    ("stages", "why"),
    [
        ("| rename properties.* as * | stats count by user src dest host | where count > 20", "more than 8"),
        ("| stats count dc(src) as n by user | where count > 2 AND n > 3", "one condition"),
        ("| stats count by user _time | where count > 2", "exact _time"),
        ("| stats count by user | eval count=count*2 | where count > 2", "rewrites it"),
        ("| stats count by user | stats sum(count) as count by user | where count > 2", "aggregates the aggregation"),
        ('| rex field=x "(?<p>\\d+)" | stats dc(p) as n by user | where n > 2', "reads a value the search computes"),
    ],
)
def test_a_threshold_that_is_no_correlation_says_why(stages: str, why: str) -> None:
    d = convert_pipeline(parse(f"sourcetype=aws:cloudtrail eventName=x {stages}"), ())
    assert d.correlation is None or "one condition" in why
    assert any(why in r for r in d.reasons), d.reasons


# -- lookups shipped with the content ---------------------------------------------------


@pytest.fixture
def lookups(tmp_path: Path) -> dict[str, Lookup]:
    (tmp_path / "macros").mkdir()
    lk = tmp_path / "lookups"
    lk.mkdir()
    (lk / "ioc.csv").write_text("domain,isIOC\n*.evil.example,true\nbad.example,true\ngood.example,false\n")
    (lk / "ioc.yml").write_text(
        "name: ioc\nfilename: ioc.csv\nmatch_type: WILDCARD(domain)\ncase_sensitive_match: 'false'\n"
    )
    (lk / "admins.csv").write_text("username\nAdministrator\nroot\n")
    (lk / "admins.yml").write_text("name: admins\nfilename: admins.csv\ncase_sensitive_match: 'false'\n")
    return load_content(tmp_path).lookups


def test_condition_on_a_lookup_output_becomes_the_matching_rows(lookups: dict[str, Lookup]) -> None:
    query = "sourcetype=aws:cloudtrail eventName=X | lookup ioc domain AS host OUTPUT isIOC | search isIOC=true"
    d = convert_pipeline(parse(query), (), lookups)
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    rows = all_items(rule)
    assert ("host", ("endswith",), [".evil.example"]) in rows  # the wildcard row
    assert ("host", (), ["bad.example"]) in rows
    assert all("good.example" not in v for _, _, v in rows)  # its isIOC is false


def test_fillnull_after_a_lookup_is_the_value_for_no_match(lookups: dict[str, Lookup]) -> None:
    query = (
        "sourcetype=aws:cloudtrail eventName=X | lookup admins username AS user OUTPUT username"
        ' | fillnull value=NotDA username | search username="NotDA"'
    )
    d = convert_pipeline(parse(query), (), lookups)
    rule, _ = rules(d)
    assert rule.detection.condition == ["selection and not filter"]
    assert items(rule)["filter"] == [("user", (), ["Administrator", "root"])]


def test_a_rewritten_lookup_output_is_not_inlined(lookups: dict[str, Lookup]) -> None:
    query = (
        "sourcetype=aws:cloudtrail eventName=X | lookup ioc domain AS host OUTPUT isIOC"
        ' | eval isIOC=if(isIOC="true", "yes", "no") | search isIOC=yes'
    )
    d = convert_pipeline(parse(query), (), lookups)
    assert d.status == "partial"
    assert any("isIOC is computed" in r for r in d.reasons)


def test_distinct_raw_events_are_an_event_count() -> None:
    d = draft(
        "sourcetype=aws:cloudtrail eventName=ConsoleLogin | bucket span=10m _time"
        " | stats dc(_raw) AS failed_attempts by _time, user_name | where failed_attempts > 20"
    )
    _, corr = rules(d)
    assert corr is not None and corr.type.name.lower() == "event_count"
    assert corr.group_by == ["user_name"] and corr.condition.count == 20


def test_outer_join_keeps_every_row() -> None:
    d = draft("sourcetype=aws:cloudtrail eventName=X | join type=outer user [search sourcetype=aws:cloudtrail y=1]")
    assert d.status == "exact", d.reasons
    assert d.detection == draft("sourcetype=aws:cloudtrail eventName=X").detection


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("sourcetype=aws:cloudtrail eventName=X | where len(userName) > 3", "where len(userName) > 3"),
        ("sourcetype=aws:cloudtrail eventName=X | eval a=len(userName) | search a=1", "a is computed"),
        ("sourcetype=aws:cloudtrail eventName=X index=main", "index=main"),
        ("sourcetype=aws:cloudtrail eventName=X attach", "keyword"),
    ],
)
def test_each_dropped_condition_leaves_a_broader_rule(query: str, why: str) -> None:
    """The partial rule equals the rule without the dropped piece (or the piece as a substring: broader)."""
    d = draft(query)
    assert d.status == "partial" and any(why in r for r in d.reasons), d.reasons
    base = draft("sourcetype=aws:cloudtrail eventName=X").detection
    if why == "keyword":
        assert d.detection is not None and d.detection["keywords"] == ["*attach*"]  # substring ⊇ whole term
    else:
        assert d.detection == base


# -- group-by fields a raw search computes ------------------------------------------------


def test_a_computed_by_field_that_may_be_null_is_reported() -> None:
    d = draft("sourcetype=aws:cloudtrail eventName=X | eval who=tonumber(arn) | stats count by who")
    assert d.status == "partial"
    assert any("`by who` drops events where who is null" in r for r in d.reasons)


def test_a_computed_by_field_null_exactly_when_its_inputs_are_is_carried() -> None:
    d = draft("sourcetype=aws:cloudtrail eventName=X | eval who=coalesce(userName, arn) | stats count by who")
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    rows = all_items(rule)
    assert ("userName", ("exists",), [True]) in rows and ("arn", ("exists",), [True]) in rows
    assert any("`by who`" in n and "made explicit" in n for n in d.notes)


def test_a_computed_by_field_that_always_has_a_value_drops_nothing() -> None:
    d = draft(
        'sourcetype=aws:cloudtrail eventName=X | eval kind=if(isnull(arn), "none", "some"), tag="t"'
        " | stats count by kind tag"
    )
    assert d.status == "exact", d.reasons


def test_by_field_past_a_wildcard_rename_needs_one_of_its_sources() -> None:
    d = draft("sourcetype=aws:cloudtrail eventName=X | rename requestParameters.* as * | stats count by bucketName")
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    alternatives = [rows for rows in items(rule).values() if len(rows) == 2]
    assert alternatives == [
        [("requestParameters.bucketName", ("exists",), [True]), ("bucketName", ("exists",), [True])]
    ]


def test_a_field_renamed_again_after_a_wildcard_rename_keeps_its_sources() -> None:
    d = draft(
        "sourcetype=azure:monitor:aad operationName=x | rename properties.* as * "
        "| rename initiatedBy.user.userPrincipalName as initiatedBy | stats count by initiatedBy"
    )
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    alternatives = [[f for f, _m, _v in rows] for rows in items(rule).values() if len(rows) == 2]
    assert alternatives == [["properties.initiatedBy.user.userPrincipalName", "initiatedBy.user.userPrincipalName"]]


# -- current content's shapes: schedules, add-on constants and facts, fills, lookup outputs ---------


def test_threshold_window_comes_from_the_schedule_or_the_rule_is_partial() -> None:
    query = "sourcetype=aws:cloudtrail eventName=ConsoleLogin | stats count by user | where count > 5"
    guessed = convert_pipeline(parse(query), ())
    assert guessed.status == "partial"
    assert any("no schedule" in r and "guess" in r for r in guessed.reasons)
    scheduled = convert_pipeline(parse(query), (), window=("4h", "the detection's scheduling: -4h to now"))
    assert scheduled.status == "exact", scheduled.reasons
    _, corr = rules(scheduled)
    assert corr is not None and corr.timespan.spec == "4h"
    assert any("dispatch window: 4h" in n for n in scheduled.notes)


def test_a_span_on_time_needs_no_schedule() -> None:
    query = "sourcetype=aws:cloudtrail eventName=X | bin _time span=5m | stats count by _time user | where count > 5"
    d = convert_pipeline(parse(query), ())
    assert d.status == "exact", d.reasons
    _, corr = rules(d)
    assert corr is not None and corr.timespan.spec == "5m"


WINDOW = ("1h", "contentctl's default deployment for type TTP: -70m@m to -10m@m")


def test_an_add_on_constant_leaves_the_group_by_of_a_one_service_logsource() -> None:
    query = (
        "source=XmlWinEventLog:Security EventCode=4625 | stats count by TargetUserName vendor_product dest"
        " | where count > 10"
    )
    d = convert_pipeline(parse(query), (), window=WINDOW)
    assert d.status == "exact", d.reasons
    _, corr = rules(d)
    assert corr is not None and corr.group_by == ["TargetUserName", "Computer"]
    assert any("vendor_product" in n and "one value" in n for n in d.notes)


def test_an_add_on_field_of_a_two_service_category_is_no_constant() -> None:
    # process_creation reads Sysmon 1 and Security 4688: vendor_product differs between them
    query = tstats("Processes.process_name=net.exe", "Processes.dest Processes.vendor_product") + " | where count > 3"
    d = convert_pipeline(parse(query), SYSMON, window=WINDOW)
    assert d.correlation is None and d.status == "partial"


def test_cim_fields_the_add_ons_always_set_drop_nothing() -> None:
    by = "Processes.action Processes.dest Processes.process_exec Processes.parent_process_exec Processes.user_id"
    # without fillnull_value (ESCU's macro passes one): a null by-field would drop the event
    d = draft(tstats("Processes.process_name=net.exe", by).replace(SUMMARIES, "summariesonly=true"))
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    fields = {f for rows in items(rule).values() for f, _, _ in rows}
    assert {"Computer", "UserID", "ParentImage"} <= fields  # presence of mapped by-fields carried over
    assert "action" not in fields and "vendor_product" not in fields


def test_fillnull_before_distinct_count_lowers_the_threshold_broader() -> None:
    query = "sourcetype=aws:cloudtrail eventName=X | fillnull | stats dc(src) as ips by user | where ips > 3"
    d = convert_pipeline(parse(query), (), window=WINDOW)
    assert d.status == "partial"
    _, corr = rules(d)
    assert corr is not None and corr.condition.count == 2  # > 3 with the fill value is > 2 without
    assert any("fillnull" in r and "broader" in r for r in d.reasons)
    # the base search already requires the counted field: the fill never applies
    required = query.replace("eventName=X", "eventName=X src=*")
    d = convert_pipeline(parse(required), (), window=WINDOW)
    assert d.status == "exact", d.reasons
    assert rules(d)[1].condition.count == 3  # type: ignore[union-attr]


def test_a_by_field_from_a_lookup_output_folds_in_through_the_lookup(lookups: dict[str, Lookup]) -> None:
    query = "sourcetype=aws:cloudtrail eventName=X | lookup ioc domain AS host OUTPUT isIOC | stats count by host isIOC"
    d = convert_pipeline(parse(query), (), lookups)
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    rows = all_items(rule)
    assert ("host", ("endswith",), [".evil.example"]) in rows  # every row gives isIOC, false included
    assert ("host", (), ["bad.example", "good.example"]) in rows
    assert any("folded in through lookup ioc" in n for n in d.notes)


@pytest.mark.parametrize(
    ("evals", "expected"),
    [
        ("user=lower(UserId)", ("field", "UserId")),
        ('user=UserId . "@" . Domain', ("all", (("field", "UserId"), ("field", "Domain")))),
        ("user=coalesce(a, b)", ("any", (("field", "a"), ("field", "b")))),
        ('user=coalesce(a, "none")', True),
        ("user=if(isnotnull(a), a, b)", ("any", (("field", "a"), ("field", "b")))),
        ("user=case(isnotnull(a), a, true(), b)", ("any", (("field", "a"), ("field", "b")))),
        ('user=if(x > 1, "big", "small")', True),
        ('user=mvindex(split(a, ","), 0)', ("field", "a")),
        ("user=mvindex(a, 1)", None),  # a second value may be missing
        ("t=lower(a), user=upper(t)", ("field", "a")),  # through another computed name
        ("user=tonumber(a)", None),  # null for text: not known
    ],
)
def test_presence_of_computed_values(evals: str, expected: object) -> None:
    from translator.sigma.lineage import FieldScope

    scope = FieldScope()
    scope.apply(parse(f"a | eval {evals}").commands[1])
    assert scope.presence.get("user", None if expected is not True else True) == expected or (
        expected is True and "user" in scope.never_null
    )


def test_a_computed_by_field_is_present_when_its_inputs_are() -> None:
    query = (
        'sourcetype=aws:cloudtrail eventName=X | eval user=lower(userName), src=coalesce(ip, "-")'
        " | stats count by user src"
    )
    d = convert_pipeline(parse(query), ())
    assert d.status == "exact", d.reasons
    rule, _ = rules(d)
    rows = all_items(rule)
    assert ("userName", ("exists",), [True]) in rows
    assert not any(f == "ip" for f, _, _ in rows)  # coalesce with a literal always has a value
    unknown = convert_pipeline(parse("sourcetype=aws:cloudtrail X=1 | eval user=tonumber(a) | stats count by user"), ())
    assert unknown.status == "partial" and any("by user" in r for r in unknown.reasons)


def test_a_null_test_on_a_computed_value_folds_in_as_its_inputs_presence() -> None:
    d = draft(
        "sourcetype=aws:cloudtrail eventName=X | eval u=lower(userName) | where isnotnull(u) | where NOT isnull(u)"
    )
    assert d.status == "exact", d.reasons
    rows = all_items(rules(d)[0])
    assert ("userName", ("exists",), [True]) in rows
    gone = draft("sourcetype=aws:cloudtrail eventName=X | eval u=lower(userName) | where isnull(u)")
    assert gone.status == "exact", gone.reasons
    rule = rules(gone)[0]
    assert items(rule)["filter"] == [("userName", ("exists",), [True])] and "not filter" in rule.detection.condition[0]


def test_group_by_past_a_wildcard_rename_becomes_aliases() -> None:
    query = (
        "sourcetype=aws:cloudtrail eventName=x | rename requestParameters.* as * | bin _time span=1h "
        "| stats dc(user) as n by host _time | where n > 2"
    )
    d = convert_pipeline(parse(query), ())
    assert d.correlation is not None and not d.reasons, d.reasons
    assert d.correlation["condition"] == {"gt": 2, "field": "user"}
    assert d.correlation["aliases"] == {
        "host": ["requestParameters.host", "host"],
        "user": ["requestParameters.user", "user"],
    }
    too_many = query.replace("by host _time", "by host region zone _time")
    d = convert_pipeline(parse(too_many), ())
    assert d.correlation is None and any("more than 8" in r for r in d.reasons)

"""Splunk apps, .conf files and plain SPL files as inputs (apps written here; the ESCU corpus as an app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from translator.cli import main
from translator.content import find_content_root, load_content, load_detection
from translator.content.apps import ref, saved_searches, spl_refs, split_ref
from translator.content.conf import merged, parse_conf
from translator.errors import ContentError
from translator.workflow import ConvertOptions, content_loader, convert_detection, convert_many


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- the conf format -----------------------------------------------------------------------------


def test_conf_stanzas_continuations_comments_and_default() -> None:
    text = (
        "# top comment\n"
        "global = 1\n"
        "[default]\n"
        "dispatch.earliest_time = -24h\n"
        "[A]\n"
        "search = index=main \\\n"
        "  | stats count \\\n"
        "  | where count > 5\n"
        "   # an indented comment\n"
        "dispatch.earliest_time=-1h\n"
        "nonsense line\n"
        "[B]\n"
        "search = x\n"
    )
    conf = merged([parse_conf(text, "s.conf")])
    a, b = conf.stanzas["A"], conf.stanzas["B"]
    assert a.get("search") == "index=main \n  | stats count \n  | where count > 5"
    assert a.get("dispatch.earliest_time") == "-1h" and b.get("dispatch.earliest_time") == "-24h"
    assert b.get("global") == "1"  # keys before the first stanza are [default]'s
    assert conf.problems == ["s.conf: line 11: not a stanza, a `key = value` or a comment: 'nonsense line'"]
    assert a.where("search").line == 6


def test_local_overrides_default_key_by_key() -> None:
    default = parse_conf("[A]\nsearch = old\ndescription = kept\n", "default/x.conf")
    local = parse_conf("[A]\nsearch = new\n[C]\nsearch = only local\n", "local/x.conf")
    conf = merged([default, local])
    assert conf.stanzas["A"].values == {"search": "new", "description": "kept"}
    assert conf.stanzas["C"].get("search") == "only local"


# -- an app --------------------------------------------------------------------------------------


@pytest.fixture
def apps_dir(tmp_path: Path) -> Path:
    root = tmp_path / "etc" / "apps"
    sec = root / "SecApp"
    write(
        sec / "default" / "savedsearches.conf",
        "[default]\ndispatch.earliest_time = -60m@m\ndispatch.latest_time = @m\n\n"
        "[Encoded PowerShell]\n"
        'search = `powershell` EventCode=4104 \\\n  ScriptBlockText="*-enc*"\n'
        "description = Encoded PowerShell\n"
        'action.correlationsearch.annotations = {"mitre_attack": ["T1059.001"]}\n'
        "action.notable.param.severity = high\n\n"
        "[Failed logons]\n"
        "search = `wineventlog_security` EventCode=4625 | stats count by TargetUserName | where count > 10\n"
        "disabled = 1\n\n"
        "[Bad domain]\nsearch = sourcetype=stream:dns | lookup bad_domains domain AS query OUTPUT is_bad"
        " | search is_bad=true\n\n"
        "[Many blocks]\nsearch = sourcetype=acme:fw action=blocked\ncounttype = number of events\n"
        "relation = greater than\nquantity = 50\n\n"
        "[Blocked SMB]\nsearch = eventtype=acme_blocks dest_port=445\n\n"
        "[No search]\ndescription = forgot it\n",
    )
    write(
        sec / "local" / "savedsearches.conf",
        '[Encoded PowerShell]\nsearch = `powershell` EventCode=4104 ScriptBlockText="*-EncodedCommand*"\n',
    )
    ps_core = 'definition = source="XmlWinEventLog:PowerShellCore/Operational"\n'
    write(sec / "default" / "macros.conf", f'[powershell]\n{ps_core}[evalled]\niseval = 1\ndefinition = "x"\n')
    lookup = "[bad_domains]\nfilename = bad_domains.csv\nmatch_type = WILDCARD(domain)\ncase_sensitive_match = false\n"
    write(sec / "default" / "transforms.conf", lookup)
    write(sec / "lookups" / "bad_domains.csv", "domain,is_bad\n*.evil.example,true\ngood.example,false\n")
    write(sec / "default" / "eventtypes.conf", "[acme_blocks]\nsearch = sourcetype=acme:fw action=blocked\n")
    shared = root / "Shared"
    write(shared / "default" / "macros.conf", "[wineventlog_security]\ndefinition = source=XmlWinEventLog:Security\n"
          "[powershell]\ndefinition = source=shadowed\n")  # fmt: skip
    return root


def convert_app(apps_dir: Path, include_disabled: bool = False) -> dict[str, object]:
    refs = [r for r in saved_searches(apps_dir) if include_disabled or not r.disabled]
    results = convert_many([(r.path, r.rel) for r in refs], None, ConvertOptions(targets=["splunk"], write=False))
    return {r.name or split_ref(Path(r.file))[1]: r for r in results}  # type: ignore[index]


def test_saved_searches_are_addressed_detections(apps_dir: Path) -> None:
    refs = saved_searches(apps_dir)
    assert [split_ref(r.path)[1] for r in refs] == [  # type: ignore[index]
        "Encoded PowerShell", "Failed logons", "Bad domain", "Many blocks", "Blocked SMB", "No search",
    ]  # fmt: skip
    assert [r.disabled for r in refs] == [False, True, False, False, False, False]
    assert refs[0].rel == Path("SecApp/encoded_powershell.yml")
    det = load_detection(refs[0].path)
    assert det.id == "SecApp/Encoded PowerShell" and "EncodedCommand" in det.search  # local/ wins
    assert det.tag("mitre_attack_id") == ["T1059.001"] and det.raw["dispatch.earliest_time"] == "-60m@m"
    with pytest.raises(ContentError, match=r"\[No search\] has no search.*savedsearches.conf: line 28"):
        load_detection(refs[-1].path)
    assert find_content_root(refs[0].path) == (apps_dir / "SecApp").resolve()


def test_one_savedsearches_conf_is_listed_with_its_local_layer(apps_dir: Path) -> None:
    local = apps_dir / "SecApp" / "local" / "savedsearches.conf"
    write(local, local.read_text() + "[Bad domain]\ndisabled = 1\n")
    refs = saved_searches(apps_dir / "SecApp" / "default" / "savedsearches.conf")
    assert [r.disabled for r in refs] == [False, True, True, False, False, False]  # as loading sees them


def test_app_content_own_first_then_other_apps(apps_dir: Path) -> None:
    content = load_content(apps_dir / "SecApp")
    assert content.macros[("powershell", 0)].definition.endswith('PowerShellCore/Operational"')  # its own
    assert ("wineventlog_security", 0) in content.macros  # another app's, shared
    assert ("evalled", 0) not in content.macros and any("iseval" in p for p in content.problems)
    assert content.lookups["bad_domains"].wildcard_fields == {"domain"}
    assert content.eventtypes == {"acme_blocks": "sourcetype=acme:fw action=blocked"}


def test_an_app_converts_with_its_metadata_schedule_lookups_eventtypes_and_alerts(apps_dir: Path) -> None:
    got = convert_app(apps_dir, include_disabled=True)
    enc = got["Encoded PowerShell"]
    assert enc.status == "exact", enc.reasons  # type: ignore[attr-defined]
    rule = yaml.safe_load(enc.rule_yaml)  # type: ignore[attr-defined]
    assert rule["tags"] == ["attack.execution", "attack.t1059.001"] and rule["level"] == "high"
    assert rule["logsource"] == {"product": "windows", "category": "ps_script"}
    assert rule["id"]  # derived from app/stanza: the same on every run
    failed = got["Failed logons"]
    docs = list(yaml.safe_load_all(failed.rule_yaml))  # type: ignore[attr-defined]
    assert docs[1]["correlation"]["timespan"] == "1h" and docs[1]["correlation"]["condition"] == {"gt": 10}
    bad = got["Bad domain"]
    assert bad.status == "exact" and "evil.example" in bad.rule_yaml  # type: ignore[attr-defined]
    blocks = list(yaml.safe_load_all(got["Many blocks"].rule_yaml))  # type: ignore[attr-defined]
    assert blocks[1]["correlation"] == {
        "type": "event_count", "rules": ["many_blocks"], "timespan": "1h", "condition": {"gt": 50},
    }  # fmt: skip
    smb = got["Blocked SMB"]
    assert smb.status == "exact", smb.reasons  # type: ignore[attr-defined]
    assert smb.queries["splunk"] == 'sourcetype="acme:fw" action="blocked" dest_port=445'  # type: ignore[attr-defined]
    assert got["No search"].status == "error" and "has no search" in got["No search"].reasons[0]  # type: ignore[attr-defined]


def test_cli_converts_apps_skipping_disabled_and_says_so(
    apps_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    args = ["convert", str(apps_dir), "--rules-out", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "-q"]
    assert main([*args, "--report", str(report)]) == 1  # the stanza without a search is an error
    err = capsys.readouterr().err
    assert "1 disabled saved search(es) skipped" in err
    data = json.loads(report.read_text())
    assert data["summary"]["total"] == 5 and data["summary"]["error"] == 1
    assert (tmp_path / "r" / "SecApp" / "encoded_powershell.yml").is_file()
    assert main([*args, "--include-disabled", "--report", str(report)]) == 1
    assert json.loads(report.read_text())["summary"]["total"] == 6
    assert main(["convert", str(apps_dir / "SecApp" / "default" / "macros.conf")]) == 2


def test_parity_applies_the_alert_condition_to_the_original(apps_dir: Path, tmp_path: Path) -> None:
    events = write(
        tmp_path / "e.jsonl",
        "\n".join(
            '{"sourcetype": "acme:fw", "action": "blocked", "timestamp": "2024-05-01T12:00:00Z"}' for _ in range(3)
        )
        + "\n",
    )
    report = tmp_path / "p.json"
    main(["parity", str(apps_dir), "--events", str(events), "--report", str(report), "-q"])
    blocks = next(d for d in json.loads(report.read_text())["detections"] if d["name"] == "Many blocks")
    assert blocks["status"] == "untested" and blocks["original_matches"] == blocks["sigma_matches"] == 0  # 3 < 50


# -- plain SPL files -------------------------------------------------------------------------------


def test_spl_files_one_or_several_searches(tmp_path: Path) -> None:
    one = write(tmp_path / "one.spl", "sourcetype=aws:cloudtrail eventName=StopLogging\n")
    many = write(
        tmp_path / "many.spl", "`powershell` EventCode=4104 ScriptBlockText=*iex*\n---\n\n---\nsourcetype=x a=1\n"
    )
    write(
        tmp_path / "macros.conf",
        '[powershell]\ndefinition = source="XmlWinEventLog:Microsoft-Windows-PowerShell/Operational"\n',
    )
    assert spl_refs(one) == [(one, "one")]
    assert spl_refs(many) == [(ref(many, "1"), "many #1"), (ref(many, "3"), "many #3")]  # the empty one is left out
    det = load_detection(ref(many, "3"))
    assert det.search == "sourcetype=x a=1" and det.name == "many #3"
    content = content_loader(None)(ref(many, "1"))
    assert ("powershell", 0) in content.macros  # the macros.conf beside it
    res = convert_detection(load_detection(ref(many, "1")), content, Path("many_1.yml"), ConvertOptions(write=False))
    assert res.status == "exact", res.reasons


def test_cli_spl_with_a_logsource_prints_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "--spl", 'Image="*\\\\whoami.exe"', "--logsource", "windows/process_creation"]) == 0
    out = capsys.readouterr()
    assert "category: process_creation" in out.out and "status: exact" in out.err and "as given" in out.err
    assert main(["convert", "--spl", "Image=x"]) == 0
    assert "status: unsupported" in capsys.readouterr().err
    assert main(["convert", "--spl", "x=1", "--logsource", "a/b/c/d"]) == 2


# -- the ESCU corpus as the ESCU app ships it -------------------------------------------------------


def test_the_corpus_as_an_app_converts_as_its_yaml_does(corpus: Path, tmp_path: Path) -> None:
    from escu_app import build_app

    from translator.content import iter_detection_files

    app = tmp_path / "DA-ESS-ContentUpdate"
    stanzas = build_app(corpus, app)
    opts = ConvertOptions(write=False)
    from_yaml = {
        str(p): r for p, r in zip(
            iter_detection_files(corpus),
            convert_many([(p, p.relative_to(corpus)) for p in iter_detection_files(corpus)], corpus, opts),
            strict=True,
        )
    }  # fmt: skip
    refs = saved_searches(app)
    from_app = convert_many([(r.path, r.rel) for r in refs], None, opts)
    assert len(from_app) == len(from_yaml) == 1613
    differ = []
    for r, res in zip(refs, from_app, strict=True):
        mine = from_yaml[str(stanzas[split_ref(r.path)[1]])]  # type: ignore[index]
        if res.status != mine.status:
            differ.append((r.path.name, mine.status, res.status, res.reasons[:1]))
            continue
        if res.rule_yaml is not None:
            a, b = list(yaml.safe_load_all(res.rule_yaml)), list(yaml.safe_load_all(mine.rule_yaml or ""))
            for key in ("logsource", "detection", "correlation"):
                if [_body(d.get(key)) for d in a] != [_body(d.get(key)) for d in b]:
                    differ.append((r.path.name, key))
    assert differ == []


def _body(part: object) -> object:
    """A rule part without the base rules' names (a correlation names them after the file, in its rules
    and its aliases)."""
    if not isinstance(part, dict):
        return part
    out = {k: v for k, v in part.items() if k != "rules"}
    if isinstance(out.get("aliases"), dict):
        out["aliases"] = {alias: list(by_rule.values()) for alias, by_rule in out["aliases"].items()}
    return out


def test_broken_pieces_fail_their_search_only(tmp_path: Path) -> None:
    """A malformed line inside a stanza, a lookup whose CSV is missing, a macro called with the wrong
    number of arguments: that saved search is an error naming the place; the others convert."""
    app = tmp_path / "BrokenApp"
    write(
        app / "default" / "savedsearches.conf",
        "[Fine]\nsearch = sourcetype=aws:cloudtrail eventName=StopLogging\n\n"
        "[Mangled]\nsearch = sourcetype=aws:cloudtrail\n  this line lost its backslash\n\n"
        "[No table]\nsearch = sourcetype=stream:dns | lookup gone domain AS query OUTPUT bad | search bad=1\n\n"
        "[Wrong args]\nsearch = `two(a)` x=1\n",
    )
    write(app / "default" / "transforms.conf", "[gone]\nfilename = gone.csv\n")
    write(app / "default" / "macros.conf", "[two(2)]\nargs = a, b\ndefinition = sourcetype=$a$ $b$\n")
    refs = saved_searches(app)
    results = {
        split_ref(Path(r.file))[1]: r
        for r in convert_many([(x.path, x.rel) for x in refs], None, ConvertOptions(write=False))
    }  # type: ignore[index]
    assert results["Fine"].status == "exact"
    assert results["Mangled"].status == "error" and "line 6" in results["Mangled"].reasons[0]
    assert results["No table"].status == "error" and "gone.csv is missing" in results["No table"].reasons[0]
    assert results["Wrong args"].status == "error" and "two" in results["Wrong args"].reasons[0]


def test_splunk_savedsearches_output_reads_back_to_the_same_rule(tmp_path: Path) -> None:
    """Sigma -> ``--format savedsearches`` -> this tool's app reader -> Sigma: the same selection."""
    from conftest import REFERENCE_EXAMPLE

    out = tmp_path / "o"
    args = ["convert", str(REFERENCE_EXAMPLE), "--to", "splunk", "--format", "savedsearches", "--out", str(out)]
    assert main([*args, "--rules-out", str(tmp_path / "r"), "-q"]) == 0
    conf = out / "splunk" / (REFERENCE_EXAMPLE.stem + ".conf")
    parsed = merged([parse_conf(conf.read_text(), str(conf))])
    assert not parsed.problems
    (name,) = [n for n in parsed.stanzas if n != "default"]
    assert name == "Interactive Session on Remote Endpoint with PowerShell"
    app = tmp_path / "roundtrip"
    write(app / "default" / "savedsearches.conf", conf.read_text())
    (back,) = convert_many([(r.path, r.rel) for r in saved_searches(app)], None, ConvertOptions(write=False))
    assert back.status == "exact", back.reasons
    original = yaml.safe_load((tmp_path / "r" / (REFERENCE_EXAMPLE.stem + ".yml")).read_text())
    again = yaml.safe_load(back.rule_yaml or "")
    assert again["logsource"] == original["logsource"] and again["detection"] == original["detection"]

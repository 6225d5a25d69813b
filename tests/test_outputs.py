"""What convert leaves on disk and prints: stale outputs removed, bad output paths refused up front,
one detection's queries on stdout, -q."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, REFERENCE_EXAMPLE, detection_yaml

from translator.cli import main
from translator.emit import manifest


def test_manifest_removes_only_what_an_earlier_run_wrote(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "splunk" / "a").mkdir(parents=True)
    mine, theirs = root / "splunk" / "a" / "x.spl", root / "splunk" / "a" / "user.txt"
    mine.write_text("q")
    theirs.write_text("kept")
    assert manifest.sync(root, ["in"], {"a/x": {"splunk": [mine]}}, ["a/x"], {"splunk"}) == []
    assert manifest.sync(root, ["in"], {}, ["a/x"], {"splunk"}) == [mine.resolve()]  # converted again, not produced
    assert not mine.exists() and theirs.exists()  # a file no manifest lists stays
    other, kql = root / "splunk" / "b.spl", root / "kusto" / "b.kql"
    kql.parent.mkdir()
    for f in (other, kql):
        f.write_text("q")
    manifest.sync(root, ["in"], {"b": {"splunk": [other]}}, ["b"], {"splunk"})
    manifest.sync(root, ["in"], {"b": {"kusto": [kql]}}, ["b"], {"kusto"})
    assert other.exists() and kql.exists()  # a run --to kusto keeps the splunk query
    assert manifest.sync(root, ["elsewhere"], {}, ["c"], {"splunk", "kusto"}) == []  # another input's run
    assert other.exists() and kql.exists()
    manifest.sync(root, ["in"], {"b": {"splunk": [other]}}, ["b"], {"splunk"})
    assert manifest.sync(root, ["in"], {}, ["c"], {"splunk"}) == [other.resolve()]  # same inputs: b is gone
    assert kql.exists()
    escape = tmp_path / "outside.txt"
    escape.write_text("x")
    (root / manifest.NAME).write_text(json.dumps({"inputs": ["in"], "files": {"z": {"splunk": ["../outside.txt"]}}}))
    assert manifest.sync(root, ["in"], {}, ["z"], {"splunk"}) == [] and escape.exists()  # never outside the folder


def test_a_detection_that_stops_converting_loses_its_old_outputs(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES, content)
    folder = content / "detections" / "endpoint"
    (folder / "other.yml").write_text(
        detection_yaml("Other", 2, '`powershell` EventCode=4104 ScriptBlockText="*Invoke-Mimikatz*"')
    )
    rules, out = tmp_path / "rules", tmp_path / "out"
    args = [str(content / "detections"), "--to", "splunk", "--rules-out", str(rules), "--out", str(out), "-q"]
    assert main(args) == 0
    old_rule, old_query = rules / "endpoint" / "other.yml", out / "splunk" / "endpoint" / "other.spl"
    assert old_rule.exists() and old_query.exists()
    (folder / "other.yml").write_text(detection_yaml("Other", 2, "| inputlookup x.csv"))  # now unsupported
    assert main(args) == 0
    assert not old_rule.exists() and not old_query.exists()
    assert (rules / "endpoint" / REFERENCE_EXAMPLE.name).exists()  # the rest is still there


@pytest.mark.parametrize("flag", ["--out", "--rules-out", "--report", "--junit", "--html"])
def test_an_unusable_output_path_is_refused_before_any_work(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    bad = blocker / "sub" if flag in ("--out", "--rules-out") else tmp_path / "missing" / "r.json"
    rules = tmp_path / "rules"
    extra = [] if flag == "--rules-out" else ["--rules-out", str(rules)]
    code = main([str(REFERENCE_EXAMPLE), "--to", "splunk", "--out", str(tmp_path / "o"), *extra, flag, str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line
    assert not list(rules.rglob("*.yml"))  # nothing was converted first


def test_one_detection_without_out_prints_its_queries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    assert main([str(REFERENCE_EXAMPLE), "--to", "splunk", "--rules-out", str(rules)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("source IN (") and "EventCode=4104" in captured.out
    assert "exact" in captured.err and "exact" not in captured.out  # the verdict is not mixed into the query
    assert not (tmp_path / "outputs").exists() and not Path("outputs/splunk").joinpath(REFERENCE_EXAMPLE.name).exists()


def test_quiet_prints_only_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(EXAMPLES), "--to", "all", "--rules-out", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "-q"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1  # some targets cannot take a script-block rule
    assert out[0] == "1 detection(s): 1 exact, 0 partial, 0 unsupported, 0 error"
    assert out[1].startswith("target failures: ") and len(out) == 2


def test_eval_over_inputs_without_events_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    assert main([str(REFERENCE_EXAMPLE), "--rules-out", str(rules), "-q"]) == 0
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert main(["eval", str(rules), "--events", str(empty)]) == 2
    assert "no events" in capsys.readouterr().err


def test_pipelines_lists_each_targets_pipelines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipelines", "kusto"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kusto:\n") and "  microsoft_xdr (default)" in out and "  sentinel_tables (default)" in out
    assert "splunk_windows" not in out  # another target's own pipeline
    assert main(["pipelines", "nope"]) == 2


def test_a_backends_warning_is_a_note_not_stderr_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ecr.yml").write_text(
        detection_yaml("Ecr", 3, "sourcetype=aws:cloudtrail eventSource=ecr.amazonaws.com eventName=PutImage")
    )
    report = tmp_path / "r.json"
    main([str(folder), "--to", "qradar-aql-community", "--rules-out", str(tmp_path / "r"), "--out",
          str(tmp_path / "o"), "--report", str(report), "-q"])  # fmt: skip
    assert "Warning" not in capsys.readouterr().err
    notes = json.loads(report.read_text())["detections"][0]["notes"]
    assert any(n.startswith("qradar-aql-community: ") for n in notes), notes

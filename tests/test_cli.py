"""The `translate` command: outputs per target, reports, exit codes, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, REFERENCE_CORPUS, REFERENCE_EXAMPLE

from translator.cli import main

# field name each target's default pipeline gives ScriptBlockText
TARGET_FIELD = {
    "splunk": "ScriptBlockText",
    "lucene": "powershell.file.script_block_text",
    "esql": "powershell.file.script_block_text",
}
# EQL cannot search a text field (the script block): it says so instead of writing a query
EQL_REFUSAL = "EQL cannot search text field powershell.file.script_block_text"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A copy of the bundled example content tree, to add broken files to."""
    root = tmp_path / "content"
    shutil.copytree(EXAMPLES, root)
    return root


def test_reference_to_elastic_and_splunk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, out, _ = run(
        capsys, str(REFERENCE_EXAMPLE), "--to", "elastic", "--to", "splunk",
        "--rules-out", str(tmp_path / "rules"), "--out", str(tmp_path / "out"), "--report", str(report),
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["summary"] == {"total": 1, "exact": 1, "partial": 0, "unsupported": 0, "error": 0}
    det = data["detections"][0]
    assert det["status"] == "exact" and det["id"] == "a4e8f3a4-48b2-11ec-bcfc-3e22fbd008af"
    assert Path(det["sigma"]).is_file()
    assert sorted(det["outputs"]) == sorted(TARGET_FIELD)
    assert EQL_REFUSAL in det["target_errors"]["eql"]  # reported; the other Elastic languages wrote it: exit 0
    for target, field in TARGET_FIELD.items():
        path = Path(det["outputs"][target])
        assert path.parent.name == target
        query = path.read_text().replace("\\", "")  # lucene escapes '-'
        assert field in query
        assert "enter-pssession" in query.lower() and "-computername" in query.lower()  # esql: to_lower()


def test_corpus_reference_command_from_issue(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, str(REFERENCE_CORPUS), "--to", "elastic", "--to", "splunk", "--report", "r.json")
    assert code == 0
    assert len(list((tmp_path / "sigma_rules").glob("*.yml"))) == 1
    assert not (tmp_path / "outputs").exists()  # one detection, no --out: its queries are printed
    assert [x for x in out.splitlines() if x.startswith("# ")] == ["# lucene", "# esql", "# splunk"]
    assert json.loads((tmp_path / "r.json").read_text())["detections"][0]["status"] == "exact"
    code, _, _ = run(capsys, str(REFERENCE_CORPUS), "--to", "elastic", "--to", "splunk", "--out", "outputs")
    assert sorted(p.parent.name for p in (tmp_path / "outputs").glob("*/*")) == ["esql", "lucene", "splunk"]


def test_demo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "demo", str(tmp_path / "d"))
    assert code == 0
    assert "status: exact" in out
    assert (tmp_path / "d" / "sigma_rules" / f"{REFERENCE_EXAMPLE.stem}.yml").is_file()
    for target in TARGET_FIELD:
        assert (tmp_path / "d" / "outputs" / target).is_dir()
        assert str(tmp_path / "d" / "outputs" / target) in out
    assert f"eql: not written: {EQL_REFUSAL}" in out


def test_demo_leaves_the_rule_pack_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sigma_rules").mkdir()
    assert run(capsys, "demo")[0] == 0
    assert not any((tmp_path / "sigma_rules").iterdir())  # the checkout's pack folders stay as they were
    assert (tmp_path / "demo_output" / "sigma_rules" / f"{REFERENCE_EXAMPLE.stem}.yml").is_file()


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.yml"))
    assert code == 2
    assert "nope.yml: no such file" in err and "Traceback" not in err


def test_directory_without_detections(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2
    assert "no detection files" in err


def test_broken_yaml_names_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nsearch: 'a=1\ndescription: [\n")
    code, _, err = run(capsys, str(bad), "--rules-out", str(tmp_path / "r"))
    assert code == 2
    assert "invalid YAML" in err and "bad.yml" in err and "line " in err
    assert "Traceback" not in err


def test_detection_without_search(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "nosearch.yml"
    bad.write_text("name: x\nid: 1\n")
    code, _, err = run(capsys, str(bad))
    assert code == 2
    assert "nosearch.yml: detection has no 'search'" in err


def test_batch_goes_on_past_broken_files(capsys: pytest.CaptureFixture[str], content: Path, tmp_path: Path) -> None:
    det_dir = content / "detections" / "endpoint"
    (det_dir / "broken.yml").write_text("name: [\n")
    (det_dir / "unbalanced.yml").write_text("name: q\nsearch: '`powershell` ScriptBlockText=\"*x'\n")
    report = tmp_path / "r.json"
    code, _, _ = run(
        capsys, str(content), "--to", "splunk", "--report", str(report),
        "--rules-out", str(tmp_path / "rules"), "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 1
    data = json.loads(report.read_text())
    by_file = {Path(d["file"]).name: d for d in data["detections"]}
    assert data["summary"]["total"] == 3
    assert by_file[REFERENCE_EXAMPLE.name]["status"] == "exact"
    assert by_file["broken.yml"]["status"] == "error"
    assert "line" in by_file["broken.yml"]["reasons"][0]
    assert by_file["unbalanced.yml"]["status"] == "error"
    assert "unbalanced quote" in by_file["unbalanced.yml"]["reasons"][0]
    # output tree mirrors the input tree
    assert (tmp_path / "rules" / "endpoint" / f"{REFERENCE_EXAMPLE.stem}.yml").is_file()


def test_unknown_target_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(REFERENCE_EXAMPLE), "--to", "nosuchsiem")
    assert code == 2
    assert "unknown target 'nosuchsiem'" in err


def test_parse_spl_json_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parse", "--spl", "a=1 OR b=2 c=3", "--json")
    assert code == 0
    tree = json.loads(out)
    assert tree["commands"][0]["expr"]["type"] == "And"
    code, _, err = run(capsys, "parse", "--spl", 'a="open')
    assert code == 2
    assert "unbalanced quote" in err and "column 3" in err


def test_parse_files_one_json_per_line(capsys: pytest.CaptureFixture[str], content: Path) -> None:
    (content / "detections" / "endpoint" / "z_bad.yml").write_text("name: q\nsearch: '`nosuchmacro`'\n")
    code, out, _ = run(capsys, "parse", str(content))
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [entry["ok"] for entry in lines] == [True, False]
    assert "unknown macro `nosuchmacro`" in lines[1]["error"]


def test_targets_lists_backends(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "targets")
    assert code == 0
    for name in ("splunk", "lucene", "esql", "eql", "elastic"):
        assert name in out


def test_spl_data_source_picks_the_platform_and_unsupported_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    macro = "(source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational OR source=Syslog:Linux-Sysmon/Operational)"
    query = f"{macro} EventCode=1 process_name=cmd.exe"
    assert main(["convert", "--spl", query]) == 0
    err = capsys.readouterr().err
    assert "unsupported" in err and "no data_source picks one" in err
    assert main(["convert", "--spl", query, "--data-source", "Sysmon EventID 1"]) == 0
    out = capsys.readouterr().out
    assert "category: process_creation" in out and "Image|endswith: \\cmd.exe" in out


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    from translator.emit.writer import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a" / "rule.yml", "x: 1\n")
        os.umask(0o077)
        write_atomic(tmp_path / "a" / "private.yml", "x: 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "rule.yml").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "a" / "private.yml").stat().st_mode) == 0o600

"""Every pySigma target, batches with --jobs, atomic writes, JUnit and HTML reports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, REFERENCE_EXAMPLE, detection_yaml

from translator.cli import main
from translator.emit import targets as tg
from translator.emit.writer import write_atomic
from translator.sigma.rule import collection_of, load_rule

# Targets whose own field model has no PowerShell script-block text: the backend (with its
# default pipeline) refuses the reference rule, and the report must say why.
NO_SCRIPT_BLOCKS = {"carbon_black", "cortex_xdr", "panther", "secops", "sentinel_one_pq"}
NO_SCRIPT_BLOCKS |= {"eql"}  # EQL cannot search a text field (Elastic's script-block text): it says so


def test_every_installed_backend_is_a_target() -> None:
    names = set(tg.backend_names())
    expected = {"splunk", "lucene", "esql", "eql", "elastalert", "kusto", "qradar-aql-community", "loki"}
    expected |= {"opensearch_lucene", "log_scale", "sentinel_one_pq", "carbon_black", "cortex_xdr", "logpoint"}
    expected |= {"net_witness", "sumologic_cse", "secops", "panther", "databricks", "victoria_logs", "sqlite", "duckdb"}
    assert expected <= names


def test_every_target_on_the_reference_rule(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code = main(
        [
            str(REFERENCE_EXAMPLE),
            "--to",
            "all",
            "--rules-out",
            str(tmp_path / "r"),
            "--out",
            str(tmp_path / "q"),
            "--report",
            str(report),
            "-q",
        ]
    )
    det = json.loads(report.read_text())["detections"][0]
    assert det["status"] == "exact"
    assert set(det["target_errors"]) == NO_SCRIPT_BLOCKS, det["target_errors"]
    assert code == 1  # a target the user asked for failed
    written = set(det["outputs"])
    assert written == set(tg.backend_names()) - NO_SCRIPT_BLOCKS
    for name, path in det["outputs"].items():
        text = Path(path).read_text(encoding="utf-8")
        plain = text.replace("\\", "").lower()
        # the rule's two values reach every query (escaped or quoted however the target likes)
        assert "enter-pssession" in plain and "-computername" in plain, (name, text)
        assert Path(path).suffix == "." + tg.extension(name).rsplit(".", 1)[-1]
    for name in NO_SCRIPT_BLOCKS:
        assert det["target_errors"][name]  # the backend's own reason


def test_unknown_format_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main([str(REFERENCE_EXAMPLE), "--to", "lucene", "--format", "siem_rulez", "--rules-out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "siem_rulez" in err and "siem_rule_ndjson" in err  # the formats it has


def test_exists_becomes_wildcard_for_backends_without_exists() -> None:
    docs = [
        {
            "title": "t",
            "logsource": {"product": "windows", "category": "process_creation"},
            "detection": {"sel": {"Image|endswith": "\\x.exe", "User|exists": True}, "condition": "sel"},
        }
    ]
    eql = tg.convert(docs, tg.Target("eql", ("ecs_windows",), "default"))
    assert "user.name" in eql and "*" in eql
    assert docs[0]["detection"]["sel"] == {"Image|endswith": "\\x.exe", "User|exists": True}  # input untouched
    with pytest.raises(NotImplementedError):  # what the rewrite spares eql from
        tg.plugins().backends["eql"]().convert(collection_of(docs))


@pytest.mark.parametrize(
    ("pattern", "beyond"),
    [
        (r"^(?:(?!a@b)[\s\S])*?x(?![^@])", True),  # look-ahead
        (r"(?<=\\)cmd", True),  # look-behind
        (r"(a)\1", True),  # back-reference
        (r"(x|(?=y))", True),  # inside a branch
        (r"abc[(?=]", False),  # only characters of a class
        (r"(?<n>a)b{2}(?:c)*", False),  # a PCRE named group is no look-behind
    ],
)
def test_what_re2_cannot_run_is_found(pattern: str, beyond: bool) -> None:
    assert tg.beyond_re2(pattern) is beyond


def test_re2_targets_refuse_a_look_around_and_others_keep_it() -> None:
    docs = [
        {
            "title": "t",
            "logsource": {"product": "windows", "category": "process_creation"},
            "detection": {"sel": {"CommandLine|re": "^(?:(?!-x)[\\s\\S])*?-y"}, "condition": "sel"},
        }
    ]
    with pytest.raises(tg.ConversionFailed, match="RE2"):
        tg.convert(docs, tg.default_target("kusto", "windows"))
    aws = [{**docs[0], "logsource": {"product": "acme", "service": "x"}}]  # a product with no Elastic view
    with pytest.raises(tg.ConversionFailed, match="Lucene"):
        tg.convert(aws, tg.default_target("lucene", "acme"))
    assert "(?!-x)" in tg.convert(docs, tg.default_target("splunk", "windows"))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """The example content plus detections in two folders, one of which the Lucene backend cannot emit."""
    root = tmp_path / "content"
    shutil.copytree(EXAMPLES, root)
    other = root / "detections" / "other"
    other.mkdir()
    cased = "A where with == is case-sensitive; some backends cannot say that."
    for n, cond in ((1, '| where Image=="C:\\\\x\\\\Cmd.exe"'), (2, 'Image="*\\\\rundll32.exe"')):
        search = f"`sysmon` EventCode=1 {cond} | `cased_image_{n}_filter`"
        (other / f"cased_image_{n}.yml").write_text(detection_yaml(f"Cased Image {n}", n, search, cased))
    (root / "macros" / "sysmon.yml").write_text(
        "name: sysmon\ndefinition: source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational\n"
    )
    return root


def test_jobs_give_identical_trees(batch: Path, tmp_path: Path) -> None:
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}"
        main([str(batch), "--to", "splunk", "--to", "lucene", "--to", "sumologic_cse", "--jobs", jobs,
              "--rules-out", str(out / "rules"),
              "--out", str(out / "queries"), "--report", str(out / "report.json"), "-q"])  # fmt: skip
        outs.append(out)
    one, two = (_tree(o / "rules") | {"q/" + k: v for k, v in _tree(o / "queries").items()} for o in outs)
    assert len(one) >= 5 and one == two
    r1, r2 = (json.loads((o / "report.json").read_text().replace(str(o), "OUT")) for o in outs)
    assert r1 == r2
    # the output tree mirrors the input tree
    assert (outs[0] / "rules" / "other" / "cased_image_2.yml").is_file()
    assert (outs[0] / "queries" / "splunk" / "endpoint").is_dir()


def test_one_rule_failing_in_a_backend_is_reported_while_the_others_are_written(batch: Path, tmp_path: Path) -> None:
    # databricks refuses |cased (Lucene writes it as a case-keeping regular expression for Windows rules)
    report = tmp_path / "r.json"
    code = main([str(batch), "--to", "databricks", "--to", "splunk", "--rules-out", str(tmp_path / "r"),
                 "--out", str(tmp_path / "q"), "--report", str(report), "--jobs", "2", "-q"])  # fmt: skip
    dets = {Path(d["file"]).name: d for d in json.loads(report.read_text())["detections"]}
    failed = dets["cased_image_1.yml"]
    assert "Case-sensitive" in failed["target_errors"]["databricks"]
    assert "databricks" not in failed["outputs"] and Path(failed["sigma"]).is_file()
    for name in ("cased_image_2.yml", REFERENCE_EXAMPLE.name):
        assert Path(dets[name]["outputs"]["databricks"]).read_text().strip()
    # Splunk says |cased as the case-sensitive regular expression it is
    query = Path(failed["outputs"]["splunk"]).read_text()
    assert '| regex Image="^C:' in query and 'Cmd\\\\.exe$"' in query
    assert code == 1


def test_junit_and_html_reports(batch: Path, tmp_path: Path) -> None:
    junit, page = tmp_path / "r.xml", tmp_path / "r.html"
    main([str(batch), "--to", "databricks", "--rules-out", str(tmp_path / "r"), "--out", str(tmp_path / "q"),
          "--junit", str(junit), "--html", str(page), "-q"])  # fmt: skip
    suite = ET.parse(junit).getroot()
    cases = suite.findall("testcase")
    assert suite.get("tests") == "3" and len(cases) == 3
    failing = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failing] == ["Cased Image 1"]
    assert "Case-sensitive" in (failing[0].find("failure").text or "")  # type: ignore[union-attr]
    text = page.read_text(encoding="utf-8")
    for needle in ("Cased Image 1", "Cased Image 2", "By search family", "By target", "<svg", "databricks failed"):
        assert needle in text
    # self-contained: nothing is loaded from elsewhere
    for external in ("<script src", "<link", "@import", "url("):
        assert external not in text


def test_an_interrupted_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out" / "rule.yml"
    write_atomic(target, "old: complete\n")

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new: " + "x" * 100_000)
    assert target.read_text() == "old: complete\n"  # the old file, whole
    assert [p.name for p in target.parent.iterdir()] == ["rule.yml"]  # no temporary left behind


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_batch_leaves_only_complete_files(tmp_path: Path, sig: signal.Signals) -> None:
    root = tmp_path / "content"
    shutil.copytree(EXAMPLES, root)
    src = REFERENCE_EXAMPLE.read_text(encoding="utf-8")
    many = root / "detections" / "many"
    many.mkdir()
    for i in range(400):
        (many / f"copy_{i:03d}.yml").write_text(src.replace("name: ", f"name: Copy {i} ", 1))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "translator.cli",
            "convert",
            str(root),
            "--to",
            "splunk",
            "--to",
            "lucene",
            "--jobs",
            "2",
            "--rules-out",
            str(out / "rules"),
            "--out",
            str(out / "q"),
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # a shell running us in the background may have set SIGINT to ignored; the child must see it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.rglob("*.yml"))) < 20:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    rules = list((out / "rules").rglob("*"))
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    written = [p for p in rules if p.is_file()]
    assert 20 <= len(written) < 401  # interrupted part-way
    for p in written:
        load_rule(list(yaml.safe_load_all(p.read_text(encoding="utf-8"))))  # each one whole


# Kibana's detection rule schema (create/import API): keys every rule needs, and per rule type the
# query language it takes.
KIBANA_REQUIRED = {"name": str, "description": str, "risk_score": int, "severity": str, "type": str, "rule_id": str}
KIBANA_LANGUAGES = {"query": {"kuery", "lucene"}, "eql": {"eql"}, "esql": {"esql"}}


@pytest.mark.parametrize("target", ["lucene", "esql"])  # EQL cannot search script blocks: no rule written
def test_elastic_rule_ndjson_imports_offline(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access while building a rule")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    out = tmp_path / "o"
    args = ["convert", str(REFERENCE_EXAMPLE), "--to", target, "--format", "siem_rule_ndjson", "--out", str(out)]
    assert main([*args, "--rules-out", str(tmp_path / "r"), "-q"]) == 0
    written = out / target / (REFERENCE_EXAMPLE.stem + ".ndjson")
    lines = written.read_text().splitlines()
    assert len(lines) == 1
    rule = json.loads(lines[0])
    for key, kind in KIBANA_REQUIRED.items():
        assert isinstance(rule.get(key), kind), key
    assert 0 <= rule["risk_score"] <= 100 and rule["severity"] in ("low", "medium", "high", "critical")
    assert rule["language"] in KIBANA_LANGUAGES[rule["type"]] and "pssession" in rule["query"].lower()
    assert rule["rule_id"] == "a4e8f3a4-48b2-11ec-bcfc-3e22fbd008af"
    (threat,) = rule["threat"]
    assert threat["framework"] == "MITRE ATT&CK"
    assert threat["tactic"] == {
        "id": "TA0008", "name": "Lateral Movement", "reference": "https://attack.mitre.org/tactics/TA0008",
    }  # fmt: skip
    (technique,) = threat["technique"]
    assert technique["id"] == "T1021" and technique["name"] == "Remote Services"
    assert technique["subtechnique"][0]["id"] == "T1021.006"

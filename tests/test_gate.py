"""The CI gate: a baseline of accepted parity results, --fail-on, and --changed-since."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, REFERENCE_EXAMPLE
from test_parity import _converted, ps_events  # noqa: F401  (the fixture)

from translator.cli import main
from translator.content.changes import changed_items
from translator.engine import baseline
from translator.workflow import content_loader


@dataclass
class Result:
    id: str
    status: str
    conversion: str = "exact"
    only_original: list[str] = field(default_factory=list)
    file: str = ""
    name: str = ""
    reasons: list[str] = field(default_factory=list)


def accepted(**entries: baseline.Entry) -> dict[str, baseline.Entry]:
    return dict(entries)


def test_an_accepted_difference_does_not_fail() -> None:
    base = accepted(a=baseline.Entry("differ", "partial", 0))
    verdict = baseline.judge([Result("a", "differ", "partial")], base, ("differ", "error"))
    assert verdict.worse == [] and verdict.tighter == [] and verdict.stale == []


@pytest.mark.parametrize(
    ("run", "entry", "fail_on", "category"),
    [
        (Result("a", "differ"), baseline.Entry("equal", "exact"), ("differ",), "differ"),
        (
            Result("a", "differ", only_original=["e#1"]),
            baseline.Entry("differ", "exact"),
            ("only_original",),
            "only_original",
        ),
        (Result("a", "equal", "partial"), baseline.Entry("equal", "exact"), ("partial",), "partial"),
        (
            Result("a", "not_evaluable", "unsupported"),
            baseline.Entry("equal", "partial"),
            ("unsupported",),
            "unsupported",
        ),
        (Result("a", "error", "exact"), baseline.Entry("equal", "exact"), ("error",), "error"),
    ],
)
def test_each_way_of_getting_worse_fails_its_category(
    run: Result, entry: baseline.Entry, fail_on: tuple[str, ...], category: str
) -> None:
    verdict = baseline.judge([run], {"a": entry}, fail_on)
    assert len(verdict.worse) == 1 and f": {category}:" in verdict.worse[0]
    others = tuple(c for c in baseline.CATEGORIES if c != category)
    assert baseline.judge([run], {"a": entry}, others).worse == []  # only its own category fails


def test_improvements_and_stale_entries_say_the_baseline_can_be_tightened() -> None:
    base = accepted(a=baseline.Entry("differ", "partial", 2), gone=baseline.Entry("equal", "exact"))
    verdict = baseline.judge([Result("a", "equal", "exact")], base, ("differ", "error"))
    assert verdict.worse == []
    assert len(verdict.tighter) == 1 and "now equal, exact" in verdict.tighter[0]
    assert verdict.stale == ["gone: no such detection in this run"]


def test_without_a_baseline_a_detection_is_judged_on_its_own() -> None:
    runs = [Result("a", "differ", name="A"), Result("b", "equal", "partial", name="B")]
    assert baseline.judge(runs, None, ("differ",)).worse == ["A: differ: differ, exact"]
    assert baseline.judge([Result("b", "equal", "partial")], None, ("partial",)).worse != []


@pytest.mark.parametrize("suffix", [".yml", ".json"])
def test_a_written_baseline_reads_back(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"base{suffix}"
    results = [
        Result("a", "differ", "partial", ["e#1"], reasons=["`x` not carried over"]),
        Result("", "equal", file="f.yml"),
    ]
    path.write_text(baseline.dump(results, path))
    loaded = baseline.load(path)
    assert loaded["a"] == baseline.Entry("differ", "partial", 1, "`x` not carried over")
    assert loaded["f.yml"].status == "equal"


@pytest.mark.parametrize(
    "text",
    [
        "detections: [1, 2]\n",
        "detections:\n  a: {status: great}\n",
        "detections:\n  a: {status: equal, only_original: x}\n",
        "{: nope\n",
    ],
)
def test_a_bad_baseline_is_a_clear_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "b.yml"
    path.write_text(text)
    with pytest.raises(baseline.BaselineError):
        baseline.load(path)
    assert main(["parity", str(REFERENCE_EXAMPLE), "--events", str(tmp_path), "--baseline", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_gate_end_to_end(ps_events: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    rules = _converted(tmp_path)
    rule = rules / REFERENCE_EXAMPLE.name
    rule.write_text(rule.read_text().replace("    - -ComputerName\n", ""))  # broader: differs
    base, report = tmp_path / "base.yml", tmp_path / "p.json"
    args = ["parity", str(REFERENCE_EXAMPLE), "--events", str(ps_events), "--sigma", str(rules)]
    assert main([*args, "--write-baseline", str(base)]) == 1  # no baseline yet: the difference fails
    assert yaml.safe_load(base.read_text())["detections"]
    assert main([*args, "--baseline", str(base), "--report", str(report)]) == 0  # accepted
    assert json.loads(report.read_text())["baseline"]["worse"] == []
    shutil.copy(REFERENCE_EXAMPLE, tmp_path / "x.yml")
    rule.write_text(rule.read_text().replace("Enter-PSSession", "Enter-PSSessionX"))  # now it misses events
    capsys.readouterr()
    assert main([*args, "--baseline", str(base), "--fail-on", "differ,only_original"]) == 1
    assert "only_original" in capsys.readouterr().out
    assert main([*args, "--baseline", str(base), "--fail-on", "differ"]) == 0  # missing events not asked for
    assert main([*args, "--fail-on", "bogus"]) == 2


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("needs git")
    root = tmp_path / "content"
    shutil.copytree(EXAMPLES, root)
    other = root / "detections" / "endpoint" / "plain_cmd.yml"
    other.write_text(
        "name: Plain cmd\nid: 5a1b2c3d-0000-4000-8000-000000000001\nsearch: 'source=XmlWinEventLog:Security"
        ' EventCode=4688 NewProcessName="*\\\\cmd.exe"\'\ndata_source:\n- Windows Event Log Security 4688\n'
    )
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "base")
    return root


def _items(root: Path) -> list[tuple[Path, Path]]:
    files = sorted((root / "detections").rglob("*.yml"))
    return [(p, p.relative_to(root)) for p in files]


def test_changed_since_follows_files_and_macros(repo: Path) -> None:
    items, loader = _items(repo), content_loader(None)
    assert changed_items(items, "HEAD", loader) == []
    macro = repo / "macros" / "powershell.yml"
    macro.write_text(macro.read_text() + "\n")  # the macro the reference detection expands
    assert [p.name for p, _ in changed_items(items, "HEAD", loader)] == [REFERENCE_EXAMPLE.name]
    _git(repo, "checkout", "--", ".")
    other = repo / "detections" / "endpoint" / "plain_cmd.yml"
    other.write_text(other.read_text().replace("cmd.exe", "powershell.exe"))
    assert [p.name for p, _ in changed_items(items, "HEAD", loader)] == ["plain_cmd.yml"]
    (repo / "detections" / "endpoint" / "new.yml").write_text(other.read_text())  # untracked: new
    assert "new.yml" in [p.name for p, _ in changed_items(_items(repo), "HEAD", loader)]


def test_changed_since_on_the_cli(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "none.xml"
    events.write_text("")
    assert main(["parity", str(repo / "detections"), "--events", str(events), "--changed-since", "HEAD"]) == 0
    assert "0 of 2 detection(s) to check" in capsys.readouterr().out
    assert main(["parity", str(repo / "detections"), "--events", str(events), "--changed-since", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


# -- adoption files ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _readme_gate_command() -> str:
    lines = [x.split("#")[0].strip() for x in (ROOT / "README.md").read_text().splitlines()]
    gate = [x for x in lines if x.startswith("translate parity") and "--baseline" in x]
    assert gate, "README shows the CI gate's parity command"
    return gate[0]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_workflow_examples_are_valid_and_run_what_the_readme_shows(name: str) -> None:
    data = yaml.safe_load((ROOT / "docs" / "ci" / name).read_text())
    assert isinstance(data, dict)
    if name == "github-actions.yml":
        steps = data["jobs"]["parity"]["steps"]
        commands = [s["run"] for s in steps if "run" in s]
        assert any("junit" in str(s.get("uses", "")) for s in steps)  # the JUnit report is published
    else:
        commands = data["parity"]["script"]
        assert data["parity"]["artifacts"]["reports"]["junit"] == ["convert.xml", "parity.xml"]
    assert any(c.startswith("translate convert") for c in commands)
    assert _readme_gate_command() in commands


def test_pre_commit_hook_definitions_name_real_commands() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"translate-convert", "translate-parity"}
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["entry"].startswith("translate ")
    assert "--changed-since" in hooks["translate-parity"]["entry"]


def _pre_commit(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_hooks_for_real(tmp_path: Path) -> None:
    """The hooks install from this repository (pip, from the package registry) and run on a commit."""
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extras")
    if not (ROOT / ".git").exists():
        pytest.skip("pre-commit installs hooks from a git repository; this checkout is not one")
    home = tmp_path / "pre-commit-home"
    repo = tmp_path / "content"
    shutil.copytree(EXAMPLES, repo)
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "base")
    broken = repo / "detections" / "endpoint" / "broken.yml"
    broken.write_text("name: Broken\nid: 5a1b2c3d-0000-4000-8000-000000000009\nsearch: 'source=x | eval a=('\n")
    _git(repo, "add", ".")
    done = _pre_commit(
        ["try-repo", str(ROOT), "translate-convert", "--files", str(broken.relative_to(repo))], repo, home
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "broken.yml" in done.stdout and "Traceback" not in done.stdout  # the hook names the file
    broken.unlink()
    detection = repo / "detections" / "endpoint" / REFERENCE_EXAMPLE.name
    _git(repo, "add", "-A")
    done = _pre_commit(
        ["try-repo", str(ROOT), "translate-convert", "--files", str(detection.relative_to(repo))], repo, home
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 exact" in done.stdout or "Passed" in done.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_parity_hook_for_real(tmp_path: Path) -> None:
    """The parity hook from a .pre-commit-config.yaml, with the content and events in its args."""
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extras")
    if not (ROOT / ".git").exists():
        pytest.skip("pre-commit installs hooks from a git repository; this checkout is not one")
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    shown = subprocess.run(["git", "show", f"{rev}:.pre-commit-hooks.yaml"], cwd=ROOT, capture_output=True)
    if shown.returncode != 0:
        pytest.skip("the committed tree has no hooks file yet")
    repo = tmp_path / "content"
    shutil.copytree(EXAMPLES, repo)
    (repo / "events.xml").write_text("")
    config = {"repos": [{"repo": str(ROOT), "rev": rev, "hooks": [
        {"id": "translate-parity", "args": ["detections/", "--events", "events.xml"]}]}]}  # fmt: skip
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "base")
    macro = repo / "macros" / "powershell.yml"
    macro.write_text(macro.read_text() + "\n")
    _git(repo, "add", ".")
    done = _pre_commit(["run", "--files", "macros/powershell.yml"], repo, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 detection(s) to check" in done.stdout or "Passed" in done.stdout

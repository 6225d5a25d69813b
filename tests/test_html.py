"""The HTML reports as a browser draws them: status filter, order, SPL beside Sigma, lazy details.

The page logic is checked in headless Chromium (Debian's `chromium`; `.ci/run` installs it), offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from translator.emit import reports
from translator.workflow import DetectionResult

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def result(name: str, status: str, **extra: object) -> DetectionResult:
    r = DetectionResult(f"{name}.yml", name, name, status, [f"why {name}"] if status != "exact" else [])
    r.rule_yaml = f"title: {name}\n" if status in ("exact", "partial") else None
    r.search = f"index=x {name}=1"
    for k, v in extra.items():
        setattr(r, k, v)
    return r


RESULTS = [
    result("ok", "exact", queries={"splunk": "q ok"}),
    result("half", "partial", queries={"splunk": "q half"}),
    result("broken", "error"),
    result("failing", "exact", target_errors={"splunk": "no"}),
]


def test_errors_and_failures_come_first_and_spl_is_beside_the_rule() -> None:
    page = reports.html_report(RESULTS, ["splunk"])
    order = re.findall(r'data-status="([^"]+)"', page)
    assert order == ["error", "exact target failed", "partial", "exact"]
    assert "<b>Original SPL</b><pre>index=x half=1</pre>" in page and "<b>Sigma rule</b><pre>title: half" in page
    for status in ("exact", "partial", "unsupported", "error", "target failed"):
        assert f'value="{status}"' in page  # a checkbox per status


def test_reasons_are_cut_at_a_word() -> None:
    text = "Invalid field name encountered: ScriptBlockText is not supported by the model of this backend " * 3
    cut = reports.clip(text, 60)
    assert len(cut) <= 60 and cut.endswith("…") and text.startswith(cut[:-1]) and text[len(cut) - 1] == " "


def test_big_reports_keep_details_in_one_compressed_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "LAZY_BYTES", 10)
    page = reports.html_report(RESULTS, ["splunk"])
    assert "id=bodies" in page and "<pre>q ok</pre>" not in page  # bodies only in the block
    assert "why half" in page  # reasons stay searchable


def _chromium(args: list[str]) -> subprocess.CompletedProcess[str]:
    base = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=3000"]  # fmt: skip
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")
@pytest.mark.parametrize("lazy", [False, True])
def test_status_filter_in_a_browser(tmp_path: Path, lazy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if lazy:
        monkeypatch.setattr(reports, "LAZY_BYTES", 10)
    page = tmp_path / "r.html"
    page.write_text(reports.html_report(RESULTS, ["splunk"]))
    dom = _chromium(["--dump-dom", f"file://{page}#status=partial,target%20failed"]).stdout
    shown = re.findall(r'<details class="det" data-status="([^"]+)"(?: style="([^"]*)")?', dom)
    visible = [s for s, style in shown if "none" not in style]
    assert visible == ["exact target failed", "partial"], shown
    assert "2 of 4 shown" in dom
    shot = tmp_path / "r.png"
    done = subprocess.run([str(REPO / "scripts" / "html_screenshot.sh"), str(page), str(shot), "1000x800"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")
def test_lazy_details_open_in_a_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "LAZY_BYTES", 10)
    page = reports.html_report(RESULTS, ["splunk"])
    page = page.replace("filter();\n", "filter();\nsetTimeout(()=>rows.forEach(d=>d.open=true),10);\n", 1)
    path = tmp_path / "r.html"
    path.write_text(page)
    dom = _chromium(["--dump-dom", f"file://{path}"]).stdout
    assert "<pre>q half</pre>" in dom and "index=x ok=1" in dom  # decompressed and shown on opening


def test_screenshot_script_fails_when_it_wrote_nothing(tmp_path: Path) -> None:
    done = subprocess.run([str(REPO / "scripts" / "html_screenshot.sh"), str(tmp_path / "none.html")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0 and "no such file" in done.stderr

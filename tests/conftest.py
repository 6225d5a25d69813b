"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "escu"
EXAMPLES = REPO / "translator" / "examples"
REFERENCE_EXAMPLE = EXAMPLES / "detections" / "endpoint" / "interactive_session_on_remote_endpoint_with_powershell.yml"
REFERENCE_CORPUS = CORPUS / "detections" / "endpoint" / "interactive_session_on_remote_endpoint_with_powershell.yml"


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "macros").is_dir():
        pytest.skip(f"ESCU corpus not found at {CORPUS} (clone with ../shared beside the project)")
    return CORPUS


def detection_yaml(name: str, n: int, search: str, description: str = "Test detection.") -> str:
    """A detection file in the corpus's shape (our own text), for a Sysmon EventID 1 search."""
    return f"""name: {name}
id: 5f2b8c1e-0000-4000-8000-{n:012d}
version: 1
date: '2024-01-01'
author: Test
status: production
type: TTP
description: {description}
data_source:
- Sysmon EventID 1
search: '{search.replace("'", "''")}'
how_to_implement: Sysmon.
known_false_positives: None.
references: []
tags:
  analytic_story:
  - Test
  asset_type: Endpoint
  mitre_attack_id:
  - T1059
  product:
  - Splunk Enterprise
  security_domain: endpoint
"""


@pytest.fixture(autouse=True)
def _own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own folder: the CLI's default outputs (sigma_rules/, outputs/) must
    never land in the checkout, whose folders of those names hold the rule pack."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))  # eval's rule cache stays out of $HOME

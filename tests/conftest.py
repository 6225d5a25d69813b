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

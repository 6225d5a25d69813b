"""The repository's rule pack (sigma_rules/, outputs/) is the corpus as the converter makes it now."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import CORPUS, REPO


@pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpus/escu")
def test_rule_pack_is_current() -> None:
    """Byte for byte: a converter change that alters a rule or a query must come with the regenerated
    pack (python scripts/rule_pack.py), so the change is a reviewable diff."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "rule_pack.py"), "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_pack_readmes_say_where_it_comes_from() -> None:
    for folder in ("sigma_rules", "outputs"):
        text = (REPO / folder / "README.md").read_text()
        assert "python scripts/rule_pack.py" in text and "Apache License, Version 2.0" in text
        assert "ESCU app version" in text and "sha256" in text
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License")

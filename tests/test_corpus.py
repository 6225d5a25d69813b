"""Whole-corpus checks over ../shared/corpus/escu (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

from translator.content import iter_detection_files, load_content, load_detection
from translator.errors import MacroError
from translator.spl import MacroExpander, parse, print_pipeline

# macros ESCU calls but never defines: these searches cannot be expanded
UNDEFINED_MACROS = {"get_asset"}


def test_every_detection_parses_and_round_trips(corpus: Path) -> None:
    content = load_content(corpus)
    expander = MacroExpander(content.macros)
    files = list(iter_detection_files(corpus))
    assert len(files) == 1613  # non-deprecated detections
    failures: list[str] = []
    undefined: list[str] = []
    for path in files:
        det = load_detection(path)
        try:
            exp = expander.expand(det.search, path.name)
        except MacroError as exc:
            if exc.name in UNDEFINED_MACROS:
                undefined.append(path.name)
                continue
            failures.append(f"{path.name}: {exc}")
            continue
        try:
            tree = parse(exp.text, path.name, exp.location)
        except Exception as exc:  # report every failure, not just the first
            failures.append(f"{path.name}: {exc}")
            continue
        if parse(print_pipeline(tree)) != tree:
            failures.append(f"{path.name}: printer round trip differs")
    assert failures == []
    assert undefined == ["excessive_dns_failures.yml"]

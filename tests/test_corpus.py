"""Whole-corpus checks over ../shared/corpus/escu (skipped when it is absent)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from translator.content import iter_detection_files, load_content, load_detection
from translator.errors import MacroError
from translator.spl import MacroExpander, parse, print_pipeline
from translator.workflow import ConvertOptions, convert_many, summary

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


def test_corpus_converts_offline_with_an_honest_report(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every detection gets a status; pySigma accepts every rule; nothing touches the network."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access during conversion")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    files = list(iter_detection_files(corpus))
    items = [(p, p.relative_to(corpus)) for p in files]
    results = convert_many(items, corpus, ConvertOptions(write=False))
    counts = summary(results)
    assert counts["total"] == len(files) == 1613
    errors = {Path(r.file).name: r.reasons for r in results if r.status == "error"}
    assert list(errors) == ["excessive_dns_failures.yml"], errors  # the undefined `get_asset` macro
    for r in results:
        if r.status in ("exact", "partial"):
            assert r.rule_yaml is not None, r.file
        else:
            assert r.reasons, r.file  # every detection without a rule says why
        if r.status == "partial":
            assert any("broader" in x for x in r.reasons), (r.file, r.reasons)
    # floors from the figures docs/coverage.md quotes: a regression shows up here
    assert counts["exact"] >= 1168
    assert counts["exact"] + counts["partial"] >= 0.9 * counts["total"]


def test_corpus_parity_on_the_samples_and_generated_events(corpus: Path, tmp_path: Path) -> None:
    """Every detection gets a parity status; the floors docs/parity.md quotes; a Sigma rule is never narrower,
    and an exact one never differs, on the samples or on the events generated from each search."""
    samples = corpus.parent / "evtx-attack-samples"
    if not samples.is_dir():
        pytest.skip(f"EVTX samples not found at {samples}")
    from translator.engine.parity import parity
    from translator.workflow import content_loader

    items = [(p, p.relative_to(corpus)) for p in iter_detection_files(corpus)]
    run = parity(items, content_loader(corpus), [samples], generate_to=tmp_path / "generated.xml")
    s = run.summary()
    assert s["total"] == 1613 and run.events > 8255 and s["error"] == 0, s
    exact_differ = [r.file for r in run.results if r.conversion == "exact" and r.status == "differ"]
    assert exact_differ == []
    g = run.generated_summary()
    assert g["checked"] >= 1100, g
    evaluable = s["equal"] + s["differ"]
    assert evaluable >= 0.75 * s["total"], s
    assert s["equal"] >= 1100, s
    assert s["original_fired"] >= 150, s
    for r in run.results:
        if r.status == "not_evaluable":
            assert r.reasons, r.file
        if r.status == "differ":
            # only a partial conversion may differ, and only by matching more (broader, never narrower)
            assert r.conversion == "partial" and not r.only_original, (r.file, r.only_original)

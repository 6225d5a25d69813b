"""`translate eval`: load Sigma rules, stream events once, report each rule's matches.

Each rule is compiled once; each event is offered to every rule whose
logsource it belongs to. A rule that does not load in pySigma, or uses
something the evaluator does not implement, is reported with the reason and
the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from translator.engine.correlate import Correlator
from translator.engine.logsources import Selector, selector_for
from translator.engine.sigma_eval import CompiledRule, NotEvaluable, compile_rule
from translator.events import Event, Problem, read_events


@dataclass
class RuleResult:
    source: str  # the file the rule came from
    id: str
    title: str
    matches: list[str] = field(default_factory=list)
    error: str | None = None  # why the rule was not evaluated

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "count": len(self.matches), "matches": self.matches}
        if self.error is not None:
            out["error"] = self.error
        out["file"] = self.source
        return out


@dataclass
class EvalRun:
    rules: list[RuleResult] = field(default_factory=list)
    events: int = 0
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": [r.to_json() for r in self.rules],
            "summary": {
                "rules": len(self.rules),
                "not_evaluated": sum(1 for r in self.rules if r.error is not None),
                "events": self.events,
                "unreadable": len(self.problems),
            },
            "problems": [{"ref": p.ref, "message": p.message} for p in self.problems],
        }


def rule_files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yml", ".yaml")))
        else:
            out.append(p)
    return out


@dataclass
class Loaded:
    runnable: list[tuple[RuleResult, CompiledRule, Selector]] = field(default_factory=list)
    failed: list[RuleResult] = field(default_factory=list)
    correlations: list[tuple[RuleResult, Correlator]] = field(default_factory=list)


def load_rules(paths: Iterable[Path]) -> Loaded:
    """Rules to run, correlations over them, and rules reported as not evaluated."""
    loaded = Loaded()
    runnable, failed = loaded.runnable, loaded.failed
    for path in rule_files(paths):
        try:
            collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SigmaError) as exc:
            failed.append(RuleResult(str(path), "", path.name, error=f"cannot load: {exc}"))
            continue
        for err in collection.errors:
            failed.append(RuleResult(str(path), "", path.name, error=f"pySigma: {err}"))
        for rule in collection.rules:
            result = RuleResult(str(path), str(rule.id or ""), rule.title or path.name)
            if isinstance(rule, SigmaCorrelationRule):
                try:
                    loaded.correlations.append((result, Correlator(rule)))
                except NotEvaluable as exc:
                    result.error = str(exc)
                    failed.append(result)
                continue
            if not isinstance(rule, SigmaRule):
                result.error = f"{type(rule).__name__} is not evaluated"
                failed.append(result)
                continue
            try:
                compiled = compile_rule(rule)
            except (NotEvaluable, SigmaError) as exc:
                result.error = str(exc)
                failed.append(result)
                continue
            runnable.append((result, compiled, selector_for(rule)))
    return loaded


def evaluate(
    rule_paths: Iterable[Path], event_paths: Iterable[Path], progress: Callable[[int], None] | None = None
) -> EvalRun:
    loaded = load_rules(rule_paths)
    # which correlations each base rule feeds
    feeds: dict[int, list[tuple[RuleResult, Correlator]]] = {}
    for result, correlator in loaded.correlations:
        for ref in correlator.rule.rules:
            feeds.setdefault(id(ref.rule), []).append((result, correlator))
    run = EvalRun()
    for item in read_events(event_paths):
        if isinstance(item, Problem):
            run.problems.append(item)
            continue
        assert isinstance(item, Event)
        run.events += 1
        for result, compiled, selector in loaded.runnable:
            view = selector.view(item.fields)
            if view is None or not compiled.matches(view):
                continue
            result.matches.append(item.ref)
            for corr_result, correlator in feeds.get(id(compiled.rule), ()):
                if corr_result.error is None:
                    try:
                        correlator.offer(compiled.rule, item.ref, view)
                    except NotEvaluable as exc:
                        corr_result.error = str(exc)
        if progress is not None and run.events % 5000 == 0:
            progress(run.events)
    for result, correlator in loaded.correlations:
        if result.error is None:
            result.matches = correlator.matches()
    run.rules = [r for r, _, _ in loaded.runnable] + [r for r, _ in loaded.correlations] + loaded.failed
    return run

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


def load_rules(paths: Iterable[Path]) -> tuple[list[tuple[RuleResult, CompiledRule, Selector]], list[RuleResult]]:
    """(runnable rules, rules reported as not evaluated)."""
    runnable: list[tuple[RuleResult, CompiledRule, Selector]] = []
    failed: list[RuleResult] = []
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
                result.error = "correlation rules are not evaluated yet"
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
    return runnable, failed


def evaluate(
    rule_paths: Iterable[Path], event_paths: Iterable[Path], progress: Callable[[int], None] | None = None
) -> EvalRun:
    runnable, failed = load_rules(rule_paths)
    run = EvalRun()
    for item in read_events(event_paths):
        if isinstance(item, Problem):
            run.problems.append(item)
            continue
        assert isinstance(item, Event)
        run.events += 1
        for result, compiled, selector in runnable:
            view = selector.view(item.fields)
            if view is not None and compiled.matches(view):
                result.matches.append(item.ref)
        if progress is not None and run.events % 5000 == 0:
            progress(run.events)
    run.rules = [r for r, _, _ in runnable] + failed
    return run

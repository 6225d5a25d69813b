"""`translate eval`: load Sigma rules, stream events once, report each rule's matches.

Each rule is compiled once and filed by the channels and event ids it can
match (``dispatch``); each event is offered only to the rules filed where it
belongs. Files can be scanned in several processes (``--jobs``): results and
their order do not change. A rule that does not load in pySigma, or uses
something the evaluator does not implement, is reported with the reason and
the others still run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from translator.data import logsource_overrides
from translator.engine import rule_cache
from translator.engine.correlate import Correlator
from translator.engine.dispatch import Dispatch
from translator.engine.logsources import Flat, Selector, selector_for, set_overrides
from translator.engine.regexes import RegexTimeout
from translator.engine.sigma_eval import TREE, CompiledRule, NotEvaluable, compile_rule
from translator.errors import internal_error
from translator.events import Event, Problem
from translator.events.readers import event_files, read_file


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


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: rule loading was a third of a run


def _parse(data: bytes) -> SigmaCollection:
    """A rule file's collection, each rule with its condition tree already built (kept in the cache
    with it: building the tree is half of compiling a rule)."""
    docs = list(yaml.load_all(data.decode("utf-8"), Loader=_YAML_LOADER))
    collection = SigmaCollection.from_dicts([d for d in docs if d is not None])
    for rule in collection.rules:
        if isinstance(rule, SigmaRule):
            with contextlib.suppress(SigmaError):  # compile_rule reports it
                if len(rule.detection.parsed_condition) == 1:
                    rule.__dict__[TREE] = rule.detection.parsed_condition[0].parse()
    return collection


def load_rules(paths: Iterable[Path], cache: Path | None = None) -> Loaded:
    """Rules to run, correlations over them, and rules reported as not evaluated. ``cache``: a folder
    of parsed rule files kept between runs (:mod:`translator.engine.rule_cache`; None: parse all)."""
    loaded = Loaded()
    for path in rule_files(paths):
        try:
            collection = rule_cache.load(path, cache, _parse)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, SigmaError) as exc:
            loaded.failed.append(RuleResult(str(path), "", path.name, error=f"cannot load: {exc}"))
            continue
        add_collection(loaded, collection, str(path))
    return loaded


def add_collection(loaded: Loaded, collection: SigmaCollection, source: str) -> list[RuleResult]:
    """Compile a collection's rules into ``loaded``; returns their results (in the collection's order)."""
    added: list[RuleResult] = []
    for err in collection.errors:
        result = RuleResult(source, "", Path(source).name, error=f"pySigma: {err}")
        loaded.failed.append(result)
        added.append(result)
    for rule in collection.rules:
        result = RuleResult(source, str(rule.id or ""), rule.title or Path(source).name)
        added.append(result)
        if isinstance(rule, SigmaCorrelationRule):
            try:
                loaded.correlations.append((result, Correlator(rule)))
            except NotEvaluable as exc:
                result.error = str(exc)
                loaded.failed.append(result)
            except Exception as exc:  # a bug must not cost the other rules; the result names it
                result.error = internal_error("the correlation evaluator", exc)
                loaded.failed.append(result)
            continue
        if not isinstance(rule, SigmaRule):
            result.error = f"{type(rule).__name__} is not evaluated"
            loaded.failed.append(result)
            continue
        try:
            compiled = compile_rule(rule)
        except (NotEvaluable, SigmaError) as exc:
            result.error = str(exc)
            loaded.failed.append(result)
            continue
        except Exception as exc:
            result.error = internal_error("the Sigma evaluator", exc)
            loaded.failed.append(result)
            continue
        loaded.runnable.append((result, compiled, selector_for(rule)))
    return added


@dataclass
class FilePart:
    """What scanning one event file found: rule matches by rule index, and hits correlations need."""

    events: int = 0
    problems: list[Problem] = field(default_factory=list)
    matches: list[tuple[int, str]] = field(default_factory=list)  # (runnable index, event ref)
    hits: list[tuple[int, str, Flat]] = field(default_factory=list)  # the same, with the event, for correlations
    failures: dict[int, str] = field(default_factory=dict)  # runnable index -> the error that stopped the rule


class Scanner:
    """The compiled rules filed for dispatch; scans one file at a time (also inside a worker process)."""

    def __init__(self, loaded: Loaded) -> None:
        self.dispatch: Dispatch[int] = Dispatch()
        fed = {id(ref.rule) for _, c in loaded.correlations for ref in c.rule.rules}
        self.feeds_correlation = [id(compiled.rule) in fed for _, compiled, _ in loaded.runnable]
        for index, (_, compiled, selector) in enumerate(loaded.runnable):
            self.dispatch.add(index, compiled, selector)

    def scan(self, path: Path) -> FilePart:
        return self.scan_items(read_file(path))

    def scan_items(self, items: Iterable[Event | Problem]) -> FilePart:
        part = FilePart()
        feeds = self.feeds_correlation
        for item in items:
            if isinstance(item, Problem):
                part.problems.append(item)
                continue
            part.events += 1
            for index, compiled, view in self.dispatch.candidates(item.fields):
                if index in part.failures:
                    continue  # stopped on an earlier event: not run again
                try:
                    matched = compiled.matches(view)
                except RegexTimeout as exc:  # the rule's own pattern: the rule is not evaluated, the scan goes on
                    part.failures[index] = f"{item.ref}: {exc}"
                    continue
                except Exception as exc:  # one rule failing on one event must not stop the scan
                    part.failures.setdefault(index, internal_error(f"the Sigma evaluator on {item.ref}", exc))
                    continue
                if matched:
                    part.matches.append((index, item.ref))
                    if feeds[index]:
                        part.hits.append((index, item.ref, view))
        return part


_worker: Scanner | None = None


def _start_worker(rule_paths: list[Path], logsources: dict[str, Any] | None, cache: Path | None) -> None:
    global _worker
    if logsources:
        set_overrides(logsources)
    _worker = Scanner(load_rules(rule_paths, cache))


def _scan_in_worker(path: Path) -> FilePart:
    assert _worker is not None
    return _worker.scan(path)


def evaluate(
    rule_paths: Iterable[Path],
    event_paths: Iterable[Path],
    progress: Callable[[int], None] | None = None,
    jobs: int = 1,
    cache: Path | None = None,
) -> EvalRun:
    """Every rule over every event. ``jobs`` > 1 scans files in that many processes (same results, same order).
    ``cache``: the parsed-rule cache folder (None: parse every file)."""
    rule_paths = rule_files(rule_paths)
    loaded = load_rules(rule_paths, cache)
    files = list(event_files(event_paths))
    run = EvalRun()
    merge = Merger(loaded)
    with contextlib.ExitStack() as stack:
        if jobs > 1 and len(files) > 1:
            pool = stack.enter_context(
                multiprocessing.get_context("spawn").Pool(
                    jobs, initializer=_start_worker, initargs=(rule_paths, logsource_overrides(), cache)
                )
            )
            # in file order (deterministic); a few files per task so small files do not wait on the pipe
            parts: Iterable[FilePart] = pool.imap(_scan_in_worker, files, chunksize=8)
        else:
            scanner = Scanner(loaded)
            parts = (scanner.scan(f) for f in files)
        for part in parts:
            run.events += part.events
            run.problems.extend(part.problems)
            merge.add(part)
            if progress is not None:
                progress(run.events)
    merge.finish()
    run.rules = [r for r, _, _ in loaded.runnable] + [r for r, _ in loaded.correlations] + loaded.failed
    return run


class Merger:
    """Folds scanned parts into the rules' results and feeds correlations their base rules' hits."""

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.feeds: dict[int, list[tuple[RuleResult, Correlator]]] = {}  # base rule -> correlations it feeds
        for result, correlator in loaded.correlations:
            for ref in correlator.rule.rules:
                self.feeds.setdefault(id(ref.rule), []).append((result, correlator))

    def add(self, part: FilePart) -> None:
        runnable = self.loaded.runnable
        for index, message in part.failures.items():
            runnable[index][0].error = runnable[index][0].error or message
        for index, ref in part.matches:
            runnable[index][0].matches.append(ref)
        for index, ref, view in part.hits:
            base = runnable[index][1].rule
            for corr_result, correlator in self.feeds.get(id(base), ()):
                if corr_result.error is None:
                    try:
                        correlator.offer(base, ref, view)
                    except NotEvaluable as exc:
                        corr_result.error = str(exc)
                    except Exception as exc:
                        corr_result.error = internal_error("the correlation evaluator", exc)

    def finish(self) -> None:
        for result, correlator in self.loaded.correlations:
            if result.error is None:
                result.matches = correlator.matches()

"""Parity: the events behind the original search's results vs the events the Sigma rule matched.

For each detection: convert it (the same workflow as ``translate convert``),
run the original SPL on the events with the executor (each result row knows its
events), run the Sigma rule and its correlation with the evaluator, and compare
the two sets of event references. ``equal`` when they are the same set and not
empty, ``untested`` when both ran and neither matched any event (no evidence),
``differ`` (with the events only one side matched and the values of the fields
that decided) when not, ``not_evaluable`` (with the reason) when either side
cannot be run: no Sigma rule, or something the executor does not model;
``error`` when a step (convert, generate, execute, evaluate) failed on a bug:
the reason names the step and the exception, and the run goes on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import yaml
from sigma.rule import SigmaRule

from translator.content import Content, load_detection
from translator.emit import targets as tg
from translator.emit.elastic_fields import ElasticView
from translator.emit.writer import write_atomic
from translator.engine.elastic import DocSet, Rejected
from translator.engine.evaluate import Loaded, Merger, RuleResult, Scanner, add_collection
from translator.engine.generate import generate, json_path
from translator.engine.sigma_eval import NotEvaluable
from translator.engine.spl_exec import EventSet, run
from translator.engine.sql_targets import DuckDbTables, SqliteTables, where_clause
from translator.errors import TranslatorError, internal_error
from translator.events import Event, Problem, read_events
from translator.sigma.rule import collection_of, detection_fields
from translator.spl import parse
from translator.workflow import ConvertOptions, DetectionResult, convert_detection, expand_and_parse

STATUSES = ("equal", "differ", "untested", "not_evaluable", "error")
_SHOWN = 20  # events listed per side in a differ

# targets whose queries run on Elastic's view of the events (translator.engine.elastic)
ELASTIC_TARGETS = ("lucene", "opensearch_lucene", "eql", "esql")


@dataclass
class ParityResult:
    file: str
    id: str = ""
    name: str = ""
    status: str = "not_evaluable"
    conversion: str = ""  # the conversion status (exact, partial, ...)
    original_matches: int = 0
    sigma_matches: int = 0
    only_original: list[str] = field(default_factory=list)
    only_sigma: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    explain: dict[str, dict[str, Any]] = field(default_factory=dict)  # event ref -> deciding field values
    data_sources: tuple[str, ...] = field(default=(), repr=False)  # the detection's (pick data-model feeds)
    alert: tuple[str, str] | None = field(default=None, repr=False)  # a saved search's alert condition
    # per target whose emitted query runs locally: {"status", "matches", "only_query", "only_sigma", "reason"}
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    generated: list[str] = field(default_factory=list)  # refs of events made for this detection (positive first)
    generated_check: str = ""  # on its own generated events: equal / differ ("" when not checked)
    errors: list[str] = field(default_factory=list, repr=False)  # internal failures of its steps

    def fail(self, reason: str) -> None:
        """Record a step's internal failure: the detection's status becomes ``error``."""
        self.errors.append(reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "conversion": self.conversion,
            "original_matches": self.original_matches,
            "sigma_matches": self.sigma_matches,
            "only_original": self.only_original,
            "only_sigma": self.only_sigma,
            "reasons": self.reasons,
            "explain": self.explain,
            "targets": self.targets,
            "generated": self.generated,
            "generated_check": self.generated_check,
        }


@dataclass
class ParityRun:
    results: list[ParityResult] = field(default_factory=list)
    events: int = 0
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        out = {"total": len(self.results), **{s: 0 for s in STATUSES}}
        for r in self.results:
            out[r.status] += 1
        out["original_fired"] = sum(1 for r in self.results if r.status != "not_evaluable" and r.original_matches)
        return out

    def generated_summary(self) -> dict[str, int]:
        """With --generate: detections given events, checked on them (the original selects its own
        positive and the detection is evaluable), and equal on them."""
        return {
            "with_events": sum(1 for r in self.results if r.generated),
            "checked": sum(1 for r in self.results if r.generated_check),
            "equal": sum(1 for r in self.results if r.generated_check == "equal"),
        }

    def target_summary(self) -> dict[str, dict[str, int]]:
        """Per target whose query ran locally: how many detections' queries matched what the rule matched."""
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            for name, check in r.targets.items():
                counts = out.setdefault(name, {s: 0 for s in STATUSES})
                counts[check["status"]] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "targets": self.target_summary(),
            "generated": self.generated_summary(),
            "events": self.events,
            "detections": [r.to_json() for r in self.results],
            "problems": [{"ref": p.ref, "message": p.message} for p in self.problems],
        }


def parity(
    items: list[tuple[Path, Path]],
    content_for: Callable[[Path], Content],
    event_paths: Iterable[Path],
    progress: Callable[[int, int], None] | None = None,
    sigma_dir: Path | None = None,
    generate_to: Path | None = None,
) -> ParityRun:
    """Parity for each (detection, relative path). ``sigma_dir``: check the Sigma rules there
    (``<sigma_dir>/<relative path>.yml``, the layout ``convert --rules-out`` writes, perhaps
    edited since) instead of converting afresh. ``generate_to``: also synthesize events from each
    original search (see :mod:`translator.engine.generate`), write them there and include them."""
    out = ParityRun()
    own: dict[str, list[str]] = {}
    failed_generation: dict[str, str] = {}
    if generate_to is not None:
        own, failed_generation = _generate(items, content_for, generate_to)
        event_paths = [*event_paths, generate_to, json_path(generate_to)]
    events: list[tuple[str, dict[str, Any]]] = []
    for item in read_events(event_paths):
        if isinstance(item, Problem):
            out.problems.append(item)
        else:
            assert isinstance(item, Event)
            events.append((item.ref, item.fields))
    out.events = len(events)
    by_ref = dict(events)
    eventset = EventSet.of(events)

    # the Sigma side: every converted rule at once, in one pass over the events
    loaded = Loaded()
    pending: list[tuple[ParityResult, Any, Content, DetectionResult | None, list[RuleResult]]] = []
    opts = ConvertOptions(write=False)
    for path, rel in items:
        res = ParityResult(str(path))
        if str(path) in failed_generation:
            res.fail(failed_generation[str(path)])
        given = sigma_dir / rel.with_suffix(".yml") if sigma_dir is not None else None
        try:
            pending.append(_prepare(res, path, rel, content_for(path), opts, loaded, given))
        except Exception as exc:  # a bug must not cost the rest of the run; the report names it
            res.fail(internal_error("the conversion", exc))
            pending.append((res, None, content_for(path), None, []))
    scanner = Scanner(loaded)
    tables = [SqliteTables(events), DuckDbTables(events)]
    elastic = DocSet.of(events)
    for t in tables:
        t.plan([compiled.rule for _r, compiled, _s in loaded.runnable])
    merger = Merger(loaded)
    merger.add(scanner.scan_items(Event(ref, fields) for ref, fields in events))
    merger.finish()

    for done, (res, pipeline, content, converted, rule_results) in enumerate(pending, 1):
        res.generated = own.get(res.file, [])
        if not (res.status == "not_evaluable" and res.reasons) and not res.errors:
            try:
                _compare(res, pipeline, content, eventset, rule_results, converted, by_ref, res.data_sources)
                _check_targets(res, converted, rule_results, content, eventset, tables, elastic)
            except Exception as exc:
                res.fail(internal_error("the comparison", exc))
        if res.errors:
            res.status = "error"
            res.reasons = [*res.errors, *res.reasons]
        out.results.append(res)
        if progress:
            progress(done, len(pending))
    return out


def _generate(
    items: list[tuple[Path, Path]], content_for: Callable[[Path], Content], path: Path
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Write generated events for every detection: Windows records to ``path`` (XML lines), other
    products' events beside it (:func:`json_path`, JSON lines). Returns detection file -> its event
    refs, and detection file -> the internal error that stopped its generation (the others go on)."""
    files: dict[str, tuple[Path, list[str]]] = {"windows": (path, []), "json": (json_path(path), [])}
    own: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for det_path, _rel in items:
        try:
            det = load_detection(det_path)
            pipeline = expand_and_parse(det.search, content_for(det_path), det_path.name)
        except TranslatorError:
            continue
        made: list[tuple[str, str]] = []  # (kind, line), positive first
        try:
            for g in generate(pipeline, tuple(det.data_sources), content_for(det_path).lookups):
                record = len(files[g.kind][1]) + sum(1 for kind, _ in made if kind == g.kind) + 1
                made.append((g.kind, g.line(record)))
        except Exception as exc:  # a bug must not cost the other detections their events
            failed[str(det_path)] = internal_error("the event generator", exc)
            continue
        for kind, line in made:
            target, lines = files[kind]
            lines.append(line)
            own.setdefault(str(det_path), []).append(f"{target}#{len(lines)}")
    for target, lines in files.values():
        write_atomic(target, "\n".join(lines) + "\n" if lines else "")
    return own, failed


def _prepare(
    res: ParityResult,
    path: Path,
    rel: Path,
    content: Content,
    opts: ConvertOptions,
    loaded: Loaded,
    given: Path | None = None,
) -> tuple[ParityResult, Any, Content, DetectionResult | None, list[RuleResult]]:
    try:
        det = load_detection(path)
    except TranslatorError as exc:
        res.reasons.append(str(exc))
        return res, None, content, None, []
    res.id, res.name, res.data_sources = det.id, det.name, tuple(det.data_sources)
    alert = det.raw.get("alert_condition")
    res.alert = (str(alert[0]), str(alert[1])) if alert else None
    try:
        pipeline = expand_and_parse(det.search, content, path.name)
    except TranslatorError as exc:
        res.reasons.append(f"the search does not parse: {exc}")
        return res, None, content, None, []
    converted = convert_detection(det, content, rel, opts)
    res.conversion = converted.status
    if given is not None:
        try:
            converted.rule_yaml = given.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            res.reasons.append(f"no Sigma rule to check: {given}: {exc}")
            return res, pipeline, content, converted, []
    if converted.rule_yaml is None:
        res.reasons.append(f"no Sigma rule ({converted.status}): " + "; ".join(converted.reasons[:2]))
        return res, pipeline, content, converted, []
    try:
        collection = collection_of(converted.rule_yaml)
    except Exception as exc:  # YAML or pySigma errors in a given rule file
        res.reasons.append(f"the Sigma rule does not load: {exc}")
        return res, pipeline, content, converted, []
    rule_results = add_collection(loaded, collection, str(given or path))
    return res, pipeline, content, converted, rule_results


def _compare(
    res: ParityResult,
    pipeline: Any,
    content: Content,
    events: EventSet,
    rule_results: list[RuleResult],
    converted: DetectionResult | None,
    by_ref: dict[str, dict[str, Any]],
    data_sources: tuple[str, ...] = (),
) -> None:
    final = rule_results[-1] if rule_results else None  # the correlation when there is one, else the base rule
    failed = next((r.error for r in rule_results if r.error and r.error.startswith("internal error")), None)
    if failed is not None:  # a bug in the evaluator, not a rule it does not model
        res.fail(failed)
        return
    if final is None or final.error is not None:
        res.reasons.append(f"the Sigma rule is not evaluated: {final.error if final else 'no rule'}")
        return
    try:
        rows = run(pipeline, events, content, data_sources)
    except (NotEvaluable, TranslatorError) as exc:  # TranslatorError: content it needs (a lookup's CSV) is missing
        res.reasons.append(f"the original is not evaluated: {exc}")
        return
    except Exception as exc:  # a bug must not cost the rest of the run; the report names it
        res.fail(internal_error("the SPL executor", exc))
        return
    if res.alert is not None and not _alert_fires(len(rows), *res.alert):
        rows = []  # the saved search's alert condition: too few results, no alert
    original = set().union(*(r.refs for r in rows)) if rows else set()
    sigma = set(final.matches)
    res.original_matches, res.sigma_matches = len(original), len(sigma)
    if res.generated and res.generated[0] in original:  # the original selects its own positive: checked
        mine = set(res.generated)
        res.generated_check = "equal" if original & mine == sigma & mine else "differ"
    only_o, only_s = sorted(original - sigma), sorted(sigma - original)
    res.status = "equal" if not only_o and not only_s else "differ"
    if not original and not sigma:
        res.status = "untested"  # both ran and neither matched anything: no evidence either way
    res.only_original, res.only_sigma = only_o[:_SHOWN], only_s[:_SHOWN]
    if res.status == "differ":
        if len(only_o) > _SHOWN or len(only_s) > _SHOWN:
            res.reasons.append(
                f"{len(only_o)} event(s) only original, {len(only_s)} only Sigma (first {_SHOWN} listed)"
            )
        if converted is not None and converted.status == "partial":
            res.reasons.append(
                "the conversion is partial: the Sigma rule is broader by design ("
                + "; ".join(converted.reasons[:2])
                + ")"
            )
        deciding = _rule_fields(converted)
        for ref in [*res.only_original[:5], *res.only_sigma[:5]]:
            fields = by_ref.get(ref, {})
            res.explain[ref] = {f: fields.get(f) for f in deciding if f in fields} | {
                "Channel": fields.get("Channel"),
                "EventID": fields.get("EventID"),
            }


def _alert_fires(results: int, op: str, quantity: str) -> bool:
    n = int(quantity)
    return {">": results > n, ">=": results >= n, "<": results < n, "=": results == n, "!=": results != n}.get(op, True)


def _base_doc(converted: DetectionResult | None, rule_results: list[RuleResult]) -> list[dict[str, Any]]:
    """The base rule's document (no correlation), when the rule was evaluated; else []."""
    if converted is None or converted.rule_yaml is None or not rule_results or rule_results[0].error is not None:
        return []
    docs = [d for d in yaml.safe_load_all(converted.rule_yaml) if d]
    return [d for d in docs if "correlation" not in d][:1]


def _emitted(base: list[dict[str, Any]], target: str) -> str:
    """The query ``target`` emits for the base rule, with its default pipelines for the rule's product."""
    product = str((base[0].get("logsource") or {}).get("product", ""))
    return tg.convert(base, tg.default_target(target, product))


def _target_check(
    res: ParityResult, target: str, rule_results: list[RuleResult], run_query: Callable[[], set[str]]
) -> None:
    """Compare what a target's emitted query selects (``run_query``) with the base rule's matches."""
    check: dict[str, Any] = {"status": "not_evaluable"}
    res.targets[target] = check
    try:
        got = run_query()
    except (NotEvaluable, TranslatorError, ValueError, tg.ConversionFailed, sqlite3.Error, duckdb.Error) as exc:
        check["reason"] = str(exc)
        return
    except Rejected as exc:  # Elasticsearch would refuse the query: it never fires, which differs
        check.update(status="differ", reason=f"Elasticsearch refuses the query: {exc}", matches=0)
        check.update(only_query=[], only_sigma=sorted(rule_results[0].matches)[:_SHOWN])
        return
    except Exception as exc:  # the backend refusing the rule (|cased, ...): its reason
        check["reason"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return
    want = set(rule_results[0].matches)
    check.update(
        status="equal" if got == want else "differ",
        matches=len(got),
        only_query=sorted(got - want)[:_SHOWN],
        only_sigma=sorted(want - got)[:_SHOWN],
    )


def _check_targets(
    res: ParityResult,
    converted: DetectionResult | None,
    rule_results: list[RuleResult],
    content: Content,
    events: EventSet,
    tables: list[SqliteTables],
    elastic: DocSet | None = None,
) -> None:
    """Run the base rule's emitted queries on the events where a local engine can: the Splunk query
    through the SPL executor, the sqlite and duckdb backends' SQL in SQLite and DuckDB (see
    :mod:`translator.engine.sql_targets`), the Lucene, EQL and ES|QL queries on Elastic's view of
    the Windows events (:mod:`translator.engine.elastic`).

    This checks the last hop (the backends and their default pipelines) on the same events.
    """
    base = _base_doc(converted, rule_results)
    if not base:
        return

    def splunk() -> set[str]:
        rows = run(parse(_emitted(base, "splunk"), "splunk query"), events, content)
        return set().union(*(r.refs for r in rows)) if rows else set()

    rule = collection_of(base).rules[0]  # loaded once already (its result has no error): it parses
    assert isinstance(rule, SigmaRule)

    def sql(engine: SqliteTables) -> set[str]:
        return engine.matches(rule, where_clause(_emitted(base, engine.target)))

    def elastic_query(target: str) -> set[str]:
        if not ElasticView().match(rule):
            product = str((base[0].get("logsource") or {}).get("product", ""))
            raise NotEvaluable(f"no Elastic view of these {product} events (no integration in data/elastic.yml)")
        assert elastic is not None
        unseen = set(rule_results[0].matches) - elastic.refs
        if unseen:  # the rule matched events that are not event-log records (JSON from scripted inputs)
            raise NotEvaluable(f"{len(unseen)} matched event(s) have no Elastic view (not event-log records)")
        return elastic.run(target, _emitted(base, target))

    _target_check(res, "splunk", rule_results, splunk)
    for engine in tables:
        _target_check(res, engine.target, rule_results, partial(sql, engine))
    if elastic is not None:
        for target in ELASTIC_TARGETS:
            _target_check(res, target, rule_results, partial(elastic_query, target))


def _rule_fields(converted: DetectionResult | None) -> list[str]:
    """The fields the Sigma rule tests (the values that decided, on both sides)."""
    if converted is None or converted.rule_yaml is None:
        return []
    names: list[str] = []
    for rule in collection_of(converted.rule_yaml).rules:
        names += [f for f in detection_fields(rule) if f not in names]
    return names

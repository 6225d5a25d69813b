"""One detection (or a batch) from ESCU YAML to Sigma rule and queries.

Each step is a pure function from the previous step's result; this module
strings them together, turns user errors into per-detection statuses, and
writes files. The CLI only parses arguments and prints.
"""

from __future__ import annotations

import multiprocessing
import signal
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from sigma.exceptions import SigmaError

from translator.content import Content, Detection, find_content_root, load_content, load_detection
from translator.content.schedule import Schedule
from translator.data import logsource_overrides, set_logsource_overrides
from translator.emit import targets as tg
from translator.emit.writer import write_atomic
from translator.errors import TranslatorError, internal_error
from translator.sigma.convert import ERROR, RuleDraft, convert_pipeline
from translator.sigma.metadata import sigma_metadata
from translator.sigma.rule import alias_cases, assemble, assemble_correlation, load_rule, rule_name, to_yaml, validate
from translator.spl import MacroExpander, ast, parse
from translator.spl.macros import expand_eventtypes

STATUSES = ("exact", "partial", "unsupported", "error")


@dataclass
class ConvertOptions:
    targets: list[str] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)  # replace the defaults when given
    format: str = "default"
    rules_out: Path = Path("sigma_rules")
    out: Path = Path("outputs")
    write: bool = True
    write_queries: bool = True  # False: queries only in the results (one detection printed to stdout)
    logsources: dict[str, Any] = field(default_factory=dict)  # the user's mappings, for worker processes


@dataclass
class DetectionResult:
    file: str
    id: str = ""
    name: str = ""
    status: str = ERROR
    reasons: list[str] = field(default_factory=list)
    sigma: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    target_errors: dict[str, str] = field(default_factory=dict)
    validation: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)  # what the original outputs per result, as Sigma names
    family: str = ""  # raw | tstats | other ("" when the search does not parse)
    group: str = ""  # the data model, Sigma logsource or first command, for summaries
    loaded: bool = True  # False when the input itself could not be read
    rule_yaml: str | None = field(default=None, repr=False)
    queries: dict[str, str] = field(default_factory=dict, repr=False)
    search: str = field(default="", repr=False)  # the original SPL as written (the HTML report shows it)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("loaded", "rule_yaml", "queries", "search"):
            d.pop(k)
        return d


def expand_and_parse(search: str, content: Content, origin: str) -> ast.Pipeline:
    expansion = MacroExpander(content.macros).expand(search, origin)
    pipeline = parse(expansion.text, origin, expansion.location)
    return expand_eventtypes(pipeline, _eventtype_searches(content)) if content.eventtypes else pipeline


def _eventtype_searches(content: Content) -> dict[str, ast.SearchExpr]:
    """The content's eventtypes, each parsed once (macros expanded); one that does not parse is left out."""
    cached = content.parsed.get("eventtypes")
    if cached is None:
        cached = {}
        for name, text in content.eventtypes.items():
            origin = f"eventtype {name}"
            try:
                expansion = MacroExpander(content.macros).expand(text, origin)
                first = parse(expansion.text, origin, expansion.location).commands[0]
            except TranslatorError as exc:
                content.problems.append(str(exc))
                continue
            if isinstance(first, ast.SearchCommand) and first.expr is not None:
                cached[name] = first.expr
        content.parsed["eventtypes"] = cached
    return cached


def build_docs(draft: RuleDraft, meta: dict[str, Any], name: str = "spl_query") -> list[dict[str, Any]]:
    """The rule's documents; with a correlation, the base rule is named ``name`` and the correlation follows it."""
    assert draft.detection is not None
    if draft.correlation is None:
        return [assemble(meta, draft.logsource, draft.detection)]
    base = assemble({**meta, "name": name}, draft.logsource, draft.detection)
    aliases = draft.correlation.get("aliases")
    if not aliases:
        return [base, assemble_correlation(base, draft.correlation)]
    cases = alias_cases(base, aliases)
    docs = [{k: v for k, v in c.items() if k != "aliases"} for c in cases]
    return [*docs, assemble_correlation(base, draft.correlation, cases)]


def build_rule(draft: RuleDraft, meta: dict[str, Any], name: str = "spl_query") -> str:
    """The rule as YAML (documents separated by ``---``)."""
    return to_yaml(*build_docs(draft, meta, name))


def _draft(
    res: DetectionResult,
    search: str,
    content: Content,
    origin: str,
    label: str = "",
    data_sources: tuple[str, ...] = (),
    window: tuple[str, str] | None = None,
    alert: tuple[str, str] | None = None,
    logsource: dict[str, str] | None = None,
) -> RuleDraft | None:
    """Expand, parse and convert ``search`` into ``res``; None (reason recorded) when it does not parse."""
    res.search = search
    try:
        pipeline = expand_and_parse(search, content, origin)
    except TranslatorError as exc:
        res.reasons.append(f"{label}{exc}")
        return None
    try:
        draft = convert_pipeline(
            pipeline, data_sources, content.lookups, content.data_sources, window, alert, logsource
        )
    except TranslatorError as exc:  # content the search needs is broken (a lookup's CSV is missing)
        res.reasons.append(f"{label}{exc}")
        return None
    res.status, res.reasons, res.notes = draft.status, list(draft.reasons), list(draft.notes)
    res.fields = list(draft.fields)
    res.family, res.group = search_family(pipeline, draft)
    return draft


def search_family(pipeline: ast.Pipeline, draft: RuleDraft) -> tuple[str, str]:
    """(family, group) for reports: ``raw`` by Sigma logsource, ``tstats`` by data model, ``other`` by command."""
    first = pipeline.commands[0]
    if isinstance(first, ast.TstatsCommand):
        return "tstats", f"datamodel {first.datamodel}"
    if isinstance(first, ast.SearchCommand) and not first.explicit:
        ls = draft.logsource or {}
        name = "/".join(str(ls[k]) for k in ("product", "category", "service") if k in ls)
        return "raw", f"raw {name}" if name else "raw, no logsource"
    return "other", f"starts with {ast.command_name(first)}"


def convert_detection(det: Detection, content: Content, rel: Path, opts: ConvertOptions) -> DetectionResult:
    res = DetectionResult(str(det.path), det.id, det.name)
    schedule = content.schedule(det)
    span = schedule.window() if schedule is not None else None
    window = (span, f"{schedule.origin}: {schedule.earliest} to {schedule.latest}") if schedule and span else None
    alert = det.raw.get("alert_condition")
    draft = _draft(
        res,
        det.search,
        content,
        det.path.name,
        "search: ",
        tuple(det.data_sources),
        window,
        tuple(alert) if alert else None,
    )
    if draft is None or draft.detection is None:
        return res
    meta, meta_notes = sigma_metadata(det)
    res.notes.extend(meta_notes)
    _finish(res, build_docs(draft, meta, rule_name(rel.stem)), rel, opts, schedule)
    return res


def convert_query(
    query: str,
    content: Content,
    opts: ConvertOptions,
    title: str = "SPL query",
    data_sources: tuple[str, ...] = (),
    logsource: dict[str, str] | None = None,
) -> DetectionResult:
    """A bare SPL query (no ESCU YAML): metadata is only a title; ``data_sources`` play the YAML's part;
    ``logsource`` places a search that names no source."""
    res = DetectionResult("<spl>", "", title)
    try:
        draft = _draft(res, query, content, "query", data_sources=data_sources, logsource=logsource)
        if draft is None:
            res.loaded = False
        elif draft.detection is not None:
            _finish(res, build_docs(draft, {"title": title, "level": "medium"}), Path("spl_query"), opts)
    except TranslatorError:
        raise
    except Exception as exc:  # a bug gets the same report as in a batch, not a traceback
        res.status, res.reasons = ERROR, [internal_error("the translator", exc)]
    return res


def _finish(
    res: DetectionResult,
    docs: list[dict[str, Any]],
    rel: Path,
    opts: ConvertOptions,
    schedule: Schedule | None = None,
) -> None:
    """Check the rule with pySigma, emit every target, write files."""
    rule_yaml = to_yaml(*docs)
    try:
        rule = load_rule(docs)
    except SigmaError as exc:
        res.status = ERROR
        res.reasons.append(f"internal: pySigma rejected the generated rule: {exc}")
        return
    res.rule_yaml = rule_yaml
    res.validation = validate(rule)
    product = rule.logsource.product or ""
    if opts.write:
        sigma_path = opts.rules_out / rel.with_suffix(".yml")
        write_atomic(sigma_path, rule_yaml)
        res.sigma = str(sigma_path)
    timing = {"period": schedule.window() or "", "frequency": schedule.every() or ""} if schedule else None
    for name in opts.targets:
        target = tg.default_target(name, product, opts.format, tuple(opts.pipelines))
        try:
            with warnings.catch_warnings(record=True) as caught:  # a backend's warnings belong to this rule
                warnings.simplefilter("always")
                query = tg.convert(docs, target, timing)
            res.notes.extend(dict.fromkeys(f"{name}: {w.message}" for w in caught))
        except tg.TargetError:
            raise
        except Exception as exc:  # a backend failing on one rule must not stop the batch
            res.target_errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        res.queries[name] = query
        if opts.write and opts.write_queries:
            out_path = opts.out / name / rel.with_suffix("." + tg.extension(name, opts.format))
            write_atomic(out_path, query + "\n")
            res.outputs[name] = str(out_path)


def convert_file(path: Path, content: Content, rel: Path, opts: ConvertOptions) -> DetectionResult:
    try:
        det = load_detection(path)
    except TranslatorError as exc:
        return DetectionResult(str(path), reasons=[str(exc)], loaded=False)
    try:
        return convert_detection(det, content, rel, opts)
    except Exception as exc:  # a bug must not cost the rest of the batch; the report names it
        reason = internal_error("the translator", exc)
        return DetectionResult(str(path), det.id, det.name, reasons=[reason])


def summary(results: list[DetectionResult]) -> dict[str, int]:
    counts = {"total": len(results), **{s: 0 for s in STATUSES}}
    for r in results:
        counts[r.status] += 1
    return counts


def report(results: list[DetectionResult]) -> dict[str, Any]:
    return {"summary": summary(results), "detections": [r.to_json() for r in results]}


def content_loader(explicit: Path | None) -> Callable[[Path], Content]:
    """Content for each detection: ``explicit`` (a content root), or the root found above the file."""
    if explicit is not None:
        fixed = load_content(explicit)
        return lambda _path: fixed

    @cache
    def for_root(root: Path | None) -> Content:
        return load_content(root)

    return lambda path: for_root(find_content_root(path))


def convert_many(
    items: list[tuple[Path, Path]],
    content_root: Path | None,
    opts: ConvertOptions,
    progress: Callable[[int, int], None] | None = None,
    jobs: int = 1,
) -> list[DetectionResult]:
    """Convert (file, relative output path) pairs; results in input order whatever ``jobs``.

    Never stops at a bad file. With ``jobs`` > 1 the files are converted in that many
    processes; each output file depends only on its input, so the written tree is the same.
    """
    results: list[DetectionResult] = []

    def collect(done: Iterable[DetectionResult]) -> None:
        for result in done:
            results.append(result)
            if progress:
                progress(len(results), len(items))

    if jobs <= 1 or len(items) <= 1:
        loader = content_loader(content_root)
        collect(convert_file(path, loader(path), rel, opts) for path, rel in items)
        return results
    opts = replace(opts, logsources=logsource_overrides())  # spawned workers start from the built-in table
    pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_start_worker, initargs=(content_root, opts))
    try:
        collect(pool.imap(_convert_in_worker, items, chunksize=4))  # in input order: deterministic
        pool.close()
    except BaseException:
        pool.terminate()  # workers unwind on SIGTERM: a file being written is removed, not left half-done
        raise
    finally:
        pool.join()
    return results


_worker: tuple[Callable[[Path], Content], ConvertOptions] | None = None


def _start_worker(content_root: Path | None, opts: ConvertOptions) -> None:
    global _worker
    # the pool ends workers with SIGTERM after Ctrl-C: unwind (write_atomic holds the signal while writing)
    signal.signal(signal.SIGTERM, _end_worker)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the pool
    if opts.logsources:
        set_logsource_overrides(opts.logsources)
    _worker = (content_loader(content_root), opts)


def _end_worker(*_: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(1)


def _convert_in_worker(item: tuple[Path, Path]) -> DetectionResult:
    assert _worker is not None
    loader, opts = _worker
    path, rel = item
    return convert_file(path, loader(path), rel, opts)

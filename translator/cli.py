"""The ``translate`` command. Parses arguments, calls :mod:`translator.workflow`, prints.

Exit codes: 0 success; 1 something the user asked for failed (a conversion
error, a target failing); 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

from translator import __version__, workflow
from translator.content import Content, apps, iter_detection_files, load_detection
from translator.content.loader import is_content_root
from translator.emit import manifest
from translator.emit import targets as tg
from translator.emit.reports import html_report, junit_xml
from translator.emit.writer import write_atomic
from translator.engine import baseline
from translator.errors import TranslatorError
from translator.spl.ast import to_json
from translator.spl.printer import print_pipeline
from translator.workflow import ConvertOptions, DetectionResult, convert_many, convert_query, expand_and_parse, report

COMMANDS = ("convert", "parse", "eval", "parity", "targets", "pipelines", "demo")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or unreadable input: one line on stderr, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="translate",
        description="Translate Splunk ESCU detections into Sigma rules and SIEM queries.",
        epilog="Shorthand: `translate PATH... --to TARGET` is `translate convert PATH... --to TARGET`.",
    )
    p.add_argument("--version", action="version", version=f"translator {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("convert", help="convert detections (or --spl QUERY) to Sigma and target queries")
    c.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="detection YAML, folder, or content root")
    c.add_argument("--spl", help="convert a bare SPL query instead of ESCU files")
    c.add_argument(
        "--data-source",
        action="append",
        default=[],
        metavar="NAME",
        help="with --spl: a data source name as in ESCU's data_source (picks the platform, e.g. 'Sysmon EventID 1')",
    )
    c.add_argument(
        "--logsource",
        metavar="PRODUCT/CATEGORY[/SERVICE]",
        help="with --spl: the Sigma logsource of a search that names no source (e.g. windows/process_creation)",
    )
    _add_output_options(c)

    pa = sub.add_parser("parse", help="parse (and macro-expand) SPL; print the AST")
    pa.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    pa.add_argument("--spl", help="parse a bare SPL query")
    pa.add_argument("--content", type=Path, help="content root for macros (default: found from PATH)")
    pa.add_argument("--json", action="store_true", help="print the AST as JSON")

    ev = sub.add_parser("eval", help="run Sigma rules on event logs and list what each matches")
    ev.add_argument("rules", nargs="+", type=Path, metavar="RULE_OR_DIR", help="Sigma rule files or folders")
    ev.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="keep parsed rule files here between runs (default: $XDG_CACHE_HOME/translator/rules)",
    )
    ev.add_argument("--no-cache", action="store_true", help="parse every rule file, keep nothing")
    ev.add_argument(
        "--events",
        action="append",
        type=Path,
        required=True,
        metavar="FILE_OR_DIR",
        help="EVTX, XML export, JSON lines or CSV (.gz too); a folder means every such file below it",
    )
    ev.add_argument("--json", action="store_true", help="print the result as JSON (nothing else on stdout)")
    _add_logsources_option(ev)
    ev.add_argument(
        "--jobs", type=_positive, default=1, metavar="N", help="scan event files in N processes (same results)"
    )

    pr = sub.add_parser("parity", help="run the original SPL and the Sigma rule on the same events; compare")
    pr.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="detection YAML, folder, or content root")
    pr.add_argument(
        "--events", action="append", type=Path, required=True, metavar="FILE_OR_DIR", help="event files or folders"
    )
    pr.add_argument("--content", type=Path, help="content root for macros and lookups (default: found from PATH)")
    pr.add_argument(
        "--sigma",
        type=Path,
        metavar="DIR",
        help="check the Sigma rules in DIR (the tree `convert --rules-out` writes) instead of converting afresh",
    )
    pr.add_argument("--report", type=Path, metavar="FILE.json", help="write the JSON report here")
    pr.add_argument("--junit", type=Path, metavar="FILE.xml", help="write a JUnit XML report (one test per detection)")
    pr.add_argument("--html", type=Path, metavar="FILE.html", help="write a self-contained HTML report")
    pr.add_argument(
        "--generate",
        action="store_true",
        help="also synthesize events from each original search (positives and near misses), kept beside the report",
    )
    pr.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="accepted results (YAML/JSON): fail only on what got worse than them",
    )
    pr.add_argument("--write-baseline", type=Path, metavar="FILE", help="write this run's results as the baseline")
    pr.add_argument(
        "--fail-on",
        default=",".join(baseline.DEFAULT_FAIL_ON),
        metavar="LIST",
        help=f"what fails the run, comma-separated: {', '.join(baseline.CATEGORIES)} (default: %(default)s)",
    )
    pr.add_argument(
        "--changed-since",
        metavar="GIT_REF",
        help="check only detections whose file, or a macro, lookup or data source they use, changed since GIT_REF",
    )
    pr.add_argument("-q", "--quiet", action="store_true", help="print only differences and the summary")
    _add_logsources_option(pr)
    pr.add_argument("--include-disabled", action="store_true", help="also check saved searches marked disabled")

    sub.add_parser("targets", help="list output targets, their formats and default pipelines")
    pl = sub.add_parser("pipelines", help="list processing pipelines per target (for --pipeline)")
    pl.add_argument("target", nargs="?", help="only this target's pipelines")

    d = sub.add_parser("demo", help="run the bundled example end to end")
    d.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("demo_output"),
        help="folder for the demo's rule and queries (default: demo_output; the checkout's sigma_rules/ and "
        "outputs/ hold the corpus rule pack)",
    )
    return p


def _add_output_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--content", type=Path, help="content root for macros (default: found from PATH)")
    c.add_argument("--to", action="append", default=[], metavar="TARGET", help="target (repeatable; elastic, all)")
    c.add_argument("--pipeline", action="append", default=[], metavar="P", help="pySigma pipeline (replaces defaults)")
    c.add_argument("--format", default="default", help="backend output format (default: default)")
    c.add_argument("--rules-out", type=Path, default=Path("sigma_rules"), help="folder for Sigma rules")
    c.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for target queries (default: outputs/; one detection without --out prints them)",
    )
    c.add_argument("--report", type=Path, help="write the JSON report here")
    c.add_argument("--junit", type=Path, metavar="FILE.xml", help="write a JUnit XML report (one test per detection)")
    c.add_argument("--html", type=Path, metavar="FILE.html", help="write a self-contained HTML report")
    c.add_argument("--jobs", type=_positive, default=1, metavar="N", help="convert in N processes (same output)")
    c.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    c.add_argument(
        "--no-write", action="store_true", help="convert and report, but write no rule or query files (checks, hooks)"
    )
    _add_logsources_option(c)
    c.add_argument("--include-disabled", action="store_true", help="also convert saved searches marked disabled")


def _add_logsources_option(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--logsources",
        type=Path,
        metavar="FILE.yml",
        help="your own logsource mappings (sourcetypes, eventtypes, windows_channels, categories, ...), merged over "
        "the built-in table; the same file for convert, eval and parity",
    )


def _load_logsources(args: argparse.Namespace) -> None:
    """Apply ``--logsources FILE`` (a bad file is a usage error naming it)."""
    if getattr(args, "logsources", None) is None:
        return
    from translator.content.loader import read_yaml
    from translator.engine.logsources import set_overrides

    data = read_yaml(args.logsources)
    if not isinstance(data, dict):
        raise UsageError(f"{args.logsources}: expected a mapping")
    try:
        set_overrides(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{args.logsources}: {exc}") from None


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `translate targets | head` ends quietly
    if argv is None:
        signal.signal(signal.SIGTERM, _interrupted)  # a cancelled CI job ends like Ctrl-C: whole files only
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and not args_list[0].startswith("-") and args_list[0] not in COMMANDS:
        args_list.insert(0, "convert")  # `translate PATH --to X` shorthand
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        if args.command == "convert":
            return cmd_convert(args)
        if args.command == "parse":
            return cmd_parse(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "parity":
            return cmd_parity(args)
        if args.command == "targets":
            return cmd_targets()
        if args.command == "pipelines":
            return cmd_pipelines(args)
        if args.command == "demo":
            return cmd_demo(args)
        parser.print_help()
        return EXIT_USAGE
    except (UsageError, TranslatorError) as exc:
        print(f"translate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("translate: interrupted", file=sys.stderr)
        return 130


# -- inputs ------------------------------------------------------------------------


def collect_inputs(paths: list[Path], include_disabled: bool = False) -> list[tuple[Path, Path]]:
    """(detection address, output path relative to the output folders) for each PATH: ESCU YAML
    files or trees, Splunk apps (or ``etc/apps``) and savedsearches.conf files, .spl files."""
    if not paths:
        raise UsageError("no PATH given (a detection YAML, a folder of them, a content root, an app or a .spl file)")
    items: list[tuple[Path, Path]] = []
    disabled = 0
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        if path.suffix == ".conf" or (path.is_dir() and apps.apps_under(path)):
            if path.is_file() and path.name != apps.SAVED_SEARCHES:
                raise UsageError(f"{path}: holds no saved searches (give the app folder, or it as --content)")
            try:
                found = apps.saved_searches(path)
            except TranslatorError as exc:
                raise UsageError(str(exc)) from None
            disabled += sum(1 for r in found if r.disabled and not include_disabled)
            items.extend((r.path, r.rel) for r in found if include_disabled or not r.disabled)
            continue
        if path.is_file() and path.suffix == ".spl":
            items.extend(_spl_items(path, Path()))
            continue
        if path.is_file():
            items.append((path, Path(path.name)))
            continue
        base = path / "detections" if (path / "detections").is_dir() else path
        found_files = [(f, f.relative_to(base)) for f in iter_detection_files(path)]
        for spl in sorted(path.rglob("*.spl")) if not found_files else []:
            found_files.extend(_spl_items(spl, spl.parent.relative_to(path)))
        if not found_files:
            raise UsageError(f"{path}: no detection files (*.yml, *.spl) or Splunk apps found")
        items.extend(found_files)
    if disabled:
        print(
            f"translate: {disabled} disabled saved search(es) skipped (--include-disabled converts them)",
            file=sys.stderr,
        )
    if not items:
        raise UsageError("no enabled saved searches found (--include-disabled converts disabled ones)")
    return items


def _logsource_arg(text: str | None) -> dict[str, str] | None:
    """``--logsource product/category[/service]`` (an empty part is left out: ``aws//cloudtrail``)."""
    if text is None:
        return None
    parts = text.split("/")
    if len(parts) > 3 or not parts[0]:
        raise UsageError(f"--logsource {text!r}: expected product/category[/service]")
    keys = ("product", "category", "service")
    return {k: v for k, v in zip(keys, parts, strict=False) if v}


def _spl_items(path: Path, folder: Path) -> list[tuple[Path, Path]]:
    """The searches of a .spl file, each with its output path (``rules_2.spl`` for the second)."""
    try:
        found = apps.spl_refs(path)
    except TranslatorError as exc:
        raise UsageError(str(exc)) from None
    return [(p, folder / (name.replace(" #", "_") + ".spl")) for p, name in found]


def content_loader(explicit: Path | None):  # type: ignore[no-untyped-def]
    """Content for each detection: --content, or the root found above the file."""
    if explicit is not None and not is_content_root(explicit):
        raise UsageError(f"{explicit}: not a content root (no macros/ folder, macros.conf or Splunk app)")
    return workflow.content_loader(explicit)


# -- convert -------------------------------------------------------------------------


def _options(args: argparse.Namespace) -> ConvertOptions:
    targets = tg.resolve_targets(args.to)
    for name in targets:  # fail fast on a bad pipeline or format, before any work
        tg.default_target(name, "windows", args.format, tuple(args.pipeline)).backend()
    out = args.out if args.out is not None else Path("outputs")
    return ConvertOptions(targets, list(args.pipeline), args.format, args.rules_out, out, write=not args.no_write)


def cmd_convert(args: argparse.Namespace) -> int:
    _load_logsources(args)
    opts = _options(args)
    to_stdout = False
    if args.spl is not None:
        if args.paths:
            raise UsageError("give either PATH or --spl, not both")
        _check_outputs(args, opts)
        content = content_loader(args.content)(Path.cwd()) if args.content else Content(None)
        res = convert_query(
            args.spl, content, opts, data_sources=tuple(args.data_source), logsource=_logsource_arg(args.logsource)
        )
        if not res.loaded:
            raise UsageError(res.reasons[0])
        results = [res]
        if res.rule_yaml:
            print(res.rule_yaml, end="")
        for name, q in res.queries.items():
            print(f"# {name}\n{q}")
        # the verdict on stderr, so stdout stays the rule and queries
        print(f"status: {res.status}" + ("" if res.rule_yaml else " (no Sigma rule)"), file=sys.stderr)
        for reason in res.reasons:
            print(f"  - {reason}", file=sys.stderr)
        for note in res.notes:
            print(f"  note: {note}", file=sys.stderr)
        for name, err in res.target_errors.items():
            print(f"  {name} failed: {err}", file=sys.stderr)
    else:
        items = collect_inputs(args.paths, args.include_disabled)
        if args.content is not None:
            content_loader(args.content)  # a bad --content is a usage error before any work
        # one detection file and no --out: its queries go to stdout, as sigma-cli prints them
        to_stdout = len(items) == 1 and len(args.paths) == 1 and not args.paths[0].is_dir() and args.out is None
        to_stdout = to_stdout and bool(opts.targets)
        if to_stdout:
            opts = replace(opts, write_queries=False)
        _check_outputs(args, opts)
        results = convert_many(items, args.content, opts, progress=_progress(len(items)), jobs=args.jobs)
        for name, query in results[0].queries.items() if to_stdout else ():
            print(f"# {name}\n{query}" if len(opts.targets) > 1 else query)
        if opts.write:
            removed = _sync_outputs(args, opts, items, results)
            if removed and not args.quiet:
                print(f"removed {len(removed)} file(s) earlier runs wrote for detections that no longer produce them")
    if args.report:
        write_atomic(args.report, json.dumps(report(results), indent=2) + "\n")
    if args.junit:
        write_atomic(args.junit, junit_xml(results))  # type: ignore[arg-type]
    if args.html:
        write_atomic(args.html, html_report(results, opts.targets))  # type: ignore[arg-type]
    if args.spl is None:
        with contextlib.redirect_stdout(sys.stderr) if to_stdout else contextlib.nullcontext():
            _print_results(results, quiet=args.quiet, compact=len(results) > 25)
    for label, path in (("report", args.report), ("junit", args.junit), ("html", args.html)):
        if path:
            print(f"{label}: {path}")
    return exit_code(results)


def _check_outputs(args: argparse.Namespace, opts: ConvertOptions) -> None:
    """Every place the run will write must be writable, before any work (one line, exit 2, if not)."""
    folders = ([opts.rules_out] + ([opts.out] if opts.write_queries and opts.targets else [])) if opts.write else []
    for folder in folders:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{folder}: not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"{folder}: the output folder is not writable")
    for path in (args.report, args.junit, args.html):
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"{path}: is a folder, not a file")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"{path}: no such folder: {parent}")
        if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise UsageError(f"{path}: not writable")


def _sync_outputs(
    args: argparse.Namespace, opts: ConvertOptions, items: list[tuple[Path, Path]], results: list[DetectionResult]
) -> list[Path]:
    """Keep each output folder matching this run (see :mod:`translator.emit.manifest`)."""
    keys = [rel.with_suffix("").as_posix() for _path, rel in items]
    written: dict[Path, dict[str, dict[str, list[Path]]]] = {}
    for key, res in zip(keys, results, strict=True):
        if res.sigma:
            written.setdefault(opts.rules_out, {}).setdefault(key, {})["sigma"] = [Path(res.sigma)]
        for target, out_path in res.outputs.items():
            written.setdefault(opts.out, {}).setdefault(key, {})[target] = [Path(out_path)]
    kinds = {opts.rules_out: {"sigma"}}
    if opts.write_queries:
        kinds.setdefault(opts.out, set()).update(opts.targets)
    inputs = [str(p) for p in args.paths]
    removed: list[Path] = []
    for root, produced in kinds.items():
        removed += manifest.sync(root, inputs, written.get(root, {}), keys, produced)
    return removed


def exit_code(results: list[DetectionResult]) -> int:
    """1 for a conversion error, a target failing on a rule, or a rule no requested target could
    write; a target that refuses a rule its language cannot express while another target wrote it
    (EQL and a script-block rule under ``--to elastic``) is reported, not a failure."""
    if results and all(not r.loaded for r in results):
        return EXIT_USAGE
    for r in results:
        if r.status == "error":
            return EXIT_FAILED
        failed = [e for e in r.target_errors.values() if not e.startswith(_REFUSALS)]
        if failed or (r.target_errors and not r.queries):
            return EXIT_FAILED
    return EXIT_OK


# a target refusing a rule it cannot express (our pipelines or the backend say why), not a failure
_REFUSALS = ("SigmaTransformationError:", "SigmaFeatureNotSupportedByBackendError:", "ConversionFailed:")


def _progress(total: int):  # type: ignore[no-untyped-def]
    """A progress bar on stderr when it is a terminal (nothing otherwise: logs and pipes stay clean)."""
    if total < 20 or not sys.stderr.isatty():
        return None

    def show(i: int, n: int) -> None:
        width = 30
        filled = width * i // n
        end = "\n" if i == n else ""
        bar = "#" * filled + "." * (width - filled)
        print(f"\rconverting [{bar}] {i}/{n} {100 * i // n:3d}%", end=end, file=sys.stderr, flush=True)

    return show


def _print_results(results: list[DetectionResult], quiet: bool, compact: bool) -> None:
    """Per detection, then the summary. ``quiet``: only errors (stderr, one line each) and the summary;
    ``compact`` (a batch): only detections that are not exact or failed a target."""
    for r in results:
        if not r.loaded:
            print(f"error  {r.reasons[0]}", file=sys.stderr)
            continue
        if quiet and r.status == "error":
            print(f"error  {r.file}: {r.reasons[0] if r.reasons else 'no reason given'}", file=sys.stderr)
        if quiet or (compact and r.status in ("exact",) and not r.target_errors):
            continue
        print(f"{r.status:<11} {r.file}")
        for reason in r.reasons:
            print(f"            - {reason}")
        if not compact:
            if r.sigma:
                print(f"            sigma: {r.sigma}")
            for name, path in r.outputs.items():
                print(f"            {name}: {path}")
        for name, err in r.target_errors.items():
            print(f"            {name} FAILED: {err}")
    s = report(results)["summary"]
    print(
        f"{s['total']} detection(s): {s['exact']} exact, {s['partial']} partial, "
        f"{s['unsupported']} unsupported, {s['error']} error"
    )
    failed = Counter(name for r in results for name in r.target_errors)
    if failed:
        print("target failures: " + ", ".join(f"{name} {n}" for name, n in sorted(failed.items())))


# -- parse ---------------------------------------------------------------------------


def cmd_parse(args: argparse.Namespace) -> int:
    if args.spl is not None:
        content = content_loader(args.content)(Path.cwd()) if args.content else Content(None)
        pipeline = expand_and_parse(args.spl, content, "query")
        print(json.dumps(to_json(pipeline), indent=2) if args.json else print_pipeline(pipeline))
        return EXIT_OK
    items = collect_inputs(args.paths)
    loader = content_loader(args.content)
    failed = 0
    for path, _rel in items:
        record: dict[str, object] = {"file": str(path), "ok": True, "error": None, "ast": None}
        try:
            det = load_detection(path)
            record["ast"] = to_json(expand_and_parse(det.search, loader(path), path.name))
        except TranslatorError as exc:
            record.update(ok=False, error=str(exc))
            failed += 1
        print(json.dumps(record))
    if failed == len(items):
        return EXIT_USAGE
    return EXIT_FAILED if failed else EXIT_OK


# -- targets and demo ------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def cmd_eval(args: argparse.Namespace) -> int:
    from translator.engine.evaluate import evaluate

    for p in [*args.rules, *args.events]:
        if not p.exists():
            raise UsageError(f"{p}: no such file or folder")
    _load_logsources(args)
    show = None
    if sys.stderr.isatty():

        def show(n: int) -> None:
            print(f"\revents read: {n:,}", end="", file=sys.stderr, flush=True)

    from translator.engine import rule_cache

    cache = None if args.no_cache else (args.cache or rule_cache.default_folder())
    run = evaluate(args.rules, args.events, progress=show, jobs=args.jobs, cache=cache)
    if show is not None:
        print(f"\revents read: {run.events:,}", file=sys.stderr)
    if args.json:
        print(json.dumps(run.to_json(), indent=2))
    else:
        for r in run.rules:
            if r.error is not None:
                print(f"{r.title}: not evaluated: {r.error}")
                continue
            print(f"{r.title}: {len(r.matches)} match(es)")
            for ref in r.matches[:20]:
                print(f"  {ref}")
            if len(r.matches) > 20:
                print(f"  ... {len(r.matches) - 20} more (--json lists all)")
    for p in run.problems[:20]:
        print(f"translate: {p.ref}: {p.message}", file=sys.stderr)
    if len(run.problems) > 20:
        print(f"translate: ... {len(run.problems) - 20} more unreadable records", file=sys.stderr)
    summary = run.to_json()["summary"]
    print(
        f"{summary['rules']} rule(s), {summary['not_evaluated']} not evaluated; {run.events:,} event(s), "
        f"{len(run.problems)} unreadable",
        file=sys.stderr,
    )
    if run.events == 0:  # nothing was evaluated: an empty or unreadable input is not a pass
        print("translate: error: the inputs hold no events", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_FAILED if summary["not_evaluated"] else EXIT_OK


def cmd_parity(args: argparse.Namespace) -> int:
    from translator.emit.reports import parity_html, parity_junit
    from translator.engine.generate import json_path
    from translator.engine.parity import parity

    for p in args.events:
        if not p.exists():
            raise UsageError(f"{p}: no such file or folder")
    fail_on = baseline.parse_fail_on(args.fail_on)
    accepted = baseline.load(args.baseline) if args.baseline else None
    _load_logsources(args)
    items = collect_inputs(args.paths, args.include_disabled)
    if args.changed_since:
        from translator.content.changes import changed_items

        before = len(items)
        items = changed_items(items, args.changed_since, content_loader(args.content))
        print(f"--changed-since {args.changed_since}: {len(items)} of {before} detection(s) to check")
        if not items:
            return EXIT_OK
    if args.sigma is not None and not args.sigma.is_dir():
        raise UsageError(f"{args.sigma}: not a folder of Sigma rules")
    generated = None
    if args.generate:
        generated = args.report.with_suffix(".generated.xml") if args.report else Path("parity_generated.xml")
    result = parity(
        items,
        content_loader(args.content),
        args.events,
        progress=_progress(len(items)),
        sigma_dir=args.sigma,
        generate_to=generated,
    )
    verdict = baseline.judge(result.results, accepted, fail_on)
    if args.report:
        data = result.to_json()
        data["baseline"] = {"file": str(args.baseline) if args.baseline else None, "fail_on": list(fail_on)}
        data["baseline"].update(verdict.to_json())
        write_atomic(args.report, json.dumps(data, indent=2) + "\n")
    if args.write_baseline:
        write_atomic(args.write_baseline, baseline.dump(result.results, args.write_baseline))
    if args.junit:
        write_atomic(args.junit, parity_junit(result))
    if args.html:
        write_atomic(args.html, parity_html(result))
    for r in result.results:
        if r.status in ("equal", "untested") and (args.quiet or len(result.results) > 25):
            continue
        if r.status == "not_evaluable" and args.quiet:
            continue
        print(f"{r.status:<13} {r.name or r.file} (original {r.original_matches}, sigma {r.sigma_matches})")
        for reason in r.reasons:
            print(f"              - {reason}")
        for side, refs in (("only original", r.only_original), ("only sigma", r.only_sigma)):
            for ref in refs[:5]:
                print(f"              {side}: {ref}  {json.dumps(r.explain.get(ref, {}), default=str)}")
    for p in result.problems[:20]:
        print(f"translate: {p.ref}: {p.message}", file=sys.stderr)
    s = result.summary()
    evaluable = s["equal"] + s["differ"] + s["untested"]
    print(
        f"{s['total']} detection(s) over {result.events:,} event(s): {s['equal']} equal, {s['differ']} differ, "
        f"{s['untested']} untested (neither side matched), "
        f"{s['not_evaluable']} not evaluable, {s['error']} error ({evaluable} evaluable, "
        f"{s['original_fired']} where the original fired)"
    )
    if generated is not None:
        g = result.generated_summary()
        print(
            f"generated events ({generated}, {json_path(generated)}): {g['with_events']} detection(s) got some; "
            f"{g['checked']} checked on them (the original selects its own positive), {g['equal']} equal on them"
        )
    for name, counts in result.target_summary().items():
        print(
            f"emitted {name} queries run locally: {counts['equal']} equal to the Sigma rule, "
            f"{counts['differ']} differ, {counts['not_evaluable']} not evaluable"
        )
    for line in verdict.worse:
        print(f"worse than {'the baseline' if accepted is not None else 'allowed'} ({args.fail_on}): {line}")
    for line in verdict.tighter:
        print(f"baseline can be tightened: {line}")
    for line in verdict.stale:
        print(f"baseline can be tightened: {line}")
    labels = (("report", args.report), ("junit", args.junit), ("html", args.html), ("baseline", args.write_baseline))
    for label, path in labels:
        if path:
            print(f"{label}: {path}")
    if result.events == 0 and result.problems:
        return EXIT_USAGE
    return EXIT_FAILED if verdict.worse else EXIT_OK


def cmd_pipelines(args: argparse.Namespace) -> int:
    """Each target with the pipelines made for it (and those for any backend), defaults marked."""
    names = tg.resolve_targets([args.target]) if args.target else tg.backend_names()
    allowed: dict[str, frozenset[str]] = {}
    for pname, factory in sorted(tg.plugins().pipelines.items()):
        try:
            allowed[pname] = frozenset(getattr(factory(), "allowed_backends", None) or ())
        except Exception:  # a pipeline that needs arguments: listed for any target
            allowed[pname] = frozenset()
    table = tg.load_table("targets")["targets"]
    for name in names:
        defaults = {p for spec in table.get(name, {}).get("pipelines", {}).values() for p in spec}
        own = [p for p, backends in allowed.items() if name in backends]
        generic = [p for p, backends in allowed.items() if not backends]
        print(f"{name}:")
        for p in own:
            print(f"  {p}{' (default)' if p in defaults else ''}")
        print(f"  any backend: {', '.join(f'{p} (default)' if p in defaults else p for p in generic)}")
    return EXIT_OK


def cmd_targets() -> int:
    table = tg.load_table("targets")
    blocked = table.get("blocked_formats", {})
    names = tg.backend_names()
    width = max(len(n) for n in [*names, *table["aliases"], "all"]) + 2
    for name in names:
        spec = table["targets"].get(name, {})
        pipes = "; ".join(f"{k}: {', '.join(v)}" for k, v in spec.get("pipelines", {}).items()) or "none"
        formats = ", ".join(f"{f} (unavailable offline)" if f in blocked else f for f in tg.formats(name))
        print(f"{name:<{width}}formats: {formats}")
        print(f"{'':<{width}}default pipelines: {pipes}")
        if spec.get("fallback"):
            print(f"{'':<{width}}when they fail a rule: {', '.join(spec['fallback'])}")
    for alias, members in table["aliases"].items():
        print(f"{alias:<{width}}alias for: {', '.join(members)}")
    print(f"{'all':<{width}}every target above")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """The bundled example, end to end, from files inside the package."""
    root = resources.files("translator") / "examples"
    with resources.as_file(root) as example_root:
        detection = (
            example_root / "detections" / "endpoint" / "interactive_session_on_remote_endpoint_with_powershell.yml"
        )
        opts = ConvertOptions(
            tg.resolve_targets(["splunk", "elastic"]), rules_out=args.dir / "sigma_rules", out=args.dir / "outputs"
        )
        print(f"example: {detection.name} (bundled with translator)")
        results = convert_many([(detection, Path(detection.name))], example_root, opts)
    res = results[0]
    print(f"status: {res.status}")
    for reason in res.reasons:
        print(f"  - {reason}")
    if res.rule_yaml:
        print(f"\nSigma rule -> {res.sigma}\n")
        print(res.rule_yaml)
    for name, query in res.queries.items():
        print(f"{name} -> {res.outputs.get(name)}\n  {query}\n")
    for name, err in res.target_errors.items():
        if err.startswith(_REFUSALS):  # the target's language cannot say what the rule says
            print(f"{name}: not written: {err.split(': ', 1)[-1]}")
        else:
            print(f"{name} FAILED: {err}")
    return exit_code(results)


if __name__ == "__main__":
    raise SystemExit(main())

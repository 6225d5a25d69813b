"""Reading + evaluating Sigma rules over ~1M events, against pySigma's sqlite backend in the same run.

Usage: python bench/eval_rules.py [--repeat N] [--rules 100,1000] [--jobs 1,2] [CONTENT_ROOT SAMPLES_DIR]
(defaults: ../shared/corpus/escu, ../shared/corpus/evtx-attack-samples, N=121 -> about 1M events)

Rules: the ESCU corpus converted by this project; the first N base rules (sorted by
file) that both our evaluator and the sqlite backend take (and whose field names do
not clash with another rule's in all but case: SQL column names ignore case). For each rule set:

  ours      `translate eval`'s engine: read + flatten + dispatch + match, streaming,
            with --jobs 1 and 2 (files scanned in worker processes)
  sqlite    how pySigma's tooling runs rules on logs: the same reader, every event
            inserted into an in-memory SQLite table (only the columns the rules use,
            NUMERIC affinity and NOCASE collation so comparisons follow Sigma, an index
            on Channel+EventID), then one `SELECT ref ... WHERE <backend query>` per rule,
            with the rule's logsource turned into a Channel/EventID filter (the backend
            ignores logsources) and renamed fields (Security 4688) mapped back.

Both give each rule's matched events; the script checks they are identical
(per rule, as multisets of event references) and prints the differences if not.
Peak memory is the process's (and the workers') maximum RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaRule

from translator.engine.evaluate import evaluate, rule_files
from translator.engine.logsources import Selector, selector_for
from translator.engine.sigma_eval import NotEvaluable, compile_rule
from translator.engine.sql_targets import cell, sqlite_db
from translator.events import Event, read_events
from translator.sigma.rule import detection_fields

HERE = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("content", nargs="?", type=Path, default=HERE / "shared/corpus/escu")
    ap.add_argument("samples", nargs="?", type=Path, default=HERE / "shared/corpus/evtx-attack-samples")
    ap.add_argument("--repeat", type=int, default=121)
    ap.add_argument("--rules", default="100,1000")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--no-baseline", action="store_true", help="only our engine (to re-time it)")
    args = ap.parse_args()
    files = sorted(args.samples.rglob("*.evtx")) * args.repeat

    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "converted"
        subprocess.run(
            ["translate", "convert", str(args.content), "--rules-out", str(converted), "-q"],
            check=False,
            capture_output=True,
        )
        candidates = usable_rules(converted)
        print(f"base rules usable by both engines: {len(candidates)}; events: {len(files):,} files")
        for n in (int(x) for x in args.rules.split(",")):
            chosen = candidates[:n]
            folder = Path(tmp) / f"rules{n}"
            folder.mkdir()
            for i, (rule_doc, _) in enumerate(chosen):
                (folder / f"{i:04d}.yml").write_text(yaml.safe_dump(rule_doc, sort_keys=False), encoding="utf-8")
            print(f"\n== {len(chosen)} rules")
            ours: dict[str, Counter[str]] = {}
            for jobs in (int(x) for x in args.jobs.split(",")):
                t0 = time.perf_counter()
                run = evaluate([folder], files, jobs=jobs)
                secs = time.perf_counter() - t0
                ours = {r.source: Counter(r.matches) for r in run.rules}
                matched = sum(len(r.matches) for r in run.rules)
                line(f"ours, jobs={jobs}", run.events, secs, f"{matched:,} matches")
            if args.no_baseline:
                continue
            base, events, secs, phases = sqlite_run(chosen, files)
            line("sqlite backend", events, secs, f"{sum(sum(c.values()) for c in base.values()):,} matches  ({phases})")
            compare(ours, {str(folder / f"{i:04d}.yml"): c for i, c in enumerate(base.values())})
    print(f"\npeak RSS: {peak_mib():.0f} MiB (this process), {peak_mib(children=True):.0f} MiB (largest worker)")


def line(label: str, events: int, secs: float, extra: str) -> None:
    print(f"{label:<18} {events:>10,} events  {secs:7.1f} s  {events / secs:>9,.0f} events/s  {extra}")


def usable_rules(folder: Path) -> list[tuple[dict[str, Any], SigmaRule]]:
    out = []
    backend = sqliteBackend()
    taken = {"channel": "Channel", "eventid": "EventID", "provider_name": "Provider_Name"}
    for path in rule_files([folder]):
        docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
        doc = docs[0]
        if "correlation" in doc:
            continue
        try:
            rule = SigmaCollection.from_dicts([doc]).rules[0]
            compile_rule(rule)
            backend.convert(SigmaCollection.from_dicts([doc]))
        except (SigmaError, NotEvaluable, NotImplementedError):
            continue
        fields = set(detection_fields(rule))
        if any(taken.setdefault(f.lower(), f) != f for f in fields):
            continue  # SQL column names ignore case: eventID and EventID cannot both be columns
        out.append((doc, rule))
    return out


# -- the baseline ------------------------------------------------------------------------------


def sqlite_run(
    chosen: list[tuple[dict[str, Any], SigmaRule]], files: list[Path]
) -> tuple[dict[int, Counter[str]], int, float, str]:
    t0 = time.perf_counter()
    queries = [(i, rule_sql(doc, rule)) for i, (doc, rule) in enumerate(chosen)]
    names = {"Channel", "EventID", "Provider_Name"}
    for _, rule in chosen:
        for name in set(detection_fields(rule)):
            names.add(name)
            for s in selector_for(rule).sources:
                names.update(src for src, dst in s.renames if dst == name)
    columns = sorted(names)
    db = sqlite_db()
    cols_sql = ", ".join(f'"{c}" NUMERIC COLLATE NOCASE' for c in columns)
    db.execute(f"CREATE TABLE logs (ref TEXT, {cols_sql})")
    insert = f"INSERT INTO logs VALUES (?{', ?' * len(columns)})"
    events, batch = 0, []
    for item in read_events(files):
        if not isinstance(item, Event):
            continue
        events += 1
        row = [item.ref, *map(item.fields.get, columns)]
        for i, v in enumerate(row):
            if type(v) is list or type(v) is dict:  # rare: multivalue fields, stored as JSON text
                row[i] = cell(v)
        batch.append(row)
        if len(batch) >= 10_000:
            db.executemany(insert, batch)
            batch.clear()
    db.executemany(insert, batch)
    db.execute('CREATE INDEX by_source ON logs ("Channel", "EventID")')
    loaded = time.perf_counter()
    out: dict[int, Counter[str]] = {}
    for i, q in queries:
        out[i] = Counter(ref for (ref,) in db.execute(f"SELECT ref FROM logs WHERE {q}"))
    done = time.perf_counter()
    return out, events, done - t0, f"read+insert {loaded - t0:.1f} s, queries {done - loaded:.1f} s"


def rule_sql(doc: dict[str, Any], rule: SigmaRule) -> str:
    """The backend's WHERE clause for ``rule``, restricted to its logsource's channels and event ids."""
    selector: Selector = selector_for(rule)
    if selector.everything:
        return f'"Provider_Name" IS {"NOT " if selector.windows else ""}NULL AND ({_where(doc, {})})'
    parts = []
    for s in selector.sources:
        channels = ", ".join(_quote(c) for c in sorted(s.channels))
        where = f'"Channel" IN ({channels})'
        if s.event_ids:
            where += f' AND "EventID" IN ({", ".join(str(e) for e in sorted(s.event_ids))})'
        parts.append(f"({where} AND ({_where(doc, {dst: src for src, dst in s.renames})}))")
    return " OR ".join(parts)


def _where(doc: dict[str, Any], mapping: dict[str, str]) -> str:
    pipeline = ProcessingPipeline(
        items=[ProcessingItem(FieldMappingTransformation(dict(mapping)))] if mapping else []  # type: ignore[arg-type]
    )
    query = sqliteBackend(processing_pipeline=pipeline).convert(SigmaCollection.from_dicts([doc]))[0]
    return str(query).split(" WHERE ", 1)[1]


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def compare(ours: dict[str, Counter[str]], base: dict[str, Counter[str]]) -> None:
    differ = [name for name in base if ours.get(name, Counter()) != base[name]]
    if not differ:
        print(f"identical matches for all {len(base)} rules")
        return
    print(f"DIFFERENT matches for {len(differ)} of {len(base)} rules:")
    for name in differ[:10]:
        only_ours = ours.get(name, Counter()) - base[name]
        only_base = base[name] - ours.get(name, Counter())
        print(
            f"  {name}: only ours {sum(only_ours.values())} {list(only_ours)[:2]}, only sqlite "
            f"{sum(only_base.values())} {list(only_base)[:2]}"
        )


def peak_mib(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())

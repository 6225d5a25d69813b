"""The Elastic targets proven on events: each Windows rule's Lucene, EQL and ES|QL query run on
Elastic's view of the samples, compared with the Sigma rule's own matches.

Usage: python bench/elastic_targets.py [RULES_DIR ...] [--events DIR] [--show N]
(defaults: the rule pack's sigma_rules/ and SigmaHQ's rules-windows; events
../shared/corpus/evtx-attack-samples). Prints, per rule set and target, how many
rules are equal / differ / not evaluable, the reasons for the differences by
kind, and the wall time. The figures docs/manual.md and docs/parity.md quote.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from sigma.rule import SigmaRule

from translator.data import load_table
from translator.emit import targets as tg
from translator.engine.elastic import DocSet, Rejected
from translator.engine.evaluate import Loaded, Merger, Scanner, add_collection
from translator.engine.parity import ELASTIC_TARGETS
from translator.engine.sigma_eval import NotEvaluable
from translator.events import Event, read_events
from translator.sigma.rule import collection_of, detection_fields

HERE = Path(__file__).resolve().parents[1]
SHARED = HERE.parent / "shared/corpus"


def rule_docs(folder: Path) -> list[tuple[str, str]]:
    """(path, YAML) of every Windows rule without a correlation in the folder."""
    out = []
    for path in sorted(folder.rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        if "product: windows" in text and "correlation:" not in text:
            out.append((str(path), text))
    return out


def kind_of(reason: str) -> str:
    """A difference's kind, for the summary: the reason without the rule-specific parts."""
    reason = re.sub(r"'[^']*'|\"[^\"]*\"|/[^ ]*/", "…", reason)
    return reason[:90]


def cause(rule: SigmaRule, fields: dict) -> str:
    """Why Elastic's view of this event answers the rule differently: the first that applies of the
    integration dropping a value ("", "-"), a keyword over ignore_above, the User split, else other."""
    names = detection_fields(rule)
    dropped = set(load_table("elastic")["windows"]["drop_values"])
    if any(isinstance(fields.get(n), str) and fields.get(n) in dropped for n in names):
        return "a value the integration drops (empty or '-')"
    if any(len(str(fields.get(n, ""))) > 1024 for n in names):
        return "a keyword longer than ignore_above (1024): not indexed"
    if "User" in names and str(fields.get("User", "")).count("\\") != 1:
        return "User without a DOMAIN\\ part: the integration sets no user.name"
    return "other"


def measure(folder: Path, events: list[tuple[str, dict]], docs: DocSet, show: int) -> None:
    loaded = Loaded()
    results = []
    for path, text in rule_docs(folder):
        try:
            collection = collection_of(text)
        except Exception:  # a rule pySigma cannot load is not one we can check
            continue
        rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
        if len(rules) != 1:
            continue
        doc = next(d for d in yaml.safe_load_all(text) if d)  # the file's own values, not to_dict()'s
        results.append((path, rules[0], doc, add_collection(loaded, collection, path)))
    by_ref = dict(events)
    merger = Merger(loaded)
    merger.add(Scanner(loaded).scan_items(Event(ref, fields) for ref, fields in events))
    merger.finish()
    print(f"\n{folder}: {len(results):,} Windows rules x {len(docs.docs):,} Windows events")
    for target in ELASTIC_TARGETS:
        t0 = time.perf_counter()
        status: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        examples: dict[str, str] = {}
        for path, rule, doc, rule_results in results:
            if rule_results[0].error is not None:
                status["sigma not evaluated"] += 1
                continue
            want = set(rule_results[0].matches)
            try:
                query = tg.convert([doc], tg.default_target(target, "windows"))
            except Exception as exc:  # the backend refuses the rule
                status["not converted"] += 1
                kinds["not converted: " + kind_of(str(exc).splitlines()[0])] += 1
                continue
            try:
                got = docs.run(target, query)
            except NotEvaluable as exc:
                status["not evaluable"] += 1
                kinds["not evaluable: " + kind_of(str(exc))] += 1
                continue
            except Rejected as exc:
                status["differ"] += 1
                kinds["rejected: " + kind_of(str(exc))] += 1
                examples.setdefault("rejected: " + kind_of(str(exc)), path)
                continue
            if got == want:
                status["equal"] += 1
            else:
                status["differ"] += 1
                side = "broader" if got > want else "narrower" if got < want else "both"
                why = sorted({cause(rule, by_ref[r]) for r in got ^ want})
                kinds[f"differ ({side}): {'; '.join(why)}"] += 1
                examples.setdefault(f"differ ({side}): {'; '.join(why)}", path)
                if show:
                    show -= 1
                    print(
                        f"  {target} {side}: {path}\n    {query[:300]}\n    only query {sorted(got - want)[:2]}"
                        f" only sigma {sorted(want - got)[:2]}"
                    )
        converted = status["equal"] + status["differ"] + status["not evaluable"]
        share = status["equal"] / max(1, status["equal"] + status["differ"])
        print(
            f"  {target:18} {dict(status)}  equal {share:.1%} of {status['equal'] + status['differ']} evaluated"
            f" ({converted} converted), {time.perf_counter() - t0:.1f} s"
        )
        for kind, n in kinds.most_common(14):
            print(f"      {n:5}  {kind}  e.g. {examples.get(kind, '')}")


def main() -> None:
    args = sys.argv[1:]
    show = int(args[args.index("--show") + 1]) if "--show" in args else 0
    events_dir = Path(args[args.index("--events") + 1]) if "--events" in args else SHARED / "evtx-attack-samples"
    folders = [Path(a) for a in args if not a.startswith("--") and a not in (str(show), str(events_dir))]
    folders = folders or [HERE / "sigma_rules", SHARED / "sigmahq-windows/rules-windows"]
    t0 = time.perf_counter()
    events = [(e.ref, e.fields) for e in read_events([events_dir]) if isinstance(e, Event)]
    docs = DocSet.of(events)
    print(
        f"{len(events):,} events read, {len(docs.docs):,} Windows documents built in {time.perf_counter() - t0:.1f} s"
    )
    for folder in folders:
        measure(folder, events, docs, show)


if __name__ == "__main__":
    main()

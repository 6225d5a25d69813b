"""Parity over the whole ESCU corpus and all EVTX samples: wall time, peak memory, statuses.

Usage: python bench/parity_corpus.py [--generate] [CONTENT_ROOT] [SAMPLES_DIR]
(defaults ../shared/corpus/escu and ../shared/corpus/evtx-attack-samples)
--generate: also synthesize events from every original search (written to a
temporary folder) and report how many detections were checked on them.

One `translate parity` run in this process: read every sample, convert every
detection, run every Sigma rule in one pass and every original search with
the SPL executor, compare. Prints the figures docs/parity.md and docs/benchmarks.md quote.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from translator.content import iter_detection_files
from translator.engine.parity import parity
from translator.workflow import content_loader


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--generate"]
    here = Path(__file__).resolve().parents[2] / "shared/corpus"
    root = Path(args[0]) if args else here / "escu"
    samples = Path(args[1]) if len(args) > 1 else here / "evtx-attack-samples"
    items = [(p, p.relative_to(root)) for p in iter_detection_files(root)]
    with tempfile.TemporaryDirectory() as tmp:
        generate_to = Path(tmp) / "generated.xml" if "--generate" in sys.argv else None
        t0 = time.perf_counter()
        run = parity(items, content_loader(root), [samples], generate_to=generate_to)
        secs = time.perf_counter() - t0
    s = run.summary()
    evaluable = s["equal"] + s["differ"] + s["untested"]
    print(f"{len(items):,} detections x {run.events:,} events: {secs:.1f} s wall, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")  # fmt: skip
    print(f"equal {s['equal']}, differ {s['differ']}, untested {s['untested']}, not_evaluable {s['not_evaluable']}")
    tested = s["equal"] + s["differ"]
    share = 100 * s["equal"] / max(tested, 1)
    print(f"evaluable {evaluable} ({100 * evaluable / s['total']:.1f}%); tested (some event matched) {tested}, "
          f"equal among them {share:.1f}%; the original fired for {s['original_fired']}")  # fmt: skip
    fired_equal = sum(1 for r in run.results if r.status == "equal" and r.original_matches)
    print(f"equal where the original fired: {fired_equal}")
    if generate_to is not None:
        g = run.generated_summary()
        print(f"generated: {g['with_events']} detections got events; checked on them {g['checked']} "
              f"({100 * g['checked'] / s['total']:.1f}% of the corpus); equal on them {g['equal']} "
              f"({100 * g['equal'] / max(g['checked'], 1):.1f}% of checked)")  # fmt: skip
        for r in run.results:
            if r.generated_check == "differ":
                print(f"  differs on its own events: {Path(r.file).name} ({r.conversion})")
    main_why = Counter(r.reasons[0].split(":")[0] + ": " + r.reasons[0].split(":")[1][:60] for r in run.results
                       if r.status == "not_evaluable")  # fmt: skip
    for name, counts in run.target_summary().items():
        print(f"emitted {name} queries through the executor: {counts}")
        differ = [r for r in run.results if r.targets.get(name, {}).get("status") == "differ"]
        for r in differ[:10]:
            t = r.targets[name]
            print(
                f"  differ: {Path(r.file).name}: only query {len(t['only_query'])}, only Sigma {len(t['only_sigma'])}"
            )
        why = Counter(r.targets[name].get("reason", "")[:70] for r in run.results
                      if r.targets.get(name, {}).get("status") == "not_evaluable")  # fmt: skip
        for reason, n in why.most_common(5):
            print(f"  not evaluable {n:4d}  {reason}")
    print("\nnot evaluable, main reasons:")
    for reason, n in main_why.most_common(12):
        print(f"  {n:4d}  {reason}")


if __name__ == "__main__":
    main()

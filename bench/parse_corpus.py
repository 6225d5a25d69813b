"""Detections/s for macro expansion + tokenize + parse over the ESCU corpus.

Usage: python bench/parse_corpus.py [CONTENT_ROOT]   (default ../shared/corpus/escu)
YAML loading is timed separately; parsing runs on one core, best of 5.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from translator.content import iter_detection_files, load_content, load_detection
from translator.errors import TranslatorError
from translator.spl import MacroExpander, parse


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/corpus/escu"
    if not (root / "macros").is_dir():
        sys.exit(f"no content root at {root}")
    t0 = time.perf_counter()
    content = load_content(root)
    detections = [load_detection(p) for p in iter_detection_files(root)]
    load_s = time.perf_counter() - t0
    expander = MacroExpander(content.macros)
    best = float("inf")
    ok = 0
    for _ in range(5):
        ok = 0
        t0 = time.perf_counter()
        for det in detections:
            try:
                exp = expander.expand(det.search, det.path.name)
                parse(exp.text, det.path.name, exp.location)
                ok += 1
            except TranslatorError:
                pass
        best = min(best, time.perf_counter() - t0)
    n = len(detections)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"detections: {n} ({ok} parsed)")
    print(f"load YAML + macros: {load_s:.2f} s")
    print(f"expand + tokenize + parse: {best:.3f} s  ({n / best:,.0f} detections/s, best of 5)")
    print(f"peak RSS: {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()

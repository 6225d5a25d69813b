"""Events/s for reading the EVTX samples, against the raw `evtx` parse rate in the same run.

Usage: python bench/read_events.py [--repeat N] [SAMPLES_DIR]
(default: ../shared/corpus/evtx-attack-samples, N=121, about 1M events).
Nothing is kept in memory: both loops consume records as they stream.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import evtx

from translator.events import Event, read_events


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "samples",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/corpus/evtx-attack-samples",
    )
    ap.add_argument("--repeat", type=int, default=121)
    args = ap.parse_args()
    files = sorted(args.samples.rglob("*.evtx"))

    t0 = time.perf_counter()
    raw = 0
    for _ in range(args.repeat):
        for f in files:
            for _record in evtx.PyEvtxParser(str(f)).records_json():
                raw += 1
    raw_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours = problems = 0
    for _ in range(args.repeat):
        for item in read_events(files):
            if isinstance(item, Event):
                ours += 1
            else:
                problems += 1
    ours_s = time.perf_counter() - t0

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"files: {len(files)} x {args.repeat}")
    print(f"raw evtx parse (records_json):   {raw:>9,} records  {raw_s:6.1f} s  {raw / raw_s:>9,.0f}/s")
    print(
        f"read + flatten (translator):     {ours:>9,} events   {ours_s:6.1f} s  {ours / ours_s:>9,.0f}/s"
        f"  ({ours / ours_s / (raw / raw_s):.0%} of raw; problems: {problems})"
    )
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()

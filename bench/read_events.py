"""Events/s for reading the EVTX samples, against the raw `evtx` parse rate in the same run.

Usage: python bench/read_events.py [--repeat N] [SAMPLES_DIR]
(default: ../shared/corpus/evtx-attack-samples, N=121, about 1M events).
Nothing is kept in memory: every loop consumes records as they stream.

Rows: the raw Rust parse (`records_json`, which uses every core by default, and
with one thread); our reader (parse + JSON decode + flatten to Sigma names) in
one process; and our reader in one worker process per core over the files, as
`translate eval --jobs N` runs it (events counted in the workers).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
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

    raw_rates = []
    for threads in (0, 1):
        t0 = time.perf_counter()
        raw = 0
        for _ in range(args.repeat):
            for f in files:
                for _record in evtx.PyEvtxParser(str(f), number_of_threads=threads).records_json():
                    raw += 1
        raw_s = time.perf_counter() - t0
        raw_rates.append(raw / raw_s)
        label = "all cores" if threads == 0 else "1 thread"
        print(f"raw evtx parse ({label}):  {raw:>9,} records  {raw_s:6.1f} s  {raw / raw_s:>9,.0f}/s")
    best_raw = max(raw_rates)

    t0 = time.perf_counter()
    ours = problems = 0
    for _ in range(args.repeat):
        for item in read_events(files):
            if isinstance(item, Event):
                ours += 1
            else:
                problems += 1
    ours_s = time.perf_counter() - t0

    print(
        f"read + flatten, 1 process:      {ours:>9,} events   {ours_s:6.1f} s  {ours / ours_s:>9,.0f}/s"
        f"  ({ours / ours_s / best_raw:.0%} of the best raw rate; problems: {problems})"
    )
    jobs = os.cpu_count() or 1
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        counted = sum(pool.imap(_count, files * args.repeat, chunksize=4))
    par_s = time.perf_counter() - t0
    print(
        f"read + flatten, {jobs} processes:    {counted:>9,} events   {par_s:6.1f} s  {counted / par_s:>9,.0f}/s"
        f"  ({counted / par_s / best_raw:.0%} of the best raw rate)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"files: {len(files)} x {args.repeat}; peak RSS: {peak:.0f} MiB")


def _count(path: Path) -> int:
    return sum(1 for item in read_events([path]) if isinstance(item, Event))


if __name__ == "__main__":
    main()

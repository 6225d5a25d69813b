"""The whole ESCU corpus to every target, with --jobs 1 and 2: wall time, peak memory, successes per target.

Usage: python bench/targets_corpus.py [CONTENT_ROOT] [--jobs 1,2]   (default ../shared/corpus/escu)

Each run is `translate convert ROOT --to all --jobs N` in a fresh process writing
into a temporary folder (so the time includes writing every file); the runs'
output trees are compared byte for byte. Then the markdown table docs/manual.md quotes (Targets):
per target, rules converted, rules failed, and the main failure reasons.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from translator.emit.reports import reason_kind


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("content", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "shared/corpus/escu")
    ap.add_argument("--jobs", default="1,2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for jobs in args.jobs.split(","):
            out = Path(tmp) / f"jobs{jobs}"
            cmd = [sys.executable, "-m", "translator.cli", "convert", str(args.content), "--to", "all", "--jobs", jobs,
                   "--rules-out", str(out / "rules"), "--out", str(out / "queries"), "--report", str(out / "r.json"),
                   "-q"]  # fmt: skip
            t0 = time.perf_counter()
            # /usr/bin/time reports the peak RSS of the run's largest process
            proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
            secs = time.perf_counter() - t0
            peak = int(proc.stderr.strip().splitlines()[-1]) / 1024
            files = sum(1 for p in out.rglob("*") if p.is_file())
            print(f"--jobs {jobs}: {secs:6.1f} s wall, peak RSS {peak:.0f} MiB (largest process), {files:,} files")
            runs.append(out)
        if len(runs) == 2:
            same = _same_tree(runs[0] / "rules", runs[1] / "rules") and _same_tree(
                runs[0] / "queries", runs[1] / "queries"
            )
            print(f"output trees identical across --jobs: {same}")
        table(json.loads((runs[0] / "r.json").read_text()))


def _same_tree(a: Path, b: Path) -> bool:
    left = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    right = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if left != right:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(p) for p in left], shallow=False)
    return not mismatch and not errors


def table(report: dict) -> None:  # type: ignore[type-arg]
    with_rule = [d for d in report["detections"] if d.get("sigma")]
    targets = sorted({t for d in with_rule for t in (*d["outputs"], *d["target_errors"])})
    print(f"\n{len(with_rule)} Sigma rules (of {report['summary']['total']} detections)\n")
    print("| target | converted | failed | main failure reasons |")
    print("| --- | --- | --- | --- |")
    for t in targets:
        ok = sum(1 for d in with_rule if t in d["outputs"])
        reasons = Counter(reason_kind(d["target_errors"][t]) for d in with_rule if t in d["target_errors"])
        top = "; ".join(f"{k} ({n})" for k, n in reasons.most_common(2)).replace("|", "\\|")
        print(f"| {t} | {ok:,} | {len(with_rule) - ok:,} | {top} |")


if __name__ == "__main__":
    main()

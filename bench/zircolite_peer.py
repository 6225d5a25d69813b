"""`translate eval` against the peer Zircolite, on the same Sigma rules and EVTX files, in one run.

Usage: python bench/zircolite_peer.py [--rules DIR] [--events DIR] [--zircolite-python PY]
                                      [--zircolite DIR] [--repeat N]
(defaults: SigmaHQ's Windows rules and the EVTX attack samples under ../shared/corpus,
$HOME/.zvenv/bin/python, ../shared/tools/zircolite, N=3)

Zircolite is run as its README says (its own venv, `-p sysmon -p windows-logsources`), in a
temporary folder: once with `-sr` to get the converted ruleset (untimed; it also warms the
page cache), then N times from the YAML rules and N times from that JSON ruleset, interleaved
with N runs of ours. Wall time is measured around each process; peak RSS comes from
`/usr/bin/time -f %M` (the largest single process of the tree, not a sum).

Then both tools' matches are counted per (rule title, EVTX file name) and the rules whose
counts differ are printed. Zircolite reports only the file's base name, so files are keyed
by base name on both sides (identical copies under two folders are summed on both sides).
Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"  # ../shared beside the checkout
CORPUS = SHARED / "corpus"
DEFAULT_RULES = CORPUS / "sigmahq-windows" / "rules-windows"
DEFAULT_EVENTS = CORPUS / "evtx-attack-samples"
DEFAULT_ZIRCOLITE = SHARED / "tools" / "zircolite"
DEFAULT_ZPYTHON = Path.home() / ".zvenv" / "bin" / "python"
TRANSLATE = Path(sys.executable).with_name("translate")
GNU_TIME = Path("/usr/bin/time")
TIMEOUT = 3600

Key = tuple[str, str]  # (rule title, EVTX base name)


@dataclass
class Timing:
    """Wall seconds and peak RSS (KiB, None if unknown) of every run of one tool."""

    name: str
    walls: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    events: int | None = None


def run_timed(cmd: list[str], cwd: Path, stdout: Path | None, timing: Timing | None) -> None:
    """Run `cmd` in `cwd` (stdout to a file or discarded), add its wall time and peak RSS to `timing`."""
    rss_file = cwd / ".rss"
    full = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file), *cmd] if GNU_TIME.exists() else cmd
    with open(stdout, "wb") if stdout else open(os.devnull, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.run(full, cwd=cwd, stdout=out, stderr=subprocess.PIPE, timeout=TIMEOUT, check=False)
        wall = time.perf_counter() - start
    if proc.returncode:
        tail = proc.stderr.decode(errors="replace")[-2000:]
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    if timing is None:
        return
    timing.walls.append(wall)
    if rss_file.exists():
        last = rss_file.read_text().strip().splitlines()[-1:]
        if last and last[0].isdigit():
            timing.rss_kib.append(int(last[0]))
        rss_file.unlink()


def zircolite_cmd(zpython: Path, zdir: Path, events: Path, ruleset: Path, out: Path, *extra: str) -> list[str]:
    """Zircolite's command line as its README gives it (quiet, log file in the run's folder)."""
    return [
        str(zpython),
        str(zdir / "zircolite.py"),
        "-c",
        str(zdir / "config" / "config.yaml"),
        "-e",
        str(events),
        "-r",
        str(ruleset),
        "-p",
        "sysmon",
        "-p",
        "windows-logsources",
        "-o",
        str(out),
        "-l",
        str(out.with_suffix(".log")),
        "-q",
        *extra,
    ]


def zircolite_events(log: Path) -> int | None:
    """The event count Zircolite logged ("Total events processed: 8,255"), if any."""
    found = re.search(r"Total events processed:\D*([\d,]+)", log.read_text(errors="replace")) if log.exists() else None
    return int(found.group(1).replace(",", "")) if found else None


def ours_counts(result: dict[str, Any]) -> tuple[Counter[Key], dict[Key, list[str]]]:
    """Per (title, file name) match counts and event references (`#N`) from `translate eval --json`."""
    counts: Counter[Key] = Counter()
    refs: dict[Key, list[str]] = defaultdict(list)
    for rule in result["rules"]:
        for match in rule["matches"]:
            path, _, ordinal = match.rpartition("#")
            key = (rule["title"], Path(path).name)
            counts[key] += 1
            refs[key].append(f"#{ordinal}")
    return counts, refs


def zircolite_counts(result: list[dict[str, Any]]) -> tuple[Counter[Key], dict[Key, list[str]]]:
    """Per (title, file name) match counts and EventRecordIDs from Zircolite's JSON output."""
    counts: Counter[Key] = Counter()
    refs: dict[Key, list[str]] = defaultdict(list)
    for rule in result:
        for match in rule["matches"]:
            key = (rule["title"], str(match.get("OriginalLogfile", "?")))
            counts[key] += 1
            refs[key].append(f"rec {match.get('EventRecordID', '?')}")
    return counts, refs


def print_table(timings: list[Timing]) -> None:
    """One line per tool: wall min/median, events per second (on the min), peak RSS."""
    print(f"{'tool':<28} {'runs':>4} {'wall min':>9} {'wall med':>9} {'events':>7} {'events/s':>9} {'peak RSS':>9}")
    for t in timings:
        best, med = min(t.walls), statistics.median(t.walls)
        rate = f"{t.events / best:,.0f}" if t.events else "?"
        rss = f"{max(t.rss_kib) / 1024:,.0f} MiB" if t.rss_kib else "?"
        print(f"{t.name:<28} {len(t.walls):>4} {best:>8.2f}s {med:>8.2f}s {t.events or '?':>7} {rate:>9} {rss:>9}")


def compare(
    ours: tuple[Counter[Key], dict[Key, list[str]]],
    theirs: tuple[Counter[Key], dict[Key, list[str]]],
    all_titles: set[str],
) -> None:
    """Print agreement counts and, per differing rule, each file's counts on both sides."""
    (ocount, orefs), (zcount, zrefs) = ours, theirs
    pairs = set(ocount) | set(zcount)
    differing = sorted(k for k in pairs if ocount[k] != zcount[k])
    bad_rules = {title for title, _ in differing}
    matched_rules = {title for title, _ in pairs}
    print(
        f"\n(rule, file) pairs matched by either: {len(pairs)}; agree {len(pairs) - len(differing)}, "
        f"differ {len(differing)}"
    )
    print(
        f"rules matched by either: {len(matched_rules)}; agree {len(matched_rules - bad_rules)}, differ "
        f"{len(bad_rules)}; matched by neither: {len(all_titles - matched_rules)}"
    )
    current = ""
    for title, name in differing:
        if title != current:
            print(f"\n{title}")
            current = title
        key = (title, name)
        detail = "; ".join(
            f"{side}: {' '.join(refs[key][:6])}{' ...' if len(refs[key]) > 6 else ''}"
            for side, refs in (("ours", orefs), ("zircolite", zrefs))
            if refs.get(key)
        )
        print(f"  {name}: ours {ocount[key]}, zircolite {zcount[key]}  ({detail})")


def main() -> None:
    """Time both tools, print the table, compare their matches."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="Sigma rule folder")
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS, help="EVTX folder")
    parser.add_argument("--zircolite-python", type=Path, default=DEFAULT_ZPYTHON, help="python of Zircolite's venv")
    parser.add_argument("--zircolite", type=Path, default=DEFAULT_ZIRCOLITE, help="Zircolite's folder")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tool")
    args = parser.parse_args()
    rules, events, zpython, zdir = (
        p.absolute() for p in (args.rules, args.events, args.zircolite_python, args.zircolite)
    )
    for path in (rules, events, zpython, zdir / "zircolite.py", TRANSLATE):
        if not path.exists():
            sys.exit(f"missing: {path}")

    with tempfile.TemporaryDirectory(prefix="zircolite-peer-") as tmp_name:
        tmp = Path(tmp_name)
        convert_dir = tmp / "convert"
        convert_dir.mkdir()
        print("converting the rules with Zircolite (-sr, untimed) ...", flush=True)
        run_timed(zircolite_cmd(zpython, zdir, events, rules, convert_dir / "out.json", "-sr"), convert_dir, None, None)
        saved = sorted(convert_dir.glob("ruleset-*.json"))
        if not saved:
            sys.exit("Zircolite saved no ruleset-*.json")
        ruleset = tmp / "ruleset.json"
        shutil.move(saved[0], ruleset)
        converted = {rule["title"] for rule in json.loads(ruleset.read_text())}

        ours_t, cached_t, zyaml_t, zjson_t = (
            Timing("ours (YAML, --no-cache)"),
            Timing("ours (rule cache warm)"),
            Timing("zircolite (YAML)"),
            Timing("zircolite (pre-converted)"),
        )
        ours_cmd = [str(TRANSLATE), "eval", str(rules), "--events", str(events), "--json"]
        cache = ["--cache", str(tmp / "rule-cache")]
        run_timed([*ours_cmd, *cache], tmp, None, None)  # fills the rule cache (untimed)
        for i in range(args.repeat):
            print(f"run {i + 1}/{args.repeat} ...", flush=True)
            out = tmp / "ours.json"
            run_timed([*ours_cmd, "--no-cache"], tmp, out, ours_t)
            run_timed([*ours_cmd, *cache], tmp, tmp / "ours_cached.json", cached_t)
            for timing, source, name in ((zyaml_t, rules, "zyaml"), (zjson_t, ruleset, "zjson")):
                run_dir = tmp / f"{name}{i}"
                run_dir.mkdir()
                run_timed(zircolite_cmd(zpython, zdir, events, source, run_dir / "out.json"), run_dir, None, timing)
                timing.events = zircolite_events(run_dir / "out.log")

        ours_result = json.loads(out.read_text())
        ours_t.events = cached_t.events = ours_result["summary"]["events"]
        if json.loads((tmp / "ours_cached.json").read_text()) != ours_result:
            sys.exit("ours with the rule cache matched other events than without it")
        zyaml = zircolite_counts(json.loads((tmp / "zyaml0" / "out.json").read_text()))
        zjson = zircolite_counts(json.loads((tmp / "zjson0" / "out.json").read_text()))

    print()
    print_table([ours_t, cached_t, zyaml_t, zjson_t])
    summary = ours_result["summary"]
    print(
        f"\nours: {summary['rules']} rules, {summary['not_evaluated']} not evaluated, {summary['unreadable']} "
        f"unreadable events; zircolite converted {len(converted)} rules"
    )
    all_titles = {rule["title"] for rule in ours_result["rules"]}
    ocount = ours_counts(ours_result)
    missing = sorted(all_titles - converted)
    if missing:
        print(f"not converted by Zircolite ({len(missing)}; ours' matches in brackets):")
        for title in missing:
            print(f"  {title} [{sum(n for (t, _), n in ocount[0].items() if t == title)}]")
    if zyaml[0] != zjson[0]:
        print("NOTE: Zircolite's YAML and pre-converted runs matched differently; comparing the YAML run")
    compare(ocount, zyaml, all_titles)


if __name__ == "__main__":
    main()

"""Conversion statuses over the corpus, by search family and by data model / source (markdown).

Usage: python bench/coverage.py [CONTENT_ROOT]   (default ../shared/corpus/escu)
Prints the tables docs/coverage.md quotes. Family: `raw` (the search starts with search
terms), `tstats` (a data-model search), `other` (inputlookup, mstats, from, ...).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

from translator.content import iter_detection_files, load_content, load_detection
from translator.errors import TranslatorError
from translator.spl import ast
from translator.workflow import STATUSES, ConvertOptions, convert_detection, expand_and_parse


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/corpus/escu"
    content = load_content(root)
    opts = ConvertOptions(write=False)
    by_family: dict[str, Counter[str]] = defaultdict(Counter)
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for path in iter_detection_files(root):
        det = load_detection(path)
        res = convert_detection(det, content, Path(path.name), opts)
        family, source = classify(det.search, content, path.name, res.rule_yaml)
        by_family[family][res.status] += 1
        by_source[source][res.status] += 1
    table("family", by_family)
    print()
    table("data model / logsource", by_source, limit=25)


def classify(search: str, content: object, origin: str, rule_yaml: str | None) -> tuple[str, str]:
    try:
        pipeline = expand_and_parse(search, content, origin)  # type: ignore[arg-type]
    except TranslatorError:
        return "error", "(does not parse)"
    first = pipeline.commands[0]
    if isinstance(first, ast.TstatsCommand):
        return "tstats", f"datamodel {first.datamodel}"
    if isinstance(first, ast.SearchCommand) and not first.explicit:
        return "raw", _logsource(rule_yaml)
    return "other", f"starts with {ast.command_name(first)}"


def _logsource(rule_yaml: str | None) -> str:
    if not rule_yaml:
        return "raw, no rule"
    import yaml

    ls = yaml.safe_load(rule_yaml.split("\n---\n")[0]).get("logsource", {})
    return "raw " + "/".join(ls[k] for k in ("product", "category", "service") if k in ls)


def table(title: str, rows: dict[str, Counter[str]], limit: int | None = None) -> None:
    print(f"| {title} | total | " + " | ".join(STATUSES) + " |")
    print("| --- " * (len(STATUSES) + 2) + "|")
    ordered = sorted(rows.items(), key=lambda kv: -sum(kv[1].values()))
    shown, rest = (ordered[:limit], ordered[limit:]) if limit else (ordered, [])
    if rest:
        merged: Counter[str] = Counter()
        for _, c in rest:
            merged.update(c)
        shown.append((f"{len(rest)} others", merged))
    total: Counter[str] = Counter()
    for name, c in shown:
        total.update(c)
        print(f"| {name} | {sum(c.values())} | " + " | ".join(str(c[s]) for s in STATUSES) + " |")
    print(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[s]) for s in STATUSES) + " |")


if __name__ == "__main__":
    main()

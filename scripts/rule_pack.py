"""Regenerate the rule pack: sigma_rules/ (the ESCU corpus in Sigma) and outputs/ (its queries).

Usage: python scripts/rule_pack.py [--check] [--corpus DIR]   (from the repository root; default
../shared/corpus/escu)

The pack is `translate convert` over the corpus into the repository's own default output
folders, one file per detection in the corpus's tree, plus a README in each folder saying how it
was produced, from which corpus (its version and a digest of its files) and under which licence.
`--check` regenerates into a temporary folder and compares byte for byte: exit 1 and the first
differing files when the pack is not current (a test runs it), so every change to the converter
shows up as a reviewable diff of the pack.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("splunk", "lucene", "esql", "eql", "kusto")
CORPUS = Path("../shared/corpus/escu")  # as given to convert: the manifests record it


def corpus_facts(corpus: Path) -> tuple[str, str]:
    """(the app version contentctl.yml states, a sha256 over the files the conversion reads)."""
    meta = yaml.safe_load((corpus / "contentctl.yml").read_text()) if (corpus / "contentctl.yml").is_file() else {}
    version = str(((meta or {}).get("app") or {}).get("version", "unknown"))
    digest = hashlib.sha256()
    for folder in ("detections", "macros", "lookups", "data_sources"):
        for path in sorted((corpus / folder).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(corpus).as_posix().encode() + b"\0" + path.read_bytes())
    return version, digest.hexdigest()


README = """# {title}

{what}, converted by this repository's `translate convert` from Splunk's Enterprise Security
Content Update (ESCU) detections: one file per detection, in the corpus's `detections/` tree.
Do not edit by hand: regenerate with

    python scripts/rule_pack.py

(it runs `translate convert {corpus} --to {targets} --rules-out sigma_rules --out outputs --jobs 2`;
`python scripts/rule_pack.py --check` and a test check that the files are current).

- Source: ESCU app version {version} (`{corpus}`, files digest sha256 `{digest}` over its
  detections, macros, lookups and data sources).
- Licence: ESCU is licensed under the Apache License, Version 2.0 (copyright Splunk Inc.); these
  files are derived from it and are distributed under the same licence (see `LICENSE` at the
  repository root). They state what the converter made of each detection, not Splunk's own
  rules.
- `{manifest}` lists what the run wrote, so the next run removes what it no longer produces.
"""


def write_readmes(rules: Path, outputs: Path, corpus: Path) -> None:
    version, digest = corpus_facts(corpus)
    common = {"corpus": CORPUS.as_posix(), "targets": " --to ".join(TARGETS), "version": version, "digest": digest,
              "manifest": ".translate-manifest.json"}  # fmt: skip
    (rules / "README.md").write_text(
        README.format(title="sigma_rules: the ESCU corpus as Sigma rules", what="Sigma rules", **common)
    )
    (outputs / "README.md").write_text(
        README.format(
            title="outputs: the corpus's queries per target",
            what=f"The queries for {', '.join(TARGETS)} of the Sigma rules in `sigma_rules/`",
            **common,
        )
    )


def generate(rules: Path, outputs: Path, corpus: Path) -> None:
    targets = [x for t in TARGETS for x in ("--to", t)]
    cmd = [sys.executable, "-m", "translator.cli", "convert", CORPUS.as_posix(), *targets,
           "--rules-out", str(rules), "--out", str(outputs), "--jobs", "2", "-q"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: some targets fail some rules, as the report says
        sys.exit(f"convert failed ({done.returncode}): {done.stderr.strip()}")
    write_readmes(rules, outputs, corpus)


def differences(a: Path, b: Path) -> list[str]:
    out: list[str] = []

    def walk(cmp: filecmp.dircmp[str], rel: Path) -> None:
        out.extend(str(rel / n) for n in (*cmp.left_only, *cmp.right_only, *cmp.diff_files, *cmp.funny_files))
        for name, sub in cmp.subdirs.items():
            walk(sub, rel / name)

    walk(filecmp.dircmp(a, b, ignore=[]), Path(a.name))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with a fresh run instead of writing")
    args = ap.parse_args()
    corpus = (REPO / CORPUS).resolve()
    if not (corpus / "detections").is_dir():
        sys.exit(f"no ESCU corpus at {corpus}")
    if not args.check:
        generate(REPO / "sigma_rules", REPO / "outputs", corpus)
        print("sigma_rules/ and outputs/ regenerated")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh_rules, fresh_outputs = Path(tmp) / "sigma_rules", Path(tmp) / "outputs"
        generate(fresh_rules, fresh_outputs, corpus)
        diffs = differences(REPO / "sigma_rules", fresh_rules) + differences(REPO / "outputs", fresh_outputs)
    if diffs:
        print(f"the rule pack is not current ({len(diffs)} paths differ; run python scripts/rule_pack.py):")
        print("\n".join(f"  {d}" for d in diffs[:30]))
        return 1
    print("the rule pack is current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

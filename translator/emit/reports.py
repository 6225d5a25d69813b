"""Reports people and CI read: JUnit XML and one self-contained HTML page.

Both are pure functions of the conversion results (the JSON report's content plus
the rule text and queries), so the same run always gives the same bytes.
JUnit: one test case per detection; ``error`` is an error, a target that failed
is a failure, ``unsupported`` is skipped, ``partial`` passes with its reasons in
the output. HTML: summaries by family, data model / logsource and target, a
chart of statuses, then every detection with its reasons, Sigma rule and queries;
no script or style is fetched from anywhere.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

STATUSES = ("exact", "partial", "unsupported", "error")
COLORS = {"exact": "#2e7d32", "partial": "#f9a825", "unsupported": "#8d6e63", "error": "#c62828"}
PARITY_STATUSES = ("equal", "differ", "untested", "not_evaluable", "error")
PARITY_COLORS = {
    "equal": "#2e7d32", "differ": "#c62828", "untested": "#9e9d24", "not_evaluable": "#8d6e63", "error": "#6a1b9a",
}  # fmt: skip


class Result(Protocol):
    file: str
    id: str
    name: str
    status: str
    reasons: list[str]
    family: str
    group: str
    target_errors: dict[str, str]
    rule_yaml: str | None
    queries: dict[str, str]
    search: str


# details bigger than this in all go into one compressed block, opened per detection on demand
LAZY_BYTES = 2_000_000


# -- JUnit ---------------------------------------------------------------------------------------


def junit_xml(results: list[Result], suite: str = "translate convert") -> str:
    counts = Counter(r.status for r in results)
    failures = sum(1 for r in results if r.target_errors and r.status != "error")
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(counts["error"]),
        skipped=str(counts["unsupported"]),
    )
    for r in results:
        case = ET.SubElement(root, "testcase", classname=r.family or "unparsed", name=r.name or r.file, file=r.file)
        detail = "\n".join(r.reasons)
        if r.status == "error":
            ET.SubElement(case, "error", message=r.reasons[0] if r.reasons else "error", type="error").text = detail
        elif r.status == "unsupported":
            ET.SubElement(case, "skipped", message=r.reasons[0] if r.reasons else "unsupported")
        elif r.target_errors:
            message = ", ".join(sorted(r.target_errors))
            text = "\n".join(f"{t}: {e}" for t, e in sorted(r.target_errors.items()))
            ET.SubElement(case, "failure", message=f"target(s) failed: {message}", type="target").text = text
        if r.status == "partial":
            ET.SubElement(case, "system-out").text = "partial:\n" + detail
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- HTML ----------------------------------------------------------------------------------------


def html_report(results: list[Result], targets: list[str], title: str = "translate convert report") -> str:
    counts = Counter(r.status for r in results)
    summary = [
        f"<p class=lead>{len(results):,} detections: "
        + ", ".join(f'<b class="s-{s}">{counts[s]:,} {s}</b>' for s in STATUSES)
        + "</p>",
        _status_chart(counts, len(results)),
        "<h2>By search family</h2>",
        _table("family", _by(results, lambda r: r.family or "(does not parse)")),
        "<h2>By data model / logsource</h2>",
        _table("data model / logsource", _by(results, lambda r: r.group or "(does not parse)"), limit=30),
    ]
    if targets:
        summary += ["<h2>By target</h2>", _target_table(results, targets)]
    order = {"error": 0, "unsupported": 2, "partial": 3, "exact": 4}  # errors and failures first
    ranked = sorted(results, key=lambda r: 1 if r.target_errors and r.status != "error" else order[r.status])
    rows = [_detection(r, targets) for r in ranked]
    filters = [*STATUSES, *(["target failed"] if any(r.target_errors for r in results) else [])]
    return _page(title, summary, rows, filters)


def _page(title: str, summary: list[str], detections: list[tuple[str, str]], statuses: Iterable[str]) -> str:
    """The page around a report: head, style, the summary parts, then the detections with a text filter
    and a checkbox per status. ``detections``: (summary line, body) each; bodies too big in all for one
    page go into a compressed block that the page opens when a detection is opened."""
    total = sum(len(body) for _head, body in detections)
    lazy = total > LAZY_BYTES
    rows = [
        f"{head}<div class=body data-i={i}>{'' if lazy else body}</div></details>"
        for i, (head, body) in enumerate(detections)
    ]
    checks = "".join(
        f'<label><input type=checkbox class=st value="{_e(s)}" checked> {_e(s)}</label> ' for s in statuses
    )
    block = []
    if lazy:
        packed = gzip.compress(json.dumps([body for _h, body in detections]).encode("utf-8"), mtime=0)
        block = [f'<script type="application/gzip;base64" id=bodies>{base64.b64encode(packed).decode()}</script>']
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        *summary,
        "<h2>Detections</h2>",
        f"<p id=filters>{checks}</p>",
        '<p><input id=q type=search placeholder="filter by name, status or reason" size=50> '
        "<span id=shown></span></p><div id=list>",
        *rows,
        "</div>",
        *block,
        f"<script>{_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _by(results: Iterable[Result], key: object) -> dict[str, Counter[str]]:
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        rows[key(r)][r.status] += 1  # type: ignore[operator]
    return rows


def _table(title: str, rows: dict[str, Counter[str]], limit: int | None = None) -> str:
    ordered = sorted(rows.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    if limit and len(ordered) > limit:
        rest: Counter[str] = Counter()
        for _, c in ordered[limit:]:
            rest.update(c)
        ordered = [*ordered[:limit], (f"{len(ordered) - limit} others", rest)]
    head = "".join(f"<th>{s}</th>" for s in STATUSES)
    out = [f"<table><tr><th>{_e(title)}</th><th>total</th>{head}<th></th></tr>"]
    for name, c in ordered:
        total = sum(c.values())
        cells = "".join(f"<td>{c[s]:,}</td>" for s in STATUSES)
        out.append(f"<tr><td>{_e(name)}</td><td>{total:,}</td>{cells}<td>{_bar(c, total)}</td></tr>")
    return "".join(out) + "</table>"


def _target_table(results: list[Result], targets: list[str]) -> str:
    out = ["<table><tr><th>target</th><th>queries</th><th>failed</th><th>main failure reasons</th></tr>"]
    with_rule = [r for r in results if r.rule_yaml]
    for t in targets:
        ok = sum(1 for r in with_rule if t in r.queries)
        reasons = Counter(reason_kind(r.target_errors[t]) for r in with_rule if t in r.target_errors)
        top = "; ".join(f"{_e(k)} ({n})" for k, n in reasons.most_common(3))
        out.append(f"<tr><td>{_e(t)}</td><td>{ok:,}</td><td>{len(with_rule) - ok:,}</td><td>{top}</td></tr>")
    return "".join(out) + "</table>"


def reason_kind(error: str) -> str:
    """A backend error's first line without the rule-specific tail, so equal causes group together."""
    return clip(error.splitlines()[0].split(" (while ")[0], 120) if error else ""


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _detection(r: Result, targets: list[str]) -> tuple[str, str]:
    """(the line that opens it, with its reasons; the body: the original SPL beside the Sigma rule,
    then the queries)."""
    reasons = "".join(f"<li>{_e(x)}</li>" for x in r.reasons)
    failed = f' <span class="s-error">({len(r.target_errors)} target(s) failed)</span>' if r.target_errors else ""
    flags = f"{r.status}{' target failed' if r.target_errors else ''}"
    head = (
        f'<details class=det data-status="{_e(flags)}"><summary><b class="s-{r.status}">{r.status}</b> '
        f"{_e(r.name or r.file)}{failed}</summary>{f'<ul>{reasons}</ul>' if reasons else ''}"
        f"<p class=file>{_e(r.file)} · {_e(r.group or '')}</p>"
    )
    body = []
    search = getattr(r, "search", "")
    if search or r.rule_yaml:
        body.append(
            "<div class=pair><div><b>Original SPL</b>"
            f"<pre>{_e(search or '(not available)')}</pre></div><div><b>Sigma rule</b>"
            f"<pre>{_e(r.rule_yaml or '(no rule)')}</pre></div></div>"
        )
    for t in targets:
        if t in r.queries:
            body.append(f"<details><summary>{_e(t)}</summary><pre>{_e(r.queries[t])}</pre></details>")
        elif t in r.target_errors:
            body.append(f'<p class="s-error">{_e(t)} failed: {_e(r.target_errors[t])}</p>')
    return head, "".join(body)


def _status_chart(
    counts: Counter[str], total: int, statuses: tuple[str, ...] = STATUSES, colors: dict[str, str] = COLORS
) -> str:
    """One stacked horizontal bar (inline SVG) with a legend."""
    width, x, rects, legend = 600, 0.0, [], []
    for i, s in enumerate(statuses):
        w = width * counts[s] / total if total else 0
        tip = f"<title>{s}: {counts[s]}</title>"
        rects.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" fill="{colors[s]}">{tip}</rect>')
        legend.append(
            f'<rect x="{i * 200}" y="40" width="12" height="12" fill="{colors[s]}"/>'
            f'<text x="{i * 200 + 18}" y="51" font-size="13">{s} {counts[s]:,} ({_pct(counts[s], total)})</text>'
        )
        x += w
    return (
        f'<svg class=chart width="{max(width, 200 * len(statuses))}" height="60" role="img" aria-label="statuses">'
        + "".join(rects + legend)
        + "</svg>"
    )


def _bar(c: Counter[str], total: int) -> str:
    spans = "".join(
        f'<span style="width:{100 * c[s] / total:.1f}%;background:{COLORS[s]}"></span>' for s in STATUSES if c[s]
    )
    return f"<div class=bar>{spans}</div>"


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "0%"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


# -- parity ----------------------------------------------------------------------------------------


class ParityLike(Protocol):
    results: list[Any]
    events: int

    def summary(self) -> dict[str, int]: ...


def parity_junit(run: ParityLike, suite: str = "translate parity") -> str:
    s = run.summary()
    root = ET.Element(
        "testsuite", name=suite, tests=str(s["total"]), failures=str(s["differ"]), errors=str(s.get("error", 0)),
        skipped=str(s["not_evaluable"] + s["untested"]),
    )  # fmt: skip
    for r in run.results:
        case = ET.SubElement(
            root, "testcase", classname=r.conversion or "unconverted", name=r.name or r.file, file=r.file
        )
        if r.status == "differ":
            lines = [*r.reasons]
            lines += [f"only original: {ref} {r.explain.get(ref, '')}" for ref in r.only_original]
            lines += [f"only sigma: {ref} {r.explain.get(ref, '')}" for ref in r.only_sigma]
            message = f"original matched {r.original_matches} event(s), Sigma {r.sigma_matches}"
            ET.SubElement(case, "failure", message=message, type="differ").text = "\n".join(lines)
        elif r.status == "not_evaluable":
            ET.SubElement(case, "skipped", message=r.reasons[0] if r.reasons else "not evaluable")
        elif r.status == "untested":
            ET.SubElement(case, "skipped", message="untested: neither the original nor the rule matched any event")
        elif r.status == "error":
            ET.SubElement(case, "error", message=r.reasons[0] if r.reasons else "internal error").text = "\n".join(
                r.reasons
            )
        if r.targets:  # the emitted queries run locally: reported, not a failure of the test case
            ET.SubElement(case, "system-out").text = "\n".join(_target_lines(r.targets))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _target_lines(targets: dict[str, dict[str, Any]]) -> list[str]:
    """One line per target whose emitted query ran on the events, and the events one side only matched."""
    lines = []
    for name, check in targets.items():
        detail = f" ({check['reason']})" if check.get("reason") else ""
        lines.append(f"target {name}: {check['status']}{detail}")
        lines += [f"  only the {name} query: {ref}" for ref in check.get("only_query", [])]
        lines += [f"  only the Sigma rule: {ref}" for ref in check.get("only_sigma", [])]
    return lines


def _target_summary_table(results: list[Any]) -> str:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        for name, check in r.targets.items():
            counts[name][check["status"]] += 1
    if not counts:
        return ""
    keys = ("equal", "differ", "not_evaluable")
    head = "".join(f"<th>{k}</th>" for k in keys)
    rows = "".join(
        f"<tr><td>{_e(name)}</td>" + "".join(f"<td>{c[k]:,}</td>" for k in keys) + "</tr>" for name, c in counts.items()
    )
    return f"<h2>Emitted queries run on the same events</h2><table><tr><th>target</th>{head}</tr>{rows}</table>"


def parity_html(run: ParityLike, title: str = "translate parity report") -> str:
    s = run.summary()
    counts = Counter({k: s[k] for k in PARITY_STATUSES})
    evaluable = s["equal"] + s["differ"] + s["untested"]
    summary = [
        f"<p class=lead>{s['total']:,} detections over {run.events:,} events: "
        + ", ".join(f'<b class="p-{k}">{counts[k]:,} {k}</b>' for k in PARITY_STATUSES)
        + f" ({evaluable:,} evaluable; the original fired for {s['original_fired']:,})</p>",
        _status_chart(counts, s["total"], PARITY_STATUSES, PARITY_COLORS),
        "<h2>By conversion status</h2>",
        _parity_table(run.results),
        _target_summary_table(run.results),
    ]
    order = {"error": 0, "differ": 1, "not_evaluable": 2, "untested": 3, "equal": 4}
    rows = [_parity_detection(r) for r in sorted(run.results, key=lambda r: order[r.status])]
    return _page(title, summary, rows, PARITY_STATUSES)


def _parity_table(results: list[Any]) -> str:
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        rows[r.conversion or "(not converted)"][r.status] += 1
    head = "".join(f"<th>{k}</th>" for k in PARITY_STATUSES)
    out = [f"<table><tr><th>conversion</th><th>total</th>{head}</tr>"]
    for name, c in sorted(rows.items(), key=lambda kv: -sum(kv[1].values())):
        cells = "".join(f"<td>{c[k]:,}</td>" for k in PARITY_STATUSES)
        out.append(f"<tr><td>{_e(name)}</td><td>{sum(c.values()):,}</td>{cells}</tr>")
    return "".join(out) + "</table>"


def _explained(r: Any, ref: str) -> str:
    return json.dumps(r.explain.get(ref, {}), default=str)


def _parity_detection(r: Any) -> tuple[str, str]:
    reasons = "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in r.reasons) + "</ul>" if r.reasons else ""
    head = (
        f'<details class=det data-status="{r.status}"><summary><b class="p-{r.status}">{r.status}</b> '
        f"{_e(r.name or r.file)}</summary>{reasons}<p class=file>{_e(r.file)} · conversion "
        f"{_e(r.conversion or '-')} · original {r.original_matches} · Sigma {r.sigma_matches}</p>"
    )
    body: list[str] = []
    for side, refs in (("only the original", r.only_original), ("only the Sigma rule", r.only_sigma)):
        if refs:
            items = "".join(
                f"<li><code>{_e(ref)}</code> <span class=file>{_e(_explained(r, ref))}</span></li>" for ref in refs
            )
            body.append(f"<p>Matched by {side}:</p><ul>{items}</ul>")
    if r.targets:
        body.append("<pre>" + _e("\n".join(_target_lines(r.targets))) + "</pre>")
    return head, "".join(body)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:right}
td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}
.bar{display:flex;width:160px;height:10px;background:#eee}.bar span{display:block;height:10px}
.p-equal{color:#2e7d32}.p-differ{color:#c62828}.p-not_evaluable{color:#6d4c41}.p-untested{color:#827717}.p-error{color:#6a1b9a}
.s-exact{color:#2e7d32}.s-partial{color:#b8860b}.s-unsupported{color:#6d4c41}.s-error{color:#c62828}
details.det{border-bottom:1px solid #eee;padding:4px 0}details.det>summary{cursor:pointer}
details details{margin-left:16px}pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}
.file{color:#666;font-size:12px}.lead{font-size:15px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}.pair pre{white-space:pre-wrap;word-break:break-word}
#filters label{margin-right:10px;white-space:nowrap}
"""

_JS = """
const q=document.getElementById('q'),shown=document.getElementById('shown');
const rows=[...document.querySelectorAll('details.det')],boxes=[...document.querySelectorAll('input.st')];
function filter(){const t=q.value.toLowerCase();const on=new Set(boxes.filter(b=>b.checked).map(b=>b.value));let n=0;
 for(const d of rows){const st=d.dataset.status.split(' ');const failed=st.includes('target');
  const pass=on.has(st[0])||(failed&&on.has('target failed'));
  const ok=pass&&(!t||d.textContent.toLowerCase().includes(t));d.style.display=ok?'':'none';if(ok)n++;}
 shown.textContent=n+' of '+rows.length+' shown';}
const want=new URLSearchParams(location.hash.slice(1)).get('status');
if(want){const keep=new Set(want.split(','));boxes.forEach(b=>b.checked=keep.has(b.value));}
q.addEventListener('input',filter);boxes.forEach(b=>b.addEventListener('change',filter));filter();
const packed=document.getElementById('bodies');let bodies=null;
async function load(){if(bodies)return bodies;const raw=Uint8Array.from(atob(packed.textContent),c=>c.charCodeAt(0));
 const text=await new Response(new Blob([raw]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
 return bodies=JSON.parse(text);}
if(packed)for(const d of rows)d.addEventListener('toggle',async()=>{const b=d.querySelector('div.body');
 if(d.open&&!b.dataset.done){b.dataset.done=1;b.innerHTML=(await load())[+b.dataset.i];}});
"""

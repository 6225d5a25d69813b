"""Processing pipelines of our own, built from the logsource table (``data/logsources.yml``).

pySigma's ``splunk_windows`` pipeline restricts Windows *services* to their event
log (``source=...``) but leaves *categories* open: a ``ps_script`` rule becomes a
search over every event with a ``ScriptBlockText`` field, 4103 events included.
``windows_categories`` adds, for each category the table knows, the event log
and event codes that category means, so the emitted query selects what the Sigma
rule selects. Sources whose events the rule reads under other names (Security
4688 for process_creation: ``NewProcessName``, not ``Image``) are left out: the
query could not test them with the rule's field names.

``splunk_sourcetypes`` does the same for logsources read from other products'
logs (cloud, SaaS, network): pySigma's Splunk backend has no pipeline for them
and would search every sourcetype. Each logsource gets the sourcetypes the
table names for it (``aws/cloudtrail`` -> ``sourcetype IN ("aws:cloudtrail",
"aws:cloudtrail:lake")``), the same table the converter read them from.
"""

from __future__ import annotations

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation

from translator.data import load_table


def windows_categories() -> ProcessingPipeline:
    table = load_table("logsources")
    channels: dict[str, list[str]] = {}
    for channel, ls in table["windows_channels"].items():
        if ls.get("product") == "windows":
            channels.setdefault(ls["service"], []).append(channel)
    renamed = set(table.get("event_field_maps", {}))
    by_category: dict[str, tuple[list[str], list[int]]] = {}
    for row in table["categories"]:
        if f"{row['service']}/{row['category']}" in renamed:
            continue
        sources, codes = by_category.setdefault(row["category"], ([], []))
        for ch in channels.get(row["service"], []):
            sources += [f"WinEventLog:{ch}", f"XmlWinEventLog:{ch}"]
        codes += [int(c) for c in row["event_codes"]]
    items = [
        ProcessingItem(
            identifier=f"translator_windows_{category}",
            transformation=AddConditionTransformation({"source": sources, "EventID": sorted(set(codes))}),
            rule_conditions=[LogsourceCondition(product="windows", category=category)],
        )
        for category, (sources, codes) in sorted(by_category.items())
        if sources and codes
    ]
    return ProcessingPipeline(
        name="translator: Windows categories to event logs and event codes", priority=10, items=items
    )


def splunk_sourcetypes() -> ProcessingPipeline:
    by_logsource: dict[tuple[str, str, str], list[str]] = {}
    for name, ls in load_table("logsources")["sourcetypes"].items():
        key = (ls.get("product", ""), ls.get("category", ""), ls.get("service", ""))
        if key[0] == "windows" and not key[1] and not key[2]:
            continue  # Windows event logs: windows_categories and splunk_windows name them by source
        by_logsource.setdefault(key, []).append(str(name))
    items = [
        ProcessingItem(
            identifier=f"translator_sourcetype_{'_'.join(k for k in key if k)}",
            transformation=AddConditionTransformation({"sourcetype": names}),
            rule_conditions=[
                LogsourceCondition(product=key[0] or None, category=key[1] or None, service=key[2] or None)
            ],
        )
        for key, names in sorted(by_logsource.items())
    ]
    return ProcessingPipeline(name="translator: logsources to their Splunk sourcetypes", priority=10, items=items)

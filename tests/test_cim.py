"""The CIM table's per-feed facts, checked against what the content says of its data sources."""

from __future__ import annotations

from pathlib import Path

import yaml

from translator.data import load_table
from translator.sigma import cim
from translator.sigma import logsource as ls


def test_always_fields_are_listed_by_every_data_source_a_feed_reads(corpus: Path) -> None:
    """A feed's ``always`` fields (set by the add-ons on every event) appear in the field list of each
    ESCU data source ``always_from`` names: the data sources whose events the feed reads."""
    fields: dict[str, set[str]] = {}
    for path in sorted((corpus / "data_sources").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("fields"), list):
            fields[data["name"]] = set(map(str, data["fields"]))
    checked = 0
    for dataset, spec in load_table("cim")["datasets"].items():
        for feed in spec["feeds"]:
            always = feed.get("always", [])
            assert bool(always) == bool(feed.get("always_from")), (dataset, feed["logsource"])
            for name in feed.get("always_from", []):
                assert name in fields, (dataset, name)
                missing = [f for f in always if f not in fields[name]]
                assert not missing, (dataset, name, missing)
                checked += 1
    assert checked >= 8


def test_feeds_carry_their_always_fields() -> None:
    feed = cim.select_feed("Endpoint.Processes", ("Sysmon EventID 1",))
    assert feed is not None and feed.always == {"action", "vendor_product"}
    assert feed.fields["process_exec"].value == "basename" and feed.fields["user_id"].sigma == "UserID"
    dns = cim.select_feed("Network_Resolution", ("Sysmon EventID 22",))
    assert dns is not None and dns.always == {"vendor_product"}


def test_constants_need_a_logsource_read_from_one_event_log() -> None:
    assert ls.constant_fields({"product": "windows", "service": "security"}) == {"vendor_product"}
    assert ls.constant_fields({"product": "windows", "category": "ps_script"}) == {"vendor_product"}
    assert ls.constant_fields({"product": "windows", "category": "process_creation"}) == set()  # Sysmon + 4688
    assert ls.constant_fields({"product": "aws", "service": "cloudtrail"}) == set()
    custom = {"product": "windows", "service": "x", "definition": 'Splunk: source="XmlWinEventLog:X"'}
    assert ls.constant_fields(custom) == set()

"""Content loading by shape: lookup schemas of two releases, data sources, retired folders, schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from translator.content import iter_detection_files, load_content, load_detection
from translator.content.loader import read_yaml
from translator.content.schedule import Schedule, deployment_schedules, detection_schedule
from translator.errors import ContentError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "content"
    write(r / "macros" / "m.yml", "name: m\ndefinition: sourcetype=x\n")
    return r


def test_lookup_schema_2024_filename_and_text_flags(root: Path) -> None:
    write(root / "lookups" / "tools.csv", "name,tool\n*evil*,yes\n")
    write(
        root / "lookups" / "tools.yml",
        "name: tools\nfilename: tools.csv\nmatch_type: WILDCARD(name)\ncase_sensitive_match: 'false'\n"
        "default_match: 'false'\nmin_matches: 1\n",
    )
    lk = load_content(root).lookups["tools"]
    assert lk.path == root / "lookups" / "tools.csv"
    assert lk.wildcard_fields == {"name"} and not lk.case_sensitive and lk.default == "false"
    assert lk.rows() == ({"name": "*evil*", "tool": "yes"},)


def test_lookup_schema_2025_no_filename_list_match_type_real_booleans(root: Path) -> None:
    write(root / "lookups" / "domains.csv", "domain,app\n*.example,a\n")
    write(
        root / "lookups" / "domains.yml",
        "name: domains\nlookup_type: csv\nversion: 3\nmatch_type:\n- WILDCARD(domain)\n- WILDCARD(app)\n"
        "case_sensitive_match: false\nmin_matches: 1\nsome_future_key: {x: 1}\n",
    )
    lk = load_content(root).lookups["domains"]
    assert lk.path == root / "lookups" / "domains.csv"
    assert lk.wildcard_fields == {"domain", "app"} and not lk.case_sensitive
    assert lk.default is None  # no default_match
    assert lk.rows()[0]["domain"] == "*.example"


def test_lookups_that_are_not_csv_tables_are_left_out(root: Path) -> None:
    write(root / "lookups" / "store.yml", "name: store\ncollection: store\nfields_list: _key, x\n")
    write(root / "lookups" / "model.yml", "name: model\nlookup_type: mlmodel\n")
    write(root / "lookups" / "kv.yml", "name: kv\nlookup_type: kvstore\n")
    assert load_content(root).lookups == {}


def test_a_date_yaml_cannot_build_is_kept_as_text(root: Path) -> None:
    path = write(root / "lookups" / "odd.yml", "name: odd\ndate: 2025-22-10\nlookup_type: csv\n")
    assert read_yaml(path)["date"] == "2025-22-10"
    write(root / "lookups" / "odd.csv", "a\n1\n")
    assert "odd" in load_content(root).lookups


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yml", "name: x\nsearch: [unclosed\n")
    with pytest.raises(ContentError) as info:
        read_yaml(path)
    assert info.value.location is not None and info.value.location.line >= 2


def test_data_sources_are_read_by_shape(root: Path) -> None:
    write(
        root / "data_sources" / "a.yml",
        "name: Cisco Thing\nsource: cisco:thing\nsourcetype: cisco:thing\nseparator: EventType\n"
        "output_fields: [a, b]\nsupported_TA: [{name: TA, version: 1}]\n",
    )
    write(root / "data_sources" / "b.yml", "name: Bare\n")
    write(root / "data_sources" / "c.yml", "description: no name\n")
    ds = load_content(root).data_sources
    assert set(ds) == {"Cisco Thing", "Bare"}
    assert ds["Cisco Thing"].terms() == [("source", "cisco:thing"), ("sourcetype", "cisco:thing")]
    assert ds["Cisco Thing"].separator == "EventType"
    assert ds["Bare"].terms() == []


def test_retired_detections_are_skipped_when_walking(root: Path) -> None:
    det = "name: D\nid: x\nsearch: sourcetype=x a=1\n"
    for sub in ("endpoint", "deprecated", "removed", "endpoint/Removed"):
        write(root / "detections" / sub / "d.yml", det)
    found = [p.relative_to(root / "detections").as_posix() for p in iter_detection_files(root)]
    assert found == ["endpoint/d.yml"]
    named = root / "detections" / "removed" / "d.yml"
    assert list(iter_detection_files(named)) == [named]  # a file named explicitly is used


def test_unknown_detection_keys_are_ignored(root: Path) -> None:
    path = write(
        root / "detections" / "x.yml",
        "name: D\nid: x\nsearch: sourcetype=x a=1\ncreation_date: '2025-01-01'\nmitre_attack_id: [T1059]\n"
        "analytic_story: [S]\nsomething_new: {deep: [1, 2]}\n",
    )
    det = load_detection(path)
    assert det.name == "D" and det.search == "sourcetype=x a=1"


@pytest.mark.parametrize(
    ("earliest", "latest", "window"),
    [
        ("-70m@m", "-10m@m", "1h"),
        ("-24h", "now", "1d"),
        ("-1d@d", "@d", "1d"),
        ("-15m", "", "15m"),
        ("-90s", "now", "90s"),
        ("-1d@d", "-10m@m", None),  # snapped to different units: no fixed length
        ("rt-5m", "rt", None),
        ("-5m", "-10m", None),
    ],
)
def test_schedule_window(earliest: str, latest: str, window: str | None) -> None:
    assert Schedule(earliest, latest).window() == window


def test_detection_schedule_shapes() -> None:
    nested = {
        "deployment": {"scheduling": {"cron_schedule": "*/5 * * * *", "earliest_time": "-5m", "latest_time": "now"}}
    }
    assert detection_schedule(nested) == Schedule("-5m", "now", "*/5 * * * *", "the detection")
    saved = {"dispatch.earliest_time": "-30m@m", "dispatch.latest_time": "@m", "cron_schedule": "*/30 * * * *"}
    assert detection_schedule(saved).window() == "30m"  # type: ignore[union-attr]
    ragged = {"dispatch.earliest_time": "-30m@m", "dispatch.latest_time": "now"}  # 30 to 31 minutes long
    assert detection_schedule(ragged).window() is None  # type: ignore[union-attr]
    assert detection_schedule({"search": "x", "drilldown_searches": [{"earliest_offset": "$info_min_time$"}]}) is None


def test_deployments_by_type_and_contentctl_defaults(tmp_path: Path) -> None:
    files = {tmp_path / "d.yml": {"type": "TTP", "scheduling": {"earliest_time": "-2h", "latest_time": "now"}}}
    mine = deployment_schedules(tmp_path, files)
    assert mine["ttp"].window() == "2h" and "anomaly" not in mine
    assert deployment_schedules(tmp_path, {}) == {}  # no contentctl project: no schedule
    (tmp_path / "contentctl.yml").write_text("path: .\n")
    defaults = deployment_schedules(tmp_path, {})
    assert defaults["ttp"].window() == defaults["anomaly"].window() == "1h"
    assert "contentctl" in defaults["ttp"].origin


def test_content_schedule_for_a_detection(root: Path) -> None:
    write(
        root / "deployments" / "ttp.yml", "name: x\ntype: TTP\nscheduling:\n  earliest_time: -4h\n  latest_time: now\n"
    )
    content = load_content(root)
    ttp = load_detection(write(root / "detections" / "a.yml", "name: A\ntype: TTP\nsearch: sourcetype=x\n"))
    own = load_detection(
        write(
            root / "detections" / "b.yml",
            "name: B\ntype: TTP\nsearch: sourcetype=x\ndeployment:\n  scheduling:\n    earliest_time: -10m\n",
        )
    )
    hunting = load_detection(write(root / "detections" / "c.yml", "name: C\ntype: Hunting\nsearch: sourcetype=x\n"))
    assert content.schedule(ttp).window() == "4h"  # type: ignore[union-attr]
    assert content.schedule(own).window() == "10m"  # type: ignore[union-attr]
    assert content.schedule(hunting) is None

"""Event readers and flattening: every format, the Windows shapes, and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import SHARED

from translator.events import Event, Problem, read_events, read_file

EVTX_SAMPLES = SHARED / "corpus" / "evtx-attack-samples"

SERVICE_XML = (
    "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
    "<Provider Name='Service Control Manager' Guid='{555908d1-a6d7-4695-8e1e-26931d2012f4}' "
    "EventSourceName='Service Control Manager'/><EventID Qualifiers='16384'>7045</EventID><Version>0</Version>"
    "<Level>4</Level><Task>0</Task><Opcode>0</Opcode><Keywords>0x8080000000000000</Keywords>"
    "<TimeCreated SystemTime='2019-03-03T09:20:28.621489Z'/><EventRecordID>4480</EventRecordID><Correlation/>"
    "<Execution ProcessID='444' ThreadID='140'/><Channel>System</Channel><Computer>host1</Computer>"
    "<Security UserID='S-1-5-18'/></System><EventData><Data Name='ServiceName'>spoolfool</Data>"
    "<Data Name='ImagePath'>cmd.exe /c echo</Data></EventData></Event>"
)
UNNAMED_XML = (
    "<Event><System><Provider Name='App'/><EventID>1000</EventID><Channel>Application</Channel>"
    "<Computer>h</Computer></System><EventData><Data>first</Data><Data>second</Data></EventData></Event>"
)
USERDATA_XML = (
    "<Event><System><Provider Name='Microsoft-Windows-Eventlog'/><EventID>1102</EventID>"
    "<Channel>Security</Channel><Computer>dc1</Computer></System><UserData>"
    "<LogFileCleared xmlns='http://manifests.microsoft.com/win/2004/08/windows/eventlog'>"
    "<SubjectUserName>alice</SubjectUserName><SubjectDomainName>CORP</SubjectDomainName></LogFileCleared>"
    "</UserData></Event>"
)


def events(path: Path) -> tuple[list[Event], list[Problem]]:
    items = list(read_events([path]))
    return [i for i in items if isinstance(i, Event)], [i for i in items if isinstance(i, Problem)]


def test_xml_export_one_per_line_and_concatenated(tmp_path: Path) -> None:
    per_line = tmp_path / "export.xml"
    per_line.write_text(f"{SERVICE_XML}\n{UNNAMED_XML}\n{USERDATA_XML}\n")
    evs, problems = events(per_line)
    assert problems == []
    assert [e.ref for e in evs] == [f"{per_line}#1", f"{per_line}#2", f"{per_line}#3"]
    svc, unnamed, cleared = (e.fields for e in evs)
    assert svc["EventID"] == 7045 and svc["Qualifiers"] == "16384"
    assert svc["Provider_Name"] == "Service Control Manager" and svc["Channel"] == "System"
    assert svc["ServiceName"] == "spoolfool" and svc["ImagePath"] == "cmd.exe /c echo"
    assert svc["UserID"] == "S-1-5-18" and svc["TimeCreated"] == "2019-03-03T09:20:28.621489Z"
    assert unnamed["Data"] == ["first", "second"]
    assert cleared["SubjectUserName"] == "alice" and cleared["EventID"] == 1102
    joined = tmp_path / "joined.xml"
    joined.write_text(SERVICE_XML + UNNAMED_XML + "\n" + USERDATA_XML[:200] + "\n" + USERDATA_XML[200:] + "\n")
    evs2, problems2 = events(joined)
    assert problems2 == [] and [e.fields for e in evs2] == [svc, unnamed, cleared]
    assert [e.ref.rsplit("#", 1)[1] for e in evs2] == ["1", "1", "2"]  # the line each event starts on


def test_json_lines_shapes(tmp_path: Path) -> None:
    nested = {
        "Event": {
            "System": {"EventID": 4104, "Channel": "Microsoft-Windows-PowerShell/Operational"},
            "EventData": {"ScriptBlockText": "iex (x)"},
        }
    }
    beat = {
        "@timestamp": "2024-01-01T00:00:00Z",
        "winlog": {
            "event_id": "1",
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "computer_name": "ws1",
            "event_data": {"Image": "C:\\Windows\\cmd.exe"},
        },
    }
    cloud = {
        "eventName": "ConsoleLogin",
        "userIdentity": {"arn": "arn:aws:iam::1:user/a"},
        "resources": [{"ARN": "r1"}, {"ARN": "r2"}],
        "tags": ["a", "b"],
    }
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in (nested, beat, cloud)) + "\n")
    (a, b, c), problems = events(path)
    assert problems == []
    assert a.fields == {
        "EventID": 4104,
        "Channel": "Microsoft-Windows-PowerShell/Operational",
        "ScriptBlockText": "iex (x)",
    }
    assert b.fields["EventID"] == 1 and b.fields["Image"] == "C:\\Windows\\cmd.exe" and b.fields["Computer"] == "ws1"
    assert c.fields["userIdentity.arn"] == "arn:aws:iam::1:user/a"
    assert c.fields["resources{}.ARN"] == ["r1", "r2"] and c.fields["tags{}"] == ["a", "b"]


def test_bad_lines_are_reported_with_their_place_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \n\xff\xfe{"a": 2}\n[1, 2]\n{"a": 3}\n')
    evs, problems = events(path)
    assert [e.fields["a"] for e in evs] == [1, 3]
    assert [p.ref for p in problems] == [f"{path}#2", f"{path}#3", f"{path}#4"]
    assert "invalid JSON at column" in problems[0].message
    assert "invalid UTF-8" in problems[1].message
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_text(SERVICE_XML.replace("</Computer>", "</Comp>") + "\n" + UNNAMED_XML + "\n<Event><System>")
    evs, problems = events(bad_xml)
    assert [e.fields["EventID"] for e in evs] == [1000]
    assert [p.ref.rsplit("#", 1)[1] for p in problems] == ["1", "3"]
    assert "invalid XML" in problems[0].message and "never closed" in problems[1].message


def test_gzip_csv_folders_and_unknown_files(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as f:
        f.write('{"x": "1"}\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.csv").write_text("x,y\n2,\n3,z\n")
    (tmp_path / "notes.md").write_text("# not events\n")
    evs, problems = events(tmp_path)
    assert problems == []  # a folder only reads the formats it knows
    assert [(Path(e.ref).name, e.fields) for e in evs] == [
        ("a.jsonl.gz#1", {"x": "1"}),
        ("b.csv#2", {"x": "2"}),
        ("b.csv#3", {"x": "3", "y": "z"}),
    ]
    unknown = list(read_file(tmp_path / "notes.md"))
    assert len(unknown) == 1 and isinstance(unknown[0], Problem) and "not a supported" in unknown[0].message
    missing = list(read_file(tmp_path / "nope.evtx"))
    assert isinstance(missing[0], Problem) and missing[0].message == "no such file"


# -- real EVTX --------------------------------------------------------------------------------


@pytest.fixture
def samples() -> Path:
    if not EVTX_SAMPLES.is_dir():
        pytest.skip(f"EVTX samples not found at {EVTX_SAMPLES}")
    return EVTX_SAMPLES


def test_evtx_samples_read_completely(samples: Path) -> None:
    evs, problems = events(samples)
    assert problems == []
    assert len(evs) == 8255
    assert len({e.ref for e in evs}) == len(evs)  # refs are unique: file#record
    ps = next(e for e in evs if e.fields.get("EventID") == 4104)
    assert ps.fields["Channel"] == "Microsoft-Windows-PowerShell/Operational" and "ScriptBlockText" in ps.fields
    svc = next(e for e in evs if e.fields.get("EventID") == 7045)
    assert svc.fields["Qualifiers"] == 16384 and svc.fields["ServiceName"]
    etw = [e for e in evs if "etw_rpc_zerologon" in e.ref]
    assert etw and all("Channel" not in e.fields for e in etw)  # an ETW trace has no channel


def test_evtx_and_its_xml_export_flatten_alike(samples: Path, tmp_path: Path) -> None:
    import evtx

    source = next(samples.rglob("*Sysmon*.evtx"))
    export = tmp_path / "export.xml"
    with export.open("w", encoding="utf-8") as f:
        for record in evtx.PyEvtxParser(str(source)).records():
            f.write(record["data"].replace("\n", "") + "\n")
    from_evtx = [e.fields for e in events(source)[0]]
    from_xml = [e.fields for e in events(export)[0]]
    assert len(from_evtx) == len(from_xml) > 0

    def as_text(fields: dict[str, object]) -> dict[str, str]:
        return {k: str(v) for k, v in fields.items() if v not in ("", None)}

    assert [as_text(f) for f in from_evtx] == [as_text(f) for f in from_xml]


def test_truncated_and_corrupt_evtx_are_reported(samples: Path, tmp_path: Path) -> None:
    source = max(samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    data = source.read_bytes()
    whole = len(events(source)[0])
    truncated = tmp_path / "truncated.evtx"
    truncated.write_bytes(data[: 4096 + 65536 + 1000])
    evs, problems = events(truncated)
    assert 0 < len(evs) < whole
    assert any("truncated" in p.message for p in problems)
    corrupt = bytearray(data)
    corrupt[4096 + 65536 + 600 : 4096 + 65536 + 1000] = b"A" * 400  # inside the second chunk
    bad = tmp_path / "corrupt.evtx"
    bad.write_bytes(bytes(corrupt))
    evs, problems = events(bad)
    assert problems and all(p.ref == str(bad) for p in problems)
    assert 0 < len(evs) < whole  # the other chunks are still read

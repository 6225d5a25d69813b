"""Streaming event readers: EVTX, XmlWinEventLog exports, JSON lines, CSV (each possibly .gz).

Every reader yields :class:`Event` (a stable ``file#record`` reference and flat
fields) or :class:`Problem` (a record or line that could not be read, with its
place), so one bad record never stops a run and memory does not grow with the
input. A folder means every supported file below it, in sorted order.
"""

from __future__ import annotations

import csv
import gzip
import io
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from translator.events.flatten import ATTRS, TEXT, Flat, flatten_json, flatten_windows, flatten_winlogbeat

EVTX_MAGIC = b"ElfFile\x00"
EVTX_HEADER_SIZE = 4096
EVTX_CHUNK_SIZE = 65536
SUFFIXES = {".evtx": "evtx", ".xml": "xml", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv"}


@dataclass(frozen=True)
class Event:
    ref: str  # file#record (EVTX record id, or 1-based line number)
    fields: Flat


@dataclass(frozen=True)
class Problem:
    ref: str  # file#record or file#line, or the file alone
    message: str


Item = Event | Problem


def event_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files to read: files as given, folders walked for supported suffixes (sorted)."""
    for path in paths:
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and file_format(p, sniff=False) is not None:
                    yield p
        else:
            yield path


def read_events(paths: Iterable[Path]) -> Iterator[Item]:
    for path in event_files(paths):
        yield from read_file(path)


def read_file(path: Path) -> Iterator[Item]:
    if not path.exists():
        yield Problem(str(path), "no such file")
        return
    fmt = file_format(path)
    if fmt is None:
        yield Problem(str(path), "not a supported event file (EVTX, XML, JSON lines, CSV)")
        return
    try:
        if fmt == "evtx":
            yield from _read_evtx(path)
        else:
            with _open(path) as raw:
                yield from {"xml": _read_xml, "json": _read_json, "csv": _read_csv}[fmt](raw, str(path))
    except OSError as exc:
        yield Problem(str(path), f"cannot read: {exc}")


def file_format(path: Path, sniff: bool = True) -> str | None:
    """The reader for ``path``: by suffix (``.gz`` looked through), else by its first bytes."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    if not sniff:
        return None
    try:
        with _open(path) as f:
            head = f.read(64).lstrip()
    except OSError:
        return None
    if head.startswith(EVTX_MAGIC):
        return "evtx"
    if head.startswith(b"<"):
        return "xml"
    if head.startswith(b"{"):
        return "json"
    return None


def _open(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _lines(raw: IO[bytes], name: str) -> Iterator[tuple[int, str] | Problem]:
    """Decoded lines with 1-based numbers; a line that is not UTF-8 becomes a Problem."""
    for number, line in enumerate(raw, 1):
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Problem(f"{name}#{number}", f"invalid UTF-8 at byte {exc.start} of the line")


# -- EVTX ------------------------------------------------------------------------------


def _read_evtx(path: Path) -> Iterator[Item]:
    import evtx  # the Rust parser; imported here so other formats work without it loaded

    name = str(path)
    truncated = _evtx_truncation(path)
    if truncated:
        yield Problem(name, truncated)
    try:
        records = evtx.PyEvtxParser(str(path)).records_json()
    except (OSError, RuntimeError) as exc:
        yield Problem(name, f"not a readable EVTX file: {exc}")
        return
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except RuntimeError as exc:  # a corrupt chunk: the parser reports it and moves on
            yield Problem(name, f"unreadable records skipped: {exc}")
            continue
        ref = f"{name}#{record['event_record_id']}"
        try:
            doc = orjson.loads(record["data"])
        except orjson.JSONDecodeError as exc:
            yield Problem(ref, f"record is not valid JSON: {exc}")
            continue
        event = doc.get("Event") if isinstance(doc, dict) else None
        if not isinstance(event, dict):
            yield Problem(ref, "record has no Event element")
            continue
        yield Event(ref, flatten_windows(event))


def _evtx_truncation(path: Path) -> str | None:
    """A message when the file holds fewer chunks than its header announces."""
    if path.suffix.lower() == ".gz":
        return None
    with path.open("rb") as f:
        header = f.read(EVTX_HEADER_SIZE)
    if len(header) < 0x2C or not header.startswith(EVTX_MAGIC):
        return None
    (chunks,) = struct.unpack_from("<H", header, 0x2A)
    size = path.stat().st_size
    present = max(0, (size - EVTX_HEADER_SIZE) // EVTX_CHUNK_SIZE)
    if present < chunks:
        return f"truncated: {present} of {chunks} chunks present; the records of the missing chunks are lost"
    return None


# -- XML (XmlWinEventLog exports, Sysmon for Linux) ---------------------------------------


def _read_xml(raw: IO[bytes], name: str) -> Iterator[Item]:
    """``<Event>`` elements, one per line or several per line or spanning lines (ref: the starting line)."""
    buffer, start_line = "", 0
    for item in _lines(raw, name):
        if isinstance(item, Problem):
            yield item
            buffer = ""
            continue
        number, line = item
        if not buffer:
            start_line = number
        buffer += line
        while True:
            begin = buffer.find("<Event")
            if begin < 0:
                buffer = ""
                break
            end = buffer.find("</Event>", begin)
            if end < 0:
                buffer = buffer[begin:]
                break
            text = buffer[begin : end + len("</Event>")]
            buffer = buffer[end + len("</Event>") :]
            yield _xml_event(text, f"{name}#{start_line}")
            start_line = number
    if buffer.strip():
        yield Problem(f"{name}#{start_line}", "an <Event> element is never closed")


def _xml_event(text: str, ref: str) -> Item:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return Problem(ref, f"invalid XML: {exc}")
    return Event(ref, flatten_windows(xml_to_tree(root)))


def xml_to_tree(event: ET.Element) -> dict[str, Any]:
    """An ``<Event>`` element -> the dict shape the EVTX parser gives, so one flattener serves both."""
    tree: dict[str, Any] = {}
    for part in event:
        tag = _local(part.tag)
        if tag == "System":
            tree["System"] = {_local(c.tag): _element(c) for c in part}
        elif tag == "EventData":
            data: dict[str, Any] = {}
            unnamed: list[str] = []
            for c in part:
                if _local(c.tag) == "Data" and "Name" in c.attrib:
                    data[c.attrib["Name"]] = c.text or ""
                elif _local(c.tag) == "Data":
                    unnamed.append(c.text or "")
                else:
                    data[_local(c.tag)] = c.text or ""
            if unnamed:
                data["Data"] = unnamed if len(unnamed) > 1 else unnamed[0]
            tree["EventData"] = data
        elif tag == "UserData":
            tree["UserData"] = {_local(c.tag): _element(c) for c in part}
    return tree


def _element(el: ET.Element) -> Any:
    children = list(el)
    if children:
        out: dict[str, Any] = {_local(c.tag): _element(c) for c in children}
        if el.attrib:
            out[ATTRS] = dict(el.attrib)
        return out
    if el.attrib:
        node: dict[str, Any] = {ATTRS: dict(el.attrib)}
        if el.text and el.text.strip():
            node[TEXT] = el.text
        return node
    return el.text if el.text is not None else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# -- JSON lines ------------------------------------------------------------------------------


def _read_json(raw: IO[bytes], name: str) -> Iterator[Item]:
    for item in _lines(raw, name):
        if isinstance(item, Problem):
            yield item
            continue
        number, line = item
        if not line.strip():
            continue
        ref = f"{name}#{number}"
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Problem(ref, f"invalid JSON at column {exc.colno}: {exc.msg}")
            continue
        if not isinstance(doc, dict):
            yield Problem(ref, "a JSON line must hold an object")
            continue
        yield Event(ref, flatten_document(doc))


def flatten_document(doc: dict[str, Any]) -> Flat:
    """Pick the flattener by shape: Windows Event tree, winlogbeat/ECS, or any JSON."""
    if isinstance(doc.get("Event"), dict) and "System" in doc["Event"]:
        return flatten_windows(doc["Event"])
    if isinstance(doc.get("System"), dict):
        return flatten_windows(doc)
    if isinstance(doc.get("winlog"), dict):
        return flatten_winlogbeat(doc)
    return flatten_json(doc)


# -- CSV -------------------------------------------------------------------------------------


def _read_csv(raw: IO[bytes], name: str) -> Iterator[Item]:
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    try:
        reader = csv.DictReader(text)
        for row in reader:
            ref = f"{name}#{reader.line_num}"
            yield Event(ref, {k: v for k, v in row.items() if k is not None and v not in (None, "")})
    except UnicodeDecodeError as exc:
        yield Problem(name, f"invalid UTF-8 at byte {exc.start}; the rest of the file is skipped")
    except csv.Error as exc:
        yield Problem(name, f"invalid CSV: {exc}")

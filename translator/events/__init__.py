"""Event logs in, flat events out: readers (EVTX, XML, JSON lines, CSV) and flattening."""

from translator.events.readers import Event, Problem, event_files, read_events, read_file

__all__ = ["Event", "Problem", "event_files", "read_events", "read_file"]

"""Elastic's query languages run offline: Lucene query strings, EQL and ES|QL on Elastic's view of events.

Each runner reads the query with a real parser (``luqum`` for Lucene, Elastic's
``eql`` package for EQL, a small grammar of ours for the ES|QL subset pySigma
writes) and matches it with Elasticsearch's semantics per field type
(:mod:`translator.engine.elastic.fields`) on documents built by
:mod:`translator.events.elastic`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from translator.engine.elastic import eql, esql, lucene
from translator.engine.elastic.fields import Doc, Rejected
from translator.events.elastic import elastic_doc

RUNNERS: dict[str, Callable[[str, list[Doc]], set[str]]] = {
    "lucene": lucene.matches,
    "opensearch_lucene": lucene.matches,
    "eql": eql.matches,
    "esql": esql.matches,
}

# the fields a query reads (None: it may read any field)
FIELDS: dict[str, Callable[[str], set[str] | None]] = {
    "lucene": lucene.fields,
    "opensearch_lucene": lucene.fields,
    "eql": eql.fields,
    "esql": esql.fields,
}

__all__ = ["FIELDS", "RUNNERS", "Doc", "DocSet", "Rejected"]


class DocSet:
    """Elastic's view of a set of events, with an index of which documents hold which field.

    A query only reads the fields it names (and EQL the event category), so a document holding
    none of them is answered like an empty document: each query runs on the documents holding one
    of its fields, and once on an empty document for all the others.
    """

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs
        self.by_field: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            for name in doc.values:
                self.by_field.setdefault(name, []).append(i)

    @classmethod
    def of(cls, events: list[tuple[str, dict[str, Any]]]) -> DocSet:
        return cls([d for ref, fields in events if (d := elastic_doc(ref, fields)) is not None])

    def run(self, target: str, query: str) -> set[str]:
        """Refs of the documents the target's query selects."""
        names = FIELDS[target](query)
        if names is None:
            return RUNNERS[target](query, self.docs)
        rows = sorted({i for n in names for i in self.by_field.get(n, ())})
        out = RUNNERS[target](query, [self.docs[i] for i in rows])
        if RUNNERS[target](query, [Doc("", {})]):
            held = set(rows)
            out |= {d.ref for i, d in enumerate(self.docs) if i not in held}
        return out

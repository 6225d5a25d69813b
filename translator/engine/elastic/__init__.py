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

# per top-level AND term of a query: the fields it reads (None: any) and whether a document holding
# none of them passes it
CONJUNCTS: dict[str, Callable[[str], list[tuple[set[str] | None, bool]]]] = {
    "lucene": lucene.conjuncts,
    "opensearch_lucene": lucene.conjuncts,
    "eql": eql.conjuncts,
    "esql": esql.conjuncts,
}

__all__ = ["CONJUNCTS", "RUNNERS", "Doc", "DocSet", "Rejected"]


class DocSet:
    """Elastic's view of a set of events, with an index of which documents hold which field.

    A query term reads only the fields it names, so a document holding none of them answers it like
    an empty document. When a top-level AND term fails on an empty document, only the documents
    holding one of its fields can match: the query runs on those (the fewest such documents over its
    terms), and the others are answered once, by an empty document.
    """

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs
        self.refs = {d.ref for d in docs}
        self.by_field: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            for name in doc.values:
                self.by_field.setdefault(name, []).append(i)
        self._done: dict[tuple[str, str], set[str]] = {}

    @classmethod
    def of(cls, events: list[tuple[str, dict[str, Any]]]) -> DocSet:
        return cls([d for ref, fields in events if (d := elastic_doc(ref, fields)) is not None])

    def run(self, target: str, query: str) -> set[str]:
        """Refs of the documents the target's query selects (a query run before is not run again:
        lucene and opensearch_lucene often write the same one)."""
        runner = RUNNERS[target]
        key = (runner.__module__, query)
        if key not in self._done:
            self._done[key] = self._run(runner, CONJUNCTS[target](query), query)
        return self._done[key]

    def _run(self, runner: Callable[[str, list[Doc]], set[str]], terms: list[Any], query: str) -> set[str]:
        narrowing = [names for names, empty in terms if names is not None and not empty]
        if not narrowing:
            return runner(query, self.docs)
        rows = min(({i for n in names for i in self.by_field.get(n, ())} for names in narrowing), key=len)
        return runner(query, [self.docs[i] for i in sorted(rows)])

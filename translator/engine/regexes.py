"""Regular expressions from rules and searches, run so that none can hang a run.

Patterns compile with the ``regex`` package (Python's ``re`` syntax and semantics; its engine also
defuses many nested repetitions that make ``re`` backtrack for ever) and every match gets a time
limit. A match that runs out raises :class:`RegexTimeout`: the evaluator reports that rule for that
event and goes on without it, the SPL executor reports the detection as not evaluable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

MATCH_SECONDS = 0.25  # per match: far above what any sane pattern needs on an event field


class RegexTimeout(ValueError):
    """A pattern took longer than :data:`MATCH_SECONDS` on one value."""


@dataclass(frozen=True)
class SafeRegex:
    """A compiled pattern whose matching methods stop after :data:`MATCH_SECONDS`."""

    compiled: Any  # regex.Pattern

    def _timed(self, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except TimeoutError:
            raise RegexTimeout(
                f"regular expression {self.compiled.pattern!r} ran longer than {MATCH_SECONDS} s on one value"
            ) from None

    def search(self, text: str) -> Any:
        return self._timed(lambda: self.compiled.search(text, timeout=MATCH_SECONDS))

    def fullmatch(self, text: str) -> Any:
        return self._timed(lambda: self.compiled.fullmatch(text, timeout=MATCH_SECONDS))

    def finditer(self, text: str) -> Iterator[Any]:
        return iter(self._timed(lambda: list(self.compiled.finditer(text, timeout=MATCH_SECONDS))))

    def sub(self, repl: Any, text: str) -> str:
        return str(self._timed(lambda: self.compiled.sub(repl, text, timeout=MATCH_SECONDS)))


@lru_cache(maxsize=8192)
def compile_safe(pattern: str, flags: int = 0) -> SafeRegex:
    """``pattern`` compiled (``re``'s flags are ``regex``'s); ValueError when it is not a valid pattern."""
    try:
        return SafeRegex(regex.compile(pattern, flags))
    except regex.error as exc:
        raise ValueError(f"regular expression {pattern!r}: {exc}") from None

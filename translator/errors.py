"""Error types for user-facing problems.

Every error a user can cause (bad YAML, a broken query, an unknown macro) is a
``TranslatorError`` carrying where it happened, so the CLI prints one line and a
batch records a status instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a text: 1-based line and column, plus the enclosing origin."""

    line: int
    column: int
    origin: str = ""  # e.g. a file name, or "macro `powershell`"

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}"
        return f"{self.origin}: {where}" if self.origin else where


class TranslatorError(Exception):
    """Base class: a problem with the user's input, reported without traceback."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.message} ({self.location})" if self.location else self.message


class ContentError(TranslatorError):
    """A detection or content file cannot be read or lacks required keys."""


class SPLSyntaxError(TranslatorError):
    """The SPL text does not parse."""


class MacroError(SPLSyntaxError):
    """A macro is unknown, called with the wrong arity, or recursive."""

    def __init__(self, message: str, name: str, location: Location | None = None) -> None:
        super().__init__(message, location)
        self.name = name


class ConversionError(TranslatorError):
    """The parsed search cannot be turned into a Sigma rule at all."""


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


def internal_error(where: str, exc: BaseException) -> str:
    """The reason a report gives when a bug (not the input) stopped one item: the step and the exception."""
    return f"internal error in {where} ({type(exc).__name__}: {exc}); please report it with this input"

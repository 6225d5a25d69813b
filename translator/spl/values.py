"""What Splunk reads as a number: shared by the SPL executor and the converter, so both sides of a
parity check agree on when ``"00"`` equals ``0``."""

from __future__ import annotations

import re
from typing import Any

NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def as_number(value: Any) -> float | None:
    """The number a value reads as (Splunk converts text that looks numeric), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and NUMBER.match(value.strip()):
        return float(value)
    return None

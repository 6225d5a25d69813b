"""Mapping tables as data (YAML), read through :func:`load_table`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load_table(name: str) -> dict[str, Any]:
    """Load ``translator/data/<name>.yml`` once per process."""
    text = resources.files(__package__).joinpath(f"{name}.yml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"data table {name}.yml must be a mapping")
    return data

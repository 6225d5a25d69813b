"""pySigma backends as output targets: discovery, aliases, default pipelines.

Backends and pipelines are found through pySigma's plugin mechanism, so any
installed ``pysigma-backend-*`` package is a target. ``data/targets.yml`` adds
what the plugins do not say: file extension and default pipelines per product.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sigma.conversion.base import Backend
from sigma.plugins import InstalledSigmaPlugins
from sigma.processing.pipeline import ProcessingPipeline

from translator.data import load_table
from translator.errors import TranslatorError
from translator.sigma.rule import collection_of


class TargetError(TranslatorError):
    """Unknown target, pipeline or format."""


@cache
def plugins() -> InstalledSigmaPlugins:
    return InstalledSigmaPlugins.autodiscover()


def backend_names() -> list[str]:
    return sorted(plugins().backends)


def resolve_targets(names: list[str]) -> list[str]:
    """Expand aliases (``elastic``, ``all``), keep order, drop repeats; unknown names raise."""
    aliases = load_table("targets")["aliases"]
    out: list[str] = []
    for name in names:
        low = name.lower()
        expanded = backend_names() if low == "all" else aliases.get(low, [low])
        for t in expanded:
            if t not in plugins().backends:
                known = ", ".join([*backend_names(), *aliases, "all"])
                raise TargetError(f"unknown target {name!r}; known targets: {known}")
            if t not in out:
                out.append(t)
    return out


def extension(target: str) -> str:
    table = load_table("targets")
    return str(table["targets"].get(target, {}).get("extension", table["default_extension"]))


def default_pipelines(target: str, product: str) -> list[str]:
    spec: dict[str, Any] = load_table("targets")["targets"].get(target, {}).get("pipelines", {})
    return list(spec.get(product, spec.get("*", [])))


@dataclass(frozen=True)
class Target:
    name: str
    pipelines: tuple[str, ...]
    format: str

    def backend(self) -> Backend:
        pipeline = ProcessingPipeline()
        for pname in self.pipelines:
            factory = plugins().pipelines.get(pname)
            if factory is None:
                raise TargetError(f"unknown pipeline {pname!r}; known: {', '.join(sorted(plugins().pipelines))}")
            pipeline = pipeline + factory()
        cls = plugins().backends[self.name]
        if self.format not in cls.formats:
            raise TargetError(f"target {self.name} has no format {self.format!r}; known: {', '.join(cls.formats)}")
        return cls(processing_pipeline=pipeline)


def convert(rule: str | list[dict[str, Any]], target: Target) -> str:
    """Run one target on a fresh copy of the rule (backends mutate rules they convert)."""
    collection = collection_of(rule)
    result = target.backend().convert(collection, target.format)
    if isinstance(result, list):
        return "\n".join(str(q) for q in result)
    return str(result)

"""kg: a knowledge graph of the ML concepts articles talk about."""
from __future__ import annotations

import importlib

from kg.errors import KgError, LexiconError, SourceError
from kg.model import Article, Concept, LexiconEntry, Mention
from kg.sources import sample_path

__version__ = "0.1.0"

# The build and analysis functions live in modules that import networkx (0.15 s): they
# are imported on first use, so `kg build` and its extraction workers start sooner.
_LAZY = {"build": "kg.api", "load": "kg.api", "top_concepts": "kg.analysis",
         "cooccurrence_graph": "kg.analysis", "communities": "kg.analysis",
         "related_articles": "kg.analysis", "neighbourhood": "kg.analysis",
         "concepts_by_month": "kg.analysis", "new_concepts": "kg.analysis"}

__all__ = ["build", "load", "top_concepts", "cooccurrence_graph", "communities",
           "related_articles", "neighbourhood", "concepts_by_month", "new_concepts", "sample_path",
           "Article", "Concept", "LexiconEntry", "Mention", "KgError",
           "LexiconError", "SourceError", "__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

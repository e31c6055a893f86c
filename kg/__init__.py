"""kg: a knowledge graph of the ML concepts articles talk about."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from kg.analysis import (communities, concepts_by_month, cooccurrence_graph, neighbourhood,
                         new_concepts, related_articles, top_concepts)
from kg.api import build, load
from kg.errors import KgError, LexiconError, SourceError
from kg.model import Article, Concept, LexiconEntry, Mention
from kg.sources import sample_path

try:
    __version__ = version("kg")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["build", "load", "top_concepts", "cooccurrence_graph", "communities",
           "related_articles", "neighbourhood", "concepts_by_month", "new_concepts", "sample_path",
           "Article", "Concept", "LexiconEntry", "Mention", "KgError",
           "LexiconError", "SourceError", "__version__"]

"""kg: a knowledge graph of the ML concepts articles talk about."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from kg.api import build, load
from kg.errors import KgError, LexiconError, SourceError
from kg.model import Article, Concept, LexiconEntry, Mention

try:
    __version__ = version("kg")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["build", "load", "Article", "Concept", "LexiconEntry", "Mention", "KgError",
           "LexiconError", "SourceError", "__version__"]

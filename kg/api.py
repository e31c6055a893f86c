"""The Python entry points: build a graph from paths, load one kg build wrote."""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from kg import pipeline
from kg.lexicon import load_lexicon
from kg.sources import read_articles

__all__ = ["build", "load", "LIST_ATTRIBUTES"]

#: Attributes that are lists in memory and JSON strings in GraphML.
LIST_ATTRIBUTES = ("aliases", "sources", "contexts")


def build(paths: Iterable[str | Path], *, vocab: Iterable[str | Path] = (),
          threshold: float = 92.0) -> nx.Graph:
    """Build the graph of the articles under ``paths``, as `kg build` does.

    Examples
    --------
    >>> from kg.sources import sample_path
    >>> G = build([sample_path()])
    >>> G.nodes["concept:adamw"]["label"]
    'AdamW'
    """
    articles = read_articles([Path(p) for p in paths])
    lexicon = load_lexicon([Path(v) for v in vocab])
    return pipeline.build(articles, lexicon, threshold=threshold).graph


def load(path: str | Path) -> nx.Graph:
    """Read a GraphML file written by `kg build`, decoding its list attributes.

    The result has the same nodes, edges and attributes as the graph `build` returns.
    """
    G = nx.read_graphml(Path(path))
    for key in ("node_default", "edge_default"):    # added by the GraphML reader
        if not G.graph.get(key):
            G.graph.pop(key, None)
    for _, data in [*G.nodes(data=True), *((None, d) for *_, d in G.edges(data=True))]:
        for name in LIST_ATTRIBUTES:
            if isinstance(data.get(name), str):
                data[name] = json.loads(data[name]) if data[name] else []
    return G

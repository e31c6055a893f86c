"""Build the article–concept graph; pure functions over networkx graphs."""
from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from typing import TYPE_CHECKING

from kg.model import Article, Concept, Mention

if TYPE_CHECKING:       # networkx is imported where a graph is made (0.15 s at start-up)
    import networkx as nx

__all__ = ["build_graph", "graph_parts", "GraphParts", "concept_graph", "sentence_around", "article_node", "concept_node",
           "ARTICLE", "CONCEPT", "MAX_CONTEXTS", "TEXT_LIMIT"]

ARTICLE, CONCEPT = "article", "concept"
MAX_CONTEXTS = 3        # sentences kept per article–concept edge
TEXT_LIMIT = 2000       # characters of article text kept on the node
_CONTEXT_LIMIT = 240    # characters of a context sentence, about
_SENTENCE = re.compile(r"[。！？!?；;\n]|[.:]\s")


#: A mention as the graph keeps it: (start, end, concept key, surface); plain data, so
#: GraphML can hash an article's mentions in one call.
Span = tuple[int, int, str, str]


def article_node(article_id: str) -> str:
    return f"article:{article_id}"


def concept_node(key: str) -> str:
    return f"concept:{key}"


def sentence_around(text: str, start: int, end: int, *, limit: int = _CONTEXT_LIMIT,
                    bounds: list[int] | None = None) -> str:
    """The sentence holding ``text[start:end]``, cut to about ``limit`` characters.

    ``bounds`` (from `sentence_bounds`) saves finding the sentence ends again when one
    text has many mentions.

    >>> sentence_around("第一句。我们用LoRA微调。第三句", 7, 11)
    '我们用LoRA微调。'
    """
    bounds = sentence_bounds(text) if bounds is None else bounds
    left, stop = _enclosing(bounds, start, end, len(text))
    return _cut(text, left, stop, start, end, limit)


def _enclosing(bounds: list[int], start: int, end: int, size: int) -> tuple[int, int]:
    """Where the sentence (or sentences) holding ``[start, end)`` begins and ends."""
    i = bisect.bisect_right(bounds, start)
    j = bisect.bisect_left(bounds, end + 1)        # separators are one character
    return (bounds[i - 1] if i else 0), (bounds[j] if j < len(bounds) else size)


def _cut(text: str, left: int, stop: int, start: int, end: int, limit: int) -> str:
    """``text[left:stop]``, or when longer than ``limit`` a window around ``[start, end)``."""
    if stop - left > limit:
        half = (limit - (end - start)) // 2
        left, stop = max(left, start - half), min(stop, end + half)
    return text[left:stop].strip()


def _contexts(text: str, spans: list[Span]) -> dict[str, list[str]]:
    """Up to MAX_CONTEXTS distinct sentences (`sentence_around`) per concept key, in
    mention order; a sentence several mentions share is cut out once."""
    bounds = sentence_bounds(text)
    size, last = len(text), len(bounds)
    right, left_of = bisect.bisect_right, bisect.bisect_left
    contexts: dict[str, list[str]] = {}
    whole: list[str | None] = [None] * (last + 1)     # sentence i, when short, cut out
    for start, end, key, _ in spans:
        found = contexts.get(key)
        if found is None:
            found = contexts[key] = []
        elif len(found) >= MAX_CONTEXTS:
            continue
        i, j = right(bounds, start), left_of(bounds, end + 1)    # `_enclosing`, inlined
        sentence = whole[i] if i == j else None     # i < j: the mention spans an end
        if sentence is None:
            left, stop = (bounds[i - 1] if i else 0), (bounds[j] if j < last else size)
            if stop - left > _CONTEXT_LIMIT:         # a window around this very mention
                sentence = _cut(text, left, stop, start, end, _CONTEXT_LIMIT)
            else:
                sentence = text[left:stop].strip()
                if i == j:
                    whole[i] = sentence
        if sentence not in found:
            found.append(sentence)
    return contexts


def sentence_bounds(text: str) -> list[int]:
    """Offsets just after each sentence end in ``text``, in order."""
    return [m.end() for m in _SENTENCE.finditer(text)]


def build_graph(articles: Iterable[Article], concepts: Iterable[Concept],
                mentions: Iterable[tuple[Mention, str]], *,
                hierarchy: Iterable[tuple[str, str, str]] = ()) -> nx.Graph:
    """Return the article–concept graph.

    Parameters
    ----------
    articles : iterable of Article
    concepts : iterable of Concept
        Concepts without a mention are left out.
    mentions : iterable of (Mention, concept key)
        Each mention with the concept the linker gave it.
    hierarchy : iterable of (child key, parent key, kind)
        ``is_a`` and ``variant_of`` links between concepts; kept when both are in the graph.

    Returns
    -------
    networkx.Graph
        Nodes ``article:<id>`` and ``concept:<key>`` with the attributes the README lists;
        article–concept edges carry ``kind="mentions"``, ``count``, ``weight`` and
        ``contexts``.

    Examples
    --------
    >>> a = Article("1", "LoRA 入门", "我们用LoRA微调。", ("feed.txt:3",))
    >>> m = Mention("1", "LoRA", "lora", 3, 7)
    >>> G = build_graph([a], [Concept("lora", "LoRA", "method", ("LoRA",))], [(m, "lora")])
    >>> G.edges["article:1", "concept:lora"]["contexts"]
    ['我们用LoRA微调。']
    """
    return graph_parts(articles, concepts, mentions, hierarchy=hierarchy).to_networkx()


@dataclass
class GraphParts:
    """The graph as tables, before networkx: what the writers of a large build need.

    Making the networkx graph of 20,000 articles, and every edge's context sentences,
    costs seconds; the viewer needs a few thousand nodes of it and GraphML can reuse
    what the previous build wrote for an unchanged article. `to_networkx` gives the
    whole graph (what `build_graph` returns) or the part over some nodes.
    """

    articles: list[Article]                         # sorted by id
    linked: dict[str, list[Span]]                   # article id -> its linked mentions
    concepts: dict[str, dict]                       # key -> node attributes, sorted by key
    hierarchy: list[tuple[str, str, str]]           # (child, parent, kind), both kept
    counts: dict[str, dict[str, int]]               # article id -> concept key -> mentions

    def article_data(self, article: Article) -> dict:
        a = article
        return {"kind": ARTICLE, "label": a.title, "title": a.title,
                "text": a.text[:TEXT_LIMIT], "source": a.sources[0] if a.sources else "",
                "sources": list(a.sources), "url": a.url, "date": a.date,
                "truncated": a.truncated}

    def edges_of(self, article: Article) -> list[tuple[str, dict]]:
        """``(concept key, edge attributes)`` of one article, sorted by key."""
        return [(key, {"kind": "mentions", "count": n, "weight": n, "contexts": contexts})
                for key, n, contexts in self.edge_rows(article)]

    def edge_rows(self, article: Article) -> list[tuple[str, int, list[str]]]:
        """`edges_of` as plain rows ``(concept key, mentions, context sentences)``: what
        the writers of large files need, without a dict per edge."""
        spans = self.linked.get(article.id)
        if not spans:
            return []
        contexts = _contexts(article.text, spans)
        concepts = self.concepts
        return [(key, n, contexts[key]) for key, n in sorted(self.counts[article.id].items())
                if key in contexts and key in concepts]

    @staticmethod
    def hierarchy_data(parent: str, kind: str) -> dict:
        return {"kind": kind, "parent": concept_node(parent), "weight": 1}

    def to_networkx(self, keep: set[str] | None = None) -> nx.Graph:
        """The graph, or with ``keep`` (node names) the part over those nodes (the graph
        of their `subset`)."""
        if keep is not None:
            return self.subset(keep).to_networkx()
        import networkx as nx

        G = nx.Graph()
        G.add_nodes_from((article_node(a.id), self.article_data(a)) for a in self.articles)
        G.add_nodes_from((concept_node(k), dict(d)) for k, d in self.concepts.items())
        G.add_edges_from((article_node(a.id), concept_node(key), data)
                         for a in self.articles for key, data in self.edges_of(a))
        G.add_edges_from((concept_node(child), concept_node(parent),
                          self.hierarchy_data(parent, kind))
                         for child, parent, kind in self.hierarchy)
        return G

    def rows(self) -> tuple[list[tuple[str, dict]], list[tuple[str, str, dict]]]:
        """The nodes and edges of `to_networkx` as the lists networkx gives
        (``list(G.nodes(data=True))``, ``list(G.edges(data=True))``, same order, same ends
        first), without making the graph or importing networkx (0.2 s of a rebuild)."""
        nodes = [(article_node(a.id), self.article_data(a)) for a in self.articles]
        nodes += [(concept_node(k), dict(d)) for k, d in self.concepts.items()]
        edges = [(article_node(a.id), concept_node(key), data)          # an article's
                 for a in self.articles for key, data in self.edges_of(a)]   # come first
        edges += [(concept_node(u), concept_node(v), data)
                  for u, v, data in self.hierarchy_rows()]
        return nodes, edges

    def subset(self, keep: set[str]) -> GraphParts:
        """The parts of the graph over the nodes ``keep`` (names): small enough to send to
        another process to show them (its graph is ``to_networkx(keep)``)."""
        ids = {n[len(ARTICLE) + 1:] for n in keep if n.startswith(f"{ARTICLE}:")}
        keys = {n[len(CONCEPT) + 1:] for n in keep if n.startswith(f"{CONCEPT}:")}
        articles = [a for a in self.articles if a.id in ids]
        linked = {a.id: [span for span in self.linked[a.id] if span[2] in keys]
                  for a in articles if a.id in self.linked}
        counts = {a.id: {k: n for k, n in self.counts[a.id].items() if k in keys}
                  for a in articles if a.id in self.counts}
        return GraphParts(articles, linked, {k: d for k, d in self.concepts.items() if k in keys},
                          [link for link in self.hierarchy if link[0] in keys and link[1] in keys],
                          counts)

    def hierarchy_rows(self) -> list[tuple[str, str, dict]]:
        """The hierarchy edges as networkx lists them in the graph: ``(key, key, data)``
        by the concept met first, then in the order the edges were added to it; a pair
        added twice keeps the last data."""
        data = self.hierarchy_data
        return [(u, v, data(parent, kind)) for u, v, parent, kind in self.hierarchy_pairs()]

    def hierarchy_pairs(self) -> list[tuple[str, str, str, str]]:
        """`hierarchy_rows` as plain tuples ``(key, key, parent key, kind)``: the edge's
        data is `hierarchy_data` of its last two."""
        near: dict[str, dict[str, tuple[str, str]]] = {}
        for child, parent, kind in self.hierarchy:
            # a pair added again (either way round) keeps its place and takes the new data
            near.setdefault(child, {})[parent] = near.setdefault(parent, {})[child] = \
                (parent, kind)
        out, seen = [], set()
        for key in sorted(near):        # concepts come in key order
            out += [(key, other, *data) for other, data in near[key].items()
                    if other not in seen]
            seen.add(key)
        return out

    @property
    def n_nodes(self) -> int:
        return len(self.articles) + len(self.concepts)

    def top_view(self, max_nodes: int, per_concept: int = 3) -> set[str]:
        """The nodes of the viewer's part of a large graph: the concepts with most
        articles (ties by name) and the ``per_concept`` articles mentioning each most."""
        concepts = self.concepts        # keys sort as their node names do
        ranked = sorted(concepts, key=lambda k: (-concepts[k]["articles"], k))
        top = ranked[:max(1, max_nodes // (per_concept + 1))]
        chosen = set(top)
        # each concept's best articles so far, as (-mentions, id), and the count an
        # article needs to get in: the articles come in the order of their ids, so once
        # a concept has its share, a later article gets in only with more mentions
        best: dict[str, list[tuple[int, str]]] = {key: [] for key in top}
        needs = dict.fromkeys(top, 0)
        all_counts = self.counts
        for article in self.articles if per_concept > 0 else ():
            counts = all_counts.get(article.id)
            if not counts:
                continue
            for key in chosen.intersection(counts):
                n = counts[key]
                if n > needs[key]:
                    kept = best[key]
                    kept.append((-n, article.id))
                    if len(kept) > per_concept:
                        kept.sort()
                        kept.pop()
                    if len(kept) == per_concept:
                        needs[key] = -max(kept)[0]
        keep = {concept_node(k) for k in top}
        for key in top:      # ties by id: the order of the node names
            for _, article_id in sorted(best[key]):
                if len(keep) >= max_nodes:
                    break
                keep.add(article_node(article_id))
        return keep


def graph_parts(articles: Iterable[Article], concepts: Iterable[Concept],
                mentions: Iterable[tuple[Mention, str]] | dict[str, list[Span]],
                *, hierarchy: Iterable[tuple[str, str, str]] = ()) -> GraphParts:
    """The tables of the graph `build_graph` returns (same arguments); ``mentions`` may
    also come grouped already, as a dict of article id -> `Span` tuples ``(start, end,
    concept key, surface)`` in the order of the article's mentions."""
    by_id = {a.id: a for a in articles}
    linked: dict[str, list[Span]]
    if isinstance(mentions, dict):
        linked = {i: spans for i, spans in mentions.items() if spans and i in by_id}
    else:
        linked = defaultdict(list)
        for mention, key in mentions:
            if mention.article_id in by_id:
                linked[mention.article_id].append((mention.start, mention.end, key,
                                                   mention.surface))
    counts: dict[str, dict[str, int]] = {}
    per_concept: dict[str, int] = defaultdict(int)
    mention_total: dict[str, int] = defaultdict(int)
    surfaces: dict[str, set[str]] = defaultdict(set)
    for article_id, spans in linked.items():
        tally: dict[str, int] = {}
        for _, _, key, surface in spans:
            tally[key] = tally.get(key, 0) + 1
            surfaces[key].add(surface)
        counts[article_id] = tally
        for key, n in tally.items():
            per_concept[key] += 1
            mention_total[key] += n
    kept: dict[str, dict] = {}
    for concept in sorted(concepts, key=lambda c: c.key):
        if concept.key not in per_concept:
            continue
        aliases = sorted(sorted(set(concept.aliases) | surfaces[concept.key]), key=str.casefold)
        kept[concept.key] = {"kind": CONCEPT, "label": concept.name, "type": concept.type,
                             "aliases": aliases, "articles": per_concept[concept.key],
                             "mentions": mention_total[concept.key], "origin": concept.origin}
    links = [(child, parent, kind) for child, parent, kind in sorted(set(hierarchy))
             if child in kept and parent in kept and child != parent]
    return GraphParts([by_id[i] for i in sorted(by_id)], dict(linked), kept, links, counts)


def concept_graph(G: nx.Graph, *, min_weight: int = 1) -> nx.Graph:
    """Project an article–concept graph onto its concepts.

    Two concepts are linked when they appear in the same article.

    Parameters
    ----------
    G : networkx.Graph
        A graph from `build_graph`. It is not modified.
    min_weight : int, optional
        Drop links shared by fewer articles than this.

    Returns
    -------
    networkx.Graph
        Concept nodes with their attributes; edge ``weight`` counts shared articles.

    Examples
    --------
    >>> import networkx as nx
    >>> G = nx.Graph([("article:1", "concept:lora"), ("article:1", "concept:peft")])
    >>> nx.set_node_attributes(G, {"concept:lora": "concept", "concept:peft": "concept",
    ...                            "article:1": "article"}, "kind")
    >>> sorted(concept_graph(G).edges(data="weight"))
    [('concept:lora', 'concept:peft', 1)]
    """
    concepts = sorted(n for n, kind in G.nodes(data="kind") if kind == CONCEPT)
    import networkx as nx

    H = nx.Graph()
    H.add_nodes_from((n, dict(G.nodes[n])) for n in concepts)
    shared: Counter = Counter()
    for node, kind in G.nodes(data="kind"):
        if kind != ARTICLE:
            continue
        linked = sorted(m for m in G[node] if G.nodes[m].get("kind") == CONCEPT)
        for i, u in enumerate(linked):
            for v in linked[i + 1:]:
                shared[(u, v)] += 1
    H.add_weighted_edges_from((u, v, w) for (u, v), w in sorted(shared.items())
                              if w >= min_weight)
    return H

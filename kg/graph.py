"""Build the article–concept graph; pure functions over networkx graphs."""
from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

import networkx as nx

from kg.model import Article, Concept, Mention

__all__ = ["build_graph", "concept_graph", "sentence_around", "article_node", "concept_node",
           "ARTICLE", "CONCEPT", "MAX_CONTEXTS", "TEXT_LIMIT"]

ARTICLE, CONCEPT = "article", "concept"
MAX_CONTEXTS = 3        # sentences kept per article–concept edge
TEXT_LIMIT = 2000       # characters of article text kept on the node
_SENTENCE = re.compile(r"[。！？!?；;\n]|[.:]\s")


def article_node(article_id: str) -> str:
    return f"article:{article_id}"


def concept_node(key: str) -> str:
    return f"concept:{key}"


def sentence_around(text: str, start: int, end: int, *, limit: int = 240,
                    bounds: list[int] | None = None) -> str:
    """The sentence holding ``text[start:end]``, cut to about ``limit`` characters.

    ``bounds`` (from `sentence_bounds`) saves finding the sentence ends again when one
    text has many mentions.

    >>> sentence_around("第一句。我们用LoRA微调。第三句", 7, 11)
    '我们用LoRA微调。'
    """
    bounds = sentence_bounds(text) if bounds is None else bounds
    i = bisect.bisect_right(bounds, start)
    left = bounds[i - 1] if i else 0
    j = bisect.bisect_left(bounds, end + 1)        # separators are one character
    stop = bounds[j] if j < len(bounds) else len(text)
    if stop - left > limit:
        half = (limit - (end - start)) // 2
        left, stop = max(left, start - half), min(stop, end + half)
    return text[left:stop].strip()


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
    articles = {a.id: a for a in articles}
    counts: Counter = Counter()
    contexts: dict[tuple[str, str], list[str]] = defaultdict(list)
    surfaces: dict[str, set[str]] = defaultdict(set)
    bounds: dict[str, list[int]] = {}
    for mention, key in mentions:
        article = articles.get(mention.article_id)
        if article is None:
            continue
        pair = (mention.article_id, key)
        counts[pair] += 1
        surfaces[key].add(mention.surface)
        if len(contexts[pair]) < MAX_CONTEXTS:
            if mention.article_id not in bounds:
                bounds[mention.article_id] = sentence_bounds(article.text)
            sentence = sentence_around(article.text, mention.start, mention.end,
                                       bounds=bounds[mention.article_id])
            if sentence not in contexts[pair]:
                contexts[pair].append(sentence)
    per_concept = Counter(key for _, key in counts)
    mention_total: Counter = Counter()
    for (_, key), n in counts.items():
        mention_total[key] += n
    G = nx.Graph()
    for article_id in sorted(articles):
        a = articles[article_id]
        G.add_node(article_node(a.id), kind=ARTICLE, label=a.title, title=a.title,
                   text=a.text[:TEXT_LIMIT], source=a.sources[0] if a.sources else "",
                   sources=list(a.sources), url=a.url, date=a.date, truncated=a.truncated)
    kept = {}
    for concept in sorted(concepts, key=lambda c: c.key):
        if per_concept[concept.key] == 0:
            continue
        kept[concept.key] = concept
        aliases = sorted(sorted(set(concept.aliases) | surfaces[concept.key]), key=str.casefold)
        G.add_node(concept_node(concept.key), kind=CONCEPT, label=concept.name,
                   type=concept.type, aliases=aliases, articles=per_concept[concept.key],
                   mentions=mention_total[concept.key], origin=concept.origin)
    G.add_edges_from((f"article:{article_id}", f"concept:{key}",
                      {"kind": "mentions", "count": n, "weight": n,
                       "contexts": contexts[(article_id, key)]})
                     for (article_id, key), n in sorted(counts.items()) if key in kept)
    for child, parent, kind in sorted(set(hierarchy)):
        if child in kept and parent in kept and child != parent:
            G.add_edge(concept_node(child), concept_node(parent), kind=kind,
                       parent=concept_node(parent), weight=1)
    return G


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
    >>> G = nx.Graph([("article:1", "concept:lora"), ("article:1", "concept:peft")])
    >>> nx.set_node_attributes(G, {"concept:lora": "concept", "concept:peft": "concept",
    ...                            "article:1": "article"}, "kind")
    >>> sorted(concept_graph(G).edges(data="weight"))
    [('concept:lora', 'concept:peft', 1)]
    """
    concepts = sorted(n for n, kind in G.nodes(data="kind") if kind == CONCEPT)
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

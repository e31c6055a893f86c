"""Questions about a kg graph, networkx style: graph in, plain data or a new graph out."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import networkx as nx

from kg.graph import ARTICLE, CONCEPT, concept_graph

__all__ = ["table", "top_concepts", "cooccurrence_graph", "communities", "related_articles",
           "neighbourhood", "concepts_by_month", "new_concepts", "articles_of", "concepts_of"]


def table(rows: Sequence[dict]):
    """Rows as a pandas DataFrame when pandas is installed, else the list of dicts."""
    try:
        import pandas as pd
    except ImportError:
        return list(rows)
    return pd.DataFrame(list(rows))


def _kind(G: nx.Graph, kind: str) -> list[str]:
    return sorted(n for n, k in G.nodes(data="kind") if k == kind)


def articles_of(G: nx.Graph, concept: str) -> list[str]:
    """The article nodes that mention ``concept``, sorted."""
    return sorted(n for n in G[concept] if G.nodes[n].get("kind") == ARTICLE)


def concepts_of(G: nx.Graph, article: str) -> list[str]:
    """The concept nodes ``article`` mentions, sorted."""
    return sorted(n for n in G[article] if G.nodes[n].get("kind") == CONCEPT)


def _resolve(G: nx.Graph, name: str, kind: str = CONCEPT) -> str:
    """A node id from an id, a label or an alias (case-insensitive)."""
    if name in G:
        return name
    folded = name.casefold()
    for node, data in G.nodes(data=True):
        if data.get("kind") != kind:
            continue
        names = [data.get("label", ""), *data.get("aliases", [])] if kind == CONCEPT \
            else [data.get("label", ""), data.get("title", "")]
        if any(str(n).casefold() == folded for n in names):
            return node
    raise KeyError(f"no {kind} named {name!r} in the graph")


def top_concepts(G: nx.Graph, *, n: int = 20, by: str = "articles"):
    """The leading concepts, by article count or by PageRank over the whole graph.

    Parameters
    ----------
    G : networkx.Graph
        A graph from `kg.build` or `kg.load`.
    n : int, optional
        How many rows.
    by : {"articles", "pagerank"}, optional

    Returns
    -------
    pandas.DataFrame or list of dict
        Columns ``concept``, ``type``, ``articles``, ``mentions``, ``pagerank``.

    Examples
    --------
    >>> G = nx.Graph([("article:1", "concept:lora"), ("article:2", "concept:lora"),
    ...               ("article:2", "concept:adamw")])
    >>> for node, label in [("concept:lora", "LoRA"), ("concept:adamw", "AdamW")]:
    ...     G.nodes[node].update(kind="concept", label=label, type="method", articles=G.degree(node))
    >>> G.nodes["article:1"]["kind"] = G.nodes["article:2"]["kind"] = "article"
    >>> [row["concept"] for row in top_concepts(G, n=2).to_dict("records")]
    ['LoRA', 'AdamW']
    """
    if by not in ("articles", "pagerank"):
        raise ValueError(f"by must be 'articles' or 'pagerank', not {by!r}")
    rank = nx.pagerank(G, weight="count") if G.number_of_edges() else {}
    rows = [{"concept": G.nodes[c].get("label", c), "type": G.nodes[c].get("type", ""),
             "articles": len(articles_of(G, c)),
             "mentions": G.nodes[c].get("mentions", len(articles_of(G, c))),
             "pagerank": round(rank.get(c, 0.0), 6), "node": c}
            for c in _kind(G, CONCEPT)]
    rows.sort(key=lambda r: (-r[by], r["concept"]))
    return table(rows[:n])


def cooccurrence_graph(G: nx.Graph, *, min_count: int = 1) -> nx.Graph:
    """Concepts linked when articles mention both, with ``count`` and ``npmi`` weights.

    ``npmi`` is the normalised pointwise mutual information of the two concepts over the
    articles: 1 when they always appear together, 0 when independent, -1 never together.

    Examples
    --------
    >>> G = nx.Graph([("article:1", "concept:a"), ("article:1", "concept:b"),
    ...               ("article:2", "concept:a"), ("article:3", "concept:c")])
    >>> nx.set_node_attributes(G, {n: n.split(":")[0] for n in G}, "kind")
    >>> H = cooccurrence_graph(G)
    >>> H.edges["concept:a", "concept:b"]["count"], round(H.edges["concept:a", "concept:b"]["npmi"], 3)
    (1, 0.369)
    """
    H = concept_graph(G, min_weight=min_count)
    n_articles = max(1, len(_kind(G, ARTICLE)))
    for u, v, data in H.edges(data=True):
        count = data.pop("weight")
        pu, pv = len(articles_of(G, u)) / n_articles, len(articles_of(G, v)) / n_articles
        puv = count / n_articles
        npmi = 1.0 if puv >= 1 else math.log(puv / (pu * pv)) / -math.log(puv)
        data.update(count=count, weight=count, npmi=round(npmi, 6))
    return H


def communities(G: nx.Graph, *, seed: int = 0, min_count: int = 1, top: int = 3) -> list[dict]:
    """Communities of concepts (Louvain on the co-occurrence graph), each named by its
    ``top`` concepts with the most articles.

    Returns a list of ``{"name", "size", "concepts"}``, largest first.
    """
    H = cooccurrence_graph(G, min_count=min_count)
    H.remove_nodes_from([n for n in list(H) if H.degree(n) == 0])
    if H.number_of_nodes() == 0:
        return []
    groups = nx.community.louvain_communities(H, weight="count", seed=seed)
    out = []
    for group in groups:
        ranked = sorted(group, key=lambda c: (-len(articles_of(G, c)), G.nodes[c]["label"]))
        out.append({"name": " / ".join(G.nodes[c]["label"] for c in ranked[:top]),
                    "size": len(group), "concepts": [G.nodes[c]["label"] for c in ranked]})
    out.sort(key=lambda c: (-c["size"], c["name"]))
    return out


def related_articles(G: nx.Graph, article: str, *, n: int = 10):
    """Articles closest to ``article``: shared concepts, each weighted by how rare it is
    (inverse document frequency), so sharing `Medusa` counts more than sharing `GPU`.

    ``article`` is a node id or a title. Returns a table with ``article``, ``title``,
    ``score`` and ``shared``.
    """
    node = _resolve(G, article, ARTICLE)
    n_articles = max(1, len(_kind(G, ARTICLE)))
    scores: dict[str, float] = defaultdict(float)
    shared: dict[str, list[str]] = defaultdict(list)
    for concept in concepts_of(G, node):
        others = articles_of(G, concept)
        weight = math.log(n_articles / len(others))
        for other in others:
            if other != node:
                scores[other] += weight
                shared[other].append(G.nodes[concept]["label"])
    rows = [{"article": a, "title": G.nodes[a].get("title", G.nodes[a].get("label", "")),
             "score": round(s, 4), "shared": ", ".join(sorted(shared[a]))}
            for a, s in scores.items() if s > 0]
    rows.sort(key=lambda r: (-r["score"], r["article"]))
    return table(rows[:n])


def neighbourhood(G: nx.Graph, concept: str, *, n: int = 10) -> dict:
    """A concept's articles (most mentions first), the concepts it appears with, its
    parents and its variants.

    ``concept`` is a node id, a label or an alias.

    Examples
    --------
    >>> G = nx.Graph([("article:1", "concept:adamw"), ("article:1", "concept:sgd")])
    >>> G.add_edge("concept:adamw", "concept:adam", kind="is_a", parent="concept:adam")
    >>> for node in G:
    ...     G.nodes[node].update(kind=node.split(":")[0], label=node.split(":")[1])
    >>> hood = neighbourhood(G, "adamw")
    >>> hood["parents"], hood["cooccurring"]
    (['adam'], [('sgd', 1)])
    """
    node = _resolve(G, concept)
    together: Counter = Counter()
    for article in articles_of(G, node):
        for other in concepts_of(G, article):
            if other != node:
                together[G.nodes[other]["label"]] += 1
    parents, variants = [], []
    for other in G[node]:
        edge = G.edges[node, other]
        if edge.get("kind") in ("is_a", "variant_of"):
            (parents if edge.get("parent") == other else variants).append(G.nodes[other]["label"])
    return {"concept": G.nodes[node]["label"], "type": G.nodes[node].get("type", ""),
            "articles": [G.nodes[a].get("title", a) for a in sorted(
                articles_of(G, node), key=lambda a: (-G.edges[node, a].get("count", 1), a))],
            "cooccurring": sorted(together.items(), key=lambda kv: (-kv[1], kv[0]))[:n],
            "parents": sorted(parents), "variants": sorted(variants)}


def _month(date: str) -> str:
    return date[:7] if len(date) >= 7 and date[4] == "-" else ""


def concepts_by_month(G: nx.Graph, *, concepts: Iterable[str] | None = None):
    """Articles per concept per month (``YYYY-MM``), for articles that have a date.

    Returns a table with ``month``, ``concept``, ``articles``.
    """
    wanted = None if concepts is None else {_resolve(G, c) for c in concepts}
    counts: Counter = Counter()
    for article in _kind(G, ARTICLE):
        month = _month(str(G.nodes[article].get("date", "")))
        if not month:
            continue
        for concept in concepts_of(G, article):
            if wanted is None or concept in wanted:
                counts[(month, G.nodes[concept]["label"])] += 1
    rows = [{"month": m, "concept": c, "articles": k} for (m, c), k in sorted(counts.items())]
    return table(rows)


def new_concepts(G: nx.Graph, *, since: str | None = None):
    """Concepts whose first dated article is in the latest month (or on/after ``since``).

    Returns a table with ``concept``, ``first_seen``, ``articles``.
    """
    first: dict[str, str] = {}
    for article in _kind(G, ARTICLE):
        date = str(G.nodes[article].get("date", ""))
        if not _month(date):
            continue
        for concept in concepts_of(G, article):
            if concept not in first or date < first[concept]:
                first[concept] = date
    if not first:
        return table([])
    cut = since or max(first.values())[:7]
    rows = [{"concept": G.nodes[c]["label"], "first_seen": d, "articles": len(articles_of(G, c))}
            for c, d in first.items() if d >= cut]
    rows.sort(key=lambda r: (r["first_seen"], r["concept"]))
    return table(rows)

from __future__ import annotations

import networkx as nx
import pytest
from click.testing import CliRunner

import kg
from kg.cli import main


@pytest.fixture(scope="module")
def G():
    return kg.build([kg.sample_path()])


def test_load_gives_back_the_graph_build_returns(G, tmp_path):
    CliRunner().invoke(main, ["build", "--sample", "-o", str(tmp_path), "-q"])
    H = kg.load(tmp_path / "graph.graphml")
    assert nx.node_link_data(H, edges="links") == nx.node_link_data(G, edges="links")


def test_top_concepts_by_articles_and_pagerank(G):
    by_articles = kg.top_concepts(G, n=5)
    assert list(by_articles["articles"]) == sorted(by_articles["articles"], reverse=True)
    by_rank = kg.top_concepts(G, n=5, by="pagerank")
    assert list(by_rank["pagerank"]) == sorted(by_rank["pagerank"], reverse=True)
    with pytest.raises(ValueError, match="pagerank"):
        kg.top_concepts(G, by="degree")


def test_cooccurrence_counts_shared_articles(G):
    C = kg.cooccurrence_graph(G, min_count=2)
    u, v = "concept:adam", "concept:adamw"
    shared = set(G[u]) & set(G[v])
    assert C.edges[u, v]["count"] == len(shared) >= 2
    assert -1 <= C.edges[u, v]["npmi"] <= 1
    assert all(d["count"] >= 2 for *_, d in C.edges(data=True))


def test_communities_are_named_and_repeatable(G):
    one, two = kg.communities(G, seed=0), kg.communities(G, seed=0)
    assert one == two and len(one) > 3
    medusa = next(c for c in one if "Medusa" in c["concepts"])
    assert "Speculative Decoding" in medusa["concepts"]


def test_related_articles_rank_rare_shared_concepts_first(G):
    medusa = kg.neighbourhood(G, "Medusa")["articles"][0]
    related = kg.related_articles(G, medusa, n=5)
    assert len(related) == 5 and list(related["score"]) == sorted(related["score"], reverse=True)
    assert "Speculative Decoding" in related["shared"].iloc[0]


def test_neighbourhood_has_parents_variants_and_companions(G):
    adamw = kg.neighbourhood(G, "AdamW")
    assert adamw["parents"] == ["Adam"] and ("Adam", 2) in adamw["cooccurring"]
    assert "AdamW" in kg.neighbourhood(G, "adam")["variants"]
    with pytest.raises(KeyError, match="no concept named"):
        kg.neighbourhood(G, "no such thing")


def test_dated_articles_give_months_and_new_concepts(G):
    monthly = kg.concepts_by_month(G)
    assert set(monthly["month"]) == {"2025-01", "2025-02", "2025-03"}
    new = kg.new_concepts(G)
    assert "Muon" in set(new["concept"]) and "LoRA" not in set(new["concept"])


def test_build_writes_the_cooccurrence_graph_on_request(tmp_path):
    result = CliRunner().invoke(main, ["build", "--sample", "-o", str(tmp_path), "-q",
                                       "--cooccurrence"])
    assert result.exit_code == 0
    C = nx.read_graphml(tmp_path / "cooccurrence.graphml")
    assert all(n.startswith("concept:") for n in C) and C.number_of_edges() > 0

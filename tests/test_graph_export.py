from __future__ import annotations

import json
import re

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg import load, pipeline
from kg.export import render_html, write_graphml, write_json
from kg.graph import concept_graph, graph_parts
from kg.model import Article, Concept, Mention
from kg.sources import read_articles, sample_path
from tests.conftest import ARTICLES


@pytest.fixture(scope="module")
def sample_graph(lexicon):
    return pipeline.build(read_articles([sample_path()]), lexicon).graph


def test_schema_of_every_node_and_edge(sample_graph):
    G = sample_graph
    for node, data in G.nodes(data=True):
        assert data["kind"] in ("article", "concept") and data["label"]
        assert node.startswith(f"{data['kind']}:")
        if data["kind"] == "concept":
            assert data["type"] in ("model", "method", "optimizer", "dataset", "metric", "library",
                                    "hardware", "datatype", "organization", "task", "concept")
            assert isinstance(data["aliases"], list) and data["aliases"]
            assert data["articles"] >= 1 and data["mentions"] >= data["articles"]
            assert data["articles"] == sum(1 for m in G[node] if m.startswith("article:"))
        else:
            assert data["source"] == data["sources"][0] and ":" in data["source"]
            assert len(data["text"]) <= 2000 and data["title"]
    for u, v, data in G.edges(data=True):
        if data["kind"] == "mentions":
            assert data["count"] >= 1 and 1 <= len(data["contexts"]) <= 3
        else:
            assert data["kind"] in ("is_a", "variant_of") and data["parent"] in (u, v)


def test_sample_covers_the_promised_concepts(sample_graph):
    labels = {d["label"] for _, d in sample_graph.nodes(data=True) if d["kind"] == "concept"}
    for name in ["Medusa", "EAGLE", "DeepSeek-V3", "DeepSeek-R1", "Adam", "AdamW", "LoRA", "QLoRA",
                 "FlashAttention", "Multi-Token Prediction", "Mixed Precision Training"]:
        assert name in labels, name


def test_graphml_round_trip_keeps_everything(sample_graph, tmp_path):
    before = nx.node_link_data(sample_graph, edges="links")
    write_graphml(sample_graph, tmp_path / "g.graphml")
    assert nx.node_link_data(sample_graph, edges="links") == before   # input untouched
    H = load(tmp_path / "g.graphml")
    assert set(H.nodes) == set(sample_graph.nodes)
    assert H.number_of_edges() == sample_graph.number_of_edges()
    node = "concept:adamw"
    assert H.nodes[node]["aliases"] == sample_graph.nodes[node]["aliases"]
    u, v = next(iter(sample_graph.edges))
    assert H.edges[u, v]["contexts"] == sample_graph.edges[u, v].get("contexts", [])


def test_graphml_is_valid_whatever_the_text(lexicon, tmp_path):
    G = nx.Graph()
    G.add_node("article:x", kind="article", label="<b>&</b> \"q\" ']]>", text="a\ud7ffb")
    write_graphml(G, tmp_path / "g.graphml")
    assert nx.read_graphml(tmp_path / "g.graphml").nodes["article:x"]["label"] == "<b>&</b> \"q\" ']]>"


def test_json_export_keeps_lists(sample_graph, tmp_path):
    write_json(sample_graph, tmp_path / "g.json")
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    concept = next(n for n in data["nodes"] if n["id"] == "concept:lora")
    assert isinstance(concept["aliases"], list)


def test_html_is_one_file_with_no_outside_reference(sample_graph):
    html = render_html(sample_graph)
    assert "vis.Network" in html and "<script src" not in html
    assert not re.search(r"<(?:script|link|img|iframe)[^>]+(?:src|href)\s*=\s*[\"']?https?:", html)
    assert "https://cdn" not in html


def test_html_keeps_feed_markup_out_of_the_page(lexicon, tmp_path):
    (tmp_path / "evil.md").write_text(
        "# <script>alert(1)</script><img src=x onerror=alert(2)>\n\nLoRA 微调。<svg onload=alert(3)>\n",
        encoding="utf-8")
    G = pipeline.build(read_articles([tmp_path]), lexicon).graph
    html = render_html(G)
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html


def test_concept_graph_projects_without_touching_its_input(sample_graph):
    before = nx.node_link_data(sample_graph, edges="links")
    H = concept_graph(sample_graph)
    assert nx.node_link_data(sample_graph, edges="links") == before
    assert all(n.startswith("concept:") for n in H)
    assert H.number_of_edges() > 0


def test_test_articles_build(lexicon):
    G = pipeline.build(read_articles([ARTICLES]), lexicon).graph
    assert G.has_edge("concept:adamw", next(n for n, d in G.nodes(data=True)
                                            if d.get("title") == "Adam vs AdamW"))


def test_parallel_writing_reports_a_failed_output(sample_graph, tmp_path):
    from kg.errors import OutputError
    from kg.export import write_all

    (tmp_path / "blocker").write_text("a file where a folder should be", encoding="utf-8")
    good = tmp_path / "ok.json"
    with pytest.raises(OutputError, match="blocker"):
        write_all([(write_graphml, (sample_graph, tmp_path / "blocker" / "g.graphml"), {}),
                   (write_json, (sample_graph, good), {})], jobs=2)
    assert good.exists()                     # the other outputs were still written
    write_all([(write_graphml, (sample_graph, tmp_path / "g.graphml"), {}),
               (write_json, (sample_graph, tmp_path / "g.json"), {})], jobs=2)
    assert load(tmp_path / "g.graphml").number_of_nodes() == sample_graph.number_of_nodes()
    for jobs in (1, 2):     # a failure among the tasks set aside, or here, stops no other
        after = tmp_path / f"after-{jobs}.json"
        with pytest.raises(OutputError, match="blocker"):
            write_all([(write_graphml, (sample_graph, tmp_path / "blocker" / "g.graphml"), {}),
                       (write_json, (sample_graph, after), {}),
                       (write_json, (sample_graph, tmp_path / "blocker" / "g.json"), {})],
                      jobs=jobs, aside=2)
        assert after.exists()


_KEYS = [f"c{i}" for i in range(8)]


@settings(max_examples=60, deadline=None)
@given(links=st.lists(st.tuples(st.sampled_from(_KEYS), st.sampled_from(_KEYS),
                                st.sampled_from(["is_a", "variant_of"])), max_size=14),
       kept=st.sets(st.sampled_from(_KEYS + ["a0", "a1", "a2"])), whole=st.booleans())
def test_parts_rows_are_the_lists_networkx_gives(links, kept, whole):
    # the page and GraphML take nodes and edges from these rows, without networkx: same
    # order, same ends first, a pair linked twice (either way) keeps its last data
    articles = [Article(f"a{i}", f"T{i}", "LoRA 与 c1。c2 和 c3 的对比。", (f"f:{i}",))
                for i in range(3)]
    concepts = [Concept(k, k.upper(), "method", (k,)) for k in _KEYS]
    mentions = [(Mention(f"a{i}", k, k, 0, 2), k) for i in range(3) for k in _KEYS[i:i + 4]]
    parts = graph_parts(articles, concepts, mentions, hierarchy=links)
    keep = None if whole else {f"{'article' if n[0] == 'a' else 'concept'}:{n}" for n in kept}
    G = parts.to_networkx(keep)         # the part a page shows is sent as a subset
    shown = parts if keep is None else parts.subset(keep)
    assert shown.rows() == (list(G.nodes(data=True)), list(G.edges(data=True)))


@settings(max_examples=80, deadline=None)
@given(counts=st.dictionaries(st.sampled_from([f"a{i:02d}" for i in range(30)]),
                              st.dictionaries(st.sampled_from(_KEYS), st.integers(1, 4),
                                              min_size=1), max_size=30),
       max_nodes=st.integers(1, 40), per_concept=st.integers(0, 4))
def test_top_view_takes_the_concepts_with_most_articles_and_their_best_articles(
        counts, max_nodes, per_concept):
    articles = [Article(i, i, "text") for i in sorted(counts)]
    linked = {i: [(0, 1, key, key) for key, n in tally.items() for _ in range(n)]
              for i, tally in counts.items()}
    concepts = [Concept(k, k.upper(), "method", (k,)) for k in _KEYS]
    parts = graph_parts(articles, concepts, linked)
    # what the viewer promises, computed the plain way: concepts by articles (ties by
    # key), then each one's articles by mentions (ties by id), while there is room
    ranked = sorted(parts.concepts, key=lambda k: (-parts.concepts[k]["articles"], k))
    top = ranked[:max(1, max_nodes // (per_concept + 1))]
    expected = {f"concept:{k}" for k in top}
    for key in top:
        best = sorted((-tally[key], i) for i, tally in counts.items() if key in tally)
        for _, article_id in best[:per_concept]:
            if len(expected) >= max_nodes:
                break
            expected.add(f"article:{article_id}")
    assert parts.top_view(max_nodes, per_concept) == expected

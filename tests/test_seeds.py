"""The real feed pages in ../shared/seeds, read from there (skipped when absent)."""
from __future__ import annotations

import pytest

from kg import pipeline
from kg.sources import read_articles


@pytest.fixture(scope="module")
def seed_graph(seeds, lexicon):
    return pipeline.build(read_articles([seeds]), lexicon).graph


def concept_by_label(G, label):
    found = [n for n, d in G.nodes(data=True) if d.get("kind") == "concept" and d["label"] == label]
    assert len(found) == 1, (label, found)
    return found[0]


def test_seed_graph_has_31_articles(seed_graph):
    assert sum(1 for _, k in seed_graph.nodes(data="kind") if k == "article") == 31


@pytest.mark.parametrize(("label", "minimum"), [
    ("Medusa", 2), ("EAGLE", 1), ("DeepSeek", 1), ("Adam", 1), ("AdamW", 1), ("LoRA", 1),
    ("FlashAttention", 1), ("PyTorch", 2), ("Speculative Decoding", 2),
    ("Multi-Token Prediction", 1), ("Kimi-VL", 1),
])
def test_seed_concepts_are_linked_to_their_articles(seed_graph, label, minimum):
    node = concept_by_label(seed_graph, label)
    assert seed_graph.nodes[node]["articles"] >= minimum


def test_adam_and_adamw_are_two_nodes_sharing_an_article(seed_graph):
    adam, adamw = concept_by_label(seed_graph, "Adam"), concept_by_label(seed_graph, "AdamW")
    assert adam != adamw
    assert set(seed_graph[adam]) & set(seed_graph[adamw])


def test_hyphen_lost_spellings_join_their_concept(seed_graph):
    aliases = seed_graph.nodes[concept_by_label(seed_graph, "Kimi-VL")]["aliases"]
    assert "KimiVL" in aliases
    aliases = seed_graph.nodes[concept_by_label(seed_graph, "Self-Attention")]["aliases"]
    assert "SelfAtention" in aliases

from __future__ import annotations

import json

import networkx as nx
import pytest
from click.testing import CliRunner

from kg.cli import main
from kg.errors import KgError
from kg.evaluate import GoldArticle, evaluate, format_scores, read_gold
from tests.conftest import ARTICLES


def tiny_graph():
    G = nx.Graph()
    G.add_node("article:1", kind="article", label="t", sources=["f.txt:4"])
    for key, label, aliases in [("lora", "LoRA", ["低秩适配"]), ("token", "Token", []),
                                ("foonet", "FooNet", ["FooNet"])]:
        G.add_node(f"concept:{key}", kind="concept", label=label, aliases=aliases)
        G.add_edge("article:1", f"concept:{key}", kind="mentions")
    return G


def test_scores_count_matches_by_vocabulary_and_by_name(lexicon):
    gold = [GoldArticle("f.txt:4", (("Low-Rank Adaptation", (), True), ("Foo-Net", (), True),
                                    ("QLoRA", (), True), ("Token", (), False)))]
    [score] = evaluate(tiny_graph(), gold, lexicon)
    assert (score.predicted, score.correct) == (3, 3)      # Token matches a "may" concept
    assert (score.must, score.found, score.missed) == (3, 2, ["QLoRA"])
    assert score.precision == 1.0 and score.recall == pytest.approx(2 / 3)
    assert "overall" in format_scores([score])


def test_a_gold_article_missing_from_the_graph_is_an_error(lexicon):
    with pytest.raises(KgError, match="no article read from x.txt:1"):
        evaluate(tiny_graph(), [GoldArticle("x.txt:1", ())], lexicon)


def test_malformed_gold_names_its_line(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"source": "a:1", "concepts": []}\n{"source": 3}\n', encoding="utf-8")
    with pytest.raises(KgError, match="gold.jsonl:2"):
        read_gold(path)


def test_eval_command_prints_a_table(tmp_path):
    CliRunner().invoke(main, ["build", str(ARTICLES), "-o", str(tmp_path)])
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"source": "articles/adam.html:1", "concepts": [
        {"name": "AdamW", "must": True}, {"name": "Adam", "must": True}]}) + "\n",
        encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(gold), str(tmp_path / "graph.graphml")])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("articles/adam"))
    assert row.split()[2] == "1.00"     # recall: both found

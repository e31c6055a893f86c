"""Extraction quality against the team's gold annotations (kg eval), as a regression floor."""
from __future__ import annotations


from kg import pipeline
from kg.evaluate import Score, evaluate, read_gold
from kg.sources import read_articles, sample_path
from tests.conftest import DATA


def overall(scores):
    return Score("all", sum(s.predicted for s in scores), sum(s.correct for s in scores),
                 sum(s.must for s in scores), sum(s.found for s in scores))


def test_sample_quality(lexicon):
    G = pipeline.build(read_articles([sample_path()]), lexicon).graph
    total = overall(evaluate(G, read_gold(DATA / "gold" / "sample.jsonl"), lexicon))
    assert total.must > 250
    assert total.precision >= 0.90 and total.recall >= 0.85, (total.precision, total.recall)


def test_seed_quality(seeds, lexicon):
    G = pipeline.build(read_articles([seeds]), lexicon).graph
    gold = read_gold(DATA / "gold" / "seeds.jsonl")
    total = overall(evaluate(G, gold, lexicon))
    assert total.must > 60
    assert total.precision >= 0.85 and total.recall >= 0.90, (total.precision, total.recall)

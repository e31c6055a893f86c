"""Score a built graph against gold annotations: precision, recall and F1 per article."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from kg.errors import KgError
from kg.graph import ARTICLE, CONCEPT
from kg.model import LexiconEntry
from kg.names import compact, singular

__all__ = ["GoldArticle", "Score", "read_gold", "evaluate", "format_scores"]


@dataclass(frozen=True)
class GoldArticle:
    source: str                                   # "file:line" of the article
    concepts: tuple[tuple[str, tuple[str, ...], bool], ...]   # (name, aliases, must)


@dataclass
class Score:
    source: str
    predicted: int = 0
    correct: int = 0           # predicted concepts that match a gold concept
    must: int = 0              # gold concepts a reader must find
    found: int = 0             # of those, found
    missed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.must if self.must else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def read_gold(path: Path) -> list[GoldArticle]:
    """Read gold annotations: one JSON object a line with ``source`` and ``concepts``.

    Raises
    ------
    KgError
        Naming the file and line of a malformed record.
    """
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            concepts = tuple((c["name"], tuple(c.get("aliases", ())), bool(c.get("must", True)))
                             for c in record["concepts"])
            out.append(GoldArticle(record["source"], concepts))
        except (ValueError, KeyError, TypeError) as err:
            raise KgError(f"{path}:{number}: not a gold record ({err})") from err
    return out


def _keys(names: Iterable[str], index: dict[str, str]) -> set[str]:
    keys = set()
    for name in names:
        for form in (compact(name), singular(name)):
            keys.add(f"name:{form}")
            if form in index:
                keys.add(f"vocab:{index[form]}")
    return keys


def evaluate(G: nx.Graph, gold: Sequence[GoldArticle],
             lexicon: Sequence[LexiconEntry]) -> list[Score]:
    """Score the concepts G links to each gold article.

    A predicted concept matches a gold concept when one of its names (label or aliases)
    equals one of the gold names after normalisation, or both are names of one
    vocabulary entry. Precision counts every predicted concept; recall counts the gold
    concepts marked ``must``.
    """
    index: dict[str, str] = {}
    for entry in lexicon:
        for term in entry.surfaces:
            index.setdefault(compact(term), entry.key)
    by_source = {}
    for node, data in G.nodes(data=True):
        if data.get("kind") == ARTICLE:
            for source in data.get("sources", []):
                by_source.setdefault(source, node)
    scores = []
    for article in gold:
        score = Score(article.source)
        node = by_source.get(article.source)
        if node is None:
            raise KgError(f"the graph has no article read from {article.source}")
        gold_keys = [(name, must, _keys((name, *aliases), index))
                     for name, aliases, must in article.concepts]
        matched_gold: set[str] = set()
        for other in sorted(G[node]):
            data = G.nodes[other]
            if data.get("kind") != CONCEPT:
                continue
            score.predicted += 1
            keys = _keys((data["label"], *data.get("aliases", [])), index)
            hits = [name for name, _, gk in gold_keys if gk & keys]
            if hits:
                score.correct += 1
                matched_gold.update(hits)
            else:
                score.extra.append(data["label"])
        for name, must, _ in gold_keys:
            if must:
                score.must += 1
                if name in matched_gold:
                    score.found += 1
                else:
                    score.missed.append(name)
        scores.append(score)
    return scores


def format_scores(scores: Sequence[Score], *, details: bool = False) -> str:
    """A table: one row an article, then the overall (micro-averaged) row."""
    rows = [f"{'article':<40} {'P':>5} {'R':>5} {'F1':>5}  pred  must"]
    for s in scores:
        rows.append(f"{s.source:<40} {s.precision:5.2f} {s.recall:5.2f} {s.f1:5.2f} "
                    f"{s.predicted:5d} {s.must:5d}")
        if details and s.missed:
            rows.append(f"    missed: {', '.join(s.missed)}")
        if details and s.extra:
            rows.append(f"    extra:  {', '.join(s.extra)}")
    total = Score("overall", sum(s.predicted for s in scores), sum(s.correct for s in scores),
                  sum(s.must for s in scores), sum(s.found for s in scores))
    rows.append(f"{'overall':<40} {total.precision:5.2f} {total.recall:5.2f} {total.f1:5.2f} "
                f"{total.predicted:5d} {total.must:5d}")
    return "\n".join(rows)

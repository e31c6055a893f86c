"""Compose the stages: articles -> mentions -> concepts -> graph. The one entry point."""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from kg.extract import extract, make_nlp, nlp_fingerprint
from kg.graph import build_graph
from kg.link import LinkResult, link_concepts
from kg.model import AliasPair, Article, Extraction, LexiconEntry, Mention
from kg.store import ExtractionCache

__all__ = ["BuildResult", "build", "run_extraction", "open_cache"]

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    graph: nx.Graph
    articles: list[Article]
    extractions: list[Extraction]
    link: LinkResult
    timings: dict[str, float] = field(default_factory=dict)
    reused: int = 0        # articles whose extraction came from the cache

    @property
    def n_mentions(self) -> int:
        return sum(len(e.mentions) for e in self.extractions)


def open_cache(path: Path, lexicon: Sequence[LexiconEntry]) -> ExtractionCache:
    """The extraction cache at ``path`` for this vocabulary, code and kg version."""
    from kg import __version__

    return ExtractionCache(path, f"{nlp_fingerprint(lexicon)}|{__version__}")


_NLP = None          # the pipeline a forked worker inherits from its parent
_PARALLEL_FROM = 2000  # fewer articles than this are not worth the worker start-up
_BATCH = 500
_MENTION = ("surface", "concept_key", "start", "end", "origin", "type")


def _extract_batch(batch: list[Article]) -> list[tuple]:
    """Extract in a worker; plain tuples pickle several times faster than dataclasses."""
    return [(e.article_id, [tuple(getattr(m, f) for f in _MENTION) for m in e.mentions],
             [(p.long, p.short) for p in e.pairs]) for e in extract(batch, _NLP)]


def _from_tuples(record: tuple) -> Extraction:
    article_id, mentions, pairs = record
    return Extraction(article_id, tuple(Mention(article_id, *m) for m in mentions),
                      tuple(AliasPair(article_id, long, short) for long, short in pairs))


def run_extraction(articles: Sequence[Article], lexicon: Sequence[LexiconEntry], *,
                   jobs: int = 1, progress: Callable[[int], None] | None = None,
                   on_batch: Callable[[list[Article], list[Extraction]], None] | None = None
                   ) -> list[Extraction]:
    """Extract every article with a pipeline built from ``lexicon``, batch by batch.

    With ``jobs`` > 1 and enough articles, batches go to worker processes that fork
    from this one (so the pipeline is built once) and send back plain `Extraction`
    records, never spaCy Docs. The result is in the order of ``articles`` either way.
    ``on_batch`` receives each finished batch (to cache it at once).
    """
    global _NLP
    if not articles:
        return []
    nlp = make_nlp(lexicon)
    batches = [list(articles[i:i + _BATCH]) for i in range(0, len(articles), _BATCH)]
    parallel = jobs > 1 and len(articles) >= _PARALLEL_FROM and \
        "fork" in mp.get_all_start_methods()
    out: list[Extraction] = []
    with contextlib.ExitStack() as stack:
        if parallel:
            _NLP = nlp
            stack.callback(lambda: globals().update(_NLP=None))
            pool = stack.enter_context(mp.get_context("fork").Pool(jobs))
            done = ([_from_tuples(r) for r in records]
                    for records in pool.imap(_extract_batch, batches))
        else:
            done = (list(extract(batch, nlp)) for batch in batches)
        for batch, results in zip(batches, done):
            out.extend(results)
            if on_batch:
                on_batch(batch, results)
            if progress:
                progress(len(results))
    return out


def build(articles: Sequence[Article], lexicon: Sequence[LexiconEntry], *,
          threshold: float = 92.0, jobs: int = 1, cache: ExtractionCache | None = None,
          progress: Callable[[int], None] | None = None,
          forced: Sequence[tuple[str, str]] = (), forbidden: Sequence[tuple[str, str]] = (),
          dropped: Sequence[str] = ()) -> BuildResult:
    """Build the knowledge graph of ``articles``.

    Parameters
    ----------
    articles : sequence of Article
        Distinct articles (see `kg.sources.read_articles`).
    lexicon : sequence of LexiconEntry
        The vocabulary (see `kg.lexicon.load_lexicon`).
    threshold : float, optional
        Fuzzy score needed to merge two long names.
    jobs : int, optional
        Worker processes for extraction.
    cache : ExtractionCache, optional
        Reuse the extraction of articles seen before; store the new ones batch by batch.
    progress : callable, optional
        Called with the number of articles just extracted.
    forced, forbidden, dropped
        The user's merge rules (see `kg.link.link_concepts`).

    Returns
    -------
    BuildResult
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    cached = cache.get(articles) if cache is not None else {}
    if progress and cached:
        progress(len(cached))
    todo = [a for a in articles if a.id not in cached]
    fresh = run_extraction(todo, lexicon, jobs=jobs, progress=progress,
                           on_batch=cache.put_batch if cache is not None else None)
    by_id = {**cached, **{e.article_id: e for e in fresh}}
    extractions = [by_id[a.id] for a in articles]
    timings["extract"] = time.perf_counter() - start

    start = time.perf_counter()
    mentions: list[Mention] = [m for e in extractions for m in e.mentions]
    pairs = [p for e in extractions for p in e.pairs]
    link = link_concepts(mentions, lexicon, pairs=pairs, threshold=threshold, forced=forced,
                         forbidden=forbidden, dropped=dropped)
    timings["link"] = time.perf_counter() - start

    start = time.perf_counter()
    hierarchy = [(e.key, parent, "is_a") for e in lexicon for parent in e.is_a]
    hierarchy += [(child, base, "variant_of") for child, base in link.variants]
    linked = [(m, link.key_of[m.surface]) for m in mentions if m.surface in link.key_of]
    graph = build_graph(articles, link.concepts.values(), linked, hierarchy=hierarchy)
    timings["graph"] = time.perf_counter() - start
    return BuildResult(graph, list(articles), extractions, link, timings, reused=len(cached))

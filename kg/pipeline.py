"""Compose the stages: articles -> mentions -> concepts -> graph. The one entry point."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import multiprocessing as mp
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from kg.graph import GraphParts, graph_parts
from kg.link import LinkResult, link_concepts
from kg.link.candidates import VocabIndex, vocabulary_index
from kg.model import AliasPair, Article, Extraction, LexiconEntry, Mention
from kg.store import ExtractionCache, extractor_fingerprint

__all__ = ["BuildResult", "Workers", "PipelineMaker", "build", "run_extraction", "open_cache", "load_pipeline",
           "load_index"]

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    parts: GraphParts
    articles: list[Article]
    extractions: list[Extraction]
    link: LinkResult
    timings: dict[str, float] = field(default_factory=dict)
    reused: int = 0        # articles whose extraction came from the cache

    @functools.cached_property
    def graph(self) -> nx.Graph:
        """The whole article–concept graph (made on first use)."""
        return self.parts.to_networkx()

    @property
    def n_mentions(self) -> int:
        return sum(len(e.mentions) for e in self.extractions)


def open_cache(path: Path, lexicon: Sequence[LexiconEntry]) -> ExtractionCache:
    """The extraction cache at ``path`` for this vocabulary, code and kg version."""
    from kg import __version__

    return ExtractionCache(path, f"{extractor_fingerprint(lexicon)}|{__version__}")


def load_pipeline(lexicon: Sequence[LexiconEntry], cache: ExtractionCache | None = None):
    """The extraction pipeline for ``lexicon``: unpickled from the cache when it holds one
    (0.3 s instead of 1.4 s to make it), else made, and saved there."""
    if cache is not None:
        blob = cache.load_artifact("pipeline")
        if blob is not None:
            try:
                return pickle.loads(blob)
            except Exception as err:  # noqa: BLE001 - a stale or damaged blob is remade
                log.debug("cached pipeline not usable (%s); making it again", err)
    from kg.extract import make_nlp      # spaCy loads in a second; only when needed

    nlp = make_nlp(lexicon)
    if cache is not None:
        cache.save_artifact("pipeline", pickle.dumps(nlp, protocol=pickle.HIGHEST_PROTOCOL))
    return nlp


def load_index(lexicon: Sequence[LexiconEntry], cache: ExtractionCache | None = None
               ) -> VocabIndex:
    """The linker's look-ups over ``lexicon``, from the cache when it holds them."""
    blob = cache.load_artifact(_INDEX) if cache is not None else None
    if blob is not None:
        try:
            terms, initials, forward, backward = marshal.loads(blob)
            return VocabIndex({e.key: e for e in lexicon}, terms, initials, forward, backward)
        except (ValueError, EOFError, TypeError) as err:
            log.debug("cached index not usable (%s); making it again", err)
    index = vocabulary_index(tuple(lexicon))
    if cache is not None:
        cache.save_artifact(_INDEX, marshal.dumps((index.terms, index.initials, index.forward,
                                                   index.backward)))
    return index


# the index is made by kg/link/candidates.py, which the extractor fingerprint leaves out
_INDEX = "index-" + hashlib.sha256(
    (Path(__file__).resolve().parent / "link" / "candidates.py").read_bytes()).hexdigest()[:12]

_NLP = None           # the pipeline a forked worker uses...
_NLP_BLOB = None      # ...or loads from this pickle, when its parent never loaded it
_LEXICON: Sequence[LexiconEntry] = ()     # ...or makes from this, when that fails
_PARALLEL_FROM = 2000  # builds of fewer articles are not worth the worker start-up
_BATCH = 500
_MENTION = ("surface", "concept_key", "start", "end", "origin", "type")


def _start_worker(warm: bool = False) -> None:
    """A worker's initializer; it must not raise (the pool would start it again)."""
    global _NLP
    if _NLP is None:
        try:
            _NLP = pickle.loads(_NLP_BLOB)
        except Exception:  # noqa: BLE001 - a stale or damaged blob: make the pipeline
            if _LEXICON:
                from kg.extract import make_nlp

                _NLP = make_nlp(_LEXICON)
    if warm and _NLP is not None:   # the first text loads word frequencies, compiles patterns
        _extract_batch([Article("warm-up", "", "Warm-up: LoRA 微调, Flash Attention (FA).")])


def _ready() -> bool:
    return _NLP is not None


def _extract_batch(batch: list[Article]) -> list[tuple]:
    """Extract in a worker; plain tuples pickle several times faster than dataclasses."""
    from kg.extract import extract

    return [(e.article_id, [tuple(getattr(m, f) for f in _MENTION) for m in e.mentions],
             [(p.long, p.short) for p in e.pairs]) for e in extract(batch, _NLP)]


def _from_tuples(record: tuple) -> Extraction:
    article_id, mentions, pairs = record
    return Extraction(article_id, tuple(Mention(article_id, *m) for m in mentions),
                      tuple(AliasPair(article_id, long, short) for long, short in pairs))


class Workers:
    """An extraction worker process started before anything else of a rebuild.

    On a rebuild most articles come from the cache and a few are new. The worker
    imports spaCy and loads the pipeline the last build pickled into the cache while
    this process loads the vocabulary and reads the feed, then extracts the new articles
    while this process decodes the cached ones, so neither waits for the other.
    `speculate` starts it from the cache file alone, before the vocabulary is known;
    `usable_with` then says whether that pipeline is the one this build needs. `build`
    uses it for fewer than 2,000 new articles.
    """

    def __init__(self, blob: bytes, fingerprint: str) -> None:
        global _NLP, _NLP_BLOB, _LEXICON
        self.fingerprint = fingerprint
        _NLP, _NLP_BLOB, _LEXICON = None, blob, ()
        self.pool = mp.get_context("fork").Pool(1, initializer=_start_worker,
                                                initargs=(True,))

    @classmethod
    def speculate(cls, cache_path: Path | None, jobs: int) -> Workers | None:
        """Start a worker with the pipeline pickled in the cache at ``cache_path``, or
        give None (no such cache or pipeline, one job, or no way to fork)."""
        if jobs < 2 or cache_path is None or not Path(cache_path).is_file() or \
                "fork" not in mp.get_all_start_methods():
            return None
        found = ExtractionCache.peek_artifact(cache_path, "pipeline")
        return None if found is None else cls(found[1], found[0])

    def usable_with(self, cache: ExtractionCache) -> bool:
        """True when the worker's pipeline is the one ``cache`` is for, and loaded."""
        return self.fingerprint == cache.fingerprint and self.pool.apply(_ready)

    def close(self) -> None:
        global _NLP, _NLP_BLOB, _LEXICON
        self.pool.terminate()
        self.pool.join()
        _NLP, _NLP_BLOB, _LEXICON = None, None, ()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PipelineMaker:
    """Makes the extraction pipeline in a forked process while this one reads the feed.

    A first build of a large feed needs the pipeline (1.4 s to make) only once the
    articles are read (a second or more); making it beside the reading saves that wait.
    `blob` gives it pickled, which extraction workers load themselves; use as a context
    manager; `start` gives None where processes cannot be forked or with one job.
    """

    def __init__(self, lexicon: Sequence[LexiconEntry]) -> None:
        context = mp.get_context("fork")
        self.receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_make_blob, args=(lexicon, send), daemon=True)
        self.process.start()
        send.close()

    @classmethod
    def start(cls, lexicon: Sequence[LexiconEntry], jobs: int) -> PipelineMaker | None:
        if jobs < 2 or "fork" not in mp.get_all_start_methods():
            return None
        return cls(lexicon)

    def blob(self) -> bytes | None:
        """The pipeline, pickled (None if the process failed: then it is made here)."""
        try:
            return self.receive.recv_bytes()
        except (EOFError, OSError):
            return None

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        self.receive.close()

    def __enter__(self) -> PipelineMaker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _make_blob(lexicon: Sequence[LexiconEntry], send) -> None:
    from kg.extract import make_nlp

    try:
        send.send_bytes(pickle.dumps(make_nlp(lexicon), protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        send.close()


@contextlib.contextmanager
def _extraction(articles: Sequence[Article], lexicon: Sequence[LexiconEntry], *, jobs: int,
                cache: ExtractionCache | None = None, nlp=None, size: int = 0,
                workers: Workers | None = None, blob: bytes | None = None
                ) -> Iterator[Iterator[tuple[list[Article], list[Extraction]]]]:
    """Start extracting ``articles``; yield an iterator of ``(batch, extractions)``.

    In a build of ``size`` articles or more, with ``jobs`` > 1, the batches go to worker
    processes forked from this one at once, so the caller can do other work (decode the
    cached articles) while they run; they send back plain tuples, never spaCy Docs. A
    worker loads the pipeline from a pickle (``blob``, else the cache's) itself when this
    process has none: then this process never imports spaCy. Otherwise the batches are extracted here, one
    by one, as the iterator is read.
    """
    global _NLP, _NLP_BLOB, _LEXICON
    batches = [list(articles[i:i + _BATCH]) for i in range(0, len(articles), _BATCH)]
    parallel = jobs > 1 and max(size, len(articles)) >= _PARALLEL_FROM and \
        "fork" in mp.get_all_start_methods()
    if not batches:
        yield iter(())
        return
    if workers is not None:
        done = workers.pool.imap(_extract_batch, batches)
        yield ((batch, [_from_tuples(r) for r in records])
               for batch, records in zip(batches, done))
        return
    if not parallel:
        from kg.extract import extract

        nlp = nlp or (pickle.loads(blob) if blob else load_pipeline(lexicon, cache))
        yield ((batch, list(extract(batch, nlp))) for batch in batches)
        return
    if nlp is None and blob is None and cache is not None:
        blob = cache.load_artifact("pipeline")
    if nlp is None and blob is None:
        nlp = load_pipeline(lexicon, cache)
    _NLP, _NLP_BLOB, _LEXICON = nlp, blob, lexicon
    try:
        with mp.get_context("fork").Pool(min(jobs, len(batches)),
                                         initializer=_start_worker) as pool:
            done = pool.imap(_extract_batch, batches)
            yield ((batch, [_from_tuples(r) for r in records])
                   for batch, records in zip(batches, done))
    finally:
        _NLP, _NLP_BLOB, _LEXICON = None, None, ()


def run_extraction(articles: Sequence[Article], lexicon: Sequence[LexiconEntry], *,
                   jobs: int = 1, progress: Callable[[int], None] | None = None,
                   on_batch: Callable[[list[Article], list[Extraction]], None] | None = None,
                   nlp=None) -> list[Extraction]:
    """Extract every article with a pipeline built from ``lexicon``, batch by batch.

    With ``jobs`` > 1 and enough articles, batches go to worker processes that fork
    from this one (so the pipeline is built once) and send back plain `Extraction`
    records, never spaCy Docs. The result is in the order of ``articles`` either way.
    ``on_batch`` receives each finished batch (to cache it at once). ``nlp``, when given,
    is the pipeline made from ``lexicon`` (see `load_pipeline`).
    """
    out: list[Extraction] = []
    with _extraction(articles, lexicon, jobs=jobs, nlp=nlp) as running:
        for batch, results in running:
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
          dropped: Sequence[str] = (), workers: Workers | None = None,
          maker: PipelineMaker | None = None,
          on_stage: Callable[[str], None] | None = None) -> BuildResult:
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
    workers : Workers, optional
        An extraction process already started (see `Workers`); used when it fits.
    maker : PipelineMaker, optional
        A process making the pipeline, started before the articles were read.
    on_stage : callable, optional
        Called with each stage's name ("extract", "link", "graph") when it ends.

    Returns
    -------
    BuildResult
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    found = cache.find(articles) if cache is not None else {}
    known = {a.id for a in found.values()}
    todo = [a for a in articles if a.id not in known]
    if workers is not None and (not todo or len(todo) >= _PARALLEL_FROM or cache is None
                                or not workers.usable_with(cache)):
        workers = None
    fresh: dict[str, Extraction] = {}
    blob = maker.blob() if maker is not None and todo and workers is None else None
    if blob is not None and cache is not None:
        cache.save_artifact("pipeline", blob)
    with _extraction(todo, lexicon, jobs=jobs, cache=cache, size=len(articles),
                     workers=workers, blob=blob) as running:
        cached = cache.read(found) if cache is not None else {}     # while workers extract
        if progress and cached:
            progress(len(cached))
        for batch, results in running:
            fresh.update((e.article_id, e) for e in results)
            if cache is not None:
                cache.put_batch(batch, results)
            if progress:
                progress(len(results))
    by_id = {**cached, **fresh}
    missing = [a for a in articles if a.id not in by_id]     # damaged cache entries
    if missing:
        by_id.update((e.article_id, e) for e in run_extraction(missing, lexicon))
    extractions = [by_id[a.id] for a in articles]
    timings["extract"] = time.perf_counter() - start
    if on_stage:
        on_stage("extract")

    start = time.perf_counter()
    mentions: list[Mention] = [m for e in extractions for m in e.mentions]
    pairs = [p for e in extractions for p in e.pairs]
    link = link_concepts(mentions, lexicon, pairs=pairs, threshold=threshold, forced=forced,
                         forbidden=forbidden, dropped=dropped, index=load_index(lexicon, cache))
    timings["link"] = time.perf_counter() - start
    if on_stage:
        on_stage("link")

    start = time.perf_counter()
    hierarchy = [(e.key, parent, "is_a") for e in lexicon for parent in e.is_a]
    hierarchy += [(child, base, "variant_of") for child, base in link.variants]
    key_of = link.key_of
    linked = {e.article_id: [(m, key_of[m.surface]) for m in e.mentions if m.surface in key_of]
              for e in extractions}
    parts = graph_parts(articles, link.concepts.values(), linked, hierarchy=hierarchy)
    timings["graph"] = time.perf_counter() - start
    if on_stage:
        on_stage("graph")
    return BuildResult(parts, list(articles), extractions, link, timings, reused=len(cached))

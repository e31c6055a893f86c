"""Compose the stages: articles -> mentions -> concepts -> graph. The one entry point."""
from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import itertools
import logging
import marshal
import multiprocessing as mp
import pickle
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kg.graph import GraphParts, graph_parts
from kg.link import LinkResult, link_concepts, warm_names
from kg.link.candidates import VocabIndex, vocabulary_index
from kg.model import Article, Extraction, LexiconEntry, Mention
from kg.store import ExtractionCache, extraction_of, extractor_fingerprint

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["BuildResult", "Workers", "Stream", "build", "run_extraction", "open_cache",
           "load_pipeline", "load_index", "read_lexicon"]

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


def read_lexicon(extra: Sequence[Path] = (), cache_path: Path | None = None
                 ) -> tuple[list[LexiconEntry], bytes | None]:
    """`kg.lexicon.load_lexicon` of ``extra``, taken from the cache at ``cache_path`` when
    the last build kept it there and neither the vocabulary files nor the code that reads
    them changed (0.02 s instead of 0.25 s). Returns the entries and, when they were made
    here, what to keep in the cache (`ExtractionCache.save_artifact` under "lexicon")."""
    from kg.lexicon import BUNDLED, load_lexicon

    digest = hashlib.sha256(_LEXICON_CODE)
    for path in (BUNDLED, *extra):
        try:
            digest.update(Path(path).read_bytes())
        except OSError:
            return load_lexicon(extra), None       # load_lexicon says what is wrong
        digest.update(b"\0")
    stamp = digest.hexdigest()
    found = ExtractionCache.peek_artifact(cache_path, "lexicon") \
        if cache_path is not None and Path(cache_path).is_file() else None
    if found is not None:
        try:
            kept, rows = marshal.loads(found[1])
            if kept == stamp:
                return [LexiconEntry(*row) for row in rows], None
        except (ValueError, EOFError, TypeError):
            pass
    lexicon = load_lexicon(extra)
    rows = [(e.key, e.name, e.type, e.terms, e.is_a, e.variants) for e in lexicon]
    return lexicon, marshal.dumps((stamp, rows))


_LEXICON_CODE = (Path(__file__).resolve().parent / "lexicon.py").read_bytes() + \
    unicodedata.unidata_version.encode()

# the index is made by kg/link/candidates.py, which the extractor fingerprint leaves out
_INDEX = "index-" + hashlib.sha256(
    (Path(__file__).resolve().parent / "link" / "candidates.py").read_bytes()).hexdigest()[:12]

_NLP = None           # the pipeline a forked worker uses...
_NLP_BLOB = None      # ...or loads from this pickle, when its parent never loaded it
_LEXICON: Sequence[LexiconEntry] = ()     # ...or makes from this, when that fails
_MADE: bytes | None = None   # the pipeline a worker made, pickled before it was used
_PARALLEL_FROM = 2000  # builds of fewer articles are not worth the worker start-up
_BATCH = 500


def _start_worker(warm: bool = False) -> None:
    """A worker's initializer; it must not raise (the pool would start it again)."""
    global _NLP, _MADE
    gc.enable()     # the kg command runs without the collector; workers keep it, a safety net
    if _NLP is None:
        try:
            _NLP = pickle.loads(_NLP_BLOB)
        except Exception:  # noqa: BLE001 - no blob, or a stale or damaged one: make it
            if _LEXICON:
                from kg.extract import make_nlp

                _NLP = make_nlp(_LEXICON)
                # kept as made: after extracting, its vocabulary holds the feed's words
                _MADE = pickle.dumps(_NLP, protocol=pickle.HIGHEST_PROTOCOL)
    if warm and _NLP is not None:   # the first text loads word frequencies, compiles patterns
        _extract_batch([Article("warm-up", "", "Warm-up: LoRA 微调, Flash Attention (FA).")])


def _extract_batch(batch: list[Article]) -> list[tuple]:
    """Extract in a worker; plain tuples pickle several times faster than Mentions."""
    from kg.extract import extract

    if _NLP is None:
        raise RuntimeError("this worker has no pipeline (its pickle did not load)")
    return [(e.article_id, [m[1:] for m in e.mentions],
             [(p.long, p.short) for p in e.pairs]) for e in extract(batch, _NLP)]


class _Pool:
    """Extraction worker processes, forked with this module's globals set (the pipeline's
    pickle or the vocabulary to make it from); `extract` gives the results of any
    articles, taking those already submitted; closing clears the globals."""

    def __init__(self, processes: int, blob: bytes | None, lexicon: Sequence[LexiconEntry],
                 *, warm: bool = False, cache: ExtractionCache | None = None) -> None:
        global _NLP, _NLP_BLOB, _LEXICON
        _NLP, _NLP_BLOB, _LEXICON = None, blob, lexicon
        self.pool = mp.get_context("fork").Pool(processes, initializer=_start_worker,
                                                initargs=(warm,))
        self.cache = cache          # articles it holds are not submitted
        self.batches: list = []                                  # AsyncResult per batch
        self.where: dict[tuple[str, bool], tuple[int, int]] = {}  # -> (batch, position)
        self.records: dict[int, list[tuple]] = {}

    def _submit(self, batch: list[Article]) -> None:
        if self.cache is not None:
            cached = self.cache.known(batch)
            batch = [a for a in batch if id(a) not in cached]
        if batch:
            for position, article in enumerate(batch):
                self.where[(article.text, article.truncated)] = (len(self.batches), position)
            self.batches.append(self.pool.apply_async(_extract_batch, (batch,)))

    def extract(self, articles: Sequence[Article], *, idle: Iterator | None = None
                ) -> Iterator[tuple[list[Article], list[Extraction]]]:
        """``(batch, extractions)`` of ``articles``, in their order: what was submitted
        before is taken, the rest is submitted now (before the first result is asked
        for, so the workers start while the caller does other work). A batch a worker
        could not extract (its pipeline did not load) is left out: the caller extracts
        what is missing. ``idle`` yields after each short step of other work, run
        while a result is not ready (work for this process while it would wait); it
        yields `_NOTHING_YET` when it has nothing to do until more results come."""
        rest = [a for a in articles if (a.text, a.truncated) not in self.where]
        for start in range(0, len(rest), _BATCH):
            self._submit(rest[start:start + _BATCH])
        return self._gather(articles, idle)

    def _gather(self, articles: Sequence[Article], idle: Iterator | None
                ) -> Iterator[tuple[list[Article], list[Extraction]]]:
        for start in range(0, len(articles), _BATCH):
            chunk, done = [], []
            for article in articles[start:start + _BATCH]:
                number, position = self.where[(article.text, article.truncated)]
                if number not in self.records:
                    while idle is not None and not self.batches[number].ready():
                        step = next(idle, _DONE)
                        if step is _DONE:
                            idle = None
                        if step is not None:
                            break
                    try:
                        self.records[number] = self.batches[number].get()
                    except Exception as err:  # noqa: BLE001 - extracted here instead
                        log.debug("an extraction worker failed (%s)", err)
                        self.records[number] = None
                if self.records[number] is None:
                    continue
                _, mentions, pairs = self.records[number][position]
                chunk.append(article)
                done.append(extraction_of(article.id, mentions, pairs))
            yield chunk, done

    def close(self) -> None:
        """Stop the workers (again: nothing)."""
        global _NLP, _NLP_BLOB, _LEXICON
        self.pool.terminate()
        self.pool.join()
        _NLP, _NLP_BLOB, _LEXICON = None, None, ()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Workers(_Pool):
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
        super().__init__(1, blob, (), warm=True)
        self.fingerprint = fingerprint

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
        """True when the worker's pipeline is the one ``cache`` is for (not waiting for
        it to load: should the pickle fail, the articles are extracted here)."""
        return self.fingerprint == cache.fingerprint


def _pipeline_blob() -> bytes | None:
    return _MADE


class Stream(_Pool):
    """Extraction that starts while the feed is still being read.

    Worker processes load (or make) the pipeline at once; the reader `offer`s each
    file's articles as it goes, and batches of them are extracted while later files are
    read, so on a large first build the reading costs almost nothing. Only a few batches
    are queued at a time: an article the reading later merges into a longer copy may be
    extracted for nothing, but only while the workers would otherwise wait. `build` takes
    the stream as ``stream`` and extracts what is left. Use as a context manager; `start`
    gives None with one job or where processes cannot be forked.
    """

    def __init__(self, lexicon: Sequence[LexiconEntry], cache: ExtractionCache | None,
                 jobs: int) -> None:
        blob = cache.load_artifact("pipeline") if cache is not None else None
        self.has_blob = blob is not None
        super().__init__(jobs, blob, lexicon, cache=cache)
        self.jobs = jobs
        self.pending: list[Article] = []
        self.seen: set[tuple[str, bool]] = set()

    @classmethod
    def start(cls, lexicon: Sequence[LexiconEntry], cache: ExtractionCache | None,
              jobs: int) -> Stream | None:
        if jobs < 2 or "fork" not in mp.get_all_start_methods():
            return None
        return cls(lexicon, cache, jobs)

    def offer(self, articles: Sequence[Article]) -> None:
        """Articles just read (before duplicates are merged); some may be extracted now."""
        for article in articles:
            key = (article.text, article.truncated)
            if key not in self.seen:
                self.seen.add(key)
                self.pending.append(article)
        queued = sum(1 for batch in self.batches[-4 * self.jobs:] if not batch.ready())
        while len(self.pending) >= _BATCH and queued < 2 * self.jobs:
            batch, self.pending = self.pending[:_BATCH], self.pending[_BATCH:]
            self._submit(batch)
            queued += 1

    def blob(self) -> bytes | None:
        """The pipeline a worker made, pickled as made (to keep in the cache)."""
        return self.pool.apply(_pipeline_blob)


@contextlib.contextmanager
def _extraction(articles: Sequence[Article], lexicon: Sequence[LexiconEntry], *, jobs: int,
                cache: ExtractionCache | None = None, nlp=None, size: int = 0
                ) -> Iterator[Iterator[tuple[list[Article], list[Extraction]]]]:
    """Start extracting ``articles``; yield an iterator of ``(batch, extractions)``.

    In a build of ``size`` articles or more, with ``jobs`` > 1, the batches go to worker
    processes forked from this one at once, so the caller can do other work (decode the
    cached articles) while they run; they send back plain tuples, never spaCy Docs. A
    worker loads the pipeline from the cache's pickle itself when this process has none:
    then this process never imports spaCy. Otherwise the batches are extracted here, one
    by one, as the iterator is read.
    """
    global _NLP, _NLP_BLOB, _LEXICON
    batches = [list(articles[i:i + _BATCH]) for i in range(0, len(articles), _BATCH)]
    parallel = jobs > 1 and max(size, len(articles)) >= _PARALLEL_FROM and \
        "fork" in mp.get_all_start_methods()
    if not batches:
        yield iter(())
        return
    if not parallel:
        from kg.extract import extract

        nlp = nlp or load_pipeline(lexicon, cache)
        yield ((batch, list(extract(batch, nlp))) for batch in batches)
        return
    blob = cache.load_artifact("pipeline") if nlp is None and cache is not None else None
    if nlp is None and blob is None:
        nlp = load_pipeline(lexicon, cache)
    _NLP, _NLP_BLOB, _LEXICON = nlp, blob, lexicon
    try:
        with mp.get_context("fork").Pool(min(jobs, len(batches)),
                                         initializer=_start_worker) as pool:
            done = pool.imap(_extract_batch, batches)
            yield ((batch, [extraction_of(*r) for r in records])
                   for batch, records in zip(batches, done))
    finally:
        _NLP, _NLP_BLOB, _LEXICON = None, None, ()


def _while_waiting(received: Callable[[], list[dict[str, Extraction]]],
                   index: Callable[[], VocabIndex], idle: Callable[[], None] | None
                   ) -> Iterator[None]:
    """Work for the time this process would wait for the extraction workers, in short
    steps: the caller's own; the linker's index of the vocabulary (0.4 s to make when no
    cache holds it); the linker's look-ups of the names extracted so far (kept by their
    caches), as ``received`` gives them, in order (the dicts only grow)."""
    if idle is not None:
        idle()
        yield
    index()
    yield
    seen: set[str] = set()
    done = [0] * len(received())
    while True:
        names: set[str] = set()
        for i, extractions in enumerate(received()):
            fresh = list(itertools.islice(extractions.values(), done[i], None))
            done[i] += len(fresh)
            names.update(m.surface for e in fresh for m in e.mentions)
        names = sorted(names - seen)
        if not names:
            yield _NOTHING_YET       # until more results come in
            continue
        seen.update(names)
        for start in range(0, len(names), 2000):
            warm_names(names[start:start + 2000], index())
            yield


_DONE = object()            # the idle work is all done
_NOTHING_YET = object()     # the idle work has nothing to do until more results come


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
          stream: Stream | None = None,
          on_stage: Callable[[str], None] | None = None,
          idle: Callable[[], None] | None = None) -> BuildResult:
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
    stream : Stream, optional
        Extraction started while the articles were read (then ``jobs`` is its own).
    on_stage : callable, optional
        Called with each stage's name ("extract", "link", "graph") when it ends.
    idle : callable, optional
        Called once if this process would wait for extraction workers (to do work the
        caller needs later, such as imports for the writers); then, while it would still
        wait, the linker's look-ups are made ready.

    Returns
    -------
    BuildResult
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    given = [pool for pool in (workers, stream) if pool is not None]
    index = functools.cache(lambda: load_index(lexicon, cache))     # made once, when needed
    found = cache.find(articles) if cache is not None else {}
    known = {a.id for a in found.values()}
    todo = [a for a in articles if a.id not in known]
    if workers is not None and (not todo or len(todo) >= _PARALLEL_FROM or cache is None
                                or not workers.usable_with(cache)):
        workers = None
    started = workers or stream          # processes already at work, if any
    fresh: dict[str, Extraction] = {}
    with contextlib.ExitStack() as stack:
        if started is not None:
            running = started.extract(todo, idle=_while_waiting(lambda: [cached, fresh],
                                                                index, idle))
        else:
            running = stack.enter_context(_extraction(
                todo, lexicon, jobs=jobs, cache=cache, size=len(articles)))
        cached = cache.read(found) if cache is not None else {}     # while workers extract
        if progress and cached:
            progress(len(cached))
        for batch, results in running:
            fresh.update((e.article_id, e) for e in results)
            if cache is not None:
                cache.put_batch(batch, results)
            if progress:
                progress(len(results))
    if stream is not None and started is stream and todo and cache is not None \
            and not stream.has_blob:
        blob = stream.blob()
        if blob is not None:
            cache.save_artifact("pipeline", blob)
    for pool in given:
        pool.close()            # done: no pool threads are left when linking forks
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
                         forbidden=forbidden, dropped=dropped, index=index(),
                         jobs=jobs)
    timings["link"] = time.perf_counter() - start
    if on_stage:
        on_stage("link")

    start = time.perf_counter()
    hierarchy = [(e.key, parent, "is_a") for e in lexicon for parent in e.is_a]
    hierarchy += [(child, base, "variant_of") for child, base in link.variants]
    key_of = link.key_of
    linked = {e.article_id: [(m.start, m.end, key_of[m.surface], m.surface)
                             for m in e.mentions if m.surface in key_of] for e in extractions}
    parts = graph_parts(articles, link.concepts.values(), linked, hierarchy=hierarchy)
    timings["graph"] = time.perf_counter() - start
    if on_stage:
        on_stage("graph")
    return BuildResult(parts, list(articles), extractions, link, timings, reused=len(cached))

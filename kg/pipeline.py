"""Compose the stages: articles -> mentions -> concepts -> graph. The one entry point."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import marshal
import multiprocessing as mp
import pickle
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kg.graph import GraphParts, graph_parts
from kg.link import LinkMemo, LinkResult, SurfaceStats, link_concepts, warm_names
from kg.link.candidates import VocabIndex, vocabulary_index
from kg import workers as _workers
from kg.model import Article, Extraction, LexiconEntry
from kg.store import ExtractionCache, extraction_of, extractor_fingerprint
from kg.workers import PARALLEL_FROM, Stream, Workers

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
    # article id -> its id and cache key (a hash of its text), when built with a cache
    text_keys: dict[str, str] = field(default_factory=dict)

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

# the linker's memo (see kg.link.memo) is kept for the code that made it
_LINK = "link-" + hashlib.sha256(b"".join(
    path.read_bytes() for path in sorted((Path(__file__).resolve().parent / "link").glob("*.py"))
    + [Path(__file__).resolve().parent / name for name in ("names.py", "lexicon.py")]
)).hexdigest()[:12]


def load_memo(cache: ExtractionCache | None) -> LinkMemo | None:
    """The memo the last build's linking left in ``cache`` (see `kg.link.LinkMemo`)."""
    blob = cache.load_artifact(_LINK) if cache is not None else None
    return LinkMemo.loads(blob) if blob is not None else None


def store_memo(path: Path, fingerprint: str, memo: LinkMemo) -> None:
    """Keep ``memo`` in the cache at ``path`` (made for ``fingerprint``) for the next build,
    from any process. A memo that cannot be kept only makes that build link afresh."""
    try:
        ExtractionCache.store_artifact(path, fingerprint, _LINK, memo.dumps())
    except (sqlite3.Error, OSError) as err:
        log.warning("%s: the linking memo was not kept (%s); the next build links afresh",
                    path, err)


@contextlib.contextmanager
def _extraction(articles: Sequence[Article], lexicon: Sequence[LexiconEntry], *, jobs: int,
                cache: ExtractionCache | None = None, nlp=None, size: int = 0
                ) -> Iterator[Iterator[tuple[list[Article], list[Extraction]]]]:
    """Start extracting ``articles``; yield an iterator of ``(batch, extractions)``.

    In a build of ``size`` articles or more, with ``jobs`` > 1, the batches go to worker
    processes started at once (`kg.workers.Forks`), so the caller can do other work
    (decode the cached articles) while they run; they send back plain tuples, never spaCy
    Docs. The first worker loads the pipeline from the cache's pickle itself when this
    process has none (then this process never imports spaCy); the others are forked from
    it. A batch whose worker failed is extracted here. Otherwise the batches are
    extracted here, one by one, as the iterator is read.
    """
    size_of = _workers._BATCH
    batches = [list(articles[i:i + size_of]) for i in range(0, len(articles), size_of)]
    parallel = jobs > 1 and max(size, len(articles)) >= PARALLEL_FROM and \
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
    _workers.share(nlp, blob, lexicon)
    forks = None
    try:
        forks = _workers.Forks(min(jobs, len(batches)))
        tasks = [forks.submit(_workers.extract_batch, batch) for batch in batches]
        yield _results(batches, tasks,
                       functools.cache(lambda: nlp or load_pipeline(lexicon, cache)))
    finally:
        if forks is not None:
            forks.close()
        _workers.share()


def _results(batches: list[list[Article]], tasks: list[_workers.Task], nlp: Callable
             ) -> Iterator[tuple[list[Article], list[Extraction]]]:
    """Each batch with its extractions, as the workers send them; a batch whose worker
    failed (or died) is extracted here."""
    for batch, task in zip(batches, tasks):
        try:
            records = task.get()
        except _workers.WorkerError as err:
            log.debug("an extraction worker failed (%s); extracted here", err)
            from kg.extract import extract

            yield batch, list(extract(batch, nlp()))
        else:
            yield batch, [extraction_of(*r) for r in records]


class _Tally:
    """The linker's statistics of extractions, counted as they come in (each once).

    ``names`` gives each article (by id) a name for what its extraction holds (see
    `_names`). When the last build's linking memo was counted from articles that are all
    in this build (by those names), the statistics start from the memo's (`seed`) and
    only the other articles are counted: a rebuild counts its new articles, not the
    million mentions of the cached ones again."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.stats = SurfaceStats()
        self.counted: set[str] = set()      # article ids
        self.names = names or {}

    def seed(self, memo: LinkMemo | None) -> None:
        """Start from the statistics ``memo`` was made from, when nothing is counted yet
        and it was counted from articles of this build alone."""
        if memo is None or memo.counted is None or self.counted or not self.names:
            return
        article_of = {name: article_id for article_id, name in self.names.items()}
        if not all(name in article_of for name in memo.counted):
            return          # an article of the last build is gone (or was replaced)
        self.stats = SurfaceStats.of_memo(memo)
        self.counted = {article_of[name] for name in memo.counted}

    def add(self, extractions: Iterable[Extraction]) -> set[str]:
        """Count in the extractions not counted yet; return the new surface forms."""
        new: set[str] = set()
        for e in extractions:
            if e.article_id not in self.counted:
                self.counted.add(e.article_id)
                new |= self.stats.add(e.mentions)
        return new

    def of(self, extractions: Sequence[Extraction]) -> SurfaceStats:
        """The statistics of exactly ``extractions``."""
        if not self.counted <= {e.article_id for e in extractions}:
            return SurfaceStats(m for e in extractions for m in e.mentions)
        self.add(extractions)
        return self.stats


def _names(found: dict[str, Article], todo: Sequence[Article], cache: ExtractionCache
           ) -> dict[str, str]:
    """Article id -> a name for what its extraction holds: the id with the article's
    cache key (the key says what the extraction holds, the id whose it is)."""
    names = {a.id: f"{a.id} {key[:24]}" for key, a in found.items()}
    names.update((a.id, f"{a.id} {cache.key(a)[:24]}") for a in todo)
    return names


def _while_waiting(received: Callable[[], list[dict[str, Extraction]]],
                   index: Callable[[], VocabIndex], idle: Callable[[], None] | None,
                   tally: _Tally, memo: Callable[[], LinkMemo | None]) -> Iterator[None]:
    """Work for the time this process would wait for the extraction workers, in short
    steps: the caller's own; the linker's index of the vocabulary (0.4 s to make when no
    cache holds it) and the last build's linking memo; then, as ``received`` gives
    extractions (in order: the dicts only grow), the linker's statistics of them
    (``tally``) and its look-ups of the names they bring (kept by the look-ups' caches)."""
    if idle is not None:
        idle()
        yield
    index()
    yield
    if memo() is not None:
        memo().prepare()
        tally.seed(memo())      # then only what the memo was not counted from is counted
    yield
    done = [0] * len(received())
    while True:
        fresh: list[Extraction] = []
        for i, extractions in enumerate(received()):
            fresh += itertools.islice(extractions.values(), done[i], None)
            done[i] = len(extractions)
        if not fresh:
            yield _workers.NOTHING_YET       # until more results come in
            continue
        for start in range(0, len(fresh), 2000):
            warm_names(sorted(tally.add(fresh[start:start + 2000])), index())
            yield


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
          idle: Callable[[], None] | None = None, keep_memo: bool = True) -> BuildResult:
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
    keep_memo : bool, optional
        Keep linking's memo in ``cache`` (so the next build links only what changed).
        A caller that keeps it later itself (`store_memo` of ``result.link.memo``: about
        0.1 s at 20,000 articles) passes False.

    Returns
    -------
    BuildResult
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    given = [pool for pool in (workers, stream) if pool is not None]
    index = functools.cache(lambda: load_index(lexicon, cache))     # made once, when needed
    memo = functools.cache(lambda: load_memo(cache))
    found = cache.find(articles) if cache is not None else {}
    known = {a.id for a in found.values()}
    todo = [a for a in articles if a.id not in known]
    if workers is not None and (not todo or len(todo) >= PARALLEL_FROM or cache is None
                                or not workers.usable_with(cache)):
        workers = None
    started = workers or stream          # processes already at work, if any
    fresh: dict[str, Extraction] = {}
    tally = _Tally(_names(found, todo, cache) if cache is not None else None)
    with contextlib.ExitStack() as stack:
        if started is not None:
            running = started.extract(todo, idle=_while_waiting(lambda: [cached, fresh],
                                                                index, idle, tally, memo))
        else:
            running = stack.enter_context(_extraction(
                todo, lexicon, jobs=jobs, cache=cache, size=len(articles)))
        # while workers extract (handing them their next batches as they get ready)
        cached = cache.read(found, tick=_workers.poll_all) if cache is not None else {}
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
        pool.close()            # done: the workers end before linking forks processes
    by_id = {**cached, **fresh}
    missing = [a for a in articles if a.id not in by_id]     # damaged cache entries
    if missing:
        by_id.update((e.article_id, e) for e in run_extraction(missing, lexicon))
    extractions = [by_id[a.id] for a in articles]
    timings["extract"] = time.perf_counter() - start
    if on_stage:
        on_stage("extract")

    start = time.perf_counter()
    pairs = [p for e in extractions for p in e.pairs]
    tally.seed(memo())
    link = link_concepts(tally.of(extractions), lexicon, pairs=pairs, threshold=threshold,
                         forced=forced, forbidden=forbidden, dropped=dropped, index=index(),
                         jobs=jobs, memo=memo(), remember=cache is not None)
    if link.memo is not None:
        link.memo.counted = list(tally.names.values())     # what its statistics are of
    if link.memo is not None and keep_memo:
        store_memo(cache.path, cache.fingerprint, link.memo)
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
    return BuildResult(parts, list(articles), extractions, link, timings, reused=len(cached),
                       text_keys=tally.names)

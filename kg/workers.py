"""Extraction worker processes: forked with the pipeline (or its pickle, or the vocabulary
to make it from), sent batches of articles, sending back plain tuples, never spaCy Docs.

A light module (no spaCy, no linker, no networkx): a rebuild forks its worker from here
before the rest of kg is imported, so the worker's own start-up begins sooner.
"""
from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import pickle
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

from kg.model import Article, Extraction, LexiconEntry
from kg.store import ExtractionCache, extraction_of

__all__ = ["Workers", "Stream", "share", "start_worker", "extract_batch", "import_spacy",
           "PARALLEL_FROM", "NOTHING_YET"]

log = logging.getLogger(__name__)

_NLP = None           # the pipeline a forked worker uses...
_NLP_BLOB = None      # ...or loads from this pickle, when its parent never loaded it
_LEXICON: Sequence[LexiconEntry] = ()     # ...or makes from this, when that fails
_MADE: bytes | None = None   # the pipeline a worker made, pickled before it was used
PARALLEL_FROM = 2000  # builds of fewer articles are not worth the worker start-up
_BATCH = 500


def start_worker(warm: bool = False) -> None:
    """A worker's initializer; it must not raise (the pool would start it again)."""
    global _NLP, _MADE
    gc.enable()     # the kg command runs without the collector; workers keep it, a safety net
    if _NLP is None:
        import_spacy()
        try:
            _NLP = pickle.loads(_NLP_BLOB)
        except Exception:  # noqa: BLE001 - no blob, or a stale or damaged one: make it
            if _LEXICON:
                from kg.extract import make_nlp

                _NLP = make_nlp(_LEXICON)
                # kept as made: after extracting, its vocabulary holds the feed's words
                _MADE = pickle.dumps(_NLP, protocol=pickle.HIGHEST_PROTOCOL)
    if warm and _NLP is not None:   # the first text loads word frequencies, compiles patterns
        extract_batch([Article("warm-up", "", "Warm-up: LoRA 微调, Flash Attention (FA).")])


def import_spacy() -> None:
    """Import spaCy without its command line (typer, rich, weasel: 0.2-0.3 s of the 1 s
    a worker takes to start, which a rebuild waits for). spaCy's package imports it only
    to offer ``spacy.info``, which a worker never calls: it gets a stand-in that says so.
    Should spaCy not import that way (another version), it is imported as usual. Only
    for processes of kg's own: the command line stays unloaded (a later ``import
    spacy.cli`` loads it)."""
    if "spacy" in sys.modules:
        return
    package, info = types.ModuleType("spacy.cli"), types.ModuleType("spacy.cli.info")
    info.info = package.info = _no_command_line     # type: ignore[attr-defined]
    stand_ins = {"spacy.cli": package, "spacy.cli.info": info}
    sys.modules.update(stand_ins)
    try:
        import spacy  # noqa: F401
    except Exception as err:  # noqa: BLE001 - this spaCy wants more of its command line
        log.debug("spaCy imported with its command line (%s)", err)
        for name in [n for n in sys.modules if n == "spacy" or n.startswith("spacy.")]:
            del sys.modules[name]
        import spacy  # noqa: F401
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


def _no_command_line(*args, **kwargs):
    raise RuntimeError("spaCy's command line is not loaded in a kg extraction worker")


def extract_batch(batch: list[Article]) -> list[tuple]:
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
        share(None, blob, lexicon)
        self.pool = mp.get_context("fork").Pool(processes, initializer=start_worker,
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
            self.batches.append(self.pool.apply_async(extract_batch, (batch,)))

    def extract(self, articles: Sequence[Article], *, idle: Iterator | None = None
                ) -> Iterator[tuple[list[Article], list[Extraction]]]:
        """``(batch, extractions)`` of ``articles``, in their order: what was submitted
        before is taken, the rest is submitted now (before the first result is asked
        for, so the workers start while the caller does other work). A batch a worker
        could not extract (its pipeline did not load) is left out: the caller extracts
        what is missing. ``idle`` yields after each short step of other work, run
        while a result is not ready (work for this process while it would wait); it
        yields `NOTHING_YET` when it has nothing to do until more results come."""
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
        self.pool.terminate()
        self.pool.join()
        share()

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
    `usable_with` then says whether that pipeline is the one this build needs.
    `kg.pipeline.build` uses it for fewer than 2,000 new articles.
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
    extracted for nothing, but only while the workers would otherwise wait.
    `kg.pipeline.build` takes the stream as ``stream`` and extracts what is left. Use as a
    context manager; `start` gives None with one job or where processes cannot be forked.
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


def share(nlp=None, blob: bytes | None = None, lexicon: Sequence[LexiconEntry] = ()) -> None:
    """What workers forked next start from: the pipeline itself, or its pickle, or the
    vocabulary to make it from (`share()` clears it)."""
    global _NLP, _NLP_BLOB, _LEXICON
    _NLP, _NLP_BLOB, _LEXICON = nlp, blob, lexicon


_DONE = object()            # the idle work is all done
NOTHING_YET = object()      # the idle work has nothing to do until more results come

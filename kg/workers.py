"""Extraction worker processes: forked with the pipeline (or its pickle, or the vocabulary
to make it from), sent batches of articles, sending back plain tuples, never spaCy Docs.

A light module (no spaCy, no linker, no networkx): a rebuild forks its worker from here
before the rest of kg is imported, so the worker's own start-up begins sooner.
"""
from __future__ import annotations

import collections
import contextlib
import gc
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import pickle
import queue
import signal
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kg.model import Article, Extraction, LexiconEntry
from kg.store import ExtractionCache, extraction_of

__all__ = ["Workers", "Stream", "Forks", "poll_all", "share", "start_worker", "extract_batch",
           "import_spacy", "PARALLEL_FROM", "NOTHING_YET"]

log = logging.getLogger(__name__)

_NLP = None           # the pipeline a forked worker uses...
_NLP_BLOB = None      # ...or loads from this pickle, when its parent never loaded it
_LEXICON: Sequence[LexiconEntry] = ()     # ...or makes from this, when that fails
_MADE: bytes | None = None   # the pipeline a worker made, pickled before it was used
PARALLEL_FROM = 2000  # builds of fewer articles are not worth the worker start-up
_BATCH = 500


def start_worker(warm: bool = False) -> None:
    """Give this worker its pipeline (`Forks` runs it in the first worker, which the
    others are forked from). It must not raise: a worker without a pipeline fails its
    tasks, and the caller extracts their articles itself."""
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


class WorkerError(RuntimeError):
    """A task a worker could not do: it raised, or the worker is gone."""


class Task:
    """The result of a task given to `Forks`, when it comes."""

    def __init__(self, forks: Forks, number: int) -> None:
        self.forks, self.number = forks, number

    @property
    def done(self) -> bool:
        """Whether the result has been taken in (no look at the pipes)."""
        return self.number in self.forks.results

    def ready(self) -> bool:
        """`done`, after taking in what the workers sent."""
        if self.number not in self.forks.results:
            self.forks.poll(0.0)
        return self.number in self.forks.results

    def get(self) -> Any:
        """The task's value; `WorkerError` when it raised or its worker is gone."""
        while self.number not in self.forks.results:
            self.forks.poll(None)
        error, value = self.forks.results[self.number]
        if error is not None:
            raise WorkerError(error)
        return value


_LIVE: weakref.WeakSet = weakref.WeakSet()     # Forks not closed yet


def poll_all() -> None:
    """Hand every live `Forks`' ready workers their next tasks (and take what they sent),
    without waiting: for a caller busy with other work between its waits."""
    for forks in list(_LIVE):
        forks.poll(0.0)


class Forks:
    """Worker processes that start from one: the first makes the pipeline (`start_worker`),
    then forks the others from itself, so the pipeline is made once (importing spaCy and
    making the matcher: 1 s of CPU each) and shared by copy-on-write.

    Tasks (a function and its arguments, pickled) go to the workers that are ready, two at
    a time each, in the order given; each worker reads its pipe in a thread, so sending to
    it never waits for its work, and sends results from another thread, so it goes on
    while this process is busy. A worker that dies fails the tasks it was sent (at most
    `AHEAD`, and any it had done but not yet sent: `WorkerError`); the others take the
    rest. This process never waits on a worker that is gone. Workers ignore
    Ctrl-C (this process stops them) and end when their pipe closes (`close`).
    """

    AHEAD = 2       # tasks sent to a worker before it answers

    def __init__(self, processes: int, *, warm: bool = False) -> None:
        pipes = [mp.Pipe() for _ in range(processes)]
        self.conns = [ours for ours, _ in pipes]
        theirs = [end for _, end in pipes]
        self.process = mp.get_context("fork").Process(target=_first_worker,
                                                      args=(theirs, self.conns, warm),
                                                      daemon=True)
        self.alive = set(range(processes))
        try:
            self.process.start()
        except Exception as err:  # noqa: BLE001 - no process: every task fails, and the
            log.debug("no extraction worker could start (%s)", err)   # caller does it
            self.alive.clear()
            self.process = None
        for end in theirs:
            end.close()
        self.ready: set[int] = set()
        self.pids: dict[int, int] = {}
        self.waiting: collections.deque[int] = collections.deque()
        self.count = 0
        self.tasks: dict[int, tuple] = {}
        self.sent: dict[int, list[int]] = {i: [] for i in range(processes)}
        self.results: dict[int, tuple[str | None, Any]] = {}
        _LIVE.add(self)

    def submit(self, function: Callable[..., Any], *args: Any) -> Task:
        number = self.count
        self.count += 1
        self.tasks[number] = (number, function, args)
        self.waiting.append(number)
        self._dispatch()
        return Task(self, number)

    def _dispatch(self) -> None:
        for worker in sorted(self.ready, key=lambda w: len(self.sent[w])):
            while self.waiting and worker in self.ready and len(self.sent[worker]) < self.AHEAD:
                number = self.waiting.popleft()
                self.sent[worker].append(number)
                try:
                    self.conns[worker].send(self.tasks[number])
                except (OSError, ValueError) as err:
                    self._lost(worker, f"could not be sent a task ({err})")
        if not self.alive:
            while self.waiting:
                self._done(self.waiting.popleft(), "no extraction worker is left", None)

    def poll(self, timeout: float | None) -> None:
        """Take what the workers sent, waiting up to ``timeout`` s (None: until some
        worker sends something or ends)."""
        if not self.alive:
            self._dispatch()
            return
        by_conn = {self.conns[w]: w for w in self.alive}
        for conn in mp.connection.wait(list(by_conn), timeout):
            worker = by_conn[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError) as err:
                self._lost(worker, f"ended ({err or 'its pipe closed'})")
                continue
            if message[0] == "ready":
                self.ready.add(worker)
                self.pids[worker] = message[1]
            else:
                number, error, value = message
                self.sent[worker].remove(number)
                self._done(number, error, value)
        self._dispatch()

    def _done(self, number: int, error: str | None, value: Any) -> None:
        self.tasks.pop(number, None)
        self.results[number] = (error, value)

    def _lost(self, worker: int, why: str) -> None:
        if worker not in self.alive:
            return
        log.debug("extraction worker %d %s", worker, why)
        self.alive.discard(worker)
        self.ready.discard(worker)
        self.conns[worker].close()
        # what it was sent fails (the task that killed it is one of them: never passed on
        # to kill another); tasks not sent yet go to the others
        for number in self.sent.pop(worker):
            self._done(number, f"its worker {why}", None)
        self.sent[worker] = []

    def close(self) -> None:
        """Stop the workers: they end when their pipes close, or are killed after 2 s."""
        _LIVE.discard(self)
        for conn in self.conns:
            conn.close()
        self.alive.clear()
        if self.process is None:
            return
        self.process.join(2.0)
        if self.process.is_alive():
            for pid in self.pids.values():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.join()


def _first_worker(ends: list, parents: list, warm: bool) -> None:
    """The first worker: make the pipeline, fork the others from this process, serve."""
    for conn in [*parents, *(c for other in _LIVE for c in other.conns)]:
        conn.close()    # the parent's ends, of these pipes and of other workers' (held
                        # here, they would keep those workers from seeing their pipes close)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    start_worker(warm)
    children = []
    for end in ends[1:]:
        try:
            pid = os.fork()
        except OSError as err:
            log.debug("an extraction worker could not be forked (%s)", err)
            end.close()             # this process's end: the parent sees it gone
            continue
        if pid == 0:
            try:
                for other in ends:
                    if other is not end:
                        other.close()
                _serve(end)
            finally:
                os._exit(0)
        children.append(pid)
        end.close()
    _serve(ends[0])
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _serve(conn) -> None:
    """Do the tasks that come on ``conn`` until it closes. One thread reads it and another
    sends the results, so this one goes on to the next task while a result waits for the
    parent to take it (the parent reads between its own steps of work)."""
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    outbox: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                inbox.put(conn.recv())
        except (EOFError, OSError):
            inbox.put(None)

    def send() -> None:
        while (data := outbox.get()) is not None:
            try:
                conn.send_bytes(data)
            except OSError:
                inbox.put(None)         # the parent is gone: stop
                return

    try:
        conn.send(("ready", os.getpid()))
    except OSError:
        return
    threading.Thread(target=read, daemon=True).start()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    while (task := inbox.get()) is not None:
        number, function, args = task
        try:
            reply = (number, None, function(*args))
        except Exception as err:  # noqa: BLE001 - reported to the parent
            reply = (number, f"{type(err).__name__}: {err}", None)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:  # noqa: BLE001 - a value that does not pickle
            data = pickle.dumps((number, f"its result could not be sent ({err})", None))
        outbox.put(data)
    outbox.put(None)
    sender.join()


class _Pool:
    """Extraction worker processes, forked with this module's globals set (the pipeline's
    pickle or the vocabulary to make it from); `extract` gives the results of any
    articles, taking those already submitted; closing clears the globals."""

    def __init__(self, processes: int, blob: bytes | None, lexicon: Sequence[LexiconEntry],
                 *, warm: bool = False, cache: ExtractionCache | None = None) -> None:
        share(None, blob, lexicon)
        self.pool = Forks(processes, warm=warm)
        self.cache = cache          # articles it holds are not submitted
        self.batches: list[Task] = []                           # one per batch
        self.where: dict[tuple[str, bool], tuple[int, int]] = {}  # -> (batch, position)
        self.records: dict[int, list[tuple]] = {}

    def _submit(self, batch: list[Article]) -> None:
        if self.cache is not None:
            cached = self.cache.known(batch)
            batch = [a for a in batch if id(a) not in cached]
        if batch:
            for position, article in enumerate(batch):
                self.where[(article.text, article.truncated)] = (len(self.batches), position)
            self.batches.append(self.pool.submit(extract_batch, batch))

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
        self.pool.close()
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
        self.pool.poll(0.0)         # once a file (a look at the pipes: 8 us)
        queued = sum(1 for batch in self.batches[-4 * self.jobs:] if not batch.done)
        while len(self.pending) >= _BATCH and queued < 2 * self.jobs:
            batch, self.pending = self.pending[:_BATCH], self.pending[_BATCH:]
            self._submit(batch)
            queued += 1

    def blob(self) -> bytes | None:
        """The pipeline a worker made, pickled as made (to keep in the cache)."""
        try:
            return self.pool.submit(_pipeline_blob).get()
        except WorkerError:
            return None


def share(nlp=None, blob: bytes | None = None, lexicon: Sequence[LexiconEntry] = ()) -> None:
    """What workers forked next start from: the pipeline itself, or its pickle, or the
    vocabulary to make it from (`share()` clears it)."""
    global _NLP, _NLP_BLOB, _LEXICON
    _NLP, _NLP_BLOB, _LEXICON = nlp, blob, lexicon


_DONE = object()            # the idle work is all done
NOTHING_YET = object()      # the idle work has nothing to do until more results come

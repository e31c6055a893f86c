"""Rebuilds reuse earlier work (extractions, the pipeline, GraphML parts) and still write
exactly what a build from scratch writes."""
from __future__ import annotations

import contextlib
import os
import shutil
import time

import pytest
from click.testing import CliRunner

from kg import pipeline, workers
from kg.cli import main
from kg.export import render_html, write_graphml, write_graphml_parts
from kg.extract import extract, make_nlp
from kg.sources import read_articles, sample_path

OUTPUTS = ("graph.graphml", "graph.html", "concepts.csv", "merges.csv")


@pytest.fixture(scope="module")
def sample_result(lexicon):
    return pipeline.build(read_articles([sample_path()]), lexicon)


def test_graphml_from_parts_is_the_networkx_writers_file(sample_result, tmp_path):
    write_graphml_parts(sample_result.parts, tmp_path / "parts.graphml", reuse=False)
    write_graphml(sample_result.graph, tmp_path / "graph.graphml")
    assert (tmp_path / "parts.graphml").read_bytes() == \
        (tmp_path / "graph.graphml").read_bytes()


@pytest.mark.parametrize("jobs", [1, 2])
def test_graphml_parts_of_unchanged_articles_are_copied(lexicon, tmp_path, monkeypatch, jobs):
    import kg.export.graphml as graphml_module

    # with two jobs the later half is copied from the old file and from what the
    # second process rendered, in turns
    monkeypatch.setattr(graphml_module, "_SPLIT_FROM", 0)
    pages = sorted(sample_path().glob("*.txt"))
    before = pipeline.build(read_articles(pages[:2]), lexicon)
    after = pipeline.build(read_articles(pages[:3]), lexicon)
    out = tmp_path / "graph.graphml"
    assert write_graphml_parts(before.parts, out, jobs=jobs) == 0
    reused = write_graphml_parts(after.parts, out, jobs=jobs)
    write_graphml_parts(after.parts, tmp_path / "fresh.graphml", reuse=False)
    assert out.read_bytes() == (tmp_path / "fresh.graphml").read_bytes()
    kept = set(after.articles)
    unchanged = {a.id for a in before.articles if a in kept}
    assert 0 < reused <= len(unchanged)
    assert write_graphml_parts(after.parts, out) == len(after.articles)   # all the same


def test_graphml_parts_are_known_by_their_text_keys_while_those_hold(lexicon, tmp_path):
    # a build with a cache names each text by its cache key; GraphML hashes the key, not
    # the text: an article whose key changed is written anew, the others are copied
    cache = pipeline.open_cache(tmp_path / "cache.sqlite", lexicon)
    first = pipeline.build(read_articles([sample_path()]), lexicon, cache=cache)
    again = pipeline.build(read_articles([sample_path()]), lexicon, cache=cache)
    assert set(first.text_keys) == {a.id for a in first.articles}
    assert again.text_keys == first.text_keys
    out, fresh = tmp_path / "graph.graphml", tmp_path / "fresh.graphml"
    write_graphml_parts(first.parts, out, text_keys=first.text_keys)
    assert write_graphml_parts(again.parts, out, text_keys=again.text_keys) == \
        len(first.articles)
    changed = {**again.text_keys, again.articles[0].id: "another text"}
    assert write_graphml_parts(again.parts, out, text_keys=changed) == len(first.articles) - 1
    write_graphml_parts(again.parts, fresh, reuse=False)
    assert out.read_bytes() == fresh.read_bytes()


def test_parts_are_known_again_whatever_objects_hold_them(lexicon, tmp_path):
    # the first build's records come from extraction, a rebuild's from the cache: equal
    # values held by other objects (shared or not) must be recognised as the same part
    cache = pipeline.open_cache(tmp_path / "cache.sqlite", lexicon)
    first = pipeline.build(read_articles([sample_path()]), lexicon, cache=cache)
    again = pipeline.build(read_articles([sample_path()]), lexicon, cache=cache)
    assert again.reused == len(first.articles)
    out = tmp_path / "graph.graphml"
    write_graphml_parts(first.parts, out)
    assert write_graphml_parts(again.parts, out) == len(first.articles)


def test_graphml_written_by_two_processes_is_the_same_file(sample_result, tmp_path,
                                                          monkeypatch):
    import kg.export.graphml as graphml_module

    monkeypatch.setattr(graphml_module, "_SPLIT_FROM", 0)      # the sample is small: split anyway
    parts = sample_result.parts
    write_graphml_parts(parts, tmp_path / "one.graphml", reuse=False)
    write_graphml_parts(parts, tmp_path / "two.graphml", jobs=2)
    assert (tmp_path / "two.graphml").read_bytes() == (tmp_path / "one.graphml").read_bytes()
    assert write_graphml_parts(parts, tmp_path / "two.graphml") == len(parts.articles)
    assert (tmp_path / "two.graphml").read_bytes() == (tmp_path / "one.graphml").read_bytes()
    assert not list(tmp_path.glob(".two.graphml.*.tmp*"))      # no side file left behind


def test_graphml_whose_second_process_dies_is_written_here(sample_result, tmp_path,
                                                           monkeypatch):
    import kg.export.graphml as graphml_module

    here, render = os.getpid(), graphml_module._render_side
    monkeypatch.setattr(graphml_module, "_SPLIT_FROM", 0)
    monkeypatch.setattr(graphml_module, "_render_side",       # the forked process dies
                        lambda *args: render(*args) if os.getpid() == here else os._exit(3))
    parts = sample_result.parts
    write_graphml_parts(parts, tmp_path / "one.graphml", reuse=False)
    write_graphml_parts(parts, tmp_path / "two.graphml", jobs=2)
    assert (tmp_path / "two.graphml").read_bytes() == (tmp_path / "one.graphml").read_bytes()


def test_an_edited_graphml_is_not_trusted(sample_result, tmp_path):
    out = tmp_path / "graph.graphml"
    write_graphml_parts(sample_result.parts, out)
    expected = out.read_bytes()
    out.write_bytes(expected.replace(b"LoRA", b"XXXX"))       # same size, new time
    assert write_graphml_parts(sample_result.parts, out) == 0
    assert out.read_bytes() == expected
    (tmp_path / ".graph.graphml.index").write_bytes(b"not an index")
    assert write_graphml_parts(sample_result.parts, out) == 0
    assert out.read_bytes() == expected


def test_viewer_of_the_parts_is_the_viewer_of_the_graph(sample_result):
    for limit in (5000, 60):          # the whole graph, and the top-concepts view
        assert render_html(sample_result.parts, max_nodes=limit) == \
            render_html(sample_result.graph, max_nodes=limit)
    assert "Large graph" in render_html(sample_result.parts, max_nodes=60)


def test_the_cached_pipeline_extracts_what_a_new_one_does(lexicon, tmp_path):
    articles = read_articles([sample_path()])
    cache = pipeline.open_cache(tmp_path / "c.sqlite", lexicon)
    made = pipeline.load_pipeline(lexicon, cache)
    assert cache.load_artifact("pipeline") is not None
    loaded = pipeline.load_pipeline(lexicon, cache)
    assert loaded is not made
    assert list(extract(articles, loaded)) == list(extract(articles, make_nlp(lexicon)))
    cache.save_artifact("pipeline", b"damaged")
    assert list(extract(articles[:3], pipeline.load_pipeline(lexicon, cache))) == \
        list(extract(articles[:3], made))
    index = pipeline.load_index(lexicon, cache)
    assert pipeline.load_index(lexicon, cache) == index
    cache.close()


def test_a_speculative_worker_gives_the_same_build(lexicon, tmp_path):
    articles = read_articles([sample_path()])
    path = tmp_path / "c.sqlite"
    assert pipeline.Workers.speculate(path, jobs=2) is None              # no cache yet
    cache = pipeline.open_cache(path, lexicon)
    pipeline.build(articles[:10], lexicon, cache=cache)        # leaves a pickled pipeline
    assert pipeline.Workers.speculate(path, jobs=1) is None
    with pipeline.Workers.speculate(path, jobs=2) as workers:
        assert workers.usable_with(cache)
        with_worker = pipeline.build(articles, lexicon, cache=cache, jobs=2, workers=workers)
    assert with_worker.reused == 10
    plain = pipeline.build(articles, lexicon)
    assert with_worker.extractions == plain.extractions
    assert with_worker.parts.concepts == plain.parts.concepts
    other = pipeline.open_cache(tmp_path / "other.sqlite", lexicon[:100])   # other vocabulary
    with pipeline.Workers.speculate(path, jobs=2) as workers:
        assert not workers.usable_with(other)
    cache.save_artifact("pipeline", b"damaged")
    with pipeline.Workers.speculate(path, jobs=2) as workers:   # its pipeline fails to load:
        assert pipeline.build(articles[:12], lexicon, cache=cache, jobs=2,
                              workers=workers).extractions == plain.extractions[:12]   # here
    cache.close()
    other.close()


def test_extraction_started_while_reading_gives_the_same_build(lexicon, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(workers, "_BATCH", 7)           # small batches, several of them
    feed = tmp_path / "feed"
    feed.mkdir()
    for page in sample_path().iterdir():
        shutil.copy(page, feed)
    plain = pipeline.build(read_articles([feed]), lexicon)
    cache = pipeline.open_cache(tmp_path / "c.sqlite", lexicon)
    with pipeline.Stream.start(lexicon, None, jobs=2) as stream:
        articles = read_articles([feed], on_file=stream.offer)
        assert stream.batches                       # extraction began during the reading
        streamed = pipeline.build(articles, lexicon, jobs=2, cache=cache, stream=stream)
    assert streamed.extractions == plain.extractions
    assert streamed.parts.concepts == plain.parts.concepts
    assert cache.load_artifact("pipeline") is not None       # kept for the next build
    with pipeline.Stream.start(lexicon, cache, jobs=2) as stream:   # all cached now
        articles = read_articles([feed], on_file=stream.offer)
        finals = {(a.text, a.truncated) for a in articles}
        assert not finals & stream.where.keys()   # only copies merged away were extracted
        again = pipeline.build(articles, lexicon, jobs=2, cache=cache, stream=stream)
    assert again.reused == len(articles) and again.extractions == plain.extractions
    assert pipeline.Stream.start(lexicon, None, jobs=1) is None
    cache.close()


def _die() -> None:
    os._exit(3)


def _pid_after(seconds: float, which=os.getpid) -> int:
    time.sleep(seconds)
    return which()


def _made(path: str) -> None:
    with open(path, "a") as out:
        out.write(f"{os.getpid()}\n")


def test_the_workers_fork_from_the_one_that_made_the_pipeline(tmp_path, monkeypatch):
    made = tmp_path / "made"
    monkeypatch.setattr(workers, "start_worker", lambda warm=False: _made(str(made)))
    forks = workers.Forks(2)
    try:
        # each task takes long enough for both workers to get some (two at a time)
        pids = {task.get() for task in [forks.submit(_pid_after, 0.3) for _ in range(4)]}
        parents = {task.get() for task in [forks.submit(_pid_after, 0.3, os.getppid)
                                           for _ in range(4)]}
    finally:
        forks.close()
    starter = int(made.read_text())          # one worker made it, once
    assert len(pids) == 2 and starter in pids
    assert parents == {os.getpid(), starter}          # the other is its child


def _slow_start(warm=False) -> None:
    time.sleep(0.3)                 # a stand-in for loading spaCy and the pipeline


def test_a_worker_that_gets_ready_is_handed_its_task_by_poll_all(monkeypatch):
    monkeypatch.setattr(workers, "start_worker", _slow_start)
    forks = workers.Forks(1)
    try:
        task = forks.submit(os.getpid)          # the worker is not ready: the task waits
        deadline = time.monotonic() + 5
        while task.number not in forks.results and time.monotonic() < deadline:
            time.sleep(0.05)                    # this process busy with other work...
            workers.poll_all()                  # ...calling this between its steps
        assert task.number in forks.results     # sent, done and taken back meanwhile
        assert isinstance(task.get(), int)
    finally:
        forks.close()
    workers.poll_all()                          # a closed one is left alone


def test_workers_end_when_their_pipes_close_though_others_started_later():
    first = workers.Forks(1)
    second = workers.Forks(2)            # forked while the first is running
    try:
        assert first.submit(os.getpid).get() != second.submit(os.getpid).get()
    finally:
        first.close()
        second.close()
    # each ended by itself once its pipe closed (a worker still held open is killed)
    assert first.process.exitcode == 0 and second.process.exitcode == 0


def test_a_worker_that_dies_fails_its_tasks_and_the_others_go_on():
    forks = workers.Forks(2)
    try:
        first = [forks.submit(_pid_after, 0.2) for _ in range(4)]    # two to each
        assert len({t.get() for t in first}) == 2
        dying = forks.submit(_die)
        after = [forks.submit(_pid_after, 0.05) for _ in range(6)]
        with pytest.raises(workers.WorkerError, match="ended"):
            dying.get()
        done = []
        for task in after:
            with contextlib.suppress(workers.WorkerError):   # sent to it with _die
                done.append(task.get())
        survivor = set(done)                # the rest, all done by the other worker
        assert len(done) >= len(after) - forks.AHEAD + 1 and len(survivor) == 1
        assert forks.submit(os.getpid).get() in survivor
        last = forks.submit(_die)
        with pytest.raises(workers.WorkerError):
            last.get()
        with pytest.raises(workers.WorkerError, match="no extraction worker"):
            forks.submit(os.getpid).get()           # none left: an error, not a wait
    finally:
        forks.close()


def _extract_or_die(batch):
    if any("Medusa" in a.text for a in batch):
        os._exit(3)
    return _real_extract_batch(batch)


_real_extract_batch = workers.extract_batch


def test_articles_of_a_worker_that_died_are_extracted_here(lexicon, tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "_BATCH", 7)
    articles = read_articles([sample_path()])
    assert any("Medusa" in a.text for a in articles)
    plain = pipeline.build(articles, lexicon)
    monkeypatch.setattr(workers, "extract_batch", _extract_or_die)
    with pipeline.Stream.start(lexicon, None, jobs=2) as stream:
        streamed = pipeline.build(articles, lexicon, jobs=2, stream=stream)
    assert streamed.extractions == plain.extractions
    assert streamed.parts.concepts == plain.parts.concepts
    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 0)    # workers without a stream too
    assert pipeline.run_extraction(articles, lexicon, jobs=2) == plain.extractions


def test_where_no_worker_can_start_the_articles_are_extracted_here(lexicon, monkeypatch):
    import multiprocessing.context

    def refuse(self):
        raise OSError("no more processes")

    articles = read_articles([sample_path()])
    plain = pipeline.build(articles, lexicon)
    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", refuse)
    with pipeline.Stream.start(lexicon, None, jobs=2) as stream:
        built = pipeline.build(articles, lexicon, jobs=2, stream=stream)
    assert built.extractions == plain.extractions


def test_unchanged_files_are_not_parsed_again(tmp_path, monkeypatch):
    import kg.sources as sources

    for page in sample_path().iterdir():
        shutil.copy(page, tmp_path)
    (tmp_path / "broken.jsonl").write_text('{"text": "LoRA 微调的一篇笔记，足够长了"}\n{oops\n',
                                          encoding="utf-8")
    memo, notes = sources.FileMemo(), []
    first = read_articles([tmp_path], memo=memo, problem=notes.append)
    assert len(memo.fresh) == 6 and any("broken.jsonl:2" in n for n in notes)
    parsed = []
    real = sources.read_file
    monkeypatch.setattr(sources, "read_file", lambda *a, **k: parsed.append(a[1]) or real(*a, **k))
    again, notes_again = sources.FileMemo(memo.fresh), []
    assert read_articles([tmp_path], memo=again, problem=notes_again.append) == first
    assert parsed == [] and notes_again == notes          # problems are said again
    (tmp_path / "page1.txt").write_text("第一篇：只有这一篇的新页面，讲 LoRA 微调和 QLoRA。",
                                        encoding="utf-8")
    third = sources.FileMemo({**memo.fresh})
    changed = read_articles([tmp_path], memo=third)
    assert parsed == [f"{tmp_path.name}/page1.txt"]
    assert changed == read_articles([tmp_path])
    assert len(third.seen) == 6 and len(third.fresh) == 1


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_rebuild_after_a_new_page_writes_what_a_fresh_build_does(tmp_path, jobs,
                                                                   monkeypatch):
    from kg.link import LinkMemo

    feed = tmp_path / "feed"
    feed.mkdir()
    pages = sorted(sample_path().iterdir())
    for page in pages[:-2]:
        shutil.copy(page, feed)
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    first = CliRunner().invoke(main, ["build", str(feed), "-o", str(out), "-j", jobs])
    for page in pages[-2:]:
        shutil.copy(page, feed)
    relinked = []
    real = LinkMemo.relink
    monkeypatch.setattr(LinkMemo, "relink",
                        lambda self, *a: relinked.append(real(self, *a)) or relinked[-1])
    again = CliRunner().invoke(main, ["build", str(feed), "-o", str(out), "-j", jobs, "-v"])
    assert relinked and relinked[0] is not None      # linked with the first build's memo
    scratch = CliRunner().invoke(main, ["build", str(feed), "-o", str(fresh), "--no-cache",
                                        "-j", "1"])
    assert first.exit_code == again.exit_code == scratch.exit_code == 0, again.output
    assert "reused from the cache" in again.output
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name
    assert (out / ".graph.graphml.index").exists()
    assert not (fresh / ".graph.graphml.index").exists()


def test_the_vocabulary_is_kept_in_the_cache_until_a_file_changes(tmp_path, lexicon):
    path = tmp_path / "c.sqlite"
    vocab = tmp_path / "mine.jsonl"
    vocab.write_text('{"name": "FooNet", "type": "model", "aliases": ["Foo Net"]}\n',
                     encoding="utf-8")
    made, blob = pipeline.read_lexicon([vocab], path)
    assert blob is not None                         # no cache yet: made, to be kept
    cache = pipeline.open_cache(path, made)
    cache.save_artifact("lexicon", blob)
    cache.close()
    kept, again = pipeline.read_lexicon([vocab], path)
    assert again is None and kept == made
    assert any(e.name == "FooNet" for e in kept) and len(kept) == len(lexicon) + 1
    vocab.write_text('{"name": "BarNet", "type": "model"}\n', encoding="utf-8")
    changed, blob = pipeline.read_lexicon([vocab], path)
    assert blob is not None and any(e.name == "BarNet" for e in changed)
    assert not any(e.name == "FooNet" for e in changed)


def test_graphml_parts_are_copied_without_copy_file_range(sample_result, tmp_path,
                                                          monkeypatch):
    # where the kernel cannot copy between the files, the old file is read through
    out = tmp_path / "graph.graphml"
    write_graphml_parts(sample_result.parts, out)
    expected = out.read_bytes()

    def refuse(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("os.copy_file_range", refuse, raising=False)
    assert write_graphml_parts(sample_result.parts, out) == len(sample_result.parts.articles)
    assert out.read_bytes() == expected


def test_the_command_starts_without_networkx():
    # the rebuild's extraction worker is forked from a process that has not loaded it
    import subprocess
    import sys

    code = ("import sys, kg.cli, kg; "
            "print('networkx' in sys.modules, callable(kg.build), 'build' in dir(kg))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "True", "True"]


_WORKER_START = """
import sys
from kg.workers import import_spacy
{before}
import_spacy()
from kg.extract import extract, make_nlp
from kg.lexicon import load_lexicon
from kg.sources import read_articles, sample_path
articles = read_articles([sample_path()])[:20]
found = [(e.article_id, len(e.mentions)) for e in extract(articles, make_nlp(load_lexicon()))]
print('spacy.cli' in sys.modules, sum(n for _, n in found))
import spacy.cli
print(callable(spacy.cli.download))
"""


def _worker_start(before: str = "") -> list[str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WORKER_START.format(before=before)],
                          capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_a_worker_imports_spacy_without_its_command_line(lexicon):
    # the worker's start-up is what a rebuild waits for; spaCy's command line is a third
    # of spaCy's import and no worker uses it
    articles = read_articles([sample_path()])[:20]
    expected = sum(len(e.mentions) for e in extract(articles, make_nlp(lexicon)))
    assert expected > 20
    assert _worker_start() == ["False", str(expected), "True"]     # and loads it later


def test_a_spacy_that_needs_its_command_line_is_imported_as_usual(lexicon):
    # a spaCy whose package wants more of the command line than the stand-in holds (made
    # here by failing its first import of spacy.errors): imported again, whole
    articles = read_articles([sample_path()])[:20]
    expected = sum(len(e.mentions) for e in extract(articles, make_nlp(lexicon)))
    fail_once = """
import importlib.abc
class FailOnce(importlib.abc.MetaPathFinder):
    failed = False
    def find_spec(self, name, path, target=None):
        if name == "spacy.errors" and not FailOnce.failed:
            FailOnce.failed = True
            raise ImportError("wants spacy.cli.something")
        return None
sys.meta_path.insert(0, FailOnce())
"""
    assert _worker_start(fail_once) == ["True", str(expected), "True"]    # usual import


def test_a_large_graph_writes_graphml_here_and_the_page_aside(tmp_path, monkeypatch):
    # above a size the writers swap processes (a fork pays for the memory GraphML reads);
    # the files are the same either way
    import kg.cli as cli_module

    out, swapped = tmp_path / "out", tmp_path / "swapped"
    first = CliRunner().invoke(main, ["build", "--sample", "-o", str(out), "-j", "2"])
    monkeypatch.setattr(cli_module, "_GRAPHML_HERE_FROM", 0)
    again = CliRunner().invoke(main, ["build", "--sample", "-o", str(swapped), "-j", "2"])
    assert first.exit_code == again.exit_code == 0, again.output
    for name in OUTPUTS:
        assert (swapped / name).read_bytes() == (out / name).read_bytes(), name


def test_graphml_from_parts_escapes_as_the_networkx_writer_does(lexicon, tmp_path):
    # the parts writer renders articles and their edges by templates; markup, ampersands
    # and characters XML cannot hold must come out as the general writer writes them
    from kg.model import Article

    hostile = [
        Article("h1", "<b>LoRA</b> & QLoRA 微调", "我们用<b>LoRA</b> & QLoRA微调。\x01第二句讲 AdamW。",
                ("feeds/a&b.txt:1", "feeds/<x>.txt:2"), url="https://x.org/?a=1&b=<2>",
                date="2024-01-02\x0b", truncated=True),
        Article("h2", "plain", "Medusa 和 EAGLE 做投机解码; FlashAttention < 2 & more.",
                ("feeds/p.txt:3",)),
    ]
    built = pipeline.build(hostile, lexicon)
    assert any(built.parts.edges_of(a) for a in built.articles)
    write_graphml_parts(built.parts, tmp_path / "parts.graphml", reuse=False)
    write_graphml(built.graph, tmp_path / "graph.graphml")
    assert (tmp_path / "parts.graphml").read_bytes() == \
        (tmp_path / "graph.graphml").read_bytes()
    import networkx as nx

    back = nx.read_graphml(tmp_path / "parts.graphml")
    assert back.nodes["article:h1"]["title"] == "<b>LoRA</b> & QLoRA 微调"
    assert back.nodes["article:h1"]["url"] == "https://x.org/?a=1&b=<2>"


def test_a_page_process_that_dies_leaves_the_page_to_this_one(tmp_path, monkeypatch):
    # with two jobs the page is rendered by a process forked when extraction ends; should
    # it die, this process writes the page, the same bytes
    import kg.export.html as html_module

    here, render, calls = os.getpid(), html_module.write_shown, []

    def write_shown(*args):
        if os.getpid() != here:
            os._exit(3)
        calls.append(args[0])
        render(*args)

    monkeypatch.setattr(html_module, "write_shown", write_shown)
    out, plain = tmp_path / "out", tmp_path / "plain"
    done = CliRunner().invoke(main, ["build", "--sample", "-o", str(out), "-j", "2"])
    assert done.exit_code == 0, done.output
    assert calls == [out / "graph.html"]        # the process died; written here instead
    CliRunner().invoke(main, ["build", "--sample", "-o", str(plain), "-j", "1"])
    assert (out / "graph.html").read_bytes() == (plain / "graph.html").read_bytes()


@pytest.mark.parametrize("formats", ["html", "html,json", "graphml,html"])
def test_every_choice_of_outputs_is_written_alike_by_one_process_or_several(tmp_path, formats):
    # with two jobs the page has a process of its own, GraphML (when asked for) another
    written = {}
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        done = CliRunner().invoke(main, ["build", "--sample", "-o", str(out), "-j", jobs,
                                         "--format", formats])
        assert done.exit_code == 0, done.output
        written[jobs] = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()
                         and not p.name.startswith(".")}
    assert written["1"] == written["2"]
    assert "graph.html" in written["2"] and ("graph.graphml" in written["2"]) == \
        ("graphml" in formats)


def _family_parts(children: int, extra: tuple[tuple[str, str, str], ...] = ()):
    """Parts of one article naming many concepts, each a child of one of a few parents."""
    from kg.graph import graph_parts
    from kg.model import Article, Concept

    keys = [f"c{i:03d}" for i in range(children)] + [f"p{i}" for i in range(5)]
    text = " ".join(keys)
    article = Article("a1", "family", text)
    spans = {"a1": [(text.index(k), text.index(k) + len(k), k, k) for k in keys]}
    concepts = [Concept(k, k.upper(), "method", (k,)) for k in keys]
    hierarchy = [(f"c{i:03d}", f"p{i % 5}", "is_a") for i in range(children)]
    return graph_parts([article], concepts, spans, hierarchy=[*hierarchy, *extra])


def test_a_new_hierarchy_edge_renders_its_run_alone(tmp_path, monkeypatch):
    import kg.export.graphml as graphml_module

    rendered: list[int] = []
    render = graphml_module._Plan.render
    monkeypatch.setattr(graphml_module._Plan, "render",
                        lambda plan, i: rendered.append(i - plan.bounds[2]) or render(plan, i))
    before = _family_parts(400)
    runs = len(graphml_module._runs(before.hierarchy_pairs()))
    out = tmp_path / "graph.graphml"
    write_graphml_parts(before, out)
    assert runs > 20
    for extra in [(("c007", "c123", "variant_of"),),     # a new edge between two concepts
                  (("c123", "c007", "variant_of"),),     # the same pair the other way
                  ()]:                                   # and back
        after = _family_parts(400, extra)
        rendered.clear()
        write_graphml_parts(after, out)
        assert 1 <= len(rendered) <= 2      # the runs of c007 and c123, nothing else
        assert min(rendered) >= 0
        write_graphml_parts(after, tmp_path / "fresh.graphml", reuse=False)
        assert out.read_bytes() == (tmp_path / "fresh.graphml").read_bytes()

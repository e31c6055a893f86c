"""The `kg` command line: parse, call the pipeline and the writers, report."""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import time
from pathlib import Path

import click

from kg.errors import KgError
from kg.sources import sample_path

# The rest of kg is imported where a command needs it: a rebuild forks its extraction
# worker first (kg.workers is light), and the worker's start-up runs while this process
# imports the linker, the graph and the writers (0.15 s).

__all__ = ["main"]

FORMATS = ("graphml", "html", "json")


def _formats(ctx, param, value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    unknown = [v for v in chosen if v not in FORMATS]
    if unknown or not chosen:
        raise click.BadParameter(f"{', '.join(unknown) or value!r} is not a format; "
                                 f"choose from {', '.join(FORMATS)}")
    return chosen


@click.group()
@click.version_option(package_name="kg")
def main() -> None:
    """Build a knowledge graph of ML concepts from articles."""


class PathError(click.ClickException):
    """A path on the command line that does not exist: one line, exit code 2."""

    exit_code = 2


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--sample", is_flag=True, help="Build the bundled sample feed.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("output"), show_default=True, help="Folder for the outputs.")
@click.option("--format", "formats", default="graphml,html", show_default=True,
              callback=_formats, help="Comma-separated outputs: graphml, html, json.")
@click.option("--vocab", "vocab", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An extra vocabulary file (JSON Lines); may be repeated.")
@click.option("--threshold", type=click.FloatRange(0, 100), default=92.0,
              show_default=True, help="Score needed to merge two concept names.")
@click.option("--aliases", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Merge rules: 'A = B', 'A != B', '- A', one a line "
              "[default: kg-aliases.txt when present].")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=os.cpu_count() or 1,
              show_default="the machine's cores", help="Worker processes for extraction.")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Extraction cache file [default: OUT/.kg-cache.sqlite].")
@click.option("--no-cache", is_flag=True, help="Extract every article again; keep no cache.")
@click.option("--cooccurrence", is_flag=True,
              help="Also write cooccurrence.graphml: concepts linked by shared articles.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) when any input cannot be read.")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.option("-v", "--verbose", is_flag=True, help="Print how long each stage took.")
@click.option("-q", "--quiet", is_flag=True, help="Hide the progress bar and warnings.")
def build(paths: tuple[Path, ...], sample: bool, out: Path, formats: tuple[str, ...],
          vocab: tuple[Path, ...], threshold: float, rules_path: Path | None, jobs: int,
          cache_path: Path | None, no_cache: bool, cooccurrence: bool, strict: bool,
          debug: bool, verbose: bool, quiet: bool) -> None:
    """Build graph.graphml and graph.html from the articles in PATHS.

    PATHS are files or folders (read recursively): feed pages, Markdown, text, HTML,
    RSS/Atom and JSON Lines. Files or lines that cannot be read are skipped and listed at
    the end; the build goes on (exit 0) unless --strict. Outputs are replaced whole,
    never left half-written.

    \b
    Example:
        kg build feeds/ -o out/
    """
    if not paths and not sample:
        raise click.UsageError("give one or more PATHS, or --sample")
    for path in paths:
        if not path.exists():
            raise PathError(f"{path}: no such file or folder")
    _setup_logging(quiet)
    options = dict(paths=(*paths, sample_path()) if sample else paths, out=out,
                   formats=formats, vocab=vocab, threshold=threshold, rules_path=rules_path,
                   jobs=jobs, cache_path=None if no_cache else cache_path or
                   out / ".kg-cache.sqlite", cooccurrence=cooccurrence, strict=strict,
                   quiet=quiet)
    try:
        summary, timings = _build(**options)
    except KgError as err:
        raise click.ClickException(str(err)) from err
    except (click.ClickException, click.Abort):
        raise
    except Exception as err:  # noqa: BLE001 - the one place that turns bugs into a message
        if debug:
            raise
        raise click.ClickException(f"unexpected {type(err).__name__}: {err} (run again with "
                                   "--debug to see where)") from err
    click.echo(summary)
    if verbose:
        click.echo("time: " + ", ".join(f"{stage} {seconds:.2f}s"
                                        for stage, seconds in timings.items()), err=True)


def _build(*, paths, out: Path, formats, vocab, threshold, rules_path, jobs, cache_path,
           cooccurrence, strict, quiet) -> tuple[str, dict[str, float]]:
    """Run one build; return the summary line and the time of each stage."""
    skipped: list[str] = []
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        if _OWN_PROCESS:
            gc.freeze()     # what a stage leaves lives to the end: stop rescanning it
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    with contextlib.ExitStack() as stack:
        # a rebuild starts a worker loading the last build's pipeline at once, while this
        # process loads the vocabulary and reads the feed (see kg.workers.Workers)
        from kg.workers import Workers

        workers = Workers.speculate(cache_path, jobs)
        if workers is not None:
            stack.enter_context(workers)
        from kg import pipeline
        from kg.export import (write_all, write_concepts_csv, write_graphml,
                               write_graphml_parts, write_html, write_json, write_merges_csv)
        from kg.export.graphml import has_index
        from kg.export.html import prepare as prepare_html
        from kg.export.html import send_html_aside, write_shown
        from kg.forking import Standby, can_fork
        from kg.rules import DEFAULT_RULES, MergeRules, read_rules
        from kg.sources import FileMemo, read_articles

        lexicon, made = pipeline.read_lexicon(vocab, cache_path)
        if rules_path is None and DEFAULT_RULES.is_file():
            rules_path = DEFAULT_RULES
        if rules_path is not None and not rules_path.is_file():
            raise PathError(f"{rules_path}: no such file")
        rules = read_rules(rules_path) if rules_path else MergeRules()
        lap("vocabulary")
        # an existing cache is opened before reading (it knows the files read last time);
        # a new one once there is something to put in it (a build with nothing to read
        # leaves the output folder alone)
        cache = pipeline.open_cache(cache_path, lexicon) \
            if cache_path is not None and cache_path.exists() else None
        stack.callback(lambda: cache is not None and cache.close())
        memo = None if cache_path is None else cache.file_memo() if cache is not None \
            else FileMemo()
        # otherwise extraction starts while the feed is read (see kg.workers.Stream)
        stream = pipeline.Stream.start(lexicon, cache, jobs) if workers is None else None
        if stream is not None:
            stack.enter_context(stream)
        articles = read_articles(paths, problem=skipped.append, memo=memo,
                                 on_file=stream.offer if stream is not None else None)
        lap("read")
        if skipped and not quiet:
            click.echo(f"Skipped {len(skipped)} input(s):", err=True)
            for message in skipped:
                click.echo(f"  {message}", err=True)
        if skipped and strict:
            raise KgError(f"{len(skipped)} input(s) could not be read (--strict); "
                          "nothing written")
        if not articles:
            raise KgError(f"{', '.join(str(p) for p in paths)} holds no readable articles")
        if cache is None and cache_path is not None:
            cache = pipeline.open_cache(cache_path, lexicon)
        if cache is not None:
            cache.save_files(memo)
            if made is not None:
                cache.save_artifact("lexicon", made)
        reuse = cache is not None      # with --no-cache nothing of an earlier build is reused
        # the page is rendered by a process forked when extraction ends: it imports pyvis
        # and networkx (0.3 s) while this one links, on a core that would idle
        page_aside = jobs > 1 and "html" in formats and \
            len(articles) < _GRAPHML_HERE_FROM and can_fork()
        standby: list[Standby] = []

        def close_on_error(kind, *_) -> None:
            if kind is not None:
                for process in standby:
                    process.close()

        stack.push(close_on_error)

        def stage_done(stage: str) -> None:
            if _OWN_PROCESS:
                gc.freeze()
            if stage == "extract" and page_aside:
                standby.append(Standby(prepare_html, write_shown))

        hidden = quiet or not sys.stderr.isatty()
        with click.progressbar(length=len(articles), label="Extracting", hidden=hidden,
                               file=sys.stderr) as bar:
            result = pipeline.build(articles, lexicon, threshold=threshold, jobs=jobs,
                                    cache=cache, progress=bar.update, forced=rules.forced,
                                    forbidden=rules.forbidden, dropped=rules.dropped,
                                    workers=workers, stream=stream,
                                    idle=None if page_aside else prepare_html,
                                    on_stage=stage_done, keep_memo=False)
    parts = result.parts
    clock = time.perf_counter()
    timings.update(result.timings)
    names = {k: c.name for k, c in result.link.concepts.items()}
    graphml = [(write_graphml_parts, (parts, out / "graph.graphml"),
                {"reuse": reuse, "jobs": jobs, "text_keys": result.text_keys})] \
        if "graphml" in formats else []
    tables = [(write_concepts_csv, (parts, out / "concepts.csv"), {}),
              (write_merges_csv, (result.link.merges, out / "merges.csv", names), {})]
    pages = [(write_json, (result.graph, out / "graph.json"), {})] if "json" in formats else []
    if "html" in formats and not standby:
        pages.append((write_html, (parts, out / "graph.html"), {}))
    if cooccurrence:
        from kg.analysis import cooccurrence_graph

        pages.append((lambda: write_graphml(cooccurrence_graph(result.graph),
                                            out / "cooccurrence.graphml"), (), {}))
    keep = [(pipeline.store_memo, (cache.path, cache.fingerprint, result.link.memo), {})] \
        if cache is not None and result.link.memo is not None else []   # for the next build
    # GraphML and the tables in a second process, the page here: about as long. A forked
    # process pays a copy of each page of memory it touches, and GraphML touches all of a
    # large graph (100,000 articles: 3.8 s here, 4.8 s forked), so then the page and the
    # tables go aside (the page takes half as long as GraphML).
    if len(parts.articles) >= _GRAPHML_HERE_FROM:
        aside, tasks = pages + tables + keep, graphml
    elif standby:
        # the page's process renders it; this process writes the tables while it waits,
        # except when GraphML will be mostly copied from the last file (a rebuild): then
        # they go beside GraphML. Linking's memo is kept by this process while it waits
        # (in rebuilds traced, GraphML's process ended last).
        copied = reuse and has_index(out / "graph.graphml")
        aside = graphml + tables if copied else graphml
        tasks = [(send_html_aside, (standby[0], parts, out / "graph.html"), {}),
                 *pages, *([] if copied else tables), *keep, (standby[0].result, (), {})]
    else:
        aside, tasks = graphml + tables + keep, pages
    write_all(aside + tasks, jobs=jobs, aside=len(aside))
    lap("write")
    if _OWN_PROCESS:    # freed at exit, not object by object as this frame goes (0.1 s
        _KEPT.append((result, articles, lexicon, memo, names))   # at 20,000 articles)
    n_concepts = len(parts.concepts)
    reused = f" ({result.reused} reused from the cache)" if result.reused else ""
    summary = (f"{len(articles)} articles{reused}, {n_concepts} concepts, "
               f"{result.n_mentions} mentions"
               f"{f', {len(skipped)} input(s) skipped' if skipped else ''} -> {out}")
    return summary, timings


_OWN_PROCESS = False      # set by `run`: this process is the kg command and ends with it
_KEPT: list = []          # what such a build made, left for the end of the process
_GRAPHML_HERE_FROM = 50000   # articles from which GraphML is written by this process


@main.command("eval")
@click.argument("gold", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("graph", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--details", is_flag=True, help="List the missed and the extra concepts.")
def eval_(gold: Path, graph: Path, details: bool) -> None:
    """Score GRAPH (a graph.graphml from kg build) against GOLD annotations.

    GOLD holds one JSON object a line: {"source": "feeds/p1.txt:4", "concepts":
    [{"name": "LoRA", "aliases": ["低秩适配"], "must": true}, ...]}. Prints precision,
    recall (of the concepts marked must) and F1 per article and overall.

    \b
    Example:
        kg eval tests/data/gold/sample.jsonl output/graph.graphml
    """
    from kg.api import load
    from kg.evaluate import evaluate, format_scores, read_gold
    from kg.lexicon import load_lexicon

    try:
        scores = evaluate(load(graph), read_gold(gold), load_lexicon())
    except KgError as err:
        raise click.ClickException(str(err)) from err
    click.echo(format_scores(scores, details=details))


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("Warning: %(message)s"))
    logger = logging.getLogger("kg")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    logger.propagate = False


def run() -> None:
    """The `kg` console command: `main`, then exit without freeing the heap object by
    object, which takes seconds after a large build and changes nothing on disk."""
    # A build makes millions of small objects that live to the end and almost no cycles:
    # the cyclic collector only rescans them (with the default thresholds 1.5 s of a 10 s
    # build here; with high ones still 0.35 s of reading 100,000 cached extractions).
    # This process makes no cycles worth collecting and ends with the build; extraction
    # workers, which run spaCy over every article, collect as usual (`pipeline`).
    global _OWN_PROCESS
    _OWN_PROCESS = True
    gc.set_threshold(100_000, 50, 100)     # for the workers, which enable it
    gc.disable()
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
    else:  # pragma: no cover - click always exits
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()

"""Write a graph as GraphML, JSON, CSV tables and one self-contained HTML page."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kg.errors import OutputError
from kg.export.files import atomic_path, atomic_write
from kg.forking import Forked, can_fork
from kg.export.graphml import write_graphml, write_graphml_parts
from kg.export.html import TEMPLATES, TYPE_COLOURS, render_html, write_html
from kg.graph import CONCEPT, GraphParts, concept_node

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["write_all", "write_graphml", "write_graphml_parts", "write_json", "write_html",
           "write_concepts_csv", "write_merges_csv", "render_html", "atomic_path",
           "atomic_write", "TYPE_COLOURS", "TEMPLATES"]


def write_json(G: nx.Graph, path: Path) -> None:
    """Write G as node-link JSON (lists stay lists). G is not modified."""
    import networkx as nx

    data = nx.node_link_data(G, edges="links")
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True))


def write_concepts_csv(G: nx.Graph | GraphParts, path: Path) -> None:
    """One row a concept: name, type, aliases, article and mention counts, origin."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["concept", "key", "type", "aliases", "articles", "mentions", "origin"])
    concepts = [(concept_node(k), d) for k, d in G.concepts.items()] \
        if isinstance(G, GraphParts) else G.nodes(data=True)
    rows = [(d["label"], n.split(":", 1)[1], d.get("type", ""), " | ".join(d.get("aliases", [])),
             d.get("articles", 0), d.get("mentions", 0), d.get("origin", ""))
            for n, d in concepts if d.get("kind") == CONCEPT]
    rows.sort(key=lambda r: (-r[4], -r[5], r[0].casefold()))
    out.writerows(rows)
    atomic_write(path, buffer.getvalue())


def write_merges_csv(merges: Iterable, path: Path, names: dict[str, str]) -> None:
    """One row a surface form joined to a concept: surface, concept, key, reason."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["surface", "concept", "key", "reason"])
    for merge in sorted(merges, key=lambda m: (m.concept_key, m.surface)):
        out.writerow([merge.surface, names.get(merge.concept_key, merge.concept_key),
                      merge.concept_key, merge.reason])
    atomic_write(path, buffer.getvalue())


def write_all(tasks: Sequence[tuple[Callable, tuple, dict]], *, jobs: int = 1,
              aside: int = 1) -> None:
    """Run writer tasks ``(function, args, keywords)``; with ``jobs`` > 1 the first
    ``aside`` tasks (none when 0) run in a forked process while this one runs the rest
    (should that process die, they run here after). A task that cannot write its file
    does not stop the others.

    Raises
    ------
    OutputError
        When any task failed, with its message.
    """
    tasks = list(tasks)
    if jobs < 2 or len(tasks) < 2 or aside < 1 or not can_fork():
        _raise(_run_tasks(tasks))
        return
    aside = min(aside, len(tasks) - 1)
    child = Forked(_run_tasks, tasks[:aside], daemon=False)     # GraphML may fork in it
    try:
        messages = _run_tasks(tasks[aside:])
    except BaseException:
        child.close()           # its files are whole before this process ends
        raise
    _raise(child.result() + messages)


def _run_tasks(tasks: Sequence[tuple[Callable, tuple, dict]]) -> list[str]:
    """Run every task; the messages of those that could not write their file."""
    messages = []
    for function, args, keywords in tasks:
        try:
            function(*args, **keywords)
        except OutputError as err:
            messages.append(str(err))
    return messages


def _raise(messages: list[str]) -> None:
    if messages:
        raise OutputError("; ".join(messages))

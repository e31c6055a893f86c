"""Write a graph as GraphML, JSON, CSV tables and one self-contained HTML page."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import marshal
import math
import mmap
import multiprocessing as mp
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import networkx as nx

from kg.errors import OutputError
from kg.graph import (ARTICLE, CONCEPT, MAX_CONTEXTS, TEXT_LIMIT, GraphParts, article_node,
                      concept_graph, concept_node)
from kg.model import Article

__all__ = ["write_all", "write_graphml", "write_json", "write_html", "write_concepts_csv", "write_merges_csv",
           "render_html", "atomic_write", "TYPE_COLOURS", "TEMPLATES"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
TYPE_COLOURS = {"model": "#4e79a7", "method": "#f28e2b", "optimizer": "#e15759",
                "dataset": "#76b7b2", "metric": "#59a14f", "library": "#edc948",
                "hardware": "#b07aa1", "datatype": "#ff9da7", "organization": "#9c755f",
                "task": "#86bcb6", "concept": "#8cd17d", ARTICLE: "#bab0ac"}


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    A reader, or a build killed half-way, sees the old file or the new one, never a part.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(name, 0o666 & ~_UMASK)      # mkstemp makes it private; outputs are not
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from err
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from err
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def _scalar(value):
    if type(value) in _PLAIN:
        return value
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    return "" if value is None else value


def write_graphml(G: nx.Graph, path: Path) -> None:
    """Write G as GraphML; lists become JSON strings. G is not modified.

    A streaming writer: networkx's ElementTree writer took 9 s for a 20,000-article
    graph here, this one about a second; `networkx.read_graphml` reads either.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node("concept:lora", aliases=["LoRA", "低秩适配"], articles=2)
    >>> import tempfile, pathlib; out = pathlib.Path(tempfile.mkdtemp()) / "g.graphml"
    >>> write_graphml(G, out); H = nx.read_graphml(out)
    >>> H.nodes["concept:lora"]["aliases"], H.nodes["concept:lora"]["articles"]
    ('["LoRA", "低秩适配"]', 2)
    """
    nodes = list(G.nodes(data=True))
    edges = list(G.edges(data=True))
    table = _KeyTable([("node", d) for _, d in nodes] + [("edge", d) for *_, d in edges])
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n",
                                         buffering=1 << 20) as fh:
        fh.write(table.header(G.is_directed()))
        for node, data in nodes:
            fh.write(table.node(node, data))
        for u, v, data in edges:
            fh.write(table.edge(u, v, data))
        fh.write(_FOOTER)


def write_graphml_parts(parts: GraphParts, path: Path, *, reuse: bool = True,
                        jobs: int = 1) -> int:
    """Write the graph of ``parts`` as GraphML, the same bytes as `write_graphml` of
    ``parts.to_networkx()``, without making that graph.

    With ``reuse``, each part (an article's node, its edges, a concept's node, the
    hierarchy edges) that is unchanged since the last write to ``path`` is copied from the
    old file instead of written again: a hidden index beside it (``.graph.graphml.index``)
    records where each part lies and a hash of what it was made from. The index is
    trusted only while the file's size and time are the ones it records. With ``jobs``
    > 1, a forked process writes the second half of the parts beside this one. Returns
    the number of articles whose node and edges were copied.
    """
    path = Path(path)
    samples = [("node", parts.article_data(a)) for a in parts.articles[:1]]
    samples += [("node", d) for d in list(parts.concepts.values())[:1]]
    first = next((e for a in parts.articles for e in parts.edges_of(a)), None)
    samples += [("edge", first[1])] if first else []
    samples += [("edge", parts.hierarchy_data(p, k)) for _, p, k in parts.hierarchy[:1]]
    table = _KeyTable(samples)
    index_path = path.with_name(f".{path.name}.index")
    stamp = (_GRAPHML_VERSION, table.header(False))
    with contextlib.ExitStack() as stack:
        old, known = _read_index(path, index_path, stamp) if reuse else (b"", {})
        if old:
            stack.callback(old.close)
        plan = _plan(parts, table, known)
        copied = sum(1 for signature, *_ in plan if signature[:1] == b"n" and
                     signature in known)
        with atomic_path(path) as tmp:
            with open(tmp, "wb", buffering=1 << 20) as fh:
                out = _Parts(fh, old, known)
                out.write(stamp[1].encode("utf-8"))
                _write_split(plan, out, tmp, jobs)
                out.write(_FOOTER.encode("utf-8"))
            index = out.index
    if reuse:
        status = path.stat()
        with contextlib.suppress(OutputError):
            atomic_write(index_path, marshal.dumps(
                (stamp, status.st_size, status.st_mtime_ns, index)))
    return copied


def _plan(parts: GraphParts, table: _KeyTable, known: dict
          ) -> list[tuple[bytes, Callable[[], str], int]]:
    """The parts in file order: (signature, how to render it, a guess of its cost)."""
    signatures = [_signature(a, parts.linked.get(a.id, ())) for a in parts.articles]
    plan: list[tuple[bytes, Callable[[], str], int]] = []
    for article, signature in zip(parts.articles, signatures):
        plan.append((b"n" + signature, lambda a=article: table.node(
            article_node(a.id), parts.article_data(a)), 2 + len(article.text) // 200))
    for key, data in parts.concepts.items():
        plan.append((b"c" + _hash((key, list(data.items()))),
                     lambda k=key, d=data: table.node(concept_node(k), d), 1))
    for article, signature in zip(parts.articles, signatures):
        u = article_node(article.id)
        plan.append((b"e" + signature, lambda a=article, u=u: "".join(
            table.edge(u, concept_node(k), d) for k, d in parts.edges_of(a)),
            2 + 3 * parts.counts.get(article.id, {}).__len__()))
    plan.append((b"h" + _hash(parts.hierarchy), lambda: _hierarchy_edges(parts, table),
                 len(parts.hierarchy)))
    return [(s, render, 0 if s in known else cost) for s, render, cost in plan]


def _write_split(plan: list, out: _Parts, tmp: Path, jobs: int) -> None:
    """Write the parts of ``plan``; with ``jobs`` > 1 a forked process writes the second
    half (by cost) to a side file, appended here when this half is done."""
    total = sum(cost for *_, cost in plan)
    if jobs < 2 or total < _SPLIT_FROM or "fork" not in mp.get_all_start_methods():
        for signature, render, _ in plan:
            out.put(signature, render)
        return
    running, split = 0, len(plan)
    for i, (*_, cost) in enumerate(plan):
        running += cost
        if running >= total / 2:
            split = i + 1
            break
    side = tmp.with_name(tmp.name + ".part2")
    context = mp.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_write_side, args=(plan[split:], out, side, send),
                            daemon=True)
    child.start()
    send.close()
    try:
        for signature, render, _ in plan[:split]:
            out.put(signature, render)
        answer = receive.recv() if receive.poll(None) else "no answer"
        child.join()
        if isinstance(answer, str):
            raise OutputError(f"{tmp.name}: {answer}")
        shift = out.position
        with open(side, "rb") as fh:
            shutil.copyfileobj(fh, out.fh, 1 << 22)
        out.position += side.stat().st_size
        out.index.update((s, (at + shift, n)) for s, (at, n) in marshal.loads(answer).items())
    finally:
        side.unlink(missing_ok=True)


_SPLIT_FROM = 20000     # a guess of the cost worth a second process (about 2,000 articles)


def _write_side(plan: list, out: _Parts, side: Path, send) -> None:
    try:
        with open(side, "wb", buffering=1 << 20) as fh:
            mine = _Parts(fh, out.old, out.known)
            for signature, render, _ in plan:
                mine.put(signature, render)
        send.send(marshal.dumps(mine.index))
    except Exception as err:  # noqa: BLE001 - reported to the parent as its message
        send.send(f"{type(err).__name__}: {err}")


class _Parts:
    """Writes parts of a file, copying those an earlier file holds under the same hash."""

    def __init__(self, fh, old, known: dict[bytes, tuple[int, int]]) -> None:
        self.fh, self.old, self.known = fh, old, known
        self.position = 0
        self.index: dict[bytes, tuple[int, int]] = {}

    def write(self, data: bytes) -> None:
        self.position += self.fh.write(data)

    def put(self, signature: bytes, render: Callable[[], str]) -> None:
        """Write the part with this signature, copied from the old file when it has it."""
        spot = self.known.get(signature)
        data = self.old[spot[0]:spot[0] + spot[1]] if spot else render().encode("utf-8")
        self.index[signature] = (self.position, len(data))
        self.write(data)


def _hierarchy_edges(parts: GraphParts, table: _KeyTable) -> str:
    H = nx.Graph()          # the order networkx gives these edges in the whole graph
    H.add_nodes_from(concept_node(k) for k in parts.concepts)
    H.add_edges_from((concept_node(c), concept_node(p), parts.hierarchy_data(p, k))
                     for c, p, k in parts.hierarchy)
    return "".join(table.edge(u, v, data) for u, v, data in H.edges(data=True))


def _hash(value) -> bytes:
    return hashlib.blake2b(marshal.dumps(value), digest_size=16).digest()


# what a reused part holds is made by this code and kg/graph.py
_GRAPHML_VERSION = hashlib.sha256(Path(__file__).read_bytes() + (
    Path(__file__).resolve().parent / "graph.py").read_bytes()).hexdigest()[:16]


def _signature(article: Article, linked) -> bytes:
    """What an article's GraphML parts are made from, hashed."""
    return _hash((article.id, article.title, article.text, article.sources, article.url,
                  article.date, article.truncated, MAX_CONTEXTS, TEXT_LIMIT,
                  [(m.start, m.end, key) for m, key in linked]))


def _read_index(path: Path, index_path: Path, stamp) -> tuple[mmap.mmap | bytes, dict]:
    """The old GraphML file (mapped, not read) and its index, if the index is for this
    very file."""
    try:
        stored, size, mtime, chunks = marshal.loads(index_path.read_bytes())
        with open(path, "rb") as fh:
            status = os.fstat(fh.fileno())
            if stored != stamp or (size, mtime) != (status.st_size, status.st_mtime_ns) \
                    or not size:
                return b"", {}
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), chunks
    except (OSError, ValueError, EOFError, TypeError):
        return b"", {}


class _KeyTable:
    """GraphML ``<key>`` ids and types for attribute names, and the element writers."""

    def __init__(self, scoped: Iterable[tuple[str, dict]]) -> None:
        kinds: dict[tuple[str, str], str] = {}
        for scope, data in scoped:
            for name, value in data.items():
                kind = _GRAPHML_TYPES.get(type(_scalar(value)), "string")
                seen = kinds.setdefault((scope, name), kind)
                if seen != kind:
                    kinds[(scope, name)] = "double" if {seen, kind} <= {"long", "double"} \
                        else "string"
        self.kinds = kinds
        self.keys = {sn: f"d{i}" for i, sn in enumerate(sorted(kinds))}
        self._spec: dict[str, dict[str, tuple[str, str]]] = {}

    def header(self, directed: bool) -> str:
        lines = [_HEADER]
        for (scope, name), key in self.keys.items():
            lines.append(f'  <key id="{key}" for="{scope}" attr.name={quoteattr(_xml(name))} '
                         f'attr.type="{self.kinds[(scope, name)]}" />\n')
        lines.append(f'  <graph edgedefault="{"directed" if directed else "undirected"}">\n')
        return "".join(lines)

    def node(self, node, data: dict) -> str:
        return (f"    <node id={quoteattr(_xml(str(node)))}>\n{self._data(data, 'node')}"
                "    </node>\n")

    def edge(self, u, v, data: dict) -> str:
        return (f"    <edge source={quoteattr(_xml(str(u)))} target={quoteattr(_xml(str(v)))}>"
                f"\n{self._data(data, 'edge')}    </edge>\n")

    def _data(self, data: dict, scope: str) -> str:
        spec = self._spec.get(scope)
        if spec is None:
            spec = self._spec[scope] = {
                name: (f'      <data key="{key}">', self.kinds[(sc, name)])
                for (sc, name), key in self.keys.items() if sc == scope}
        out = []
        for name, value in data.items():
            head, kind = spec[name]
            if type(value) not in _PLAIN:
                value = _scalar(value)
            if kind == "string":
                text = value if type(value) is str else str(value)
                if _NEEDS_CARE.search(text):
                    text = escape(_xml(text))
            elif kind == "boolean":
                text = "true" if value else "false"
            else:
                text = repr(value) if isinstance(value, float) else str(value)
            out.append(f"{head}{text}</data>\n")
        return "".join(out)


_HEADER = ('<?xml version="1.0" encoding="utf-8"?>\n<graphml xmlns="http://graphml.graphdrawing'
           '.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
           'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n')
_FOOTER = "  </graph>\n</graphml>\n"
_GRAPHML_TYPES = {bool: "boolean", int: "long", float: "double", str: "string"}
_PLAIN = frozenset((str, int, float, bool))
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NEEDS_CARE = re.compile("[&<>\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def write_json(G: nx.Graph, path: Path) -> None:
    """Write G as node-link JSON (lists stay lists). G is not modified."""
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


def write_all(tasks: Sequence[tuple[Callable, tuple, dict]], *, jobs: int = 1) -> None:
    """Run writer tasks ``(function, args, keywords)``; with ``jobs`` > 1 the first task (the
    heaviest, GraphML) runs in a forked process while this one runs the rest.

    Raises
    ------
    OutputError
        When any task failed, with the child's message.
    """
    tasks = list(tasks)
    if jobs < 2 or len(tasks) < 2 or "fork" not in mp.get_all_start_methods():
        for function, args, keywords in tasks:
            function(*args, **keywords)
        return
    context = mp.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_task, args=(tasks[0], send))   # may fork in turn
    child.start()
    send.close()
    try:
        for function, args, keywords in tasks[1:]:
            function(*args, **keywords)
    finally:
        message = receive.recv() if receive.poll(None) else "no answer"
        child.join()
    if message:
        raise OutputError(message)


def _run_task(task: tuple[Callable, tuple, dict], send) -> None:
    function, args, keywords = task
    try:
        function(*args, **keywords)
        send.send("")
    except Exception as err:  # noqa: BLE001 - reported to the parent as its message
        send.send(str(err) if isinstance(err, OutputError) else f"{type(err).__name__}: {err}")


def render_html(G: nx.Graph | GraphParts, *, title: str = "kg: ML concepts",
                height: str = "100vh", max_nodes: int = 5000) -> str:
    """Return the viewer page for G: one file, every script inlined, no outside request.

    Feed text reaches the page only as JSON data (``<`` escaped) and is put into the page
    with ``textContent``, so markup in titles or text shows as text and never runs.
    Above ``max_nodes`` nodes the page shows the concepts with the most articles, and
    their articles, and says so. ``G`` may be the `GraphParts` of a build, which saves
    making the whole networkx graph when only a part is shown.
    """
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader
    from pyvis.network import Network

    view, note = _view(G, max_nodes)
    net = Network(height=height, width="100%", cdn_resources="in_line", heading="")
    pyvis_templates = Path(Network.__init__.__code__.co_filename).parent / "templates"
    net.templateEnv = Environment(loader=ChoiceLoader([FileSystemLoader(str(TEMPLATES)),
                                                       FileSystemLoader(str(pyvis_templates))]),
                                  autoescape=True)
    net.path = "graph.html.j2"
    positions = _layout(view) if view.number_of_nodes() > 300 else {}
    # The node and edge lists are filled directly: pyvis' add_edge looks for duplicates
    # among all edges, which took 32 s for 20,000 edges.
    net.nodes = [_vis_node(node, data, positions.get(node), bool(positions))
                 for node, data in sorted(view.nodes(data=True))]
    net.edges = [{"from": u, "to": v, "value": int(data.get("count", 1)),
                  "kind": data.get("kind", ""), "contexts": list(data.get("contexts", [])),
                  "parent": data.get("parent", "")}
                 for u, v, data in sorted(view.edges(data=True))]
    physics = not positions
    net.set_options(json.dumps({
        "physics": {"enabled": physics, "stabilization": {"iterations": 150},
                    "barnesHut": {"gravitationalConstant": -6000, "springLength": 120}},
        "edges": {"smooth": False, "color": {"opacity": 0.5}},
        "interaction": {"hover": True, "tooltipDelay": 200, "hideEdgesOnDrag": True},
        "nodes": {"font": {"size": 14, "strokeWidth": 3, "strokeColor": "#ffffff"},
                  "scaling": {"min": 8, "max": 40,
                              "label": {"enabled": True, "min": 11, "max": 26,
                                        "drawThreshold": 9, "maxVisible": 26}}}}))
    net.heading = title
    html = net.generate_html(name="graph.html")
    return html.replace("__KG_NOTE__", json.dumps(note).replace("<", "\\u003c"))


def write_html(G: nx.Graph | GraphParts, path: Path, **options) -> None:
    """Write the viewer page for G (see `render_html`). G is not modified."""
    atomic_write(path, render_html(G, **options))


def _vis_node(node: str, data: dict, position: tuple[float, float] | None,
              large: bool) -> dict:
    kind = data.get("kind", "")
    out = {"id": node, "kind": kind, "color": TYPE_COLOURS.get(data.get("type", kind), "#bab0ac")}
    if position is not None:
        out["x"], out["y"] = position
    if kind == CONCEPT:
        out.update(label=str(data.get("label", node)), shape="dot",
                   value=int(data.get("articles", 1)), type=data.get("type", ""),
                   aliases=list(data.get("aliases", [])), articles=int(data.get("articles", 0)),
                   mentions=int(data.get("mentions", 0)))
    else:
        out.update(label="" if large else _short(str(data.get("label", node))), shape="square",
                   font={"size": 10, "color": "#777777"},
                   size=6, title_text=data.get("title", ""), source=data.get("source", ""),
                   url=data.get("url", ""), date=data.get("date", ""))
    return out


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _view(G: nx.Graph | GraphParts, max_nodes: int, *, per_concept: int = 3
          ) -> tuple[nx.Graph, str]:
    """The whole graph, or for a big one the top concepts with a few articles each."""
    if isinstance(G, GraphParts):
        if G.n_nodes <= max_nodes:
            return G.to_networkx(), ""
        view = G.to_networkx(G.top_view(max_nodes, per_concept))
        return view, _note(view, G.n_nodes)
    if G.number_of_nodes() <= max_nodes:
        return G, ""
    concepts = sorted((n for n, k in G.nodes(data="kind") if k == CONCEPT),
                      key=lambda n: (-G.nodes[n].get("articles", 0), n))
    keep: set[str] = set(concepts[:max(1, max_nodes // (per_concept + 1))])
    for node in sorted(keep, key=concepts.index):
        articles = sorted((m for m in G[node] if G.nodes[m].get("kind") == ARTICLE),
                          key=lambda m: (-G.edges[node, m].get("count", 1), m))
        for article in articles[:per_concept]:
            if len(keep) >= max_nodes:
                break
            keep.add(article)
    view = nx.Graph()       # in the graph's node order (a subgraph copy has the set's order)
    view.add_nodes_from((n, dict(d)) for n, d in G.nodes(data=True) if n in keep)
    view.add_edges_from((u, v, dict(d)) for u, v, d in G.edges(data=True)
                        if u in keep and v in keep)
    return view, _note(view, G.number_of_nodes())


def _note(view: nx.Graph, total: int) -> str:
    shown = sum(1 for _, kind in view.nodes(data="kind") if kind == CONCEPT)
    return (f"Large graph: showing the {shown} concepts with the most articles and a few "
            f"articles each ({view.number_of_nodes()} of {total} nodes). "
            "GraphML and JSON hold everything.")


def _layout(G: nx.Graph, *, core: int = 300, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Positions for a large graph, computed fast so the page needs no physics.

    The ``core`` concepts with most articles get a force layout of their co-occurrence
    graph; every other concept sits near the core concepts it shares articles with, and
    every article near its concepts. Deterministic for a given ``seed``.
    """
    import random

    rng = random.Random(seed)
    scale = 90.0 * max(1.0, G.number_of_nodes() ** 0.5)
    if G.number_of_nodes() < 500:        # a full force layout is quick at this size
        pos = nx.spring_layout(G, seed=seed, iterations=120,
                               k=2.0 / max(1.0, G.number_of_nodes() ** 0.5))
        return {n: (float(x) * scale, float(y) * scale) for n, (x, y) in pos.items()}
    concepts = sorted((n for n, k in G.nodes(data="kind") if k == CONCEPT),
                      key=lambda n: (-G.nodes[n].get("articles", 0), n))
    top = set(concepts[:core])
    C = concept_graph(G.subgraph(top | {m for n in top for m in G[n]}))
    C.remove_nodes_from([n for n in list(C) if n not in top])
    pos = {n: (float(x), float(y)) for n, (x, y) in
           nx.spring_layout(C, seed=seed, iterations=60).items()} if len(C) else {}

    def near(nodes: list[str], spread: float) -> tuple[float, float]:
        placed = [pos[n] for n in nodes if n in pos]
        if not placed:
            angle = rng.uniform(0, 6.2832)
            return 1.3 * math.cos(angle), 1.3 * math.sin(angle)
        x = sum(p[0] for p in placed) / len(placed)
        y = sum(p[1] for p in placed) / len(placed)
        return x + rng.uniform(-spread, spread), y + rng.uniform(-spread, spread)

    for node in concepts[core:]:
        related = sorted({c for a in G[node] for c in G[a] if c in top})
        pos[node] = near(related, 0.08)
    for node in sorted(n for n, k in G.nodes(data="kind") if k != CONCEPT):
        pos[node] = near(sorted(G[node]), 0.05)
    return {n: (x * scale, y * scale) for n, (x, y) in pos.items()}

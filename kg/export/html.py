"""The viewer: one self-contained HTML page (pyvis with our template, nothing fetched)."""
from __future__ import annotations

import functools
import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from kg.export.files import atomic_write
from kg.graph import ARTICLE, CONCEPT, GraphParts

if TYPE_CHECKING:       # imported where used: not needed before the page is made
    import networkx as nx

    from kg.forking import Standby

__all__ = ["render_html", "write_html", "page_rows", "render_rows", "write_shown",
           "send_html_aside", "prepare", "TYPE_COLOURS", "TEMPLATES"]

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
TYPE_COLOURS = {"model": "#4e79a7", "method": "#f28e2b", "optimizer": "#e15759",
                "dataset": "#76b7b2", "metric": "#59a14f", "library": "#edc948",
                "hardware": "#b07aa1", "datatype": "#ff9da7", "organization": "#9c755f",
                "task": "#86bcb6", "concept": "#8cd17d", ARTICLE: "#bab0ac"}


def render_html(G: nx.Graph | GraphParts, *, title: str = "kg: ML concepts",
                height: str = "100vh", max_nodes: int = 5000) -> str:
    """Return the viewer page for G: one file, every script inlined, no outside request.

    Feed text reaches the page only as JSON data (``<`` escaped) and is put into the page
    with ``textContent``, so markup in titles or text shows as text and never runs.
    Above ``max_nodes`` nodes the page shows the concepts with the most articles, and
    their articles, and says so. ``G`` may be the `GraphParts` of a build, which saves
    making the whole networkx graph when only a part is shown.
    """
    return render_rows(*page_rows(G, max_nodes), title=title, height=height)


Rows = tuple[list[tuple[str, dict]], list[tuple[str, str, dict]], str]


def page_rows(G: nx.Graph | GraphParts, max_nodes: int = 5000) -> Rows:
    """What the page shows of G (see `render_html`): its nodes and edges as networkx
    lists them, and the note on a large graph's view; plain data, to render elsewhere
    (`render_rows`). From `GraphParts` without networkx."""
    if isinstance(G, GraphParts):
        shown, note = _shown(G, max_nodes)
        return (*shown.rows(), note)
    view, note = _view(G, max_nodes)
    return list(view.nodes(data=True)), list(view.edges(data=True)), note


def _shown(parts: GraphParts, max_nodes: int) -> tuple[GraphParts, str]:
    """The parts the page shows (all, or for a big graph `GraphParts.top_view`'s) and
    the note that says so."""
    if parts.n_nodes <= max_nodes:
        return parts, ""
    shown = parts.subset(parts.top_view(max_nodes, 3))
    return shown, _note(len(shown.concepts), shown.n_nodes, parts.n_nodes)


def render_rows(nodes: list[tuple[str, dict]], edges: list[tuple[str, str, dict]],
                note: str, *, title: str = "kg: ML concepts", height: str = "100vh") -> str:
    """The page of `page_rows`."""
    from pyvis.network import Network

    net = Network(height=height, width="100%", cdn_resources="in_line", heading="")
    net.templateEnv = _environment()
    net.path = "graph.html.j2"
    positions = _layout(nodes, edges) if len(nodes) > 300 else {}
    # The node and edge lists are filled directly: pyvis' add_edge looks for duplicates
    # among all edges, which took 32 s for 20,000 edges.
    net.nodes = [_vis_node(node, data, positions.get(node), bool(positions))
                 for node, data in sorted(nodes)]
    net.edges = [{"from": u, "to": v, "value": int(data.get("count", 1)),
                  "kind": data.get("kind", ""), "contexts": list(data.get("contexts", [])),
                  "parent": data.get("parent", "")}
                 for u, v, data in sorted(edges)]      # the ends as networkx gives them
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


@functools.cache
def _environment():
    """Our template, with pyvis' copy of vis-network (script and style) as its values
    ``vis_js`` and ``vis_css``: inlined as they are, not parsed as templates (the 0.7 MB
    of them took jinja 0.08 s to compile for every page)."""
    from jinja2 import Environment, FileSystemLoader
    from markupsafe import Markup
    from pyvis.network import Network

    lib = Path(Network.__init__.__code__.co_filename).parent / "templates" / "lib" / _VIS
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True)
    # the data as UTF-8, not \u escapes (the 20,000-article feed's page: 7.4 MB, not
    # 9.5 MB), in the order it was built: `tojson` still escapes < > & ' so nothing in
    # it can close the script
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    env.globals.update(vis_js=Markup((lib / "vis-network.min.js").read_text("utf-8")),
                       vis_css=Markup((lib / "vis-network.css").read_text("utf-8")))
    return env


_VIS = "vis-9.1.2"      # the vis-network pyvis ships


def prepare() -> None:
    """Import what `render_html` needs (pyvis, with networkx and IPython, jinja2, and
    numpy, which networkx imports when first asked to lay out), compile the template and
    lay out a tiny graph (networkx compiles its functions' argument handling on their
    first call): about 0.3 s of CPU in a rebuild's traces here, for a caller with time
    to spare before it renders."""
    import networkx as nx
    import numpy  # noqa: F401 - networkx imports it only inside the layout
    import pyvis.network  # noqa: F401 - with networkx and jinja2

    _environment().get_template("graph.html.j2")
    nx.spring_layout(nx.path_graph(3), seed=0, iterations=1)


def write_html(G: nx.Graph | GraphParts, path: Path, **options) -> None:
    """Write the viewer page for G (see `render_html`). G is not modified."""
    atomic_write(path, render_html(G, **options))


def write_shown(path: Path, shown: GraphParts, note: str, options: dict) -> None:
    """Write the page of the parts a page shows and its note (see `send_html_aside`)."""
    atomic_write(path, render_rows(*shown.rows(), note, **options))


def send_html_aside(standby: Standby, G: GraphParts, path: Path, **options) -> None:
    """`write_html` of `GraphParts`, with the page rendered and written by ``standby`` (a
    `kg.forking.Standby` of `write_shown`, made ready by `prepare`) once this process
    has chosen what it shows (a third of the work, without pyvis or networkx; what
    goes over is the shown part of the graph, half the size of the page's rows). The
    page is written when ``standby.result()`` returns (it raises what `write_html`
    would)."""
    shown, note = _shown(G, options.pop("max_nodes", 5000))
    standby.run(path, shown, note, options)


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


def _view(G: nx.Graph, max_nodes: int, *, per_concept: int = 3) -> tuple[nx.Graph, str]:
    """The whole graph, or for a big one the top concepts with a few articles each."""
    import networkx as nx

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
    shown = sum(1 for _, kind in view.nodes(data="kind") if kind == CONCEPT)
    return view, _note(shown, view.number_of_nodes(), G.number_of_nodes())


def _note(shown: int, nodes: int, total: int) -> str:
    return (f"Large graph: showing the {shown} concepts with the most articles and a few "
            f"articles each ({nodes} of {total} nodes). GraphML and JSON hold everything.")


def _core_graph(data: dict[str, dict], adjacent: dict[str, set[str]], top: set[str]
                ) -> nx.Graph:
    """`concept_graph` of the ``top`` concepts alone (the same graph, node and edge order
    included), counting shared articles straight from the view's adjacency."""
    import networkx as nx

    shared: Counter = Counter()
    articles = {a for n in top for a in adjacent[n] if data[a].get("kind") == ARTICLE}
    for article in articles:
        linked = sorted(c for c in adjacent[article] if c in top)
        for i, u in enumerate(linked):
            for v in linked[i + 1:]:
                shared[(u, v)] += 1
    C = nx.Graph()
    C.add_nodes_from((n, dict(data[n])) for n in sorted(top))
    C.add_weighted_edges_from((u, v, w) for (u, v), w in sorted(shared.items()))
    return C


def _layout(nodes: list[tuple[str, dict]], edges: list[tuple[str, str, dict]], *,
            core: int = 200, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Positions for a large view (`page_rows`), computed fast so the page needs no
    physics.

    The ``core`` concepts with most articles get a force layout of their co-occurrence
    graph; every other concept sits near the core concepts it shares articles with, and
    every article near its concepts. Deterministic for a given ``seed``.
    """
    import random

    import networkx as nx

    rng = random.Random(seed)
    scale = 90.0 * max(1.0, len(nodes) ** 0.5)
    if len(nodes) < 500:        # a full force layout is quick at this size
        G = nx.Graph()
        G.add_nodes_from(nodes)
        G.add_edges_from(edges)
        pos = nx.spring_layout(G, seed=seed, iterations=120,
                               k=2.0 / max(1.0, len(nodes) ** 0.5))
        return {n: (float(x) * scale, float(y) * scale) for n, (x, y) in pos.items()}
    data = dict(nodes)
    adjacent: dict[str, set[str]] = {n: set() for n in data}
    for u, v, _ in edges:
        adjacent[u].add(v)
        adjacent[v].add(u)
    concepts = sorted((n for n, d in nodes if d.get("kind") == CONCEPT),
                      key=lambda n: (-data[n].get("articles", 0), n))
    top = set(concepts[:core])
    C = _core_graph(data, adjacent, top)
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
        related = sorted({c for a in adjacent[node] for c in adjacent[a] if c in top})
        pos[node] = near(related, 0.08)
    for node in sorted(n for n, d in nodes if d.get("kind") != CONCEPT):
        pos[node] = near(sorted(adjacent[node]), 0.05)
    return {n: (x * scale, y * scale) for n, (x, y) in pos.items()}

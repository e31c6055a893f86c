"""Time the HTML viewer in headless Chromium on a graph of 5,000 nodes and 20,000 edges.

    python benchmarks/viewer.py [--nodes 5000] [--edges 20000]

Prints how long the page takes to draw the graph the first time, and how long a search
takes to select and show a node. Needs Debian's chromium (`make test` installs it).
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import networkx as nx

from kg.export import write_html
from kg.model import TYPES


def synthetic_graph(n_nodes: int, n_edges: int, *, seed: int = 0) -> nx.Graph:
    """An article–concept graph with the kg schema: a fifth of the nodes are concepts."""
    rng = random.Random(seed)
    n_concepts = n_nodes // 5
    G = nx.Graph()
    for i in range(n_concepts):
        G.add_node(f"concept:c{i}", kind="concept", label=f"Concept {i}", type=rng.choice(TYPES),
                   aliases=[f"Concept {i}", f"概念{i}"], articles=0, mentions=0)
    for i in range(n_nodes - n_concepts):
        G.add_node(f"article:a{i}", kind="article", label=f"Article {i}", title=f"Article {i}",
                   source=f"feed/p{i // 10}.txt:{i % 10 + 4}", url="", date="")
    weights = [1 / (k + 1) for k in range(n_concepts)]          # a few popular concepts
    while G.number_of_edges() < n_edges:
        a = f"article:a{rng.randrange(n_nodes - n_concepts)}"
        c = f"concept:c{rng.choices(range(n_concepts), weights)[0]}"
        G.add_edge(a, c, kind="mentions", count=1, contexts=[f"{a} mentions {c}."])
    for node, data in G.nodes(data=True):
        if data["kind"] == "concept":
            data["articles"] = data["mentions"] = G.degree(node)
    return G


def measure(path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1300, "height": 850})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                   else r.abort())
        start = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_function("typeof network !== 'undefined'")
        page.evaluate("new Promise(done => { network.once('afterDrawing', () => done());"
                      " network.redraw(); })")
        drawn = time.perf_counter() - start
        start = time.perf_counter()
        page.fill("#search", "Concept 7")
        page.press("#search", "Enter")
        page.wait_for_function("document.querySelector('#panel h2') !== null")
        searched = time.perf_counter() - start
        nodes = page.evaluate("NODES.length")
        browser.close()
    return {"drawn": drawn, "search": searched, "nodes": nodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--edges", type=int, default=20000)
    args = parser.parse_args()
    G = synthetic_graph(args.nodes, args.edges)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.html"
        start = time.perf_counter()
        write_html(G, path)
        written = time.perf_counter() - start
        size = path.stat().st_size / 2**20
        result = measure(path)
    print("| page | nodes shown | write s | MB | first draw s | search s |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {args.nodes:,} nodes, {args.edges:,} edges | {result['nodes']:,} | {written:.2f} "
          f"| {size:.1f} | {result['drawn']:.2f} | {result['search']:.2f} |")


if __name__ == "__main__":
    main()

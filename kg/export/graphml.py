"""GraphML: a streaming writer for any graph, and one for a build's `GraphParts` that
reuses the parts of the last file still true."""
from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import re
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from kg.errors import OutputError
from kg.export.files import atomic_path, atomic_write
from kg.forking import Forked, can_fork
from kg.graph import (ARTICLE, MAX_CONTEXTS, TEXT_LIMIT, GraphParts, article_node,
                      concept_node)
from kg.model import Article

if TYPE_CHECKING:       # networkx is imported where a graph is made
    import networkx as nx

__all__ = ["write_graphml", "write_graphml_parts", "has_index"]


def _scalar(value):
    if type(value) in _PLAIN:
        return value
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    if isinstance(value, (list, tuple)):
        return _json_list(value)
    return "" if value is None else value


_JSON = json.JSONEncoder(ensure_ascii=False).encode    # json.dumps makes one per call
_STRING = json.encoder.encode_basestring               # what _JSON does with a str


def _json_list(value: list | tuple) -> str:
    """``_JSON(list(value))``; a list of strings (the common case) without the encoder's
    machinery, several times faster."""
    if all(type(item) is str for item in value):
        return _json_strings(value)
    return _JSON(list(value))


def _json_strings(value: Iterable[str]) -> str:
    return f"[{', '.join(map(_STRING, value))}]"


def write_graphml(G: nx.Graph, path: Path) -> None:
    """Write G as GraphML; lists become JSON strings. G is not modified.

    A streaming writer: networkx's ElementTree writer took 9 s for a 20,000-article
    graph here, this one about a second; `networkx.read_graphml` reads either.

    Examples
    --------
    >>> import networkx as nx
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
                        jobs: int = 1, text_keys: dict[str, str] | None = None) -> int:
    """Write the graph of ``parts`` as GraphML, the same bytes as `write_graphml` of
    ``parts.to_networkx()``, without making that graph.

    With ``reuse``, each part (an article's node, its edges, a concept's node, a run of
    hierarchy edges) that is unchanged since the last write to ``path`` is copied from the
    old file instead of written again: a hidden index beside it (``.graph.graphml.index``)
    records where each part lies and a hash of what it was made from. The index is
    trusted only while the file's size and time are the ones it records. With ``jobs``
    > 1, a forked process renders the later half of the parts to be written anew while
    this one renders the rest. ``text_keys`` (article id -> a hash of its text, such as
    the build's cache keys) stand for the texts in those hashes (0.02 s less of a
    20,000-article rebuild's 0.2 s of hashing). Returns the number of articles whose node
    and edges were copied.
    """
    path = Path(path)
    samples = [("node", parts.article_data(a)) for a in parts.articles[:1]]
    samples += [("node", d) for d in list(parts.concepts.values())[:1]]
    first = next((e for a in parts.articles for e in parts.edges_of(a)), None)
    samples += [("edge", first[1])] if first else []
    samples += [("edge", parts.hierarchy_data(p, k)) for _, p, k in parts.hierarchy[:1]]
    table = _KeyTable(samples)
    index_path = _index_path(path)
    stamp = (_GRAPHML_VERSION, table.header(False))
    with contextlib.ExitStack() as stack:
        old, known = _read_index(path, index_path, stamp) if reuse else (None, {})
        if old is not None:
            stack.callback(old.close)
        plan = _Plan(parts, table, signed=reuse, text_keys=text_keys or {})
        known_nodes = map(known.__contains__, plan.signatures[:len(parts.articles)])
        copied = sum(known_nodes) if known else 0
        with atomic_path(path) as tmp:
            with open(tmp, "wb", buffering=1 << 20) as fh:
                out = _Parts(fh, old, known)
                out.write(stamp[1].encode("utf-8"))
                _write_split(plan, out, tmp, jobs)
                out.write(_FOOTER.encode("utf-8"))
                out.finish()
            index = out.index
    if reuse:
        status = path.stat()
        with contextlib.suppress(OutputError):
            atomic_write(index_path, marshal.dumps(
                (stamp, status.st_size, status.st_mtime_ns, index)))
    return copied


class _Plan:
    """The parts of the file in order, by number: each article's node, each concept's
    node, each article's edges, the hierarchy edges in runs (`_runs`); each with a
    signature (a hash of what it is made from; empty unless ``signed``). Parts are
    rendered one at a time, only those the old file does not hold (no closure per part:
    a large rebuild has a quarter of a million parts and renders a few thousand)."""

    def __init__(self, parts: GraphParts, table: _KeyTable, *, signed: bool,
                 text_keys: dict[str, str]) -> None:
        self.parts, self.table = parts, table
        self.articles = parts.articles
        self.concepts = list(parts.concepts.items())
        self.runs = _runs(parts.hierarchy_pairs())
        n, c = len(self.articles), len(self.concepts)
        self.bounds = (n, n + c, 2 * n + c)
        if not signed:
            self.signatures = [b""] * (2 * n + c + len(self.runs))
            return
        linked = parts.linked
        own = [_signature(a, linked.get(a.id, []), text_keys.get(a.id))
               for a in self.articles]
        self.signatures = [b"n" + s for s in own] + \
            [b"c" + _hash((key, list(data.items()))) for key, data in self.concepts] + \
            [b"e" + s for s in own] + [b"h" + _hash(run) for run in self.runs]

    def __len__(self) -> int:
        return len(self.signatures)

    def render(self, i: int) -> str:
        nodes, concepts, edges = self.bounds
        parts, table = self.parts, self.table
        if i < nodes:
            return table.article(self.articles[i], parts)
        if i < concepts:
            key, data = self.concepts[i - nodes]
            return table.node(concept_node(key), data)
        if i < edges:
            article = self.articles[i - concepts]
            return table.mention_edges(article_node(article.id), parts.edge_rows(article))
        return table.hierarchy_edges(self.runs[i - edges])

    def cost(self, i: int) -> int:
        """A guess of the time to render part ``i``, in units of about 2 us."""
        nodes, concepts, edges = self.bounds
        if i < nodes:
            return 2 + len(self.articles[i].text) // 200
        if i < concepts:
            return 1
        if i < edges:
            return 2 + 3 * len(self.parts.counts.get(self.articles[i - concepts].id, ()))
        return len(self.runs[i - edges])


def _write_split(plan: _Plan, out: _Parts, tmp: Path, jobs: int) -> None:
    """Write every part of ``plan``; with ``jobs`` > 1 and enough to render, a forked
    process renders the later half (by cost) of the parts to be written anew into a side
    file, while this process writes the first half; the later half is then copied in
    from the old file and the side file. Should that process fail, its half is rendered
    here (`Forked`)."""
    known = out.known
    todo = [i for i, signature in enumerate(plan.signatures) if signature not in known]
    costs = list(map(plan.cost, todo))
    total = sum(costs)
    if jobs < 2 or total < _SPLIT_FROM or not can_fork():
        out.put_range(plan, 0, len(plan))
        return
    running, split = 0, len(plan)
    for i, cost in zip(todo, costs):
        running += cost
        if running >= total / 2:
            split = i + 1
            break
    side = tmp.with_name(tmp.name + ".part2")
    later = Forked(_render_side, plan, [i for i in todo if i >= split], side)
    try:
        out.put_range(plan, 0, split)
        rendered = later.result()
        with open(side, "rb") as fh:
            out.put_range(plan, split, len(plan), fh, rendered)
            out.finish()
    finally:
        later.close()           # no-op once its result is taken
        side.unlink(missing_ok=True)


_SPLIT_FROM = 20000     # a guess of the cost worth a second process (about 2,000 articles)


def _render_side(plan: _Plan, todo: list[int], side: Path) -> dict[int, tuple[int, int]]:
    """Render the parts ``todo`` of ``plan`` one after another into ``side``; where each
    lies there (part number -> (start, size))."""
    spots: dict[int, tuple[int, int]] = {}
    position = 0
    with open(side, "wb", buffering=1 << 20) as fh:
        for i in todo:
            size = fh.write(plan.render(i).encode("utf-8"))
            spots[i] = (position, size)
            position += size
    return spots


class _Parts:
    """Writes parts of a file, copying those an earlier file holds under the same hash.

    Parts copied one after another from one stretch of a file are copied as one piece
    (most of a rebuild's file is such stretches); `finish` writes what is pending.
    """

    def __init__(self, fh, old, known: dict[bytes, tuple[int, int]]) -> None:
        self.fh, self.old, self.known = fh, old, known
        self.position = 0
        self.index: dict[bytes, tuple[int, int]] = {}
        self._run: list | None = None     # [file, start, end): pending, to copy

    def write(self, data: bytes) -> None:
        self.finish()
        self.position += self.fh.write(data)

    def put_range(self, plan: _Plan, lo: int, hi: int, side=None,
                  rendered: dict[int, tuple[int, int]] | None = None) -> None:
        """Write parts ``lo`` to ``hi`` of ``plan``: copied from the old file when it
        holds them, else from ``side`` when ``rendered`` says where it does, else
        rendered now."""
        known, index, signatures = self.known, self.index, plan.signatures
        rendered = rendered or {}
        for i in range(lo, hi):
            signature = signatures[i]
            spot = known.get(signature)
            source = self.old
            if spot is None:
                spot = rendered.get(i)
                source = side
                if spot is None:
                    data = plan.render(i).encode("utf-8")
                    index[signature] = (self.position, len(data))
                    self.write(data)
                    continue
            start, size = spot
            index[signature] = (self.position, size)
            self.position += size
            run = self._run
            if run is not None and run[2] == start and run[0] is source:
                run[2] = start + size
            else:
                self.finish()
                self._run = [source, start, start + size]

    def finish(self) -> None:
        """Write the stretch pending: copied by the kernel where it can (0.1 s instead of
        0.3-0.6 s for the 440 MB file of 100,000 articles)."""
        if self._run is None:
            return
        source, start, end = self._run
        self._run = None
        self.fh.flush()
        target = self.fh.fileno()
        try:
            while start < end:
                done = os.copy_file_range(source.fileno(), target, end - start, start)
                if not done:
                    raise OSError("the file ended early")
                start += done
        except (AttributeError, OSError):    # no copy_file_range here: through memory
            source.seek(start)
            while start < end:
                chunk = source.read(min(end - start, 1 << 22))
                if not chunk:
                    raise OutputError(f"{self.fh.name}: the file it copies from ended "
                                      "early") from None
                self.fh.write(chunk)
                start += len(chunk)
        self.fh.seek(0, os.SEEK_END)       # the writer's idea of its place, after the copy


def _runs(pairs: list[tuple[str, str, str, str]]) -> list[list[tuple[str, str, str, str]]]:
    """The hierarchy edges (`GraphParts.hierarchy_pairs`, in the order of networkx) cut
    into runs of about eight concepts' edges, each a part of the file. A run ends after
    the edges of a concept whose key hashes to a multiple of 8, so where the runs end
    depends on the keys alone: an edge new to a rebuild changes its own run, and the
    other runs are copied from the last file (the 14,000 edges of a 20,000-article graph
    took a quarter of a second to render again as one part; 200 new articles change a
    tenth of the runs)."""
    runs: list[list[tuple[str, str, str, str]]] = []
    run: list[tuple[str, str, str, str]] = []
    for number, row in enumerate(pairs):
        run.append(row)
        key = row[0]
        if (number + 1 == len(pairs) or pairs[number + 1][0] != key) and \
                zlib.crc32(key.encode("utf-8")) % 8 == 0:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    return runs


def _hash(value) -> bytes:
    """A hash of plain data (str, int, float, bool, None, tuples, lists, dicts): of its
    marshal in format 2, the last without back-references (format 3 marks objects seen
    twice by their reference counts, so equal values gave other bytes in another process,
    and a rebuild copied 10% of parts). Several times faster than hashing its repr."""
    return hashlib.blake2b(marshal.dumps(value, 2), digest_size=16).digest()


# what a reused part holds is made by this code and kg/graph.py
_GRAPHML_VERSION = hashlib.sha256(Path(__file__).read_bytes() + (
    Path(__file__).resolve().parents[1] / "graph.py").read_bytes()).hexdigest()[:16]


def _signature(article: Article, spans: list, text_key: str | None = None) -> bytes:
    """What an article's GraphML parts are made from, hashed; with ``text_key`` (a hash
    of its text) in place of its text."""
    return _hash((article.id, article.title, (text_key,) if text_key else article.text,
                  article.sources, article.url, article.date, article.truncated,
                  MAX_CONTEXTS, TEXT_LIMIT, spans))


def _index_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.index")


def has_index(path: Path) -> bool:
    """Whether the GraphML file at ``path`` has the index a rewrite copies parts by (it
    is checked when used: a stale one is ignored)."""
    return _index_path(Path(path)).is_file()


def _read_index(path: Path, index_path: Path, stamp):
    """The old GraphML file (open for reading) and its index, if the index is for this
    very file; else ``(None, {})``."""
    try:
        stored, size, mtime, chunks = marshal.loads(index_path.read_bytes())
        fh = open(path, "rb")
    except (OSError, ValueError, EOFError, TypeError):
        return None, {}
    status = os.fstat(fh.fileno())
    if stored != stamp or (size, mtime) != (status.st_size, status.st_mtime_ns) or not size:
        fh.close()
        return None, {}
    return fh, chunks


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
        self._ids: dict = {}
        self._concept_ids: dict[str, str] = {}      # concept key -> its quoted node id
        self._template = self._template_for(_MENTION_FIELDS, ["string", "long", "long", "string"])
        self._hierarchy_template = self._template_for(_HIERARCHY_FIELDS,
                                                      ["string", "string", "long"])
        self._article_template = self._template_for(
            _ARTICLE_FIELDS, ["string"] * 8 + ["boolean"], scope="node",
            opening="    <node id={}>\n", closing="    </node>\n")

    def header(self, directed: bool) -> str:
        lines = [_HEADER]
        for (scope, name), key in self.keys.items():
            lines.append(f'  <key id="{key}" for="{scope}" attr.name={quoteattr(_xml(name))} '
                         f'attr.type="{self.kinds[(scope, name)]}" />\n')
        lines.append(f'  <graph edgedefault="{"directed" if directed else "undirected"}">\n')
        return "".join(lines)

    def node(self, node, data: dict) -> str:
        return f"    <node id={self._id(node)}>\n{self._data(data, 'node')}    </node>\n"

    def edge(self, u, v, data: dict) -> str:
        return (f"    <edge source={self._id(u)} target={self._id(v)}>\n"
                f"{self._data(data, 'edge')}    </edge>\n")

    def article(self, article: Article, parts: GraphParts) -> str:
        """`node` of an article with the data `GraphParts.article_data` gives, faster (by
        a template): a large graph has a hundred thousand of them."""
        template = self._article_template
        a = article
        if template is None or type(a.url) is not str or type(a.date) is not str or \
                not all(type(source) is str for source in a.sources):
            return self.node(article_node(a.id), parts.article_data(a))
        title, text, url, date = a.title, a.text[:TEXT_LIMIT], a.url, a.date
        source = a.sources[0] if a.sources else ""
        sources = _json_strings(a.sources)
        if _NEEDS_CARE.search(title):
            title = escape(_xml(title))
        if _NEEDS_CARE.search(text):
            text = escape(_xml(text))
        if _NEEDS_CARE.search(source):
            source = escape(_xml(source))
        if _NEEDS_CARE.search(sources):
            sources = escape(_xml(sources))
        if _NEEDS_CARE.search(url) or _NEEDS_CARE.search(date):
            url, date = escape(_xml(url)), escape(_xml(date))
        return template.format(self._id(article_node(a.id)), ARTICLE, title, title, text,
                               source, sources, url, date,
                               "true" if a.truncated else "false")

    def mention_edges(self, u, rows: list[tuple[str, int, list[str]]]) -> str:
        """`edge` of each row `GraphParts.edge_rows` gives for one article, much faster:
        the few hundred thousand edges of a large graph are most of the file. A
        sentence that several edges of the article quote is encoded once."""
        template = self._template
        if template is None:
            return "".join(self.edge(u, concept_node(k), {
                "kind": "mentions", "count": n, "weight": n, "contexts": contexts})
                for k, n, contexts in rows)
        source = self._id(u)
        ids = self._concept_ids
        encoded: dict[str, str] = {}
        out = []
        for key, n, contexts in rows:
            texts = []
            for sentence in contexts:
                text = encoded.get(sentence)
                if text is None:
                    text = _STRING(sentence)
                    if _NEEDS_CARE.search(text):
                        text = escape(_xml(text))
                    encoded[sentence] = text
                texts.append(text)
            target = ids.get(key)
            if target is None:
                target = ids[key] = self._id(concept_node(key))
            out.append(template.format(source, target, "mentions", n, n,
                                       f"[{', '.join(texts)}]"))
        return "".join(out)

    def hierarchy_edges(self, rows: Iterable[tuple[str, str, str, str]]) -> str:
        """`edge` of each `GraphParts.hierarchy_pairs` row ``(key, key, parent key,
        kind)``, with the data `GraphParts.hierarchy_data` gives, faster (by a template, as
        `mention_edges`)."""
        template = self._hierarchy_template
        shape = GraphParts.hierarchy_data("", "")       # the same for every edge but values
        if tuple(shape) != _HIERARCHY_FIELDS or type(shape["weight"]) is not int:
            template = None
        ids = self._concept_ids
        out = []
        for u, v, parent, kind in rows:
            if template is None:
                out.append(self.edge(concept_node(u), concept_node(v),
                                     GraphParts.hierarchy_data(parent, kind)))
                continue
            parent = concept_node(parent)
            if _NEEDS_CARE.search(kind) or _NEEDS_CARE.search(parent):
                kind, parent = escape(_xml(kind)), escape(_xml(parent))
            ends = []
            for key in (u, v):
                end = ids.get(key)
                if end is None:
                    end = ids[key] = self._id(concept_node(key))
                ends.append(end)
            out.append(template.format(*ends, kind, parent, shape["weight"]))
        return "".join(out)

    def _template_for(self, fields: tuple[str, ...], kinds: list[str], *,
                      scope: str = "edge", opening: str = "    <edge source={} target={}>\n",
                      closing: str = "    </edge>\n") -> str | None:
        """The text of an edge (or node) with these attributes (of these GraphML types),
        its ids and values as ``{}``; None when the key table types them otherwise."""
        if [self.kinds.get((scope, name)) for name in fields] != kinds:
            return None
        heads = [f'      <data key="{self.keys[(scope, name)]}">' for name in fields]
        return opening + "".join(f"{head}{{}}</data>\n" for head in heads) + closing

    def _id(self, node) -> str:
        """A node id as an attribute value (ids recur on every edge: kept once made)."""
        quoted = self._ids.get(node)
        if quoted is None:
            quoted = self._ids[node] = quoteattr(_xml(str(node)))
        return quoted

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
_MENTION_FIELDS = ("kind", "count", "weight", "contexts")     # as GraphParts.edges_of orders them
_HIERARCHY_FIELDS = ("kind", "parent", "weight")             # as GraphParts.hierarchy_data does
_ARTICLE_FIELDS = ("kind", "label", "title", "text", "source", "sources", "url", "date",
                   "truncated")                                # as GraphParts.article_data does
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NEEDS_CARE = re.compile("[&<>\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)

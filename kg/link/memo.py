"""What one link leaves for the next: a rebuild links again only the names its changes
touch, and gets the link a build from scratch would make.

Why that holds. Every step of linking (`kg.link.steps.unions`) looks only at names joined
by some evidence: a vocabulary key they share, one normalised form, a definition, a
forced merge, the initials an acronym spells, a fuzzy candidate pair. Call those links;
they make a graph over the names (and the vocabulary's concepts). What the steps do to
one connected part of that graph depends on nothing outside it, and they take its
evidence in the same order whatever else there is. So the parts that a rebuild leaves as
they were (no name come or gone, no evidence gained or lost) end as they ended last time,
and only the others are linked again; a concept is named again when the counts, types or
origins of its names changed. Names that come push others apart in the sorted orders of
the fuzzy windows, names that go bring them closer: both names of a pair gained or lost
count as changed. A memo is used only with the rules and threshold it was made with.
"""
from __future__ import annotations

import marshal
from collections import defaultdict
from collections.abc import Collection, Sequence

from kg.link.candidates import (VocabIndex, combined, grown_pairs, sorted_orders,
                                vocabulary_pairs)
from kg.link.clusters import Linker
from kg.link.steps import (Merge, acronym_letters, concepts_of, draft, is_multiword,
                           unions)
from kg.names import initials, singular

__all__ = ["LinkMemo"]

_VERSION = 3


class LinkMemo:
    """The inputs and the outcome of a link, by part (see the module's note).

    Attributes
    ----------
    signature : tuple
        Threshold and user rules it was made with.
    surfaces, keys, vocab, pairs
        The names (sorted), their vocabulary keys, the key of those a vocabulary mention
        named, the definitions (`kg.link.steps.first_pairs`).
    counts, types, origins
        What the mentions said of each name (see `kg.link.SurfaceStats`).
    among, near
        Fuzzy candidates among the names, and between a name and a vocabulary term.
    clusters : dict
        First name of each cluster -> (its names, its vocabulary key or None).
    reasons : dict
        Why each joined name was joined.
    drafts : dict
        First name of each cluster -> its `kg.link.steps.Draft` (or None).
    groups : dict
        `groups_of` the names (None until needed).
    orders : tuple
        The names in the orders of the fuzzy candidates' windows
        (`kg.link.candidates.sorted_orders`; None until needed).
    counted : list of str, or None
        What ``counts``, ``types`` and ``origins`` were counted from, as the caller names
        it (`kg.pipeline` gives one name an article), so that a caller counting the same
        things again can start from them instead (`kg.link.SurfaceStats.of_memo`); None
        when not known.
    """

    _FIELDS = ("signature", "surfaces", "keys", "vocab", "counts", "types", "origins",
               "pairs", "among", "near", "clusters", "reasons", "drafts", "groups", "orders",
               "counted")
    __slots__ = _FIELDS + ("_names", "_cluster_of")

    def __init__(self, signature, surfaces, keys, vocab, counts, types, origins, pairs,
                 among, near, clusters, reasons, drafts, groups=None, orders=None,
                 counted=None) -> None:
        self.signature, self.surfaces, self.keys, self.vocab = signature, surfaces, keys, vocab
        self.counts, self.types, self.origins = counts, types, origins
        self.pairs, self.among, self.near = pairs, among, near
        self.clusters, self.reasons, self.drafts = clusters, reasons, drafts
        self.groups, self.orders, self.counted = groups, orders, counted
        self._names: set[str] | None = None
        self._cluster_of: dict[str, str] | None = None

    @classmethod
    def of(cls, signature: tuple, stats, surfaces: list[str], keys: dict, pairs: list,
           among: dict, near: dict, clusters: dict, reasons: dict, drafts: dict
           ) -> LinkMemo:
        """The memo of a link of names with statistics ``stats`` (a `SurfaceStats`)."""
        return cls(signature, surfaces, keys, dict(stats.vocab_names), dict(stats.counts),
                   {n: dict(c) for n, c in stats.types.items() if c},
                   {n: frozenset(o) for n, o in stats.origins.items()}, pairs, among, near,
                   clusters, reasons, drafts)

    def prepare(self) -> None:
        """Make now the look-ups `relink` needs first (for a caller with time to spare)."""
        if self._names is None:
            self._names = set(self.surfaces)
            self._cluster_of = {n: first for first, (names, _) in self.clusters.items()
                                for n in names}
            self._derive()

    def _derive(self) -> None:
        """The groups and orders, made from the names when first needed (not while
        linking: they wait till the memo is kept or used)."""
        if self.groups is None:
            self.groups = groups_of(self.surfaces, self.keys)
        if self.orders is None:
            self.orders = sorted_orders(self.surfaces)

    def dumps(self) -> bytes:
        self._derive()
        fields = [getattr(self, f) for f in self._FIELDS]
        by_origins: dict[tuple, list[str]] = defaultdict(list)   # a few sets, marshalled
        for name, found in self.origins.items():                  # once each (3x faster)
            by_origins[tuple(sorted(found))].append(name)
        fields[self._FIELDS.index("origins")] = dict(by_origins)
        return marshal.dumps((_VERSION, *fields))

    @classmethod
    def loads(cls, blob: bytes) -> LinkMemo | None:
        """The memo `dumps` gave, or None when ``blob`` is not one (damaged, or older)."""
        try:
            version, *fields = marshal.loads(blob)
            if version != _VERSION or len(fields) != len(cls._FIELDS):
                return None
            at = cls._FIELDS.index("origins")
            fields[at] = {name: frozenset(found) for found, names in fields[at].items()
                          for name in names}
            return cls(*fields)
        except (ValueError, EOFError, TypeError, AttributeError):
            return None

    def relink(self, stats, surfaces: list[str], pairs: list[tuple[str, str, str]],
               index: VocabIndex, signature: tuple) -> tuple | None:
        """The fields of the `kg.link.LinkResult` of names with statistics ``stats`` (a
        `SurfaceStats`), with a memo of its own last, made from this memo (used up); None
        when this memo was made with other rules or threshold."""
        if signature != self.signature:
            return None
        self.prepare()
        old, cluster_of, groups = self._names, self._cluster_of, self.groups
        threshold, forced, forbidden = signature
        now = set(surfaces)
        new = [n for n in surfaces if n not in old]
        gone_names = old - now
        vocab_names, counts, types, origins = (stats.vocab_names, stats.counts, stats.types,
                                               stats.origins)
        before_counts, before_types, before_origins = self.counts, self.types, self.origins
        before_vocab = self.vocab
        # names whose mentions say other things (their concepts are named again)
        touched = {n for n, _ in counts.items() - before_counts.items()}
        touched.update(n for n, _ in vocab_names.items() ^ before_vocab.items())
        touched.update(n for n, o in origins.items() if o != before_origins.get(n))
        touched.update(n for n, t in types.items() if t != before_types.get(n))
        touched.update(before_types.keys() - types.keys())
        touched &= old
        touched -= gone_names
        keys = self.keys
        seeds = set(new)
        for name in gone_names:
            for label in labels(name, keys[name]):      # the links it loses: theirs too
                seeds.update(_linked(label, groups, index))
                groups[label].remove(name)
            del keys[name]
        for name in touched.union(new):
            key = vocab_names.get(name) or index.key_of(name)
            if name in old:
                if key == keys[name] and (name in vocab_names) == (name in before_vocab):
                    continue
                seeds.add(name)
                for label in labels(name, keys[name]):  # the links it loses: theirs too
                    seeds.update(_linked(label, groups, index))
                    groups[label].remove(name)
            keys[name] = key
            for label in labels(name, key):
                groups.setdefault(label, []).append(name)
        for long, short, _ in set(pairs).symmetric_difference(self.pairs):
            seeds.update((long, short))
        among, orders = grown_pairs(surfaces, self.among, new, gone=gone_names,
                                    orders=self.orders, threshold=threshold)
        near = {pair: score for pair, score in self.near.items()
                if pair[0] not in gone_names and pair[1] not in gone_names}
        for pair in self.near.keys() - near.keys():
            seeds.update(pair)
        near.update(vocabulary_pairs(new, index, threshold))
        for pair in among.keys() ^ self.among.keys():
            seeds.update(pair)      # (a new name's pairs with vocabulary terms: it is a seed)
        hits = combined(among, near)
        seeds -= gone_names
        part = _Graph(now, keys, groups, pairs, forced, hits, index).part(seeds)

        # the clusters of the part (and of names gone) go, and are made again
        gone = {cluster_of[n] for n in part if n in cluster_of}
        gone |= {cluster_of[n] for n in gone_names}
        if any(n not in part and n not in gone_names
               for first in gone for n in self.clusters[first][0]):
            return None     # not closed: cannot happen, but then link afresh
        linker = Linker(forbidden)
        merges: dict[str, Merge] = {}
        unions(linker, [n for n in surfaces if n in part], keys, vocab_names, index,
               [p for p in pairs if p[0] in part], [f for f in forced if f[0] in part],
               lambda: [h for h in hits if h[1] in part], merges, now)
        clusters = {first: c for first, c in self.clusters.items() if first not in gone}
        drafts = {first: d for first, d in self.drafts.items() if first not in gone}
        for c in linker.clusters.values():
            first = min(c.names)
            clusters[first] = (c.names, c.key)
            drafts[first] = draft(c.names, c.key, stats, index.by_key, now)
        for first in {cluster_of.get(n) for n in touched} - gone - {None}:
            names, key = clusters[first]
            drafts[first] = draft(names, key, stats, index.by_key, now)
        reasons = {n: r for n, r in self.reasons.items() if n not in part and n in now}
        reasons.update((n, m.reason) for n, m in merges.items())
        memo = LinkMemo.of(self.signature, stats, surfaces, keys, pairs, among, near,
                           clusters, reasons, drafts)
        memo.groups, memo.orders = groups, orders
        return (*concepts_of([d for d in drafts.values() if d], index.by_key, reasons), memo)


def labels(name: str, key: str | None) -> list[str]:
    """The groups a name shares with every other name in them (a vocabulary key; a
    normalised form; the initials it spells, as an acronym; its initials, as a multi-word
    name), each as ``kind:value``."""
    if key:
        out = [f"k:{key}"]
    else:
        out = [f"s:{singular(name)}"]
        letters = acronym_letters(name)
        if letters is not None:
            out.append(f"a:{letters}")
    if is_multiword(name):
        out.append(f"m:{initials(name)}")
    return out


def groups_of(surfaces: Sequence[str], keys: dict[str, str | None]) -> dict[str, list[str]]:
    """Each of the `labels` of ``surfaces`` -> the names that have it."""
    out: dict[str, list[str]] = defaultdict(list)
    for name in surfaces:
        for label in labels(name, keys[name]):
            out[label].append(name)
    return dict(out)


def _linked(label: str, groups: dict[str, list[str]], index: VocabIndex) -> list[str]:
    """What a name with ``label`` is linked to by it: the names of its group and its
    vocabulary concept; an acronym, or a name or vocabulary concept with the initials it
    spells, to every other such acronym, name and concept (nothing without an acronym)."""
    kind, value = label[0], label[2:]
    if kind == "a" or kind == "m":
        spellers = groups.get(f"a:{value}")
        if not spellers:
            return []
        return [*spellers, *groups.get(f"m:{value}", ()),
                *(f"\0{k}" for k in index.initials.get(value, ()))]
    near = list(groups.get(label, ()))
    if kind == "k":
        near.append(f"\0{value}")
    return near


class _Graph:
    """The links between names that linking may follow (a few more: enough): the names
    of one group (`labels`), an acronym and the multi-word names or vocabulary concepts
    whose initials it spells, a name and its vocabulary concept; definitions, forced
    merges and fuzzy candidates."""

    def __init__(self, names: Collection[str], keys: dict[str, str | None],
                 groups: dict[str, list[str]], pairs: Sequence[tuple[str, str, str]],
                 forced: Sequence[tuple[str, str]], hits: Sequence[tuple[float, str, str]],
                 index: VocabIndex) -> None:
        self.index, self.names, self.keys = index, names, keys
        self.groups = groups
        self.other: dict[str, list[str]] = defaultdict(list)
        self.terms: dict[str, list[str]] = defaultdict(list)   # key -> such names
        ends = [(p[0], p[1]) for p in pairs] + list(forced) + [(h[1], h[2]) for h in hits]
        for a, b in ends:
            self.other[a].append(b)
            self.other[b].append(a)
            for n in (a, b):
                if n not in names:
                    key = index.key_of(n)
                    if key:
                        self.terms[key].append(n)

    def _labels(self, node: str) -> list[str]:
        if node.startswith("\0"):       # a vocabulary concept: its names, its acronyms
            key = node[1:]
            return [f"k:{key}"] + [f"a:{letters}" for letters in self.index.letters_of(key)]
        if node in self.names:
            return labels(node, self.keys[node])
        key = self.index.key_of(node)   # a vocabulary term, or a forced name
        return [f"k:{key}"] if key else []

    def part(self, seeds: Collection[str]) -> set[str]:
        """Every node linked to a seed, the seeds included."""
        found = set(seeds)
        todo = list(found)
        opened: set[str] = set()
        groups, other = self.groups, self.other
        while todo:
            node = todo.pop()
            near = list(other.get(node, ()))
            for label in self._labels(node):     # (a key's label brings its concept)
                if label not in opened:
                    opened.add(label)
                    near += _linked(label, groups, self.index)
                    if label[0] == "k":
                        near += self.terms.get(label[2:], ())
            for n in near:
                if n not in found:
                    found.add(n)
                    todo.append(n)
        return found

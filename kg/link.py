"""Merge duplicate concept names with evidence and guards -> Concept and an alias map."""
from __future__ import annotations

import bisect
import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz

from kg.lexicon import slugify
from kg.model import AliasPair, Concept, LexiconEntry, Mention
from kg.names import (abbreviation_matches, compact, initials, is_code, normalize, numbers,
                      singular)

__all__ = ["Linker", "LinkResult", "Merge", "conflict", "candidate_pairs", "link_concepts",
           "same_concept", "normalize", "compact"]

_HAN = re.compile(r"[\u3400-\u9fff]")
_MODEL_END = re.compile(r"(?:net|former|gpt|bert|lm|vl|vit|llm|diffusion|\d+b)$", re.I)
_METHOD_END = re.compile(r"(?:attention|tuning|decoding|sampling|module|learning|"
                         r"optimization|prediction|training|normalization|search)$", re.I)


@dataclass(frozen=True, slots=True)
class Merge:
    """One surface form joined to a concept, and why."""

    surface: str
    concept_key: str
    reason: str


@dataclass
class LinkResult:
    concepts: dict[str, Concept]                  # key -> concept
    key_of: dict[str, str]                        # surface form as written -> concept key
    merges: list[Merge] = field(default_factory=list)
    variants: list[tuple[str, str]] = field(default_factory=list)   # (variant key, base key)

    def concept_for(self, mention: Mention) -> str | None:
        """The concept key a mention belongs to, or None when it was dropped."""
        return self.key_of.get(mention.surface)


def conflict(a: str, b: str) -> str | None:
    """Why two names can never be one concept, or None when nothing forbids it.

    >>> conflict("Adam", "AdamW"), conflict("GPT-4", "GPT-4o"), conflict("Qwen1.5-7B", "Qwen1.5-72B")
    ('one adds letters to the other', 'one adds letters to the other', 'different numbers')
    >>> conflict("nn.Dropout", "dropout"), conflict("KimiVL", "Kimi-VL")
    ('code identifier and idea', None)
    """
    ka, kb = singular(a), singular(b)
    if ka == kb:
        return None
    if numbers(a) != numbers(b):
        return "different numbers"
    if is_code(a) != is_code(b):
        return "code identifier and idea"
    if ka in kb or kb in ka:
        return "one adds letters to the other"
    return None


@dataclass
class _Cluster:
    names: list[str]
    key: str | None       # lexicon key, when the cluster is a vocabulary concept
    also: set = field(default_factory=set)   # other lexicon keys a forced merge joined


class Linker:
    """Union-find over names whose every merge is checked against the guards.

    No merge may put two names that `conflict` keeps apart, or two vocabulary concepts,
    into one cluster, so no chain A=B, B=C can join a forbidden A and C.
    """

    def __init__(self, forbidden: Iterable[tuple[str, str]] = ()) -> None:
        self.parent: dict[str, str] = {}
        self.clusters: dict[str, _Cluster] = {}
        self.forbidden = {frozenset((compact(a), compact(b))) for a, b in forbidden}

    def add(self, name: str, key: str | None = None) -> None:
        if name not in self.parent:
            self.parent[name] = name
            self.clusters[name] = _Cluster([name], key)

    def find(self, name: str) -> str:
        root = name
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[name] != root:
            self.parent[name], name = root, self.parent[name]
        return root

    def blocker(self, a: str, b: str) -> str | None:
        """Why the clusters of a and b cannot merge, or None."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        ca, cb = self.clusters[ra], self.clusters[rb]
        if ca.key and cb.key and ca.key != cb.key and cb.key not in ca.also:
            return "two vocabulary concepts"
        for x in ca.names:
            for y in cb.names:
                if x.startswith("\0") or y.startswith("\0"):
                    continue
                if frozenset((compact(x), compact(y))) in self.forbidden:
                    return "forbidden by the user"
                reason = conflict(x, y)
                if reason:
                    return reason
        return None

    def attach(self, name: str, key: str) -> None:
        """Put ``name`` in the vocabulary concept ``key``: the vocabulary decides."""
        anchor = f"\0{key}"
        self.add(anchor, key)
        self.add(name)
        ra, rb = self.find(anchor), self.find(name)
        if ra != rb and self.clusters[rb].key is None:
            self._join(ra, rb)

    def union(self, a: str, b: str, *, force: bool = False) -> bool:
        """Merge the clusters of a and b unless a guard forbids it (or ``force``)."""
        reason = self.blocker(a, b)
        if reason and not (force and reason != "forbidden by the user"):
            return False
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._join(ra, rb)
        return True

    def _join(self, ra: str, rb: str) -> None:
        ca, cb = self.clusters[ra], self.clusters[rb]
        if len(ca.names) < len(cb.names):
            ra, rb, ca, cb = rb, ra, cb, ca
        self.parent[rb] = ra
        ca.names.extend(cb.names)
        ca.key = ca.key or cb.key
        ca.also = ca.also | cb.also | ({cb.key} if cb.key and cb.key != ca.key else set())
        del self.clusters[rb]


def candidate_pairs(names: Sequence[str], *, window: int = 12, threshold: float = 92.0,
                    scorer: Callable[..., float] = fuzz.ratio) -> list[tuple[float, str, str]]:
    """Fuzzy candidate pairs by sorted neighbourhood over the compact key and its reverse.

    Only names of eight or more characters are compared: short names differ by one letter
    too often (``GPT-4``/``GPT-J``). Returns ``(score, a, b)`` sorted best first.

    >>> candidate_pairs(["SelfAtention", "Self-Attention", "Cross-Attention"])
    [(96.0, 'Self-Attention', 'SelfAtention')]
    """
    keyed = sorted({(compact(n), n) for n in names if len(compact(n)) >= 8})
    found: dict[tuple[str, str], float] = {}
    for order in (keyed, sorted(keyed, key=lambda kn: kn[0][::-1])):
        for i, (ka, a) in enumerate(order):
            for kb, b in order[i + 1:i + 1 + window]:
                if ka == kb:
                    continue
                score = scorer(ka, kb, score_cutoff=threshold)
                if score:
                    pair = (a, b) if a < b else (b, a)
                    found[pair] = max(score, found.get(pair, 0))
    return sorted(((round(s, 1), a, b) for (a, b), s in found.items()),
                  key=lambda t: (-t[0], t[1], t[2]))


def link_concepts(mentions: Iterable[Mention], lexicon: Sequence[LexiconEntry], *,
                  pairs: Iterable[AliasPair] = (), threshold: float = 92.0,
                  forced: Iterable[tuple[str, str]] = (),
                  forbidden: Iterable[tuple[str, str]] = (),
                  dropped: Iterable[str] = ()) -> LinkResult:
    """Decide which concept every mention denotes, merging duplicates.

    Evidence, strongest first: a vocabulary term (exact, or equal after normalising width,
    case, script, separators and a plural ``s``); a user's forced merge; a definition in an
    article (``推测解码(speculative decoding)``); an acronym whose letters are the initials
    of exactly one multi-word name; fuzzy similarity of long names (``SelfAtention``).
    Each merge must pass the guards of `conflict`. The result does not depend on the
    order of the mentions.

    Parameters
    ----------
    mentions : iterable of Mention
        Vocabulary mentions carry their key; discovered ones carry ``""``.
    lexicon : sequence of LexiconEntry
    pairs : iterable of AliasPair
        Names the articles define as one concept.
    threshold : float, optional
        Fuzzy score (0-100) needed to merge two long names.
    forced, forbidden : iterable of (str, str)
        Merges the user forces or forbids.
    dropped : iterable of str
        Names the user wants dropped; a vocabulary name drops its whole concept.

    Returns
    -------
    LinkResult
    """
    mentions = list(mentions)
    pairs = sorted(set((p.long, p.short, p.article_id) for p in pairs))
    drop = {compact(d) for d in dropped}
    index = _index(tuple(lexicon))
    by_key = index.by_key
    linker = Linker(forbidden)
    merges: dict[str, Merge] = {}
    vocab_names: dict[str, str] = {}
    surfaces = sorted({m.surface for m in mentions} | {n for p in pairs for n in p[:2]})
    for mention in mentions:
        if mention.concept_key:
            vocab_names.setdefault(mention.surface, mention.concept_key)
    drop_keys = {index.key_of(d) for d in dropped} - {None}
    for name in surfaces:
        key = vocab_names.get(name) or index.key_of(name)
        if compact(name) in drop or key in drop_keys:
            continue
        if key:
            linker.attach(name, key)
            merges[name] = Merge(name, key, "vocabulary term" if name in vocab_names
                                 or normalize(name) in _terms(by_key[key]) else
                                 "vocabulary term, normalised")
        else:
            linker.add(name)
    same_name: dict[str, list[str]] = defaultdict(list)
    for name in surfaces:
        if name in linker.parent and linker.clusters.get(name) is not None \
                and linker.clusters[name].key is None:
            same_name[singular(name)].append(name)
    for names in same_name.values():
        for other in names[1:]:
            if linker.union(names[0], other):
                for n in (names[0], other):
                    merges.setdefault(n, Merge(n, "", "same name, normalised"))
    for a, b in sorted(forced):
        nodes = []
        for n in (a, b):
            key = index.key_of(n)
            if key:
                linker.attach(n, key)
            else:
                linker.add(n)
            nodes.append(n)
        if linker.union(*nodes, force=True):
            for n in (a, b):
                merges[n] = Merge(n, "", "forced by the user")
    for long, short, article_id in pairs:
        if long in linker.parent and short in linker.parent and linker.union(long, short):
            for n in (long, short):
                merges.setdefault(n, Merge(n, "", f"definition in article {article_id}"))
    _link_acronyms(linker, surfaces, index, merges)
    candidates = [n for n in surfaces if n in linker.parent]
    seen = set(candidates)
    for score, a, b in _fuzzy_candidates(candidates, index, threshold):
        for n in (a, b):
            if n not in linker.parent:
                linker.attach(n, index.key_of(n))
        if linker.union(a, b):
            for n in (a, b):
                if n in seen:
                    merges.setdefault(n, Merge(n, "", f"fuzzy score {score:g}"))
    return _result(linker, mentions, by_key, merges, seen)


@dataclass
class _VocabIndex:
    """Look-ups over a lexicon, built once per lexicon."""

    by_key: dict[str, LexiconEntry]
    terms: dict[str, str]                   # compact or singular form -> key
    initials: dict[str, list[str]]          # initials of multi-word terms -> keys
    forward: list[tuple[str, str]]          # (compact form, term), sorted
    backward: list[tuple[str, str]]         # (reversed compact form, term), sorted

    def key_of(self, name: str) -> str | None:
        return self.terms.get(compact(name)) or self.terms.get(singular(name))


@lru_cache(maxsize=4)
def _index(lexicon: tuple[LexiconEntry, ...]) -> _VocabIndex:
    terms: dict[str, str] = {}
    initial: dict[str, list[str]] = defaultdict(list)
    latin = set()
    for entry in lexicon:
        for term in entry.surfaces:
            for k in (compact(term), singular(term)):
                terms.setdefault(k, entry.key)
            if not _HAN.search(term):
                latin.add(term)
        for term in entry.terms:
            if (" " in term or "-" in term) and not _HAN.search(term):
                if entry.key not in initial[initials(term)]:
                    initial[initials(term)].append(entry.key)
    forward = sorted((compact(t), t) for t in latin if len(compact(t)) >= 8)
    backward = sorted((k[::-1], t) for k, t in forward)
    return _VocabIndex({e.key: e for e in lexicon}, terms, dict(initial), forward, backward)


def _link_acronyms(linker: Linker, surfaces: Sequence[str], index: _VocabIndex,
                   merges: dict[str, Merge]) -> None:
    """Join a new acronym to the one multi-word name whose initials it spells."""
    multi: dict[str, list[str]] = defaultdict(list)
    for name in surfaces:
        if name in linker.parent and (" " in name or "-" in name) and not _HAN.search(name):
            multi[initials(name)].append(name)
    for name in surfaces:
        if name not in linker.parent or linker.clusters[linker.find(name)].key is not None:
            continue
        if not (re.fullmatch(r"[A-Z][A-Za-z]*[A-Z]s?", name) and len(name) >= 3):
            continue
        letters = name.rstrip("s").lower()
        targets = {linker.find(t) for t in multi.get(letters, [])}
        targets |= {f"\0{k}" for k in index.initials.get(letters, [])}
        if len(targets) != 1:
            continue
        target = targets.pop()
        if target.startswith("\0"):
            linker.add(target, target[1:])
        long = index.by_key[target[1:]].name if target.startswith("\0") else target
        if abbreviation_matches(name, long) and linker.union(target, name):
            merges.setdefault(name, Merge(name, "", "abbreviation"))


def _fuzzy_candidates(names: Sequence[str], index: _VocabIndex, threshold: float, *,
                      window: int = 12, vocab_window: int = 8) -> list[tuple[float, str, str]]:
    """Fuzzy pairs among ``names``, and between them and the vocabulary's terms.

    Both by sorted neighbourhood: names among themselves, and each name against the
    vocabulary terms next to it in the vocabulary's sorted key lists (and reversed keys).
    """
    found = {(a, b): score for score, a, b in candidate_pairs(names, window=window,
                                                              threshold=threshold)}
    for name in names:
        key = compact(name)
        if len(key) < 8:
            continue
        for table, probe in ((index.forward, key), (index.backward, key[::-1])):
            at = bisect.bisect_left(table, (probe, ""))
            for other_key, term in table[max(0, at - vocab_window // 2):at + vocab_window // 2]:
                if term == name:
                    continue
                forward_key = other_key if table is index.forward else other_key[::-1]
                if forward_key == key:
                    continue
                score = fuzz.ratio(key, forward_key, score_cutoff=threshold)
                if score:
                    pair = (name, term) if name < term else (term, name)
                    found[pair] = max(score, found.get(pair, 0))
    return sorted(((round(s, 1), a, b) for (a, b), s in found.items()),
                  key=lambda t: (-t[0], t[1], t[2]))


@lru_cache(maxsize=8192)
def _terms(entry: LexiconEntry) -> frozenset[str]:
    return frozenset(normalize(t) for t in entry.terms)


def _display(node: str, by_key: dict[str, LexiconEntry]) -> str:
    return by_key[node[1:]].name if node.startswith("\0") else node


def _result(linker: Linker, mentions: list[Mention], by_key: dict[str, LexiconEntry],
            merges: dict[str, Merge], seen: set[str]) -> LinkResult:
    counts = Counter(m.surface for m in mentions)
    types: dict[str, Counter] = defaultdict(Counter)
    origins: dict[str, set] = defaultdict(set)
    for m in mentions:
        if m.type:
            types[m.surface][m.type] += 1
        origins[m.surface].add(m.origin)
    concepts: dict[str, Concept] = {}
    key_of: dict[str, str] = {}
    used = set(by_key)
    for root in sorted(linker.clusters, key=lambda r: min(linker.clusters[r].names)):
        cluster = linker.clusters[root]
        names = sorted(n for n in cluster.names if not n.startswith("\0") and n in seen)
        if not names:
            continue
        if cluster.key:
            entry = by_key[cluster.key]
            key, name, kind, is_a, origin = entry.key, entry.name, entry.type, entry.is_a, \
                "vocabulary"
            aliases = tuple(dict.fromkeys([*names, *entry.terms]))
        else:
            name = max(names, key=lambda n: (not _HAN.search(n), " " in n or "-" in n,
                                             counts[n], len(n), n))
            key = base = slugify(name)
            suffix = 2
            while key in used:
                key, suffix = f"{base}-{suffix}", suffix + 1
            tally = Counter()
            for n in names:
                tally.update(types[n])
            kind = tally.most_common(1)[0][0] if tally else _guess_type(name)
            origin = "definition" if any("definition" in origins[n] for n in names) \
                else "discovered"
            aliases, is_a = tuple(names), ()
        used.add(key)
        concepts[key] = Concept(key, name, kind, aliases, origin, is_a)
        for n in names:
            key_of[n] = key
    variants = _variants(concepts, by_key)
    renamed: dict[str, str] = {}
    names = {k: e.name for k, e in by_key.items()} | {k: c.name for k, c in concepts.items()}
    for child, base in variants:
        base_name = names[base]
        restored = restore_separators(concepts[child].name, base_name)
        new_key = slugify(restored)
        if restored != concepts[child].name and new_key not in used:
            used.add(new_key)
            renamed[child] = new_key
            concepts[new_key] = dataclasses.replace(concepts.pop(child), name=restored, key=new_key)
    key_of = {n: renamed.get(k, k) for n, k in key_of.items()}
    variants = sorted((renamed.get(c, c), renamed.get(b, b)) for c, b in variants)
    final = []
    for surface, merge in sorted(merges.items()):
        if surface in key_of:
            final.append(Merge(surface, key_of[surface], merge.reason))
    return LinkResult(concepts, key_of, final, variants)


_PIECE = re.compile(r"A\d+(?:\.\d+)?B|\d+(?:\.\d+)?[BMKT](?![a-z])|[A-Z][a-z]+|[A-Z]+(?![a-z])|\d+(?:\.\d+)?|[a-z]+")


_SIZE = re.compile(r"A\d+(?:\.\d+)?B|\d+(?:\.\d+)?[BMKT]|[vV]\d+(?:\.\d+)*")


def restore_separators(name: str, base: str) -> str:
    """Put back the hyphens a feed lost, when ``name`` extends a known ``base`` name.

    >>> restore_separators("Qwen1.57BChat", "Qwen1.5"), restore_separators("KimiVLA3B", "Kimi-VL")
    ('Qwen1.5-7B-Chat', 'Kimi-VL-A3B')
    >>> restore_separators("UpsamplingBilinear2d", "Upsampling")
    'UpsamplingBilinear2d'
    
    """
    if any(c in name for c in " -_"):
        return name
    head = 0
    for i in range(len(name) + 1):
        if compact(name[:i]) == compact(base):
            head = i
    if not head or head == len(name):
        return name
    pieces = _PIECE.findall(name[head:])
    if "".join(pieces) != name[head:] or not _SIZE.fullmatch(pieces[0]):
        return name         # only a size or version follows a family name: Qwen1.5 + 7B
    return "-".join([base, *pieces])


def _guess_type(name: str) -> str:
    if _MODEL_END.search(name) or re.search(r"\d", name):
        return "model"
    if _METHOD_END.search(name):
        return "method"
    return "concept"


def _variants(concepts: dict[str, Concept], by_key: dict[str, LexiconEntry]
              ) -> list[tuple[str, str]]:
    """Discovered concepts named as an extension of another (``Qwen1.57BChat`` of ``Qwen1.5``).

    The base is the longest other name that the variant's compact key starts with.
    """
    names = {c.key: c.name for c in by_key.values()} | {c.key: c.name for c in concepts.values()}
    heads: dict[str, str] = {}
    for key, name in sorted(names.items()):
        if len(compact(name)) >= 3:
            heads.setdefault(compact(name), key)
    out = []
    for concept in concepts.values():
        if concept.origin == "vocabulary":
            continue
        own = compact(concept.name)
        base = next((heads[own[:n]] for n in range(len(own) - 1, 2, -1)
                     if heads.get(own[:n], concept.key) != concept.key), None)
        if base:
            out.append((concept.key, base))
    return sorted(out)


@lru_cache(maxsize=1)
def _default_lexicon() -> tuple[LexiconEntry, ...]:
    from kg.lexicon import load_lexicon

    return tuple(load_lexicon())


def same_concept(a: str, b: str) -> bool:
    """Decide whether two names denote one concept, with the bundled vocabulary.

    Examples
    --------
    >>> same_concept("KimiVL", "Kimi-VL"), same_concept("投机解码", "Speculative Decoding")
    (True, True)
    >>> same_concept("Adam", "AdamW"), same_concept("GPT-4", "GPT-4o")
    (False, False)
    """
    if a == b:
        return True
    mentions = [Mention("a", a, "", 0, len(a), "discovered"),
                Mention("b", b, "", 0, len(b), "discovered")]
    result = link_concepts(mentions, _default_lexicon())
    ka, kb = result.key_of.get(a), result.key_of.get(b)
    return ka is not None and ka == kb

"""Merge duplicate concept names with evidence and guards -> Concept and an alias map."""
from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from kg.forking import Forked
from kg.lexicon import slugify
from kg.link.candidates import (VocabIndex, candidate_pairs, fuzzy_candidates,
                                vocabulary_index)
from kg.link.clusters import Linker, conflict
from kg.link.naming import find_variants, guess_type, restore_separators
from kg.model import AliasPair, Concept, LexiconEntry, Mention
from kg.names import abbreviation_matches, compact, initials, normalize, singular

__all__ = ["Linker", "LinkResult", "Merge", "SurfaceStats", "conflict", "candidate_pairs",
           "link_concepts", "warm_names",
           "same_concept", "restore_separators", "normalize", "compact"]

_HAN = re.compile(r"[\u3400-\u9fff]")


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


def link_concepts(mentions: Iterable[Mention] | SurfaceStats,
                  lexicon: Sequence[LexiconEntry], *,
                  pairs: Iterable[AliasPair] = (), threshold: float = 92.0,
                  forced: Iterable[tuple[str, str]] = (),
                  forbidden: Iterable[tuple[str, str]] = (),
                  dropped: Iterable[str] = (), index: VocabIndex | None = None,
                  jobs: int = 1) -> LinkResult:
    """Decide which concept every mention denotes, merging duplicates.

    Evidence, strongest first: a vocabulary term (exact, or equal after normalising width,
    case, script, separators and a plural ``s``); a user's forced merge; a definition in an
    article (``推测解码(speculative decoding)``); an acronym whose letters are the initials
    of exactly one multi-word name; fuzzy similarity of long names (``SelfAtention``).
    Each merge must pass the guards of `conflict`. The result does not depend on the
    order of the mentions.

    Parameters
    ----------
    mentions : iterable of Mention, or SurfaceStats
        Vocabulary mentions carry their key; discovered ones carry ``""``. Linking needs
        only what they say about each surface form: a caller that gathered that as
        they came (a `SurfaceStats`) gives it instead.
    lexicon : sequence of LexiconEntry
    pairs : iterable of AliasPair
        Names the articles define as one concept.
    threshold : float, optional
        Fuzzy score (0-100) needed to merge two long names.
    forced, forbidden : iterable of (str, str)
        Merges the user forces or forbids.
    dropped : iterable of str
        Names the user wants dropped; a vocabulary name drops its whole concept.
    index : VocabIndex, optional
        `vocabulary_index` of ``lexicon``, when the caller has it already.
    jobs : int, optional
        With 2 or more and many names, the fuzzy candidates are scored in a forked
        process while this one applies the other evidence.

    Returns
    -------
    LinkResult
    """
    stats = mentions if isinstance(mentions, SurfaceStats) else SurfaceStats(mentions)
    # each definition once, from its first article: a repeat of a pair right after it
    # (the order is by names) finds the two already joined, or refused as before
    first: dict[tuple[str, str], str] = {}
    for p in pairs:
        seen_in = first.get((p.long, p.short))
        if seen_in is None or p.article_id < seen_in:
            first[(p.long, p.short)] = p.article_id
    pairs = sorted((long, short, article_id) for (long, short), article_id in first.items())
    drop = {compact(d) for d in dropped}
    index = index or vocabulary_index(tuple(lexicon))
    by_key = index.by_key
    linker = Linker(forbidden)
    merges: dict[str, Merge] = {}
    surfaces = sorted(stats.counts.keys() | {n for p in pairs for n in p[:2]})
    drop_keys = {index.key_of(d) for d in dropped} - {None}
    forced = sorted(forced)
    forced_names = {n for pair in forced for n in pair}
    fuzzy = None
    if not dropped:     # the fuzzy candidates are scored aside while the rest is done here
        kept = surfaces
        fuzzy = _scored_aside(kept, index, threshold, jobs)
    vocab_names = stats.vocab_names
    keys = {name: vocab_names.get(name) or index.key_of(name) for name in surfaces}
    skipped = {name for name in surfaces if compact(name) in drop or keys[name] in drop_keys} \
        if drop or drop_keys else set()
    if dropped:         # which names are dropped depends on their keys
        kept = [name for name in surfaces if name not in skipped or name in forced_names]
        fuzzy = _scored_aside(kept, index, threshold, jobs)
    for name in surfaces:
        key = keys[name]
        if name in skipped:
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
    for a, b in forced:
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
    seen = set(kept)
    for score, a, b in fuzzy.result() if fuzzy else fuzzy_candidates(kept, index, threshold):
        for n in (a, b):
            if n not in linker.parent:
                linker.attach(n, index.key_of(n))
        if linker.union(a, b):
            for n in (a, b):
                if n in seen:
                    merges.setdefault(n, Merge(n, "", f"fuzzy score {score:g}"))
    return _result(linker, stats, by_key, merges, seen)


_FORK_FROM = 5000      # names worth a second process (fuzzy scoring: 0.2 s at 19,000)


def _scored_aside(names: list[str], index: VocabIndex, threshold: float, jobs: int
                  ) -> Forked | None:
    """`fuzzy_candidates` of many names, computed in a forked process (None: here)."""
    if jobs > 1 and len(names) >= _FORK_FROM:
        return Forked(fuzzy_candidates, names, index, threshold)
    return None


def _link_acronyms(linker: Linker, surfaces: Sequence[str], index: VocabIndex,
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


def warm_names(names: Iterable[str], index: VocabIndex) -> None:
    """Work out now what linking will look up about ``names`` (their normalised keys and
    vocabulary keys, kept by the look-ups' caches): for a caller with time to spare."""
    for name in names:
        index.key_of(name)
        singular(name)


@lru_cache(maxsize=8192)
def _terms(entry: LexiconEntry) -> frozenset[str]:
    return frozenset(normalize(t) for t in entry.terms)


class SurfaceStats:
    """What mentions say about each surface form: how often it occurs, the types and
    origins it was found with, and its vocabulary key. Additive: the statistics of
    several groups of mentions, added in any order, are those of all of them at once.

    >>> stats = SurfaceStats([Mention("a", "LoRA", "lora", 0, 4, "vocabulary")])
    >>> stats.add([Mention("b", "LoRA", "lora", 3, 7, "vocabulary")])
    set()
    >>> stats.counts["LoRA"], stats.vocab_names["LoRA"]
    (2, 'lora')
    """

    def __init__(self, mentions: Iterable[Mention] = ()) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.types: dict[str, Counter] = defaultdict(Counter)
        self.origins: dict[str, set[str]] = defaultdict(set)
        self.vocab_names: dict[str, str] = {}
        self.add(mentions)

    def add(self, mentions: Iterable[Mention]) -> set[str]:
        """Count ``mentions`` in; return the surface forms not seen before."""
        counts, types, origins, vocab = self.counts, self.types, self.origins, self.vocab_names
        new = set()
        for m in mentions:
            surface = m.surface
            if surface not in counts:
                new.add(surface)
            counts[surface] += 1
            if m.type:
                types[surface][m.type] += 1
            origins[surface].add(m.origin)
            if m.concept_key and surface not in vocab:
                vocab[surface] = m.concept_key    # a surface form has one key: the same
        return new                                # text matches the same vocabulary term


def _result(linker: Linker, stats: SurfaceStats, by_key: dict[str, LexiconEntry],
            merges: dict[str, Merge], seen: set[str]) -> LinkResult:
    counts, types, origins = stats.counts, stats.types, stats.origins
    concepts: dict[str, Concept] = {}
    key_of: dict[str, str] = {}
    used = set(by_key)
    for root in sorted(linker.clusters, key=lambda r: min(linker.clusters[r].names)):
        cluster = linker.clusters[root]
        if len(cluster.names) == 1:     # most clusters
            names = [n for n in cluster.names if n in seen and not n.startswith("\0")]
        else:
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
            if len(names) == 1:         # most clusters: no tally to add up
                tally = types.get(names[0])
            else:
                tally = Counter()
                for n in names:
                    tally.update(types.get(n, ()))
            # the commonest type; on a tie the first by name, never the first seen
            kind = min(tally.items(), key=lambda t: (-t[1], t[0]))[0] if tally \
                else guess_type(name)
            origin = "definition" if any("definition" in origins[n] for n in names) \
                else "discovered"
            aliases, is_a = tuple(names), ()
        used.add(key)
        concepts[key] = Concept(key, name, kind, aliases, origin, is_a)
        for n in names:
            key_of[n] = key
    variants = find_variants(concepts, by_key)
    renamed: dict[str, str] = {}
    names = {k: e.name for k, e in by_key.items()} | {k: c.name for k, c in concepts.items()}
    for child, base in variants:
        base_name = names[base]
        restored = restore_separators(concepts[child].name, base_name)
        if restored == concepts[child].name:
            continue
        new_key = slugify(restored)
        if new_key not in used:
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

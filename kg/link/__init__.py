"""Merge duplicate concept names with evidence and guards -> Concept and an alias map."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from kg.forking import Forked
from kg.link.candidates import (VocabIndex, candidate_pairs, combined, fuzzy_parts,
                                vocabulary_index)
from kg.link.clusters import Linker, conflict
from kg.link.memo import LinkMemo
from kg.link.naming import restore_separators
from kg.link.steps import Merge, concepts_of, draft, first_pairs, unions
from kg.model import AliasPair, Concept, LexiconEntry, Mention
from kg.names import compact, normalize, singular

__all__ = ["Linker", "LinkResult", "LinkMemo", "Merge", "SurfaceStats", "conflict",
           "candidate_pairs", "link_concepts", "warm_names", "same_concept",
           "restore_separators", "normalize", "compact"]


@dataclass
class LinkResult:
    concepts: dict[str, Concept]                  # key -> concept
    key_of: dict[str, str]                        # surface form as written -> concept key
    merges: list[Merge] = field(default_factory=list)
    variants: list[tuple[str, str]] = field(default_factory=list)   # (variant key, base key)
    memo: LinkMemo | None = None    # for the next link, when asked for (``remember``)

    def concept_for(self, mention: Mention) -> str | None:
        """The concept key a mention belongs to, or None when it was dropped."""
        return self.key_of.get(mention.surface)


def link_concepts(mentions: Iterable[Mention] | SurfaceStats,
                  lexicon: Sequence[LexiconEntry], *,
                  pairs: Iterable[AliasPair] = (), threshold: float = 92.0,
                  forced: Iterable[tuple[str, str]] = (),
                  forbidden: Iterable[tuple[str, str]] = (),
                  dropped: Iterable[str] = (), index: VocabIndex | None = None,
                  jobs: int = 1, memo: LinkMemo | None = None,
                  remember: bool = False) -> LinkResult:
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
    memo : LinkMemo, optional
        The memo of an earlier link (``remember``), made with the same rules and
        threshold: only the names that changed, with every name some evidence links them
        to, are linked again; the result is the same. Used up. Ignored with other rules.
    remember : bool, optional
        Give the result a `LinkMemo` for the next link (not with ``dropped`` names).

    Returns
    -------
    LinkResult
    """
    stats = mentions if isinstance(mentions, SurfaceStats) else SurfaceStats(mentions)
    triples = first_pairs(pairs)
    forced, forbidden, dropped = sorted(forced), sorted(forbidden), list(dropped)
    index = index or vocabulary_index(tuple(lexicon))
    by_key = index.by_key
    surfaces = sorted(stats.counts.keys() | {n for p in triples for n in p[:2]})
    signature = (float(threshold), forced, forbidden)
    if memo is not None and not dropped:
        found = memo.relink(stats, surfaces, triples, index, signature)
        if found is not None:
            return LinkResult(*found)
    # the fuzzy candidates are scored aside while the other evidence is applied here
    fuzzy = None if dropped else _scored_aside(surfaces, index, threshold, jobs)
    vocab_names = stats.vocab_names
    keys = {name: vocab_names.get(name) or index.key_of(name) for name in surfaces}
    kept, skipped = surfaces, set()
    if dropped:         # which names are dropped depends on their keys
        drop = {compact(d) for d in dropped}
        drop_keys = {index.key_of(d) for d in dropped} - {None}
        forced_names = {n for pair in forced for n in pair}
        skipped = {n for n in surfaces if compact(n) in drop or keys[n] in drop_keys}
        kept = [n for n in surfaces if n not in skipped or n in forced_names]
        fuzzy = _scored_aside(kept, index, threshold, jobs)
    parts = []

    def hits() -> list[tuple[float, str, str]]:
        parts.extend(fuzzy.result() if fuzzy else fuzzy_parts(kept, index, threshold))
        return combined(*parts)

    linker = Linker(forbidden)
    merges: dict[str, Merge] = {}
    seen = set(kept)
    unions(linker, surfaces, keys, vocab_names, index, triples, forced, hits, merges, seen,
           skipped)
    clusters = {min(c.names): c for c in linker.clusters.values()}
    drafts = {first: draft(c.names, c.key, stats, by_key, seen)
              for first, c in clusters.items()}
    reasons = {n: m.reason for n, m in merges.items()}
    result = LinkResult(*concepts_of([d for d in drafts.values() if d], by_key, reasons))
    if remember and not dropped:
        result.memo = LinkMemo.of(signature, stats, surfaces, keys, triples, *parts,
                                  {first: (c.names, c.key) for first, c in clusters.items()},
                                  reasons, drafts)
    return result


_FORK_FROM = 5000      # names worth a second process (fuzzy scoring: 0.2 s at 19,000)


def _scored_aside(names: list[str], index: VocabIndex, threshold: float, jobs: int
                  ) -> Forked | None:
    """`fuzzy_parts` of many names, computed in a forked process (None: here)."""
    if jobs > 1 and len(names) >= _FORK_FROM:
        return Forked(fuzzy_parts, names, index, threshold)
    return None


def warm_names(names: Iterable[str], index: VocabIndex) -> None:
    """Work out now what linking will look up about ``names`` (their normalised keys and
    vocabulary keys, kept by the look-ups' caches): for a caller with time to spare."""
    for name in names:
        index.key_of(name)
        singular(name)


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

    @classmethod
    def of_memo(cls, memo: LinkMemo) -> SurfaceStats:
        """The statistics ``memo`` was made from (`LinkMemo.counted` says of what), as
        counting those mentions again would give them; a copy: counting more in leaves
        the memo as it was (it is diffed against them, `link_concepts`)."""
        stats = cls()
        stats.counts.update(memo.counts)
        stats.types.update((name, Counter(found)) for name, found in memo.types.items())
        stats.origins.update((name, set(found)) for name, found in memo.origins.items())
        stats.vocab_names.update(memo.vocab)
        return stats


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

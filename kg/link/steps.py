"""The steps of linking: the guarded merges, in their order, and the concepts they make.

`kg.link.link_concepts` runs them over every name; `kg.link.memo` runs them again over
the few groups of names a rebuild's new articles touch, and keeps the rest.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from kg.lexicon import slugify
from kg.link.candidates import VocabIndex
from kg.link.clusters import Linker
from kg.link.naming import find_variants, guess_type, restore_separators
from kg.model import AliasPair, Concept, LexiconEntry
from kg.names import abbreviation_matches, initials, normalize, singular

__all__ = ["Merge", "first_pairs", "unions", "acronym_letters", "Draft", "draft", "concepts_of"]

_HAN = re.compile(r"[\u3400-\u9fff]")
_ACRONYM = re.compile(r"[A-Z][A-Za-z]*[A-Z]s?")


@dataclass(frozen=True, slots=True)
class Merge:
    """One surface form joined to a concept, and why."""

    surface: str
    concept_key: str
    reason: str


def first_pairs(pairs: Iterable[AliasPair]) -> list[tuple[str, str, str]]:
    """Each definition once, from its first article: ``(long, short, article_id)``, sorted.
    A repeat of a pair right after it (the order is by names) finds the two already
    joined, or refused as before."""
    first: dict[tuple[str, str], str] = {}
    for p in pairs:
        seen_in = first.get((p.long, p.short))
        if seen_in is None or p.article_id < seen_in:
            first[(p.long, p.short)] = p.article_id
    return sorted((long, short, article_id) for (long, short), article_id in first.items())


def is_multiword(name: str) -> bool:
    """A name whose initials an acronym may spell (``Multi-Token Prediction``)."""
    return (" " in name or "-" in name) and not _HAN.search(name)


def acronym_letters(name: str) -> str | None:
    """The initials an acronym (``MTPs``) stands for, or None when it is not one."""
    if len(name) >= 3 and _ACRONYM.fullmatch(name):
        return name.rstrip("s").lower()
    return None


def unions(linker: Linker, surfaces: Sequence[str], keys: dict[str, str | None],
           vocab_names: Collection[str], index: VocabIndex,
           pairs: Sequence[tuple[str, str, str]], forced: Sequence[tuple[str, str]],
           hits: Callable[[], Iterable[tuple[float, str, str]]], merges: dict[str, Merge],
           seen: Collection[str], skipped: Collection[str] = ()) -> None:
    """Every merge of linking, strongest evidence first, each checked by ``linker``.

    ``surfaces`` (sorted) are the names to link, ``keys`` their vocabulary keys, ``pairs``
    the definitions (`first_pairs`), ``hits()`` the fuzzy candidates, best first (called
    last: they may be scored meanwhile in another process). ``merges`` gets why each name
    was joined. Names in ``skipped`` (dropped by the user) are left out. Given only some
    of the names, closed under every link between them (see `kg.link.memo`), it makes
    the clusters it makes of them among all the names.
    """
    by_key = index.by_key
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
    for score, a, b in hits():
        for n in (a, b):
            if n not in linker.parent:
                linker.attach(n, index.key_of(n))
        if linker.union(a, b):
            for n in (a, b):
                if n in seen:
                    merges.setdefault(n, Merge(n, "", f"fuzzy score {score:g}"))


def _link_acronyms(linker: Linker, surfaces: Sequence[str], index: VocabIndex,
                   merges: dict[str, Merge]) -> None:
    """Join a new acronym to the one multi-word name whose initials it spells."""
    multi: dict[str, list[str]] = defaultdict(list)
    for name in surfaces:
        if name in linker.parent and is_multiword(name):
            multi[initials(name)].append(name)
    for name in surfaces:
        if name not in linker.parent or linker.clusters[linker.find(name)].key is not None:
            continue
        letters = acronym_letters(name)
        if letters is None:
            continue
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


@lru_cache(maxsize=8192)
def _terms(entry: LexiconEntry) -> frozenset[str]:
    return frozenset(normalize(t) for t in entry.terms)


# What one cluster of names makes, before its concept gets a key: the first of all its
# names (the clusters' order), then either the vocabulary key, or None and the
# concept's name, the key it would like (its slug), type, aliases and origin; None
# when the cluster has no name the articles use.
Draft = tuple


def draft(names: Iterable[str], key: str | None, stats, by_key: dict[str, LexiconEntry],
          seen: Collection[str]) -> Draft | None:
    """The `Draft` of a cluster of ``names`` (its vocabulary key: ``key``)."""
    names = list(names)
    first = min(names)
    if len(names) == 1:     # most clusters
        kept = [n for n in names if n in seen and not n.startswith("\0")]
    else:
        kept = sorted(n for n in names if not n.startswith("\0") and n in seen)
    if not kept:
        return None
    if key:
        return (first, key, tuple(kept))
    counts, types, origins = stats.counts, stats.types, stats.origins
    name = max(kept, key=lambda n: (not _HAN.search(n), " " in n or "-" in n,
                                    counts[n], len(n), n))
    if len(kept) == 1:      # most clusters: no tally to add up
        tally = types.get(kept[0])
    else:
        tally = Counter()
        for n in kept:
            tally.update(types.get(n, ()))
    # the commonest type; on a tie the first by name, never the first seen
    kind = min(tally.items(), key=lambda t: (-t[1], t[0]))[0] if tally else guess_type(name)
    origin = "definition" if any("definition" in origins[n] for n in kept) else "discovered"
    return (first, None, tuple(kept), name, slugify(name), kind, origin)


def _first(d: Draft) -> str:
    return d[0]


def concepts_of(drafts: Iterable[Draft], by_key: dict[str, LexiconEntry],
                reasons: dict[str, str]) -> tuple[dict[str, Concept], dict[str, str],
                                                  list[Merge], list[tuple[str, str]]]:
    """The concepts of the clusters' drafts (taken in the order of their first names: a
    key that two concepts would like goes to the first), with the key of each name, the
    merges (from why each name was joined), and the variants (see `find_variants`)."""
    concepts: dict[str, Concept] = {}
    key_of: dict[str, str] = {}
    used = set(by_key)
    for d in sorted(drafts, key=_first):
        if d[1]:
            entry = by_key[d[1]]
            key, names = entry.key, d[2]
            concepts[key] = Concept(key, entry.name, entry.type,
                                    tuple(dict.fromkeys([*names, *entry.terms])), "vocabulary",
                                    entry.is_a)
        else:
            _, _, names, name, base, kind, origin = d
            key, suffix = base, 2
            while key in used:
                key, suffix = f"{base}-{suffix}", suffix + 1
            concepts[key] = Concept(key, name, kind, names, origin, ())
        used.add(key)
        for n in names:
            key_of[n] = key
    variants = find_variants(concepts, by_key)
    renamed: dict[str, str] = {}
    names_of = {k: e.name for k, e in by_key.items()} | {k: c.name for k, c in concepts.items()}
    for child, base in variants:
        restored = restore_separators(concepts[child].name, names_of[base])
        if restored == concepts[child].name:
            continue
        new_key = slugify(restored)
        if new_key not in used:
            used.add(new_key)
            renamed[child] = new_key
            concepts[new_key] = concepts.pop(child)._replace(name=restored, key=new_key)
    if renamed:
        key_of = {n: renamed.get(k, k) for n, k in key_of.items()}
    variants = sorted((renamed.get(c, c), renamed.get(b, b)) for c, b in variants)
    final = [Merge(surface, key_of[surface], reason)
             for surface, reason in sorted(reasons.items()) if surface in key_of]
    return concepts, key_of, final, variants

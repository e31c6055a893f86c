"""Candidate name pairs for fuzzy merging, by blocking; look-ups over the vocabulary."""
from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from kg.model import LexiconEntry
from kg.names import compact, initials, singular

__all__ = ["candidate_pairs", "vocabulary_index", "fuzzy_candidates", "VocabIndex"]

_HAN = re.compile(r"[\u3400-\u9fff]")


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


@dataclass
class VocabIndex:
    """Look-ups over a lexicon, built once per lexicon."""

    by_key: dict[str, LexiconEntry]
    terms: dict[str, str]                   # compact or singular form -> key
    initials: dict[str, list[str]]          # initials of multi-word terms -> keys
    forward: list[tuple[str, str]]          # (compact form, term), sorted
    backward: list[tuple[str, str]]         # (reversed compact form, term), sorted

    def key_of(self, name: str) -> str | None:
        return self.terms.get(compact(name)) or self.terms.get(singular(name))


@lru_cache(maxsize=4)
def vocabulary_index(lexicon: tuple[LexiconEntry, ...]) -> VocabIndex:
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
    return VocabIndex({e.key: e for e in lexicon}, terms, dict(initial), forward, backward)


def fuzzy_candidates(names: Sequence[str], index: VocabIndex, threshold: float, *,
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

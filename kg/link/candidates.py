"""Candidate name pairs for fuzzy merging, by blocking; look-ups over the vocabulary."""
from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from kg.model import LexiconEntry
from kg.names import compact, initials, singular

__all__ = ["candidate_pairs", "vocabulary_index", "fuzzy_candidates", "fuzzy_parts",
           "combined", "vocabulary_pairs", "grown_pairs", "sorted_orders", "VocabIndex"]

_HAN = re.compile(r"[\u3400-\u9fff]")


WINDOW = 12     # names compared with each name, either side, in each sorted order


def candidate_pairs(names: Sequence[str], *, window: int | None = None,
                    threshold: float = 92.0, scorer: Callable[..., float] = fuzz.ratio
                    ) -> list[tuple[float, str, str]]:
    """Fuzzy candidate pairs by sorted neighbourhood over the compact key and its reverse.

    Only names of eight or more characters are compared: short names differ by one letter
    too often (``GPT-4``/``GPT-J``). Returns ``(score, a, b)`` sorted best first.

    >>> candidate_pairs(["SelfAtention", "Self-Attention", "Cross-Attention"])
    [(96.0, 'Self-Attention', 'SelfAtention')]
    """
    window = window or WINDOW
    keyed = sorted({(compact(n), n) for n in names if len(compact(n)) >= 8})
    found: dict[tuple[str, str], float] = {}
    for order in (keyed, sorted(keyed, key=lambda kn: kn[0][::-1])):
        keys = [k for k, _ in order]
        for step in range(1, window + 1):       # every name against the one `step` on
            for i, score in _scores(keys[:-step], keys[step:], scorer, threshold):
                (ka, a), (kb, b) = order[i], order[i + step]
                if ka != kb:
                    pair = (a, b) if a < b else (b, a)
                    found[pair] = max(score, found.get(pair, 0))
    return _ranked(found)


def _scores(left: list[str], right: list[str], scorer: Callable[..., float],
            threshold: float) -> list[tuple[int, float]]:
    """``(i, score)`` for each pair ``left[i]``, ``right[i]`` scoring ``threshold`` or more,
    scored in one call (a Python loop of single calls cost 1.5 us a pair); a few pairs (a
    rebuild's) one by one, which spares importing numpy (0.06 s) for them."""
    if len(left) < _ONE_CALL_FROM:
        return [(i, score) for i, (a, b) in enumerate(zip(left, right))
                if (score := scorer(a, b, score_cutoff=threshold))]
    import numpy as np

    scores = cpdist(left, right, scorer=scorer, score_cutoff=threshold, dtype=np.float64)
    hits = np.flatnonzero(scores)
    return list(zip(hits.tolist(), scores[hits].tolist()))


_ONE_CALL_FROM = 5000     # pairs scored in one call (and an import of numpy) from here


def _ranked(found: dict[tuple[str, str], float]) -> list[tuple[float, str, str]]:
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
    _columns: dict = field(default_factory=dict, repr=False, compare=False)

    def key_of(self, name: str) -> str | None:
        return self.terms.get(compact(name)) or self.terms.get(singular(name))

    def letters_of(self, key: str) -> list[str]:
        """The initials of ``key``'s multi-word terms (`initials` read backwards)."""
        by_key = self._columns.get("letters")
        if by_key is None:
            by_key = self._columns["letters"] = defaultdict(list)
            for letters, keys in self.initials.items():
                for k in keys:
                    by_key[k].append(letters)
        return by_key.get(key, [])

    def columns(self, reverse: bool) -> tuple[list[str], list[str]]:
        """The compact keys (read forward) and the terms of `forward`, or of `backward`."""
        cached = self._columns.get(reverse)
        if cached is None:
            table = self.backward if reverse else self.forward
            cached = self._columns[reverse] = ([k[::-1] if reverse else k for k, _ in table],
                                               [t for _, t in table])
        return cached


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
                      window: int | None = None, vocab_window: int = 8
                      ) -> list[tuple[float, str, str]]:
    """Fuzzy pairs among ``names``, and between them and the vocabulary's terms.

    Both by sorted neighbourhood: names among themselves, and each name against the
    vocabulary terms next to it in the vocabulary's sorted key lists (and reversed keys).
    """
    return combined(*fuzzy_parts(names, index, threshold, window=window,
                                 vocab_window=vocab_window))


Found = dict[tuple[str, str], float]     # (name, name) in order -> score


def fuzzy_parts(names: Sequence[str], index: VocabIndex, threshold: float, *,
                window: int | None = None, vocab_window: int = 8) -> tuple[Found, Found]:
    """`fuzzy_candidates` in two parts: the pairs among ``names`` (scores rounded), and
    those between a name and a vocabulary term (see `combined`)."""
    among = {(a, b): score for score, a, b in candidate_pairs(names, window=window,
                                                              threshold=threshold)}
    return among, vocabulary_pairs(names, index, threshold, vocab_window=vocab_window)


def combined(among: Found, near: Found) -> list[tuple[float, str, str]]:
    """The candidates of both parts of `fuzzy_parts`, best first."""
    found = dict(among)
    for pair, score in near.items():
        found[pair] = max(score, found.get(pair, 0))
    return _ranked(found)


def vocabulary_pairs(names: Iterable[str], index: VocabIndex, threshold: float, *,
                     vocab_window: int = 8) -> Found:
    """Each name against the vocabulary terms next to it in the vocabulary's sorted key
    lists (and reversed keys): what one name finds does not depend on the others."""
    found: Found = {}
    half = vocab_window // 2
    for table, keys, terms, reverse in ((index.forward, *index.columns(False), False),
                                        (index.backward, *index.columns(True), True)):
        own, near, near_terms, of = [], [], [], []
        for name in names:
            key = compact(name)
            if len(key) < 8:
                continue
            at = bisect.bisect_left(table, (key[::-1] if reverse else key, ""))
            lo, hi = max(0, at - half), at + half
            own += [key] * len(keys[lo:hi])
            near += keys[lo:hi]
            near_terms += terms[lo:hi]
            of += [name] * len(terms[lo:hi])
        for i, score in _scores(own, near, fuzz.ratio, threshold):
            name, term = of[i], near_terms[i]
            if term != name and own[i] != near[i]:
                pair = (name, term) if name < term else (term, name)
                found[pair] = max(score, found.get(pair, 0))
    return found


Orders = tuple[list[str], list[str]]


def sorted_orders(names: Iterable[str]) -> Orders:
    """The names `candidate_pairs` compares, in its two orders: by compact key, and by
    the key read backwards (ties by name)."""
    keyed = sorted({(compact(n), n) for n in names if len(compact(n)) >= 8})
    return [n for _, n in keyed], [n for _, n in sorted(keyed, key=lambda kn: kn[0][::-1])]


def grown_pairs(names: Sequence[str], before: Found, new: Collection[str], *,
                gone: Collection[str] = (), orders: Orders | None = None,
                window: int | None = None, threshold: float = 92.0,
                scorer: Callable[..., float] = fuzz.ratio) -> tuple[Found, Orders]:
    """`candidate_pairs` of ``names`` (as a dict), given ``before``, those of the same
    names but ``new`` and with those ``gone`` (and their `sorted_orders`, when known),
    with the orders of ``names``. Names that come push others apart in the sorted orders
    and names that go bring them closer, so only pairs with a new name, and pairs that
    were out of both windows and are in one now, are scored; the pairs of before still
    in a window are kept."""
    window = window or WINDOW
    if orders is None and gone:
        raise ValueError("names gone: the orders of before are needed")
    if orders is None:
        before_places = None
        orders = sorted_orders(names)
    else:
        before_places = [{n: i for i, n in enumerate(order)} for order in orders]
        orders = ([n for n in orders[0] if n not in gone],
                  [n for n in orders[1] if n not in gone])
        for n in new:
            if len(compact(n)) >= 8:
                bisect.insort(orders[0], n, key=_forward)
                bisect.insort(orders[1], n, key=_backward)
    places = [{n: i for i, n in enumerate(order)} for order in orders]
    found = {pair: score for pair, score in before.items()
             if pair[0] in places[0] and pair[1] in places[0]
             and any(abs(at[pair[0]] - at[pair[1]]) <= window for at in places)}
    fresh: Found = {}
    for o, (order, at) in enumerate(zip(orders, places)):
        steps = {(min(i, j), max(i, j)) for n in new if n in at
                 for i in (at[n],)
                 for j in range(max(0, i - window), min(len(order), i + window + 1)) if j != i}
        if gone:        # pairs across the gap a name left, if out of both windows before
            was = before_places
            for n in gone:
                if n not in was[o]:
                    continue
                where = _forward if o == 0 else _backward
                gap = bisect.bisect_left(order, where(n), key=where)
                for i in range(max(0, gap - window), gap):
                    for j in range(gap, min(len(order), i + window + 1)):
                        a, b = order[i], order[j]
                        if a in was[0] and b in was[0] and all(
                                abs(w[a] - w[b]) > window for w in was):
                            steps.add((i, j))
        steps = sorted(steps)
        left = [compact(order[i]) for i, _ in steps]
        right = [compact(order[j]) for _, j in steps]
        for k, score in _scores(left, right, scorer, threshold):
            if left[k] != right[k]:
                a, b = order[steps[k][0]], order[steps[k][1]]
                pair = (a, b) if a < b else (b, a)
                fresh[pair] = max(score, fresh.get(pair, 0))
    found.update((pair, round(score, 1)) for pair, score in fresh.items())
    return found, orders


def _forward(name: str) -> tuple[str, str]:
    return compact(name), name


def _backward(name: str) -> tuple[str, str]:
    return compact(name)[::-1], name

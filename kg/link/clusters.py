"""Guards that keep names apart, and the union-find that never breaks them."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from kg.names import compact, is_code, numbers, singular

__all__ = ["conflict", "Linker"]


def conflict(a: str, b: str) -> str | None:
    """Why two names can never be one concept, or None when nothing forbids it.

    >>> conflict("Adam", "AdamW"), conflict("GPT-4", "GPT-4o"), conflict("Qwen1.5-7B", "Qwen1.5-72B")
    ('one adds letters to the other', 'one adds letters to the other', 'different numbers')
    >>> conflict("nn.Dropout", "dropout"), conflict("KimiVL", "Kimi-VL")
    ('code identifier and idea', None)
    """
    ka, numbers_a, code_a = _facts(a)
    kb, numbers_b, code_b = _facts(b)
    if ka == kb:
        return None
    if numbers_a != numbers_b:
        return "different numbers"
    if code_a != code_b:
        return "code identifier and idea"
    if ka in kb or kb in ka:
        return "one adds letters to the other"
    return None


@lru_cache(maxsize=262144)
def _facts(name: str) -> tuple[str, tuple[str, ...], bool]:
    """What `conflict` asks of a name (a name meets many others while clusters merge)."""
    return singular(name), tuple(numbers(name)), is_code(name)


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
        forbidden = self.forbidden
        for x in ca.names:
            if x.startswith("\0"):
                continue
            for y in cb.names:
                if y.startswith("\0"):
                    continue
                if forbidden and frozenset((compact(x), compact(y))) in forbidden:
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

"""Names and types for concepts the vocabulary lacks, and their variants."""
from __future__ import annotations

import re

from kg.model import Concept, LexiconEntry
from kg.names import compact

__all__ = ["restore_separators", "guess_type", "find_variants"]

_MODEL_END = re.compile(r"(?:net|former|gpt|bert|lm|vl|vit|llm|diffusion|\d+b)$", re.I)
_METHOD_END = re.compile(r"(?:attention|tuning|decoding|sampling|module|learning|"
                         r"optimization|prediction|training|normalization|search)$", re.I)


_PIECE = re.compile(r"A\d+(?:\.\d+)?B|\d+(?:\.\d+)?[BMKT](?![a-z])|[A-Z][a-z]+|[A-Z]+(?![a-z])|\d+(?:\.\d+)?|[a-z]+")


_SIZE = re.compile(r"A\d+(?:\.\d+)?B|\d+(?:\.\d+)?[BMKT]|[vV]\d+(?:\.\d+)*")


def restore_separators(name: str, base: str) -> str:
    """Put back the hyphens a feed lost, when ``name`` extends a known ``base`` name.

    >>> restore_separators("Qwen1.57BChat", "Qwen1.5"), restore_separators("KimiVLA3B", "Kimi-VL")
    ('Qwen1.5-7B-Chat', 'Kimi-VL-A3B')
    >>> restore_separators("UpsamplingBilinear2d", "Upsampling")
    'UpsamplingBilinear2d'
    
    """
    if " " in name or "-" in name or "_" in name:
        return name
    target = compact(base)
    if name.isascii() and name.isprintable():    # compact() of its prefixes is lower()
        head = len(target) if name.lower().startswith(target) else 0
    else:
        head = 0
        for i in range(len(name) + 1):
            if compact(name[:i]) == target:
                head = i
    if not head or head == len(name):
        return name
    pieces = _PIECE.findall(name[head:])
    if "".join(pieces) != name[head:] or not _SIZE.fullmatch(pieces[0]):
        return name         # only a size or version follows a family name: Qwen1.5 + 7B
    return "-".join([base, *pieces])


def guess_type(name: str) -> str:
    if _MODEL_END.search(name) or re.search(r"\d", name):
        return "model"
    if _METHOD_END.search(name):
        return "method"
    return "concept"


def find_variants(concepts: dict[str, Concept], by_key: dict[str, LexiconEntry]
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
    get = heads.get
    for concept in concepts.values():
        if concept.origin == "vocabulary":
            continue
        own, key = compact(concept.name), concept.key
        for n in range(len(own) - 1, 2, -1):     # the longest head first
            base = get(own[:n], key)
            if base != key:
                out.append((key, base))
                break
    return sorted(out)

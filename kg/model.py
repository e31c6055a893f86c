"""Frozen records passed between the stages of kg."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Article", "LexiconEntry", "Mention", "AliasPair", "Extraction", "Concept", "TYPES"]

#: Concept types, in the order the viewer lists them.
TYPES = ("model", "method", "optimizer", "dataset", "metric", "library", "hardware",
         "datatype", "organization", "task", "concept")


class Article(NamedTuple):
    """One article, after duplicates across pages were merged (a named tuple: a build
    makes two per article read, and a frozen dataclass took three times as long)."""

    id: str
    title: str
    text: str
    sources: tuple[str, ...] = ()   # "file:line" for every place it was read from
    url: str = ""
    date: str = ""
    truncated: bool = False          # the text was cut ("...") in every copy seen


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    key: str                 # stable id, e.g. "lora"
    name: str                # display name, e.g. "LoRA"
    type: str                # one of TYPES
    terms: tuple[str, ...]   # every known name, any script, the display name first
    is_a: tuple[str, ...] = ()   # keys of broader concepts
    variants: tuple[str, ...] = ()   # spellings with separators lost (``KimiVL``), also matched

    @property
    def surfaces(self) -> tuple[str, ...]:
        """Every form to match: the known names, then their generated spellings."""
        return self.terms + self.variants


class Mention(NamedTuple):
    """One place an article names a concept (a named tuple: a large build makes hundreds
    of thousands, and a frozen dataclass took 2.5 times as long to make)."""

    article_id: str
    surface: str             # as written, e.g. "低秩适配"
    concept_key: str         # lexicon key, or "" for a discovered term
    start: int               # character offsets into Article.text
    end: int
    origin: str = "vocabulary"   # vocabulary | discovered | definition
    type: str = ""               # a type guessed from cue words, for discovered terms


@dataclass(frozen=True, slots=True)
class AliasPair:
    """Two names the text itself says are one, e.g. ``推测解码(speculative decoding)``."""

    article_id: str
    long: str
    short: str


@dataclass(frozen=True, slots=True)
class Extraction:
    """Everything extraction found in one article."""

    article_id: str
    mentions: tuple[Mention, ...]
    pairs: tuple[AliasPair, ...] = ()
    sentences: tuple[tuple[int, int], ...] = ()   # sentence bounds, character offsets


class Concept(NamedTuple):
    """One concept of the graph (a named tuple: linking makes one for each of tens of
    thousands of names, and a frozen dataclass took four times as long to make)."""

    key: str
    name: str
    type: str = "concept"
    aliases: tuple[str, ...] = ()
    origin: str = "vocabulary"       # vocabulary | discovered | definition
    is_a: tuple[str, ...] = ()       # keys of broader concepts

"""Find concept mentions: a spaCy pipeline with a mixed Chinese/Latin tokenizer."""
from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence

import spacy
from spacy import attrs
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from kg import discover
from kg.model import AliasPair, Article, Extraction, LexiconEntry, Mention
from kg.store import EXTRACTOR_VERSION
from kg.store import extractor_fingerprint as nlp_fingerprint

__all__ = ["make_nlp", "extract", "extract_mentions", "tokenize", "nlp_fingerprint",
           "PIPELINE_VERSION", "LABEL", "CANDIDATE"]

PIPELINE_VERSION = EXTRACTOR_VERSION
LABEL = "ML_CONCEPT"        # a vocabulary match; its kb_id is the concept key
CANDIDATE = "ML_CANDIDATE"  # a discovered term or a side of a definition
PAIRS_KEY = "kg_pairs"         # doc.user_data: definition pairs as character spans
MENTIONS_KEY = "kg_mentions"   # doc.user_data: the settled mentions as tuples
TEXT_KEY = "kg_text"           # doc.user_data: the text, kept by our tokenizer
STARTS_KEY = "kg_starts"       # doc.user_data: character offset of every token

_TOKEN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9+#]|[.\-_/'](?=[A-Za-z0-9]))*|[\u3400-\u9fff]|\S")
_TOKEN_OR_SPACE = re.compile(_TOKEN.pattern + r"|\s+")
# what a new lexeme gets: the matchers read LOWER and ORTH; spaCy's string-valued getters
# (shape, prefix, suffix, like_url...) were half the cost of making the pipeline, unused
_LEXEME_ATTRS = (attrs.LOWER, attrs.NORM, attrs.IS_ALPHA, attrs.IS_DIGIT, attrs.IS_SPACE,
                 attrs.IS_PUNCT, attrs.IS_ASCII, attrs.IS_LOWER, attrs.IS_UPPER, attrs.IS_TITLE,
                 attrs.LIKE_NUM)
_GENERIC_TYPES = {"method", "concept", "task", "metric", "optimizer", "datatype"}


def _text(doc: Doc) -> str:
    return doc.user_data.get(TEXT_KEY) or doc.text


def tokenize(text: str) -> list[str]:
    """Split text the way the pipeline does: Latin names whole, Han characters single.

    >>> tokenize("用Qwen1.5-7B-Chat和torch.nn做LoRA微调")
    ['用', 'Qwen1.5-7B-Chat', '和', 'torch.nn', '做', 'LoRA', '微', '调']
    """
    return _TOKEN.findall(text)


@spacy.registry.tokenizers("kg.mixed_tokenizer.v1")
def create_mixed_tokenizer():
    def make(nlp: Language) -> MixedTokenizer:
        return MixedTokenizer(nlp.vocab)
    return make


class MixedTokenizer:
    """Latin names stay whole; every Han character is a token of its own."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        words: list[str] = []
        spaces: list[bool] = []
        for part in _TOKEN_OR_SPACE.findall(text):
            if not part.isspace():
                words.append(part)
                spaces.append(False)
            elif words and not spaces[-1] and part[0] == " ":
                spaces[-1] = True               # one space after a token is its trailing space
                if len(part) > 1:
                    words.append(part[1:])
                    spaces.append(False)
            else:
                words.append(part)
                spaces.append(False)
        doc = Doc(self.vocab, words=words, spaces=spaces)
        doc.user_data[TEXT_KEY] = text      # Doc.text rebuilds the string on every call
        starts, offset = [], 0
        for word, space in zip(words, spaces):
            starts.append(offset)
            offset += len(word) + space
        doc.user_data[STARTS_KEY] = starts  # token start offsets, for char <-> token
        return doc

    def to_bytes(self, **kwargs) -> bytes:
        return b""

    def from_bytes(self, data: bytes, **kwargs) -> MixedTokenizer:
        return self

    def to_disk(self, path, **kwargs) -> None:
        return None

    def from_disk(self, path, **kwargs) -> MixedTokenizer:
        return self


def _case_sensitive(term: str, kind: str) -> bool:
    """Common English words that name something match only as capitalised (`Spark`)."""
    if not term.isalpha() or not any(c.isupper() for c in term):
        return False
    parts = re.findall(r"[A-Z][a-z]+", term)
    if len(parts) > 1 and "".join(parts) == term and \
            all(discover.word_zipf(p.lower()) >= 3.0 for p in parts):
        return True     # `PairWise` is a name; `pairwise` is an ordinary word
    zipf = discover.word_zipf(term.lower())
    return zipf >= 4.5 or (zipf >= 3.5 and kind not in _GENERIC_TYPES)


def make_nlp(lexicon: Sequence[LexiconEntry], *, discover_terms: bool = True) -> Language:
    """Build the extraction pipeline from the lexicon alone.

    Parameters
    ----------
    lexicon : sequence of LexiconEntry
        The vocabulary; each term becomes a phrase pattern carrying its entry's key.
    discover_terms : bool, optional
        Also find terms the vocabulary lacks (term shapes, definitions, cue words).

    Examples
    --------
    >>> from kg.lexicon import load_lexicon
    >>> nlp = make_nlp(load_lexicon())
    >>> [(e.text, e.kb_id_) for e in nlp("我们用LoRA微调模型").ents]
    [('LoRA', 'lora'), ('微调', 'fine-tuning')]
    """
    tokenizer = {"@tokenizers": "kg.mixed_tokenizer.v1"}
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": tokenizer}})
    getters = nlp.vocab.lex_attr_getters
    nlp.vocab.lex_attr_getters = {a: getters[a] for a in _LEXEME_ATTRS if a in getters}
    tagger = nlp.add_pipe("kg_concepts", config={"discover": discover_terms})
    tagger.add_terms(lexicon)
    return nlp


@Language.factory("kg_concepts", default_config={"discover": True})
def make_concept_tagger(nlp: Language, name: str, discover: bool) -> ConceptTagger:
    return ConceptTagger(nlp, discover=discover)


class ConceptTagger:
    """Tag concept mentions: vocabulary terms, definitions and discovered names.

    Two phrase matchers find the vocabulary: one ignoring case, one as written for names
    that are also common words (``Spark``). Definitions (`kg.discover.find_definitions`)
    and term shapes (`kg.discover.find_terms`) add what the vocabulary lacks. Overlaps
    are settled by `settle`: the longest span wins, the vocabulary on a tie. The result
    goes to ``doc.ents`` (label ML_CONCEPT with the key as ``kb_id``, or ML_CANDIDATE),
    to ``doc.user_data["kg_mentions"]`` as plain tuples, and the definition pairs to
    ``doc.user_data["kg_pairs"]``. Everything works on character offsets: spaCy's
    Span objects are made once, for ``doc.ents``.
    """

    def __init__(self, nlp: Language, *, discover: bool = True) -> None:
        self.vocab = nlp.vocab
        self.discover = discover
        self.folded = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.keys: dict[int, str] = {}

    def add_terms(self, lexicon: Sequence[LexiconEntry]) -> None:
        """Add every surface form of every entry, keyed by the entry's key.

        A pattern is given as the hashes of its tokens' LOWER (or ORTH) strings, the form
        the matcher keeps and restores from a pickle: a pattern Doc per surface form made
        every word a lexeme and was most of the cost of making the pipeline.
        """
        strings = self.vocab.strings
        for entry in lexicon:
            folded, exact = [], []
            for term in entry.surfaces:     # a pattern needs its tokens, not their spacing
                if _case_sensitive(term, entry.type):
                    exact += [[strings.add(word) for word in tokenize(form)]
                              for form in dict.fromkeys((term, term.upper()))]
                else:
                    folded.append([strings.add(word.lower()) for word in tokenize(term)])
            match_id = strings.add(entry.key)
            self.keys[match_id] = entry.key
            if folded:
                self.folded.add(entry.key, folded)
            if exact:
                self.exact.add(entry.key, exact)

    def __call__(self, doc: Doc, ents: bool = True) -> Doc:
        """Tag ``doc``; with ``ents=False`` (bulk extraction) only the tuples are kept."""
        text = _text(doc)
        starts = doc.user_data.get(STARTS_KEY) or [t.idx for t in doc]
        bounds = [*starts, len(text)]
        vocab = []
        for match_id, start, end in [*self.folded(doc), *self.exact(doc)]:
            stop = bounds[end]
            while stop > bounds[start] and text[stop - 1].isspace():
                stop -= 1
            vocab.append((bounds[start], stop, self.keys[match_id]))
        pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
        found: list[tuple[int, int, str]] = []
        if self.discover:
            pairs = discover.find_definitions(text, [(s, e) for s, e, _ in vocab])
            found = discover.find_terms(text)
        chosen = settle(vocab, [side for pair in pairs for side in pair], found)
        doc.user_data[MENTIONS_KEY] = chosen
        doc.user_data[PAIRS_KEY] = pairs
        if ents:
            self._set_ents(doc, text, starts, bounds, chosen)
        return doc

    @staticmethod
    def _set_ents(doc: Doc, text: str, starts: list[int], bounds: list[int],
                  chosen: list[tuple[int, int, str, str]]) -> None:
        spans = []
        for start, end, key, kind in chosen:
            first = bisect.bisect_left(starts, start)
            last = bisect.bisect_left(starts, end)
            if first < len(starts) and starts[first] == start and \
                    text[bounds[last - 1]:end] == doc[last - 1].text:
                spans.append(Span(doc, first, last, label=LABEL if key else CANDIDATE,
                                  kb_id=key))
        doc.set_ents(spans, default="outside")


def settle(vocab: Sequence[tuple[int, int, str]], defined: Sequence[tuple[int, int]],
           found: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, str, str]]:
    """Choose among overlapping spans.

    Vocabulary matches and definition sides compete, the longest first (the vocabulary on
    a tie); a discovered term only fills text nothing else claims, so ``LoRA Adapters``
    never hides the known ``LoRA``. Returns ``(start, end, key, kind)`` sorted by start:
    ``key`` is the vocabulary key or "", ``kind`` is "vocabulary", "definition" or a
    type guess for a discovered term.

    >>> settle([(0, 4, "lora")], [(5, 9)], [(0, 13, ""), (5, 9, ""), (14, 20, "")])
    [(0, 4, 'lora', 'vocabulary'), (5, 9, '', 'definition'), (14, 20, '', '')]
    """
    candidates = [(s, e, 0, key, "vocabulary") for s, e, key in vocab]
    candidates += [(s, e, 1, "", "definition") for s, e in defined]
    candidates.sort(key=lambda c: (c[0] - c[1], c[2], c[0]))
    found = sorted(found, key=lambda f: (f[0] - f[1], f[0]))
    size = max((c[1] for c in [*candidates, *found]), default=0)
    taken = bytearray(size)
    chosen = []
    for start, end, _, key, kind in [*candidates, *((s, e, 2, "", k) for s, e, k in found)]:
        if not any(taken[start:end]):
            taken[start:end] = b"\x01" * (end - start)
            chosen.append((start, end, key, kind))
    chosen.sort()
    return chosen


def extract(articles: Iterable[Article], nlp: Language, *,
            batch_size: int = 256) -> Iterator[Extraction]:
    """Run the pipeline over articles and yield what each one mentions.

    Docs never leave this function: each article yields an `Extraction` of plain
    mentions (with character offsets) and the alias pairs its definitions state.
    """
    texts = ((a.text, (a.id, a.truncated)) for a in articles)
    settings = {"kg_concepts": {"ents": False}}     # nobody reads doc.ents here
    for doc, (article_id, truncated) in nlp.pipe(texts, as_tuples=True, batch_size=batch_size,
                                                  component_cfg=settings):
        text = _text(doc)
        mentions = []
        for start, end, key, kind in doc.user_data.get(MENTIONS_KEY, ()):
            if truncated and end == len(text):
                continue        # the cut may have shortened it: `AdamW...` read as `Adam`
            surface = text[start:end]
            if key:
                mentions.append(Mention(article_id, surface, key, start, end, "vocabulary"))
            else:
                origin = "definition" if kind == "definition" else "discovered"
                guess = discover.cue_type(text, start, end) or \
                    ("" if kind == "definition" else kind)
                mentions.append(Mention(article_id, surface, "", start, end, origin, guess))
        pairs = tuple(AliasPair(article_id, text[a:b], text[c:d])
                      for (a, b), (c, d) in doc.user_data.get(PAIRS_KEY, ()))
        yield Extraction(article_id, tuple(mentions), pairs)


def extract_mentions(articles: Iterable[Article], nlp: Language) -> Iterator[Mention]:
    """Yield every mention in ``articles``, in order."""
    for extraction in extract(articles, nlp):
        yield from extraction.mentions

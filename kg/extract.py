"""Find concept mentions: a spaCy pipeline with a mixed Chinese/Latin tokenizer."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import filter_spans, get_words_and_spaces
from spacy.vocab import Vocab

from kg import discover
from kg.model import AliasPair, Article, Extraction, LexiconEntry, Mention

__all__ = ["make_nlp", "extract", "extract_mentions", "tokenize", "nlp_fingerprint",
           "PIPELINE_VERSION", "LABEL", "CANDIDATE"]

PIPELINE_VERSION = "kg-extract-1"
LABEL = "ML_CONCEPT"        # a vocabulary match; span id = concept key
CANDIDATE = "ML_CANDIDATE"  # a discovered term; span id = "" or a guessed type
PAIRS_KEY = "kg_definitions"   # doc.spans group: long, short, long, short, ...

_TOKEN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9+#]|[.\-_/'](?=[A-Za-z0-9]))*|[\u3400-\u9fff]|\S")
_GENERIC_TYPES = {"method", "concept", "task", "metric", "optimizer", "datatype"}


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
        words, spaces = get_words_and_spaces(_TOKEN.findall(text), text)
        return Doc(self.vocab, words=words, spaces=spaces)

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


def _patterns(lexicon: Sequence[LexiconEntry]) -> list[dict]:
    patterns = []
    for entry in lexicon:
        for term in entry.surfaces:
            if _case_sensitive(term, entry.type):
                for form in dict.fromkeys((term, term.upper())):
                    patterns.append({"label": LABEL, "pattern": [{"ORTH": form}], "id": entry.key})
            else:
                patterns.append({"label": LABEL, "pattern": term, "id": entry.key})
    return patterns


def make_nlp(lexicon: Sequence[LexiconEntry], *, discover_terms: bool = True) -> Language:
    """Build the extraction pipeline from the lexicon alone.

    Parameters
    ----------
    lexicon : sequence of LexiconEntry
        The vocabulary; each term becomes a pattern carrying its entry's key.
    discover_terms : bool, optional
        Also find terms the vocabulary lacks (term shapes, definitions, cue words).

    Examples
    --------
    >>> from kg.lexicon import load_lexicon
    >>> nlp = make_nlp(load_lexicon())
    >>> [(e.text, e.id_) for e in nlp("我们用LoRA微调模型").ents]
    [('LoRA', 'lora'), ('微调', 'fine-tuning')]
    """
    tokenizer = {"@tokenizers": "kg.mixed_tokenizer.v1"}
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": tokenizer}})
    ruler = nlp.add_pipe("span_ruler", config={
        "phrase_matcher_attr": "LOWER", "annotate_ents": True, "spans_key": None,
        "validate": False})
    ruler.add_patterns(_patterns(lexicon))
    if discover_terms:
        nlp.add_pipe("kg_definitions")
        nlp.add_pipe("kg_discover")
    return nlp


def nlp_fingerprint(lexicon: Sequence[LexiconEntry], *, discover_terms: bool = True) -> str:
    """A hash of everything that shapes extraction, for cache keys."""
    digest = hashlib.sha256(f"{PIPELINE_VERSION}|{discover_terms}|{spacy.__version__}".encode())
    for entry in lexicon:
        digest.update(repr((entry.key, entry.type, entry.surfaces)).encode("utf-8"))
    return digest.hexdigest()[:16]


@Language.factory("kg_definitions", default_config={"label": CANDIDATE})
def make_definition_tagger(nlp: Language, name: str, label: str) -> DefinitionTagger:
    return DefinitionTagger(label=label)


class DefinitionTagger:
    """Tag both sides of ``推测解码(speculative decoding)`` and record them as a pair."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, doc: Doc) -> Doc:
        spans, pairs = [], []
        for (ls, le), (ss, se) in discover.find_definitions(doc.text, _ent_bounds(doc)):
            long = doc.char_span(ls, le, alignment_mode="expand")
            short = doc.char_span(ss, se, alignment_mode="expand")
            if long is None or short is None or long.text != doc.text[ls:le] \
                    or short.text != doc.text[ss:se]:
                continue
            pairs += [long, short]
            spans += [Span(doc, s.start, s.end, label=self.label) for s in (long, short)]
        doc.spans[PAIRS_KEY] = SpanGroup(doc, name=PAIRS_KEY, spans=pairs)
        doc.ents = filter_spans([*doc.ents, *spans])
        return doc


@Language.factory("kg_discover", default_config={"label": CANDIDATE})
def make_term_finder(nlp: Language, name: str, label: str) -> TermFinder:
    return TermFinder(label=label)


class TermFinder:
    """Tag terms the vocabulary lacks by their shape (``MoonViT``, ``BAGEL``, ``A800``)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, doc: Doc) -> Doc:
        new = []
        for start, end, kind in discover.find_terms(doc.text):
            span = doc.char_span(start, end, label=self.label, span_id=kind)
            if span is not None:
                new.append(span)
        if new:
            doc.ents = filter_spans([*doc.ents, *new])
        return doc


def _ent_bounds(doc: Doc) -> list[tuple[int, int]]:
    return [(e.start_char, e.end_char) for e in doc.ents]


def extract(articles: Iterable[Article], nlp: Language, *,
            batch_size: int = 256) -> Iterator[Extraction]:
    """Run the pipeline over articles and yield what each one mentions.

    Docs never leave this function: each article yields an `Extraction` of plain
    mentions (with character offsets) and the alias pairs its definitions state.
    """
    texts = ((a.text, (a.id, a.truncated)) for a in articles)
    for doc, (article_id, truncated) in nlp.pipe(texts, as_tuples=True, batch_size=batch_size):
        mentions = []
        for ent in doc.ents:
            if truncated and ent.end_char == len(doc.text):
                continue        # the cut may have shortened it: `AdamW...` read as `Adam`
            if ent.label_ == LABEL:
                mentions.append(Mention(article_id, ent.text, ent.id_, ent.start_char,
                                        ent.end_char, "vocabulary"))
            else:
                origin = "definition" if _in_pairs(doc, ent) else "discovered"
                mentions.append(Mention(article_id, ent.text, "", ent.start_char, ent.end_char,
                                        origin, discover.cue_type(doc.text, ent.start_char,
                                                                  ent.end_char) or ent.id_))
        group = doc.spans.get(PAIRS_KEY, [])
        pairs = tuple(AliasPair(article_id, group[i].text, group[i + 1].text)
                      for i in range(0, len(group) - 1, 2))
        yield Extraction(article_id, tuple(mentions), pairs)


def _in_pairs(doc: Doc, ent: Span) -> bool:
    return any(s.start_char == ent.start_char and s.end_char == ent.end_char
               for s in doc.spans.get(PAIRS_KEY, []))


def extract_mentions(articles: Iterable[Article], nlp: Language) -> Iterator[Mention]:
    """Yield every mention in ``articles``, in order."""
    for extraction in extract(articles, nlp):
        yield from extraction.mentions

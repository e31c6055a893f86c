"""Find concept mentions: a spaCy pipeline with a mixed Chinese/Latin tokenizer."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import filter_spans
from spacy.vocab import Vocab

from kg import discover
from kg.model import AliasPair, Article, Extraction, LexiconEntry, Mention

__all__ = ["make_nlp", "extract", "extract_mentions", "tokenize", "nlp_fingerprint",
           "PIPELINE_VERSION", "LABEL", "CANDIDATE"]

PIPELINE_VERSION = "kg-extract-1"
LABEL = "ML_CONCEPT"        # a vocabulary match; span id = concept key
CANDIDATE = "ML_CANDIDATE"  # a discovered term; span id = "" or a guessed type
VOCAB_KEY = "kg_vocab"          # doc.spans group: vocabulary matches
PAIRS_KEY = "kg_definitions"   # doc.spans group: long, short, long, short, ...
MENTIONS_KEY = "kg_mentions"   # doc.spans group: the settled mentions
TEXT_KEY = "kg_text"           # doc.user_data: the text, kept by our tokenizer


def _text(doc: Doc) -> str:
    return doc.user_data.get(TEXT_KEY) or doc.text

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
        words: list[str] = []
        spaces: list[bool] = []
        last = 0
        for match in _TOKEN.finditer(text):
            start = match.start()
            if start > last:                    # whitespace before this token
                gap = text[last:start]
                if gap == " " and words and not spaces[-1]:
                    spaces[-1] = True
                else:
                    if words and not spaces[-1] and gap[0] == " ":
                        spaces[-1], gap = True, gap[1:]
                    words.append(gap)
                    spaces.append(False)
            words.append(match.group())
            spaces.append(False)
            last = match.end()
        if last < len(text):
            gap = text[last:]
            if words and not spaces[-1] and gap[0] == " ":
                spaces[-1], gap = True, gap[1:]
            if gap:
                words.append(gap)
                spaces.append(False)
        doc = Doc(self.vocab, words=words, spaces=spaces)
        doc.user_data[TEXT_KEY] = text      # Doc.text rebuilds the string on every call
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


def _patterns(lexicon: Sequence[LexiconEntry]) -> tuple[list[dict], list[dict]]:
    """Phrase patterns matched ignoring case, and those matched as written."""
    folded, exact = [], []
    for entry in lexicon:
        for term in entry.surfaces:
            if _case_sensitive(term, entry.type):
                exact += [{"label": LABEL, "pattern": form, "id": entry.key}
                          for form in dict.fromkeys((term, term.upper()))]
            else:
                folded.append({"label": LABEL, "pattern": term, "id": entry.key})
    return folded, exact


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
    folded, exact = _patterns(lexicon)
    ruler = nlp.add_pipe("span_ruler", config={
        "phrase_matcher_attr": "LOWER", "spans_key": VOCAB_KEY, "annotate_ents": False})
    ruler.add_patterns(folded)
    # Common words that name something (`Spark`) match only as written; a phrase
    # matcher, since thousands of token patterns make spaCy's Matcher slow.
    case_ruler = nlp.add_pipe("span_ruler", name="kg_case_ruler", config={
        "phrase_matcher_attr": "ORTH", "spans_key": VOCAB_KEY, "overwrite": False,
        "annotate_ents": False})
    case_ruler.add_patterns(exact)
    if discover_terms:
        nlp.add_pipe("kg_definitions")
        nlp.add_pipe("kg_discover")
    else:
        nlp.add_pipe("kg_settle")
    return nlp


@Language.component("kg_settle")
def settle_component(doc: Doc) -> Doc:
    """Settle the vocabulary matches alone (no discovery)."""
    settle(doc)
    return doc


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
    """Tag both sides of ``推测解码(speculative decoding)`` and record them as a pair.

    Reads the vocabulary matches from ``doc.spans["kg_vocab"]``; writes the pairs to
    ``doc.spans["kg_definitions"]`` as long, short, long, short, ...
    """

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, doc: Doc) -> Doc:
        known = [(s.start_char, s.end_char) for s in doc.spans.get(VOCAB_KEY, ())]
        pairs = []
        for (ls, le), (ss, se) in discover.find_definitions(_text(doc), known):
            long = doc.char_span(ls, le, label=self.label)
            short = doc.char_span(ss, se, label=self.label)
            if long is not None and short is not None:
                pairs += [long, short]
        doc.spans[PAIRS_KEY] = SpanGroup(doc, name=PAIRS_KEY, spans=pairs)
        return doc


@Language.factory("kg_discover", default_config={"label": CANDIDATE})
def make_term_finder(nlp: Language, name: str, label: str) -> TermFinder:
    return TermFinder(label=label)


class TermFinder:
    """Tag terms the vocabulary lacks by their shape (``MoonViT``, ``BAGEL``, ``A800``).

    Then settles every span: vocabulary matches, definition sides and discovered terms
    compete and the longest wins (the vocabulary on a tie); the result goes to
    ``doc.ents`` and ``doc.spans["kg_mentions"]``.
    """

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, doc: Doc) -> Doc:
        found = []
        for start, end, kind in discover.find_terms(_text(doc)):
            span = doc.char_span(start, end, label=self.label, span_id=kind)
            if span is not None:
                found.append(span)
        settle(doc, found)
        return doc


def settle(doc: Doc, found: Sequence[Span] = ()) -> None:
    """Choose among overlapping spans (longest first) and write the mentions."""
    spans = [*doc.spans.get(VOCAB_KEY, ()), *doc.spans.get(PAIRS_KEY, ()), *found]
    chosen = filter_spans(spans)
    doc.spans[MENTIONS_KEY] = SpanGroup(doc, name=MENTIONS_KEY, spans=chosen)
    doc.set_ents(chosen, default="outside")


def extract(articles: Iterable[Article], nlp: Language, *,
            batch_size: int = 256) -> Iterator[Extraction]:
    """Run the pipeline over articles and yield what each one mentions.

    Docs never leave this function: each article yields an `Extraction` of plain
    mentions (with character offsets) and the alias pairs its definitions state.
    """
    texts = ((a.text, (a.id, a.truncated)) for a in articles)
    for doc, (article_id, truncated) in nlp.pipe(texts, as_tuples=True, batch_size=batch_size):
        text = _text(doc)
        mentions = []
        paired = {(s.start_char, s.end_char) for s in doc.spans.get(PAIRS_KEY, ())}
        for ent in doc.spans[MENTIONS_KEY]:
            if truncated and ent.end_char == len(text):
                continue        # the cut may have shortened it: `AdamW...` read as `Adam`
            if ent.label_ == LABEL:
                mentions.append(Mention(article_id, ent.text, ent.id_, ent.start_char,
                                        ent.end_char, "vocabulary"))
            else:
                origin = "definition" if (ent.start_char, ent.end_char) in paired \
                    else "discovered"
                mentions.append(Mention(article_id, ent.text, "", ent.start_char, ent.end_char,
                                        origin, discover.cue_type(text, ent.start_char,
                                                                  ent.end_char) or ent.id_))
        group = doc.spans.get(PAIRS_KEY, [])
        pairs = tuple(AliasPair(article_id, group[i].text, group[i + 1].text)
                      for i in range(0, len(group) - 1, 2))
        yield Extraction(article_id, tuple(mentions), pairs)


def extract_mentions(articles: Iterable[Article], nlp: Language) -> Iterator[Mention]:
    """Yield every mention in ``articles``, in order."""
    for extraction in extract(articles, nlp):
        yield from extraction.mentions

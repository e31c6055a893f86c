"""Linking again with the memo of an earlier link gives what linking afresh gives."""
from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.link import LinkMemo, SurfaceStats, link_concepts
from kg.link import candidates
from kg.link.candidates import (candidate_pairs, grown_pairs, sorted_orders,
                                vocabulary_index)
from kg.model import AliasPair, Mention

# Names that meet every kind of evidence: vocabulary terms and spellings of them, one
# name written several ways, acronyms and the names they spell, definitions, typos, and
# families of long names a letter or a number apart (they push each other out of the
# fuzzy windows as names are added).
NAMES = [
    "LoRA", "lora", "LoRAs", "Flash-Attention", "Self Attention", "Low-Rank Adaptation", "LRA",
    "FlashAttention", "Flash Attention",
    "投机解码", "Speculative Decoding", "Speculative Decodng", "Adam", "AdamW", "GPT-4",
    "GPT-4o", "MTP", "MTPs", "Multi-Token Prediction", "Multitoken Prediction",
    "FooNet", "FooNets", "foonet", "Foo-Net", "BarViT", "Bar ViT", "SelfAtention",
    "Self-Attention", "CrossAtention", "GroupQueryAtention", "Qwen1.5", "Qwen1.57BChat",
    "KimiVL", "Kimi-VL", "Zeta Gamma Model", "Zeta-Gamma Model", "Zeta Gamma Models", "ZGM",
    "ZGMs", "Zeta Graph Mixer", "Hyper Dense Retriever", "HDR", "HyperDenseRetriver",
    "HyperDenseRetriever", "HyperDenseRetrievers", "MegaTransformerXL1", "MegaTransformerXL2",
    "MegaTransformerXL12", "MegaTransformerXLL", "Medusa-818", "Medusa-828", "DeepSeekV957",
    "DeepSeek-V957", "DeepSeekV958", "稀疏注意力", "稀疏注意力机制", "Sparse Attention",
    "SparseAtention", "Quantum Walk Sampler", "QWS", "Quantum-Walk Sampler", "Quantum Walks",
]
DEFINITIONS = [("Zeta Gamma Model", "ZGM"), ("Speculative Decoding", "投机解码"),
               ("Hyper Dense Retriever", "HDR"), ("稀疏注意力", "Sparse Attention"),
               ("Quantum Walk Sampler", "QWS"), ("Zeta Graph Mixer", "ZGM")]

ARTICLE = st.tuples(
    st.lists(st.tuples(st.sampled_from(NAMES), st.booleans(),
                       st.sampled_from(["", "model", "method"])), min_size=1, max_size=6),
    st.lists(st.sampled_from(DEFINITIONS), max_size=1))


def _sources(articles, index, start=0):
    """Mentions and definitions of each article, by its name."""
    sources, pairs = {}, []
    for i, (names, defined) in enumerate(articles, start):
        article = f"a{i:03d}"
        mentions = []
        for name, as_vocabulary, kind in names:
            key = index.key_of(name) if as_vocabulary else None
            mentions.append(Mention(article, name, key or "", 0, len(name),
                                    "vocabulary" if key else "discovered", "" if key else kind))
        for long, short in defined:
            pairs.append(AliasPair(article, long, short))
            mentions += [Mention(article, n, "", 0, len(n), "definition") for n in (long, short)]
        sources[article] = tuple(mentions)
    return sources, pairs


def _link(lexicon, sources, pairs, memo=None, **rules):
    stats = SurfaceStats(m for ms in sources.values() for m in ms)
    return link_concepts(stats, lexicon, pairs=pairs, memo=memo, remember=True, **rules)


def _same(a, b) -> None:
    assert list(a.concepts.items()) == list(b.concepts.items())
    assert a.key_of == b.key_of and a.merges == b.merges and a.variants == b.variants


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ARTICLE, min_size=1, max_size=12), st.lists(ARTICLE, max_size=5),
       st.lists(ARTICLE, max_size=5), st.lists(st.integers(0, 16), max_size=6))
def test_linking_with_the_memo_of_other_articles_is_linking_afresh(lexicon, first, second,
                                                                   third, gone):
    with mock.patch.object(candidates, "WINDOW", 2):    # names leave windows sooner
        _relink_and_compare(lexicon, first, second, third, gone)


def _relink_and_compare(lexicon, first, second, third, gone):
    """Link ``first``; then, with its memo, ``first`` and ``second``; then, with that
    memo, all but the articles numbered in ``gone``, whose places ``third`` takes."""
    index = vocabulary_index(tuple(lexicon))
    sources, pairs = _sources(first, index)
    memo = _link(lexicon, sources, pairs).memo
    extra, extra_pairs = _sources(second, index, start=len(sources))
    grown = ({**sources, **extra}, pairs + extra_pairs)
    kept = {k: v for i, (k, v) in enumerate(grown[0].items()) if i not in gone}
    swapped, _ = _sources(third, index, start=len(grown[0]))
    renamed = dict(zip(sorted(set(grown[0]) - set(kept)), swapped.values()))   # new texts
    changed = ({**kept, **renamed}, [p for p in grown[1] if p.article_id in kept])
    for sources, pairs in (grown, changed):
        memo = LinkMemo.loads(memo.dumps())             # as the next build reads it
        again, fresh, used = _with(lexicon, sources, pairs, memo)
        assert used                                     # the memo was used...
        _same(again, fresh)                             # ...and changed nothing
        memo = again.memo


def _with(lexicon, sources, pairs, memo, **rules):
    """Link with ``memo`` and afresh: (with, afresh, whether the memo was used)."""
    used = []
    real = LinkMemo.relink
    with mock.patch.object(LinkMemo, "relink",
                           lambda self, *a: used.append(real(self, *a)) or used[-1]):
        again = _link(lexicon, sources, pairs, memo=memo, **rules)
    return again, _link(lexicon, sources, pairs, **rules), bool(used and used[0])


def test_a_memo_is_used_whatever_the_articles_but_only_with_its_rules(lexicon):
    index = vocabulary_index(tuple(lexicon))
    articles = [([("FooNet", False, "model"), ("Foo-Net", False, "")], []),
                ([("SelfAtention", False, ""), ("Self-Attention", True, "")], []),
                ([("Zeta Gamma Model", False, "model"), ("ZGM", False, "")],
                 [("Zeta Gamma Model", "ZGM")])]
    sources, pairs = _sources(articles, index)
    made = _link(lexicon, sources, pairs).memo
    one_gone = {k: v for k, v in sources.items() if k != "a002"}
    for now, defined in ((sources, pairs), (one_gone, []), ({}, [])):
        again, fresh, used = _with(lexicon, now, defined, LinkMemo.loads(made.dumps()))
        assert used
        _same(again, fresh)
    assert "ZGM" not in _with(lexicon, one_gone, [], LinkMemo.loads(made.dumps()))[0].key_of
    for rules in ({"threshold": 90.0}, {"forced": [("FooNet", "ZGM")]},
                  {"forbidden": [("FooNet", "Foo-Net")]}):
        again, fresh, used = _with(lexicon, sources, pairs, LinkMemo.loads(made.dumps()),
                                   **rules)
        assert not used
        _same(again, fresh)
    assert LinkMemo.loads(b"not a memo") is None
    assert LinkMemo.loads(made.dumps()[:-40]) is None


def test_a_memo_gives_way_to_the_rules_it_was_not_made_with(lexicon):
    index = vocabulary_index(tuple(lexicon))
    sources, pairs = _sources([([("FooNet", False, "model"), ("BarViT", False, "")], [])],
                              index)
    memo = _link(lexicon, sources, pairs).memo
    forced = [("FooNet", "BarViT")]
    again = _link(lexicon, sources, pairs, memo=memo, forced=forced)
    assert again.key_of["FooNet"] == again.key_of["BarViT"]
    _same(again, _link(lexicon, sources, pairs, forced=forced))
    dropped = _link(lexicon, sources, pairs, memo=memo, dropped=["BarViT"])
    assert "BarViT" not in dropped.key_of and dropped.memo is None


def _relinked(lexicon, before, after, **rules):
    """Link ``before``, then ``after`` with its memo and afresh: (with, afresh, used)."""
    memo = LinkMemo.loads(_link(lexicon, *before, **rules).memo.dumps())
    return _with(lexicon, *after, memo, **rules)


def _mentions(article, *names, key="", origin="discovered"):
    return {article: tuple(Mention(article, n, key, 0, len(n), origin) for n in names)}


def test_names_that_new_ones_push_apart_are_linked_again(lexicon):
    # with one name either side compared, a name between two in each sorted order
    # (forward: omegatransfomer < omegatransfomzz... < omegatransformer; backward:
    # remof... < rempoo... < remr...), like neither, keeps them from being compared
    before = _mentions("a", "Omega Transformer", "Omega Transfomer")
    after = {**before, **_mentions("b", "Omega Transfomzzzzzzzzzzzz", "Hyperzoopmer")}
    with mock.patch.object(candidates, "WINDOW", 1):
        first = _link(lexicon, before, [])
        again, fresh, used = _relinked(lexicon, (before, []), (after, []))
    assert first.key_of["Omega Transformer"] == first.key_of["Omega Transfomer"]
    assert fresh.key_of["Omega Transformer"] != fresh.key_of["Omega Transfomer"]
    assert used
    _same(again, fresh)


def test_a_name_the_vocabulary_later_claims_is_linked_again(lexicon):
    before = {**_mentions("a", "FooNet", "Foo-Net"), **_mentions("b", "LoRAs")}
    after = {**before, **_mentions("c", "FooNet", "LoRAs", key="lora", origin="vocabulary")}
    again, fresh, used = _relinked(lexicon, (before, []), (after, []))
    assert used and fresh.key_of["FooNet"] == "lora"
    assert any(m.surface == "LoRAs" and m.reason == "vocabulary term" for m in fresh.merges)
    _same(again, fresh)


def test_an_acronym_of_a_vocabulary_concept_is_linked_again_when_the_concept_grows(lexicon):
    # AAL spells Average Acceptance Length's initials: it joins that concept, until a name
    # with a number joins it (numbers keep names apart), found from the concept's side
    key = "average-acceptance-length"
    before = _mentions("a", "AAL")
    after = {**before, **_mentions("c", "AcceptLen2", key=key, origin="vocabulary")}
    first = _link(lexicon, before, [])
    again, fresh, used = _relinked(lexicon, (before, []), (after, []))
    assert first.key_of["AAL"] == key and fresh.key_of["AAL"] != key
    assert used
    _same(again, fresh)


# names alike enough to score 60 or more with most others, wherever they sort
@pytest.mark.parametrize("then, now", [
    (("discovered", "", "model"), ("discovered", "", "method")),      # only its type
    (("discovered", "", ""), ("definition", "", "")),                 # only its origin
    (("vocabulary", "lora", ""), ("vocabulary", "qlora", "")),         # only its key
])
def test_a_name_mentioned_as_often_but_otherwise_is_named_again(lexicon, then, now):
    def article(name, origin, key, kind):
        return {name: (Mention(name, "FooNet", key, 0, 6, origin, kind),)}

    before = {**article("a", *then), **_mentions("b", "Other Thing")}
    after = {**article("c", *now), **_mentions("b", "Other Thing")}      # a went, c came
    first = _link(lexicon, before, [])
    again, fresh, used = _relinked(lexicon, (before, []), (after, []))
    assert used and first.concepts != fresh.concepts
    _same(again, fresh)


WORDS = st.builds(str.__add__, st.sampled_from(["aaaaaa", "aaaabb", "bbaaaa", "ab-ab1"]),
                  st.text(alphabet="ab12X", min_size=1, max_size=4))


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=30, unique=True),
       st.lists(WORDS, max_size=8, unique=True), st.lists(st.integers(0, 29), max_size=8),
       st.integers(1, 4))
def test_fuzzy_pairs_of_other_names_are_those_kept_and_those_of_the_changes(before, added,
                                                                           gone, window):
    gone = {before[i] for i in gone if i < len(before)}
    names = sorted((set(before) | set(added)) - gone)
    new = [n for n in names if n not in before]
    old = {(a, b): s for s, a, b in candidate_pairs(before, window=window, threshold=60)}
    grown, orders = grown_pairs(names, old, new, gone=gone, window=window, threshold=60,
                                orders=sorted_orders(before))
    assert grown == {(a, b): s for s, a, b in candidate_pairs(names, window=window,
                                                              threshold=60)}
    assert orders == sorted_orders(names)
    if not gone:            # the orders of before are needed only when names went
        assert grown_pairs(names, old, new, window=window, threshold=60) == (grown, orders)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_rebuild_links_with_the_memo_and_keeps_a_new_one(lexicon, tmp_path, jobs,
                                                            monkeypatch):
    from kg import pipeline
    from kg.sources import read_articles, sample_path

    articles = read_articles([sample_path()])
    cache = pipeline.open_cache(tmp_path / "cache.sqlite", lexicon)
    pipeline.build(articles[:-5], lexicon, cache=cache, jobs=jobs)
    kept = pipeline.load_memo(cache)
    assert kept is not None
    used = []
    real = LinkMemo.relink
    monkeypatch.setattr(LinkMemo, "relink",
                        lambda self, *a: used.append(real(self, *a)) or used[-1])
    again = pipeline.build(articles, lexicon, cache=cache, jobs=jobs)
    assert used and used[0] is not None
    fresh = pipeline.build(articles, lexicon, jobs=jobs)
    _same(again.link, fresh.link)
    assert pipeline.load_memo(cache).surfaces == again.link.memo.surfaces
    assert set(kept.surfaces) < set(again.link.memo.surfaces)


def _stats_of(stats):
    return (dict(stats.counts), {n: dict(t) for n, t in stats.types.items() if t},
            dict(stats.origins), stats.vocab_names)


@pytest.mark.parametrize("before, between, after, counted", [
    # (articles of the build that keeps the memo, of an earlier one, of the rebuild,
    #  articles the rebuild counts: those its memo was not counted from, or all)
    (slice(0, -5), None, slice(None), "new"),
    (slice(0, 20), slice(None), slice(None), "new"),     # the rest from an older build
    (slice(None), None, slice(0, -5), "all"),            # articles gone: counted afresh
    (slice(None), None, "grown", "all"),                 # one article replaced
])
def test_a_rebuild_counts_only_the_articles_its_memo_was_not_counted_from(
        lexicon, tmp_path, monkeypatch, before, between, after, counted):
    from kg import pipeline
    from kg.sources import read_articles, sample_path

    articles = read_articles([sample_path()])
    cache = pipeline.open_cache(tmp_path / "cache.sqlite", lexicon)
    if between is not None:
        pipeline.build(articles[between], lexicon, cache=cache)
    pipeline.build(articles[before], lexicon, cache=cache)
    if after == "grown":
        now = [a._replace(text=a.text + " 又见 LoRA。") if i == 3 else a
               for i, a in enumerate(articles)]
    else:
        now = articles[after]
    seen: set[str] = set()
    real = SurfaceStats.add

    def add(self, mentions):
        mentions = list(mentions)
        seen.update(m.article_id for m in mentions)
        return real(self, mentions)

    linked = []
    link = pipeline.link_concepts
    monkeypatch.setattr(SurfaceStats, "add", add)
    monkeypatch.setattr(pipeline, "link_concepts",
                        lambda stats, *a, **k: linked.append(stats) or link(stats, *a, **k))
    again = pipeline.build(now, lexicon, cache=cache)
    monkeypatch.setattr(SurfaceStats, "add", real)
    with_memo = {a.id for a in articles[before]}
    assert seen == ({a.id for a in now} - with_memo if counted == "new"
                    else {a.id for a in now})
    fresh = pipeline.build(now, lexicon)
    assert _stats_of(linked[0]) == _stats_of(SurfaceStats(
        m for e in fresh.extractions for m in e.mentions))
    _same(again.link, fresh.link)
    assert pipeline.load_memo(cache).counted == again.link.memo.counted
    assert len(again.link.memo.counted) == len(now)
